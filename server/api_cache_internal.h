/* api_cache_internal.h -- what the lookup (api_cache.c) and store (api_store.c)
 * halves of the cache handlers share, private to the two: request checks,
 * the embedding step both wait on, and the store commits an embedding
 * finishes with. Handlers elsewhere use api.h (sc_cache_lookup,
 * sc_cache_store_detached). */
#ifndef SC_API_CACHE_INTERNAL_H
#define SC_API_CACHE_INTERNAL_H

#include "api.h"

/* Checks a request's vector against server and namespace limits. Returns 0,
 * or answers the error itself and returns -1. */
int sc__check_vector(const sc_call_t *a, const sc_request_t *req, sc_ns_config_t *ns);
/* Does model 'm' match what namespace settings 'ns' (read once by the
 * caller) have recorded? The same rule as sc_namespaces_check_vector,
 * without taking the table's write lock again on every text request. */
int sc__model_fits(const sc_model_t *m, const sc_ns_config_t *ns);
/* Decodes a lookup or store body into 'req'; 0, or the error is answered. */
int sc__parse_request(const sc_call_t *a, sc_req_kind_t kind, sc_request_t *req);

/* What waits for the embedding: a lookup (native or the proxy's), a native
 * store answered at commit, or a proxy store nobody waits for. */
typedef enum { EW_LOOKUP, EW_STORE, EW_STORE_DETACHED } sc__ew_kind_t;

/* A request waiting for the embedding workers. */
typedef struct {
    sc_task_t task;
    sc_embed_job_t job;
    sc_worker_t *w;
    sc_conn_t *conn;  /* held; NULL for a detached store */
    sc_request_t req; /* owned (moved from the handler) */
    sc__ew_kind_t kind;
    double threshold;       /* EW_LOOKUP */
    sc_lookup_then_fn then; /* EW_LOOKUP: the proxy's continuation, or NULL */
    void *then_arg;
    sc_buf_t response; /* EW_STORE_DETACHED: owned */
    sc_store_done_fn store_done;
    void *store_arg;
    const sc_model_t *model; /* the namespace's; lives as long as the server */
} sc__embed_wait_t;

/* Hands 'req' to model 'm''s embedding workers, with what waits for it as in
 * 'how' (kind, threshold, continuation; its response buffer is taken over on
 * success); the connection 'c' (NULL for a detached store) waits. A text the
 * model is measured to embed within --embed-inline-us is embedded here and
 * the request carried on before this returns (as if it had no text to
 * embed: the continuation may run, the answer go out). Returns -1
 * (nothing queued, 'req' and 'how' untouched) when the queue is full. */
int sc__embed_async(sc_worker_t *w, sc_conn_t *c, const sc_model_t *m, sc_request_t *req,
                    sc__embed_wait_t *how);

/* Builds the entry (TTL, response, vector) and queues its write; the reply
 * goes out when the commit is durable. Does not free 'req'. */
void sc__store_commit(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, const char *embedder);
/* The same for a write no connection waits for: 'response' is the entry's
 * response JSON (borrowed); 'done' (may be NULL) hears the result on the
 * writer thread, or here when the write could not be queued. */
void sc__store_detached(sc_worker_t *w, sc_request_t *req, const char *embedder,
                        const sc_buf_t *response, sc_store_done_fn done, void *arg);

#endif
