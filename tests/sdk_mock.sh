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
. tests/harness.bash
harness_init sc-sdk-mock
start_mock
out=$(SC_OPENAI_BASE_URL="http://127.0.0.1:$mock/v1" SC_ANTHROPIC_BASE_URL="http://127.0.0.1:$mock" \
      SC_MOCK_URL="http://127.0.0.1:$mock" node --test --test-reporter=tap tests/sdk/*.test.mjs 2>&1)
tap_result "$out" $?
