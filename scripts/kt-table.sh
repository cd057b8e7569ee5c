#!/usr/bin/env bash
# The knowledge-tracing table of the README: every model on every given data set, fit on the
# training file and scored one step ahead on the test file, plus 5-fold cross-validation by
# learner on the training file (how the default model is chosen).
#
# Usage: scripts/kt-table.sh   (LEARNPULSE_BIN [target/release/learnpulse], DATA [../shared/data])
# supersmall_with_timing.csv (the set with item ids) is split 80/20 by learner first
# (scripts/split-by-learner.py, into target/kt-data).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LEARNPULSE_BIN:-target/release/learnpulse}
data=${DATA:-../shared/data}
DATA="$data" scripts/split-supersmall.sh
sets=(
  "assist2009|$data/assist2009/train.csv|$data/assist2009/test.csv"
  "statics|$data/statics/train.csv|$data/statics/test.csv"
  "supersmall (items)|target/kt-data/supersmall-train.csv|target/kt-data/supersmall-test.csv"
)
echo "| data set | model | test AUC | test RMSE | fit (s) | 5-fold CV AUC on train |"
echo "|---|---|---|---|---|---|"
for set in "${sets[@]}"; do
  IFS='|' read -r name train test <<< "$set"
  cv=$("$bin" kt cv --train "$train" 2> /dev/null)
  for model in bkt bkt-forget logistic; do
    "$bin" kt eval --train "$train" --test "$test" --model "$model" 2> /dev/null |
      python3 -c "
import json, sys
d = json.load(sys.stdin)
cv = {m['model']: m['auc'] for m in json.loads(sys.argv[1])['models']}
key = '$model'.replace('-', '')
print(f\"| $name | \`$model\` | {d['auc']:.4f} | {d['rmse']:.4f} | {d['fit_seconds']:.2f} | {cv[key]:.4f} |\")
" "$cv"
  done
done
