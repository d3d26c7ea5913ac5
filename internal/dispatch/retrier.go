package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// errStillActive refuses the retry of a task whose last job a worker still
// holds.
var errStillActive = &task.ConflictError{Reason: "the task's previous run is still stopping (its worker holds the job); retry in a moment"}

// PrepareRetry removes the job the last run of t (a failed or cancelled
// task) left in the task queue, so that the retry's job can be added under
// the same id, and returns the attempts the task's jobs made in all: the
// old job's attempt offset plus its attempts started (or made, for jobs of
// workers that do not count starts), at least t.Attempts. A job that is no
// longer in Redis (cleaned) is not an error.
//
// It refuses, with task.ErrConflict, a job that is active (the worker of a
// cancelled task has not stopped yet: retry once it has) and a job with
// another attempt offset than t's current run (a concurrent retry already
// added the new run's job). When Redis cannot be reached it returns an
// error wrapping task.ErrUnavailable, and the task is left as it is.
func (e *Enqueuer) PrepareRetry(ctx context.Context, t *task.Task) (int, error) {
	jobID := t.ID.String()
	job, err := e.queue.GetJob(ctx, jobID)
	if errors.Is(err, bullmq.ErrJobNotFound) {
		return t.Attempts, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read job %s: %w: %w", jobID, task.ErrUnavailable, err)
	}
	offset := taskqueue.ParseAttemptOffset(job.Data)
	if offset != t.AttemptOffset {
		return 0, fmt.Errorf("job %s (attempt offset %d, task's %d): %w", jobID, offset, t.AttemptOffset,
			&task.ConflictError{Reason: "the task was retried meanwhile; read it again"})
	}
	state, err := e.queue.GetJobState(ctx, jobID)
	if err != nil {
		return 0, fmt.Errorf("read state of job %s: %w: %w", jobID, task.ErrUnavailable, err)
	}
	if state == bullmq.StateActive {
		return 0, fmt.Errorf("job %s: %w", jobID, errStillActive)
	}
	switch err := e.queue.Remove(ctx, jobID); {
	case err == nil, errors.Is(err, bullmq.ErrJobNotFound):
	case errors.Is(err, bullmq.ErrJobLocked):
		return 0, fmt.Errorf("job %s: %w", jobID, errStillActive)
	default:
		return 0, fmt.Errorf("remove job %s: %w: %w", jobID, task.ErrUnavailable, err)
	}
	return max(t.Attempts, offset+max(job.AttemptsMade, job.AttemptsStarted)), nil
}
