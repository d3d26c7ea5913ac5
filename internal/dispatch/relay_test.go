package dispatch_test

import (
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
)

// TestRelayQueuesPendingTasks: tasks stored while the queue was unreachable
// stay pending; the relay queues each exactly once, also when two relays
// (two replicas) sweep at the same time.
func TestRelayQueuesPendingTasks(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	offline := task.NewService(e.store, task.ServiceOptions{Logger: e.log}) // no enqueuer: tasks stay pending
	const n = 30
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		tk, err := offline.Create(e.ctx, task.NewTask{Code: "c", Prompt: "p"})
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != task.StatusPending {
			t.Fatalf("status = %s, want pending", tk.Status)
		}
		ids[tk.ID.String()] = true
	}
	later := func() time.Time { return time.Now().Add(time.Minute) }
	r1, err := dispatch.NewRelay(e.svc, dispatch.RelayOptions{Logger: e.log, Now: later, Batch: 7, Canceller: e.enqueuer})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := dispatch.NewRelay(e.svc, dispatch.RelayOptions{Logger: e.log, Now: later, Batch: 7, Parallel: 3})
	if err != nil {
		t.Fatal(err)
	}
	e.run("relay 1", r1)
	e.run("relay 2", r2)
	for id := range ids {
		e.waitStatus(mustUUID(t, id), task.StatusQueued)
	}
	count, err := e.tasks.Count(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Errorf("jobs in queue = %d, want %d (one per task)", count, n)
	}
	for id := range ids {
		if _, err := e.tasks.GetJob(e.ctx, id); err != nil {
			t.Errorf("job of task %s: %v", id, err)
		}
	}
}

// TestRelaySkipsYoungTasks: a task created a moment ago is left to the
// request that creates it.
func TestRelaySkipsYoungTasks(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	offline := task.NewService(e.store, task.ServiceOptions{Logger: e.log})
	tk, err := offline.Create(e.ctx, task.NewTask{Code: "c", Prompt: "p"})
	if err != nil {
		t.Fatal(err)
	}
	r, err := dispatch.NewRelay(e.svc, dispatch.RelayOptions{Logger: e.log, MinAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Sweep(e.ctx)
	if err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v; want 1 found", n, err)
	}
	if got := e.get(tk.ID); got.Status != task.StatusPending {
		t.Errorf("young task status = %s, want pending", got.Status)
	}
}
