#!/usr/bin/env bash
# The load-index fit of the README: weights fitted on 80 % of supersmall_with_timing.csv's
# learners (the only given log with response times), cross-validated by learner there, and
# scored on the other 20 %.
#
# Usage: scripts/load-fit.sh   (LEARNPULSE_BIN [target/release/learnpulse], DATA [../shared/data])
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LEARNPULSE_BIN:-target/release/learnpulse}
data=${DATA:-../shared/data}
DATA="$data" scripts/split-supersmall.sh
"$bin" kt load-fit --train target/kt-data/supersmall-train.csv \
  --test target/kt-data/supersmall-test.csv
