/* tests/core/httpclient.c -- the outbound HTTP client (core/httpclient.c and
 * core/httpcall.c) against a small HTTP/1.1 server inside the test (plain
 * sockets, one thread per connection; see httpserver.h): methods and exact
 * headers, response headers before the body, streaming as sent, pause and
 * resume, cancel, timeouts, refusal, the in-flight cap, connection reuse and
 * destroy with calls in flight. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpserver.h"
#include "sc_httpclient.h"
#include "testutil.h"

/* ---- client-side recording ------------------------------------------------- */

typedef struct {
    sc_http_call_t call; /* first: the callbacks cast back */
    sc_http_client_t *client;
    pthread_mutex_t mu;
    int done, headers, data_before_headers, chunks;
    long status_at_headers;
    sc_buf_t got;
    uint64_t chunk_ns[64];
    size_t pause_at[4]; /* on_data pauses the call once got.len reaches each */
    int npause, next_pause;
    int fail_data; /* on_data returns this */
} rec_t;

static sc_log_t quiet;

static int rec_headers(sc_http_call_t *call)
{
    rec_t *r = (rec_t *)call;
    pthread_mutex_lock(&r->mu);
    r->headers++;
    r->status_at_headers = call->status;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static int rec_data(sc_http_call_t *call, const char *p, size_t n)
{
    rec_t *r = (rec_t *)call;
    pthread_mutex_lock(&r->mu);
    if (!r->headers)
        r->data_before_headers++;
    if (r->chunks < 64)
        r->chunk_ns[r->chunks] = sc_mono_ns();
    r->chunks++;
    sc_buf_append(&r->got, p, n);
    if (r->next_pause < r->npause && r->got.len >= r->pause_at[r->next_pause]) {
        ck_assert_int_eq(sc_http_client_pause(r->client, call), 0);
        r->next_pause++;
    }
    pthread_mutex_unlock(&r->mu);
    return r->fail_data;
}

static void rec_done(sc_http_call_t *call)
{
    rec_t *r = (rec_t *)call;
    pthread_mutex_lock(&r->mu);
    r->done++;
    pthread_mutex_unlock(&r->mu);
}

/* A call to 'path' on 'port', streamed when 'stream' (on_data), recording
 * headers and completion either way. */
static rec_t *rec_new(sc_http_client_t *client, int port, const char *path, int stream)
{
    rec_t *r = calloc(1, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    r->client = client;
    snprintf(r->call.url, sizeof(r->call.url), "http://127.0.0.1:%d%s", port, path);
    r->call.timeout_ms = 10000;
    r->call.on_headers = rec_headers;
    r->call.on_data = stream ? rec_data : NULL;
    r->call.done = rec_done;
    return r;
}

static void rec_free(rec_t *r)
{
    sc_http_call_clear(&r->call);
    sc_buf_free(&r->got);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* Reads an int field of 'r' under its lock. */
static int rec_get(rec_t *r, const int *field)
{
    pthread_mutex_lock(&r->mu);
    int v = *field;
    pthread_mutex_unlock(&r->mu);
    return v;
}

static size_t rec_len(rec_t *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->got.len;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* Waits up to 'ms' for *field >= want; returns the last value seen. */
static int wait_for(rec_t *r, const int *field, int want, int ms)
{
    int v;
    for (int t = 0; (v = rec_get(r, field)) < want && t < ms; t++)
        usleep(1000);
    return v;
}

static sc_http_client_t *client_new(int max_inflight, size_t max_queue)
{
    sc_log_init(&quiet, NULL, SC_ERROR);
    sc_http_client_t *c;
    ck_assert_int_eq(sc_http_client_create(&c, max_inflight, max_queue, &quiet), 0);
    return c;
}

/* Submits r's call and waits for its end. */
static void submit_wait(sc_http_client_t *c, rec_t *r)
{
    ck_assert_int_eq(sc_http_client_submit(c, &r->call), 0);
    ck_assert_int_eq(wait_for(r, &r->done, 1, 20000), 1);
}

/* Each test gets a fresh server (S), started and stopped by a fixture. */
static srv_t *S;

static void server_up(void)
{
    S = srv_start();
}

static void server_down(void)
{
    srv_stop(S);
}

static double ms_since(uint64_t t0)
{
    return (double)(sc_mono_ns() - t0) / 1e6;
}

/* ---- requests: methods and headers ------------------------------------------ */

START_TEST(post_and_get_send_exactly_the_headers_asked_for)
{
    sc_http_client_t *c = client_new(4, 16);
    rec_t *r = rec_new(c, S->port, "/echo", 0);
    snprintf(r->call.method, sizeof(r->call.method), "POST");
    ck_assert_int_eq(sc_http_call_add_header(&r->call, "Content-Type", "application/json"), 0);
    ck_assert_int_eq(sc_http_call_add_header(&r->call, "anthropic-version", "2023-06-01"), 0);
    ck_assert_int_eq(sc_http_call_add_header(&r->call, "x-api-key", " sk-test "), 0);
    ck_assert_int_eq(sc_http_call_add_header(&r->call, "OpenAI-Organization", "org-1"), 0);
    ck_assert_int_eq(sc_http_call_add_header(&r->call, "Host", "evil.example"), 0); /* skipped */
    ck_assert_int_eq(sc_http_call_add_header(&r->call, "X-Bad", "a\r\nInjected: 1"), SC_EINVAL);
    ck_assert_int_eq(sc_http_call_add_header(&r->call, "Bad Name", "v"), SC_EINVAL);
    /* 2 MiB: above curl's Expect: 100-continue threshold. */
    for (int i = 0; i < 2 << 20; i += 64)
        sc_buf_puts(&r->call.body,
                    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n");
    submit_wait(c, r);
    const char *got = r->call.response.data;
    ck_assert_int_eq(r->call.error, 0);
    ck_assert_int_eq(r->call.status, 200);
    ck_assert_int_eq(r->call.http_version, 11);
    ck_assert_str_eq(r->call.error_text, "");
    ck_assert_ptr_nonnull(strstr(got, "POST /echo HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nanthropic-version: 2023-06-01\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nx-api-key: sk-test\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nOpenAI-Organization: org-1\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nContent-Length: 2097152\r\n"));
    ck_assert_ptr_null(strcasestr(got, "Expect:"));
    ck_assert_ptr_null(strcasestr(got, "Accept:"));
    ck_assert_ptr_null(strcasestr(got, "Accept-Encoding"));
    ck_assert_ptr_null(strcasestr(got, "evil.example"));
    ck_assert_ptr_null(strcasestr(got, "Injected"));
    ck_assert_ptr_null(strcasestr(got, "Authorization"));
    const char *body = strstr(got, "\r\n\r\n") + 4;
    ck_assert_uint_eq(strlen(body), r->call.body.len);
    ck_assert_int_eq(memcmp(body, r->call.body.data, r->call.body.len), 0);
    ck_assert_int_eq(r->headers, 1);
    ck_assert_str_eq(sc_http_call_header(&r->call, "content-type"), "text/plain");
    ck_assert_int_eq(r->call.ttfb_us > 0 && r->call.total_us >= r->call.ttfb_us, 1);
    ck_assert_uint_eq(r->call.body_bytes, r->call.response.len);
    rec_free(r);

    /* GET: no body headers at all; Accept-Encoding only because it is asked. */
    r = rec_new(c, S->port, "/echo?x=1", 0);
    snprintf(r->call.method, sizeof(r->call.method), "GET");
    snprintf(r->call.auth, sizeof(r->call.auth), "Bearer k1");
    sc_http_call_add_header(&r->call, "Accept-Encoding", "identity");
    sc_http_call_add_header(&r->call, "X-Empty", "");
    submit_wait(c, r);
    got = r->call.response.data;
    ck_assert_int_eq(r->call.error, 0);
    ck_assert_ptr_nonnull(strstr(got, "GET /echo?x=1 HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nAuthorization: Bearer k1\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nAccept-Encoding: identity\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nX-Empty:"));
    ck_assert_ptr_null(strcasestr(got, "Content-Type"));
    ck_assert_ptr_null(strcasestr(got, "Content-Length"));
    ck_assert_ptr_null(strcasestr(got, "Accept:"));
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

START_TEST(other_methods_are_sent_as_given)
{
    sc_http_client_t *c = client_new(4, 16);
    const char *methods[] = {"PUT", "PATCH", "DELETE", "OPTIONS", "GET"};
    const char *bodies[] = {"{\"a\":1}", "", NULL, NULL, "q"};
    for (int i = 0; i < 5; i++) {
        rec_t *r = rec_new(c, S->port, "/echo", 0);
        snprintf(r->call.method, sizeof(r->call.method), "%s", methods[i]);
        if (bodies[i])
            sc_buf_puts(&r->call.body, bodies[i]);
        if (bodies[i] && !bodies[i][0])
            sc_buf_reserve(&r->call.body, 1); /* an empty but present body */
        ck_assert_int_eq(sc_http_client_call(c, &r->call), 0);
        char line[64];
        snprintf(line, sizeof(line), "%s /echo HTTP/1.1\r\n", methods[i]);
        const char *got = r->call.response.data;
        ck_assert_msg(strncmp(got, line, strlen(line)) == 0, "%s: %s", methods[i], got);
        if (bodies[i]) {
            char cl[64];
            snprintf(cl, sizeof(cl), "\r\nContent-Length: %zu\r\n", strlen(bodies[i]));
            ck_assert_ptr_nonnull(strstr(got, cl));
            ck_assert_str_eq(strstr(got, "\r\n\r\n") + 4, bodies[i]);
        } else {
            ck_assert_ptr_null(strcasestr(got, "Content-Length"));
        }
        ck_assert_ptr_null(strcasestr(got, "Content-Type")); /* no form default */
        rec_free(r);
    }
    /* Not a token: refused at submit, done not called. */
    rec_t *r = rec_new(c, S->port, "/echo", 0);
    snprintf(r->call.method, sizeof(r->call.method), "GE T");
    ck_assert_int_eq(sc_http_client_submit(c, &r->call), SC_EINVAL);
    ck_assert_int_eq(r->done, 0);
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

/* The synchronous helper and the legacy form the remote embedder and the
 * re-inference/webhook deliveries use. */
START_TEST(legacy_sync_call_still_works)
{
    sc_http_client_t *c = client_new(2, 16);
    sc_http_call_t call;
    memset(&call, 0, sizeof(call));
    int user;
    call.data = &user;
    snprintf(call.url, sizeof(call.url), "http://127.0.0.1:%d/echo", S->port);
    snprintf(call.auth, sizeof(call.auth), "Bearer s3cret");
    call.timeout_ms = 5000;
    sc_buf_puts(&call.body, "{\"input\":\"x\"}");
    ck_assert_int_eq(sc_http_client_call(c, &call), 0);
    ck_assert_int_eq(call.status, 200);
    ck_assert_ptr_eq(call.data, &user);
    ck_assert(call.done == NULL); /* restored */
    const char *got = call.response.data;
    ck_assert_ptr_nonnull(strstr(got, "POST /echo HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nContent-Type: application/json\r\n"));
    ck_assert_ptr_nonnull(strstr(got, "\r\nAuthorization: Bearer s3cret\r\n"));
    ck_assert_str_eq(strstr(got, "\r\n\r\n") + 4, "{\"input\":\"x\"}");
    sc_http_call_clear(&call);
    /* No body: GET. */
    memset(&call, 0, sizeof(call));
    snprintf(call.url, sizeof(call.url), "http://127.0.0.1:%d/echo", S->port);
    ck_assert_int_eq(sc_http_client_call(c, &call), 0);
    ck_assert_ptr_nonnull(strstr(call.response.data, "GET /echo HTTP/1.1\r\n"));
    /* The same call again, reused after done. */
    ck_assert_int_eq(sc_http_client_call(c, &call), 0);
    ck_assert_int_eq(call.status, 200);
    ck_assert_ptr_nonnull(strstr(call.response.data, "GET /echo HTTP/1.1\r\n"));
    ck_assert_int_eq(tu_count(call.response.data, "GET /echo"), 1);
    sc_http_call_clear(&call);
    sc_http_client_destroy(c);
}
END_TEST

/* ---- responses: headers, streaming ------------------------------------------- */

START_TEST(headers_come_before_the_body_with_status_and_fields)
{
    sc_http_client_t *c = client_new(4, 16);
    rec_t *r = rec_new(c, S->port, "/status", 1);
    submit_wait(c, r);
    ck_assert_int_eq(r->call.error, 0); /* a 429 is an answer, not an error */
    ck_assert_int_eq(r->headers, 1);
    ck_assert_int_eq(r->status_at_headers, 429);
    ck_assert_int_eq(r->data_before_headers, 0);
    ck_assert_str_eq(r->got.data, "{\"error\":\"rate\"}");
    ck_assert_uint_eq(r->call.response.len, 0); /* streamed, not buffered */
    ck_assert_str_eq(sc_http_call_header(&r->call, "retry-after"), "7");
    ck_assert_str_eq(sc_http_call_header(&r->call, "X-Request-Id"), "req-123");
    ck_assert_str_eq(sc_http_call_header(&r->call, "openai-processing-ms"), "12");
    ck_assert_ptr_null(sc_http_call_header(&r->call, "anthropic-ratelimit"));
    /* All fields, in order, as sent. */
    const char *want[][2] = {{"Content-Length", "16"},
                             {"X-Conn", "1"},
                             {"Content-Type", "application/json"},
                             {"Retry-After", "7"},
                             {"x-request-id", "req-123"},
                             {"openai-processing-ms", "12"}};
    size_t pos = 0, i = 0;
    const char *n, *v;
    while (sc_http_call_header_next(&r->call, &pos, &n, &v) == 0) {
        ck_assert_uint_lt(i, 6);
        ck_assert_str_eq(n, want[i][0]);
        ck_assert_str_eq(v, want[i][1]);
        i++;
    }
    ck_assert_uint_eq(i, 6);
    ck_assert_uint_eq(r->call.resp_header_count, 6);
    rec_free(r);

    /* Bounded: 100 fields pass, 200 end the call. */
    r = rec_new(c, S->port, "/headers?n=100", 0);
    ck_assert_int_eq(sc_http_client_call(c, &r->call), 0);
    ck_assert_uint_eq(r->call.resp_header_count, 102);
    ck_assert_str_eq(sc_http_call_header(&r->call, "X-H-99"), "v99");
    rec_free(r);
    r = rec_new(c, S->port, "/headers?n=200", 0);
    ck_assert_int_eq(sc_http_client_call(c, &r->call), SC_EREMOTE);
    ck_assert_ptr_nonnull(strstr(r->call.error_text, "response headers over"));
    ck_assert_int_eq(r->headers, 0);
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(stream_events_arrive_as_the_server_sends_them)
{
    sc_http_client_t *c = client_new(4, 16);
    rec_t *r = rec_new(c, S->port, "/stream?n=6&delay=100", 1);
    submit_wait(c, r);
    ck_assert_int_eq(r->call.error, 0);
    ck_assert_int_eq(r->headers, 1);
    ck_assert_int_eq(r->data_before_headers, 0);
    ck_assert_str_eq(sc_http_call_header(&r->call, "Content-Type"), "text/event-stream");
    ck_assert_str_eq(r->got.data,
                     "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: 5\n\n");
    /* One callback per event (100 ms apart), the first well before the last
     * was sent. */
    ck_assert_int_eq(r->chunks, 6);
    ck_assert_int_eq(atomic_load(&S->sent), 6);
    ck_assert(r->chunk_ns[0] < S->sent_ns[5]);
    ck_assert_double_ge((double)(S->sent_ns[5] - r->chunk_ns[0]) / 1e6, 400);
    int64_t lag[6];
    for (int i = 0; i < 6; i++)
        lag[i] = (int64_t)r->chunk_ns[i] - (int64_t)S->sent_ns[i];
    qsort(lag, 6, sizeof(lag[0]), cmp_i64);
    double median_ms = (double)(lag[2] + lag[3]) / 2e6;
    printf("stream: send-to-on_data median %.3f ms\n", median_ms);
    ck_assert_double_lt(median_ms, 20); /* < 1 ms on an idle machine; loose for sanitizers */
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

START_TEST(on_data_can_end_the_call)
{
    sc_http_client_t *c = client_new(4, 16);
    rec_t *r = rec_new(c, S->port, "/stream?n=50&delay=20", 1);
    r->fail_data = SC_ETOOBIG;
    submit_wait(c, r);
    ck_assert_int_eq(r->call.error, SC_ETOOBIG);
    ck_assert_int_eq(r->chunks, 1);
    ck_assert_ptr_nonnull(strstr(r->call.error_text, "on_data"));
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

/* ---- flow control ------------------------------------------------------------------ */

#define BIG (24 << 20) /* more than loopback socket buffers hold */

START_TEST(pause_and_resume_keep_every_byte_in_order)
{
    sc_http_client_t *c = client_new(4, 16);
    char path[64];
    snprintf(path, sizeof(path), "/big?n=%d", BIG);
    rec_t *r = rec_new(c, S->port, path, 1);
    r->call.idle_timeout_ms = 150; /* not counted while paused */
    r->pause_at[0] = 1 << 20;
    r->pause_at[1] = 8 << 20;
    r->pause_at[2] = 16 << 20;
    r->npause = 3;
    ck_assert_int_eq(sc_http_client_submit(c, &r->call), 0);
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(wait_for(r, &r->next_pause, k + 1, 10000), k + 1);
        /* The server fills the socket buffers, then blocks. */
        long sent1 = -1, prev;
        for (int t = 0; t < 100 && (prev = sent1, sent1 = atomic_load(&S->big_sent)) != prev; t++)
            usleep(100 * 1000);
        size_t n1 = rec_len(r);
        usleep(300 * 1000);
        /* Paused: nothing delivered, and the server is held back by TCP. */
        ck_assert_uint_eq(rec_len(r), n1);
        ck_assert_int_eq(atomic_load(&S->big_sent), sent1);
        ck_assert_int_lt(sent1, BIG);
        ck_assert_int_eq(rec_get(r, &r->done), 0);
        ck_assert_int_eq(sc_http_client_resume(c, &r->call), 0);
    }
    ck_assert_int_eq(wait_for(r, &r->done, 1, 20000), 1);
    ck_assert_int_eq(r->call.error, 0);
    ck_assert_uint_eq(r->got.len, BIG);
    ck_assert_uint_eq(r->call.body_bytes, BIG);
    for (size_t i = 0; i < BIG; i++)
        if ((unsigned char)r->got.data[i] != i % 251)
            ck_abort_msg("byte %zu is %u, want %zu", i, (unsigned char)r->got.data[i], i % 251);
    ck_assert_int_eq(sc_http_client_resume(c, &r->call), SC_ENOTFOUND);
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

START_TEST(a_call_paused_too_long_times_out)
{
    sc_http_client_t *c = client_new(4, 16);
    char path[64];
    snprintf(path, sizeof(path), "/big?n=%d", BIG);
    rec_t *r = rec_new(c, S->port, path, 1);
    r->call.pause_timeout_ms = 200;
    r->pause_at[0] = 1;
    r->npause = 1;
    uint64_t t0 = sc_mono_ns();
    submit_wait(c, r);
    ck_assert_int_eq(r->call.error, SC_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(r->call.error_text, "paused"));
    ck_assert_double_ge(ms_since(t0), 190);
    ck_assert_double_lt(ms_since(t0), 5000);
    ck_assert_uint_lt(r->got.len, BIG);
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

/* ---- cancel -------------------------------------------------------------------------- */

START_TEST(cancel_ends_a_queued_call_and_a_running_stream)
{
    sc_http_client_t *c = client_new(1, 16);
    rec_t *run = rec_new(c, S->port, "/stream?n=1000&delay=50", 1);
    rec_t *queued = rec_new(c, S->port, "/echo", 0);
    ck_assert_int_eq(sc_http_client_submit(c, &run->call), 0);
    ck_assert_int_eq(sc_http_client_submit(c, &queued->call), 0);
    ck_assert_int_ge(wait_for(run, &run->chunks, 2, 10000), 2);
    uint64_t t0 = sc_mono_ns();
    ck_assert_int_eq(sc_http_client_cancel(c, &queued->call), 0);
    ck_assert_int_eq(wait_for(queued, &queued->done, 1, 5000), 1);
    ck_assert_double_lt(ms_since(t0), 1000);
    ck_assert_int_eq(queued->call.error, SC_ECANCELED);
    ck_assert_int_eq(queued->headers, 0);
    ck_assert_int_eq(rec_get(run, &run->done), 0); /* the stream goes on */
    ck_assert_int_eq(sc_http_client_cancel(c, &run->call), 0);
    ck_assert_int_eq(wait_for(run, &run->done, 1, 5000), 1);
    ck_assert_int_eq(run->call.error, SC_ECANCELED);
    ck_assert_str_eq(run->call.error_text, "canceled");
    /* Ended: cancelling again does nothing, done stays at one. */
    ck_assert_int_eq(sc_http_client_cancel(c, &run->call), SC_ENOTFOUND);
    ck_assert_int_eq(sc_http_client_cancel(c, &queued->call), SC_ENOTFOUND);
    usleep(100 * 1000);
    ck_assert_int_eq(rec_get(run, &run->done), 1);
    ck_assert_int_eq(rec_get(queued, &queued->done), 1);
    /* The slot is free again. */
    rec_t *next = rec_new(c, S->port, "/echo", 0);
    ck_assert_int_eq(sc_http_client_call(c, &next->call), 0);
    rec_free(next);
    rec_free(run);
    rec_free(queued);
    sc_http_client_destroy(c);
}
END_TEST

/* Cancels racing normal completion: every call ends exactly once, as
 * canceled exactly when cancel said it would be. */
START_TEST(cancel_racing_completion_ends_each_call_once)
{
    sc_http_client_t *c = client_new(8, 1024);
    enum { N = 300 };
    rec_t *r[N];
    int crc[N];
    unsigned seed = 7;
    for (int i = 0; i < N; i++) {
        r[i] = rec_new(c, S->port, i % 2 ? "/echo" : "/stream?n=3&delay=1", i % 2 == 0);
        ck_assert_int_eq(sc_http_client_submit(c, &r[i]->call), 0);
        if (i % 3 == 1)
            usleep(rand_r(&seed) % 3000);
        crc[i] = sc_http_client_cancel(c, &r[i]->call);
        ck_assert(crc[i] == 0 || crc[i] == SC_ENOTFOUND);
    }
    int canceled = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(wait_for(r[i], &r[i]->done, 1, 10000), 1);
        if (crc[i] == 0) {
            ck_assert_int_eq(r[i]->call.error, SC_ECANCELED);
            canceled++;
        } else {
            ck_assert_int_eq(r[i]->call.error, 0);
            ck_assert_int_eq(r[i]->call.status, 200);
        }
    }
    usleep(100 * 1000);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(rec_get(r[i], &r[i]->done), 1);
        rec_free(r[i]);
    }
    ck_assert_int_gt(canceled, 0);
    sc_http_client_destroy(c);
}
END_TEST

/* ---- timeouts and failures ------------------------------------------------------------ */

START_TEST(idle_timeout_ends_a_silent_stream)
{
    sc_http_client_t *c = client_new(4, 16);
    rec_t *r = rec_new(c, S->port, "/drip", 1);
    r->call.idle_timeout_ms = 300;
    uint64_t t0 = sc_mono_ns();
    submit_wait(c, r);
    ck_assert_int_eq(r->call.error, SC_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(r->call.error_text, "no byte received for 300 ms"));
    ck_assert_str_eq(r->got.data, "data: first\n\n");
    ck_assert_double_ge(ms_since(t0), 290);
    ck_assert_double_lt(ms_since(t0), 3000);
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

START_TEST(total_timeout_ends_a_slow_call)
{
    sc_http_client_t *c = client_new(4, 16);
    rec_t *r = rec_new(c, S->port, "/sleep?ms=5000", 0);
    r->call.timeout_ms = 300;
    uint64_t t0 = sc_mono_ns();
    ck_assert_int_eq(sc_http_client_call(c, &r->call), SC_ETIMEDOUT);
    ck_assert_double_ge(ms_since(t0), 290);
    ck_assert_double_lt(ms_since(t0), 3000);
    ck_assert_str_ne(r->call.error_text, "");
    ck_assert_int_eq(r->call.status, 0);
    rec_free(r);
    sc_http_client_destroy(c);
}
END_TEST

START_TEST(refused_connection_is_a_remote_error)
{
    /* A bound socket that does not listen: connecting to it is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    sc_http_client_t *c = client_new(4, 16);
    rec_t *r = rec_new(c, ntohs(a.sin_port), "/", 0);
    r->call.connect_timeout_ms = 2000;
    ck_assert_int_eq(sc_http_client_call(c, &r->call), SC_EREMOTE);
    ck_assert_int_eq(r->call.status, 0);
    ck_assert_str_ne(r->call.error_text, "");
    ck_assert_int_eq(r->headers, 0);
    rec_free(r);
    /* Not http(s): refused by the client. */
    r = rec_new(c, 1, "", 0);
    snprintf(r->call.url, sizeof(r->call.url), "file:///etc/passwd");
    ck_assert_int_eq(sc_http_client_call(c, &r->call), SC_EINVAL);
    ck_assert_uint_eq(r->call.response.len, 0);
    rec_free(r);
    sc_http_client_destroy(c);
    close(fd);
}
END_TEST

/* ---- capacity, reuse, shutdown --------------------------------------------------------- */

START_TEST(two_hundred_calls_with_sixteen_in_flight_all_complete)
{
    sc_http_client_t *c = client_new(16, 256);
    enum { N = 200 };
    rec_t *r[N];
    for (int i = 0; i < N; i++) {
        r[i] = rec_new(c, S->port, "/sleep?ms=20", 0);
        ck_assert_int_eq(sc_http_client_submit(c, &r[i]->call), 0);
    }
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(wait_for(r[i], &r[i]->done, 1, 30000), 1);
        ck_assert_int_eq(r[i]->call.error, 0);
        ck_assert_int_eq(r[i]->call.status, 200);
        ck_assert_str_eq(r[i]->call.response.data, "ok");
        rec_free(r[i]);
    }
    int max = atomic_load(&S->max_active);
    printf("in flight at once: %d of 16; connections: %d\n", max, atomic_load(&S->accepted));
    ck_assert_int_le(max, 16);
    ck_assert_int_ge(max, 8);
    ck_assert_int_le(atomic_load(&S->accepted), 32);
    sc_http_client_destroy(c);
}
END_TEST

START_TEST(sequential_calls_reuse_one_connection)
{
    sc_http_client_opts_t o = {.max_inflight = 4, .max_queue = 16, .max_host_connections = 2};
    sc_http_client_t *c;
    sc_log_init(&quiet, NULL, SC_ERROR);
    ck_assert_int_eq(sc_http_client_create_opts(&c, &o, &quiet), 0);
    for (int i = 0; i < 50; i++) {
        rec_t *r = rec_new(c, S->port, i % 2 ? "/echo" : "/stream?n=2&delay=1", i % 2);
        if (i % 5 == 0)
            sc_buf_puts(&r->call.body, "{}");
        ck_assert_int_eq(sc_http_client_call(c, &r->call), 0);
        ck_assert_int_eq(r->call.status, 200);
        rec_free(r);
    }
    printf("50 calls: %d connections\n", atomic_load(&S->accepted));
    ck_assert_int_le(atomic_load(&S->accepted), 2);
    sc_http_client_destroy(c);
}
END_TEST

START_TEST(destroy_ends_calls_in_flight_once)
{
    sc_http_client_t *c = client_new(2, 16);
    rec_t *r[5];
    for (int i = 0; i < 5; i++) {
        r[i] = rec_new(c, S->port, i == 4 ? "/stream?n=1000&delay=20" : "/hang", i == 4);
        ck_assert_int_eq(sc_http_client_submit(c, &r[i]->call), 0);
    }
    usleep(300 * 1000);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(rec_get(r[i], &r[i]->done), 0);
    sc_http_client_destroy(c);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(r[i]->done, 1);
        ck_assert_int_eq(r[i]->call.error, SC_ECLOSED);
        rec_free(r[i]);
    }
}
END_TEST

START_TEST(a_full_queue_and_a_double_submit_are_refused)
{
    sc_http_client_t *c = client_new(1, 1);
    rec_t *a = rec_new(c, S->port, "/sleep?ms=5000", 0);
    rec_t *b = rec_new(c, S->port, "/echo", 0);
    rec_t *d = rec_new(c, S->port, "/echo", 0);
    ck_assert_int_eq(sc_http_client_submit(c, &a->call), 0);
    for (int t = 0; atomic_load(&S->active) < 1 && t < 5000; t++)
        usleep(1000);
    ck_assert_int_eq(sc_http_client_submit(c, &b->call), 0);
    ck_assert_int_eq(sc_http_client_submit(c, &d->call), SC_EBUSY);
    ck_assert_int_eq(sc_http_client_submit(c, &a->call), SC_EINVAL); /* running */
    ck_assert_int_eq(sc_http_client_submit(c, &b->call), SC_EINVAL); /* queued */
    sc_http_client_destroy(c);
    ck_assert_int_eq(a->done, 1);
    ck_assert_int_eq(b->done, 1);
    ck_assert_int_eq(d->done, 0);
    ck_assert_int_eq(a->call.error, SC_ECLOSED);
    ck_assert_int_eq(b->call.error, SC_ECLOSED);
    rec_free(a);
    rec_free(b);
    rec_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("httpclient");
    TCase *tc = tcase_create("httpclient");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, server_up, server_down);
    tcase_add_test(tc, post_and_get_send_exactly_the_headers_asked_for);
    tcase_add_test(tc, other_methods_are_sent_as_given);
    tcase_add_test(tc, legacy_sync_call_still_works);
    tcase_add_test(tc, headers_come_before_the_body_with_status_and_fields);
    tcase_add_test(tc, stream_events_arrive_as_the_server_sends_them);
    tcase_add_test(tc, on_data_can_end_the_call);
    tcase_add_test(tc, pause_and_resume_keep_every_byte_in_order);
    tcase_add_test(tc, a_call_paused_too_long_times_out);
    tcase_add_test(tc, cancel_ends_a_queued_call_and_a_running_stream);
    tcase_add_test(tc, cancel_racing_completion_ends_each_call_once);
    tcase_add_test(tc, idle_timeout_ends_a_silent_stream);
    tcase_add_test(tc, total_timeout_ends_a_slow_call);
    tcase_add_test(tc, refused_connection_is_a_remote_error);
    tcase_add_test(tc, two_hundred_calls_with_sixteen_in_flight_all_complete);
    tcase_add_test(tc, sequential_calls_reuse_one_connection);
    tcase_add_test(tc, destroy_ends_calls_in_flight_once);
    tcase_add_test(tc, a_full_queue_and_a_double_submit_are_refused);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
