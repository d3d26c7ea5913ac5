package workerapp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// funcExecutor is an executor made of a function; it counts its runs.
type funcExecutor struct {
	fn   func(ctx context.Context, in executor.Input) (executor.Output, error)
	runs atomic.Int64
}

func (f *funcExecutor) Run(ctx context.Context, in executor.Input) (executor.Output, error) {
	f.runs.Add(1)
	return f.fn(ctx, in)
}

// testConfig returns a config on a queue of its own with fast lock and
// stalled timings.
func testConfig(t *testing.T) *Config {
	t.Helper()
	queue := testenv.TaskQueue(t, "tasks")
	return &Config{
		Executor:        "command",
		WorkerID:        testenv.UniqueName(t, "test-worker"),
		Concurrency:     2,
		DefaultTimeout:  10 * time.Second,
		ShutdownTimeout: 5 * time.Second,
		LockDuration:    time.Second,
		StalledInterval: 500 * time.Millisecond,
		Names:           taskqueue.Names{Prefix: "bull", Queue: queue},
	}
}

// testLogger logs to the test when -v is given, else nowhere.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// startApp runs an App until the test ends and returns it, with a function
// that stops it and waits for Run to return.
func startApp(t *testing.T, client redis.UniversalClient, cfg *Config, exec executor.Executor) (*App, func() error) {
	t.Helper()
	app, err := New(Options{Config: cfg, Client: client, Executor: exec, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	var stopped atomic.Bool
	stop := func() error {
		cancel()
		if stopped.Swap(true) {
			return nil
		}
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Error("app did not stop within 30s")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case <-app.Subscribed():
	case <-time.After(10 * time.Second):
		t.Fatal("app did not subscribe to the cancel channel")
	}
	return app, stop
}

func newQueue(t *testing.T, client redis.UniversalClient, name string) *bullmq.Queue {
	t.Helper()
	q, err := bullmq.NewQueue(client, name, &bullmq.QueueOptions{Prefix: "bull"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = q.Obliterate(context.Background(), true)
		_ = q.Close()
	})
	return q
}

// addTask adds a task job the way the orchestrator does and returns its id.
func addTask(t *testing.T, q *bullmq.Queue, prompt string, opts *bullmq.JobOptions) string {
	t.Helper()
	id := uuid.NewString()
	if opts == nil {
		opts = &bullmq.JobOptions{}
	}
	opts.JobID = id
	_, err := q.Add(context.Background(), taskqueue.JobName, taskqueue.Job{TaskID: id, Code: "print(1)\n", Prompt: prompt, Timeout: 10_000}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitResult waits for the result job id on the results queue and decodes it.
func waitResult(t *testing.T, results *bullmq.Queue, id string, within time.Duration) (taskqueue.Result, map[string]json.RawMessage) {
	t.Helper()
	var job *bullmq.Job
	testenv.WaitFor(t, within, "result job "+id, func() bool {
		j, err := results.GetJob(context.Background(), id)
		if errors.Is(err, bullmq.ErrJobNotFound) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		job = j
		return true
	})
	if job.Name != taskqueue.ResultJobName {
		t.Errorf("result job name = %q", job.Name)
	}
	var res taskqueue.Result
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(job.Data, &res); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(job.Data, &raw); err != nil {
		t.Fatal(err)
	}
	return res, raw
}

func jobState(t *testing.T, q *bullmq.Queue, id string) bullmq.JobState {
	t.Helper()
	s, err := q.GetJobState(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func resultCount(t *testing.T, results *bullmq.Queue) int64 {
	t.Helper()
	n, err := results.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}
