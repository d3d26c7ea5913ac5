package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/redisconn"
	"github.com/agentorch/orchestrator/internal/store/postgres"
	"github.com/agentorch/orchestrator/internal/store/sqlite"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// env is one isolated dispatch setup: unique queues on the shared Redis
// and a fresh store.
type env struct {
	t        testing.TB
	ctx      context.Context
	client   redis.UniversalClient
	names    taskqueue.Names
	tasks    *bullmq.Queue
	results  *bullmq.Queue
	store    task.Store
	enqueuer *dispatch.Enqueuer
	svc      *task.Service
	log      *slog.Logger
}

func testLogger() *slog.Logger {
	if os.Getenv("TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// openStore opens a fresh store of the given kind ("sqlite" or "postgres").
func openStore(t testing.TB, kind string) task.Store {
	t.Helper()
	ctx := context.Background()
	var (
		s   task.Store
		err error
	)
	switch kind {
	case "postgres":
		s, err = postgres.Open(ctx, testenv.PostgresURL(t), testLogger())
	default:
		s, err = sqlite.Open(ctx, testenv.SQLitePath(t), testLogger())
	}
	if err != nil {
		t.Fatalf("open %s store: %v", kind, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newEnv(t testing.TB, kind string, eo dispatch.EnqueuerOptions) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	client, err := redisconn.New(redisconn.Config{URL: testenv.RedisURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	names := taskqueue.Names{Prefix: "bull", Queue: testenv.UniqueName(t, "dispatch")}
	e := &env{t: t, ctx: ctx, client: client, names: names, store: openStore(t, kind), log: testLogger()}
	if e.tasks, err = bullmq.NewQueue(client, names.Tasks(), &bullmq.QueueOptions{Prefix: names.Prefix}); err != nil {
		t.Fatal(err)
	}
	if e.results, err = bullmq.NewQueue(client, names.Results(), &bullmq.QueueOptions{Prefix: names.Prefix}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		octx, ocancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ocancel()
		_ = e.tasks.Obliterate(octx, true)
		_ = e.results.Obliterate(octx, true)
	})
	if e.enqueuer, err = dispatch.NewEnqueuer(e.tasks, client, names, eo); err != nil {
		t.Fatal(err)
	}
	e.svc = task.NewService(e.store, task.ServiceOptions{Enqueuer: e.enqueuer, Logger: e.log})
	return e
}

// create makes n tasks through the service.
func (e *env) create(n int) []*task.Task {
	e.t.Helper()
	out := make([]*task.Task, 0, n)
	for i := 0; i < n; i++ {
		tk, err := e.svc.Create(e.ctx, task.NewTask{Code: "print(1)", Prompt: "say hi", Timeout: 5000})
		if err != nil {
			e.t.Fatalf("create task: %v", err)
		}
		out = append(out, tk)
	}
	return out
}

// get reads a task.
func (e *env) get(id uuid.UUID) *task.Task {
	e.t.Helper()
	tk, err := e.store.Get(e.ctx, id)
	if err != nil {
		e.t.Fatalf("get task %s: %v", id, err)
	}
	return tk
}

// waitTask polls the task until ok accepts it or the deadline passes.
func (e *env) waitTask(id uuid.UUID, what string, ok func(*task.Task) bool) *task.Task {
	e.t.Helper()
	var tk *task.Task
	testenv.Eventually(e.t, 20*time.Second, fmt.Sprintf("task %s to become %s", id, what), func() error {
		if tk = e.get(id); !ok(tk) {
			return fmt.Errorf("last: %s", describe(tk))
		}
		return nil
	})
	return tk
}

func (e *env) waitStatus(id uuid.UUID, s task.Status) *task.Task {
	e.t.Helper()
	return e.waitTask(id, string(s), func(tk *task.Task) bool { return tk.Status == s })
}

func describe(tk *task.Task) string {
	b, _ := json.Marshal(tk)
	return string(b)
}

// run starts loop.Run in a goroutine and stops it (and waits) at cleanup.
func (e *env) run(name string, loop interface{ Run(context.Context) error }) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := loop.Run(ctx); err != nil {
			e.t.Errorf("%s: Run: %v", name, err)
		}
	}()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
}

// worker starts a Go bullmq worker on the task queue with the processor.
func (e *env) worker(name string, concurrency int, p bullmq.Processor) {
	e.t.Helper()
	w, err := bullmq.NewWorker(e.client, e.names.Tasks(), p, &bullmq.WorkerOptions{
		Prefix: e.names.Prefix, Name: name, Concurrency: concurrency, Logger: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	e.run("worker "+name, w)
}

// postResult adds a result job, as a worker does.
func (e *env) postResult(data any) {
	e.t.Helper()
	if _, err := e.results.Add(e.ctx, "result", data, &bullmq.JobOptions{Attempts: 3}); err != nil {
		e.t.Fatalf("add result: %v", err)
	}
}

// listener starts an events listener.
func (e *env) listener() *dispatch.EventsListener {
	e.t.Helper()
	l, err := dispatch.NewEventsListener(e.client, e.tasks, e.svc, e.names,
		dispatch.EventsOptions{Logger: e.log, CheckpointEvery: 50 * time.Millisecond, BlockTimeout: time.Second})
	if err != nil {
		e.t.Fatal(err)
	}
	e.run("events listener", l)
	return l
}

// consumer starts a result consumer.
func (e *env) consumer(o dispatch.ResultsOptions) {
	e.t.Helper()
	if o.Logger == nil {
		o.Logger = e.log
	}
	c, err := dispatch.NewResultConsumer(e.client, e.svc, e.names, o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.run("result consumer", c)
}

// jobData decodes a task job's payload.
func jobData(t testing.TB, job *bullmq.Job) taskqueue.Job {
	t.Helper()
	var d taskqueue.Job
	if err := json.Unmarshal(job.Data, &d); err != nil {
		t.Fatalf("job %s data %s: %v", job.ID, job.Data, err)
	}
	return d
}

// resultOf returns the result payload a worker posts for a job.
func resultOf(t testing.TB, job *bullmq.Job, worker string, status taskqueue.ResultStatus, result any, msg string) taskqueue.Result {
	t.Helper()
	raw, _ := json.Marshal(result)
	ms := int64(42)
	r := taskqueue.Result{TaskID: jobData(t, job).TaskID, WorkerID: worker, Status: status, Result: raw, ExecutionTime: &ms}
	if msg != "" {
		r.ErrorMessage = &msg
	}
	return r
}

var storeKinds = []string{"sqlite", "postgres"}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sameJSON reports whether got holds the same JSON value as want.
func sameJSON(got json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func ptr[T any](v T) *T { return &v }
