/* store_fleet.c -- fleet mode in the store: the six fleet tables (listed in
 * store_internal.h), the hybrid logical clock, the outbox, versions and
 * tombstones. A local change is recorded for the peers inside the writer's
 * transaction that makes it, so a commit either has its outbox record or did
 * not happen; a peer's record is applied (store_fleet_apply.c) in a
 * transaction that also moves the last applied stream ID, so a crash neither
 * skips nor repeats one. Everything here runs on the writer thread except the
 * read-only calls (outbox, applied ID, stats, checksum, snapshot). */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "sc_fleet_record.h"

/* Tombstones are looked at for expiry at most this often. */
#define GC_INTERVAL_MS 10000

/* ---- rows ----------------------------------------------------------------- */

void sc__fleet_ver_encode(const fver_t *v, uint8_t out[16])
{
    put_le64(out, v->hlc);
    put_le64(out + 8, v->origin);
}

int sc__fleet_ver_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, fver_t *v)
{
    MDB_val k = {klen, (void *)key}, val;
    int rc = mdb_get(txn, dbi, &k, &val);
    if (rc)
        return rc;
    if (val.mv_size < 16)
        return MDB_NOTFOUND; /* unreadable: as if absent */
    v->hlc = get_le64(val.mv_data);
    v->origin = get_le64((const uint8_t *)val.mv_data + 8);
    return 0;
}

int sc__fleet_newer(const fver_t *a, const fver_t *b)
{
    return a->hlc > b->hlc || (a->hlc == b->hlc && a->origin > b->origin);
}

/* Entry 'key''s version row. */
static int ver_put(sc_store_t *s, MDB_txn *txn, const uint8_t *key, const fver_t *v)
{
    uint8_t row[16];
    sc__fleet_ver_encode(v, row);
    MDB_val k = {SC_KEY_BYTES, (void *)key}, val = {sizeof(row), row};
    return mdb_put(txn, s->fleet.dbi_ver, &k, &val, 0);
}

int sc__fleet_tomb_put(sc_store_t *s, MDB_txn *txn, const uint8_t *key, const fver_t *v)
{
    fver_t old;
    if (sc__fleet_ver_get(txn, s->fleet.dbi_tomb, key, SC_KEY_BYTES, &old) == 0 &&
        !sc__fleet_newer(v, &old))
        return 0; /* a newer delete is already remembered */
    uint8_t row[24];
    sc__fleet_ver_encode(v, row);
    put_le64(row + 16, sc_now_ms());
    MDB_val k = {SC_KEY_BYTES, (void *)key}, val = {sizeof(row), row};
    return mdb_put(txn, s->fleet.dbi_tomb, &k, &val, 0);
}

int sc__fleet_itomb_put(sc_store_t *s, MDB_txn *txn, const fver_t *v, const void *rec, size_t len)
{
    uint8_t key[16];
    put_be64(key, v->hlc);
    put_be64(key + 8, v->origin);
    MDB_val k = {sizeof(key), key}, val = {8 + len, NULL};
    int rc = mdb_put(txn, s->fleet.dbi_itomb, &k, &val, MDB_RESERVE);
    if (rc)
        return rc;
    put_le64(val.mv_data, sc_now_ms());
    memcpy((uint8_t *)val.mv_data + 8, rec, len);
    return 0;
}

int sc__fleet_nsver_put(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, const fver_t *v, int deleted)
{
    uint8_t row[17];
    sc__fleet_ver_encode(v, row);
    row[16] = (uint8_t)(deleted != 0);
    MDB_val k = {ns.len, (void *)ns.ptr}, val = {sizeof(row), row};
    return mdb_put(txn, s->fleet.dbi_nsver, &k, &val, 0);
}

static int meta_put(sc_store_t *s, MDB_txn *txn, const char *name, const void *v, size_t len)
{
    MDB_val k = {strlen(name), (void *)name}, val = {len, (void *)v};
    return mdb_put(txn, s->fleet.dbi_meta, &k, &val, 0);
}

int sc__fleet_save_hlc(sc_store_t *s, MDB_txn *txn)
{
    uint8_t b[8];
    put_le64(b, s->fleet.hlc);
    return meta_put(s, txn, "hlc", b, sizeof(b));
}

/* ---- the clock ------------------------------------------------------------ */

/* The next timestamp for a local change: the wall clock when it is ahead,
 * else one more than the last given or seen (so order survives a clock that
 * steps back and changes seen from peers with clocks ahead). */
