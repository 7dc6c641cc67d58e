#!/bin/bash
# soak.sh -- `make soak`'s long run: mixed load at 80 % of the measured peak
# (measured closed loop in steady state) for SOAK_MINUTES (10) with TTL churn, one open-loop semcached-bench run per
# minute against the same server, so p99, errors and the server's resident
# memory are seen minute by minute. Writes bench/results/soak.jsonl (one line
# per minute plus the peak) and prints a summary; fails if any request failed,
# resident memory grew by more than SOAK_RSS_GROWTH (20 %) after warm-up, or a
# minute's p99 exceeded SOAK_P99_SPREAD (3) times the median minute's.
# SOAK_MIX and SOAK_OUT change the workload and the output file,
# SOAK_CONNECTIONS the peak's connections (32), SOAK_OPEN_CONNECTIONS the
# paced minutes' (256),
# SOAK_CLIENT_THREADS the load generator's event loops (1), SOAK_PEAK_SECONDS the
# closed-loop peak measurement (20).
set -euo pipefail
BUILD=${BUILD:-build}
MINUTES=${SOAK_MINUTES:-10}
GROWTH=${SOAK_RSS_GROWTH:-0.20}
OUT=${SOAK_OUT:-bench/results/soak.jsonl}
P99_SPREAD=${SOAK_P99_SPREAD:-3}
B="$BUILD/semcached-bench"
tmp=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
# Fresh entries live 30 s: the sweeper and the expiry index work all the time.
"$BUILD/semcached" --port "$port" --data-dir "$tmp/data" --map-size 2G --sync periodic \
  --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.1; done
MIX=${SOAK_MIX:-exact=70,miss-store=20,vectors=10}
CLIENT_THREADS=${SOAK_CLIENT_THREADS:-1}
CONNECTIONS=${SOAK_CONNECTIONS:-32}
# Open loop, a request must never wait for a free connection in the load
# generator: a store holds its connection until its commit, so with the peak's
# 32 connections lookups queued behind stores inside the client (the server's
# own lookup p99 stayed under 5 ms while the client's was 60 ms).
OPEN_CONNECTIONS=${SOAK_OPEN_CONNECTIONS:-256}
COMMON=(--port "$port" -t "$CLIENT_THREADS" -w "$MIX" --keys 10000 --dim 128 --ttl 30 --json)
# The peak is measured in steady state: 30 s of warm-up first, so entries are
# already expiring (a peak taken before the churn starts is not sustainable).
peak=$("$B" "${COMMON[@]}" -c "$CONNECTIONS" -d "${SOAK_PEAK_SECONDS:-20}" --warmup 35)
# The open-loop rate paces the requests the tool starts; each miss-store
# start is followed by its store, so the request rate is rate * (1 + share).
rate=$(python3 -c 'import json,sys; share=dict(p.split("=") for p in sys.argv[2].split(",")).get("miss-store","0"); print(int(json.loads(sys.argv[1])["rate"] * 0.8 / (1 + int(share) / 100.0)))' "$peak" "$MIX")
: > "$OUT"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["name"]="soak_peak"; print(json.dumps(d))' "$peak" >> "$OUT"
echo "peak $(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["rate"]))' "$peak") req/s; soaking at $rate starts/s (80 % of the peak in requests) for $MINUTES min" >&2
# The server's own view of each minute: its request-duration histograms
# (lookup and store) before and after, so a minute's server-side p99 (the
# upper bound of the bucket holding it) is reported beside the client's.
hist() { curl -sf "localhost:$port/metrics" | grep -E '^semcached_request_duration_seconds_bucket\{endpoint="(lookup|store)"' || true; }
for m in $(seq "$MINUTES"); do
  h0=$(hist)
  r=$("$B" "${COMMON[@]}" -c "$OPEN_CONNECTIONS" --no-populate --rate "$rate" -d 60 --warmup 0)
  h1=$(hist)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  entries=$(curl -sf "localhost:$port/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"])')
  python3 - "$r" "$m" "$rss" "$entries" "$h0" "$h1" >> "$OUT" <<'PY'
import json, re, sys
d = json.loads(sys.argv[1])
def parse(text):
    out = {}
    for ep, le, n in re.findall(r'endpoint="(\w+)",le="([^"]+)"\} (\d+)', text):
        out.setdefault(ep, []).append((float("inf") if le == "+Inf" else float(le), int(n)))
    return out
a, b = parse(sys.argv[5]), parse(sys.argv[6])
server = {}
for ep, buckets in b.items():
    before = dict(a.get(ep, []))
    cum = [(le, n - before.get(le, 0)) for le, n in buckets]
    total = cum[-1][1] if cum else 0
    if total:
        server[ep + "_p99_us"] = next(le for le, n in cum if n >= 0.99 * total) * 1e6
d.update(name="soak_minute", minute=int(sys.argv[2]), rss_kib=int(sys.argv[3]),
         entries=int(sys.argv[4]), server=server)
print(json.dumps(d))
PY
  echo "minute $m: $(tail -1 "$OUT" | python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["server"]; print("%.0f req/s, p99 %.0f us (server: lookup <= %.0f us, store <= %.0f us), errors %d" % (d["rate"], d["latency_us"]["p99"], s.get("lookup_p99_us", 0), s.get("store_p99_us", 0), sum(d["errors"].values())))'), rss ${rss} KiB, entries $entries" >&2
done
python3 - "$OUT" "$GROWTH" "$P99_SPREAD" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
mins = [r for r in rows if r["name"] == "soak_minute"]
errors = sum(sum(r["errors"].values()) for r in mins)
base = mins[min(1, len(mins) - 1)]["rss_kib"]  # after the first minute of warm-up
peak = max(r["rss_kib"] for r in mins[1:] or mins)
growth = (peak - base) / base
p99 = sorted(r["latency_us"]["p99"] for r in mins)
print("soak: %d minutes, %d errors, rss %d -> max %d KiB (%+.1f %%), p99 median %.0f us, max %.0f us"
      % (len(mins), errors, base, peak, 100 * growth, p99[len(p99) // 2], p99[-1]))
# Stable p99: no minute's p99 above SOAK_P99_SPREAD times the median minute's.
unstable = p99[-1] > float(sys.argv[3]) * p99[len(p99) // 2]
if unstable:
    print("soak: p99 is not stable (max %.1fx the median)" % (p99[-1] / p99[len(p99) // 2]))
sys.exit(1 if errors or growth > float(sys.argv[2]) or unstable else 0)
EOF
