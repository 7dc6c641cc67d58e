#!/usr/bin/env python3
"""wrk_json.py -- wrk --latency output (argv[1]) as the JSON fields
semcached-bench prints: {"rate", "latency_us": {p50, p90, p99}, "errors"}
(errors: wrk's non-2xx/3xx count). For bench/run.sh and bench/proxy_bench.sh."""
import json, re, sys

t = sys.argv[1]


def us(s):
    v, u = re.match(r"([\d.]+)(us|ms|s)", s).groups()
    return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[u]


lat = {m[0]: us(m[1]) for m in re.findall(r"\s+(50|75|90|99)%\s+(\S+)", t)}
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
print(json.dumps({"rate": float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)),
                  "latency_us": {"p50": lat["50"], "p90": lat["90"], "p99": lat["99"]},
                  "errors": int(non2xx.group(1)) if non2xx else 0}))
