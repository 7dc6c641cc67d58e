/* store_fleet_apply.c -- applying the peers' stream records (SC_OP_FLEET_APPLY)
 * and removing published ones from the outbox (SC_OP_FLEET_ACK), inside the
 * writer's transaction. A batch applies only on top of the stream ID it was
 * read after and moves that ID in the same transaction, so each record takes
 * effect once and in stream order. Conflicts resolve per key by version
 * (hybrid logical timestamp, then origin node): the newest change wins, and
 * tombstones of deletes and invalidations stop an older store arriving late.
 * The effect on the entry tables is store_ops.c's, reached with a stack op. */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sc_fleet_record.h"

/* 1 if invalidation (or namespace delete) record 'r' covers entry 'e'. */
static int covers(const sc_frec_t *r, const sc_entry_t *e)
{
    const sc_slice_t *want[3] = {&r->ns, &r->tenant, &r->model};
    const sc_slice_t *have[3] = {&e->ns, &e->tenant, &e->model};
    unsigned has[3] = {SC_FREC_HAS_NS, SC_FREC_HAS_TENANT, SC_FREC_HAS_MODEL};
    if (r->type == SC_FREC_NS_DELETE)
        return r->ns.len == e->ns.len && memcmp(r->ns.ptr, e->ns.ptr, e->ns.len) == 0;
    if (r->flags & SC_FREC_ALL)
        return 1;
    for (int i = 0; i < 3; i++)
        if ((r->flags & has[i]) &&
            (want[i]->len != have[i]->len || memcmp(want[i]->ptr, have[i]->ptr, have[i]->len)))
            return 0;
    return 1;
}

/* Sets '*hit' if an invalidation newer than 'v' covers entry 'e'. Only the
 * rows keyed after 'v' are read: the table is in timestamp order. */
