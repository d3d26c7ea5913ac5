package bullmq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// workerEnv is one test's queue, its client and a Queue to add jobs with.
type workerEnv struct {
	tb     testing.TB
	client redis.UniversalClient
	name   string
	q      *Queue
	k      *keys
}

func newWorkerEnv(tb testing.TB, base string) *workerEnv {
	tb.Helper()
	c := bullmqtest.RedisClient(tb)
	name := bullmqtest.QueueName(tb, base)
	q, err := NewQueue(c, name, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return &workerEnv{tb: tb, client: c, name: name, q: q, k: newKeys("", name)}
}

// quietLogger discards worker logs unless -v is given.
func quietLogger(tb testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// add adds a job and fails the test on error.
func (e *workerEnv) add(name string, data any, opts *JobOptions) *Job {
	e.tb.Helper()
	j, err := e.q.Add(context.Background(), name, data, opts)
	if err != nil {
		e.tb.Fatalf("add job: %v", err)
	}
	return j
}

// startWorker runs a worker with short test timings; it is closed at cleanup.
func (e *workerEnv) startWorker(proc Processor, opts *WorkerOptions) *Worker {
	e.tb.Helper()
	var o WorkerOptions
	if opts != nil {
		o = *opts
	}
	if o.LockDuration == 0 {
		o.LockDuration = 2 * time.Second
	}
	if o.StalledInterval == 0 {
		o.StalledInterval = 5 * time.Second
	}
	if o.DrainDelay == 0 {
		o.DrainDelay = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = quietLogger(e.tb)
	}
	w, err := NewWorker(e.client, e.name, proc, &o)
	if err != nil {
		e.tb.Fatalf("new worker: %v", err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(context.Background()) }()
	e.tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			e.tb.Errorf("close worker: %v", err)
		}
		if err := <-runErr; err != nil {
			e.tb.Errorf("worker run: %v", err)
		}
	})
	return w
}

// state returns the job's state.
func (e *workerEnv) state(id string) JobState {
	e.tb.Helper()
	s, err := e.q.GetJobState(context.Background(), id)
	if err != nil {
		e.tb.Fatalf("job state %s: %v", id, err)
	}
	return s
}

// waitState waits until job id is in state want.
func (e *workerEnv) waitState(id string, want JobState, timeout time.Duration) {
	e.tb.Helper()
	bullmqtest.WaitFor(e.tb, timeout, fmt.Sprintf("job %s %s", id, want), func() bool { return e.state(id) == want })
}

// job reads job id.
func (e *workerEnv) job(id string) *Job {
	e.tb.Helper()
	j, err := e.q.GetJob(context.Background(), id)
	if err != nil {
		e.tb.Fatalf("get job %s: %v", id, err)
	}
	return j
}

// events returns the events stream as a list of field maps, oldest first.
func (e *workerEnv) events() []map[string]string {
	e.tb.Helper()
	msgs, err := e.client.XRange(context.Background(), e.k.events, "-", "+").Result()
	if err != nil {
		e.tb.Fatalf("read events: %v", err)
	}
	out := make([]map[string]string, 0, len(msgs))
	for _, m := range msgs {
		f := make(map[string]string, len(m.Values))
		for k, v := range m.Values {
			f[k] = fmt.Sprint(v)
		}
		f["_id"] = m.ID
		out = append(out, f)
	}
	return out
}

// eventsOf returns the events of type typ for job id (any job when id is "").
func (e *workerEnv) eventsOf(typ, id string) []map[string]string {
	var out []map[string]string
	for _, ev := range e.events() {
		if ev["event"] == typ && (id == "" || ev["jobId"] == id) {
			out = append(out, ev)
		}
	}
	return out
}

// blocked reports whether the worker's named blocking connection is blocked
// in BZPOPMIN on the marker (the sign that it found nothing to do).
func (e *workerEnv) blocked(workerName string) bool {
	e.tb.Helper()
	list, err := e.client.ClientList(context.Background()).Result()
	if err != nil {
		e.tb.Fatalf("client list: %v", err)
	}
	name := e.k.connName(":w:" + workerName)
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name="+name+" ") && strings.Contains(line, "cmd=bzpopmin") &&
			strings.Contains(line, "flags=b") {
			return true
		}
	}
	return false
}

// recorder collects what processors and hooks saw, safely across goroutines.
type recorder struct {
	mu     sync.Mutex
	items  []string
	events chan string
}

func newRecorder() *recorder { return &recorder{events: make(chan string, 10000)} }

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.items = append(r.items, s)
	r.mu.Unlock()
	select {
	case r.events <- s:
	default:
	}
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.items...)
}

func (r *recorder) count(s string) int {
	n := 0
	for _, x := range r.list() {
		if x == s {
			n++
		}
	}
	return n
}

var errBoom = errors.New("boom")
