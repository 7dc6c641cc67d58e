/* store_evict.c -- keeping the store within its bounds: the map (LMDB needs
 * free pages even to delete, so eviction starts at a high-water mark, not at
 * MDB_MAP_FULL), --max-entries, each namespace's own caps, and TTL expiry.
 * Victims are the least recently hit entries, walked in order along the
 * 'lru' table, or with --evict value the least valuable among a window of
 * them; the sweeper walks the 'expiry' table from its front. Writer thread
 * only (or tests, with the writer stopped). */
#define _GNU_SOURCE
#include "store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Proactive eviction keeps this much of the map free, because LMDB needs
 * free pages even to delete (copy-on-write), so a 100 % full map could not
 * be emptied. */
#define EVICT_HIGH_WATER 0.90
#define EVICT_LOW_WATER 0.85
/* Most LRU rows one eviction looks at when it is limited to one namespace
 * (a small namespace among big ones): beyond, it evicts what it found and the
 * next store of that namespace continues. */
#define EVICT_SCAN_MAX 200000
/* --evict value considers this many times the entries it must remove, taken
 * from the least recently hit end, and removes the least valuable of them. */
#define VALUE_WINDOW 8

/* Commits a one-key transaction. LMDB reuses pages freed by transaction T only
 * from T+2 on, so after a big delete this makes the freed pages available to
 * the next write instead of failing it with MDB_MAP_FULL. */
int sc__store_bump_generation(sc_store_t *s)
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

typedef struct {
    uint8_t key[SC_KEY_BYTES];
    double value; /* tokens saved per byte so far */
    size_t order; /* LRU position: ties go to the older */
} victim_t;

static int by_value(const void *a, const void *b)
{
    const victim_t *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* Fills in candidate 'c' (its key set) from its entry: 0 if it may be
 * chosen, 1 if it is not in namespace 'ns' or unreadable. */
static int weigh_victim(sc_store_t *s, MDB_txn *txn, const sc_slice_t *ns, int by_val, victim_t *c)
{
    MDB_val ek = {SC_KEY_BYTES, c->key}, ev, mv;
    sc_entry_t e;
    if (mdb_get(txn, s->dbi_entries, &ek, &ev) || sc_store_decode(ev.mv_data, ev.mv_size, &e))
        return 1;
    if (ns && (e.ns.len != ns->len || memcmp(e.ns.ptr, ns->ptr, ns->len)))
        return 1;
    sc_entry_meta_t m;
    uint64_t lru_ms;
    if (by_val && mdb_get(txn, s->dbi_meta, &ek, &mv) == 0 &&
        sc__store_meta_decode(mv.mv_data, mv.mv_size, &m, &lru_ms) == 0)
        c->value = (double)m.hits * ((double)e.prompt_tokens + e.completion_tokens) /
                   (double)(ev.mv_size ? ev.mv_size : 1);
    return 0;
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
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0 && got < want && scanned < EVICT_SCAN_MAX;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT), scanned++) {
        if (k.mv_size != INDEX_KEY_BYTES)
            continue;
        const uint8_t *key = (const uint8_t *)k.mv_data + 8;
        if (keep && memcmp(key, keep, SC_KEY_BYTES) == 0)
            continue;
        victim_t *c = &cand[got];
        memcpy(c->key, key, SC_KEY_BYTES);
        c->order = scanned;
        c->value = 0;
        if ((ns || by_val) && weigh_victim(s, txn, ns, by_val, c))
            continue;
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

/* Deletes up to 'n' entries chosen by pick_victims inside 'txn', after
 * applying the buffered hit counts they are chosen by; '*removed' counts
 * them. Returns MDB_MAP_FULL when there was nothing to evict. */
static int evict_in(sc_store_t *s, MDB_txn *txn, size_t n, const sc_slice_t *ns,
                    const uint8_t *keep, uint64_t *removed)
{
    *removed = 0;
    int frc = sc__store_flush_touches(s, txn);
    if (frc)
        return frc;
    uint8_t *keys = malloc(n * SC_KEY_BYTES);
    if (!keys)
        return ENOMEM;
    size_t got = pick_victims(s, txn, n, ns, keep, keys);
    int rc = 0;
    for (size_t i = 0; i < got && !rc; i++) {
        int existed;
        rc = sc__store_del_entry(s, txn, keys + i * SC_KEY_BYTES, &existed);
        *removed += (uint64_t)existed;
    }
    free(keys);
    if (rc)
        return rc;
    return got ? 0 : MDB_MAP_FULL;
}

/* Removes the 'n' least recently hit entries in their own transaction. */
int sc__store_evict_lru(sc_store_t *s, size_t n)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return rc;
    s->n_events = 0;
    uint64_t removed;
    rc = evict_in(s, txn, n, NULL, NULL, &removed);
    if (rc && rc != MDB_MAP_FULL) {
        mdb_txn_abort(txn);
        return rc;
    }
    int commit_rc = mdb_txn_commit(txn); /* commit frees the txn even on failure */
    if (commit_rc)
        return commit_rc;
    sc__store_events_dispatch(s);
    sc__store_bump_generation(s);
    atomic_fetch_add(&s->evicted_total, removed);
    if (removed)
        sc_log(s->log, SC_INFO, "store: evicted %llu least recently hit entries",
               (unsigned long long)removed);
    return rc; /* MDB_MAP_FULL: nothing left to evict */
}

