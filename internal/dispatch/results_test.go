package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

func TestResultConsumer(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, dispatch.EnqueuerOptions{})
			e.consumer(dispatch.ResultsOptions{Concurrency: 4})
			tks := e.create(4)
			done, failed, dup, cancelled := tks[0], tks[1], tks[2], tks[3]
			h := e.hold("w9", 4)
			ms := int64(1234)

			h.post(done.ID, taskqueue.Result{Status: "completed", Result: []byte(`{"answer":42}`), ExecutionTime: &ms})
			h.post(failed.ID, taskqueue.Result{Status: "failed", ErrorMessage: ptr("exit 1")})
			got := e.waitStatus(done.ID, task.StatusCompleted)
			if got.WorkerID == nil || *got.WorkerID != "w9" || !sameJSON(got.Result, `{"answer":42}`) ||
				got.ExecutionTime == nil || *got.ExecutionTime != 1234 || got.CompletedAt == nil || got.Attempts != 1 {
				t.Errorf("completed = %s", describe(got))
			}
			got = e.waitStatus(failed.ID, task.StatusFailed)
			if got.ErrorMessage == nil || *got.ErrorMessage != "exit 1" {
				t.Errorf("failed = %s", describe(got))
			}

			// Twice the same result, then a contradicting one: the first wins.
			// The first is applied before the others are posted: with
			// Concurrency 4, results posted together apply in any order.
			h.wait(dup.ID)
			e.postResult(taskqueue.Result{TaskID: dup.ID.String(), WorkerID: "w9", Status: "completed", Result: []byte(`1`)})
			e.waitStatus(dup.ID, task.StatusCompleted)
			e.postResult(taskqueue.Result{TaskID: dup.ID.String(), WorkerID: "w9", Status: "completed", Result: []byte(`1`)})
			e.postResult(taskqueue.Result{TaskID: dup.ID.String(), WorkerID: "w9", Status: "failed", ErrorMessage: ptr("late")})

			// A result for a cancelled task is recorded, the status stays.
			h.wait(cancelled.ID)
			if _, err := e.svc.Cancel(e.ctx, cancelled.ID); err != nil {
				t.Fatal(err)
			}
			h.post(cancelled.ID, taskqueue.Result{Status: "failed", ErrorMessage: ptr("cancelled"), ExecutionTime: &ms})
			e.waitTask(cancelled.ID, "cancelled with late result", func(tk *task.Task) bool {
				return tk.Status == task.StatusCancelled && tk.ErrorMessage != nil && *tk.ErrorMessage == "cancelled"
			})
			waitQueueSettled(t, e, e.results, 5)
			got = e.get(dup.ID)
			if got.Status != task.StatusCompleted || string(got.Result) != `1` || got.ErrorMessage != nil {
				t.Errorf("duplicate results changed the task: %s", describe(got))
			}
		})
	}
}

// waitQueueSettled waits until the queue has no waiting or active job and
// completed+failed = n.
func waitQueueSettled(t *testing.T, e *env, q *bullmq.Queue, n int64) map[bullmq.JobState]int64 {
	t.Helper()
	var c map[bullmq.JobState]int64
	testenv.Eventually(t, 20*time.Second, "queue "+q.Name()+" to settle", func() error {
		var err error
		c, err = q.GetJobCounts(e.ctx, bullmq.StateWaiting, bullmq.StateActive, bullmq.StateDelayed, bullmq.StateCompleted, bullmq.StateFailed)
		if err != nil {
			t.Fatal(err)
		}
		if c[bullmq.StateWaiting]+c[bullmq.StateActive]+c[bullmq.StateDelayed] != 0 || c[bullmq.StateCompleted]+c[bullmq.StateFailed] < n {
			return fmt.Errorf("counts %v", c)
		}
		return nil
	})
	return c
}

