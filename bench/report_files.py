"""report_files.py -- the sections of BENCHMARKS.md that bench/report.py
builds from results files of their own (fleet.jsonl, proxy.jsonl,
index_churn.jsonl, soak*.jsonl: written by bench/fleet.sh, proxy_bench.sh,
index_churn.sh and soak.sh, which run apart from bench/run.sh). Split from
report.py to keep each file readable; report.py calls these."""
import json, os


def median_row(rows, key):
    rows = sorted(rows, key=key)
    return rows[len(rows) // 2] if rows else None


def fleet_section(path, w):
    if not os.path.exists(path):
        return
    rows = [json.loads(l) for l in open(path) if l.strip()]
    lag = [r for r in rows if r["name"] == "fleet_lag"]
    alone_st = {(r.get("workload", "vector-store"), r["target_rate"]): r
                for r in rows if r["name"] == "fleet_store_alone"}
    look = [r for r in rows if r["name"] == "fleet_lookup"]
    catch = [r for r in rows if r["name"] == "fleet_catchup"]
    hits = [r for r in rows if r["name"] in ("fleet_local_hit", "fleet_remote_hit")]
    if not (lag or look or hits):
        return
    w("## Fleet: replication through Redis Streams\n")
    w("`bench/fleet.sh`: semcached nodes (2 event loops, `--sync full`) in a fleet through one "
      "Redis 7 on loopback (docs/fleet.md); Redis, the nodes and the load generator share the two "
      "cores.\n")
    if lag:
        w("**Replication lag between two nodes.** Node A takes stores open loop at a fixed rate for "
          "%d s, of new entries with 384-d vectors (`-w vector-store`: each is indexed on both "
          "nodes) or exact-only after a miss (`-w miss-store`); node B follows. "
          "Lag is, per record, B's apply commit minus A's commit (B's `/v1/stats` "
          "`lag_p50_ms`/`lag_p99_ms`, a log-linear histogram with 1-ms resolution below 16 ms, "
          "1/8 of the value above). The store latency of the same stores on the same node alone "
          "is beside it: what fleet mode adds to a store.\n" % round(lag[0].get("seconds", 10)))
        w("| stores | target stores/s | sustained stores/s | store p50 ms | store p99 ms | alone: "
          "sustained | alone: store p50 ms | alone: store p99 ms | records B applied | lag p50 ms | "
          "lag p99 ms |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in lag:
            wl = r.get("workload", "vector-store")
            a = alone_st.get((wl, r["target_rate"]), {})
            w("| %s | %d | %.0f | %.1f | %.1f | %s | %s | %s | %d | %d | %d |" % (
                "384-d vectors" if wl == "vector-store" else "exact-only", r["target_rate"],
                r["stores_s"], (r["store_p50_us"] or 0) / 1e3,
                (r["store_p99_us"] or 0) / 1e3,
                "%.0f" % a["stores_s"] if a.get("stores_s") else "-",
                "%.1f" % (a["store_p50_us"] / 1e3) if a.get("store_p50_us") else "-",
                "%.1f" % (a["store_p99_us"] / 1e3) if a.get("store_p99_us") else "-",
                r["applied"], r["lag_p50_ms"], r["lag_p99_ms"]))
        w("")
        w("Reading it: both nodes, Redis and the load generator share two cores here, so a "
          "follower's work comes out of the origin's CPU, which it would not on separate machines. "
          "With vectors, each node indexes every entry (an HNSW insert of a 384-d vector), and the "
          "follower's indexing halves what the origin sustains; the exact-only rows show the "
          "replication path itself: at the rate the origin sustains, B applies every record with "
          "the lag shown. A target rate the origin cannot sustain (5,000/s on this machine) shows "
          "what it did sustain; the lag stays bounded because B applies a reply of up to 256 "
          "records in one transaction.\n")
    if catch:
        w("**How fast one node applies.** Node A stores a backlog while B is not running; B then "
          "starts as a new node and reads the stream from its start (from B's start until both "
          "hold the same entries, start-up included): the rate one node applies at, its vector "
          "index included.\n")
        w("| stores | records | seconds | records/s applied |")
        w("|---|---:|---:|---:|")
        for r in catch:
            w("| %s | %d | %.1f | %d |" % ("384-d vectors" if r["workload"] == "vector-store"
                                          else "exact-only", r["records"], r["seconds"],
                                          r["records_s"]))
        w("")
    if look:
        w("**Lookups on a node in a fleet against the same node alone.** Exact hits, closed loop, 32 "
          "connections, 10,000 keys (Zipf 0.99, 512-byte answers); the fleet node has one peer and "
          "its replication idle but connected (heartbeats, XREAD BLOCK). Rounds alternate; the "
          "median run of each side. CPU µs per request is the server process's user + system "
          "time over the requests it answered in the run, which the machine's other load does not "
          "change the way it changes throughput. Target: within 5 %.\n")
        w("| node | req/s (median) | all runs | p50 µs | p99 µs | CPU µs / request (median) | ratio to alone |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        med = {}
        for side in ("alone", "fleet"):
            rr = [r for r in look if r["side"] == side]
            m = median_row(rr, lambda r: r["rate"])
            if m:
                med[side] = m
        cpu = {}
        for side in med:
            c = median_row([r for r in look if r["side"] == side and "cpu_us_per_req" in r],
                           lambda r: r["cpu_us_per_req"])
            cpu[side] = c["cpu_us_per_req"] if c else None
        for side, m in med.items():
            rr = [r for r in look if r["side"] == side]
            w("| %s | %.0f | %.0f–%.0f | %.0f | %.0f | %s | %.3f× req/s%s |" % (
                side, m["rate"], min(r["rate"] for r in rr), max(r["rate"] for r in rr),
                m["latency_us"]["p50"], m["latency_us"]["p99"],
                "%.1f" % cpu[side] if cpu.get(side) else "-",
                m["rate"] / med["alone"]["rate"] if "alone" in med else 0,
                ", %.3f× CPU" % (cpu[side] / cpu["alone"]) if cpu.get(side) and cpu.get("alone") else ""))
        w("")
    if hits:
        w("**An exact hit that reads Redis against semcached's local hit** "
          "(`semcached-fleet-bench`): the shared-remote design reads the serialized entry from "
          "Redis on every lookup (`GET` through hiredis, the same client library the fleet uses, "
          "then decoding it); semcached reads it from its own LMDB. Same entries (10,000 of 384-d "
          "vectors and 512-byte answers), same process, alternating, closed loop; the HTTP front "
          "both designs share is left out: this is the part that differs.\n")
        w("| lookup | threads | ops/s (median) | p50 µs | p99 µs | local ÷ remote |")
        w("|---|---:|---:|---:|---:|---:|")
        for th in sorted({r["threads"] for r in hits}):
            loc = median_row([r for r in hits if r["threads"] == th and r["name"] == "fleet_local_hit"],
                             lambda r: r["ops_s"])
            rem = median_row([r for r in hits if r["threads"] == th and r["name"] == "fleet_remote_hit"],
                             lambda r: r["ops_s"])
            for lbl, m in (("local (LMDB)", loc), ("remote (Redis GET)", rem)):
                if m:
                    w("| %s | %d | %.0f | %.2f | %.2f | %s |" % (
                        lbl, th, m["ops_s"], m["p50_us"], m["p99_us"],
                        "%.0f×" % (loc["ops_s"] / rem["ops_s"]) if lbl.startswith("local") and rem else ""))
        w("")


def proxy_section(path, w):
    if not os.path.exists(path):
        return
    rows = [json.loads(l) for l in open(path) if l.strip()]
    by = {}
    for r in rows:
        by.setdefault(r["name"], []).append(r)
    sc, ng = by.get("proxy_hit", []), by.get("nginx_proxy_cache_hit", [])
    lat = {r["name"]: r for r in rows if r["name"].startswith("proxy_latency_")}
    if not (sc and ng) and not lat:
        return
    m = (by.get("machine") or [{}])[0]
    w("## Proxy\n")
    w("`bench/proxy_bench.sh` (run by `make bench`; measured %s, load average %s on the two cores "
      "at the start: other work shared the machine, so compare the two sides of each run, not "
      "these numbers with the sections above).\n" % (m.get("date", "?"), m.get("load", "?")))
    if sc and ng:
        med = lambda runs: sorted(runs, key=lambda r: r["rate"])[(len(runs) - 1) // 2]
        s, n = med(sc), med(ng)
        w("**Hits through the proxy against nginx's own `proxy_cache`.** Both are an exact cache of "
          "the same chat-completion POSTs in front of the same mock upstream "
          "(tests/mock_upstream.py): semcached's proxy (2 loops, exact-only, tenant by API key) "
          "and nginx 1.22 (2 workers, `proxy_cache_methods POST`, `proxy_cache_key "
          "\"$request_uri|$request_body\"` with the body in memory, `proxy_cache_valid 200 10m`, "
          "`access_log off`, keep-alive to the upstream). 100 distinct bodies (a system and a user "
          "message, ~200 bytes) asked in turn, each stored in both before measuring (and checked: "
          "`X-Cache: HIT` from both, no upstream call during the runs). Same client for both: "
          "%d runs each, alternating, medians.\n" % len(sc))
        w("| server | req/s (median) | all runs | p50 µs | p90 µs | p99 µs | ratio to nginx | command |")
        w("|---|---:|---|---:|---:|---:|---:|---|")
        for name, r, runs in (("semcached proxy", s, sc), ("nginx proxy_cache", n, ng)):
            rates = sorted(x["rate"] for x in runs)
            w("| %s | %.0f | %s | %.0f | %.0f | %.0f | %.2f× | `%s` |" % (
                name, r["rate"], "–".join("%.0f" % x for x in (rates[0], rates[-1])) if len(rates) > 1 else "-",
                r["latency_us"]["p50"], r["latency_us"]["p90"], r["latency_us"]["p99"],
                r["rate"] / n["rate"], r["command"]))
        w("")
        p99s = sorted(x["latency_us"]["p99"] for x in sc), sorted(x["latency_us"]["p99"] for x in ng)
        pairs = ", ".join("%.2f×" % (a["rate"] / b["rate"]) for a, b in zip(sc, ng))
        w("Target: at least 1.0× nginx's hits/s: %s (%.2f× of the medians; run by run, each semcached "
          "run against the nginx run right after it: %s). p99, median of the runs: semcached %.1f "
          "ms, nginx %.1f ms.\n" % ("met" if s["rate"] >= n["rate"] else "missed", s["rate"] / n["rate"], pairs,
                                    p99s[0][(len(p99s[0]) - 1) // 2] / 1000.0,
                                    p99s[1][(len(p99s[1]) - 1) // 2] / 1000.0))
    if lat:
        w("**What a miss adds.** `bench/proxy_latency.py`: sequential chat requests with distinct "
          "prompts (every one a miss: looked up, forwarded, relayed, recorded, stored with `--sync "
          "full`), one connection each, alternately straight to the mock and through semcached. "
          "\"Streamed\" is the time from the request's last byte to the first event's first byte "
          "(time to first token); \"plain\" the whole request. The answer does not wait for the "
          "store's commit.\n")
        w("| request | n | mock direct p50 ms | p99 ms | through semcached p50 ms | p99 ms | added p50 ms | added p99 ms |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, label in (("proxy_latency_stream_ttfb", "streamed: first event"),
                            ("proxy_latency_plain", "plain: whole request")):
            r = lat.get(name)
            if r:
                w("| %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |" % (
                    label, r["n"], r["direct_ms"]["p50"], r["direct_ms"]["p99"], r["proxy_ms"]["p50"],
                    r["proxy_ms"]["p99"], r["added_ms"]["p50"], r["added_ms"]["p99"]))
        w("")
        worst = max(r["added_ms"]["p50"] for r in lat.values())
        w("Target: at most 1 ms added at the median: %s (at most %.2f ms). The p99s are the "
          "machine's: single requests on two busy shared cores. Command: `%s`.\n" % (
              "met" if worst <= 1.0 else "missed", worst, next(iter(lat.values()))["command"]))


def churn_section(path, w):
    if not os.path.exists(path):
        return
    rows = [json.loads(l) for l in open(path) if l.strip()]
    if not rows:
        return
    w("## Semantic lookups while the scope grows\n")
    w("`bench/index_churn.sh`: one scope of 20,000 384-d client vectors (HNSW), then 30 s open loop "
      "at %d request starts/s, 70 %% semantic lookups and 30 %% stores of new vectors into the same "
      "scope, measured after the population was indexed. Searches read the graph without a lock "
      "while new vectors go to the scope's delta and are merged into a copy of the graph in the "
      "background; a build labelled otherwise is an older one run alternately in the same run "
      "for comparison (`INDEX_CHURN_BINS`).\n" % round(rows[0]["rate"]))
    w("| build | round | lookups/s | lookup p50 ms | lookup p99 ms | stores/s | store p50 ms | store p99 ms | merges |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lk, st = r["by_kind"].get("lookup", {}), r["by_kind"].get("store", {})
        w("| %s | %d | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | %s |" % (
            r["label"], r["round"], lk.get("rate", 0), lk.get("p50_us", 0) / 1000.0,
            lk.get("p99_us", 0) / 1000.0, st.get("rate", 0), st.get("p50_us", 0) / 1000.0,
            st.get("p99_us", 0) / 1000.0, r.get("merges") if r.get("merges") is not None else "-"))
    w("")


def soak_section(soak_path, w):
    if os.path.exists(soak_path):
        srows = [json.loads(l) for l in open(soak_path) if l.strip()]
        peak = [r for r in srows if r["name"] == "soak_peak"]
        mins = [r for r in srows if r["name"] == "soak_minute"]
        if peak and mins:
            w("## Soak%s\n" % ("" if soak_path.endswith("/soak.jsonl") else
                                 ": the same without semantic lookups (%d minutes)" % len(mins)))
            mix = peak[0]["workload"]
            w("`%sbench/soak.sh` (%s): one server, mixed load `%s` (exact hits, stores "
              "of new keys that expire after 30 s%s), first closed loop for 20 s after 35 s of warm-up "
              "(so entries are already expiring) to find the peak (%.0f req/s), then open loop at "
              "80 %% of it%s, one 60-s semcached-bench run per minute, with the server's resident "
              "memory read from /proc after each minute. `--sync periodic`, `--map-size 2G`.%s\n" %
              ("" if "vectors" in mix else "SOAK_MINUTES=%d SOAK_MIX=%s " % (len(mins), mix),
               "run by `make soak`" if "vectors" in mix else "run by hand, to compare", mix,
               ", and semantic lookups with 128-d client vectors" if "vectors" in mix else "",
               peak[0]["rate"],
               " over %d connections (the peak's: %d)" % (mins[0]["connections"], peak[0]["connections"])
               if mins[0]["connections"] != peak[0]["connections"] else "",
               " \"server ≤\" is the server's own p99 in the minute, as the upper bound of the "
               "bucket of its request-duration histogram that holds it." if "server" in mins[0] else ""))
            has_server = "server" in mins[0]
            w("| minute | req/s | p50 µs | p99 µs | lookups p99 µs | stores p99 µs |%s errors | RSS MiB | entries |"
              % (" server ≤ lookups / stores µs |" if has_server else ""))
            w("|---:|---:|---:|---:|---:|---:|%s---:|---:|---:|" % ("---:|" if has_server else ""))
            for r in mins:
                bk = r.get("by_kind", {})
                sv = r.get("server", {})
                w("| %d | %.0f | %.0f | %.0f | %s | %s |%s %d | %.1f | %d |" % (
                    r["minute"], r["rate"], r["latency_us"]["p50"], r["latency_us"]["p99"],
                    "%.0f" % bk["lookup"]["p99_us"] if "lookup" in bk else "-",
                    "%.0f" % bk["store"]["p99_us"] if "store" in bk else "-",
                    " %.0f / %.0f |" % (sv.get("lookup_p99_us", 0), sv.get("store_p99_us", 0)) if has_server else "",
                    sum(r["errors"].values()), r["rss_kib"] / 1024.0, r["entries"]))
            w("")
            p99s = sorted(r["latency_us"]["p99"] for r in mins)
            rss = [r["rss_kib"] for r in mins]
            base = rss[min(1, len(rss) - 1)]
            spread = p99s[-1] / p99s[len(p99s) // 2]
            look = sorted(r["by_kind"]["lookup"]["p99_us"] for r in mins if "lookup" in r.get("by_kind", {}))
            stor = sorted(r["by_kind"]["store"]["p99_us"] for r in mins if "store" in r.get("by_kind", {}))
            w("Errors: %d. Resident memory after the first minute: %.1f to %.1f MiB (%+.1f %%). p99 by "
              "minute: median %.0f ms, max %.0f ms (%.1f× the median: %s). Median minute's p99 of "
              "lookups %.0f ms, of stores %.0f ms.\n" % (
                  sum(sum(r["errors"].values()) for r in mins), base / 1024.0, max(rss[1:] or rss) / 1024.0,
                  100.0 * (max(rss[1:] or rss) - base) / base, p99s[len(p99s) // 2] / 1000.0,
                  p99s[-1] / 1000.0, spread, "stable" if spread <= 3 else "not stable; `make soak` fails on it",
                  look[len(look) // 2] / 1000.0 if look else 0, stor[len(stor) // 2] / 1000.0 if stor else 0))
            if "server" in mins[0] and "vectors" in mix:
                w("Where the tail comes from: a store is acknowledged after the writer thread's next "
                  "commit, and with `--sync periodic` every commit still fsyncs its data pages "
                  "(only the meta page waits for the timer), so stores wait out one or two commit "
                  "cycles of a writer that also removes expired entries and applies hit counts "
                  "(both in slices between stores; `writer_busy_s` in /v1/stats). Before slicing, one "
                  "sweep transaction (~1,300 entries, ~100 ms) and one hit-count flush per second "
                  "stalled every store behind them, and with only the peak's 32 connections the "
                  "paced lookups queued inside the load generator behind those stores (its lookup "
                  "p99 60 ms while the server's own was under 5 ms): the minutes' p99 was 470 ms "
                  "median, 3 s max.\n")
