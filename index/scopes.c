/* scopes.c -- per-scope vector indexes with strict isolation, flat-to-HNSW
 * promotion, background compaction and snapshots.
 * Lock order: table lock, then a scope's rwlock, then its log mutex, then the
 * manager mutex. Scope objects are never freed while the manager lives, so a
 * pointer found under the table lock stays valid after it is released. */
#define _GNU_SOURCE
#include "sc_scopes.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sc_index.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define FLAT_MAGIC 0x31464353u /* "SCF1" */

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

typedef struct scope_s {
    uint64_t id;
    uint32_t dim;
    pthread_rwlock_t lock;   /* guards flat/hnsw and dim */
    sc_flat_t *flat;         /* exactly one of flat/hnsw is set */
    sc_hnsw_t *hnsw;
    pthread_mutex_t log_mu;
    int rebuilding;          /* guarded by log_mu: changes are also logged */
    oplog_t log;             /* guarded by log_mu */
    int queued;              /* guarded by the manager mutex */
    struct scope_s *next;    /* hash chain */
    struct scope_s *next_queued;
} scope_t;

struct sc_scopes_s {
    sc_scopes_config_t cfg;
    sc_log_t *log;
    pthread_rwlock_t table_lock;
    scope_t **buckets;
    size_t n_buckets, n_scopes;
    pthread_mutex_t load_mu;
    _Atomic int ready;
    oplog_t load_log;        /* guarded by load_mu */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t idle_cv;
    scope_t *queue_head, *queue_tail;
    int busy, stop;
    _Atomic uint64_t promotions, compactions;
};

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

static scope_t *find(sc_scopes_t *s, uint64_t id)
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

static scope_t *scope_new(uint64_t id, uint32_t dim)
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
    /* Writers (one insert each) must not starve behind a stream of searches. */
    pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&sc->lock, &a);
    pthread_rwlockattr_destroy(&a);
    pthread_mutex_init(&sc->log_mu, NULL);
    return sc;
}

static void scope_free(scope_t *sc)
{
    sc_flat_destroy(sc->flat);
    sc_hnsw_destroy(sc->hnsw);
    log_clear(&sc->log);
    pthread_rwlock_destroy(&sc->lock);
    pthread_mutex_destroy(&sc->log_mu);
    free(sc);
}

/* Inserts 'fresh' (or returns the existing scope with that id). */
static scope_t *insert_scope(sc_scopes_t *s, scope_t *fresh)
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
        scope_free(fresh);
    return sc;
}

static scope_t *get_or_create(sc_scopes_t *s, uint64_t id, uint32_t dim)
{
    scope_t *sc = find(s, id);
    if (sc)
        return sc;
    scope_t *fresh = scope_new(id, dim);
    return fresh ? insert_scope(s, fresh) : NULL;
}

static void clear_table(sc_scopes_t *s)
{
    pthread_rwlock_wrlock(&s->table_lock);
    for (size_t i = 0; i < s->n_buckets; i++) {
        scope_t *sc = s->buckets[i], *next;
        for (; sc; sc = next) {
            next = sc->next;
            scope_free(sc);
        }
        s->buckets[i] = NULL;
    }
    s->n_scopes = 0;
    pthread_rwlock_unlock(&s->table_lock);
}

/* ---- building ------------------------------------------------------------- */

typedef struct {
    uint64_t *labels;
    float *vecs;
    size_t n, cap;
    uint32_t dim;
    int oom;
} vecset_t;

