package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// agentIDInRoot is the uid and gid a root worker's programs have inside
// their user namespace (nobody outside).
const agentIDInRoot = 1000

// WorkspaceOwner returns the host user and group that must own a workspace
// for the program to write in it, and whether a chown is needed: when the
// worker runs as root, sandboxed programs run as nobody (65534).
func (s *Sandbox) WorkspaceOwner() (uid, gid int, chown bool) {
	if s.opts.Mode == ModeOff || os.Geteuid() != 0 {
		return os.Geteuid(), os.Getegid(), false
	}
	return nobodyID, nobodyID, true
}

// nobodyID is the uid and gid sandboxed programs run as on the host when
// the worker is root.
const nobodyID = 65534

// Cmd is one program started in a Sandbox. Set Stdin, Stdout and Stderr
// before Start; they are handed to the program as they are (an *os.File
// directly, anything else through a pipe), so callers can stream them.
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

	namespaces bool // launched in new namespaces (ns mode)
	sandboxed  bool // through the launcher (not ModeOff)

	reportR  *os.File
	reportMu sync.Mutex
	messages []message
	readDone chan struct{}

	stopOnce  sync.Once
	timerMu   sync.Mutex
	killTimer *time.Timer
}

// Command returns a Cmd that runs spec in the sandbox. It does no I/O.
func (s *Sandbox) Command(spec Spec) *Cmd {
	return &Cmd{s: s, spec: spec}
}

// Start probes the sandbox if not done yet and starts the program. In
// ModeStrict a missing protection is an error wrapping ErrUnavailable.
func (c *Cmd) Start() error {
	if len(c.spec.Argv) == 0 || c.spec.Argv[0] == "" {
		return errors.New("sandbox: no program to run")
	}
	if c.s.opts.Mode == ModeOff {
		return c.startDirect()
	}
	if c.spec.Workspace == "" || c.spec.Dir == "" {
		return errors.New("sandbox: no workspace or working directory")
	}
	if _, err := c.s.Probe(context.Background()); err != nil {
		return err
	}
	return c.startLauncher(c.s.probe.namespaces, false)
}

// startDirect runs the program without the launcher, in its own process
// group (ModeOff).
func (c *Cmd) startDirect() error {
	cmd := exec.Command(c.spec.Argv[0], c.spec.Argv[1:]...)
	cmd.Dir, cmd.Env = c.spec.Dir, c.spec.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.WaitDelay = c.WaitDelay
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.cmd = cmd
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.spec.Argv[0], err)
	}
	return nil
}

// launchSpec builds what the launcher is told.
func (s *Sandbox) launchSpec(spec Spec, namespaces, probe bool) launchSpec {
	ls := launchSpec{
		Probe: probe, Strict: s.opts.Mode == ModeStrict,
		Namespaces: namespaces, NetNS: namespaces && len(s.opts.Ports) == 0,
		Argv: spec.Argv, Dir: spec.Dir, Workspace: spec.Workspace,
		ReadPaths: append(slices.Clone(s.opts.ReadPaths), spec.ReadPaths...),
		Ports:     s.opts.Ports, MemoryBytes: s.opts.MemoryBytes, MaxTasks: s.opts.MaxTasks,
		KillGraceMs: s.opts.KillGrace.Milliseconds(),
	}
	if len(spec.Argv) > 0 && filepath.IsAbs(spec.Argv[0]) {
		ls.ReadPaths = append(ls.ReadPaths, spec.Argv[0])
	}
	return ls
}

