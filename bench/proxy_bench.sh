#!/usr/bin/env bash
# bench/proxy_bench.sh -- the proxy's benchmarks (BENCHMARKS.md "Proxy"), into
# OUT (JSON lines, rewritten): 1. proxied hits against nginx's own proxy_cache,
# both an exact cache of the same chat-completion POSTs in front of the same
# mock upstream (tests/mock_upstream.py): nginx keys on
# "$request_uri|$request_body" (the body held in memory), 2 workers as
# semcached has 2 loops; the same wrk (Lua: POST, 100 distinct bodies in
# turn) drives both, alternating A B A B (REPS each), rows proxy_hit and
# nginx_proxy_cache_hit. 2. what a miss adds against calling the mock
# directly (bench/proxy_latency.py, rows proxy_latency_*).
# Usage: bench/proxy_bench.sh OUT   (BUILD, BENCH_DURATION, BENCH_REPS as run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: bench/proxy_bench.sh RESULTS.jsonl}
BUILD=${BUILD:-build}
DUR=${BENCH_DURATION:-10}
REPS=${BENCH_REPS:-3}
CONNS=${PROXY_BENCH_CONNS:-32}
LAT_N=${PROXY_LATENCY_N:-500}
tmp=$(mktemp -d /tmp/semcached-proxy-bench-XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
record() { # name, command, json
  python3 -c 'import json,sys; d=json.loads(sys.argv[3]); d["name"]=sys.argv[1]; d["command"]=sys.argv[2]; print(json.dumps(d))' "$1" "$2" "$3" >> "$OUT"
}
: > "$OUT"
record machine "" "{\"date\": \"$(date -u '+%Y-%m-%d %H:%M UTC')\", \"load\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

python3 tests/mock_upstream.py --port 0 >"$tmp/mock.out" 2>"$tmp/mock.log" &
pids+=($!)
for _ in $(seq 100); do grep -q '^READY ' "$tmp/mock.out" && break; sleep 0.05; done
MOCK=$(awk '/^READY /{print $2}' "$tmp/mock.out")
[ -n "$MOCK" ] || { echo "mock upstream did not start" >&2; exit 1; }

SC=$(free_port)
"$BUILD/semcached" --port "$SC" --data-dir "$tmp/data" --threads 2 --log-level warn \
  --openai-base-url "http://127.0.0.1:$MOCK/v1" --anthropic-base-url "http://127.0.0.1:$MOCK/v1" &
pids+=($!)
for _ in $(seq 200); do curl -sf "127.0.0.1:$SC/readyz" >/dev/null && break; sleep 0.05; done

NG=$(free_port)
mkdir -p "$tmp/ngcache" && chmod 777 "$tmp/ngcache"
cat > "$tmp/nginx.conf" <<NGX
worker_processes 2;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  upstream mock { server 127.0.0.1:$MOCK; keepalive 16; }
  proxy_cache_path $tmp/ngcache levels=1:2 keys_zone=llm:16m max_size=1g inactive=60m use_temp_path=off;
  server {
    listen 127.0.0.1:$NG;
    client_body_buffer_size 1m;   # the whole body in memory: \$request_body is set
    client_max_body_size 1m;
    location /v1/ {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache llm;
      proxy_cache_methods POST;
      proxy_cache_key "\$request_uri|\$request_body";
      proxy_cache_valid 200 10m;
      proxy_ignore_headers Cache-Control Expires Set-Cookie Vary X-Accel-Expires;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
NGX
nginx -c "$tmp/nginx.conf" -p "$tmp"
sleep 0.3

# wrk's request(): 100 distinct chat bodies in turn (what an application asks again).
cat > "$tmp/post.lua" <<'LUA'
local bodies, i = {}, 0
for n = 1, 100 do
  bodies[n] = string.format('{"model":"gpt-4o-mini","temperature":0,"messages":[' ..
    '{"role":"system","content":"You are a helpful assistant. Answer in one short sentence."},' ..
    '{"role":"user","content":"What is the capital of country number %d?"}]}', n)
end
local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer sk-bench"}
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/v1/chat/completions", headers, bodies[i])
end
LUA
wrk_json() { python3 bench/wrk_json.py "$1"; }   # wrk --latency output -> {"rate", "latency_us"}
# Every body once through each (misses, stored), then checks both now hit.
for port in "$SC" "$NG"; do
  wrk -t1 -c1 -d2s -s "$tmp/post.lua" "http://127.0.0.1:$port" >/dev/null
done
sleep 0.5
body='{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"system","content":"You are a helpful assistant. Answer in one short sentence."},{"role":"user","content":"What is the capital of country number 7?"}]}'
for port in "$SC" "$NG"; do
  got=$(curl -s -D - -o /dev/null "127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
        -H 'Authorization: Bearer sk-bench' -d "$body" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache"{print $2}')
  [ "$got" = HIT ] || { echo "port $port: X-Cache '$got' after warm-up, not HIT" >&2; exit 1; }
done
calls0=$(curl -s "127.0.0.1:$MOCK/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chat_calls"])')
cmd="wrk -t1 -c$CONNS -d${DUR}s --latency -s post.lua http://127.0.0.1:PORT"
for _ in $(seq "$REPS"); do
  for side in proxy_hit nginx_proxy_cache_hit; do
    port=$([ "$side" = proxy_hit ] && echo "$SC" || echo "$NG")
    out=$(wrk -t1 -c"$CONNS" -d"${DUR}s" --latency -s "$tmp/post.lua" "http://127.0.0.1:$port")
    record "$side" "$cmd" "$(wrk_json "$out")"
    echo "== $side: $(grep Requests/sec <<<"$out") $(grep -E '^ +99%' <<<"$out")" >&2
  done
done
calls1=$(curl -s "127.0.0.1:$MOCK/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["chat_calls"])')
[ "$calls1" = "$calls0" ] || echo "warning: $((calls1 - calls0)) upstream calls during the measured runs" >&2
kill "$(cat "$tmp/nginx.pid")"; rm -f "$tmp/nginx.pid"

# ---- 2. what a miss adds (its own mock and semcached, --sync full) ----------------------
while read -r line; do
  record "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["name"])' "$line")" \
    "bench/proxy_latency.py -n $LAT_N --sync full" "$line"
  echo "== $line" >&2
done < <(python3 bench/proxy_latency.py --build "$BUILD" -n "$LAT_N" --sync full --json)
