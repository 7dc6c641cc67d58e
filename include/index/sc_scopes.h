/* sc_scopes.h -- one vector index per scope (the fingerprint of everything in
 * a request but its semantic text), so a search can only ever see entries of
 * its own scope. A scope starts as an exact BLAS scan and is promoted to HNSW
 * past --index-flat-max vectors. An HNSW scope's graph is never changed
 * while searches can see it: new vectors go to a small exact delta and
 * removals to tombstones, both searched beside the graph; past
 * --index-delta-max changes the manager thread merges them into a copy of
 * the graph (or rebuilds it, once --compact-deleted-ratio of it is deleted)
 * and swaps the copy in.
 *
 * Threads: searches from any thread run in parallel and never wait for a
 * graph insert (they hold a reference to the graph they read, not a lock);
 * adds and removes come from the store's writer thread after each commit and
 * hold the scope's lock for microseconds (a flat add or a tombstone).
 * Promotions, merges and compactions run on the manager's own thread. */
#ifndef SC_SCOPES_H
#define SC_SCOPES_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"
#include "sc_log.h"

typedef struct sc_scopes_s sc_scopes_t;

typedef struct {
    size_t flat_max; /* promote to HNSW past this many vectors ... */
    size_t scan_max; /* ... and, with the int8 scan, past this many vectors x dimensions */
    size_t hnsw_m;
    size_t hnsw_ef_construction;
    size_t hnsw_ef_search; /* the widest beam: sc_scopes_search, undecided lookups */
    int hnsw_int8;         /* graphs keep an int8 copy to search on (sc_hnsw_quantize) */
    double compact_deleted_ratio;
    size_t compact_min_deleted; /* don't rebuild for fewer deletions than this */
    size_t delta_max;           /* merge an HNSW scope's delta past this many changes */
    /* The decide-search (sc_scopes_search_decide). 0 = off: every lookup
     * uses the widest beam, as sc_scopes_search does. */
    size_t hnsw_ef_search_min;  /* the first, small beam */
    double search_margin;       /* decide at once when the best is this far from the threshold */
    double search_gap;          /* ... and, for a hit, this far above the second best */
    size_t search_verify_every; /* re-run 1 in N decisions at the widest beam (0 = never) */
    double search_max_disagree; /* distrust a scope's small beam past this disagreement rate */
} sc_scopes_config_t;

/* The index options of a server configuration (--index-flat-max, --hnsw-*,
 * --search-*, --index-delta-max, --compact-deleted-ratio). */
struct sc_config_s;
void sc_scopes_config_from(sc_scopes_config_t *out, const struct sc_config_s *c);

/* Most candidates one search returns. */
#define SC_SCOPES_K_MAX 256

typedef struct {
    uint64_t scopes_flat, scopes_hnsw;
    uint64_t vectors_flat, vectors_hnsw; /* live vectors by index kind */
    uint64_t vectors_delta;              /* of vectors_hnsw: in deltas, not yet merged */
    uint64_t deleted_hnsw;               /* deleted or tombstoned, not yet compacted */
    uint64_t promotions, compactions;    /* background rebuilds done */
    uint64_t merges;                     /* deltas merged into a graph copy */
    uint64_t rebuilding;                 /* promotions, merges, compactions in progress */
    /* Decide-search lookups on HNSW scopes, by the beam whose answer was
     * served; 'verified' of them were also run at the widest beam for the
     * scope's estimate (and served its answer), 'disagreed' of those decided
     * differently at the two beams. Scopes whose small beam is distrusted. */
    uint64_t decided_small, decided_wide, verified, disagreed;
    uint64_t scopes_untrusted;
} sc_scopes_stats_t;

/* Creates an empty manager in loading state: sc_scopes_add/remove are logged
 * until sc_scopes_finish_load. Starts the rebuild thread. */
int sc_scopes_create(sc_scopes_t **out, const sc_scopes_config_t *cfg, sc_log_t *log);
/* Stops the rebuild thread (abandoning a rebuild in progress) and frees all. */
void sc_scopes_destroy(sc_scopes_t *s);

/* Changes from the writer thread, after their transaction committed. 'vec'
 * is copied. Labels are the first 8 bytes of the entry key. */
