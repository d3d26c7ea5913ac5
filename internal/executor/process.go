package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of ProcessOptions.
const (
	DefaultKillGrace = 5 * time.Second
	DefaultMaxOutput = 1 << 20 // 1 MiB

	// stderrTailBytes is how much of the end of standard error is kept for
	// error messages.
	stderrTailBytes = 2 << 10
)

// ProcessOptions control how the process-based executors run programs.
// The zero value is ready to use.
type ProcessOptions struct {
	// KillGrace is how long a program has between SIGTERM and SIGKILL when
	// its run is stopped. Defaults to DefaultKillGrace.
	KillGrace time.Duration
	// MaxOutput caps the bytes of standard output kept; the rest is read
	// and dropped, and the result reports the cut. Defaults to
	// DefaultMaxOutput.
	MaxOutput int64
	// Env is added to the worker's own environment for the program.
	Env []string
}

// Validate reports options that cannot be used.
func (o ProcessOptions) Validate() error {
	if o.KillGrace < 0 {
		return fmt.Errorf("kill grace %s is negative", o.KillGrace)
	}
	if o.MaxOutput < 0 {
		return fmt.Errorf("max output %d is negative", o.MaxOutput)
	}
	return nil
}

func (o ProcessOptions) killGrace() time.Duration {
	if o.KillGrace == 0 {
		return DefaultKillGrace
	}
	return o.KillGrace
}

func (o ProcessOptions) maxOutput() int64 {
	if o.MaxOutput == 0 {
		return DefaultMaxOutput
	}
	return o.MaxOutput
}

// ExitError reports a program that ended with a non-zero status or a signal.
type ExitError struct {
	// Program is the program's name (argv[0]).
	Program string
	// Status is the exit status, or -1 when a signal ended the program.
	Status int
	// Signal names the signal that ended the program, if one did.
	Signal string
	// StderrTail is the end of the program's standard error.
	StderrTail string
}

// Error says how the program ended, followed by its stderr tail.
func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString(e.Program)
	if e.Signal != "" {
		fmt.Fprintf(&b, " killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, " exited with status %d", e.Status)
	}
	if e.StderrTail != "" {
		b.WriteString(": ")
		b.WriteString(e.StderrTail)
	}
	return b.String()
}

// procSpec is one program to run.
type procSpec struct {
	argv  []string
	dir   string
	stdin io.Reader
	env   []string // extra, on top of ProcessOptions.Env
}

// procResult is what a finished program left behind.
type procResult struct {
	stdout     []byte
	truncated  bool
	stderrTail string
}

// run starts spec in its own process group and waits for it. When ctx ends
// first, the group gets SIGTERM and, KillGrace later, SIGKILL; run then
// returns the cause of ctx. A program that cannot be started is an
// unrecoverable error; a non-zero exit is an *ExitError, returned with the
// output.
func (o ProcessOptions) run(ctx context.Context, spec procSpec) (procResult, error) {
	if len(spec.argv) == 0 {
		return procResult{}, Unrecoverable(errors.New("no program to run"))
	}
	if err := ctx.Err(); err != nil {
		return procResult{}, stopCause(ctx)
	}
	cmd := exec.Command(spec.argv[0], spec.argv[1:]...)
	cmd.Dir = spec.dir
	cmd.Stdin = spec.stdin
	if len(o.Env) > 0 || len(spec.env) > 0 {
		cmd.Env = append(append(cmd.Environ(), o.Env...), spec.env...)
	}
	stdout := &capBuffer{max: o.maxOutput()}
	stderr := &tailBuffer{max: stderrTailBytes}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = sysProcAttr()
	// A child that escaped into the background may hold the pipes open
	// after the program exits; stop waiting for them after the grace.
	cmd.WaitDelay = o.killGrace()

	if err := cmd.Start(); err != nil {
		return procResult{}, Unrecoverable(fmt.Errorf("start %s: %w", spec.argv[0], err))
	}
	pgid := cmd.Process.Pid
	var signalled atomic.Bool
	done := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-done:
			return
		case <-ctx.Done():
		}
		signalled.Store(true)
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(o.killGrace())
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	waitErr := cmd.Wait()
	close(done)
	<-watcherDone
	// Whatever the program left running in its group goes with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)

	res := procResult{stdout: stdout.buf, truncated: stdout.truncated, stderrTail: stderr.tail()}
	if signalled.Load() {
		return res, stopCause(ctx)
	}
	if waitErr != nil {
		var exitErr *exec.ExitError
		if !errors.As(waitErr, &exitErr) {
			if errors.Is(waitErr, exec.ErrWaitDelay) {
				// The program exited; only its pipes outlived it.
				return res, nil
			}
			return res, fmt.Errorf("wait for %s: %w", spec.argv[0], waitErr)
		}
		ee := &ExitError{Program: spec.argv[0], Status: exitErr.ExitCode(), StderrTail: res.stderrTail}
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ee.Signal = ws.Signal().String()
		}
		return res, ee
	}
	return res, nil
}

// capBuffer keeps the first max bytes written to it and drops the rest,
// never failing a write, so that the program is never blocked on its output.
type capBuffer struct {
	max       int64
	buf       []byte
	truncated bool
}

func (c *capBuffer) Write(p []byte) (int, error) {
	room := c.max - int64(len(c.buf))
	switch {
	case room <= 0:
		c.truncated = c.truncated || len(p) > 0
	case int64(len(p)) > room:
		c.buf = append(c.buf, p[:room]...)
		c.truncated = true
	default:
		c.buf = append(c.buf, p...)
	}
	return len(p), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.max {
		t.buf = append(t.buf[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return n, nil
}

// tail returns the kept bytes as trimmed text.
func (t *tailBuffer) tail() string {
	return strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "\uFFFD"))
}