static void vecset_push(void *ctx, uint64_t label, const float *vec)
{
    vecset_t *v = ctx;
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

/* Copies the live vectors of 'sc' (caller holds its lock, shared at least). */
static int snapshot_vectors(scope_t *sc, vecset_t *v)
{
    memset(v, 0, sizeof(*v));
    v->dim = sc->dim;
    if (sc->flat) {
        for (size_t i = 0; i < sc_flat_count(sc->flat); i++)
            vecset_push(v, sc_flat_label(sc->flat, i), sc_flat_row(sc->flat, i));
    } else {
        sc_hnsw_foreach(sc->hnsw, vecset_push, v);
    }
    return v->oom ? SC_ENOMEM : 0;
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
    for (size_t i = 0; i < v->n && !rc; i++)
        rc = sc_hnsw_add(*out, v->vecs + i * v->dim, v->labels[i]);
    if (rc) {
        sc_hnsw_destroy(*out);
        *out = NULL;
    }
    return rc;
}

static int index_add(scope_t *sc, uint64_t label, const float *vec)
{
    return sc->flat ? sc_flat_add(sc->flat, vec, label) : sc_hnsw_add(sc->hnsw, vec, label);
}

static int index_remove(scope_t *sc, uint64_t label)
{
    return sc->flat ? sc_flat_remove(sc->flat, label) : sc_hnsw_mark_deleted(sc->hnsw, label);
}

static size_t index_live(scope_t *sc)
{
    return sc->flat ? sc_flat_count(sc->flat) : sc_hnsw_live(sc->hnsw);
}

/* Queues 'sc' for a rebuild if it needs one and none is pending. Called with
 * the scope's lock held exclusively. */
static void maybe_schedule(sc_scopes_t *s, scope_t *sc)
{
    int need;
    if (sc->flat) {
        need = sc_flat_count(sc->flat) > s->cfg.flat_max;
    } else {
        size_t del = sc_hnsw_deleted(sc->hnsw), live = sc_hnsw_live(sc->hnsw);
        need = del >= s->cfg.compact_min_deleted &&
               (double)del > s->cfg.compact_deleted_ratio * (double)(del + live);
    }
    if (!need)
        return;
    pthread_mutex_lock(&sc->log_mu);
    int rebuilding = sc->rebuilding;
    pthread_mutex_unlock(&sc->log_mu);
    if (rebuilding)
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

/* Rebuilds one scope as a fresh HNSW (promotion or compaction) without
 * blocking searches or the writer, then swaps it in. */
static void rebuild(sc_scopes_t *s, scope_t *sc)
{
    pthread_mutex_lock(&sc->log_mu);
    sc->rebuilding = 1;
    log_clear(&sc->log);
    pthread_mutex_unlock(&sc->log_mu);

    vecset_t v;
    pthread_rwlock_rdlock(&sc->lock);
    int was_flat = sc->flat != NULL;
    int rc = snapshot_vectors(sc, &v);
    pthread_rwlock_unlock(&sc->lock);
    sc_hnsw_t *fresh = NULL;
    uint32_t built_dim = v.dim;
    if (!rc)
        rc = build_hnsw(s, &v, &fresh);
    vecset_free(&v);

    pthread_rwlock_wrlock(&sc->lock);
    pthread_mutex_lock(&sc->log_mu);
    if (!rc && fresh && built_dim == sc->dim) {
        /* Replay what changed while building; adds replace, removes of
         * absent labels are no-ops, so ops seen twice are harmless. */
        for (size_t i = 0; i < sc->log.n; i++) {
            logop_t *op = &sc->log.ops[i];
            if (op->remove)
                sc_hnsw_mark_deleted(fresh, op->label);
            else if (op->vec)
                sc_hnsw_add(fresh, op->vec, op->label);
        }
        sc_flat_destroy(sc->flat);
        sc_hnsw_destroy(sc->hnsw);
        sc->flat = NULL;
        sc->hnsw = fresh;
        atomic_fetch_add(was_flat ? &s->promotions : &s->compactions, 1);
    } else {
        sc_hnsw_destroy(fresh);
        if (rc)
            sc_log(s->log, SC_ERROR, "index: rebuild of scope %016llx failed: %s",
                   (unsigned long long)sc->id, sc_strerror(rc));
    }
    sc->rebuilding = 0;
    log_clear(&sc->log);
    pthread_mutex_unlock(&sc->log_mu);
    pthread_rwlock_unlock(&sc->lock);
}

static void *rebuild_main(void *arg)
{
    sc_scopes_t *s = arg;
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
        s->busy = 1;
        pthread_mutex_unlock(&s->mu);
        rebuild(s, sc);
        pthread_mutex_lock(&s->mu);
        sc->queued = 0;
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
    s->log = log;
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
    clear_table(s);
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
        if (index_live(sc) != 0) {
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
        sc_hnsw_destroy(sc->hnsw);
        sc->flat = f;
        sc->hnsw = NULL;
        sc->dim = dim;
    }
    int rc = index_add(sc, label, vec);
    pthread_mutex_lock(&sc->log_mu);
    if (sc->rebuilding)
        log_push(&sc->log, 0, id, label, vec, dim);
    pthread_mutex_unlock(&sc->log_mu);
    if (!rc && loading && sc->flat && sc_flat_count(sc->flat) > s->cfg.flat_max) {
        /* During the initial load, promote inline: nothing is waiting. */
        vecset_t v;
        sc_hnsw_t *h = NULL;
        if (snapshot_vectors(sc, &v) == 0 && build_hnsw(s, &v, &h) == 0) {
            sc_flat_destroy(sc->flat);
            sc->flat = NULL;
            sc->hnsw = h;
            atomic_fetch_add(&s->promotions, 1);
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
    scope_t *sc = find(s, id);
    if (!sc)
        return SC_ENOTFOUND;
    pthread_rwlock_wrlock(&sc->lock);
    int rc = index_remove(sc, label);
    pthread_mutex_lock(&sc->log_mu);
    if (sc->rebuilding)
        log_push(&sc->log, 1, id, label, NULL, 0);
    pthread_mutex_unlock(&sc->log_mu);
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

int sc_scopes_search(sc_scopes_t *s, uint64_t scope, const float *q, uint32_t dim, size_t k,
                     uint64_t *labels, float *sims, size_t *n)
{
    *n = 0;
    scope_t *sc = find(s, scope);
    if (!sc)
        return SC_ENOTFOUND;
    pthread_rwlock_rdlock(&sc->lock);
    int rc;
    if (sc->dim != dim)
        rc = SC_EDIM;
    else if (sc->flat)
        rc = sc_flat_search(sc->flat, q, k, labels, sims, n);
    else
        rc = sc_hnsw_search(sc->hnsw, q, k, labels, sims, n);
    pthread_rwlock_unlock(&sc->lock);
    return rc;
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
                st->vectors_hnsw += sc_hnsw_live(sc->hnsw);
                st->deleted_hnsw += sc_hnsw_deleted(sc->hnsw);
            }
            pthread_rwlock_unlock(&sc->lock);
            pthread_mutex_lock(&sc->log_mu);
            st->rebuilding += (uint64_t)sc->rebuilding;
            pthread_mutex_unlock(&sc->log_mu);
        }
    pthread_rwlock_unlock(&s->table_lock);
    st->promotions = atomic_load(&s->promotions);
    st->compactions = atomic_load(&s->compactions);
}

/* ---- snapshots ------------------------------------------------------------ */

static int file_xxh3(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        fclose(f);
        return SC_ENOMEM;
    }
    XXH3_64bits_reset(st);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        XXH3_64bits_update(st, buf, n);
    int rc = ferror(f) ? SC_ECORRUPT : 0;
    fclose(f);
    *out = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return rc;
}

static int write_flat(const sc_flat_t *f, const char *path)
{
    FILE *o = fopen(path, "wb");
    if (!o)
        return -errno;
    uint32_t hdr[2] = {FLAT_MAGIC, sc_flat_dim(f)};
    uint64_t n = sc_flat_count(f);
    int ok = fwrite(hdr, sizeof(hdr), 1, o) == 1 && fwrite(&n, 8, 1, o) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t label = sc_flat_label(f, i);
        ok = fwrite(&label, 8, 1, o) == 1 &&
             fwrite(sc_flat_row(f, i), sizeof(float), hdr[1], o) == hdr[1];
    }
    ok = fflush(o) == 0 && fsync(fileno(o)) == 0 && ok;
    return fclose(o) == 0 && ok ? 0 : SC_ESTORE;
}

static int read_flat(const char *path, uint32_t dim, sc_flat_t **out)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        return SC_ECORRUPT;
    uint32_t hdr[2];
    uint64_t n;
    int rc = SC_ECORRUPT;
    float *row = malloc(dim * sizeof(float));
    if (row && fread(hdr, sizeof(hdr), 1, in) == 1 && fread(&n, 8, 1, in) == 1 &&
        hdr[0] == FLAT_MAGIC && hdr[1] == dim && sc_flat_create(out, dim) == 0) {
        rc = 0;
        for (uint64_t i = 0; i < n && !rc; i++) {
            uint64_t label;
            if (fread(&label, 8, 1, in) != 1 || fread(row, sizeof(float), dim, in) != dim)
                rc = SC_ECORRUPT;
            else
                rc = sc_flat_add(*out, row, label);
        }
        if (rc)
            sc_flat_destroy(*out);
    }
    free(row);
    fclose(in);
    return rc;
}

