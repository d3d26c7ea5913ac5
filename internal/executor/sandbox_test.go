package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/internal/sandbox"
	"github.com/agentorch/orchestrator/internal/testenv"
)

// agentBin is a copy of this test binary, in a directory every user can
// read, that acts as an adversarial agent (see agentHelper).
var agentBin string

const agentHelperArg = "agent-helper"

func TestMain(m *testing.M) {
	if sandbox.IsLauncher(os.Args) {
		sandbox.RunLauncher()
	}
	if len(os.Args) > 2 && os.Args[1] == agentHelperArg {
		os.Exit(agentHelper(os.Args[2], os.Args[3:]))
	}
	var (
		remove func()
		err    error
	)
	agentBin, remove, err = testenv.CopySelf("agent")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	remove()
	os.Exit(code)
}

// agentHelper runs one adversarial action and exits: 0 when the action
// succeeded, 1 when it was refused (the reason on stderr).
func agentHelper(action string, args []string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, action+":", err); return 1 }
	switch action {
	case "connect": // network address
		c, err := net.DialTimeout(args[0], args[1], 2*time.Second)
		if err != nil {
			return fail(err)
		}
		c.Close()
		fmt.Println("connected")
	case "mptcp": // host:port, over MPTCP, which Landlock's TCP rules do not see
		host, port, _ := net.SplitHostPort(args[0])
		p, _ := strconv.Atoi(port)
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 262)
		if err != nil {
			return fail(err)
		}
		ip := net.ParseIP(host).To4()
		if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: p, Addr: [4]byte(ip)}); err != nil {
			return fail(err)
		}
		fmt.Println("connected")
	case "write": // path
		if err := os.WriteFile(args[0], []byte("written by the agent"), 0o644); err != nil {
			return fail(err)
		}
		fmt.Println("written")
	case "read": // path
		b, err := os.ReadFile(args[0])
		if err != nil {
			return fail(err)
		}
		os.Stdout.Write(b)
	case "hang": // marker: ignore SIGTERM and sleep
		signal.Ignore(syscall.SIGTERM)
		time.Sleep(time.Hour)
	case "spawn": // n: start up to n sleeping children, fail when one cannot start
		n, _ := strconv.Atoi(args[0])
		for i := range n {
			c := exec.Command("sleep", "60")
			if err := c.Start(); err != nil {
				return fail(fmt.Errorf("fork failed after %d children: %w", i, err))
			}
		}
		fmt.Println("spawned", n)
	case "alloc": // MiB: allocate and touch
		n, _ := strconv.Atoi(args[0])
		var keep [][]byte
		for range n {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep))
	default:
		return fail(errors.New("unknown action"))
	}
	return 0
}

// modes are run by the adversarial tests: each attack must be refused in
// auto mode and succeed with the sandbox off, so that every test can fail.
var modes = []sandbox.Mode{sandbox.ModeAuto, sandbox.ModeOff}

// newSandbox returns a sandbox for the tests, skipping when the kernel
// offers no namespaces outside CI.
func newSandbox(t *testing.T, opts sandbox.Options) *sandbox.Sandbox {
	t.Helper()
	opts.ReadPaths = append(opts.ReadPaths, filepath.Dir(agentBin))
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sb.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if opts.Mode == sandbox.ModeAuto && len(rep.Missing) > 0 {
		// The kernel is the service these tests need.
		if os.Getenv("CI") != "true" {
			t.Skipf("this kernel lacks sandbox protections: %s", rep)
		}
		t.Fatalf("this kernel lacks sandbox protections: %s", rep)
	}
	return sb
}

// runAgent runs the shell script in the command executor with sb.
func runAgent(t *testing.T, sb *sandbox.Sandbox, script string, env ...string) (Output, error) {
	t.Helper()
	c := newCommand(t, ProcessOptions{Sandbox: sb, Env: env}, "sh", "-c", "cat >/dev/null; "+script)
	return c.Run(context.Background(), Input{TaskID: "t-" + uuid.NewString()[:8], Timeout: time.Minute})
}

func resultText(t *testing.T, out Output) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(out.Result, &s); err != nil {
		return string(out.Result)
	}
	return s
}

