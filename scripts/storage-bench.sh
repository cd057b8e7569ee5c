#!/usr/bin/env bash
# The two storage backends side by side, in one run on one machine (release build):
#  1. ingest (`learnpulse bench ingest`, 4 clients x batches of 100), alternating runs between a
#     SQLite server and a PostgreSQL server, each run adding to its store, until both stores
#     hold the target number of statements: the rate of each at each size, and their ratio;
#  2. time to ready after a restart at that size: with the engine snapshot saved at the
#     graceful stop, and with snapshots off (a full replay of the log).
# Usage: scripts/storage-bench.sh [statements=5000000] [seconds=30] [postgres=postgres://postgres@127.0.0.1:5432]
# The PostgreSQL database `lp_bench` is dropped and created again. Results: one line per run on
# standard output, and $work/runs.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/release/learnpulse
target=${1:-5000000}; secs=${2:-30}; pg=${3:-postgres://postgres@127.0.0.1:5432}
work=$(mktemp -d)
declare -A port=([sqlite]=8811 [postgres]=8812) pid token total
psql "$pg/postgres" -qc 'DROP DATABASE IF EXISTS lp_bench' >/dev/null
echo "[snapshots]
enabled = false" > "$work/no-snapshots.toml"

start() { # backend [serve flags...]
  local b=$1; shift
  local flags=(--data-dir "$work/$b" --listen "127.0.0.1:${port[$b]}")
  [ "$b" = postgres ] && flags+=(--storage "$pg/lp_bench")
  mkdir -p "$work/$b"
  "$B" serve "${flags[@]}" "$@" >> "$work/$b/serve.log" 2>&1 &
  pid[$b]=$!
}
ready_after() { # backend: seconds from now until /readyz answers 200
  local b=$1 t0; t0=$(date +%s.%N)
  until curl -sf "http://127.0.0.1:${port[$b]}/readyz" > /dev/null; do sleep 0.01; done
  echo "$(date +%s.%N) - $t0" | bc
}
stop() { kill -TERM "${pid[$1]}"; wait "${pid[$1]}" 2>/dev/null || true; }

echo "backend,statements_before,statements_per_second,p99_ms" > "$work/runs.csv"
for b in sqlite postgres; do
  start $b
  ready_after $b > /dev/null
  token[$b]=$(grep -m1 -oE "lpk_[0-9a-f]+\.[A-Za-z0-9_-]+" "$work/$b/serve.log")
  total[$b]=0
done
while [ "${total[sqlite]}" -lt "$target" ] || [ "${total[postgres]}" -lt "$target" ]; do
  for b in sqlite postgres; do
    [ "${total[$b]}" -ge "$target" ] && continue
    "$B" bench ingest --url "http://127.0.0.1:${port[$b]}" --key "${token[$b]}" \
      --clients 4 --batch 100 --seconds "$secs" > "$work/bench.json"
    read -r n rate p99 < <(python3 -c "import json; d=json.load(open('$work/bench.json')); print(d['statements'], round(d['statements_per_second']), d['latency_ms_p99'])")
    echo "$b,${total[$b]},$rate,$p99" | tee -a "$work/runs.csv"
    total[$b]=$(( ${total[$b]} + n ))
  done
done

for b in sqlite postgres; do
  stop $b # saves the engine snapshot
  start $b
  with=$(ready_after $b)
  stop $b
  start $b --config "$work/no-snapshots.toml"
  without=$(ready_after $b)
  stop $b
  echo "$b: ${total[$b]} statements; ready after a restart in $with s with the snapshot, $without s replaying the whole log"
done
python3 - "$work/runs.csv" <<'EOF'
import csv, sys
runs = list(csv.DictReader(open(sys.argv[1])))
by = {b: [r for r in runs if r["backend"] == b] for b in ("sqlite", "postgres")}
for i, (s, p) in enumerate(zip(by["sqlite"], by["postgres"])):
    print(f"run {i + 1}: sqlite {s['statements_per_second']}/s at {int(s['statements_before']):,}, "
          f"postgres {p['statements_per_second']}/s at {int(p['statements_before']):,}: "
          f"ratio {int(p['statements_per_second']) / int(s['statements_per_second']):.2f}")
EOF
echo "data and logs in $work"
