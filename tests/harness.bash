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
  for _ in $(seq 100); do grep -q '^READY ' "$tmp/mock.out" && break; sleep 0.05; done
  mock=$(awk '/^READY /{print $2}' "$tmp/mock.out")
  [ -n "$mock" ] || fail "tests/mock_upstream.py did not start"
}

# Waits up to 10 s for /readyz on PORT; fails naming WHAT otherwise.
wait_ready() { # PORT WHAT
  for _ in $(seq 200); do curl -sf "127.0.0.1:$1/readyz" >/dev/null && return 0; sleep 0.05; done
  fail "$2 did not start"
}
