/* store.c -- entries on LMDB, read by any thread, written by one writer thread.
 * This file is the environment: it opens it and its nine tables (listed with
 * their layouts in store_internal.h), owns the store's lifecycle, and serves
 * every read. Readers reuse one read-only transaction each (renewed per
 * snapshot), so a lookup never waits for the writer. Writes go through
 * store_writer.c; what they do to the tables is store_ops.c, the limits and
 * the sweeper are store_evict.c, and the bytes are store_record.c. */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int sc__store_from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return SC_ENOTFOUND;
    case MDB_MAP_FULL:
        return SC_EFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return SC_ECORRUPT;
    case MDB_BAD_VALSIZE:
        return SC_ETOOBIG;
    default:
        return rc > 0 ? -rc : SC_ESTORE; /* positive rc is an errno */
    }
}

/* ---- lifecycle -------------------------------------------------------- */

int sc_store_create(sc_store_t **out, const sc_config_t *cfg, sc_log_t *log)
{
    sc_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return SC_ENOMEM;
    s->cfg = *cfg;
    s->log = log;
    s->touch_cap = 1024;
    while (s->touch_cap < (size_t)cfg->writer_queue)
        s->touch_cap *= 2;
    s->touches = calloc(s->touch_cap, sizeof(touch_t));
    s->touches_spare = calloc(s->touch_cap, sizeof(touch_t));
    if (!s->touches || !s->touches_spare) {
        free(s->touches);
        free(s->touches_spare);
        free(s);
        return SC_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = s;
    return 0;
}

/* A store written before the usage table existed gets it counted once. */
static int ns_usage_rebuild_if_missing(sc_store_t *s, MDB_txn *txn)
{
    MDB_stat su, se;
    int rc;
    if ((rc = mdb_stat(txn, s->dbi_nsuse, &su)) || (rc = mdb_stat(txn, s->dbi_entries, &se)))
        return rc;
    if (su.ms_entries || !se.ms_entries)
        return 0;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, s->dbi_entries, &cur)))
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        sc_entry_t e;
        if (sc_store_decode(v.mv_data, v.mv_size, &e) == 0 &&
            (rc = sc__store_ns_usage_add(s, txn, e.ns, 1, (int64_t)v.mv_size)))
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Opens (creating) the nine tables, and in fleet mode the fleet's six, in
 * one transaction. The names are on disk: store_internal.h lists them with
 * their layouts. */
static int open_tables(sc_store_t *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &s->dbi_entries)) ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi_meta)) ||
        (rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &s->dbi_lru)) ||
        (rc = mdb_dbi_open(txn, "expiry", MDB_CREATE, &s->dbi_expiry)) ||
        (rc = mdb_dbi_open(txn, "ns", MDB_CREATE, &s->dbi_ns)) ||
        (rc = mdb_dbi_open(txn, "sys", MDB_CREATE, &s->dbi_sys)) ||
        (rc = mdb_dbi_open(txn, "validations", MDB_CREATE, &s->dbi_valid)) ||
        (rc = mdb_dbi_open(txn, "negatives", MDB_CREATE, &s->dbi_neg)) ||
        (rc = mdb_dbi_open(txn, "nsuse", MDB_CREATE, &s->dbi_nsuse)) ||
        (rc = ns_usage_rebuild_if_missing(s, txn)) || (rc = sc__store_fleet_open(s, txn))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

int sc_store_open(sc_store_t *s, const char *dir)
{
    int rc;
    if (mkdir(dir, 0755) && errno != EEXIST)
        return -errno;
    if ((rc = mdb_env_create(&s->env)))
        return sc__store_from_mdb(rc);
    mdb_env_set_maxdbs(s->env, 16); /* nine tables, six more in fleet mode */
    mdb_env_set_maxreaders(s->env, 512);
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)s->cfg.map_size)))
        goto fail_env;
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (s->cfg.sync == SC_SYNC_PERIODIC)
        flags |= MDB_NOMETASYNC; /* data synced per commit, meta on the timer */
    else if (s->cfg.sync == SC_SYNC_NONE)
        flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    if ((rc = mdb_env_open(s->env, dir, flags, 0644)) || (rc = open_tables(s)))
        goto fail_env;
    s->txnid_at_open = sc_store_txnid(s);
    s->opened = 1;
    if ((rc = pthread_create(&s->writer, NULL, sc__store_writer_main, s))) {
        s->opened = 0;
        rc = -rc;
        mdb_env_close(s->env);
        s->env = NULL;
        return rc;
    }
    s->writer_started = 1;
    return 0;

fail_env:
    sc_log(s->log, SC_ERROR, "store: cannot open LMDB at %s: %s", dir, mdb_strerror(rc));
    mdb_env_close(s->env);
    s->env = NULL;
    return sc__store_from_mdb(rc);
}

