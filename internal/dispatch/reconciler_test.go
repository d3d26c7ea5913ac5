package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestReconciler brings tasks in line with jobs whose events were never
// applied (no listener runs here). It waits only for a task's own result
// job: results pending for other tasks do not hold it back.
func TestReconciler(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 1})
	tks := e.create(7)
	missingQueued, missingRunning, failedJob, completedJob, activeJob, pendingResult, otherCompleted :=
		tks[0], tks[1], tks[2], tks[3], tks[4], tks[5], tks[6]

	// Jobs removed by hand.
	for _, tk := range []*task.Task{missingQueued, missingRunning} {
		if err := e.tasks.Remove(e.ctx, tk.ID.String()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.store.Apply(e.ctx, task.MarkRunning(missingRunning.ID, 1, "gone-worker", time.Now())); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release)
	e.worker("wr", 8, func(ctx context.Context, job *bullmq.Job) (any, error) {
		switch jobData(t, job).TaskID {
		case failedJob.ID.String():
			return nil, errors.New("it broke")
		case completedJob.ID.String():
			return map[string]int{"x": 1}, nil
		case activeJob.ID.String(), missingQueued.ID.String():
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, ctx.Err()
		}
		return "ok", nil
	})
	waitJobState(t, e, failedJob.ID.String(), bullmq.StateFailed)
	waitJobState(t, e, completedJob.ID.String(), bullmq.StateCompleted)
	waitJobState(t, e, activeJob.ID.String(), bullmq.StateActive)
	waitJobState(t, e, pendingResult.ID.String(), bullmq.StateCompleted)
	waitJobState(t, e, otherCompleted.ID.String(), bullmq.StateCompleted)
	// Result jobs wait for completedJob, pendingResult and missingRunning:
	// the reconciler must leave those tasks to them.
	for _, tk := range []*task.Task{completedJob, pendingResult, missingRunning} {
		if _, err := e.results.Add(e.ctx, taskqueue.ResultJobName, taskqueue.Result{TaskID: tk.ID.String(), Status: "completed"},
			&bullmq.JobOptions{JobID: taskqueue.ResultJobID(tk.ID.String(), 0), Delay: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}

	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	r, err := dispatch.NewReconciler(e.tasks, e.results, e.svc, dispatch.ReconcilerOptions{
		Enqueuer: e.enqueuer, Logger: e.log, Now: later})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	check := func(name string, tk *task.Task, want task.Status) *task.Task {
		t.Helper()
		got := e.get(tk.ID)
		if got.Status != want {
			t.Errorf("%s: status %s, want %s (%s)", name, got.Status, want, describe(got))
		}
		return got
	}
	check("active", activeJob, task.StatusRunning)
	got := check("failed job", failedJob, task.StatusFailed)
	if got.ErrorMessage == nil || *got.ErrorMessage != "it broke" {
		t.Errorf("failed job error = %v", got.ErrorMessage)
	}
	// Its own result job pending: no decision from Redis alone yet.
	check("missing running (result pending)", missingRunning, task.StatusRunning)
	check("completed job (result pending)", completedJob, task.StatusQueued)
	check("pending result", pendingResult, task.StatusQueued)
	// No result of its own pending: decided while the results queue is busy.
	got = check("completed job (other results pending)", otherCompleted, task.StatusCompleted)
	if !sameJSON(got.Result, `"ok"`) {
		t.Errorf("other completed job result = %s", got.Result)
	}
	check("missing queued", missingQueued, task.StatusQueued)
	if _, err := e.tasks.GetJob(e.ctx, missingQueued.ID.String()); err != nil {
		t.Errorf("missing queued task not re-enqueued: %v", err)
	}

	// No result pending any more: decide.
	if err := e.results.Obliterate(e.ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	got = check("missing running", missingRunning, task.StatusFailed)
	if got.ErrorMessage == nil || *got.ErrorMessage != dispatch.MissingJobReason {
		t.Errorf("missing running error = %v", got.ErrorMessage)
	}
	got = check("completed job", completedJob, task.StatusCompleted)
	if !sameJSON(got.Result, `{"x":1}`) {
		t.Errorf("completed job result = %s", got.Result)
	}
	check("pending result", pendingResult, task.StatusCompleted)
}

func waitJobState(t *testing.T, e *env, id string, want bullmq.JobState) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, fmt.Sprintf("job %s to be %s", id, want), func() error {
		st, err := e.tasks.GetJobState(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st != want {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
}
