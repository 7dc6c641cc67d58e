#!/usr/bin/env bash
# ui.sh -- the dashboard (/ui) end to end: a semcached with --auth-token and
# the default GloVe model on a free loopback port, then tests/ui_check.js
# (node): the page routes over HTTP, known traffic, and headless Chromium
# (Debian's chromium, driven by playwright-core) loading the page. The
# screenshot is kept as build/artifacts/ui.png. The server is stopped by pid
# on any exit. Skipped without node or the model; the browser part alone is
# skipped without chromium or playwright-core.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
model="${SEMCACHED_MODEL_CACHE:-$HOME/.cache/semcached}/glove-100d.scglove"
skip() {
  echo "SKIP: $*"
  echo "SC-RESULT passed=0 failed=0 skipped=1"
  exit 0
}
command -v node >/dev/null || skip "the dashboard test needs node (make deps-node)"
[ -f "$model" ] || skip "the dashboard test needs the default model ($model); run make model"
chromium=$(command -v chromium || true)

. tests/harness.bash
harness_init semcached-ui
port=$(free_port)
token=ui-test-$RANDOM$RANDOM
SEMCACHED_AUTH_TOKEN=$token "$BUILD/semcached" --port "$port" --data-dir "$tmp/data" --log-level warn \
  --model "$model" 2>"$tmp/semcached.log" &
pids+=($!)
wait_ready "$port" semcached # behind the token, /readyz still answers
mkdir -p "$BUILD/artifacts"
node tests/ui_check.js "$port" "$token" "$BUILD/artifacts/ui.png" "$chromium"
rc=$?
[ $rc = 0 ] || show_logs
exit $rc
