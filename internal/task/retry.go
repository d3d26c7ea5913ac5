package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// ErrUnavailable: the queue could not be reached for an operation that
// needs it now (e.g. removing the old job of a retried task); nothing was
// changed and the client may try again.
var ErrUnavailable = errors.New("task queue unavailable")

// JobRetrier checks the queue before a retry. When the Enqueuer given to
// a Service also implements JobRetrier, Retry uses it. The Enqueuer then
// replaces the old run's job when it adds the new one (same id, the task
// id): after the task is marked retried, so that late events and results
// of the old run are recognized as stale.
type JobRetrier interface {
	// PrepareRetry checks the job left in the queue by the run of t (a
	// failed or cancelled task) and returns the number of attempts the
	// task's jobs made in all (the old job's offset plus its attempts
	// started; t.Attempts when no job is left). It fails with ErrConflict
	// when the old job is still active (the worker of a cancelled task has
	// not stopped yet) or belongs to a newer run (a concurrent retry), and
	// with an error wrapping ErrUnavailable when the queue cannot be
	// reached.
	PrepareRetry(ctx context.Context, t *Task) (attempts int, err error)
}

// Retry starts a new run of a failed or cancelled task: same id, its
// attempts keep counting, its history (attempts, last error, retries) is
// kept. The job the old run left in the queue is checked first (see
// JobRetrier); then the task becomes pending (MarkRetried) and, when the
// Service has an Enqueuer, its new job replaces the old one and the task
// is returned queued (pending, for the relay, when the add fails).
//
// Errors: ErrNotFound for an unknown task or one the caller may not see;
// ErrConflict when the task is pending, queued, running or completed, when
// the old run's job is still active, or when another retry won the race;
// ErrUnavailable when the old job cannot be checked because the queue is
// unreachable (nothing changed).
func (s *Service) Retry(ctx context.Context, id uuid.UUID) (*Task, error) {
	t, err := s.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("retry task %s: %w", id, err)
	}
	if t.Status != StatusFailed && t.Status != StatusCancelled {
		return nil, fmt.Errorf("retry task %s: %w", id,
			&ConflictError{Reason: fmt.Sprintf("the task is %s; only a failed or cancelled task can be retried", t.Status)})
	}
	attempts := t.Attempts
	if r, ok := s.enqueuer.(JobRetrier); ok {
		n, err := r.PrepareRetry(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("retry task %s: %w", id, err)
		}
		attempts = max(attempts, n)
	}
	rt, err := s.store.Apply(ctx, MarkRetried(id, attempts, s.now()))
	if errors.Is(err, ErrConflict) {
		err = &ConflictError{Reason: "the task changed meanwhile (another retry?); read it and try again"}
	}
	if err != nil {
		return nil, fmt.Errorf("retry task %s: %w", id, err)
	}
	if s.enqueuer == nil {
		return rt, nil
	}
	queued, err := s.Enqueue(ctx, rt)
	if err != nil {
		s.log.WarnContext(ctx, "task retried, enqueue deferred to relay", "task_id", id, "err", err)
		return rt, nil
	}
	return queued, nil
}
