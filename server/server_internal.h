/* server_internal.h -- structures shared by the server's event loops (server.c),
 * HTTP connections (http.c) and API handlers (api.c). Not a public header: the
 * public surface is sc_server.h. Each worker owns one libuv loop, its
 * connections, a store reader and a metrics shard; nothing here is shared
 * between workers except the server context, which is read-only after start
 * (counters aside). */
#ifndef SC_SERVER_INTERNAL_H
#define SC_SERVER_INTERNAL_H

#include <http_parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "sc_common.h"
#include "sc_config.h"
#include "sc_log.h"
#include "sc_metrics.h"
#include "sc_embed.h"
#include "sc_namespaces.h"
#include "sc_quality.h"
#include "sc_scopes.h"
#include "embedpool.h"
#include "sc_server.h"
#include "sc_store.h"

typedef struct sc_worker_s sc_worker_t;
typedef struct sc_conn_s sc_conn_t;

/* Work handed to an event loop from another thread (a committed store op, a
 * finished embedding): 'run' is called on the loop thread. */
typedef struct sc_task_s {
    void (*run)(struct sc_task_s *t);
    struct sc_task_s *next;
} sc_task_t;

/* A server-side embedder and its worker threads. Namespaces pick one by name
 * ("model" setting); "default" is --model. */
#define SC_MAX_MODELS 8
typedef struct {
    char name[64];
    sc_embedder_t *embedder;
    sc_embed_pool_t *pool;
} sc_model_t;

struct sc_server_s {
    sc_config_t cfg;
    sc_log_t *log;
    sc_store_t *store;
    sc_metrics_t *metrics;
    sc_scopes_t *scopes;          /* one vector index per scope */
    sc_namespaces_t *namespaces;  /* per-namespace settings */
    pthread_t loader;             /* loads or rebuilds the indexes at start */
    int loader_started;
    char index_dir[1100];         /* snapshots of the indexes */
    const char *index_source;     /* how the indexes were loaded (static string) */
    sc_model_t models[SC_MAX_MODELS]; /* server-side models: --model ("default"), then --models */
    int n_models;
    struct sc_search_pool_s *search_pool; /* semantic searches off the loops, or NULL (inline) */
    struct sc_vec_cache_s *vec_cache; /* lookup embeddings, reused by the store that follows */
    sc_quality_t *quality;        /* validation sampling and false-hit counts */
    struct sc_http_client_s *vclient; /* upstream re-inference and webhook posts, or NULL */
    char upstream_key[480];       /* from the environment variable --upstream-key-env names */
    char webhook_key[480];        /* from --webhook-key-env */
    _Atomic uint64_t upstream_calls, upstream_failures, webhook_posts, webhook_failures;
    _Atomic uint64_t compare_failures; /* verdicts lost because answers could not be embedded */
    _Atomic uint64_t delivery_warned_ms; /* last delivery-failure log line (rate-limited) */
    _Atomic uint64_t semantic_skipped[4]; /* by reason: queue_full, timeout, error, embedder_mismatch */
    double index_load_s;          /* and how long it took */
    int n_workers;
    sc_worker_t *workers;
    _Atomic int64_t n_conns;      /* open client connections, all workers */
    _Atomic int ready;            /* /readyz: store open and indexes loaded */
    _Atomic int stopping;
    uint64_t started_ms;
    int bound_port;               /* the port actually bound */
    uv_loop_t main_loop;          /* signals only */
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_async_t main_wakeup;       /* sc_server_stop from any thread */
};

/* A write op plus what the loop needs to finish the HTTP request it serves. */
typedef struct sc_pending_s {
    sc_write_op_t op;             /* first member: the store hands back &op */
    sc_task_t task;               /* posts the completion to the loop */
    sc_conn_t *conn;              /* holds a reference on the connection */
    void (*complete)(struct sc_pending_s *p); /* runs on the loop thread */
    sc_endpoint_t endpoint;
    uint64_t started_ns;
    uint8_t key[SC_STORE_KEY_BYTES];
} sc_pending_t;

