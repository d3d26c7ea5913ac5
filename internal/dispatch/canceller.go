package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// CancelJob stops the job of a cancelled task: a job that no worker holds
// is removed from the queue; a job a worker holds (the remove is refused
// because it is locked) gets a cancel request: the task id is recorded in
// the cancel requests set (taskqueue.Names.CancelRequests, trimmed to the
// requests of the last taskqueue.CancelRequestTTL), then published on the
// cancel channel. A worker stops the task only when the published id is in
// the set, so that only the orchestrator can cancel a running task. A job
// that no longer exists is not an error.
func (e *Enqueuer) CancelJob(ctx context.Context, id uuid.UUID) error {
	jobID := id.String()
	err := e.queue.Remove(ctx, jobID)
	switch {
	case err == nil, errors.Is(err, bullmq.ErrJobNotFound):
		return nil
	case errors.Is(err, bullmq.ErrJobLocked):
		now := e.now()
		key, channel := e.names.CancelRequests(), e.names.CancelChannel()
		if err := e.pub.ZAdd(ctx, key, redis.Z{Score: float64(now.UnixMilli()), Member: jobID}).Err(); err != nil {
			return fmt.Errorf("record cancel of job %s in %s: %w", jobID, key, err)
		}
		old := strconv.FormatInt(now.Add(-taskqueue.CancelRequestTTL).UnixMilli(), 10)
		if err := e.pub.ZRemRangeByScore(ctx, key, "-inf", "("+old).Err(); err != nil {
			return fmt.Errorf("trim %s: %w", key, err)
		}
		if err := e.pub.Publish(ctx, channel, jobID).Err(); err != nil {
			return fmt.Errorf("publish cancel of job %s on %s: %w", jobID, channel, err)
		}
		return nil
	default:
		return fmt.Errorf("remove job %s: %w", jobID, err)
	}
}
