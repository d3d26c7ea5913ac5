package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// RunLauncher runs the sandbox launcher described by os.Args (see
// IsLauncher) and never returns. It reads no configuration: everything
// comes from its arguments and its environment is the program's.
func RunLauncher() {
	rep := &reporter{f: os.NewFile(reportFD, "report")}
	var spec launchSpec
	if len(os.Args) < 3 || json.Unmarshal([]byte(os.Args[2]), &spec) != nil {
		fmt.Fprintln(os.Stderr, "sandbox-exec: invalid arguments")
		os.Exit(125)
	}
	// The report pipe must not reach the program.
	syscall.CloseOnExec(reportFD)
	// Not dumpable: the program, though it runs as the same user, can
	// neither ptrace the launcher nor open its /proc/<pid>/mem (only the
	// thread that starts the program is restricted; the others are not).
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	os.Exit(runInit(spec, rep))
}

// setupFailure reports err as fatal and returns the launcher's exit code.
func setupFailure(rep *reporter, format string, args ...any) int {
	msg := fmt.Sprintf(format, args...)
	rep.send(message{Error: msg})
	fmt.Fprintln(os.Stderr, "sandbox-exec:", msg)
	return 125
}

// runInit runs the launcher: in new namespaces it builds the filesystem
// view and is the PID namespace's init; otherwise it is a child subreaper.
// It restricts the thread that starts the program (capabilities,
// no_new_privs, seccomp, Landlock: all inherited by the program), starts
// it with its resource limits, forwards SIGTERM to every process of the sandbox, kills them all
// after the grace or when the program exits, reaps them, and reports how
// the program ended.
func runInit(spec launchSpec, rep *reporter) int {
	var applied []Protection
	var missing []Missing
	privateProc := false
	if spec.Namespaces {
		applied = append(applied, ProtectionUserNS, ProtectionPIDNS, ProtectionIPCNS)
		if spec.NetNS {
			applied = append(applied, ProtectionNetNS)
		}
		pp, err := buildRoot(spec)
		if err != nil {
			if spec.Strict {
				return setupFailure(rep, "filesystem view: %v", err)
			}
			missing = append(missing, Missing{ProtectionMountNS, err.Error()})
		} else {
			applied = append(applied, ProtectionMountNS)
			privateProc = pp
		}
		// The filesystem view is built: no thread of the launcher needs
		// a capability any more.
		if err := dropAllCapabilities(); err != nil {
			return setupFailure(rep, "drop capabilities: %v", err)
		}
	} else {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return setupFailure(rep, "child subreaper: %v", err)
		}
		applied = append(applied, ProtectionSubreaper)
	}

	// Everything below is per thread (capabilities, no_new_privs, seccomp,
	// Landlock) and inherited by the program, which this thread starts (and
	// then gives its resource limits). The thread stays locked: it is never
	// handed back to the Go scheduler.
	runtime.LockOSThread()
	got, lmissing, code := restrictThread(spec, rep)
	if code != 0 {
		return code
	}
	applied = append(applied, got...)
	missing = append(missing, lmissing...)
	limits, lapplied, limMissing := limitsFor(spec)
	if spec.Strict && len(limMissing) > 0 {
		return setupFailure(rep, "%s: %s", limMissing[0].Protection, limMissing[0].Reason)
	}
	applied = append(applied, lapplied...)
	missing = append(missing, limMissing...)
	if spec.Probe {
		rep.send(message{Applied: applied, Missing: missing})
		rep.send(message{Exit: &exitInfo{}})
		return 0
	}
	path := spec.Argv[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path) // on the program's own PATH
		if err != nil {
			return setupFailure(rep, "program %q not found on PATH", path)
		}
		path = p
	}
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	pid, err := startLimited(path, spec.Argv, attr, limits)
	if err != nil {
		return setupFailure(rep, "execute %s: %v", spec.Argv[0], err)
	}
	rep.send(message{Applied: applied, Missing: missing})

	k := &killer{namespaces: spec.Namespaces, self: os.Getpid()}
	var peakTasks, peakData atomic.Int64
	sample := func() {}
	if spec.Namespaces && privateProc {
		sample = func() {
			tasks, data := sampleNamespace()
			if tasks > peakTasks.Load() {
				peakTasks.Store(tasks)
			}
			if data > peakData.Load() {
				peakData.Store(data)
			}
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	exited := make(chan syscall.WaitStatus, 1)
	go reapAll(pid, k, sample, exited)

	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	var graceC <-chan time.Time
	killing := false
	for {
		select {
		case ws := <-exited:
			info := &exitInfo{Code: ws.ExitStatus(), PeakTasks: peakTasks.Load(), PeakDataBytes: peakData.Load()}
			if ws.Signaled() {
				info.Code, info.Signal = -1, ws.Signal().String()
			}
			rep.send(message{Exit: info})
			return 0
		case <-sigs:
			if graceC == nil && !killing {
				k.all(syscall.SIGTERM)
				graceC = time.After(time.Duration(spec.KillGraceMs) * time.Millisecond)
			}
		case <-graceC:
			graceC, killing = nil, true
			k.all(syscall.SIGKILL)
		case <-ticker.C:
			sample()
			if killing {
				// Without a PID namespace, new processes may have
				// appeared since the last sweep.
				k.all(syscall.SIGKILL)
			}
		}
	}
}

// reapAll reaps every child of the launcher. Once the program (pid) has
// exited it kills all that is left, and sends the program's status on
// exited when nothing is left.
func reapAll(pid int, k *killer, sample func(), exited chan<- syscall.WaitStatus) {
	var status syscall.WaitStatus
	done := false
	for {
		flags := 0
		if done {
			flags = syscall.WNOHANG
		}
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, flags, nil)
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.ECHILD):
			// No child left, hence no descendant: children of dead
			// processes come to the init or subreaper.
			exited <- status
			return
		case err != nil:
			exited <- status
			return
		case wpid == pid:
			sample()
			status, done = ws, true
			k.all(syscall.SIGKILL)
		case wpid == 0:
			// Children remain but none has exited yet.
			k.all(syscall.SIGKILL)
			if _, err := syscall.Wait4(-1, &ws, 0, nil); errors.Is(err, syscall.ECHILD) {
				exited <- status
				return
			}
		}
	}
}

