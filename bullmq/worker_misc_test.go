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
)

func TestWorkerRefusesFlowAndSchedulerJobs(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-refuse-flow")
	ctx := context.Background()
	child := e.add("child", nil, &JobOptions{Attempts: 3})
	sched := e.add("sched", nil, &JobOptions{Attempts: 3})
	e.client.HSet(ctx, e.k.job(child.ID), "parentKey", "bull:parents:1", "parent", `{"id":"1","queueKey":"bull:parents"}`)
	e.client.HSet(ctx, e.k.job(sched.ID), "rjk", "every-minute")
	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) { runs.Add(1); return nil, nil }, nil)
	e.waitState(child.ID, StateFailed, 5*time.Second)
	e.waitState(sched.ID, StateFailed, 5*time.Second)
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
	waitFor(t, 5*time.Second, "named connection", func() bool { return e.blocked("gopher") })
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
	c := testClient(t)
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
