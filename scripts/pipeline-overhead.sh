#!/usr/bin/env bash
# Measures what the privacy pipeline costs at ingest: alternating runs of `learnpulse bench
# ingest` (4 clients, batches of 100) against a fresh store with the default policy ("on") and
# with the pipeline reduced to its consent gate ("off": keep_raw_identity, no redaction).
# Usage: scripts/pipeline-overhead.sh [pairs=5] [seconds=20]   (after cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fresh-server.sh
B=target/release/learnpulse
pairs=${1:-5}; secs=${2:-20}; port=8801
run() {
  local mode=$1 d pid token
  fresh_server "$port"
  if [ "$mode" = off ]; then
    curl -s -X PUT -H "Authorization: Bearer $token" -H 'content-type: application/json' \
      -d '{"keep_raw_identity": true, "redact_free_text": false}' "http://127.0.0.1:$port/v1/privacy/policy" > /dev/null
  fi
  local t0 t1; t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  "$B" bench ingest --url "http://127.0.0.1:$port" --key "$token" --clients 4 --batch 100 --seconds "$secs" > "$d/bench.json"
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill $pid; wait $pid 2>/dev/null || true
  python3 -c "import json; d=json.load(open('$d/bench.json')); print('$mode', round(d['statements_per_second']), round(($t1-$t0)*1e4/d['statements'], 2))"
  rm -rf "$d"
}
for _ in $(seq 1 "$pairs"); do run off; run on; done | tee /dev/stderr | python3 -c "
import sys, statistics as st
rows = [l.split() for l in sys.stdin if l.strip()]
rate = {m: [float(r[1]) for r in rows if r[0] == m] for m in ('on', 'off')}
cpu = {m: [float(r[2]) for r in rows if r[0] == m] for m in ('on', 'off')}
print(f\"on {st.mean(rate['on']):.0f}/s, off {st.mean(rate['off']):.0f}/s: pipeline costs {100*(1-st.mean(rate['on'])/st.mean(rate['off'])):.1f} % of throughput\")
print(f\"server CPU per statement: on {st.mean(cpu['on']):.1f} µs, off {st.mean(cpu['off']):.1f} µs\")
"
