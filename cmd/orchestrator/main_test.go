package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// buildBinary builds cmd/orchestrator into a temporary directory once per
// test binary run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "orchestrator-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "orchestrator")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func binary(tb testing.TB) string {
	tb.Helper()
	bin, err := buildOnce()
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := buildOnce(); err == nil {
		_ = os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// process is a running orchestrator binary.
type process struct {
	cmd    *exec.Cmd
	base   string
	stderr *syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // the exit error, set before done is closed
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseEnv is the environment of the child: nothing of ours inherited.
func baseEnv(vars ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, vars...)
}

// start runs the binary in dir with the variables and waits until GET
// /health answers 200.
func start(tb testing.TB, dir string, vars ...string) *process {
	tb.Helper()
	port := testenv.FreePort(tb)
	p := &process{
		cmd:    exec.Command(binary(tb)),
		base:   fmt.Sprintf("http://127.0.0.1:%d", port),
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	p.cmd.Dir = dir
	// A private queue key prefix, so that a binary wired to Redis never
	// touches another test's (or a real) queue.
	env := []string{fmt.Sprintf("PORT=%d", port), "LOG_FORMAT=json", "QUEUE_PREFIX=" + testenv.UniqueName(tb, "orchtest")}
	if u := os.Getenv("REDIS_URL"); u != "" {
		env = append(env, "REDIS_URL="+u)
	}
	p.cmd.Env = baseEnv(append(env, vars...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.done:
			tb.Fatalf("orchestrator exited early: %v\n%s", p.err, p.stderr)
		default:
		}
		resp, err := http.Get(p.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("orchestrator not healthy after 30s (last error %v)\n%s", err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// stop sends SIGTERM and returns the exit error.
func (p *process) stop(tb testing.TB) error {
	tb.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		tb.Fatalf("signal: %v", err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		tb.Fatalf("orchestrator did not stop within 30s after SIGTERM\n%s", p.stderr)
		return nil
	}
}

func postTask(tb testing.TB, base string) string {
	tb.Helper()
	resp, err := http.Post(base+"/tasks", "application/json", strings.NewReader(`{"code":"print(1)","prompt":"explain"}`))
	if err != nil {
		tb.Fatalf("POST /tasks: %v", err)
	}
	defer resp.Body.Close()
	var c struct{ ID, Status string }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != 201 || (c.Status != "pending" && c.Status != "queued") {
		tb.Fatalf("POST /tasks: %d %+v %v", resp.StatusCode, c, err)
	}
	return c.ID
}

func getTask(tb testing.TB, base, id string) {
	tb.Helper()
	resp, err := http.Get(base + "/tasks/" + id)
	if err != nil {
		tb.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	var t struct{ ID, Code string }
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil || resp.StatusCode != 200 || t.ID != id || t.Code != "print(1)" {
		tb.Fatalf("GET /tasks/%s: %d %+v %v", id, resp.StatusCode, t, err)
	}
}

func TestBinaryServesAndStops(t *testing.T) {
	tests := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite://" + testenv.SQLitePath(t) }},
		{"sqlite file URI", func(t *testing.T) string { return "file:" + testenv.SQLitePath(t) }},
		{"postgres", func(t *testing.T) string { return testenv.PostgresURL(t) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url(t)
			p := start(t, t.TempDir(), "DATABASE_URL="+url)
			id := postTask(t, p.base)
			getTask(t, p.base, id)
			if err := p.stop(t); err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
			}
			if !strings.Contains(p.stderr.String(), `"msg":"stopped"`) {
				t.Errorf("no clean stop logged:\n%s", p.stderr)
			}
			// The data survives a restart.
			p = start(t, t.TempDir(), "DATABASE_URL="+url)
			getTask(t, p.base, id)
			if err := p.stop(t); err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
		})
	}
}

// TestBinaryDefaultDatabase runs without DATABASE_URL: the SQLite file
// goes to ./data/orchestrator.db, directory created.
func TestBinaryDefaultDatabase(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir)
	postTask(t, p.base)
	if err := p.stop(t); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "orchestrator.db")); err != nil {
		t.Errorf("default database file: %v", err)
	}
}

// TestBinaryFinishesInFlight starts a request whose body is still being
// sent, sends SIGTERM, then completes the body: the request succeeds and
// the process then exits cleanly.
func TestBinaryFinishesInFlight(t *testing.T) {
	p := start(t, t.TempDir(), "DATABASE_URL=sqlite://"+testenv.SQLitePath(t), "API_KEYS=secret")
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", p.base+"/tasks", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer secret")
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode}
	}()
	if _, err := io.WriteString(pw, `{"code":"print(1)",`); err != nil {
		t.Fatal(err)
	}
	// The server has the request once its log says it is shutting down
	// while our connection stays open; wait for the log line.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p.stderr, `"msg":"shutting down"`)
	if _, err := io.WriteString(pw, `"prompt":"explain"}`); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	r := <-res
	if r.err != nil || r.status != 201 {
		t.Fatalf("in-flight request: %d %v", r.status, r.err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit: %v\n%s", p.err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after the in-flight request")
	}
}

// waitFor polls the log until it contains s.
func waitFor(tb testing.TB, log *syncBuffer, s string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), s) {
		if time.Now().After(deadline) {
			tb.Fatalf("log never said %s:\n%s", s, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBinaryInvalidConfig(t *testing.T) {
	tests := []struct{ vars, name string }{
		{"PORT=abc", "PORT"},
		{"LOG_LEVEL=loud", "LOG_LEVEL"},
		{"DATABASE_URL=mysql://x", "DATABASE_URL"},
		{"SHUTDOWN_TIMEOUT=forever", "SHUTDOWN_TIMEOUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary(t))
			cmd.Dir = t.TempDir()
			cmd.Env = baseEnv(tt.vars)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1; stderr:\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.name+":") {
				t.Errorf("stderr does not name %s:\n%s", tt.name, stderr.String())
			}
		})
	}
}

// TestBinaryBadDatabase fails at start, with a non-zero exit, when the
// database cannot be opened.
func TestBinaryBadDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t))
	cmd.Dir = t.TempDir()
	cmd.Env = baseEnv(fmt.Sprintf("PORT=%d", testenv.FreePort(t)),
		fmt.Sprintf("DATABASE_URL=postgres://postgres@127.0.0.1:%d/none?sslmode=disable&connect_timeout=2", testenv.FreePort(t)))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("started without a database:\n%s", out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	found := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "open postgres store") {
			found = true
		}
	}
	if !found {
		t.Errorf("error does not say the store failed:\n%s", out)
	}
}
