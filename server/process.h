/* process.h -- the server process as request handlers see it: the context
 * every loop shares (sc_ctx_t: settings, the cache engine's handles, process
 * counters) and the worker (one event-loop thread: its loop, store reader,
 * metrics shard, HTTP side and task queue). Start-up, signals and shutdown
 * stay private to server.c; the HTTP layer (http.h) sees neither struct.
 * The context is read-only once the loops run, counters and the index state
 * aside (atomics). */
#ifndef SC_PROCESS_H
#define SC_PROCESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "http.h"
#include "models.h"
#include "sc_common.h"
#include "sc_config.h"
#include "sc_fleet.h"
#include "sc_httpclient.h"
#include "sc_log.h"
#include "sc_metrics.h"
#include "sc_namespaces.h"
#include "sc_prices.h"
#include "sc_quality.h"
#include "sc_scopes.h"
#include "sc_store.h"
#include "sc_veccache.h"
#include "searchpool.h"

typedef struct sc_worker_s sc_worker_t;

/* Why a lookup was answered exact-only, or a store kept no vector: one
 * counter each in sc_ctx_t.semantic_skipped, one label value each in /metrics
 * and in the lookup answer. */
typedef enum {
    SC_SKIP_QUEUE_FULL,  /* the embedding or search queue was full */
    SC_SKIP_TIMEOUT,     /* the embedding missed its deadline */
    SC_SKIP_ERROR,       /* the model failed */
    SC_SKIP_EMBEDDER,    /* the namespace holds another embedder's vectors */
    SC_SKIP_UNAVAILABLE, /* the model's remote endpoint has not answered yet */
    SC_SKIP_COUNT
} sc_skip_reason_t;
/* "queue_full", "timeout", "error", "embedder_mismatch", "embedder_unavailable". */
const char *sc_skip_reason_name(sc_skip_reason_t r);

/* Where the vector indexes came from at start-up (set by the index loader). */
typedef enum {
    SC_INDEX_LOADING,         /* not loaded yet */
    SC_INDEX_SNAPSHOT,        /* the snapshot matched LMDB */
    SC_INDEX_REBUILT,         /* rebuilt from LMDB: there was no snapshot */
    SC_INDEX_REBUILT_STALE,   /* rebuilt: the snapshot was older than LMDB */
    SC_INDEX_REBUILT_DAMAGED, /* rebuilt: the snapshot was unreadable */
    SC_INDEX_REBUILD_FAILED,  /* the LMDB scan failed: the indexes are partial */
    SC_INDEX_SOURCE_COUNT
} sc_index_source_t;
/* The /v1/stats name ("snapshot", "rebuild_stale_snapshot", ...). */
const char *sc_index_source_name(sc_index_source_t s);

/* Work handed to an event loop from another thread (a committed store op, a
 * finished embedding): 'run' is called on the loop thread. */
typedef struct sc_task_s {
    void (*run)(struct sc_task_s *t);
    struct sc_task_s *next;
} sc_task_t;

/* How a compare "judge" call ended (semcached_judge_calls_total{result}). */
typedef enum {
    SC_JUDGE_SAME = 0,
    SC_JUDGE_DIFFERENT = 1,
    SC_JUDGE_NO_VERDICT = 2, /* answered, but not exactly one verdict word */
    SC_JUDGE_FAILED = 3      /* not sent, failed, non-2xx, or no model to ask */
} sc_judge_outcome_t;

typedef struct sc_ctx_s {
    sc_config_t cfg;
    sc_log_t *log;
    sc_store_t *store;
    sc_metrics_t *metrics;
    sc_prices_t *prices;           /* --prices or the built-in table (savings.h) */
    sc_scopes_t *scopes;           /* one vector index per scope */
    sc_namespaces_t *namespaces;   /* per-namespace settings */
    sc_quality_t *quality;         /* validation sampling and false-hit counts */
    sc_models_t models;            /* server-side models: --model ("default"), then --models */
    sc_search_pool_t *search_pool; /* semantic searches off the loops, or NULL (inline) */
    sc_vec_cache_t *vec_cache;     /* lookup embeddings, reused by the store that follows */
    sc_http_client_t *vclient;     /* upstream re-inference and webhook posts, or NULL */
    sc_fleet_t *fleet;             /* replication to the other nodes (--redis), or NULL */
    struct sc_proxy_s *proxy;      /* the transparent proxy (proxy.h) */
    struct sc_flight_s *flight;    /* requests in flight, for single-flight misses (flight.h) */
    char upstream_key[480];        /* from the environment variable --upstream-key-env names */
    char webhook_key[480];         /* from --webhook-key-env */
    _Atomic uint64_t upstream_calls, upstream_failures, webhook_posts, webhook_failures;
    _Atomic uint64_t compare_failures;   /* verdicts lost because answers could not be embedded */
    _Atomic uint64_t judge_verdicts[4];  /* compare "judge" calls by sc_judge_outcome_t */
    _Atomic uint64_t delivery_warned_ms; /* last delivery-failure log line (rate-limited) */
    _Atomic uint64_t semantic_skipped[SC_SKIP_COUNT];
    sc_index_source_t index_source; /* published by 'ready' */
    double index_load_s;            /* how long the load took; published by 'ready' */
    _Atomic int ready;              /* /readyz: store open and indexes loaded */
    _Atomic int stopping;
    _Atomic int64_t n_conns; /* open client connections, all workers */
    int n_workers;
    sc_worker_t *workers; /* [n_workers] */
    uint64_t started_ms;
} sc_ctx_t;

struct sc_worker_s {
    sc_ctx_t *ctx;
    int id;
    uv_loop_t loop;
    uv_tcp_t listener;
    int listener_open;
    uv_async_t wakeup; /* posted tasks, handed-over connections, or stop */
    pthread_t thread;
    sc_store_reader_t *reader;
    sc_metrics_shard_t *metrics;
    sc_http_loop_t *http; /* this loop's connections */
    pthread_mutex_t done_mu;
    sc_task_t *done_head; /* posted tasks, guarded by done_mu */
    int *adopt_fds;       /* connections handed over by other loops, guarded by done_mu */
    size_t n_adopt, cap_adopt;
    int pending_ops; /* tasks expected, not yet run (loop thread) */
    uint64_t rng;    /* xorshift state for sampling (loop thread) */
    int stopping;
};

/* Sets worker 'id' up on listening socket 'fd' (taken over), with HTTP
 * handler 'h' whose ctx is usually the worker itself. */
int sc_worker_init(sc_worker_t *w, sc_ctx_t *ctx, int id, int fd, const sc_http_handler_t *h);
/* The loop thread's body (pthread_create). Returns once every handle closed. */
void *sc_worker_main(void *w);
/* Tells the loop to drain and stop; any thread. */
void sc_worker_wake(sc_worker_t *w);
/* For a worker whose thread never ran: closes its handles. */
void sc_worker_abandon(sc_worker_t *w);
/* After the thread returned (or sc_worker_abandon). */
void sc_worker_destroy(sc_worker_t *w);

/* A task will be posted to 'w' (loop thread): the loop stays up until it
 * ran. Every sc_worker_expect is followed by exactly one sc_worker_post. */
void sc_worker_expect(sc_worker_t *w);
/* Posts 't' to worker 'w''s loop; callable from any thread. */
void sc_worker_post(sc_worker_t *w, sc_task_t *t);

#endif
