#!/usr/bin/python3
"""report.py -- turns bench/results/latest.jsonl (written by bench/run.sh)
into BENCHMARKS.md and the latency-vs-throughput plot (gnuplot PNG). Every
number in the document comes from that file; the prose around it says how
each was measured and against what."""
import functools, json, os, re, subprocess, sys

from report_files import churn_section, fleet_section, proxy_section, soak_section


def simd_level():
    """The widest vector extension hnswlib's -march=native build can use here
    (report.py runs on the machine that ran the benchmarks)."""
    try:
        flags = next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"


# Which `make bench` section (BENCH_ONLY's names) measured a row, by the
# row's name or its prefix; rows of no section (machine, exact_ref) are
# never kept on their own.
SECTION_ROWS = {
    "exact": ("exact_hit", "nginx_", "redis_get", "open_loop_", "wrk_", "tool_"),
    "store": ("store_durable",),
    "tail": ("tail_after", "tail_rested"),
    "semantic": ("semantic_vectors", "hnswlib_inprocess"),
    "decide": ("search_decide", "hnswlib_decide"),
    "text": ("text_",),
    "crossover": ("crossover",),
    "embed": ("embed_eval",),
    "bert": ("bert_",),
    "replay": ("qqp_replay",),
}
# Sections whose rows report a ratio to exact hits of the run that measured them.
EXACT_RATIO_SECTIONS = ("semantic", "text")


def section_of(name):
    return next((sec for sec, names in SECTION_ROWS.items()
                 if any(name == n or (n.endswith("_") and name.startswith(n)) or
                        name.startswith(n + "_") for n in names)), None)


def keep(prev_path, res_path):
    """Appends to res_path the rows of prev_path whose section this run did
    not measure (its machine row lists the sections it ran), each still
    carrying the run that measured it. Exact hits of such a row's run go
    along as exact_ref rows, unless this run measured that run's reference
    itself, so a kept ratio stays one of the same run."""
    cur = [json.loads(l) for l in open(res_path) if l.strip()]
    prev = [json.loads(l) for l in open(prev_path) if l.strip()]
    mach = next((r for r in cur if r["name"] == "machine"), {})
    ran = set(mach.get("sections", SECTION_ROWS))
    pdate = next((r.get("date") for r in prev if r["name"] == "machine"), None)
    for r in prev:
        r.setdefault("run", pdate)
    kept = [r for r in prev if section_of(r["name"]) not in (None,) + tuple(ran)]
    runs = {r["run"] for r in kept if section_of(r["name"]) in EXACT_RATIO_SECTIONS}
    have = {r.get("run") for r in cur + kept if r["name"] in ("exact_hit", "exact_ref")}
    for r in prev:
        if r["name"] in ("exact_hit", "exact_ref") and r["run"] in runs - have:
            kept.append(dict(r, name="exact_ref"))
    with open(res_path, "a") as f:
        for r in kept:
            f.write(json.dumps(r) + "\n")
    print("report.py: kept %d rows of sections not rerun (%s)" %
          (len(kept), " ".join(sorted({section_of(r["name"]) or r["name"] for r in kept})) or "none"),
          file=sys.stderr)


