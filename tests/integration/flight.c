/* tests/integration/flight.c -- single-flight misses through the real binary
 * in front of tests/mock_upstream.py: 100 concurrent identical requests make
 * one upstream call (plain and streamed), a failing or hanging leader still
 * lets its followers be answered, 50 concurrent paraphrases in one scope
 * make far fewer than 50 calls (GloVe model), and the native lease makes
 * concurrent leased lookups wait for the leader's store (or its end).
 * Upstream call counts come from the mock's /stats. */
#define _GNU_SOURCE
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "sc_common.h"
#include "testutil.h"

/* Upstream calls are counted: no re-inference of sampled hits (the fixture
 * turns the proxy's default error budget off). */
#include "proxy_fixture.h"

#define CHAT "/v1/chat/completions"

typedef struct {
    int port;
    const char *path, *headers;
    char *body;
    resp_t r;
    double ms;  /* how long the answer took */
    double end; /* when it was complete (now_ms()) */
} conc_t;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void *one(void *arg)
{
    conc_t *c = arg;
    double t0 = now_ms();
    c->r = http(c->port, "POST", c->path, c->headers, c->body);
    c->end = now_ms();
    c->ms = c->end - t0;
    return NULL;
}

/* Sends every request of 'c' at once and waits for all answers. */
static void all_at_once(conc_t *c, int n)
{
    pthread_t *t = calloc((size_t)n, sizeof(*t));
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, one, &c[i]), 0);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
}

/* Starts c[0] (a chat request whose headers slow its upstream down) and
 * waits until its upstream call has reached the mock, when it is in flight. */
static pthread_t lead(conc_t *c)
{
    int calls = upstream_calls(CHAT);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, one, c), 0);
    wait_upstream_calls(CHAT, calls + 1);
    return t;
}

/* c[0], the leader, first, then the 'n' - 1 others at once while it is in
 * flight (a fixed head start of 150 ms was not always enough under ASan). */
static void lead_then_follow(conc_t *c, int n)
{
    pthread_t t0 = lead(&c[0]);
    all_at_once(c + 1, n - 1);
    pthread_join(t0, NULL);
}

/* The metric line 'line' (name and labels) in /metrics, or -1. */
static long long metric(int port, const char *line)
{
    resp_t r = http(port, "GET", "/metrics", NULL, NULL);
    const char *p = strstr(r.body ? r.body : "", line);
    long long v = p ? atoll(p + strlen(line)) : -1;
    resp_free(&r);
    return v;
}

/* ---- identical requests ----------------------------------------------------------- */

static void hundred_identical(int stream)
{
    enum { N = 100 };
    static conc_t c[N];
    char q[64];
    snprintf(q, sizeof(q), "one flight for all %d", stream);
    char *body = chat(q, stream);
    int calls = upstream_calls(CHAT);
    long long before = metric(srv.port, "semcached_coalesced_total{namespace=\"default\","
                                        "match=\"exact\"} ");
    /* The upstream takes 640 ms (a stream: 8 events 80 ms apart): long
     * enough for most requests to arrive while the first is in flight. */
    const char *slow = stream ? KEY_A "X-Mock-Chunks: 8\r\nX-Mock-Chunk-Delay-Ms: 80\r\n"
                              : KEY_A "X-Mock-First-Byte-Delay-Ms: 640\r\n";
    for (int i = 0; i < N; i++)
        c[i] = (conc_t){.port = srv.port, .path = CHAT, .headers = slow, .body = body};
    all_at_once(c, N);
    if (upstream_calls(CHAT) != calls + 1)
        for (int i = 0; i < N; i++)
            if (strcmp(hdr(&c[i].r, "X-Semcached-Coalesced"), "1") != 0)
                fprintf(stderr, "request %d: %d %s, not coalesced\n", i, c[i].r.status,
                        hdr(&c[i].r, "X-Cache"));
    int made = upstream_calls(CHAT) - calls;
    ck_assert_int_eq(made, 1);
    char want[128], got[128];
    int misses = 0, coalesced = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(c[i].r.status == 200 && c[i].r.complete, "request %d: %d %s", i,
                      c[i].r.status, c[i].r.body);
        misses += strcmp(hdr(&c[i].r, "X-Cache"), "MISS") == 0;
        coalesced += strcmp(hdr(&c[i].r, "X-Semcached-Coalesced"), "1") == 0;
        if (strcmp(hdr(&c[i].r, "X-Cache"), "HIT") == 0)
            ck_assert_str_eq(hdr(&c[i].r, "X-Semcached-Match"), "exact");
        chat_text(c[i].r.body, stream, i ? got : want, sizeof(want));
        if (i)
            ck_assert_str_eq(got, want);
        if (stream) /* role, 8 pieces, finish, [DONE]: the usage chunk filtered */
            ck_assert_int_eq(tu_count(c[i].r.body, "data: "), 11);
    }
    ck_assert_int_eq(misses, made);
    /* The rest came after the store: plain hits (under ASan, about a third). */
    ck_assert_int_ge(coalesced, 1);
    fprintf(stderr, "100 identical %s requests: %d upstream call(s), %d followers, %d plain hits\n",
            stream ? "streamed" : "plain", made, coalesced, N - made - coalesced);
    ck_assert(strncmp(want, "answer-", 7) == 0);
    long long after = metric(srv.port, "semcached_coalesced_total{namespace=\"default\","
                                       "match=\"exact\"} ");
    ck_assert_int_eq(after - (before < 0 ? 0 : before), coalesced);
    for (int i = 0; i < N; i++)
        resp_free(&c[i].r);
    free(body);
}

