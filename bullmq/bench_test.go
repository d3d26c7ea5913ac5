package bullmq

import (
	"context"
	"sync"
	"testing"
	"time"
)

// seedOptions are the job options of the orchestrator's seed spec.
func seedOptions() *JobOptions {
	return &JobOptions{Attempts: 3, Backoff: &Backoff{Type: "exponential", Delay: 2 * time.Second},
		RemoveOnComplete: KeepFor(time.Hour, 1000)}
}

func BenchmarkAdd(b *testing.B) {
	ctx := context.Background()
	c := testClient(b)
	q, _ := NewQueue(c, uniqueQueue(b, "bench-add"), nil)
	data := map[string]string{"taskId": "00000000-0000-0000-0000-000000000000", "prompt": "hello"}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Add(ctx, "execute-task", data, seedOptions()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

func BenchmarkAddBulk(b *testing.B) {
	ctx := context.Background()
	c := testClient(b)
	q, _ := NewQueue(c, uniqueQueue(b, "bench-bulk"), nil)
	jobs := make([]BulkJob, 1000)
	for i := range jobs {
		jobs[i] = BulkJob{Name: "execute-task", Data: map[string]int{"i": i}, Opts: seedOptions()}
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := 0; i < b.N; i++ {
		if _, err := q.AddBulk(ctx, jobs); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*len(jobs))/b.Elapsed().Seconds(), "jobs/s")
}

func BenchmarkAddBulkParallel(b *testing.B) {
	ctx := context.Background()
	c := testClient(b)
	q, _ := NewQueue(c, uniqueQueue(b, "bench-bulkp"), nil)
	jobs := make([]BulkJob, 1000)
	for i := range jobs {
		jobs[i] = BulkJob{Name: "execute-task", Data: map[string]int{"i": i}, Opts: seedOptions()}
	}
	b.SetParallelism(2)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.AddBulk(ctx, jobs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*len(jobs))/b.Elapsed().Seconds(), "jobs/s")
}
