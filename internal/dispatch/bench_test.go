package dispatch_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// BenchmarkResultConsumer measures how fast posted results are applied
// (PostgreSQL store, results already waiting on the queue). The database
// dominates: with a store that does nothing the same consumer applies
// about 2,400 results/s on a busy 2-core machine.
//
//	go test -run '^$' -bench ResultConsumer -benchtime 3000x ./internal/dispatch
func BenchmarkResultConsumer(b *testing.B) {
	for _, conc := range []int{16, 64} {
		b.Run(fmt.Sprintf("concurrency%d", conc), func(b *testing.B) {
			e := newEnv(b, "postgres", dispatch.EnqueuerOptions{})
			offline := task.NewService(e.store, task.ServiceOptions{})
			jobs := make([]bullmq.BulkJob, 0, b.N)
			taken := e.client.Pipeline()
			for i := 0; i < b.N; i++ {
				tk, err := offline.Create(e.ctx, task.NewTask{Code: "c", Prompt: "p"})
				if err != nil {
					b.Fatal(err)
				}
				// The task job as a worker named w holds it, so that the
				// result verifies (one HMGET per result, as in production).
				taken.HSet(e.ctx, "bull:"+e.names.Tasks()+":"+tk.ID.String(), "timestamp", "1", "pb", "w", "ats", "1")
				jobs = append(jobs, bullmq.BulkJob{Name: "result", Data: taskqueue.Result{TaskID: tk.ID.String(), WorkerID: "w", Status: "completed"}})
			}
			if _, err := taken.Exec(e.ctx); err != nil {
				b.Fatal(err)
			}
			if _, err := e.results.AddBulk(e.ctx, jobs); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			e.consumer(dispatch.ResultsOptions{Concurrency: conc})
			for {
				st, err := e.store.Stats(e.ctx)
				if err != nil {
					b.Fatal(err)
				}
				if st.Completed == int64(b.N) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "results/s")
		})
	}
}
