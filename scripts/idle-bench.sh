#!/usr/bin/env bash
# Measures ingest beside a crowd of idle sockets and live streams against ingest alone:
# alternating runs of `learnpulse bench ingest` (4 clients, batches of 100) on a fresh store,
# "alone" and "crowded" (scripts/idle-connections.py holding IDLE idle sockets, reopened as the
# server closes them, and STREAMS open /v1/stream responses, from 8 s before the bench to its end).
# The crowd runs on the same machine, so its own CPU competes with the server: each row also
# gives the server's CPU time per 1,000 statements during the bench (its own cost, whoever else
# runs) and the share of a core the crowd used.
# Usage: scripts/idle-bench.sh [pairs=3] [seconds=20] [idle=10000] [streams=2000] [stream query]
#        (the query defaults to group=class-{n}, a dashboard per class; '' follows everyone)
#        (after cargo build --release; LEARNPULSE_BIN=path runs another build)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fresh-server.sh
B=${LEARNPULSE_BIN:-target/release/learnpulse}
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
  local cpu0; cpu0=$(cpu_ticks "$pid")
  local crowd_cpu0=0; if [ -n "$crowd" ]; then crowd_cpu0=$(cpu_ticks "$crowd"); fi
  "$B" bench ingest --url "http://127.0.0.1:$port" --key "$token" --clients 4 --batch 100 --seconds "$secs" > "$d/bench.json"
  local cpu1; cpu1=$(cpu_ticks "$pid")
  local crowd_cpu1=0; if [ -n "$crowd" ]; then crowd_cpu1=$(cpu_ticks "$crowd"); fi
  if [ -n "$crowd" ]; then wait "$crowd"; fi
  kill $pid; wait $pid 2>/dev/null || true
  python3 -c "
import json
b = json.load(open('$d/bench.json')); c = json.load(open('$d/crowd.json'))
hz = $(getconf CLK_TCK)
server_ms = ($cpu1 - $cpu0) * 1000 / hz / max(b['statements'], 1) * 1000
crowd_core = ($crowd_cpu1 - $crowd_cpu0) / hz / b['seconds']
print('$mode', round(b['statements_per_second']), c.get('held_at_least', 0), c.get('idle_closed_by_server', 0), c.get('refused', 0), f'{server_ms:.1f}', f'{crowd_core:.2f}', c.get('stream_bytes', 0))"
  rm -rf "$d"
}
# user + system CPU ticks of a process
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
echo "mode statements/s sockets_held_at_least idle_closed_by_server refused server_cpu_ms_per_1k crowd_cores stream_bytes" >&2
for _ in $(seq 1 "$pairs"); do run alone; run crowded; done | tee /dev/stderr | python3 -c "
import sys, statistics as st
rows = [l.split() for l in sys.stdin if l.strip()]
rate = {m: [float(r[1]) for r in rows if r[0] == m] for m in ('alone', 'crowded')}
pairs = [c / a for a, c in zip(rate['alone'], rate['crowded'])]
cpu = {m: [float(r[5]) for r in rows if r[0] == m] for m in ('alone', 'crowded')}
crowd = [float(r[6]) for r in rows if r[0] == 'crowded']
print(f\"alone {st.mean(rate['alone']):.0f}/s, crowded {st.mean(rate['crowded']):.0f}/s: the crowd costs {100*(1-st.mean(rate['crowded'])/st.mean(rate['alone'])):.1f} % of throughput (pair ratios {', '.join(f'{p:.2f}' for p in pairs)})\")
print(f\"server CPU per 1,000 statements: alone {st.mean(cpu['alone']):.1f} ms, crowded {st.mean(cpu['crowded']):.1f} ms; the crowd itself used {st.mean(crowd):.2f} of a core\")
"