def main():
    if sys.argv[1] == "--keep":
        return keep(sys.argv[2], sys.argv[3])
    res_path, md_path, png_path = sys.argv[1:4]
    rows = [json.loads(l) for l in open(res_path) if l.strip()]
    by = {}
    for r in rows:
        by.setdefault(r["name"], []).append(r)
    one = lambda n: by[n][0] if n in by else None

    def med(n):
        """The run with the median rate among repeated runs of n (the lower
        median for an even count), so one noisy run does not decide a ratio."""
        if n not in by:
            return None
        runs = sorted(by[n], key=lambda r: r["rate"])
        return runs[(len(runs) - 1) // 2]

    def spread(n):
        rates = sorted(r["rate"] for r in by.get(n, []))
        return "%.0f–%.0f" % (rates[0], rates[-1]) if len(rates) > 1 else "-"
    m = one("machine")

    def earlier(rs):
        """Says so when a section's rows were kept from an earlier run."""
        runs = sorted({r["run"] for r in rs if r.get("run") and r["run"] != m["date"]})
        if runs:
            w("*Measured %s, not in the run of the header (`BENCH_ONLY` did not rerun this "
              "section, or its command was run on its own).*\n" % ", ".join(runs))

    def exact_of_run(r):
        """The median exact-hit run of the `make bench` run that measured r:
        its exact_hit rows, or the exact_ref rows run.sh measures (or
        report.py --keep carries along) when that run had no exact section."""
        ex = sorted((x for x in rows if x["name"] in ("exact_hit", "exact_ref")
                     and x.get("run") == r.get("run")), key=lambda x: x["rate"])
        return ex[(len(ex) - 1) // 2] if ex else None

    def exact_ratio(r):
        ex = exact_of_run(r)
        return "%.4f×" % (r["rate"] / ex["rate"]) if ex else "-"

    def lat(r, q):
        v = r.get("latency_us", {}).get(q)
        return "%.0f" % v if v is not None else "-"

    out = []
    w = out.append
    w("# Benchmarks\n")
    w("Generated by `make bench` (bench/run.sh, then bench/report.py) from "
      "`bench/results/latest.jsonl`; rerun it to refresh every number below.\n")
    w("Machine: %s, %d cores, %.1f GiB, Linux %s; measured %s. The load generator, the server "
      "and every peer share these cores, so absolute numbers are lower than on a dedicated "
      "client and server; ratios measured in the same run are the point. This is a shared, "
      "noisy machine: expect a few percent run to run.\n" %
      (m["cpu"], m["cores"], m["mem_gib"], m["kernel"],
       m["date"] + (" (load average %s at the start; sections: %s)" % (m["load"], " ".join(m["sections"]))
                    if m.get("load") and m.get("sections") else "")))
    w("Each semcached-bench run is closed loop unless it says open loop, %s measured seconds "
      "after 2 s of warm-up; latencies are from a log-linear histogram (< 0.4 %% error); non-2xx "
      "answers and transport errors are counted apart and were zero unless shown.\n" %
      ("%.0f" % one("exact_hit")["seconds"] if one("exact_hit") else "10"))

    # ---- exact hits
    reps = len(by.get("exact_hit", []))
    w("## Exact-hit lookups against nginx and Redis\n")
    earlier(by.get("exact_hit", []))
    w("semcached (2 event loops, `--sync full`) answers `POST /v1/lookup` hits on a 10,000-key "
      "space with Zipf(0.99) popularity and 512-byte stored responses. nginx (2 workers) serves "
      "the byte-identical response body as a static file to the same tool; Redis answers GET of "
      "a value of the same size through its own redis-benchmark at the same concurrency.\n")
    w("The load generator shares the machine's two cores with the server it drives, so how many "
      "client threads drive a server hardest differs between servers. Each side is measured "
      "with one and with two client threads, %d times each, alternating with the other server; "
      "the table shows the median run of each (the range of all runs beside it), and ratios are "
      "between medians with the same client.\n" % reps)
    w("| run | client threads | req/s (median) | all runs | p50 µs | p90 µs | p99 µs | ratio to nginx | command |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    ng, ng2 = med("nginx_static"), med("nginx_static_2t")
    ngp = one("nginx_static_pipelined")
    for name, ref, threads in [("exact_hit", ng, 1), ("nginx_static", ng, 1),
                               ("exact_hit_2t", ng2, 2), ("nginx_static_2t", ng2, 2),
                               ("exact_hit_pipelined", ngp, 1), ("nginx_static_pipelined", ngp, 1),
                               ("redis_get", ng, "-")]:
        r = med(name)
        if not r:
            continue
        ratio = "%.2f×" % (r["rate"] / ref["rate"]) if ref and ref["rate"] else "-"
        w("| %s | %s | %.0f | %s | %s | %s | %s | %s | `%s` |" % (
            name, threads, r["rate"], spread(name), lat(r, "p50"), lat(r, "p90"), lat(r, "p99"),
            ratio, r["command"]))
    w("")
    best = lambda names: max((med(n) for n in names if med(n)), key=lambda r: r["rate"], default=None)
    sc_best, ng_best = best(["exact_hit", "exact_hit_2t"]), best(["nginx_static", "nginx_static_2t"])
    if sc_best and ng_best:
        w("Each server at its best client configuration: semcached %.0f req/s, nginx %.0f req/s: "
          "**%.2f×**.\n" % (sc_best["rate"], ng_best["rate"], sc_best["rate"] / ng_best["rate"]))
    w("Target: exact-hit throughput at least equal to nginx serving the same bytes through the "
      "same tool. (semcached parses JSON, canonicalizes and hashes the request and reads LMDB for "
      "every hit; nginx sends a file.)\n")

    # ---- tool check
    if "wrk_static" in by and "tool_static" in by:
        w("## The load tool checked against wrk\n")
        earlier(by["wrk_static"])
        w("32 connections, closed loop, one client thread, the client pinned to one core and a "
          "one-worker nginx to the other (`taskset`, `worker_cpu_affinity`), the two tools "
          "alternating, %d runs each; the table shows each tool's median run. `static` is the "
          "hit's body as a file: throughput is compared there. `delay` answers after 2 ms "
          "(nginx's echo module, `echo_sleep 0.002`), a latency known in advance, so the "
          "percentiles compare the tools' clocks and histograms rather than the scheduler's noise "
          "(unpinned, with both nginx workers, single runs' p99 swing between 0.7 and 5 ms for "
          "either tool). wrk prints milliseconds with two decimals, i.e. 10 µs steps.\n"
          % len(by["wrk_static"]))
        w("| target | tool | req/s (median) | all runs | p50 µs | p90 µs | p99 µs | command |")
        w("|---|---|---:|---:|---:|---:|---:|---|")
        for tag in ("static", "delay"):
            for tool in ("tool", "wrk"):
                r = med("%s_%s" % (tool, tag))
                if r:
                    w("| %s | %s | %.0f | %s | %s | %s | %s | `%s` |" % (
                        tag, "semcached-bench" if tool == "tool" else "wrk 4.1", r["rate"],
                        spread("%s_%s" % (tool, tag)), lat(r, "p50"), lat(r, "p90"), lat(r, "p99"),
                        r["command"]))
        ts, wst = med("tool_static"), med("wrk_static")
        w("\nThroughput ratio semcached-bench / wrk on the static file: **%.2f** (target within "
          "10 %%)." % (ts["rate"] / wst["rate"]))
        td, wd = med("tool_delay"), med("wrk_delay")
        if td and wd:
            # Percentiles compared as medians over the runs of each tool.
            def pmed(n, q):
                v = sorted(r["latency_us"][q] for r in by[n])
                return v[(len(v) - 1) // 2]
            diffs = ["%s %+.1f %%" % (q, 100 * (pmed("tool_delay", q) / pmed("wrk_delay", q) - 1))
                     for q in ("p50", "p90", "p99")]
            def rel_spread(n, q):
                v = sorted(r["latency_us"][q] for r in by[n])
                return 100 * (v[-1] - v[0]) / pmed(n, q)
            spreads = ["%s %.1f %% / %.1f %%" % (q, rel_spread("tool_delay", q), rel_spread("wrk_delay", q))
                       for q in ("p50", "p90", "p99")]
            w(" Percentiles on the 2-ms target, semcached-bench against wrk (medians over the "
              "runs): %s (the histogram's error: < 0.4 %%; wrk's printed resolution: 10 µs). "
              "Each tool's own spread from run to run (max - min over the median; "
              "semcached-bench / wrk): %s.\n" % (", ".join(diffs), ", ".join(spreads)))

    # ---- stores
    st = one("store_durable")
    if st:
        k = st.get("by_kind", {})
        w("## Durable stores\n")
        earlier([st])
        w("Each client op is a lookup that misses and then the store of that request "
          "(`--sync full`: a store is acknowledged after its group commit is fsynced).\n")
        w("| stores/s | store p50 µs | store p99 µs | miss-lookup p50 µs | command |")
        w("|---:|---:|---:|---:|---|")
        w("| %.0f | %.0f | %.0f | %.0f | `%s` |" % (k["store"]["rate"], k["store"]["p50_us"],
                                                  k["store"]["p99_us"], k["lookup"]["p50_us"], st["command"]))
        w("")

    # ---- open loop
    # Each rate's median run by p99 (the curve is swept BENCH_REPS times).
    ol_runs = {}
    for r in rows:
        if r["name"].startswith("open_loop_"):
            ol_runs.setdefault(r["name"], []).append(r)
    ol = sorted([sorted(v, key=lambda r: r["latency_us"]["p99"])[(len(v) - 1) // 2]
                 for v in ol_runs.values()], key=lambda r: r["target_rate"])
    ol_p99 = {r["name"]: sorted(x["latency_us"]["p99"] for x in ol_runs[r["name"]]) for r in ol}
    if ol:
        w("## Latency against throughput (open loop)\n")
        earlier(ol)
        w("Exact hits at fixed request rates from 10 % to 110 % of the closed-loop peak above; "
          "latency is measured from each request's scheduled send time, so queueing is not "
          "hidden (no coordinated omission).\n")
        w("![latency vs throughput](bench/results/latency-throughput.png)\n")
        w("Each rate is run %d times (the whole curve swept again each time); the table shows the "
          "run with the median p99, and the p99 of every run.\n" % len(ol_runs[ol[0]["name"]]))
        w("| target req/s | achieved req/s | p50 µs | p99 µs | p99 of all runs µs | p99.9 µs | errors |")
        w("|---:|---:|---:|---:|---:|---:|---|")
        for r in ol:
            w("| %.0f | %.0f | %s | %s | %s | %s | %d |" % (
                r["target_rate"], r["rate"], lat(r, "p50"), lat(r, "p99"),
                ", ".join("%.0f" % v for v in ol_p99[r["name"]]), lat(r, "p999"),
                r["errors"]["non2xx"] + r["errors"]["transport"]))
        half = min(ol, key=lambda r: abs(r["target_rate"] - ol[-1]["target_rate"] / 2.2))
        w("\nAt half the peak (%.0f req/s) p99 is %s µs (target: under 1,000 µs). Command: `%s`\n" %
          (half["target_rate"], lat(half, "p99"), ol[0]["command"].replace(str(int(ol[0]["target_rate"])), "RATE")))
        ngo = sorted(by.get("nginx_open_loop_50", []), key=lambda r: r["latency_us"]["p99"])
        if ngo:
            mid = ngo[(len(ngo) - 1) // 2]
            w("nginx serving the same bytes at the same rate to the same client (`%s`, after each "
              "sweep): p99 %s µs (runs: %s), p50 %s µs.\n" % (
                  mid["command"], lat(mid, "p99"), ", ".join("%.0f" % r["latency_us"]["p99"] for r in ngo),
                  lat(mid, "p50")))
        dat = png_path + ".dat"
        with open(dat, "w") as f:
            for r in ol:
                f.write("%f %f %f\n" % (r["rate"], r["latency_us"]["p50"], r["latency_us"]["p99"]))
        gp = ("set terminal pngcairo size 800,480; set output '%s'; set title 'semcached exact hits, open loop';"
              "set xlabel 'achieved requests/s'; set ylabel 'latency (us)'; set logscale y; set grid;"
              "plot '%s' using 1:2 with linespoints title 'p50', '' using 1:3 with linespoints title 'p99'"
              % (png_path, dat))
        try:
            subprocess.run(["gnuplot", "-e", gp], check=True)
        except Exception as e:  # the table above still has the numbers
            print("gnuplot failed: %s" % e, file=sys.stderr)
        os.unlink(dat)

    tail_section(by, w)

    # ---- semantic
    semantic_section(by, w, med, lat, earlier, exact_of_run)

    decide_section(by, w, earlier)

    # ---- crossover
    crossover_section(by.get("crossover", []), w, earlier)

    tx = [r for r in rows if r["name"].startswith("text_")]
    if tx:
        w("## Text lookups through the server, with each built-in embedder\n")
        earlier(tx)
        w("The server embeds the text itself (`--model`). Every question1 of QQP's dev pairs is "
          "stored first; then, for the measured seconds, random question2s are looked up (16 "
          "connections, closed loop): an exact miss, so every lookup is embedded and searched. "
          "Precision is the share of semantic hits that land on a pair labelled duplicate, at "
          "each model's default threshold (`--model-thresholds`).\n")
        w("| model | lookups/s | ratio to exact hits, same run | p50 µs | p99 µs | semantic hit rate | precision of semantic hits | command |")
        w("|---|---:|---:|---:|---:|---:|---:|---|")
        for r in tx:
            lk = r["lookups"]
            total = lk["exact_hit"] + lk["semantic_hit"] + lk["miss"]
            w("| %s | %.0f | %s | %s | %s | %.1f %% | %s | `%s` |" % (
                r["name"][5:], r["rate"], exact_ratio(r), lat(r, "p50"), lat(r, "p99"),
                100.0 * lk["semantic_hit"] / total if total else 0,
                "%.3f" % r["semantic_precision"] if r["semantic_precision"] is not None else "-",
                r["command"]))
        ex = exact_of_run(tx[0])
        w("\nExact hits in the same run (the ratio's reference, median): %s. Target: at least "
          "0.12× for each model.\n" % ("%.0f/s, `%s`" % (ex["rate"], ex["command"]) if ex else "not measured"))

    ev = by.get("embed_eval", [])
    if ev:
        w("## Built-in embedders: duplicate detection on QQP and speed\n")
        earlier(ev)
        w("Every pair of `../shared/data/qqp/qqp_dev.tsv` (61,812 Quora question pairs, 22,095 "
          "labelled duplicates) is embedded on one thread in batches of 32; the cosine of the "
          "two sides is the score. ROC-AUC is the chance that a duplicate pair outscores a "
          "non-duplicate one. At each threshold: precision is the share of pairs above it that "
          "are duplicates (1 - the false-hit rate a cache at that threshold would have on this "
          "traffic), recall the share of duplicates above it, hit rate the share of all pairs "
          "above it.\n")
        w("| model | sentences/s (1 core) | ROC-AUC | precision / recall at 0.80 | at 0.85 | at 0.90 | at 0.95 |")
        w("|---|---:|---:|---|---|---|---|")
        for r in ev:
            cells = ["%.2f / %.2f" % (t["precision"], t["recall"]) for t in r["thresholds"]]
            w("| `%s` | %.0f | %.3f | %s |" % (r["model"], r["sentences_per_s"], r["roc_auc"], " | ".join(cells)))
        w("\nCommand: `%s`. Target: at least 100,000 sentences/s per core for short questions. "
          "QQP's non-duplicates are often near-paraphrases on the same topic, so no fixed "
          "threshold gives both high precision and high recall with these models: this is what "
          "the quality loop (sampled validation and error budgets) is for.\n" % ev[0]["command"])

    bs = [r for r in by.get("bert_semcached", []) if "tokens" in r]
    peak = [r for r in by.get("bert_semcached", []) if "sgemm_gflops" in r]
    bt = {(r["tokens"], r["batch"]): r for r in by.get("bert_torch", [])}
    if bs and peak:
        w("## BERT encoder against PyTorch\n")
        earlier(bs)
        w("all-MiniLM-L6-v2's shape (384 hidden, 12 heads, 6 layers, 1536 feed-forward) with "
          "random weights, 2 threads each: semcached's encoder on OpenBLAS (the forward pass split "
          "over 2 threads, `--embed-intra-threads 2`, OpenBLAS single-threaded in each), and the same forward "
          "pass in Debian's PyTorch %s on the same weights. OpenBLAS sgemm peak on this machine "
          "(2 threads), measured in the same run: %.0f GFLOP/s%s.\n" % (
              next(iter(bt.values()))["torch"] if bt else "?", peak[0]["sgemm_gflops"],
              " (this section measured %s)" % peak[0]["date"] if peak[0].get("date") else ""))
        # What 3x PyTorch would take in FLOP/s: the encoder's GFLOP/s scaled by
        # the speed-up still missing. Above the sgemm peak, no fp32 encoder
        # reaches it on this machine.
        sgemm = peak[0]["sgemm_gflops"]
        w("| tokens | batch | semcached sentences/s | PyTorch sentences/s | ratio | GFLOP/s | of sgemm peak | 3× PyTorch needs GFLOP/s |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|")
        beyond = []
        for r in bs:
            t = bt.get((r["tokens"], r["batch"]))
            need = "-"
            if t:
                g = r["gflops"] * 3 * t["sentences_per_s"] / r["sentences_per_s"]
                need = "%.0f%s" % (g, " (above the peak)" if g > sgemm else "")
                if g > sgemm:
                    beyond.append("%d tokens × %d" % (r["tokens"], r["batch"]))
            w("| %d | %d | %.1f | %s | %s | %.1f | %.0f %% | %s |" % (r["tokens"], r["batch"], r["sentences_per_s"],
              "%.1f" % t["sentences_per_s"] if t else "-", "%.2f×" % (r["sentences_per_s"] / t["sentences_per_s"]) if t else "-",
              r["gflops"], 100 * r["of_peak"], need))
        w("\nTargets: at least 3× PyTorch at every shape and 50 %% of the sgemm peak at batch 32. "
          "Commands: `%s`, `%s`.\n" % (bs[0]["command"], next(iter(bt.values()))["command"] if bt else ""))
        if beyond:
            w("At %s, 3× PyTorch would take more floating-point work per second than OpenBLAS's "
              "own sgemm reaches on these two cores: PyTorch runs that shape's large matrix "
              "products well enough that 3× is out of reach of any float32 encoder here, however "
              "well its other steps are written. GFLOP/s count the same multiply-adds for both "
              "(projections, feed-forward and attention).\n" % " and ".join(beyond))

    w("## Recall and the HNSW search beam\n")
    w("`make test` checks recall of the HNSW path against the exact scan (tests/index/hnsw.c): "
      "on SIFT-5k with the siftsmall queries (../shared/data/ann), recall@1 0.990 and recall@10 "
      "0.994 at the server defaults; on 50,000 clustered 384-d vectors, 1.000 and 1.000. SIFT-5k "
      "is hard for HNSW (queries far from the base): measured with the same hnswlib, recall@1 is "
      "0.87 at ef_search=64, 0.93 at 128, 0.97 at 256 and 0.99 at 512 (M=16, ef_construction=200), "
      "which is why `--hnsw-ef-search` defaults to 512. For a cache a missed true hit costs a model "
      "call; a wider beam costs microseconds.\n")
    # ---- quality loop: replays with known truth
    if "qqp_replay" in by:
        rr = by["qqp_replay"]
        w("## False hits: fixed thresholds against the error budget\n")
        w("Measured %s, on the same machine as above (`make bench` runs it after the rest). " %
          rr[0].get("date", m["date"]) +
          "Traffic with known ground truth replayed through the server (bench/qqp_replay.py); each "
          "row is a fresh server and data directory. `fixed:T` is a namespace threshold; "
          "`budget:E` is `max_error_rate` E (sample_rate 0.05, explore_rate 0.3, explore_floor "
          "0.5). The false-hit rate is the true one, from the ground truth; the server's estimate "
          "is its own, from its validations. \"Second half\" is the same after the first half of "
          "the replay, when the error-budget mode has warmed up. Re-inferences are validation "
          "calls per 1,000 lookups.\n")
        w("- **topics**: a synthetic stream (100 pairs of sibling topics in 32 dimensions; "
          "siblings' centres at cosine ~0.9 with different answers; rewordings at ~0.86), 10,000 "
          "lookups with client vectors, delivery `caller` (the tool re-infers sampled hits; "
          "explorations are settled by the store after the miss).\n")
        w("- **QQP**: `../shared/data/qqp/qqp_dev.tsv`, the first 10,000 pairs in a fixed shuffled "
          "order: store the first question with the mock upstream's answer, look up the second, "
          "store it after a miss. The mock (tests/mock_upstream.py) answers labelled duplicates, "
          "transitively, alike and every other question differently. Delivery `upstream`: the "
          "server re-infers sampled hits and explorations against the mock.\n")
        w("| data | model | policy | semantic hits | false-hit rate | second half: hits | second half: false | server's estimate (95 % upper) | learned threshold | re-inferences / 1,000 |")
        w("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rr:
            est = ("%.3f (%.3f)" % (r["server_estimate"], r["server_estimate_upper"])
                   if r.get("server_estimate") is not None else "-")
            lt = "%.3f" % r["learned_threshold"] if r.get("learned_threshold") is not None else "-"
            data = "topics" if r["model"].startswith("topics") else "QQP"
            model = "client vectors" if data == "topics" else r["model"].replace(".scglove", "")
            w("| %s | %s | %s | %.3f | %.3f | %.3f | %.3f | %s | %s | %.0f |" % (
                data, model, r["policy"], r["semantic_hit_rate"], r["false_hit_rate"],
                r.get("late_semantic_hit_rate", 0), r.get("late_false_hit_rate", 0), est, lt,
                r["reinferences_per_1000"]))
        w("")
        w("Commands: " + "; ".join(sorted({"`%s`" % r["command"] for r in rr})) + ".\n")
    # ---- semantic lookups while the scope grows (bench/index_churn.sh writes its own file)
    churn_section(os.path.join(os.path.dirname(res_path), "index_churn.jsonl"), w)

    # ---- the proxy (bench/proxy_bench.sh writes its own file)
    proxy_section(os.path.join(os.path.dirname(res_path), "proxy.jsonl"), w)

    # ---- fleet mode (bench/fleet.sh writes its own file)
    fleet_section(os.path.join(os.path.dirname(res_path), "fleet.jsonl"), w)

    # ---- soak (make soak writes its own file)
    for soak_file in ("soak.jsonl", "soak_no_semantic.jsonl"):
        soak_section(os.path.join(os.path.dirname(res_path), soak_file), w)
    open(md_path, "w").write("\n".join(out))


def tail_section(by, w):
    """Exact hits' p99 second by second after the store benchmark's burst
    (bench/tail.sh): the rested figure is the median per-second p99 of the
    run that follows (the same command, started the same way), and the tail
    has settled at the first second from which every 5-s rolling median of
    per-second p99 stays within 1.5x of it (a single second's p99 on these
    shared cores is noisy; the rolling median ignores one bad second, not a
    trend). The rested run's own seconds stand beside the burst's, so a first
    second that is the client's start rather than the burst shows in both."""
    after, rested = by.get("tail_after", [None])[-1], by.get("tail_rested", [None])[-1]
    if not after or not rested or not after.get("series") or not rested.get("series"):
        return
    med = lambda v: sorted(v)[(len(v) - 1) // 2] if v else 0
    p99 = [s["p99_us"] for s in after["series"]]
    rp99 = [s["p99_us"] for s in rested["series"]]
    ref = med(rp99)
    roll = [med(p99[i:i + 5]) for i in range(max(len(p99) - 4, 1))]
    settled = next((i for i in range(len(roll)) if all(x <= 1.5 * ref for x in roll[i:])), None)
    strip_d = lambda c: re.sub(r" -d \S+", "", c or "")
    same = strip_d(after.get("command")) == strip_d(rested.get("command"))
    conn = lambda r: ", connected in %.0f ms before its clock started" % r["connect_ms"] if "connect_ms" in r else ""
    w("## Exact hits after a write burst\n")
    w("Right after the durable-store run above (%d entries in the store at its end), exact hits "
      "at half the closed-loop peak (%.0f req/s, open loop, 64 connections, a fresh client without "
      "warm-up%s), p99 of each second from the burst's end (`semcached-bench --series`, by intended "
      "start), then %s for %d s on the rested server as the reference. Target: within 1.5x of it "
      "within 5 s of the burst's end.\n" % (
          after.get("entries", 0), after["target_rate"], conn(after),
          "the same command" if same else "`%s`" % rested.get("command"), len(rp99)))
    w("| seconds after the burst | p99 µs (each second) | 5-s rolling median µs | rested run, same seconds: p99 µs |")
    w("|---|---|---|---|")
    for a in range(0, len(p99), 10):
        w("| %d–%d | %s | %s | %s |" % (a, min(a + 10, len(p99)) - 1, ", ".join("%.0f" % v for v in p99[a:a + 10]),
                                       ", ".join("%.0f" % v for v in roll[a:a + 10]),
                                       ", ".join("%.0f" % v for v in rp99[a:a + 10])))
    ol = by.get("open_loop_50", [])
    w("\nRested (median per-second p99 of that run): **%.0f µs**%s. First second: %.0f µs after the "
      "burst, %.0f µs in the rested run. Settled within 1.5x: %s. Command: `%s`\n" % (
          ref,
          " (before the burst, open loop at the same rate: p99 %.0f µs over 10 s, median run)" %
          med([r["latency_us"]["p99"] for r in ol]) if ol else "",
          p99[0], rp99[0],
          "**%d s** after the burst's end" % settled if settled is not None else "**not within the %d s measured**" % len(p99),
          after["command"]))


@functools.lru_cache(maxsize=None)  # each option read from core/config.c once, not per use
def option_default(name):
    """An option's default from the options table (core/config.c), so the
    prose says what the build measured would run with."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "config.c")
    m = re.search(r'OPT\(\s*"%s",[^"]*"([^"]*)"' % re.escape(name), open(src).read())
    return m.group(1) if m else "?"


def crossover_section(co, w, earlier):
    """Flat scan against HNSW by scope size (semcached-crossover rows): where
    the scan stops being cheaper than the search a lookup runs, which is
    what --index-flat-max should be."""
    if not co:
        return
    w("## Flat scan against HNSW: the promotion size\n")
    earlier(co)
    dec = all("decide_us" in r for r in co)
    w("One lookup against each index in process (one thread; the flat index's own scan: OpenBLAS "
      "sgemv, and past 2,048 rows on CPUs with AVX-512 VNNI the exact int8 pre-pass with float "
      "rescoring), on "
      "embedding-like 384-d vectors. A scope is scanned exactly while small and promoted to "
      "HNSW past `--index-flat-max`. The HNSW columns are the widest beam alone "
      "(`--hnsw-ef-search`, what a search without a threshold runs) and the decide-search a "
      "lookup runs (threshold 0.90, cache-like traffic: half the queries reword a stored entry, "
      "half are new; timed after one untimed pass, as a scope that has served its first "
      "verified decisions).%s\n" % (" Times are CPU time of the searching thread, which the "
                                      "machine's other load moves less than wall-clock time."
                                      if co[0].get("cpu_time") else ""))
    flt = dec and all("float_us" in r for r in co)  # the sgemv-only scan beside it
    if flt:
        w("| vectors | flat µs | flat without the int8 pass µs | HNSW, widest beam µs | HNSW, decide-search µs | decided at the small beam |")
        w("|---:|---:|---:|---:|---:|---:|")
        for r in co:
            w("| %d | %.1f | %.1f | %.1f | %.1f | %.0f %% |" % (
                r["vectors"], r["flat_us"], r["float_us"], r["hnsw_us"], r["decide_us"],
                100 * r["small_beam"]))
    elif dec:
        w("| vectors | flat µs | HNSW, widest beam µs | HNSW, decide-search µs | decided at the small beam |")
        w("|---:|---:|---:|---:|---:|")
        for r in co:
            w("| %d | %.1f | %.1f | %.1f | %.0f %% |" % (r["vectors"], r["flat_us"], r["hnsw_us"],
                                                        r["decide_us"], 100 * r["small_beam"]))
    else:
        w("| vectors | flat µs | HNSW µs |")
        w("|---:|---:|---:|")
        for r in co:
            w("| %d | %.1f | %.1f |" % (r["vectors"], r["flat_us"], r["hnsw_us"]))
    key = "decide_us" if dec else "hnsw_us"

    def crossing(scan):
        below = [r["vectors"] for r in co if r[scan] <= r[key]]
        above = [r["vectors"] for r in co if r[scan] > r[key] and r["vectors"] > max(below or [0])]
        return ("between %d and %d vectors" % (max(below), min(above)) if below and above else
                "beyond %d vectors" % max(below) if below else "below %d vectors" % co[0]["vectors"])
    where = crossing("flat_us")
    if flt:
        where += (" (without the int8 pass, as on CPUs without AVX-512 VNNI, where "
                  "`--index-flat-max` decides: %s)" % crossing("float_us"))
    w("\nThe scan costs less than the %s until %s, and it is exact; `--index-flat-max` defaults "
      "to %s, and where the int8 pass runs a scope stays flat up to `--index-scan-max` vectors x "
      "dimensions (16M: 41k at 384-d). Command: `%s`\n" % ("decide-search" if dec else "search at the widest beam", where,
                                  "{:,}".format(int(option_default("index-flat-max")))
                                  if option_default("index-flat-max").isdigit() else "?",
                                  co[0]["command"]))


# BENCHMARKS.md's semantic row before the threshold-aware search (2026-12-01
# 07:53 UTC, ef_search 512 for every lookup): 937 lookups/s against 76,706
# exact hits/s in the same run. Issue 18's target is 4x that ratio.
SEMANTIC_BEFORE = (937, 76706)


def semantic_section(by, w, med, lat, earlier, exact_of_run):
    """Semantic lookups with client vectors through the server, as a ratio
    to exact hits of the same run, with their decisions checked, and
    hnswlib in process on the same vectors and queries at each beam."""
    sv = med("semantic_vectors")
    peer = by.get("hnswlib_inprocess", [])
    data = next((r for r in peer if "exact_is_source_hit" in r), None)
    beams = sorted((r for r in peer if "agreement" in r), key=lambda r: r["ef_search"])
    if not sv:
        return
    runs = by["semantic_vectors"]
    w("## Semantic lookups with client vectors against hnswlib in process\n")
    earlier(runs + peer)
    n = int(sv["command"].split("--keys ")[1].split()[0]) if "--keys " in sv["command"] else 0
    w("%d entries of 384-d vectors in one scope (so one HNSW graph: M=%s, ef_construction=%s), "
      "the server at its defaults: the threshold-aware search (a small beam, "
      "`--hnsw-ef-search-min`, decides when the answer is clear; `--hnsw-ef-search` otherwise). "
      "Vectors lie near a random 32-dimensional subspace with a little noise, as sentence "
      "embeddings do; each lookup rewords a stored entry (its vector plus noise), sent "
      "base64-encoded, so it misses exactly and should hit that entry semantically at the "
      "default threshold 0.90. The peer is Debian's python3-hnswlib on the same vectors and the "
      "very queries the load tool sends (written by `semcached-bench --dump-vectors`), in one "
      "process, with no HTTP, no JSON and no validation against LMDB, at growing beams.\n" %
      (n, option_default("hnsw-m"), option_default("hnsw-ef-construction")))
    ex = exact_of_run(sv)
    on_src = sv.get("semantic_on_source")
    agree = on_src / sv["requests"] if on_src is not None and sv["requests"] else None
    w("| run | lookups/s (median) | all runs | p50 µs | p99 µs | ratio to exact hits, same run | "
      "agreement with an exact scan | command |")
    w("|---|---:|---:|---:|---:|---:|---:|---|")
    rates = sorted(r["rate"] for r in runs)
    w("| semcached, %d connections | %.0f | %s | %s | %s | %s | %s | `%s` |" % (
        sv["connections"], sv["rate"], "%.0f–%.0f" % (rates[0], rates[-1]) if len(rates) > 1 else "-",
        lat(sv, "p50"), lat(sv, "p99"), "%.4f×" % (sv["rate"] / ex["rate"]) if ex else "-",
        "%.5f" % agree if agree is not None else "-", sv["command"]))
    if ex:
        w("| exact hits, same run (median) | %.0f | - | %s | %s | 1 | - | `%s` |" % (
            ex["rate"], lat(ex, "p50"), lat(ex, "p99"), ex["command"]))
    w("")
    if data and agree is not None:
        w("Agreement: %d of %d measured lookups were served the entry they reword; on the %d "
          "queries of the load tool's pool, an exact scan's answer is that entry, at or above "
          "the threshold, for %.4f of them%s. Semantic hits: %d; misses: %d.\n" % (
              on_src, sv["requests"], data["queries"], data["exact_is_source_hit"],
              " (so the share served the reworded entry is the agreement)"
              if data["exact_is_source_hit"] >= 1 else "", sv["lookups"]["semantic_hit"],
              sv["lookups"]["miss"]))
    elif agree is not None:
        w("Agreement: %d of %d measured lookups were served the entry they reword (the check that "
          "an exact scan answers each query of the pool with that entry is the hnswlib peer's, "
          "not run with these rows).\n" % (on_src, sv["requests"]))
    if ex:
        before = SEMANTIC_BEFORE[0] / SEMANTIC_BEFORE[1]
        ratio = sv["rate"] / ex["rate"]
        w("Against exact hits of the same run: **%.4f×**, %.1f× the ratio before the "
          "threshold-aware search (%d/s against %d/s exact hits, %.4f×, every lookup at "
          "ef_search 512). Target: at least 4× (%.3f×) with an agreement of at least 0.999: %s.\n"
          % (ratio, ratio / before, SEMANTIC_BEFORE[0], SEMANTIC_BEFORE[1], before, 4 * before,
             "met" if ratio >= 4 * before and (agree or 0) >= 0.999 else "missed"))
    if not beams:
        w("hnswlib was not run with these rows (`BENCH_PEER_EFS` empty).\n")
        return
    w("| hnswlib beam | 1 thread, one query per call: q/s | %d threads, one batch: q/s | recall@1 | "
      "agreement |" % beams[0]["threads"])
    w("|---:|---:|---:|---:|---:|")
    for r in beams:
        w("| %d | %.0f | %.0f | %.4f | %.5f |" % (r["ef_search"], r["qps_1_thread"], r["qps_threads"],
                                                r["recall_at_1"], r["agreement"]))
    fit = next((r for r in beams if agree is not None and r["agreement"] >= agree), None)
    if fit:
        w("\nThe smallest hnswlib beam as good as the server's decisions is %d: semcached / hnswlib "
          "(%d threads, batched) **%.2f×**, / hnswlib (one thread, one query per call) %.2f×. "
          "semcached's figure includes HTTP, JSON, base64, the exact-match probe, reading the "
          "entry from LMDB and the load generator on the same two cores; its hnswlib is compiled "
          "for this CPU (`-march=native`, %s here), Debian's python module is a generic build. "
          "Command: `%s`.\n" % (fit["ef_search"], fit["threads"], sv["rate"] / fit["qps_threads"],
                                 sv["rate"] / fit["qps_1_thread"], simd_level(), fit["command"]))


def decide_section(by, w, earlier):
    """semcached's decide-search in process against hnswlib at the smallest
    beam that agrees with an exact scan as often (search_decide and
    hnswlib_decide rows of bench/run.sh)."""
    sd, hd = by.get("search_decide", []), by.get("hnswlib_decide", [])
    head = [r for r in sd if "data" in r]
    dec = [r for r in sd if r.get("search") == "decide"]
    if not head or not dec:
        return
    h = head[0]
    w("## Threshold-aware search in process against hnswlib\n")
    earlier(sd + hd)
    w("%d clustered %d-d vectors, %d cache-like queries (80 %% rewordings of stored points, 20 %% "
      "new points on the same topics), one thread, no HTTP. Agreement is the share of lookups "
      "whose cache decision (the served entry, or a miss) is the one an exact scan gives. "
      "semcached's decide-search runs the small beam (`--hnsw-ef-search-min`) and widens to "
      "`--hnsw-ef-search` only near the threshold; hnswlib (Debian's python3-hnswlib, same M and "
      "ef_construction, one query per call) is taken at the smallest beam whose agreement "
      "reaches semcached's.\n" % (h["vectors"], h["dim"], h["queries"]))
    # Lookups per CPU-second of the searching thread where the rows have it:
    # the two tools run minutes apart on a shared machine, and wall-clock
    # rates then compare the neighbours' load as much as the searches.
    cpu = all("lookups_per_cpu_s" in r for r in dec + hd)
    rate = (lambda r: r["lookups_per_cpu_s"]) if cpu else (lambda r: r["lookups_per_s"])
    unit = "lookups per CPU-second" if cpu else "lookups/s"
    if cpu:
        w("Speeds are lookups per CPU-second of the one searching thread (`CLOCK_THREAD_CPUTIME_ID` "
          "around each search; Python's `time.thread_time()` around hnswlib's one-query calls, "
          "which run in the calling thread): the two run minutes apart on a shared machine, where "
          "wall-clock rates would compare the neighbours' load. The wall-clock rates are in "
          "`bench/results/latest.jsonl`.\n")
    w("| threshold | semcached decide, %s | agreement | small beam decided | "
      "hnswlib beam | hnswlib, %s | its agreement | semcached / hnswlib |" % (unit, unit))
    w("|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for d in dec:
        t = d["threshold"]
        peers = sorted((r for r in hd if abs(r["threshold"] - t) < 1e-9), key=lambda r: r["ef"])
        fit = next((r for r in peers if r["agreement"] >= d["agreement"]), peers[-1] if peers else None)
        if fit:
            ratios.append(rate(d) / rate(fit))
            w("| %.2f | %.0f | %.5f | %.1f %% | %d | %.0f | %.5f | **%.2f×** |" %
              (t, rate(d), d["agreement"], 100 * d["small_beam"], fit["ef"],
               rate(fit), fit["agreement"], rate(d) / rate(fit)))
        else:
            w("| %.2f | %.0f | %.5f | %.1f %% | - | - | - | - |" %
              (t, rate(d), d["agreement"], 100 * d["small_beam"]))
    fixed = [r for r in sd if r.get("search") == "fixed"]
    if fixed:
        w("\nsemcached at fixed beams on the same queries (%s, agreement): " % unit +
          "; ".join("%.2f ef %d: %.0f, %.5f" % (r["threshold"], r["ef"], rate(r),
                                                r["agreement"]) for r in fixed) + ".")
    if not hd:
        w("\nhnswlib_decide.py was not run with these rows: no comparison.")
    w("\nThe first threshold's decide row includes the scope's verification warm-up (its first "
      "256 hits and 256 misses all run the widest beam too); the later ones do not.")
    w("\nTarget: at least 0.7× hnswlib%s. Commands: `%s`, `%s`.\n" %
      (": %s (lowest %.2f×)" % ("met" if min(ratios) >= 0.7 else "missed", min(ratios)) if ratios else "",
       sd[0]["command"], hd[0]["command"] if hd else "bench/hnswlib_decide.py PREFIX"))


if __name__ == "__main__":
    main()
