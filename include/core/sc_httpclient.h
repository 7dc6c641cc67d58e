/* sc_httpclient.h -- outbound HTTP for semcached (the remote embedder,
 * re-inference and webhooks, and the caching proxy's upstream calls):
 * libcurl's multi interface driven by a libuv loop on the client's own thread,
 * so any number of transfers wait on sockets without tying up a thread each.
 * A cap bounds transfers in flight, a bounded queue holds the rest. A call is
 * either buffered (the body lands in 'response') or streamed ('on_data' sees
 * bytes as they arrive, with pause/resume for flow control). */
#ifndef SC_HTTPCLIENT_H
#define SC_HTTPCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"
#include "sc_log.h"

/* Limits. A buffered body over SC_HTTP_MAX_RESPONSE ends the call with
 * SC_ETOOBIG; a streamed body has no size cap (only the timeouts). A final
 * response header block with more than SC_HTTP_MAX_RESP_HEADERS fields or
 * SC_HTTP_MAX_RESP_HEADER_BYTES bytes of names and values ends it with
 * SC_EREMOTE. */
#define SC_HTTP_MAX_RESPONSE (64u << 20)
#define SC_HTTP_MAX_RESP_HEADERS 128
#define SC_HTTP_MAX_RESP_HEADER_BYTES (32u << 10)
#define SC_HTTP_ERROR_TEXT 256 /* = CURL_ERROR_SIZE */

typedef struct sc_http_client_s sc_http_client_t;
typedef struct sc_http_call_s sc_http_call_t;

/* A call is owned by the caller, who must keep it (and everything it points
 * to) alive and unmodified from sc_http_client_submit until 'done' has been
 * called, and must not pass it to sc_http_client_cancel/pause/resume after
 * freeing it. Zero it (memset or `= {0}`) before filling it in the first time;
 * after 'done' it may be cleared and submitted again. */
struct sc_http_call_s {
    /* ---- request (read by the client until 'done') --------------------- */
    char url[1024]; /* http:// or https:// only */
    /* "" (legacy form): POST when 'body' is set (len or data non-zero), GET
     * otherwise, plus "Content-Type: application/json" unless 'headers' has a
     * Content-Type. Any other value (an HTTP token: "GET", "POST", "DELETE",
     * "PUT", "PATCH", ...) is sent as is, with only the headers listed below.
     * POST, PUT and PATCH always carry a body (Content-Length: 0 when empty). */
    char method[16];
    sc_buf_t body;  /* owned: request body; sent with Content-Length */
    char auth[512]; /* "Authorization: ..." header value, or "" */
    /* owned: extra request headers, filled by sc_http_call_add_header() only
     * (one curl header line each, '\n'-separated). The client sends Host, Content-Length (with
     * a body), Authorization (from 'auth'), these lines and, in the legacy
     * form only, the default Content-Type -- nothing else: no Accept, no
     * Expect: 100-continue, no Accept-Encoding unless listed here (and then
     * the encoded bytes are handed over as received, not decoded). */
    sc_buf_t headers;
    /* Timeouts run from the start of the transfer (time waiting in the
     * client's queue is not counted). */
    long timeout_ms;         /* whole transfer; <= 0 means 2000 */
    long connect_timeout_ms; /* TCP + TLS set-up; 0 = bounded by timeout_ms */
    /* No response byte (header or body) for this long ends the call with
     * SC_ETIMEDOUT; counted from the start of the transfer, suspended while
     * the call is paused. 0 = no idle limit. */
    long idle_timeout_ms;
    /* A call paused (see sc_http_client_pause) for longer than this ends with
     * SC_ETIMEDOUT: a stalled downstream cannot hold an upstream connection
     * open for ever. 0 = bounded by timeout_ms only. */
    long pause_timeout_ms;

    /* ---- callbacks: all on the client thread, none may block ----------- */
    /* Optional. Called once, when the final (non-1xx) response header block
     * is complete and before any body byte: 'status', 'http_version' and the
     * response headers (sc_http_call_header*) are then readable. Return 0 to
     * go on or a negative SC_E* to end the call with that error. Not called
     * if the call fails before a header block arrives. */
    int (*on_headers)(sc_http_call_t *call);
    /* Optional. When set, the response body is not buffered: each piece is
     * handed over as it arrives ('p' lives for the duration of the call
     * only), for any status. Return 0 to go on or a negative SC_E* to end the
     * call with that error. */
    int (*on_data)(sc_http_call_t *call, const char *p, size_t n);
    /* Required. Called exactly once per accepted submit, when the call ends
     * (success, error, timeout, cancel, client destroy). After it returns the
     * client never touches the call again, so it may free it. */
    void (*done)(sc_http_call_t *call);
    void *data; /* the caller's; the client never reads it */

