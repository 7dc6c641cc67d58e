/* tests/integration/fleet.c -- fleet mode black-box: real semcached processes
 * sharing one cache through one real redis-server (Debian's, started by the
 * test on a loopback port). A store on one node is an exact and a semantic
 * hit on the others within 200 ms; invalidations, namespace settings and
 * TTLs reach every node; kill -9 of a node during a write burst and Redis
 * stopped for 10 s during writes lose no acknowledged store; a node joining
 * after the stream was trimmed copies a peer's snapshot, and so does a running
 * node that the stream was trimmed past (in the same process, on the same
 * port); concurrent writes to
 * one key end with one winner; foreign stream entries are skipped. Nodes are
 * compared by /v1/fleet/checksum (keys and record timestamps). Skipped when
 * redis-server is not installed. */
#define _GNU_SOURCE
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis_helpers.h"
#include "testutil.h"

#define DIM 16
#define MAX_ACKED 4096

/* A deterministic vector per seed; 'jitter' moves it a little (a near
 * duplicate for semantic lookups). */
static void vec_json(char *out, size_t cap, unsigned seed, double jitter)
{
    size_t n = (size_t)snprintf(out, cap, "[");
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    for (int i = 0; i < DIM; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double x = (double)(s >> 11) / 9007199254740992.0 - 0.5;
        n += (size_t)snprintf(out + n, cap - n, "%s%.6f", i ? "," : "", x + (i == 0 ? jitter : 0));
    }
    snprintf(out + n, cap - n, "]");
}

/* POST /v1/store of prompt 'p<seed>'; returns the HTTP status. */
static int store(int port, unsigned seed, const char *resp, const char *extra)
{
    char vec[DIM * 16], body[DIM * 16 + 256];
    vec_json(vec, sizeof(vec), seed, 0);
    snprintf(body, sizeof(body),
             "{%s\"model\":\"m\",\"prompt\":\"p%u\",\"embedding\":%s,"
             "\"response\":\"%s\"}",
             extra ? extra : "", seed, vec, resp);
    tu_resp_t r = tu_http(port, "POST", "/v1/store", body);
    int st = r.status;
    tu_resp_free(&r);
    return st;
}

/* The lookup's "match" ("exact", "semantic") or "miss"/"error"; 'resp'
 * (may be NULL, 64 bytes) receives the answer. */
static const char *lookup(int port, unsigned seed, const char *prompt, double jitter, char *resp)
{
    static _Thread_local char match[16];
    char vec[DIM * 16], body[DIM * 16 + 256];
    vec_json(vec, sizeof(vec), seed, jitter);
    snprintf(body, sizeof(body), "{\"model\":\"m\",\"prompt\":\"%s\",\"embedding\":%s}", prompt,
             vec);
    tu_resp_t r = tu_http(port, "POST", "/v1/lookup", body);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    const char *m = j ? json_string_value(json_object_get(j, "match")) : NULL;
    snprintf(match, sizeof(match), "%s", m ? m : j ? "miss" : "error");
    if (resp) {
        const char *a = j ? json_string_value(json_object_get(j, "response")) : NULL;
        snprintf(resp, 64, "%s", a ? a : "");
    }
    json_decref(j);
    tu_resp_free(&r);
    return match;
}

static int exact_hit(int port, unsigned seed)
{
    char prompt[32];
    snprintf(prompt, sizeof(prompt), "p%u", seed);
    return strcmp(lookup(port, seed, prompt, 0, NULL), "exact") == 0;
}

static int semantic_hit(int port, unsigned seed)
{
    char prompt[48]; /* the same number as the stored "p<seed>": the guards let it pass */
    snprintf(prompt, sizeof(prompt), "another wording of p%u", seed);
    return strcmp(lookup(port, seed, prompt, 0.01, NULL), "semantic") == 0;
}