int sc_scopes_save(sc_scopes_t *s, const char *dir, uint64_t txnid)
{
    if (mkdir(dir, 0755) && errno != EEXIST)
        return -errno;
    json_t *scopes = json_array();
    int rc = 0;
    pthread_rwlock_rdlock(&s->table_lock);
    for (size_t i = 0; i < s->n_buckets && !rc; i++)
        for (scope_t *sc = s->buckets[i]; sc && !rc; sc = sc->next) {
            pthread_rwlock_rdlock(&sc->lock);
            if (index_live(sc) == 0) {
                pthread_rwlock_unlock(&sc->lock);
                continue;
            }
            char name[64], path[4096];
            snprintf(name, sizeof(name), "%016llx.%s", (unsigned long long)sc->id,
                     sc->flat ? "flat" : "hnsw");
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            rc = sc->flat ? write_flat(sc->flat, path) : sc_hnsw_save(sc->hnsw, path);
            uint64_t sum = 0;
            if (!rc)
                rc = file_xxh3(path, &sum);
            char scope_hex[17], sum_hex[17];
            snprintf(scope_hex, sizeof(scope_hex), "%016llx", (unsigned long long)sc->id);
            snprintf(sum_hex, sizeof(sum_hex), "%016llx", (unsigned long long)sum);
            json_array_append_new(scopes, json_pack("{s:s,s:s,s:i,s:s,s:s}", "scope", scope_hex,
                                                    "kind", sc->flat ? "flat" : "hnsw", "dim",
                                                    (json_int_t)sc->dim, "file", name, "xxh3",
                                                    sum_hex));
            pthread_rwlock_unlock(&sc->lock);
        }
    pthread_rwlock_unlock(&s->table_lock);
    if (!rc) {
        char txn[32], tmp[4096], path[4096];
        snprintf(txn, sizeof(txn), "%llu", (unsigned long long)txnid);
        json_t *m = json_pack("{s:i,s:s,s:o}", "version", 1, "lmdb_txnid", txn, "scopes", scopes);
        scopes = NULL;
        snprintf(tmp, sizeof(tmp), "%s/manifest.json.tmp", dir);
        snprintf(path, sizeof(path), "%s/manifest.json", dir);
        /* Written then renamed: a crash leaves the old manifest or the new. */
        rc = json_dump_file(m, tmp, JSON_INDENT(1)) ? SC_ESTORE : 0;
        json_decref(m);
        if (!rc && rename(tmp, path))
            rc = -errno;
    }
    json_decref(scopes);
    return rc;
}

