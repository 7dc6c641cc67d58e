/* tests/server/http.c -- the HTTP layer (server/http.c, http_request.c) on a
 * real libuv loop, with a test handler instead of the API: a loopback client
 * socket drives pipelining, chunked bodies, header limits, 100-continue, bad
 * requests, keep-alive, timeouts, every header and any method reaching the
 * handler, streamed responses and the disconnect notice. Each test ends by
 * draining the loop and asserting uv_loop_close() == 0. */
#include "../../server/http.c"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "testutil.h"

/* ---- the fixture: a loop, its HTTP side and a test handler -------------- */

typedef struct fixture_s fixture_t;

/* A request the handler keeps (async answer, stream, disconnect watch). */
typedef struct {
    uv_timer_t timer;
    fixture_t *fx;
    sc_conn_t *c;
    int kind; /* 0 async answer, 1 stream, 2 watch */
    int step;
    int write_rc; /* last stream write result */
} held_t;

struct fixture_s {
    uv_loop_t loop;
    sc_http_loop_t *hl;
    _Atomic int64_t n_conns;
    int lfd, port; /* the listening socket */
    held_t held;
    int gone_why; /* what the disconnect callback saw (0: not called) */
    int responses, last_tag, last_status, untagged;
    int requests;
    char last_method[16];
};

static fixture_t fx_;

static void timer_closed(uv_handle_t *h)
{
    (void)h;
}

static void held_tick(uv_timer_t *t)
{
    held_t *h = t->data;
    if (h->kind == 0) {
        sc_conn_respond(h->c, 200, "text/plain", NULL, "late", 4);
        sc_conn_release(h->c);
        uv_timer_stop(t);
        return;
    }
    /* A stream: three chunks, then the end (unless the client went away). */
    char chunk[32];
    int n = snprintf(chunk, sizeof(chunk), "chunk-%d\n", h->step);
    h->write_rc = sc_conn_stream_write(h->c, chunk, (size_t)n);
    if (++h->step < 3 && h->write_rc == 0)
        return;
    sc_conn_stream_end(h->c);
    sc_conn_release(h->c);
    uv_timer_stop(t);
}

static void on_gone(sc_conn_t *c, void *arg, int why)
{
    fixture_t *fx = arg;
    fx->gone_why = why;
    ck_assert_int_eq(sc_conn_gone(c), why);
    if (fx->held.kind == 2) { /* the watcher answers at once (to nobody) */
        sc_conn_respond(c, 499, "text/plain", NULL, "", 0);
        sc_conn_release(c);
    }
}

static void hold_request(fixture_t *fx, sc_conn_t *c, int kind, uint64_t every_ms)
{
    held_t *h = &fx->held;
    h->fx = fx;
    h->c = c;
    h->kind = kind;
    h->step = 0;
    h->write_rc = 0;
    sc_conn_hold(c);
    if (every_ms)
        uv_timer_start(&h->timer, held_tick, every_ms, every_ms);
}

static int path_is(const sc_http_request_t *r, const char *p)
{
    return r->path.len == strlen(p) && memcmp(r->path.ptr, p, r->path.len) == 0;
}

