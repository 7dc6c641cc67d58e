/* sc_store.h -- the entry store on LMDB.
 * One environment. Readers (event-loop threads) use read-only transactions and
 * never wait for a writer. Every write goes through one writer thread that
 * group-commits a batch of operations per transaction, so a slow fsync delays
 * acknowledgements but never a lookup. The writer also sweeps expired entries
 * along an expiry index and evicts least-recently-hit entries when full.
 * The implementation is cache/store*.c; cache/store_internal.h lists its
 * tables and their byte layouts. */
#ifndef SC_STORE_H
#define SC_STORE_H

#include <stdint.h>

#include "sc_common.h"
#include "sc_config.h"
#include "sc_key.h"
#include "sc_log.h"

typedef struct sc_store_s sc_store_t;
typedef struct sc_store_reader_s sc_store_reader_t;

/* A stored entry. From sc_store_get the slices point into the LMDB map and are
 * valid until sc_store_read_end on the same reader; do not free them. */
typedef struct {
    uint64_t created_ms;
    uint64_t expires_ms; /* 0 = never */
    uint64_t scope;      /* scope fingerprint (semantic isolation) */
    uint32_t prompt_tokens;
    uint32_t completion_tokens;
    sc_slice_t ns, tenant, model;
    sc_slice_t text;     /* semantic text */
    sc_slice_t response; /* compact JSON */
    const void *vector;  /* 'dim' little-endian float32, maybe unaligned */
    uint32_t dim;
} sc_entry_t;

/* Hit statistics, kept apart from the (immutable) entry record so that a hit
 * rewrites 40 bytes, not the whole response. */
typedef struct {
    uint64_t created_ms;
    uint64_t expires_ms;
    uint64_t last_hit_ms;
    uint64_t hits;
    uint64_t bytes; /* size of the entry record */
} sc_entry_meta_t;

typedef struct {
    uint64_t entries;
    uint64_t bytes;           /* pages in use by all tables, times page size */
    uint64_t map_bytes;       /* configured map size */
    uint64_t expired_total;   /* removed by the sweeper or on read */
    uint64_t evicted_total;   /* removed to make room */
    uint64_t commits_total;   /* write transactions committed */
    uint64_t writes_total;    /* operations applied */
    uint64_t touches_dropped; /* hit-count updates lost to a full buffer */
    uint64_t queue_depth;     /* operations waiting for the writer */
    /* Time the writer thread spent on each kind of work since start (ns):
     * a busy writer is what makes stores wait. */
    uint64_t writer_writes_ns; /* write batches (stores, deletes, hit counts) */
    uint64_t writer_sweep_ns;  /* removing expired entries */
    uint64_t writer_sync_ns;   /* periodic fsyncs (--sync periodic) */
} sc_store_stats_t;

/* Receives index changes from the writer thread after each commit: an entry
 * with a vector was stored, or an entry (with or without one) was removed by
 * delete, replace, invalidate, TTL expiry or eviction. 'vec' is valid only
 * during the call. Calls must not block for long: they delay commits. */
typedef struct {
    void (*on_put)(void *ctx, const uint8_t key[SC_KEY_BYTES], uint64_t scope, const float *vec,
                   uint32_t dim);
    void (*on_delete)(void *ctx, const uint8_t key[SC_KEY_BYTES], uint64_t scope, uint32_t dim);
    void *ctx;
} sc_store_listener_t;

/* ---- lifecycle -------------------------------------------------------- */

/* Creates a store configured from 'cfg' (map size, sync, evict, sweep, queue
 * and batch limits). 'log' must outlive the store. */
int sc_store_create(sc_store_t **out, const sc_config_t *cfg, sc_log_t *log);
/* Opens (creating if needed) the environment in directory 'dir' and starts
 * the writer thread. */
int sc_store_open(sc_store_t *s, const char *dir);
/* Sets the listener; call before sc_store_open. */
void sc_store_set_listener(sc_store_t *s, const sc_store_listener_t *l);
/* The LMDB transaction id when the store was opened (before any write of
 * this process), and now. Snapshots of derived state are checked with it. */
uint64_t sc_store_txnid_at_open(sc_store_t *s);
uint64_t sc_store_txnid(sc_store_t *s);
/* Commits everything queued and stops the writer; further submits get
 * SC_ECLOSED. Reads keep working. Idempotent. */
