#!/usr/bin/python3
"""hnswlib_peer.py -- the in-process peer of the semantic benchmark: Debian's
python3-hnswlib builds an index over the same vectors the server holds and
answers the very queries the load tool sends (the fvecs and source keys
semcached-bench --dump-vectors writes), normalized as the server does, with
the server's M / ef_construction, at each beam asked for. Each query's cache
decision at the threshold (the served entry, or a miss) is checked against an
exact scan, as the server's answers are checked against the entry the query
rewords. Prints one JSON object per beam: queries/s with one thread (query
by query) and with N threads (one knn_query batch), recall@1 and agreement;
and first one object on the data: how often the exact scan's answer is the
reworded entry, a hit at the threshold.

usage: hnswlib_peer.py PREFIX M EF_CONSTRUCTION THREADS THRESHOLD EF [EF ...]"""
import json, sys, time

import hnswlib
import numpy as np


def vecs(path, dtype=np.float32):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].view(dtype).copy()


def exact_scan(base, queries, chunk=256):
    """The best entry of every query and its similarity, by brute force."""
    best, sim = np.zeros(len(queries), np.int64), np.zeros(len(queries), np.float32)
    for i in range(0, len(queries), chunk):
        s = queries[i:i + chunk] @ base.T
        best[i:i + chunk] = np.argmax(s, axis=1)
        sim[i:i + chunk] = s[np.arange(len(s)), best[i:i + chunk]]
    return best, sim


def main():
    prefix, m, efc, threads, t = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    efs = [int(x) for x in sys.argv[6:]]
    base, queries = vecs(prefix + "_base.fvecs"), vecs(prefix + "_query.fvecs")
    source = vecs(prefix + "_source.ivecs", np.int32)[:, 0]
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact, exact_sim = exact_scan(base, queries)
    print(json.dumps({"vectors": len(base), "dim": int(base.shape[1]), "queries": len(queries),
                      "threshold": t, "exact_is_source_hit":
                      float(np.mean((exact == source) & (exact_sim >= t)))}), flush=True)
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=m, ef_construction=efc, random_seed=100)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=threads)
    build_s = time.perf_counter() - t0
    for ef in efs:
        index.set_ef(ef)
        # One query per call on one thread: what a request-at-a-time server does.
        t0 = time.perf_counter()
        for q in queries:
            index.knn_query(q, k=8, num_threads=1)
        qps1 = len(queries) / (time.perf_counter() - t0)
        # All queries in one call on N threads: hnswlib's best case.
        t0 = time.perf_counter()
        labels, _ = index.knn_query(queries, k=8, num_threads=threads)
        qpsn = len(queries) / (time.perf_counter() - t0)
        top = labels[:, 0].astype(np.int64)
        sim = np.einsum("ij,ij->i", queries, base[top])
        hit_e, hit_d = exact_sim >= t, sim >= t
        same = (top == exact) | (np.abs(sim - exact_sim) < 1e-6)
        agree = np.where(hit_e, hit_d & same, ~hit_d)
        print(json.dumps({"vectors": len(base), "dim": int(base.shape[1]), "build_s": build_s,
                          "qps_1_thread": qps1, "qps_threads": qpsn, "threads": threads,
                          "recall_at_1": float(np.mean(top == exact)),
                          "agreement": round(float(agree.mean()), 5), "threshold": t,
                          "M": m, "ef_construction": efc, "ef_search": ef}), flush=True)


if __name__ == "__main__":
    main()
