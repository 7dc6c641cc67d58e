#!/usr/bin/env bash
# bench/tail.sh -- exact hits' tail after a write burst, for `make bench`.
# bench/run.sh calls it right after the store benchmark (its ~100k+ new
# entries are the burst): exact hits at half the closed-loop peak, open loop,
# p99 per second (semcached-bench --series) from the burst's end for
# TAIL_AFTER_S seconds, then TAIL_RESTED_S seconds more (after 2 s of
# warm-up) as the rested figure of the same kind. Rows "tail_after" and "tail_rested" are appended to the
# results file; report.py's tail_section compares them.
# usage: BUILD=build bench/tail.sh PORT PEAK_RATE RESULTS.jsonl
set -euo pipefail
PORT=$1 PEAK=$2 RES=$3
BUILD=${BUILD:-build}
AFTER_S=${TAIL_AFTER_S:-40}
RESTED_S=${TAIL_RESTED_S:-20}
RATE=$(python3 -c "print(int(float('$PEAK') / 2))")
ENTRIES=$(curl -s "localhost:$PORT/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
run() { # name, seconds, warm-up seconds
  local args="-c 64 -d $2 --warmup $3 -w exact --keys 10000 --no-populate --rate $RATE --series"
  echo "== $1: semcached-bench $args" >&2
  "$BUILD/semcached-bench" --port "$PORT" $args --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); d.update(name=sys.argv[1], command=sys.argv[2], entries=int(sys.argv[3])); print(json.dumps(d))' \
      "$1" "semcached-bench $args" "$ENTRIES" >> "$RES"
  tail -n 1 "$RES" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("   p99 per second (us): " + " ".join("%.0f" % s["p99_us"] for s in d["series"]))' >&2
}
run tail_after "$AFTER_S" 0    # from the burst's end: no warm-up
run tail_rested "$RESTED_S" 2  # as the open-loop runs: 2 s of warm-up
