/* tests/integration/proxy_streams.c -- the proxy's streams through the real
 * binary: clients and upstreams that leave mid-stream, 200 concurrent streams
 * compared event by event with the mock's own, a slow client (flow control),
 * replay pacing, and proxied entries seen by the native API. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sc_common.h"
#include "testutil.h"

#include "proxy_fixture.h"

START_TEST(a_client_leaving_mid_stream_does_not_stop_the_recording)
{
    char *b = chat("I will not wait", 1);
    char *req = request_text("POST", "/v1/chat/completions",
                             KEY_A "X-Mock-Chunks: 6\r\nX-Mock-Chunk-Delay-Ms: 100\r\n", b);
    int fd = tu_connect(srv.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(tu_send_all(fd, req, strlen(req)), 0);
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0); /* the head and the first event */
    ck_assert_int_gt((int)n, 0);
    buf[n] = '\0';
    ck_assert(strstr(buf, "X-Cache: MISS"));
    close(fd);
    resp_t head;
    parse_resp(buf, (size_t)n, &head); /* the upstream finishes about 0.8 s after its first event */
    wait_stored(srv.port, &head);
    resp_free(&head);
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert_int_eq(tu_count(r.body, "data: "), 9); /* role, 6 pieces, finish, [DONE] */
    resp_free(&r);
    free(req);
    free(b);
}
END_TEST

START_TEST(an_upstream_dying_mid_stream_cuts_the_client_and_stores_nothing)
{
    char *b = chat("the upstream dies", 1);
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A "X-Mock-Fail-After-Chunks: 3\r\n", b);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.complete, 0); /* no last chunk: the client sees the cut */
    ck_assert_int_eq(tu_count(r.body, "data: "), 3);
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    ck_assert(r.complete);
    resp_free(&r);
    free(b);
    /* A JSON answer cut half-way: the client's body is cut too. */
    b = chat("the upstream dies again", 0);
    r = post(srv.port, "/v1/chat/completions", KEY_A "X-Mock-Fail-After-Chunks: 0\r\n", b);
    ck_assert(!r.complete || r.status >= 500);
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    free(b);
}
END_TEST

/* The chunks' content deltas and finish reasons, one line each: what two
 * streams of the same answer share (ids and times differ). */
static char *stream_shape(const char *body)
{
    char *out = strdup("");
    for (const char *p = tu_find(body, "data: "); p; p = tu_find(p + 6, "data: ")) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p - 6) : strlen(p + 6);
        json_t *j = json_loadb(p + 6, len, 0, NULL);
        json_t *c = json_array_get(json_object_get(j, "choices"), 0);
        const char *t = json_string_value(json_object_get(json_object_get(c, "delta"), "content"));
        const char *f = json_string_value(json_object_get(c, "finish_reason"));
        char *more;
        ck_assert_int_gt(
            asprintf(&more, "%s%s|%s|%s\n", out, j ? "" : "raw", t ? t : "-", f ? f : "-"), 0);
        free(out);
        out = more;
        json_decref(j);
    }
    return out;
}

typedef struct {
    int port, i;
    resp_t r;
} conc_t;

static void *one_stream(void *arg)
{
    conc_t *c = arg;
    char q[64];
    snprintf(q, sizeof(q), "concurrent question number %d", c->i);
    char *b = chat(q, 1);
    c->r = post(c->port, "/v1/chat/completions", KEY_A "X-Mock-Chunks: 8\r\n", b);
    free(b);
    return NULL;
}

