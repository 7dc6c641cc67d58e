/* fleet_internal.h -- what the fleet's files share (behind sc_fleet.h):
 *   fleet.c       lifecycle, the loop thread, the heartbeat (registry, lag,
 *                 trimmed-stream check), stats
 *   fleet_conn.c  the two Redis connections (hiredis on the loop, handshake,
 *                 reconnects, watchdog)
 *   fleet_wire.c  the formats: --redis URLs, stream IDs, keys, XADD, registry
 *   fleet_pub.c   the publisher: outbox -> XADD, then SC_OP_FLEET_ACK
 *   fleet_read.c  the reader: XREAD BLOCK -> SC_OP_FLEET_APPLY batches
 *   fleet_boot.c  joining: a peer's snapshot before the store opens
 * Everything but the writer's completion callbacks, the hooks and the
 * stats runs on the fleet's own libuv loop thread. */
#ifndef SC_FLEET_INTERNAL_H
#define SC_FLEET_INTERNAL_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "sc_fleet.h"

#define FLEET_READ_COUNT 256      /* records per XREAD: one writer batch */
#define FLEET_BLOCK_MS 1000       /* XREAD BLOCK; the watchdog allows this plus FLEET_STALL_MS */
#define FLEET_STALL_MS 4000       /* a command unanswered this long drops the connection */
#define FLEET_PUB_WINDOW 512      /* XADDs in flight on the publisher connection */
#define FLEET_ACK_EVERY 256       /* published records per outbox removal */
#define FLEET_APPLY_INFLIGHT 4    /* batches queued at the writer at once */
#define FLEET_TICK_MS 50          /* timers: reconnects, retries, watchdog */
#define FLEET_HEARTBEAT_MS 1000   /* registry row, lag count, trimmed-stream check */
#define FLEET_CONNECT_MS 3000     /* a connection not up within this is retried */
#define FLEET_BACKOFF_MAX_MS 2000 /* reconnect backoff ceiling */
#define FLEET_PEER_FRESH_MS 30000 /* registry rows older than this are ignored */
#define FLEET_PEER_FORGET_MS (24 * 3600 * 1000ull) /* ... and older than this removed */
#define FLEET_LAG_COUNT_MAX 100000                 /* records lag is counted exactly up to this */
#define FLEET_LAG_BUCKETS 320 /* log-linear lag histogram: 8 per power of two */

typedef enum { CONN_DOWN = 0, CONN_CONNECTING, CONN_READY } conn_state_t;

typedef struct {
    sc_fleet_t *f;
    redisAsyncContext *ac; /* NULL when down; hiredis owns it */
    conn_state_t state;
    uint64_t since_ms;    /* monotonic ms of the last state change */
    uint64_t retry_at_ms; /* when down: the next attempt */
    uint64_t backoff_ms;
    uint64_t busy_since_ms; /* oldest unanswered command, 0 = none */
    int outstanding;        /* commands sent, not answered */
    int warned;             /* this outage was logged */
    _Atomic int *up;        /* 1 while ready (read by other threads) */
    const char *name;       /* for the log */
    void (*on_ready)(sc_fleet_t *f);
    void (*on_down)(sc_fleet_t *f);
} fleet_conn_t;

/* A batch of stream records on its way through the writer. */
typedef struct fleet_batch_s {
    sc_write_op_t op; /* first member: the store hands back &op */
    sc_fleet_t *f;
    uint64_t gen;     /* reader generation it was read in */
    uint64_t records; /* records in op.record */
    int at_end;       /* its XREAD reached the end of the stream */
    struct fleet_batch_s *next;
} fleet_batch_t;

typedef sc_fleet_peer_t fleet_peer_t;

struct sc_fleet_s {
    sc_config_t cfg;
    sc_log_t *log;
    sc_store_t *store;
    sc_store_fleet_hooks_t hooks; /* the caller's (on_ns, embedder_of) */
    sc_redis_addr_t addr;
    char stream_key[192], nodes_key[192];
    char node_hex[17];
    char snapshot_url[512];
    char retention[32]; /* XADD trim argument value ("" = none) */

    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    pthread_t thread;
    int started, stopped;

    pthread_mutex_t mu; /* guards the fields down to done_tail */
    int running;        /* 'wake' may be sent */
    int stop_requested;
    uint64_t flush_deadline_ms;
    int outbox_signal;                    /* the writer added outbox records */
    fleet_batch_t *done_head, *done_tail; /* batches the writer finished */

    fleet_conn_t pub, rd;
    int stopping; /* loop thread: no more reading; publish, then close */
    int closing;  /* loop thread: handles are being closed */

    /* publisher (loop thread) */
    uint64_t sent_upto, acked_upto, ack_submitted;
    int pub_inflight, pub_failed;
    uint64_t pub_retry_at_ms;

    /* reader (loop thread) */
    sc_stream_id_t read_id;      /* next XREAD starts after it */
    sc_stream_id_t checked_id;   /* the position the pending gap check asks about */
    sc_stream_id_t submitted_id; /* the last batch given to the writer ends here */
    uint64_t submitted_ms;       /* monotonic: when */
    int xread_pending;
    int apply_inflight;
    uint64_t inflight_records;
    fleet_batch_t *held; /* read, not yet accepted by the writer */
    uint64_t gen;
    int resync;                /* a batch failed: re-read from the applied ID */
    uint64_t read_retry_at_ms; /* after an XREAD error */
    int joining;
    int at_end; /* the last XREAD reached the end */