// startLauncher starts the worker binary as "sandbox-exec".
func (c *Cmd) startLauncher(namespaces, probe bool) error {
	ls := c.s.launchSpec(c.spec, namespaces, probe)
	b, err := json.Marshal(ls)
	if err != nil {
		return fmt.Errorf("sandbox: encode launch spec: %w", err)
	}
	cmd := exec.Command(c.s.opts.Launcher, launcherArg, string(b))
	cmd.Args[0] = "agent-sandbox"
	cmd.Dir = "/"
	cmd.Env = c.spec.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	cmd.WaitDelay = c.WaitDelay
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if namespaces {
		attr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWIPC
		if ls.NetNS {
			attr.Cloneflags |= syscall.CLONE_NEWNET
		}
		uid, gid := os.Geteuid(), os.Getegid()
		inUID, inGID := uid, gid
		if uid == 0 {
			// Root maps its programs to nobody and drops its groups.
			inUID, inGID = agentIDInRoot, agentIDInRoot
			uid, gid = nobodyID, nobodyID
			attr.GidMappingsEnableSetgroups = true
			attr.Credential = &syscall.Credential{Uid: uint32(inUID), Gid: uint32(inGID), Groups: []uint32{}}
		}
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: inUID, HostID: uid, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: inGID, HostID: gid, Size: 1}}
		// The launcher builds the filesystem view; it drops the
		// capability before it starts the program.
		attr.AmbientCaps = []uintptr{unix.CAP_SYS_ADMIN}
	} else if os.Geteuid() == 0 {
		// Without namespaces a root worker's launcher, and so its
		// program, runs as nobody.
		attr.Credential = &syscall.Credential{Uid: nobodyID, Gid: nobodyID, Groups: []uint32{}}
	}
	cmd.SysProcAttr = attr
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("sandbox: report pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{w} // reportFD
	c.cmd, c.sandboxed, c.namespaces = cmd, true, namespaces
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("sandbox: start launcher: %w", err)
	}
	c.reportR = r
	c.readDone = make(chan struct{})
	go c.readReports()
	return nil
}

// readReports collects the launcher's report lines until the pipe closes.
func (c *Cmd) readReports() {
	defer close(c.readDone)
	defer c.reportR.Close()
	sc := bufio.NewScanner(c.reportR)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var m message
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		c.reportMu.Lock()
		c.messages = append(c.messages, m)
		c.reportMu.Unlock()
	}
}

// Pid returns the process id of the launcher (of the program in
// ModeOff), or 0 before Start.
func (c *Cmd) Pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Stop asks every process of the program to end: SIGTERM now, SIGKILL
// after the kill grace, whatever they did to escape (setsid, ignoring
// SIGTERM). It returns at once; Wait returns when they are gone. Calling
// it again does nothing.
func (c *Cmd) Stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.stopOnce.Do(func() {
		pid := c.cmd.Process.Pid
		grace := c.s.opts.KillGrace
		if c.sandboxed {
			// The launcher forwards SIGTERM to every process of the
			// sandbox and kills them all after the grace; SIGKILL to
			// the launcher is a backstop (in a PID namespace it kills
			// them all too).
			_ = syscall.Kill(pid, syscall.SIGTERM)
			backstop := grace
			if !c.namespaces {
				backstop += time.Second
			}
			c.setKillTimer(backstop, func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
			return
		}
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		c.setKillTimer(grace, func() { _ = syscall.Kill(-pid, syscall.SIGKILL) })
	})
}

func (c *Cmd) setKillTimer(d time.Duration, f func()) {
	c.timerMu.Lock()
	defer c.timerMu.Unlock()
	c.killTimer = time.AfterFunc(d, f)
}

// Wait waits for the program and every process it left and returns how
// it ended. The error is nil when the program ran, whatever its status;
// a *SetupError when the sandbox could not start it; exec.ErrWaitDelay
// (with the Result) when its streams outlived it past WaitDelay.
func (c *Cmd) Wait() (Result, error) {
	if c.cmd == nil {
		return Result{}, errors.New("sandbox: Wait before Start")
	}
	waitErr := c.cmd.Wait()
	c.timerMu.Lock()
	if c.killTimer != nil {
		c.killTimer.Stop()
	}
	c.timerMu.Unlock()
	res := Result{MemoryBytes: c.s.opts.MemoryBytes, MaxTasks: c.s.opts.MaxTasks}
	if !c.sandboxed {
		// Whatever the program left running in its group goes with it.
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		res.MemoryBytes, res.MaxTasks = 0, 0
		return resultFromWait(res, c.cmd, waitErr)
	}
	select {
	case <-c.readDone:
	case <-time.After(2 * time.Second):
		// Only a process that kept the report pipe could hold it open.
	}
	if !c.namespaces {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
	c.reportMu.Lock()
	msgs := slices.Clone(c.messages)
	c.reportMu.Unlock()
	var exit *exitInfo
	for _, m := range msgs {
		res.Protections = append(res.Protections, m.Applied...)
		if m.Error != "" {
			return res, &SetupError{Msg: m.Error}
		}
		if m.Exit != nil {
			exit = m.Exit
		}
	}
	res.Protections = sortProtections(res.Protections)
	if exit == nil {
		// The launcher died before it could report (SIGKILLed).
		return resultFromWait(res, c.cmd, waitErr)
	}
	res.ExitCode, res.Signal, res.PeakTasks, res.PeakDataBytes = exit.Code, exit.Signal, exit.PeakTasks, exit.PeakDataBytes
	if errors.Is(waitErr, exec.ErrWaitDelay) {
		return res, waitErr
	}
	return res, nil
}

// resultFromWait fills res from exec.Cmd.Wait's outcome.
func resultFromWait(res Result, cmd *exec.Cmd, waitErr error) (Result, error) {
	if waitErr == nil {
		return res, nil
	}
	var ee *exec.ExitError
	if !errors.As(waitErr, &ee) {
		if errors.Is(waitErr, exec.ErrWaitDelay) {
			return res, waitErr
		}
		return res, fmt.Errorf("wait for %s: %w", cmd.Path, waitErr)
	}
	res.ExitCode = ee.ExitCode()
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signal = ws.Signal().String()
	}
	return res, nil
}