void sc_store_stop_writer(sc_store_t *s);
/* Stops the writer (as above), then closes the environment. Safe on a store
 * that was never opened. */
void sc_store_destroy(sc_store_t *s);

/* ---- records ---------------------------------------------------------- */

/* Encodes 'e' as an entry record appended to 'out'. */
int sc_store_encode(const sc_entry_t *e, sc_buf_t *out);
/* Decodes a record; slices point into 'rec'. SC_ECORRUPT if malformed. */
int sc_store_decode(const void *rec, size_t len, sc_entry_t *e);

/* ---- reads (any thread; one reader per thread) -------------------------- */

int sc_store_reader_create(sc_store_t *s, sc_store_reader_t **out);
void sc_store_reader_destroy(sc_store_reader_t *r);
/* Starts a read snapshot; cheap (reuses the reader's transaction). */
int sc_store_read_begin(sc_store_reader_t *r);
void sc_store_read_end(sc_store_reader_t *r);
/* Fetches entry 'key' within the current snapshot. 'meta' may be NULL.
 * SC_ENOTFOUND if absent. Expiry is the caller's decision. */
int sc_store_get(sc_store_reader_t *r, const uint8_t key[SC_KEY_BYTES], sc_entry_t *e,
                 sc_entry_meta_t *meta);
/* Finds the entry whose key starts with the 8 bytes of 'label' (the vector
 * index label). 'key' receives the full key. SC_ENOTFOUND if none. */
int sc_store_get_by_label(sc_store_reader_t *r, uint64_t label, uint8_t key[SC_KEY_BYTES],
                          sc_entry_t *e, sc_entry_meta_t *meta);
/* Entries and record bytes namespace 'name' holds (zeros if none), as of
 * the reader's snapshot (between sc_store_read_begin and _end). */
void sc_store_ns_usage(sc_store_reader_t *r, const char *name, uint64_t *entries, uint64_t *bytes);
/* Reads namespace settings 'name' (a JSON document) into 'out'. */
int sc_store_ns_get(sc_store_reader_t *r, const char *name, sc_buf_t *out);
/* Calls 'fn' for every stored namespace document (own read snapshot). */
int sc_store_ns_foreach(sc_store_t *s,
                        void (*fn)(void *ctx, const char *name, size_t name_len, const char *doc,
                                   size_t doc_len),
                        void *ctx);
/* Calls 'fn' for every unexpired entry that has a vector, in one read
 * snapshot (rebuilding indexes at start-up); a non-zero return stops. */
int sc_store_scan_vectors(sc_store_t *s, uint64_t now_ms,
                          int (*fn)(void *ctx, const uint8_t key[SC_KEY_BYTES], uint64_t scope,
                                    const float *vec, uint32_t dim),
                          void *ctx);

/* The quality loop's tables. The store keeps opaque bytes under opaque keys
 * there; what they mean (and how they are encoded) is the quality code's
 * (cache/quality_records.c, sc_quality.h). */
typedef enum {
    SC_TABLE_VALIDATIONS = 0, /* 16-byte keys in age order -> a record; bounded */
    SC_TABLE_NEGATIVES = 1,   /* 32-byte keys -> nothing: a set */
} sc_store_table_t;
/* 1 if 'key' ('len' bytes) is in table 't' in the reader's snapshot, else 0. */
int sc_store_table_has(sc_store_reader_t *r, sc_store_table_t t, const void *key, size_t len);
/* Calls 'fn' with the values of table 't', highest key first, at most
 * 'limit' of them, within the reader's snapshot; 'val' points into the map
 * (valid during the call). A non-zero return from 'fn' stops the walk and is
 * returned. */
int sc_store_table_newest(sc_store_reader_t *r, sc_store_table_t t, size_t limit,
                          int (*fn)(void *ctx, const void *val, size_t len), void *ctx);

/* The label a key has in the vector indexes: its first 8 bytes. */
uint64_t sc_store_label(const uint8_t key[SC_KEY_BYTES]);

/* ---- writes (through the writer thread) --------------------------------- */

