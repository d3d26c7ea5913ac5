package task

import (
	"context"

	"github.com/google/uuid"
)

// Store persists tasks. Implementations are safe for concurrent use, apply
// every Change atomically (a conditional update, never read-then-write
// without a lock), and translate their own errors into this package's
// sentinels (ErrNotFound, ErrConflict).
type Store interface {
	// Create inserts t. t.ID must be set and unused.
	Create(ctx context.Context, t *Task) error
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
	// Apply applies c if c.Allows the stored state, returning the task as
	// it is afterwards; ErrConflict (with nothing changed) otherwise.
	Apply(ctx context.Context, c Change) (*Task, error)
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
