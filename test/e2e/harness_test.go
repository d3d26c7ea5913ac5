// Package e2e holds end-to-end and fault tests of the orchestrator: the
// real bin/orchestrator binary, built once for the package, with real
// Redis, PostgreSQL or SQLite, and the official Node BullMQ package as the
// worker (test/node/worker.js in its task mode, the Node driver shared with
// test/interop). Faults use private Redis and PostgreSQL servers
// (internal/testenv), never the shared ones.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// binary is the orchestrator built by TestMain.
var binary string

func TestMain(m *testing.M) {
	if b := os.Getenv("E2E_ORCHESTRATOR_BIN"); b != "" { // a prebuilt binary
		binary = b
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "orchestrator")
	build := exec.Command("go", "build", "-o", binary, "./cmd/orchestrator")
	build.Dir = testenv.RepoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build orchestrator:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// orchestrator is a running bin/orchestrator.
type orchestrator struct {
	t    *testing.T
	env  []string
	url  string
	logf string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startOrchestrator runs the binary with the base environment plus env
// (KEY=VALUE) on a free port and waits until it serves /health.
func startOrchestrator(t *testing.T, env map[string]string) *orchestrator {
	t.Helper()
	port := testenv.FreePort(t)
	o := &orchestrator{t: t, url: "http://127.0.0.1:" + strconv.Itoa(port), logf: filepath.Join(t.TempDir(), "orchestrator.log")}
	base := map[string]string{"PORT": strconv.Itoa(port), "LOG_FORMAT": "text", "LOG_LEVEL": "info",
		"RECONCILE_INTERVAL": "500ms", "RECONCILE_MIN_AGE": "1s", "RESULT_GRACE": "2s", "RELAY_INTERVAL": "200ms"}
	for k, v := range env {
		base[k] = v
	}
	for k, v := range base {
		o.env = append(o.env, k+"="+v)
	}
	o.start()
	t.Cleanup(func() {
		o.kill()
		removeQueues(base["REDIS_URL"], base["QUEUE_NAME"])
		if t.Failed() {
			b, _ := os.ReadFile(o.logf)
			t.Logf("orchestrator log (tail):\n%s", testenv.Tail(string(b), 8000))
		}
	})
	return o
}

func (o *orchestrator) start() {
	o.t.Helper()
	o.mu.Lock()
	logf, err := os.OpenFile(o.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		o.t.Fatal(err)
	}
	cmd := exec.Command(binary)
	cmd.Env = append(os.Environ(), o.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		o.t.Fatalf("start orchestrator: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	o.cmd, o.done = cmd, done
	o.mu.Unlock()
	testenv.Eventually(o.t, 30*time.Second, "the orchestrator to serve /health", func() error {
		select {
		case <-done:
			b, _ := os.ReadFile(o.logf)
			o.t.Fatalf("orchestrator exited at start:\n%s", testenv.Tail(string(b), 6000))
		default:
		}
		resp, err := http.Get(o.url + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// removeQueues deletes the task and results queues of a test from Redis.
func removeQueues(redisURL, queue string) {
	if redisURL == "" || queue == "" {
		return
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return
	}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{queue, queue + "-results", queue + "-webhooks"} {
		if q, err := bullmq.NewQueue(c, name, nil); err == nil {
			_ = q.Obliterate(ctx, true)
		}
	}
}

// kill sends SIGKILL and waits for the process to exit.
func (o *orchestrator) kill() { o.signal(syscall.SIGKILL) }

// stop sends SIGTERM and waits for a graceful exit.
func (o *orchestrator) stop() { o.signal(syscall.SIGTERM) }

func (o *orchestrator) signal(sig syscall.Signal) {
	o.mu.Lock()
	cmd, done := o.cmd, o.done
	o.cmd = nil
	o.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// apiTask is a task as the API returns it.
type apiTask struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	WorkerID      *string         `json:"workerId"`
	Result        json.RawMessage `json:"result"`
	ErrorMessage  *string         `json:"errorMessage"`
	Attempts      int             `json:"attempts"`
	ExecutionTime *int64          `json:"executionTime"`
	CreatedAt     time.Time       `json:"createdAt"`
	StartedAt     *time.Time      `json:"startedAt"`
	CompletedAt   *time.Time      `json:"completedAt"`
}

func (a *apiTask) String() string { b, _ := json.Marshal(a); return string(b) }

var httpClient = &http.Client{Timeout: 10 * time.Second}

// do sends a request and decodes a JSON answer into out (when not nil).
func (o *orchestrator) do(method, path string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, o.url+path, r)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", b, err)
		}
	}
	return resp.StatusCode, nil
}

// create makes a task with the prompt and returns it as created.
func (o *orchestrator) create(prompt string) apiTask {
	o.t.Helper()
	var tk apiTask
	code, err := o.do("POST", "/tasks", map[string]any{"code": "print(1)", "prompt": prompt, "timeout": 60000}, &tk)
	if err != nil || code != http.StatusCreated {
		o.t.Fatalf("POST /tasks: %d %v", code, err)
	}
	return tk
}

func (o *orchestrator) get(id string) (apiTask, error) {
	var tk apiTask
	code, err := o.do("GET", "/tasks/"+id, nil, &tk)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /tasks/%s: status %d", id, code)
	}
	return tk, err
}

// waitFor polls the task until ok accepts it; what completes "task <id> …"
// in the failure message ("to finish").
func (o *orchestrator) waitFor(id, what string, timeout time.Duration, ok func(apiTask) bool) apiTask {
	o.t.Helper()
	var tk apiTask
	testenv.Eventually(o.t, timeout, "task "+id+" "+what, func() error {
		var err error
		if tk, err = o.get(id); err != nil {
			return err
		}
		if !ok(tk) {
			return fmt.Errorf("task is %s", tk.String())
		}
		return nil
	})
	return tk
}

func (o *orchestrator) waitStatus(id, status string, timeout time.Duration) apiTask {
	o.t.Helper()
	return o.waitFor(id, "to become "+status, timeout, func(tk apiTask) bool { return tk.Status == status })
}

// waitTerminal waits until every task is completed, failed or cancelled
// and returns them by id.
func (o *orchestrator) waitTerminal(ids []string, timeout time.Duration) map[string]apiTask {
	o.t.Helper()
	out := map[string]apiTask{}
	for _, id := range ids {
		out[id] = o.waitFor(id, "to finish", timeout, func(tk apiTask) bool {
			return tk.Status == "completed" || tk.Status == "failed" || tk.Status == "cancelled"
		})
	}
	return out
}

// nodeWorker is a running test/node/worker.js in its task mode: an
// official Node BullMQ worker of the orchestrator.
type nodeWorker struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser // held open: the driver stops when its stdin closes
	done  chan struct{}

	mu     sync.Mutex
	events []workerEvent
	ready  chan struct{}
}

// workerEvent is one JSON line of the Node worker (see test/node/worker.js).
type workerEvent struct {
	Ev      string `json:"ev"`
	ID      string `json:"id"`      // job id
	Attempt int    `json:"attempt"` // 1 for the first
	T       int64  `json:"t"`       // ms since the epoch
	Error   string `json:"error"`
}

// startNodeWorker starts the Node worker with cfg (see workerConfig and
// test/node/worker.js) and waits until it is ready.
func startNodeWorker(t *testing.T, cfg map[string]any) *nodeWorker {
	t.Helper()
	dir := testenv.NodeDir(t)
	b, _ := json.Marshal(cfg)
	cmd := exec.Command("node", filepath.Join(dir, "worker.js"), string(b))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testenv.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node worker: %v", err)
	}
	w := &nodeWorker{t: t, cmd: cmd, stdin: stdin, done: make(chan struct{}), ready: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var ev workerEvent
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			w.mu.Lock()
			w.events = append(w.events, ev)
			w.mu.Unlock()
			if ev.Ev == "ready" {
				close(w.ready)
			}
		}
		_ = cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.kill()
		if t.Failed() && stderr.String() != "" {
			t.Logf("node worker stderr:\n%s", testenv.Tail(stderr.String(), 4000))
		}
	})
	select {
	case <-w.ready:
	case <-w.done:
		t.Fatalf("node worker exited at start: %s %v", stderr.String(), w.snapshot())
	case <-time.After(20 * time.Second):
		t.Fatal("node worker not ready within 20s")
	}
	return w
}

