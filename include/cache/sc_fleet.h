/* sc_fleet.h -- a fleet of semcached nodes sharing one cache through a Redis
 * stream (docs/fleet.md). Every node is a full replica: lookups never leave
 * it. The store records each local change in an outbox in the commit that
 * makes it (sc_store.h, "fleet replication"); this module moves the outbox
 * to the fleet's stream (XADD) and follows the stream (XREAD BLOCK from the
 * last ID applied), handing batches to the store's writer thread. Redis is
 * spoken through hiredis's async API on a libuv loop of the module's own
 * thread, so nothing here ever blocks an event loop or the writer.
 * Lifecycle: create -> attach (before sc_store_open) -> start -> stop ->
 * (sc_store_stop_writer) -> destroy. sc_fleet_bootstrap runs before all of
 * it, when a node must first copy a peer's snapshot. */
#ifndef SC_FLEET_H
#define SC_FLEET_H

#include <stdint.h>

#include "sc_common.h"
#include "sc_config.h"
#include "sc_log.h"
#include "sc_store.h"

typedef struct sc_fleet_s sc_fleet_t;

/* Where Redis is, parsed from --redis: redis://[user:password@]host[:port][/db],
 * unix:///path/to.sock[?db=N] or a path starting with '/'. */
typedef struct {
    char host[256];
    int port;            /* default 6379 */
    char unix_path[512]; /* "" = TCP */
    char user[128];      /* "" = the default user (AUTH password) */
    char password[256];  /* "" = no AUTH */
    int db;              /* SELECT, 0 = none */
} sc_redis_addr_t;

/* SC_EINVAL (with a sentence in 'err') if 'url' is none of the above. */
int sc_redis_addr_parse(const char *url, sc_redis_addr_t *out, char *err, size_t err_cap);

/* A node as the fleet's registry shows it (each node rewrites its row every
 * second): where its snapshot is served and how far it has applied. */
typedef struct {
    uint64_t node;
    char url[512]; /* its snapshot URL, "-" = none */
    sc_stream_id_t applied;
    uint64_t seen_ms;             /* wall ms of its last heartbeat */
    uint64_t lag_ms, lag_records; /* its replication lag as it reported it */
} sc_fleet_peer_t;

/* A snapshot as a node serves it: the compacted LMDB copy, then a trailer
 * (SC_FLEET_SNAPSHOT_MAGIC, then the copy's length, le64), so a copy cut
 * short by a failure is told from a whole one. */
#define SC_FLEET_SNAPSHOT_MAGIC "SCSNAP01"
#define SC_FLEET_SNAPSHOT_TRAILER 16
void sc_fleet_snapshot_trailer(uint64_t bytes, uint8_t out[SC_FLEET_SNAPSHOT_TRAILER]);

typedef struct {
    sc_store_fleet_stats_t store;    /* outbox, applied, conflicts, ... (sc_store.h) */
    int connected;                   /* both Redis connections are up */
    int ready;                       /* caught up (or not joining): see sc_fleet_ready */
    int resync_needed;               /* the stream was trimmed past this node while it ran */
    uint64_t published;              /* records moved from the outbox to the stream */
    uint64_t publish_errors;         /* XADD refused by Redis */
    uint64_t read;                   /* records read from the stream (own included) */
    uint64_t malformed;              /* stream entries skipped as foreign or damaged */
    uint64_t batches;                /* batches applied */
    uint64_t reconnects;             /* Redis connections (re)established */
    uint64_t lag_records;            /* stream records after this node's position */
    uint64_t lag_ms;                 /* age of the newest record applied, when applied */
    uint64_t lag_p50_ms, lag_p99_ms; /* over every record applied since start */
    sc_stream_id_t read_id;          /* last stream ID read */
} sc_fleet_stats_t;

/* Creates the fleet from 'cfg' (--redis, --fleet, --fleet-*). 'log' must
 * outlive it. SC_EINVAL if --redis or --fleet is bad. */
int sc_fleet_create(sc_fleet_t **out, const sc_config_t *cfg, sc_log_t *log);
/* Puts 's' in fleet mode with 'hooks' (on_ns and embedder_of are the
 * caller's; on_outbox is taken by the fleet). Call before sc_store_open;
 * 's' must outlive the fleet. */
int sc_fleet_attach(sc_fleet_t *f, sc_store_t *s, const sc_store_fleet_hooks_t *hooks);
/* Starts the fleet's thread: connects, publishes the outbox, follows the
 * stream. 'snapshot_url' (may be NULL) is advertised to peers for joining;
 * 'joining' keeps sc_fleet_ready 0 until this node has caught up. */
int sc_fleet_start(sc_fleet_t *f, const char *snapshot_url, int joining);
/* Stops following, publishes what it can for up to 'flush_ms', disconnects
 * and joins the thread. Unpublished records stay in the outbox for the next
 * start. Call before sc_store_stop_writer. Idempotent. */
void sc_fleet_stop(sc_fleet_t *f, uint64_t flush_ms);
/* After sc_store_stop_writer (batches in flight complete into the fleet). */
void sc_fleet_destroy(sc_fleet_t *f);

/* 1 unless the node is joining and has not yet read to the end of the
 * stream with a lag within --fleet-max-lag-ms. Any thread. */
int sc_fleet_ready(sc_fleet_t *f);
void sc_fleet_stats(sc_fleet_t *f, sc_fleet_stats_t *st);
/* Copies up to 'cap' registry rows (as of the last heartbeat, this node's
 * own included) into 'out'; returns how many. Any thread. */
size_t sc_fleet_peers(sc_fleet_t *f, sc_fleet_peer_t *out, size_t cap);
/* This node's id as 16 hex digits (valid once started). */
const char *sc_fleet_node_hex(const sc_fleet_t *f);

/* Before the store opens on 'dir': when the stream no longer holds the
 * records after this node's last applied ID (a new node in a trimmed fleet,
 * or one down for longer than the retention), publishes the node's own
 * unpublished records, then copies a peer's snapshot (GET on the URL a peer
 * advertises, with 'admin_token' as bearer) into 'dir' and adopts it.
 * '*installed' tells whether it did (derived state such as index snapshots
 * must then be dropped). Redis unreachable or nothing to do: returns 0 and
 * the node starts from what it has. */
int sc_fleet_bootstrap(const sc_config_t *cfg, sc_log_t *log, const char *dir,
                       const char *admin_token, int *installed);

#endif
