/* httpclient_internal.h -- what the HTTP client's two halves share:
 * httpclient.c (the loop, queue and cross-thread controls) and httpcall.c
 * (one call's curl set-up and response parsing). Client thread only. */
#ifndef SC_HTTPCLIENT_INTERNAL_H
#define SC_HTTPCLIENT_INTERNAL_H

#include <curl/curl.h>
#include <uv.h>

#include "sc_httpclient.h"

/* One running transfer (call->priv). Freed when its watchdog handle has
 * closed, which may be after the call was handed back ('call' is then NULL). */
typedef struct {
    sc_http_client_t *c;
    sc_http_call_t *call;
    CURL *easy;              /* owned */
    struct curl_slist *hdrs; /* owned: request headers */
    uv_timer_t watchdog;     /* idle and pause timeouts */
    uint64_t last_rx_ms;     /* loop time of the last byte received */
    uint64_t paused_at_ms;
    int paused;       /* curl holds a body piece for us */
    int headers_done; /* the final header block was delivered */
    int abort_error;  /* why a callback failed the transfer */
    char why[128];
} sc_httpc_xfer_t;

/* httpcall.c */
/* SC_EINVAL for a method that is not a token or an unterminated URL. */
int sc_httpc_check_request(const sc_http_call_t *call);
/* Creates x's easy handle and header list for 'call'; SC_ENOMEM. */
int sc_httpc_xfer_setup(sc_httpc_xfer_t *x, sc_http_client_t *c, sc_http_call_t *call);
/* Frees the easy handle and header list (after removal from the multi). */
void sc_httpc_xfer_release(sc_httpc_xfer_t *x);
int sc_httpc_map_curl(CURLcode rc);

/* httpclient.c */
uv_loop_t *sc_httpc_loop(sc_http_client_t *c);
/* Whether 'call' is asked to pause (reads the flag under the client's lock). */
int sc_httpc_hold(sc_http_client_t *c, sc_http_call_t *call);
/* (Re)starts x's watchdog for its next idle or pause deadline. */
void sc_httpc_arm_watchdog(sc_httpc_xfer_t *x);

#endif
