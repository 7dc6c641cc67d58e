/* http.c -- HTTP/1.1 connections on a libuv loop: reading, handing complete
 * requests to the loop's handler, writing responses, streaming, timeouts.
 * The parser is paused at the end of every message, so pipelined requests are
 * handled strictly one after another and their responses leave in order; a
 * handler that holds a request (an async store, a stream) stops parsing until
 * it answers. A response is written straight to the socket when it fits; what
 * does not is handed to uv_write, and responses produced while that write is
 * in flight are coalesced into the next one. One timer per connection enforces
 * the idle and request timeouts, so a slow client cannot hold a loop. */
#define _GNU_SOURCE
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK 65536
/* Past this much unsent output, stop reading until the client catches up. */
#define OUT_HIGH_WATER (8u << 20)

static void conn_process(sc_conn_t *c);
static void conn_close(sc_conn_t *c);
static void conn_flush(sc_conn_t *c);
static void conn_arm_timer(sc_conn_t *c);
static void update_reading(sc_conn_t *c);

/* "Close once the answers are out" applies when no answer is still owed: a
 * held request or an open stream will add more. */
static int may_close(const sc_conn_t *c)
{
    return c->close_after_write && !c->busy && !c->streaming;
}

/* ---- output ----------------------------------------------------------- */

static void on_write(uv_write_t *wr, int status)
{
    sc_conn_t *c = wr->data;
    c->writing = 0;
    sc_buf_reset(&c->out_inflight);
    if (status < 0) {
        conn_close(c);
        sc_conn_release(c); /* the write's reference */
        return;
    }
    if (c->out.len) {
        conn_flush(c);
    } else if (may_close(c)) {
        conn_close(c);
    } else if (!c->reading && !c->busy && !c->closing) {
        conn_process(c); /* output drained: resume reading */
    }
    sc_conn_release(c);
}

static void conn_flush(sc_conn_t *c)
{
    if (c->writing || c->closing)
        return;
    if (!c->out.len) {
        if (may_close(c))
            conn_close(c);
        return;
    }
    /* Most answers fit in the socket's send buffer: write them now. Only the
     * rest goes through uv_write, whose completion is a callback a loop
     * iteration later and, once libuv's write queue drains, an epoll_ctl
     * (libuv re-arms the watcher without POLLOUT): one syscall in four on an
     * exact hit. */
    uv_buf_t now = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    size_t written = n > 0 ? (size_t)n : 0;
    if (written == c->out.len) {
        sc_buf_reset(&c->out);
        if (may_close(c))
            conn_close(c);
        return;
    }
    sc_buf_t t = c->out_inflight;
    c->out_inflight = c->out;
    c->out = t;
    sc_buf_reset(&c->out);
    uv_buf_t b =
        uv_buf_init(c->out_inflight.data + written, (unsigned)(c->out_inflight.len - written));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) == 0) {
        c->writing = 1;
        c->refs++;
    } else {
        conn_close(c);
    }
}

/* Draining: the last answer to what was received closes the connection. */
static void decide_close(sc_conn_t *c)
{
    if (!c->keep_alive || (c->hl->stopping && c->in_off >= c->in.len))
        c->close_after_write = 1;
}

/* The status line and Content-Type, which every response carries. */
static void put_head(sc_conn_t *c, int status, const char *content_type)
{
    /* Assembled by hand: this runs for every response. */
    sc_buf_t *o = &c->out;
    if (status == 200) {
        SC_BUF_LIT(o, "HTTP/1.1 200 OK\r\nContent-Type: ");
    } else {
        SC_BUF_LIT(o, "HTTP/1.1 ");
        sc_buf_u64(o, (uint64_t)status);
        SC_BUF_LIT(o, " ");
        sc_buf_puts(o, sc_http_reason(status));
        SC_BUF_LIT(o, "\r\nContent-Type: ");
    }
    sc_buf_puts(o, content_type);
    SC_BUF_LIT(o, "\r\n");
}

/* The request's response is complete: tell on_response, and if a handler
 * held the request, flush and carry on with pipelined requests. */
static void response_done(sc_conn_t *c, int status)
{
    const sc_http_handler_t *h = &c->hl->h;
    if (h->on_response)
        h->on_response(h->ctx, c->tag, status, sc_mono_ns() - c->started_ns);
    c->tag = -1;
    c->responded = 1;
    c->streaming = 0;
    c->gone_cb = NULL;
    if (c->busy) {
        c->busy = 0;
        conn_flush(c);
        if (!c->close_after_write)
            conn_process(c);
    }
}

