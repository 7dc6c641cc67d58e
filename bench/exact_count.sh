#!/usr/bin/env bash
# bench/exact_count.sh -- instructions per exact hit (callgrind), start-up cancelled:
# one server under callgrind (--instr-atstart=no), populated and warmed, then
# two measured runs of N1 and N2 hits (each its own dump); the difference of
# the two totals over N2 - N1 is the cost of one hit, with the clients'
# connection set-up and the idle loops' cost cancelling out.
# Usage: bench/exact_count.sh [N1 N2]   (1000 5000); BUILD=build; OUT=dir keeps the dumps.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N1=${1:-1000} N2=${2:-5000}
B="$BUILD/semcached-bench"
tmp=${OUT:-$(mktemp -d /tmp/semcached-count-XXXXXX)}
mkdir -p "$tmp"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.%p" \
  "$BUILD/semcached" --port "$port" --data-dir "$tmp/data" --threads 2 --log-level warn \
  >"$tmp/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 2000); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.05; done
run() { "$B" --port "$port" -w exact --keys 10000 --value-size 512 -c 32 -n "$1" --warmup 0 "${@:2}" --json >/dev/null; }
run 2000 2>/dev/null # populates the key space and warms the server
# A dump's total, and the loops' part: http.c's on_read, inclusive (the rest
# is mostly the writer flushing hit counts, which depends on timing).
total() {
  echo "$(callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')" \
       "$(callgrind_annotate --inclusive=yes "$1" 2>/dev/null | awk '/http.c:on_read / && !n++ {gsub(",","",$1); print $1}')"
}
measure() { # n -> "total loops" instructions of a dump holding only those n hits
  callgrind_control -z "$pid" >/dev/null 2>&1
  callgrind_control -i on "$pid" >/dev/null 2>&1
  run "$1" --no-populate
  callgrind_control -d "run$1" "$pid" >/dev/null 2>&1
  callgrind_control -i off "$pid" >/dev/null 2>&1
  total "$(ls -t "$tmp"/cg.$pid.* | head -n 1)"
}
a=$(measure "$N1")
b=$(measure "$N2")
python3 -c 'import sys; a,al,b,bl,n1,n2=map(int,sys.argv[1:]); print("instructions per exact hit: %d total, %d on the loops  (%d hits: %d, %d hits: %d)" % ((b-a)//(n2-n1), (bl-al)//(n2-n1), n1, a, n2, b))' $a $b "$N1" "$N2"
echo "dumps in $tmp (callgrind_annotate --inclusive=yes $tmp/cg.$pid.2)" >&2
