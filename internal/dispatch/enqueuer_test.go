package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/dispatch"
	"github.com/agentorch/orchestrator/internal/redisconn"
	"github.com/agentorch/orchestrator/internal/task"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

func TestEnqueueOnCreate(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	tk := e.create(1)[0]
	if tk.Status != task.StatusQueued {
		t.Fatalf("created task status = %s, want queued", tk.Status)
	}
	job, err := e.tasks.GetJob(e.ctx, tk.ID.String())
	if err != nil {
		t.Fatalf("get job: %v", err)
	}
	if job.Name != taskqueue.JobName {
		t.Errorf("job name = %q, want %q", job.Name, taskqueue.JobName)
	}
	d := jobData(t, job)
	if d.TaskID != tk.ID.String() || d.Code != tk.Code || d.Prompt != tk.Prompt || d.Timeout != tk.Timeout {
		t.Errorf("job data = %+v, want the task's", d)
	}
	o := job.Opts
	if o.Attempts != 3 || o.Backoff == nil || o.Backoff.Type != "exponential" || o.Backoff.Delay != 2*time.Second {
		t.Errorf("job attempts/backoff = %d/%+v, want 3/exponential 2s", o.Attempts, o.Backoff)
	}
	if rc := o.RemoveOnComplete; rc == nil || rc.Age != time.Hour || rc.Count != 1000 {
		t.Errorf("removeOnComplete = %+v, want age 1h count 1000", rc)
	}
	if rf := o.RemoveOnFail; rf == nil || rf.Age != 7*24*time.Hour || rf.Count != 10000 {
		t.Errorf("removeOnFail = %+v, want age 7d count 10000", rf)
	}

	// Idempotent: enqueueing again adds nothing.
	for i := 0; i < 3; i++ {
		if err := e.enqueuer.Enqueue(e.ctx, tk); err != nil {
			t.Fatalf("enqueue again: %v", err)
		}
	}
	counts, err := e.tasks.GetJobCounts(e.ctx, bullmq.StateWaiting)
	if err != nil {
		t.Fatal(err)
	}
	if counts[bullmq.StateWaiting] != 1 {
		t.Errorf("waiting jobs = %d after duplicate enqueues, want 1", counts[bullmq.StateWaiting])
	}
}

func TestEnqueuerOptionsValidated(t *testing.T) {
	e := newEnv(t, "sqlite", dispatch.EnqueuerOptions{})
	for _, o := range []dispatch.EnqueuerOptions{{Attempts: -1}, {KeepFailedAge: -time.Second}, {KeepCompletedCount: -1}} {
		if _, err := dispatch.NewEnqueuer(e.tasks, e.client, e.names, o); err == nil {
			t.Errorf("NewEnqueuer(%+v) accepted invalid options", o)
		}
	}
}

// TestEnqueueFailsFastWhileRedisDown: after one failed add, creating tasks
// does not wait on Redis; the tasks stay pending for the relay.
func TestEnqueueFailsFastWhileRedisDown(t *testing.T) {
	rs := testenv.StartRedis(t)
	client, err := redisconn.New(redisconn.Config{URL: rs.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	q, err := bullmq.NewQueue(client, "ff", nil)
	if err != nil {
		t.Fatal(err)
	}
	enq, err := dispatch.NewEnqueuer(q, client, taskqueue.Names{Queue: "ff"}, dispatch.EnqueuerOptions{FailFastFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	svc := task.NewService(openStore(t, "sqlite"), task.ServiceOptions{Enqueuer: enq, Logger: testLogger()})
	ctx := context.Background()
	rs.Stop()
	first, err := svc.Create(ctx, task.NewTask{Code: "c", Prompt: "p"})
	if err != nil || first.Status != task.StatusPending {
		t.Fatalf("create with Redis down = %v, %v; want pending", first, err)
	}
	start := time.Now()
	for i := 0; i < 20; i++ {
		tk, err := svc.Create(ctx, task.NewTask{Code: "c", Prompt: "p"})
		if err != nil || tk.Status != task.StatusPending {
			t.Fatalf("create = %v, %v", tk, err)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20 creates with Redis down took %s, want fast failures", d)
	}
	if err := enq.Enqueue(ctx, first); !errors.Is(err, dispatch.ErrQueueUnavailable) {
		t.Errorf("enqueue while paused: %v, want ErrQueueUnavailable", err)
	}
}
