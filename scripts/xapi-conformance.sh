#!/usr/bin/env bash
# Runs the ADL LRS conformance suite against a freshly started learnpulse, on a tenant whose
# policy echoes statements exactly (keep_raw_identity, no redaction), for each xAPI version.
#
# Usage: scripts/xapi-conformance.sh [versions="2.0.0 1.0.3"] [grep pattern]
#   XAPI_SUITE      the suite's folder [shared/xapi-conformance-suite beside this checkout, or
#                   beside the repository it was cloned from]
#   LEARNPULSE_BIN  the binary [target/debug/learnpulse]
#   POLICY          the tenant's privacy policy [exact echo]; e.g. '{}' for the default
#   STORAGE         a PostgreSQL URL to run on instead of the embedded SQLite; each version gets
#                   its own database, named after this one with the version appended
# The suite is copied to target/xapi-conformance and installed there with npm once. Prints one
# line of JSON per version ({version, total, passed, failed, log}) and each failing test's title
# and error to target/xapi-conformance/failures-VERSION.txt. Exits 1 if any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=${1:-2.0.0 1.0.3}
pattern=${2:-}
# The suite comes with the product brief, in `shared/` beside the checkout. A clean clone made
# elsewhere (CI's) finds it beside the repository it was cloned from.
find_suite() {
  local origin
  origin=$(git config --get remote.origin.url 2>/dev/null || true)
  for root in .. "$origin/.."; do
    if [ -f "$root/shared/xapi-conformance-suite/package.json" ]; then
      echo "$root/shared/xapi-conformance-suite"
      return
    fi
  done
}
suite_src=${XAPI_SUITE:-$(find_suite)}
if [ -z "$suite_src" ] || [ ! -f "$suite_src/package.json" ]; then
  echo "the ADL conformance suite was not found: set XAPI_SUITE to its folder" >&2
  exit 2
fi
bin=${LEARNPULSE_BIN:-target/debug/learnpulse}
work=target/xapi-conformance
policy=${POLICY:-'{"keep_raw_identity": true, "redact_free_text": false, "vault": false,
 "lawful_basis": "public_task", "on_missing_consent": "reject", "drop_fields": [],
 "cognitive_data_roles": ["teacher", "tutor"], "k_anonymity": 5, "dp_epsilon_per_analyst": 10.0,
 "retention_days": null}'}

if [ ! -d "$work/node_modules" ]; then
  rm -rf "$work"
  mkdir -p "$(dirname "$work")"
  cp -r "$suite_src" "$work"
  chmod -R u+w "$work"
  (cd "$work" && npm install --no-audit --no-fund --loglevel=error)
fi

failed_any=0
for version in $versions; do
  data=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  storage=()
  if [ -n "${STORAGE:-}" ]; then storage=(--storage "${STORAGE}_${version//./}"); fi
  "$bin" serve --data-dir "$data" --listen "127.0.0.1:$port" --xapi-version "$version" \
    "${storage[@]}" > "$data/serve.log" 2>&1 &
  server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  for _ in $(seq 1 200); do grep -q "lpk_" "$data/serve.log" && break; sleep 0.1; done
  admin=$(grep -m1 -oE "lpk_[0-9a-f]+\.[A-Za-z0-9_-]+" "$data/serve.log")
  base="http://127.0.0.1:$port"
  curl -fsS -X PUT "$base/v1/privacy/policy" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d "$policy" > /dev/null
  key=$(curl -fsS -X POST "$base/v1/admin/keys" -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"role": "ingest", "label": "conformance"}')
  key_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"].split(".")[0])' <<< "$key")
  secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["token"].split(".",1)[1])' <<< "$key")
  args=(-e "$base/xAPI" -x "$version" -a -u "$key_id" -p "$secret")
  if [ -n "$pattern" ]; then args+=(-g "$pattern"); fi
  # The runner forks the tests: its own process group, so that all of it can be stopped.
  (cd "$work" && setsid node bin/console_runner.js "${args[@]}" > "run-$version.out" 2>&1) || true
  kill $server 2>/dev/null || true
  wait $server 2>/dev/null || true
  rm -rf "$data"
  log=$(grep -oE "Full run log written to .*" "$work/run-$version.out" | sed 's/Full run log written to //' | tr -d '[:space:]' || true)
  python3 - "$work" "$version" "$log" <<'EOF'
import json, sys, os
work, version, log = sys.argv[1:4]
if not log or not os.path.exists(log):
    out = open(os.path.join(work, f"run-{version}.out"), errors="replace").read()
    print(json.dumps({"version": version, "error": "the runner wrote no log", "output": out[-2000:]}))
    sys.exit(0)
run = json.load(open(log))
failures = []
def walk(node, path):
    title = " / ".join(p for p in path + [node.get("title", "")] if p)
    if node.get("status") == "failed" and not node.get("tests"):
        failures.append(f"{title}\n    {node.get('error', '')}")
    for t in node.get("tests", []) or []:
        walk(t, path + [node.get("title", "")])
walk(run["log"], [])
open(os.path.join(work, f"failures-{version}.txt"), "w").write("\n".join(failures) + "\n")
s = run["summary"]
print(json.dumps({"version": version, "total": s["total"], "passed": s["passed"], "failed": s["failed"], "log": log}))
EOF
  if ! python3 -c "import json,sys; s=json.load(open('$log'))['summary']; sys.exit(0 if s['failed']==0 and s['passed']==s['total'] and s['total']>0 else 1)" 2>/dev/null; then
    failed_any=1
  fi
done
exit $failed_any
