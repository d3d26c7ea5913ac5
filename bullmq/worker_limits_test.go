package bullmq

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

func TestWorkerRateLimiter(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-limit")
	const n = 6
	var ids []string
	for i := range n {
		ids = append(ids, e.add("n", i, nil).ID)
	}
	var mu sync.Mutex
	var starts []time.Time
	proc := func(ctx context.Context, j *Job) (any, error) {
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		return nil, nil
	}
	limiter := &Limiter{Max: 2, Duration: 400 * time.Millisecond}
	// Two workers share the queue-wide limit.
	e.startWorker(proc, &WorkerOptions{Concurrency: 3, Limiter: limiter})
	e.startWorker(proc, &WorkerOptions{Concurrency: 3, Limiter: limiter})
	for _, id := range ids {
		e.waitState(id, StateCompleted, 10*time.Second)
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(starts, func(a, b int) bool { return starts[a].Before(starts[b]) })
	// Any 3 consecutive starts span at least one window.
	for i := 0; i+2 < len(starts); i++ {
		if d := starts[i+2].Sub(starts[i]); d < 350*time.Millisecond {
			t.Errorf("starts %d..%d within %s: more than 2 per 400ms", i, i+2, d)
		}
	}
}

func TestWorkerGlobalRateLimitAndConcurrency(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-global")
	ctx := context.Background()
	if err := e.client.HSet(ctx, e.k.meta, "concurrency", 2).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 10
	var ids []string
	for i := range n {
		ids = append(ids, e.add("n", i, nil).ID)
	}
	var inFlight, peak atomic.Int32
	proc := func(ctx context.Context, j *Job) (any, error) {
		cur := inFlight.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond) // simulated work
		inFlight.Add(-1)
		return nil, nil
	}
	e.startWorker(proc, &WorkerOptions{Concurrency: 5})
	e.startWorker(proc, &WorkerOptions{Concurrency: 5})
	for _, id := range ids {
		e.waitState(id, StateCompleted, 10*time.Second)
	}
	if p := peak.Load(); p > 2 || p < 1 {
		t.Errorf("peak in flight %d with global concurrency 2", p)
	}
}

func TestWorkerHonoursPause(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-pause")
	ctx := context.Background()
	if err := e.q.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	a := e.add("a", nil, nil)
	b := e.add("b", nil, &JobOptions{Priority: 3})
	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) { runs.Add(1); return nil, nil },
		&WorkerOptions{Name: "pause-w", DrainDelay: 5 * time.Second})
	// The worker looked, found the queue paused, and blocked on the marker.
	bullmqtest.WaitFor(t, 5*time.Second, "worker blocked on the marker", func() bool { return e.blocked("pause-w") })
	if n := runs.Load(); n != 0 {
		t.Fatalf("%d jobs ran while paused", n)
	}
	if s := e.state(a.ID); s != StateWaiting {
		t.Errorf("job a state %s while paused", s)
	}
	if err := e.q.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	// Resume adds the marker, which wakes the blocked worker at once.
	e.waitState(a.ID, StateCompleted, 3*time.Second)
	e.waitState(b.ID, StateCompleted, 3*time.Second)
}
