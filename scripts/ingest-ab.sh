#!/usr/bin/env bash
# Ingest of two builds compared in one run: alternating `bench ingest` runs (4 clients x 100) of
# binary A and binary B, each on a fresh store: a fresh PostgreSQL database (lp_ab) by default,
# or SQLite with `sqlite`. Prints each run and the ratio of the means (B / A).
# Usage: scripts/ingest-ab.sh BIN_A BIN_B [pairs=3] [seconds=20] [postgres|sqlite]
# A_SERVE_ARGS / B_SERVE_ARGS: extra `serve` arguments of each side, e.g. one binary with and
# without metrics: B_SERVE_ARGS="--metrics false" scripts/ingest-ab.sh BIN BIN 5 15 sqlite
set -euo pipefail
a=$1; b=$2; pairs=${3:-3}; secs=${4:-20}; backend=${5:-postgres}
pg=postgres://postgres@127.0.0.1:5432
port=8799
run() { # label binary
  local dir storage=() extra=(); dir=$(mktemp -d)
  if [ "$1" = A ]; then read -ra extra <<< "${A_SERVE_ARGS:-}"; else read -ra extra <<< "${B_SERVE_ARGS:-}"; fi
  if [ "$backend" = postgres ]; then
    psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS lp_ab" > /dev/null 2>&1
    storage=(--storage "$pg/lp_ab")
  fi
  "$2" serve --data-dir "$dir" "${storage[@]}" "${extra[@]}" --listen "127.0.0.1:$port" > "$dir/serve.log" 2>&1 &
  local pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" > /dev/null; do sleep 0.1; done
  local token; token=$(grep -m1 -oE "lpk_[0-9a-f]+\.[A-Za-z0-9_-]+" "$dir/serve.log")
  "$2" bench ingest --url "http://127.0.0.1:$port" --key "$token" --clients 4 --batch 100 --seconds "$secs" > "$dir/bench.json"
  kill -TERM $pid; wait $pid 2> /dev/null || true
  python3 -c "import json; print('$1', round(json.load(open('$dir/bench.json'))['statements_per_second']))"
  rm -rf "$dir"
}
for _ in $(seq 1 "$pairs"); do run A "$a"; run B "$b"; done | tee /dev/stderr | python3 -c "
import sys, statistics as st
rows = [l.split() for l in sys.stdin if l.strip()]
m = {k: st.mean(float(r[1]) for r in rows if r[0] == k) for k in ('A', 'B')}
print(f\"A {m['A']:.0f}/s, B {m['B']:.0f}/s: B/A = {m['B'] / m['A']:.3f}\")
"