int sc_scopes_add(sc_scopes_t *s, uint64_t scope, uint64_t label, const float *vec, uint32_t dim);
int sc_scopes_remove(sc_scopes_t *s, uint64_t scope, uint64_t label);

/* Best-first nearest neighbours of unit vector 'q' within 'scope' (at most
 * SC_SCOPES_K_MAX), an HNSW scope searched with the widest beam. SC_ENOTFOUND when the scope has no
 * index or the load has not finished, SC_EDIM on a dimension mismatch. A label whose removal
 * returned before the search began is never returned. */
int sc_scopes_search(sc_scopes_t *s, uint64_t scope, const float *q, uint32_t dim, size_t k,
                     uint64_t *labels, float *sims, size_t *n);

/* Which search answered a decide-search. */
typedef enum {
    SC_SEARCH_EXACT = 0, /* a flat scope: exact scan */
    SC_SEARCH_SMALL = 1, /* HNSW: decided at once at the small beam */
    SC_SEARCH_WIDE = 2,  /* HNSW: the widest beam answered */
} sc_search_beam_t;

typedef struct {
    sc_search_beam_t beam;
    int verified;  /* also decided at the small beam, re-run wide for the estimate */
    int disagreed; /* verified, and the widest beam decided otherwise */
    int trusted;   /* the scope's small beam was trusted for hits and misses */
} sc_search_info_t;

/* A search for a cache decision: is there a live entry with similarity >=
 * 'threshold', and which is the best. Same results as sc_scopes_search
 * (best first, at most 'k'), but the HNSW graph is first searched with the
 * small beam (hnsw_ef_search_min); its answer is served when its best
 * candidate is clearly above the threshold (by search_margin, and by
 * search_gap above the second best) or clearly below it (by search_margin),
 * and the widest beam answers otherwise. A scope keeps an estimate of how
 * often the widest beam would have changed an at-once hit, and apart an
 * at-once miss, from 1 in search_verify_every of them (and the first 256 of
 * each) re-run at the widest beam, whose answer is then served; past
 * search_max_disagree, that kind of decision goes to the widest beam until
 * the estimate recovers. Flat scopes and deltas are always exact.
 * 'threshold' < -1 (e.g. SC_SCOPES_NO_THRESHOLD) means no decision: the
 * widest beam, exactly sc_scopes_search. 'info' may be NULL. Thread-safe
 * like sc_scopes_search; errors are the same. */
#define SC_SCOPES_NO_THRESHOLD (-2.0)
int sc_scopes_search_decide(sc_scopes_t *s, uint64_t scope, const float *q, uint32_t dim, size_t k,
                            double threshold, uint64_t *labels, float *sims, size_t *n,
                            sc_search_info_t *info);

/* Takes the search fields of 'cfg' (hnsw_ef_search, hnsw_ef_search_min and
 * the search_* ones) for later searches; for benchmarks and tests, not while
 * searches run. */
void sc_scopes_set_search(sc_scopes_t *s, const sc_scopes_config_t *cfg);

/* Loading: the loader adds directly, then replays what was logged meanwhile
 * and switches to live mode. */
int sc_scopes_load_add(sc_scopes_t *s, uint64_t scope, uint64_t label, const float *vec,
                       uint32_t dim);
void sc_scopes_finish_load(sc_scopes_t *s);
int sc_scopes_ready(sc_scopes_t *s);

/* Snapshots in directory 'dir': every index plus a manifest naming the LMDB
 * transaction id it matches and a checksum per file. Load returns
 * SC_ENOTFOUND (none), SC_ECONFLICT (stale: 'txnid' differs) or SC_ECORRUPT
 * (damaged), after which the caller rebuilds from LMDB. Save requires that no
 * add or remove runs concurrently (call it after the writer stopped). */
int sc_scopes_save(sc_scopes_t *s, const char *dir, uint64_t txnid);
int sc_scopes_load_snapshot(sc_scopes_t *s, const char *dir, uint64_t txnid);

/* Waits until no rebuild is queued or running (tests, shutdown). */
void sc_scopes_quiesce(sc_scopes_t *s);
void sc_scopes_stats(sc_scopes_t *s, sc_scopes_stats_t *st);

#endif
