#!/usr/bin/env bash
# The 80/20 split by learner of supersmall_with_timing.csv (the given log with item ids and
# response times) into target/kt-data, made once: what the knowledge-tracing table and the
# load-index fit both use. Usage: DATA=../shared/data scripts/split-supersmall.sh
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
mkdir -p target/kt-data
if [ ! -f target/kt-data/supersmall-test.csv ]; then
  python3 scripts/split-by-learner.py "$data/assist2009/supersmall_with_timing.csv" \
    target/kt-data/supersmall-train.csv target/kt-data/supersmall-test.csv
fi
