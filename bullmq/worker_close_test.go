package bullmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq/bullmqtest"
)

func TestWorkerCloseWaitsForJobsInFlight(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-close")
	first := e.add("first", nil, nil)
	second := e.add("second", nil, nil)
	started := make(chan struct{})
	release := make(chan struct{})
	var ctxErr atomic.Value
	w, err := NewWorker(e.client, e.name, func(ctx context.Context, j *Job) (any, error) {
		close(started)
		<-release
		if ctx.Err() != nil {
			ctxErr.Store(ctx.Err())
		}
		return "done", nil
	}, &WorkerOptions{Logger: quietLogger(t), DrainDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(context.Background()) }()
	<-started
	closeErr := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closeErr <- w.Close(ctx)
	}()
	select {
	case err := <-closeErr:
		t.Fatalf("Close returned %v with a job in flight", err)
	case <-w.stopped: // Close has begun
	}
	close(release)
	if err := <-closeErr; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if v := ctxErr.Load(); v != nil {
		t.Errorf("job context cancelled by a graceful Close: %v", v)
	}
	if s := e.state(first.ID); s != StateCompleted {
		t.Errorf("job in flight: state %s, want completed", s)
	}
	if s := e.state(second.ID); s != StateWaiting {
		t.Errorf("job not started: state %s, want waiting (no fetch after Close)", s)
	}
	if err := w.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("Run after Close succeeded")
	}
}

func TestWorkerCloseDeadlineLeavesJobRecoverable(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-close-dl")
	job := e.add("slow", nil, &JobOptions{Attempts: 1})
	started := make(chan struct{}, 1)
	var cause atomic.Value
	w, err := NewWorker(e.client, e.name, func(ctx context.Context, j *Job) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		cause.Store(context.Cause(ctx))
		return nil, ctx.Err()
	}, &WorkerOptions{Logger: quietLogger(t), LockDuration: 300 * time.Millisecond, SkipStalledCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(context.Background()) }()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close past its deadline: %v, want DeadlineExceeded", err)
	}
	if err := <-runErr; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c, _ := cause.Load().(error); c == nil || !strings.Contains(c.Error(), "closed") {
		t.Errorf("processor ctx cause %v", c)
	}
	// Not failed, not retried: still active, and recovered by another worker.
	if s := e.state(job.ID); s != StateActive {
		t.Fatalf("state after Close %s, want active", s)
	}
	var runs atomic.Int32
	e.startWorker(func(ctx context.Context, j *Job) (any, error) {
		runs.Add(1)
		return "recovered", nil
	}, &WorkerOptions{StalledInterval: 100 * time.Millisecond})
	e.waitState(job.ID, StateCompleted, 5*time.Second)
	j := e.job(job.ID)
	if runs.Load() != 1 || j.AttemptsMade != 1 || j.AttemptsStarted != 2 || j.StalledCount != 1 {
		t.Errorf("runs %d atm %d ats %d stc %d", runs.Load(), j.AttemptsMade, j.AttemptsStarted, j.StalledCount)
	}
	if n := len(e.eventsOf("completed", job.ID)); n != 1 {
		t.Errorf("%d completed events", n)
	}
	if n := len(e.eventsOf("failed", job.ID)); n != 0 {
		t.Errorf("%d failed events", n)
	}
}

func TestWorkerRunContextCancel(t *testing.T) {
	t.Parallel()
	e := newWorkerEnv(t, "w-runctx")
	w, err := NewWorker(e.client, e.name, func(ctx context.Context, j *Job) (any, error) { return nil, nil },
		&WorkerOptions{Logger: quietLogger(t), Name: "ctx-w"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	// Blocked for the default 5s drain delay; cancel must not wait for it.
	bullmqtest.WaitFor(t, 5*time.Second, "worker blocked", func() bool { return e.blocked("ctx-w") })
	begin := time.Now()
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Run took %s to return after cancel", d)
	}
}

// TestWorkerNoGoroutineLeak is not parallel: it counts goroutines.
func TestWorkerNoGoroutineLeak(t *testing.T) {
	e := newWorkerEnv(t, "w-leak")
	for i := range 20 {
		e.add("n", i, nil)
	}
	// Warm the pool and the client's auto-pipeliner (owned by the client,
	// not the worker) before counting.
	e.client.Ping(context.Background())
	if _, err := e.client.AutoPipeline(); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	var done atomic.Int32
	w, err := NewWorker(e.client, e.name, func(ctx context.Context, j *Job) (any, error) {
		if err := j.UpdateProgress(ctx, 50); err != nil {
			return nil, err
		}
		return nil, nil
	}, &WorkerOptions{Logger: quietLogger(t), Concurrency: 8, LockDuration: 100 * time.Millisecond,
		StalledInterval: 50 * time.Millisecond, OnCompleted: func(*Job, json.RawMessage) { done.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(context.Background()) }()
	bullmqtest.WaitFor(t, 5*time.Second, "20 jobs", func() bool { return done.Load() == 20 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	bullmqtest.Eventually(t, 3*time.Second, "goroutines to end after Close", func() error {
		if now := runtime.NumGoroutine(); now > before {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			return fmt.Errorf("%d before, %d after Close:\n%s", before, now, buf[:n])
		}
		return nil
	})
}
