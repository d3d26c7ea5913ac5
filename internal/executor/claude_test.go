package executor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newFakeClaude(t *testing.T) (*Claude, string) {
	t.Helper()
	bin, err := filepath.Abs("testdata/fake-claude")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	c, err := NewClaude(ClaudeOptions{Bin: bin, TempDir: tmp, Process: ProcessOptions{KillGrace: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return c, tmp
}

// assertEmptyDir fails when a workspace was left behind in dir.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("workspace left behind: %v", entries)
	}
}

func TestClaudeEditsWorkspaceAndReportsDiff(t *testing.T) {
	c, tmp := newFakeClaude(t)
	code := "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Println(\"hello world\")\n}\n"
	out, err := c.Run(context.Background(), Input{TaskID: "t1", Code: code, Prompt: "greet the agent", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got ClaudeResult
	if err := json.Unmarshal(out.Result, &got); err != nil {
		t.Fatal(err)
	}
	if got.Answer != "Edited main.go" {
		t.Errorf("answer = %q", got.Answer)
	}
	wantDiff := "diff --git a/NOTES.md b/NOTES.md\nnew file mode 100644\n--- /dev/null\n+++ b/NOTES.md\n@@ -0,0 +1 @@\n+written by the agent\n" +
		"diff --git a/main.go b/main.go\n--- a/main.go\n+++ b/main.go\n@@ -3,5 +3,5 @@\n import \"fmt\"\n \n func main() {\n-\tfmt.Println(\"hello world\")\n+\tfmt.Println(\"hello agent\")\n }\n"
	if got.Diff != wantDiff {
		t.Errorf("diff =\n%s\nwant\n%s", got.Diff, wantDiff)
	}
	if got.CostUSD == nil || *got.CostUSD != 0.0123 || got.DurationMs == nil || *got.DurationMs != 1234 ||
		got.NumTurns == nil || *got.NumTurns != 2 || got.SessionID != "sess-1" || string(got.Usage) != `{"input_tokens":10,"output_tokens":20}` {
		t.Errorf("metadata = %s", out.Result)
	}
	assertEmptyDir(t, tmp)
}

func TestClaudeFailures(t *testing.T) {
	tests := []struct {
		name, prompt, want string
		timeout            bool
	}{
		{name: "non-zero exit", prompt: "crash please", want: "exited with status 3: fatal: simulated crash"},
		{name: "is_error", prompt: "is-error", want: "CLI reported an error (error_max_turns): too many turns"},
		{name: "timeout", prompt: "hang", want: "timed out after 300ms", timeout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, tmp := newFakeClaude(t)
			_, err := c.Run(context.Background(), Input{TaskID: "t1", Code: "x", Prompt: tt.prompt, Timeout: 300 * time.Millisecond})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			var te *TimeoutError
			if errors.As(err, &te) != tt.timeout {
				t.Errorf("timeout error = %v, want %v", !tt.timeout, tt.timeout)
			}
			assertEmptyDir(t, tmp)
		})
	}
}

func TestClaudeTextOutputIsKept(t *testing.T) {
	c, _ := newFakeClaude(t)
	out, err := c.Run(context.Background(), Input{TaskID: "t1", Code: "x", Prompt: "text", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var got ClaudeResult
	if err := json.Unmarshal(out.Result, &got); err != nil {
		t.Fatal(err)
	}
	if got.Answer != "plain text answer" || got.Diff != "" {
		t.Errorf("result = %s", out.Result)
	}
}

func TestLookClaude(t *testing.T) {
	_, err := LookClaude("/nonexistent/claude")
	if err == nil || !strings.Contains(err.Error(), "CLAUDE_BIN") {
		t.Errorf("err = %v, want it to name CLAUDE_BIN", err)
	}
	if _, err := LookClaude("testdata/fake-claude"); err != nil {
		t.Errorf("LookClaude(fake) = %v", err)
	}
}

func TestCodeFileName(t *testing.T) {
	tests := map[string]string{
		"package main\nfunc main() {}\n":     "main.go",
		"def f(x):\n    return x\n":          "main.py",
		"console.log(1)":                     "main.js",
		"#!/bin/bash\necho hi\n":             "main.sh",
		"#include <stdio.h>\nint main(){}\n": "main.c",
		"fn main() {\n}\n":                   "main.rs",
		"interface A { x: number }\n":        "main.ts",
		"just some words":                    "main.txt",
		"public class Main {\n}\n":           "Main.java",
		"import os\nprint(os.getcwd())\n":    "main.py",
	}
	for code, want := range tests {
		if got := codeFileName(code); got != want {
			t.Errorf("codeFileName(%q) = %q, want %q", code, got, want)
		}
	}
}

func TestParseCLIOutput(t *testing.T) {
	tests := map[string]string{
		"object":     `{"type":"result","subtype":"success","is_error":false,"result":"A"}`,
		"array":      `[{"type":"system","subtype":"init"},{"type":"assistant","message":{}},{"type":"result","subtype":"success","result":"A"}]`,
		"json lines": "{\"type\":\"system\"}\n{\"type\":\"assistant\"}\n{\"type\":\"result\",\"result\":\"A\"}\n",
	}
	for name, out := range tests {
		got, ok := parseCLIOutput([]byte(out))
		if !ok || got.Result == nil || *got.Result != "A" {
			t.Errorf("%s: got %+v, %v", name, got, ok)
		}
	}
	if _, ok := parseCLIOutput([]byte("plain text")); ok {
		t.Error("plain text parsed as a result")
	}
}