/* Echoes the method, target and body, or answers per path. */
static void test_on_request(void *arg, sc_conn_t *c, const sc_http_request_t *r)
{
    fixture_t *fx = arg;
    fx->requests++;
    snprintf(fx->last_method, sizeof(fx->last_method), "%s", sc_http_method_name(r->method));
    sc_conn_set_tag(c, 7);
    sc_buf_t b = {0};
    if (path_is(r, "/header")) { /* the header named by the query */
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)r->query.len, r->query.ptr);
        sc_slice_t v = sc_http_request_header(r, name);
        sc_buf_printf(&b, "%s=%.*s", v.ptr ? "present" : "absent", (int)v.len, v.ptr ? v.ptr : "");
    } else if (path_is(r, "/headers")) { /* all of them, through the iterator */
        const sc_http_header_t *h;
        for (size_t i = 0; (h = sc_http_request_header_at(r, i)); i++)
            sc_buf_printf(&b, "%s:%s|%d\n", h->name.ptr, h->value.ptr,
                          h->name.ptr[h->name.len] == '\0' && h->value.ptr[h->value.len] == '\0');
        ck_assert_ptr_null(sc_http_request_header_at(r, r->n_headers));
    } else if (path_is(r, "/async")) {
        hold_request(fx, c, 0, 20);
        return;
    } else if (path_is(r, "/stream")) {
        ck_assert_int_eq(sc_conn_stream_begin(c, 200, "text/plain", "X-Stream: yes\r\n"), 0);
        ck_assert_int_eq(sc_conn_stream_begin(c, 200, "text/plain", NULL), SC_EINVAL); /* once */
        hold_request(fx, c, 1, 10);
        return;
    } else if (path_is(r, "/stream-now")) { /* begins, writes and ends inside the call */
        sc_conn_stream_begin(c, 201, "text/plain", NULL);
        sc_conn_stream_write(c, "abc", 3);
        sc_conn_stream_write(c, "", 0); /* must not end the stream */
        sc_conn_stream_write(c, "de", 2);
        sc_conn_stream_end(c);
        ck_assert_int_eq(sc_conn_stream_end(c), SC_EINVAL); /* only once */
        return;
    } else if (path_is(r, "/watch")) {
        hold_request(fx, c, 2, 0);
        sc_conn_on_gone(c, on_gone, fx);
        return;
    } else if (path_is(r, "/stream-watch")) {
        sc_conn_stream_begin(c, 200, "text/plain", NULL);
        hold_request(fx, c, 1, 0);
        sc_conn_on_gone(c, on_gone, fx);
        return;
    } else if (path_is(r, "/forget")) {
        return; /* no answer at all: the layer answers 500 */
    } else {
        sc_buf_printf(&b, "%s %.*s\n", sc_http_method_name(r->method), (int)r->target.len,
                      r->target.ptr);
        sc_buf_append(&b, r->body.ptr, r->body.len);
    }
    sc_conn_respond(c, 200, "text/plain", NULL, b.data ? b.data : "", b.len);
    sc_buf_free(&b);
}

static void test_on_response(void *arg, int tag, int status, uint64_t dur_ns)
{
    fixture_t *fx = arg;
    (void)dur_ns;
    fx->responses++;
    fx->last_tag = tag;
    fx->last_status = status;
    if (tag < 0)
        fx->untagged++;
}

static fixture_t *fx_start(size_t max_header_bytes, uint64_t request_timeout_ms, int64_t max_conns)
{
    fixture_t *fx = &fx_;
    memset(fx, 0, sizeof(*fx));
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->held.timer);
    fx->held.timer.data = &fx->held;
    sc_http_limits_t lim = {max_header_bytes, 4096, request_timeout_ms, 5000, max_conns};
    sc_http_handler_t h = {test_on_request, test_on_response, fx};
    ck_assert_int_eq(sc_http_loop_create(&fx->hl, &fx->loop, &lim, &h, &fx->n_conns), 0);
    fx->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fx->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(fx->lfd, 16), 0);
    getsockname(fx->lfd, (struct sockaddr *)&a, &len);
    fx->port = ntohs(a.sin_port);
    return fx;
}

