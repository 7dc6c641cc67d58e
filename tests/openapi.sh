#!/usr/bin/env bash
# openapi.sh -- checks docs/openapi.yaml: Redocly's linter with redocly.yaml
# (any error or warning fails), then tests/openapi_check.py, which replays the
# README's examples (native and proxy) and its own probes against real
# servers (the proxy in front of tests/mock_upstream.py; a fleet node when
# redis-server is installed, else those probes are skipped) and validates
# every request and answer against the spec. Prints the SC-RESULT line
# tests/run.sh adds up. The lint is skipped without node_modules (make
# deps-node); the replay without the default model (make model), or without
# both node_modules and PyYAML to read the spec.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
redocly=node_modules/.bin/redocly
model="${SEMCACHED_MODEL_CACHE:-$HOME/.cache/semcached}/glove-100d.scglove"
tmp=$(mktemp -d /tmp/semcached-openapi-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0

# 1. Lint. The JSON report counts errors and warnings alike.
if command -v node >/dev/null && [ -x "$redocly" ]; then
  "$redocly" lint --config redocly.yaml --format json docs/openapi.yaml >"$tmp/lint.json" 2>"$tmp/lint.err"
  if python3 - "$tmp/lint.json" <<'PY'; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
import json, sys
try:
    report = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit("FAIL: redocly lint wrote no JSON report")
for p in report["problems"]:
    loc = p["location"][0]["pointer"] if p.get("location") else ""
    print(f"FAIL: redocly lint {p['severity']} {p['ruleId']} at {loc}: {p['message']}")
sys.exit(1 if report["problems"] else 0)
PY
  # The checker reads the spec as JSON, so it needs no YAML parser.
  "$redocly" bundle docs/openapi.yaml -o "$tmp/openapi.json" >/dev/null 2>&1 && spec="$tmp/openapi.json"
else
  echo "SKIP: redocly lint needs node and node_modules (make deps-node)"
  skipped=$((skipped + 1))
  python3 -c 'import yaml' 2>/dev/null && spec=docs/openapi.yaml
fi

# 2. The spec against the server.
if [ -z "${spec:-}" ]; then
  echo "SKIP: replaying the README against the spec needs node_modules or PyYAML to read it"
  skipped=$((skipped + 1))
elif [ ! -f "$model" ]; then
  echo "SKIP: replaying the README against the spec needs the default model ($model); run make model"
  skipped=$((skipped + 1))
else
  out=$(python3 tests/openapi_check.py --spec "$spec" --server "$BUILD/semcached" --model "$model" 2>&1)
  printf '%s\n' "$out" | grep -v '^SC-RESULT'
  line=$(printf '%s\n' "$out" | grep '^SC-RESULT ' | tail -n 1)
  if [ -z "$line" ]; then
    failed=$((failed + 1))
  else
    passed=$((passed + $(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")))
    failed=$((failed + $(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line")))
    skipped=$((skipped + $(sed -E 's/.*skipped=([0-9]+).*/\1/' <<<"$line")))
  fi
fi
echo "SC-RESULT passed=$passed failed=$failed skipped=$skipped"
[ "$failed" = 0 ]
