/* http.c -- HTTP/1.1 connections on a libuv loop, parsed by http_parser.
 * The parser is paused at the end of every message, so pipelined requests are
 * handled strictly one after another and their responses leave in order; an
 * asynchronous handler (a store waiting for its commit) stops reading until it
 * answers. A response is written straight to the socket when it fits; what
 * does not is handed to uv_write, and responses produced while that write is
 * in flight are coalesced into the next one. One timer per connection enforces the idle and request
 * timeouts, so a slow client cannot hold a worker. */
#define _GNU_SOURCE
#include "server_internal.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define READ_CHUNK 65536
/* Past this much unsent output, stop reading until the client catches up. */
#define OUT_HIGH_WATER (8u << 20)

static void conn_process(sc_conn_t *c);
static void conn_close(sc_conn_t *c);
static void conn_flush(sc_conn_t *c);
static void conn_arm_timer(sc_conn_t *c);

const char *sc_http_reason(int status)
{
    switch (status) {
#define XX(num, name, string) case num: return #string;
        HTTP_STATUS_MAP(XX)
#undef XX
    default: return "Unknown";
    }
}

/* ---- parser callbacks ------------------------------------------------- */

static int fail_request(sc_conn_t *c, int status, const char *detail)
{
    if (!c->err_status) {
        c->err_status = status;
        c->err_detail = detail;
    }
    return -1; /* makes http_parser stop with a callback error */
}

static int on_message_begin(http_parser *p)
{
    sc_conn_t *c = p->data;
    sc_buf_reset(&c->url);
    sc_buf_reset(&c->body);
    c->hname_len = 0;
    c->hname_done = 0;
    c->header_wanted = 0;
    c->header_bytes = 0;
    c->content_type_seen = c->content_type_json = c->has_clen = c->expect_continue = 0;
    sc_buf_reset(&c->auth);
    c->in_message = 1;
    return 0;
}

static int count_header_bytes(sc_conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > (size_t)c->w->srv->cfg.max_header_bytes)
        return fail_request(c, 431, "request line and headers exceed --max-header-bytes");
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    sc_conn_t *c = p->data;
    if (count_header_bytes(c, n))
        return -1;
    return sc_buf_append(&c->url, at, n) ? fail_request(c, 503, "out of memory") : 0;
}

static void finish_header(sc_conn_t *c)
{
    if (!c->header_wanted)
        return;
    const char *v = c->hval.data ? c->hval.data : "";
    while (*v == ' ' || *v == '\t')
        v++;
    if (c->header_wanted == 1) {
        c->content_type_seen = 1;
        /* application/json, optionally with parameters; also +json types. */
        size_t n = strcspn(v, ";");
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        c->content_type_json =
            (n == 16 && strncasecmp(v, "application/json", 16) == 0) ||
            (n > 5 && strncasecmp(v + n - 5, "+json", 5) == 0 && memchr(v, '/', n));
    } else if (c->header_wanted == 2) {
        c->expect_continue = strncasecmp(v, "100-continue", 12) == 0;
    } else if (c->header_wanted == 3) {
        sc_buf_reset(&c->auth);
        sc_buf_puts(&c->auth, v);
    }
    c->header_wanted = 0;
    sc_buf_reset(&c->hval);
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    sc_conn_t *c = p->data;
    if (count_header_bytes(c, n))
        return -1;
    if (c->hname_done) { /* a new header starts: close the previous one */
        finish_header(c);
        c->hname_len = 0;
        c->hname_done = 0;
    }
    for (size_t i = 0; i < n && c->hname_len < sizeof(c->hname) - 1; i++)
        c->hname[c->hname_len++] = (char)tolower((unsigned char)at[i]);
    c->hname[c->hname_len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    sc_conn_t *c = p->data;
    if (count_header_bytes(c, n))
        return -1;
    if (!c->hname_done) {
        c->hname_done = 1;
        if (strcmp(c->hname, "content-type") == 0)
            c->header_wanted = 1;
        else if (strcmp(c->hname, "expect") == 0)
            c->header_wanted = 2;
        else if (strcmp(c->hname, "content-length") == 0)
            c->has_clen = 1;
        else if (strcmp(c->hname, "authorization") == 0)
            c->header_wanted = 3;
    }
    if (c->header_wanted && sc_buf_append(&c->hval, at, n))
        return fail_request(c, 503, "out of memory");
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    sc_conn_t *c = p->data;
    finish_header(c);
    const sc_config_t *cfg = &c->w->srv->cfg;
    if (p->http_major != 1)
        return fail_request(c, 505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
    int chunked = (p->flags & F_CHUNKED) != 0;
    int has_body = chunked || (c->has_clen && p->content_length > 0);
    if (c->has_clen && p->content_length > (uint64_t)cfg->max_body_bytes)
        return fail_request(c, 413, "request body exceeds --max-body-bytes");
    if ((p->method == HTTP_POST || p->method == HTTP_PUT) && !chunked && !c->has_clen)
        return fail_request(c, 411, "a request body needs Content-Length or chunked encoding");
    if (c->expect_continue && has_body) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        sc_buf_append(&c->out, cont, sizeof(cont) - 1);
        conn_flush(c);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    sc_conn_t *c = p->data;
    if (c->body.len + n > (size_t)c->w->srv->cfg.max_body_bytes)
        return fail_request(c, 413, "request body exceeds --max-body-bytes");
    return sc_buf_append(&c->body, at, n) ? fail_request(c, 503, "out of memory") : 0;
}

static int on_message_complete(http_parser *p)
{
    sc_conn_t *c = p->data;
    c->keep_alive = http_should_keep_alive(p);
    c->request_ready = 1;
    c->in_message = 0;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

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
    } else if (c->close_after_write) {
        conn_close(c);
    } else if (!c->reading && !c->busy && !c->closing) {
        conn_process(c); /* output drained: resume reading */
    }
    sc_conn_release(c);
}

static void conn_flush(sc_conn_t *c)
{
    if (c->writing || !c->out.len || c->closing)
        return;
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
        if (c->close_after_write)
            conn_close(c);
        return;
    }
    sc_buf_t t = c->out_inflight;
    c->out_inflight = c->out;
    c->out = t;
    sc_buf_reset(&c->out);
    uv_buf_t b = uv_buf_init(c->out_inflight.data + written, (unsigned)(c->out_inflight.len - written));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) == 0) {
        c->writing = 1;
        c->refs++;
    } else {
        conn_close(c);
    }
}