/* A client connected to the loop; returns its (non-blocking) socket. */
static int fx_client(fixture_t *fx)
{
    int fd = tu_connect(fx->port);
    ck_assert_int_ge(fd, 0);
    int sfd = accept(fx->lfd, NULL, NULL);
    ck_assert_int_ge(sfd, 0);
    sc_http_loop_expect(fx->hl, 1);
    sc_http_adopt(fx->hl, sfd);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Runs the loop and reads the client until 'want' occurs 'times' times in
 * what it received, the server closes (when 'want' is NULL), or 2 s pass.
 * Returns what was received (owned); '*closed' says whether the server
 * closed. */
static char *fx_pump(fixture_t *fx, int fd, const char *want, int times, int *closed)
{
    sc_buf_t got = {0};
    sc_buf_reserve(&got, 1);
    int eof = 0;
    uint64_t end = sc_mono_ns() + 2000000000ull;
    while (sc_mono_ns() < end) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        char tmp[4096];
        ssize_t n;
        while ((n = read(fd, tmp, sizeof(tmp))) > 0)
            sc_buf_append(&got, tmp, (size_t)n);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            eof = 1;
        if (want ? tu_count(got.data, want) >= times : eof)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        poll(&p, 1, 1);
    }
    if (closed)
        *closed = eof;
    return got.data;
}

/* Runs the loop until '*flag' is set, or 200 ms. */
static void fx_spin(fixture_t *fx, const int *flag)
{
    for (int i = 0; i < 200 && !*flag; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static void fx_send(int fd, const char *s)
{
    ck_assert_int_eq(tu_send_all(fd, s, strlen(s)), 0);
}

/* Sends 'req' and pumps until 'want' was received 'times' times. */
static char *fx_ask(fixture_t *fx, int fd, const char *req, const char *want, int times)
{
    fx_send(fd, req);
    return fx_pump(fx, fd, want, times, NULL);
}

/* Drains and closes everything; the loop must close cleanly. */
static void fx_stop(fixture_t *fx, int fd)
{
    if (fd >= 0)
        close(fd);
    close(fx->lfd);
    sc_http_drain(fx->hl, sc_mono_ns() + 1000000000ull);
    uv_close((uv_handle_t *)&fx->held.timer, timer_closed);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(atomic_load(&fx->n_conns), 0);
    ck_assert_int_eq(sc_http_loop_conns(fx->hl), 0);
    sc_http_loop_destroy(fx->hl);
    ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
}

/* The body of the first response in 's' after its headers, de-chunked. */
static char *dechunk(const char *s)
{
    const char *p = strstr(s, "\r\n\r\n");
    ck_assert_ptr_nonnull(p);
    p += 4;
    sc_buf_t out = {0};
    sc_buf_reserve(&out, 1);
    for (;;) {
        char *end;
        unsigned long n = strtoul(p, &end, 16);
        ck_assert(end != p && end[0] == '\r' && end[1] == '\n');
        p = end + 2;
        if (n == 0)
            break;
        sc_buf_append(&out, p, n);
        p += n;
        ck_assert(p[0] == '\r' && p[1] == '\n');
        p += 2;
    }
    return out.data;
}

/* ---- requests -------------------------------------------------------------- */

START_TEST(pipelined_requests_answer_in_order)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    char *out = fx_ask(fx, fd,
                       "GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /async HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /three HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                       "GET /four?q=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                       "HTTP/1.1 200", 4);
    const char *want[] = {"GET /one\n", "late", "POST /three\nhello", "GET /four?q=1\n"};
    const char *p = out;
    for (size_t i = 0; i < 4; i++) {
        const char *q = strstr(p, want[i]);
        ck_assert_msg(q != NULL, "'%s' missing or out of order in:\n%s", want[i], out);
        p = q + strlen(want[i]);
    }
    ck_assert_int_eq(fx->responses, 4);
    ck_assert_int_eq(fx->last_tag, 7);
    ck_assert_int_eq(fx->untagged, 0);
    free(out);
    fx_stop(fx, fd);
}
END_TEST

START_TEST(chunked_body_keep_alive_and_http10)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    char *out = fx_ask(fx, fd,
                       "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
                       "abcdefg", 1);
    ck_assert_msg(strstr(out, "POST /c\nabcdefg"), "got %s", out);
    ck_assert_ptr_null(strstr(out, "Connection: close"));
    free(out);
    /* The same connection serves the next request. */
    out = fx_ask(fx, fd, "GET /again HTTP/1.1\r\nHost: x\r\n\r\n", "/again", 1);
    ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
    free(out);
    /* HTTP/1.0 without keep-alive: answered, then closed. */
    fx_send(fd, "GET /old HTTP/1.0\r\n\r\n");
    int closed;
    out = fx_pump(fx, fd, NULL, 0, &closed);
    ck_assert(closed);
    ck_assert_ptr_nonnull(strstr(out, "GET /old"));
    ck_assert_ptr_nonnull(strstr(out, "Connection: close"));
    free(out);
    fx_stop(fx, fd);
}
END_TEST

