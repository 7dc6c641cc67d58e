/* store_internal.h -- what the store's files share: the LMDB tables, the
 * store and reader structs, the byte helpers and the cross-file functions.
 * Layout of the store (behind include/cache/sc_store.h):
 *   store_record.c  every byte layout the store writes (pure functions)
 *   store.c         the environment, its tables, lifecycle, reads, stats
 *   store_ops.c     what one write op does inside a write transaction
 *   store_evict.c   keeping within the map and the limits; TTL sweeping
 *   store_writer.c  the writer thread, group commit and buffered hit counts
 *
 * The environment holds nine tables. Keys are the 16-byte exact keys (K)
 * unless said otherwise; integers are little-endian (le) in values and
 * big-endian (be) in keys, so keys that start with a time sort by it.
 *   entries      K -> entry record (store_record.c: 64-byte header, strings,
 *                     padding to 4, float32 vector); immutable once written
 *   meta         K -> 48 bytes: le64 created_ms, expires_ms, last_hit_ms,
 *                     hits, record bytes, and the time the entry is filed
 *                     under in 'lru'
 *   lru          be64 filed time | K -> empty; oldest hit first (eviction)
 *   expiry       be64 expires_ms | K -> empty; only entries that expire
 *                     (the sweeper walks it from the front)
 *   ns           namespace name (no NUL) -> its settings, a JSON document
 *                     (sc_ns_config_to_json; opaque to the store)
 *   nsuse        namespace name -> le64 entries | le64 record bytes; kept in
 *                     the same transactions as 'entries', so caps are exact
 *   sys          "gen" -> le64 counter, bumped so that LMDB reuses the pages
 *                     a big delete freed (see bump_generation)
 *   validations  16 opaque bytes -> opaque record; the quality loop's log
 *                     (cache/quality_records.c: be64 time_ms | 8 id bytes ->
 *                     JSON); the lowest keys go beyond the retention
 *   negatives    32 opaque bytes -> empty; the quality loop's set (request
 *                     key | entry key: a pairing judged wrong)
 * In fleet mode (store_fleet.c, docs/fleet.md) six more, created only then:
 *   fleet        "node" -> le64 this node's id; "applied" -> be64 ms | be64
 *                     seq, the last stream record applied; "hlc" -> le64 the
 *                     last timestamp given (a restart never goes below it)
 *   fleet_outbox be64 sequence -> stream record (sc_fleet_record.h) not yet
 *                     published; the lowest go first
 *   fleet_versions K -> le64 hlc | le64 origin: the change that wrote the
 *                     entry; removed with the entry
 *   fleet_tombstones K -> le64 hlc | le64 origin | le64 wall ms written: a
 *                     delete, kept --fleet-tombstone-s
 *   fleet_invalidations be64 hlc | be64 origin -> le64 wall ms | the
 *                     invalidation (or namespace delete) stream record
 *   fleet_nsversions namespace name -> le64 hlc | le64 origin | u8 deleted */
#ifndef SC_STORE_INTERNAL_H
#define SC_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "bytes.h"
#include "sc_store.h"

/* Expired entries are removed in slices of at most this many per transaction,
 * with queued writes applied between slices: deleting an entry dirties its
 * random leaf pages, so a 1,300-entry sweep was ~100 ms of writing and
 * fsyncing that every store queued behind it waited out. */
#define SWEEP_SLICE 128
/* While stores are queued, a flush of hit counts is applied in slices of at
 * most this many entries' counts, one per writer pass beside that pass's
 * stores, for the same reason as SWEEP_SLICE: 10,000 hot entries' counts in
 * one transaction were a once-a-second ~100 ms stall for every store queued
 * behind them. With no store waiting, the rest goes in one transaction. */
#define TOUCH_SLICE 256
/* An entry's place in LRU order moves only when its recency changes by more
 * than this, so a popular entry costs one small write per flush, not one
 * index reshuffle per hit. Eviction is coarse anyway. */
#define LRU_GRANULARITY_MS 10000

/* The entry record's fixed header and the meta record (store_record.c). */
#define RECORD_HEADER 64
#define META_BYTES 48
/* Keys of 'lru' and 'expiry': a be64 time, then the entry key. */
#define INDEX_KEY_BYTES (8 + SC_KEY_BYTES)
/* Values of 'nsuse'. */
#define USAGE_BYTES 16

/* A buffered hit count (sc_store_touch), applied by the writer. */
typedef struct {
    uint8_t key[SC_KEY_BYTES];
    uint64_t ts;    /* latest hit */
    uint32_t count; /* hits since the last flush; 0 = empty slot */
} touch_t;

/* An index change, collected during a write transaction and delivered to the
 * listener only once that transaction has committed. */
typedef struct {
    int put;
    uint8_t key[SC_KEY_BYTES];
    uint64_t scope;
    const float *vec; /* puts: points into the op's record */
    uint32_t dim;
} event_t;

