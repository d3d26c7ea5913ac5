#!/usr/bin/env bash
# Sets up and runs the system on one machine: a local Redis when none is
# reachable, then the orchestrator (SQLite in ./data unless DATABASE_URL is
# set) and one task worker running the offline demo agent. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

command -v go >/dev/null || { echo "run.sh: Go 1.26+ is required (https://go.dev/dl/)" >&2; exit 1; }

redis_host=${REDIS_HOST:-127.0.0.1}
redis_port=${REDIS_PORT:-6379}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${REDIS_URL:-}" ] && ! (exec 3<>"/dev/tcp/$redis_host/$redis_port") 2>/dev/null; then
  if ! command -v redis-server >/dev/null; then
    echo "run.sh: installing redis-server" >&2
    SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq && $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
  fi
  mkdir -p data/redis
  echo "run.sh: starting a local Redis on 127.0.0.1:$redis_port (data in data/redis)" >&2
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$PWD/data/redis" \
    --appendonly yes --maxmemory-policy noeviction --logfile "$PWD/data/redis/redis.log" &
  pids+=($!)
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break; sleep 0.2; done
  export REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port
fi

make build
mkdir -p data
./bin/orchestrator &
pids+=($!)
if [ -x bin/worker ]; then
  WORKER_EXECUTOR=${WORKER_EXECUTOR:-command} \
  WORKER_COMMAND=${WORKER_COMMAND:-examples/demo-agent/demo-agent.sh} \
  ./bin/worker &
  pids+=($!)
fi
echo "run.sh: orchestrator on http://localhost:${PORT:-3000} (docs: /docs); Ctrl-C stops everything" >&2
wait -n