func TestSandboxEnvironmentHasNoSecrets(t *testing.T) {
	t.Setenv("REDIS_PASSWORD", "redis-secret")
	t.Setenv("DATABASE_URL", "postgres://u:db-secret@h/db")
	t.Setenv("API_KEYS", "api-secret")
	t.Setenv("WORKER_SECRET_THING", "worker-secret")
	t.Setenv("ANTHROPIC_API_KEY", "anthropic-secret")
	t.Setenv("PASSED_ON", "passed")
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			sb := newSandbox(t, sandbox.Options{Mode: mode})
			c := newCommand(t, ProcessOptions{Sandbox: sb, AgentEnv: []string{"PASSED_ON"}}, "sh", "-c", "cat >/dev/null; env")
			out, err := c.Run(context.Background(), Input{TaskID: "t-env", Timeout: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			env := resultText(t, out)
			var leaked []string
			for _, s := range []string{"redis-secret", "db-secret", "api-secret", "worker-secret", "anthropic-secret"} {
				if strings.Contains(env, s) {
					leaked = append(leaked, s)
				}
			}
			if mode == sandbox.ModeOff {
				if len(leaked) == 0 {
					t.Errorf("without sandbox the secrets should leak (the test cannot tell):\n%s", env)
				}
				return
			}
			if len(leaked) > 0 {
				t.Errorf("the agent's environment holds %v:\n%s", leaked, env)
			}
			for _, want := range []string{"PASSED_ON=passed", "TASK_ID=t-env", "HOME=/", "TMPDIR=/"} {
				if !strings.Contains(env, want) {
					t.Errorf("environment lacks %q:\n%s", want, env)
				}
			}
			if !strings.Contains(env, "/agent-task-") {
				t.Errorf("HOME and TMPDIR are not in the workspace:\n%s", env)
			}
		})
	}
}

// listen starts a TCP listener on loopback that accepts and closes.
func listen(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln, ln.Addr().(*net.TCPAddr).Port
}

func TestSandboxNetworkOnlyAllowedPorts(t *testing.T) {
	_, allowed := listen(t)
	_, refused := listen(t)
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			sb := newSandbox(t, sandbox.Options{Mode: mode, Ports: []uint16{uint16(allowed)}})
			addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
			// The allowed port works in every mode.
			if out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+" connect tcp "+addr(allowed)); err != nil || resultText(t, out) != "connected" {
				t.Fatalf("connect to the allowed port: %s, %v", out.Result, err)
			}
			for _, attack := range []string{"connect tcp " + addr(refused), "connect tcp [::ffff:127.0.0.1]:" + strconv.Itoa(refused), "mptcp " + addr(refused)} {
				out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+" "+attack)
				if mode == sandbox.ModeOff {
					if err != nil {
						t.Errorf("%s without sandbox failed: %v (the test cannot tell)", attack, err)
					}
					continue
				}
				if err == nil {
					t.Errorf("%s: the agent connected to a refused port: %s", attack, out.Result)
				}
			}
		})
	}
}

func TestSandboxNoNetworkWithoutPorts(t *testing.T) {
	_, port := listen(t)
	sb := newSandbox(t, sandbox.Options{})
	out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+" connect tcp 127.0.0.1:"+strconv.Itoa(port))
	if err == nil {
		t.Fatalf("the agent connected with no port allowed: %s", out.Result)
	}
}