// killer signals every process of the sandbox but the launcher.
type killer struct {
	namespaces bool
	self       int
}

// all sends sig to every process of the sandbox: in a PID namespace with
// kill(-1), which reaches them all; otherwise to every descendant found in
// /proc (a subreaper adopts the orphans, so none is lost).
func (k *killer) all(sig syscall.Signal) {
	if k.namespaces {
		_ = syscall.Kill(-1, sig)
		return
	}
	for _, pid := range descendants(k.self) {
		_ = syscall.Kill(pid, sig)
	}
}

// descendants returns the processes below root, found through the parent
// ids in /proc/<pid>/stat.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name (the first is the state, field 3).
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func parentPID(pid int) (int, bool) {
	f := statFields(pid)
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// sampleNamespace returns the tasks (threads) of every process in the PID
// namespace but the launcher, and the largest data segment among them, in
// bytes; /proc must be the namespace's own.
func sampleNamespace() (tasks, maxData int64) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	page := int64(os.Getpagesize())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 {
			continue
		}
		if f := statFields(pid); len(f) > 17 {
			n, _ := strconv.ParseInt(f[17], 10, 64) // field 20: num_threads
			tasks += n
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/statm"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 5 {
				n, _ := strconv.ParseInt(f[5], 10, 64) // data + stack, pages
				maxData = max(maxData, n*page)
			}
		}
	}
	return tasks, maxData
}

// selfThreads returns the launcher's thread count.
func selfThreads() int64 {
	if f := statFields(os.Getpid()); len(f) > 17 {
		n, _ := strconv.ParseInt(f[17], 10, 64)
		return n
	}
	return 0
}

