#!/bin/bash
# fleet.sh -- fleet mode (docs/fleet.md) on this machine, with a real Redis on
# loopback; writes bench/results/fleet.jsonl for bench/report.py:
#   1. replication lag between two nodes while one stores open loop at
#      FLEET_RATES (1000 5000) stores/s for FLEET_DURATION (10) s, entries with
#      384-d vectors and exact-only ones: the follower's lag (its apply commit
#      minus the origin's commit, per record, from /v1/stats), the rate the
#      origin sustained, and the same stores on the node alone;
#   2. exact-hit lookups on a node in a fleet of two against the same node
#      alone, closed loop, FLEET_LOOKUP_ROUNDS (5) rounds alternating, with
#      the server's CPU time per request;
#   3. semcached-fleet-bench: an exact hit that reads Redis (GET of the
#      serialized entry) against the local LMDB hit, in one process;
#   and catch-up: the rate a new node applies a backlog of FLEET_CATCHUP
#   (20000) records at, indexing included;
#   count (not run by default: minutes under valgrind): instructions per
#   exact hit (callgrind, FLEET_COUNT_N (20000) hits, collected only while
#   they run) and syscalls per hit (strace -c -f), alone and in a fleet with
#   one idle peer: the deterministic form of part 2.
# FLEET_PARTS ("lag catchup lookups hits") picks among them. Everything shares the
# machine's cores with the load generator.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RATES=${FLEET_RATES:-1000 5000}
PARTS=${FLEET_PARTS:-lag catchup lookups hits}  # which of the parts to run
CATCHUP=${FLEET_CATCHUP:-20000}
LROUNDS=${FLEET_LOOKUP_ROUNDS:-5}
DUR=${FLEET_DURATION:-10}
ROUNDS=${FLEET_ROUNDS:-3}
OUT=${FLEET_OUT:-bench/results/fleet.jsonl}
B="$BUILD/semcached-bench"
tmp=$(mktemp -d /tmp/semcached-fleet-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$tmp/redis.pid" ] && kill "$(cat "$tmp/redis.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stat() { curl -s "localhost:$1/v1/stats"; }
fleet_field() { stat "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fleet"][sys.argv[1]])' "$2"; }
WRAP=() # a command the node runs under (count: valgrind)
start_node() { # port, dir, extra args; prints the pid
  local port=$1 dir=$2; shift 2
  "${WRAP[@]}" "$BUILD/semcached" --port "$port" --data-dir "$dir" --threads 2 --log-level warn "$@" \
    >"$dir.log" 2>&1 &
  local pid=$!
  for _ in $(seq 2000); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.05; done
  echo "$pid"
}
stop_node() { # the node is this shell's grandchild: poll for its exit
  kill "$1"
  for _ in $(seq 200); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
}
# Both nodes hold the same entries and nothing waits to be published or read.
wait_converged() { # port_a port_b
  for _ in $(seq 600); do
    local ca cb
    ca=$(curl -s "localhost:$1/v1/fleet/checksum") cb=$(curl -s "localhost:$2/v1/fleet/checksum")
    if [ "$ca" = "$cb" ] && [ "$(fleet_field "$2" lag_records)" = 0 ] &&
       [ "$(stat "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fleet"]["outbox"]["depth"])')" = 0 ]; then
      return 0
    fi
    sleep 0.1
  done
  echo "nodes did not converge" >&2
  return 1
}

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$tmp" \
  --daemonize yes --pidfile "$tmp/redis.pid" --logfile "$tmp/redis.log"
for _ in $(seq 100); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.05; done
REDIS="redis://127.0.0.1:$rport"
: > "$OUT"
want() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# ---- 1. replication lag ----------------------------------------------------------
# Stores of 384-d entries (each indexed on both nodes) and exact-only stores
# (a miss, then its store: JSON and LMDB only), at each rate.
lag_run() { # workload, rate, extra bench args
  local wl=$1 rate=$2; shift 2
  local pa pb a b r
  pa=$(free_port) pb=$(free_port)
  a=$(start_node "$pa" "$tmp/lag-$wl-$rate-a" --redis "$REDIS" --fleet "lag-$wl-$rate")
  b=$(start_node "$pb" "$tmp/lag-$wl-$rate-b" --redis "$REDIS" --fleet "lag-$wl-$rate")
  pids+=("$a" "$b")
  echo "== lag: $wl at $rate/s" >&2
  r=$("$B" --port "$pa" -c 32 -d "$DUR" --rate "$rate" -w "$wl" --no-populate --json "$@")
  wait_converged "$pa" "$pb"
  python3 - "$r" "$(stat "$pb")" "$(stat "$pa")" "$rate" "$wl" >> "$OUT" <<'PY'
import json, sys
r, fb, fa, rate = json.loads(sys.argv[1]), json.loads(sys.argv[2])["fleet"], json.loads(sys.argv[3]), int(sys.argv[4])
st = r["by_kind"].get("store", {})
print(json.dumps({"name": "fleet_lag", "workload": sys.argv[5], "target_rate": rate,
                  "seconds": r.get("seconds"), "stores_s": st.get("rate", r["rate"]),
                  "store_p50_us": st.get("p50_us"), "store_p99_us": st.get("p99_us"),
                  "errors": r["errors"], "applied": fb["applied"], "batches": fb["batches"],
                  "lag_p50_ms": fb["lag_p50_ms"], "lag_p99_ms": fb["lag_p99_ms"],
                  "entries": fa["entries"]}))
PY
  tail -n 1 "$OUT" >&2
  stop_node "$a"; stop_node "$b"
  # The same stores on the same node alone: what the fleet adds to a store.
  pa=$(free_port)
  a=$(start_node "$pa" "$tmp/lag-$wl-$rate-alone")
  pids+=("$a")
  r=$("$B" --port "$pa" -c 32 -d "$DUR" --rate "$rate" -w "$wl" --no-populate --json "$@")
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); st=r["by_kind"].get("store",{}); print(json.dumps({"name":"fleet_store_alone","workload":sys.argv[3],"target_rate":int(sys.argv[2]),"stores_s":st.get("rate",r["rate"]),"store_p50_us":st.get("p50_us"),"store_p99_us":st.get("p99_us"),"errors":r["errors"]}))' "$r" "$rate" "$wl" >> "$OUT"
  tail -n 1 "$OUT" >&2
  stop_node "$a"
}
want lag && for rate in $RATES; do
  lag_run vector-store "$rate" --dim 384
  lag_run miss-store "$rate"
