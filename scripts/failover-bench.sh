#!/usr/bin/env bash
# How long the installation-wide duties go unled when their leader dies: two nodes on one
# PostgreSQL database; the leader is killed with SIGKILL and the time until the other node's
# /healthz lists "compliance" among the duties it leads is printed; the killed node is started
# again and the roles are swapped, ROUNDS times each way. Release build.
# Usage: scripts/failover-bench.sh [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/release/learnpulse
rounds=${1:-3}
db=postgres://postgres@127.0.0.1:5432/lp_failover
psql "${db%/*}/postgres" -qc "DROP DATABASE IF EXISTS lp_failover" > /dev/null 2>&1
dir=$(mktemp -d)
declare -A pid
start() { # port
  "$B" serve --data-dir "$dir" --storage "$db" --listen "127.0.0.1:$1" >> "$dir/$1.log" 2>&1 &
  pid[$1]=$!
  until curl -sf "http://127.0.0.1:$1/readyz" > /dev/null; do sleep 0.05; done
}
leads() { curl -s "http://127.0.0.1:$1/healthz" | grep -q '"compliance"'; }
start 8791; start 8792
until leads 8791 || leads 8792; do sleep 0.05; done
for _ in $(seq 1 $((2 * rounds))); do
  if leads 8791; then leader=8791 other=8792; else leader=8792 other=8791; fi
  t0=$(date +%s.%N)
  kill -9 "${pid[$leader]}"; wait "${pid[$leader]}" 2> /dev/null || true
  until leads "$other"; do sleep 0.01; done
  echo "leader on :$leader killed; :$other leads after $(echo "$(date +%s.%N) - $t0" | bc) s"
  start "$leader"
done
kill "${pid[8791]}" "${pid[8792]}"; wait 2> /dev/null || true
rm -rf "$dir"