void sc_conn_set_tag(sc_conn_t *c, int tag)
{
    c->tag = tag;
}

void sc_conn_respond(sc_conn_t *c, int status, const char *content_type, const char *extra_headers,
                     const char *body, size_t len)
{
    if (c->responded || c->streaming)
        return; /* one response per request */
    decide_close(c);
    if (!c->closing) {
        sc_buf_reserve(&c->out, len + 256);
        put_head(c, status, content_type);
        SC_BUF_LIT(&c->out, "Content-Length: ");
        sc_buf_u64(&c->out, len);
        SC_BUF_LIT(&c->out, "\r\n");
        if (extra_headers)
            sc_buf_puts(&c->out, extra_headers);
        if (c->close_after_write)
            SC_BUF_LIT(&c->out, "Connection: close\r\n\r\n");
        else
            SC_BUF_LIT(&c->out, "\r\n");
        sc_buf_append(&c->out, body, len);
    }
    response_done(c, status);
}

void sc_conn_problem(sc_conn_t *c, int status, const char *slug, const char *detail)
{
    sc_buf_t b = {0};
    sc_buf_printf(
        &b,
        "{\"type\":\"urn:semcached:problem:%s\",\"title\":\"%s\",\"status\":%d,\"detail\":", slug,
        sc_http_reason(status), status);
    sc_buf_json_str(&b, detail, strlen(detail));
    sc_buf_puts(&b, "}");
    sc_conn_respond(c, status, "application/problem+json", NULL, b.data ? b.data : "", b.len);
    sc_buf_free(&b);
}

/* ---- streamed responses ----------------------------------------------- */

int sc_conn_stream_begin(sc_conn_t *c, int status, const char *content_type,
                         const char *extra_headers)
{
    if (c->responded || c->streaming)
        return SC_EINVAL;
    decide_close(c);
    /* HTTP/1.0 has no chunked encoding: the end of the body is the close. */
    c->streaming = c->version_minor >= 1 ? 1 : 2;
    if (c->streaming == 2)
        c->close_after_write = 1;
    c->stream_status = status;
    if (c->closing)
        return SC_ECLOSED;
    put_head(c, status, content_type);
    if (c->streaming == 1)
        sc_buf_puts(&c->out, "Transfer-Encoding: chunked\r\n");
    if (extra_headers)
        sc_buf_puts(&c->out, extra_headers);
    sc_buf_puts(&c->out, c->close_after_write ? "Connection: close\r\n\r\n" : "\r\n");
    c->in_call = 1;
    conn_flush(c);
    c->in_call = 0;
    return c->closing ? SC_ECLOSED : 0;
}

int sc_conn_stream_write(sc_conn_t *c, const void *data, size_t len)
{
    if (!c->streaming)
        return SC_EINVAL;
    if (c->closing)
        return SC_ECLOSED;
    if (!len || c->head)
        return 0; /* an empty chunk would end the stream */
    if (c->streaming == 1) {
        char size[24];
        int n = snprintf(size, sizeof(size), "%zx\r\n", len);
        sc_buf_append(&c->out, size, (size_t)n);
        sc_buf_append(&c->out, data, len);
        sc_buf_append(&c->out, "\r\n", 2);
    } else {
        sc_buf_append(&c->out, data, len);
    }
    c->in_call = 1;
    conn_flush(c);
    c->in_call = 0;
    return c->closing ? SC_ECLOSED : 0;
}

int sc_conn_stream_end(sc_conn_t *c)
{
    if (!c->streaming)
        return SC_EINVAL;
    int rc = c->closing ? SC_ECLOSED : 0;
    if (!rc && c->streaming == 1 && !c->head)
        sc_buf_append(&c->out, "0\r\n\r\n", 5);
    response_done(c, c->stream_status);
    return rc;
}

int sc_conn_stream_abort(sc_conn_t *c)
{
    if (!c->streaming)
        return SC_EINVAL;
    /* No last chunk: once the queued bytes are out the connection closes,
     * and the client sees a body that never ended. */
    c->keep_alive = 0;
    c->close_after_write = 1;
    response_done(c, c->stream_status);
    conn_flush(c);
    return 0;
}

size_t sc_conn_out_pending(const sc_conn_t *c)
{
    return c->out.len + c->out_inflight.len;
}