START_TEST(a_hundred_identical_requests_make_one_upstream_call)
{
    hundred_identical(0);
}
END_TEST

START_TEST(a_hundred_identical_streams_make_one_upstream_call)
{
    hundred_identical(1);
}
END_TEST

/* A streamed follower gets the events relayed so far at once, then each as
 * it comes: its first event arrives long before the leader's stream ends. */
START_TEST(a_streamed_follower_follows_the_live_stream)
{
    char *body = chat("followed live", 1);
    conc_t leader = {srv.port, CHAT, KEY_A "X-Mock-Chunks: 8\r\nX-Mock-Chunk-Delay-Ms: 300\r\n",
                     body, {0}, 0, 0};
    pthread_t t0 = lead(&leader);
    usleep(400 * 1000); /* a few events in */
    char *req = request_text("POST", CHAT, KEY_A, body);
    int fd = tu_connect(srv.port);
    ck_assert_int_ge(fd, 0);
    double t1 = now_ms();
    ck_assert_int_eq(tu_send_all(fd, req, strlen(req)), 0);
    char buf[65536];
    size_t n = 0;
    double first = -1;
    for (;;) {
        ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
        buf[n] = '\0';
        if (first < 0 && strstr(buf, "data: "))
            first = now_ms() - t1;
    }
    close(fd);
    double total = now_ms() - t1;
    pthread_join(t0, NULL);
    ck_assert_msg(strstr(buf, "X-Semcached-Coalesced: 1"), "%s", buf);
    ck_assert(strstr(buf, "data: [DONE]"));
    /* The leader's stream lasts 2.4 s (an event every 300 ms); this one
     * joined about 0.4 s in. Live: its first event came at least two events
     * before the leader's stream ended, and more kept coming after it (not
     * everything at once at the end). */
    double first_at = t1 + first;
    ck_assert_msg(first >= 0 && first_at < leader.end - 600 && total - first > 600,
                  "first event %.0f ms, end %.0f ms after joining; the leader ended %.0f ms "
                  "after the first",
                  first, total, leader.end - first_at);
    ck_assert_int_eq(leader.r.status, 200);
    resp_free(&leader.r);
    free(req);
    free(body);
}
END_TEST

