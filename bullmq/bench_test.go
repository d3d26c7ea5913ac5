package bullmq

import (
	"context"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// seedOptions are the job options of the orchestrator's seed spec.
func seedOptions() *JobOptions {
	return &JobOptions{Attempts: 3, Backoff: &Backoff{Type: "exponential", Delay: 2 * time.Second},
		RemoveOnComplete: KeepFor(time.Hour, 1000)}
}

// BenchmarkAdd adds jobs one by one with 100 adds in flight (50 goroutines
// per CPU on this 2-core target), as cmd/bullmq-bench does.
func BenchmarkAdd(b *testing.B) {
	ctx := context.Background()
	c := bullmqtest.RedisClient(b)
	q, _ := NewQueue(c, bullmqtest.QueueName(b, "bench-add"), nil)
	data := map[string]string{"taskId": "00000000-0000-0000-0000-000000000000", "prompt": "hello"}
	opts := seedOptions()
	b.SetParallelism(50)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := q.Add(ctx, "execute-task", data, opts); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkAddSequential adds jobs one at a time (latency bound).
func BenchmarkAddSequential(b *testing.B) {
	ctx := context.Background()
	c := bullmqtest.RedisClient(b)
	q, _ := NewQueue(c, bullmqtest.QueueName(b, "bench-add1"), nil)
	data := map[string]string{"taskId": "00000000-0000-0000-0000-000000000000", "prompt": "hello"}
	opts := seedOptions()
	b.ResetTimer()
	for range b.N {
		if _, err := q.Add(ctx, "execute-task", data, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkAddBulk adds batches of 1000 jobs, one AddBulk after another.
func BenchmarkAddBulk(b *testing.B) {
	ctx := context.Background()
	c := bullmqtest.RedisClient(b)
	q, _ := NewQueue(c, bullmqtest.QueueName(b, "bench-bulk"), nil)
	opts := seedOptions()
	jobs := make([]BulkJob, 1000)
	for i := range jobs {
		jobs[i] = BulkJob{Name: "execute-task", Data: map[string]int{"i": i}, Opts: opts}
	}
	b.ResetTimer()
	for range b.N {
		if _, err := q.AddBulk(ctx, jobs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(jobs))/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkAddBulkParallel runs two AddBulk callers at once.
func BenchmarkAddBulkParallel(b *testing.B) {
	ctx := context.Background()
	c := bullmqtest.RedisClient(b)
	q, _ := NewQueue(c, bullmqtest.QueueName(b, "bench-bulkp"), nil)
	opts := seedOptions()
	jobs := make([]BulkJob, 1000)
	for i := range jobs {
		jobs[i] = BulkJob{Name: "execute-task", Data: map[string]int{"i": i}, Opts: opts}
	}
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
