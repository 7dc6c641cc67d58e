#!/usr/bin/env bash
# bench/tail.sh -- exact hits' tail after a write burst, for `make bench`.
# bench/run.sh calls it the moment the store benchmark's client exits (its
# ~100k new entries are the burst): exact hits at half the closed-loop peak,
# open loop, p99 per second (semcached-bench --series) for TAIL_AFTER_S
# seconds ("tail_after"), then the same command again for TAIL_RESTED_S
# seconds on the rested server ("tail_rested"); report.py's tail_section
# compares them. Both runs start alike (a fresh client, no warm-up, its clock
# started once its connections are up), so the burst is their only
# difference. Nothing runs beside a measurement and nothing slow before the
# first: a python3 start-up is 0.4 s of CPU on these 2 shared cores, and one
# beside the client (a pipe) put 100-180 ms into the first second's p99 of a
# rested server. So the JSON is handled after the client exits.
# usage: BUILD=build bench/tail.sh PORT PEAK_RATE RESULTS.jsonl
set -euo pipefail
PORT=$1 PEAK=$2 RES=$3
BUILD=${BUILD:-build}
AFTER_S=${TAIL_AFTER_S:-40}
RESTED_S=${TAIL_RESTED_S:-20}
RATE=$((${PEAK%.*} / 2))
STATS=$(curl -s "localhost:$PORT/v1/stats")   # the entries the burst left
args() { echo "-c 64 -d $1 --warmup 0 -w exact --keys 10000 --no-populate --rate $RATE --series"; }
measure() { # seconds -> the client's JSON on stdout
  # shellcheck disable=SC2046 # the words of args are the client's options
  "$BUILD/semcached-bench" --port "$PORT" $(args "$1") --json
}
record() { # name, seconds, the client's JSON
  python3 -c 'import json,sys
d = json.loads(sys.argv[4])
d.update(name=sys.argv[1], command=sys.argv[2], entries=json.loads(sys.argv[3])["entries"])
print(json.dumps(d))
print("== %s: %s\n   connected in %.0f ms; p99 per second (us): %s" % (sys.argv[1], sys.argv[2],
      d.get("connect_ms", 0), " ".join("%.0f" % s["p99_us"] for s in d["series"])), file=sys.stderr)' \
    "$1" "semcached-bench $(args "$2")" "$STATS" "$3" >> "$RES"
}
after=$(measure "$AFTER_S")     # from the burst's end
rested=$(measure "$RESTED_S")   # the same command, rested
record tail_after "$AFTER_S" "$after"
record tail_rested "$RESTED_S" "$rested"
