#!/usr/bin/env python3
"""prometheus_check.py -- the Prometheus side of tests/prometheus.sh.

Against a running Prometheus that scrapes a running semcached:
  1. polls /api/v1/query until every expected QUERY=VALUE holds (each query
     must answer one sample) or the timeout passes;
  2. checks the alert rules Prometheus loaded: each evaluates without error,
     none fires, and each names only series semcached's /metrics exposes
     (but for `up` and the fleet series that does not exist yet);
  3. checks the Grafana dashboard: valid JSON, every panel on the
     ${DS_PROMETHEUS} data source, a namespace variable, and every PromQL
     expression naming only exposed series and parsing in Prometheus.
Standard library only. Prints one line per failure and the SC-RESULT line.
"""
import argparse
import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# Grafana's variables, as the test sends them to Prometheus.
GRAFANA_VARS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h",
                "namespace": ".*", "instance": ".*"}
# Names the rules may use that this test's server does not expose (it runs no fleet).
RULE_EXTRA_NAMES = {"up", "semcached_fleet_replication_lag_seconds"}


def get(url, params=None):
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode()
    except urllib.error.HTTPError as e:  # Prometheus answers 400 for a bad query
        return e.read().decode()


def query(prom, expr):
    """(status, samples as {labels-string: value}, error)."""
    d = json.loads(get(prom + "/api/v1/query", {"query": expr}))
    if d.get("status") != "success":
        return "error", {}, d.get("error", "?")
    res = d["data"]["result"]
    if d["data"]["resultType"] == "scalar":
        return "success", {"": float(res[1])}, None
    return "success", {json.dumps(s["metric"], sort_keys=True): float(s["value"][1]) for s in res}, None


def exposed_names(metrics_text):
    """Every series name /metrics declares (histograms with their suffixes)."""
    names = set()
    for m in re.finditer(r"^# TYPE (\S+) (\S+)$", metrics_text, re.M):
        names.add(m.group(1))
        if m.group(2) == "histogram":
            names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
    return names


def expr_names(expr):
    """The series an expression names: every semcached_ identifier, and `up`."""
    return set(re.findall(r"\b(semcached_[a-zA-Z0-9_]+|up)\b(?!\s*\()", expr))


def grafana_expand(expr):
    return re.sub(r"\$\{?(\w+)\}?", lambda m: GRAFANA_VARS.get(m.group(1), m.group(0)), expr)


class Counts:
    def __init__(self):
        self.passed = self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL " + what)


def check_expectations(c, prom, expects, timeout):
    want = []
    for e in expects:
        q, _, v = e.rpartition("=")
        want.append((q, float(v)))
    deadline = time.time() + timeout
    while True:
        got = {}
        for q, v in want:
            st, samples, err = query(prom, q)
            got[q] = err if st != "success" else list(samples.values())
        pending = [(q, v) for q, v in want if got[q] != [v]]
        if not pending or time.time() > deadline:
            break
        time.sleep(0.5)
    for q, v in want:
        c.check(got[q] == [v], f"{q}: expected [{v}], Prometheus answers {got[q]} after {timeout} s")


def check_rules(c, prom, names):
    d = json.loads(get(prom + "/api/v1/rules"))
    rules = [r for g in d["data"]["groups"] for r in g["rules"]]
    c.check(len(rules) >= 9, f"Prometheus loaded {len(rules)} rules, expected the 9 of alerts.yml")
    for r in rules:
        c.check(r.get("health") == "ok", f"rule {r['name']} health {r.get('health')}: {r.get('lastError')}")
        c.check(r.get("state") in ("inactive", None), f"rule {r['name']} is {r.get('state')} on a healthy server")
        unknown = expr_names(r["query"]) - names - RULE_EXTRA_NAMES
        c.check(not unknown, f"rule {r['name']} names series /metrics does not have: {sorted(unknown)}")


def dashboard_targets(dash):
    """(where, data source, expr) of every panel and its targets, nested rows included."""
    out = []

    def walk(panels):
        for p in panels:
            if p.get("type") != "row":
                out.append((f"panel '{p.get('title')}'", p.get("datasource"), None))
            for t in p.get("targets", []):
                out.append((f"panel '{p.get('title')}' {t.get('refId')}", t.get("datasource"),
                            t.get("expr", "")))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    return out


def check_dashboard(c, prom, path, names):
    try:
        dash = json.load(open(path, encoding="utf-8"))
    except ValueError as e:
        c.check(False, f"{path} is not JSON: {e}")
        return
    inputs = [i.get("name") for i in dash.get("__inputs", [])]
    c.check("DS_PROMETHEUS" in inputs, f"{path}: no DS_PROMETHEUS in __inputs")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    c.check("namespace" in variables, f"{path}: no namespace variable")
    for v in variables.values():
        if v.get("type") == "query":
            q = v["query"]["query"] if isinstance(v.get("query"), dict) else v.get("query", "")
            used = expr_names(q)
            c.check(used and not (used - names), f"variable {v['name']}: {q} names {sorted(used - names)}")
    targets = dashboard_targets(dash)
    bad_ds = [w for w, ds, _ in targets if (ds or {}).get("uid") != "${DS_PROMETHEUS}"]
    c.check(not bad_ds, f"{path}: not on ${{DS_PROMETHEUS}}: {bad_ds[:5]}")
    exprs = [(w, e) for w, _, e in targets if e is not None]
    c.check(len(exprs) >= 10, f"{path}: only {len(exprs)} expressions")
    for where, expr in exprs:
        used = expr_names(expr)
        c.check(used and not (used - names),
                f"{where}: {expr} names series /metrics does not have: {sorted(used - names)}")
        st, _, err = query(prom, grafana_expand(expr))
        c.check(st == "success", f"{where}: Prometheus refuses {grafana_expand(expr)}: {err}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prometheus", required=True, help="base URL of Prometheus")
    ap.add_argument("--semcached", required=True, help="base URL of the semcached it scrapes")
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("expect", nargs="*", help="QUERY=VALUE, each query answering one sample")
    a = ap.parse_args()
    c = Counts()
    names = exposed_names(get(a.semcached + "/metrics"))
    c.check(len(names) > 40, f"/metrics declares only {len(names)} series")
    check_expectations(c, a.prometheus, a.expect, a.timeout)
    check_rules(c, a.prometheus, names)
    check_dashboard(c, a.prometheus, a.dashboard, names)
    print(f"SC-RESULT passed={c.passed} failed={c.failed} skipped=0")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
