// Package executor runs one task for a worker: it hands the task's code and
// prompt to an AI agent or to any program and returns what came back.
//
// Three executors implement [Executor]:
//
//   - [Claude] runs the Claude Code CLI headless in a fresh temporary
//     workspace holding the task's code, and reports the agent's answer, the
//     workspace changes as a unified diff, and the cost and usage the CLI
//     reports.
//   - [Anthropic] calls the Anthropic Messages API through the official Go SDK.
//   - [Command] runs any program with the task as JSON on its standard input.
//
// The process-based executors put the program in its own process group and
// enforce a hard timeout: when the task's timeout passes or the context is
// cancelled, the group gets SIGTERM and, after a grace period, SIGKILL.
// Output is capped and the cap is reported in the result.
//
// Errors that retrying cannot fix (bad input, a misconfigured executor) match
// [ErrUnrecoverable] with errors.Is; a timeout is a [*TimeoutError].
package executor
