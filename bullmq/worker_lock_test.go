package bullmq

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

func TestWorkerRenewsLocks(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-renew")
	const lock = 600 * time.Millisecond
	ids := []string{e.add("a", nil, nil).ID, e.add("b", nil, nil).ID}
	var lost atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		// Run for several lock durations; the lock must survive.
		t := time.NewTimer(3 * lock)
		defer t.Stop()
		select {
		case <-t.C:
			return "done", nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}, &WorkerOptions{Concurrency: 2, LockDuration: lock, StalledInterval: 100 * time.Millisecond,
		OnLockLost: func(*Job) { lost.Add(1) }})
	for _, id := range ids {
		e.waitState(id, StateCompleted, 5*time.Second)
		if j := e.job(id); j.StalledCount != 0 || j.AttemptsStarted != 1 {
			t.Errorf("job %s stalled %d times, started %d times", id, j.StalledCount, j.AttemptsStarted)
		}
	}
	if n := lost.Load(); n != 0 {
		t.Errorf("%d locks lost", n)
	}
	if n := len(e.eventsOf("stalled", "")); n != 0 {
		t.Errorf("%d stalled events", n)
	}
}

func TestWorkerLockLost(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-lost")
	job := e.add("a", nil, nil)
	var lostJob atomic.Value
	causeCh := make(chan error, 1)
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		// Another worker "steals" the lock.
		if err := e.client.Set(context.Background(), e.k.lock(j.ID), "someone-else", time.Minute).Err(); err != nil {
			return nil, err
		}
		<-ctx.Done()
		causeCh <- context.Cause(ctx)
		return "too late", nil
	}, &WorkerOptions{LockDuration: 200 * time.Millisecond, SkipStalledCheck: true,
		OnLockLost: func(j *Job) { lostJob.Store(j.ID) }})
	select {
	case cause := <-causeCh:
		if !errors.Is(cause, ErrLockLost) {
			t.Fatalf("processor ctx cause %v, want ErrLockLost", cause)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("processor context not cancelled after the lock was lost")
	}
	bullmqtest.WaitFor(t, 2*time.Second, "OnLockLost", func() bool { return lostJob.Load() == job.ID })
	// The result must not be written: the job stays active, owned by the
	// other lock holder.
	if s := e.state(job.ID); s != StateActive {
		t.Errorf("state %s, want active", s)
	}
	if j := e.job(job.ID); len(j.ReturnValue) != 0 || j.AttemptsMade != 0 {
		t.Errorf("result written after lock loss: returnvalue %s atm %d", j.ReturnValue, j.AttemptsMade)
	}
	if n := len(e.eventsOf("completed", job.ID)); n != 0 {
		t.Errorf("%d completed events", n)
	}
}

func TestWorkerFinishRefusedWithoutLock(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-refuse")
	job := e.add("a", nil, nil)
	errs := make(chan error, 10)
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		// The lock vanishes (expired) just before the job finishes.
		return nil, e.client.Del(context.Background(), e.k.lock(j.ID)).Err()
	}, &WorkerOptions{SkipStalledCheck: true, OnError: func(err error) { errs <- err }})
	select {
	case err := <-errs:
		if !errors.Is(err, ErrMissingLock) || !errors.Is(err, ErrLockLost) {
			t.Fatalf("OnError %v, want ErrMissingLock", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error reported for a finish without lock")
	}
	if s := e.state(job.ID); s != StateActive {
		t.Errorf("state %s, want active (left for the stalled checker)", s)
	}
	if n := len(e.eventsOf("completed", job.ID)); n != 0 {
		t.Errorf("%d completed events", n)
	}
}
