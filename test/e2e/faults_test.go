package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// checkExactlyOnce asserts every task is completed and ran to success
// exactly once in the workers.
func checkExactlyOnce(t *testing.T, final map[string]apiTask, workers ...*nodeWorker) {
	t.Helper()
	var completed []string
	for id, tk := range final {
		if tk.Status == "completed" {
			completed = append(completed, id)
		}
	}
	done := doneCounts(t, completed, workers...)
	bad := 0
	for id, tk := range final {
		if tk.Status != "completed" || done[id] != 1 {
			bad++
			if bad <= 5 {
				t.Errorf("task %s: status %s, ran %d times; want completed once", id, tk.Status, done[id])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d tasks lost or duplicated", bad, len(final))
	}
}

// TestRedisDownWhileCreating: with Redis stopped, tasks are still accepted
// (pending); once Redis is back the relay queues them and all complete,
// none twice.
func TestRedisDownWhileCreating(t *testing.T) {
	testenv.NodeDir(t)
	rs := testenv.StartRedis(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": rs.URL(), "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t)})
	w := startNodeWorker(t, workerConfig(rs.URL(), queue, "node-a", nil))
	var ids []string
	for i := 0; i < 20; i++ {
		ids = append(ids, o.create("before").ID)
	}
	rs.Stop()
	downAt := time.Now()
	var slow []string
	for i := 0; i < 40; i++ {
		t0 := time.Now()
		tk := o.create("while-down")
		if d := time.Since(t0); d > 50*time.Millisecond {
			slow = append(slow, fmt.Sprintf("#%d %s", i, d.Round(time.Millisecond)))
		}
		if tk.Status != "pending" {
			t.Errorf("task created while Redis is down has status %s, want pending", tk.Status)
		}
		ids = append(ids, tk.ID)
	}
	var health map[string]any
	if code, _ := o.do("GET", "/health", nil, &health); code != 503 {
		t.Errorf("GET /health with Redis down = %d, want 503", code)
	}
	var stats struct {
		Queue struct {
			Available bool   `json:"available"`
			Error     string `json:"error"`
		} `json:"queue"`
	}
	if code, err := o.do("GET", "/tasks/stats", nil, &stats); err != nil || code != 200 || stats.Queue.Available || stats.Queue.Error == "" {
		t.Errorf("GET /tasks/stats with Redis down = %d %v %+v, want 200 with queue unavailable", code, err, stats)
	}
	t.Logf("40 creates with Redis down took %s; slow ones: %v", time.Since(downAt).Round(time.Millisecond), slow)
	rs.Start()
	upAt := time.Now()
	final := o.waitTerminal(ids, 60*time.Second)
	t.Logf("all tasks finished %s after Redis restarted", time.Since(upAt).Round(time.Millisecond))
	checkExactlyOnce(t, final, w)
}

// TestOrchestratorKilledWhileResultsPending: results posted while the
// orchestrator is dead are all applied after it restarts.
func TestOrchestratorKilledWhileResultsPending(t *testing.T) {
	testenv.NodeDir(t)
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": testenv.PostgresURL(t)})
	var ids []string
	for i := 0; i < 100; i++ {
		ids = append(ids, o.create("work").ID)
	}
	o.kill()
	w := startNodeWorker(t, workerConfig(redisURL, queue, "node-a", nil))
	waitCount(t, len(ids), 60*time.Second, func() map[string]int { return w.count("done") })
	o.start()
	final := o.waitTerminal(ids, 60*time.Second)
	checkExactlyOnce(t, final, w)
}

// TestDatabaseDownWhileResultsArrive: results that arrive while PostgreSQL
// is stopped are applied once it is back.
func TestDatabaseDownWhileResultsArrive(t *testing.T) {
	testenv.NodeDir(t)
	pg := testenv.StartPostgres(t)
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue, "DATABASE_URL": pg.URL})
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, o.create("sleep:1500").ID)
	}
	w := startNodeWorker(t, workerConfig(redisURL, queue, "node-a", map[string]any{"concurrency": 30}))
	waitCount(t, len(ids), 20*time.Second, func() map[string]int { return w.count("start") })
	pg.Stop()
	waitCount(t, len(ids), 30*time.Second, func() map[string]int { return w.count("done") })
	time.Sleep(time.Second) // results reach the consumer while the database is away
	pg.Start()
	final := o.waitTerminal(ids, 60*time.Second)
	checkExactlyOnce(t, final, w)
}

