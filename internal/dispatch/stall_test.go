package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// pickyStore fails every Apply to the task ids in fail with err, while the
// database otherwise answers (Ping works): a permanent failure of one item.
type pickyStore struct {
	task.Store
	fail  map[uuid.UUID]error
	calls atomic.Int32
}

func (s *pickyStore) Apply(ctx context.Context, c task.Change) (*task.Task, error) {
	if err, ok := s.fail[c.ID]; ok && !c.Sanitized {
		s.calls.Add(1)
		return nil, fmt.Errorf("set task %s: %w", c.ID, err)
	}
	return s.Store.Apply(ctx, c)
}

// TestReconcilerGoesPastAFailingTask: a task whose repair keeps failing
// (while the database answers) is skipped and counted; the tasks after it
// are still repaired in the same sweep. A task whose data the store
// refuses is finished without the data.
func TestReconcilerGoesPastAFailingTask(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 1})
	tks := e.create(3)
	broken, refused, fine := tks[0], tks[1], tks[2]
	e.worker("wr", 3, func(ctx context.Context, job *bullmq.Job) (any, error) {
		return nil, bullmq.Unrecoverable(errors.New("it broke"))
	})
	for _, tk := range tks {
		waitJobState(t, e, tk.ID.String(), bullmq.StateFailed)
	}
	ps := &pickyStore{Store: e.store, fail: map[uuid.UUID]error{
		broken.ID:  errors.New("something odd, every time"),
		refused.ID: task.ErrInvalidData,
	}}
	reg := prometheus.NewRegistry()
	m, err := dispatch.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dispatch.NewReconciler(e.tasks, e.results, task.NewService(ps, task.ServiceOptions{}), dispatch.ReconcilerOptions{
		Logger: e.log, Metrics: m, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.Sweep(e.ctx)
	if err != nil {
		t.Fatalf("Sweep stopped: %v", err)
	}
	if n != 2 {
		t.Errorf("repaired %d tasks, want 2", n)
	}
	if got := e.get(fine.ID); got.Status != task.StatusFailed || *got.ErrorMessage != "it broke" {
		t.Errorf("task after the failing one = %s", describe(got))
	}
	if got := e.get(refused.ID); got.Status != task.StatusFailed || !strings.HasPrefix(*got.ErrorMessage, task.UnstorableReason) {
		t.Errorf("task with refused data = %s", describe(got))
	}
	if got := e.get(broken.ID); got.Status != task.StatusQueued {
		t.Errorf("failing task = %s", describe(got))
	}
	if c := counter(t, reg, "orchestrator_dead_letters_total", "loop=reconciler", "reason=persistent_error"); c != 1 {
		t.Errorf("dead letters (reconciler, persistent_error) = %v, want 1", c)
	}
	if c := counter(t, reg, "orchestrator_dead_letters_total", "loop=reconciler", "reason=invalid_data"); c != 1 {
		t.Errorf("dead letters (reconciler, invalid_data) = %v, want 1", c)
	}
}

// TestLoopsGoPastAPersistentError: a result and an event whose change keeps
// failing while the database answers are dead-lettered after a bounded
// number of tries; the items behind them are applied.
func TestLoopsGoPastAPersistentError(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 1})
	tks := e.create(2)
	stuck, next := tks[0], tks[1]
	ps := &pickyStore{Store: e.store, fail: map[uuid.UUID]error{stuck.ID: errors.New("something odd, every time")}}
	svc := task.NewService(ps, task.ServiceOptions{})
	reg := prometheus.NewRegistry()
	m, err := dispatch.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := dispatch.NewResultConsumer(e.client, svc, e.names, dispatch.ResultsOptions{Logger: e.log, Metrics: m, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.run("consumer", c)
	l, err := dispatch.NewEventsListener(e.client, e.tasks, svc, e.names, dispatch.EventsOptions{Logger: e.log, Metrics: m,
		Shards: 1, CheckpointEvery: 50 * time.Millisecond, BlockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.run("listener", l)
	h := e.hold("w", 2)
	h.post(stuck.ID, taskqueue.Result{Status: taskqueue.ResultCompleted})
	h.post(next.ID, taskqueue.Result{Status: taskqueue.ResultCompleted})
	got := e.waitStatus(next.ID, task.StatusCompleted)
	if got.WorkerID == nil || *got.WorkerID != "w" {
		t.Errorf("next task = %s", describe(got))
	}
	j, st := waitResultJob(t, e, taskqueue.ResultJobID(stuck.ID.String(), 0))
	if st != bullmq.StateFailed || !strings.Contains(j.FailedReason, "failed 8 times") {
		t.Errorf("stuck result job: %s, %q; want dead-lettered", st, j.FailedReason)
	}
	deadline := time.Now().Add(30 * time.Second)
	for counter(t, reg, "orchestrator_dead_letters_total", "loop=events", "reason=persistent_error") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the stuck task's active event was never set aside")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := counter(t, reg, "orchestrator_dead_letters_total", "loop=results", "reason=persistent_error"); c != 1 {
		t.Errorf("dead letters (results, persistent_error) = %v, want 1", c)
	}
}

// TestRelayGoesPastAnUnqueueableTask: a pending task whose queueing the
// store refuses for good is failed and counted; the pending tasks after it
// are queued in the same sweep.
func TestRelayGoesPastAnUnqueueableTask(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	offline := task.NewService(e.store, task.ServiceOptions{Logger: e.log}) // tasks stay pending
	var ids []uuid.UUID
	for range 3 {
		tk, err := offline.Create(e.ctx, task.NewTask{Code: "c", Prompt: "p"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tk.ID)
	}
	ps := &pickyStore{Store: e.store, fail: map[uuid.UUID]error{ids[0]: task.ErrInvalidData}}
	reg := prometheus.NewRegistry()
	m, err := dispatch.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dispatch.NewRelay(task.NewService(ps, task.ServiceOptions{Enqueuer: e.enqueuer}), dispatch.RelayOptions{
		Logger: e.log, Metrics: m, Parallel: 1, Now: func() time.Time { return time.Now().Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sweep(e.ctx); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if got := e.get(ids[0]); got.Status != task.StatusFailed {
		t.Errorf("unqueueable task = %s", describe(got))
	}
	for _, id := range ids[1:] {
		if got := e.get(id); got.Status != task.StatusQueued {
			t.Errorf("task after it = %s", describe(got))
		}
	}
	if c := counter(t, reg, "orchestrator_dead_letters_total", "loop=relay", "reason=invalid_data"); c != 1 {
		t.Errorf("dead letters (relay, invalid_data) = %v, want 1", c)
	}
}
