package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// startGoWorker builds and runs bin/worker with the command executor on
// testdata/agent.sh.
func startGoWorker(t *testing.T, redisURL, queue, id string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	build := exec.Command("go", "build", "-o", bin, "./cmd/worker")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build worker: %v\n%s", err, out)
	}
	logf, err := os.Create(filepath.Join(t.TempDir(), "worker.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "REDIS_URL="+redisURL, "QUEUE_NAME="+queue, "WORKER_ID="+id,
		"WORKER_EXECUTOR=command", "WORKER_COMMAND="+filepath.Join(testenv.RepoRoot(), "test", "e2e", "testdata", "agent.sh"),
		"WORKER_CONCURRENCY=4", "WORKER_KILL_GRACE=1s", "LOG_FORMAT=text")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("worker log (tail):\n%s", testenv.Tail(string(b), 4000))
		}
	})
}

// TestGoWorkerEndToEnd: the orchestrator with our own Go worker: tasks
// complete with the agent's answer; cancelling a running task stops it on
// the worker (cancel channel), the task stays cancelled and the worker's
// late result is recorded.
func TestGoWorkerEndToEnd(t *testing.T) {
	redisURL := testenv.RedisURL(t)
	queue := testenv.TaskQueue(t, "e2e")
	o := startOrchestrator(t, map[string]string{"REDIS_URL": redisURL, "QUEUE_NAME": queue,
		"DATABASE_URL": "sqlite://" + testenv.SQLitePath(t)})
	startGoWorker(t, redisURL, queue, "go-1")
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, o.create("quick").ID)
	}
	slow := o.create("slow").ID
	for id, tk := range o.waitTerminal(ids, 30*time.Second) {
		if tk.Status != "completed" || tk.WorkerID == nil || *tk.WorkerID != "go-1" || !strings.Contains(string(tk.Result), "agent.sh") {
			t.Errorf("task %s = %s, want completed by go-1 with the agent's answer", id, tk.String())
		}
	}
	o.waitStatus(slow, "running", 20*time.Second)
	start := time.Now()
	var cancelled apiTask
	if code, err := o.do("POST", "/tasks/"+slow+"/cancel", nil, &cancelled); err != nil || code != 200 {
		t.Fatalf("cancel running task: %d %v", code, err)
	}
	tk := o.waitFor(slow, "to get its late result", 20*time.Second, func(tk apiTask) bool { return tk.ErrorMessage != nil })
	if tk.Status != "cancelled" {
		t.Errorf("cancelled task = %s, want status cancelled", tk.String())
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("the worker took %s to stop the cancelled task (agent runs 30s)", d)
	}
	t.Logf("cancelled task after the worker stopped it: %s", tk.String())
}
