#!/usr/bin/env bash
# One node against three (scripts/cluster.sh: behind HAProxy, on one PostgreSQL database), on
# this machine, release build:
#  - ingest, 4 clients x batches of 100, for SECONDS (through HAProxy for three nodes);
#  - an event's intervention on the SSE stream while a simulated classroom posts RATE
#    statements/s: on the node that took the event (one node), and on another node (three).
# On one machine the three nodes share its cores: the ratio shows the cluster's overhead, not
# how it scales across machines.
# Usage: scripts/cluster-bench.sh [seconds=20] [rate=2000] [rounds=500]
set -euo pipefail
cd "$(dirname "$0")/.."
B=target/release/learnpulse
secs=${1:-20}; rate=${2:-2000}; rounds=${3:-500}
pg=postgres://postgres@127.0.0.1:5432
work=$(mktemp -d)
for db in lp_bench_one lp_bench_three; do psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $db" > /dev/null 2>&1; done
summary() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(' '.join(f'{k}={d[k]}' for k in sys.argv[2:]))" "$@"; }

# One node.
"$B" serve --data-dir "$work/one" --storage "$pg/lp_bench_one" --listen 127.0.0.1:8771 > "$work/one.log" 2>&1 &
one=$!
until curl -sf http://127.0.0.1:8771/readyz > /dev/null; do sleep 0.1; done
token=$(grep -m1 -oE "lpk_[0-9a-f]+\.[A-Za-z0-9_-]+" "$work/one.log")
"$B" bench ingest --url http://127.0.0.1:8771 --key "$token" --clients 4 --batch 100 --seconds "$secs" > "$work/one-ingest.json"
echo "1 node, ingest: $(summary "$work/one-ingest.json" statements_per_second latency_ms_p99)"
"$B" simulate --url http://127.0.0.1:8771 --key "$token" --learners 2000 --rate "$rate" > /dev/null 2>&1 &
sim=$!
sleep 2
"$B" bench interventions --url http://127.0.0.1:8771 --key "$token" --rounds "$rounds" > "$work/one-sse.json"
kill $sim; wait $sim 2> /dev/null || true
echo "1 node, event -> SSE at $rate statements/s: $(summary "$work/one-sse.json" ack_to_stream_ms_p50 ack_to_stream_ms_p99 send_to_stream_ms_p99)"
kill -TERM $one; wait $one 2> /dev/null || true

# Three nodes behind HAProxy.
LEARNPULSE_STORAGE="$pg/lp_bench_three" LP_PORT=8780 scripts/cluster.sh start "$work/three" > "$work/three.out"
token=$(grep -m1 -oE "lpk_[0-9a-f]+\.[A-Za-z0-9_-]+" "$work/three.out")
"$B" bench ingest --url http://127.0.0.1:8780 --key "$token" --clients 4 --batch 100 --seconds "$secs" > "$work/three-ingest.json"
echo "3 nodes via HAProxy, ingest: $(summary "$work/three-ingest.json" statements_per_second latency_ms_p99)"
"$B" simulate --url http://127.0.0.1:8781,http://127.0.0.1:8782,http://127.0.0.1:8783 --key "$token" \
  --learners 2000 --rate "$rate" > /dev/null 2>&1 &
sim=$!
sleep 2
"$B" bench interventions --url http://127.0.0.1:8781 --stream-url http://127.0.0.1:8782 --key "$token" --rounds "$rounds" > "$work/three-sse.json"
kill $sim; wait $sim 2> /dev/null || true
echo "3 nodes, event at node 1 -> SSE at node 2, at $rate statements/s: $(summary "$work/three-sse.json" ack_to_stream_ms_p50 ack_to_stream_ms_p99 send_to_stream_ms_p99)"
LP_PORT=8780 scripts/cluster.sh stop "$work/three" > /dev/null
echo "data and logs in $work"
