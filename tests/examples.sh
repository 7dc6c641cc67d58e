#!/usr/bin/env bash
# examples.sh -- runs every program in examples/ against a real semcached:
# tests/mock_upstream.py and semcached (its upstreams the mock, GloVe from
# $SEMCACHED_MODEL_CACHE as --model when it is there) on free loopback ports
# with a temporary data directory. An example passes when it exits 0; a
# "SKIP:" line it prints (semantic lookup without the model) counts as a
# skip; the Node ones are skipped without node (and, for the SDK ones,
# node_modules). Everything started is stopped by pid. Prints the SC-RESULT
# line tests/run.sh adds up.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
model="${SEMCACHED_MODEL_CACHE:-$HOME/.cache/semcached}/glove-100d.scglove"
. tests/harness.bash
harness_init sc-examples
passed=0 failed=0 skipped=0
start_mock

args=()
if [ -f "$model" ]; then
  args=(--model "$model")
else
  echo "SKIP: semantic lookups need the default model ($model); run make model"
fi
port=$(free_port)
# No default error budget: its sampled re-inference of a hit would be an
# upstream call more than the count checked below.
"$BUILD/semcached" --port "$port" --data-dir "$tmp/data" --threads 2 --log-level warn "${args[@]}" \
  --proxy-max-error-rate 0 \
  --openai-base-url "http://127.0.0.1:$mock/v1" --anthropic-base-url "http://127.0.0.1:$mock/v1" \
  >"$tmp/semcached.log" 2>&1 &
pids+=($!)
wait_ready "$port" semcached

export SEMCACHED_URL="http://127.0.0.1:$port" OPENAI_API_KEY=sk-example-openai \
  ANTHROPIC_API_KEY=sk-example-anthropic
sdk=0
[ -f node_modules/openai/package.json ] && [ -f node_modules/@anthropic-ai/sdk/package.json ] && sdk=1
node=0
command -v node >/dev/null && node=1

# run NAME NEEDS COMMAND...: NEEDS is "" or the reason it cannot run here.
run() {
  local name=$1 missing=$2
  shift 2
  if [ -n "$missing" ]; then
    echo "SKIP: $name needs $missing"
    skipped=$((skipped + 1))
    return
  fi
  local out rc
  out=$(timeout 120 "$@" 2>&1)
  rc=$?
  if [ "$rc" != 0 ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "FAIL: $name exited $rc"
    failed=$((failed + 1))
  elif printf '%s\n' "$out" | grep -q '^SKIP:'; then
    printf '%s\n' "$out" | grep '^SKIP:' | sed "s|^SKIP: |SKIP: $name: |"
    passed=$((passed + 1)) skipped=$((skipped + 1))
  else
    passed=$((passed + 1))
  fi
}
no_node=$([ "$node" = 1 ] || echo "node")
no_sdk=$([ "$node" = 1 ] && [ "$sdk" = 1 ] || echo "node and node_modules (make deps-node)")
run examples/python/native.py "" python3 examples/python/native.py
run examples/node/native.mjs "$no_node" node examples/node/native.mjs
run examples/node/proxy_openai.mjs "$no_sdk" node examples/node/proxy_openai.mjs
run examples/node/proxy_anthropic.mjs "$no_sdk" node examples/node/proxy_anthropic.mjs

# Hits never reached the upstream: each proxy example asks it 3 times (the
# miss, Cache-Control: no-cache, another namespace) of its 5 calls.
if [ "$sdk" = 1 ] && [ "$node" = 1 ]; then
  calls=$(curl -sf "127.0.0.1:$mock/stats" | python3 -c 'import json,sys; c=json.load(sys.stdin)["calls"]
print(c.get("/v1/chat/completions", 0), c.get("/v1/messages", 0))')
  if [ "$calls" = "3 3" ]; then
    passed=$((passed + 1))
  else
    echo "FAIL: upstream calls (chat completions, messages) were $calls, expected 3 3"
    failed=$((failed + 1))
  fi
fi

# A rerun against the same server must pass too (each run works in namespaces
# of its own), and the examples remove what they stored.
run "examples/python/native.py (rerun)" "" python3 examples/python/native.py
entries=$(curl -sf "127.0.0.1:$port/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
if [ "$entries" = 0 ]; then
  passed=$((passed + 1))
else
  echo "FAIL: the examples left $entries entries behind"
  failed=$((failed + 1))
fi
[ "$failed" = 0 ] || show_logs
echo "SC-RESULT passed=$passed failed=$failed skipped=$skipped"
[ "$failed" = 0 ]
