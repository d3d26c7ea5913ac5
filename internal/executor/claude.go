package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultClaudeBin is the Claude Code CLI looked up on PATH by default.
const DefaultClaudeBin = "claude"

// DefaultClaudePermissionMode lets the headless agent edit files in its
// workspace without asking.
const DefaultClaudePermissionMode = "acceptEdits"

// ClaudeOptions configure the Claude executor. The zero value runs
// "claude" from PATH.
type ClaudeOptions struct {
	// Bin is the CLI's path or name on PATH. Defaults to DefaultClaudeBin.
	Bin string
	// Model, when set, is passed as --model.
	Model string
	// PermissionMode is passed as --permission-mode. Defaults to
	// DefaultClaudePermissionMode.
	PermissionMode string
	// ExtraArgs are appended to the CLI's arguments.
	ExtraArgs []string
	// TempDir is where workspaces are created. Defaults to os.TempDir().
	TempDir string
	// Process controls the kill grace and the output cap (which also caps
	// the diff).
	Process ProcessOptions
}

// Claude runs the Claude Code CLI headless for a task:
//
//	claude -p --output-format json --permission-mode acceptEdits \
//	    --append-system-prompt "<where the code is>" [--model M] [extra args]
//
// with the prompt on standard input, in a fresh temporary workspace whose
// work directory holds the task's code in one file (main.<ext>, the
// extension guessed from the code), with HOME and TMPDIR beside it. After the run it diffs the workspace against the snapshot taken
// before (its own Myers line diff; git is not needed), removes the
// workspace, and returns a [ClaudeResult].
//
// Claude is safe for concurrent use: every run has its own workspace.
type Claude struct {
	opts ClaudeOptions
}

var _ Executor = (*Claude)(nil)

// NewClaude returns a Claude executor. It does not look for the binary; see
// LookClaude.
func NewClaude(opts ClaudeOptions) (*Claude, error) {
	if err := opts.Process.Validate(); err != nil {
		return nil, fmt.Errorf("new claude executor: %w", err)
	}
	if opts.Bin == "" {
		opts.Bin = DefaultClaudeBin
	}
	if opts.PermissionMode == "" {
		opts.PermissionMode = DefaultClaudePermissionMode
	}
	return &Claude{opts: opts}, nil
}

// LookClaude finds the Claude Code CLI binary bin (a path, or a name looked
// up on PATH; "" means DefaultClaudeBin) and returns its path, or an error
// saying it is missing and how to point at it.
func LookClaude(bin string) (string, error) {
	if bin == "" {
		bin = DefaultClaudeBin
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return "", fmt.Errorf("claude executor: Claude Code CLI %q not found (install it or set CLAUDE_BIN): %w", bin, err)
	}
	return path, nil
}

// ClaudeResult is the result of a Claude run, as posted.
type ClaudeResult struct {
	// Answer is the agent's final answer (the CLI's "result").
	Answer string `json:"answer"`
	// Diff is the unified diff of the files the agent changed; "" if none.
	Diff string `json:"diff"`
	// CostUSD is the CLI's total_cost_usd, when reported.
	CostUSD *float64 `json:"costUsd,omitempty"`
	// Usage is the CLI's token usage object, when reported.
	Usage json.RawMessage `json:"usage,omitempty"`
	// DurationMs is the CLI's duration_ms, when reported.
	DurationMs *int64 `json:"durationMs,omitempty"`
	// NumTurns is the CLI's num_turns, when reported.
	NumTurns *int `json:"numTurns,omitempty"`
	// SessionID is the CLI's session_id, when reported.
	SessionID string `json:"sessionId,omitempty"`
	// Truncated reports that the CLI output or the diff was cut at the cap.
	Truncated bool `json:"truncated,omitempty"`
}

// cliResult is the part of the CLI's --output-format json object we use.
type cliResult struct {
	Type         string          `json:"type"`
	Subtype      string          `json:"subtype"`
	IsError      bool            `json:"is_error"`
	Result       *string         `json:"result"`
	TotalCostUSD *float64        `json:"total_cost_usd"`
	Usage        json.RawMessage `json:"usage"`
	DurationMs   *int64          `json:"duration_ms"`
	NumTurns     *int            `json:"num_turns"`
	SessionID    string          `json:"session_id"`
}