/* "entries:checksum" of a node, for comparing nodes. */
static void checksum(int port, char out[64])
{
    tu_resp_t r = tu_http(port, "GET", "/v1/fleet/checksum", NULL);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    snprintf(out, 64, "%lld:%s", (long long)json_integer_value(json_object_get(j, "entries")),
             j ? json_string_value(json_object_get(j, "checksum")) : "none");
    json_decref(j);
    tu_resp_free(&r);
}

/* The number member 'key' of /v1/stats' "fleet". */
static long long fleet_stat(int port, const char *key)
{
    tu_resp_t r = tu_http(port, "GET", "/v1/stats", NULL);
    json_t *j = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    json_t *f = json_object_get(j, "fleet"), *v = json_object_get(f, key);
    long long n = json_is_integer(v)   ? json_integer_value(v)
                  : json_is_boolean(v) ? json_is_true(v)
                                       : -1;
    json_decref(j);
    tu_resp_free(&r);
    return n;
}

/* All 'n' nodes agree on their entries and have nothing left to publish. */
static int converged(tu_server_t *s, int n)
{
    char first[64], other[64];
    checksum(s[0].port, first);
    if (strncmp(first, "-", 1) == 0 || strstr(first, "none"))
        return 0;
    for (int i = 0; i < n; i++) {
        checksum(s[i].port, other);
        if (strcmp(first, other) || fleet_stat(s[i].port, "lag_records") != 0)
            return 0;
        tu_resp_t r = tu_http(s[i].port, "GET", "/v1/stats", NULL);
        json_t *j = json_loads(r.body, 0, NULL);
        json_t *ob =
            json_object_get(json_object_get(json_object_get(j, "fleet"), "outbox"), "depth");
        int empty = json_integer_value(ob) == 0;
        json_decref(j);
        tu_resp_free(&r);
        if (!empty)
            return 0;
    }
    return 1;
}

static int status_of(int port, const char *path)
{
    tu_resp_t r = tu_http(port, "GET", path, NULL);
    int st = r.status;
    tu_resp_free(&r);
    return st;
}

/* 1 if namespace 'name' on the node has settings containing 'want'. */
static int ns_has(int port, const char *name, const char *want)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/namespaces/%s", name);
    tu_resp_t r = tu_http(port, "GET", path, NULL);
    int ok = r.status == 200 && r.body && strstr(r.body, want);
    tu_resp_free(&r);
    return ok;
}

static void start_node(tu_server_t *s, const th_redis_t *r, const char *fleet,
                       const char *const *more)
{
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", r->port);
    const char *args[24] = {"--redis", url, "--fleet", fleet, "--sweep-interval-ms", "100"};
    int n = 6;
    for (int i = 0; more && more[i] && n < 23; i++)
        args[n++] = more[i];
    args[n] = NULL;
    tu_server_start(s, args);
}

/* A Redis and 'n' nodes of fleet 'fleet' on it ('more': extra options). */
static void fleet_up(th_redis_t *r, tu_server_t *s, int n, const char *fleet,
                     const char *const *more)
{
    memset(r, 0, sizeof(*r));
    th_redis_start(r);
    for (int i = 0; i < n; i++)
        start_node(&s[i], r, fleet, more);
}

static void fleet_down(th_redis_t *r, tu_server_t *s, int n)
{
    for (int i = 0; i < n; i++)
        tu_server_destroy(&s[i]);
    th_redis_destroy(r);
}

