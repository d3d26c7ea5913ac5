package dispatch_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
)

// counter reads the counter name of reg whose labels are labels
// ("name=value" each); 0 when there is none.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for _, nv := range labels {
				n, v, _ := strings.Cut(nv, "=")
				if have[n] != v {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// waitResultJob waits until result job id failed or completed and returns
// it with its state.
func waitResultJob(t *testing.T, e *env, id string) (*bullmq.Job, bullmq.JobState) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st, err := e.results.GetJobState(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st == bullmq.StateFailed || st == bullmq.StateCompleted {
			j, err := e.results.GetJob(e.ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return j, st
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("result job %s never finished", id)
	return nil, ""
}

// TestForgedResultsAreRejected: result jobs added by hand are checked
// against the task's job: for a task no worker took, naming a worker that
// does not hold the job, for an attempt not started, or under the result
// id of another task, they are rejected (failed for good, with the reason,
// counted) and the task does not change. The genuine result applies.
func TestForgedResultsAreRejected(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, dispatch.EnqueuerOptions{})
			reg := prometheus.NewRegistry()
			m, err := dispatch.NewMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			e.listener()
			e.consumer(dispatch.ResultsOptions{Metrics: m})
			held := e.create(1)[0]
			h := e.hold("w1", 1)
			h.wait(held.ID)
			e.waitStatus(held.ID, task.StatusRunning)
			other := e.create(1)[0] // waits: the holder's one slot is taken
			forge := func(id, taskID, worker string) string {
				r := taskqueue.Result{TaskID: taskID, WorkerID: worker, Status: taskqueue.ResultCompleted, Result: json.RawMessage(`"forged"`)}
				if _, err := e.results.Add(e.ctx, taskqueue.ResultJobName, r, &bullmq.JobOptions{JobID: id}); err != nil {
					t.Fatal(err)
				}
				return id
			}
			cases := []struct{ id, reason string }{
				{forge(taskqueue.ResultJobID(held.ID.String(), 0), held.ID.String(), "evil"), "names worker \"evil\""},
				{forge(taskqueue.ResultJobID(held.ID.String(), 3), held.ID.String(), "w1"), "has not started"},
				{forge(taskqueue.ResultJobID(other.ID.String(), 0)+"-x", held.ID.String(), "w1"), "another task"},
				{forge("forged-no-worker", held.ID.String(), ""), "names worker \"\""},
			}
			for _, c := range cases {
				j, st := waitResultJob(t, e, c.id)
				if st != bullmq.StateFailed || !strings.Contains(j.FailedReason, "result rejected") || !strings.Contains(j.FailedReason, c.reason) || j.AttemptsMade != 1 {
					t.Errorf("forged result %s: %s after %d attempts, reason %q; want failed once, %q", c.id, st, j.AttemptsMade, j.FailedReason, c.reason)
				}
			}
			if got := e.get(held.ID); got.Status != task.StatusRunning || got.Result != nil {
				t.Errorf("held task changed by forged results: %s", describe(got))
			}
			if n := counter(t, reg, "orchestrator_dead_letters_total", "loop=results", "reason=unverified"); n != float64(len(cases)) {
				t.Errorf("dead letters (results, unverified) = %v, want %d", n, len(cases))
			}
			// The genuine result still applies (under another id: the
			// agreed one was squatted, see TestSquattedResultIDKeepsNothingOut).
			genuine := taskqueue.Result{TaskID: held.ID.String(), WorkerID: "w1", Status: taskqueue.ResultCompleted, Result: json.RawMessage(`"genuine"`)}
			if _, err := e.results.Add(e.ctx, taskqueue.ResultJobName, genuine,
				&bullmq.JobOptions{JobID: taskqueue.AltResultJobID(held.ID.String(), 0, "x")}); err != nil {
				t.Fatal(err)
			}
			if got := e.waitStatus(held.ID, task.StatusCompleted); !sameJSON(got.Result, `"genuine"`) {
				t.Errorf("held task = %s", describe(got))
			}
			if got := e.get(other.ID); got.Status != task.StatusQueued {
				t.Errorf("other task changed: %s", describe(got))
			}
		})
	}
}

