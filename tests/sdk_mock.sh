#!/usr/bin/env bash
# sdk_mock.sh -- runs the official-SDK tests (tests/sdk/*.test.mjs, node's
# test runner) against tests/mock_upstream.py started on a free loopback port,
# and prints the SC-RESULT line tests/run.sh adds up (from node's TAP summary).
# The same tests will run against semcached's proxy with SC_EXPECT_CACHE=1.
# Skipped when node or ./node_modules (make deps-node) is missing.
set -u
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || [ ! -f node_modules/openai/package.json ] ||
   [ ! -f node_modules/@anthropic-ai/sdk/package.json ]; then
  echo "SKIP: the SDK tests need node and node_modules (make deps-node)"
  echo "SC-RESULT passed=0 failed=0 skipped=1"
  exit 0
fi
ready=$(mktemp /tmp/sc-sdk-mock-XXXXXX)
python3 tests/mock_upstream.py --port 0 >"$ready" 2>"$ready.err" &
mock=$!
trap 'kill $mock 2>/dev/null; wait $mock 2>/dev/null; rm -f "$ready" "$ready.err"' EXIT
for _ in $(seq 100); do grep -q '^READY ' "$ready" && break; sleep 0.05; done
port=$(awk '/^READY /{print $2}' "$ready")
if [ -z "$port" ]; then
  echo "FAIL: tests/mock_upstream.py did not start"
  echo "SC-RESULT passed=0 failed=1 skipped=0"
  exit 1
fi
out=$(SC_OPENAI_BASE_URL="http://127.0.0.1:$port/v1" SC_ANTHROPIC_BASE_URL="http://127.0.0.1:$port" \
      SC_MOCK_URL="http://127.0.0.1:$port" node --test --test-reporter=tap tests/sdk/*.test.mjs 2>&1)
rc=$?
count() { printf '%s\n' "$out" | sed -n "s/^# $1 \([0-9]*\)$/\1/p" | tail -n 1; }
passed=$(count pass) failed=$(count fail) skipped=$(count skipped) cancelled=$(count cancelled)
if [ -z "$passed" ] || [ -z "$failed" ]; then
  printf '%s\n' "$out" | tail -n 40
  echo "FAIL: no summary from node --test (exit $rc)"
  echo "SC-RESULT passed=0 failed=1 skipped=0"
  exit 1
fi
failed=$((failed + ${cancelled:-0}))
[ "$failed" = 0 ] && [ "$rc" != 0 ] && failed=1
if [ "$failed" != 0 ]; then
  printf '%s\n' "$out" | grep -B2 -A30 '^not ok' | head -n 120
  echo "-- the mock's stderr:"; tail -n 20 "$ready.err"
fi
echo "SC-RESULT passed=$passed failed=$failed skipped=${skipped:-0}"
[ "$failed" = 0 ]
