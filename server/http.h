/* http.h -- the HTTP/1.1 layer of the server: connections on a libuv loop,
 * requests parsed by http_parser, responses written in request order. It
 * knows no endpoint (STYLE 21, h2o's on_req): the process gives each loop a
 * handler at start-up and every complete request, whatever its method and
 * path, goes to it. Handlers see the request struct and answer through the
 * sc_conn_* calls below; the connection and the parser state stay private to
 * http.c and http_request.c. Everything here runs on the loop's thread. */
#ifndef SC_HTTP_H
#define SC_HTTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "sc_common.h"

typedef struct sc_http_loop_s sc_http_loop_t;
typedef struct sc_conn_s sc_conn_t;

/* One request header. 'name' is lower-cased, 'value' has its surrounding
 * blanks trimmed; both are followed by a NUL byte (usable as C strings). */
typedef struct {
    sc_slice_t name;
    sc_slice_t value;
} sc_http_header_t;

/* The request as a handler sees it. Every slice points into the connection's
 * buffers and stays valid until the response is complete (sc_conn_respond or
 * sc_conn_stream_end), even when the handler answers asynchronously: the
 * connection reads no further request meanwhile. */
typedef struct {
    int method;        /* enum http_method (http_parser.h): any method */
    int version_minor; /* HTTP/1.x */
    sc_slice_t target; /* the raw request-target (path and query) */
    sc_slice_t path;   /* without the query string */
    sc_slice_t query;
    sc_slice_t body;                 /* de-chunked, at most --max-body-bytes */
    int content_type_json;           /* (last) Content-Type absent, application/json or +json */
    const sc_http_header_t *headers; /* every header, in arrival order */
    size_t n_headers;
    uint64_t started_ns; /* monotonic time the request was complete */
} sc_http_request_t;

/* The value of the first header named 'name' (compared case-insensitively).
 * An absent header gives {NULL, 0}; a present empty one {"", 0}. */
sc_slice_t sc_http_request_header(const sc_http_request_t *r, const char *name);
/* Header 'i' in arrival order, or NULL when i >= r->n_headers: the iterator
 * a pass-through uses to copy every header. */
const sc_http_header_t *sc_http_request_header_at(const sc_http_request_t *r, size_t i);
/* "GET", "POST", ... for an enum http_method value (static string). */
const char *sc_http_method_name(int method);
/* The reason phrase of 'status' ("Not Found"), "Unknown" for others. */
const char *sc_http_reason(int status);

/* What the process gives each loop at start-up. 'on_request' must answer
 * every request exactly once: at once with sc_conn_respond (or a stream it
 * ends), or later after sc_conn_hold. 'on_response' (may be NULL) is told of
 * every response, the HTTP layer's own (400, 408, 413, 431, 503...) too, with
 * the tag the handler set (-1 when none); it is where request metrics go. */
typedef struct {
    void (*on_request)(void *ctx, sc_conn_t *c, const sc_http_request_t *req);
    void (*on_response)(void *ctx, int tag, int status, uint64_t dur_ns);
    void *ctx; /* passed back; must outlive the loop */
    /* May be NULL: a request the layer refuses once its head was read (411,
     * 413, 505), offered before the layer's own problem+json so that a
     * route can answer in its API's shape. 'req' has the method, path and
     * headers, no body; 'detail' is static. Returns 1 when it answered with
     * sc_conn_respond (at once), 0 for the default. The connection closes
     * after the answer either way. */
    int (*on_refused)(void *ctx, sc_conn_t *c, const sc_http_request_t *req, int status,
                      const char *detail);
} sc_http_handler_t;

typedef struct {
    size_t max_header_bytes;     /* request line plus headers; more is 431 */
    size_t max_body_bytes;       /* more is 413 */
    uint64_t request_timeout_ms; /* first byte to complete request; then 408 */
    uint64_t idle_timeout_ms;    /* between requests; then the connection closes */
    int64_t max_connections;     /* over every loop sharing 'n_conns'; more get 503 */
} sc_http_limits_t;

/* Creates the HTTP side of loop 'loop'. 'lim' and 'h' are copied. 'n_conns'
 * counts open connections across every loop sharing it (for
 * max_connections); it must outlive the loop object. */
int sc_http_loop_create(sc_http_loop_t **out, uv_loop_t *loop, const sc_http_limits_t *lim,
                        const sc_http_handler_t *h, _Atomic int64_t *n_conns);
