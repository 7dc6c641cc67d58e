#!/usr/bin/env bash
# bench/run.sh -- `make bench`: the standard benchmark suite on this machine.
# Starts semcached and its peers (nginx, Redis, hnswlib in process) on loopback,
# measures each with the same client where one can be used, and writes every
# result as a JSON line to bench/results/latest.jsonl; bench/report.py turns
# that into BENCHMARKS.md. Run it on an otherwise idle machine.
#
# BENCH_ONLY="exact semantic ..." runs only the named sections (space-separated;
# default all): exact (hits against nginx, Redis, open loop, the tool against
# wrk), store, tail (bench/tail.sh), semantic (client vectors through the
# server, hnswlib beside it), decide (the decide-search in process against
# hnswlib), text, crossover, embed, bert, replay, proxy. The rows of sections
# not rerun are kept from the previous results (report.py --keep), each dated
# with the run that measured it; REPLAY=0 drops "replay" from the selection.
# A section whose rows are compared with exact hits (semantic, text) has them
# from the same run: without "exact", a short exact-hit reference is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
DUR=${BENCH_DURATION:-10}          # measured seconds per run
VECTORS=${BENCH_VECTORS:-100000}   # entries in the semantic benchmark's scope
B="$BUILD/semcached-bench"
OUT=bench/results
mkdir -p "$OUT"
RES="$OUT/latest.jsonl"
SECTIONS="exact store tail semantic decide text crossover embed bert replay proxy"
ONLY=" ${BENCH_ONLY:-$SECTIONS} "
[ "${REPLAY:-1}" = 1 ] || ONLY=${ONLY// replay / }
for s in $ONLY; do
  case " $SECTIONS " in *" $s "*) ;; *) echo "BENCH_ONLY: unknown section '$s' (known: $SECTIONS)" >&2; exit 2;; esac
done
sel() { [[ "$ONLY" == *" $1 "* ]]; }
[ -s "$RES" ] && cp "$RES" "$OUT/previous.jsonl"
: > "$RES"
tmp=$(mktemp -d /tmp/semcached-bench-XXXXXX)
chmod 755 "$tmp"   # nginx workers (www-data) read the static file from here
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RUN=$(date -u "+%Y-%m-%d %H:%M UTC")   # every row carries the run that measured it
record() { # name, command, json
  python3 -c 'import json,sys; d=json.loads(sys.argv[3]); d["name"]=sys.argv[1]; d["command"]=sys.argv[2]; d["run"]=sys.argv[4]; print(json.dumps(d))' "$1" "$2" "$3" "$RUN" >> "$RES"
}
bench() { # name, args... ($AFTER_RUN, if set, runs the moment the client exits)
  local name=$1; shift
  echo "== $name: semcached-bench $*" >&2
  local json
  json=$("$B" "$@" --json)
  ${AFTER_RUN:-}
  record "$name" "semcached-bench $*" "$json"
  echo "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("   %.0f req/s  p50 %.0f us  p99 %.0f us  errors %s" % (d["rate"], d["latency_us"]["p50"], d["latency_us"]["p99"], d["errors"]))' >&2
}
start_semcached() { # port, data dir, extra args
  local port=$1 dir=$2; shift 2
  "$BUILD/semcached" --port "$port" --data-dir "$dir" --threads 2 --log-level warn "$@" &
  pids+=($!)
  for _ in $(seq 200); do curl -sf "localhost:$port/readyz" >/dev/null && return; sleep 0.05; done
  echo "semcached did not start" >&2; exit 1
}
stop_semcached() { # stops every server started so far (nothing else on the cores)
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  pids=()
  SC=""
}
# The exact-hit server: 2 loops, 10,000 keys of 512-byte answers (populated).
SC=""
exact_server() {
  [ -n "$SC" ] && return
  SC=$(free_port)
  start_semcached "$SC" "$tmp/data"
  "$B" --port "$SC" -c 32 -n 10 -w exact --keys 10000 --value-size 512 --json >/dev/null  # populates
}
EXACT_ARGS="-c 32 -d $DUR -w exact --keys 10000 --value-size 512 --no-populate"
# median_rate NAME...: the median (low) rate of this run's rows of those names, or 0.
median_rate() {
  python3 -c 'import json,sys,statistics; r=[d["rate"] for d in map(json.loads, open(sys.argv[1])) if d.get("name") in sys.argv[2:]]; print(statistics.median_low(r) if r else 0)' "$RES" "$@"
}

