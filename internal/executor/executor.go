package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentorch/orchestrator/internal/sandbox"
)

// Input is one task to run.
type Input struct {
	// TaskID identifies the task in logs and in the program's environment.
	TaskID string
	// Code is the source the agent works on.
	Code string
	// Prompt says what the agent should do.
	Prompt string
	// Timeout bounds the run. Zero means no bound other than the context's.
	Timeout time.Duration
	// Raw is the job's data as it came from the queue. [Command] passes it on
	// standard input when set, so fields unknown to the worker reach the
	// program; otherwise it passes the fields above.
	Raw json.RawMessage
}

// Output is what a successful run produced.
type Output struct {
	// Result is the JSON value posted as the task's result.
	Result json.RawMessage
	// Truncated reports that some output was cut at the output cap; the
	// result says so too.
	Truncated bool
	// Sandbox lists the protections the program ran under (see package
	// sandbox); empty when it ran without a sandbox or ran no program.
	Sandbox []sandbox.Protection
}

// Executor runs tasks. Implementations are safe for concurrent use by
// several goroutines; each Run is independent.
type Executor interface {
	// Run runs in and returns its output. It returns a *TimeoutError when
	// in.Timeout passes, the cause of ctx (context.Cause) when ctx ends first,
	// and an error matching ErrUnrecoverable when retrying cannot help.
	Run(ctx context.Context, in Input) (Output, error)
}

// ErrUnrecoverable marks errors that another attempt cannot fix: invalid
// input or a misconfigured executor. Match it with errors.Is.
var ErrUnrecoverable = errors.New("unrecoverable")

// unrecoverableError wraps an error so that it also matches ErrUnrecoverable
// while keeping its own message.
type unrecoverableError struct{ err error }

func (e *unrecoverableError) Error() string { return e.err.Error() }
func (e *unrecoverableError) Unwrap() []error {
	return []error{e.err, ErrUnrecoverable}
}

// Unrecoverable returns err marked so that errors.Is(err, ErrUnrecoverable)
// holds. It returns nil for nil.
func Unrecoverable(err error) error {
	if err == nil {
		return nil
	}
	return &unrecoverableError{err: err}
}

// TimeoutError is returned when a run exceeds its task's timeout.
type TimeoutError struct {
	// Timeout is the bound that passed.
	Timeout time.Duration
}

// Error returns "timed out after <timeout>".
func (e *TimeoutError) Error() string { return fmt.Sprintf("timed out after %s", e.Timeout) }

// withTimeout derives the run context: it ends with a *TimeoutError cause
// when timeout passes. A zero timeout leaves ctx unbounded.
func withTimeout(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, timeout, &TimeoutError{Timeout: timeout})
}

// stopCause returns why ctx ended: its cause when one was given, ctx.Err()
// otherwise.
func stopCause(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return ctx.Err()
}

// validate checks the parts of in that every executor needs.
func (in Input) validate() error {
	if in.Timeout < 0 {
		return Unrecoverable(fmt.Errorf("task %s: negative timeout %s", in.TaskID, in.Timeout))
	}
	return nil
}