/* Frees the loop object; every connection must be closed (uv_run returned). */
void sc_http_loop_destroy(sc_http_loop_t *hl);
/* Accepts a connection from 'listener' onto this loop (counted at once). */
void sc_http_accept(sc_http_loop_t *hl, uv_stream_t *listener);
/* Counts 'n' connections being handed to this loop from another thread (+1
 * before the hand-over, -1 to take it back when it failed); sc_http_adopt
 * consumes the count. Callable from any thread. */
void sc_http_loop_expect(sc_http_loop_t *hl, int n);
/* Takes over connected socket 'fd' (already counted by sc_http_loop_expect).
 * Closes 'fd' when the loop is draining. Loop thread. */
void sc_http_adopt(sc_http_loop_t *hl, int fd);
/* Connections this loop owns or is being handed; any thread. */
int sc_http_loop_conns(const sc_http_loop_t *hl);
/* Stops reading everywhere: each connection answers the requests it has
 * received (pipelined ones too), then closes; at 'deadline_ns' (monotonic)
 * whatever is still open is closed. New connections are refused. */
void sc_http_drain(sc_http_loop_t *hl, uint64_t deadline_ns);

/* ---- answering ----------------------------------------------------------- */

/* Labels the current request for on_response (a metrics endpoint); the tag
 * is reset to -1 when its response is complete. */
void sc_conn_set_tag(sc_conn_t *c, int tag);
/* Queues a whole response (in request order) and completes the request; if
 * the handler had taken the request asynchronously, parsing resumes.
 * 'extra_headers' is NULL or CRLF-terminated header lines; 'body' is copied. */
void sc_conn_respond(sc_conn_t *c, int status, const char *content_type, const char *extra_headers,
                     const char *body, size_t len);
/* An application/problem+json response: {"type":"urn:semcached:problem:<slug>",...}. */
void sc_conn_problem(sc_conn_t *c, int status, const char *slug, const char *detail);

/* A streamed response: the status line and headers now, the body in any
 * number of writes, Transfer-Encoding: chunked on HTTP/1.1 (close-delimited
 * on HTTP/1.0; no body at all for HEAD). Requests pipelined behind a streamed
 * one wait until it ends. After stream_begin the handler must call
 * stream_end exactly once, even when a write failed. A handler that returns
 * from on_request before stream_end must have called sc_conn_hold.
 * Each returns 0, SC_ECLOSED once the client is gone (the bytes are dropped),
 * or SC_EINVAL when called out of order. */
int sc_conn_stream_begin(sc_conn_t *c, int status, const char *content_type,
                         const char *extra_headers);
int sc_conn_stream_write(sc_conn_t *c, const void *data, size_t len);
int sc_conn_stream_end(sc_conn_t *c);
/* Instead of stream_end when the source failed mid-way (a proxied upstream
 * cut off): the bytes written so far go out, then the connection closes
 * without the terminating chunk, so the client sees the cut rather than a
 * complete body. 0, or SC_EINVAL when no stream is open. */
int sc_conn_stream_abort(sc_conn_t *c);
/* Response bytes queued but not yet taken by the kernel: a streaming handler
 * may slow its source while this is large. */
size_t sc_conn_out_pending(const sc_conn_t *c);

/* ---- asynchronous handlers ---------------------------------------------- */

/* The handler takes the request: the connection stays allocated (one
 * reference) and reads no further request until the response is complete.
 * Pair with exactly one sc_conn_release, after answering. */
void sc_conn_hold(sc_conn_t *c);
void sc_conn_release(sc_conn_t *c);

/* Why a held request's client is gone (bit set). */
enum {
    SC_CONN_HUNG_UP = 1, /* it sent EOF or its read side failed (a half-closed
                          * client may still read the answer) */
    SC_CONN_CLOSED = 2,  /* the connection is closing: nothing more can be sent */
};
/* The SC_CONN_* bits so far (0 while the client is there). */
int sc_conn_gone(const sc_conn_t *c);
typedef void (*sc_conn_gone_fn)(sc_conn_t *c, void *arg, int why);
/* Asks to be told, once, when the client of the held request hangs up or the
 * connection closes ('why' has the SC_CONN_* bits). Registering makes the
 * connection watch its socket while the request is held (input is buffered,
 * not parsed). Called on the loop thread, never from inside an sc_conn_* call
 * (such a call returns SC_ECLOSED instead), and never after the response is
 * complete. The connection stays valid: the handler still answers (the bytes
 * go nowhere) and releases. */
void sc_conn_on_gone(sc_conn_t *c, sc_conn_gone_fn cb, void *arg);

#endif
