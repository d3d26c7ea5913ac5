#!/bin/sh
# A stand-in agent for the Go worker's command executor: reads the job data
# (JSON) on stdin; a prompt containing "slow" makes it run for 30 seconds
# (for cancel tests), anything else answers at once.
data=$(cat)
case "$data" in
  *slow*) sleep 30 ;;
esac
echo '{"answer":"done by agent.sh"}'