void sc_conn_respond(sc_conn_t *c, sc_endpoint_t ep, uint64_t started_ns, int status,
                     const char *content_type, const char *extra_headers, const char *body,
                     size_t len)
{
    /* Draining: the last answer to what was received closes the connection. */
    if (!c->keep_alive || (c->w->stopping && c->in_off >= c->in.len))
        c->close_after_write = 1;
    if (!c->closing) {
        /* Assembled by hand: this runs for every response. */
        sc_buf_t *o = &c->out;
        sc_buf_reserve(o, len + 256);
        sc_buf_puts(o, "HTTP/1.1 ");
        sc_buf_u64(o, (uint64_t)status);
        sc_buf_puts(o, " ");
        sc_buf_puts(o, sc_http_reason(status));
        sc_buf_puts(o, "\r\nContent-Type: ");
        sc_buf_puts(o, content_type);
        sc_buf_puts(o, "\r\nContent-Length: ");
        sc_buf_u64(o, len);
        sc_buf_puts(o, "\r\n");
        if (extra_headers)
            sc_buf_puts(o, extra_headers);
        if (c->close_after_write)
            sc_buf_puts(o, "Connection: close\r\n");
        sc_buf_puts(o, "\r\n");
        sc_buf_append(o, body, len);
    }
    sc_metrics_request(c->w->metrics, ep, status, sc_mono_ns() - started_ns);
    if (c->busy) { /* an async handler finished: flush and carry on */
        c->busy = 0;
        conn_flush(c);
        if (!c->close_after_write)
            conn_process(c);
    }
}

void sc_conn_problem(sc_conn_t *c, sc_endpoint_t ep, uint64_t started_ns, int status,
                     const char *slug, const char *detail)
{
    sc_buf_t b = {0};
    sc_buf_printf(&b, "{\"type\":\"urn:semcached:problem:%s\",\"title\":\"%s\",\"status\":%d,\"detail\":",
                  slug, sc_http_reason(status), status);
    sc_buf_json_str(&b, detail, strlen(detail));
    sc_buf_puts(&b, "}");
    sc_conn_respond(c, ep, started_ns, status, "application/problem+json", NULL,
                    b.data ? b.data : "", b.len);
    sc_buf_free(&b);
}

/* ---- lifecycle -------------------------------------------------------- */

void sc_conn_hold(sc_conn_t *c)
{
    c->busy = 1;
    c->refs++;
    c->w->pending_ops++;
}

static void conn_free(sc_conn_t *c)
{
    sc_worker_t *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sc_buf_free(&c->in);
    sc_buf_free(&c->url);
    sc_buf_free(&c->body);
    sc_buf_free(&c->hval);
    sc_buf_free(&c->auth);
    sc_buf_free(&c->out);
    sc_buf_free(&c->out_inflight);
    atomic_fetch_sub(&w->srv->n_conns, 1);
    atomic_fetch_sub(&w->n_open, 1);
    free(c);
}

