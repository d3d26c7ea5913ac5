//go:build linux

package sandbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestParseModeAndValidate(t *testing.T) {
	for in, want := range map[string]Mode{"auto": ModeAuto, "STRICT": ModeStrict, " off ": ModeOff} {
		if m, err := ParseMode(in); err != nil || m != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, m, err)
		}
	}
	if _, err := ParseMode("on"); err == nil {
		t.Error("ParseMode(on): no error")
	}
	for _, o := range []Options{{Mode: "x"}, {Ports: []uint16{0}}, {ReadPaths: []string{"rel"}}, {MemoryBytes: -1}, {MaxTasks: -1}, {KillGrace: -1}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
	s, err := New(Options{Ports: []uint16{443, 80, 443}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Mode() != ModeAuto || s.KillGrace() != DefaultKillGrace || !slices.Equal(s.opts.Ports, []uint16{80, 443}) || s.opts.Launcher != "/proc/self/exe" {
		t.Errorf("defaults: %+v", s.opts)
	}
}

func TestAgentEnv(t *testing.T) {
	environ := []string{"PATH=/usr/bin", "HOME=/root", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC", "REDIS_PASSWORD=x", "REDIS_URL=y",
		"DATABASE_URL=z", "WORKER_ID=w", "API_KEYS=k", "ANTHROPIC_API_KEY=a", "ANTHROPIC_BASE_URL=b", "GITHUB_TOKEN=g", "OTHER=o"}
	got := AgentEnv(environ, []string{"ANTHROPIC_*", "GITHUB_TOKEN", "REDIS_*", "WORKER_ID"}, map[string]string{"HOME": "/ws/home", "TASK_ID": "t"})
	want := []string{"ANTHROPIC_API_KEY=a", "ANTHROPIC_BASE_URL=b", "GITHUB_TOKEN=g", "HOME=/ws/home", "LANG=C.UTF-8", "LC_ALL=C",
		"PATH=/usr/bin", "TASK_ID=t", "TZ=UTC"}
	if !slices.Equal(got, want) {
		t.Errorf("AgentEnv = %q\nwant %q", got, want)
	}
	for _, bad := range []string{"REDIS_PASSWORD", "REDIS_*", "RED*", "*", "DATABASE_URL", "WORKER_X", "API_KEYS", "A=B", "", "A B"} {
		if err := ValidateEnvNames([]string{bad}); err == nil {
			t.Errorf("ValidateEnvNames(%q): no error", bad)
		}
	}
	if err := ValidateEnvNames([]string{"GITHUB_TOKEN", "NPM_*", "ANTHROPIC_*"}); err != nil {
		t.Error(err)
	}
}

func TestLimitHit(t *testing.T) {
	tests := []struct {
		res  Result
		tail string
		want Limit
	}{
		{Result{ExitCode: 0, MaxTasks: 10, PeakTasks: 10}, "", ""},
		{Result{ExitCode: 1, MaxTasks: 10, PeakTasks: 10}, "", LimitPIDs},
		{Result{ExitCode: 1, MaxTasks: 10, PeakTasks: 2}, "sh: 1: Cannot fork", LimitPIDs},
		{Result{ExitCode: 1, MaxTasks: 0, PeakTasks: 99}, "Cannot fork", ""},
		{Result{ExitCode: 2, MemoryBytes: 100, PeakDataBytes: 95}, "", LimitMemory},
		{Result{ExitCode: -1, Signal: "aborted", MemoryBytes: 1 << 30}, "FATAL ERROR: Reached heap limit Allocation failed", LimitMemory},
		{Result{ExitCode: 1, MemoryBytes: 1 << 30}, "Traceback…\nMemoryError", LimitMemory},
		{Result{ExitCode: 1, MemoryBytes: 1 << 30, MaxTasks: 10}, "syntax error", ""},
	}
	for _, tt := range tests {
		if got := tt.res.LimitHit(tt.tail); got != tt.want {
			t.Errorf("%+v / %q: LimitHit = %q, want %q", tt.res, tt.tail, got, tt.want)
		}
	}
}

func TestStrictNamesWhatIsMissing(t *testing.T) {
	s, err := New(Options{Mode: ModeStrict, MemoryBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	all := s.required()
	if err := s.checkStrict(all, nil); err != nil {
		t.Errorf("all applied: %v", err)
	}
	err = s.checkStrict(slices.DeleteFunc(slices.Clone(all), func(p Protection) bool { return p == ProtectionNetNS }),
		[]Missing{{ProtectionNetNS, "no network namespaces here"}})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "netns (no network namespaces here)") {
		t.Errorf("err = %v", err)
	}
	auto, _ := New(Options{})
	if err := auto.checkStrict(nil, nil); err != nil {
		t.Errorf("auto mode: %v", err)
	}
}

// newTestSandbox returns a probed sandbox that may read the helper binary.
func newTestSandbox(t *testing.T, opts Options, noNamespaces bool) (*Sandbox, Report) {
	t.Helper()
	opts.ReadPaths = append(opts.ReadPaths, filepath.Dir(helperBin))
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.noNamespaces = noNamespaces
	rep, err := s.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, rep
}

// workspace returns a workspace for s's programs, with a tmp directory.
func workspace(t *testing.T, s *Sandbox) string {
	t.Helper()
	ws, err := os.MkdirTemp("", "sandbox-ws-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(ws) })
	if err := os.Mkdir(filepath.Join(ws, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	if uid, gid, ok := s.WorkspaceOwner(); ok {
		for _, p := range []string{ws, filepath.Join(ws, "tmp")} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ws
}

// run runs argv in s and returns its output and result.
func run(t *testing.T, s *Sandbox, ws string, argv ...string) (string, Result) {
	t.Helper()
	c := s.Command(Spec{Argv: argv, Dir: ws, Workspace: ws, Env: []string{"PATH=/usr/bin:/bin", "TMPDIR=" + ws + "/tmp"}})
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	res, err := c.Wait()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out.String())
	}
	return out.String(), res
}

func TestProbeReportsProtections(t *testing.T) {
	_, rep := newTestSandbox(t, Options{}, false)
	if len(rep.Missing) > 0 && os.Getenv("CI") != "true" {
		t.Skipf("this kernel lacks protections: %s", rep)
	}
	want := []Protection{ProtectionUserNS, ProtectionPIDNS, ProtectionMountNS, ProtectionIPCNS, ProtectionNetNS,
		ProtectionLandlockFS, ProtectionLandlockNet, ProtectionLandlockScope, ProtectionSeccomp, ProtectionNoNewPrivs}
	if !slices.Equal(rep.Applied, want) {
		t.Errorf("applied = %v, want %v (%s)", rep.Applied, want, rep)
	}
	_, rep = newTestSandbox(t, Options{Ports: []uint16{443}, MemoryBytes: 1 << 30, MaxTasks: 100}, false)
	if slices.Contains(rep.Applied, ProtectionNetNS) || !slices.Contains(rep.Applied, ProtectionMemoryLimit) || !slices.Contains(rep.Applied, ProtectionPIDsLimit) {
		t.Errorf("with ports and limits: %s", rep)
	}
	s, rep := newTestSandbox(t, Options{Mode: ModeStrict}, false)
	if len(rep.Missing) > 0 || s.Mode() != ModeStrict {
		t.Errorf("strict: %s", rep)
	}
	_, rep = newTestSandbox(t, Options{Mode: ModeOff}, false)
	if len(rep.Applied) > 0 {
		t.Errorf("off: %s", rep)
	}
}

// TestSeccompRefusesWhatLandlockCannotSee: MPTCP (which Landlock's TCP
// rules ignore: it would reach any port), SCTP, vsock and io_uring.
func TestSeccompRefusesWhatLandlockCannotSee(t *testing.T) {
	for _, mode := range []Mode{ModeAuto, ModeOff} {
		t.Run(string(mode), func(t *testing.T) {
			s, _ := newTestSandbox(t, Options{Mode: mode, Ports: []uint16{443}}, false)
			ws := workspace(t, s)
			out, _ := run(t, s, ws, helperBin, "helper", "sockets")
			for _, line := range []string{"tcp: ok", "tcp6: ok", "udp: ok", "unix: ok"} {
				if !strings.Contains(out, line) {
					t.Errorf("want %q in:\n%s", line, out)
				}
			}
			refused := []string{"mptcp: protocol not supported", "mptcp6: protocol not supported", "io_uring: function not implemented"}
			for _, line := range refused {
				if mode == ModeOff {
					if strings.Contains(out, line) {
						t.Errorf("without sandbox %q (the test cannot tell):\n%s", line, out)
					}
				} else if !strings.Contains(out, line) {
					t.Errorf("want %q in:\n%s", line, out)
				}
			}
			if mode == ModeAuto && (strings.Contains(out, "sctp: ok") || strings.Contains(out, "vsock: ok")) {
				t.Errorf("sctp or vsock allowed:\n%s", out)
			}
		})
	}
}

// processesWith returns the pids whose command line holds marker.
func processesWith(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopKillsEverything starts a program whose grandchild left the session
// and ignores SIGTERM, stops it, and checks nothing is left.
func stopKillsEverything(t *testing.T, s *Sandbox, ws string) {
	t.Helper()
	marker := "hang-" + uuid.NewString()
	t.Cleanup(func() {
		for _, p := range processesWith(marker) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	})
	script := `setsid ` + helperBin + ` helper hang ` + marker + ` & trap "" TERM; echo started; sleep 3600`
	c := s.Command(Spec{Argv: []string{"/bin/sh", "-c", script}, Dir: ws, Workspace: ws, Env: []string{"PATH=/usr/bin:/bin"}})
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(processesWith(marker)) < 2 { // the launcher's argv holds it too
		if time.Now().After(deadline) {
			t.Fatalf("the grandchild did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Stop()
	res, err := c.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if res.Signal == "" {
		t.Errorf("result = %+v, want killed by a signal", res)
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Errorf("processes %v outlived the stop", left)
	}
}

func TestStopKillsEscapedDescendants(t *testing.T) {
	s, _ := newTestSandbox(t, Options{KillGrace: 200 * time.Millisecond}, false)
	stopKillsEverything(t, s, workspace(t, s))
}

// TestWithoutNamespaces: where the kernel refuses namespaces, the launcher
// is a subreaper and Landlock, seccomp and the environment still apply.
func TestWithoutNamespaces(t *testing.T) {
	s, rep := newTestSandbox(t, Options{KillGrace: 200 * time.Millisecond, Ports: []uint16{443}}, true)
	want := []Protection{ProtectionLandlockFS, ProtectionLandlockNet, ProtectionLandlockScope, ProtectionSeccomp, ProtectionNoNewPrivs, ProtectionSubreaper}
	if !slices.Equal(rep.Applied, want) {
		t.Errorf("applied = %v, want %v", rep.Applied, want)
	}
	ws := workspace(t, s)
	outside, err := os.MkdirTemp("", "outside-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(outside)
	_ = os.Chmod(outside, 0o777)
	out, res := run(t, s, ws, "/bin/sh", "-c", "id -u; echo x > "+outside+"/f; echo y > $TMPDIR/f && echo wrote-tmp")
	if _, err := os.Stat(outside + "/f"); err == nil {
		t.Error("wrote outside the workspace")
	}
	if !strings.Contains(out, "wrote-tmp") || (os.Geteuid() == 0 && !strings.HasPrefix(out, "65534\n")) {
		t.Errorf("output:\n%s", out)
	}
	if !slices.Equal(res.Protections, want) {
		t.Errorf("run protections = %v", res.Protections)
	}
	stopKillsEverything(t, s, ws)
}

// TestUnprivilegedWorker runs the sandbox from a worker that is not root:
// this test binary as nobody, running TestUnprivilegedInner.
func TestUnprivilegedWorker(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("already unprivileged: TestUnprivilegedInner covers it")
	}
	cmd := exec.Command(helperBin, "-test.run=^TestUnprivilegedInner$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "SANDBOX_UNPRIVILEGED_INNER=1")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestUnprivilegedInner") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestUnprivilegedInner(t *testing.T) {
	if os.Getenv("SANDBOX_UNPRIVILEGED_INNER") == "" && os.Geteuid() == 0 {
		t.Skip("run by TestUnprivilegedWorker")
	}
	if os.Geteuid() == 0 {
		t.Fatal("running as root")
	}
	// helperBin is set by TestMain of this very binary: it is a copy.
	s, rep := newTestSandbox(t, Options{KillGrace: 200 * time.Millisecond, MaxTasks: 64, MemoryBytes: 1 << 30}, false)
	for _, p := range []Protection{ProtectionUserNS, ProtectionPIDNS, ProtectionMountNS, ProtectionNetNS, ProtectionLandlockFS, ProtectionSeccomp, ProtectionPIDsLimit} {
		if !slices.Contains(rep.Applied, p) {
			t.Errorf("unprivileged: %s missing (%s)", p, rep)
		}
	}
	ws := workspace(t, s)
	out, _ := run(t, s, ws, "/bin/sh", "-c", "id -u; grep CapEff /proc/self/status; ls /proc | grep -c '^[0-9]'")
	if !strings.HasPrefix(out, strconv.Itoa(os.Geteuid())+"\n") || !strings.Contains(out, "CapEff:\t0000000000000000") {
		t.Errorf("output:\n%s", out)
	}
	stopKillsEverything(t, s, ws)
}

// TestProgramCannotTamperWithLauncher: the launcher runs as the program's
// user and only its program-starting thread is restricted, so the program
// must not be able to reach its memory, and no launcher thread may keep a
// capability.
func TestProgramCannotTamperWithLauncher(t *testing.T) {
	s, rep := newTestSandbox(t, Options{}, false)
	if !slices.Contains(rep.Applied, ProtectionPIDNS) {
		t.Skipf("no PID namespace: %s", rep)
	}
	ws := workspace(t, s)
	out, _ := run(t, s, ws, "/bin/sh", "-c", `head -c 1 /proc/1/mem >/dev/null 2>&1 && echo mem-opened; grep -h CapEff /proc/1/task/*/status`)
	if strings.Contains(out, "mem-opened") {
		t.Error("the program opened the launcher's memory")
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for _, l := range lines {
		if l != "CapEff:\t0000000000000000" {
			t.Errorf("a launcher thread has capabilities: %q", l)
		}
	}
}
