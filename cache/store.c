/* store.c -- entries on LMDB, read by any thread, written by one writer thread.
 * Tables: entries (key -> immutable record), meta (key -> hit stats), lru
 * (last_hit|key), expiry (expires|key), ns (name -> settings) and nsuse
 * (name -> entries and bytes, kept in the same transactions as the entries,
 * so per-namespace limits are exact). The two
 * index tables are big-endian-time prefixed so the sweeper and the evictor
 * walk them in order instead of scanning the store. Writes are group-committed:
 * the writer drains up to --writer-batch queued operations into one
 * transaction, so one fsync acknowledges many stores. */
#define _GNU_SOURCE
#include "sc_store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define RECORD_MAGIC 0x31454353u /* "SCE1" little-endian */
#define RECORD_HEADER 64
/* Expired entries are removed in slices of at most this many per transaction,
 * with queued writes applied between slices: deleting an entry dirties its
 * random leaf pages, so a 1,300-entry sweep was ~100 ms of writing and
 * fsyncing that every store queued behind it waited out. */
#define SWEEP_SLICE 128
/* Proactive eviction keeps this much of the map free, because LMDB needs
 * free pages even to delete (copy-on-write), so a 100 % full map could not
 * be emptied. */
#define EVICT_HIGH_WATER 0.90
#define EVICT_LOW_WATER 0.85
/* Hit counts are applied every --hit-flush-ms, coalesced per key; an entry's
 * place in LRU order moves only when its recency changes by more than the
 * granularity, so a popular entry costs one small write per flush, not one
 * index reshuffle per hit. Eviction is coarse anyway. */
/* While stores are queued, a flush is applied in slices of at most this many
 * entries' hit counts, one per writer pass beside that pass's stores, for the
 * same reason as SWEEP_SLICE: 10,000 hot entries' counts in one transaction
 * were a once-a-second ~100 ms stall for every store queued behind them.
 * With no store waiting, the rest goes in one transaction (one fsync). */
#define TOUCH_SLICE 256
#define LRU_GRANULARITY_MS 10000

typedef struct {
    uint8_t key[SC_KEY_BYTES];
    uint64_t ts;     /* latest hit */
    uint32_t count;  /* hits since the last flush; 0 = empty slot */
} touch_t;

/* An index change, collected during a write transaction and delivered to the
 * listener only once that transaction has committed. */
typedef struct {
    int put;
    uint8_t key[SC_KEY_BYTES];
    uint64_t scope;
    const float *vec;   /* puts: points into the op's record */
    uint32_t dim;
} event_t;

struct sc_store_s {
    sc_config_t cfg;
    sc_log_t *log;
    MDB_env *env;
    MDB_dbi dbi_entries, dbi_meta, dbi_lru, dbi_expiry, dbi_ns, dbi_sys, dbi_valid, dbi_neg;
    MDB_dbi dbi_nsuse;
    int opened;

    pthread_t writer;
    int writer_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sc_write_op_t *head, *tail; /* queued ops, guarded by mu */
    size_t queued;
    int stopping;
    touch_t *touches;           /* open-addressing table, guarded by mu */
    touch_t *touches_spare;     /* the writer's table while it applies one */
    size_t n_touches;           /* used slots */
    size_t touch_cap;           /* slots (a power of two) */
    touch_t *draining;          /* writer only: the flushed table being applied */
    size_t drain_pos;           /* writer only: next slot of 'draining' */

    _Atomic uint64_t expired_total, evicted_total, commits_total, writes_total;
    _Atomic uint64_t touches_dropped;
    _Atomic uint64_t writer_writes_ns, writer_sweep_ns, writer_sync_ns;
    sc_store_listener_t listener;
    event_t *events;            /* writer thread only */
    size_t n_events, events_cap;
    uint64_t txnid_at_open;
    int writer_stopped;
};

struct sc_store_reader_s {
    sc_store_t *store;
    MDB_txn *txn;
    int active;
};

static int from_mdb(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return 0;
    case MDB_NOTFOUND: return SC_ENOTFOUND;
    case MDB_MAP_FULL: return SC_EFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH: return SC_ECORRUPT;
    case MDB_BAD_VALSIZE: return SC_ETOOBIG;
    default: return rc > 0 ? -rc : SC_ESTORE; /* positive rc is an errno */
    }
}

/* ---- byte helpers ----------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* ---- records ---------------------------------------------------------- */

/* Layout (little-endian): magic, reserved, created, expires, scope,
 * prompt_tokens, completion_tokens, ns_len(u16), model_len(u16), tenant_len,
 * text_len, resp_len, dim, reserved -> 64 bytes; then ns, tenant, model,
 * text, response, zero padding to 4, dim floats. */
int sc_store_encode(const sc_entry_t *e, sc_buf_t *out)
{
    if (e->ns.len > UINT16_MAX || e->model.len > UINT16_MAX || e->tenant.len > UINT32_MAX ||
        e->text.len > UINT32_MAX || e->response.len > UINT32_MAX)
        return SC_ETOOBIG;
    size_t strs = e->ns.len + e->tenant.len + e->model.len + e->text.len + e->response.len;
    size_t pad = (4 - (RECORD_HEADER + strs) % 4) % 4;
    size_t total = RECORD_HEADER + strs + pad + (size_t)e->dim * 4;
    if (sc_buf_reserve(out, total))
        return SC_ENOMEM;
    uint8_t *h = (uint8_t *)out->data + out->len;
    memset(h, 0, RECORD_HEADER);
    put_le32(h + 0, RECORD_MAGIC);
    put_le64(h + 8, e->created_ms);
    put_le64(h + 16, e->expires_ms);
    put_le64(h + 24, e->scope);
    put_le32(h + 32, e->prompt_tokens);
    put_le32(h + 36, e->completion_tokens);
    h[40] = (uint8_t)e->ns.len;
    h[41] = (uint8_t)(e->ns.len >> 8);
    h[42] = (uint8_t)e->model.len;
    h[43] = (uint8_t)(e->model.len >> 8);
    put_le32(h + 44, (uint32_t)e->tenant.len);
    put_le32(h + 48, (uint32_t)e->text.len);
    put_le32(h + 52, (uint32_t)e->response.len);
    put_le32(h + 56, e->dim);
    uint8_t *p = h + RECORD_HEADER;
    const sc_slice_t *parts[] = {&e->ns, &e->tenant, &e->model, &e->text, &e->response};
    for (int i = 0; i < 5; i++) {
        if (parts[i]->len)
            memcpy(p, parts[i]->ptr, parts[i]->len);
        p += parts[i]->len;
    }
    memset(p, 0, pad);
    p += pad;
    if (e->dim)
        memcpy(p, e->vector, (size_t)e->dim * 4);
    out->len += total;
    out->data[out->len] = '\0';
    return 0;
}

