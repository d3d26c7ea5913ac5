package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/agentorch/orchestrator/bullmq"
	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/sandbox"
	"github.com/agentorch/orchestrator/internal/taskqueue"
	"github.com/agentorch/orchestrator/internal/testenv"
	"github.com/agentorch/orchestrator/internal/testenv/fakeanthropic"
)

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

// TestSIGKILLedWorkerLeavesNoAgent: an agent that started a grandchild in
// its own session, ignoring SIGTERM, leaves nothing running when its worker
// is SIGKILLed mid-task. Without the sandbox the grandchild survives (the
// test can fail).
func TestSIGKILLedWorkerLeavesNoAgent(t *testing.T) {
	for _, mode := range []sandbox.Mode{sandbox.ModeAuto, sandbox.ModeOff} {
		t.Run(string(mode), func(t *testing.T) {
			client := testenv.RedisClient(t)
			queue := testenv.UniqueName(t, "tasks")
			testenv.CleanRedisKeys(t, "bull:"+queue+":*", "bull:"+queue+"-results:*")
			tasks := newQueue(t, client, queue)
			marker := "agent-marker-" + uuid.NewString()
			t.Cleanup(func() {
				for _, p := range processesWith(marker) {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			})
			script := fmt.Sprintf(`cat >/dev/null; setsid sh -c "trap \"\" TERM; sleep 3600; : %s" & sleep 3600`, marker)
			w := startWorker(t, "QUEUE_NAME="+queue, "WORKER_SANDBOX="+string(mode), "WORKER_COMMAND=sh -c '"+script+"'")
			addTask(t, tasks)
			grandchild := func() bool {
				for _, p := range processesWith(marker) {
					b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
					if strings.HasPrefix(string(b), "sh\x00-c\x00trap") {
						return true
					}
				}
				return false
			}
			testenv.WaitFor(t, 15*time.Second, "the agent's grandchild", grandchild)
			if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = w.wait(t, 5*time.Second) // killed: its exit status says nothing
			if mode == sandbox.ModeOff {
				time.Sleep(300 * time.Millisecond) // give the kernel time to kill what it would
				if !grandchild() {
					t.Error("without sandbox the setsid grandchild should survive (the test cannot tell)")
				}
				return
			}
			testenv.WaitFor(t, 10*time.Second, "no agent process left", func() bool { return len(processesWith(marker)) == 0 })
		})
	}
}

// TestResultAndHealthNameTheProtections: a completed result lists the
// protections its agent ran under, and /health the sandbox's report.
func TestResultAndHealthNameTheProtections(t *testing.T) {
	client := testenv.RedisClient(t)
	queue := testenv.UniqueName(t, "tasks")
	testenv.CleanRedisKeys(t, "bull:"+queue+":*", "bull:"+queue+"-results:*")
	tasks, results := newQueue(t, client, queue), newQueue(t, client, queue+"-results")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	startWorker(t, "QUEUE_NAME="+queue, "WORKER_COMMAND=sh -c 'cat >/dev/null; echo {}'", "WORKER_HTTP_ADDR="+addr,
		"WORKER_SANDBOX=strict", "WORKER_AGENT_MEMORY=1GiB", "WORKER_AGENT_PIDS=64")
	id := addTask(t, tasks)
	res := result(t, results, id)
	if res.Status != taskqueue.ResultCompleted {
		t.Fatalf("result = %+v", res)
	}
	for _, p := range []sandbox.Protection{sandbox.ProtectionEnv, sandbox.ProtectionUserNS, sandbox.ProtectionPIDNS,
		sandbox.ProtectionMountNS, sandbox.ProtectionLandlockFS, sandbox.ProtectionLandlockNet, sandbox.ProtectionSeccomp,
		sandbox.ProtectionMemoryLimit, sandbox.ProtectionPIDsLimit} {
		if !slices.Contains(res.Sandbox, string(p)) {
			t.Errorf("result sandbox %v lacks %s", res.Sandbox, p)
		}
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"sandbox":{"mode":"strict","applied":["userns"`) {
		t.Errorf("/health = %s", body)
	}
}

// TestClaudeCLIFixesBugSandboxed: a task with buggy code, run by the real
// Claude Code CLI (`make claude-deps`) against the scripted fake API in a
// strict sandbox, comes back completed with the fix in its diff and every
// protection listed.
func TestClaudeCLIFixesBugSandboxed(t *testing.T) {
	bin := testenv.ClaudeBin(t)
	const answer = "Fixed: add now returns a + b."
	srv := fakeanthropic.Start(t, fakeanthropic.Options{
		Script: fakeanthropic.FixFile("main.py", "return a - b", "return a + b", answer),
	})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	client := testenv.RedisClient(t)
	queue := testenv.UniqueName(t, "tasks")
	testenv.CleanRedisKeys(t, "bull:"+queue+":*", "bull:"+queue+"-results:*")
	tasks, results := newQueue(t, client, queue), newQueue(t, client, queue+"-results")
	env := append(testenv.ClaudeEnv(t, srv.URL), "QUEUE_NAME="+queue, "WORKER_EXECUTOR=claude", "CLAUDE_BIN="+bin,
		"WORKER_SANDBOX=strict", "WORKER_AGENT_PORTS="+u.Port(), "WORKER_AGENT_ENV=DISABLE_*",
		"REDIS_PASSWORD=must-not-leak")
	startWorker(t, env...)

	id := uuid.NewString()
	data := taskqueue.Job{TaskID: id, Code: "def add(a, b):\n    return a - b\n", Prompt: "Fix the bug in add.", Timeout: 120_000}
	if _, err := tasks.Add(context.Background(), taskqueue.JobName, data, &bullmq.JobOptions{JobID: id}); err != nil {
		t.Fatal(err)
	}
	res := resultWithin(t, results, id, 3*time.Minute)
	if res.Status != taskqueue.ResultCompleted {
		msg := ""
		if res.ErrorMessage != nil {
			msg = *res.ErrorMessage
		}
		t.Fatalf("status %s: %s", res.Status, msg)
	}
	var cr executor.ClaudeResult
	if err := json.Unmarshal(res.Result, &cr); err != nil {
		t.Fatalf("result %s: %v", res.Result, err)
	}
	if !strings.Contains(cr.Diff, "-    return a - b\n+    return a + b\n") || cr.Answer != answer {
		t.Errorf("result = %s", res.Result)
	}
	for _, p := range []sandbox.Protection{sandbox.ProtectionEnv, sandbox.ProtectionUserNS, sandbox.ProtectionPIDNS, sandbox.ProtectionMountNS,
		sandbox.ProtectionLandlockFS, sandbox.ProtectionLandlockNet, sandbox.ProtectionLandlockScope, sandbox.ProtectionSeccomp} {
		if !slices.Contains(res.Sandbox, string(p)) {
			t.Errorf("result sandbox %v lacks %s", res.Sandbox, p)
		}
	}
	if n := len(srv.ScriptRequests()); n != 3 {
		t.Errorf("%d scripted requests, want 3", n)
	}
}

// resultWithin waits up to within for the first result of taskID.
func resultWithin(t *testing.T, results *bullmq.Queue, taskID string, within time.Duration) taskqueue.Result {
	t.Helper()
	var res taskqueue.Result
	testenv.WaitFor(t, within, "result of "+taskID, func() bool { return getJob(t, results, taskqueue.ResultJobID(taskID, 0)) != nil })
	if err := json.Unmarshal(getJob(t, results, taskqueue.ResultJobID(taskID, 0)).Data, &res); err != nil {
		t.Fatal(err)
	}
	return res
}
