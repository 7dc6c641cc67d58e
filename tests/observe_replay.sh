#!/usr/bin/env bash
# observe_replay.sh -- the short version of the QQP replay through the proxy
# (bench/qqp_replay.py --proxy, against tests/mock_upstream.py): 150 pairs
# (300 lookups) per policy, with GloVe (when $SEMCACHED_MODEL_CACHE has it)
# and potion-base-2M (../shared/models). For every policy, model calls per
# 1,000 lookups (client misses + the server's paid validations, counted at
# the mock) must be at or below the no-cache figure; error-budget policies
# must keep their budget and learn from free observations of misses;
# paid validations must stay within validation_budget (5 %) of the hits plus
# the minimum rate. Skipped without ../shared. Prints the SC-RESULT line.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
PAIRS=$SHARED/data/qqp/qqp_dev.tsv
models=()
glove=${SEMCACHED_MODEL_CACHE:-$HOME/.cache/semcached}/glove-100d.scglove
[ -f "$glove" ] && models+=("$glove")
[ -d "$SHARED/models/potion-base-2M" ] && models+=("$SHARED/models/potion-base-2M")
if [ ! -f "$PAIRS" ] || [ ${#models[@]} = 0 ]; then
  echo "SKIP: needs $PAIRS and a model (GloVe or ../shared/models/potion-base-2M)"
  echo "SC-RESULT passed=0 failed=0 skipped=1"
  exit 0
fi
out=$(mktemp /tmp/semcached-observe-XXXXXX)
trap 'rm -f "$out"' EXIT
for m in "${models[@]}"; do
  timeout 120 python3 bench/qqp_replay.py "$BUILD/semcached" "$m" "$PAIRS" 150 --proxy \
    nocache exact fixed:0.90 budget:default budget:0.05 >>"$out" || {
    echo "FAIL: the replay with $m did not finish"
    echo "SC-RESULT passed=0 failed=1 skipped=0"
    exit 1
  }
done
python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
passed = failed = 0
def check(ok, what):
    global passed, failed
    print(("ok   " if ok else "FAIL ") + what)
    passed += ok
    failed += not ok
for r in rows:
    name = "%s %s" % (r["model"], r["policy"])
    nocache = [x for x in rows if x["model"] == r["model"] and x["policy"] == "proxy nocache"][0]
    check(r["model_calls_per_1000"] <= nocache["model_calls_per_1000"],
          "%s: %.1f model calls per 1,000 lookups <= no cache %.1f"
          % (name, r["model_calls_per_1000"], nocache["model_calls_per_1000"]))
    hits = r["exact_hits"] + r["semantic_hits"]
    paid = r["paid"] or 0
    check(paid <= 0.05 * hits + 0.01 * hits + 2,
          "%s: %d paid validations for %d hits (budget 5 %% + 1 %% minimum)" % (name, paid, hits))
    if r["policy"].startswith("proxy budget"):
        budget = 0.02 if r["policy"].endswith("default") else 0.05
        check(r["semantic_hits"] == 0 or r["wrong"] <= budget * r["semantic_hits"] + 1,
              "%s: %d wrong of %d semantic hits (budget %g)" % (name, r["wrong"], r["semantic_hits"], budget))
        # (candidates a guard refuses are neither served nor observed: fewer than the pairs)
        check((r["observed"] or 0) >= 50 and r["budget_observations"] == r["observed"],
              "%s: %s free observations feed the learner (%s)" % (name, r["observed"], r["budget_observations"]))
print("SC-RESULT passed=%d failed=%d skipped=0" % (passed, failed))
PY