int sc_store_decode(const void *rec, size_t len, sc_entry_t *e)
{
    const uint8_t *h = rec;
    if (len < RECORD_HEADER || get_le32(h) != RECORD_MAGIC)
        return SC_ECORRUPT;
    memset(e, 0, sizeof(*e));
    e->created_ms = get_le64(h + 8);
    e->expires_ms = get_le64(h + 16);
    e->scope = get_le64(h + 24);
    e->prompt_tokens = get_le32(h + 32);
    e->completion_tokens = get_le32(h + 36);
    size_t lens[5] = {(size_t)h[40] | (size_t)h[41] << 8, get_le32(h + 44),
                      (size_t)h[42] | (size_t)h[43] << 8, get_le32(h + 48), get_le32(h + 52)};
    e->dim = get_le32(h + 56);
    uint64_t strs = 0;
    for (int i = 0; i < 5; i++)
        strs += lens[i];
    uint64_t pad = (4 - (RECORD_HEADER + strs) % 4) % 4;
    if ((uint64_t)RECORD_HEADER + strs + pad + (uint64_t)e->dim * 4 != len)
        return SC_ECORRUPT;
    const char *p = (const char *)h + RECORD_HEADER;
    sc_slice_t *parts[] = {&e->ns, &e->tenant, &e->model, &e->text, &e->response};
    for (int i = 0; i < 5; i++) {
        parts[i]->ptr = p;
        parts[i]->len = lens[i];
        p += lens[i];
    }
    e->vector = e->dim ? p + pad : NULL;
    return 0;
}

/* Meta record: the public fields plus the timestamp under which the entry is
 * filed in the LRU table (which lags last_hit_ms by up to the granularity). */
#define META_BYTES 48

static void meta_encode(const sc_entry_meta_t *m, uint64_t lru_ms, uint8_t out[META_BYTES])
{
    put_le64(out, m->created_ms);
    put_le64(out + 8, m->expires_ms);
    put_le64(out + 16, m->last_hit_ms);
    put_le64(out + 24, m->hits);
    put_le64(out + 32, m->bytes);
    put_le64(out + 40, lru_ms);
}

