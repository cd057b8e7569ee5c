#!/usr/bin/env bash
# Checks the operator files in deploy/: the Prometheus alerting rules (promtool's own check and
# the unit tests in learnpulse-alerts.test.yml), then the Grafana dashboard's structure, and that
# every learnpulse_* metric the dashboard and the rules query is one the server registers
# (scripts/check-dashboard.py). Installs nothing: promtool comes from Debian's `prometheus`
# package, which .ci/run installs.
set -euo pipefail
cd "$(dirname "$0")/.."

rules=deploy/prometheus/learnpulse-alerts.yml
tests=deploy/prometheus/learnpulse-alerts.test.yml
dashboard=deploy/grafana/learnpulse-dashboard.json

if ! command -v promtool >/dev/null; then
  echo "error: promtool is missing (Debian/Ubuntu: apt-get install -y prometheus, which provides /usr/bin/promtool)" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "error: python3 is missing" >&2; exit 1; }

echo "== promtool check rules"
promtool check rules "$rules"
echo "== promtool test rules"
promtool test rules "$tests"
echo "== dashboard and metric names"
python3 scripts/check-dashboard.py "$dashboard" --rules "$rules"

alerts="$(grep -c '^ *- alert:' "$rules")"
tested="$(grep -c '^ *- name:' "$tests")"
echo "ops checks passed: $alerts alerts, $tested test groups, dashboard $dashboard ($(promtool --version 2>&1 | sed -n '1s/^promtool, version \([^ ]*\).*/promtool \1/p'))"
