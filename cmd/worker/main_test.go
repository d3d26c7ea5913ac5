package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// workerBin is the worker binary built once for the tests.
var workerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "worker-bin-*")
	if err != nil {
		panic(err)
	}
	workerBin = filepath.Join(dir, "worker")
	out, err := exec.Command("go", "build", "-o", workerBin, ".").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		panic("build worker: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type workerProc struct {
	cmd    *exec.Cmd
	stderr *testenv.Buffer
	done   chan error
}

// startWorker starts the worker binary with env added to a test base
// environment. It is killed at cleanup if still running.
func startWorker(t testing.TB, env ...string) *workerProc {
	t.Helper()
	cmd := exec.Command(workerBin)
	cmd.Env = append(os.Environ(),
		"REDIS_URL="+testenv.RedisURL(t),
		"WORKER_EXECUTOR=command", "WORKER_KILL_GRACE=300ms", "WORKER_LOCK_DURATION=1s",
		"WORKER_STALLED_INTERVAL=500ms", "LOG_LEVEL=debug", "LOG_FORMAT=text")
	cmd.Env = append(cmd.Env, env...)
	p := &workerProc{cmd: cmd, stderr: &testenv.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("worker %d stderr:\n%s", cmd.Process.Pid, p.stderr.String())
		}
	})
	return p
}

// wait waits for the worker to exit and returns its exit error.
func (p *workerProc) wait(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("worker did not exit within %s", within)
		return nil
	}
}

func newQueue(t *testing.T, client redis.UniversalClient, name string) *bullmq.Queue {
	t.Helper()
	q, err := bullmq.NewQueue(client, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Obliterate(context.Background(), true); _ = q.Close() })
	return q
}

func addTask(t *testing.T, q *bullmq.Queue) string {
	t.Helper()
	id := uuid.NewString()
	data := taskqueue.Job{TaskID: id, Code: "a\nb\n", Prompt: "count", Timeout: 30_000}
	if _, err := q.Add(context.Background(), taskqueue.JobName, data, &bullmq.JobOptions{JobID: id, Attempts: 3}); err != nil {
		t.Fatal(err)
	}
	return id
}

