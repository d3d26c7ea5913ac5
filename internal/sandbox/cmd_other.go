//go:build !linux

package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Cmd is one program started in a Sandbox. Outside Linux no protection is
// available: programs run directly, in their own process group.
type Cmd struct {
	// Stdin, Stdout and Stderr are the program's standard streams; nil
	// means /dev/null.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// WaitDelay bounds how long Wait waits for the streams after the
	// program exited (see exec.Cmd.WaitDelay). Zero means no bound.
	WaitDelay time.Duration

	s    *Sandbox
	spec Spec
	cmd  *exec.Cmd
}

// Command returns a Cmd that runs spec. It does no I/O.
func (s *Sandbox) Command(spec Spec) *Cmd { return &Cmd{s: s, spec: spec} }

// Start starts the program; in ModeStrict it fails with ErrUnavailable.
func (c *Cmd) Start() error {
	if len(c.spec.Argv) == 0 || c.spec.Argv[0] == "" {
		return errors.New("sandbox: no program to run")
	}
	if _, err := c.s.Probe(context.Background()); err != nil {
		return err
	}
	cmd := exec.Command(c.spec.Argv[0], c.spec.Argv[1:]...)
	cmd.Dir, cmd.Env = c.spec.Dir, c.spec.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.WaitDelay = c.WaitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.cmd = cmd
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.spec.Argv[0], err)
	}
	return nil
}

// Pid returns the program's process id, or 0 before Start.
func (c *Cmd) Pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Stop sends SIGTERM to the program's group and SIGKILL after the grace.
func (c *Cmd) Stop() {
	if pid := c.Pid(); pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		time.AfterFunc(c.s.opts.KillGrace, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	}
}

// Wait waits for the program and returns how it ended.
func (c *Cmd) Wait() (Result, error) {
	if c.cmd == nil {
		return Result{}, errors.New("sandbox: Wait before Start")
	}
	err := c.cmd.Wait()
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	var res Result
	if err == nil {
		return res, nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return res, err
	}
	res.ExitCode = ee.ExitCode()
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = ws.Signal().String()
	}
	return res, nil
}

// WorkspaceOwner returns the worker's own ids: no chown is needed.
func (s *Sandbox) WorkspaceOwner() (uid, gid int, chown bool) {
	return os.Geteuid(), os.Getegid(), false
}

func (s *Sandbox) runProbe(ctx context.Context) probeResult {
	reason := "needs Linux"
	var missing []Missing
	for _, p := range s.required() {
		missing = append(missing, Missing{p, reason})
	}
	rep := Report{Mode: s.opts.Mode, Missing: missing}
	return probeResult{report: rep, err: s.checkStrict(nil, missing)}
}

// RunLauncher exits: there is no launcher outside Linux.
func RunLauncher() {
	fmt.Fprintln(os.Stderr, "sandbox-exec: needs Linux")
	os.Exit(125)
}

// LandlockABI returns 0: Landlock is a Linux feature.
func LandlockABI() int { return 0 }