// worldDir returns a directory outside any workspace that every user may
// write in.
func worldDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "outside-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSandboxFilesystem(t *testing.T) {
	outside := worldDir(t)
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, []byte("outside-secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			sb := newSandbox(t, sandbox.Options{Mode: mode})
			// Writing inside the workspace works in every mode.
			if out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+` write "$HOME/f" && `+agentBin+" "+agentHelperArg+` write "$TMPDIR/f" && `+agentBin+" "+agentHelperArg+" write ./f"); err != nil {
				t.Fatalf("write in the workspace: %s %v", out.Result, err)
			}
			target := filepath.Join(outside, "written-"+string(mode))
			_, _ = runAgent(t, sb, agentBin+" "+agentHelperArg+" write "+target)
			_, statErr := os.Stat(target)
			reads := map[string]string{secret: "outside-secret", filepath.Join(cwd, "sandbox_test.go"): "package executor"}
			if mode == sandbox.ModeOff {
				if statErr != nil {
					t.Errorf("write outside without sandbox failed (the test cannot tell): %v", statErr)
				}
				for path, want := range reads {
					if out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+" read "+path); err != nil || !strings.Contains(resultText(t, out), want) {
						t.Errorf("read %s without sandbox: %v (the test cannot tell)", path, err)
					}
				}
				return
			}
			if statErr == nil {
				t.Errorf("the agent wrote %s outside its workspace", target)
			}
			for path, want := range reads {
				out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+" read "+path)
				if err == nil || strings.Contains(string(out.Result), want) {
					t.Errorf("the agent read %s: %s", path, out.Result)
				}
			}
		})
	}
}

func TestSandboxUnixSockets(t *testing.T) {
	dir := worldDir(t)
	path := filepath.Join(dir, "service.sock")
	abstract := "@agentorch-test-" + uuid.NewString()
	for _, addr := range []string{path, abstract} {
		ln, err := net.Listen("unix", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		_ = os.Chmod(path, 0o777)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			// Ports are allowed, so no network namespace hides the
			// abstract socket: Landlock's scope must refuse it.
			sb := newSandbox(t, sandbox.Options{Mode: mode, Ports: []uint16{443}})
			for _, addr := range []string{path, abstract} {
				out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+" connect unix "+addr)
				if mode == sandbox.ModeOff {
					if err != nil {
						t.Errorf("connect to %s without sandbox: %v (the test cannot tell)", addr, err)
					}
					continue
				}
				if err == nil {
					t.Errorf("the agent connected to the UNIX socket %s: %s", addr, out.Result)
				}
			}
		})
	}
}

// processesWith returns the pids of the processes whose command line
// holds marker.
func processesWith(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(b), marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func killAll(pids []int) {
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

func TestSandboxTimeoutKillsEscapedDescendants(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			marker := "marker-" + uuid.NewString()
			t.Cleanup(func() { killAll(processesWith(marker)) })
			sb := newSandbox(t, sandbox.Options{Mode: mode, KillGrace: 300 * time.Millisecond})
			hang := agentBin + " " + agentHelperArg + " hang " + marker
			// Grandchildren in their own sessions, ignoring SIGTERM; the
			// shell waits until they run, then hangs too.
			script := fmt.Sprintf(`setsid %s & setsid sh -c 'trap "" TERM; %s & wait' & while [ "$(pgrep -fc %s)" -lt 2 ]; do sleep 0.05; done; trap '' TERM; sleep 60`, hang, hang, marker)
			c := newCommand(t, ProcessOptions{Sandbox: sb, KillGrace: 300 * time.Millisecond}, "sh", "-c", "cat >/dev/null; "+script)
			start := time.Now()
			_, err := c.Run(context.Background(), Input{TaskID: "t", Timeout: 2 * time.Second})
			var te *TimeoutError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a timeout", err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("the run took %s", d)
			}
			if left := processesWith(marker); len(left) > 0 {
				if mode == sandbox.ModeOff {
					return // as expected without sandbox
				}
				t.Fatalf("processes %v outlived the run", left)
			}
			if mode == sandbox.ModeOff {
				t.Error("without sandbox the setsid grandchildren should have survived (the test cannot tell)")
			}
		})
	}
}

func TestSandboxPIDsLimit(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			sb := newSandbox(t, sandbox.Options{Mode: mode, MaxTasks: 40})
			out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+" spawn 120")
			if mode == sandbox.ModeOff {
				if err != nil {
					t.Errorf("spawn without sandbox failed: %v (the test cannot tell)", err)
				}
				return
			}
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Limit != sandbox.LimitPIDs {
				t.Fatalf("err = %v (%s), want an exit that names the pids limit", err, out.Result)
			}
			if !strings.Contains(err.Error(), "process limit") {
				t.Errorf("message %q does not name the limit", err)
			}
		})
	}
}