// runProbe runs the launcher with nothing to execute, in new namespaces if
// the kernel lets it, and collects what it applied.
func (s *Sandbox) runProbe(ctx context.Context) probeResult {
	ws, err := os.MkdirTemp("", "agent-sandbox-probe-*")
	if err != nil {
		return probeResult{report: Report{Mode: s.opts.Mode}, err: fmt.Errorf("sandbox probe: %w", err)}
	}
	defer os.RemoveAll(ws)
	if uid, gid, chown := s.WorkspaceOwner(); chown {
		if err := os.Chown(ws, uid, gid); err != nil {
			return probeResult{report: Report{Mode: s.opts.Mode}, err: fmt.Errorf("sandbox probe: %w", err)}
		}
	}
	spec := Spec{Argv: []string{"/bin/true"}, Dir: ws, Workspace: ws, Env: []string{"PATH=/usr/bin:/bin"}}
	var missing []Missing
	for _, namespaces := range []bool{true, false} {
		if namespaces && s.noNamespaces {
			reason := "disabled for this test"
			missing = append(missing, Missing{ProtectionUserNS, reason}, Missing{ProtectionPIDNS, reason},
				Missing{ProtectionMountNS, reason}, Missing{ProtectionIPCNS, reason})
			continue
		}
		c := s.Command(spec)
		if err := c.startLauncher(namespaces, true); err != nil {
			if namespaces {
				reason := fmt.Sprintf("cannot create namespaces: %v", errors.Unwrap(err))
				missing = append(missing, Missing{ProtectionUserNS, reason}, Missing{ProtectionPIDNS, reason},
					Missing{ProtectionMountNS, reason}, Missing{ProtectionIPCNS, reason})
				if len(s.opts.Ports) == 0 {
					missing = append(missing, Missing{ProtectionNetNS, reason})
				}
				continue
			}
			return probeResult{report: Report{Mode: s.opts.Mode, Missing: missing}, err: err}
		}
		done := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				_ = syscall.Kill(c.Pid(), syscall.SIGKILL)
			case <-done:
			}
		}()
		res, err := c.Wait()
		close(done)
		c.reportMu.Lock()
		for _, m := range c.messages {
			missing = append(missing, m.Missing...)
		}
		c.reportMu.Unlock()
		if err == nil && res.Failed() {
			err = fmt.Errorf("sandbox probe: launcher ended with status %d %s", res.ExitCode, res.Signal)
		}
		if err != nil && namespaces && ctx.Err() == nil && s.opts.Mode != ModeStrict {
			// Namespaces were created but could not be used: try without.
			reason := err.Error()
			missing = append(missing, Missing{ProtectionMountNS, reason})
			continue
		}
		rep := Report{Mode: s.opts.Mode, Applied: res.Protections, Missing: dedupMissing(missing, res.Protections)}
		if err != nil {
			return probeResult{report: rep, err: fmt.Errorf("sandbox probe: %w", err)}
		}
		return probeResult{report: rep, namespaces: namespaces, err: s.checkStrict(rep.Applied, rep.Missing)}
	}
	return probeResult{report: Report{Mode: s.opts.Mode, Missing: missing}, err: errors.New("sandbox probe: no launch worked")}
}

// dedupMissing keeps one entry per protection, dropping those applied.
func dedupMissing(ms []Missing, applied []Protection) []Missing {
	var out []Missing
	seen := map[Protection]bool{}
	for _, m := range ms {
		if seen[m.Protection] || slices.Contains(applied, m.Protection) {
			continue
		}
		seen[m.Protection] = true
		out = append(out, m)
	}
	return out
}
