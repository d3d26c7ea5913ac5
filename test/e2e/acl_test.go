package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// aclLines returns the ACL file documented in docs/redis-acl.md (the lines
// between its acl:begin and acl:end markers) for the task queue queue,
// with the default user switched on without a password for the test's own
// admin client.
func aclLines(t *testing.T, queue string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "redis-acl.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- acl:begin")
	block, _, ok2 := strings.Cut(rest, "<!-- acl:end")
	if !ok || !ok2 {
		t.Fatal("docs/redis-acl.md has no acl:begin/acl:end block")
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if !strings.HasPrefix(l, "user ") {
			continue
		}
		if l == "user default off" {
			l = "user default on nopass ~* &* +@all"
		}
		lines = append(lines, strings.ReplaceAll(l, "claude-tasks", queue))
	}
	if len(lines) != 3 {
		t.Fatalf("docs/redis-acl.md block has %d user lines, want default, orchestrator, worker", len(lines))
	}
	return lines
}

// aclClient is a client of srv logged in as user.
func aclClient(t *testing.T, addr, user, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: password, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestACLUsers: a private ACL-enabled Redis with the users of
// docs/redis-acl.md; the real orchestrator and bin/worker run as those
// users through completed, failed and cancelled tasks without a single
// denied command (ACL LOG stays empty), and each user is refused what it
// must not do.
func TestACLUsers(t *testing.T) {
	queue := testenv.UniqueName(t, "acl")
	aclFile := filepath.Join(t.TempDir(), "users.acl")
	if err := os.WriteFile(aclFile, []byte(strings.Join(aclLines(t, queue), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartRedisArgs(t, "--aclfile", aclFile)
	admin := aclClient(t, srv.Addr, "", "")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Every task notifies a webhook, so that the webhooks queue is used
	// under the orchestrator's ACL user too.
	secret := webhookSecret(t)
	hooks := newHookTarget(t, secret, 200)
	o := startOrchestrator(t, map[string]string{
		"REDIS_URL":  "redis://agentorch-orchestrator:orchestrator-secret@" + srv.Addr + "/0",
		"QUEUE_NAME": queue, "DATABASE_URL": "sqlite://" + testenv.SQLitePath(t),
		"TASK_ATTEMPTS": "2", "TASK_BACKOFF_MS": "100",
		"WEBHOOK_SECRET": secret, "WEBHOOK_URL": hooks.url, "WEBHOOK_ALLOW_PRIVATE": "true"})
	workerHTTP := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	runGoWorker(t, map[string]string{
		"REDIS_URL":  "redis://agentorch-worker:worker-secret@" + srv.Addr + "/0",
		"QUEUE_NAME": queue, "WORKER_ID": "acl-worker", "WORKER_EXECUTOR": "command", "WORKER_COMMAND": poisonAgent(),
		"WORKER_CONCURRENCY": "2", "WORKER_KILL_GRACE": "1s", "WORKER_HTTP_ADDR": workerHTTP})

	var ids []string
	for i := range 3 {
		ids = append(ids, o.create(fmt.Sprintf("normal %d", i)).ID)
	}
	failing := o.create("nul-stderr").ID
	slow := o.create("sleep30").ID
	done := o.waitTerminal(append(ids, failing), 60*time.Second)
	for _, id := range ids {
		if tk := done[id]; tk.Status != "completed" || tk.WorkerID == nil || *tk.WorkerID != "acl-worker" {
			t.Errorf("task %s = %s, want completed by acl-worker", id, tk.String())
		}
	}
	if tk := done[failing]; tk.Status != "failed" || tk.Attempts != 2 {
		t.Errorf("failing task = %s, want failed after 2 attempts", tk.String())
	}
	o.waitStatus(slow, "running", 30*time.Second)
	if code, err := o.do("POST", "/tasks/"+slow+"/cancel", nil, nil); err != nil || code != 200 {
		t.Fatalf("cancel: %d %v", code, err)
	}
	tk := o.waitFor(slow, "got its late result", 20*time.Second, func(tk apiTask) bool { return tk.ErrorMessage != nil })
	if tk.Status != "cancelled" || *tk.ErrorMessage != "cancelled" {
		t.Errorf("cancelled task = %s, want cancelled, stopped by the worker", tk.String())
	}
	if v := metric(t, "http://"+workerHTTP, `worker_cancel_requests_total{outcome="applied"}`); v != "1" {
		t.Errorf("worker applied %q cancels, want 1", v)
	}

	for _, id := range append(ids, failing, slow) {
		o.waitHook(id, "delivered its webhook", 30*time.Second, func(tk hookTask) bool {
			return tk.Webhook != nil && tk.Webhook.State == "delivered"
		})
	}

	// Neither user was refused anything while working.
	entries, err := admin.Do(ctx, "ACL", "LOG").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("Redis denied %d commands of the orchestrator or the worker:\n%s", len(entries), describeACLLog(entries))
	}

	// What each user must not do.
	worker := aclClient(t, srv.Addr, "agentorch-worker", "worker-secret")
	orch := aclClient(t, srv.Addr, "agentorch-orchestrator", "orchestrator-secret")
	prefix := "bull:" + queue
	other := "bull:another-queue:1"
	refused := []struct {
		who  string
		c    *redis.Client
		args []any
	}{
		{"worker", worker, []any{"PUBLISH", prefix + ":cancel", slow}},
		{"worker", worker, []any{"ZADD", prefix + "-cancel-requests", "1", slow}},
		{"worker", worker, []any{"DEL", prefix + "-cancel-requests"}},
		{"worker", worker, []any{"HGETALL", other}},
		{"worker", worker, []any{"HSET", prefix + "-webhooks:x", "a", "b"}},
		{"worker", worker, []any{"SET", "bull:" + queue + "x:1", "v"}},
		{"worker", worker, []any{"EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", other}},
		{"worker", worker, []any{"EVAL", "return redis.call('DEL', '" + other + "')", "0"}},
		{"worker", worker, []any{"EVAL", "return redis.call('ZADD', KEYS[1], 1, 'x')", "1", prefix + "-cancel-requests"}},
		{"worker", worker, []any{"INFO"}},
		{"worker", worker, []any{"KEYS", "*"}},
		{"worker", worker, []any{"FLUSHALL"}},
		{"worker", worker, []any{"CONFIG", "GET", "*"}},
		{"worker", worker, []any{"SUBSCRIBE", "bull:another-queue:cancel"}},
		{"orchestrator", orch, []any{"HGETALL", other}},
		{"orchestrator", orch, []any{"EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", other}},
		{"orchestrator", orch, []any{"KEYS", "*"}},
		{"orchestrator", orch, []any{"FLUSHALL"}},
		{"orchestrator", orch, []any{"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"}},
		{"orchestrator", orch, []any{"SUBSCRIBE", prefix + ":cancel"}},
		{"orchestrator", orch, []any{"PUBLISH", "bull:another-queue:cancel", "x"}},
	}
	for _, r := range refused {
		// A command is refused with NOPERM; a command run by a script with
		// "The user executing the script can't …".
		err := r.c.Do(ctx, r.args...).Err()
		if err == nil || !strings.Contains(err.Error(), "NOPERM") && !strings.Contains(err.Error(), "user executing the script can't") {
			t.Errorf("%s: %v = %v, want it refused", r.who, r.args, err)
		}
	}
	// And what a worker may do with the cancel requests: read them.
	if err := worker.ZScore(ctx, prefix+"-cancel-requests", slow).Err(); err != nil {
		t.Errorf("worker ZSCORE of the cancel requests: %v", err)
	}
	if n, err := admin.Exists(ctx, "bull:"+queue+"x:1", other).Result(); err != nil || n != 0 {
		t.Errorf("refused writes left %d keys (%v)", n, err)
	}
}

// describeACLLog formats ACL LOG entries: user, context, object, reason.
func describeACLLog(entries []any) string {
	var b strings.Builder
	for _, e := range entries {
		fields := map[string]any{}
		switch m := e.(type) {
		case map[any]any:
			for k, v := range m {
				fields[fmt.Sprint(k)] = v
			}
		case []any:
			for i := 0; i+1 < len(m); i += 2 {
				fields[fmt.Sprint(m[i])] = m[i+1]
			}
		}
		fmt.Fprintf(&b, "  user=%v context=%v object=%v reason=%v count=%v\n",
			fields["username"], fields["context"], fields["object"], fields["reason"], fields["count"])
	}
	return b.String()
}
