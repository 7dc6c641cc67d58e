#!/usr/bin/env python3
"""fleet_sizing.py -- memory and lag of a semcached fleet (docs/fleet.md) for
10, 100 and 1,000 nodes and 1M-100M entries, from constants measured on this
machine (each says where it comes from). Prints the markdown tables that
docs/fleet.md quotes; `--groups G` sizes the partitioned design instead (G
node groups, each a full replica of 1/G of the scopes, with its own stream).

The model: every node of a group holds every entry of the group (LMDB on
disk, the vectors and HNSW links in RAM); every store is one stream record
that Redis sends to every node of the group; Redis serves those deliveries
from one core. Lag is the measured base lag stretched by Redis's utilization
(an M/M/1 queue's 1/(1-rho)); past rho = 0.7 the group needs read replicas
(nodes XREAD from replicas; the primary only takes XADDs).
"""
import argparse
import math

# Measured (BENCHMARKS.md "Fleet" and docs/fleet.md "Sizing"):
LMDB_BYTES = 4400      # LMDB pages per entry, 384-d vector + 512-byte answer (/v1/stats store_bytes / entries: 4365)
INDEX_BYTES = 1800     # RAM per entry in the vector index: 384 x 4 B + HNSW links (M=16) + label
RECORD_BYTES = 2400    # one stream record (92-byte header + the 2.2 KB entry record)
DELIVERIES_S = 250000  # 2.4 KB values Redis sends per second from one core (redis-benchmark GET -P 16, this machine)
BASE_LAG_MS = 18       # replication lag p50 between two nodes at 1,000 exact-only stores/s (bench/fleet.sh)
APPLY_S = 1250         # 384-d stores/s one node applies from the stream, indexing included (bench/fleet.sh catch-up)
RAM_PER_NODE = 64 << 30
NET_BYTES_S = 1.25e9   # 10 Gbit/s for snapshot copies


def human(b):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if b < 1024 or unit == "TB":
            return "%.0f %s" % (b, unit) if unit == "B" else "%.1f %s" % (b, unit)
        b /= 1024.0
    return str(b)


def row(nodes, entries, writes, groups, retention):
    n_group = max(1, nodes // groups)
    e_group = entries / groups
    w_group = writes / groups
    ram = e_group * INDEX_BYTES
    disk = e_group * LMDB_BYTES
    deliveries = w_group * n_group
    rho = deliveries / DELIVERIES_S
    replicas = 0 if rho <= 0.7 else math.ceil(rho / 0.7)
    eff = rho if not replicas else rho / replicas
    lag = BASE_LAG_MS / (1 - eff)
    fits = ram <= RAM_PER_NODE * 0.5 and w_group <= APPLY_S
    join_s = disk / NET_BYTES_S
    return ("| %d | %s | %d | %s | %s | %s | %s | %.2f | %s | %.0f ms | %.0f s | %s |" % (
        nodes, "%gM" % (entries / 1e6), groups, human(ram), human(disk),
        human(retention * RECORD_BYTES), human(deliveries * RECORD_BYTES) + "/s", rho,
        replicas or "-", lag, join_s, "yes" if fits else "no"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=float, default=1000, help="fleet-wide stores/s (1000)")
    ap.add_argument("--groups", type=int, default=1, help="node groups (1: every node a full replica)")
    ap.add_argument("--retention", type=int, default=100000, help="stream records kept per stream")
    a = ap.parse_args()
    print("| nodes | entries | groups | index RAM / node | LMDB / node | stream in Redis | Redis egress "
          "| Redis utilization | read replicas | lag p50 | new node's copy | fits |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for nodes in (10, 100, 1000):
        for entries in (1e6, 10e6, 100e6):
            print(row(nodes, entries, a.writes, a.groups, a.retention))


if __name__ == "__main__":
    main()