struct sc_worker_s {
    sc_server_t *srv;
    int id;
    uv_loop_t loop;
    uv_tcp_t listener;
    int listener_open;
    uv_async_t wakeup;            /* completed store ops, or stop */
    pthread_t thread;
    sc_store_reader_t *reader;
    sc_metrics_shard_t *metrics;
    pthread_mutex_t done_mu;
    sc_task_t *done_head;         /* posted tasks, guarded by done_mu */
    int *adopt_fds;               /* connections handed over by other loops, guarded by done_mu */
    size_t n_adopt, cap_adopt;
    atomic_int n_open;            /* connections this loop owns or is being handed */
    int pending_ops;              /* submitted, not yet completed (loop thread) */
    sc_conn_t *conns;             /* open connections (loop thread) */
    uint64_t rng;                 /* xorshift state for sampling (loop thread) */
    int stopping;
    uint64_t drain_deadline_ns;   /* set with stopping: connections still open then are closed */
};

/* The request as the API handler sees it. Slices point into the
 * connection's buffers and stay valid until the response is sent. */
typedef struct {
    int method;                   /* enum http_method */
    sc_slice_t path;              /* without the query string */
    sc_slice_t query;
    sc_slice_t body;
    int content_type_json;        /* Content-Type absent or application/json */
    sc_slice_t authorization;     /* the Authorization header's value (may be empty) */
    uint64_t started_ns;          /* monotonic time the request was complete */
} sc_http_request_t;

struct sc_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    sc_worker_t *w;
    sc_conn_t *prev, *next;       /* worker's connection list */
    int refs;                     /* handles open + pending ops */
    http_parser parser;
    sc_buf_t in;                  /* received, not yet parsed bytes from in_off */
    size_t in_off;
    /* the request being parsed */
    sc_buf_t url;
    sc_buf_t body;
    char hname[32];               /* current header name (lower case, truncated) */
    size_t hname_len;
    int hname_done;
    sc_buf_t hval;                /* value of a header we care about */
    int header_wanted;
    size_t header_bytes;
    int content_type_seen, content_type_json, has_clen, expect_continue;
    sc_buf_t auth;                /* Authorization header value */
    int in_message;               /* first byte seen, message not complete */
    int request_ready;            /* message complete, parser paused */
    int err_status;               /* set by a callback to fail the request */
    const char *err_detail;
    int keep_alive;
    uint64_t request_started_ns;  /* first byte of the current request */
    /* processing and output */
    int busy;                     /* an async handler owns the request */
    int closing;
    int close_after_write;
    int reading;
    sc_buf_t out;                 /* responses not yet handed to libuv */
    sc_buf_t out_inflight;        /* owned by libuv until write_cb */
    int writing;
    uv_write_t wreq;
};

/* Queues a response on 'c' (in request order) and finishes the request:
 * records metrics, and resumes parsing pipelined requests if the handler was
 * asynchronous. 'extra_headers' is NULL or CRLF-terminated header lines. */
void sc_conn_respond(sc_conn_t *c, sc_endpoint_t ep, uint64_t started_ns, int status,
                     const char *content_type, const char *extra_headers, const char *body,
                     size_t len);
/* A problem+json error response. */
void sc_conn_problem(sc_conn_t *c, sc_endpoint_t ep, uint64_t started_ns, int status,
                     const char *slug, const char *detail);
/* Marks the connection busy (an async op now owns the request) and takes a
 * reference that sc_conn_release drops. */
void sc_conn_hold(sc_conn_t *c);
void sc_conn_release(sc_conn_t *c);

/* Posts 't' to worker 'w''s loop; callable from any thread. */
void sc_worker_post(sc_worker_t *w, sc_task_t *t);
/* Takes over connected socket 'fd' handed over by another loop (which
 * already counted it in 'w->n_open'); called on w's loop thread. */
void sc__conn_adopt(sc_worker_t *w, int fd);

/* API entry: handles one complete request on the loop thread. */
void sc_api_handle(sc_conn_t *c, const sc_http_request_t *req);

/* The model a namespace embeds with ('ns->model', "" = "default"); NULL when
 * the server has no such model. */
const sc_model_t *sc_server_model(const sc_server_t *srv, const sc_ns_config_t *ns);
const sc_model_t *sc_server_model_named(const sc_server_t *srv, const char *name);
/* Store-op completion hook for sc_pending_t (called on the writer thread). */
void sc_api_op_done(sc_write_op_t *op);

const char *sc_http_reason(int status);

#endif