// kill sends SIGKILL and waits.
func (w *nodeWorker) kill() {
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	<-w.done
	_ = w.stdin.Close()
}

func (w *nodeWorker) snapshot() []workerEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]workerEvent(nil), w.events...)
}

// count returns how many events of kind ev each job has.
func (w *nodeWorker) count(ev string) map[string]int {
	out := map[string]int{}
	for _, e := range w.snapshot() {
		if e.Ev == ev {
			out[e.ID]++
		}
	}
	return out
}

// waitCount waits until n distinct jobs have an event of kind ev.
func waitCount(t *testing.T, n int, timeout time.Duration, count func() map[string]int) {
	t.Helper()
	testenv.Eventually(t, timeout, fmt.Sprintf("%d jobs to reach the expected event", n), func() error {
		if got := len(count()); got < n {
			return fmt.Errorf("only %d of %d jobs reached it", got, n)
		}
		return nil
	})
}

// doneCounts returns how many times each job ran to success ("done" lines)
// in the workers, once every job of completed has one: a worker prints it
// just after posting the job's result, so it may trail the completion of
// the task that the test saw.
func doneCounts(t *testing.T, completed []string, workers ...*nodeWorker) map[string]int {
	t.Helper()
	var done map[string]int
	testenv.Eventually(t, 5*time.Second, "a done line for every completed task", func() error {
		done = map[string]int{}
		for _, w := range workers {
			for id, n := range w.count("done") {
				done[id] += n
			}
		}
		for _, id := range completed {
			if done[id] == 0 {
				return fmt.Errorf("none for %s", id)
			}
		}
		return nil
	})
	return done
}

// workerConfig is the config of a Node worker of the orchestrator (task
// mode of test/node/worker.js) for queue on redisURL.
func workerConfig(redisURL, queue, name string, extra map[string]any) map[string]any {
	c := map[string]any{"task": true, "redis": redisURL, "queue": queue, "prefix": "bull", "version": "5", "name": name, "concurrency": 8}
	for k, v := range extra {
		c[k] = v
	}
	return c
}
