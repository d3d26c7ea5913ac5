package task

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Store persists tasks. Implementations are safe for concurrent use, apply
// every Change atomically (a conditional update, never read-then-write
// without a lock), and translate their own errors into this package's
// sentinels (ErrNotFound, ErrConflict).
type Store interface {
	// Create inserts t. t.ID must be set and unused.
	Create(ctx context.Context, t *Task) error
	// CreateIdempotent inserts t unless another task holds the key k
	// (k.Owner, k.Key) and the key is not expired (its CreatedAt is not
	// before expiredBefore), atomically, in the database: of concurrent
	// calls with one key (in this process or another), exactly one
	// inserts. It returns the task and true when it inserted t (claiming
	// an expired key replaces it); the task holding the key and false when
	// the key's hash equals k.Hash; ErrIdempotencyMismatch otherwise.
	CreateIdempotent(ctx context.Context, t *Task, k IdempotencyKey, expiredBefore time.Time) (*Task, bool, error)
	// PurgeIdempotencyKeys deletes the keys created before before and
	// returns how many it deleted.
	PurgeIdempotencyKeys(ctx context.Context, before time.Time) (int64, error)
	// Get returns the task with the id, or ErrNotFound.
	Get(ctx context.Context, id uuid.UUID) (*Task, error)
	// List returns up to q.Limit tasks, newest first (CreatedAt desc, ID
	// desc), strictly after q.After, and the cursor of the next page (nil
	// on the last page).
	List(ctx context.Context, q ListQuery) ([]*Task, *Cursor, error)
	// ListOldest returns up to limit tasks in status s, oldest first, for
	// background sweeps (relay of pending tasks, reconciler).
	ListOldest(ctx context.Context, s Status, limit int) ([]*Task, error)
	// Stats counts tasks by status and averages execution time, in one query.
	Stats(ctx context.Context) (Stats, error)
	// OwnerStats is Stats of the tasks of one owner.
	OwnerStats(ctx context.Context, owner string) (Stats, error)
	// Apply applies c if c.Allows the stored state, returning the task as
	// it is afterwards; ErrConflict (with nothing changed) otherwise.
	Apply(ctx context.Context, c Change) (*Task, error)
	// ApplyWebhook applies c if c.Allows the stored run and webhook state,
	// returning the task as it is afterwards; ErrConflict (with nothing
	// changed) otherwise.
	ApplyWebhook(ctx context.Context, c WebhookChange) (*Task, error)
	// ListWebhooksDue returns up to limit tasks whose webhook is
	// WebhookDue, the longest due first, for the webhook relay.
	ListWebhooksDue(ctx context.Context, limit int) ([]*Task, error)
	// Checkpoint returns the value stored under name ("" when none), for
	// background loops that resume where they stopped (e.g. an events
	// stream id).
	Checkpoint(ctx context.Context, name string) (string, error)
	// SetCheckpoint stores value under name.
	SetCheckpoint(ctx context.Context, name, value string) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}