/* Keeps the map below the high-water mark, because LMDB needs free pages
 * even to delete. With --evict lru it evicts down to the low-water mark and
 * returns 0; with --evict none it returns 1 when stores must be refused. */
int sc__store_make_room(sc_store_t *s)
{
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return 0;
    MDB_envinfo info;
    MDB_stat est;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &est);
    uint64_t map_pages = info.me_mapsize / est.ms_psize;
    uint64_t used = sc__store_used_pages(s, txn);
    MDB_stat st;
    mdb_stat(txn, s->dbi_entries, &st);
    mdb_txn_abort(txn);
    if ((double)used < EVICT_HIGH_WATER * (double)map_pages || st.ms_entries == 0)
        return 0;
    if (s->cfg.evict == SC_EVICT_NONE)
        return 1;
    double excess = ((double)used - EVICT_LOW_WATER * (double)map_pages) / (double)used;
    size_t n = (size_t)(excess * (double)st.ms_entries) + 16;
    sc__store_evict_lru(s, n);
    return 0;
}

/* --max-entries with --evict none: a store that would add an entry beyond
 * the limit is refused (replacing an existing key is still allowed). The count
 * is read inside the write transaction, so puts earlier in the same batch are
 * included. With --evict lru the limit is enforced after each commit instead
 * (sc__store_evict_over_entry_limit). */
int sc__store_entry_limit_refuses(sc_store_t *s, MDB_txn *txn, const uint8_t *key)
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
int sc__store_evict_over_entry_limit(sc_store_t *s, MDB_txn *txn, uint64_t *removed)
{
    *removed = 0;
    if (s->cfg.max_entries <= 0 || s->cfg.evict == SC_EVICT_NONE)
        return 0;
    MDB_stat st;
    int rc = mdb_stat(txn, s->dbi_entries, &st);
    if (rc || st.ms_entries <= (size_t)s->cfg.max_entries)
        return rc;
    rc = evict_in(s, txn, st.ms_entries - (size_t)s->cfg.max_entries, NULL, NULL, removed);
    return rc == MDB_MAP_FULL ? 0 : rc;
}

/* A namespace's own caps (the op carries them from its settings). With
 * --evict none a store that would take the namespace past one is refused;
 * otherwise the namespace's least recently hit (or least valuable) entries
 * make room, in the same transaction. An entry larger than the namespace's
 * whole byte cap is refused either way. Returns 0, SC_EFULL or SC_ETOOBIG
 * (refused) or an LMDB error. */
int sc__store_ns_limits_before_put(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op)
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
    sc__store_ns_usage_get(s, txn, e.ns, &n, &bytes);
    MDB_val k = {SC_KEY_BYTES, op->key}, v;
    int replacing = mdb_get(txn, s->dbi_entries, &k, &v) == 0;
    if (replacing)
        old_len = v.mv_size;
    if (op->ns_max_entries && !replacing && n + 1 > op->ns_max_entries)
        return SC_EFULL;
    if (op->ns_max_bytes &&
        bytes - (old_len < bytes ? old_len : bytes) + op->record.len > op->ns_max_bytes)
        return SC_EFULL;
    return 0;
}

int sc__store_ns_limits_after_put(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, uint64_t *removed)
{
    *removed = 0;
    if ((!op->ns_max_entries && !op->ns_max_bytes) || s->cfg.evict == SC_EVICT_NONE)
        return 0;
    sc_entry_t e;
    if (sc_store_decode(op->record.data, op->record.len, &e))
        return 0;
    for (int round = 0; round < 8; round++) {
        uint64_t n, bytes, got;
        sc__store_ns_usage_get(s, txn, e.ns, &n, &bytes);
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

/* ---- TTL sweeping ------------------------------------------------------- */

int sc__store_sweep_slice(sc_store_t *s, uint64_t now_ms, int *more)
{
    *more = 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return sc__store_from_mdb(rc);
    MDB_cursor *cur;
    s->n_events = 0;
    if ((rc = mdb_cursor_open(txn, s->dbi_expiry, &cur))) {
        mdb_txn_abort(txn);
        return sc__store_from_mdb(rc);
    }
    enum { cap = SWEEP_SLICE };
    uint8_t keys[cap * SC_KEY_BYTES];
    size_t n = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && n < cap;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != INDEX_KEY_BYTES || get_be64(k.mv_data) > now_ms)
            break;
        memcpy(keys + n++ * SC_KEY_BYTES, (uint8_t *)k.mv_data + 8, SC_KEY_BYTES);
    }
    mdb_cursor_close(cur);
    rc = 0;
    uint64_t removed = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        int existed;
        rc = sc__store_del_entry(s, txn, keys + i * SC_KEY_BYTES, &existed);
        removed += (uint64_t)existed;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return sc__store_from_mdb(rc);
    }
    if ((rc = mdb_txn_commit(txn)))
        return sc__store_from_mdb(rc);
    sc__store_events_dispatch(s);
    atomic_fetch_add(&s->expired_total, removed);
    *more = n == cap;
    return (int)removed;
}

int sc_store_sweep_now(sc_store_t *s, uint64_t now_ms)
{
    uint64_t removed_total = 0;
    int more = 1;
    while (more) {
        int rc = sc__store_sweep_slice(s, now_ms, &more);
        if (rc < 0)
            return rc;
        removed_total += (uint64_t)rc;
    }
    return (int)(removed_total > INT32_MAX ? INT32_MAX : removed_total);
}
