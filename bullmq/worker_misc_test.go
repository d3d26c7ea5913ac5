package bullmq

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

func TestWorkerRefusesFlowAndSchedulerJobs(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-refuse-flow")
	ctx := context.Background()
	child := e.add("child", nil, &JobOptions{Attempts: 3})
	sched := e.add("sched", nil, &JobOptions{Attempts: 3})
	legacy := e.add("legacy", nil, &JobOptions{Attempts: 3})
	// Add refuses "repeat"; a legacy repeatable job written by another
	// client carries it in its opts.
	e.client.HSet(ctx, e.k.job(legacy.ID), "opts", `{"attempts":3,"repeat":{"every":1000}}`)
	e.client.HSet(ctx, e.k.job(child.ID), "parentKey", "bull:parents:1", "parent", `{"id":"1","queueKey":"bull:parents"}`)
	e.client.HSet(ctx, e.k.job(sched.ID), "rjk", "every-minute")
	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) { runs.Add(1); return nil, nil }, nil)
	e.waitState(child.ID, StateFailed, 5*time.Second)
	e.waitState(sched.ID, StateFailed, 5*time.Second)
	e.waitState(legacy.ID, StateFailed, 5*time.Second)
	if n := runs.Load(); n != 0 {
		t.Errorf("processor ran %d times", n)
	}
	if r := e.job(child.ID).FailedReason; !strings.Contains(r, "flow") {
		t.Errorf("flow child reason %q", r)
	}
	if r := e.job(sched.ID).FailedReason; !strings.Contains(r, "scheduler") {
		t.Errorf("scheduler job reason %q", r)
	}
}

func TestJobProgressAndLog(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-progress")
	job := e.add("a", nil, &JobOptions{Extra: map[string]json.RawMessage{"kl": json.RawMessage("2")}})
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		if err := j.UpdateProgress(ctx, map[string]int{"pct": 40}); err != nil {
			return nil, err
		}
		for _, l := range []string{"one", "two", "three"} {
			if err := j.Log(ctx, l); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}, nil)
	e.waitState(job.ID, StateCompleted, 5*time.Second)
	j := e.job(job.ID)
	if string(j.Progress) != `{"pct":40}` {
		t.Errorf("progress %s", j.Progress)
	}
	if ev := e.eventsOf("progress", job.ID); len(ev) != 1 || ev[0]["data"] != `{"pct":40}` {
		t.Errorf("progress events %v", ev)
	}
	logs, _ := e.client.LRange(context.Background(), e.k.logs(job.ID), 0, -1).Result()
	if strings.Join(logs, ",") != "two,three" {
		t.Errorf("logs %v, want the last 2 (keepLogs)", logs)
	}
	gone := &Job{ID: "nope", client: e.client, keys: e.k}
	if err := gone.UpdateProgress(context.Background(), 1); !errors.Is(err, ErrJobNotFound) {
		t.Errorf("progress of a missing job: %v", err)
	}
	if err := (&Job{ID: "x"}).Log(context.Background(), "l"); err == nil {
		t.Error("Log on an unbound job succeeded")
	}
}

func TestWorkerConnectionName(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-name")
	e.startWorker(func(ctx context.Context, j *Job) (any, error) { return nil, nil }, &WorkerOptions{Name: "gopher"})
	bullmqtest.WaitFor(t, 5*time.Second, "named connection", func() bool { return e.blocked("gopher") })
	want := "bull:" + base64.StdEncoding.EncodeToString([]byte(e.name)) + ":w:gopher"
	list, _ := e.client.ClientList(context.Background()).Result()
	if !strings.Contains(list, "name="+want+" ") {
		t.Errorf("no connection named %s in\n%s", want, list)
	}
}

func TestWorkerGlobalRateLimit(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-glimit")
	ctx := context.Background()
	// meta max/duration overrides the worker's (absent) limiter.
	e.client.HSet(ctx, e.k.meta, "max", 1, "duration", 300)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.add("n", i, nil).ID)
	}
	var mu sync.Mutex
	var starts []time.Time
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return nil, nil
	}, &WorkerOptions{Concurrency: 3})
	for _, id := range ids {
		e.waitState(id, StateCompleted, 5*time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d < 250*time.Millisecond {
			t.Errorf("start %d only %s after the previous one (limit 1 per 300ms)", i, d)
		}
	}
}