/* A change's version: newer is a higher 'hlc', ties broken by 'origin'. */
typedef struct {
    uint64_t hlc, origin;
} fver_t;

/* A peer's namespace change, reported to the hooks after its commit. */
typedef struct {
    char *name; /* owned */
    size_t len;
    char *doc; /* owned; NULL = deleted */
    size_t doc_len;
} fleet_ns_event_t;

/* Fleet mode (store_fleet.c); all zero when it is off. */
typedef struct {
    int on;
    sc_store_fleet_opts_t opts;
    sc_store_fleet_hooks_t hooks;
    MDB_dbi dbi_meta, dbi_outbox, dbi_ver, dbi_tomb, dbi_itomb, dbi_nsver;
    uint64_t node; /* set at open */
    /* writer thread only */
    uint64_t hlc;      /* last timestamp given or seen */
    uint64_t next_seq; /* next outbox key */
    int outbox_added;  /* this transaction added outbox records */
    fleet_ns_event_t *ns_events;
    size_t n_ns_events, ns_events_cap;
    uint64_t next_gc_ms; /* monotonic */
    sc_buf_t scratch;    /* one record being encoded */
    uint64_t last_embedder_log_ms;
    _Atomic uint64_t recorded, applied, duplicates, conflicts, refused, skewed;
    _Atomic uint64_t vectors_dropped, own, outbox_dropped;
    /* The highest outbox sequence committed (set by the writer after each
     * commit that added records): the publisher's reads skip LMDB while
     * nothing new is there, so an idle node opens no read transaction. */
    _Atomic uint64_t outbox_last;
} fleet_t;

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
    touch_t *touches;       /* open-addressing table, guarded by mu */
    touch_t *touches_spare; /* the writer's table while it applies one */
    size_t n_touches;       /* used slots */
    size_t touch_cap;       /* slots (a power of two) */
    touch_t *draining;      /* writer only: the flushed table being applied */
    size_t drain_pos;       /* writer only: next slot of 'draining' */

    _Atomic uint64_t expired_total, evicted_total, commits_total, writes_total;
    _Atomic uint64_t touches_dropped;
    _Atomic uint64_t writer_writes_ns, writer_sweep_ns, writer_sync_ns;
    sc_store_listener_t listener;
    event_t *events; /* writer thread only */
    size_t n_events, events_cap;
    uint64_t txnid_at_open;
    int writer_stopped;
    fleet_t fleet;
};

struct sc_store_reader_s {
    sc_store_t *store;
    MDB_txn *txn;
    int active;
};

/* ---- store_record.c: byte layouts --------------------------------------- */

/* The meta record of 'm', filed in 'lru' under 'lru_ms'. */
void sc__store_meta_encode(const sc_entry_meta_t *m, uint64_t lru_ms, uint8_t out[META_BYTES]);
/* SC_ECORRUPT unless 'len' is META_BYTES; 'lru_ms' may be NULL. */
int sc__store_meta_decode(const void *rec, size_t len, sc_entry_meta_t *m, uint64_t *lru_ms);
/* The 'lru' / 'expiry' key of entry 'key' filed at 'ms'. */
void sc__store_index_key(uint8_t out[INDEX_KEY_BYTES], uint64_t ms, const uint8_t *key);
/* The 'nsuse' value, and its reading (zeros unless 'len' is USAGE_BYTES). */
void sc__store_usage_encode(uint64_t entries, uint64_t bytes, uint8_t out[USAGE_BYTES]);
void sc__store_usage_decode(const void *val, size_t len, uint64_t *entries, uint64_t *bytes);

/* ---- store.c: environment and reads ------------------------------------- */

/* Translates an LMDB (or errno) return code to SC_E*. */
int sc__store_from_mdb(int rc);
/* Namespace 'ns''s usage as of 'txn' (zeros if none). */
void sc__store_ns_usage_get(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, uint64_t *entries,
                            uint64_t *bytes);
/* Pages in use by the entry tables as of 'txn'. */
uint64_t sc__store_used_pages(sc_store_t *s, MDB_txn *txn);

/* ---- store_ops.c: inside a write transaction (writer thread) ------------- */

/* Adds 'd_entries' and 'd_bytes' to namespace 'ns''s usage. */
int sc__store_ns_usage_add(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, int64_t d_entries,
                           int64_t d_bytes);
/* Removes entry 'key' and its index rows; '*existed' tells whether it was
 * there. Returns 0 or an LMDB code, as do the functions below. */
int sc__store_del_entry(sc_store_t *s, MDB_txn *txn, const uint8_t *key, int *existed);
/* Applies buffered hit count 't' to its entry's meta and LRU row. */
int sc__store_apply_touch(sc_store_t *s, MDB_txn *txn, const touch_t *t);
/* Applies 'op'; puts are refused (op->result = SC_EFULL) when 'refuse_puts'.
 * In fleet mode a local op is also recorded for the peers. */
