# Sourced by the benchmark scripts: starts the release server on a fresh data directory.
# `fresh_server PORT` sets `d` (the directory), `pid` and `token` (the bootstrap admin key).
fresh_server() {
  d=$(mktemp -d)
  "${LEARNPULSE_BIN:-target/release/learnpulse}" serve --data-dir "$d" --listen "127.0.0.1:$1" > "$d/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q "token" "$d/serve.log" && break; sleep 0.1; done
  token=$(grep -m1 -oE "lpk_[0-9a-f]+\.[A-Za-z0-9_-]+" "$d/serve.log")
}