static uint64_t hlc_next(fleet_t *f)
{
    uint64_t pt = sc_now_ms() << 16;
    f->hlc = pt > f->hlc ? pt : f->hlc + 1;
    return f->hlc;
}

/* Tombstones are forgotten at most GC_INTERVAL_MS after they expire, and
 * looked at no more often than every 50 ms (short retentions are tests). */
static uint64_t gc_every_ms(const fleet_t *f)
{
    uint64_t every = f->opts.tombstone_ms / 2;
    return every > GC_INTERVAL_MS ? GC_INTERVAL_MS : every < 50 ? 50 : every;
}

/* ---- lifecycle -------------------------------------------------------- */

int sc_store_fleet_enable(sc_store_t *s, const sc_store_fleet_opts_t *o,
                          const sc_store_fleet_hooks_t *hooks)
{
    if (s->opened)
        return SC_EINVAL;
    s->fleet.on = 1;
    s->fleet.opts = *o;
    if (hooks)
        s->fleet.hooks = *hooks;
    return 0;
}

static uint64_t random_node_id(void)
{
    uint64_t id = 0;
    while (!id)
        if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
            id = sc_mono_ns() ^ (sc_now_ms() << 20) ^ (uint64_t)getpid();
    return id;
}

static int open_fleet_tables(MDB_txn *txn, fleet_t *f, unsigned flags)
{
    int rc;
    if ((rc = mdb_dbi_open(txn, "fleet", flags, &f->dbi_meta)) ||
        (rc = mdb_dbi_open(txn, "fleet_outbox", MDB_CREATE, &f->dbi_outbox)) ||
        (rc = mdb_dbi_open(txn, "fleet_versions", MDB_CREATE, &f->dbi_ver)) ||
        (rc = mdb_dbi_open(txn, "fleet_tombstones", MDB_CREATE, &f->dbi_tomb)) ||
        (rc = mdb_dbi_open(txn, "fleet_invalidations", MDB_CREATE, &f->dbi_itomb)) ||
        (rc = mdb_dbi_open(txn, "fleet_nsversions", MDB_CREATE, &f->dbi_nsver)))
        return rc;
    return 0;
}

static int put_new_node_id(MDB_txn *txn, fleet_t *f)
{
    uint8_t b[8];
    f->node = random_node_id();
    put_le64(b, f->node);
    MDB_val k = {4, "node"}, v = {8, b};
    return mdb_put(txn, f->dbi_meta, &k, &v, 0);
}

int sc__store_fleet_open(sc_store_t *s, MDB_txn *txn)
{
    fleet_t *f = &s->fleet;
    if (!f->on)
        return 0;
    int rc = open_fleet_tables(txn, f, MDB_CREATE);
    if (rc)
        return rc;
    MDB_val k = {4, "node"}, v;
    if ((rc = mdb_get(txn, f->dbi_meta, &k, &v)) == 0 && v.mv_size == 8)
        f->node = get_le64(v.mv_data);
    else if ((rc = put_new_node_id(txn, f)))
        return rc;
    MDB_val hk = {3, "hlc"};
    if (mdb_get(txn, f->dbi_meta, &hk, &v) == 0 && v.mv_size == 8)
        f->hlc = get_le64(v.mv_data);
    MDB_cursor *cur;
    f->next_seq = 1;
    if ((rc = mdb_cursor_open(txn, f->dbi_outbox, &cur)))
        return rc;
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
        f->next_seq = get_be64(k.mv_data) + 1;
    mdb_cursor_close(cur);
    atomic_store(&f->outbox_last, f->next_seq - 1);
    f->next_gc_ms = sc_mono_ns() / 1000000u + gc_every_ms(f);
    return 0;
}

void sc__store_fleet_destroy(sc_store_t *s)
{
    sc__store_fleet_txn_reset(s);
    free(s->fleet.ns_events);
    sc_buf_free(&s->fleet.scratch);
}

uint64_t sc_store_fleet_node(sc_store_t *s)
{
    return s->fleet.on ? s->fleet.node : 0;
}

/* ---- after the transaction ----------------------------------------------- */

