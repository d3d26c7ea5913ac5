package dispatch

import (
	"context"
	"errors"
	"fmt"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// ErrOldRunActive: the job of a retried task's previous run is still held
// by a worker, so the new run's job cannot be added yet (it has the same
// id). The task stays pending and the relay tries again.
var ErrOldRunActive = errors.New("the job of the task's previous run is still active")

// errStillActive refuses the retry of a task whose last job a worker still
// holds.
var errStillActive = &task.ConflictError{Reason: "the task's previous run is still stopping (its worker holds the job); retry in a moment"}

// PrepareRetry checks the job the last run of t (a failed or cancelled
// task) left in the task queue and returns the attempts the task's jobs
// made in all: the old job's attempt offset plus its attempts started (or
// made, for jobs of workers that do not count starts), at least
// t.Attempts; t.Attempts when no job is left (cleaned). It removes
// nothing: the old job is removed when the new run's job is added
// (Enqueue), after the task was marked retried, so that an event or
// result of the old run that arrives meanwhile is recognized as stale.
//
// It refuses, with task.ErrConflict, a job that is active (the worker of a
// cancelled task has not stopped yet: retry once it has) and a job with
// another attempt offset than t's current run (a concurrent retry already
// added the new run's job). When Redis cannot be reached it returns an
// error wrapping task.ErrUnavailable.
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
	return max(t.Attempts, offset+max(job.AttemptsMade, job.AttemptsStarted)), nil
}

// clearOldRun removes, before the job of a retried task t is added, the
// job an earlier run left under the same id (one whose attempt offset is
// not t's), so that the add is not taken for a duplicate. A job of the
// current run (same offset: added already, or an old job that never ran,
// which is as good) is left. An old job a worker holds gives
// ErrOldRunActive.
func (e *Enqueuer) clearOldRun(ctx context.Context, t *task.Task) error {
	jobID := t.ID.String()
	job, err := e.queue.GetJob(ctx, jobID)
	if errors.Is(err, bullmq.ErrJobNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read job %s: %w", jobID, err)
	}
	if taskqueue.ParseAttemptOffset(job.Data) == t.AttemptOffset {
		return nil
	}
	switch err := e.queue.Remove(ctx, jobID); {
	case err == nil, errors.Is(err, bullmq.ErrJobNotFound):
		return nil
	case errors.Is(err, bullmq.ErrJobLocked):
		return fmt.Errorf("job %s: %w", jobID, ErrOldRunActive)
	default:
		return fmt.Errorf("remove job %s of an earlier run: %w", jobID, err)
	}
}