machine=$(python3 - <<'PY'
import json, os, platform, subprocess
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")]
mem = [l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")][0]
print(json.dumps({"cpu": cpu[0] if cpu else platform.processor(), "cores": os.cpu_count(),
                  "mem_gib": round(int(mem) / 1048576, 1), "kernel": platform.release(),
                  "load": open("/proc/loadavg").read().split()[0]}))
PY
)
record machine "" "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["date"]=sys.argv[2]; d["sections"]=sys.argv[3].split(); print(json.dumps(d))' "$machine" "$RUN" "$ONLY")"

# ---- exact hits vs nginx (same bytes, same client) and Redis -------------------
# Each side is measured REPS times, alternating, with one and with two client
# threads (the client shares the two cores, and which count drives a server
# hardest differs between servers); report.py takes the median of each.
REPS=${BENCH_REPS:-3}
if sel exact; then   # (the section runs to the "fi" before the exact reference)
exact_server
# The exact bytes of one hit's body, for nginx and Redis to serve.
curl -s "localhost:$SC/v1/lookup" -H 'Content-Type: application/json' \
  -d '{"namespace":"bench","model":"bench-model","params":{"temperature":0},"prompt":"bench question number 1"}' > "$tmp/hit.json"
SIZE=$(stat -c %s "$tmp/hit.json")
mkdir -p "$tmp/www" && cp "$tmp/hit.json" "$tmp/www/hit.json"
NG=$(free_port)
# start_nginx WORKERS: nginx on $NG serving $tmp/www. With 1 worker it is
# pinned to the second core and /delay answers after 2 ms (echo module).
start_nginx() {
  local pin="" echo_mod="" delay=""
  if [ "$1" = 1 ]; then
    pin="worker_cpu_affinity 10;"
    echo_mod="load_module /usr/share/nginx/modules/ngx_http_echo_module.so;"
    delay='location = /delay { echo_sleep 0.002; echo "ok"; }'
  fi
  cat > "$tmp/nginx.conf" <<NGX
$echo_mod
worker_processes $1;
$pin
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;   # semcached has no per-connection limit either
  default_type application/json;
  server { listen 127.0.0.1:$NG; root $tmp/www; $delay }
}
NGX
  nginx -c "$tmp/nginx.conf" -p "$tmp"
  sleep 0.3
}
start_nginx 2
for _ in $(seq "$REPS"); do
  bench exact_hit --port "$SC" $EXACT_ARGS
  bench nginx_static --port "$NG" -c 32 -d "$DUR" -w raw --path /hit.json --no-populate
  bench exact_hit_2t --port "$SC" -c 32 -t 2 -d "$DUR" -w exact --keys 10000 --value-size 512 --no-populate
  bench nginx_static_2t --port "$NG" -c 32 -t 2 -d "$DUR" -w raw --path /hit.json --no-populate