int sc__store_apply_op(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, int refuse_puts);
/* Applies 'op' to the entry tables alone (a peer's change comes this way). */
int sc__store_apply_plain(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, int refuse_puts);
/* Removes the entries matching the filters ('ptr' NULL = any; 'all' = every
 * entry) and, when 'before' is not NULL, older than it; '*count' = removed. */
int sc__store_invalidate(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, sc_slice_t tenant,
                         sc_slice_t model, int all, const fver_t *before, uint64_t *count);
/* Delivers the index changes collected in the transaction to the listener;
 * call after its commit (an abort drops them: s->n_events = 0). */
void sc__store_events_dispatch(sc_store_t *s);

/* ---- store_evict.c: limits, eviction and sweeping ------------------------ */

/* Commits a one-key transaction so that LMDB reuses recently freed pages. */
int sc__store_bump_generation(sc_store_t *s);
/* Evicts 'n' entries in their own transaction; MDB_MAP_FULL if none was. */
int sc__store_evict_lru(sc_store_t *s, size_t n);
/* Keeps the map under its high-water mark before a batch; 1 = refuse puts. */
int sc__store_make_room(sc_store_t *s);
/* --max-entries with --evict none: 1 if a put of 'key' must be refused. */
int sc__store_entry_limit_refuses(sc_store_t *s, MDB_txn *txn, const uint8_t *key);
/* --max-entries with eviction: evicts the excess at the end of a batch. */
int sc__store_evict_over_entry_limit(sc_store_t *s, MDB_txn *txn, uint64_t *removed);
/* A namespace's caps around a put (see store_evict.c). */
int sc__store_ns_limits_before_put(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op);
int sc__store_ns_limits_after_put(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op,
                                  uint64_t *removed);
/* Removes up to SWEEP_SLICE entries expired by 'now_ms' in one transaction;
 * '*more' is set when some remain. Returns the number removed or SC_E*. */
int sc__store_sweep_slice(sc_store_t *s, uint64_t now_ms, int *more);

/* ---- store_fleet.c: fleet mode (all no-ops when it is off) ------------------ */

/* Opens the fleet tables inside the opening transaction; sets the node id. */
int sc__store_fleet_open(sc_store_t *s, MDB_txn *txn);
/* Forgets what an aborted transaction left for after its commit. */
void sc__store_fleet_txn_reset(sc_store_t *s);
/* After a commit: calls the hooks for what the transaction did. */
void sc__store_fleet_committed(sc_store_t *s);
/* Records local op 'op', just applied, as a stream record in the outbox. */
int sc__store_fleet_record_local(sc_store_t *s, MDB_txn *txn, const sc_write_op_t *op);
/* SC_OP_FLEET_APPLY and SC_OP_FLEET_ACK. */
int sc__store_fleet_apply_op(sc_store_t *s, MDB_txn *txn, sc_write_op_t *op, int refuse_puts);
/* Removes entry 'key''s version row (with the entry). */
int sc__store_fleet_forget(sc_store_t *s, MDB_txn *txn, const uint8_t *key);
/* 1 if entry 'key''s version is older than 'v' (no version counts as oldest). */
int sc__store_fleet_older(sc_store_t *s, MDB_txn *txn, const uint8_t *key, const fver_t *v);
/* Forgets tombstones past --fleet-tombstone-s when due (writer timers). */
void sc__store_fleet_gc(sc_store_t *s);
void sc__store_fleet_destroy(sc_store_t *s);
/* Rows shared with store_fleet_apply.c (LMDB codes). */
void sc__fleet_ver_encode(const fver_t *v, uint8_t out[16]);
/* Reads the version at the front of row 'key' of 'dbi'; MDB_NOTFOUND if none. */
int sc__fleet_ver_get(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen, fver_t *v);
/* 1 if 'a' is newer than 'b'. */
int sc__fleet_newer(const fver_t *a, const fver_t *b);
/* Remembers a delete of 'key' at 'v' (unless a newer one is remembered). */
int sc__fleet_tomb_put(sc_store_t *s, MDB_txn *txn, const uint8_t *key, const fver_t *v);
/* Remembers invalidation (or namespace delete) record 'rec' made at 'v'. */
int sc__fleet_itomb_put(sc_store_t *s, MDB_txn *txn, const fver_t *v, const void *rec, size_t len);
int sc__fleet_nsver_put(sc_store_t *s, MDB_txn *txn, sc_slice_t ns, const fver_t *v, int deleted);
/* Persists the clock in the transaction. */
int sc__fleet_save_hlc(sc_store_t *s, MDB_txn *txn);
/* Queues a peer's namespace change for the hooks ('doc' NULL = deleted). */
int sc__fleet_ns_event(sc_store_t *s, sc_slice_t name, const sc_slice_t *doc);

/* ---- store_writer.c: the writer thread ---------------------------------- */

void *sc__store_writer_main(void *arg);
/* Applies every buffered hit count inside 'txn' (writer thread). */
int sc__store_flush_touches(sc_store_t *s, MDB_txn *txn);

#endif
