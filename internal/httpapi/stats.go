package httpapi

import (
	"context"

	"github.com/agentorch/orchestrator/internal/task"
)

// QueueStatser reports the task queue's job counts. Implementations must
// be safe for concurrent use.
type QueueStatser interface {
	QueueCounts(ctx context.Context) (task.QueueCounts, error)
}

// QueueStatsFunc adapts a function to QueueStatser.
type QueueStatsFunc func(ctx context.Context) (task.QueueCounts, error)

// QueueCounts calls f.
func (f QueueStatsFunc) QueueCounts(ctx context.Context) (task.QueueCounts, error) { return f(ctx) }

// QueueStatus is the "queue" part of GET /tasks/stats: the counts when the
// queue answers, or available false and the reason when it does not.
type QueueStatus struct {
	Available bool   `json:"available" doc:"False when the queue could not be read; the counts are then zero."`
	Error     string `json:"error,omitempty" doc:"Why the queue could not be read."`
	task.QueueCounts
}

// TaskStats is the response of GET /tasks/stats.
type TaskStats struct {
	Database task.Stats   `json:"database" doc:"Task counts by status, from the database."`
	Queue    *QueueStatus `json:"queue,omitempty" doc:"Job counts of the work queue, when a queue is configured."`
}

type statsOutput struct {
	Body TaskStats
}

func (s *Server) stats(ctx context.Context, _ *struct{}) (*statsOutput, error) {
	st, err := s.svc.Stats(ctx)
	if err != nil {
		return nil, s.fail(ctx, "task stats", err, "query")
	}
	out := &statsOutput{Body: TaskStats{Database: st}}
	if s.queueStats != nil {
		qc, err := s.queueStats.QueueCounts(ctx)
		if err != nil {
			s.log.WarnContext(ctx, "queue stats failed", "err", err, "request_id", RequestID(ctx))
			out.Body.Queue = &QueueStatus{Error: "queue unreachable"}
		} else {
			out.Body.Queue = &QueueStatus{Available: true, QueueCounts: qc}
		}
	}
	return out, nil
}
