#!/bin/bash
# wait_index_settled.sh PORT [TRIES] -- waits until the semcached on PORT has
# absorbed what was stored (no write queue, no background merge or rebuild,
# a delta below the default --index-delta-max), polling twice a second; so a
# measurement after a population sees a finished index. Exits 1 on timeout.
port=${1:?usage: wait_index_settled.sh PORT [TRIES]}
for _ in $(seq "${2:-1200}"); do
  curl -s "localhost:$port/v1/stats" | python3 -c 'import json,sys; j=json.load(sys.stdin); i=j["index"]; sys.exit(0 if j["write_queue"] == 0 and i.get("rebuilding", 0) == 0 and i.get("delta", 0) < 1024 else 1)' 2>/dev/null && exit 0
  sleep 0.5
done
exit 1