int sc__fleet_ns_event(sc_store_t *s, sc_slice_t name, const sc_slice_t *doc)
{
    fleet_t *f = &s->fleet;
    if (!f->hooks.on_ns)
        return 0;
    if (f->n_ns_events == f->ns_events_cap) {
        size_t cap = f->ns_events_cap ? f->ns_events_cap * 2 : 8;
        fleet_ns_event_t *e = realloc(f->ns_events, cap * sizeof(*e));
        if (!e)
            return ENOMEM;
        f->ns_events = e;
        f->ns_events_cap = cap;
    }
    fleet_ns_event_t *ev = &f->ns_events[f->n_ns_events];
    ev->name = strndup(name.ptr, name.len);
    ev->len = name.len;
    ev->doc = doc ? strndup(doc->ptr, doc->len) : NULL;
    ev->doc_len = doc ? doc->len : 0;
    if (!ev->name || (doc && !ev->doc)) {
        free(ev->name);
        free(ev->doc);
        return ENOMEM;
    }
    f->n_ns_events++;
    return 0;
}

void sc__store_fleet_txn_reset(sc_store_t *s)
{
    fleet_t *f = &s->fleet;
    for (size_t i = 0; i < f->n_ns_events; i++) {
        free(f->ns_events[i].name);
        free(f->ns_events[i].doc);
    }
    f->n_ns_events = 0;
    f->outbox_added = 0;
}

void sc__store_fleet_committed(sc_store_t *s)
{
    fleet_t *f = &s->fleet;
    if (!f->on)
        return;
    for (size_t i = 0; i < f->n_ns_events; i++) {
        fleet_ns_event_t *ev = &f->ns_events[i];
        f->hooks.on_ns(f->hooks.ctx, ev->name, ev->len, ev->doc, ev->doc_len);
    }
    if (f->outbox_added) /* before the hook: its reader must see the records */
        atomic_store_explicit(&f->outbox_last, f->next_seq - 1, memory_order_release);
    if (f->outbox_added && f->hooks.on_outbox)
        f->hooks.on_outbox(f->hooks.ctx);
    sc__store_fleet_txn_reset(s);
}

/* ---- recording a local change --------------------------------------------- */

/* Adds the record in 'f->scratch' to the outbox; beyond --fleet-outbox-max
 * the oldest records go (counted): the outbox bounds what an outage costs
 * in disk, never the local data. */
static int outbox_add(sc_store_t *s, MDB_txn *txn)
{
    fleet_t *f = &s->fleet;
    uint8_t key[8];
    put_be64(key, f->next_seq++);
    MDB_val k = {sizeof(key), key}, v = {f->scratch.len, f->scratch.data};
    int rc = mdb_put(txn, f->dbi_outbox, &k, &v, 0);
    if (rc)
        return rc;
    f->outbox_added = 1;
    MDB_stat st;
    if (!f->opts.outbox_max || mdb_stat(txn, f->dbi_outbox, &st) ||
        st.ms_entries <= f->opts.outbox_max)
        return 0;
    MDB_cursor *cur;
    if ((rc = mdb_cursor_open(txn, f->dbi_outbox, &cur)))
        return rc;
    size_t extra = st.ms_entries - f->opts.outbox_max;
    for (size_t i = 0; i < extra && !rc; i++)
        if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 &&
            (rc = mdb_cursor_del(cur, 0)) == 0)
            atomic_fetch_add(&f->outbox_dropped, 1);
    mdb_cursor_close(cur);
    return rc;
}

static sc_slice_t slice_of(const char *p)
{
    sc_slice_t sl = {p ? p : "", p ? strlen(p) : 0};
    return sl;
}

/* Fills 'r' from local op 'op' (made at version 'v'); 'emb' receives the
 * embedder identity of a stored vector. 0, or 1 for an op not replicated. */