done

# ---- catch-up: how fast a node applies a backlog ---------------------------------
# A stores CATCHUP entries while B is not running; then B starts (a new node:
# the stream holds everything, so it reads it from the start) and applies
# them as fast as it can: the rate one node applies at, index included.
if want catchup; then
  for wl in vector-store miss-store; do
    pa=$(free_port) pb=$(free_port)
    a=$(start_node "$pa" "$tmp/cu-$wl-a" --redis "$REDIS" --fleet "cu-$wl")
    pids+=("$a")
    extra=(); [ "$wl" = vector-store ] && extra=(--dim 384)
    "$B" --port "$pa" -c 32 -n "$CATCHUP" -w "$wl" --no-populate --json "${extra[@]}" >/dev/null
    t0=$(date +%s.%N)
    b=$(start_node "$pb" "$tmp/cu-$wl-b" --redis "$REDIS" --fleet "cu-$wl")
    pids+=("$b")
    wait_converged "$pa" "$pb"
    t1=$(date +%s.%N)
    python3 -c 'import json,sys; n=int(sys.argv[3]); s=float(sys.argv[2])-float(sys.argv[1]); print(json.dumps({"name":"fleet_catchup","workload":sys.argv[4],"records":n,"seconds":round(s,2),"records_s":round(n/s)}))' "$t0" "$t1" "$(fleet_field "$pb" applied)" "$wl" >> "$OUT"
    tail -n 1 "$OUT" >&2
    stop_node "$a"; stop_node "$b"
  done
fi