void sc_conn_release(sc_conn_t *c)
{
    if (--c->refs == 0)
        conn_free(c);
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
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
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

static void on_timer(uv_timer_t *t)
{
    sc_conn_t *c = t->data;
    if (c->closing)
        return;
    if (c->w->stopping) { /* --drain-timeout-ms is up: close, answered or not */
        conn_close(c);
        return;
    }
    if (c->busy)
        return;
    if (c->in_message || c->in_off < c->in.len) {
        c->keep_alive = 0;
        c->close_after_write = 1;
        sc_conn_problem(c, SC_EP_OTHER, c->request_started_ns, 408, "request-timeout",
                        "the request did not arrive completely within --request-timeout-ms");
        conn_flush(c);
    } else {
        conn_close(c);
    }
}

static void conn_arm_timer(sc_conn_t *c)
{
    if (c->closing)
        return;
    const sc_config_t *cfg = &c->w->srv->cfg;
    if (c->w->stopping) { /* one deadline for the whole drain */
        uint64_t now = sc_mono_ns(), end = c->w->drain_deadline_ns;
        uv_timer_start(&c->timer, on_timer, end > now ? (end - now) / 1000000u + 1 : 0, 0);
    } else if (c->busy || c->close_after_write) {
        uv_timer_stop(&c->timer);
    } else if (c->in_message || c->in_off < c->in.len) {
        uint64_t now = sc_mono_ns();
        uint64_t deadline = c->request_started_ns + (uint64_t)cfg->request_timeout_ms * 1000000u;
        uv_timer_start(&c->timer, on_timer, deadline > now ? (deadline - now) / 1000000u + 1 : 0, 0);
    } else {
        uv_timer_start(&c->timer, on_timer, (uint64_t)cfg->idle_timeout_ms, 0);
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void set_reading(sc_conn_t *c, int on)
{
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
    struct http_parser_url u;
    memset(&req, 0, sizeof(req));
    req.method = c->parser.method;
    req.started_ns = sc_mono_ns();
    req.body.ptr = c->body.data ? c->body.data : "";
    req.body.len = c->body.len;
    req.content_type_json = !c->content_type_seen || c->content_type_json;
    req.authorization.ptr = c->auth.data ? c->auth.data : "";
    req.authorization.len = c->auth.len;
    http_parser_url_init(&u);
    if (!c->url.len || http_parser_parse_url(c->url.data, c->url.len, 0, &u) ||
        !(u.field_set & (1 << UF_PATH))) {
        c->close_after_write = 1;
        sc_conn_problem(c, SC_EP_OTHER, req.started_ns, 400, "bad-request", "malformed request target");
        return;
    }
    req.path.ptr = c->url.data + u.field_data[UF_PATH].off;
    req.path.len = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
        req.query.ptr = c->url.data + u.field_data[UF_QUERY].off;
        req.query.len = u.field_data[UF_QUERY].len;
    }
    sc_api_handle(c, &req);
}

/* Parses and handles buffered requests until the buffer is empty, a handler
 * goes asynchronous, or the connection is to close. */
static void conn_process(sc_conn_t *c)
{
    if (c->closing)
        return;
    while (!c->busy && !c->closing && !c->close_after_write && c->in_off < c->in.len) {
        if (!c->in_message)
            c->request_started_ns = sc_mono_ns();
        size_t avail = c->in.len - c->in_off;
        size_t n = http_parser_execute(&c->parser, &parser_settings, c->in.data + c->in_off, avail);
        c->in_off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
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
            sc_conn_problem(c, SC_EP_OTHER, c->request_started_ns, status,
                            status == 431 ? "headers-too-large"
                            : status == 505 ? "http-version-not-supported"
                            : status == 413 ? "body-too-large"
                            : status == 411 ? "length-required"
                                            : "bad-request",
                            detail);
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
    if (c->w->stopping && !c->busy && !c->closing && !c->close_after_write) {
        /* Draining, and every complete request received is answered (what
         * is left is at most part of one): close once the answers are out. */
        c->close_after_write = 1;
        if (!c->writing && !c->out.len) {
            conn_close(c);
            return;
        }
    }
    set_reading(c, !c->w->stopping && !c->busy && !c->close_after_write &&
                       c->out.len + c->out_inflight.len < OUT_HIGH_WATER);
    conn_arm_timer(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    sc_conn_t *c = s->data;
    (void)buf;
    if (n < 0) {
        /* EOF or error: answers already queued still go out if we can. */
        if (c->writing || c->busy)
            c->close_after_write = 1, set_reading(c, 0);
        else
            conn_close(c);
        return;
    }
    if (n == 0)
        return;
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = '\0';
    conn_process(c);
}

/* A new connection object on loop 'w' (not yet connected to a socket). */
static sc_conn_t *conn_new(sc_worker_t *w)
{
    sc_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->refs = 2; /* tcp + timer handles */
    atomic_fetch_add(&w->srv->n_conns, 1);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    return c;
}

static void conn_start(sc_conn_t *c)
{
    sc_server_t *srv = c->w->srv;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->keep_alive = 1;
    if (atomic_load(&srv->n_conns) > srv->cfg.max_connections) {
        c->keep_alive = 0;
        sc_conn_problem(c, SC_EP_OTHER, sc_mono_ns(), 503, "too-many-connections",
                        "the server is at --max-connections; retry later");
        c->close_after_write = 1;
        conn_flush(c);
        return;
    }
    set_reading(c, 1);
    conn_arm_timer(c);
}

/* The loop a new connection should live on: the one owning the fewest
 * (this one unless another has at least two fewer). SO_REUSEPORT hashes
 * connections to loops at random, so 32 connections often split 12/20, and
 * with a steady request rate per connection the busier loop saturates while
 * the other idles: handing connections over keeps the loops even. */
static sc_worker_t *least_loaded(sc_worker_t *w)
{
    sc_server_t *srv = w->srv;
    sc_worker_t *best = w;
    int best_n = atomic_load(&w->n_open);
    for (int i = 0; i < srv->n_workers; i++) {
        sc_worker_t *o = &srv->workers[i];
        int n = atomic_load(&o->n_open);
        if (o != w && n + 1 < best_n) { /* a stopping loop closes what it is handed */
            best = o;
            best_n = n;
        }
    }
    return best;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

void sc__conn_accept(sc_worker_t *w, uv_stream_t *listener)
{
    sc_worker_t *to = least_loaded(w);
    if (to != w) {
        /* Accept here, hand a duplicate of the socket to the other loop
         * (libuv handles belong to one loop) and close ours. */
        uv_tcp_t *tmp = malloc(sizeof(*tmp));
        if (!tmp)
            return;
        uv_tcp_init(&w->loop, tmp);
        uv_os_fd_t fd;
        int dup_fd = -1;
        if (uv_accept(listener, (uv_stream_t *)tmp) == 0 && uv_fileno((uv_handle_t *)tmp, &fd) == 0)
            dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        uv_close((uv_handle_t *)tmp, free_handle);
        if (dup_fd < 0)
            return;
        atomic_fetch_add(&to->n_open, 1);
        pthread_mutex_lock(&to->done_mu);
        if (to->n_adopt == to->cap_adopt) {
            size_t cap = to->cap_adopt ? to->cap_adopt * 2 : 16;
            int *a = realloc(to->adopt_fds, cap * sizeof(int));
            if (a) {
                to->adopt_fds = a;
                to->cap_adopt = cap;
            }
        }
        int queued = to->n_adopt < to->cap_adopt;
        if (queued)
            to->adopt_fds[to->n_adopt++] = dup_fd;
        pthread_mutex_unlock(&to->done_mu);
        if (queued) {
            uv_async_send(&to->wakeup);
            return;
        }
        atomic_fetch_sub(&to->n_open, 1);
        atomic_fetch_add(&w->n_open, 1);
        sc__conn_adopt(w, dup_fd); /* no room to hand it over: keep it */
        return;
    }
    sc_conn_t *c = conn_new(w);
    if (!c)
        return;
    atomic_fetch_add(&w->n_open, 1);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        conn_close(c);
        return;
    }
    conn_start(c);
}

/* 'w->n_open' already counts the connection (the hand-over did). */
void sc__conn_adopt(sc_worker_t *w, int fd)
{
    sc_conn_t *c = w->stopping ? NULL : conn_new(w);
    if (!c) {
        close(fd);
        atomic_fetch_sub(&w->n_open, 1);
        return;
    }
    if (uv_tcp_open(&c->tcp, (uv_os_sock_t)fd)) {
        close(fd);
        conn_close(c);
        return;
    }
    conn_start(c);
}

/* Stops reading everywhere; each connection answers the requests it has
 * already received (pipelined ones too: a client must not lose a request the
 * server read), then closes, all within --drain-timeout-ms. */
void sc__conn_shutdown_all(sc_worker_t *w)
{
    for (sc_conn_t *c = w->conns, *next; c; c = next) {
        next = c->next; /* a close frees only in its callback, later */
        if (c->closing)
            continue;
        set_reading(c, 0);
        if (c->busy)
            conn_arm_timer(c); /* its answer carries on with the drain */
        else
            conn_process(c);
    }
}
