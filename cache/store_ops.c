/* store_ops.c -- what one write op does to the tables, inside the writer's
 * write transaction: put and delete keep an entry's record, meta, LRU and
 * expiry rows and its namespace's usage in step; invalidation walks the
 * entries; hit counts move LRU rows only past a granularity. Index changes
 * are collected here and handed to the listener only after the commit
 * (store_writer.c), so an index never runs ahead of LMDB. Functions return
 * LMDB codes; the writer translates them for the op's submitter. */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- index changes ------------------------------------------------------ */

static void event_add(sc_store_t *s, int put, const uint8_t *key, uint64_t scope, const float *vec,
                      uint32_t dim)
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

void sc__store_events_dispatch(sc_store_t *s)
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

/* ---- per-namespace usage ------------------------------------------------ */

int sc__store_ns_usage_add(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, int64_t d_entries,
                           int64_t d_bytes)
{
    /* 'ns' may point into a page of this transaction; copy it before the put. */
    char name[256];
    if (!ns.len || ns.len > sizeof(name))
        return 0;
    memcpy(name, ns.ptr, ns.len);
    MDB_val k = {ns.len, name}, v;
    uint64_t entries = 0, bytes = 0;
    int rc = mdb_get(txn, s->dbi_nsuse, &k, &v);
    if (rc == 0)
        sc__store_usage_decode(v.mv_data, v.mv_size, &entries, &bytes);
    else if (rc != MDB_NOTFOUND)
        return rc;
    int64_t n = (int64_t)entries + d_entries, b = (int64_t)bytes + d_bytes;
    if (n <= 0) /* the namespace is empty: no row left behind */
        return rc == MDB_NOTFOUND ? 0 : mdb_del(txn, s->dbi_nsuse, &k, NULL);
    uint8_t row[USAGE_BYTES];
    sc__store_usage_encode((uint64_t)n, (uint64_t)(b > 0 ? b : 0), row);
    MDB_val nv = {sizeof(row), row};
    return mdb_put(txn, s->dbi_nsuse, &k, &nv, 0);
}

/* ---- entries ------------------------------------------------------------ */

