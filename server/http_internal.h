/* http_internal.h -- the connection and the parser state, private to the HTTP
 * layer's two files: http_request.c (parser callbacks, the header store, the
 * request handed to the handler) and http.c (sockets, output, streaming,
 * timers, lifecycle). Nothing outside them includes this: handlers reach a
 * connection only through http.h. */
#ifndef SC_HTTP_INTERNAL_H
#define SC_HTTP_INTERNAL_H

#include <http_parser.h>

#include "http.h"

struct sc_http_loop_s {
    uv_loop_t *loop;
    sc_http_limits_t lim;
    sc_http_handler_t h;
    _Atomic int64_t *n_conns;   /* open connections over every loop (shared) */
    atomic_int n_open;          /* connections this loop owns or is being handed */
    sc_conn_t *conns;           /* open connections (loop thread) */
    int stopping;               /* draining: no new connection, no more reading */
    uint64_t drain_deadline_ns; /* connections still open then are closed */
};

/* A header of the request being parsed, as offsets into 'hbuf' (which may
 * move while it grows). */
typedef struct {
    size_t name_off, name_len, val_off, val_len;
} sc__hdr_ref_t;

struct sc_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    int timer_idle;        /* the timer runs for the idle timeout, from 'idle_from_ms' */
    uint64_t idle_from_ms; /* uv_now when the connection last fell idle */
    sc_http_loop_t *hl;
    sc_conn_t *prev, *next; /* the loop's connection list */
    int refs;               /* handles open + holders + writes in flight */
    http_parser parser;
    sc_buf_t in; /* received, not yet parsed bytes from in_off */
    size_t in_off;
    /* the request being parsed */
    sc_buf_t url;
    sc_buf_t body;
    sc_buf_t hbuf;        /* header names and values, each NUL-terminated */
    sc__hdr_ref_t *hrefs; /* [n_hrefs] of 'cap_hrefs' */
    size_t n_hrefs, cap_hrefs;
    sc_http_header_t *hviews; /* slices of hrefs, built when the request is handed over */
    size_t cap_hviews;
    int in_value; /* the last header's value has begun */
    size_t header_bytes;
    int content_type_json; /* absent or JSON (set at the end of the headers) */
    int send_continue;     /* answer Expect: 100-continue before the body */
    int in_message;        /* first byte seen, message not complete */
    int request_ready;     /* message complete, parser paused */
    int head_read;         /* the request line and headers are complete */
    int err_status;        /* set by a callback to fail the request */
    const char *err_detail;
    int keep_alive;
    uint64_t request_started_ns; /* first byte of the current request */
    /* the request being answered */
    int tag;             /* the handler's label for on_response, or -1 */
    uint64_t started_ns; /* when it was handed over (durations) */
    int head;            /* a HEAD request: a stream sends no body */
    int version_minor;
    int busy;      /* a handler holds the request */
    int responded; /* its response is complete */
    int streaming; /* a stream is open: 1 chunked, 2 close-delimited */
    int stream_status;
    int in_call;             /* inside an sc_conn_* call (no gone callback then) */
    sc_conn_gone_fn gone_cb; /* for the held request, or NULL */
    void *gone_arg;
    int gone; /* SC_CONN_* bits */
    int gone_told;
    /* output and state */
    int closing;
    int close_after_write;
    int reading;
    sc_buf_t out;          /* responses not yet handed to libuv */
    sc_buf_t out_inflight; /* owned by libuv until write_cb */
    int writing;
    uv_write_t wreq;
};

/* http_parser callbacks filling the fields above (http_request.c). */
extern const http_parser_settings sc__http_settings;
/* Fills 'req' from the parsed message; SC_EINVAL for a malformed target,
 * SC_ENOMEM. The slices stay valid until the next message begins. */
int sc__http_request_build(sc_conn_t *c, sc_http_request_t *req);
/* Frees the request buffers of 'c'. */
void sc__http_request_free(sc_conn_t *c);

#endif
