/* scopes.c -- per-scope vector indexes with strict isolation, flat-to-HNSW
 * promotion, delta merges and background compaction. Searches are in
 * index/scopes_search.c, snapshots in index/scopes_snapshot.c.
 *
 * An HNSW scope is three layers: the graph, which nothing changes once
 * searches can see it (hnswlib cannot search during an insert), a small flat
 * delta of vectors added since the graph was built, and a tombstone set of
 * labels whose copy in the graph is dead (removed or replaced). Adds and
 * removes only touch the delta and the tombstones (microseconds under the
 * scope lock); a search takes a reference on the graph and searches it
 * without any lock. The manager thread merges a full delta into a clone of
 * the graph (or, when enough is deleted, rebuilds it) and swaps the result
 * in. While it does, the delta and tombstones being merged stay searchable
 * as "frozen" layers and new changes go to fresh ones.
 *
 * Lock order: table lock, then a scope's rwlock, then its log mutex, then the
 * manager mutex. Scope objects are never freed while the manager lives, so a
 * pointer found under the table lock stays valid after it is released. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "scan8.h"
#include "scopes_internal.h"

static void log_push(oplog_t *l, int remove, uint64_t scope, uint64_t label, const float *vec,
                     uint32_t dim)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        logop_t *ops = realloc(l->ops, cap * sizeof(*ops));
        if (!ops)
            return; /* the rebuild will miss this op; the next compaction fixes it */
        l->ops = ops;
        l->cap = cap;
    }
    logop_t *op = &l->ops[l->n++];
    op->remove = remove;
    op->scope = scope;
    op->label = label;
    op->dim = dim;
    op->vec = NULL;
    if (!remove && (op->vec = malloc(dim * sizeof(float))))
        memcpy(op->vec, vec, dim * sizeof(float));
}

static void log_clear(oplog_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->ops[i].vec);
    free(l->ops);
    memset(l, 0, sizeof(*l));
}

/* ---- table -------------------------------------------------------------- */

static scope_t *find_locked(sc_scopes_t *s, uint64_t id)
{
    for (scope_t *sc = s->buckets[id % s->n_buckets]; sc; sc = sc->next)
        if (sc->id == id)
            return sc;
    return NULL;
}

scope_t *scopes_find(sc_scopes_t *s, uint64_t id)
{
    pthread_rwlock_rdlock(&s->table_lock);
    scope_t *sc = find_locked(s, id);
    pthread_rwlock_unlock(&s->table_lock);
    return sc;
}