void sc_store_set_listener(sc_store_t *s, const sc_store_listener_t *l)
{
    s->listener = *l;
}

uint64_t sc_store_txnid(sc_store_t *s)
{
    MDB_envinfo info;
    if (!s->env || mdb_env_info(s->env, &info))
        return 0;
    return (uint64_t)info.me_last_txnid;
}

uint64_t sc_store_txnid_at_open(sc_store_t *s)
{
    return s->txnid_at_open;
}

void sc_store_stop_writer(sc_store_t *s)
{
    if (!s->writer_started || s->writer_stopped)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    s->writer_stopped = 1;
}

void sc_store_destroy(sc_store_t *s)
{
    if (!s)
        return;
    sc_store_stop_writer(s);
    if (s->env) {
        mdb_env_sync(s->env, 1);
        mdb_env_close(s->env);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->touches);
    free(s->touches_spare);
    free(s->events);
    sc__store_fleet_destroy(s);
    free(s);
}

/* ---- reads ------------------------------------------------------------ */

int sc_store_reader_create(sc_store_t *s, sc_store_reader_t **out)
{
    sc_store_reader_t *r = calloc(1, sizeof(*r));
    if (!r)
        return SC_ENOMEM;
    r->store = s;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc) {
        free(r);
        return sc__store_from_mdb(rc);
    }
    mdb_txn_reset(r->txn);
    *out = r;
    return 0;
}

void sc_store_reader_destroy(sc_store_reader_t *r)
{
    if (!r)
        return;
    mdb_txn_abort(r->txn);
    free(r);
}

int sc_store_read_begin(sc_store_reader_t *r)
{
    int rc = mdb_txn_renew(r->txn);
    if (rc)
        return sc__store_from_mdb(rc);
    r->active = 1;
    return 0;
}

void sc_store_read_end(sc_store_reader_t *r)
{
    if (r->active) {
        mdb_txn_reset(r->txn);
        r->active = 0;
    }
}

int sc_store_get(sc_store_reader_t *r, const uint8_t key[SC_KEY_BYTES], sc_entry_t *e,
                 sc_entry_meta_t *meta)
{
    MDB_val k = {SC_KEY_BYTES, (void *)key}, v;
    int rc = mdb_get(r->txn, r->store->dbi_entries, &k, &v);
    if (rc)
        return sc__store_from_mdb(rc);
    if ((rc = sc_store_decode(v.mv_data, v.mv_size, e)))
        return rc;
    if (meta) {
        MDB_val mv;
        if (mdb_get(r->txn, r->store->dbi_meta, &k, &mv) ||
            sc__store_meta_decode(mv.mv_data, mv.mv_size, meta, NULL)) {
            memset(meta, 0, sizeof(*meta));
            meta->created_ms = e->created_ms;
            meta->expires_ms = e->expires_ms;
        }
    }
    return 0;
}

uint64_t sc_store_label(const uint8_t key[SC_KEY_BYTES])
{
    uint64_t label;
    memcpy(&label, key, 8);
    return label;
}

int sc_store_get_by_label(sc_store_reader_t *r, uint64_t label, uint8_t key[SC_KEY_BYTES],
                          sc_entry_t *e, sc_entry_meta_t *meta)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, r->store->dbi_entries, &cur);
    if (rc)
        return sc__store_from_mdb(rc);
    /* Keys sort bytewise, so the first key at or after the 8 label bytes is
     * the one with that prefix, if any. */
    MDB_val k = {8, &label}, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && (k.mv_size != SC_KEY_BYTES || memcmp(k.mv_data, &label, 8) != 0))
        rc = MDB_NOTFOUND;
    if (rc == 0) {
        memcpy(key, k.mv_data, SC_KEY_BYTES);
        mdb_cursor_close(cur);
        return sc_store_get(r, key, e, meta);
    }
    mdb_cursor_close(cur);
    return sc__store_from_mdb(rc);
}

