/* sc_httpclient.h -- outbound HTTP for semcached (the remote embedder, and
 * upstream re-inference later): libcurl's multi interface driven by a libuv
 * loop on the client's own thread, so any number of transfers wait on sockets
 * without tying up a thread each. A cap bounds transfers in flight, a bounded
 * queue holds the rest, and every call has a timeout. */
#ifndef SC_HTTPCLIENT_H
#define SC_HTTPCLIENT_H

#include <stddef.h>

#include "sc_common.h"
#include "sc_log.h"

typedef struct sc_http_client_s sc_http_client_t;

typedef struct sc_http_call_s sc_http_call_t;
struct sc_http_call_s {
    char url[1024];
    sc_buf_t body;            /* owned: request body (POST); empty = GET */
    char auth[512];           /* "Authorization: ..." header value, or "" */
    long timeout_ms;
    long status;              /* out: HTTP status, 0 if no answer */
    int error;                /* out: 0, SC_ETIMEDOUT, or another SC_E* */
    sc_buf_t response;        /* out, owned: response body (capped at 64 MiB) */
    /* Called on the client thread when the call ends; must not block. */
    void (*done)(sc_http_call_t *call);
    void *data;
    void *priv_easy;          /* internal */
    void *priv_hdrs;
    sc_http_call_t *next;     /* queue link */
    sc_http_call_t *run_prev, *run_next; /* in-flight list (client thread) */
};

int sc_http_client_create(sc_http_client_t **out, int max_inflight, size_t max_queue,
                          sc_log_t *log);
/* Queues 'call'. SC_EBUSY when the queue is full, SC_ECLOSED when stopping;
 * 'done' is then not called. */
int sc_http_client_submit(sc_http_client_t *c, sc_http_call_t *call);
/* Runs 'call' and waits for it (for callers on worker threads). */
int sc_http_client_call(sc_http_client_t *c, sc_http_call_t *call);
/* Ends queued and running calls with SC_ECLOSED, then joins the thread. */
void sc_http_client_destroy(sc_http_client_t *c);
/* Frees a call's owned buffers (not the call). */
void sc_http_call_clear(sc_http_call_t *call);

#endif
