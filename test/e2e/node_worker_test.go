package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestNodeWorkerEndToEnd: tasks created through the API are run by an
// official Node BullMQ worker; running is visible while the worker holds a
// task; results complete tasks; a task that throws twice then succeeds is
// completed after 3 attempts with the promised backoff; one that always
// throws fails with its message. It runs with the official package's v5
// and v6 lines.
func TestNodeWorkerEndToEnd(t *testing.T) {
	testenv.NodeDir(t)
	for _, version := range []string{"5", "6"} {
		t.Run("bullmq"+version, func(t *testing.T) { nodeWorkerEndToEnd(t, version) })
	}
}

func nodeWorkerEndToEnd(t *testing.T, version string) {
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t), "TASK_BACKOFF_MS": "300"})
	w := startNodeWorker(t, workerConfig(redisURL, queue, "node-a", map[string]any{"version": version}))

	var ok []string
	for i := 0; i < 10; i++ {
		ok = append(ok, o.create("hello").ID)
	}
	slow := o.create("sleep:2000").ID
	flaky := o.create("fail-twice").ID
	broken := o.create("always-fail").ID

	running := o.waitStatus(slow, "running", 15*time.Second)
	if running.WorkerID == nil || *running.WorkerID != "node-a" || running.StartedAt == nil || running.Attempts != 1 {
		t.Errorf("running task = %s, want workerId node-a, startedAt, attempts 1", running.String())
	}
	all := append(append([]string{}, ok...), slow, flaky, broken)
	final := o.waitTerminal(all, 30*time.Second)
	for _, id := range append(ok, slow) {
		tk := final[id]
		if tk.Status != "completed" || tk.WorkerID == nil || *tk.WorkerID != "node-a" || !strings.Contains(string(tk.Result), `"answer":"ok"`) ||
			tk.ExecutionTime == nil || tk.CompletedAt == nil {
			t.Errorf("task %s = %s, want completed by node-a with result", id, tk.String())
		}
	}
	if tk := final[flaky]; tk.Status != "completed" || tk.Attempts != 3 {
		t.Errorf("fail-twice task = %s, want completed with attempts 3", tk.String())
	}
	if tk := final[broken]; tk.Status != "failed" || tk.ErrorMessage == nil || *tk.ErrorMessage != "always fails" || tk.Attempts != 3 {
		t.Errorf("always-fail task = %s, want failed 'always fails' after 3 attempts", tk.String())
	}

	// Backoff: exponential from 300ms: attempt 2 starts ≥ 300ms after attempt
	// 1 failed, attempt 3 ≥ 600ms after attempt 2 failed.
	var fails, starts = map[int]int64{}, map[int]int64{}
	for _, ev := range w.snapshot() {
		if ev.ID != flaky {
			continue
		}
		switch ev.Ev {
		case "fail":
			fails[ev.Attempt] = ev.T
		case "start":
			starts[ev.Attempt] = ev.T
		}
	}
	if d := starts[2] - fails[1]; d < 300 {
		t.Errorf("attempt 2 started %dms after attempt 1 failed, want ≥ 300ms", d)
	}
	if d := starts[3] - fails[2]; d < 600 {
		t.Errorf("attempt 3 started %dms after attempt 2 failed, want ≥ 600ms", d)
	}
	// Every task ran to success exactly once.
	want := append(append([]string{}, ok...), slow, flaky)
	done := doneCounts(t, want, w)
	for _, id := range want {
		if done[id] != 1 {
			t.Errorf("task %s succeeded %d times in the worker, want 1", id, done[id])
		}
	}
}

// TestNodeWorkerKilledMidTask: a Node worker SIGKILLed while it holds a
// task; the job's lock expires, the stalled checker of another worker
// gives it back, and the other worker completes it, once.
func TestNodeWorkerKilledMidTask(t *testing.T) {
	testenv.NodeDir(t)
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t)})
	fast := map[string]any{"lockDuration": 1500, "stalledInterval": 1000}
	a := startNodeWorker(t, workerConfig(redisURL, queue, "node-a", fast))
	id := o.create("sleep:3000").ID
	tk := o.waitStatus(id, "running", 15*time.Second)
	if tk.WorkerID == nil || *tk.WorkerID != "node-a" {
		t.Fatalf("running task = %s, want node-a", tk.String())
	}
	a.kill()
	b := startNodeWorker(t, workerConfig(redisURL, queue, "node-b", fast))
	tk = o.waitStatus(id, "completed", 30*time.Second)
	if tk.WorkerID == nil || *tk.WorkerID != "node-b" || tk.Attempts < 2 {
		t.Errorf("recovered task = %s, want completed by node-b on attempt ≥ 2", tk.String())
	}
	if n := doneCounts(t, []string{id}, b)[id]; n != 1 {
		t.Errorf("node-b completed the task %d times, want 1", n)
	}
	if n := a.count("done")[id]; n != 0 {
		t.Errorf("killed node-a completed the task %d times, want 0", n)
	}
}
