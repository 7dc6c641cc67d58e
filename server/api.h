/* api.h -- the v1 JSON API behind the HTTP layer: the endpoint labels, the
 * route table (STYLE 22: one row per resource and method set, read by the
 * router, by authorization and by the metrics labels), the handlers (one
 * file per family: api_cache.c, api_entries.c, api_namespaces.c,
 * api_feedback.c, api_stats.c) and the helpers they share (api_util.c).
 * Dependencies run one way: api -> http.h and process.h; server.c hands
 * sc_api_on_request to each loop's HTTP side. */
#ifndef SC_API_H
#define SC_API_H

#include <http_parser.h> /* enum http_method: HTTP_GET, ... */
#include <jansson.h>

#include "http.h"
#include "process.h"
#include "sc_request.h"

#define SC_JSON_CT "application/json"

/* --semantic-candidates' top (sc_config.h) sizes the search's label and
 * similarity arrays; one index search must be able to fill them. */
_Static_assert(SC_SCOPES_K_MAX >= SC_SEMANTIC_CANDIDATES_MAX,
               "an index search returns fewer candidates than --semantic-candidates allows");

/* ---- endpoint labels ----------------------------------------------------- */

/* Each route row carries one; "other" labels what no row answered (404, 401
 * before routing, the HTTP layer's own errors). The order is the order of
 * /metrics output. */
#define SC_ENDPOINTS(X)                                                                            \
    X(LOOKUP, "lookup")                                                                            \
    X(STORE, "store") X(ENTRIES, "entries") X(INVALIDATE, "invalidate") X(STATS, "stats")          \
        X(HEALTHZ, "healthz") X(READYZ, "readyz") X(METRICS, "metrics")                            \
            X(NAMESPACES, "namespaces") X(FEEDBACK, "feedback") X(FLEET, "fleet")                  \
                X(CHAT, "chat_completions") X(RESPONSES, "responses") X(MESSAGES, "messages")      \
                    X(EMBEDDINGS, "embeddings") X(UI, "ui") X(PROXY, "proxy") X(OTHER, "other")
#define SC_EP_ENUM(id, name) SC_EP_##id,
typedef enum { SC_ENDPOINTS(SC_EP_ENUM) SC_EP_COUNT } sc_endpoint_t;
#undef SC_EP_ENUM
/* "lookup", ... for every sc_endpoint_t (static strings; api_util.c). */
extern const char *const sc_endpoint_names[SC_EP_COUNT];

/* ---- the route table ----------------------------------------------------- */

/* One request as a handler receives it. Everything is borrowed for the
 * duration of the call; an asynchronous handler copies what it keeps and
 * calls sc_api_hold. */
typedef struct sc_route_s sc_route_t;

typedef struct {
    const sc_route_t *route; /* the row that matched */
    sc_worker_t *w;          /* the loop the request arrived on */
    sc_ctx_t *ctx;           /* == w->ctx */
    sc_conn_t *c;
    const sc_http_request_t *http;
    sc_slice_t param; /* the {name} part of the path, or empty */
} sc_call_t;

typedef void (*sc_route_fn)(const sc_call_t *a);

/* Bits of sc_route_t.flags. A row with none needs the user (or admin) token
 * when --auth-token is set. */
enum {
    SC_ROUTE_PUBLIC = 1,       /* no token ever (health checks) */
    SC_ROUTE_METRICS_AUTH = 2, /* no token unless --metrics-auth on */
    SC_ROUTE_ADMIN = 4,        /* the admin token (--admin-token, else --auth-token) */
    SC_ROUTE_PROXY = 8,        /* proxied: Authorization is the provider's key, so the
                                * user token rides in X-Semcached-Token */
};

/* Method bits: SC_METHOD(HTTP_GET) | SC_METHOD(HTTP_HEAD); any method at all
 * is SC_METHODS_ANY (for a pass-through). */
#define SC_METHOD(m) (UINT64_C(1) << (m))
#define SC_METHODS_ANY (~UINT64_C(0))

/* One row: a resource (pattern) and the methods one handler serves there.
 * Patterns: "/v1/lookup" is exact; "/v1/entries/{key}" matches the prefix
 * before '{', and the rest of the path (possibly empty, possibly with '/')
 * is the handler's param. Rows are matched in table order: the first row
 * whose pattern matches names the resource, and every row with that same
 * pattern shares it (one per method set). So a catch-all such as
 * {"/v1/{path}", SC_METHODS_ANY, ...} placed last takes exactly the /v1/
 * paths no row before it knows, with any method. */
struct sc_route_s {
    const char *pattern;
    uint64_t methods;    /* SC_METHOD bits */
    unsigned flags;      /* SC_ROUTE_* */
    sc_endpoint_t label; /* the metrics endpoint label */
    sc_route_fn handler;
};

extern const sc_route_t sc_routes[];
extern const size_t sc_n_routes;

typedef enum { SC_ROUTE_FOUND, SC_ROUTE_NO_METHOD, SC_ROUTE_NOT_FOUND } sc_route_result_t;

