#!/bin/sh
# An agent for the Go worker's command executor that misbehaves on request:
# it reads the job data (JSON) on stdin and acts on the first keyword of
# the prompt it finds. It appends its TASK_ID to $AGENT_RUNS (when set), so
# that a test can tell which tasks ran.
#
#   nul-stderr       NUL on stderr, exit 1
#   nul-stdout       NUL in plain-text stdout, exit 0
#   json-nul         a JSON result holding a \u0000 escape
#   utf8-stderr      invalid UTF-8 mixed with NUL on stderr, exit 1
#   utf8-stdout      a JSON result holding an invalid UTF-8 byte
#   huge-stdout      3 MiB of output (more than WORKER_MAX_OUTPUT)
#   huge-stderr      3 MiB on stderr with NULs, exit 1
#   sleep<N>         sleeps N seconds, then answers
#   anything else    answers at once: {"answer":"ok"}
data=$(cat)
[ -n "$AGENT_RUNS" ] && echo "$TASK_ID" >> "$AGENT_RUNS"
case "$data" in
  *nul-stderr*) printf 'boom\000here' >&2; exit 1 ;;
  *nul-stdout*) printf 'out\000put'; exit 0 ;;
  *json-nul*) printf '{"out":"a\\u0000b"}'; exit 0 ;;
  *utf8-stderr*) printf 'caf\303 \000 bad \377\376 bytes' >&2; exit 1 ;;
  *utf8-stdout*) printf '{"out":"caf\303 x"}'; exit 0 ;;
  *huge-stdout*) head -c 3145728 /dev/zero | tr '\000' 'x'; exit 0 ;;
  *huge-stderr*) head -c 3145728 /dev/zero >&2; exit 1 ;;
  *sleep*) n=$(printf '%s' "$data" | sed -n 's/.*sleep\([0-9][0-9]*\).*/\1/p'); sleep "${n:-1}" ;;
esac
echo '{"answer":"ok"}'
