#!/usr/bin/python3
"""hnswlib_decide.py -- the in-process peer of semcached-search-bench: Debian's
python3-hnswlib indexes the vectors the tool dumped (PREFIX_base.fvecs, with
the server's M=16 / ef_construction=200), answers the same queries one per
call on one thread at growing beams, and scores each answer as the tool does:
the served entry (or miss) at each threshold against the exact best
(PREFIX_exact.ivecs). Prints one JSON object per beam and threshold; the
smallest beam whose agreement reaches semcached's decide-search is the fair
comparison for lookups/s.

usage: hnswlib_decide.py PREFIX [ef ...]"""
import json, sys, time

import hnswlib
import numpy as np


def vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].view(dtype).copy()


def main():
    prefix = sys.argv[1]
    efs = [int(x) for x in sys.argv[2:]] or [64, 128, 256, 512, 1024, 2048]
    base = vecs(prefix + "_base.fvecs", np.float32)
    queries = vecs(prefix + "_query.fvecs", np.float32)
    exact = vecs(prefix + "_exact.ivecs", np.int32)[:, 0]
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=16, ef_construction=200, random_seed=100)
    index.add_items(base, np.arange(len(base)), num_threads=2)
    exact_sim = np.einsum("ij,ij->i", queries, base[exact])
    for ef in efs:
        index.set_ef(ef)
        labels = np.zeros(len(queries), dtype=np.int64)
        t0, c0 = time.perf_counter(), time.thread_time()
        for i, q in enumerate(queries):
            labels[i] = index.knn_query(q, k=8, num_threads=1)[0][0, 0]
        per_s = len(queries) / (time.perf_counter() - t0)
        # CPU time of this thread (num_threads=1 searches in the caller's
        # thread): comparable with semcached-search-bench's on a shared machine.
        per_cpu_s = len(queries) / (time.thread_time() - c0)
        sim = np.einsum("ij,ij->i", queries, base[labels])
        for t in (0.80, 0.90, 0.95):
            hit_e, hit_d = exact_sim >= t, sim >= t
            same = (labels == exact) | (np.abs(sim - exact_sim) < 1e-6)
            agree = np.where(hit_e, hit_d & same, ~hit_d)
            print(json.dumps({"threshold": t, "ef": ef, "lookups_per_s": round(per_s),
                              "lookups_per_cpu_s": round(per_cpu_s),
                              "agreement": round(float(agree.mean()), 5)}), flush=True)


if __name__ == "__main__":
    main()