START_TEST(changes_reach_every_node)
{
    th_redis_t r;
    tu_server_t s[3];
    fleet_up(&r, s, 3, "three", NULL);
    /* Five stores on A: each an exact and a semantic hit on B and C. */
    long took[5];
    for (unsigned k = 0; k < 5; k++) {
        ck_assert_int_eq(store(s[0].port, k, "from-a", NULL), 201);
        WAIT_UNTIL(took[k], exact_hit(s[1].port, k) && exact_hit(s[2].port, k), 5000);
        ck_assert_int_ge(took[k], 0);
        ck_assert(semantic_hit(s[1].port, k) && semantic_hit(s[2].port, k));
    }
    long sorted[5];
    memcpy(sorted, took, sizeof(sorted));
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (sorted[j] < sorted[i]) {
                long t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
    fprintf(stderr, "fleet: store on A -> exact hit on B and C in %ld %ld %ld %ld %ld ms\n",
            took[0], took[1], took[2], took[3], took[4]);
    ck_assert_int_le(sorted[2], 200);
    /* An invalidation on C removes them everywhere. */
    json_decref(tu_call(s[2].port, "POST", "/v1/invalidate", "{\"model\":\"m\"}", 200));
    ASSERT_SOON(!exact_hit(s[0].port, 0) && !exact_hit(s[1].port, 4), 5000);
    /* Namespace settings made on A apply on B. */
    json_decref(tu_call(s[0].port, "PUT", "/v1/namespaces/strict", "{\"threshold\":0.99}", 200));
    ASSERT_SOON(ns_has(s[1].port, "strict", "0.99"), 5000);
    /* TTLs expire on every node. */
    ck_assert_int_eq(store(s[1].port, 77, "short", "\"ttl_s\":1,"), 201);
    ASSERT_SOON(exact_hit(s[0].port, 77) && exact_hit(s[2].port, 77), 5000);
    ASSERT_SOON(!exact_hit(s[0].port, 77) && !exact_hit(s[1].port, 77) && !exact_hit(s[2].port, 77),
                5000);
    ASSERT_SOON(converged(s, 3), 5000);
    ck_assert_int_eq(status_of(s[0].port, "/readyz"), 200);
    fleet_down(&r, s, 3);
}
END_TEST

/* ---- write bursts ------------------------------------------------------- */

typedef struct {
    tu_server_t *s;
    unsigned base; /* this writer's prompt seeds start here */
    int n;         /* stores to attempt */
    int pace_us;   /* between stores */
    unsigned acked[MAX_ACKED];
    int n_acked;
    _Atomic int *stop;
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *w = arg;
    for (int i = 0; i < w->n && !atomic_load(w->stop); i++) {
        unsigned seed = w->base + (unsigned)i;
        if (store(w->s->port, seed, "burst", NULL) == 201 && w->n_acked < MAX_ACKED)
            w->acked[w->n_acked++] = seed;
        if (w->pace_us)
            usleep((useconds_t)w->pace_us);
    }
    return NULL;
}

/* One writer thread per node: 'n' stores each, 'pace_us' apart, seeds
 * from 'base' times the node's number. */
static void writers_start(writer_t *w, pthread_t *t, tu_server_t *s, int nodes, unsigned base,
                          int n, int pace_us, _Atomic int *stop)
{
    for (int i = 0; i < nodes; i++) {
        w[i] = (writer_t){
            .s = &s[i], .base = base * (unsigned)(i + 1), .n = n, .pace_us = pace_us, .stop = stop};
        pthread_create(&t[i], NULL, writer_main, &w[i]);
    }
}

/* Every acknowledged store of every writer is an exact hit on every node. */
static void check_acked(tu_server_t *s, int n, writer_t *w, int n_writers)
{
    int total = 0;
    for (int k = 0; k < n_writers; k++)
        for (int i = 0; i < w[k].n_acked; i++, total++)
            for (int j = 0; j < n; j++)
                ck_assert_msg(exact_hit(s[j].port, w[k].acked[i]),
                              "acknowledged store p%u missing on node %d", w[k].acked[i], j);
    fprintf(stderr, "fleet: %d acknowledged stores present on all %d nodes\n", total, n);
    ck_assert_int_gt(total, 0);
}

START_TEST(kill_9_during_a_write_burst_loses_nothing)
{
    th_redis_t r;
    tu_server_t s[3];
    fleet_up(&r, s, 3, "crash", NULL);
    _Atomic int stop = 0;
    writer_t w[3];
    pthread_t t[3];
    writers_start(w, t, s, 3, 100000u, 600, 1000, &stop);
    usleep(400000);
    tu_server_stop(&s[1], SIGKILL); /* B dies mid-burst; its writer sees failures */
    usleep(300000);
    tu_server_restart(&s[1]);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    ASSERT_SOON(converged(s, 3), 20000);
    check_acked(s, 3, w, 3);
    fleet_down(&r, s, 3);
}
END_TEST

START_TEST(redis_stopped_for_ten_seconds_loses_nothing)
{
    th_redis_t r;
    tu_server_t s[3];
    fleet_up(&r, s, 3, "outage", NULL);
    _Atomic int stop = 0;
    writer_t w[3];
    pthread_t t[3];
    writers_start(w, t, s, 3, 200000u, 1200, 10000, &stop);
    usleep(500000);
    th_redis_stop(&r);
    sleep(10); /* the nodes keep serving and storing; their outboxes grow */
    ck_assert_int_eq(fleet_stat(s[0].port, "connected"), 0);
    th_redis_restart(&r);
    usleep(500000);
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    long took;
    WAIT_UNTIL(took, converged(s, 3), 20000);
    ck_assert_int_ge(took, 0);
    fprintf(stderr, "fleet: converged %ld ms after the writes stopped\n", took);
    check_acked(s, 3, w, 3);
    fleet_down(&r, s, 3);
}
END_TEST

START_TEST(a_fourth_node_joins_a_trimmed_stream_from_a_snapshot)
{
    const char *retain[] = {"--fleet-retention", "40", NULL};
    th_redis_t r;
    tu_server_t s[4];
    fleet_up(&r, s, 3, "join", retain);
    for (unsigned k = 0; k < 300; k++)
        ck_assert_int_eq(store(s[k % 3].port, 300000u + k, "old", NULL), 201);
    ASSERT_SOON(converged(s, 3), 20000);
    redisContext *rc = th_redis_conn(&r);
    redisReply *len = redisCommand(rc, "XLEN semcached:{join}:stream");
    ck_assert_int_lt(len->integer, 300); /* the first stores are gone from the stream */
    freeReplyObject(len);
    redisFree(rc);
    th_sleep_ms(1100);                     /* every node's registry row shows it caught up */
    start_node(&s[3], &r, "join", retain); /* returns once /readyz says caught up */
    ck_assert_int_lt(fleet_stat(s[3].port, "applied"), 300); /* the rest came in a snapshot */
    ck_assert(exact_hit(s[3].port, 300000u) && semantic_hit(s[3].port, 300001u));
    ck_assert_int_eq(store(s[3].port, 399999u, "new", NULL), 201);
    ASSERT_SOON(converged(s, 4), 20000);
    ck_assert(exact_hit(s[0].port, 399999u));
    fleet_down(&r, s, 4);
}
END_TEST

/* A node frozen (SIGSTOP) while the others write past the stream's
 * retention finds, once it runs again, that it missed changes it can no
 * longer read: it drains, copies a peer's snapshot and serves again in the
 * same process on the same port (--fleet-auto-resync, the default). */
START_TEST(a_running_node_trimmed_past_resyncs_itself)
{
    const char *retain[] = {"--fleet-retention", "40", NULL};
    th_redis_t r;
    tu_server_t s[3];
    fleet_up(&r, s, 3, "resync", retain);
    ck_assert_int_eq(store(s[2].port, 500000u, "before", NULL), 201);
    ASSERT_SOON(converged(s, 3), 20000);
    ck_assert_int_eq(kill(s[2].pid, SIGSTOP), 0);
    for (unsigned k = 1; k <= 300; k++)
        ck_assert_int_eq(store(s[k % 2].port, 500000u + k, "while frozen", NULL), 201);
    ck_assert_int_eq(kill(s[2].pid, SIGCONT), 0);
    ASSERT_SOON(converged(s, 3), 30000);
    ck_assert_int_eq(kill(s[2].pid, 0), 0); /* the same process */
    ck_assert(exact_hit(s[2].port, 500001u) && exact_hit(s[2].port, 500300u));
    ck_assert(exact_hit(s[2].port, 500000u));
    ASSERT_SOON(status_of(s[2].port, "/readyz") == 200, 10000);
    ck_assert_int_eq(fleet_stat(s[2].port, "resync_needed"), 0);
    ck_assert_int_eq(store(s[2].port, 599999u, "after", NULL), 201);
    ASSERT_SOON(exact_hit(s[0].port, 599999u), 20000);
    fleet_down(&r, s, 3);
}
END_TEST

typedef struct {
    int port;
    const char *resp;
} racer_t;

static void *racer_main(void *arg)
{
    racer_t *x = arg;
    for (int i = 0; i < 40; i++)
        store(x->port, 424242u, x->resp, NULL);
    return NULL;
}

START_TEST(concurrent_writes_to_one_key_end_with_one_winner)
{
    th_redis_t r;
    tu_server_t s[3];
    fleet_up(&r, s, 3, "race", NULL);
    racer_t a = {s[0].port, "from-a"}, b = {s[1].port, "from-b"};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, racer_main, &a);
    pthread_create(&tb, NULL, racer_main, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ASSERT_SOON(converged(s, 3), 10000);
    char r0[64], r1[64], r2[64];
    lookup(s[0].port, 424242u, "p424242", 0, r0);
    lookup(s[1].port, 424242u, "p424242", 0, r1);
    lookup(s[2].port, 424242u, "p424242", 0, r2);
    ck_assert(strcmp(r0, "from-a") == 0 || strcmp(r0, "from-b") == 0);
    ck_assert_str_eq(r0, r1);
    ck_assert_str_eq(r0, r2);
    fleet_down(&r, s, 3);
}
END_TEST

START_TEST(foreign_stream_entries_are_skipped_and_counted)
{
    th_redis_t r;
    tu_server_t s[2];
    fleet_up(&r, s, 2, "bad", NULL);
    redisContext *rc = th_redis_conn(&r);
    const char *key = "semcached:{bad}:stream";
    freeReplyObject(redisCommand(rc, "XADD %s * hello world", key));
    freeReplyObject(redisCommand(rc, "XADD %s * r %b", key, "SCF1 but not really", (size_t)19));
    freeReplyObject(redisCommand(rc, "XADD %s * r %b", key, "", (size_t)0));
    redisFree(rc);
    ck_assert_int_eq(store(s[0].port, 5, "after-junk", NULL), 201);
    ASSERT_SOON(exact_hit(s[1].port, 5), 5000);
    tu_resp_t m = tu_http(s[1].port, "GET", "/metrics", NULL);
    ck_assert_ptr_nonnull(strstr(m.body, "semcached_fleet_skipped_total{reason=\"malformed\"} 3"));
    tu_resp_free(&m);
    for (int i = 0; i < 2; i++) /* both still answer */
        ck_assert_int_eq(status_of(s[i].port, "/healthz"), 200);
    fleet_down(&r, s, 2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fleet");
    TCase *tc = tcase_create("fleet");
    tcase_set_timeout(tc, 300);
    if (th_redis_binary()) {
        tcase_add_test(tc, changes_reach_every_node);
        tcase_add_test(tc, foreign_stream_entries_are_skipped_and_counted);
        tcase_add_test(tc, concurrent_writes_to_one_key_end_with_one_winner);
        tcase_add_test(tc, kill_9_during_a_write_burst_loses_nothing);
        tcase_add_test(tc, a_fourth_node_joins_a_trimmed_stream_from_a_snapshot);
        tcase_add_test(tc, a_running_node_trimmed_past_resyncs_itself);
        tcase_add_test(tc, redis_stopped_for_ten_seconds_loses_nothing);
    } else {
        tu_skip("fleet: redis-server is not installed (make deps-test)");
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
