package fakeanthropic_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentorch/orchestrator/internal/testenv"
	"github.com/agentorch/orchestrator/internal/testenv/fakeanthropic"
)

// The tests below drive the real Claude Code CLI (installed by
// `make claude-deps`) against the fake, offline.

const (
	buggyCode = "def add(a, b):\n    return a - b\n"
	fixedCode = "def add(a, b):\n    return a + b\n"
	answer    = "Fixed: add now returns a + b."
)

// cliLine is the part of a stream-json line (or of the json result) the
// tests look at; doc.go describes the shapes.
type cliLine struct {
	Type            string   `json:"type"`
	Subtype         string   `json:"subtype"`
	SessionID       string   `json:"session_id"`
	Cwd             string   `json:"cwd"`
	Model           string   `json:"model"`
	PermissionMode  string   `json:"permissionMode"`
	Tools           []string `json:"tools"`
	ParentToolUseID *string  `json:"parent_tool_use_id"`
	Message         struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Role    string `json:"role"`
		Content []struct {
			Type      string          `json:"type"`
			Text      string          `json:"text"`
			ID        string          `json:"id"`
			Name      string          `json:"name"`
			Input     json.RawMessage `json:"input"`
			ToolUseID string          `json:"tool_use_id"`
			Content   json.RawMessage `json:"content"`
			IsError   bool            `json:"is_error"`
		} `json:"content"`
	} `json:"message"`
	ToolUseResult json.RawMessage `json:"tool_use_result"`
	IsError       bool            `json:"is_error"`
	Result        string          `json:"result"`
	NumTurns      int             `json:"num_turns"`
	TotalCostUSD  float64         `json:"total_cost_usd"`
	DurationMs    int64           `json:"duration_ms"`
	Usage         struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

// summary is a line in a few words: "assistant text", "assistant
// tool_use Read", "user tool_result toolu_fake_0_1", "result success".
func (l cliLine) summary() string {
	s := l.Type
	if l.Subtype != "" {
		s += " " + l.Subtype
	}
	for _, c := range l.Message.Content {
		s += " " + c.Type
		switch c.Type {
		case "tool_use":
			s += " " + c.Name
		case "tool_result":
			s += " " + c.ToolUseID
		}
	}
	return s
}