static int invalidated_after(sc_store_t *s, MDB_txn *txn, const fver_t *v, const sc_entry_t *e,
                             int *hit)
{
    MDB_cursor *cur;
    *hit = 0;
    int rc = mdb_cursor_open(txn, s->fleet.dbi_itomb, &cur);
    if (rc)
        return rc;
    uint8_t start[16];
    put_be64(start, v->hlc);
    put_be64(start + 8, v->origin);
    MDB_val k = {sizeof(start), start}, val;
    for (rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE); rc == 0 && !*hit;
         rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        sc_frec_t r;
        if (val.mv_size > 8 &&
            sc_frec_decode((const uint8_t *)val.mv_data + 8, val.mv_size - 8, &r) == 0 &&
            (r.hlc != v->hlc || r.origin != v->origin))
            *hit = covers(&r, e);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* The payload to store for a peer's entry: as sent, or without its vector
 * when this node embeds the namespace with another embedder (the vector
 * would not compare with its queries'), said once a minute in the log. */
static sc_slice_t payload_for_here(sc_store_t *s, const sc_frec_t *r, const sc_entry_t *e)
{
    fleet_t *f = &s->fleet;
    char mine[SC_FREC_MAX_EMBEDDER + 1] = "";
    if (!e->dim || !f->hooks.embedder_of || !r->embedder.len)
        return r->payload;
    f->hooks.embedder_of(f->hooks.ctx, e->ns, mine, sizeof(mine));
    mine[SC_FREC_MAX_EMBEDDER] = '\0';
    if (!mine[0] ||
        (strlen(mine) == r->embedder.len && memcmp(mine, r->embedder.ptr, r->embedder.len) == 0))
        return r->payload;
    sc_entry_t exact = *e;
    exact.vector = NULL;
    exact.dim = 0;
    sc_buf_reset(&f->scratch);
    if (sc_store_encode(&exact, &f->scratch))
        return r->payload;
    atomic_fetch_add(&f->vectors_dropped, 1);
    uint64_t now = sc_now_ms();
    if (now >= f->last_embedder_log_ms + 60000) {
        f->last_embedder_log_ms = now;
        sc_log(s->log, SC_WARN,
               "fleet: namespace %.*s: entries embedded with %.*s arrive at a node that "
               "embeds with %s; they are kept exact-only here",
               (int)e->ns.len, e->ns.ptr, (int)r->embedder.len, r->embedder.ptr, mine);
    }
    sc_slice_t p = {f->scratch.data, f->scratch.len};
    return p;
}

/* What became of one record. */
typedef enum { APPLIED = 0, DUPLICATE, CONFLICT, REFUSED } outcome_t;

/* A record that lost to version 'held': a duplicate if it is that version. */
static outcome_t lost(const fver_t *v, const fver_t *held)
{
    return v->hlc == held->hlc && v->origin == held->origin ? DUPLICATE : CONFLICT;
}

static int apply_put(sc_store_t *s, MDB_txn *txn, const sc_frec_t *r, const fver_t *v,
                     int refuse_puts, outcome_t *out)
{
    fleet_t *f = &s->fleet;
    sc_entry_t e;
    fver_t held;
    int rc, hit;
    if (sc_store_decode(r->payload.ptr, r->payload.len, &e)) {
        *out = REFUSED; /* the fleet's reader drops these before they get here */
        return 0;
    }
    if (e.expires_ms && e.expires_ms <= sc_now_ms()) {
        *out = REFUSED;
        return 0;
    }
    if (sc__fleet_ver_get(txn, f->dbi_tomb, r->key, SC_KEY_BYTES, &held) == 0 &&
        !sc__fleet_newer(v, &held)) {
        *out = CONFLICT; /* deleted after it was stored */
        return 0;
    }
    if (sc__fleet_ver_get(txn, f->dbi_ver, r->key, SC_KEY_BYTES, &held) == 0 &&
        !sc__fleet_newer(v, &held)) {
        *out = lost(v, &held);
        return 0;
    }
    if ((rc = invalidated_after(s, txn, v, &e, &hit)))
        return rc;
    if (hit) {
        *out = CONFLICT;
        return 0;
    }
    sc_slice_t payload = payload_for_here(s, r, &e);
    sc_write_op_t op = {.type = SC_OP_PUT, .ns_max_entries = r->a, .ns_max_bytes = r->b};
    memcpy(op.key, r->key, SC_KEY_BYTES);
    op.record.data = (char *)payload.ptr; /* borrowed: never freed */
    op.record.len = payload.len;
    if ((rc = sc__store_apply_plain(s, txn, &op, refuse_puts)))
        return rc;
    if (op.result) { /* full: this node cannot hold it, as for a local store */
        *out = REFUSED;
        return 0;
    }
    uint8_t row[16];
    sc__fleet_ver_encode(v, row);
    MDB_val k = {SC_KEY_BYTES, (void *)r->key}, val = {sizeof(row), row};
    if ((rc = mdb_put(txn, f->dbi_ver, &k, &val, 0)))
        return rc;
    rc = mdb_del(txn, f->dbi_tomb, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int apply_delete(sc_store_t *s, MDB_txn *txn, const sc_frec_t *r, const fver_t *v,
                        outcome_t *out)
{
    fver_t held;
    int existed, rc;
    if (sc__fleet_ver_get(txn, s->fleet.dbi_ver, r->key, SC_KEY_BYTES, &held) == 0 &&
        !sc__fleet_newer(v, &held)) {
        *out = lost(v, &held); /* stored again after this delete */
        return 0;
    }
    if ((rc = sc__store_del_entry(s, txn, r->key, &existed)))
        return rc;
    return sc__fleet_tomb_put(s, txn, r->key, v);
}

/* An invalidation or a namespace delete: entries older than it go, and it
 * is remembered so older stores arriving later are refused. */
static int apply_invalidate(sc_store_t *s, MDB_txn *txn, const sc_frec_t *r, const fver_t *v,
                            sc_slice_t raw, outcome_t *out)
{
    fleet_t *f = &s->fleet;
    uint64_t removed = 0;
    int rc;
    if (r->type == SC_FREC_NS_DELETE) {
        fver_t held;
        if (sc__fleet_ver_get(txn, f->dbi_nsver, r->ns.ptr, r->ns.len, &held) == 0 &&
            !sc__fleet_newer(v, &held)) {
            *out = lost(v, &held); /* configured again since: the settings stay */
        } else {
            MDB_val k = {r->ns.len, (void *)r->ns.ptr};
            if ((rc = mdb_del(txn, s->dbi_ns, &k, NULL)) && rc != MDB_NOTFOUND)
                return rc;
            if ((rc = sc__fleet_nsver_put(s, txn, r->ns, v, 1)) ||
                (rc = sc__fleet_ns_event(s, r->ns, NULL)))
                return rc;
        }
        sc_slice_t any = {NULL, 0};
        rc = sc__store_invalidate(s, txn, r->ns, any, any, 0, v, &removed);
    } else {
        sc_slice_t ns = {r->flags & SC_FREC_HAS_NS ? r->ns.ptr : NULL, r->ns.len};
        sc_slice_t tenant = {r->flags & SC_FREC_HAS_TENANT ? r->tenant.ptr : NULL, r->tenant.len};
        sc_slice_t model = {r->flags & SC_FREC_HAS_MODEL ? r->model.ptr : NULL, r->model.len};
        rc = sc__store_invalidate(s, txn, ns, tenant, model, (r->flags & SC_FREC_ALL) != 0, v,
                                  &removed);
    }
    return rc ? rc : sc__fleet_itomb_put(s, txn, v, raw.ptr, raw.len);
}

static int apply_ns_put(sc_store_t *s, MDB_txn *txn, const sc_frec_t *r, const fver_t *v,
                        outcome_t *out)
{
    fver_t held;
    int rc;
    if (sc__fleet_ver_get(txn, s->fleet.dbi_nsver, r->ns.ptr, r->ns.len, &held) == 0 &&
        !sc__fleet_newer(v, &held)) {
        *out = lost(v, &held);
        return 0;
    }
    MDB_val k = {r->ns.len, (void *)r->ns.ptr}, val = {r->payload.len, (void *)r->payload.ptr};
    if ((rc = mdb_put(txn, s->dbi_ns, &k, &val, 0)) ||
        (rc = sc__fleet_nsver_put(s, txn, r->ns, v, 0)))
        return rc;
    return sc__fleet_ns_event(s, r->ns, &r->payload);
}

/* Applies one record ('raw', decoded as 'r'). Returns an LMDB code; what
 * happened to the record is counted in s->fleet. */
static int apply_one(sc_store_t *s, MDB_txn *txn, const sc_frec_t *r, sc_slice_t raw,
                     int refuse_puts)
{
    fleet_t *f = &s->fleet;
    fver_t v = {r->hlc, r->origin};
    int rc = 0;
    if (r->origin == f->node) {
        atomic_fetch_add(&f->own, 1); /* applied when it was made */
        return 0;
    }
    if (SC_HLC_MS(r->hlc) > sc_now_ms() + f->opts.max_skew_ms) {
        atomic_fetch_add(&f->skewed, 1); /* it would hold back every later change */
        return 0;
    }
    if (r->hlc > f->hlc)
        f->hlc = r->hlc;
    outcome_t out = APPLIED;
    switch (r->type) {
    case SC_FREC_PUT:
        rc = apply_put(s, txn, r, &v, refuse_puts, &out);
        break;
    case SC_FREC_DELETE:
        rc = apply_delete(s, txn, r, &v, &out);
        break;
    case SC_FREC_INVALIDATE:
    case SC_FREC_NS_DELETE:
        rc = apply_invalidate(s, txn, r, &v, raw, &out);
        break;
    case SC_FREC_NS_PUT:
        rc = apply_ns_put(s, txn, r, &v, &out);
        break;
    case SC_FREC_VALIDATION:
    case SC_FREC_NEGATIVE: {
        /* Set-like tables: applying twice is applying once. */
        sc_write_op_t op = {.type =
                                r->type == SC_FREC_VALIDATION ? SC_OP_VALIDATION : SC_OP_NEGATIVE,
                            .count = r->a};
        memcpy(op.key, r->key, SC_KEY_BYTES);
        memcpy(op.key2, r->key2, SC_KEY_BYTES);
        op.record.data = (char *)r->payload.ptr; /* borrowed */
        op.record.len = r->payload.len;
        rc = sc__store_apply_plain(s, txn, &op, refuse_puts);
        break;
    }
    }
    if (rc)
        return rc;
    _Atomic uint64_t *counter[] = {&f->applied, &f->duplicates, &f->conflicts, &f->refused};
    atomic_fetch_add(counter[out], 1);
    return 0;
}

/* SC_OP_FLEET_APPLY: 'op->key2' must be the last applied ID, 'op->key' the
 * new one (both be64 ms | be64 seq). */
static int apply_records(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, int refuse_puts)
{
    fleet_t *f = &s->fleet;
    static const uint8_t zero[16];
    MDB_val k = {7, "applied"}, v;
    int rc = mdb_get(txn, f->dbi_meta, &k, &v);
    const void *cur = rc == 0 && v.mv_size == 16 ? v.mv_data : zero;
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (memcmp(cur, op->key2, 16) != 0) {
        op->result = SC_ECONFLICT; /* applied already, or a batch before it failed */
        return 0;
    }
    op->count = 0;
    const uint8_t *p = (const uint8_t *)op->record.data, *end = p + op->record.len;
    while (end - p >= 4) {
        uint32_t n = get_le32(p);
        if ((size_t)(end - p - 4) < n)
            break;
        sc_slice_t raw = {(const char *)p + 4, n};
        sc_frec_t r;
        p += 4 + (size_t)n;
        if (sc_frec_decode(raw.ptr, raw.len, &r))
            continue; /* the reader counts and drops these before they get here */
        if ((rc = apply_one(s, txn, &r, raw, refuse_puts)))
            return rc;
        op->count++;
    }
    MDB_val val = {16, op->key};
    if ((rc = mdb_put(txn, f->dbi_meta, &k, &val, 0)))
        return rc;
    return sc__fleet_save_hlc(s, txn);
}

/* SC_OP_FLEET_ACK: outbox records up to 'op->count' are in the stream. */
static int ack_outbox(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, s->fleet.dbi_outbox, &cur);
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && k.mv_size == 8 && get_be64(k.mv_data) <= op->count;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if ((rc = mdb_cursor_del(cur, 0)))
            break;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int sc__store_fleet_apply_op(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, int refuse_puts)
{
    if (!s->fleet.on) {
        op->result = SC_EINVAL;
        return 0;
    }
    return op->type == SC_OP_FLEET_ACK ? ack_outbox(s, txn, op)
                                       : apply_records(s, txn, op, refuse_puts);
}