static int meta_decode(const MDB_val *v, sc_entry_meta_t *m, uint64_t *lru_ms)
{
    if (v->mv_size != META_BYTES)
        return SC_ECORRUPT;
    const uint8_t *p = v->mv_data;
    m->created_ms = get_le64(p);
    m->expires_ms = get_le64(p + 8);
    m->last_hit_ms = get_le64(p + 16);
    m->hits = get_le64(p + 24);
    m->bytes = get_le64(p + 32);
    if (lru_ms)
        *lru_ms = get_le64(p + 40);
    return 0;
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

static void *writer_main(void *arg);

/* ---- per-namespace usage ------------------------------------------------ */

/* Adds 'd_entries' and 'd_bytes' to namespace 'ns''s usage inside 'txn'. */
static int ns_usage_add(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, int64_t d_entries,
                        int64_t d_bytes)
{
    /* 'ns' may point into a page of this transaction; copy it before the put. */
    char name[256];
    if (!ns.len || ns.len > sizeof(name))
        return 0;
    memcpy(name, ns.ptr, ns.len);
    MDB_val k = {ns.len, name}, v;
    uint8_t b[16] = {0};
    int rc = mdb_get(txn, s->dbi_nsuse, &k, &v);
    if (rc == 0 && v.mv_size == 16)
        memcpy(b, v.mv_data, 16);
    else if (rc && rc != MDB_NOTFOUND)
        return rc;
    int64_t n = (int64_t)get_le64(b) + d_entries, bytes = (int64_t)get_le64(b + 8) + d_bytes;
    if (n <= 0) /* the namespace is empty: no row left behind */
        return rc == MDB_NOTFOUND ? 0 : mdb_del(txn, s->dbi_nsuse, &k, NULL);
    put_le64(b, (uint64_t)n);
    put_le64(b + 8, (uint64_t)(bytes > 0 ? bytes : 0));
    MDB_val nv = {16, b};
    return mdb_put(txn, s->dbi_nsuse, &k, &nv, 0);
}

static void ns_usage_get(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, uint64_t *entries,
                         uint64_t *bytes)
{
    MDB_val k = {ns.len, (void *)ns.ptr}, v;
    *entries = *bytes = 0;
    if (ns.len && mdb_get(txn, s->dbi_nsuse, &k, &v) == 0 && v.mv_size == 16) {
        *entries = get_le64(v.mv_data);
        *bytes = get_le64((const uint8_t *)v.mv_data + 8);
    }
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
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        sc_entry_t e;
        if (sc_store_decode(v.mv_data, v.mv_size, &e) == 0 &&
            (rc = ns_usage_add(s, txn, e.ns, 1, (int64_t)v.mv_size)))
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int sc_store_open(sc_store_t *s, const char *dir)
{
    int rc;
    if (mkdir(dir, 0755) && errno != EEXIST)
        return -errno;
    if ((rc = mdb_env_create(&s->env)))
        return from_mdb(rc);
    mdb_env_set_maxdbs(s->env, 12);
    mdb_env_set_maxreaders(s->env, 512);
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)s->cfg.map_size)))
        goto fail_env;
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (s->cfg.sync == SC_SYNC_PERIODIC)
        flags |= MDB_NOMETASYNC; /* data synced per commit, meta on the timer */
    else if (s->cfg.sync == SC_SYNC_NONE)
        flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    if ((rc = mdb_env_open(s->env, dir, flags, 0644)))
        goto fail_env;
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)))
        goto fail_env;
    if ((rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &s->dbi_entries)) ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi_meta)) ||
        (rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &s->dbi_lru)) ||
        (rc = mdb_dbi_open(txn, "expiry", MDB_CREATE, &s->dbi_expiry)) ||
        (rc = mdb_dbi_open(txn, "ns", MDB_CREATE, &s->dbi_ns)) ||
        (rc = mdb_dbi_open(txn, "sys", MDB_CREATE, &s->dbi_sys)) ||
        (rc = mdb_dbi_open(txn, "validations", MDB_CREATE, &s->dbi_valid)) ||
        (rc = mdb_dbi_open(txn, "negatives", MDB_CREATE, &s->dbi_neg)) ||
        (rc = mdb_dbi_open(txn, "nsuse", MDB_CREATE, &s->dbi_nsuse)) ||
        (rc = ns_usage_rebuild_if_missing(s, txn))) {
        mdb_txn_abort(txn);
        goto fail_env;
    }
    if ((rc = mdb_txn_commit(txn)))
        goto fail_env;
    s->txnid_at_open = sc_store_txnid(s);
    s->opened = 1;
    if ((rc = pthread_create(&s->writer, NULL, writer_main, s))) {
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
    return from_mdb(rc);
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
        return from_mdb(rc);
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
        return from_mdb(rc);
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
        return from_mdb(rc);
    if ((rc = sc_store_decode(v.mv_data, v.mv_size, e)))
        return rc;
    if (meta) {
        MDB_val mv;
        if (mdb_get(r->txn, r->store->dbi_meta, &k, &mv) || meta_decode(&mv, meta, NULL)) {
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
        return from_mdb(rc);
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
    return from_mdb(rc);
}

int sc_store_ns_foreach(sc_store_t *s, void (*fn)(void *ctx, const char *name, size_t name_len,
                                                  const char *doc, size_t doc_len), void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return from_mdb(rc);
    if ((rc = mdb_cursor_open(txn, s->dbi_ns, &cur)) == 0) {
        MDB_val k, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : from_mdb(rc);
}

int sc_store_scan_vectors(sc_store_t *s, uint64_t now_ms,
                          int (*fn)(void *ctx, const uint8_t key[SC_KEY_BYTES],
                                     uint64_t scope, const float *vec, uint32_t dim),
                          void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return from_mdb(rc);
    float *buf = NULL;
    uint32_t buf_dim = 0;
    if ((rc = mdb_cursor_open(txn, s->dbi_entries, &cur)) == 0) {
        MDB_val k, v;
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            sc_entry_t e;
            if (k.mv_size != SC_KEY_BYTES || sc_store_decode(v.mv_data, v.mv_size, &e) ||
                !e.dim || (e.expires_ms && e.expires_ms <= now_ms))
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
    return rc == MDB_NOTFOUND ? 0 : from_mdb(rc);
}

int sc_store_is_negative(sc_store_reader_t *r, const uint8_t req_key[SC_KEY_BYTES],
                         const uint8_t entry_key[SC_KEY_BYTES])
{
    uint8_t nk[2 * SC_KEY_BYTES];
    memcpy(nk, req_key, SC_KEY_BYTES);
    memcpy(nk + SC_KEY_BYTES, entry_key, SC_KEY_BYTES);
    MDB_val k = {sizeof(nk), nk}, v;
    return mdb_get(r->txn, r->store->dbi_neg, &k, &v) == 0;
}

int sc_store_validations(sc_store_reader_t *r, size_t limit, sc_buf_t *out)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, r->store->dbi_valid, &cur);
    if (rc)
        return from_mdb(rc);
    sc_buf_puts(out, "[");
    MDB_val k, v;
    size_t n = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST); rc == 0 && n < limit;
         rc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
        if (n++)
            sc_buf_puts(out, ",");
        sc_buf_append(out, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
    sc_buf_puts(out, "]");
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : from_mdb(rc);
}

void sc_store_ns_usage(sc_store_reader_t *r, const char *name, uint64_t *entries, uint64_t *bytes)
{
    sc_slice_t ns = {name, strlen(name)};
    ns_usage_get(r->store, r->txn, ns, entries, bytes);
}

int sc_store_ns_get(sc_store_reader_t *r, const char *name, sc_buf_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(r->txn, r->store->dbi_ns, &k, &v);
    if (rc)
        return from_mdb(rc);
    return sc_buf_append(out, v.mv_data, v.mv_size);
}

/* ---- write primitives (writer thread, inside a write txn) ---------------- */

static void event_add(sc_store_t *s, int put, const uint8_t *key, uint64_t scope,
                      const float *vec, uint32_t dim)
{
    if (!s->listener.on_put || !dim)
        return; /* entries without a vector are not in any index */
    if (s->n_events == s->events_cap) {
        size_t cap = s->events_cap ? s->events_cap * 2 : 256;
        event_t *e = realloc(s->events, cap * sizeof(*e));
        if (!e)
            return; /* the index keeps a stale vector; lookups re-check LMDB */
        s->events = e;
        s->events_cap = cap;
    }
    event_t *ev = &s->events[s->n_events++];
    ev->put = put;
    memcpy(ev->key, key, SC_KEY_BYTES);
    ev->scope = scope;
    ev->vec = vec;
    ev->dim = dim;
}

static void events_dispatch(sc_store_t *s)
{
    for (size_t i = 0; i < s->n_events; i++) {
        event_t *ev = &s->events[i];
        if (ev->put)
            s->listener.on_put(s->listener.ctx, ev->key, ev->scope, ev->vec, ev->dim);
        else
            s->listener.on_delete(s->listener.ctx, ev->key, ev->scope, ev->dim);
    }
    s->n_events = 0;
}

static int del_entry(sc_store_t *s, MDB_txn *txn, const uint8_t *key, int *existed)
{
    MDB_val k = {SC_KEY_BYTES, (void *)key}, v;
    uint8_t ik[8 + SC_KEY_BYTES];
    sc_entry_meta_t m;
    uint64_t lru_ms;
    *existed = 0;
    int rc = mdb_get(txn, s->dbi_meta, &k, &v);
    if (rc == 0 && meta_decode(&v, &m, &lru_ms) == 0) {
        memcpy(ik + 8, key, SC_KEY_BYTES);
        MDB_val iv = {sizeof(ik), ik};
        put_be64(ik, lru_ms);
        rc = mdb_del(txn, s->dbi_lru, &iv, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        if (m.expires_ms) {
            put_be64(ik, m.expires_ms);
            rc = mdb_del(txn, s->dbi_expiry, &iv, NULL);
            if (rc && rc != MDB_NOTFOUND)
                return rc;
        }
        if ((rc = mdb_del(txn, s->dbi_meta, &k, NULL)))
            return rc;
    } else if (rc && rc != MDB_NOTFOUND) {
        return rc;
    }
    rc = mdb_get(txn, s->dbi_entries, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    sc_entry_t e;
    if (sc_store_decode(v.mv_data, v.mv_size, &e) == 0) {
        event_add(s, 0, key, e.scope, NULL, e.dim);
        if ((rc = ns_usage_add(s, txn, e.ns, -1, -(int64_t)v.mv_size)))
            return rc;
    }
    rc = mdb_del(txn, s->dbi_entries, &k, NULL);
    if (rc == 0)
        *existed = 1;
    return rc;
}

static int put_entry(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op)
{
    sc_entry_t e;
    int existed, rc;
    if (sc_store_decode(op->record.data, op->record.len, &e))
        return MDB_INVALID; /* never produced by our encoder; refuse loudly */
    if ((rc = del_entry(s, txn, op->key, &existed)))
        return rc;
    MDB_val k = {SC_KEY_BYTES, op->key}, v = {op->record.len, op->record.data};
    if ((rc = mdb_put(txn, s->dbi_entries, &k, &v, 0)) ||
        (rc = ns_usage_add(s, txn, e.ns, 1, (int64_t)op->record.len)))
        return rc;
    sc_entry_meta_t m = {e.created_ms, e.expires_ms, e.created_ms, 0, op->record.len};
    uint8_t mb[META_BYTES];
    meta_encode(&m, m.last_hit_ms, mb);
    MDB_val mv = {sizeof(mb), mb};
    if ((rc = mdb_put(txn, s->dbi_meta, &k, &mv, 0)))
        return rc;
    uint8_t ik[8 + SC_KEY_BYTES];
    memcpy(ik + 8, op->key, SC_KEY_BYTES);
    MDB_val iv = {sizeof(ik), ik}, empty = {0, NULL};
    put_be64(ik, m.last_hit_ms);
    if ((rc = mdb_put(txn, s->dbi_lru, &iv, &empty, 0)))
        return rc;
    if (m.expires_ms) {
        put_be64(ik, m.expires_ms);
        if ((rc = mdb_put(txn, s->dbi_expiry, &iv, &empty, 0)))
            return rc;
    }
    event_add(s, 1, op->key, e.scope, (const float *)e.vector, e.dim);
    return 0;
}

static int match_filter(const char *want, sc_slice_t have)
{
    return !want || (strlen(want) == have.len && memcmp(want, have.ptr, have.len) == 0);
}

static int invalidate(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->dbi_entries, &cur);
    if (rc)
        return rc;
    size_t n = 0, cap = 0;
    uint8_t *keys = NULL;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        sc_entry_t e;
        if (k.mv_size != SC_KEY_BYTES || sc_store_decode(v.mv_data, v.mv_size, &e))
            continue;
        if (!op->all && !(match_filter(op->ns, e.ns) && match_filter(op->tenant, e.tenant) &&
                          match_filter(op->model, e.model)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            uint8_t *nk = realloc(keys, cap * SC_KEY_BYTES);
            if (!nk) {
                mdb_cursor_close(cur);
                free(keys);
                return ENOMEM;
            }
            keys = nk;
        }
        memcpy(keys + n++ * SC_KEY_BYTES, k.mv_data, SC_KEY_BYTES);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        free(keys);
        return rc;
    }
    rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        int existed;
        rc = del_entry(s, txn, keys + i * SC_KEY_BYTES, &existed);
        op->count += (uint64_t)existed;
    }
    free(keys);
    return rc;
}

static int apply_touch(sc_store_t *s, MDB_txn *txn, const touch_t *t)
{
    MDB_val k = {SC_KEY_BYTES, (void *)t->key}, v;
    sc_entry_meta_t m;
    uint64_t lru_ms;
    int rc = mdb_get(txn, s->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0; /* deleted since the hit */
    if (rc || meta_decode(&v, &m, &lru_ms))
        return rc;
    if (t->ts > m.last_hit_ms)
        m.last_hit_ms = t->ts;
    m.hits += t->count;
    if (m.last_hit_ms > lru_ms + LRU_GRANULARITY_MS) {
        uint8_t ik[8 + SC_KEY_BYTES];
        memcpy(ik + 8, t->key, SC_KEY_BYTES);
        MDB_val iv = {sizeof(ik), ik}, empty = {0, NULL};
        put_be64(ik, lru_ms);
        rc = mdb_del(txn, s->dbi_lru, &iv, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        lru_ms = m.last_hit_ms;
        put_be64(ik, lru_ms);
        if ((rc = mdb_put(txn, s->dbi_lru, &iv, &empty, 0)))
            return rc;
    }
    uint8_t mb[META_BYTES];
    meta_encode(&m, lru_ms, mb);
    MDB_val mv = {sizeof(mb), mb};
    return mdb_put(txn, s->dbi_meta, &k, &mv, 0);
}

static uint64_t used_pages(sc_store_t *s, MDB_txn *txn)
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

/* Commits a one-key transaction. LMDB reuses pages freed by transaction T only
 * from T+2 on, so after a big delete this makes the freed pages available to
 * the next write instead of failing it with MDB_MAP_FULL. */
static int bump_generation(sc_store_t *s)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return rc;
    uint8_t gen[8] = {0};
    MDB_val k = {3, "gen"}, v;
    if (mdb_get(txn, s->dbi_sys, &k, &v) == 0 && v.mv_size == 8)
        memcpy(gen, v.mv_data, 8);
    put_le64(gen, get_le64(gen) + 1);
    v.mv_size = 8;
    v.mv_data = gen;
    if ((rc = mdb_put(txn, s->dbi_sys, &k, &v, 0))) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Most LRU rows one eviction looks at when it is limited to one namespace
 * (a small namespace among big ones): beyond, it evicts what it found and the
 * next store of that namespace continues. */
#define EVICT_SCAN_MAX 200000
/* --evict value considers this many times the entries it must remove, taken
 * from the least recently hit end, and removes the least valuable of them. */
#define VALUE_WINDOW 8

typedef struct {
    uint8_t key[SC_KEY_BYTES];
    double value;                 /* tokens saved per byte so far */
    size_t order;                 /* LRU position: ties go to the older */
} victim_t;

static int by_value(const void *a, const void *b)
{
    const victim_t *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* Fills 'keys' with up to 'n' entries to evict, least recently hit first, or
 * with --evict value the least valuable (tokens saved per byte: hits times
 * the entry's prompt + completion tokens, over its bytes) among the
 * VALUE_WINDOW * n least recently hit. 'ns' (may be NULL) limits it to one
 * namespace; 'keep' (may be NULL) is never chosen. Returns how many. */
static size_t pick_victims(sc_store_t *s, MDB_txn *txn, size_t n, const sc_slice_t *ns,
                           const uint8_t *keep, uint8_t *keys)
{
    int by_val = s->cfg.evict == SC_EVICT_VALUE;
    size_t want = by_val ? n * VALUE_WINDOW : n, got = 0, scanned = 0;
    victim_t *cand = malloc(want * sizeof(victim_t));
    MDB_cursor *cur;
    if (!cand || mdb_cursor_open(txn, s->dbi_lru, &cur)) {
        free(cand);
        return 0;
    }
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && got < want && scanned < EVICT_SCAN_MAX;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), scanned++) {
        if (k.mv_size != 8 + SC_KEY_BYTES)
            continue;
        const uint8_t *key = (const uint8_t *)k.mv_data + 8;
        if (keep && memcmp(key, keep, SC_KEY_BYTES) == 0)
            continue;
        victim_t *c = &cand[got];
        memcpy(c->key, key, SC_KEY_BYTES);
        c->order = scanned;
        c->value = 0;
        if (ns || by_val) {
            MDB_val ek = {SC_KEY_BYTES, c->key}, ev, mv;
            sc_entry_t e;
            if (mdb_get(txn, s->dbi_entries, &ek, &ev) || sc_store_decode(ev.mv_data, ev.mv_size, &e))
                continue;
            if (ns && (e.ns.len != ns->len || memcmp(e.ns.ptr, ns->ptr, ns->len)))
                continue;
            sc_entry_meta_t m;
            uint64_t lru_ms;
            if (by_val && mdb_get(txn, s->dbi_meta, &ek, &mv) == 0 && meta_decode(&mv, &m, &lru_ms) == 0)
                c->value = (double)m.hits * ((double)e.prompt_tokens + e.completion_tokens) /
                           (double)(ev.mv_size ? ev.mv_size : 1);
        }
        got++;
    }
    mdb_cursor_close(cur);
    if (by_val)
        qsort(cand, got, sizeof(victim_t), by_value);
    if (got > n)
        got = n;
    for (size_t i = 0; i < got; i++)
        memcpy(keys + i * SC_KEY_BYTES, cand[i].key, SC_KEY_BYTES);
    free(cand);
    return got;
}

/* Deletes up to 'n' entries chosen by pick_victims inside 'txn'; '*removed'
 * counts them. Returns MDB_MAP_FULL when there was nothing to evict. */
/* Applies every hit count not applied yet (the rest of the table being
 * drained, then the live one) inside 'txn': eviction picks its victims by
 * recency and value, and a sync op promises counts are applied. Counts are
 * expendable: if 'txn' aborts they are lost. Writer thread. */
static int flush_touches(sc_store_t *s, MDB_txn *txn)
{
    int rc = 0;
    for (int round = 0; round < 2; round++) {
        if (s->draining) {
            for (size_t i = s->drain_pos; i < s->touch_cap; i++) {
                if (s->draining[i].count && !rc)
                    rc = apply_touch(s, txn, &s->draining[i]);
                memset(&s->draining[i], 0, sizeof(touch_t));
            }
            s->draining = NULL;
        }
        if (round == 1)
            break;
        /* The spare table is empty now: swap the live one out. */
        pthread_mutex_lock(&s->mu);
        if (s->n_touches) {
            s->draining = s->touches;
            s->drain_pos = 0;
            s->touches = s->touches_spare;
            s->touches_spare = s->draining;
            s->n_touches = 0;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

static int evict_in(sc_store_t *s, MDB_txn *txn, size_t n, const sc_slice_t *ns,
                    const uint8_t *keep, uint64_t *removed)
{
    *removed = 0;
    int frc = flush_touches(s, txn);
    if (frc)
        return frc;
    uint8_t *keys = malloc(n * SC_KEY_BYTES);
    if (!keys)
        return ENOMEM;
    size_t got = pick_victims(s, txn, n, ns, keep, keys);
    int rc = 0;
    for (size_t i = 0; i < got && !rc; i++) {
        int existed;
        rc = del_entry(s, txn, keys + i * SC_KEY_BYTES, &existed);
        *removed += (uint64_t)existed;
    }
    free(keys);
    if (rc)
        return rc;
    return got ? 0 : MDB_MAP_FULL;
}

static int evict_lru_in(sc_store_t *s, MDB_txn *txn, size_t n, uint64_t *removed)
{
    return evict_in(s, txn, n, NULL, NULL, removed);
}

/* Removes the 'n' least recently hit entries in their own transaction. */
static int evict_lru(sc_store_t *s, size_t n)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return rc;
    s->n_events = 0;
    uint64_t removed;
    rc = evict_lru_in(s, txn, n, &removed);
    if (rc && rc != MDB_MAP_FULL) {
        mdb_txn_abort(txn);
        return rc;
    }
    int commit_rc = mdb_txn_commit(txn); /* commit frees the txn even on failure */
    if (commit_rc)
        return commit_rc;
    events_dispatch(s);
    bump_generation(s);
    atomic_fetch_add(&s->evicted_total, removed);
    if (removed)
        sc_log(s->log, SC_INFO, "store: evicted %llu least recently hit entries",
               (unsigned long long)removed);
    return rc; /* MDB_MAP_FULL: nothing left to evict */
}

/* Keeps the map below the high-water mark, because LMDB needs free pages
 * even to delete. With --evict lru it evicts down to the low-water mark and
 * returns 0; with --evict none it returns 1 when stores must be refused. */
static int make_room(sc_store_t *s)
{
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return 0;
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &est);
    uint64_t map_pages = info.me_mapsize / est.ms_psize;
    uint64_t used = used_pages(s, txn);
    MDB_stat st;
    mdb_stat(txn, s->dbi_entries, &st);
    mdb_txn_abort(txn);
    if ((double)used < EVICT_HIGH_WATER * (double)map_pages || st.ms_entries == 0)
        return 0;
    if (s->cfg.evict == SC_EVICT_NONE)
        return 1;
    double excess = ((double)used - EVICT_LOW_WATER * (double)map_pages) / (double)used;
    size_t n = (size_t)(excess * (double)st.ms_entries) + 16;
    evict_lru(s, n);
    return 0;
}

/* --max-entries with --evict none: a store that would add an entry beyond
 * the limit is refused (replacing an existing key is still allowed). The count
 * is read inside the write transaction, so puts earlier in the same batch are
 * included. With --evict lru the limit is enforced after each commit instead
 * (evict_over_entry_limit). */
static int entry_limit_refuses(sc_store_t *s, MDB_txn *txn, const uint8_t *key)
{
    if (s->cfg.max_entries <= 0 || s->cfg.evict != SC_EVICT_NONE)
        return 0;
    MDB_stat st;
    if (mdb_stat(txn, s->dbi_entries, &st) || st.ms_entries < (size_t)s->cfg.max_entries)
        return 0;
    MDB_val k = {SC_KEY_BYTES, (void *)key}, v;
    return mdb_get(txn, s->dbi_entries, &k, &v) != 0;
}

/* --max-entries with --evict lru: at the end of each write transaction the
 * least recently hit entries beyond the limit are deleted in the same
 * transaction, so the bound holds at every commit (even when one batch holds
 * more new entries than the limit) and costs no extra fsync. */
static int evict_over_entry_limit(sc_store_t *s, MDB_txn *txn, uint64_t *removed)
{
    *removed = 0;
    if (s->cfg.max_entries <= 0 || s->cfg.evict == SC_EVICT_NONE)
        return 0;
    MDB_stat st;
    int rc = mdb_stat(txn, s->dbi_entries, &st);
    if (rc || st.ms_entries <= (size_t)s->cfg.max_entries)
        return rc;
    rc = evict_lru_in(s, txn, st.ms_entries - (size_t)s->cfg.max_entries, removed);
    return rc == MDB_MAP_FULL ? 0 : rc;
}

/* A namespace's own caps (the op carries them from its settings). With
 * --evict none a store that would take the namespace past one is refused;
 * otherwise the namespace's least recently hit (or least valuable) entries
 * make room, in the same transaction. An entry larger than the namespace's
 * whole byte cap is refused either way. Returns 0, SC_EFULL or SC_ETOOBIG
 * (refused) or an LMDB error. */
static int ns_limits_before_put(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op)
{
    if (!op->ns_max_entries && !op->ns_max_bytes)
        return 0;
    sc_entry_t e;
    if (sc_store_decode(op->record.data, op->record.len, &e))
        return 0;
    if (op->ns_max_bytes && op->record.len > op->ns_max_bytes)
        return SC_ETOOBIG;
    if (s->cfg.evict != SC_EVICT_NONE)
        return 0;
    uint64_t n, bytes, old_len = 0;
    ns_usage_get(s, txn, e.ns, &n, &bytes);
    MDB_val k = {SC_KEY_BYTES, op->key}, v;
    int replacing = mdb_get(txn, s->dbi_entries, &k, &v) == 0;
    if (replacing)
        old_len = v.mv_size;
    if (op->ns_max_entries && !replacing && n + 1 > op->ns_max_entries)
        return SC_EFULL;
    if (op->ns_max_bytes && bytes - (old_len < bytes ? old_len : bytes) + op->record.len > op->ns_max_bytes)
        return SC_EFULL;
    return 0;
}

static int ns_limits_after_put(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, uint64_t *removed)
{
    *removed = 0;
    if ((!op->ns_max_entries && !op->ns_max_bytes) || s->cfg.evict == SC_EVICT_NONE)
        return 0;
    sc_entry_t e;
    if (sc_store_decode(op->record.data, op->record.len, &e))
        return 0;
    for (int round = 0; round < 8; round++) {
        uint64_t n, bytes, got;
        ns_usage_get(s, txn, e.ns, &n, &bytes);
        size_t over = 0;
        if (op->ns_max_entries && n > op->ns_max_entries)
            over = (size_t)(n - op->ns_max_entries);
        if (op->ns_max_bytes && bytes > op->ns_max_bytes && n) {
            /* Estimate by the namespace's mean entry size, at least one. */
            size_t by_bytes = (size_t)((bytes - op->ns_max_bytes) / (bytes / n + 1)) + 1;
            over = by_bytes > over ? by_bytes : over;
        }
        if (!over)
            return 0;
        int rc = evict_in(s, txn, over, &e.ns, op->key, &got);
        *removed += got;
        if (rc)
            return rc == MDB_MAP_FULL ? 0 : rc;
    }
    return 0;
}

/* ---- the writer ------------------------------------------------------- */

static int apply_op(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, int refuse_puts)
{
    int rc = 0, existed;
    MDB_val k, v;
    switch (op->type) {
    case SC_OP_PUT: {
        int refused = refuse_puts || entry_limit_refuses(s, txn, op->key) ? SC_EFULL
                                                                           : ns_limits_before_put(s, txn, op);
        uint64_t removed = 0;
        if (refused < 0)
            op->result = refused; /* deletes and the rest still go through */
        else if (!(rc = put_entry(s, txn, op)) && !(rc = ns_limits_after_put(s, txn, op, &removed)))
            atomic_fetch_add(&s->evicted_total, removed);
        break;
    }
    case SC_OP_DELETE:
        rc = del_entry(s, txn, op->key, &existed);
        op->count = (uint64_t)existed;
        break;
    case SC_OP_INVALIDATE:
        op->count = 0;
        rc = invalidate(s, txn, op);
        break;
    case SC_OP_NS_PUT:
        k.mv_size = strlen(op->ns);
        k.mv_data = op->ns;
        v.mv_size = op->record.len;
        v.mv_data = op->record.data;
        rc = mdb_put(txn, s->dbi_ns, &k, &v, 0);
        break;
    case SC_OP_NS_DELETE:
        op->count = 0;
        k.mv_size = strlen(op->ns);
        k.mv_data = op->ns;
        rc = mdb_del(txn, s->dbi_ns, &k, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (!rc)
            rc = invalidate(s, txn, op);
        break;
    case SC_OP_SYNC:
        rc = flush_touches(s, txn);
        break;
    case SC_OP_VALIDATION: {
        k.mv_size = SC_KEY_BYTES;
        k.mv_data = op->key;
        v.mv_size = op->record.len;
        v.mv_data = op->record.data;
        if ((rc = mdb_put(txn, s->dbi_valid, &k, &v, 0)))
            break;
        /* Bounded retention: drop the oldest beyond the limit. */
        MDB_stat st;
        mdb_stat(txn, s->dbi_valid, &st);
        MDB_cursor *cur;
        if (op->count && st.ms_entries > op->count && mdb_cursor_open(txn, s->dbi_valid, &cur) == 0) {
            size_t extra = st.ms_entries - op->count;
            MDB_val ck, cv;
            while (extra-- && mdb_cursor_get(cur, &ck, &cv, MDB_FIRST) == 0 && !rc)
                rc = mdb_cursor_del(cur, 0);
            mdb_cursor_close(cur);
        }
        break;
    }
    case SC_OP_NEGATIVE: {
        uint8_t nk[2 * SC_KEY_BYTES];
        memcpy(nk, op->key, SC_KEY_BYTES);
        memcpy(nk + SC_KEY_BYTES, op->key2, SC_KEY_BYTES);
        MDB_val nkv = {sizeof(nk), nk}, empty = {0, NULL};
        rc = mdb_put(txn, s->dbi_neg, &nkv, &empty, 0);
        break;
    }
    }
    return rc;
}

/* Applies 'ops' (and the pending hit 'touches') in one transaction. On
 * MDB_MAP_FULL it evicts and retries; if the batch still does not fit, each op
 * is retried alone so one oversized store cannot fail its neighbours. */
static void apply_batch(sc_store_t *s, sc_write_op_t *ops, touch_t *touches, size_t n_touches,
                        int split)
{
    int rc, attempt = 0, bumped = 0;
    MDB_txn *txn = NULL;
retry:;
    int refuse_puts = make_room(s);
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)))
        goto fail;
    s->n_events = 0;
    for (sc_write_op_t *op = ops; op; op = op->next) {
        op->result = 0;
        if ((rc = apply_op(s, txn, op, refuse_puts)))
            break;
    }
    for (size_t i = 0; i < n_touches && !rc; i++)
        if (touches[i].count)
            rc = apply_touch(s, txn, &touches[i]);
    uint64_t limit_evicted = 0;
    if (rc == 0)
        rc = evict_over_entry_limit(s, txn, &limit_evicted);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc == 0)
            atomic_fetch_add(&s->evicted_total, limit_evicted);
    }
    if (rc == MDB_MAP_FULL && !bumped) {
        if (txn)
            mdb_txn_abort(txn);
        txn = NULL;
        bumped = 1;
        if (bump_generation(s) == 0)
            goto retry;
    }
    if (rc == MDB_MAP_FULL && s->cfg.evict != SC_EVICT_NONE && attempt < 3) {
        if (txn)
            mdb_txn_abort(txn);
        txn = NULL;
        MDB_stat st;
        mdb_env_stat(s->env, &st);
        size_t n = (size_t)(st.ms_entries / 20) + 64;
        attempt++;
        if (evict_lru(s, n) == 0)
            goto retry;
    }
    if (rc == MDB_MAP_FULL && !split && ops && ops->next) {
        if (txn)
            mdb_txn_abort(txn);
        /* Retry one op per transaction; touches are expendable. */
        sc_write_op_t *op = ops;
        while (op) {
            sc_write_op_t *next = op->next;
            op->next = NULL;
            apply_batch(s, op, NULL, 0, 1);
            op = next;
        }
        return;
    }
    if (rc)
        goto fail;
    atomic_fetch_add(&s->commits_total, 1);
    events_dispatch(s); /* before acknowledging: a hit must not precede its index */
    for (sc_write_op_t *op = ops, *next; op; op = next) {
        next = op->next;
        atomic_fetch_add(&s->writes_total, 1);
        op->next = NULL;
        op->done(op);
    }
    return;
fail:
    if (txn)
        mdb_txn_abort(txn);
    s->n_events = 0;
    if (rc != MDB_MAP_FULL)
        sc_log(s->log, SC_ERROR, "store: write transaction failed: %s", mdb_strerror(rc));
    for (sc_write_op_t *op = ops, *next; op; op = next) {
        next = op->next;
        op->result = from_mdb(rc);
        op->next = NULL;
        op->done(op);
    }
}

/* Removes up to SWEEP_SLICE entries that expired by 'now_ms' in one
 * transaction; sets '*more' when expired entries remain. Returns the number
 * removed or SC_E*. Writer thread (or tests, with the writer idle). */
static int sweep_slice(sc_store_t *s, uint64_t now_ms, int *more)
{
    *more = 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return from_mdb(rc);
    MDB_cursor *cur;
    s->n_events = 0;
    if ((rc = mdb_cursor_open(txn, s->dbi_expiry, &cur))) {
        mdb_txn_abort(txn);
        return from_mdb(rc);
    }
    enum { cap = SWEEP_SLICE };
    uint8_t keys[cap * SC_KEY_BYTES];
    size_t n = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < cap;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 + SC_KEY_BYTES || get_be64(k.mv_data) > now_ms)
            break;
        memcpy(keys + n++ * SC_KEY_BYTES, (uint8_t *)k.mv_data + 8, SC_KEY_BYTES);
    }
    mdb_cursor_close(cur);
    rc = 0;
    uint64_t removed = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        int existed;
        rc = del_entry(s, txn, keys + i * SC_KEY_BYTES, &existed);
        removed += (uint64_t)existed;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return from_mdb(rc);
    }
    if ((rc = mdb_txn_commit(txn)))
        return from_mdb(rc);
    events_dispatch(s);
    atomic_fetch_add(&s->expired_total, removed);
    *more = n == cap;
    return (int)removed;
}