// workspace returns a temporary directory holding calc.py with a bug.
func workspace(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, "calc.py")
	if err := os.WriteFile(file, []byte(buggyCode), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// claudeCmd returns the CLI command running headless in dir against srv.
func claudeCmd(ctx context.Context, t *testing.T, srv *fakeanthropic.Server, dir, prompt string, args ...string) *exec.Cmd {
	t.Helper()
	bin := testenv.ClaudeBin(t)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-p"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), testenv.ClaudeEnv(t, srv.URL)...)
	cmd.Stdin = strings.NewReader(prompt)
	return cmd
}

// TestCLIStreamJSONFixesBugLive runs the real CLI with
// --output-format stream-json --verbose through the scripted Read, Edit and
// answer turns. The Edit turn is gated: before it is released, the Read
// call and its result must already be on the CLI's standard output, which
// shows that the CLI streams its lines as the run goes. At the end the file
// is fixed and the output holds every line in order with the fake's usage.
func TestCLIStreamJSONFixesBugLive(t *testing.T) {
	dir, file := workspace(t)
	script := fakeanthropic.FixFile(file, "return a - b", "return a + b", answer)
	gate := make(chan struct{})
	script[1].Gate = gate
	srv := fakeanthropic.Start(t, fakeanthropic.Options{Script: script})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := claudeCmd(ctx, t, srv, dir, "Fix the bug in calc.py.",
		"--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits")
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan cliLine)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var l cliLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("stdout line is not JSON: %v: %s", err, sc.Text())
				continue
			}
			lines <- l
		}
	}()

	var got []cliLine
	for l := range lines {
		got = append(got, l)
		if l.summary() == "user tool_result toolu_fake_0_1" {
			break
		}
	}
	waitFor(t, "the request for the gated Edit turn", func() bool { return srv.Remaining() == 1 })
	if b, _ := os.ReadFile(file); string(b) != buggyCode {
		t.Errorf("file changed before the Edit turn was released:\n%s", b)
	}
	close(gate)
	for l := range lines {
		got = append(got, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("claude: %v\nstderr: %s", err, stderr.String())
	}
	t.Logf("one scripted 3-turn run took %s (CLI duration_ms %d)", time.Since(start).Round(time.Millisecond), got[len(got)-1].DurationMs)

	if b, _ := os.ReadFile(file); string(b) != fixedCode {
		t.Errorf("file after the run:\n%s\nwant\n%s", b, fixedCode)
	}
	var summaries []string
	for _, l := range got {
		summaries = append(summaries, l.summary())
	}
	want := []string{
		"system init",
		"assistant text", "assistant tool_use Read", "user tool_result toolu_fake_0_1",
		"assistant text", "assistant tool_use Edit", "user tool_result toolu_fake_1_1",
		"assistant text",
		"result success",
	}
	if !slices.Equal(summaries, want) {
		t.Fatalf("stream-json lines:\n%s\nwant\n%s", strings.Join(summaries, "\n"), strings.Join(want, "\n"))
	}

	initLine, result := got[0], got[len(got)-1]
	sid := initLine.SessionID
	if sid == "" || initLine.Cwd != dir || initLine.PermissionMode != "acceptEdits" ||
		!slices.Contains(initLine.Tools, "Read") || !slices.Contains(initLine.Tools, "Edit") {
		t.Errorf("init line = %+v", initLine)
	}
	for _, l := range got {
		if l.SessionID != sid {
			t.Errorf("%s: session_id %q, want %q", l.summary(), l.SessionID, sid)
		}
	}
	if c := got[1].Message.Content[0]; c.Text != "Let me read "+file+"." || got[1].Message.ID != got[2].Message.ID {
		t.Errorf("first assistant text = %q (message %s, then %s)", c.Text, got[1].Message.ID, got[2].Message.ID)
	}
	if c := got[2].Message.Content[0]; c.ID != "toolu_fake_0_1" || !strings.Contains(string(c.Input), file) {
		t.Errorf("Read call = %+v", c)
	}
	if c := got[3].Message.Content[0]; c.IsError || !strings.Contains(string(c.Content), "return a - b") || !strings.Contains(string(got[3].ToolUseResult), "filePath") {
		t.Errorf("Read result = %s / %s", c.Content, got[3].ToolUseResult)
	}
	if c := got[7].Message.Content[0]; c.Text != answer {
		t.Errorf("final text = %q", c.Text)
	}
	// Three turns of 100 input and 20 output tokens each.
	if result.IsError || result.Result != answer || result.NumTurns != 3 || result.TotalCostUSD <= 0 ||
		result.Usage.InputTokens != 300 || result.Usage.OutputTokens != 60 {
		t.Errorf("result = %+v", result)
	}

	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want the 3 scripted ones: %+v", len(reqs), reqs)
	}
	for i, r := range reqs {
		if r.Answer != fakeanthropic.AnsweredScript || r.Turn != i || !r.Stream || r.Model != initLine.Model ||
			!slices.Contains(r.ToolNames(), "Edit") || !strings.Contains(r.UserText(), "Fix the bug in calc.py.") {
			t.Errorf("request %d: answer %s turn %d stream %v model %q (init %q) tools %v",
				i, r.Answer, r.Turn, r.Stream, r.Model, initLine.Model, r.ToolNames())
		}
	}
	if res := reqs[1].ToolResults(); len(res) != 1 || res[0].ToolUseID != "toolu_fake_0_1" || !strings.Contains(res[0].Result, "return a - b") {
		t.Errorf("tool results sent after Read = %+v", res)
	}
	if res := reqs[2].ToolResults(); len(res) != 1 || res[0].ToolUseID != "toolu_fake_1_1" || res[0].IsError || !strings.Contains(res[0].Result, "updated successfully") {
		t.Errorf("tool results sent after Edit = %+v", res)
	}
}

// TestCLIJSONFixesBug runs the real CLI with --output-format json, as the
// Claude executor does, and with a relative path in the script (the
// executor's workspace is not known in advance).
func TestCLIJSONFixesBug(t *testing.T) {
	dir, file := workspace(t)
	srv := fakeanthropic.Start(t, fakeanthropic.Options{Script: fakeanthropic.FixFile("calc.py", "return a - b", "return a + b", answer)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := claudeCmd(ctx, t, srv, dir, "Fix the bug in calc.py.", "--output-format", "json", "--permission-mode", "acceptEdits")
	var stderr testenv.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("claude: %v\nstderr: %s", err, stderr.String())
	}
	var res cliLine
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, out)
	}
	if res.Type != "result" || res.Subtype != "success" || res.IsError || res.Result != answer || res.NumTurns != 3 ||
		res.TotalCostUSD <= 0 || res.Usage.InputTokens != 300 || res.Usage.OutputTokens != 60 || res.SessionID == "" {
		t.Errorf("result = %s", out)
	}
	if b, _ := os.ReadFile(file); string(b) != fixedCode {
		t.Errorf("file after the run:\n%s", b)
	}
	if srv.Remaining() != 0 || len(srv.Requests()) != 3 {
		t.Errorf("%d turns left, %d requests", srv.Remaining(), len(srv.Requests()))
	}
}
