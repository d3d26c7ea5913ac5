package dispatch

import (
	"context"
	"fmt"

	"github.com/agentorch/orchestrator/bullmq"
)

// QueueCounts are the job counts of the task queue by state.
type QueueCounts struct {
	Waiting     int64 `json:"waiting"`
	Active      int64 `json:"active"`
	Completed   int64 `json:"completed"`
	Failed      int64 `json:"failed"`
	Delayed     int64 `json:"delayed"`
	Prioritized int64 `json:"prioritized"`
	Paused      int64 `json:"paused"`
}

// countedStates are the states QueueCounts reports, in its field order.
var countedStates = []bullmq.JobState{"waiting", "active", "completed", "failed", "delayed", "prioritized", "paused"}

// QueueStats reads job counts of a queue. It is safe for concurrent use.
type QueueStats struct {
	queue *bullmq.Queue
}

// NewQueueStats returns the statistics reader of queue.
func NewQueueStats(queue *bullmq.Queue) *QueueStats { return &QueueStats{queue: queue} }

// QueueCounts returns the job counts by state; an error when Redis fails.
func (s *QueueStats) QueueCounts(ctx context.Context) (QueueCounts, error) {
	m, err := s.queue.GetJobCounts(ctx, countedStates...)
	if err != nil {
		return QueueCounts{}, fmt.Errorf("count jobs of %s: %w", s.queue.Name(), err)
	}
	return QueueCounts{Waiting: m["waiting"], Active: m["active"], Completed: m["completed"], Failed: m["failed"],
		Delayed: m["delayed"], Prioritized: m["prioritized"], Paused: m["paused"]}, nil
}