int sc_store_ns_foreach(sc_store_t *s,
                        void (*fn)(void *ctx, const char *name, size_t name_len, const char *doc,
                                   size_t doc_len),
                        void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return sc__store_from_mdb(rc);
    if ((rc = mdb_cursor_open(txn, s->dbi_ns, &cur)) == 0) {
        MDB_val k, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : sc__store_from_mdb(rc);
}

int sc_store_scan_vectors(sc_store_t *s, uint64_t now_ms,
                          int (*fn)(void *ctx, const uint8_t key[SC_KEY_BYTES], uint64_t scope,
                                    const float *vec, uint32_t dim),
                          void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return sc__store_from_mdb(rc);
    float *buf = NULL;
    uint32_t buf_dim = 0;
    if ((rc = mdb_cursor_open(txn, s->dbi_entries, &cur)) == 0) {
        MDB_val k, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            sc_entry_t e;
            if (k.mv_size != SC_KEY_BYTES || sc_store_decode(v.mv_data, v.mv_size, &e) || !e.dim ||
                (e.expires_ms && e.expires_ms <= now_ms))
                continue;
            if (e.dim > buf_dim) { /* LMDB values are not float-aligned */
                float *nb = realloc(buf, e.dim * sizeof(float));
                if (!nb) {
                    rc = ENOMEM;
                    break;
                }
                buf = nb;
                buf_dim = e.dim;
            }
            memcpy(buf, e.vector, e.dim * sizeof(float));
            if (fn(ctx, k.mv_data, e.scope, buf, e.dim)) {
                rc = MDB_NOTFOUND; /* stopped early: not an error */
                break;
            }
        }
        mdb_cursor_close(cur);
    }
    free(buf);
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : sc__store_from_mdb(rc);
}

void sc__store_ns_usage_get(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, uint64_t *entries,
                            uint64_t *bytes)
{
    MDB_val k = {ns.len, (void *)ns.ptr}, v;
    *entries = *bytes = 0;
    if (ns.len && mdb_get(txn, s->dbi_nsuse, &k, &v) == 0)
        sc__store_usage_decode(v.mv_data, v.mv_size, entries, bytes);
}

void sc_store_ns_usage(sc_store_reader_t *r, const char *name, uint64_t *entries, uint64_t *bytes)
{
    sc_slice_t ns = {name, strlen(name)};
    sc__store_ns_usage_get(r->store, r->txn, ns, entries, bytes);
}

int sc_store_ns_get(sc_store_reader_t *r, const char *name, sc_buf_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(r->txn, r->store->dbi_ns, &k, &v);
    if (rc)
        return sc__store_from_mdb(rc);
    return sc_buf_append(out, v.mv_data, v.mv_size);
}

/* ---- the quality loop's tables (opaque bytes) ---------------------------- */

static MDB_dbi table_dbi(const sc_store_t *s, sc_store_table_t t)
{
    return t == SC_TABLE_NEGATIVES ? s->dbi_neg : s->dbi_valid;
}

int sc_store_table_has(sc_store_reader_t *r, sc_store_table_t t, const void *key, size_t len)
{
    MDB_val k = {len, (void *)key}, v;
    return mdb_get(r->txn, table_dbi(r->store, t), &k, &v) == 0;
}

int sc_store_table_newest(sc_store_reader_t *r, sc_store_table_t t, size_t limit,
                          int (*fn)(void *ctx, const void *val, size_t len), void *ctx)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, table_dbi(r->store, t), &cur);
    if (rc)
        return sc__store_from_mdb(rc);
    MDB_val k, v;
    size_t n = 0;
    int stop = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0 && n < limit && !stop;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV), n++)
        stop = fn(ctx, v.mv_data, v.mv_size);
    mdb_cursor_close(cur);
    if (stop)
        return stop;
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : sc__store_from_mdb(rc);
}

/* ---- statistics --------------------------------------------------------- */

uint64_t sc__store_used_pages(sc_store_t *s, MDB_txn *txn)
{
    MDB_dbi dbis[] = {s->dbi_entries, s->dbi_meta, s->dbi_lru, s->dbi_expiry, s->dbi_ns};
    uint64_t pages = 0;
    for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++) {
        MDB_stat st;
        if (mdb_stat(txn, dbis[i], &st) == 0)
            pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    return pages;
}

int sc_store_stats(sc_store_t *s, sc_store_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->expired_total = atomic_load(&s->expired_total);
    st->evicted_total = atomic_load(&s->evicted_total);
    st->commits_total = atomic_load(&s->commits_total);
    st->writes_total = atomic_load(&s->writes_total);
    st->touches_dropped = atomic_load(&s->touches_dropped);
    st->writer_writes_ns = atomic_load(&s->writer_writes_ns);
    st->writer_sweep_ns = atomic_load(&s->writer_sweep_ns);
    st->writer_sync_ns = atomic_load(&s->writer_sync_ns);
    pthread_mutex_lock(&s->mu);
    st->queue_depth = s->queued;
    pthread_mutex_unlock(&s->mu);
    if (!s->env)
        return SC_ECLOSED;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return sc__store_from_mdb(rc);
    MDB_stat est, dst;
    mdb_env_stat(s->env, &est);
    mdb_stat(txn, s->dbi_entries, &dst);
    st->entries = dst.ms_entries;
    st->bytes = sc__store_used_pages(s, txn) * est.ms_psize;
    mdb_txn_abort(txn);
    st->map_bytes = (uint64_t)s->cfg.map_size;
    return 0;
}
