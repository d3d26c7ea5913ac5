package e2e

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestForgeriesThroughRedis: with the real orchestrator and bin/worker, a
// result job added by hand, a failed event added to the events stream, a
// cancel published by hand, and job ids queued without their job hash:
// none changes a task or runs anything. The task they aim at completes
// with its worker's genuine answer (posted under another id, the agreed
// one being squatted by the forged result).
func TestForgeriesThroughRedis(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "forge")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t)})
	client := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := bullmq.NewQueue(client, queue+"-results", nil)
	if err != nil {
		t.Fatal(err)
	}
	base := "bull:" + queue + ":"

	// No worker yet: a result for the queued task is forged.
	tk := o.create("sleep3 the target")
	forged := taskqueue.Result{TaskID: tk.ID, WorkerID: "forger", Status: taskqueue.ResultCompleted, Result: json.RawMessage(`"forged"`)}
	rid := taskqueue.ResultJobID(tk.ID, 0)
	if _, err := results.Add(ctx, taskqueue.ResultJobName, forged, &bullmq.JobOptions{JobID: rid}); err != nil {
		t.Fatal(err)
	}
	waitFailed(t, ctx, results, rid)
	if j, err := results.GetJob(ctx, rid); err != nil || !strings.Contains(j.FailedReason, "result rejected") {
		t.Errorf("forged result job: %v %v", j, err)
	}
	if got, _ := o.get(tk.ID); got.Status != "queued" || (len(got.Result) > 0 && string(got.Result) != "null") {
		t.Fatalf("forged result changed the task: %s", got.String())
	}
	// Ids without a job hash, ahead of nothing and behind the target.
	ghosts := []string{"ghost-1", uuid.NewString()}
	for _, g := range ghosts {
		if err := client.LPush(ctx, base+"wait", g).Err(); err != nil {
			t.Fatal(err)
		}
	}

	workerHTTP := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	w := runGoWorker(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue, "WORKER_ID": "genuine",
		"WORKER_EXECUTOR": "command", "WORKER_COMMAND": poisonAgent(), "WORKER_HTTP_ADDR": workerHTTP})
	o.waitStatus(tk.ID, "running", 20*time.Second)
	// While it runs: a failed event and a cancel, both by hand.
	if err := client.XAdd(ctx, &redis.XAddArgs{Stream: base + "events",
		Values: []string{"event", "failed", "jobId", tk.ID, "failedReason", "forged failure", "prev", "active"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.Publish(ctx, "bull:"+queue+":cancel", tk.ID).Err(); err != nil {
		t.Fatal(err)
	}
	got := o.waitStatus(tk.ID, "completed", 30*time.Second)
	if string(got.Result) != `{"answer":"ok"}` || got.WorkerID == nil || *got.WorkerID != "genuine" || got.ErrorMessage != nil {
		t.Errorf("target task = %s, want completed by the genuine worker", got.String())
	}
	wbase := "http://" + workerHTTP
	for name, want := range map[string]string{
		"worker_jobs_missing_total":                        "2",
		`worker_cancel_requests_total{outcome="rejected"}`: "1",
		`worker_cancel_requests_total{outcome="applied"}`:  "0",
		"worker_results_rerouted_total":                    "1",
		`worker_tasks_total{outcome="completed"}`:          "1",
	} {
		if v := metric(t, wbase, name); v != want {
			t.Errorf("worker %s = %q, want %s", name, v, want)
		}
	}
	if v := metric(t, o.url, `orchestrator_dead_letters_total{loop="results",reason="unverified"}`); v != "1" {
		t.Errorf("orchestrator dead letters (results, unverified) = %q, want 1", v)
	}
	log := w.log()
	for _, g := range ghosts {
		if strings.Contains(log, "task started") && strings.Contains(log, "task_id="+g) {
			t.Errorf("the worker ran ghost %s", g)
		}
		if n := client.Exists(ctx, base+g).Val(); n != 0 {
			t.Errorf("a job hash was created for ghost %s", g)
		}
	}
	if n := strings.Count(log, "task started"); n != 1 {
		t.Errorf("the worker started %d runs, want 1", n)
	}
}
