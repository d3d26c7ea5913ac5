package executor_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/executor"
	"github.com/agentorch/orchestrator/internal/testenv"
	"github.com/agentorch/orchestrator/internal/testenv/fakeanthropic"
)

// TestClaudeWithRealCLI runs the Claude executor with the real Claude Code
// CLI (`make claude-deps`) against the scripted fake API: the agent reads
// the task's code, fixes the bug and answers, and the result carries the
// fix in its diff with the answer, cost and usage the CLI reported.
func TestClaudeWithRealCLI(t *testing.T) {
	const answer = "Fixed: add now returns a + b."
	srv := fakeanthropic.Start(t, fakeanthropic.Options{
		// The workspace is the executor's own temporary directory, so the
		// script names the file relative to it.
		Script: fakeanthropic.FixFile("main.py", "return a - b", "return a + b", answer),
	})
	tmp := t.TempDir()
	c, err := executor.NewClaude(executor.ClaudeOptions{
		Bin:     testenv.ClaudeBin(t),
		TempDir: tmp,
		Process: executor.ProcessOptions{Env: testenv.ClaudeEnv(t, srv.URL)},
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := c.Run(context.Background(), executor.Input{
		TaskID:  "task-1",
		Code:    "def add(a, b):\n    return a - b\n",
		Prompt:  "Fix the bug in add.",
		Timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("executor run took %s", time.Since(start).Round(time.Millisecond))
	var res executor.ClaudeResult
	if err := json.Unmarshal(out.Result, &res); err != nil {
		t.Fatalf("result %s: %v", out.Result, err)
	}
	wantDiff := "diff --git a/main.py b/main.py\n--- a/main.py\n+++ b/main.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
	if res.Diff != wantDiff {
		t.Errorf("diff =\n%s\nwant\n%s", res.Diff, wantDiff)
	}
	var usage struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	}
	if err := json.Unmarshal(res.Usage, &usage); err != nil || usage.InputTokens != 300 || usage.OutputTokens != 60 {
		t.Errorf("usage = %s (%v)", res.Usage, err)
	}
	if res.Answer != answer || res.CostUSD == nil || *res.CostUSD <= 0 || res.NumTurns == nil || *res.NumTurns != 3 ||
		res.SessionID == "" || res.DurationMs == nil || res.Truncated {
		t.Errorf("result = %s", out.Result)
	}

	reqs := srv.ScriptRequests()
	if len(reqs) != 3 {
		t.Fatalf("%d scripted requests, want 3", len(reqs))
	}
	if r := reqs[0]; !strings.Contains(r.SystemText(), "The code for this task is in the file ./main.py") ||
		!strings.Contains(r.UserText(), "Fix the bug in add.") {
		t.Errorf("first request: system prompt or prompt missing:\nuser text: %s", r.UserText())
	}
	if res := reqs[1].ToolResults(); len(res) != 1 || !strings.Contains(res[0].Result, "return a - b") {
		t.Errorf("Read result sent back = %+v", res)
	}
}
