#!/usr/bin/env bash
# prometheus.sh -- semcached under a real Prometheus (Debian's package): a
# test server and a Prometheus scraping it every second (with
# contrib/prometheus/alerts.yml loaded), both on free loopback ports, then
# known traffic with curl (stores, exact hits, misses, a semantic hit), then
# tests/prometheus_check.py asks Prometheus's HTTP API until the counters and
# histogram counts equal what was sent, checks the loaded rules and the
# Grafana dashboard's expressions. Both processes are stopped by pid on any
# exit. Prints the SC-RESULT line; skipped without prometheus.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
if ! command -v prometheus >/dev/null; then
  echo "SKIP: needs Debian's prometheus package (apt-get install prometheus)"
  echo "SC-RESULT passed=0 failed=0 skipped=1"
  exit 0
fi
. tests/harness.bash
harness_init semcached-prometheus
# The server, with the default model when it is there (the server embeds
# texts; the semantic hit below carries its own vectors either way).
sc_port=$(free_port)
model="${SEMCACHED_MODEL_CACHE:-$HOME/.cache/semcached}/glove-100d.scglove"
model_args=()
[ -f "$model" ] && model_args=(--model "$model")
"$BUILD/semcached" --port "$sc_port" --data-dir "$tmp/data" --log-level warn "${model_args[@]}" \
  2>"$tmp/semcached.log" &
pids+=($!)
wait_ready "$sc_port" semcached

prom_port=$(free_port)
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/contrib/prometheus/alerts.yml
scrape_configs:
  - job_name: semcached
    static_configs:
      - targets: ["127.0.0.1:$sc_port"]
EOF
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn 2>"$tmp/prometheus.log" &
pids+=($!)
wait_url "http://127.0.0.1:$prom_port/-/ready" "${pids[-1]}" || fail "prometheus did not become ready"

# Known traffic. Every miss asks in a scope of its own (a new seed), so no
# semantic search can turn it into a hit.
sent_bad=0
call() { # path body expected-status [expected substring]
  local out code
  out=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$sc_port$1" -H 'Content-Type: application/json' -d "$2")
  code=${out##*$'\n'}
  if [ "$code" != "$3" ] || [[ "${out%$'\n'*}" != *"${4:-}"* ]]; then
    echo "FAIL: POST $1 $2 answered $code, expected $3 ${4:-}: ${out%$'\n'*}"
    sent_bad=$((sent_bad + 1))
  fi
}
usage='"usage":{"prompt_tokens":10,"completion_tokens":5}'
for q in alpha beta gamma; do
  call /v1/store "{\"namespace\":\"prom\",\"model\":\"m\",\"prompt\":\"$q question\",\"response\":\"$q\",$usage}" 201
done
for q in alpha alpha alpha beta beta; do
  call /v1/lookup "{\"namespace\":\"prom\",\"model\":\"m\",\"prompt\":\"$q question\"}" 200 '"match":"exact"'
done
for seed in 1 2 3 4; do
  call /v1/lookup "{\"namespace\":\"prom\",\"model\":\"m\",\"prompt\":\"alpha question\",\"params\":{\"seed\":$seed}}" 200 '"status":"miss"'
done
call /v1/store '{"namespace":"vec","model":"m","prompt":"vector one","embedding":[1,0,0,0],"embedder":"client","response":1}' 201
call /v1/lookup '{"namespace":"vec","model":"m","prompt":"vector uno","embedding":[1,0.05,0,0],"embedder":"client"}' 200 '"match":"semantic"'

q() { printf '%s' "$1"; }
out=$(python3 tests/prometheus_check.py --prometheus "http://127.0.0.1:$prom_port" \
  --semcached "http://127.0.0.1:$sc_port" --dashboard contrib/grafana/semcached.json \
  "$(q 'up{job="semcached"}=1')" \
  "$(q 'semcached_lookups_total{namespace="prom",result="exact_hit"}=5')" \
  "$(q 'semcached_lookups_total{namespace="prom",result="miss"}=4')" \
  "$(q 'semcached_lookups_total{namespace="prom",result="semantic_hit"}=0')" \
  "$(q 'semcached_lookups_total{namespace="vec",result="semantic_hit"}=1')" \
  "$(q 'sum by (result) (semcached_lookups_total{result="exact_hit"})=5')" \
  "$(q 'semcached_request_duration_seconds_count{endpoint="lookup"}=10')" \
  "$(q 'semcached_request_duration_seconds_bucket{endpoint="lookup",le="+Inf"}=10')" \
  "$(q 'semcached_request_duration_seconds_count{endpoint="store"}=4')" \
  "$(q 'semcached_requests_total{endpoint="lookup",code="200"}=10')" \
  "$(q 'semcached_semantic_similarity_count{outcome="hit"}=1')" \
  "$(q 'semcached_tokens_saved_total{namespace="prom",model="m",kind="prompt"}=50')" \
  "$(q 'semcached_tokens_saved_total{namespace="prom",model="m",kind="completion"}=25')" \
  "$(q 'semcached_entries=4')" \
  "$(q 'count(histogram_quantile(0.99, sum by (le) (semcached_request_duration_seconds_bucket{endpoint="lookup"})) <= 10)=1')" \
  2>&1)
printf '%s\n' "$out" | grep -v '^SC-RESULT'
line=$(printf '%s\n' "$out" | grep '^SC-RESULT ' | tail -n 1)
[ -n "$line" ] || fail "tests/prometheus_check.py printed no result"
passed=$(sed -E 's/.*passed=([0-9]+).*/\1/' <<<"$line")
failed=$(( $(sed -E 's/.*failed=([0-9]+).*/\1/' <<<"$line") + sent_bad ))
[ "$failed" = 0 ] || show_logs
echo "SC-RESULT passed=$passed failed=$failed skipped=0"
[ "$failed" = 0 ]
