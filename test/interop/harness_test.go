package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agentorch/orchestrator/internal/testenv"
)

// versions are the official package versions every scenario runs against;
// the values select the npm aliases bullmq5 and bullmq6 in test/node/lib.js.
var versions = []string{"5", "6"}

// goWorkerBin is the path of the goworker program built by TestMain, or ""
// with goWorkerErr set when it could not be built.
var (
	goWorkerBin string
	goWorkerErr error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "interop-goworker-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop: temp dir:", err)
		os.Exit(1)
	}
	bin := filepath.Join(dir, "goworker")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "./goworker")...).CombinedOutput()
	if err != nil {
		goWorkerErr = fmt.Errorf("build goworker: %w\n%s", err, out)
	} else {
		goWorkerBin = bin
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// requireGoWorker fails the test when the goworker program did not build.
func requireGoWorker(tb testing.TB) {
	tb.Helper()
	if goWorkerErr != nil {
		tb.Fatal(goWorkerErr)
	}
}

// env is what every scenario needs: the Node driver, a Redis client, the
// URL for the subprocesses and a unique queue name per test.
type env struct {
	t       *testing.T
	nodeDir string
	url     string
	rdb     redis.UniversalClient
	prefix  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{t: t, nodeDir: testenv.NodeDir(t), url: testenv.RedisURL(t), rdb: testenv.RedisClient(t), prefix: "interop"}
}

// queue returns a fresh queue name whose keys are deleted at cleanup.
func (e *env) queue(base string) string {
	e.t.Helper()
	name := testenv.UniqueName(e.t, base)
	e.cleanupQueue(name)
	return name
}

// cleanupQueue deletes the keys of queue name at cleanup.
func (e *env) cleanupQueue(name string) {
	e.t.Helper()
	testenv.CleanRedisKeys(e.t, e.prefix+":"+name+":*")
}

// key returns the Redis key prefix:queue:suffix.
func (e *env) key(queue, suffix string) string { return e.prefix + ":" + queue + ":" + suffix }

// cfg builds a subprocess config for queue and version plus extra fields.
func (e *env) cfg(queue, version string, extra map[string]any) map[string]any {
	c := map[string]any{"redis": e.url, "queue": queue, "prefix": e.prefix, "version": version}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// line is one JSON line printed by a driver script or by goworker.
type line struct {
	Ev     string          `json:"ev"`
	Op     string          `json:"op"`
	ID     string          `json:"id"`
	T      int64           `json:"t"`
	Reason string          `json:"reason"`
	Error  string          `json:"error"`
	Args   json.RawMessage `json:"args"`
	Raw    json.RawMessage `json:"-"`
}

// jobID returns the job id of an events.js line (args.jobId).
func (l line) jobID() string {
	var a struct {
		JobID string `json:"jobId"`
	}
	_ = json.Unmarshal(l.Args, &a)
	return a.JobID
}

// arg returns args[name] of an events.js line, decoded into v.
func (l line) arg(tb testing.TB, name string, v any) {
	tb.Helper()
	var a map[string]json.RawMessage
	if err := json.Unmarshal(l.Args, &a); err != nil {
		tb.Fatalf("decode args of %s: %v", l.Raw, err)
	}
	raw, ok := a[name]
	if !ok {
		tb.Fatalf("event %s has no %q", l.Raw, name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatalf("decode %q of %s: %v", name, l.Raw, err)
	}
}

// decode unmarshals the whole line into v.
func (l line) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(l.Raw, v); err != nil {
		tb.Fatalf("decode %s: %v", l.Raw, err)
	}
}

// proc is a running driver subprocess whose stdout lines are collected.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	exited chan struct{}

	mu      sync.Mutex
	all     []line
	changed chan struct{} // closed and replaced when a line arrives
	eof     bool          // stdout closed
	stderr  testenv.Buffer
}

// startNode starts the Node driver's script (test/node/<script>) with cfg.
// The process is stopped at cleanup.
func (e *env) startNode(tb testing.TB, script string, cfg map[string]any) *proc {
	tb.Helper()
	return startProc(tb, script+"@v"+fmt.Sprint(cfg["version"]), "node", filepath.Join(e.nodeDir, script), cfg)
}

// startGoWorker starts the goworker program with cfg.
func startGoWorker(tb testing.TB, cfg map[string]any) *proc {
	tb.Helper()
	requireGoWorker(tb)
	return startProc(tb, "goworker", goWorkerBin, "", cfg)
}

func startProc(tb testing.TB, name, bin, script string, cfg map[string]any) *proc {
	tb.Helper()
	js, err := json.Marshal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	args := []string{string(js)}
	if script != "" {
		args = append([]string{script}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	cmd := exec.CommandContext(ctx, bin, args...)
	p := &proc{t: tb, name: name, cmd: cmd, exited: make(chan struct{}), changed: make(chan struct{})}
	cmd.Stderr = &p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			raw := append([]byte(nil), sc.Bytes()...)
			var l line
			if err := json.Unmarshal(raw, &l); err != nil {
				l = line{Ev: "garbage", Error: string(raw)}
			}
			l.Raw = raw
			p.mu.Lock()
			p.all = append(p.all, l)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		p.mu.Lock()
		p.eof = true
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		close(p.exited)
		cancel()
	}()
	tb.Cleanup(func() {
		p.stop()
		if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
			tb.Errorf("%s reported a data race", p.name)
		}
		if tb.Failed() {
			tb.Logf("%s stderr:\n%s", p.name, testenv.Tail(p.stderr.String(), 4000))
		}
	})
	return p
}

// waitN waits until n lines seen so far (from the start of the process)
// match pred and returns the first n. It fails the test after timeout, when
// the process exits first, or at a "fatal" line.
func (p *proc) waitN(timeout time.Duration, what string, n int, pred func(line) bool) []line {
	p.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		var got []line
		for _, l := range p.all {
			if l.Ev == "fatal" || l.Ev == "garbage" {
				p.mu.Unlock()
				p.t.Fatalf("%s: %s", p.name, l.Raw)
			}
			if pred(l) {
				got = append(got, l)
				if len(got) == n {
					break
				}
			}
		}
		changed, exited := p.changed, p.eof
		p.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if exited {
			p.t.Fatalf("%s exited while waiting for %s (%d of %d); stderr:\n%s", p.name, what, len(got), n, testenv.Tail(p.stderr.String(), 3000))
		}
		select {
		case <-changed:
		case <-deadline.C:
			p.t.Fatalf("%s: %d of %d %s within %s", p.name, len(got), n, what, timeout)
		}
	}
}