/* ---- holders and the client going away ------------------------------------ */

void sc_conn_hold(sc_conn_t *c)
{
    c->busy = 1;
    c->refs++;
}

static void conn_free(sc_conn_t *c)
{
    sc_http_loop_t *hl = c->hl;
    if (c->prev)
        c->prev->next = c->next;
    else
        hl->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sc__http_request_free(c);
    sc_buf_free(&c->in);
    sc_buf_free(&c->out);
    sc_buf_free(&c->out_inflight);
    atomic_fetch_sub(hl->n_conns, 1);
    atomic_fetch_sub(&hl->n_open, 1);
    free(c);
}

void sc_conn_release(sc_conn_t *c)
{
    if (--c->refs == 0)
        conn_free(c);
}

int sc_conn_gone(const sc_conn_t *c)
{
    return c->gone;
}

/* Tells the holder of the request, once, that its client is gone; not from
 * inside an sc_conn_* call, which returns SC_ECLOSED instead. */
static void tell_gone(sc_conn_t *c)
{
    if (!c->gone_cb || c->gone_told || !c->gone)
        return;
    c->gone_told = 1;
    if (c->in_call)
        return;
    c->refs++; /* the callback may answer and release */
    c->gone_cb(c, c->gone_arg, c->gone);
    sc_conn_release(c);
}

void sc_conn_on_gone(sc_conn_t *c, sc_conn_gone_fn cb, void *arg)
{
    c->gone_cb = cb;
    c->gone_arg = arg;
    c->gone_told = c->gone != 0; /* already gone: the caller checks sc_conn_gone */
    update_reading(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    sc_conn_release(h->data);
}

static void conn_close(sc_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->reading = 0;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    c->gone |= SC_CONN_CLOSED;
    if (c->busy)
        tell_gone(c);
}

/* ---- input ------------------------------------------------------------ */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sc_conn_t *c = h->data;
    (void)suggested;
    if (sc_buf_reserve(&c->in, READ_CHUNK)) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = c->in.data + c->in.len;
    buf->len = c->in.cap - c->in.len - 1;
}

/* An answer of the HTTP layer itself (a parse error, a timeout): it belongs
 * to no handler, so it carries no tag. */
static void answer_error(sc_conn_t *c, uint64_t started_ns, int status, const char *slug,
                         const char *detail)
{
    c->tag = -1;
    c->responded = 0;
    c->started_ns = started_ns;
    sc_conn_problem(c, status, slug, detail);
}

/* A request refused after its head was read goes to the handler's
 * on_refused first (the body so far is left out). 1 when it answered. */
static int refused_by_handler(sc_conn_t *c, int status, const char *detail)
{
    sc_http_request_t req;
    if (!c->head_read || !c->hl->h.on_refused || sc__http_request_build(c, &req))
        return 0;
    req.body = (sc_slice_t){"", 0};
    c->tag = -1;
    c->responded = 0;
    c->started_ns = c->request_started_ns;
    return c->hl->h.on_refused(c->hl->h.ctx, c, &req, status, detail) && c->responded;
}

static void on_timer(uv_timer_t *t)
{
    sc_conn_t *c = t->data;
    if (c->closing)
        return;
    if (c->hl->stopping) { /* --drain-timeout-ms is up: close, answered or not */
        conn_close(c);
        return;
    }
    if (c->busy)
        return;
    if (c->timer_idle && !c->in_message && c->in_off >= c->in.len) {
        /* Idle since a later answer than the one that armed the timer? */
        uint64_t now = uv_now(c->hl->loop), end = c->idle_from_ms + c->hl->lim.idle_timeout_ms;
        if (now < end) {
            uv_timer_start(&c->timer, on_timer, end - now, 0);
            return;
        }
    }
    if (c->in_message || c->in_off < c->in.len) {
        c->keep_alive = 0;
        c->close_after_write = 1;
        answer_error(c, c->request_started_ns, 408, "request-timeout",
                     "the request did not arrive completely within --request-timeout-ms");
        conn_flush(c);
    } else {
        conn_close(c);
    }
}

/* The idle timeout is not re-armed after every answer (a timer heap update
 * per request): the running idle timer only moves 'idle_from_ms', and
 * on_timer re-arms it for what is left when it fires early. */