typedef struct {
    const sc_route_t *route; /* FOUND: the row; NO_METHOD: the resource's first row */
    sc_slice_t param;        /* points into the path */
    uint64_t allow;          /* NO_METHOD: the methods the resource has */
    unsigned flags;          /* FOUND: the row's; NO_METHOD: the strictest of its rows' */
} sc_route_match_t;

/* Finds the row for 'method' on 'path' in 'routes'. */
sc_route_result_t sc_route_match(const sc_route_t *routes, size_t n, sc_slice_t path, int method,
                                 sc_route_match_t *m);
/* 0 when a request with this Authorization header value may use a row with
 * 'flags'; else the status to answer: 401 (no or wrong token) or 403 (the
 * user token on an admin row). */
int sc_route_auth(const sc_config_t *cfg, unsigned flags, sc_slice_t authorization);
/* Writes "GET, PUT, DELETE" for 'methods' into 'out' (cap bytes). */
void sc_route_allow(uint64_t methods, char *out, size_t cap);

/* ---- entry points (server.c wires them to each loop's HTTP side) -------- */

/* The HTTP handler: 'worker' is the sc_worker_t of the loop. */
void sc_api_on_request(void *worker, sc_conn_t *c, const sc_http_request_t *req);
/* Records every response in the loop's metrics shard under its label. */
void sc_api_on_response(void *worker, int tag, int status, uint64_t dur_ns);
/* sc_http_handler_t.on_refused: a proxied route's request the HTTP layer
 * refuses (a body over --max-body-bytes...) is answered in the upstream
 * API's error shape; 0 (the layer's problem+json) for the others. */
int sc_api_on_refused(void *worker, sc_conn_t *c, const sc_http_request_t *req, int status,
                      const char *detail);

/* ---- handlers, by family ------------------------------------------------- */

void sc_api_lookup(const sc_call_t *a); /* api_cache.c */
void sc_api_store(const sc_call_t *a);
void sc_api_entry(const sc_call_t *a); /* api_entries.c */
void sc_api_invalidate(const sc_call_t *a);
void sc_api_namespace(const sc_call_t *a); /* api_namespaces.c */
/* Writes namespace 'name''s settings 'ns' to the store in the background
 * (nobody waits for the commit). 0, SC_ENOMEM or the store's refusal. */
int sc_api_ns_persist(sc_ctx_t *ctx, const char *name, size_t len, const sc_ns_config_t *ns);
/* Gives namespace 'name' the settings JSON 'settings' exactly as PUT
 * /v1/namespaces/NAME would (same checks), at start-up from the config
 * file's [namespace NAME] sections. 0, or SC_EINVAL / SC_ECONFLICT /
 * SC_ENOMEM with the reason in 'err'. */
int sc_api_ns_preset(sc_ctx_t *ctx, const char *name, const json_t *settings, char *err,
                     size_t cap);
void sc_api_feedback(const sc_call_t *a); /* api_feedback.c */
void sc_api_validations(const sc_call_t *a);
void sc_api_stats(const sc_call_t *a); /* api_stats.c */
void sc_api_metrics(const sc_call_t *a);
void sc_api_health(const sc_call_t *a);
void sc_api_ui(const sc_call_t *a); /* api_ui.c: the dashboard page and its assets */
void sc_api_fleet_snapshot(const sc_call_t *a); /* api_fleet.c */
void sc_api_fleet_checksum(const sc_call_t *a);
void sc_proxy_api(const sc_call_t *a); /* proxy.c: chat completions, responses, messages */
void sc_proxy_embeddings(const sc_call_t *a);
void sc_proxy_passthrough(const sc_call_t *a); /* any other /v1/ path, any method */

/* ---- the cache steps the proxy shares (api_cache.c, api_store.c) -------- */

/* A lookup's outcome, as sc_cache_lookup hands it to its continuation. */
typedef struct {
    sc_lookup_result_t result; /* SC_LR_EXACT_HIT, SC_LR_SEMANTIC_HIT or SC_LR_MISS */
    sc_request_t req;          /* the request handed back, with its vector when it was
                                * embedded; the continuation may move it out (else it
                                * is freed after the continuation returns) */
    uint8_t key[SC_KEY_BYTES]; /* hit: the entry served */
    double similarity;         /* hit: 1 for exact, the cosine for semantic */
    uint64_t created_ms;       /* hit: when the entry was stored */
    sc_buf_t response;         /* hit: the entry's response (same ownership as req) */
    char validation_id[SC_VALIDATION_ID_HEX + 1]; /* "" or a validation the caller is asked for
                                                   * (namespace delivery "caller") */
    int skip; /* sc_skip_reason_t why semantic was skipped, or -1 */
    /* miss: a near miss worth observing (server/observe.c): the best
     * candidate's key, similarity and response (same ownership as req) */
    int observe;
    uint8_t observe_key[SC_KEY_BYTES];
    double observe_similarity;
    sc_buf_t candidate;
    double threshold; /* the cosine a semantic hit needed (> 1: none could be served) */
} sc_lookup_out_t;