/* Deletes entry 'key''s meta row and its 'lru' and 'expiry' rows, if any. */
static int del_meta(sc_store_t *s, MDB_txn *txn, const uint8_t *key)
{
    MDB_val k = {SC_KEY_BYTES, (void *)key}, v;
    sc_entry_meta_t m;
    uint64_t lru_ms;
    int rc = mdb_get(txn, s->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc || sc__store_meta_decode(v.mv_data, v.mv_size, &m, &lru_ms))
        return rc; /* an unreadable meta row stays, as it always has */
    uint8_t ik[INDEX_KEY_BYTES];
    MDB_val iv = {sizeof(ik), ik};
    sc__store_index_key(ik, lru_ms, key);
    rc = mdb_del(txn, s->dbi_lru, &iv, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (m.expires_ms) {
        sc__store_index_key(ik, m.expires_ms, key);
        rc = mdb_del(txn, s->dbi_expiry, &iv, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
    }
    return mdb_del(txn, s->dbi_meta, &k, NULL);
}

int sc__store_del_entry(sc_store_t *s, MDB_txn *txn, const uint8_t *key, int *existed)
{
    MDB_val k = {SC_KEY_BYTES, (void *)key}, v;
    *existed = 0;
    int rc = del_meta(s, txn, key);
    if (rc || (rc = sc__store_fleet_forget(s, txn, key)))
        return rc;
    rc = mdb_get(txn, s->dbi_entries, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    sc_entry_t e;
    if (sc_store_decode(v.mv_data, v.mv_size, &e) == 0) {
        event_add(s, 0, key, e.scope, NULL, e.dim);
        if ((rc = sc__store_ns_usage_add(s, txn, e.ns, -1, -(int64_t)v.mv_size)))
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
    if ((rc = sc__store_del_entry(s, txn, op->key, &existed)))
        return rc;
    MDB_val k = {SC_KEY_BYTES, op->key}, v = {op->record.len, op->record.data};
    if ((rc = mdb_put(txn, s->dbi_entries, &k, &v, 0)) ||
        (rc = sc__store_ns_usage_add(s, txn, e.ns, 1, (int64_t)op->record.len)))
        return rc;
    sc_entry_meta_t m = {e.created_ms, e.expires_ms, e.created_ms, 0, op->record.len};
    uint8_t mb[META_BYTES];
    sc__store_meta_encode(&m, m.last_hit_ms, mb);
    MDB_val mv = {sizeof(mb), mb};
    if ((rc = mdb_put(txn, s->dbi_meta, &k, &mv, 0)))
        return rc;
    uint8_t ik[INDEX_KEY_BYTES];
    MDB_val iv = {sizeof(ik), ik}, empty = {0, NULL};
    sc__store_index_key(ik, m.last_hit_ms, op->key);
    if ((rc = mdb_put(txn, s->dbi_lru, &iv, &empty, 0)))
        return rc;
    if (m.expires_ms) {
        sc__store_index_key(ik, m.expires_ms, op->key);
        if ((rc = mdb_put(txn, s->dbi_expiry, &iv, &empty, 0)))
            return rc;
    }
    event_add(s, 1, op->key, e.scope, (const float *)e.vector, e.dim);
    return 0;
}

/* 1 if 'have' passes filter 'want' (ptr NULL = any). */
static int match_filter(sc_slice_t want, sc_slice_t have)
{
    return !want.ptr || (want.len == have.len && memcmp(want.ptr, have.ptr, have.len) == 0);
}

static sc_slice_t filter_of(const char *s)
{
    sc_slice_t f = {s, s ? strlen(s) : 0};
    return f;
}

int sc__store_invalidate(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, sc_slice_t tenant,
                         sc_slice_t model, int all, const fver_t *before, uint64_t *count)
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
        if (!all && !(match_filter(ns, e.ns) && match_filter(tenant, e.tenant) &&
                      match_filter(model, e.model)))
            continue;
        /* A peer's invalidation spares entries written after it. */
        if (before && !sc__store_fleet_older(s, txn, k.mv_data, before))
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
        rc = sc__store_del_entry(s, txn, keys + i * SC_KEY_BYTES, &existed);
        *count += (uint64_t)existed;
    }
    free(keys);
    return rc;
}

int sc__store_apply_touch(sc_store_t *s, MDB_txn *txn, const touch_t *t)
{
    MDB_val k = {SC_KEY_BYTES, (void *)t->key}, v;
    sc_entry_meta_t m;
    uint64_t lru_ms;
    int rc = mdb_get(txn, s->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0; /* deleted since the hit */
    if (rc || sc__store_meta_decode(v.mv_data, v.mv_size, &m, &lru_ms))
        return rc;
    if (t->ts > m.last_hit_ms)
        m.last_hit_ms = t->ts;
    m.hits += t->count;
    if (m.last_hit_ms > lru_ms + LRU_GRANULARITY_MS) {
        uint8_t ik[INDEX_KEY_BYTES];
        MDB_val iv = {sizeof(ik), ik}, empty = {0, NULL};
        sc__store_index_key(ik, lru_ms, t->key);
        rc = mdb_del(txn, s->dbi_lru, &iv, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
        lru_ms = m.last_hit_ms;
        sc__store_index_key(ik, lru_ms, t->key);
        if ((rc = mdb_put(txn, s->dbi_lru, &iv, &empty, 0)))
            return rc;
    }
    uint8_t mb[META_BYTES];
    sc__store_meta_encode(&m, lru_ms, mb);
    MDB_val mv = {sizeof(mb), mb};
    return mdb_put(txn, s->dbi_meta, &k, &mv, 0);
}

/* ---- the quality loop's tables ------------------------------------------ */

/* 'op->record' under 'op->key' in the validations table; beyond 'op->count'
 * rows (0 = no bound) the lowest keys go: the quality code puts the time
 * first, so those are the oldest. */
static int put_validation(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op)
{
    MDB_val k = {SC_KEY_BYTES, op->key}, v = {op->record.len, op->record.data};
    int rc = mdb_put(txn, s->dbi_valid, &k, &v, 0);
    if (rc)
        return rc;
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
    return rc;
}

/* The 32 bytes 'op->key' | 'op->key2' into the negatives set. */
static int put_negative(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op)
{
    uint8_t nk[2 * SC_KEY_BYTES];
    memcpy(nk, op->key, SC_KEY_BYTES);
    memcpy(nk + SC_KEY_BYTES, op->key2, SC_KEY_BYTES);
    MDB_val k = {sizeof(nk), nk}, empty = {0, NULL};
    return mdb_put(txn, s->dbi_neg, &k, &empty, 0);
}

/* ---- one op ------------------------------------------------------------- */

int sc__store_apply_op(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, int refuse_puts)
{
    if (op->type == SC_OP_FLEET_APPLY || op->type == SC_OP_FLEET_ACK)
        return sc__store_fleet_apply_op(s, txn, op, refuse_puts);
    int rc = sc__store_apply_plain(s, txn, op, refuse_puts);
    if (rc == 0 && s->fleet.on && op->result == 0)
        rc = sc__store_fleet_record_local(s, txn, op);
    return rc;
}

int sc__store_apply_plain(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, int refuse_puts)
{
    int rc = 0, existed;
    MDB_val k, v;
    switch (op->type) {
    case SC_OP_PUT: {
        int refused = refuse_puts || sc__store_entry_limit_refuses(s, txn, op->key)
                          ? SC_EFULL
                          : sc__store_ns_limits_before_put(s, txn, op);
        uint64_t removed = 0;
        if (refused < 0)
            op->result = refused; /* deletes and the rest still go through */
        else if (!(rc = put_entry(s, txn, op)) &&
                 !(rc = sc__store_ns_limits_after_put(s, txn, op, &removed)))
            atomic_fetch_add(&s->evicted_total, removed);
        break;
    }
    case SC_OP_DELETE:
        rc = sc__store_del_entry(s, txn, op->key, &existed);
        op->count = (uint64_t)existed;
        break;
    case SC_OP_INVALIDATE:
        op->count = 0;
        rc = sc__store_invalidate(s, txn, filter_of(op->ns), filter_of(op->tenant),
                                  filter_of(op->model), op->all, NULL, &op->count);
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
            rc = sc__store_invalidate(s, txn, filter_of(op->ns), filter_of(NULL), filter_of(NULL),
                                      0, NULL, &op->count);
        break;
    case SC_OP_SYNC:
        rc = sc__store_flush_touches(s, txn);
        break;
    case SC_OP_VALIDATION:
        rc = put_validation(s, txn, op);
        break;
    case SC_OP_NEGATIVE:
        rc = put_negative(s, txn, op);
        break;
    case SC_OP_FLEET_APPLY:
    case SC_OP_FLEET_ACK:
        rc = EINVAL; /* not an entry change: sc__store_apply_op routes them */
        break;
    }
    return rc;
}
