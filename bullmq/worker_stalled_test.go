package bullmq

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

// strandJob moves job id from wait to active without a lock, as if the
// worker that took it had crashed.
func (e *workerEnv) strandJob(id string) {
	e.tb.Helper()
	ctx := context.Background()
	if err := e.client.LRem(ctx, e.k.wait, 0, id).Err(); err != nil {
		e.tb.Fatal(err)
	}
	if err := e.client.LPush(ctx, e.k.active, id).Err(); err != nil {
		e.tb.Fatal(err)
	}
}

func TestWorkerRecoversStalledJob(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-stalled")
	job := e.add("a", nil, nil)
	e.strandJob(job.ID)
	var stalled atomic.Value
	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		runs.Add(1)
		return j.StalledCount, nil
	}, &WorkerOptions{StalledInterval: 100 * time.Millisecond, OnStalled: func(id string) { stalled.Store(id) }})
	e.waitState(job.ID, StateCompleted, 5*time.Second)
	if n := runs.Load(); n != 1 {
		t.Errorf("processor ran %d times", n)
	}
	j := e.job(job.ID)
	if j.StalledCount != 1 || string(j.ReturnValue) != "1" {
		t.Errorf("stc %d returnvalue %s, want 1", j.StalledCount, j.ReturnValue)
	}
	if n := len(e.eventsOf("stalled", job.ID)); n != 1 {
		t.Errorf("%d stalled events", n)
	}
	bullmqtest.WaitFor(t, 2*time.Second, "OnStalled", func() bool { return stalled.Load() == job.ID })
	// The fleet-wide guard lives one StalledInterval.
	var ttl time.Duration
	bullmqtest.WaitFor(t, 2*time.Second, "stalled-check guard", func() bool {
		ttl, _ = e.client.PTTL(context.Background(), e.k.stalledCheck).Result()
		return ttl > 0
	})
	if ttl > 100*time.Millisecond {
		t.Errorf("stalled-check guard ttl %s, want <= the 100ms interval", ttl)
	}
}

func TestWorkerDeferredFailure(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-defa")
	job := e.add("a", nil, &JobOptions{Attempts: 3})
	// It stalled once already; the next stall exceeds MaxStalledCount 1.
	if err := e.client.HSet(context.Background(), e.k.job(job.ID), "stc", 1).Err(); err != nil {
		t.Fatal(err)
	}
	e.strandJob(job.ID)
	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		runs.Add(1)
		return nil, nil
	}, &WorkerOptions{StalledInterval: 100 * time.Millisecond})
	e.waitState(job.ID, StateFailed, 5*time.Second)
	if n := runs.Load(); n != 0 {
		t.Errorf("processor ran %d times for a job with defa", n)
	}
	j := e.job(job.ID)
	if j.FailedReason != "job stalled more than allowable limit" || j.StalledCount != 2 || j.DeferredFailure != "" {
		t.Errorf("reason %q stc %d defa %q", j.FailedReason, j.StalledCount, j.DeferredFailure)
	}
	if ev := e.eventsOf("failed", job.ID); len(ev) != 1 {
		t.Errorf("failed events %v", ev)
	}
}

func TestWorkerDefaFromNode(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-defa-node")
	job := e.add("a", nil, &JobOptions{Attempts: 3})
	// A flow parent whose child failed is sent to wait with defa by Node.
	if err := e.client.HSet(context.Background(), e.k.job(job.ID), "defa", "child bull:x:1 failed").Err(); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) { runs.Add(1); return nil, nil }, nil)
	e.waitState(job.ID, StateFailed, 5*time.Second)
	if j := e.job(job.ID); runs.Load() != 0 || j.FailedReason != "child bull:x:1 failed" || j.AttemptsMade != 1 {
		t.Errorf("runs %d reason %q atm %d", runs.Load(), j.FailedReason, j.AttemptsMade)
	}
}
