package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
)

func newCommand(t *testing.T, opts ProcessOptions, argv ...string) *Command {
	t.Helper()
	c, err := NewCommand(argv, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitGone waits until the process with the given pid no longer exists.
func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	testenv.Eventually(t, within, fmt.Sprintf("process %d to be gone", pid), func() error {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill -0: %v", err)
		}
		return nil
	})
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestCommandResult(t *testing.T) {
	tests := []struct {
		name   string
		script string
		in     Input
		want   string
	}{
		{"json output", `cat >/dev/null; echo '{"answer": 42}'`, Input{TaskID: "t1"}, `{"answer": 42}`},
		{"text output", `cat >/dev/null; echo "  hello  "`, Input{TaskID: "t1"}, `"hello"`},
		{"empty output", `cat >/dev/null`, Input{TaskID: "t1"}, `""`},
		{"input on stdin", `cat`, Input{TaskID: "t1", Code: "x", Prompt: "p", Timeout: 2 * time.Second},
			`{"taskId":"t1","code":"x","prompt":"p","timeout":2000}`},
		{"raw data on stdin", `cat`, Input{TaskID: "t1", Raw: json.RawMessage(`{"taskId":"t1","extra":true}`)},
			`{"taskId":"t1","extra":true}`},
		{"environment", `cat >/dev/null; printf '%s' "$TASK_ID"`, Input{TaskID: "abc"}, `"abc"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCommand(t, ProcessOptions{}, "sh", "-c", tt.script)
			out, err := c.Run(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(out.Result) != tt.want {
				t.Errorf("result = %s, want %s", out.Result, tt.want)
			}
			if out.Truncated {
				t.Error("truncated = true")
			}
		})
	}
}

func TestCommandFailureReportsStderrTail(t *testing.T) {
	script := `cat >/dev/null; i=0; while [ $i -lt 500 ]; do echo "noise line $i" >&2; i=$((i+1)); done; echo "fatal: the real reason" >&2; exit 3`
	c := newCommand(t, ProcessOptions{}, "sh", "-c", script)
	_, err := c.Run(context.Background(), Input{TaskID: "t"})
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExitError", err)
	}
	if ee.Status != 3 || !strings.HasSuffix(ee.StderrTail, "fatal: the real reason") {
		t.Errorf("status %d, tail %q", ee.Status, ee.StderrTail)
	}
	if len(ee.StderrTail) > stderrTailBytes {
		t.Errorf("stderr tail is %d bytes, want at most %d", len(ee.StderrTail), stderrTailBytes)
	}
	if !strings.Contains(err.Error(), "exited with status 3: ") || errors.Is(err, ErrUnrecoverable) {
		t.Errorf("err = %q (unrecoverable %v)", err, errors.Is(err, ErrUnrecoverable))
	}
}

func TestCommandHugeOutputIsCapped(t *testing.T) {
	c := newCommand(t, ProcessOptions{MaxOutput: 1000}, "sh", "-c", `cat >/dev/null; head -c 5000000 /dev/zero | tr '\0' a`)
	out, err := c.Run(context.Background(), Input{TaskID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Output         string `json:"output"`
		Truncated      bool   `json:"truncated"`
		MaxOutputBytes int64  `json:"maxOutputBytes"`
	}
	if err := json.Unmarshal(out.Result, &got); err != nil {
		t.Fatal(err)
	}
	if !out.Truncated || !got.Truncated || len(got.Output) != 1000 || got.MaxOutputBytes != 1000 {
		t.Errorf("truncated %v/%v, output %d bytes, max %d", out.Truncated, got.Truncated, len(got.Output), got.MaxOutputBytes)
	}
}

func TestCommandIgnoringSIGTERMIsKilled(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell ignores SIGTERM, and so does its child, which inherits that.
	script := `trap '' TERM; sleep 60 & echo $! > ` + pidFile + `; wait; wait`
	c := newCommand(t, ProcessOptions{KillGrace: 300 * time.Millisecond}, "sh", "-c", script)
	start := time.Now()
	_, err := c.Run(context.Background(), Input{TaskID: "t", Timeout: 300 * time.Millisecond})
	elapsed := time.Since(start)
	var te *TimeoutError
	if !errors.As(err, &te) || err.Error() != "timed out after 300ms" {
		t.Fatalf("err = %v, want timed out after 300ms", err)
	}
	if elapsed > 5*time.Second {
		t.Errorf("run took %s, want about timeout + grace (600ms)", elapsed)
	}
	if elapsed < 550*time.Millisecond {
		t.Errorf("run took %s: SIGKILL came before the grace period", elapsed)
	}
	waitGone(t, readPID(t, pidFile), 5*time.Second)
}

func TestCommandStopsOnSIGTERMWithoutWaitingForGrace(t *testing.T) {
	c := newCommand(t, ProcessOptions{KillGrace: 10 * time.Second}, "sleep", "60")
	start := time.Now()
	_, err := c.Run(context.Background(), Input{TaskID: "t", Timeout: 200 * time.Millisecond})
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *TimeoutError", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run took %s, SIGTERM should have ended it", d)
	}
}

func TestCommandCancelReturnsCause(t *testing.T) {
	errCancelled := errors.New("cancelled")
	c := newCommand(t, ProcessOptions{KillGrace: 200 * time.Millisecond}, "sleep", "60")
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, Input{TaskID: "t", Timeout: time.Minute})
		done <- err
	}()
	cancel(errCancelled)
	select {
	case err := <-done:
		if !errors.Is(err, errCancelled) {
			t.Fatalf("err = %v, want the cancel cause", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}

func TestCommandBackgroundChildDoesNotHoldTheRun(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := newCommand(t, ProcessOptions{KillGrace: 300 * time.Millisecond}, "sh", "-c", `cat >/dev/null; sleep 60 & echo $! > `+pidFile+`; echo done`)
	start := time.Now()
	out, err := c.Run(context.Background(), Input{TaskID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Result) != `"done"` {
		t.Errorf("result = %s", out.Result)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("run took %s", d)
	}
	waitGone(t, readPID(t, pidFile), 5*time.Second)
}

func TestCommandMissingProgramIsUnrecoverable(t *testing.T) {
	c := newCommand(t, ProcessOptions{}, "/nonexistent/program")
	_, err := c.Run(context.Background(), Input{TaskID: "t"})
	if !errors.Is(err, ErrUnrecoverable) {
		t.Fatalf("err = %v, want unrecoverable", err)
	}
}