func TestNewWorkerValidates(t *testing.T) {
	t.Parallel()
	c := bullmqtest.RedisClient(t)
	proc := func(ctx context.Context, j *Job) (any, error) { return nil, nil }
	bad := []*WorkerOptions{
		{Concurrency: -1},
		{LockDuration: time.Millisecond},
		{MaxStalledCount: -2},
		{Limiter: &Limiter{Max: 0, Duration: time.Second}},
		{NoStalls: true, MaxStalledCount: 2},
	}
	for i, o := range bad {
		if _, err := NewWorker(c, "q", proc, o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("options %d: %v, want ErrInvalidOptions", i, err)
		}
	}
	if _, err := NewWorker(c, "q", nil, nil); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("nil processor: %v", err)
	}
	if _, err := NewWorker(c, "q", proc, nil); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestWorkerFailsUndecodableJob(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-undecodable")
	job := e.add("a", nil, nil)
	e.client.HSet(context.Background(), e.k.job(job.ID), "opts", "{not json")
	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) { runs.Add(1); return nil, nil }, nil)
	e.waitState(job.ID, StateFailed, 5*time.Second)
	r, _ := e.client.HGet(context.Background(), e.k.job(job.ID), "failedReason").Result()
	if runs.Load() != 0 || !strings.Contains(r, "decode job") {
		t.Errorf("runs %d reason %q", runs.Load(), r)
	}
}

func TestWorkerIdleDoesNotSpin(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-idle")
	const drain = 200 * time.Millisecond
	w := e.startWorker(func(ctx context.Context, j *Job) (any, error) { return nil, nil },
		&WorkerOptions{Name: "idle-w", DrainDelay: drain})
	bullmqtest.WaitFor(t, 5*time.Second, "worker blocked", func() bool { return e.blocked("idle-w") })
	start, n0 := time.Now(), w.fetches.Load()
	bullmqtest.WaitFor(t, 5*time.Second, "3 more fetches", func() bool { return w.fetches.Load() >= n0+3 })
	if d := time.Since(start); d < 2*drain {
		t.Errorf("3 fetches in %s on an empty queue: spinning (drain delay %s)", d, drain)
	}
}

func TestWorkerWakesForDelayedJob(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-wake-delayed")
	started := make(chan time.Time, 1)
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		started <- time.Now()
		return nil, nil
	}, &WorkerOptions{Name: "delay-w", DrainDelay: 5 * time.Second})
	bullmqtest.WaitFor(t, 5*time.Second, "worker blocked", func() bool { return e.blocked("delay-w") })
	added := time.Now()
	e.add("later", nil, &JobOptions{Delay: 300 * time.Millisecond})
	select {
	case at := <-started:
		if d := at.Sub(added); d < 290*time.Millisecond || d > 1500*time.Millisecond {
			t.Errorf("delayed job started %s after add, want about 300ms", d)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("delayed job not started within 4s (worker waited for its drain delay)")
	}
}

func TestWorkerFinishFetchesNextInOneCall(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-fetchnext")
	const n = 20
	var ids []string
	for i := range n {
		ids = append(ids, e.add("n", i, nil).ID)
	}
	w := e.startWorker(func(ctx context.Context, j *Job) (any, error) { return nil, nil }, nil)
	for _, id := range ids {
		e.waitState(id, StateCompleted, 5*time.Second)
	}
	// One moveToActive for the first job; every later job came with the
	// previous job's finish. Idle fetches after draining may add a few.
	if f := w.fetches.Load(); f > 5 {
		t.Errorf("%d separate fetch calls for %d jobs: finish does not fetch the next job", f, n)
	}
}

func TestWorkerDropsDeduplicationKey(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-dedup")
	ctx := context.Background()
	job := e.add("a", nil, nil)
	e.client.HSet(ctx, e.k.job(job.ID), "deid", "d1")
	e.client.Set(ctx, e.k.dedup("d1"), job.ID, 0)
	other := e.add("b", nil, nil)
	e.client.HSet(ctx, e.k.job(other.ID), "deid", "d2")
	e.client.Set(ctx, e.k.dedup("d2"), "someone-else", 0)
	e.startWorker(func(ctx context.Context, j *Job) (any, error) { return nil, nil }, nil)
	e.waitState(job.ID, StateCompleted, 5*time.Second)
	e.waitState(other.ID, StateCompleted, 5*time.Second)
	if n, _ := e.client.Exists(ctx, e.k.dedup("d1")).Result(); n != 0 {
		t.Error("deduplication key of the finished job kept")
	}
	if v, _ := e.client.Get(ctx, e.k.dedup("d2")).Result(); v != "someone-else" {
		t.Errorf("deduplication key owned by another job changed to %q", v)
	}
}