    /* ---- results (written by the client; read them in the callbacks or
     * after 'done') ------------------------------------------------------- */
    long status; /* HTTP status, 0 if no answer */
    /* 0, SC_ETIMEDOUT (total, connect, idle or pause timeout), SC_ECANCELED
     * (sc_http_client_cancel), SC_ECLOSED (client destroyed), SC_EREMOTE
     * (connection refused, DNS, TLS, reset, malformed answer), SC_ETOOBIG
     * (buffered body over the cap), SC_EINVAL (bad URL), SC_ENOMEM, or what a
     * callback returned. A non-2xx status is not an error. */
    int error;
    char error_text[SC_HTTP_ERROR_TEXT]; /* why, for logs ("" when error is 0) */
    int http_version;                    /* 10, 11, 20 or 30 once headers arrive; else 0 */
    sc_buf_t response;                   /* owned: the buffered body (no on_data) */
    sc_buf_t resp_headers;               /* owned: internal storage; use the accessors */
    size_t resp_header_count;            /* fields in the final header block */
    uint64_t body_bytes;                 /* response body bytes received (both modes) */
    /* Microseconds from the start of the transfer to the first response
     * byte, and to the end; 0 when the call never started. */
    int64_t ttfb_us, total_us;

    /* ---- internal: owned by the client while the call is submitted ------ */
    void *priv;                              /* the running transfer */
    void *priv_waiter;                       /* sc_http_client_call's wait */
    int priv_state, priv_cancel, priv_pause; /* guarded by the client's lock */
    sc_http_call_t *next;                    /* queue link */
    sc_http_call_t *run_prev, *run_next;     /* in-flight list (client thread) */
};

typedef struct {
    int max_inflight;          /* transfers at once (at least 1) */
    size_t max_queue;          /* submitted calls waiting beyond those */
    long max_host_connections; /* CURLMOPT_MAX_HOST_CONNECTIONS; 0 = no cap */
    long max_connections;      /* connection cache size; 0 = curl's default */
} sc_http_client_opts_t;

/* Starts the client thread. 'log' is borrowed and must outlive the client.
 * Connections are kept and reused across calls (HTTP/1.1 keep-alive, HTTP/2
 * multiplexing when a TLS server offers it). */
int sc_http_client_create_opts(sc_http_client_t **out, const sc_http_client_opts_t *opts,
                               sc_log_t *log);
/* Same with only the two limits. */
int sc_http_client_create(sc_http_client_t **out, int max_inflight, size_t max_queue,
                          sc_log_t *log);
/* Queues 'call' (any thread; also from a callback on the client thread).
 * Resets its results. SC_EBUSY when the queue is full, SC_ECLOSED when
 * stopping, SC_EINVAL for a bad method; 'done' is then not called. */
int sc_http_client_submit(sc_http_client_t *c, sc_http_call_t *call);
/* Runs 'call' and waits for it (for callers on worker threads, never on the
 * client thread). Uses call->done and restores it; returns call->error or the
 * submit error. */
int sc_http_client_call(sc_http_client_t *c, sc_http_call_t *call);
/* From any thread: ends a queued or running call with SC_ECANCELED ('done'
 * still comes, once, on the client thread, soon). Returns 0 when the call was
 * queued or running -- its 'done' then reports SC_ECANCELED even if the
 * transfer was finishing at that moment -- or SC_ENOTFOUND when it had
 * already ended (or was never submitted): nothing happens. */
int sc_http_client_cancel(sc_http_client_t *c, sc_http_call_t *call);
/* Flow control for streamed calls, from any thread (also from on_data).
 * pause: from the next arriving piece on, on_data is not called and curl
 * stops reading the socket (so neither side buffers more than one piece);
 * resume: delivery continues, in order, with nothing lost. Call both from
 * the same thread (typically the consumer's event loop, on its own buffer's
 * high and low marks) so they cannot cross. SC_ENOTFOUND when the call is not
 * queued or running. */
int sc_http_client_pause(sc_http_client_t *c, sc_http_call_t *call);
int sc_http_client_resume(sc_http_client_t *c, sc_http_call_t *call);
/* Ends queued and running calls with SC_ECLOSED (each 'done' once), then
 * joins the thread. Not from the client thread, and not while another thread
 * may still submit, cancel, pause or resume. */
void sc_http_client_destroy(sc_http_client_t *c);

/* Adds a request header; 'name' and 'value' are copied (lengths given, or
 * NUL-terminated in the second form). SC_EINVAL when the name is not an HTTP
 * token or the value holds CR, LF or NUL. Framing and hop-by-hop headers are
 * the client's business and are skipped (0 is returned): Host,
 * Content-Length, Transfer-Encoding, Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Upgrade, Expect. */
int sc_http_call_add_header_n(sc_http_call_t *call, const char *name, size_t name_len,
                              const char *value, size_t value_len);
int sc_http_call_add_header(sc_http_call_t *call, const char *name, const char *value);
/* Response headers, readable from on_headers until the call is cleared or
 * submitted again; the strings are owned by the call. Names are as the server
 * sent them (HTTP/2 sends lower case), values trimmed. */
/* The first value of 'name' (case-insensitive), or NULL. */
const char *sc_http_call_header(const sc_http_call_t *call, const char *name);
/* Iterates the fields in order: start with *pos = 0; 0 and the next field,
 * or SC_ENOTFOUND after the last. */
int sc_http_call_header_next(const sc_http_call_t *call, size_t *pos, const char **name,
                             const char **value);
/* Frees a call's owned buffers (not the call). */
void sc_http_call_clear(sc_http_call_t *call);

#endif
