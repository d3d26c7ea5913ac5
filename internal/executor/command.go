package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Command runs any program for a task. The program gets the task as JSON on
// standard input (the job's data as queued, or {taskId, code, prompt,
// timeout} with timeout in milliseconds) and TASK_ID in its environment.
// It runs in a fresh workspace (its working directory, with HOME and
// TMPDIR inside), removed after the run. Its
// standard output, trimmed, is the result: the JSON value itself if it
// parses, else a JSON string. A non-zero exit fails the run with the end of
// its standard error. When the output was cut at the cap, the result is
// {"output": "<the kept text>", "truncated": true, "maxOutputBytes": N}.
//
// Command is safe for concurrent use.
type Command struct {
	// Argv is the program and its arguments (see SplitArgs). Required.
	Argv []string
	// Process controls timeouts and the output cap.
	Process ProcessOptions
}

var _ Executor = (*Command)(nil)

// NewCommand returns a Command executor for argv. It does not check that
// the program exists, but a program found on PATH or given by a relative
// path is run by its absolute path: programs run in their task's
// workspace, and a sandbox lets them read that path.
func NewCommand(argv []string, opts ProcessOptions) (*Command, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, errors.New("new command executor: no program given")
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("new command executor: %w", err)
	}
	argv = slices.Clone(argv)
	if p, err := exec.LookPath(argv[0]); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			argv[0] = abs
		}
	}
	return &Command{Argv: argv, Process: opts}, nil
}

// commandInput is what Command writes on standard input when the raw job
// data is not known.
type commandInput struct {
	TaskID  string `json:"taskId"`
	Code    string `json:"code"`
	Prompt  string `json:"prompt"`
	Timeout int64  `json:"timeout"`
}

// Run runs the program for in. See Command for the contract.
func (c *Command) Run(ctx context.Context, in Input) (Output, error) {
	if err := in.validate(); err != nil {
		return Output{}, err
	}
	stdin := in.Raw
	if len(stdin) == 0 {
		var err error
		stdin, err = json.Marshal(commandInput{TaskID: in.TaskID, Code: in.Code, Prompt: in.Prompt, Timeout: in.Timeout.Milliseconds()})
		if err != nil {
			return Output{}, Unrecoverable(fmt.Errorf("encode task %s: %w", in.TaskID, err))
		}
	}
	ws, err := newWorkspace(c.Process.TempDir)
	if err != nil {
		return Output{}, fmt.Errorf("command task %s: %w", in.TaskID, err)
	}
	defer ws.remove()
	if err := ws.handOver(c.Process); err != nil {
		return Output{}, fmt.Errorf("command task %s: workspace: %w", in.TaskID, err)
	}
	ctx, cancel := withTimeout(ctx, in.Timeout)
	defer cancel()
	res, err := c.Process.run(ctx, procSpec{
		argv:  c.Argv,
		stdin: bytes.NewReader(stdin),
		env:   []string{"TASK_ID=" + in.TaskID, "TASK_TIMEOUT_MS=" + strconv.FormatInt(in.Timeout.Milliseconds(), 10)},
		ws:    ws,
	})
	if err != nil {
		return Output{}, err
	}
	return Output{Result: outputResult(res.stdout, res.truncated, c.Process.maxOutput()), Truncated: res.truncated, Sandbox: res.protections}, nil
}

// outputResult turns a program's standard output into a JSON result.
func outputResult(stdout []byte, truncated bool, limit int64) json.RawMessage {
	out := bytes.TrimSpace(stdout)
	if truncated {
		r, _ := json.Marshal(struct {
			Output         string `json:"output"`
			Truncated      bool   `json:"truncated"`
			MaxOutputBytes int64  `json:"maxOutputBytes"`
		}{validUTF8(out), true, limit})
		return r
	}
	if len(out) > 0 && json.Valid(out) {
		return json.RawMessage(bytes.Clone(out))
	}
	r, _ := json.Marshal(validUTF8(out))
	return r
}

// validUTF8 returns b as a string, with invalid UTF-8 (such as a rune cut by
// the output cap) replaced.
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
