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
	store     Store
	enqueuer  Enqueuer
	log       *slog.Logger
	now       func() time.Time
	onCreated func(*Task)
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
}

// NewService returns a Service on store.
func NewService(store Store, opts ServiceOptions) *Service {
	s := &Service{store: store, enqueuer: opts.Enqueuer, log: opts.Logger, now: opts.Now, onCreated: opts.OnCreated}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Create validates n, stores a pending task and, when the service has an
// Enqueuer, queues it and marks it queued. A failure to enqueue is logged,
// not returned: the task is accepted and stays pending for the relay.
func (s *Service) Create(ctx context.Context, n NewTask) (*Task, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new task id: %w", err)
	}
	t := &Task{ID: id, Code: n.Code, Prompt: n.Prompt, Timeout: n.Timeout,
		Status: StatusPending, CreatedAt: now, UpdatedAt: now}
	if err := s.store.Create(ctx, t); err != nil {
		return nil, fmt.Errorf("create task: %w", err)
	}
	if s.onCreated != nil {
		s.onCreated(t)
	}
	if s.enqueuer == nil {
		return t, nil
	}
	if queued, err := s.Enqueue(ctx, t); err != nil {
		s.log.WarnContext(ctx, "task accepted, enqueue deferred to relay", "task_id", t.ID, "err", err)
	} else {
		t = queued
	}
	return t, nil
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

// Get returns the task with the id, or ErrNotFound.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*Task, error) {
	return s.store.Get(ctx, id)
}

// List returns a page of tasks, newest first, after checking the limit.
func (s *Service) List(ctx context.Context, q ListQuery) ([]*Task, *Cursor, error) {
	if q.Limit == 0 {
		q.Limit = DefaultListLimit
	}
	if q.Limit < 1 || q.Limit > MaxListLimit {
		return nil, nil, &ValidationError{Field: "limit", Reason: "must be between 1 and 200"}
	}
	return s.store.List(ctx, q)
}

// Stats returns the database-side statistics.
func (s *Service) Stats(ctx context.Context) (Stats, error) { return s.store.Stats(ctx) }

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