done
bench exact_hit_pipelined --port "$SC" -c 32 --pipeline 8 -d "$DUR" -w exact --keys 10000 --value-size 512 --no-populate
bench nginx_static_pipelined --port "$NG" -c 32 --pipeline 8 -d "$DUR" -w raw --path /hit.json --no-populate
# ---- latency against throughput (open loop) -------------------------------------
# Run on the same server state as the closed-loop peak, before the store
# benchmark adds ~100k entries (after a burst of stores, exact hits' p99 at
# half the peak stays 3-5x higher for about half a minute). Each sweep is
# followed by nginx at the same half-peak rate and client settings: on these
# shared cores the machine, not the server, may set the tail.
peak=$(median_rate exact_hit)
for _ in $(seq "$REPS"); do
  for pct in 10 25 50 75 90 100 110; do
    rate=$(python3 -c "print(int($peak * $pct / 100))")
    bench "open_loop_$pct" --port "$SC" -c 64 -d "$DUR" -w exact --keys 10000 --no-populate --rate "$rate"
  done
  bench nginx_open_loop_50 --port "$NG" -c 64 -d "$DUR" -w raw --path /hit.json --no-populate \
    --rate "$(python3 -c "print(int($peak * 50 / 100))")"
done

kill "$(cat "$tmp/nginx.pid")"; rm -f "$tmp/nginx.pid"
sleep 0.3

# ---- the tool checked against wrk ---------------------------------------------------
# Unpinned, the client and two nginx workers share two cores and the tail is
# decided by the scheduler (single runs' p99 swing 0.7-5 ms for either tool).
# So the check pins a one-worker nginx to one core and the client to the other,
# alternates the tools REPS times, and adds a target whose latency is known:
# /delay answers after 2 ms (nginx's echo module), so the percentiles reflect
# the tool's clock and histogram rather than the machine's noise.
start_nginx 1
wrk_json() { python3 bench/wrk_json.py "$1"; }   # wrk --latency output -> {"rate", "latency_us"}
for _ in $(seq "$REPS"); do
  for path in /hit.json /delay; do
    tag=$([ "$path" = /delay ] && echo delay || echo static)
    out=$(taskset -c 0 wrk -t1 -c32 -d"${DUR}s" --latency "http://127.0.0.1:$NG$path")
    record "wrk_$tag" "taskset -c 0 wrk -t1 -c32 -d${DUR}s --latency http://127.0.0.1:PORT$path" "$(wrk_json "$out")"
    echo "== wrk_$tag: $(grep Requests/sec <<<"$out")" >&2
    json=$(taskset -c 0 "$B" --port "$NG" -c 32 -d "$DUR" -w raw --path "$path" --no-populate --json)
    record "tool_$tag" "taskset -c 0 semcached-bench --port $NG -c 32 -d $DUR -w raw --path $path --no-populate" "$json"
  done
done
kill "$(cat "$tmp/nginx.pid")"; rm -f "$tmp/nginx.pid"
RP=$(free_port)
redis-server --port "$RP" --save '' --appendonly no --daemonize no --loglevel warning &
pids+=($!)
sleep 0.5
redis_out=$(redis-benchmark -p "$RP" -t get -c 32 -n 1000000 -d "$SIZE" -r 10000 --csv 2>/dev/null | tail -n 1)
record redis_get "redis-benchmark -t get -c 32 -n 1000000 -d $SIZE -r 10000" "$(python3 - "$redis_out" <<'PY'
import json, sys
f = [x.strip('"') for x in sys.argv[1].split('","')]
print(json.dumps({"rate": float(f[1]), "latency_us": {"p50": float(f[4]) * 1e3, "p99": float(f[6]) * 1e3}}))
PY
)"

fi

# ---- exact hits as the reference of the semantic and text sections -----------------
# Their rows are reported as a ratio to exact hits measured in the same run
# (the exact_hit rows above); without the exact section, the same command
# is run REPS times here (rows exact_ref).
if ! sel exact && { sel semantic || sel text || sel tail; }; then
  exact_server
  for _ in $(seq "$REPS"); do bench exact_ref --port "$SC" $EXACT_ARGS; done
fi