static void conn_arm_timer(sc_conn_t *c)
{
    if (c->closing)
        return;
    const sc_http_limits_t *lim = &c->hl->lim;
    int was_idle = c->timer_idle;
    c->timer_idle = 0;
    if (c->hl->stopping) { /* one deadline for the whole drain */
        uint64_t now = sc_mono_ns(), end = c->hl->drain_deadline_ns;
        uv_timer_start(&c->timer, on_timer, end > now ? (end - now) / 1000000u + 1 : 0, 0);
    } else if (c->busy || c->close_after_write) {
        uv_timer_stop(&c->timer);
    } else if (c->in_message || c->in_off < c->in.len) {
        uint64_t now = sc_mono_ns();
        uint64_t deadline = c->request_started_ns + lim->request_timeout_ms * 1000000u;
        uv_timer_start(&c->timer, on_timer, deadline > now ? (deadline - now) / 1000000u + 1 : 0,
                       0);
    } else {
        c->timer_idle = 1;
        c->idle_from_ms = uv_now(c->hl->loop);
        if (!was_idle || !uv_is_active((uv_handle_t *)&c->timer))
            uv_timer_start(&c->timer, on_timer, lim->idle_timeout_ms, 0);
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Reads while requests may be parsed; while a handler holds one, only if it
 * asked to hear of a hang-up (the input is then buffered, up to a bound). */
static void update_reading(sc_conn_t *c)
{
    int on = !c->hl->stopping && !c->close_after_write && !(c->gone & SC_CONN_HUNG_UP) &&
             c->out.len + c->out_inflight.len < OUT_HIGH_WATER;
    if (on && (c->busy || c->streaming))
        on = c->gone_cb && c->in.len - c->in_off < READ_CHUNK;
    if (c->closing || c->reading == on)
        return;
    if (on)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = on;
}

static void dispatch(sc_conn_t *c)
{
    sc_http_request_t req;
    int rc = sc__http_request_build(c, &req);
    c->tag = -1;
    c->responded = 0;
    c->streaming = 0;
    c->gone_cb = NULL;
    c->gone_told = 0;
    c->head = c->parser.method == HTTP_HEAD;
    c->version_minor = c->parser.http_minor;
    c->started_ns = req.started_ns;
    if (rc) {
        c->close_after_write = 1;
        sc_conn_problem(c, rc == SC_EINVAL ? 400 : 503,
                        rc == SC_EINVAL ? "bad-request" : "out-of-memory",
                        rc == SC_EINVAL ? "malformed request target" : "out of memory");
        return;
    }
    c->hl->h.on_request(c->hl->h.ctx, c, &req);
    if (!c->busy && !c->responded) { /* the handler forgot to answer: never stall the pipeline */
        if (c->streaming)
            sc_conn_stream_end(c);
        else
            sc_conn_problem(c, 500, "internal-error", "the request was not answered");
    }
}

static const char *error_slug(int status)
{
    return status == 431   ? "headers-too-large"
           : status == 505 ? "http-version-not-supported"
           : status == 413 ? "body-too-large"
           : status == 411 ? "length-required"
           : status == 503 ? "out-of-memory"
                           : "bad-request";
}

/* Parses and handles buffered requests until the buffer is empty, a handler
 * holds a request, or the connection is to close. */
static void conn_process(sc_conn_t *c)
{
    if (c->closing)
        return;
    while (!c->busy && !c->closing && !c->close_after_write && c->in_off < c->in.len) {
        if (!c->in_message)
            c->request_started_ns = sc_mono_ns();
        size_t avail = c->in.len - c->in_off;
        size_t n =
            http_parser_execute(&c->parser, &sc__http_settings, c->in.data + c->in_off, avail);
        c->in_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->send_continue) { /* before the body, and before any answer */
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            c->send_continue = 0;
            sc_buf_append(&c->out, cont, sizeof(cont) - 1);
            conn_flush(c);
        }
        if (c->request_ready) {
            c->request_ready = 0;
            if (e == HPE_PAUSED)
                http_parser_pause(&c->parser, 0);
            dispatch(c);
            continue;
        }
        if (e != HPE_OK) {
            int status = c->err_status ? c->err_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
            const char *detail = c->err_detail ? c->err_detail : http_errno_description(e);
            c->keep_alive = 0;
            c->close_after_write = 1;
            if (!refused_by_handler(c, status, detail))
                answer_error(c, c->request_started_ns, status, error_slug(status), detail);
            break;
        }
        if (n < avail) /* cannot happen without an error or pause; be safe */
            break;
    }
    /* Keep only unparsed bytes. */
    if (c->in_off) {
        size_t rest = c->in.len - c->in_off;
        if (rest)
            memmove(c->in.data, c->in.data + c->in_off, rest);
        c->in.len = rest;
        c->in_off = 0;
    }
    conn_flush(c);
    if (c->closing)
        return;
    if (c->hl->stopping && !c->busy && !c->close_after_write) {
        /* Draining, and every complete request received is answered (what
         * is left is at most part of one): close once the answers are out. */
        c->close_after_write = 1;
        if (!c->writing && !c->out.len) {
            conn_close(c);
            return;
        }
    }
    update_reading(c);
    conn_arm_timer(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    sc_conn_t *c = s->data;
    (void)buf;
    if (n < 0) {
        /* EOF or error: answers already queued (or owed) still go out if we can. */
        c->gone |= SC_CONN_HUNG_UP;
        if (c->writing || c->busy) {
            c->close_after_write = 1;
            update_reading(c);
        } else {
            conn_close(c);
        }
        if (c->busy)
            tell_gone(c);
        return;
    }
    if (n == 0)
        return;
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = '\0';
    conn_process(c);
}

/* ---- connections and the loop ----------------------------------------- */

/* A new connection object on loop 'hl' (not yet connected to a socket). */
static sc_conn_t *conn_new(sc_http_loop_t *hl)
{
    sc_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->hl = hl;
    c->tag = -1;
    uv_tcp_init(hl->loop, &c->tcp);
    uv_timer_init(hl->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->refs = 2; /* tcp + timer handles */
    atomic_fetch_add(hl->n_conns, 1);
    c->next = hl->conns;
    if (hl->conns)
        hl->conns->prev = c;
    hl->conns = c;
    return c;
}

static void conn_start(sc_conn_t *c)
{
    sc_http_loop_t *hl = c->hl;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->keep_alive = 1;
    if (atomic_load(hl->n_conns) > hl->lim.max_connections) {
        c->keep_alive = 0;
        answer_error(c, sc_mono_ns(), 503, "too-many-connections",
                     "the server is at --max-connections; retry later");
        c->close_after_write = 1;
        conn_flush(c);
        return;
    }
    update_reading(c);
    conn_arm_timer(c);
}

int sc_http_loop_create(sc_http_loop_t **out, uv_loop_t *loop, const sc_http_limits_t *lim,
                        const sc_http_handler_t *h, _Atomic int64_t *n_conns)
{
    sc_http_loop_t *hl = calloc(1, sizeof(*hl));
    if (!hl)
        return SC_ENOMEM;
    hl->loop = loop;
    hl->lim = *lim;
    hl->h = *h;
    hl->n_conns = n_conns;
    atomic_init(&hl->n_open, 0);
    *out = hl;
    return 0;
}

void sc_http_loop_destroy(sc_http_loop_t *hl)
{
    free(hl);
}

void sc_http_loop_expect(sc_http_loop_t *hl, int n)
{
    atomic_fetch_add(&hl->n_open, n);
}

int sc_http_loop_conns(const sc_http_loop_t *hl)
{
    return atomic_load(&hl->n_open);
}

void sc_http_accept(sc_http_loop_t *hl, uv_stream_t *listener)
{
    sc_conn_t *c = conn_new(hl);
    if (!c)
        return;
    atomic_fetch_add(&hl->n_open, 1);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    conn_start(c);
}

void sc_http_adopt(sc_http_loop_t *hl, int fd)
{
    sc_conn_t *c = hl->stopping ? NULL : conn_new(hl);
    if (!c) {
        close(fd);
        atomic_fetch_sub(&hl->n_open, 1);
        return;
    }
    if (uv_tcp_open(&c->tcp, (uv_os_sock_t)fd)) {
        close(fd);
        conn_close(c);
        return;
    }
    conn_start(c);
}

void sc_http_drain(sc_http_loop_t *hl, uint64_t deadline_ns)
{
    hl->stopping = 1;
    hl->drain_deadline_ns = deadline_ns;
    for (sc_conn_t *c = hl->conns, *next; c; c = next) {
        next = c->next; /* a close frees only in its callback, later */
        if (c->closing)
            continue;
        update_reading(c);
        if (c->busy)
            conn_arm_timer(c); /* its answer carries on with the drain */
        else
            conn_process(c);
    }
}
