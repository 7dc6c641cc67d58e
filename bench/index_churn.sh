#!/bin/bash
# index_churn.sh -- semantic lookups while the same HNSW scope grows: one
# 20,000-vector scope (384-d client vectors, promoted to HNSW), then an open
# loop at INDEX_CHURN_RATE (400) request starts/s of which 30 % store new
# vectors into that scope, for 30 s, measured once the population has been
# indexed (no write queue, no rebuild running). Each server binary named in
# INDEX_CHURN_BINS ("label=path ...", default: this build) is run
# INDEX_CHURN_ROUNDS (2) times, alternating, so an older build can be compared
# on the same machine in the same run. Writes bench/results/index_churn.jsonl.
set -euo pipefail
BUILD=${BUILD:-build}
RATE=${INDEX_CHURN_RATE:-400}
ROUNDS=${INDEX_CHURN_ROUNDS:-2}
BINS=${INDEX_CHURN_BINS:-current=$BUILD/semcached}
OUT=${INDEX_CHURN_OUT:-bench/results/index_churn.jsonl}
MIX=vectors=70,vector-store=30
B="$BUILD/semcached-bench"
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
: > "$OUT"
for round in $(seq "$ROUNDS"); do
  for lb in $BINS; do
    label=${lb%%=*} bin=${lb#*=}
    port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
    rm -rf "$tmp/data"
    "$bin" --port "$port" --data-dir "$tmp/data" --log-level warn &
    pid=$!
    for _ in $(seq 100); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.1; done
    "$B" --port "$port" --keys 20000 -w vectors -c 32 -n 10 --json >/dev/null
    bench/wait_index_settled.sh "$port" 600 || echo "index did not settle; measuring anyway" >&2
    sleep 2
    r=$("$B" --port "$port" --keys 20000 --no-populate -w "$MIX" -c 32 -d 30 --rate "$RATE" --json)
    st=$(curl -s "localhost:$port/v1/stats")
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); s=json.loads(sys.argv[2])["index"]; d.update(name="index_churn", label=sys.argv[3], round=int(sys.argv[4]), merges=s.get("merges"), promotions=s.get("promotions"), compactions=s.get("compactions")); print(json.dumps(d))' "$r" "$st" "$label" "$round" >> "$OUT"
    kill $pid; wait $pid 2>/dev/null || true
    pid=
  done
done
cat "$OUT"
