package task

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Enqueuer adds a stored task to the work queue. It must be idempotent:
// enqueueing the same task twice adds one job (the job id is the task id).
type Enqueuer interface {
	Enqueue(ctx context.Context, t *Task) error
}

// Service enforces the task rules on top of a Store, and is the only
// writer of task state: the HTTP API and every background loop (relay,
// events listener, reconciler, result consumer) read and change tasks
// through it, never through the Store. Every change is a Change built by
// this package, which the Store applies as one conditional update. It is
// safe for concurrent use.
type Service struct {
	store         Store
	enqueuer      Enqueuer
	log           *slog.Logger
	now           func() time.Time
	onCreated     func(*Task)
	checkCallback func(string) error
	globalWebhook bool
	keyTTL        time.Duration
}

// ServiceOptions configures a Service. The zero value is valid.
type ServiceOptions struct {
	// Enqueuer, when set, queues each created task at once; when it fails
	// the task stays pending for a relay to queue later. Defaults to none:
	// tasks stay pending.
	Enqueuer Enqueuer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// OnCreated, when set, is called with each task once it is stored
	// (e.g. to count it); it must not block. Defaults to none.
	OnCreated func(*Task)
	// CheckCallbackURL, when set, enables per-task webhooks: it is the
	// address policy a task's callbackUrl must pass at creation (e.g. no
	// loopback or private literal address); its error becomes the
	// validation reason. Defaults to none: a callbackUrl is refused
	// (webhooks are not configured).
	CheckCallbackURL func(rawURL string) error
	// GlobalWebhook says a global webhook target (WEBHOOK_URL) is
	// configured: every task created sends a webhook notification, to
	// its callbackUrl when it has one and to the global target otherwise.
	// Defaults to false: only tasks with a callbackUrl do.
	GlobalWebhook bool
	// IdempotencyTTL is how long an idempotency key holds. Defaults to
	// DefaultIdempotencyTTL (24h).
	IdempotencyTTL time.Duration
}

// NewService returns a Service on store.
func NewService(store Store, opts ServiceOptions) *Service {
	s := &Service{store: store, enqueuer: opts.Enqueuer, log: opts.Logger, now: opts.Now, onCreated: opts.OnCreated,
		checkCallback: opts.CheckCallbackURL, globalWebhook: opts.GlobalWebhook, keyTTL: opts.IdempotencyTTL}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.keyTTL <= 0 {
		s.keyTTL = DefaultIdempotencyTTL
	}
	return s
}

// Create validates n, stores a pending task owned by the caller of ctx
// and, when the service has an Enqueuer, queues it and marks it queued. A
// failure to enqueue is logged, not returned: the task is accepted and
// stays pending for the relay.
func (s *Service) Create(ctx context.Context, n NewTask) (*Task, error) {
	t, err := s.newTask(ctx, &n)
	if err != nil {
		return nil, err
	}
	if err := s.store.Create(ctx, t); err != nil {
		return nil, fmt.Errorf("create task: %w", err)
	}
	return s.created(ctx, t), nil
}

// CreateIdempotent is Create with an idempotency key (see IdempotencyKey):
// the first request with the key (for the caller of ctx, within the
// IdempotencyTTL) creates the task and returns it with created true; a
// later request with the same key and the same fields returns that task,
// as it is now, with created false (it is not queued again: the first
// request or the relay did); the same key with other fields fails with
// ErrIdempotencyMismatch. It is safe under concurrent duplicates, in one
// process or across replicas: the database holds the key.
func (s *Service) CreateIdempotent(ctx context.Context, n NewTask, key string) (t *Task, created bool, err error) {
	if err := ValidateIdempotencyKey(key); err != nil {
		return nil, false, err
	}
	if t, err = s.newTask(ctx, &n); err != nil {
		return nil, false, err
	}
	k := IdempotencyKey{Owner: t.Owner, Key: key, Hash: requestHash(n), CreatedAt: t.CreatedAt}
	stored, created, err := s.store.CreateIdempotent(ctx, t, k, t.CreatedAt.Add(-s.keyTTL))
	if err != nil {
		return nil, false, fmt.Errorf("create task with idempotency key: %w", err)
	}
	if !created {
		return stored, false, nil
	}
	return s.created(ctx, stored), true, nil
}

// newTask validates n (filling in its defaults) and builds the pending
// task it describes, owned by the caller of ctx.
func (s *Service) newTask(ctx context.Context, n *NewTask) (*Task, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	if n.CallbackURL != "" {
		if s.checkCallback == nil {
			return nil, &ValidationError{Field: "callbackUrl", Reason: "webhooks are not enabled on this server (WEBHOOK_SECRET is not set)"}
		}
		if err := s.checkCallback(n.CallbackURL); err != nil {
			return nil, &ValidationError{Field: "callbackUrl", Reason: err.Error()}
		}
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new task id: %w", err)
	}
	t := &Task{ID: id, Code: n.Code, Prompt: n.Prompt, Timeout: n.Timeout, Priority: n.Priority,
		Metadata: n.Metadata, Owner: ownerOf(ctx), Status: StatusPending, CreatedAt: now, UpdatedAt: now}
	if n.CallbackURL != "" {
		t.CallbackURL = &n.CallbackURL
	}
	if n.CallbackURL != "" || s.globalWebhook {
		t.Webhook = &WebhookDelivery{State: WebhookWaiting}
	}
	return t, nil
}

