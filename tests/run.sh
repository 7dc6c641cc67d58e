#!/usr/bin/env bash
# run.sh -- runs every test binary given on the command line, adds up the
# "SC-RESULT passed=N failed=N skipped=N" line each prints, and ends with the
# one summary line CI reads. A binary that crashes or prints no result line
# counts as one failure. Before that line, a recap names every failing binary
# with its last failure lines, so a CI log's tail alone says what failed.
set -u
passed=0 failed=0 skipped=0
recap=""
# The lines of a failing binary's output worth repeating: Check's F/E lines,
# FAIL: lines, node's "not ok" and !== lines, sanitizer and start-up reports;
# the plain tail when none match
# (lines cut at 300 characters: a FAIL line may carry a whole build log).
add_recap() { # NAME OUTPUT WHY
  local lines
  lines=$(printf '%s\n' "$2" | grep -E ':[0-9]+:[FE]:|^FAIL|^ *not ok |!==|[Aa]ssert|ERROR: |runtime error|SUMMARY: |exited during start-up|was not ready' | tail -n 15 | cut -c1-300)
  [ -n "$lines" ] || lines=$(printf '%s\n' "$2" | grep -v '^SC-RESULT' | tail -n 15 | cut -c1-300)
  recap+="== $1 ($3)"$'\n'"$lines"$'\n'
}
for bin in "$@"; do
  name=${bin#*/tests/}
  out=$("$bin" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep '^SC-RESULT ' | tail -n 1)
  if [ -z "$line" ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "FAIL: $name exited $rc without a result line"
    failed=$((failed + 1))
    add_recap "$name" "$out" "exited $rc without a result line"
    continue
  fi
  p=$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
  s=$(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
    printf '%s\n' "$out" | grep -v '^SC-RESULT' | tail -n 40
    [ "$f" = 0 ] && failed=$((failed + 1))
    add_recap "$name" "$out" "$f failed, exit $rc"
  fi
  printf '%-28s %3s passed, %s failed, %s skipped\n' "$name" "$p" "$f" "$s"
  printf '%s\n' "$out" | grep '^SKIP:' || true
done
if [ -n "$recap" ]; then
  echo "---- failed tests (recap) ----"
  printf '%s' "$recap"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