# ---- durable stores, and exact hits' tail right after them ---------------------
# The tail (bench/tail.sh writes its own rows) starts the moment the store
# run's client exits, before that run's row is recorded: exact hits at half
# the closed-loop peak of this run's exact hits (exact_hit, else exact_ref).
if sel store || sel tail; then
  exact_server
  tail_after_burst=""
  if sel tail; then
    ref=$(median_rate exact_hit exact_ref)
    [ "$ref" != 0 ] || { echo "tail: no exact-hit rate in this run" >&2; exit 1; }
    tail_run() { BUILD=$BUILD bench/tail.sh "$SC" "$ref" "$RES"; }
    tail_after_burst=tail_run
  fi
  AFTER_RUN=$tail_after_burst bench store_durable --port "$SC" -c 32 -d "$DUR" -w miss-store --no-populate
fi

# ---- semantic lookups with client vectors, one scope, against hnswlib in process --
stop_semcached
if sel semantic; then
  SV=$(free_port)
  start_semcached "$SV" "$tmp/vec"
  # The peer: the same vectors and the very queries the load tool sends, at
  # growing beams, each answer's decision at the server's threshold (0.90)
  # checked against an exact scan; report.py compares semcached with the
  # smallest beam that agrees as often as the server did.
  # (BENCH_PEER_EFS= empty leaves the peer out: its build takes minutes.)
  PEER_EFS=${BENCH_PEER_EFS-8 16 32 64 128 256 512}
  if [ -n "$PEER_EFS" ]; then
    "$B" --dump-vectors "$tmp/v" --keys "$VECTORS" --dim 384
    while read -r line; do record hnswlib_inprocess "bench/hnswlib_peer.py PREFIX 16 200 2 0.90 $PEER_EFS" "$line"; done \
      < <(/usr/bin/python3 bench/hnswlib_peer.py "$tmp/v" 16 200 2 0.90 $PEER_EFS)
    rm -f "$tmp"/v_*
  fi
  # Populate, then wait until the index has absorbed it (no write queue, no
  # merge running, a small delta): the peer searches a finished graph too.
  "$B" --port "$SV" -c 16 -n 10 -w vectors --keys "$VECTORS" --dim 384 --json >/dev/null
  bench/wait_index_settled.sh "$SV" || echo "index did not settle; measuring anyway" >&2
  for _ in $(seq "$REPS"); do
    bench semantic_vectors --port "$SV" -c 16 -d "$DUR" -w vectors --keys "$VECTORS" --dim 384 --no-populate
  done
  stop_semcached
fi

# ---- the decide-search in process, against hnswlib at the beam of the same agreement ----
# One thread each, no HTTP: semcached's scope index (small beam, widened near
# the threshold) and fixed beams, every answer scored against an exact scan;
# then Debian's python3-hnswlib on the dumped vectors at growing beams.
# report.py compares semcached's decide-search with the smallest hnswlib beam
# that reaches its agreement.
if sel decide; then
  OPENBLAS_NUM_THREADS=1 "$BUILD/semcached-search-bench" --n "$VECTORS" --dim 384 --dump "$tmp/sd" > "$tmp/sd.jsonl"
  while read -r line; do record search_decide "OPENBLAS_NUM_THREADS=1 semcached-search-bench --n $VECTORS --dim 384 --dump PREFIX" "$line"; done < "$tmp/sd.jsonl"
  while read -r line; do record hnswlib_decide "bench/hnswlib_decide.py PREFIX" "$line"; done \
    < <(/usr/bin/python3 bench/hnswlib_decide.py "$tmp/sd")
  rm -f "$tmp"/sd_*
fi

# ---- text lookups through the server, embedded by each built-in model ------------------
MODEL_CACHE=${MODEL_CACHE:-$HOME/.cache/semcached}
if sel text; then
  for m in "$MODEL_CACHE/glove-100d.scglove" "$SHARED/models/potion-base-2M"; do
    [ -e "$m" ] || continue
    stop_semcached
    ST=$(free_port)
    rm -rf "$tmp/text"
    start_semcached "$ST" "$tmp/text" --model "$m"
    bench "text_$(basename "$m")" --port "$ST" -c 16 -d "$DUR" -w text --dataset "$SHARED/data/qqp/qqp_dev.tsv"
  done
  stop_semcached