// TestResultConsumerRejectsMalformed: bad results fail as unrecoverable
// with a clear reason, and the consumer goes on.
func TestResultConsumerRejectsMalformed(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	e.consumer(dispatch.ResultsOptions{})
	tk := e.create(1)[0]
	bad := []struct {
		data   any
		reason string
	}{
		{"not json at all", "must be a JSON object"},
		{map[string]any{"status": "completed"}, "no taskId"},
		{map[string]any{"taskId": "nope", "status": "completed"}, "not a task id"},
		{map[string]any{"taskId": uuid.NewString(), "status": "completed"}, "unknown taskId"},
		{map[string]any{"taskId": tk.ID.String(), "status": "done"}, "status must be"},
		{map[string]any{"taskId": tk.ID.String(), "status": "completed", "executionTime": "fast"}, "not a valid result"},
		{[]int{1, 2}, "must be a JSON object"},
	}
	var ids []string
	for _, b := range bad {
		j, err := e.results.Add(e.ctx, "result", b.data, &bullmq.JobOptions{Attempts: 5})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	e.hold("w", 1).post(tk.ID, taskqueue.Result{Status: "completed"})
	e.waitStatus(tk.ID, task.StatusCompleted)
	waitQueueSettled(t, e, e.results, int64(len(bad)+1))
	for i, id := range ids {
		j, err := e.results.GetJob(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.AttemptsMade != 1 || !strings.Contains(j.FailedReason, bad[i].reason) || !strings.Contains(j.FailedReason, "malformed result") {
			t.Errorf("bad result %d: attempts %d, reason %q; want 1 attempt and %q", i, j.AttemptsMade, j.FailedReason, bad[i].reason)
		}
	}
}

// flakyStore fails Apply and Ping while down is set, like a database that
// is away.
type flakyStore struct {
	task.Store
	down  atomic.Bool
	calls atomic.Int32
}

func (s *flakyStore) Apply(ctx context.Context, c task.Change) (*task.Task, error) {
	s.calls.Add(1)
	if s.down.Load() {
		return nil, errors.New("connection refused")
	}
	return s.Store.Apply(ctx, c)
}

func (s *flakyStore) Ping(ctx context.Context) error {
	if s.down.Load() {
		return errors.New("connection refused")
	}
	return s.Store.Ping(ctx)
}

// TestResultConsumerRetriesWhileDatabaseDown: results that arrive while the
// database fails are applied when it is back; none is lost.
func TestResultConsumerRetriesWhileDatabaseDown(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	fs := &flakyStore{Store: e.store}
	fs.down.Store(true)
	c, err := dispatch.NewResultConsumer(e.client, task.NewService(fs, task.ServiceOptions{}), e.names, dispatch.ResultsOptions{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	e.run("consumer", c)
	tks := e.create(5)
	h := e.hold("w", 5)
	for _, tk := range tks {
		h.post(tk.ID, taskqueue.Result{Status: "completed"})
	}
	testenv.Eventually(t, 10*time.Second, "10 tries while the database is down", func() error {
		if n := fs.calls.Load(); n < 10 {
			return fmt.Errorf("consumer tried %d times", n)
		}
		return nil
	})
	fs.down.Store(false)
	for _, tk := range tks {
		e.waitStatus(tk.ID, task.StatusCompleted)
	}
	counts := waitQueueSettled(t, e, e.results, 5)
	if counts[bullmq.StateFailed] != 0 {
		t.Errorf("failed result jobs = %d, want 0", counts[bullmq.StateFailed])
	}
}

// TestResultConsumerShutdownKeepsHeldResults: a result still being retried
// at shutdown is left active; its lock expires and the next consumer's
// stalled checker gives it back, so it is applied.
func TestResultConsumerShutdownKeepsHeldResults(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	fs := &flakyStore{Store: e.store}
	fs.down.Store(true)
	opts := dispatch.ResultsOptions{Logger: e.log, LockDuration: 300 * time.Millisecond, ShutdownTimeout: 100 * time.Millisecond}
	first, err := dispatch.NewResultConsumer(e.client, task.NewService(fs, task.ServiceOptions{}), e.names, opts)
	if err != nil {
		t.Fatal(err)
	}
	tk := e.create(1)[0]
	e.hold("w", 1).post(tk.ID, taskqueue.Result{Status: "completed"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Run(ctx) }()
	testenv.WaitFor(t, 10*time.Second, "a try while the database is down", func() bool { return fs.calls.Load() > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first consumer: %v", err)
	}
	if got := e.get(tk.ID); got.Status == task.StatusCompleted {
		t.Fatal("result applied while the database was down")
	}
	fs.down.Store(false)
	second, err := dispatch.NewResultConsumer(e.client, task.NewService(fs, task.ServiceOptions{}), e.names, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.run("second consumer", second)
	e.waitStatus(tk.ID, task.StatusCompleted)
}

// TestResultCarriesTheJobsAttempts: a worker posts its final result while
// the last attempt runs, possibly before the events listener applied that
// attempt's start; the task still ends with the attempt count of its job.
func TestResultCarriesTheJobsAttempts(t *testing.T) {
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind, dispatch.EnqueuerOptions{})
			tk := e.create(1)[0]
			e.hold("w", 1).wait(tk.ID)
			// Attempt 3 is running: two made, three started. No listener runs.
			if err := e.client.HSet(e.ctx, "bull:"+e.names.Tasks()+":"+tk.ID.String(), "atm", "2", "ats", "3").Err(); err != nil {
				t.Fatal(err)
			}
			c, err := dispatch.NewResultConsumer(e.client, e.svc, e.names, dispatch.ResultsOptions{Logger: e.log})
			if err != nil {
				t.Fatal(err)
			}
			data, _ := json.Marshal(map[string]any{"taskId": tk.ID.String(), "workerId": "w", "status": "failed",
				"result": nil, "errorMessage": "always fails", "executionTime": 5})
			if _, err := c.Process(e.ctx, &bullmq.Job{ID: "r1", Data: data}); err != nil {
				t.Fatal(err)
			}
			got := e.get(tk.ID)
			if got.Status != task.StatusFailed || got.Attempts != 3 {
				t.Fatalf("task = %s, want failed after 3 attempts", describe(got))
			}
		})
	}
}