static int record_of(sc_store_t *s, const sc_write_op_t *op, const fver_t *v, sc_frec_t *r,
                     char emb[SC_FREC_MAX_EMBEDDER + 1])
{
    memset(r, 0, sizeof(*r));
    r->origin = v->origin;
    r->hlc = v->hlc;
    sc_slice_t record = {op->record.data, op->record.len};
    switch (op->type) {
    case SC_OP_PUT: {
        sc_entry_t e;
        r->type = SC_FREC_PUT;
        r->a = op->ns_max_entries;
        r->b = op->ns_max_bytes;
        r->payload = record;
        emb[0] = '\0';
        if (s->fleet.hooks.embedder_of && sc_store_decode(record.ptr, record.len, &e) == 0 &&
            e.dim) {
            s->fleet.hooks.embedder_of(s->fleet.hooks.ctx, e.ns, emb, SC_FREC_MAX_EMBEDDER + 1);
            emb[SC_FREC_MAX_EMBEDDER] = '\0';
        }
        r->embedder = slice_of(emb);
        break;
    }
    case SC_OP_DELETE:
        r->type = SC_FREC_DELETE;
        break;
    case SC_OP_INVALIDATE:
        r->type = SC_FREC_INVALIDATE;
        r->flags = op->all ? SC_FREC_ALL
                           : (op->ns ? SC_FREC_HAS_NS : 0) | (op->tenant ? SC_FREC_HAS_TENANT : 0) |
                                 (op->model ? SC_FREC_HAS_MODEL : 0);
        if (!op->all) {
            r->ns = slice_of(op->ns);
            r->tenant = slice_of(op->tenant);
            r->model = slice_of(op->model);
        }
        return 0;
    case SC_OP_NS_PUT:
        r->type = SC_FREC_NS_PUT;
        r->ns = slice_of(op->ns);
        r->payload = record;
        return 0;
    case SC_OP_NS_DELETE:
        r->type = SC_FREC_NS_DELETE;
        r->ns = slice_of(op->ns);
        return 0;
    case SC_OP_VALIDATION:
        r->type = SC_FREC_VALIDATION;
        r->a = op->count;
        r->payload = record;
        break;
    case SC_OP_NEGATIVE:
        r->type = SC_FREC_NEGATIVE;
        memcpy(r->key2, op->key2, SC_KEY_BYTES);
        break;
    default:
        return 1; /* SYNC: nothing changed */
    }
    memcpy(r->key, op->key, SC_KEY_BYTES);
    return 0;
}

int sc__store_fleet_record_local(sc_store_t *s, MDB_txn *txn, const sc_write_op_t *op)
{
    fleet_t *f = &s->fleet;
    fver_t v = {0, f->node};
    sc_frec_t r;
    char emb[SC_FREC_MAX_EMBEDDER + 1];
    v.hlc = hlc_next(f);
    if (record_of(s, op, &v, &r, emb))
        return 0;
    int rc = 0;
    MDB_val k = {SC_KEY_BYTES, (void *)op->key};
    switch (op->type) {
    case SC_OP_PUT:
        rc = ver_put(s, txn, op->key, &v);
        if (!rc && (rc = mdb_del(txn, f->dbi_tomb, &k, NULL)) == MDB_NOTFOUND)
            rc = 0;
        break;
    case SC_OP_DELETE:
        rc = sc__fleet_tomb_put(s, txn, op->key, &v);
        break;
    case SC_OP_NS_PUT:
    case SC_OP_NS_DELETE:
        rc = sc__fleet_nsver_put(s, txn, r.ns, &v, op->type == SC_OP_NS_DELETE);
        break;
    default:
        break;
    }
    if (rc)
        return rc;
    sc_buf_reset(&f->scratch);
    int erc = sc_frec_encode(&r, &f->scratch);
    if (erc) {
        /* Only a field beyond the record's limits gets here (an invalidation
         * filter over 4 KB); the local change stands, its peers miss it. */
        atomic_fetch_add(&f->outbox_dropped, 1);
        sc_log(s->log, SC_WARN, "fleet: a local %s cannot be replicated: %s",
               sc_frec_type_name(r.type), sc_strerror(erc));
        return sc__fleet_save_hlc(s, txn);
    }
    if ((r.type == SC_FREC_INVALIDATE || r.type == SC_FREC_NS_DELETE) &&
        (rc = sc__fleet_itomb_put(s, txn, &v, f->scratch.data, f->scratch.len)))
        return rc;
    if ((rc = outbox_add(s, txn)))
        return rc;
    atomic_fetch_add(&f->recorded, 1);
    return sc__fleet_save_hlc(s, txn);
}

/* ---- versions ------------------------------------------------------------- */

