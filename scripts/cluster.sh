#!/usr/bin/env bash
# A three-node learnpulse installation on this machine: three nodes on loopback ports sharing
# one PostgreSQL database, and HAProxy in front (deploy/haproxy.cfg), the topology the README
# draws. PostgreSQL must be running; the database is created on first start.
#
# Usage: scripts/cluster.sh start [DIR]    start (after cargo build --release); DIR: ./cluster
#        scripts/cluster.sh stop [DIR]     stop HAProxy and the nodes (gracefully)
# Environment:
#   LEARNPULSE_STORAGE  the database [postgres://postgres@127.0.0.1:5432/learnpulse_cluster]
#   LP_PORT             HAProxy's port; the nodes listen on the next three [8760]
#   LEARNPULSE_BIN      the binary [target/release/learnpulse]
# The first start prints the admin token (also in DIR/node1.log); DIR holds the master key,
# which every node needs, the logs and the pid files.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LEARNPULSE_BIN:-target/release/learnpulse}
command=${1:-start}
dir=${2:-cluster}
storage=${LEARNPULSE_STORAGE:-postgres://postgres@127.0.0.1:5432/learnpulse_cluster}
port=${LP_PORT:-8760}

case "$command" in
start)
  command -v haproxy > /dev/null || { echo "haproxy is missing (apt-get install haproxy)" >&2; exit 1; }
  mkdir -p "$dir"
  for i in 1 2 3; do
    "$bin" serve --data-dir "$dir" --storage "$storage" --listen "127.0.0.1:$((port + i))" \
      >> "$dir/node$i.log" 2>&1 &
    echo $! > "$dir/node$i.pid"
    # One at a time: the first start of an empty database bootstraps its admin key.
    for _ in $(seq 1 600); do
      curl -sf "http://127.0.0.1:$((port + i))/readyz" > /dev/null && break
      kill -0 "$(cat "$dir/node$i.pid")" 2> /dev/null || { echo "node $i failed: see $dir/node$i.log" >&2; exit 1; }
      sleep 0.1
    done
  done
  LP_FRONT="127.0.0.1:$port" LP_NODE1="127.0.0.1:$((port + 1))" LP_NODE2="127.0.0.1:$((port + 2))" \
    LP_NODE3="127.0.0.1:$((port + 3))" haproxy -D -p "$dir/haproxy.pid" -f deploy/haproxy.cfg
  echo "learnpulse cluster: http://127.0.0.1:$port (HAProxy) -> nodes on ports $((port + 1))-$((port + 3)), storage ${storage%%\?*}"
  grep -h -m1 "token:" "$dir"/node1.log || true
  ;;
stop)
  [ -f "$dir/haproxy.pid" ] && kill "$(cat "$dir/haproxy.pid")" 2> /dev/null || true
  for i in 1 2 3; do
    if [ -f "$dir/node$i.pid" ]; then
      pid=$(cat "$dir/node$i.pid")
      kill -TERM "$pid" 2> /dev/null || true
      while kill -0 "$pid" 2> /dev/null; do sleep 0.1; done
      rm -f "$dir/node$i.pid"
    fi
  done
  rm -f "$dir/haproxy.pid"
  echo "stopped"
  ;;
*)
  echo "usage: scripts/cluster.sh start|stop [DIR]" >&2
  exit 2
  ;;
esac