# ---- 2. exact hits: a node in a fleet against the same node alone -----------------
# On a shared machine throughput swings with the neighbours' load, so each
# run also reports the server's CPU time per request (utime + stime from
# /proc), which the neighbours do not change.
if want lookups; then
  pa=$(free_port) pf=$(free_port) pg=$(free_port)
  alone=$(start_node "$pa" "$tmp/alone")
  f=$(start_node "$pf" "$tmp/fleet-f" --redis "$REDIS" --fleet lookups)
  g=$(start_node "$pg" "$tmp/fleet-g" --redis "$REDIS" --fleet lookups)
  pids+=("$alone" "$f" "$g")
  "$B" --port "$pa" -w exact --keys 10000 --value-size 512 -c 32 -n 10 --json >/dev/null
  "$B" --port "$pf" -w exact --keys 10000 --value-size 512 -c 32 -n 10 --json >/dev/null
  wait_converged "$pf" "$pg"
  tck=$(getconf CLK_TCK)
  for round in $(seq "$LROUNDS"); do
    for side in alone fleet; do
      port=$pa pid=$alone
      [ "$side" = fleet ] && port=$pf pid=$f
      echo "== exact hits, $side, round $round" >&2
      c0=$(cpu_ticks "$pid")
      r=$("$B" --port "$port" -w exact --keys 10000 --value-size 512 -c 32 -d "$DUR" --no-populate --json)
      c1=$(cpu_ticks "$pid")
      python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(name="fleet_lookup", side=sys.argv[2], round=int(sys.argv[3]), cpu_us_per_req=(int(sys.argv[5])-int(sys.argv[4]))*1e6/int(sys.argv[6])/max(d["requests"],1)); print(json.dumps(d))' "$r" "$side" "$round" "$c0" "$c1" "$tck" >> "$OUT"
      tail -n 1 "$OUT" | cut -c1-200 >&2
    done
  done
  stop_node "$alone"; stop_node "$f"; stop_node "$g"
fi

# ---- count: instructions and syscalls per exact hit, alone and in a fleet ----------
# The same N hits (after a warm-up) on each side; callgrind collects only
# while they run (--instr-atstart=no, callgrind_control -i on/off), so start-up
# and population are left out. "lookup" is the HTTP threads' part (inclusive
# cost of http.c's on_read); the rest is the writer flushing the hits' counts
# (which depends on how the hits fall into --hit-flush-ms windows, so on
# time) and, in a fleet, its idle thread.
count_side() { # side, extra node args
  local side=$1 p pid st r; shift
  p=$(free_port)
  WRAP=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.$side.%p")
  pid=$(start_node "$p" "$tmp/count-$side" "$@")
  WRAP=()
  pids+=("$pid")
  "$B" --port "$p" -w exact --keys 10000 --value-size 512 -c 32 -n 2000 --warmup 0 --json >/dev/null
  callgrind_control -i on "$pid" >/dev/null
  r=$("$B" --port "$p" -w exact --keys 10000 --value-size 512 -c 32 -n "$CN" --warmup 0 --no-populate --json)
  callgrind_control -d "$pid" >/dev/null
  callgrind_control -i off "$pid" >/dev/null
  stop_node "$pid"
  local ir lk
  ir=$(callgrind_annotate "$tmp"/cg."$side".*.1 | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
  lk=$(callgrind_annotate --inclusive=yes "$tmp"/cg."$side".*.1 | awk '/http.c:on_read / && !n++ {gsub(",","",$1); print $1}')
  # syscalls: the same hits on a fresh node, strace attached
  p=$(free_port)
  pid=$(start_node "$p" "$tmp/strace-$side" "$@")
  pids+=("$pid")
  "$B" --port "$p" -w exact --keys 10000 --value-size 512 -c 32 -n 2000 --warmup 0 --json >/dev/null
  strace -c -f -o "$tmp/strace.$side" -p "$pid" 2>/dev/null & st=$!
  sleep 1
  "$B" --port "$p" -w exact --keys 10000 --value-size 512 -c 32 -n "$CN" --warmup 0 --no-populate --json >/dev/null
  kill -INT "$st"; wait "$st" || true
  stop_node "$pid"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); n=d["requests"]; sc=[l.split() for l in open(sys.argv[5]) if l.split()[-1:]==["total"]][0]; print(json.dumps({"name":"fleet_lookup_count","side":sys.argv[2],"requests":n,"ir_per_req":round(int(sys.argv[3])/n),"lookup_ir_per_req":round(int(sys.argv[4])/n),"syscalls_per_req":round(int(sc[-3])/n,3)}))' \
    "$r" "$side" "$ir" "$lk" "$tmp/strace.$side" >> "$OUT"
  tail -n 1 "$OUT" >&2
}
if want count; then
  CN=${FLEET_COUNT_N:-20000}
  pg=$(free_port)
  g=$(start_node "$pg" "$tmp/count-peer" --redis "$REDIS" --fleet count)
  pids+=("$g")
  count_side alone
  count_side fleet --redis "$REDIS" --fleet count
  stop_node "$g"
fi

# ---- 3. a hit that reads Redis against the local hit ---------------------------
if want hits; then
  echo "== semcached-fleet-bench" >&2
  "$BUILD/semcached-fleet-bench" --redis-port "$rport" --rounds "$ROUNDS" --duration 3 | tee -a "$OUT" >&2
fi
