package sandbox

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Mode says how much protection a Sandbox insists on.
type Mode string

// Modes of a Sandbox.
const (
	// ModeAuto uses every protection the kernel offers and reports which.
	ModeAuto Mode = "auto"
	// ModeStrict refuses to run anything unless every protection is
	// available (the network namespace only when no port is allowed).
	ModeStrict Mode = "strict"
	// ModeOff runs programs directly, as the worker's user, with the
	// worker's environment: no protection beyond a process group.
	ModeOff Mode = "off"
)

// ParseMode parses "auto", "strict" or "off".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeAuto, ModeStrict, ModeOff:
		return m, nil
	}
	return "", fmt.Errorf("unknown sandbox mode %q (want auto, strict or off)", s)
}

// Protection names one protection applied to a program.
type Protection string

// Protections a Sandbox can apply. Which ones a run got is in its Result;
// the executors add ProtectionEnv when they gave the program a minimal
// environment.
const (
	// ProtectionEnv: the program got a minimal environment, without the
	// worker's secrets (set by the caller, see AgentEnv).
	ProtectionEnv Protection = "env"
	// ProtectionUserNS: a new user namespace; the program has no
	// capability outside it and runs as an unprivileged uid (the worker's
	// own, or nobody when the worker is root).
	ProtectionUserNS Protection = "userns"
	// ProtectionPIDNS: a new PID namespace whose init is the launcher; the
	// program sees only its own processes, and all of them die with the
	// launcher.
	ProtectionPIDNS Protection = "pidns"
	// ProtectionMountNS: a private filesystem view holding only the
	// system directories (read-only), the extra read paths (read-only),
	// the workspace (writable, also mounted on /tmp), a private /proc and
	// a minimal /dev. Sockets under /run, /var/run and elsewhere are not
	// in it.
	ProtectionMountNS Protection = "mountns"
	// ProtectionIPCNS: a new IPC namespace (System V IPC, POSIX queues).
	ProtectionIPCNS Protection = "ipcns"
	// ProtectionNetNS: a new network namespace with no usable interface;
	// only when no TCP port is allowed.
	ProtectionNetNS Protection = "netns"
	// ProtectionLandlockFS: Landlock lets the program write only in its
	// workspace and read only the system and the extra read paths.
	ProtectionLandlockFS Protection = "landlock-fs"
	// ProtectionLandlockNet: Landlock refuses TCP connect to every port
	// but the allowed ones, and TCP bind to any fixed port.
	ProtectionLandlockNet Protection = "landlock-net"
	// ProtectionLandlockScope: Landlock refuses signals to, and abstract
	// UNIX socket connections with, processes outside the sandbox.
	ProtectionLandlockScope Protection = "landlock-scope"
	// ProtectionSeccomp: a seccomp filter refuses the sockets Landlock
	// cannot see (MPTCP, SCTP, address families other than UNIX, IPv4,
	// IPv6 and netlink), io_uring, and 32-bit system calls.
	ProtectionSeccomp Protection = "seccomp"
	// ProtectionNoNewPrivs: no_new_privs is set and every capability is
	// dropped: set-user-ID programs and file capabilities give nothing.
	ProtectionNoNewPrivs Protection = "no-new-privs"
	// ProtectionSubreaper: without a PID namespace, the launcher is a
	// child subreaper that kills every descendant it can find when the
	// program ends or is stopped. It cannot act when the launcher itself
	// is SIGKILLed.
	ProtectionSubreaper Protection = "subreaper"
	// ProtectionMemoryLimit: RLIMIT_DATA bounds each process's data
	// (heap and private writable mappings).
	ProtectionMemoryLimit Protection = "limit-memory"
	// ProtectionPIDsLimit: RLIMIT_NPROC bounds the tasks (processes and
	// threads) of the program's user in its user namespace.
	ProtectionPIDsLimit Protection = "limit-pids"
)

// Limit names a resource limit a program ran into.
type Limit string

// Limits a Result can name.
const (
	LimitMemory Limit = "memory"
	LimitPIDs   Limit = "pids"
)

// DefaultKillGrace is the grace between SIGTERM and SIGKILL when Options
// leave it zero.
const DefaultKillGrace = 5 * time.Second