START_TEST(expect_continue_comes_before_the_body)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    char *out =
        fx_ask(fx, fd, "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
               "100 Continue", 1);
    ck_assert_str_eq(out, "HTTP/1.1 100 Continue\r\n\r\n");
    ck_assert_int_eq(fx->requests, 0);
    free(out);
    out = fx_ask(fx, fd, "body", "POST /e\nbody", 1);
    ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
    free(out);
    fx_stop(fx, fd);
}
END_TEST

START_TEST(every_header_reaches_the_handler)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    char *out =
        fx_ask(fx, fd,
               "GET /header?x-custom HTTP/1.1\r\nHost: x\r\nX-CUSTOM:   spaced value  \r\n\r\n"
               "GET /header?X-Absent HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /header?authorization HTTP/1.1\r\nAuthorization: Bearer t0k\r\n\r\n"
               "GET /headers HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n",
               "HTTP/1.1 200", 4);
    ck_assert_msg(strstr(out, "present=spaced value"), "got %s", out);
    ck_assert_ptr_nonnull(strstr(out, "absent="));
    ck_assert_ptr_nonnull(strstr(out, "present=Bearer t0k"));
    ck_assert_msg(strstr(out, "host:h|1\nx-empty:|1\nx-multi:1|1\nx-multi:2|1\n"), "got %s", out);
    free(out);
    fx_stop(fx, fd);
}
END_TEST

START_TEST(any_method_and_path_reach_the_handler)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    const char *methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "PURGE"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        char req[256];
        snprintf(req, sizeof(req),
                 "%s /v1/some/where/%zu?x=y HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
                 methods[i], i);
        fx_send(fd, req);
        char *out = fx_pump(fx, fd, "HTTP/1.1 200", 1, NULL);
        ck_assert_str_eq(fx->last_method, methods[i]);
        if (strcmp(methods[i], "HEAD") != 0) {
            char want[64];
            snprintf(want, sizeof(want), "%s /v1/some/where/%zu?x=y\n", methods[i], i);
            ck_assert_msg(strstr(out, want), "got %s", out);
        }
        free(out);
    }
    ck_assert_int_eq(fx->requests, 8);
    fx_stop(fx, fd);
}
END_TEST

/* ---- errors and limits ------------------------------------------------------ */

static void expect_error(const char *raw, const char *status, size_t max_header)
{
    fixture_t *fx = fx_start(max_header, 5000, 100);
    int fd = fx_client(fx);
    fx_send(fd, raw);
    int closed;
    char *out = fx_pump(fx, fd, NULL, 0, &closed);
    ck_assert(closed);
    ck_assert_msg(strncmp(out, status, strlen(status)) == 0, "want %s, got %s", status, out);
    ck_assert_ptr_nonnull(strstr(out, "application/problem+json"));
    ck_assert_int_eq(fx->requests, 0);
    ck_assert_int_eq(fx->untagged, 1); /* the layer's own answer carries no tag */
    free(out);
    fx_stop(fx, fd);
}