    /* heartbeat (loop thread) */
    uint64_t next_heartbeat_ms;
    int beat_pending;

    /* stats (any thread) */
    _Atomic uint64_t published, publish_errors, read, malformed, batches, reconnects, own;
    _Atomic int pub_up, rd_up; /* connections ready */
    _Atomic uint64_t lag_records, lag_ms;
    _Atomic int ready, resync_needed;
    _Atomic uint64_t read_ms, read_seq;
    _Atomic uint64_t lag_hist[FLEET_LAG_BUCKETS];
    uint64_t last_malformed_log_ms;
    pthread_mutex_t peers_mu;
    fleet_peer_t *peers; /* the registry as of the last heartbeat */
    size_t n_peers;
};

/* ---- fleet.c ------------------------------------------------------------ */

uint64_t sc__fleet_mono_ms(void);
/* Wakes the loop thread (any thread). */
void sc__fleet_wake(sc_fleet_t *f);

/* ---- fleet_conn.c --------------------------------------------------------- */

/* Connects, retries and watches 'c' (every tick); 'wanted' = keep it up. */
void sc__fleet_conn_tick(fleet_conn_t *c, uint64_t now, int wanted);
/* Frees 'c''s connection from outside hiredis's callbacks (it reconnects). */
void sc__fleet_conn_kill(fleet_conn_t *c, const char *why);
/* Sends a command on 'c' (argv form, binary-safe) with the watchdog armed. */
int sc__fleet_command(fleet_conn_t *c, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                      const size_t *lens);
/* Marks an answer on 'c' (the watchdog restarts). */
void sc__fleet_answered(fleet_conn_t *c);
/* Drops 'c' from within a hiredis callback (it reconnects). */
void sc__fleet_drop(fleet_conn_t *c, const char *why);

/* ---- fleet_wire.c --------------------------------------------------------- */

/* "ms-seq" <-> id. Parsing is strict: digits, '-', digits. */
int sc__fleet_id_parse(const char *s, size_t len, sc_stream_id_t *id);
void sc__fleet_id_format(const sc_stream_id_t *id, char out[48]);
int sc__fleet_id_cmp(const sc_stream_id_t *a, const sc_stream_id_t *b);
/* The registry row this node writes, and the parse of one. */
int sc__fleet_peer_parse(const char *field, size_t flen, const char *val, size_t vlen,
                         fleet_peer_t *p);
/* The stream and registry keys of fleet 'name'. */
void sc__fleet_keys(const char *name, char *stream_key, char *nodes_key, size_t cap);
/* 1 if XINFO STREAM reply 'r' shows records after 'pos' were trimmed away;
 * '*first' receives the first ID the stream still holds. */
int sc__fleet_trimmed_past(const redisReply *r, const sc_stream_id_t *pos, sc_stream_id_t *first);
/* Says (once) that records after 'pos' were trimmed away before this node
 * read them ('first': the stream's first record now, or NULL if unknown),
 * and flags the node for a resync (sc_fleet_stats' resync_needed). */
/* In the data directory while a node owes itself a resync. */
#define SC_FLEET_RESYNC_MARKER "fleet.resync"
void sc__fleet_flag_trimmed(sc_fleet_t *f, const sc_stream_id_t *pos, const sc_stream_id_t *first);
/* The XADD of record 'rec' ('len' bytes) to stream 'key' with the trim
 * 'cfg' asks for, as argv / lens (8 slots each; 'trim' holds a number they
 * point to). Returns argc. */
int sc__fleet_xadd_args(const sc_config_t *cfg, const char *key, const void *rec, size_t len,
                        char trim[32], const char **argv, size_t *lens);

/* ---- fleet_pub.c ---------------------------------------------------------- */

/* Publishes outbox records while the window allows. */
void sc__fleet_pub_pump(sc_fleet_t *f);
void sc__fleet_pub_reset(sc_fleet_t *f);
/* 1 while published records wait to be removed or the outbox holds more. */
int sc__fleet_pub_busy(sc_fleet_t *f);

/* ---- fleet_read.c --------------------------------------------------------- */

/* Issues the next XREAD when allowed. */
void sc__fleet_read_pump(sc_fleet_t *f);
void sc__fleet_read_reset(sc_fleet_t *f);
/* Records the position read so far as applied, when only this node's own
 * records were read since the last batch (heartbeat). */
void sc__fleet_read_settle(sc_fleet_t *f);
/* Handles the batches the writer finished (loop thread). */
void sc__fleet_read_done(sc_fleet_t *f, fleet_batch_t *list);
/* The store's completion callback of a batch (writer thread). */
void sc__fleet_batch_done(sc_write_op_t *op);
void sc__fleet_batch_free(fleet_batch_t *b);
/* Records one applied record's lag. */
void sc__fleet_lag_add(sc_fleet_t *f, uint64_t ms);

#endif