int sc_scopes_load_snapshot(sc_scopes_t *s, const char *dir, uint64_t txnid)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    json_error_t e;
    json_t *m = json_load_file(path, 0, &e);
    if (!m)
        return access(path, F_OK) ? SC_ENOTFOUND : SC_ECORRUPT;
    const char *txn = json_string_value(json_object_get(m, "lmdb_txnid"));
    json_t *scopes = json_object_get(m, "scopes");
    if (json_integer_value(json_object_get(m, "version")) != 1 || !txn || !json_is_array(scopes)) {
        json_decref(m);
        return SC_ECORRUPT;
    }
    if (strtoull(txn, NULL, 10) != txnid) {
        json_decref(m);
        return SC_ECONFLICT;
    }
    int rc = 0;
    size_t i;
    json_t *ent;
    json_array_foreach(scopes, i, ent) {
        const char *scope_hex = json_string_value(json_object_get(ent, "scope"));
        const char *kind = json_string_value(json_object_get(ent, "kind"));
        const char *file = json_string_value(json_object_get(ent, "file"));
        const char *sum_hex = json_string_value(json_object_get(ent, "xxh3"));
        json_int_t dim = json_integer_value(json_object_get(ent, "dim"));
        if (!scope_hex || !kind || !file || !sum_hex || dim <= 0 || dim > 65536 ||
            strchr(file, '/')) {
            rc = SC_ECORRUPT;
            break;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        uint64_t sum;
        if (file_xxh3(path, &sum) || sum != strtoull(sum_hex, NULL, 16)) {
            rc = SC_ECORRUPT;
            break;
        }
        scope_t *sc = scope_new(strtoull(scope_hex, NULL, 16), (uint32_t)dim);
        if (!sc) {
            rc = SC_ENOMEM;
            break;
        }
        if (strcmp(kind, "hnsw") == 0) {
            sc_flat_destroy(sc->flat);
            sc->flat = NULL;
            rc = sc_hnsw_load(&sc->hnsw, path, (uint32_t)dim);
            if (!rc)
                sc_hnsw_set_ef(sc->hnsw, s->cfg.hnsw_ef_search);
        } else {
            sc_flat_destroy(sc->flat);
            sc->flat = NULL;
            rc = read_flat(path, (uint32_t)dim, &sc->flat);
        }
        if (rc) {
            scope_free(sc);
            rc = SC_ECORRUPT;
            break;
        }
        insert_scope(s, sc);
    }
    json_decref(m);
    if (rc)
        clear_table(s); /* all or nothing: the caller rebuilds from LMDB */
    return rc;
}
