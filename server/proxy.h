/* proxy.h -- the transparent OpenAI / Anthropic proxy as the rest of the
 * server sees it: its state beside the process context (the upstream HTTP
 * client, the tenant secret, the keys read from the environment, counters),
 * the 401 it answers in the provider's own error shape, and the label names
 * /metrics renders. Its route handlers are declared in api.h with the
 * others; how a request is served is in proxy*.c (see proxy_internal.h). */
#ifndef SC_PROXY_H
#define SC_PROXY_H

#include "api.h"

typedef struct sc_proxy_s sc_proxy_t;

/* The "api" label of semcached_proxy_requests_total and the upstream
 * histograms (SC_METRICS_PROXY_APIS values). */
typedef enum {
    SC_PXA_CHAT,
    SC_PXA_RESPONSES,
    SC_PXA_MESSAGES,
    SC_PXA_EMBEDDINGS,
    SC_PXA_OTHER
} sc_pxa_t;
extern const char *const sc_proxy_api_names[SC_METRICS_PROXY_APIS];

/* The "result" label (SC_METRICS_PROXY_RESULTS values): served from the
 * cache, forwarded and stored, forwarded past the cache on the client's
 * Cache-Control, forwarded because the request is not cacheable (or the
 * path is not a cached API), or answered with an error of the proxy's own
 * (upstream unreachable or timed out, a malformed request, no token). */
typedef enum { SC_PXR_HIT, SC_PXR_MISS, SC_PXR_BYPASS, SC_PXR_PASSTHROUGH, SC_PXR_ERROR } sc_pxr_t;
extern const char *const sc_proxy_result_names[SC_METRICS_PROXY_RESULTS];

/* Why the cache side let a request through as a plain proxy would
 * (semcached_proxy_fallbacks_total{reason}). */
typedef enum {
    SC_PXF_STORE_FULL,  /* the store (or namespace) is full, or the entry too large */
    SC_PXF_WRITE_QUEUE, /* the store's write queue was full */
    SC_PXF_STORE_ERROR, /* any other failed write */
    SC_PXF_SEMANTIC,    /* exact-only: embedding or search queue full, timeout, index not ready */
    SC_PXF_ENTRY,       /* a stored entry could not be read back: served as a miss */
    SC_PXF_TOO_LARGE,   /* the answer outgrew --proxy-record-max-bytes: relayed, not stored */
    SC_PXF_NOMEM,       /* out of memory on the cache side */
    SC_PXF_COUNT
} sc_pxf_t;
extern const char *const sc_proxy_fallback_names[SC_PXF_COUNT];

/* Sets the proxy up for 'ctx' (whose store is open): creates or reads the
 * tenant secret in the data directory, reads the upstream key variables
 * once, starts the upstream client. */
int sc_proxy_create(sc_proxy_t **out, sc_ctx_t *ctx);
/* Ends what is still in flight and frees; after the event loops stopped. */
void sc_proxy_destroy(sc_proxy_t *p);

/* Answers 'status' (401) for a proxied route whose X-Semcached-Token is
 * missing or wrong, in the error shape of the API 'req' is for. */
void sc_proxy_deny(sc_conn_t *c, const sc_http_request_t *req, int status);
/* Answers 'status' with 'message' for a proxied request the HTTP layer
 * refused (413 for a body over --max-body-bytes: Anthropic's
 * request_too_large), in the error shape of the API 'req' is for. */
void sc_proxy_refuse(sc_conn_t *c, const sc_http_request_t *req, int status, const char *message);

/* The fallback counters, for /metrics. */
void sc_proxy_fallbacks(const sc_proxy_t *p, uint64_t out[SC_PXF_COUNT]);
/* Upstream transfers paused so far because a client read slowly. */
uint64_t sc_proxy_pauses(const sc_proxy_t *p);

#endif