func TestSandboxMemoryLimit(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			sb := newSandbox(t, sandbox.Options{Mode: mode, MemoryBytes: 128 << 20})
			out, err := runAgent(t, sb, agentBin+" "+agentHelperArg+" alloc 400")
			if mode == sandbox.ModeOff {
				if err != nil {
					t.Errorf("alloc without sandbox failed: %v (the test cannot tell)", err)
				}
				return
			}
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Limit != sandbox.LimitMemory {
				t.Fatalf("err = %v (%s), want an exit that names the memory limit", err, out.Result)
			}
			if !strings.Contains(err.Error(), "memory limit") || !strings.Contains(err.Error(), "128 MiB") {
				t.Errorf("message %q does not name the limit", err)
			}
		})
	}
}

func TestSandboxAgentIsUnprivileged(t *testing.T) {
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			sb := newSandbox(t, sandbox.Options{Mode: mode})
			out, err := runAgent(t, sb, `id -u; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status`)
			if err != nil {
				t.Fatal(err)
			}
			text := resultText(t, out)
			privileged := strings.HasPrefix(text, "0\n") || !strings.Contains(text, "CapEff:\t0000000000000000")
			if mode == sandbox.ModeOff {
				if os.Geteuid() == 0 && !privileged {
					t.Errorf("without sandbox a root worker's agent should be root (the test cannot tell): %s", text)
				}
				return
			}
			if privileged || !strings.Contains(text, "NoNewPrivs:\t1") {
				t.Errorf("agent privileges:\n%s", text)
			}
			if len(out.Sandbox) == 0 || out.Sandbox[0] != sandbox.ProtectionEnv {
				t.Errorf("output protections = %v", out.Sandbox)
			}
		})
	}
}

func TestClaudeInSandbox(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "test-key")
	t.Setenv("REDIS_PASSWORD", "redis-secret")
	sb := newSandbox(t, sandbox.Options{Ports: []uint16{443}})
	bin, err := filepath.Abs("testdata/fake-claude")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClaude(ClaudeOptions{Bin: bin, Process: ProcessOptions{Sandbox: sb}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Run(context.Background(), Input{TaskID: "t1", Code: "hello world\n", Prompt: "fix it", Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var res ClaudeResult
	if err := json.Unmarshal(out.Result, &res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Diff, "+hello agent") || !strings.Contains(res.Diff, "+++ b/NOTES.md") {
		t.Errorf("diff = %q", res.Diff)
	}
	want := []sandbox.Protection{sandbox.ProtectionEnv, sandbox.ProtectionUserNS, sandbox.ProtectionMountNS, sandbox.ProtectionLandlockFS}
	for _, p := range want {
		found := false
		for _, q := range out.Sandbox {
			found = found || p == q
		}
		if !found {
			t.Errorf("protections %v lack %s", out.Sandbox, p)
		}
	}
}

// TestSandboxForkBombIsBounded: a real fork bomb stays under the pids
// limit, and the timeout ends all of it. Run only with the limit in force:
// without it, it would take the machine down.
func TestSandboxForkBombIsBounded(t *testing.T) {
	sb := newSandbox(t, sandbox.Options{MaxTasks: 64, KillGrace: 300 * time.Millisecond})
	rep, _ := sb.Probe(context.Background())
	if !slices.Contains(rep.Applied, sandbox.ProtectionPIDsLimit) || !slices.Contains(rep.Applied, sandbox.ProtectionPIDNS) {
		t.Fatalf("no pids limit or PID namespace here (%s): refusing to run a fork bomb", rep)
	}
	marker := "bomb" + strings.ReplaceAll(uuid.NewString(), "-", "")
	t.Cleanup(func() { killAll(processesWith(marker)) })
	script := marker + `() { ` + marker + ` | ` + marker + ` & }; ` + marker + `; sleep 60`
	c := newCommand(t, ProcessOptions{Sandbox: sb}, "sh", "-c", "cat >/dev/null; "+script)
	_, err := c.Run(context.Background(), Input{TaskID: "t-bomb", Timeout: 3 * time.Second})
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want the timeout", err)
	}
	if left := processesWith(marker); len(left) > 0 {
		t.Fatalf("%d bomb processes outlived the run", len(left))
	}
}