// TestEventsTrimmedWhileDown: while the orchestrator is down, a worker
// that posts no results runs every task and the events stream is trimmed
// to nothing; after restart the reconciler brings every task in line:
// completed from the job's return value, failed with the job's reason.
func TestEventsTrimmedWhileDown(t *testing.T) {
	testenv.NodeDir(t)
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t), "TASK_BACKOFF_MS": "50"})
	var okIDs, badIDs []string
	for i := 0; i < 20; i++ {
		okIDs = append(okIDs, o.create(fmt.Sprintf("job %d", i)).ID)
	}
	for i := 0; i < 5; i++ {
		badIDs = append(badIDs, o.create("always-fail").ID)
	}
	o.kill()
	w := startNodeWorker(t, workerConfig(redisURL, queue, "node-a", map[string]any{"noResults": true}))
	waitCount(t, len(okIDs), 30*time.Second, func() map[string]int { return w.count("done") })
	waitCount(t, len(okIDs)+len(badIDs), 30*time.Second, func() map[string]int {
		out := w.count("done")
		for id, n := range w.count("fail") {
			if n == 3 {
				out[id] = 1
			}
		}
		return out
	})
	c := testenv.RedisClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.XTrimMaxLen(ctx, "bull:"+queue+":events", 0).Err(); err != nil {
		t.Fatal(err)
	}
	o.start()
	final := o.waitTerminal(append(append([]string{}, okIDs...), badIDs...), 60*time.Second)
	for _, id := range okIDs {
		if tk := final[id]; tk.Status != "completed" || len(tk.Result) == 0 {
			t.Errorf("task %s = %s, want completed with the job's return value", id, tk.String())
		}
	}
	for _, id := range badIDs {
		if tk := final[id]; tk.Status != "failed" || tk.ErrorMessage == nil || *tk.ErrorMessage != "always fails" {
			t.Errorf("task %s = %s, want failed 'always fails'", id, tk.String())
		}
	}
}

// TestStartsWhileRedisDown: the orchestrator starts and accepts tasks with
// Redis down, and queues them once Redis comes up.
func TestStartsWhileRedisDown(t *testing.T) {
	testenv.NodeDir(t)
	rs := testenv.StartRedis(t)
	rs.Stop()
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": rs.URL(), "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t)})
	var ids []string
	for i := 0; i < 10; i++ {
		tk := o.create("hello")
		if tk.Status != "pending" {
			t.Errorf("status = %s, want pending", tk.Status)
		}
		ids = append(ids, tk.ID)
	}
	rs.Start()
	w := startNodeWorker(t, workerConfig(rs.URL(), queue, "node-a", nil))
	final := o.waitTerminal(ids, 60*time.Second)
	checkExactlyOnce(t, final, w)
}

// TestOrchestratorKilledMidFlow: the orchestrator is SIGKILLed while
// tasks run and results flow; after a restart every task is completed,
// once (a result job its consumer held comes back through the stalled
// checker; events it missed are replayed from its checkpoint).
func TestOrchestratorKilledMidFlow(t *testing.T) {
	testenv.NodeDir(t)
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": testenv.PostgresURL(t)})
	w := startNodeWorker(t, workerConfig(redisURL, queue, "node-a", map[string]any{"concurrency": 16}))
	var ids []string
	for i := 0; i < 200; i++ {
		ids = append(ids, o.create("sleep:20").ID)
	}
	waitCount(t, 50, 30*time.Second, func() map[string]int { return w.count("done") })
	o.kill()
	waitCount(t, len(ids), 60*time.Second, func() map[string]int { return w.count("done") })
	o.start()
	final := o.waitTerminal(ids, 90*time.Second)
	checkExactlyOnce(t, final, w)
}
