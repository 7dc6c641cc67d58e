#!/usr/bin/env bash
# sdk_proxy.sh -- the official-SDK tests (tests/sdk/*.test.mjs) through
# semcached's proxy: tests/mock_upstream.py and semcached (exact-only, its
# upstreams the mock) on free loopback ports with a temporary data
# directory, SC_EXPECT_CACHE=1 so that every question asked twice must be a
# miss then a hit with one upstream call; then the proxy's own SDK tests
# (tests/sdk/proxy/), which also get a semcached whose upstream is down
# (SC_PROXY_DOWN_URL). Everything started is stopped by pid. Prints the
# SC-RESULT line tests/run.sh adds up; skipped without node or node_modules.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
if ! command -v node >/dev/null || [ ! -f node_modules/openai/package.json ] ||
   [ ! -f node_modules/@anthropic-ai/sdk/package.json ]; then
  echo "SKIP: the SDK tests need node and node_modules (make deps-node)"
  echo "SC-RESULT passed=0 failed=0 skipped=1"
  exit 0
fi
. tests/harness.bash
harness_init sc-sdk-proxy
start_mock

# The proxy, and one whose upstream is a port nothing listens on. The tests
# count upstream calls (one per question asked twice): no default error
# budget, whose sampled re-inference of a hit (about 1 in 100 hits) is one
# more upstream call with the same text ("upstream calls ... 2 !== 1").
start() { # name port upstream
  "$BUILD/semcached" --port "$2" --data-dir "$tmp/$1" --threads 2 --log-level warn \
    --proxy-max-error-rate 0 --openai-base-url "$3" --anthropic-base-url "$3" >"$tmp/$1.log" 2>&1 &
  pids+=($!)
  wait_ready "$2" "semcached ($1)"
}
port=$(free_port) down=$(free_port) closed=$(free_port)
start proxy "$port" "http://127.0.0.1:$mock/v1"
start down "$down" "http://127.0.0.1:$closed/v1"

out=$(SC_OPENAI_BASE_URL="http://127.0.0.1:$port/v1" SC_ANTHROPIC_BASE_URL="http://127.0.0.1:$port" \
      SC_MOCK_URL="http://127.0.0.1:$mock" SC_EXPECT_CACHE=1 SC_PROXY_DOWN_URL="http://127.0.0.1:$down" \
      node --test --test-reporter=tap tests/sdk/*.test.mjs tests/sdk/proxy/*.test.mjs 2>&1)
tap_result "$out" $?