int sc_store_sweep_now(sc_store_t *s, uint64_t now_ms)
{
    uint64_t removed_total = 0;
    int more = 1;
    while (more) {
        int rc = sweep_slice(s, now_ms, &more);
        if (rc < 0)
            return rc;
        removed_total += (uint64_t)rc;
    }
    return (int)(removed_total > INT32_MAX ? INT32_MAX : removed_total);
}

static void deadline_after_ms(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *writer_main(void *arg)
{
    sc_store_t *s = arg;
    pthread_setname_np(pthread_self(), "sc-writer");
    uint64_t next_sweep = sc_mono_ns() / 1000000u + (uint64_t)s->cfg.sweep_interval_ms;
    uint64_t next_sync = sc_mono_ns() / 1000000u + (uint64_t)s->cfg.sync_interval_ms;
    uint64_t touches_since_ms = 0, sweep_started_ms = 0;
    touch_t slice[TOUCH_SLICE];
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->stopping && !s->draining) {
            uint64_t now = sc_mono_ns() / 1000000u;
            if (s->n_touches && !touches_since_ms)
                touches_since_ms = now;
            uint64_t wake = next_sweep;
            if (s->cfg.sync == SC_SYNC_PERIODIC && next_sync < wake)
                wake = next_sync;
            if (s->n_touches && touches_since_ms + (uint64_t)s->cfg.hit_flush_ms < wake)
                wake = touches_since_ms + (uint64_t)s->cfg.hit_flush_ms;
            if (wake <= now)
                break;
            struct timespec ts;
            deadline_after_ms(&ts, wake - now);
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        }
        /* Take up to one batch of ops and all pending touches. */
        sc_write_op_t *batch = s->head, *last = NULL;
        size_t n = 0;
        for (sc_write_op_t *op = s->head; op && n < (size_t)s->cfg.writer_batch; op = op->next) {
            last = op;
            n++;
        }
        if (last) {
            s->head = last->next;
            if (!s->head)
                s->tail = NULL;
            last->next = NULL;
            s->queued -= n;
        } else {
            batch = NULL;
        }
        /* Hit counts are flushed every --hit-flush-ms, or sooner when their table
         * is half full, and the flushed table is applied TOUCH_SLICE entries
         * per pass. Applying them with every batch, as before, rewrote the
         * same popular entries' meta pages dozens of times a second. */
        uint64_t now = sc_mono_ns() / 1000000u;
        if (s->n_touches && !touches_since_ms)
            touches_since_ms = now;
        if (!s->draining && s->n_touches &&
            (s->stopping || now >= touches_since_ms + (uint64_t)s->cfg.hit_flush_ms ||
             s->n_touches >= s->touch_cap / 2)) {
            s->draining = s->touches;
            s->drain_pos = 0;
            s->touches = s->touches_spare;
            s->touches_spare = s->draining;
            s->n_touches = 0;
            touches_since_ms = 0;
        }
        int stop = s->stopping && !s->head && !s->n_touches;
        pthread_mutex_unlock(&s->mu);

        /* The drained table is the writer's alone until the next swap, which
         * waits until it is empty again. */
        size_t n_touches = 0;
        touch_t *d = s->draining;
        if (d && !batch) {
            /* No store is waiting: the rest of the flush in one transaction.
             * Each commit is an fsync with --sync full, and dozens of small
             * ones a second made the event loops' lookups stall (open-loop
             * p99 at 26k hits/s: 5-12 ms against 0.9-1.5 ms). */
            uint64_t t0 = sc_mono_ns();
            MDB_txn *txn;
            if (mdb_txn_begin(s->env, NULL, 0, &txn) == 0) {
                s->n_events = 0;
                if (flush_touches(s, txn) != 0)
                    mdb_txn_abort(txn); /* counts are expendable */
                else if (mdb_txn_commit(txn) == 0)
                    atomic_fetch_add(&s->commits_total, 1);
            }
            s->draining = NULL; /* flush_touches cleared what it took */
            d = NULL;
            touches_since_ms = 0;
            atomic_fetch_add_explicit(&s->writer_writes_ns, sc_mono_ns() - t0,
                                      memory_order_relaxed);
        }
        while (d && s->drain_pos < s->touch_cap && n_touches < TOUCH_SLICE) {
            if (d[s->drain_pos].count) {
                slice[n_touches++] = d[s->drain_pos];
                memset(&d[s->drain_pos], 0, sizeof(touch_t));
            }
            s->drain_pos++;
        }
        if (d && s->drain_pos == s->touch_cap)
            s->draining = NULL;
        stop = stop && !s->draining;
        if (batch || n_touches) {
            uint64_t t0 = sc_mono_ns();
            apply_batch(s, batch, n_touches ? slice : NULL, n_touches, 0);
            atomic_fetch_add_explicit(&s->writer_writes_ns, sc_mono_ns() - t0,
                                      memory_order_relaxed);
        }
        now = sc_mono_ns() / 1000000u;
        if (now >= next_sweep) {
            /* One slice per pass: queued writes go between slices. The
             * sweep time is the slice's start, so entries that expire while
             * a long sweep is under way wait for the next one. */
            if (!sweep_started_ms)
                sweep_started_ms = sc_now_ms();
            uint64_t t0 = sc_mono_ns();
            int more = 0;
            int rc = sweep_slice(s, sweep_started_ms, &more);
            atomic_fetch_add_explicit(&s->writer_sweep_ns, sc_mono_ns() - t0,
                                      memory_order_relaxed);
            if (rc < 0) {
                sc_log(s->log, SC_ERROR, "store: sweep failed: %s", sc_strerror(rc));
                more = 0;
            }
            if (more) {
                next_sweep = now; /* continue after the queued writes */
            } else {
                sweep_started_ms = 0;
                next_sweep = now + (uint64_t)s->cfg.sweep_interval_ms;
            }
        }
        if (s->cfg.sync == SC_SYNC_PERIODIC && now >= next_sync) {
            uint64_t t0 = sc_mono_ns();
            mdb_env_sync(s->env, 1);
            atomic_fetch_add_explicit(&s->writer_sync_ns, sc_mono_ns() - t0, memory_order_relaxed);
            next_sync = now + (uint64_t)s->cfg.sync_interval_ms;
        }
        if (stop)
            break;
    }
    return NULL;
}

