package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/agentorch/orchestrator/internal/sandbox"
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
// The zero value is ready to use and runs programs without a sandbox.
type ProcessOptions struct {
	// KillGrace is how long a program has between SIGTERM and SIGKILL when
	// its run is stopped. Defaults to DefaultKillGrace. With a Sandbox, the
	// sandbox's own grace applies.
	KillGrace time.Duration
	// MaxOutput caps the bytes of standard output kept; the rest is read
	// and dropped, and the result reports the cut. Defaults to
	// DefaultMaxOutput.
	MaxOutput int64
	// Env is added to the program's environment.
	Env []string
	// Sandbox boxes in every program (see package sandbox). Nil, or a
	// sandbox in sandbox.ModeOff, runs programs directly with the
	// worker's whole environment, as the worker's user.
	Sandbox *sandbox.Sandbox
	// AgentEnv names the worker's variables (exact names, or prefixes
	// ending in "*") passed to sandboxed programs besides the minimal set
	// (see sandbox.AgentEnv). Names that sandbox.ForbiddenEnvName rejects
	// are never passed.
	AgentEnv []string
	// TempDir is where task workspaces are created. Defaults to
	// os.TempDir(). With a sandbox and a root worker it must be
	// traversable by nobody.
	TempDir string
}

// Validate reports options that cannot be used.
func (o ProcessOptions) Validate() error {
	if o.KillGrace < 0 {
		return fmt.Errorf("kill grace %s is negative", o.KillGrace)
	}
	if o.MaxOutput < 0 {
		return fmt.Errorf("max output %d is negative", o.MaxOutput)
	}
	if err := sandbox.ValidateEnvNames(o.AgentEnv); err != nil {
		return fmt.Errorf("agent environment: %w", err)
	}
	return nil
}

func (o ProcessOptions) killGrace() time.Duration {
	if o.Sandbox != nil {
		return o.Sandbox.KillGrace()
	}
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

// sandboxed reports whether programs run boxed in.
func (o ProcessOptions) sandboxed() bool {
	return o.Sandbox != nil && o.Sandbox.Mode() != sandbox.ModeOff
}

// sandbox returns the sandbox programs run in: an off one when none is set.
func (o ProcessOptions) sandbox() *sandbox.Sandbox {
	if o.Sandbox != nil {
		return o.Sandbox
	}
	sb, err := sandbox.New(sandbox.Options{Mode: sandbox.ModeOff, KillGrace: o.killGrace()})
	if err != nil {
		panic(err) // ModeOff with a validated grace cannot fail
	}
	return sb
}

// ExitError reports a program that ended with a non-zero status or a signal.
type ExitError struct {
	// Program is the program's name (argv[0]).
	Program string
	// Status is the exit status, or -1 when a signal ended the program.
	Status int
	// Signal names the signal that ended the program, if one did.
	Signal string
	// Limit names the sandbox limit the program most likely ran into
	// (sandbox.LimitMemory or sandbox.LimitPIDs), if any.
	Limit sandbox.Limit
	// LimitValue describes that limit ("2 GiB per process", "512 tasks").
	LimitValue string
	// StderrTail is the end of the program's standard error.
	StderrTail string
}

// Error says how the program ended and which limit it ran into, followed
// by its stderr tail.
func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString(e.Program)
	switch e.Limit {
	case sandbox.LimitMemory:
		fmt.Fprintf(&b, " hit the sandbox memory limit (WORKER_AGENT_MEMORY, %s) and", e.LimitValue)
	case sandbox.LimitPIDs:
		fmt.Fprintf(&b, " hit the sandbox process limit (WORKER_AGENT_PIDS, %s) and", e.LimitValue)
	}
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
	stdin io.Reader
	// env is added to the program's environment, on top of
	// ProcessOptions.Env.
	env []string
	// passEnv names more of the worker's variables the program needs in
	// a sandbox (the claude executor: ANTHROPIC_*, CLAUDE_CODE_*).
	passEnv []string
	// ws is the task's workspace: the program runs in ws.work, with HOME
	// and TMPDIR inside. Required.
	ws *workspace
	// readPaths are more paths the program may read in a sandbox.
	readPaths []string
	// stdout and stderr, when set, also receive the program's output as
	// it comes (for live logs); the output cap and stderr tail still apply.
	stdout, stderr io.Writer
}

// procResult is what a finished program left behind.
type procResult struct {
	stdout      []byte
	truncated   bool
	stderrTail  string
	protections []sandbox.Protection
}