START_TEST(a_stream_follows_a_plain_leader_and_the_reverse)
{
    for (int lead_stream = 0; lead_stream < 2; lead_stream++) {
        char q[64];
        snprintf(q, sizeof(q), "forms cross %d", lead_stream);
        char *ls = chat(q, lead_stream), *fs = chat(q, !lead_stream);
        int calls = upstream_calls(CHAT);
        conc_t c[6];
        /* The five must all arrive while the leader waits for its answer:
         * after its store they would be plain hits. */
        c[0] = (conc_t){srv.port, CHAT, KEY_A "X-Mock-First-Byte-Delay-Ms: 1500\r\n", ls,
                        {0}, 0, 0};
        for (int i = 1; i < 6; i++)
            c[i] = (conc_t){srv.port, CHAT, KEY_A, fs, {0}, 0, 0};
        lead_then_follow(c, 6);
        int extra = upstream_calls(CHAT) - calls - 1, alone = 0;
        ck_assert_int_eq(extra, 0);
        char want[128], got[128];
        chat_text(c[0].r.body, lead_stream, want, sizeof(want));
        for (int i = 1; i < 6; i++) {
            ck_assert_int_eq(c[i].r.status, 200);
            alone += strcmp(hdr(&c[i].r, "X-Semcached-Coalesced"), "1") != 0;
            chat_text(c[i].r.body, !lead_stream, got, sizeof(got));
            ck_assert_str_eq(got, want);
            resp_free(&c[i].r);
        }
        ck_assert_int_eq(alone, 0); /* every other one followed the leader */
        resp_free(&c[0].r);
        free(ls);
        free(fs);
    }
}
END_TEST

/* ---- leaders that fail ------------------------------------------------------------- */

START_TEST(followers_of_a_failing_leader_are_still_answered)
{
    for (int stream = 0; stream < 2; stream++) {
        char q[64];
        snprintf(q, sizeof(q), "the leader fails %d", stream);
        char *body = chat(q, stream);
        int calls = upstream_calls(CHAT);
        conc_t c[11];
        /* Headers are not part of the key: the leader alone gets a 500. */
        c[0] = (conc_t){srv.port, CHAT,
                        KEY_A "X-Mock-First-Byte-Delay-Ms: 400\r\nX-Mock-Status: 500\r\n", body,
                        {0}, 0, 0};
        for (int i = 1; i < 11; i++)
            c[i] = (conc_t){srv.port, CHAT, KEY_A, body, {0}, 0, 0};
        lead_then_follow(c, 11);
        ck_assert_int_eq(c[0].r.status, 500);
        for (int i = 1; i < 11; i++) {
            ck_assert_msg(c[i].r.status == 200 && c[i].r.complete, "follower %d: %d", i,
                          c[i].r.status);
            char t[128];
            chat_text(c[i].r.body, stream, t, sizeof(t));
            ck_assert(strncmp(t, "answer-", 7) == 0);
            resp_free(&c[i].r);
        }
        /* Each follower called upstream itself (none had been sent anything),
         * unless it came after another's answer was stored. */
        ck_assert_int_ge(upstream_calls(CHAT), calls + 2);
        ck_assert_int_le(upstream_calls(CHAT), calls + 11);
        resp_free(&c[0].r);
        free(body);
    }
}
END_TEST

START_TEST(a_hanging_leader_is_waited_for_only_coalesce_wait_ms)
{
    tu_server_t s;
    const char *more[] = {"--coalesce-wait-ms", "300", "--proxy-timeout-ms", "3000", NULL};
    server_with(&s, more);
    char *body = chat("the leader hangs", 0);
    conc_t c[2] = {{s.port, CHAT, KEY_A "X-Mock-Hang: 1\r\n", body, {0}, 0, 0},
                   {s.port, CHAT, KEY_A, body, {0}, 0, 0}};
    lead_then_follow(c, 2);
    ck_assert_int_eq(c[1].r.status, 200);
    ck_assert_str_eq(hdr(&c[1].r, "X-Cache"), "MISS"); /* on its own after 300 ms */
    ck_assert(c[1].ms >= 250 && c[1].ms < 2500);
    ck_assert_int_eq(c[0].r.status, 504);
    resp_free(&c[0].r);
    resp_free(&c[1].r);
    /* --coalesce-wait-ms 0: every miss calls upstream. */
    tu_server_t off;
    const char *none[] = {"--coalesce-wait-ms", "0", NULL};
    server_with(&off, none);
    char *b2 = chat("no coalescing here", 0);
    conc_t d[5];
    for (int i = 0; i < 5; i++)
        d[i] = (conc_t){off.port, CHAT, KEY_A "X-Mock-First-Byte-Delay-Ms: 300\r\n", b2, {0}, 0, 0};
    int calls = upstream_calls(CHAT);
    all_at_once(d, 5);
    ck_assert_int_eq(upstream_calls(CHAT), calls + 5);
    for (int i = 0; i < 5; i++)
        resp_free(&d[i].r);
    free(b2);
    free(body);
    tu_server_destroy(&off);
    tu_server_destroy(&s);
}
END_TEST