fi

# ---- flat scan against HNSW --------------------------------------------------------
if sel crossover; then
  while read -r line; do record crossover "OPENBLAS_NUM_THREADS=1 semcached-crossover 384" "$line"; done \
    < <(OPENBLAS_NUM_THREADS=1 "$BUILD/semcached-crossover" 384)
fi

# ---- embedders: quality on QQP and speed on one core ----------------------------------
for m in "$MODEL_CACHE/glove-100d.scglove" "$SHARED/models/potion-base-2M"; do
  sel embed || break
  [ -e "$m" ] || continue
  record embed_eval "semcached-embed-eval $(basename "$m") qqp_dev.tsv" \
    "$("$BUILD/semcached-embed-eval" "$m" "$SHARED/data/qqp/qqp_dev.tsv")"
done

# ---- the BERT encoder against PyTorch (all-MiniLM-L6-v2 shape, random weights) ----------
if sel bert; then
  /usr/bin/python3 tests/embed/tiny_bert.py "$tmp/minilm" F32 mean 384 12 1536 6 30522
  # 2 threads splitting each forward pass (--embed-intra-threads 2), OpenBLAS
  # single-threaded inside each: faster than OpenBLAS's own 2 threads.
  while read -r line; do record bert_semcached "semcached-bert-bench MINILM_DIR 2" "$line"; done \
    < <("$BUILD/semcached-bert-bench" "$tmp/minilm" 2)
  while read -r line; do record bert_torch "bench/bert_torch.py MINILM_DIR 2" "$line"; done \
    < <(/usr/bin/python3 bench/bert_torch.py "$tmp/minilm" 2)
fi

# ---- quality: a synthetic stream with known geometry, then QQP through the mock upstream ----
# (about 15 minutes; REPLAY=0 or a BENCH_ONLY without "replay" keeps the previous rows)
if sel replay; then
  POLICIES_TOPICS="fixed:0.80 fixed:0.85 fixed:0.90 fixed:0.95 budget:0.02 budget:0.05"
  while read -r line; do
    record qqp_replay "bench/qqp_replay.py semcached topics - 10000 $POLICIES_TOPICS" "$line"
  done < <(/usr/bin/python3 bench/qqp_replay.py "$BUILD/semcached" topics - 10000 $POLICIES_TOPICS)
  REPLAY_PAIRS=${REPLAY_PAIRS:-10000}
  POLICIES="fixed:0.80 fixed:0.85 fixed:0.90 fixed:0.95 fixed:0.99 budget:0.02 budget:0.05 budget:0.30"
  for m in "$MODEL_CACHE/glove-100d.scglove" "$SHARED/models/potion-base-2M"; do
    [ -e "$m" ] || continue
    while read -r line; do
      record qqp_replay "bench/qqp_replay.py semcached $(basename "$m") qqp_dev.tsv $REPLAY_PAIRS $POLICIES" "$line"
    done < <(/usr/bin/python3 bench/qqp_replay.py "$BUILD/semcached" "$m" "$SHARED/data/qqp/qqp_dev.tsv" \
               "$REPLAY_PAIRS" $POLICIES)
  done
fi

# ---- the proxy: hits against nginx's proxy_cache, what a miss adds (own file) ----------
stop_semcached   # nothing else on the cores
if sel proxy; then BUILD=$BUILD bench/proxy_bench.sh "$OUT/proxy.jsonl"; fi

# The sections not rerun keep their rows from the previous results.
[ -s "$OUT/previous.jsonl" ] && python3 bench/report.py --keep "$OUT/previous.jsonl" "$RES"
python3 bench/report.py "$RES" BENCHMARKS.md "$OUT/latency-throughput.png"
echo "wrote BENCHMARKS.md and $OUT/" >&2