// environ returns the program's environment: with a sandbox, the minimal
// one of sandbox.AgentEnv; otherwise the worker's with the extras.
func (o ProcessOptions) environ(spec procSpec) []string {
	extra := append(slices.Clone(o.Env), spec.env...)
	if !o.sandboxed() {
		return append(os.Environ(), extra...)
	}
	set := map[string]string{"HOME": spec.ws.home, "TMPDIR": spec.ws.tmp}
	for _, kv := range extra {
		if k, v, ok := strings.Cut(kv, "="); ok {
			set[k] = v
		}
	}
	return sandbox.AgentEnv(os.Environ(), append(slices.Clone(o.AgentEnv), spec.passEnv...), set)
}

// run starts spec (in the sandbox, if any) and waits for it. When ctx ends
// first, every process of the program gets SIGTERM and, after the kill
// grace, SIGKILL; run then returns the cause of ctx. A program that cannot
// be started is an unrecoverable error; a non-zero exit is an *ExitError,
// returned with the output.
func (o ProcessOptions) run(ctx context.Context, spec procSpec) (procResult, error) {
	if len(spec.argv) == 0 {
		return procResult{}, Unrecoverable(errors.New("no program to run"))
	}
	if spec.ws == nil {
		return procResult{}, Unrecoverable(errors.New("no workspace"))
	}
	if err := ctx.Err(); err != nil {
		return procResult{}, stopCause(ctx)
	}
	sb := o.sandbox()
	cmd := sb.Command(sandbox.Spec{
		Argv: spec.argv, Dir: spec.ws.work, Env: o.environ(spec),
		Workspace: spec.ws.root, ReadPaths: spec.readPaths,
	})
	stdout := &capBuffer{max: o.maxOutput()}
	stderr := &tailBuffer{max: stderrTailBytes}
	cmd.Stdin = spec.stdin
	cmd.Stdout, cmd.Stderr = teeWriter(stdout, spec.stdout), teeWriter(stderr, spec.stderr)
	// A child that escaped into the background may hold the pipes open
	// after the program exits; stop waiting for them after the grace.
	cmd.WaitDelay = o.killGrace()

	if err := cmd.Start(); err != nil {
		if errors.Is(err, sandbox.ErrUnavailable) {
			return procResult{}, err
		}
		return procResult{}, Unrecoverable(err)
	}
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
		cmd.Stop()
	}()
	sres, waitErr := cmd.Wait()
	close(done)
	<-watcherDone

	res := procResult{stdout: stdout.buf, truncated: stdout.truncated, stderrTail: stderr.tail(), protections: sres.Protections}
	if o.sandboxed() {
		res.protections = sandbox.WithProtection(res.protections, sandbox.ProtectionEnv)
	}
	if signalled.Load() {
		return res, stopCause(ctx)
	}
	if waitErr != nil && !errors.Is(waitErr, exec.ErrWaitDelay) {
		var se *sandbox.SetupError
		if errors.As(waitErr, &se) {
			// A program that cannot be executed, or a strict sandbox that
			// cannot be set up: another attempt here would fail the same.
			return res, Unrecoverable(fmt.Errorf("%s: %w", spec.argv[0], waitErr))
		}
		return res, fmt.Errorf("wait for %s: %w", spec.argv[0], waitErr)
	}
	// A program that exited while only its pipes outlived it (ErrWaitDelay)
	// is judged by its status.
	if sres.Failed() {
		ee := &ExitError{Program: spec.argv[0], Status: sres.ExitCode, Signal: sres.Signal, StderrTail: res.stderrTail}
		switch ee.Limit = sres.LimitHit(stderr.headText() + "\n" + res.stderrTail); ee.Limit {
		case sandbox.LimitMemory:
			ee.LimitValue = formatBytes(sres.MemoryBytes) + " per process"
		case sandbox.LimitPIDs:
			ee.LimitValue = strconv.FormatInt(sres.MaxTasks, 10) + " processes and threads"
		}
		return res, ee
	}
	return res, nil
}

// teeWriter returns w, or w and extra together when extra is set.
func teeWriter(w, extra io.Writer) io.Writer {
	if extra == nil {
		return w
	}
	return io.MultiWriter(w, extra)
}

// formatBytes formats n in the largest binary unit that divides it.
func formatBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
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

// tailBuffer keeps the last max bytes written to it, and the first
// headBytes.
type tailBuffer struct {
	max  int
	buf  []byte
	head []byte
}

// headBytes is how much of the start of standard error is kept: runtimes
// say why they died first (Go's "fatal error: out of memory") and then
// dump stacks.
const headBytes = 1 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	if room := headBytes - len(t.head); room > 0 {
		t.head = append(t.head, p[:min(room, len(p))]...)
	}
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

// headText returns the start of the stream as text.
func (t *tailBuffer) headText() string {
	return strings.ToValidUTF8(string(t.head), "\uFFFD")
}

// tail returns the kept bytes as trimmed text.
func (t *tailBuffer) tail() string {
	return strings.TrimSpace(strings.ToValidUTF8(string(t.buf), "\uFFFD"))
}