// Options configure a Sandbox. The zero value is ModeAuto with no TCP port
// allowed, no extra read path, no resource limit and a 5s kill grace.
type Options struct {
	// Mode defaults to ModeAuto.
	Mode Mode
	// Ports are the TCP ports the program may connect to, on any host.
	// Empty means none: the program then gets a network namespace of its
	// own when the kernel offers one.
	Ports []uint16
	// ReadPaths are absolute paths, files or directories, the program may
	// read and execute besides the system directories (/usr, /bin, /sbin,
	// /lib*, /etc). Missing paths are skipped.
	ReadPaths []string
	// MemoryBytes bounds each process's data segment (RLIMIT_DATA). Zero
	// means no bound.
	MemoryBytes int64
	// MaxTasks bounds the program's processes and threads together
	// (RLIMIT_NPROC, counted in its user namespace). Zero means no bound.
	MaxTasks int64
	// KillGrace is how long the program's processes have between SIGTERM
	// and SIGKILL when a run is stopped. Defaults to DefaultKillGrace.
	KillGrace time.Duration
	// Launcher is the executable that handles "sandbox-exec" (see
	// RunLauncher). Defaults to /proc/self/exe, the running binary.
	Launcher string
}

// Validate reports options that cannot be used.
func (o Options) Validate() error {
	var errs []error
	switch o.Mode {
	case "", ModeAuto, ModeStrict, ModeOff:
	default:
		errs = append(errs, fmt.Errorf("unknown mode %q", o.Mode))
	}
	for _, p := range o.Ports {
		if p == 0 {
			errs = append(errs, errors.New("port 0 cannot be allowed"))
		}
	}
	for _, p := range o.ReadPaths {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("read path %q is not absolute", p))
		}
	}
	if o.MemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("memory limit %d is negative", o.MemoryBytes))
	}
	if o.MaxTasks < 0 {
		errs = append(errs, fmt.Errorf("task limit %d is negative", o.MaxTasks))
	}
	if o.KillGrace < 0 {
		errs = append(errs, fmt.Errorf("kill grace %s is negative", o.KillGrace))
	}
	return errors.Join(errs...)
}

// Missing is a protection that could not be applied, and why.
type Missing struct {
	Protection Protection `json:"protection"`
	Reason     string     `json:"reason"`
}

// Report says which protections the sandbox applies on this machine.
type Report struct {
	// Mode is the sandbox's mode.
	Mode Mode `json:"mode"`
	// Applied lists the protections every run gets, in a fixed order.
	Applied []Protection `json:"applied"`
	// Missing lists those it cannot apply here, with the reason.
	Missing []Missing `json:"missing,omitempty"`
}

// String returns "auto: userns,pidns,…" and the missing ones, for logs.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", r.Mode, joinProtections(r.Applied))
	for i, m := range r.Missing {
		if i == 0 {
			b.WriteString("; missing: ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", m.Protection, m.Reason)
	}
	return b.String()
}

func joinProtections(ps []Protection) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// ErrUnavailable is returned (wrapped) in ModeStrict when a protection is
// missing.
var ErrUnavailable = errors.New("sandbox protection unavailable")

// Sandbox starts programs boxed in. It is safe for concurrent use; build it
// with New, then call Probe once (Command probes on first use otherwise).
type Sandbox struct {
	opts Options
	// noNamespaces makes the probe skip namespaces, as on a kernel that
	// refuses them (tests of the fallback).
	noNamespaces bool

	probeOnce sync.Once
	probe     probeResult
}

// probeResult is what Probe found.
type probeResult struct {
	report     Report
	namespaces bool // the launcher can enter new namespaces
	err        error
}

// New returns a Sandbox for opts. It does no I/O.
func New(opts Options) (*Sandbox, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("new sandbox: %w", err)
	}
	if opts.Mode == "" {
		opts.Mode = ModeAuto
	}
	if opts.KillGrace == 0 {
		opts.KillGrace = DefaultKillGrace
	}
	if opts.Launcher == "" {
		opts.Launcher = "/proc/self/exe"
	}
	opts.Ports = slices.Clone(opts.Ports)
	slices.Sort(opts.Ports)
	opts.Ports = slices.Compact(opts.Ports)
	opts.ReadPaths = slices.Clone(opts.ReadPaths)
	return &Sandbox{opts: opts}, nil
}

// Mode returns the sandbox's mode.
func (s *Sandbox) Mode() Mode { return s.opts.Mode }

// KillGrace returns the grace between SIGTERM and SIGKILL.
func (s *Sandbox) KillGrace() time.Duration { return s.opts.KillGrace }

// Probe runs the launcher once with nothing to execute and reports the
// protections it could apply. In ModeStrict it returns an error wrapping
// ErrUnavailable when one is missing. The result is computed once and
// cached; ctx bounds only the first call.
func (s *Sandbox) Probe(ctx context.Context) (Report, error) {
	s.probeOnce.Do(func() {
		if s.opts.Mode == ModeOff {
			s.probe = probeResult{report: Report{Mode: ModeOff}}
			return
		}
		s.probe = s.runProbe(ctx)
	})
	return s.probe.report, s.probe.err
}