typedef enum {
    SC_OP_PUT = 1,    /* 'key' <- 'record' (an encoded entry) */
    SC_OP_DELETE,     /* remove 'key'; 'count' = 1 if it existed */
    SC_OP_INVALIDATE, /* remove entries matching the filters; 'count' = removed */
    SC_OP_NS_PUT,     /* namespace 'ns' <- 'record' (JSON settings) */
    SC_OP_NS_DELETE,  /* remove namespace 'ns' settings and all its entries */
    SC_OP_SYNC,       /* no change; completes once all before it are durable */
    SC_OP_VALIDATION, /* validations: 'key' <- 'record' (opaque); keeps the 'count' highest */
    SC_OP_NEGATIVE,   /* negatives: adds the 32-byte key 'key' then 'key2' */
    /* Fleet mode only (see "fleet replication" below). */
    SC_OP_FLEET_APPLY, /* applies the stream records in 'record' (sc_store_fleet_batch_add)
                          read after stream ID 'key2' up to 'key'; 'count' = applied.
                          SC_ECONFLICT (nothing changed) unless 'key2' is the last ID
                          applied, so a batch is applied once and in order */
    SC_OP_FLEET_ACK,   /* removes outbox records up to sequence 'count' (published) */
} sc_op_type_t;

typedef struct sc_write_op_s sc_write_op_t;
struct sc_write_op_s {
    sc_op_type_t type;
    uint8_t key[SC_KEY_BYTES];
    uint8_t key2[SC_KEY_BYTES]; /* NEGATIVE: the second half of its key */
    sc_buf_t record;            /* owned by the op: PUT / NS_PUT / VALIDATION payload */
    char *ns, *tenant, *model;  /* owned: INVALIDATE filters (NULL = any); NS_PUT name in 'ns' */
    int all;                    /* INVALIDATE: remove everything */
    uint64_t ns_max_entries;    /* PUT: the namespace's entry cap (0 = none) */
    uint64_t ns_max_bytes;      /* PUT: the namespace's byte cap (0 = none) */
    int result;                 /* out: 0 or SC_E* */
    uint64_t count;             /* out: entries removed */
    /* Called on the writer thread once the op's transaction is durable (per
     * --sync) or failed. It must not block; typically it hands the op back to
     * an event loop. The store does not touch the op afterwards. */
    void (*done)(sc_write_op_t *op);
    void *data;          /* for the submitter */
    sc_write_op_t *next; /* queue link, owned by the store while queued */
};

/* Queues 'op'. On error (SC_EBUSY: queue full; SC_ECLOSED) 'done' is not
 * called and the caller keeps the op. */
int sc_store_submit(sc_store_t *s, sc_write_op_t *op);
/* Frees an op's owned fields (not the op itself). */
void sc_write_op_clear(sc_write_op_t *op);
/* Frees a heap-allocated op and its fields: the 'done' of a detached op
 * (a write nobody waits for), run on the writer thread. */
void sc_write_op_free(sc_write_op_t *op);

/* Records a hit on 'key' at 'now_ms'. Never blocks: updates are buffered and
 * applied by the writer every --hit-flush-ms; when the buffer is full the
 * update is dropped and counted. Returns the entry's hits buffered since the
 * last flush, this one included (so stored hits + this is the entry's count),
 * or 0 if the update was dropped. */
uint32_t sc_store_touch(sc_store_t *s, const uint8_t key[SC_KEY_BYTES], uint64_t now_ms);

/* Runs one sweep now (tests); returns entries removed or SC_E*. Must not be
 * called while the writer thread runs. */
int sc_store_sweep_now(sc_store_t *s, uint64_t now_ms);

int sc_store_stats(sc_store_t *s, sc_store_stats_t *st);

/* ---- fleet replication (store_fleet.c; docs/fleet.md) -------------------
 * In fleet mode every local change committed by the writer is also written,
 * in the same transaction, as a stream record (sc_fleet_record.h) to an
 * outbox table, and every entry carries the hybrid logical timestamp and
 * origin node of its last change, so that changes arriving from peers
 * (SC_OP_FLEET_APPLY) resolve by "newest wins". Deletes and invalidations
 * leave tombstones so an older store arriving late cannot bring an entry
 * back. The ID of the last stream record applied is stored in the same
 * transaction as its effects. Off unless sc_store_fleet_enable is called: a
 * store without it writes exactly what it always has. */