// waitFor waits for the first line (seen so far or to come) that pred accepts.
func (p *proc) waitFor(timeout time.Duration, what string, pred func(line) bool) line {
	p.t.Helper()
	return p.waitN(timeout, what, 1, pred)[0]
}

// waitEv waits for a line with ev (and job id, when id is not "").
func (p *proc) waitEv(timeout time.Duration, ev, id string) line {
	p.t.Helper()
	return p.waitFor(timeout, ev+" "+id, isEv(ev, id))
}

func isEv(ev, id string) func(line) bool {
	return func(l line) bool { return l.Ev == ev && (id == "" || l.ID == id || l.jobID() == id) }
}

// count returns how many lines seen so far match pred.
func (p *proc) count(pred func(line) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.all {
		if pred(l) {
			n++
		}
	}
	return n
}

// snapshot returns every line seen so far.
func (p *proc) snapshot() []line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]line(nil), p.all...)
}

// stop asks the process to finish (stdin closed, SIGTERM) and kills it after
// 1 s. Safe to call twice.
func (p *proc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Second): // a worker holding a hung job never finishes it
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// term sends SIGTERM and fails the test unless the process ends within d.
func (p *proc) term(d time.Duration) {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(d):
		p.t.Fatalf("%s still running %s after SIGTERM", p.name, d)
	}
}

// kill sends SIGKILL and waits for the process to end.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// ops runs test/node/queue.js with the given operations and returns one result per
// operation; an operation that failed in Node fails the test.
func (e *env) ops(queue, version string, ops ...map[string]any) []json.RawMessage {
	e.t.Helper()
	p := e.startNode(e.t, "queue.js", e.cfg(queue, version, map[string]any{"ops": ops}))
	var out []json.RawMessage
	for _, l := range p.waitN(30*time.Second, "op results", len(ops), func(l line) bool { return l.Op != "" }) {
		var r struct {
			Op     string          `json:"op"`
			Result json.RawMessage `json:"result"`
			Error  string          `json:"error"`
		}
		l.decode(e.t, &r)
		if r.Error != "" {
			e.t.Fatalf("node %s on v%s: %s", r.Op, version, r.Error)
		}
		out = append(out, r.Result)
	}
	return out
}

// op is shorthand for one queue.js operation.
func op(name string, kv ...any) map[string]any {
	m := map[string]any{"op": name}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func ctxT(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

func mustJSON(tb testing.TB, v any) json.RawMessage {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// errNotYet is what a testenv.Eventually condition returns while it is not
// met and has nothing more to say.
var errNotYet = errors.New("not yet")