// restrictThread applies to the calling, locked thread what the program
// inherits: no capabilities, no_new_privs, the seccomp filter and
// Landlock. It returns what it applied and what is missing, or
// a non-zero exit code after reporting a failure.
func restrictThread(spec launchSpec, rep *reporter) ([]Protection, []Missing, int) {
	var applied []Protection
	var missing []Missing
	miss := func(p Protection, err error) int {
		if spec.Strict {
			return setupFailure(rep, "%s: %v", p, err)
		}
		missing = append(missing, Missing{p, err.Error()})
		return 0
	}
	dropCapabilities()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return nil, nil, setupFailure(rep, "no_new_privs: %v", err)
	}
	applied = append(applied, ProtectionNoNewPrivs)
	if err := applySeccomp(); err != nil {
		if code := miss(ProtectionSeccomp, err); code != 0 {
			return nil, nil, code
		}
	} else {
		applied = append(applied, ProtectionSeccomp)
	}
	got, lmissing, err := applyLandlock(spec)
	if err != nil {
		return nil, nil, setupFailure(rep, "landlock: %v", err)
	}
	applied = append(applied, got...)
	for _, m := range lmissing {
		if code := miss(m.Protection, errors.New(m.Reason)); code != 0 {
			return nil, nil, code
		}
	}
	return applied, missing, 0
}

// launcherThreadRoom is how many threads the launcher, whose own tasks
// count against the program's RLIMIT_NPROC, may start beyond those it has.
const launcherThreadRoom = 4

// limitsFor returns the resource limits of the program and the protections
// they give; missing lists those that cannot apply.
func limitsFor(spec launchSpec) (limits map[int]uint64, applied []Protection, missing []Missing) {
	limits = map[int]uint64{unix.RLIMIT_CORE: 0}
	if spec.MemoryBytes > 0 {
		limits[unix.RLIMIT_DATA] = uint64(spec.MemoryBytes)
		applied = append(applied, ProtectionMemoryLimit)
	}
	if spec.MaxTasks > 0 {
		if !spec.Namespaces {
			// Without a user namespace RLIMIT_NPROC counts every
			// process of the user, the worker's included.
			missing = append(missing, Missing{ProtectionPIDsLimit, "needs a user namespace"})
		} else {
			// The launcher's threads count against the same user.
			limits[unix.RLIMIT_NPROC] = uint64(spec.MaxTasks + selfThreads() + launcherThreadRoom)
			applied = append(applied, ProtectionPIDsLimit)
		}
	}
	return limits, applied, missing
}

// startLimited starts the program from the calling (locked, restricted)
// thread, stopped at its first instruction under ptrace, sets its resource
// limits with prlimit and lets it run. The launcher itself stays unlimited,
// so that it can always create the threads and memory it needs.
func startLimited(path string, argv []string, attr *syscall.ProcAttr, limits map[int]uint64) (int, error) {
	attr.Sys.Ptrace = true
	pid, err := syscall.ForkExec(path, argv, attr)
	if err != nil {
		return 0, err
	}
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, syscall.WALL, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil || !ws.Stopped() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return 0, fmt.Errorf("program did not stop after exec (%v, status %v)", err, ws)
	}
	for res, lim := range limits {
		if err := unix.Prlimit(pid, res, &unix.Rlimit{Cur: lim, Max: lim}, nil); err != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			return 0, fmt.Errorf("prlimit %d: %w", res, err)
		}
	}
	if err := syscall.PtraceDetach(pid); err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return 0, fmt.Errorf("ptrace detach: %w", err)
	}
	return pid, nil
}

// dropAllCapabilities clears the capabilities of every thread of the
// launcher.
func dropAllCapabilities() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if _, _, e := psx.Syscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 {
		return fmt.Errorf("clear ambient capabilities: %w", e)
	}
	if _, _, e := psx.Syscall3(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return fmt.Errorf("capset: %w", e)
	}
	return nil
}

// dropCapabilities clears the calling thread's ambient, inheritable,
// permitted and effective capabilities.
func dropCapabilities() {
	_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	_ = unix.Capset(&hdr, &data[0])
}