START_TEST(two_hundred_concurrent_streams_lose_and_reorder_nothing)
{
    enum { N = 200 };
    static conc_t c[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        c[i] = (conc_t){.port = srv.port, .i = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, one_stream, &c[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(c[i].r.status == 200 && c[i].r.complete, "stream %d: %d", i, c[i].r.status);
        ck_assert_str_eq(hdr(&c[i].r, "X-Cache"), "MISS");
        char q[64];
        snprintf(q, sizeof(q), "concurrent question number %d", i);
        char *b = chat(q, 1);
        resp_t d = post(mock_port, "/v1/chat/completions", KEY_A "X-Mock-Chunks: 8\r\n", b);
        char *got = stream_shape(c[i].r.body), *want = stream_shape(d.body);
        ck_assert_str_eq(got, want);
        ck_assert_int_eq(tu_count(got, "\n"), 11); /* role, 8 pieces, finish, [DONE] */
        free(got);
        free(want);
        free(b);
        resp_free(&d);
        resp_free(&c[i].r);
    }
}
END_TEST

START_TEST(a_slow_client_pauses_the_upstream_and_loses_nothing)
{
    tu_server_t s;
    const char *more[] = {"--proxy-buffer-high", "4096", "--proxy-buffer-low", "1024", NULL};
    server_with(&s, more);
    char *b = chat("a long answer for a slow reader", 1);
    /* About 5 MB of events: more than the sockets between us hold. */
    char *req = request_text("POST", "/v1/chat/completions",
                             KEY_A "X-Mock-Chunks: 20000\r\nX-Mock-Answer-Repeat: 10000\r\n", b);
    /* A modest receive window (set before connecting), and no reading for a
     * while: the sockets fill and the proxy's output backs up. */
    int fd = socket(AF_INET, SOCK_STREAM, 0), window = 65536;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)s.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &window, sizeof(window));
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(tu_send_all(fd, req, strlen(req)), 0);
    usleep(800 * 1000);
    size_t cap = 1 << 20, len = 0;
    char *raw = malloc(cap);
    for (;;) {
        if (len + 65536 > cap)
            raw = realloc(raw, cap *= 2);
        ssize_t n = recv(fd, raw + len, 65536, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    resp_t r;
    parse_resp(raw, len, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(r.complete);
    ck_assert_int_eq(tu_count(r.body, "data: "), 20003); /* role, 20000 pieces, finish, [DONE] */
    static char text[300000];
    chat_text(r.body, 1, text, sizeof(text));
    ck_assert_int_eq((int)strlen(text), 10000 * 24 - 1); /* every piece, in order */
    for (int i = 0; i < 10000; i++)
        ck_assert(strncmp(text + i * 24, text, 23) == 0);
    resp_free(&r);
    r = http(s.port, "GET", "/metrics", NULL, NULL);
    const char *pauses = strstr(r.body, "\nsemcached_proxy_upstream_pauses_total ");
    ck_assert_ptr_nonnull(pauses);
    ck_assert_int_gt(atoi(pauses + 39), 0);
    resp_free(&r);
    free(raw);
    free(req);
    free(b);
    tu_server_destroy(&s);
}
END_TEST

START_TEST(a_streamed_hit_replays_at_the_recorded_pace_when_asked)
{
    tu_server_t s;
    const char *more[] = {"--stream-replay-pace", "original", NULL};
    server_with(&s, more);
    char *b = chat("slowly, please", 1);
    /* Gaps long enough that a paced replay (6 x 200 ms) and one at once stay
     * far apart under ASan on a loaded machine (60-ms gaps left 300 ms). */
    resp_t r = post(s.port, "/v1/chat/completions", KEY_A "X-Mock-Chunk-Delay-Ms: 200\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    wait_stored(s.port, &r);
    resp_free(&r);
    uint64_t t0 = sc_mono_ns();
    r = post(s.port, "/v1/chat/completions", KEY_A, b);
    double ms = (double)(sc_mono_ns() - t0) / 1e6;
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert(r.complete);
    ck_assert_int_eq(tu_count(r.body, "data: "), 7); /* role, 4 pieces, finish, [DONE] */
    /* 6 gaps of 200 ms were recorded: the replay takes them again. */
    ck_assert_msg(ms >= 1000, "the paced replay took %.0f ms", ms);
    resp_free(&r);
    tu_server_destroy(&s);
    /* The default replays at once. */
    r = post(srv.port, "/v1/chat/completions", KEY_A "X-Mock-Chunk-Delay-Ms: 200\r\n", b);
    wait_stored(srv.port, &r);
    resp_free(&r);
    t0 = sc_mono_ns();
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ms = (double)(sc_mono_ns() - t0) / 1e6;
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert_msg(ms < 600, "an unpaced replay took %.0f ms (the recorded gaps: 1200)", ms);
    resp_free(&r);
    free(b);
}
END_TEST

/* The "response" objects of a Responses stream's events, in order (at most 'max'). */
static int response_objects(const char *body, json_t **out, int max)
{
    int n = 0;
    for (const char *p = tu_find(body, "data: "); p && n < max; p = tu_find(p + 6, "data: ")) {
        const char *e = strchr(p, '\n');
        json_t *ev = json_loadb(p + 6, e ? (size_t)(e - p - 6) : strlen(p + 6), 0, NULL);
        json_t *r = json_object_get(ev, "response");
        if (json_is_object(r))
            out[n++] = json_incref(r);
        json_decref(ev);
    }
    return n;
}

START_TEST(a_streamed_responses_hit_has_its_own_id_time_model_and_metadata)
{
    const char *fmt = "{\"model\":\"gpt-4.1\",\"input\":\"whose response is it\",\"stream\":true%s}";
    char first[256], second[256], plain[256];
    snprintf(first, sizeof(first), fmt, ",\"metadata\":{\"who\":\"first\"},\"user\":\"u1\"");
    snprintf(second, sizeof(second), fmt, ",\"metadata\":{\"who\":\"second\"}");
    snprintf(plain, sizeof(plain), fmt, "");
    resp_t miss = post(srv.port, "/v1/responses", KEY_A, first);
    ck_assert_str_eq(hdr(&miss, "X-Cache"), "MISS");
    wait_stored(srv.port, &miss);
    json_t *m[8], *h[8];
    int nm = response_objects(miss.body, m, 8);
    ck_assert_int_eq(nm, 3); /* created, in_progress, completed */
    const char *miss_id = json_string_value(json_object_get(m[0], "id"));
    json_int_t miss_at = json_integer_value(json_object_get(m[0], "created_at"));
    const char *metas[] = {"{\"who\":\"second\"}", "{}"};
    const char *bodies[] = {second, plain};
    for (int k = 0; k < 2; k++) {
        resp_t hit = post(srv.port, "/v1/responses", KEY_A, bodies[k]);
        ck_assert_str_eq(hdr(&hit, "X-Cache"), "HIT");
        ck_assert(hit.complete);
        ck_assert_int_eq(tu_count(hit.body, "data: "), tu_count(miss.body, "data: "));
        ck_assert_int_eq(response_objects(hit.body, h, 8), nm);
        const char *id = json_string_value(json_object_get(h[0], "id"));
        ck_assert(id && strncmp(id, "resp_", 5) == 0 && strcmp(id, miss_id) != 0);
        json_t *want_meta = json_loads(metas[k], 0, NULL);
        for (int i = 0; i < nm; i++) { /* every event's object: one id, time, model, metadata */
            ck_assert_str_eq(json_string_value(json_object_get(h[i], "id")), id);
            ck_assert_int_ge(json_integer_value(json_object_get(h[i], "created_at")), miss_at);
            ck_assert_str_eq(json_string_value(json_object_get(h[i], "model")), "gpt-4.1");
            ck_assert(json_equal(json_object_get(h[i], "metadata"), want_meta));
            ck_assert(json_is_null(json_object_get(h[i], "user"))); /* not the first's "u1" */
            ck_assert(json_equal(json_object_get(h[i], "output"), json_object_get(m[i], "output")));
        }
        json_decref(want_meta);
        for (int i = 0; i < nm; i++)
            json_decref(h[i]);
        resp_free(&hit);
    }
    for (int i = 0; i < nm; i++)
        json_decref(m[i]);
    resp_free(&miss);
}
END_TEST

/* The answer goes out before the store commits; a shutdown right after it
 * still waits for the commit (the loop's pending work), so nothing is lost. */
START_TEST(a_shutdown_right_after_a_miss_keeps_its_entry)
{
    tu_server_t s;
    const char *more[] = {"--sync", "full", NULL};
    server_with(&s, more);
    char *b = chat("kept across a restart", 1);
    resp_t r = post(s.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    ck_assert(r.complete);
    ck_assert_int_eq(tu_server_stop(&s, SIGTERM), 0);
    tu_server_restart(&s);
    char path[320];
    snprintf(path, sizeof(path), "/v1/entries/%s", hdr(&r, "X-Semcached-Key"));
    resp_t e = http(s.port, "GET", path, NULL, NULL);
    ck_assert_int_eq(e.status, 200);
    resp_free(&e);
    resp_free(&r);
    r = post(s.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    resp_free(&r);
    free(b);
    tu_server_destroy(&s);
}
END_TEST

/* ---- beside the native API ------------------------------------------------------------ */

START_TEST(proxied_entries_are_ordinary_entries)
{
    char *b = chat("visible natively", 0);
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    wait_stored(srv.port, &r);
    char key[300], path[320];
    snprintf(key, sizeof(key), "%s", hdr(&r, "X-Semcached-Key"));
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/entries/%s", key);
    json_t *e = tu_call(srv.port, "GET", path, NULL, 200);
    ck_assert_str_eq(tu_str(e, "namespace"), "default");
    ck_assert_int_eq((int)strlen(tu_str(e, "tenant")), 64); /* a keyed hash, never the key */
    ck_assert_str_eq(tu_str(e, "model"), "gpt-4o-mini");
    json_t *resp = json_object_get(e, "response");
    ck_assert_str_eq(json_string_value(json_object_get(resp, "api")), "chat");
    json_decref(e);
    /* The native lookup and store work as before, beside the proxy. */
    json_decref(tu_call(srv.port, "POST", "/v1/store",
                        "{\"model\":\"m\",\"prompt\":\"native\",\"response\":\"yes\"}", 201));
    e = tu_call(srv.port, "POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"native\"}", 200);
    ck_assert_str_eq(tu_str(e, "status"), "hit");
    json_decref(e);
    e = tu_call(srv.port, "POST", "/v1/lookup",
                "{\"model\":\"gpt-4o-mini\",\"prompt\":\"visible natively\"}", 200);
    ck_assert_str_eq(tu_str(e, "status"), "miss"); /* another API: never the proxy's entry */
    json_decref(e);
    /* /v1/invalidate sees proxied entries. */
    json_decref(tu_call(srv.port, "POST", "/v1/invalidate", "{\"model\":\"gpt-4o-mini\"}", 200));
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    free(b);
    /* And the metrics count it all. */
    r = http(srv.port, "GET", "/metrics", NULL, NULL);
    ck_assert(strstr(r.body, "semcached_proxy_requests_total{api=\"chat\",result=\"miss\"}"));
    ck_assert(!strstr(r.body, "semcached_proxy_requests_total{api=\"chat\",result=\"hit\"} 0\n"));
    ck_assert(strstr(r.body, "semcached_proxy_upstream_first_byte_seconds_count{api=\"chat\"}"));
    ck_assert(
        strstr(r.body, "semcached_requests_total{endpoint=\"chat_completions\",code=\"200\"}"));
    ck_assert(strstr(r.body, "semcached_proxy_fallbacks_total{reason=\"store_full\"} 0"));
    /* Hits count the usage stored with their entries as tokens saved. */
    const char *saved = strstr(r.body, "semcached_tokens_saved_total{namespace=\"default\",model="
                                       "\"gpt-4o-mini\",kind=\"completion\"} ");
    ck_assert_ptr_nonnull(saved);
    ck_assert_int_gt(atoi(strchr(saved, '}') + 2), 0);
    resp_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy_streams");
    TCase *tc = tcase_create("proxy_streams");
    tcase_add_unchecked_fixture(tc, srv_up, srv_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_client_leaving_mid_stream_does_not_stop_the_recording);
    tcase_add_test(tc, an_upstream_dying_mid_stream_cuts_the_client_and_stores_nothing);
    tcase_add_test(tc, two_hundred_concurrent_streams_lose_and_reorder_nothing);
    tcase_add_test(tc, a_slow_client_pauses_the_upstream_and_loses_nothing);
    tcase_add_test(tc, a_streamed_hit_replays_at_the_recorded_pace_when_asked);
    tcase_add_test(tc, a_streamed_responses_hit_has_its_own_id_time_model_and_metadata);
    tcase_add_test(tc, a_shutdown_right_after_a_miss_keeps_its_entry);
    tcase_add_test(tc, proxied_entries_are_ordinary_entries);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