int sc__store_fleet_forget(sc_store_t *s, MDB_txn *txn, const uint8_t *key)
{
    if (!s->fleet.on)
        return 0;
    MDB_val k = {SC_KEY_BYTES, (void *)key};
    int rc = mdb_del(txn, s->fleet.dbi_ver, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int sc__store_fleet_older(sc_store_t *s, MDB_txn *txn, const uint8_t *key, const fver_t *v)
{
    fver_t cur;
    if (!s->fleet.on || sc__fleet_ver_get(txn, s->fleet.dbi_ver, key, SC_KEY_BYTES, &cur))
        return 1;
    return sc__fleet_newer(v, &cur);
}

/* ---- forgetting old tombstones -------------------------------------------- */

/* Deletes the rows of 'dbi' that 'expired' says are past 'cutoff_ms'. */
static int gc_table(MDB_txn *txn, MDB_dbi dbi, uint64_t cutoff_ms,
                    int (*expired)(const MDB_val *k, const MDB_val *v, uint64_t cutoff_ms))
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if (expired(&k, &v, cutoff_ms) && (rc = mdb_cursor_del(cur, 0)))
            break;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int tomb_expired(const MDB_val *k, const MDB_val *v, uint64_t cutoff_ms)
{
    (void)k;
    return v->mv_size == 24 && get_le64((const uint8_t *)v->mv_data + 16) < cutoff_ms;
}

static int itomb_expired(const MDB_val *k, const MDB_val *v, uint64_t cutoff_ms)
{
    (void)k;
    return v->mv_size < 8 || get_le64(v->mv_data) < cutoff_ms;
}

static int nsver_expired(const MDB_val *k, const MDB_val *v, uint64_t cutoff_ms)
{
    (void)k;
    return v->mv_size == 17 && ((const uint8_t *)v->mv_data)[16] &&
           SC_HLC_MS(get_le64(v->mv_data)) < cutoff_ms;
}

void sc__store_fleet_gc(sc_store_t *s)
{
    fleet_t *f = &s->fleet;
    uint64_t now = sc_mono_ns() / 1000000u;
    if (!f->on || now < f->next_gc_ms)
        return;
    f->next_gc_ms = now + gc_every_ms(f);
    uint64_t wall = sc_now_ms();
    uint64_t cutoff = wall > f->opts.tombstone_ms ? wall - f->opts.tombstone_ms : 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return;
    if ((rc = gc_table(txn, f->dbi_tomb, cutoff, tomb_expired)) ||
        (rc = gc_table(txn, f->dbi_itomb, cutoff, itomb_expired)) ||
        (rc = gc_table(txn, f->dbi_nsver, cutoff, nsver_expired))) {
        mdb_txn_abort(txn);
        sc_log(s->log, SC_ERROR, "fleet: forgetting tombstones failed: %s", mdb_strerror(rc));
        return;
    }
    if (mdb_txn_commit(txn) == 0)
        atomic_fetch_add(&s->commits_total, 1);
}

/* ---- reads -------------------------------------------------------------- */

/* A read snapshot for the calls below: SC_EINVAL outside fleet mode. */
static int begin_read(sc_store_t *s, MDB_txn **txn)
{
    if (!s->fleet.on || !s->env)
        return SC_EINVAL;
    return sc__store_from_mdb(mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn));
}

int sc_store_fleet_applied(sc_store_t *s, sc_stream_id_t *id)
{
    id->ms = id->seq = 0;
    MDB_txn *txn;
    int rc = begin_read(s, &txn);
    if (rc)
        return rc;
    MDB_val k = {7, "applied"}, v;
    if (mdb_get(txn, s->fleet.dbi_meta, &k, &v) == 0 && v.mv_size == 16) {
        id->ms = get_be64(v.mv_data);
        id->seq = get_be64((const uint8_t *)v.mv_data + 8);
    }
    mdb_txn_abort(txn);
    return 0;
}

int sc_store_fleet_outbox_read(sc_store_t *s, uint64_t after, size_t max,
                               int (*fn)(void *ctx, uint64_t seq, const void *rec, size_t len),
                               void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    /* Nothing committed above 'after': the common case of the publisher's
     * 50-ms poll on an idle node, answered without a read transaction. */
    if (after >= atomic_load_explicit(&s->fleet.outbox_last, memory_order_acquire))
        return 0;
    int rc = begin_read(s, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->fleet.dbi_outbox, &cur))) {
        mdb_txn_abort(txn);
        return sc__store_from_mdb(rc);
    }
    uint8_t start[8];
    put_be64(start, after + 1);
    MDB_val k = {sizeof(start), start}, v;
    size_t n = 0;
    int stop = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && n < max && !stop;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), n++)
        if (k.mv_size == 8)
            stop = fn(ctx, get_be64(k.mv_data), v.mv_data, v.mv_size);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : sc__store_from_mdb(rc);
}

