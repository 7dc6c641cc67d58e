#!/usr/bin/env bash
# readme_examples.sh -- runs the curl examples of README.md's "Try it" section
# (every sh block in it),
# exactly as printed but for the port, against a fresh semcached, and checks
# what each one answers. Prints the SC-RESULT line tests/run.sh adds up.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
# As `make run` does: the default GloVe model, fetched by `make model`.
model="${SEMCACHED_MODEL_CACHE:-$HOME/.cache/semcached}/glove-100d.scglove"
if [ ! -f "$model" ]; then
  echo "SKIP: README examples need the default model ($model); run make model"
  echo "SC-RESULT passed=0 failed=0 skipped=1"
  exit 0
fi
. tests/harness.bash
harness_init semcached-readme
port=$(free_port)
"$BUILD/semcached" --port "$port" --data-dir "$tmp/data" --log-level warn --model "$model" \
  2>"$tmp/semcached.log" &
pids+=($!)
# Ready, not just up: the semantic examples need the index loaded.
wait_ready "$port" semcached

# Each example: the lines from one "curl" up to the line where its quotes close.
examples=$(awk '/^## /{on=($0 ~ /^## Try it/)} on&&/^```sh/{inblk=1;next} inblk&&/^```/{inblk=0} on&&inblk' README.md |
  grep -v '^#' | python3 -c '
import sys, shlex
buf = ""
for line in sys.stdin.read().splitlines():
    if not line.strip() and not buf: continue
    buf += line + "\n"
    if line.endswith("\\"):
        continue
    try:
        shlex.split(buf.replace("\\\n", " "))
    except ValueError:
        continue
    print(buf.strip().replace("\n", "\\x0a")); buf = ""
')
expect=('"status":"miss"' '"key":"' '"status":"hit","match":"exact"'
        '"status":"hit","match":"semantic"' '"status":"miss","key":"' '"lookups":{'
        'semcached_lookups_total{namespace="default",result="semantic_hit"} 1'
        '"key":"' '"status":"hit","match":"semantic"')
passed=0 failed=0 i=0
while IFS= read -r ex; do
  cmd=$(printf '%b' "${ex//localhost:8080/localhost:$port}")
  out=$(bash -c "$cmd" 2>&1)
  want=${expect[$i]:-}
  if [ -n "$want" ] && [[ "$out" == *"$want"* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "README example $((i + 1)) did not answer '$want':"; echo "$cmd"; echo "-> $out" | head -c 600; echo
  fi
  i=$((i + 1))
done <<<"$examples"
[ "$i" = "${#expect[@]}" ] || { echo "found $i examples, expected ${#expect[@]}"; failed=$((failed + 1)); }
[ "$failed" = 0 ] || show_logs
echo "SC-RESULT passed=$passed failed=$failed skipped=0"