START_TEST(bad_requests_are_400_and_close)
{
    expect_error("\x01\x02 NOT HTTP\r\n\r\n", "HTTP/1.1 400", 4096);
    expect_error("GET /x HTTP/1.1\r\nNoColon\r\n\r\n", "HTTP/1.1 400", 4096);
    expect_error("POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "HTTP/1.1 400",
                 4096);
    expect_error("GET http:// HTTP/1.1\r\n\r\n", "HTTP/1.1 400", 4096); /* no path */
    expect_error("POST /x HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 411", 4096);
    expect_error("POST /x HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", "HTTP/1.1 413", 4096);
    expect_error("GET /x HTTP/2.0\r\n\r\n", "HTTP/1.1 505", 4096);
}
END_TEST

START_TEST(header_limit_is_431)
{
    char big[2048];
    int n = snprintf(big, sizeof(big), "GET /x HTTP/1.1\r\nX-Pad: ");
    memset(big + n, 'a', 1100);
    snprintf(big + n + 1100, sizeof(big) - (size_t)n - 1100, "\r\n\r\n");
    expect_error(big, "HTTP/1.1 431", 1024);
    /* Just under the limit passes. */
    fixture_t *fx = fx_start(1024, 5000, 100);
    int fd = fx_client(fx);
    n = snprintf(big, sizeof(big), "GET /x HTTP/1.1\r\nX-Pad: ");
    memset(big + n, 'a', 900);
    snprintf(big + n + 900, sizeof(big) - (size_t)n - 900, "\r\n\r\n");
    fx_send(fd, big);
    char *out = fx_pump(fx, fd, "HTTP/1.1 200", 1, NULL);
    ck_assert_ptr_nonnull(strstr(out, "GET /x"));
    free(out);
    fx_stop(fx, fd);
}
END_TEST

START_TEST(slow_request_times_out_and_unanswered_is_500)
{
    fixture_t *fx = fx_start(4096, 100, 100);
    int fd = fx_client(fx);
    char *out = fx_ask(fx, fd, "GET /forget HTTP/1.1\r\n\r\n", "HTTP/1.1 500", 1);
    ck_assert_msg(strstr(out, "the request was not answered"), "got %s", out);
    free(out);
    fx_send(fd, "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    int closed;
    out = fx_pump(fx, fd, NULL, 0, &closed);
    ck_assert(closed);
    ck_assert_msg(strstr(out, "HTTP/1.1 408"), "got %s", out);
    free(out);
    fx_stop(fx, fd);
}
END_TEST

START_TEST(connections_over_the_limit_get_503)
{
    fixture_t *fx = fx_start(4096, 5000, 1);
    int a = fx_client(fx), b = fx_client(fx);
    int closed;
    char *out = fx_pump(fx, b, NULL, 0, &closed);
    ck_assert(closed);
    ck_assert_msg(strncmp(out, "HTTP/1.1 503", 12) == 0, "got %s", out);
    free(out);
    close(b);
    out = fx_ask(fx, a, "GET /fine HTTP/1.1\r\n\r\n", "/fine", 1);
    ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 200"));
    free(out);
    fx_stop(fx, a);
}
END_TEST

/* ---- streamed responses ---------------------------------------------------- */

START_TEST(stream_is_chunked_and_keeps_pipeline_order)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    char *out = fx_ask(fx, fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\n\r\n",
                       "GET /after", 1);
    const char *head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        "X-Stream: yes\r\n\r\n"; /* no Content-Length on a stream */
    ck_assert_msg(strncmp(out, head, strlen(head)) == 0, "got %s", out);
    char *body = dechunk(out);
    ck_assert_str_eq(body, "chunk-0\nchunk-1\nchunk-2\n");
    free(body);
    const char *end = strstr(out, "0\r\n\r\n"),
               *after =
                   strstr(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length");
    ck_assert(end && after && after > end); /* the pipelined answer waited for the stream */
    ck_assert_int_eq(fx->responses, 2);
    free(out);
    /* A stream begun and ended inside the handler. */
    out = fx_ask(fx, fd, "GET /stream-now HTTP/1.1\r\n\r\n", "0\r\n\r\n", 1);
    ck_assert_ptr_nonnull(strstr(out, "HTTP/1.1 201"));
    body = dechunk(out);
    ck_assert_str_eq(body, "abcde");
    free(body);
    free(out);
    ck_assert_int_eq(fx->last_status, 201);
    fx_stop(fx, fd);
}
END_TEST

START_TEST(stream_on_http10_is_close_delimited)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    fx_send(fd, "GET /stream HTTP/1.0\r\n\r\n");
    int closed;
    char *out = fx_pump(fx, fd, NULL, 0, &closed);
    ck_assert(closed);
    ck_assert_ptr_null(strstr(out, "Transfer-Encoding"));
    ck_assert_ptr_nonnull(strstr(out, "Connection: close\r\n\r\nchunk-0\nchunk-1\nchunk-2\n"));
    free(out);
    fx_stop(fx, fd);
}
END_TEST