// created counts a stored task and queues it.
func (s *Service) created(ctx context.Context, t *Task) *Task {
	if s.onCreated != nil {
		s.onCreated(t)
	}
	if s.enqueuer == nil {
		return t
	}
	queued, err := s.Enqueue(ctx, t)
	if err != nil {
		s.log.WarnContext(ctx, "task accepted, enqueue deferred to relay", "task_id", t.ID, "err", err)
		return t
	}
	return queued
}

// Enqueue adds a pending task to the queue and marks it queued. When the
// task left pending meanwhile (another replica queued it, a worker already
// took it), the enqueue still stands (it is idempotent) and the task is
// returned as stored.
func (s *Service) Enqueue(ctx context.Context, t *Task) (*Task, error) {
	if s.enqueuer == nil {
		return t, nil
	}
	if err := s.enqueuer.Enqueue(ctx, t); err != nil {
		return nil, fmt.Errorf("enqueue task %s: %w", t.ID, err)
	}
	queued, err := s.store.Apply(ctx, MarkQueued(t.ID, s.now()))
	if err == nil {
		return queued, nil
	}
	if isConflict(err) {
		return s.store.Get(ctx, t.ID)
	}
	return nil, fmt.Errorf("mark task %s queued: %w", t.ID, err)
}

// Get returns the task with the id, or ErrNotFound, also when the caller
// of ctx may not see it (see Caller). Every route about one task (get,
// cancel, retry, its events and logs) goes through Get first.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*Task, error) {
	t, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if !Visible(ctx, t) {
		return nil, fmt.Errorf("get task %s: %w", id, ErrNotFound)
	}
	return t, nil
}

// List returns a page of tasks, newest first, after checking the limit
// and the metadata filter; a caller that is not an admin gets only its
// own tasks (q.Owner is set from the caller, whatever it held).
func (s *Service) List(ctx context.Context, q ListQuery) ([]*Task, *Cursor, error) {
	if q.Limit == 0 {
		q.Limit = DefaultListLimit
	}
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return nil, nil, &ValidationError{Field: "limit", Reason: "must be between 1 and 200"}
	}
	if q.Metadata != nil {
		if err := q.Metadata.Validate(); err != nil {
			return nil, nil, err
		}
	}
	q.Owner = nil
	if owner, scoped := ownerScope(ctx); scoped {
		q.Owner = &owner
	}
	return s.store.List(ctx, q)
}

// Stats returns the database-side statistics: of every task, or of the
// caller's own tasks when it is not an admin.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	if owner, scoped := ownerScope(ctx); scoped {
		return s.store.OwnerStats(ctx, owner)
	}
	return s.store.Stats(ctx)
}

// ListOldest returns up to limit tasks in status st, oldest first, for the
// background sweeps (relay, reconciler).
func (s *Service) ListOldest(ctx context.Context, st Status, limit int) ([]*Task, error) {
	return s.store.ListOldest(ctx, st, limit)
}

// Checkpoint returns the value a background loop stored under name ("" when
// none), to resume where it stopped.
func (s *Service) Checkpoint(ctx context.Context, name string) (string, error) {
	return s.store.Checkpoint(ctx, name)
}

// SetCheckpoint stores a background loop's position under name.
func (s *Service) SetCheckpoint(ctx context.Context, name, value string) error {
	return s.store.SetCheckpoint(ctx, name, value)
}

// Ping checks that the database answers.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// PurgeIdempotencyKeys deletes the idempotency keys that expired (older
// than the IdempotencyTTL) and returns how many it deleted.
func (s *Service) PurgeIdempotencyKeys(ctx context.Context) (int64, error) {
	return s.store.PurgeIdempotencyKeys(ctx, s.now().Add(-s.keyTTL))
}

// ListWebhooksDue returns up to limit tasks whose webhook is due, for the
// webhook relay.
func (s *Service) ListWebhooksDue(ctx context.Context, limit int) ([]*Task, error) {
	return s.store.ListWebhooksDue(ctx, limit)
}

// ApplyWebhook applies a webhook change built by one of the MarkWebhook
// and RecordWebhook functions: atomically, only when the stored run and
// webhook state allow it; ErrConflict otherwise.
func (s *Service) ApplyWebhook(ctx context.Context, c WebhookChange) (*Task, error) {
	return s.store.ApplyWebhook(ctx, c)
}

// Apply applies a change built by one of the Mark functions (At defaults
// to now): atomically, only when the stored state allows it (see
// Change.Allows); ErrConflict otherwise, ErrNotFound for an unknown id.
// Data that no store may hold (a result over MaxResultBytes), or that the
// store refuses, gives ErrInvalidData and changes nothing: the caller
// applies MarkUnstorable(c, err) instead.
func (s *Service) Apply(ctx context.Context, c Change) (*Task, error) {
	if c.At.IsZero() {
		c.At = s.now()
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("set task %s %s: %w", c.ID, c.To, err)
	}
	return s.store.Apply(ctx, c)
}