func getJob(t *testing.T, q *bullmq.Queue, id string) *bullmq.Job {
	t.Helper()
	j, err := q.GetJob(context.Background(), id)
	if errors.Is(err, bullmq.ErrJobNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func result(t *testing.T, results *bullmq.Queue, taskID string) taskqueue.Result {
	t.Helper()
	var res taskqueue.Result
	testenv.WaitFor(t, 20*time.Second, "result of "+taskID, func() bool { return getJob(t, results, taskqueue.ResultJobID(taskID, 0)) != nil })
	if err := json.Unmarshal(getJob(t, results, taskqueue.ResultJobID(taskID, 0)).Data, &res); err != nil {
		t.Fatal(err)
	}
	return res
}

// agentScript is a command-executor program that takes about `sleep`
// seconds and appends one line per run to a log, to count runs. The log is
// outside any workspace, so workers running it need WORKER_SANDBOX=off
// (these tests are about the worker's lifecycle; sandbox_test.go is about
// the sandbox).
func agentScript(t *testing.T, sleep string) (argv, runLog string) {
	t.Helper()
	runLog = filepath.Join(t.TempDir(), "runs.log")
	script := `cat >/dev/null; echo "$TASK_ID" >> ` + runLog + `; sleep ` + sleep + `; echo "{\"ok\":true}"`
	return "sh -c '" + script + "'", runLog
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestSIGKILLMidTaskIsRecovered: a worker killed with SIGKILL mid-task
// leaves its job active; another worker process recovers it and completes
// it once, with one result.
func TestSIGKILLMidTaskIsRecovered(t *testing.T) {
	client := testenv.RedisClient(t)
	queue := testenv.TaskQueue(t, "tasks")
	tasks, results := newQueue(t, client, queue), newQueue(t, client, queue+"-results")
	argv, runLog := agentScript(t, "2")

	a := startWorker(t, "QUEUE_NAME="+queue, "WORKER_ID=worker-a", "WORKER_COMMAND="+argv, "WORKER_SANDBOX=off")
	id := addTask(t, tasks)
	testenv.WaitFor(t, 15*time.Second, "worker-a running the task", func() bool {
		j := getJob(t, tasks, id)
		return j != nil && j.ProcessedBy == "worker-a" && countLinesIfExists(runLog) == 1
	})
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := a.wait(t, 5*time.Second); err == nil {
		t.Fatal("worker-a exited with status 0 after SIGKILL")
	}
	if s, _ := tasks.GetJobState(context.Background(), id); s != bullmq.StateActive {
		t.Fatalf("after SIGKILL the job is %s, want active", s)
	}

	startWorker(t, "QUEUE_NAME="+queue, "WORKER_ID=worker-b", "WORKER_COMMAND="+argv, "WORKER_SANDBOX=off")
	res := result(t, results, id)
	if res.Status != taskqueue.ResultCompleted || res.WorkerID != "worker-b" || string(res.Result) != `{"ok":true}` {
		t.Errorf("result = %+v", res)
	}
	testenv.WaitFor(t, 10*time.Second, "job completed", func() bool {
		s, _ := tasks.GetJobState(context.Background(), id)
		return s == bullmq.StateCompleted
	})
	if n, _ := results.Count(context.Background()); n != 1 {
		t.Errorf("%d result jobs, want 1", n)
	}
	if n := countLines(t, runLog); n != 2 {
		t.Errorf("the task ran %d times, want 2 (killed run + recovered run)", n)
	}
	j := getJob(t, tasks, id)
	if j.ProcessedBy != "worker-b" || j.AttemptsMade != 1 {
		t.Errorf("job pb %q, attemptsMade %d; want worker-b and 1 (completed once)", j.ProcessedBy, j.AttemptsMade)
	}
}

func countLinesIfExists(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\n")
}

// TestSIGTERMLetsRunningTasksFinish: on SIGTERM the worker stops taking
// jobs, finishes the running ones, posts their results, and exits 0.
func TestSIGTERMLetsRunningTasksFinish(t *testing.T) {
	client := testenv.RedisClient(t)
	queue := testenv.TaskQueue(t, "tasks")
	tasks, results := newQueue(t, client, queue), newQueue(t, client, queue+"-results")
	argv, runLog := agentScript(t, "1")

	w := startWorker(t, "QUEUE_NAME="+queue, "WORKER_ID=worker-t", "WORKER_CONCURRENCY=2",
		"WORKER_SHUTDOWN_TIMEOUT=20s", "WORKER_COMMAND="+argv, "WORKER_SANDBOX=off")
	ids := []string{addTask(t, tasks), addTask(t, tasks)}
	testenv.WaitFor(t, 15*time.Second, "both tasks running", func() bool { return countLinesIfExists(runLog) == 2 })
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w.wait(t, 20*time.Second); err != nil {
		t.Fatalf("worker exit: %v", err)
	}
	for _, id := range ids {
		if j := getJob(t, results, taskqueue.ResultJobID(id, 0)); j == nil {
			t.Errorf("no result for task %s", id)
		}
		if s, _ := tasks.GetJobState(context.Background(), id); s != bullmq.StateCompleted {
			t.Errorf("task %s is %s, want completed", id, s)
		}
	}
}

func TestConfigErrorsStopAtStart(t *testing.T) {
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"WORKER_EXECUTOR=bogus"}, "WORKER_EXECUTOR: "},
		{[]string{"WORKER_EXECUTOR=claude", "CLAUDE_BIN=/nonexistent/claude"}, "CLAUDE_BIN: "},
		{[]string{"WORKER_EXECUTOR=command", "WORKER_COMMAND="}, "WORKER_COMMAND: "},
		{[]string{"WORKER_COMMAND=cat", "WORKER_CONCURRENCY=many"}, "WORKER_CONCURRENCY: "},
	}
	for _, tt := range tests {
		cmd := exec.Command(workerBin)
		cmd.Env = append(os.Environ(), "WORKER_EXECUTOR=command", "REDIS_URL=redis://127.0.0.1:1")
		cmd.Env = append(cmd.Env, tt.env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: err %v, output %q; want exit 1 naming %q", tt.env, err, out, tt.want)
		}
	}
}