// Run runs the agent for in. A non-zero exit or an error reported by the
// CLI (is_error) fails the run with the CLI's message; the workspace is
// removed in every case.
func (c *Claude) Run(ctx context.Context, in Input) (Output, error) {
	if err := in.validate(); err != nil {
		return Output{}, err
	}
	tempDir := c.opts.TempDir
	if tempDir == "" {
		tempDir = c.opts.Process.TempDir
	}
	ws, err := newWorkspace(tempDir)
	if err != nil {
		return Output{}, fmt.Errorf("claude task %s: %w", in.TaskID, err)
	}
	defer ws.remove()
	name := codeFileName(in.Code)
	if err := os.WriteFile(filepath.Join(ws.work, name), []byte(in.Code), 0o644); err != nil {
		return Output{}, fmt.Errorf("claude task %s: write code: %w", in.TaskID, err)
	}
	before, err := takeSnapshot(ws.work)
	if err != nil {
		return Output{}, fmt.Errorf("claude task %s: %w", in.TaskID, err)
	}
	if err := ws.handOver(c.opts.Process); err != nil {
		return Output{}, fmt.Errorf("claude task %s: workspace: %w", in.TaskID, err)
	}

	argv := []string{c.opts.Bin, "-p", "--output-format", "json",
		"--permission-mode", c.opts.PermissionMode,
		"--append-system-prompt", fmt.Sprintf("The code for this task is in the file ./%s in the current directory. Edit it there when the task asks for changes.", name)}
	if c.opts.Model != "" {
		argv = append(argv, "--model", c.opts.Model)
	}
	argv = append(argv, c.opts.ExtraArgs...)

	ctx, cancel := withTimeout(ctx, in.Timeout)
	defer cancel()
	res, runErr := c.opts.Process.run(ctx, procSpec{
		argv:      argv,
		stdin:     strings.NewReader(in.Prompt),
		env:       []string{"TASK_ID=" + in.TaskID},
		passEnv:   claudeEnv,
		ws:        ws,
		readPaths: claudeReadPaths(c.opts.Bin),
	})
	cli, parsed := parseCLIOutput(res.stdout)
	if runErr != nil {
		var exitErr *ExitError
		if errors.As(runErr, &exitErr) && parsed && *cli.Result != "" {
			return Output{}, fmt.Errorf("claude task %s: %w (result: %s)", in.TaskID, runErr, clip(*cli.Result, stderrTailBytes))
		}
		return Output{}, fmt.Errorf("claude task %s: %w", in.TaskID, runErr)
	}
	if parsed && cli.IsError {
		return Output{}, fmt.Errorf("claude task %s: CLI reported an error (%s): %s", in.TaskID, cli.Subtype, clip(*cli.Result, stderrTailBytes))
	}

	after, err := takeSnapshot(ws.work)
	if err != nil {
		return Output{}, fmt.Errorf("claude task %s: %w", in.TaskID, err)
	}
	out := ClaudeResult{Diff: diffSnapshots(before, after), Truncated: res.truncated}
	if limit := c.opts.Process.maxOutput(); int64(len(out.Diff)) > limit {
		out.Diff = strings.ToValidUTF8(out.Diff[:limit], "\uFFFD")
		out.Truncated = true
	}
	if parsed {
		out.Answer = *cli.Result
		out.CostUSD, out.Usage, out.DurationMs, out.NumTurns, out.SessionID = cli.TotalCostUSD, cli.Usage, cli.DurationMs, cli.NumTurns, cli.SessionID
	} else {
		// Not the JSON we asked for (or cut by the cap): keep the text.
		out.Answer = strings.TrimSpace(validUTF8(res.stdout))
	}
	b, err := json.Marshal(out)
	if err != nil {
		return Output{}, fmt.Errorf("claude task %s: encode result: %w", in.TaskID, err)
	}
	return Output{Result: b, Truncated: out.Truncated, Sandbox: res.protections}, nil
}

// claudeEnv names the worker's variables the CLI gets in a sandbox: its
// API key and settings.
var claudeEnv = []string{"ANTHROPIC_*", "CLAUDE_CODE_*"}

// claudeReadPaths returns what the CLI needs to read besides the system:
// the directory of its real executable (for an npm install, the package
// with cli.js and its vendored tools).
func claudeReadPaths(bin string) []string {
	p, err := exec.LookPath(bin)
	if err != nil {
		return nil
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return nil
	}
	return []string{filepath.Dir(real)}
}

// parseCLIOutput finds the result object in the CLI's output: the object
// itself (--output-format json), or the last "result" element of an array
// (json with --verbose) or of JSON lines (stream-json).
func parseCLIOutput(stdout []byte) (cliResult, bool) {
	var one cliResult
	if err := json.Unmarshal(stdout, &one); err == nil && one.Result != nil {
		return one, true
	}
	var many []cliResult
	if err := json.Unmarshal(stdout, &many); err != nil {
		many = many[:0]
		for _, line := range strings.Split(string(stdout), "\n") {
			var r cliResult
			if json.Unmarshal([]byte(line), &r) == nil {
				many = append(many, r)
			}
		}
	}
	for i := len(many) - 1; i >= 0; i-- {
		if many[i].Type == "result" && many[i].Result != nil {
			return many[i], true
		}
	}
	return cliResult{}, false
}

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
