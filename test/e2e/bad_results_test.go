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

// TestBadResultsDoNotStopTheConsumer: malformed result jobs fail with a
// clear reason, and a good result posted after them is applied.
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
	}
	var ids []string
	for _, b := range bad {
		j, err := results.Add(ctx, "result", b.data, &bullmq.JobOptions{Attempts: 3})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if _, err := results.Add(ctx, "result", map[string]any{"taskId": tk.ID, "status": "completed", "result": "fine"}, nil); err != nil {
		t.Fatal(err)
	}
	got := o.waitStatus(tk.ID, "completed", 20*time.Second)
	if string(got.Result) != `"fine"` {
		t.Errorf("task result = %s, want \"fine\"", got.Result)
	}
	for i, id := range ids {
		testenv.Eventually(t, 10*time.Second, fmt.Sprintf("bad result %d to fail", i), func() error {
			st, err := results.GetJobState(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if st != bullmq.StateFailed {
				return fmt.Errorf("in state %s, want failed", st)
			}
			return nil
		})
		j, err := results.GetJob(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if j.AttemptsMade != 1 || !strings.Contains(j.FailedReason, bad[i].reason) {
			t.Errorf("bad result %d: %d attempts, reason %q; want 1 attempt, %q", i, j.AttemptsMade, j.FailedReason, bad[i].reason)
		}
	}
}