static void rehash_locked(sc_scopes_t *s)
{
    size_t nb = s->n_buckets * 4;
    scope_t **b = calloc(nb, sizeof(*b));
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->n_buckets; i++) {
        scope_t *sc = s->buckets[i], *next;
        for (; sc; sc = next) {
            next = sc->next;
            sc->next = b[sc->id % nb];
            b[sc->id % nb] = sc;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->n_buckets = nb;
}

scope_t *scopes_scope_new(uint64_t id, uint32_t dim)
{
    scope_t *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return NULL;
    if (sc_flat_create(&sc->flat, dim)) {
        free(sc);
        return NULL;
    }
    sc->id = id;
    sc->dim = dim;
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    /* Writers (a delta add, a swap: microseconds) must not starve behind a
     * stream of searches. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&sc->lock, &a);
    pthread_rwlockattr_destroy(&a);
    pthread_mutex_init(&sc->log_mu, NULL);
    return sc;
}

/* Drops the HNSW layers (not the frozen ones, which a merge may be reading:
 * the merge frees those). */
static void drop_hnsw_layers(scope_t *sc)
{
    graph_unref(sc->graph);
    sc->graph = NULL;
    sc_flat_destroy(sc->delta);
    sc->delta = NULL;
    labelset_clear(&sc->tomb);
}

void scopes_scope_free(scope_t *sc)
{
    sc_flat_destroy(sc->flat);
    drop_hnsw_layers(sc);
    sc_flat_destroy(sc->frozen_delta);
    labelset_clear(&sc->frozen_tomb);
    log_clear(&sc->log);
    pthread_rwlock_destroy(&sc->lock);
    pthread_mutex_destroy(&sc->log_mu);
    free(sc);
}

/* Inserts 'fresh' (or returns the existing scope with that id). */
scope_t *scopes_insert(sc_scopes_t *s, scope_t *fresh)
{
    pthread_rwlock_wrlock(&s->table_lock);
    scope_t *sc = find_locked(s, fresh->id);
    if (!sc) {
        sc = fresh;
        sc->next = s->buckets[sc->id % s->n_buckets];
        s->buckets[sc->id % s->n_buckets] = sc;
        if (++s->n_scopes > s->n_buckets * 2)
            rehash_locked(s);
    }
    pthread_rwlock_unlock(&s->table_lock);
    if (sc != fresh)
        scopes_scope_free(fresh);
    return sc;
}

static scope_t *get_or_create(sc_scopes_t *s, uint64_t id, uint32_t dim)
{
    scope_t *sc = scopes_find(s, id);
    if (sc)
        return sc;
    scope_t *fresh = scopes_scope_new(id, dim);
    return fresh ? scopes_insert(s, fresh) : NULL;
}

void scopes_clear_table(sc_scopes_t *s)
{
    pthread_rwlock_wrlock(&s->table_lock);
    for (size_t i = 0; i < s->n_buckets; i++) {
        scope_t *sc = s->buckets[i], *next;
        for (; sc; sc = next) {
            next = sc->next;
            scopes_scope_free(sc);
        }
        s->buckets[i] = NULL;
    }
    s->n_scopes = 0;
    pthread_rwlock_unlock(&s->table_lock);
}

/* ---- HNSW layers (callers hold the scope lock exclusively) --------------- */

/* Whether 'label' has a live copy below the current delta: in the graph
 * (and not tombstoned by the frozen layer) or in the frozen delta. */
static int older_has(const scope_t *sc, uint64_t label)
{
    if (sc->frozen_delta && sc_flat_contains(sc->frozen_delta, label))
        return 1;
    return sc_hnsw_contains(sc->graph->h, label) && !labelset_has(&sc->frozen_tomb, label);
}

static int layer_add(scope_t *sc, uint64_t label, const float *vec)
{
    /* A replaced label: its older copy is stale, the delta holds the new one. */
    if (older_has(sc, label) && labelset_add(&sc->tomb, label))
        return SC_ENOMEM;
    return sc_flat_add(sc->delta, vec, label);
}

static int layer_remove(scope_t *sc, uint64_t label)
{
    int in_delta = sc_flat_remove(sc->delta, label) == 0;
    int older = older_has(sc, label) && !labelset_has(&sc->tomb, label);
    if (older && labelset_add(&sc->tomb, label))
        return SC_ENOMEM;
    return in_delta || older ? 0 : SC_ENOTFOUND;
}

/* Live vectors of an HNSW scope. Exact given the layer rules: every
 * tombstone names one live older copy, and the frozen tombstones name
 * graph vectors only. */
static size_t hnsw_live(const scope_t *sc)
{
    size_t live = sc_hnsw_live(sc->graph->h) + sc_flat_count(sc->delta) +
                  (sc->frozen_delta ? sc_flat_count(sc->frozen_delta) : 0);
    size_t dead = sc->tomb.n + sc->frozen_tomb.n;
    return live > dead ? live - dead : 0;
}

/* Deleted vectors still taking room: marked in the graph or tombstoned. */
static size_t hnsw_deleted(const scope_t *sc)
{
    return sc_hnsw_deleted(sc->graph->h) + sc->tomb.n + sc->frozen_tomb.n;
}

/* Turns the scope into an HNSW scope around 'g' (owned), with empty upper
 * layers. */
int scopes_become_hnsw(scope_t *sc, sc_hnsw_t *g)
{
    graph_ref_t *ref = graph_publish(g);
    sc_flat_t *delta = NULL;
    if (!ref || sc_flat_create(&delta, sc->dim)) {
        free(ref);
        return SC_ENOMEM;
    }
    sc_flat_destroy(sc->flat);
    sc->flat = NULL;
    drop_hnsw_layers(sc);
    sc->graph = ref;
    sc->delta = delta;
    return 0;
}

/* ---- building ------------------------------------------------------------- */

typedef struct {
    uint64_t *labels;
    float *vecs;
    size_t n, cap;
    uint32_t dim;
    int oom;
    const labelset_t *skip; /* labels not to copy (tombstoned) */
} vecset_t;

static void vecset_push(void *ctx, uint64_t label, const float *vec)
{
    vecset_t *v = ctx;
    if (v->skip && labelset_has(v->skip, label))
        return;
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        uint64_t *l = realloc(v->labels, cap * sizeof(uint64_t));
        float *f = l ? realloc(v->vecs, cap * v->dim * sizeof(float)) : NULL;
        if (l)
            v->labels = l;
        if (!l || !f) {
            v->oom = 1;
            return;
        }
        v->vecs = f;
        v->cap = cap;
    }
    v->labels[v->n] = label;
    memcpy(v->vecs + v->n * v->dim, vec, v->dim * sizeof(float));
    v->n++;
}

static void vecset_add_flat(vecset_t *v, const sc_flat_t *f)
{
    for (size_t i = 0; f && i < sc_flat_count(f); i++)
        vecset_push(v, sc_flat_label(f, i), sc_flat_row(f, i));
}

static void vecset_free(vecset_t *v)
{
    free(v->labels);
    free(v->vecs);
}

static int build_hnsw(sc_scopes_t *s, const vecset_t *v, sc_hnsw_t **out)
{
    size_t cap = v->n + v->n / 4 + 1024;
    int rc = sc_hnsw_create(out, v->dim, cap, s->cfg.hnsw_m, s->cfg.hnsw_ef_construction,
                            v->n ^ 0x5eedULL);
    if (rc)
        return rc;
    sc_hnsw_set_ef(*out, s->cfg.hnsw_ef_search);
    /* Without memory for the int8 copy the graph searches in float32. */
    (void)sc_hnsw_quantize(*out, s->cfg.hnsw_int8);
    for (size_t i = 0; i < v->n && !rc; i++)
        rc = sc_hnsw_add(*out, v->vecs + i * v->dim, v->labels[i]);
    if (rc) {
        sc_hnsw_destroy(*out);
        *out = NULL;
    }
    return rc;
}

size_t scopes_index_live(const scope_t *sc)
{
    return sc->flat ? sc_flat_count(sc->flat) : hnsw_live(sc);
}

static int needs_compaction(const sc_scopes_t *s, const scope_t *sc)
{
    size_t del = hnsw_deleted(sc), live = hnsw_live(sc);
    return del >= s->cfg.compact_min_deleted &&
           (double)del > s->cfg.compact_deleted_ratio * (double)(del + live);
}

/* A flat scope is promoted to HNSW past flat_max vectors, unless its int8
 * scan is available and its vectors x dimensions are within scan_max (that
 * scan is exact and, below it, faster than the decide-search: BENCHMARKS.md). */
static int flat_too_big(const sc_scopes_t *s, const sc_flat_t *f)
{
    size_t n = sc_flat_count(f);
    return n > s->cfg.flat_max && (n * sc_flat_dim(f) > s->cfg.scan_max || !s->scan8);
}

/* Queues 'sc' for background work if it needs some and none is under way.
 * Called with the scope's lock held exclusively. */
static void maybe_schedule(sc_scopes_t *s, scope_t *sc)
{
    int need;
    if (sc->flat) {
        need = flat_too_big(s, sc->flat);
        pthread_mutex_lock(&sc->log_mu);
        need = need && !sc->rebuilding;
        pthread_mutex_unlock(&sc->log_mu);
    } else {
        need = !sc->merging && (sc_flat_count(sc->delta) + sc->tomb.n >= s->cfg.delta_max ||
                                needs_compaction(s, sc));
    }
    if (!need)
        return;
    pthread_mutex_lock(&s->mu);
    if (!sc->queued) {
        sc->queued = 1;
        sc->next_queued = NULL;
        if (s->queue_tail)
            s->queue_tail->next_queued = sc;
        else
            s->queue_head = sc;
        s->queue_tail = sc;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

/* Promotes a flat scope: builds a graph from a copy of its vectors without
 * blocking anyone; what changed meanwhile was logged and goes into the new
 * delta and tombstones at the swap (microseconds per change). */
static void promote(sc_scopes_t *s, scope_t *sc)
{
    pthread_mutex_lock(&sc->log_mu);
    sc->rebuilding = 1;
    log_clear(&sc->log);
    pthread_mutex_unlock(&sc->log_mu);

    vecset_t v = {0};
    pthread_rwlock_rdlock(&sc->lock);
    uint64_t generation = sc->generation;
    int still_flat = sc->flat != NULL;
    v.dim = sc->dim;
    still_flat = still_flat && flat_too_big(s, sc->flat);
    if (still_flat)
        vecset_add_flat(&v, sc->flat);
    pthread_rwlock_unlock(&sc->lock);
    int rc = v.oom ? SC_ENOMEM : 0;
    sc_hnsw_t *fresh = NULL;
    if (!rc && still_flat)
        rc = build_hnsw(s, &v, &fresh);
    vecset_free(&v);

    pthread_rwlock_wrlock(&sc->lock);
    pthread_mutex_lock(&sc->log_mu);
    if (!rc && fresh && sc->flat && sc->generation == generation) {
        rc = scopes_become_hnsw(sc, fresh);
        if (!rc) {
            fresh = NULL;
            for (size_t i = 0; i < sc->log.n; i++) {
                logop_t *op = &sc->log.ops[i];
                if (op->remove)
                    layer_remove(sc, op->label);
                else if (op->vec)
                    layer_add(sc, op->label, op->vec);
            }
            atomic_fetch_add(&s->promotions, 1);
        }
    }
    if (rc)
        sc_log(s->log, SC_ERROR, "index: promotion of scope %016llx failed: %s",
               (unsigned long long)sc->id, sc_strerror(rc));
    sc_hnsw_destroy(fresh);
    sc->rebuilding = 0;
    log_clear(&sc->log);
    pthread_mutex_unlock(&sc->log_mu);
    maybe_schedule(s, sc);
    pthread_rwlock_unlock(&sc->lock);
}

/* Puts frozen layers back after a failed merge: frozen vectors not replaced
 * or removed meanwhile return to the delta, frozen tombstones join the
 * current ones. */
static void unfreeze(scope_t *sc)
{
    sc_flat_t *fd = sc->frozen_delta;
    labelset_t ft = sc->frozen_tomb;
    sc->frozen_delta = NULL;
    memset(&sc->frozen_tomb, 0, sizeof(sc->frozen_tomb));
    for (size_t i = 0; fd && i < sc_flat_count(fd); i++) {
        uint64_t label = sc_flat_label(fd, i);
        if (!labelset_has(&sc->tomb, label) && !sc_flat_contains(sc->delta, label))
            sc_flat_add(sc->delta, sc_flat_row(fd, i), label);
    }
    for (size_t i = 0; i < ft.cap; i++)
        if (ft.used[i])
            labelset_add(&sc->tomb, ft.keys[i]);
    sc_flat_destroy(fd);
    labelset_clear(&ft);
}

/* Merges an HNSW scope's delta and tombstones into a new graph and swaps it
 * in: a clone of the current graph with the changes applied, or a fresh
 * build from its live vectors when enough of it is deleted (compaction). */
static void merge(sc_scopes_t *s, scope_t *sc)
{
    pthread_rwlock_wrlock(&sc->lock);
    /* Queued twice (once while the last job ran), the need may be gone. */
    if (sc->flat || sc->merging ||
        (sc_flat_count(sc->delta) + sc->tomb.n < s->cfg.delta_max && !needs_compaction(s, sc))) {
        pthread_rwlock_unlock(&sc->lock);
        return;
    }
    sc_flat_t *fresh_delta;
    if (sc_flat_create(&fresh_delta, sc->dim)) {
        pthread_rwlock_unlock(&sc->lock);
        return;
    }
    int compact = needs_compaction(s, sc);
    sc->frozen_delta = sc->delta;
    sc->frozen_tomb = sc->tomb;
    sc->delta = fresh_delta;
    memset(&sc->tomb, 0, sizeof(sc->tomb));
    sc->merging = 1;
    graph_ref_t *base = sc->graph;
    atomic_fetch_add(&base->refs, 1);
    uint64_t generation = sc->generation;
    uint32_t dim = sc->dim;
    pthread_rwlock_unlock(&sc->lock);

    /* Only this thread changes frozen layers, and nobody changes a graph:
     * both are read here without the lock. */
    const sc_flat_t *fd = sc->frozen_delta;
    const labelset_t *ft = &sc->frozen_tomb;
    sc_hnsw_t *next = NULL;
    int rc;
    if (compact) {
        vecset_t v = {.dim = dim, .skip = ft};
        sc_hnsw_foreach(base->h, vecset_push, &v);
        v.skip = NULL;
        vecset_add_flat(&v, fd);
        rc = v.oom ? SC_ENOMEM : build_hnsw(s, &v, &next);
        vecset_free(&v);
    } else {
        rc = sc_hnsw_clone(base->h, sc_flat_count(fd), &next);
        for (size_t i = 0; !rc && i < ft->cap; i++)
            if (ft->used[i])
                sc_hnsw_mark_deleted(next, ft->keys[i]);
        for (size_t i = 0; !rc && i < sc_flat_count(fd); i++)
            rc = sc_hnsw_add(next, sc_flat_row(fd, i), sc_flat_label(fd, i));
    }
    graph_ref_t *ref = rc ? NULL : graph_publish(next);
    if (!rc && !ref)
        rc = SC_ENOMEM;

    pthread_rwlock_wrlock(&sc->lock);
    graph_ref_t *old = NULL;
    if (sc->generation != generation) {
        /* Reset to another embedder meanwhile: the result is moot. */
        sc_flat_destroy(sc->frozen_delta);
        sc->frozen_delta = NULL;
        labelset_clear(&sc->frozen_tomb);
        rc = rc ? rc : 1;
    } else if (rc) {
        unfreeze(sc);
    } else {
        old = sc->graph;
        sc->graph = ref;
        ref = NULL;
        next = NULL;
        sc_flat_destroy(sc->frozen_delta);
        sc->frozen_delta = NULL;
        labelset_clear(&sc->frozen_tomb);
        atomic_fetch_add(compact ? &s->compactions : &s->merges, 1);
    }
    sc->merging = 0;
    if (!sc->flat)
        maybe_schedule(s, sc);
    pthread_rwlock_unlock(&sc->lock);
    if (rc < 0)
        sc_log(s->log, SC_ERROR, "index: %s of scope %016llx failed: %s",
               compact ? "compaction" : "merge", (unsigned long long)sc->id, sc_strerror(rc));
    if (ref)
        graph_unref(ref); /* frees 'next' too */
    else
        sc_hnsw_destroy(next);
    graph_unref(base);
    /* Free the old graph here rather than in whichever search drops the last
     * reference: freeing a large graph takes milliseconds that no lookup
     * should pay. Searches in flight finish within milliseconds. */
    while (old && atomic_load(&old->refs) > 1)
        usleep(200);
    graph_unref(old);
}

static void *rebuild_main(void *arg)
{
    sc_scopes_t *s = arg;
    pthread_setname_np(pthread_self(), "sc-index");
    /* Background work yields to serving: with a nice of 10 this thread gets
     * about a tenth of a core's share when lookups want the CPU, and all of
     * an idle one. Merges then come in longer but gentler bursts. (Best
     * effort: an unprivileged process may always lower its priority.) */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10))
        sc_log(s->log, SC_DEBUG, "index: cannot lower the rebuild thread's priority");
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->queue_head && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop)
            break;
        scope_t *sc = s->queue_head;
        s->queue_head = sc->next_queued;
        if (!s->queue_head)
            s->queue_tail = NULL;
        /* Dequeued before the work, so the work can queue it again. */
        sc->queued = 0;
        s->busy = 1;
        pthread_mutex_unlock(&s->mu);
        pthread_rwlock_rdlock(&sc->lock);
        int flat = sc->flat != NULL;
        pthread_rwlock_unlock(&sc->lock);
        if (flat)
            promote(s, sc);
        else
            merge(s, sc);
        pthread_mutex_lock(&s->mu);
        s->busy = 0;
        pthread_cond_broadcast(&s->idle_cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- public ----------------------------------------------------------------- */

int sc_scopes_create(sc_scopes_t **out, const sc_scopes_config_t *cfg, sc_log_t *log)
{
    sc_scopes_t *s = calloc(1, sizeof(*s));
    if (!s)
        return SC_ENOMEM;
    s->cfg = *cfg;
    if (!s->cfg.compact_min_deleted)
        s->cfg.compact_min_deleted = 64;
    if (!s->cfg.delta_max)
        s->cfg.delta_max = 1024;
    s->log = log;
    s->scan8 = sc8_available();
    s->n_buckets = 64;
    s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
    if (!s->buckets) {
        free(s);
        return SC_ENOMEM;
    }
    pthread_rwlock_init(&s->table_lock, NULL);
    pthread_mutex_init(&s->load_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_cond_init(&s->idle_cv, NULL);
    int rc = pthread_create(&s->thread, NULL, rebuild_main, s);
    if (rc) {
        free(s->buckets);
        free(s);
        return -rc;
    }
    *out = s;
    return 0;
}

void sc_scopes_destroy(sc_scopes_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    scopes_clear_table(s);
    log_clear(&s->load_log);
    free(s->buckets);
    pthread_rwlock_destroy(&s->table_lock);
    pthread_mutex_destroy(&s->load_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->idle_cv);
    free(s);
}

static int apply_add(sc_scopes_t *s, uint64_t id, uint64_t label, const float *vec, uint32_t dim,
                     int loading)
{
    scope_t *sc = get_or_create(s, id, dim);
    if (!sc)
        return SC_ENOMEM;
    pthread_rwlock_wrlock(&sc->lock);
    if (sc->dim != dim) {
        if (scopes_index_live(sc) != 0) {
            pthread_rwlock_unlock(&sc->lock);
            return SC_EDIM;
        }
        /* An emptied scope may come back with another embedder. */
        sc_flat_t *f;
        if (sc_flat_create(&f, dim)) {
            pthread_rwlock_unlock(&sc->lock);
            return SC_ENOMEM;
        }
        sc_flat_destroy(sc->flat);
        drop_hnsw_layers(sc);
        sc->flat = f;
        sc->dim = dim;
        sc->generation++;
    }
    int rc;
    if (sc->flat)
        rc = sc_flat_add(sc->flat, vec, label);
    else if (loading)
        rc = sc_hnsw_add(sc->graph->h, vec, label); /* no search runs before ready */
    else
        rc = layer_add(sc, label, vec);
    if (sc->flat) {
        pthread_mutex_lock(&sc->log_mu);
        if (sc->rebuilding)
            log_push(&sc->log, 0, id, label, vec, dim);
        pthread_mutex_unlock(&sc->log_mu);
    }
    if (!rc && loading && sc->flat && flat_too_big(s, sc->flat)) {
        /* During the initial load, promote inline: nothing is waiting. */
        vecset_t v = {.dim = sc->dim};
        vecset_add_flat(&v, sc->flat);
        sc_hnsw_t *h = NULL;
        if (!v.oom && build_hnsw(s, &v, &h) == 0) {
            if (scopes_become_hnsw(sc, h) == 0)
                atomic_fetch_add(&s->promotions, 1);
            else
                sc_hnsw_destroy(h);
        }
        vecset_free(&v);
    } else if (!rc && !loading) {
        maybe_schedule(s, sc);
    }
    pthread_rwlock_unlock(&sc->lock);
    return rc;
}

static int apply_remove(sc_scopes_t *s, uint64_t id, uint64_t label)
{
    scope_t *sc = scopes_find(s, id);
    if (!sc)
        return SC_ENOTFOUND;
    pthread_rwlock_wrlock(&sc->lock);
    int rc;
    if (sc->flat) {
        rc = sc_flat_remove(sc->flat, label);
        pthread_mutex_lock(&sc->log_mu);
        if (sc->rebuilding)
            log_push(&sc->log, 1, id, label, NULL, 0);
        pthread_mutex_unlock(&sc->log_mu);
    } else {
        rc = layer_remove(sc, label);
    }
    if (!rc)
        maybe_schedule(s, sc);
    pthread_rwlock_unlock(&sc->lock);
    return rc;
}

/* While loading, changes are logged for sc_scopes_finish_load to replay. */
static int logged_while_loading(sc_scopes_t *s, int remove, uint64_t scope, uint64_t label,
                                const float *vec, uint32_t dim)
{
    if (atomic_load(&s->ready))
        return 0;
    pthread_mutex_lock(&s->load_mu);
    int logged = !atomic_load(&s->ready);
    if (logged)
        log_push(&s->load_log, remove, scope, label, vec, dim);
    pthread_mutex_unlock(&s->load_mu);
    return logged;
}

int sc_scopes_add(sc_scopes_t *s, uint64_t scope, uint64_t label, const float *vec, uint32_t dim)
{
    if (dim == 0)
        return SC_EINVAL;
    if (logged_while_loading(s, 0, scope, label, vec, dim))
        return 0;
    return apply_add(s, scope, label, vec, dim, 0);
}

int sc_scopes_remove(sc_scopes_t *s, uint64_t scope, uint64_t label)
{
    if (logged_while_loading(s, 1, scope, label, NULL, 0))
        return 0;
    return apply_remove(s, scope, label);
}

int sc_scopes_load_add(sc_scopes_t *s, uint64_t scope, uint64_t label, const float *vec,
                       uint32_t dim)
{
    return apply_add(s, scope, label, vec, dim, 1);
}

void sc_scopes_finish_load(sc_scopes_t *s)
{
    pthread_mutex_lock(&s->load_mu);
    for (size_t i = 0; i < s->load_log.n; i++) {
        logop_t *op = &s->load_log.ops[i];
        if (op->remove)
            apply_remove(s, op->scope, op->label);
        else if (op->vec)
            apply_add(s, op->scope, op->label, op->vec, op->dim, 0);
    }
    log_clear(&s->load_log);
    atomic_store(&s->ready, 1);
    pthread_mutex_unlock(&s->load_mu);
    /* Scopes loaded past the promotion size are HNSW already; compaction
     * needs are picked up on their next change. */
}

int sc_scopes_ready(sc_scopes_t *s)
{
    return atomic_load(&s->ready);
}

void sc_scopes_quiesce(sc_scopes_t *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->busy || s->queue_head)
        pthread_cond_wait(&s->idle_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void sc_scopes_stats(sc_scopes_t *s, sc_scopes_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    pthread_rwlock_rdlock(&s->table_lock);
    for (size_t i = 0; i < s->n_buckets; i++)
        for (scope_t *sc = s->buckets[i]; sc; sc = sc->next) {
            pthread_rwlock_rdlock(&sc->lock);
            if (sc->flat) {
                st->scopes_flat++;
                st->vectors_flat += sc_flat_count(sc->flat);
            } else {
                st->scopes_hnsw++;
                st->vectors_hnsw += hnsw_live(sc);
                st->deleted_hnsw += hnsw_deleted(sc);
                st->vectors_delta += sc_flat_count(sc->delta) +
                                     (sc->frozen_delta ? sc_flat_count(sc->frozen_delta) : 0);
                st->rebuilding += (uint64_t)sc->merging;
                st->scopes_untrusted += (uint64_t)scopes_untrusted(s, sc);
            }
            pthread_rwlock_unlock(&sc->lock);
            pthread_mutex_lock(&sc->log_mu);
            st->rebuilding += (uint64_t)sc->rebuilding;
            pthread_mutex_unlock(&sc->log_mu);
        }
    pthread_rwlock_unlock(&s->table_lock);
    st->promotions = atomic_load(&s->promotions);
    st->compactions = atomic_load(&s->compactions);
    st->merges = atomic_load(&s->merges);
    st->decided_small = atomic_load(&s->decided_small);
    st->decided_wide = atomic_load(&s->decided_wide);
    st->verified = atomic_load(&s->verified);
    st->disagreed = atomic_load(&s->disagreed);
}
