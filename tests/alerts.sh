#!/usr/bin/env bash
# alerts.sh -- checks contrib/prometheus/alerts.yml with promtool: the rules
# parse (`promtool check rules`) and their unit tests pass (`promtool test
# rules` on alerts_test.yml: every alert fires on its input series and stays
# quiet on the series beside them). Prints the SC-RESULT line tests/run.sh
# adds up; skipped when promtool (Debian's prometheus package) is missing.
set -u
cd "$(dirname "$0")/.." || exit 1
if ! command -v promtool >/dev/null; then
  echo "SKIP: the alert rules need promtool (apt-get install prometheus)"
  echo "SC-RESULT passed=0 failed=0 skipped=2"
  exit 0
fi
passed=0 failed=0
for cmd in "check rules contrib/prometheus/alerts.yml" "test rules contrib/prometheus/alerts_test.yml"; do
  # shellcheck disable=SC2086 # the words of $cmd are promtool's arguments
  if out=$(promtool $cmd 2>&1); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: promtool $cmd"; printf '%s\n' "$out" | head -n 60
  fi
done
echo "SC-RESULT passed=$passed failed=$failed skipped=0"
[ "$failed" = 0 ]
