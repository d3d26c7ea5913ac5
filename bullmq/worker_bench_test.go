package bullmq

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWorker measures no-op job processing (jobs/s) at several
// concurrencies; jobs are added before the timer starts.
func BenchmarkWorker(b *testing.B) {
	for _, conc := range []int{1, 50} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			e := newWorkerEnv(b, "w-bench")
			bulk := make([]BulkJob, 0, 500)
			for i := 0; i < b.N; i++ {
				bulk = append(bulk, BulkJob{Name: "n", Data: i, Opts: &JobOptions{RemoveOnComplete: KeepLast(1000)}})
				if len(bulk) == cap(bulk) || i == b.N-1 {
					if _, err := e.q.AddBulk(context.Background(), bulk); err != nil {
						b.Fatal(err)
					}
					bulk = bulk[:0]
				}
			}
			var done atomic.Int64
			finished := make(chan struct{})
			redisCPU0 := redisCPU(b, e)
			calls0, evalUs0 := redisCalls(b, e)
			var ru0 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.ResetTimer()
			start := time.Now()
			w, err := NewWorker(e.client, e.name, func(ctx context.Context, j *Job) (any, error) { return nil, nil },
				&WorkerOptions{Concurrency: conc, Logger: quietLogger(b), OnCompleted: func(*Job, json.RawMessage) {
					if done.Add(1) == int64(b.N) {
						close(finished)
					}
				}})
			if err != nil {
				b.Fatal(err)
			}
			go func() { _ = w.Run(context.Background()) }()
			<-finished
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
			var ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			goCPU := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
			b.ReportMetric(float64(goCPU.Microseconds())/float64(b.N), "go-cpu-us/job")
			b.ReportMetric((redisCPU(b, e)-redisCPU0)*1e6/float64(b.N), "redis-cpu-us/job")
			calls1, evalUs1 := redisCalls(b, e)
			b.ReportMetric(float64(calls1-calls0)/float64(b.N), "redis-cmds/job")
			b.ReportMetric(float64(evalUs1-evalUs0)/float64(b.N), "evalsha-us/job")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = w.Close(ctx)
		})
	}
}

// redisCalls returns the server's total command calls (script calls and the
// commands they run) and the microseconds spent in EVALSHA, from INFO
// commandstats. Figures are server-wide: use a private server for exact ones.
func redisCalls(b *testing.B, e *workerEnv) (calls, evalUs int64) {
	info, err := e.client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") || name == "cmdstat_info" {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch {
			case k == "calls" && name != "cmdstat_evalsha":
				calls += n
			case k == "usec" && name == "cmdstat_evalsha":
				evalUs += n
			}
		}
	}
	return calls, evalUs
}

// redisCPU returns the Redis server's used CPU seconds (user + sys).
func redisCPU(b *testing.B, e *workerEnv) float64 {
	info, err := e.client.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}
