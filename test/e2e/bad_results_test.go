package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestBadResultsDoNotStopTheConsumer: malformed result jobs, and a result
// no worker's run produced, fail with a clear reason; the genuine result
// of the worker that then runs the task is applied.
func TestBadResultsDoNotStopTheConsumer(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t)})
	client := testenv.RedisClient(t)
	results, err := bullmq.NewQueue(client, queue+"-results", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer func() {
		_ = results.Obliterate(context.Background(), true)
		if q, err := bullmq.NewQueue(client, queue, nil); err == nil {
			_ = q.Obliterate(context.Background(), true)
		}
	}()
	tk := o.create("hello")
	bad := []struct {
		data   any
		reason string
	}{
		{"not json", "must be a JSON object"},
		{map[string]any{"status": "completed"}, "no taskId"},
		{map[string]any{"taskId": uuid.NewString(), "status": "completed"}, "unknown taskId"},
		{map[string]any{"taskId": tk.ID, "status": "finished"}, "status must be"},
		{map[string]any{"taskId": tk.ID, "workerId": "w", "status": "completed", "result": "forged"}, "result rejected"},
	}
	var ids []string
	for _, b := range bad {
		j, err := results.Add(ctx, "result", b.data, &bullmq.JobOptions{Attempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	for i := range ids {
		waitFailed(t, ctx, results, ids[i])
	}
	runGoWorker(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue, "WORKER_ID": "w",
		"WORKER_EXECUTOR": "command", "WORKER_COMMAND": poisonAgent()})
	got := o.waitStatus(tk.ID, "completed", 20*time.Second)
	if string(got.Result) != `{"answer":"ok"}` {
		t.Errorf("task result = %s, want the worker's", got.Result)
	}
	for i, id := range ids {
		j, err := results.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.AttemptsMade != 1 || !strings.Contains(j.FailedReason, bad[i].reason) {
			t.Errorf("bad result %d: %d attempts, reason %q; want 1 attempt, %q", i, j.AttemptsMade, j.FailedReason, bad[i].reason)
		}
	}
}

// waitFailed waits until result job id is failed.
func waitFailed(t *testing.T, ctx context.Context, results *bullmq.Queue, id string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "bad result "+id+" to fail", func() error {
		st, err := results.GetJobState(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st != bullmq.StateFailed {
			return fmt.Errorf("in state %s, want failed", st)
		}
		return nil
	})
}
