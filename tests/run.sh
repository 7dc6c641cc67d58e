#!/usr/bin/env bash
# run.sh -- runs every test binary given on the command line, adds up the
# "SC-RESULT passed=N failed=N skipped=N" line each prints, and ends with the
# one summary line CI reads. A binary that crashes or prints no result line
# counts as one failure.
set -u
passed=0 failed=0 skipped=0
for bin in "$@"; do
  name=${bin#*/tests/}
  out=$("$bin" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep '^SC-RESULT ' | tail -n 1)
  if [ -z "$line" ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "FAIL: $name exited $rc without a result line"
    failed=$((failed + 1))
    continue
  fi
  p=$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")
  s=$(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  if [ "$f" != 0 ] || [ "$rc" != 0 ]; then
    printf '%s\n' "$out" | grep -v '^SC-RESULT' | tail -n 40
    [ "$f" = 0 ] && failed=$((failed + 1))
  fi
  printf '%-28s %3s passed, %s failed, %s skipped\n' "$name" "$p" "$f" "$s"
  printf '%s\n' "$out" | grep '^SKIP:' || true
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