typedef struct {
    uint64_t outbox_max;   /* most unpublished records kept; beyond, the oldest are
                              dropped and counted (0 = no bound) */
    uint64_t tombstone_ms; /* how long deletes and invalidations are remembered */
    uint64_t max_skew_ms;  /* records timestamped further ahead of this clock are refused */
} sc_store_fleet_opts_t;

/* Called on the writer thread after the commit they follow; none may block. */
typedef struct {
    /* Records were added to the outbox. */
    void (*on_outbox)(void *ctx);
    /* A peer's namespace change was applied: 'doc' is the settings (JSON),
     * NULL when the namespace was deleted. Valid during the call. */
    void (*on_ns)(void *ctx, const char *name, size_t len, const char *doc, size_t doc_len);
    /* Writes into 'out' ('cap' bytes, NUL-terminated) the identity of the
     * embedder that makes this node's vectors for namespace 'ns' ("" =
     * unnamed). A peer's entry whose vector another embedder made is kept
     * exact-only. NULL = every vector is accepted. */
    void (*embedder_of)(void *ctx, sc_slice_t ns, char *out, size_t cap);
    void *ctx;
} sc_store_fleet_hooks_t;

/* A Redis stream ID ("ms-seq"); {0, 0} = before the first record. */
typedef struct {
    uint64_t ms, seq;
} sc_stream_id_t;

typedef struct {
    uint64_t node;            /* this node's id */
    uint64_t outbox_depth;    /* records not yet published */
    uint64_t outbox_dropped;  /* unpublished records dropped beyond outbox_max */
    uint64_t recorded;        /* local changes written to the outbox */
    uint64_t applied;         /* peers' records applied */
    uint64_t duplicates;      /* records already applied (same version) */
    uint64_t conflicts;       /* records that lost to a newer version or tombstone */
    uint64_t refused;         /* peers' stores this node could not hold (full, expired) */
    uint64_t skewed;          /* records timestamped beyond max_skew_ms ahead */
    uint64_t vectors_dropped; /* peers' entries kept exact-only (other embedder) */
    uint64_t own;             /* own records read back from the stream */
    uint64_t tombstones;      /* delete tombstones held */
} sc_store_fleet_stats_t;

/* Turns fleet mode on; call before sc_store_open. Hooks may be NULL. */
int sc_store_fleet_enable(sc_store_t *s, const sc_store_fleet_opts_t *o,
                          const sc_store_fleet_hooks_t *hooks);
/* This node's id (random, kept in LMDB; 0 before open or when off). */
uint64_t sc_store_fleet_node(sc_store_t *s);
/* The ID of the last stream record applied ({0, 0} if none). */
int sc_store_fleet_applied(sc_store_t *s, sc_stream_id_t *id);
/* Calls 'fn' with outbox records whose sequence is above 'after', oldest
 * first, at most 'max' of them, in one read snapshot; 'rec' points into the
 * map (valid during the call). A non-zero return from 'fn' stops the walk. */
int sc_store_fleet_outbox_read(sc_store_t *s, uint64_t after, size_t max,
                               int (*fn)(void *ctx, uint64_t seq, const void *rec, size_t len),
                               void *ctx);
/* Appends stream record 'rec' to batch 'b' (the 'record' of an
 * SC_OP_FLEET_APPLY op: each record as le32 length, then its bytes). */
int sc_store_fleet_batch_add(sc_buf_t *b, const void *rec, size_t len);
int sc_store_fleet_stats(sc_store_t *s, sc_store_fleet_stats_t *st);
/* An order-independent digest of the live entries: for each unexpired entry,
 * its key and the timestamp and origin of its version. Equal on two nodes
 * that hold the same entries at the same versions. */
int sc_store_fleet_checksum(sc_store_t *s, uint64_t now_ms, uint64_t *entries, uint64_t *sum);
/* Writes a compacted copy of the environment (mdb_env_copyfd2) to 'fd': a
 * consistent snapshot, applied stream ID included. Blocks until done; call
 * from a thread that may block. */
int sc_store_snapshot_copy(sc_store_t *s, int fd);
/* Makes the environment in 'dir' (a peer's snapshot just installed, no
 * store open on it) this node's: a new node id and an empty outbox (the
 * peer's unpublished records are the peer's to publish). SC_ECORRUPT if it
 * is not a fleet store. '*applied' receives the snapshot's last applied
 * stream ID. */
int sc_store_fleet_adopt(const char *dir, sc_stream_id_t *applied);

#endif
