#!/usr/bin/env bash
# demo-agent: an offline stand-in for an AI coding agent, for the worker's
# `command` executor (WORKER_EXECUTOR=command WORKER_COMMAND=examples/demo-agent/demo-agent.sh).
#
# It reads the task job's data as JSON on stdin ({taskId, code, prompt, timeout}),
# "works" for DEMO_AGENT_DELAY seconds (default 1), and prints a JSON result:
#   {"taskId": "...", "answer": "...", "linesOfCode": N}
# A prompt containing "[fail]" makes it fail (exit 1, reason on stderr), to see retries.
set -euo pipefail

input=$(cat)

# field NAME: the raw (still JSON-escaped) value of a string field of the input.
field() {
	local re="\"$1\"[[:space:]]*:[[:space:]]*\"(([^\"\\\\]|\\\\.)*)\""
	if [[ $input =~ $re ]]; then
		printf '%s' "${BASH_REMATCH[1]}"
	fi
}

task_id=$(field taskId)
prompt=$(field prompt)
code=$(field code)

if [[ $prompt == *"[fail]"* ]]; then
	echo "demo-agent: the prompt asked me to fail" >&2
	exit 1
fi

# Lines of code: escaped newlines in the code, plus a last line without one.
newlines=$(grep -o '\\n' <<<"$code" | wc -l || true)
lines=$((newlines))
if [[ -n $code && $code != *'\n' ]]; then
	lines=$((lines + 1))
fi

sleep "${DEMO_AGENT_DELAY:-1}"

printf '{"taskId":"%s","answer":"Demo agent reviewed %d line(s) of code for the prompt: %s","linesOfCode":%d}\n' \
	"$task_id" "$lines" "$prompt" "$lines"
