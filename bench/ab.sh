#!/usr/bin/env bash
# bench/ab.sh -- A/B of two builds of semcached on the three headline rows of
# BENCHMARKS.md (exact hits, semantic lookups with client vectors, text
# lookups embedded by GloVe), alternating A and B in each round so that the
# shared machine's drift hits both alike; prints each run, the medians and
# the ratio B/A. Used to check that a change is within noise, e.g.
#   bench/ab.sh /path/to/old/build build
# Environment: AB_ROUNDS (3), AB_DURATION measured seconds per run (8),
# AB_VECTORS entries in the semantic scope (30000), SHARED (../shared).
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?usage: bench/ab.sh BUILD_A BUILD_B}
B=${2:?usage: bench/ab.sh BUILD_A BUILD_B}
ROUNDS=${AB_ROUNDS:-3}
DUR=${AB_DURATION:-8}
VECTORS=${AB_VECTORS:-30000}
SHARED=${SHARED:-../shared}
MODEL=${MODEL:-$HOME/.cache/semcached/glove-100d.scglove}
LOAD="$B/semcached-bench" # one load tool for both sides
tmp=$(mktemp -d /tmp/semcached-ab-XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start() { # build, data dir, extra args; sets $port and $pid
  local build=$1 dir=$2; shift 2
  port=$(free_port)
  "$build/semcached" --port "$port" --data-dir "$dir" --threads 2 --log-level warn "$@" &
  pid=$!
  for _ in $(seq 400); do curl -sf "localhost:$port/readyz" >/dev/null && return; sleep 0.05; done
  echo "semcached ($build) did not start" >&2; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
rate() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f %.0f" % (d["rate"], d["latency_us"]["p99"]))'; }

# Each side keeps its populated data directories across rounds (a restart
# loads the index snapshot), so only the first round pays for populating.
run_side() { # side label, build dir
  local side=$1 build=$2 r d
  d="$tmp/exact_$side"
  start "$build" "$d"
  [ -e "$d.done" ] || { "$LOAD" --port "$port" -c 32 -n 10 -w exact --keys 10000 --value-size 512 --json >/dev/null; touch "$d.done"; }
  r=$("$LOAD" --port "$port" -c 32 -d "$DUR" -w exact --keys 10000 --value-size 512 --no-populate --json | rate)
  echo "exact $side $r" | tee -a "$tmp/results"
  stop
  d="$tmp/vectors_$side"
  start "$build" "$d"
  [ -e "$d.done" ] || { "$LOAD" --port "$port" -c 16 -n 10 -w vectors --keys "$VECTORS" --dim 384 --json >/dev/null; touch "$d.done"; }
  bench/wait_index_settled.sh "$port" >/dev/null 2>&1 || true
  r=$("$LOAD" --port "$port" -c 16 -d "$DUR" -w vectors --keys "$VECTORS" --dim 384 --no-populate --json | rate)
  echo "vectors $side $r" | tee -a "$tmp/results"
  stop
  if [ -e "$MODEL" ] && [ -e "$SHARED/data/qqp/qqp_dev.tsv" ]; then
    start "$build" "$tmp/text_$side" --model "$MODEL"
    r=$("$LOAD" --port "$port" -c 16 -d "$DUR" -w text --dataset "$SHARED/data/qqp/qqp_dev.tsv" --json | rate)
    echo "text_glove $side $r" | tee -a "$tmp/results"
    stop
  fi
}

for round in $(seq "$ROUNDS"); do
  echo "== round $round" >&2
  run_side A "$A"
  run_side B "$B"
done
python3 - "$tmp/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, side, rate, p99 = line.split()
    rows.setdefault(name, {}).setdefault(side, []).append((float(rate), float(p99)))
print("| row | A req/s (median, runs) | B req/s (median, runs) | B/A | A p99 us | B p99 us |")
print("|---|---|---|---|---|---|")
for name, sides in rows.items():
    a = [r for r, _ in sides.get("A", [])]; b = [r for r, _ in sides.get("B", [])]
    ap = [p for _, p in sides.get("A", [])]; bp = [p for _, p in sides.get("B", [])]
    if not a or not b:
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    print("| %s | %.0f (%s) | %.0f (%s) | %.2f | %.0f | %.0f |" % (
        name, ma, ", ".join("%.0f" % x for x in a), mb, ", ".join("%.0f" % x for x in b),
        mb / ma, statistics.median(ap), statistics.median(bp)))
PY
