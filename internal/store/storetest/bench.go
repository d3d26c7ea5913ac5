package storetest

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/task"
)

// BenchCreate measures concurrent task inserts on s with about 50
// goroutines, as 50 HTTP clients would make them. With markQueued, each
// insert is followed by the MarkQueued change, which is what POST /tasks
// does to the store once the job is queued. It reports creates/s.
func BenchCreate(b *testing.B, s task.Store, markQueued bool) {
	b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
	var n atomic.Int64
	now := time.Now().UTC().Truncate(time.Microsecond)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			at := now.Add(time.Duration(n.Add(1)) * time.Microsecond)
			t := &task.Task{ID: uuid.Must(uuid.NewV7()), Code: "print(1)", Prompt: "run it",
				Timeout: task.DefaultTimeoutMs, Status: task.StatusPending, CreatedAt: at, UpdatedAt: at}
			if err := s.Create(b.Context(), t); err != nil {
				b.Error(err)
				return
			}
			if !markQueued {
				continue
			}
			if _, err := s.Apply(b.Context(), task.MarkQueued(t.ID, at)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