/* ---- paraphrases ---------------------------------------------------------------------- */

START_TEST(fifty_concurrent_paraphrases_make_far_fewer_calls)
{
    char model[512];
    snprintf(model, sizeof(model), "%s/glove-100d.scglove",
             getenv("SEMCACHED_MODEL_CACHE") ? getenv("SEMCACHED_MODEL_CACHE") : "/nonexistent");
    if (access(model, R_OK) != 0) {
        tu_skip("the semantic single-flight test needs the default model (make model)");
        return;
    }
    enum { N = 50 };
    static conc_t c[N];
    static const char *const lead[] = {"How do I", "How can I", "How should I", "How would I",
                                       "Tell me how to"};
    static const char *const tail[] = {"",         " please",  " now",     " today",
                                       " quickly", " at home", " myself", " again",
                                       " safely",  " easily"};
    tu_server_t s;
    const char *more[] = {"--model", model, "--model-thresholds", "off", NULL};
    server_with(&s, more);
    /* Every hit sampled, followers included, the client asked (delivery caller). */
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/default",
                        "{\"threshold\":0.9,\"sample_rate\":1,\"validation_budget\":1,"
                        "\"delivery\":\"caller\"}",
                        200));
    for (int i = 0; i < N; i++) {
        char q[128];
        snprintf(q, sizeof(q), "%s reset my password%s?", lead[i % 5], tail[i / 5]);
        c[i] = (conc_t){s.port, CHAT, KEY_A "X-Mock-First-Byte-Delay-Ms: 1500\r\n", chat(q, 0),
                        {0}, 0, 0};
    }
    int calls = upstream_calls(CHAT);
    all_at_once(c, N);
    int made = upstream_calls(CHAT) - calls, semantic = 0, validated = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(c[i].r.status, 200);
        int follower = strcmp(hdr(&c[i].r, "X-Semcached-Match"), "semantic") == 0 &&
                       strcmp(hdr(&c[i].r, "X-Semcached-Coalesced"), "1") == 0;
        semantic += follower;
        validated += follower && strlen(hdr(&c[i].r, "X-Semcached-Validation-Id")) == 32;
        if (strcmp(hdr(&c[i].r, "X-Semcached-Match"), "semantic") == 0)
            ck_assert(atof(hdr(&c[i].r, "X-Semcached-Similarity")) >= 0.9);
    }
    fprintf(stderr, "50 concurrent paraphrases: %d upstream calls, %d served by a semantic "
                    "flight\n",
            made, semantic);
    ck_assert_int_le(made, N / 5);
    ck_assert_int_ge(semantic, 1);
    ck_assert_int_eq(validated, semantic); /* sampled like any semantic hit */
    ck_assert_int_ge(metric(s.port, "semcached_coalesced_total{namespace=\"default\","
                                    "match=\"semantic\"} "),
                     semantic);
    for (int i = 0; i < N; i++) {
        resp_free(&c[i].r);
        free(c[i].body);
    }
    tu_server_destroy(&s);
}
END_TEST

/* ---- the native lease ------------------------------------------------------------------ */


static char *lease_body(const char *q, int lease)
{
    char *b;
    ck_assert_int_gt(asprintf(&b, "{\"model\":\"m\",\"prompt\":\"%s\"%s}", q,
                              lease ? ",\"lease\":true" : ""),
                     0);
    return b;
}

