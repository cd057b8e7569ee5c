#!/usr/bin/env bash
# Measures ingest beside a crowd of idle sockets and live streams against ingest alone:
# alternating runs of `learnpulse bench ingest` (4 clients, batches of 100) on a fresh store,
# "alone" and "crowded" (scripts/idle-connections.py holding IDLE idle sockets, reopened as the
# server closes them, and STREAMS open /v1/stream responses, from 8 s before the bench to its end).
# Usage: scripts/idle-bench.sh [pairs=3] [seconds=20] [idle=10000] [streams=2000] [stream query]
#        (the query defaults to group=class-{n}, a dashboard per class; '' follows everyone)
#        (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fresh-server.sh
B=target/release/learnpulse
pairs=${1:-3}; secs=${2:-20}; idle=${3:-10000}; streams=${4:-2000}; port=8802
query=${5-group=class-\{n\}}
run() {
  local mode=$1 d pid token
  fresh_server "$port"
  local crowd=""
  echo '{}' > "$d/crowd.json"
  if [ "$mode" = crowded ]; then
    scripts/idle-connections.py --url "http://127.0.0.1:$port" --key "$token" --idle "$idle" \
      --streams "$streams" --stream-query "$query" --seconds $((secs + 10)) > "$d/crowd.json" &
    crowd=$!
    sleep 8
  fi
  "$B" bench ingest --url "http://127.0.0.1:$port" --key "$token" --clients 4 --batch 100 --seconds "$secs" > "$d/bench.json"
  if [ -n "$crowd" ]; then wait "$crowd"; fi
  kill $pid; wait $pid 2>/dev/null || true
  python3 -c "
import json
b = json.load(open('$d/bench.json')); c = json.load(open('$d/crowd.json'))
print('$mode', round(b['statements_per_second']), c.get('held_at_least', 0), c.get('idle_closed_by_server', 0), c.get('refused', 0))"
  rm -rf "$d"
}
echo "mode statements/s sockets_held_at_least idle_closed_by_server refused" >&2
for _ in $(seq 1 "$pairs"); do run alone; run crowded; done | tee /dev/stderr | python3 -c "
import sys, statistics as st
rows = [l.split() for l in sys.stdin if l.strip()]
rate = {m: [float(r[1]) for r in rows if r[0] == m] for m in ('alone', 'crowded')}
pairs = [c / a for a, c in zip(rate['alone'], rate['crowded'])]
print(f\"alone {st.mean(rate['alone']):.0f}/s, crowded {st.mean(rate['crowded']):.0f}/s: the crowd costs {100*(1-st.mean(rate['crowded'])/st.mean(rate['alone'])):.1f} % of throughput (pair ratios {', '.join(f'{p:.2f}' for p in pairs)})\")
"
