package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
)

// CancelJob stops the job of a cancelled task: a job that no worker holds
// is removed from the queue; a job a worker holds (the remove is refused
// because it is locked) gets a cancel request, the task id published on
// the cancel channel, which workers act on. A job that no longer exists is
// not an error.
func (e *Enqueuer) CancelJob(ctx context.Context, id uuid.UUID) error {
	jobID := id.String()
	err := e.queue.Remove(ctx, jobID)
	switch {
	case err == nil, errors.Is(err, bullmq.ErrJobNotFound):
		return nil
	case errors.Is(err, bullmq.ErrJobLocked):
		if err := e.pub.Publish(ctx, e.channel, jobID).Err(); err != nil {
			return fmt.Errorf("publish cancel of job %s on %s: %w", jobID, e.channel, err)
		}
		return nil
	default:
		return fmt.Errorf("remove job %s: %w", jobID, err)
	}
}
