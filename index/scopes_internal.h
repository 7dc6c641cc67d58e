/* scopes_internal.h -- the scope manager's private types and the helpers its
 * three files share: index/scopes.c (the table, changes, background merges),
 * index/scopes_search.c (searches and the decide-search's trust estimate) and
 * index/scopes_snapshot.c (snapshots). Nothing outside index/ includes it.
 * Small helpers are static inline here so each file keeps its own copy. */
#ifndef SC_SCOPES_INTERNAL_H
#define SC_SCOPES_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sc_index.h"
#include "sc_scopes.h"

typedef struct {
    int remove;
    uint64_t scope, label;
    uint32_t dim;
    float *vec; /* owned copy for adds */
} logop_t;

typedef struct {
    logop_t *ops;
    size_t n, cap;
} oplog_t;

/* A set of labels: open addressing with a parallel "used" byte, since any
 * 64-bit value (0 included) can be a label. */
typedef struct {
    uint64_t *keys;
    uint8_t *used;
    size_t n, cap;
} labelset_t;

/* A published graph: searches hold a reference while they read it, the
 * scope holds one while it is current; the last one out frees it. */
typedef struct {
    atomic_size_t refs;
    sc_hnsw_t *h;
} graph_ref_t;

/* The decide-search's per-scope estimate (index/scopes_search.c): how often
 * the widest beam changed a decision the small beam had taken at once, for
 * hits and for misses apart (they fail differently: a hit by missing a
 * slightly better entry, a miss by a search stranded far from the query). */
typedef struct {
    _Atomic uint64_t checks[2]; /* [hit, miss]: verified << 32 | disagreements, decayed */
    atomic_uint lookups;        /* HNSW lookups, for choosing which to verify */
} trust_t;

typedef struct scope_s {
    uint64_t id;
    uint32_t dim;
    pthread_rwlock_t lock;   /* guards every field below but the log ones */
    uint64_t generation;     /* bumped when the scope is reset to another dim */
    sc_flat_t *flat;         /* a flat scope: the whole index; NULL for HNSW */
    graph_ref_t *graph;      /* an HNSW scope: immutable once published */
    sc_flat_t *delta;        /* HNSW: vectors added since the graph was built */
    labelset_t tomb;         /* HNSW: labels dead in the graph or frozen delta */
    int merging;             /* the frozen layers below are being merged */
    sc_flat_t *frozen_delta; /* read-only while merging */
    labelset_t frozen_tomb;  /* labels dead in the graph; read-only while merging */
    pthread_mutex_t log_mu;
    int rebuilding;       /* guarded by log_mu: a flat scope's changes are logged */
    oplog_t log;          /* guarded by log_mu */
    int queued;           /* guarded by the manager mutex */
    struct scope_s *next; /* hash chain */
    struct scope_s *next_queued;
    trust_t trust; /* atomics: searches update it without the lock */
} scope_t;

struct sc_scopes_s {
    sc_scopes_config_t cfg;
    sc_log_t *log;
    pthread_rwlock_t table_lock;
    scope_t **buckets;
    size_t n_buckets, n_scopes;
    pthread_mutex_t load_mu;
    _Atomic int ready;
    oplog_t load_log; /* guarded by load_mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t idle_cv;
    scope_t *queue_head, *queue_tail;
    int busy, stop;
    int scan8; /* flat scopes scan with the int8 pass (index/scan8.h) */
    _Atomic uint64_t promotions, compactions, merges;
    /* Decide-search counters (sc_scopes_stats_t says what each counts). */
    _Atomic uint64_t decided_small, decided_wide, verified, disagreed;
};

/* ---- label sets ------------------------------------------------------------ */

/* ---- label sets ------------------------------------------------------------ */

static inline size_t label_slot(uint64_t label, size_t cap)
{
    return (size_t)((label ^ (label >> 29)) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

static inline int labelset_has(const labelset_t *t, uint64_t label)
{
    if (!t->n)
        return 0;
    for (size_t i = label_slot(label, t->cap);; i = (i + 1) & (t->cap - 1)) {
        if (!t->used[i])
            return 0;
        if (t->keys[i] == label)
            return 1;
    }
}

static inline int labelset_add(labelset_t *t, uint64_t label);

static inline int labelset_grow(labelset_t *t)
{
    labelset_t g = {0};
    g.cap = t->cap ? t->cap * 2 : 64;
    g.keys = malloc(g.cap * sizeof(uint64_t));
    g.used = calloc(g.cap, 1);
    if (!g.keys || !g.used) {
        free(g.keys);
        free(g.used);
        return SC_ENOMEM;
    }
    for (size_t i = 0; i < t->cap; i++)
        if (t->used[i])
            labelset_add(&g, t->keys[i]);
    free(t->keys);
    free(t->used);
    *t = g;
    return 0;
}

/* Adds 'label' (a no-op if present). */
static inline int labelset_add(labelset_t *t, uint64_t label)
{
    if ((t->n + 1) * 2 > t->cap && labelset_grow(t))
        return SC_ENOMEM;
    size_t i = label_slot(label, t->cap);
    for (; t->used[i]; i = (i + 1) & (t->cap - 1))
        if (t->keys[i] == label)
            return 0;
    t->used[i] = 1;
    t->keys[i] = label;
    t->n++;
    return 0;
}

static inline void labelset_clear(labelset_t *t)
{
    free(t->keys);
    free(t->used);
    memset(t, 0, sizeof(*t));
}

/* ---- graphs ------------------------------------------------------------------ */

/* ---- graphs ------------------------------------------------------------------ */

static inline graph_ref_t *graph_publish(sc_hnsw_t *h)
{
    graph_ref_t *g = malloc(sizeof(*g));
    if (!g)
        return NULL;
    atomic_init(&g->refs, 1);
    g->h = h;
    return g;
}

static inline void graph_unref(graph_ref_t *g)
{
    if (g && atomic_fetch_sub(&g->refs, 1) == 1) {
        sc_hnsw_destroy(g->h);
        free(g);
    }
}

/* ---- shared by the three files (defined in index/scopes.c) ------------------- */

/* The scope with id 'id', or NULL. Scopes live as long as the manager. */
scope_t *scopes_find(sc_scopes_t *s, uint64_t id);
/* A new empty flat scope (not in the table), or NULL. */
scope_t *scopes_scope_new(uint64_t id, uint32_t dim);
void scopes_scope_free(scope_t *sc);
/* Inserts 'fresh' into the table, or frees it and returns the scope already
 * there with its id. */
scope_t *scopes_insert(sc_scopes_t *s, scope_t *fresh);
/* Frees every scope (all or nothing snapshot loads, destroy). */
void scopes_clear_table(sc_scopes_t *s);
/* Turns 'sc' into an HNSW scope around graph 'g' (owned on success). */
int scopes_become_hnsw(scope_t *sc, sc_hnsw_t *g);
/* Live vectors of a scope of either kind (caller holds its lock). */
size_t scopes_index_live(const scope_t *sc);
/* 1 if 'sc' is an HNSW scope whose small beam is distrusted for hits or for
 * misses (defined in index/scopes_search.c). */
int scopes_untrusted(const sc_scopes_t *s, const scope_t *sc);

#endif