START_TEST(leased_lookups_wait_for_the_leaders_store)
{
    enum { N = 20 };
    char *b = lease_body("leased question", 1);
    json_t *j = tu_call(srv.port, "POST", "/v1/lookup", b, 200);
    ck_assert_str_eq(tu_str(j, "status"), "miss");
    ck_assert(json_is_true(json_object_get(j, "lease")));
    json_decref(j);
    /* Without a lease: a miss at once. */
    char *plain = lease_body("leased question", 0);
    j = tu_call(srv.port, "POST", "/v1/lookup", plain, 200);
    ck_assert_str_eq(tu_str(j, "status"), "miss");
    ck_assert_ptr_null(json_object_get(j, "lease"));
    json_decref(j);
    static conc_t c[N];
    for (int i = 0; i < N; i++)
        c[i] = (conc_t){srv.port, "/v1/lookup", "", b, {0}, 0, 0};
    const char *conns = "\nsemcached_connections ",
               *waited = "semcached_coalesced_total{namespace=\"default\",match=\"exact\"} ";
    long long open = metric(srv.port, conns), before = metric(srv.port, waited);
    pthread_t t[N];
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, one, &c[i]), 0);
    /* They wait: all connected (a fixed 300 ms was not always enough for
     * twenty threads under ASan), and a moment to be read. */
    int all;
    TU_WAIT_UNTIL(all, metric(srv.port, conns) >= open + N, TU_PATIENCE_MS);
    ck_assert(all);
    usleep(300 * 1000);
    j = tu_call(srv.port, "POST", "/v1/store",
                "{\"model\":\"m\",\"prompt\":\"leased question\",\"response\":\"the answer\"}", 201);
    json_decref(j);
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(c[i].r.status, 200);
        json_t *a = json_loads(c[i].r.body, 0, NULL);
        ck_assert_str_eq(tu_str(a, "status"), "hit");
        ck_assert_str_eq(tu_str(a, "response"), "the answer");
        json_decref(a);
        resp_free(&c[i].r);
    }
    /* Every one was answered by the leader's store, having waited for it. */
    ck_assert_int_eq(metric(srv.port, waited) - (before < 0 ? 0 : before), N);
    free(b);
    free(plain);
}
END_TEST

START_TEST(a_lease_ends_after_lease_ms)
{
    tu_server_t s;
    /* Long enough for the second lookup to come while it lasts, under ASan
     * too (300 ms left a 50-ms margin that a loaded machine can eat). */
    const char *more[] = {"--lease-ms", "1500", NULL};
    server_with(&s, more);
    char *b = lease_body("nobody stores this", 1);
    double t0 = now_ms(); /* the lease ends 1.5 s after it was taken, after this */
    json_t *j = tu_call(s.port, "POST", "/v1/lookup", b, 200);
    ck_assert(json_is_true(json_object_get(j, "lease")));
    json_decref(j);
    conc_t c = {s.port, "/v1/lookup", "", b, {0}, 0, 0};
    one(&c);
    ck_assert_int_eq(c.r.status, 200);
    j = json_loads(c.r.body, 0, NULL);
    ck_assert_str_eq(tu_str(j, "status"), "miss");
    ck_assert_ptr_null(json_object_get(j, "lease")); /* it waited, then answered a miss */
    ck_assert_msg(c.end - t0 >= 1500 - 20 && c.ms < 1500 + 3000, "ended %.0f ms after the lease "
                  "was taken, %.0f ms after it was asked", c.end - t0, c.ms);
    json_decref(j);
    resp_free(&c.r);
    /* The lease is over: the next leased lookup leads. */
    j = tu_call(s.port, "POST", "/v1/lookup", b, 200);
    ck_assert(json_is_true(json_object_get(j, "lease")));
    json_decref(j);
    j = tu_call(s.port, "POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"x\",\"lease\":1}",
                400);
    json_decref(j);
    j = tu_call(s.port, "GET", "/v1/stats", NULL, 200);
    ck_assert(json_is_object(json_object_get(j, "coalesced")));
    json_decref(j);
    free(b);
    tu_server_destroy(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flight");
    TCase *tc = tcase_create("flight");
    tcase_add_unchecked_fixture(tc, srv_up, srv_down);
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, a_hundred_identical_requests_make_one_upstream_call);
    tcase_add_test(tc, a_hundred_identical_streams_make_one_upstream_call);
    tcase_add_test(tc, a_streamed_follower_follows_the_live_stream);
    tcase_add_test(tc, a_stream_follows_a_plain_leader_and_the_reverse);
    tcase_add_test(tc, followers_of_a_failing_leader_are_still_answered);
    tcase_add_test(tc, a_hanging_leader_is_waited_for_only_coalesce_wait_ms);
    tcase_add_test(tc, fifty_concurrent_paraphrases_make_far_fewer_calls);
    tcase_add_test(tc, leased_lookups_wait_for_the_leaders_store);
    tcase_add_test(tc, a_lease_ends_after_lease_ms);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
