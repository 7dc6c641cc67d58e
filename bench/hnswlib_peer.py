#!/usr/bin/python3
"""hnswlib_peer.py -- the in-process peer of the semantic benchmark: Debian's
python3-hnswlib builds an index over the same vectors the server holds (read
from the fvecs files semcached-bench --dump-vectors writes), normalized the
same way, with the same M / ef_construction / ef_search, then answers the same
queries. Prints one JSON object: queries/s with one thread (query by query)
and with N threads (knn_query batches), and recall@1 against exact search."""
import json, sys, time

import hnswlib
import numpy as np


def fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].view(np.float32).copy()


def main():
    prefix, m, efc, ef, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    base, queries = fvecs(prefix + "_base.fvecs"), fvecs(prefix + "_query.fvecs")
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = hnswlib.Index(space="ip", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=m, ef_construction=efc, random_seed=100)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=threads)
    build_s = time.perf_counter() - t0
    index.set_ef(ef)
    # One query per call on one thread: what a request-at-a-time server does.
    n1 = min(len(queries), 3000)
    t0 = time.perf_counter()
    for q in queries[:n1]:
        index.knn_query(q, k=8, num_threads=1)
    qps1 = n1 / (time.perf_counter() - t0)
    # All queries in one call on N threads: hnswlib's best case.
    t0 = time.perf_counter()
    labels, _ = index.knn_query(queries, k=8, num_threads=threads)
    qpsn = len(queries) / (time.perf_counter() - t0)
    exact = np.argmax(queries[:1000] @ base.T, axis=1)
    recall1 = float(np.mean(labels[:1000, 0] == exact))
    print(json.dumps({"vectors": len(base), "dim": int(base.shape[1]), "build_s": build_s,
                      "qps_1_thread": qps1, "qps_threads": qpsn, "threads": threads,
                      "recall_at_1": recall1, "M": m, "ef_construction": efc, "ef_search": ef}))


if __name__ == "__main__":
    main()