// required returns the protections ModeStrict insists on.
func (s *Sandbox) required() []Protection {
	req := []Protection{ProtectionUserNS, ProtectionPIDNS, ProtectionMountNS, ProtectionIPCNS,
		ProtectionLandlockFS, ProtectionLandlockNet, ProtectionLandlockScope, ProtectionSeccomp, ProtectionNoNewPrivs}
	if len(s.opts.Ports) == 0 {
		req = append(req, ProtectionNetNS)
	}
	if s.opts.MemoryBytes > 0 {
		req = append(req, ProtectionMemoryLimit)
	}
	if s.opts.MaxTasks > 0 {
		req = append(req, ProtectionPIDsLimit)
	}
	return req
}

// checkStrict returns an error naming the missing protections.
func (s *Sandbox) checkStrict(applied []Protection, missing []Missing) error {
	if s.opts.Mode != ModeStrict {
		return nil
	}
	var lack []string
	for _, p := range s.required() {
		if !slices.Contains(applied, p) {
			reason := "not offered by this kernel"
			for _, m := range missing {
				if m.Protection == p {
					reason = m.Reason
				}
			}
			lack = append(lack, fmt.Sprintf("%s (%s)", p, reason))
		}
	}
	if len(lack) > 0 {
		return fmt.Errorf("%w: WORKER_SANDBOX=strict needs %s", ErrUnavailable, strings.Join(lack, ", "))
	}
	return nil
}

// Spec is one program to run in the sandbox.
type Spec struct {
	// Argv is the program and its arguments. The program is looked up on
	// the PATH of Env when it has no slash. Required.
	Argv []string
	// Dir is the working directory, inside Workspace. Required unless the
	// mode is ModeOff.
	Dir string
	// Env is the program's whole environment.
	Env []string
	// Workspace is the directory the program may write in (its home and
	// temporary directory should be inside). Required unless the mode is
	// ModeOff. It must be reachable by the program's user: see
	// Sandbox.WorkspaceOwner.
	Workspace string
	// ReadPaths are added to Options.ReadPaths for this run.
	ReadPaths []string
}

// Result is how a sandboxed program ended.
type Result struct {
	// Protections were applied to this run, in a fixed order.
	Protections []Protection
	// ExitCode is the program's exit status, or -1 when a signal ended it.
	ExitCode int
	// Signal names the signal that ended the program ("killed",
	// "terminated"…), if one did.
	Signal string
	// PeakTasks is the most processes and threads of the program seen at
	// once (sampled; 0 when not measured).
	PeakTasks int64
	// PeakDataBytes is the largest data segment of one of its processes
	// seen (sampled; 0 when not measured).
	PeakDataBytes int64
	// MemoryBytes and MaxTasks are the limits that applied (0: none).
	MemoryBytes, MaxTasks int64
}

// Failed reports whether the program did not exit with status 0.
func (r Result) Failed() bool { return r.ExitCode != 0 || r.Signal != "" }

// memoryPatterns and forkPatterns are what programs print when an
// allocation fails (ENOMEM) or a fork or thread creation fails (EAGAIN).
var (
	memoryPatterns = []string{"cannot allocate memory", "out of memory", "memoryerror", "bad_alloc",
		"allocation failed", "failed to allocate", "errno: 12", "failed to reserve", "mmap failed", "enomem", "heap limit"}
	forkPatterns = []string{"resource temporarily unavailable", "cannot fork", "fork failed", "fork: retry",
		"failed to create new os thread", "eagain", "can't fork", "thread creation failed", "pthread_create"}
)

// LimitHit names the limit a failed program most likely ran into, from the
// peaks the launcher sampled and the end of the program's standard error;
// "" when neither points at one. A program that exited 0 hit none.
func (r Result) LimitHit(stderrTail string) Limit {
	if !r.Failed() {
		return ""
	}
	tail := strings.ToLower(stderrTail)
	if r.MaxTasks > 0 && (r.PeakTasks >= r.MaxTasks || containsAny(tail, forkPatterns)) {
		return LimitPIDs
	}
	if r.MemoryBytes > 0 && (r.PeakDataBytes >= r.MemoryBytes*9/10 || containsAny(tail, memoryPatterns)) {
		return LimitMemory
	}
	return ""
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// SetupError reports that the sandbox could not be set up for a run (in
// ModeStrict, a protection failed; in any mode, the program could not be
// executed).
type SetupError struct {
	// Msg says what failed.
	Msg string
}

// Error returns "sandbox: <msg>".
func (e *SetupError) Error() string { return "sandbox: " + e.Msg }
