package dispatch

import (
	"context"
	"fmt"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/task"
)

// countedStates are the states task.QueueCounts reports, in its field order.
var countedStates = []bullmq.JobState{bullmq.StateWaiting, bullmq.StateActive, bullmq.StateCompleted,
	bullmq.StateFailed, bullmq.StateDelayed, bullmq.StatePrioritized, bullmq.StatePaused}

// QueueStats reads job counts of a queue. It is safe for concurrent use.
type QueueStats struct {
	queue *bullmq.Queue
}

// NewQueueStats returns the statistics reader of queue.
func NewQueueStats(queue *bullmq.Queue) *QueueStats { return &QueueStats{queue: queue} }

// QueueCounts returns the job counts by state; an error when Redis fails.
func (s *QueueStats) QueueCounts(ctx context.Context) (task.QueueCounts, error) {
	m, err := s.queue.GetJobCounts(ctx, countedStates...)
	if err != nil {
		return task.QueueCounts{}, fmt.Errorf("count jobs of %s: %w", s.queue.Name(), err)
	}
	return task.QueueCounts{Waiting: m[bullmq.StateWaiting], Active: m[bullmq.StateActive],
		Completed: m[bullmq.StateCompleted], Failed: m[bullmq.StateFailed], Delayed: m[bullmq.StateDelayed],
		Prioritized: m[bullmq.StatePrioritized], Paused: m[bullmq.StatePaused]}, nil
}
