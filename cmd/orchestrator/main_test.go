package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	stderr *testenv.Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // the exit error, set before done is closed
}

// baseEnv is the environment of the child: nothing of ours inherited.
func baseEnv(vars ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, vars...)
}

// start runs the binary in dir with the variables and waits until GET
// /health answers 200.
func start(tb testing.TB, dir string, vars ...string) *process {
	tb.Helper()
	return startWant(tb, dir, http.StatusOK, vars...)
}

// startWant runs the binary in dir with the variables and waits until GET
// /health answers the status (503: serving, with a dependency down).
func startWant(tb testing.TB, dir string, health int, vars ...string) *process {
	tb.Helper()
	port := testenv.FreePort(tb)
	p := &process{
		cmd:    exec.Command(binary(tb)),
		base:   fmt.Sprintf("http://127.0.0.1:%d", port),
		stderr: &testenv.Buffer{},
		done:   make(chan struct{}),
	}
	p.cmd.Dir = dir
	// A private queue key prefix, so that a binary wired to Redis never
	// touches another test's (or a real) queue.
	prefix := testenv.UniqueName(tb, "orchtest")
	testenv.CleanRedisKeys(tb, prefix+":*")
	env := []string{fmt.Sprintf("PORT=%d", port), "LOG_FORMAT=json", "QUEUE_PREFIX=" + prefix}
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
	testenv.Eventually(tb, 30*time.Second, fmt.Sprintf("the orchestrator /health to answer %d", health), func() error {
		select {
		case <-p.done:
			tb.Fatalf("orchestrator exited early: %v\n%s", p.err, p.stderr)
		default:
		}
		resp, err := http.Get(p.base + "/health")
		if err != nil {
			return fmt.Errorf("%w\n%s", err, p.stderr)
		}
		resp.Body.Close()
		if resp.StatusCode != health {
			return fmt.Errorf("GET /health: %s, want %d\n%s", resp.Status, health, p.stderr)
		}
		return nil
	})
	return p
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
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"code":"print(1)","prompt":"explain"}`
	head := "POST /tasks HTTP/1.1\r\nHost: orchestrator\r\nContent-Type: application/json\r\n" +
		"Authorization: Bearer secret\r\nConnection: close\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body))
	// Headers and half the body: the handler starts and waits for the rest.
	if _, err := io.WriteString(conn, head+body[:10]); err != nil {
		t.Fatal(err)
	}
	// On loopback the bytes are in the server's receive queue when the write
	// returns; once the queue is empty the server has read them, so the
	// connection is active and Shutdown must wait for it.
	waitConsumed(t, conn)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p.stderr, `"msg":"shutting down"`)
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v\n%s", err, p.stderr)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("in-flight request: status %d", resp.StatusCode)
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

// waitConsumed polls /proc/net/tcp{,6} until the server side of conn has
// read everything conn sent (its receive queue is empty).
func waitConsumed(tb testing.TB, conn net.Conn) {
	tb.Helper()
	// The server's socket: local port = our remote port, remote port = our local port.
	want := fmt.Sprintf(":%04X :%04X", conn.RemoteAddr().(*net.TCPAddr).Port, conn.LocalAddr().(*net.TCPAddr).Port)
	testenv.Eventually(tb, 10*time.Second, "the server to read the request", func() error {
		var table []byte
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			data, _ := os.ReadFile(f)
			table = append(table, data...)
		}
		if len(table) == 0 {
			tb.Skip("no /proc/net/tcp")
		}
		for _, line := range strings.Split(string(table), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			_, lp, _ := strings.Cut(f[1], ":")
			_, rp, _ := strings.Cut(f[2], ":")
			if ":"+lp+" :"+rp != want {
				continue
			}
			if _, rx, _ := strings.Cut(f[4], ":"); strings.Trim(rx, "0") == "" {
				return nil
			}
			return fmt.Errorf("receive queue %s", f[4])
		}
		return errors.New("server socket not found")
	})
}

// waitLog polls the log until it contains s.
func waitLog(tb testing.TB, log *testenv.Buffer, s string) {
	tb.Helper()
	testenv.Eventually(tb, 10*time.Second, "the log to say "+s, func() error {
		if !strings.Contains(log.String(), s) {
			return fmt.Errorf("log so far:\n%s", log)
		}
		return nil
	})
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

// get sends GET url with the bearer key when not empty and returns the
// status and body.
func get(tb testing.TB, url, key string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestBinaryMetrics: /metrics is on the API port, behind the key when
// API_KEYS is set; with METRICS_ADDR it is served there without a key,
// and not on the API port.
func TestBinaryMetrics(t *testing.T) {
	db := "DATABASE_URL=sqlite://" + testenv.SQLitePath(t)
	const want = `orchestrator_tasks{status="pending"}`

	t.Run("api port without keys", func(t *testing.T) {
		p := start(t, t.TempDir(), db)
		if code, body := get(t, p.base+"/metrics", ""); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /metrics = %d, lacks %s:\n%.300s", code, want, body)
		}
	})
	t.Run("api port with keys", func(t *testing.T) {
		p := start(t, t.TempDir(), db, "API_KEYS=secret")
		if code, _ := get(t, p.base+"/metrics", ""); code != 401 {
			t.Errorf("GET /metrics without key = %d, want 401", code)
		}
		if code, _ := get(t, p.base+"/metrics", "wrong"); code != 401 {
			t.Errorf("GET /metrics with a wrong key = %d, want 401", code)
		}
		if code, body := get(t, p.base+"/metrics", "secret"); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /metrics with key = %d, lacks %s:\n%.300s", code, want, body)
		}
	})
	t.Run("METRICS_ADDR", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		p := start(t, t.TempDir(), db, "API_KEYS=secret", "METRICS_ADDR="+addr)
		if code, body := get(t, "http://"+addr+"/metrics", ""); code != 200 || !strings.Contains(body, want) ||
			!strings.Contains(body, "orchestrator_http_requests_total") {
			t.Errorf("GET METRICS_ADDR/metrics without key = %d, lacks %s:\n%.300s", code, want, body)
		}
		if code, _ := get(t, "http://"+addr+"/tasks", ""); code != 404 {
			t.Errorf("GET METRICS_ADDR/tasks = %d, want 404: only /metrics is served there", code)
		}
		if code, _ := get(t, p.base+"/metrics", "secret"); code != 404 {
			t.Errorf("GET /metrics on the API port = %d, want 404", code)
		}
		if err := p.stop(t); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
		}
	})
}

// password is the secret the redaction tests put in connection strings;
// no output of the binary may hold it.
const password = "S3cretPw"

// TestBinaryRedactsPasswords starts the binary with connection strings
// holding a password, each failing at a different place (configuration,
// the URL parsers, the env parser, connecting to PostgreSQL), and checks
// that the output names the cause and never holds the password.
func TestBinaryRedactsPasswords(t *testing.T) {
	free := testenv.FreePort(t) // nothing listens there
	tests := []struct {
		name string
		vars []string
		want []string // in the output
	}{
		{"redis URL, bad db", []string{"REDIS_URL=redis://:" + password + "@127.0.0.1:6379/notanumber"}, []string{"REDIS_URL:"}},
		{"redis URL, user and password", []string{"REDIS_URL=redis://default:" + password + "@127.0.0.1:6379/x"}, []string{"REDIS_URL:"}},
		{"redis URL, password in a bad option", []string{"REDIS_URL=rediss://:" + password + "@127.0.0.1:6379/0?dial_timeout=" + password},
			[]string{"REDIS_URL:", "xxxxx"}},
		{"redis URL, password with a slash", []string{"REDIS_URL=redis://:Sl4sh/" + password + "@127.0.0.1:6379"}, []string{"REDIS_URL:", "xxxxx"}},
		{"redis URL, bad escape", []string{"REDIS_URL=redis://:" + password + "%zz@127.0.0.1:6379"}, []string{"REDIS_URL:", "xxxxx"}},
		{"sentinel URL, password params", []string{"REDIS_URL=redis-sentinel://:" + password + "@127.0.0.1:1,127.0.0.1:2/0?master=m&sentinel_password=" + password},
			[]string{"REDIS_URL:"}},
		{"sentinel URL, no master", []string{"REDIS_URL=redis-sentinel://:" + password + "@127.0.0.1:1/0?password=" + password}, []string{"REDIS_URL:"}},
		{"cluster URL, bad option", []string{"REDIS_URL=redis-cluster://:" + password + "@127.0.0.1:1,127.0.0.1:2?read_timeout=" + password},
			[]string{"REDIS_URL:", "xxxxx"}},
		{"password in the wrong variable", []string{"REDIS_PASSWORD=" + password, "PORT=" + password}, []string{"PORT:", "xxxxx"}},
		{"postgres URL, bad escape", []string{"DATABASE_URL=postgres://u:" + password + "%zz@127.0.0.1/db"}, []string{"DATABASE_URL:", "xxxxx"}},
		{"postgres key=value", []string{"DATABASE_URL=host=127.0.0.1 password=" + password}, []string{"DATABASE_URL:"}},
		{"postgres unreachable", []string{fmt.Sprintf("DATABASE_URL=postgres://postgres:%s@127.0.0.1:%d/db?sslmode=disable&connect_timeout=2", password, free)},
			[]string{"open postgres store", "xxxxx"}},
		{"postgres password param, bad option", []string{fmt.Sprintf("DATABASE_URL=postgres://postgres@127.0.0.1:%d/db?password=%s&sslmode=bogus", free, password)},
			[]string{"open postgres store", "xxxxx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary(t))
			cmd.Dir = t.TempDir()
			cmd.Env = baseEnv(append([]string{fmt.Sprintf("PORT=%d", testenv.FreePort(t)), "LOG_LEVEL=debug"}, tt.vars...)...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1; output:\n%s", err, out)
			}
			if strings.Contains(string(out), password) || strings.Contains(string(out), "Sl4sh") {
				t.Errorf("the output holds the password:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("the output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestBinaryRedisSchemes starts the binary with every REDIS_URL scheme the
// README lists that needs more than one server, pointed at nothing and
// holding passwords: it serves, accepts tasks (pending until Redis is
// back), reports Redis unhealthy, stops cleanly, and its output, debug
// lines of the Redis client included, never holds the password.
func TestBinaryRedisSchemes(t *testing.T) {
	a, b := testenv.FreePort(t), testenv.FreePort(t)
	for name, u := range map[string]string{
		"sentinel": fmt.Sprintf("redis-sentinel://:%s@127.0.0.1:%d,127.0.0.1:%d/0?master=mymaster&password=%s", password, a, b, password),
		"cluster":  fmt.Sprintf("redis-cluster://:%s@127.0.0.1:%d,127.0.0.1:%d", password, a, b),
		"single":   fmt.Sprintf("redis://default:%s@127.0.0.1:%d/0", password, a),
	} {
		t.Run(name, func(t *testing.T) {
			p := startWant(t, t.TempDir(), http.StatusServiceUnavailable, "REDIS_URL="+u, "LOG_LEVEL=debug",
				"DATABASE_URL=sqlite://"+testenv.SQLitePath(t))
			code, body := get(t, p.base+"/health", "")
			var h struct {
				Status   string
				Database struct{ Connected bool }
				Redis    *struct{ Connected bool }
			}
			if err := json.Unmarshal([]byte(body), &h); err != nil || code != 503 || h.Status != "unhealthy" ||
				!h.Database.Connected || h.Redis == nil || h.Redis.Connected {
				t.Errorf("/health = %d %s, want 503 with the database up and Redis down", code, body)
			}
			postTask(t, p.base)
			// Let the loops try Redis and log it before stopping.
			waitLog(t, p.stderr, "127.0.0.1:"+fmt.Sprint(a))
			if err := p.stop(t); err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
			}
			out := p.stderr.String()
			if strings.Contains(out, password) {
				t.Errorf("the output holds the password:\n%s", out)
			}
			if !strings.Contains(out, `"redis":"`+strings.ReplaceAll(u, password, "xxxxx")+`"`) {
				t.Errorf("the start line does not name Redis with its password masked:\n%s", out)
			}
		})
	}
}
