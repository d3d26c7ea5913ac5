package task

import (
	"context"
	"fmt"

	"github.com/google/uuid"
)

// JobCanceller stops the queue job of a cancelled task. When the Enqueuer
// given to a Service also implements JobCanceller, Cancel uses it.
type JobCanceller interface {
	// CancelJob removes the task's job from the queue when no worker holds
	// it, and otherwise asks the worker holding it to stop. A job that does
	// not exist is not an error.
	CancelJob(ctx context.Context, id uuid.UUID) error
}

// Cancel marks the live task cancelled and then stops its job (see
// JobCanceller). A terminal task is refused with ErrConflict, an unknown
// id (or a task the caller of ctx may not see) with ErrNotFound. The
// database decides: once the task is marked, a failure to reach the queue
// is logged, not returned; a result the worker still posts is recorded
// without changing the status.
func (s *Service) Cancel(ctx context.Context, id uuid.UUID) (*Task, error) {
	if _, scoped := ownerScope(ctx); scoped {
		if _, err := s.Get(ctx, id); err != nil {
			return nil, fmt.Errorf("cancel task %s: %w", id, err)
		}
	}
	t, err := s.store.Apply(ctx, MarkCancelled(id, s.now()))
	if err != nil {
		return nil, fmt.Errorf("cancel task %s: %w", id, err)
	}
	if jc, ok := s.enqueuer.(JobCanceller); ok {
		if err := jc.CancelJob(ctx, id); err != nil {
			s.log.WarnContext(ctx, "task cancelled, but its job could not be stopped", "task_id", id, "err", err)
		}
	}
	return t, nil
}