int sc_store_submit(sc_store_t *s, sc_write_op_t *op)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping || !s->opened) {
        pthread_mutex_unlock(&s->mu);
        return SC_ECLOSED;
    }
    if (s->queued >= (size_t)s->cfg.writer_queue) {
        pthread_mutex_unlock(&s->mu);
        return SC_EBUSY;
    }
    op->next = NULL;
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    s->queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sc_write_op_free(sc_write_op_t *op)
{
    sc_write_op_clear(op);
    free(op);
}

void sc_write_op_clear(sc_write_op_t *op)
{
    sc_buf_free(&op->record);
    free(op->ns);
    free(op->tenant);
    free(op->model);
    op->ns = op->tenant = op->model = NULL;
}

uint32_t sc_store_touch(sc_store_t *s, const uint8_t key[SC_KEY_BYTES], uint64_t now_ms)
{
    /* Keys are hashes already: their first 8 bytes make a good slot index. */
    uint64_t h;
    memcpy(&h, key, 8);
    size_t mask = s->touch_cap - 1;
    uint32_t unwritten = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = (size_t)h & mask, probes = 0; probes < 64; i = (i + 1) & mask, probes++) {
        touch_t *t = &s->touches[i];
        if (!t->count) {
            /* Keep the table at most 3/4 full so probe runs stay short. */
            if (s->n_touches >= s->touch_cap / 4 * 3)
                break;
            memcpy(t->key, key, SC_KEY_BYTES);
            t->ts = now_ms;
            t->count = 1;
            s->n_touches++;
            unwritten = 1;
            break;
        }
        if (memcmp(t->key, key, SC_KEY_BYTES) == 0) {
            unwritten = ++t->count;
            if (now_ms > t->ts)
                t->ts = now_ms;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!unwritten)
        atomic_fetch_add_explicit(&s->touches_dropped, 1, memory_order_relaxed);
    return unwritten;
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
        return from_mdb(rc);
    MDB_stat est, dst;
    mdb_env_stat(s->env, &est);
    mdb_stat(txn, s->dbi_entries, &dst);
    st->entries = dst.ms_entries;
    st->bytes = used_pages(s, txn) * est.ms_psize;
    mdb_txn_abort(txn);
    st->map_bytes = (uint64_t)s->cfg.map_size;
    return 0;
}