/* Runs on the loop thread; 'c' is the connection the lookup was for. */
typedef void (*sc_lookup_then_fn)(sc_worker_t *w, sc_conn_t *c, void *arg, sc_lookup_out_t *out);

/* The native lookup without its answer: exact on the loop, then (namespace
 * semantic, request with text) embedding and search on their pools, with
 * the namespace's threshold rules (an error budget included), hit counts,
 * validation sampling and metrics. 'req' is taken over (left empty); the
 * caller has checked its threshold. 'then' runs exactly once on the loop
 * thread, possibly before this returns; 'c' is held meanwhile. An internal
 * failure is a miss (fail-open). */
void sc_cache_lookup(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, double threshold,
                     sc_lookup_then_fn then, void *arg);
/* The exact step of a proxied lookup, again: 1 with 'out' filled as
 * sc_cache_lookup hands an exact hit on (the response is the caller's to
 * free, sampled and counted), else 0 ('out' holds nothing). Loop thread;
 * the single-flight leader's check for an entry committed since its lookup. */
int sc_cache_exact_probe(sc_worker_t *w, const sc_request_t *req, sc_lookup_out_t *out);
/* A proxied hit served from a concurrent request's answer (single flight)
 * is sampled for validation like a lookup's hit: 1 with the validation's id
 * in 'id' (its delivery then as for proxied hits), else 0. Loop thread. */
int sc_cache_sample_hit(sc_worker_t *w, const sc_request_t *req,
                        const uint8_t entry_key[SC_KEY_BYTES], int semantic, double similarity,
                        const char *response, size_t len, char id[SC_VALIDATION_ID_HEX + 1]);

/* A detached write's result, 0 or SC_E* (SC_EFULL, SC_EBUSY, SC_ETOOBIG...),
 * on the store's writer thread or the caller's. */
typedef void (*sc_store_done_fn)(void *arg, int result);

/* Stores 'req' (taken over: key, scope, namespace, tenant, model, text,
 * vector, TTL, usage) with 'response' (the entry's response JSON, taken
 * over) when nobody waits for the commit: the proxy's store after it has
 * answered. Embeds the text first when the namespace is semantic and the
 * request has no vector yet. 'done' (may be NULL) hears the result once. */
void sc_cache_store_detached(sc_worker_t *w, sc_request_t *req, sc_buf_t *response,
                             sc_store_done_fn done, void *arg);

/* ---- helpers shared by the handlers (api_util.c) ------------------------ */

void sc_api_reply_json(sc_conn_t *c, int status, const sc_buf_t *b);
/* Answers {<members>"key":"<hex>"}; 'members' is "" or JSON members ending in ','. */
void sc_api_reply_key(sc_conn_t *c, int status, const char *members,
                      const uint8_t key[SC_KEY_BYTES]);
/* 1 if the body is declared JSON; otherwise answers 415 and returns 0. */
int sc_api_require_json(const sc_call_t *a);
/* Appends the 32 hex digits of an entry key. */
void sc_api_append_key(sc_buf_t *b, const uint8_t key[SC_KEY_BYTES]);
/* Writes a JSON value compactly, keeping object key order and printing each
 * number in its shortest round-trip form. */
int sc_api_dump_compact(const json_t *v, sc_buf_t *out);
/* The handler keeps the request past its return and a task will be posted
 * to 'w' (the loop stays up until it runs): sc_conn_hold + sc_worker_expect. */
void sc_api_hold(sc_worker_t *w, sc_conn_t *c);
/* The learned threshold of a max_error_rate namespace (at namespace level):
 * 1 and '*t' when its validations support one. */
int sc_api_learned_threshold(sc_ctx_t *ctx, const char *name, const sc_ns_config_t *ns, double *t,
                             uint64_t *n_obs);

/* A store write whose HTTP answer waits for the commit. The loop's task
 * runs 'complete', which answers, then sc_pending_finish. */
typedef struct sc_pending_s {
    sc_write_op_t op; /* first member: the store hands back &op */
    sc_task_t task;   /* posts the completion to the loop */
    sc_worker_t *w;
    sc_conn_t *conn;                          /* held until the completion */
    void (*complete)(struct sc_pending_s *p); /* runs on the loop thread */
    uint8_t key[SC_KEY_BYTES];
} sc_pending_t;

/* NULL when out of memory (nothing to undo). */
sc_pending_t *sc_pending_new(sc_worker_t *w, sc_conn_t *c, void (*complete)(sc_pending_t *),
                             sc_op_type_t type);
/* Queues the write and holds the request; on failure answers 503 and frees 'p'. */
void sc_pending_submit(sc_pending_t *p);
/* Frees a pending write that was never submitted. */
void sc_pending_free(sc_pending_t *p);
/* Answers a failed write (507, 413 or 500). */
void sc_pending_failed(sc_pending_t *p);
/* At the end of 'complete': frees 'p' and releases the connection. */
void sc_pending_finish(sc_pending_t *p);
/* A 'complete' for writes that answer {"removed": N}. */
void sc_pending_removed(sc_pending_t *p);

#endif