/* ---- the client going away --------------------------------------------------- */

START_TEST(hang_up_is_reported_to_the_holder)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    fx_send(fd, "GET /watch HTTP/1.1\r\n\r\n");
    fx_spin(fx, &fx->requests);
    ck_assert_int_eq(fx->requests, 1);
    fx_spin(fx, &fx->gone_why); /* a while, to see nothing happens */
    ck_assert_int_eq(fx->gone_why, 0);
    shutdown(fd, SHUT_WR);
    fx_spin(fx, &fx->gone_why);
    ck_assert_int_eq(fx->gone_why & SC_CONN_HUNG_UP, SC_CONN_HUNG_UP);
    ck_assert_int_eq(fx->last_status, 499); /* the callback answered */
    fx_stop(fx, fd);
}
END_TEST

START_TEST(closed_client_fails_stream_writes)
{
    fixture_t *fx = fx_start(4096, 5000, 100);
    int fd = fx_client(fx);
    char *out = fx_ask(fx, fd, "GET /stream-watch HTTP/1.1\r\n\r\n", "chunked", 1);
    free(out);
    /* A reset: the loop sees the hang-up, then writes fail. */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    fx_spin(fx, &fx->gone_why);
    ck_assert_int_ne(fx->gone_why, 0);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        rc = sc_conn_stream_write(fx->held.c, "more", 4);
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    ck_assert_int_eq(rc, SC_ECLOSED);
    ck_assert(sc_conn_gone(fx->held.c) & SC_CONN_CLOSED);
    ck_assert_int_eq(sc_conn_stream_end(fx->held.c), SC_ECLOSED);
    sc_conn_release(fx->held.c);
    ck_assert_int_eq(fx->responses, 1);
    fx_stop(fx, -1);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    Suite *s = suite_create("http");
    TCase *req = tcase_create("requests");
    tcase_add_test(req, pipelined_requests_answer_in_order);
    tcase_add_test(req, chunked_body_keep_alive_and_http10);
    tcase_add_test(req, expect_continue_comes_before_the_body);
    tcase_add_test(req, every_header_reaches_the_handler);
    tcase_add_test(req, any_method_and_path_reach_the_handler);
    suite_add_tcase(s, req);
    TCase *err = tcase_create("errors");
    tcase_add_test(err, bad_requests_are_400_and_close);
    tcase_add_test(err, header_limit_is_431);
    tcase_add_test(err, slow_request_times_out_and_unanswered_is_500);
    tcase_add_test(err, connections_over_the_limit_get_503);
    suite_add_tcase(s, err);
    TCase *st = tcase_create("streaming");
    tcase_add_test(st, stream_is_chunked_and_keeps_pipeline_order);
    tcase_add_test(st, stream_on_http10_is_close_delimited);
    tcase_add_test(st, hang_up_is_reported_to_the_holder);
    tcase_add_test(st, closed_client_fails_stream_writes);
    suite_add_tcase(s, st);
    return tu_run(s);
}
