package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// BenchmarkWorker measures the worker binary end to end: b.N task jobs are
// queued first, then a worker process is started and the clock runs until
// all b.N results are on the results queue (worker start-up included, so
// use a fixed count: -benchtime 2000x). It reports tasks/s and the worker's
// resident memory at the end (VmRSS) and at its peak (VmHWM), with the noop
// executor (no work) and the command executor on /bin/cat (sandboxed, the
// default) and on /bin/true with the agent sandbox off and on
// (WORKER_SANDBOX=off|auto: the sandbox's cost per task), at concurrency
// 1, 8 and 32.
//
//	go test -run '^$' -bench Worker -benchtime 2000x ./cmd/worker/
//	go test -run '^$' -bench 'Worker/command-true' -benchtime 1000x ./cmd/worker/
func BenchmarkWorker(b *testing.B) {
	for _, ex := range []struct{ name, executor, command, sandbox string }{
		{"noop", "noop", "", "auto"},
		{"command-cat", "command", "/bin/cat", "auto"},
		{"command-true/sandbox-off", "command", "/bin/true", "off"},
		{"command-true/sandbox-auto", "command", "/bin/true", "auto"},
	} {
		for _, conc := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%s/c%d", ex.name, conc), func(b *testing.B) {
				benchWorker(b, ex.executor, ex.command, ex.sandbox, conc)
			})
		}
	}
}

func benchWorker(b *testing.B, executorKind, command, sandboxMode string, concurrency int) {
	client := testenv.RedisClient(b)
	queue := testenv.UniqueName(b, "bench")
	tasks, err := bullmq.NewQueue(client, queue, nil)
	if err != nil {
		b.Fatal(err)
	}
	results, err := bullmq.NewQueue(client, queue+"-results", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = tasks.Obliterate(context.Background(), true)
		_ = results.Obliterate(context.Background(), true)
	})
	jobs := make([]bullmq.BulkJob, b.N)
	for i := range jobs {
		id := uuid.NewString()
		jobs[i] = bullmq.BulkJob{Name: taskqueue.JobName, Data: taskqueue.Job{TaskID: id, Code: "x", Prompt: "p", Timeout: 60_000},
			Opts: &bullmq.JobOptions{JobID: id, RemoveOnComplete: bullmq.RemoveAll()}}
	}
	if _, err := tasks.AddBulk(context.Background(), jobs); err != nil {
		b.Fatal(err)
	}

	b.ResetTimer()
	start := time.Now()
	w := startWorker(b, "QUEUE_NAME="+queue, "WORKER_EXECUTOR="+executorKind, "WORKER_COMMAND="+command, "WORKER_SANDBOX="+sandboxMode,
		"WORKER_CONCURRENCY="+strconv.Itoa(concurrency), "LOG_LEVEL=error", "WORKER_LOCK_DURATION=30s", "WORKER_STALLED_INTERVAL=30s")
	deadline := start.Add(5 * time.Minute)
	for {
		n, err := results.Count(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if n >= int64(b.N) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d results after 5 minutes", n, b.N)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tasks/s")
	rss, hwm := procMemory(b, w.cmd.Process.Pid)
	b.ReportMetric(rss, "rss_MiB")
	b.ReportMetric(hwm, "peak_rss_MiB")
}

// procMemory returns VmRSS and VmHWM of pid in MiB.
func procMemory(tb testing.TB, pid int) (rss, hwm float64) {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Logf("read memory of %d: %v", pid, err)
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}
