package e2e

import (
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

// workerBinary is bin/worker, built once per test binary run.
var workerBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "e2e-worker-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "worker")
	build := exec.Command("go", "build", "-o", bin, "./cmd/worker")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return "build worker: " + e.err.Error() + "\n" + e.out }

// goWorker is a running bin/worker.
type goWorker struct {
	logf string
	cmd  *exec.Cmd
	done chan struct{}
}

// runGoWorker runs bin/worker with env (KEY=VALUE, on top of a minimal
// environment: nothing else of the test's is inherited), and kills it at
// cleanup. With WORKER_HTTP_ADDR set it waits until /health answers.
func runGoWorker(t *testing.T, env map[string]string) *goWorker {
	t.Helper()
	bin, err := workerBinary()
	if err != nil {
		t.Fatal(err)
	}
	w := &goWorker{logf: filepath.Join(t.TempDir(), "worker.log"), done: make(chan struct{})}
	logf, err := os.Create(w.logf)
	if err != nil {
		t.Fatal(err)
	}
	w.cmd = exec.Command(bin)
	w.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_FORMAT=text"}
	for k, v := range env {
		w.cmd.Env = append(w.cmd.Env, k+"="+v)
	}
	w.cmd.Stdout, w.cmd.Stderr = logf, logf
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	go func() { _ = w.cmd.Wait(); logf.Close(); close(w.done) }()
	t.Cleanup(func() {
		_ = w.cmd.Process.Signal(syscall.SIGKILL)
		<-w.done
		if t.Failed() {
			b, _ := os.ReadFile(w.logf)
			t.Logf("worker log (tail):\n%s", testenv.Tail(string(b), 6000))
		}
	})
	if addr := env["WORKER_HTTP_ADDR"]; addr != "" {
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := http.Get("http://" + addr + "/health")
			if err == nil {
				resp.Body.Close()
				break
			}
			select {
			case <-w.done:
				b, _ := os.ReadFile(w.logf)
				t.Fatalf("worker exited at start:\n%s", testenv.Tail(string(b), 6000))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatal("worker did not serve /health within 20s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return w
}

// log returns the worker's log so far.
func (w *goWorker) log() string {
	b, _ := os.ReadFile(w.logf)
	return string(b)
}

// metric returns the value of the sample line of /metrics at base (an
// http:// URL) named name, labels included as Prometheus writes them
// (`worker_jobs_missing_total`, `x_total{a="b"}`); "" when there is none.
func metric(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimSpace(strings.TrimPrefix(line, name))
		}
	}
	return ""
}
