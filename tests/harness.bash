# harness.bash -- sourced by the test scripts that start servers (not a test
# itself: tests/*.sh are). harness_init makes $tmp; what a script starts goes
# in pids, killed and waited for on exit, when $tmp is removed too. fail()
# shows every $tmp/*.log and prints a failed SC-RESULT line.

harness_init() { # PREFIX
  tmp=$(mktemp -d "/tmp/$1-XXXXXX")
  pids=()
  trap harness_cleanup EXIT
}

harness_cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}

show_logs() {
  for log in "$tmp"/*.log; do echo "-- ${log##*/}:"; tail -n 20 "$log"; done
}

fail() {
  echo "FAIL: $*"
  show_logs
  echo "SC-RESULT passed=0 failed=1 skipped=0"
  exit 1
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# tests/mock_upstream.py (options: its own) on a free port, as $mock.
start_mock() {
  python3 tests/mock_upstream.py --port 0 "$@" >"$tmp/mock.out" 2>"$tmp/mock.log" &
  pids+=($!)
  for _ in $(seq 600); do
    grep -q '^READY ' "$tmp/mock.out" && break
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.05
  done
  mock=$(awk '/^READY /{print $2}' "$tmp/mock.out")
  [ -n "$mock" ] || fail "tests/mock_upstream.py did not start"
}

# Polls URL until it answers 2xx: 0, or 1 once process PID (when given) has
# exited or after 60 s. Start-up is slow under ASan: loading GloVe took 4.2 s
# to the first /healthz on a loaded 2-core machine, so short waits flake.
wait_url() { # URL [PID]
  for _ in $(seq 600); do
    curl -sf -o /dev/null "$1" && return 0
    [ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Waits for /readyz on PORT (indexes loaded) of the server started last (or
# PID); fails naming WHAT otherwise.
wait_ready() { # PORT WHAT [PID]
  wait_url "http://127.0.0.1:$1/readyz" "${3:-${pids[-1]}}" ||
    fail "$2 did not become ready on port $1"
}

# Prints the SC-RESULT line for node --test's TAP output OUT (its exit code
# RC): cancelled tests count as failed, and so does a non-zero exit with none
# failed; a failure shows the failing tests and the logs. Status 1 on failure.
tap_result() { # OUT RC
  local out=$1 rc=$2 passed failed skipped cancelled
  count() { printf '%s\n' "$out" | sed -n "s/^# $1 \([0-9]*\)$/\1/p" | tail -n 1; }
  passed=$(count pass) failed=$(count fail) skipped=$(count skipped) cancelled=$(count cancelled)
  if [ -z "$passed" ] || [ -z "$failed" ]; then
    printf '%s\n' "$out" | tail -n 40
    fail "no summary from node --test (exit $rc)"
  fi
  failed=$((failed + ${cancelled:-0}))
  [ "$failed" = 0 ] && [ "$rc" != 0 ] && failed=1
  if [ "$failed" != 0 ]; then
    printf '%s\n' "$out" | grep -B2 -A30 '^not ok' | head -n 120
    show_logs
  fi
  echo "SC-RESULT passed=$passed failed=$failed skipped=${skipped:-0}"
  [ "$failed" = 0 ]
}
