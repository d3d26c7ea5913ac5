package e2e

import (
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// TestTwoReplicas: two orchestrators on one Redis and one database, each
// running every loop; tasks created on both are all completed, each once,
// and each replica sees the other's tasks.
func TestTwoReplicas(t *testing.T) {
	testenv.NodeDir(t)
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	env := map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue, "DATABASE_URL": testenv.PostgresURL(t),
		"TASK_BACKOFF_MS": "100"}
	a := startOrchestrator(t, env)
	b := startOrchestrator(t, env)
	w := startNodeWorker(t, workerConfig(redisURL, queue, "node-a", nil))
	var ids []string
	for i := 0; i < 60; i++ {
		o := a
		if i%2 == 1 {
			o = b
		}
		prompt := "hello"
		if i%10 == 0 {
			prompt = "fail-twice"
		}
		ids = append(ids, o.create(prompt).ID)
	}
	final := b.waitTerminal(ids, 60*time.Second)
	checkExactlyOnce(t, final, w)
	for _, id := range ids {
		if tk, err := a.get(id); err != nil || tk.Status != "completed" {
			t.Errorf("replica a sees task %s as %s (%v)", id, tk.Status, err)
		}
	}
}