// TestForgedResultForUntakenTask: a result job for a task whose job waits
// for a worker is rejected and the task stays queued.
func TestForgedResultForUntakenTask(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	e.consumer(dispatch.ResultsOptions{})
	tk := e.create(1)[0]
	r := taskqueue.Result{TaskID: tk.ID.String(), WorkerID: "w", Status: taskqueue.ResultCompleted, Result: json.RawMessage(`"forged"`)}
	rid := taskqueue.ResultJobID(tk.ID.String(), 0)
	if _, err := e.results.Add(e.ctx, taskqueue.ResultJobName, r, &bullmq.JobOptions{JobID: rid}); err != nil {
		t.Fatal(err)
	}
	j, st := waitResultJob(t, e, rid)
	if st != bullmq.StateFailed || !strings.Contains(j.FailedReason, "no worker has taken") {
		t.Errorf("forged result: %s, %q", st, j.FailedReason)
	}
	if got := e.get(tk.ID); got.Status != task.StatusQueued || got.Result != nil {
		t.Errorf("task changed: %s", describe(got))
	}
}

// TestSquattedResultIDKeepsNothingOut: a forged result job that took the
// result id a worker will use is rejected; the worker's result, posted
// under another id that its return value names (as workerapp does), is
// applied; and when that result job never reaches the consumer, the
// reconciler applies it from the return value.
func TestSquattedResultIDKeepsNothingOut(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 1})
	e.listener()
	tks := e.create(2)
	viaConsumer, viaReconciler := tks[0], tks[1]
	for _, tk := range tks {
		forged := taskqueue.Result{TaskID: tk.ID.String(), WorkerID: "evil", Status: taskqueue.ResultCompleted, Result: json.RawMessage(`"forged"`)}
		if _, err := e.results.Add(e.ctx, taskqueue.ResultJobName, forged,
			&bullmq.JobOptions{JobID: taskqueue.ResultJobID(tk.ID.String(), 0)}); err != nil {
			t.Fatal(err)
		}
	}
	e.worker("w", 2, func(ctx context.Context, job *bullmq.Job) (any, error) {
		alt := taskqueue.AltResultJobID(job.ID, job.AttemptsMade, "n0nce")
		r := taskqueue.Result{TaskID: job.ID, WorkerID: "w", Status: taskqueue.ResultCompleted, Result: json.RawMessage(`"genuine"`)}
		delay := time.Duration(0)
		if job.ID == viaReconciler.ID.String() {
			delay = time.Hour // never reaches the consumer in this test
		}
		if _, err := e.results.Add(ctx, taskqueue.ResultJobName, r, &bullmq.JobOptions{JobID: alt, Delay: delay}); err != nil {
			return nil, err
		}
		return taskqueue.ReturnValue{TaskID: job.ID, ResultJobID: alt}, nil
	})
	waitJobState(t, e, viaReconciler.ID.String(), bullmq.StateCompleted)
	e.consumer(dispatch.ResultsOptions{})
	if got := e.waitStatus(viaConsumer.ID, task.StatusCompleted); !sameJSON(got.Result, `"genuine"`) {
		t.Errorf("task via consumer = %s", describe(got))
	}
	j, st := waitResultJob(t, e, taskqueue.ResultJobID(viaConsumer.ID.String(), 0))
	if st != bullmq.StateFailed || !strings.Contains(j.FailedReason, "evil") {
		t.Errorf("squatting result job: %s, %q; want rejected", st, j.FailedReason)
	}
	// The other result job is delayed (pending): the reconciler waits for
	// it; once it is no longer pending (here: moved to failed by hand, as
	// if its consumer had given up), the reconciler applies it.
	r, err := dispatch.NewReconciler(e.tasks, e.results, e.svc, dispatch.ReconcilerOptions{Logger: e.log,
		Now: func() time.Time { return time.Now().Add(time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.get(viaReconciler.ID); got.Status.Terminal() {
		t.Fatalf("reconciler decided while the task's own result was pending: %s", describe(got))
	}
	alt := taskqueue.AltResultJobID(viaReconciler.ID.String(), 0, "n0nce")
	if err := e.client.ZRem(e.ctx, "bull:"+e.names.Results()+":delayed", alt).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.client.ZAdd(e.ctx, "bull:"+e.names.Results()+":failed", redis.Z{Score: 1, Member: alt}).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	if got := e.get(viaReconciler.ID); got.Status != task.StatusCompleted || !sameJSON(got.Result, `"genuine"`) {
		t.Errorf("task via reconciler = %s", describe(got))
	}
}

// TestForgedEventsAreRejected: events added by hand to the task queue's
// events stream are checked against the job they name: a failed event for
// a job that is not failed, an active event for a job no worker took, an
// event for a job that does not exist: none changes a task. The events of
// the real job still apply.
func TestForgedEventsAreRejected(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{Attempts: 1})
	reg := prometheus.NewRegistry()
	m, err := dispatch.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := dispatch.NewEventsListener(e.client, e.tasks, e.svc, e.names, dispatch.EventsOptions{Logger: e.log, Metrics: m,
		CheckpointEvery: 50 * time.Millisecond, BlockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.run("events listener", l)
	untaken := e.create(1)[0]
	// Direct: the outcome of each forged event.
	for _, c := range []struct {
		ev   bullmq.Event
		want dispatch.Outcome
	}{
		{bullmq.Event{ID: "1-0", Type: bullmq.EventFailed, JobID: untaken.ID.String(), FailedReason: "forged"}, dispatch.EventRejected},
		{bullmq.Event{ID: "1-1", Type: bullmq.EventActive, JobID: untaken.ID.String()}, dispatch.EventRejected},
		{bullmq.Event{ID: "1-2", Type: bullmq.EventFailed, JobID: "01a23000-0000-7000-8000-000000000000", FailedReason: "forged"}, dispatch.EventGone},
	} {
		got, err := l.Apply(e.ctx, c.ev)
		if err != nil || got != c.want {
			t.Errorf("Apply(%s of %s) = %s, %v; want %s", c.ev.Type, c.ev.JobID, got, err, c.want)
		}
	}
	// Through the stream, while a worker holds the job: still running.
	h := e.hold("w", 1)
	h.wait(untaken.ID)
	e.waitStatus(untaken.ID, task.StatusRunning)
	before := counter(t, reg, "orchestrator_events_applied_total", "type=failed", "outcome=stale")
	if err := e.client.XAdd(e.ctx, &redis.XAddArgs{Stream: "bull:" + e.names.Tasks() + ":events",
		Values: []string{"event", "failed", "jobId", untaken.ID.String(), "failedReason", "forged", "prev", "active"}}).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for counter(t, reg, "orchestrator_events_applied_total", "type=failed", "outcome=stale") == before {
		if time.Now().After(deadline) {
			t.Fatal("the forged failed event was never handled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.get(untaken.ID); got.Status != task.StatusRunning || got.ErrorMessage != nil {
		t.Errorf("forged failed event changed the task: %s", describe(got))
	}
	if n := counter(t, reg, "orchestrator_dead_letters_total", "loop=events", "reason=unverified"); n != 2 {
		t.Errorf("dead letters (events, unverified) = %v, want 2", n)
	}
	// The real failure applies, with the job's own reason.
	h.finish(untaken.ID, nil, bullmq.Unrecoverable(errText("real failure")))
	got := e.waitStatus(untaken.ID, task.StatusFailed)
	if got.ErrorMessage == nil || *got.ErrorMessage != "real failure" {
		t.Errorf("failed task = %s", describe(got))
	}
}