int sc_store_fleet_batch_add(sc_buf_t *b, const void *rec, size_t len)
{
    uint8_t n[4];
    if (len > UINT32_MAX)
        return SC_ETOOBIG;
    put_le32(n, (uint32_t)len);
    return sc_buf_append(b, n, 4) || sc_buf_append(b, rec, len) ? SC_ENOMEM : 0;
}

int sc_store_fleet_stats(sc_store_t *s, sc_store_fleet_stats_t *st)
{
    fleet_t *f = &s->fleet;
    memset(st, 0, sizeof(*st));
    if (!f->on || !s->env)
        return SC_EINVAL;
    st->node = f->node;
    st->outbox_dropped = atomic_load(&f->outbox_dropped);
    st->recorded = atomic_load(&f->recorded);
    st->applied = atomic_load(&f->applied);
    st->duplicates = atomic_load(&f->duplicates);
    st->conflicts = atomic_load(&f->conflicts);
    st->refused = atomic_load(&f->refused);
    st->skewed = atomic_load(&f->skewed);
    st->vectors_dropped = atomic_load(&f->vectors_dropped);
    st->own = atomic_load(&f->own);
    MDB_txn *txn;
    int rc = begin_read(s, &txn);
    if (rc)
        return rc;
    MDB_stat ms;
    if (mdb_stat(txn, f->dbi_outbox, &ms) == 0)
        st->outbox_depth = ms.ms_entries;
    if (mdb_stat(txn, f->dbi_tomb, &ms) == 0)
        st->tombstones = ms.ms_entries;
    mdb_txn_abort(txn);
    return 0;
}

int sc_store_fleet_checksum(sc_store_t *s, uint64_t now_ms, uint64_t *entries, uint64_t *sum)
{
    *entries = *sum = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = begin_read(s, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi_entries, &cur)) == 0) {
        MDB_val k, v;
        /* Keys come in order, so chaining their hashes is order-free. */
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            sc_entry_t e;
            fver_t ver = {0, 0};
            if (k.mv_size != SC_KEY_BYTES || sc_store_decode(v.mv_data, v.mv_size, &e) ||
                (e.expires_ms && e.expires_ms <= now_ms))
                continue;
            sc__fleet_ver_get(txn, s->fleet.dbi_ver, k.mv_data, SC_KEY_BYTES, &ver);
            uint8_t row[SC_KEY_BYTES + 16];
            memcpy(row, k.mv_data, SC_KEY_BYTES);
            sc__fleet_ver_encode(&ver, row + SC_KEY_BYTES);
            *sum = XXH3_64bits_withSeed(row, sizeof(row), *sum);
            (*entries)++;
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return rc == MDB_NOTFOUND ? 0 : sc__store_from_mdb(rc);
}

/* ---- snapshots ------------------------------------------------------------ */

int sc_store_snapshot_copy(sc_store_t *s, int fd)
{
    if (!s->env)
        return SC_ECLOSED;
    return sc__store_from_mdb(mdb_env_copyfd2(s->env, fd, MDB_CP_COMPACT));
}

int sc_store_fleet_adopt(const char *dir, sc_stream_id_t *applied)
{
    MDB_env *env;
    MDB_txn *txn;
    fleet_t f = {0};
    applied->ms = applied->seq = 0;
    int rc = mdb_env_create(&env);
    if (rc)
        return sc__store_from_mdb(rc);
    mdb_env_set_maxdbs(env, 16);
    if ((rc = mdb_env_open(env, dir, MDB_NOTLS, 0644)) ||
        (rc = mdb_txn_begin(env, NULL, 0, &txn))) {
        mdb_env_close(env);
        return sc__store_from_mdb(rc);
    }
    rc = open_fleet_tables(txn, &f, 0);
    MDB_val k = {7, "applied"}, v;
    if (rc == 0 && mdb_get(txn, f.dbi_meta, &k, &v) == 0 && v.mv_size == 16) {
        applied->ms = get_be64(v.mv_data);
        applied->seq = get_be64((const uint8_t *)v.mv_data + 8);
    }
    if (rc == 0 && (rc = put_new_node_id(txn, &f)) == 0)
        rc = mdb_drop(txn, f.dbi_outbox, 0);
    if (rc) {
        mdb_txn_abort(txn);
        mdb_env_close(env);
        return rc == MDB_NOTFOUND ? SC_ECORRUPT : sc__store_from_mdb(rc);
    }
    rc = mdb_txn_commit(txn);
    if (rc == 0)
        mdb_env_sync(env, 1);
    mdb_env_close(env);
    return sc__store_from_mdb(rc);
}
