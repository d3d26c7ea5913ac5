package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestEventsLifecycle follows tasks through a real worker: running while
// held (with worker id, attempt and start time), back to queued with the
// error when an attempt fails and a retry waits, failed for good with the
// reason, and completed by the result the worker posts.
func TestEventsLifecycle(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, dispatch.EnqueuerOptions{Attempts: 2, Backoff: 30 * time.Second})
			e.listener()
			e.consumer(dispatch.ResultsOptions{})

			hold, fail, ok := e.create(1)[0], e.create(1)[0], e.create(1)[0]
			release := make(chan struct{})
			e.worker("w1", 4, func(ctx context.Context, job *bullmq.Job) (any, error) {
				switch jobData(t, job).TaskID {
				case hold.ID.String():
					select {
					case <-release:
					case <-ctx.Done():
						return nil, ctx.Err()
					}
					e.postResult(resultOf(t, job, "w1", "completed", map[string]string{"answer": "42"}, ""))
					return "done", nil
				case fail.ID.String():
					return nil, fmt.Errorf("boom on attempt %d", job.AttemptsMade+1)
				}
				e.postResult(resultOf(t, job, "w1", "completed", "fine", ""))
				return "done", nil
			})

			got := e.waitStatus(hold.ID, task.StatusRunning)
			if got.WorkerID == nil || *got.WorkerID != "w1" || got.Attempts != 1 || got.StartedAt == nil {
				t.Errorf("running task = %s, want worker w1, attempt 1, startedAt", describe(got))
			}
			// The failing task's first attempt failed; its retry waits 30s.
			got = e.waitTask(fail.ID, "queued after a failed attempt", func(tk *task.Task) bool {
				return tk.Status == task.StatusQueued && tk.Attempts == 1 && tk.ErrorMessage != nil
			})
			if *got.ErrorMessage != "boom on attempt 1" {
				t.Errorf("retrying task error = %q, want the attempt's error", *got.ErrorMessage)
			}
			got = e.waitStatus(ok.ID, task.StatusCompleted)
			if !sameJSON(got.Result, `"fine"`) || got.ExecutionTime == nil || *got.ExecutionTime != 42 {
				t.Errorf("completed task = %s", describe(got))
			}
			close(release)
			got = e.waitStatus(hold.ID, task.StatusCompleted)
			if got.WorkerID == nil || *got.WorkerID != "w1" || got.CompletedAt == nil {
				t.Errorf("completed task = %s", describe(got))
			}
			testenv.WaitFor(t, 5*time.Second, "an events checkpoint", func() bool {
				cp, err := e.store.Checkpoint(e.ctx, "events:bull:"+e.names.Tasks())
				if err != nil {
					t.Fatal(err)
				}
				return cp != ""
			})
		})
	}
}

// TestEventsFailedForGood: retries exhausted gives failed with the reason
// and the attempts.
func TestEventsFailedForGood(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 3, Backoff: 10 * time.Millisecond})
	e.listener()
	tk := e.create(1)[0]
	var calls atomic.Int32
	e.worker("w2", 1, func(ctx context.Context, job *bullmq.Job) (any, error) {
		calls.Add(1)
		return nil, errors.New("always broken")
	})
	got := e.waitStatus(tk.ID, task.StatusFailed)
	if got.ErrorMessage == nil || *got.ErrorMessage != "always broken" || got.Attempts != 3 || got.CompletedAt == nil {
		t.Errorf("failed task = %s, want error, 3 attempts, completedAt", describe(got))
	}
	if calls.Load() != 3 {
		t.Errorf("processor calls = %d, want 3", calls.Load())
	}
}

// TestEventsUnrecoverable: an unrecoverable error fails the task at once.
func TestEventsUnrecoverable(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 3, Backoff: 10 * time.Millisecond})
	e.listener()
	tk := e.create(1)[0]
	e.worker("w3", 1, func(ctx context.Context, job *bullmq.Job) (any, error) {
		return nil, bullmq.Unrecoverable(errors.New("bad input"))
	})
	got := e.waitStatus(tk.ID, task.StatusFailed)
	if got.ErrorMessage == nil || *got.ErrorMessage != "bad input" || got.Attempts != 1 {
		t.Errorf("failed task = %s, want 'bad input' after 1 attempt", describe(got))
	}
}

// TestEventsReplayIsHarmless: applying the whole stream again, in order,
// after the tasks moved on, changes nothing.
func TestEventsReplayIsHarmless(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 2, Backoff: 10 * time.Millisecond})
	l := e.listener()
	_ = l
	tasks := e.create(5)
	var n atomic.Int32
	e.worker("w4", 2, func(ctx context.Context, job *bullmq.Job) (any, error) {
		if n.Add(1)%2 == 0 {
			return nil, errors.New("flaky")
		}
		return nil, nil
	})
	final := map[string]*task.Task{}
	for _, tk := range tasks {
		got := e.waitTask(tk.ID, "settled", func(tk *task.Task) bool {
			if tk.Status == task.StatusFailed {
				return true
			}
			st, err := e.tasks.GetJobState(e.ctx, tk.ID.String())
			return err == nil && st == bullmq.StateCompleted && tk.Status == task.StatusRunning
		})
		final[tk.ID.String()] = got
	}
	// The job can finish before the listener has applied all of its events:
	// wait until the listener's checkpoint reaches the end of the stream,
	// then take the tasks as they are.
	testenv.Eventually(t, 10*time.Second, "the listener checkpoint to reach the last event", func() error {
		last, err := e.client.XRevRangeN(e.ctx, "bull:"+e.names.Tasks()+":events", "+", "-", 1).Result()
		if err != nil || len(last) == 0 {
			t.Fatalf("last event: %v", err)
		}
		cp, err := e.store.Checkpoint(e.ctx, "events:bull:"+e.names.Tasks())
		if err != nil {
			t.Fatal(err)
		}
		if cp != last[0].ID {
			return fmt.Errorf("checkpoint %q, last event %q", cp, last[0].ID)
		}
		return nil
	})
	for id := range final {
		final[id] = e.get(mustUUID(t, id))
	}
	// Replay every event with a second listener from the start.
	l2, err := dispatch.NewEventsListener(e.client, e.tasks, e.svc, e.names,
		dispatch.EventsOptions{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := e.client.XRange(e.ctx, "bull:"+e.names.Tasks()+":events", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range entries {
		ev := bullmq.Event{ID: m.ID, Type: bullmq.EventType(fmt.Sprint(m.Values["event"])), JobID: fmt.Sprint(m.Values["jobId"]),
			Prev: str(m.Values["prev"]), FailedReason: str(m.Values["failedReason"])}
		if _, err := l2.Apply(e.ctx, ev); err != nil {
			t.Fatalf("replay %s %s: %v", ev.Type, ev.JobID, err)
		}
	}
	for id, before := range final {
		after := e.get(mustUUID(t, id))
		if after.Status != before.Status || after.Attempts != before.Attempts {
			t.Errorf("task %s changed on replay: %s -> %s", id, describe(before), describe(after))
		}
	}
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
