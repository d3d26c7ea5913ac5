package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
)

func TestCancelQueuedRemovesJob(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	tk := e.create(1)[0]
	got, err := e.svc.Cancel(e.ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != task.StatusCancelled || got.CompletedAt == nil {
		t.Errorf("cancelled = %s", describe(got))
	}
	if _, err := e.tasks.GetJob(e.ctx, tk.ID.String()); !errors.Is(err, bullmq.ErrJobNotFound) {
		t.Errorf("job after cancel: err = %v, want not found", err)
	}
	if _, err := e.svc.Cancel(e.ctx, tk.ID); !errors.Is(err, task.ErrConflict) {
		t.Errorf("second cancel: err = %v, want ErrConflict", err)
	}
}

// TestCancelRunningPublishes: a running task's cancel is published on the
// cancel channel; the worker's late result is recorded, the status stays.
func TestCancelRunningPublishes(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 1})
	e.listener()
	e.consumer(dispatch.ResultsOptions{})
	sub := e.client.Subscribe(e.ctx, e.names.CancelChannel())
	defer sub.Close()
	if _, err := sub.Receive(e.ctx); err != nil { // subscription confirmed
		t.Fatal(err)
	}
	tk := e.create(1)[0]
	stop := make(chan struct{})
	e.worker("wc", 1, func(ctx context.Context, job *bullmq.Job) (any, error) {
		select {
		case <-stop:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		e.postResult(resultOf(t, job, "wc", "failed", nil, "cancelled"))
		return nil, errors.New("cancelled")
	})
	e.waitStatus(tk.ID, task.StatusRunning)
	if _, err := e.svc.Cancel(e.ctx, tk.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-sub.Channel():
		if msg.Payload != tk.ID.String() {
			t.Errorf("cancel message = %q, want the task id", msg.Payload)
		}
		close(stop)
	case <-time.After(5 * time.Second):
		t.Fatal("no cancel request published")
	}
	got := e.waitTask(tk.ID, "late result recorded", func(tk *task.Task) bool {
		return tk.ExecutionTime != nil
	})
	if got.Status != task.StatusCancelled || got.ErrorMessage == nil || *got.ErrorMessage != "cancelled" {
		t.Errorf("cancelled task after late result = %s", describe(got))
	}
}
