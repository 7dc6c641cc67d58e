/* tests/server/flight.c -- the flight table (server/flight.c) without a
 * server: one worker whose posted tasks the test runs itself, as its loop
 * would. Leading and following (exact and semantic, scopes kept apart),
 * the leader's news read back by a follower from its own cursor, failing
 * and expired flights, lease release by key, the post/expect balance a
 * loop's shutdown depends on, and the counters. */
#define _GNU_SOURCE
#include <check.h>
#include <string.h>

#include "../../server/flight.c"
#include "testutil.h"

static sc_worker_t w;
static int woken;

static void wake(void *arg)
{
    (void)arg;
    woken++;
}

static void setup(void)
{
    memset(&w, 0, sizeof(w));
    ck_assert_int_eq(uv_loop_init(&w.loop), 0);
    ck_assert_int_eq(uv_async_init(&w.loop, &w.wakeup, NULL), 0);
    pthread_mutex_init(&w.done_mu, NULL);
    woken = 0;
}

static void teardown(void)
{
    uv_close((uv_handle_t *)&w.wakeup, NULL);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    uv_loop_close(&w.loop);
    pthread_mutex_destroy(&w.done_mu);
}

/* Runs the posted tasks as the loop would; how many ran. */
static int drain(void)
{
    int n = 0;
    for (;;) {
        pthread_mutex_lock(&w.done_mu);
        sc_task_t *t = w.done_head;
        w.done_head = NULL;
        pthread_mutex_unlock(&w.done_mu);
        if (!t)
            return n;
        while (t) {
            sc_task_t *next = t->next;
            w.pending_ops--;
            t->run(t);
            n++;
            t = next;
        }
    }
}

static sc_fl_probe_t probe(uint8_t k, uint64_t scope, const float *vec, double threshold)
{
    static uint8_t keys[8][SC_KEY_BYTES];
    memset(keys[k % 8], k, SC_KEY_BYTES);
    return (sc_fl_probe_t){SC_FL_PROXY, keys[k % 8], scope, vec, vec ? 4 : 0, threshold, 0};
}

START_TEST(identical_requests_follow_one_leader)
{
    sc_flight_t *t;
    ck_assert_int_eq(sc_flight_create(&t, 8), 0);
    sc_fl_t *lead = NULL;
    sc_fl_wait_t *a = NULL, *b = NULL;
    double sim;
    sc_fl_probe_t p = probe(1, 7, NULL, 2.0);
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_LEAD);
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_FOLLOW);
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &b, &sim), SC_FL_FOLLOW);
    ck_assert(sim == 1.0);
    ck_assert_int_eq(w.pending_ops, 2); /* one post expected per follower */
    ck_assert_int_eq(drain(), 0);       /* no news yet */
    sc_fl_head(lead, 200, "text/event-stream", 1);
    sc_fl_bytes(lead, "data: 1\n\n", 9);
    sc_fl_bytes(lead, "data: 2\n\n", 9);
    ck_assert_int_eq(drain(), 2); /* one run each, however much news */
    ck_assert_int_eq(woken, 2);
    sc_fl_view_t v;
    sc_buf_t got = {0}, entry = {0};
    ck_assert_int_eq(sc_fl_read(a, &v, &got, &entry), 0);
    ck_assert(v.head && v.live && v.status == 200 && v.state == SC_FL_RUNNING);
    ck_assert_str_eq(v.ctype, "text/event-stream");
    ck_assert_int_eq((int)got.len, 18);
    sc_fl_bytes(lead, "data: 3\n\n", 9);
    sc_fl_done(lead, "{\"e\":1}", 7);
    ck_assert_int_eq(drain(), 2);
    ck_assert_int_eq(sc_fl_read(a, &v, &got, &entry), 0);
    ck_assert_int_eq((int)got.len, 27); /* only what it had not read */
    ck_assert(v.state == SC_FL_DONE);
    ck_assert_int_eq((int)entry.len, 7);
    sc_fl_detach(t, a);
    sc_fl_detach(t, b);
    sc_fl_leave(t, lead);
    ck_assert_int_eq(drain(), 2); /* the detaches' own posts free the places */
    ck_assert_int_eq(w.pending_ops, 0);
    /* The flight is gone: the next identical request leads. */
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_LEAD);
    sc_fl_leave(t, lead);
    sc_buf_free(&got);
    sc_buf_free(&entry);
    sc_flight_destroy(t);
}
END_TEST

START_TEST(a_leader_that_leaves_without_an_answer_fails_its_followers)
{
    sc_flight_t *t;
    ck_assert_int_eq(sc_flight_create(&t, 8), 0);
    sc_fl_t *lead;
    sc_fl_wait_t *a;
    double sim;
    sc_fl_probe_t p = probe(2, 9, NULL, 2.0);
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_LEAD);
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_FOLLOW);
    sc_fl_leave(t, lead);
    ck_assert_int_eq(drain(), 1);
    sc_fl_view_t v;
    ck_assert_int_eq(sc_fl_read(a, &v, NULL, NULL), 0);
    ck_assert(v.state == SC_FL_FAILED);
    sc_fl_detach(t, a); /* the last reference: the flight is freed */
    ck_assert_int_eq(drain(), 1);
    ck_assert_int_eq(w.pending_ops, 0);
    sc_flight_destroy(t);
}
END_TEST

START_TEST(close_requests_of_one_scope_follow_semantically)
{
    sc_flight_t *t;
    ck_assert_int_eq(sc_flight_create(&t, 8), 0);
    static const float x[4] = {1, 0, 0, 0}, near[4] = {0.96f, 0.28f, 0, 0}, far[4] = {0, 1, 0, 0};
    sc_fl_t *lead, *other;
    sc_fl_wait_t *a;
    double sim = 0;
    sc_fl_probe_t p = probe(3, 11, x, 0.9);
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_LEAD);
    sc_fl_probe_t q = probe(4, 11, near, 0.9);
    ck_assert_int_eq(sc_flight_join(t, &w, &q, wake, NULL, &other, &a, &sim), SC_FL_FOLLOW);
    ck_assert(sim > 0.95 && sim < 0.97);
    sc_fl_detach(t, a);
    /* Too far, another scope, or a threshold no cosine passes: it leads. */
    sc_fl_probe_t r = probe(5, 11, far, 0.9);
    ck_assert_int_eq(sc_flight_join(t, &w, &r, wake, NULL, &other, &a, &sim), SC_FL_LEAD);
    sc_fl_leave(t, other);
    sc_fl_probe_t s = probe(6, 12, near, 0.9);
    ck_assert_int_eq(sc_flight_join(t, &w, &s, wake, NULL, &other, &a, &sim), SC_FL_LEAD);
    sc_fl_leave(t, other);
    sc_fl_probe_t u = probe(7, 11, near, 2.0);
    ck_assert_int_eq(sc_flight_join(t, &w, &u, wake, NULL, &other, &a, &sim), SC_FL_LEAD);
    sc_fl_leave(t, other);
    sc_fl_leave(t, lead);
    drain();
    ck_assert_int_eq(w.pending_ops, 0);
    sc_flight_destroy(t);
}
END_TEST

START_TEST(leases_end_at_their_deadline_or_their_store)
{
    sc_flight_t *t;
    ck_assert_int_eq(sc_flight_create(&t, 8), 0);
    uint8_t key[SC_KEY_BYTES];
    memset(key, 0x5a, sizeof(key));
    sc_fl_probe_t p = {SC_FL_LEASE, key, 0, NULL, 0, 2.0, sc_now_ms() + 60000};
    sc_fl_t *lead;
    sc_fl_wait_t *a;
    double sim;
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_LEAD);
    sc_fl_put(t, lead); /* the lease stays in the table */
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_FOLLOW);
    /* A proxy flight never meets a lease, even on the same key. */
    sc_fl_probe_t px = {SC_FL_PROXY, key, 0, NULL, 0, 2.0, 0};
    sc_fl_t *pl;
    sc_fl_wait_t *pw;
    ck_assert_int_eq(sc_flight_join(t, &w, &px, wake, NULL, &pl, &pw, &sim), SC_FL_LEAD);
    sc_fl_leave(t, pl);
    ck_assert_int_eq(sc_flight_release(t, SC_FL_LEASE, key), 1);
    ck_assert_int_eq(drain(), 1);
    sc_fl_view_t v;
    ck_assert_int_eq(sc_fl_read(a, &v, NULL, NULL), 0);
    ck_assert(v.state == SC_FL_DONE);
    sc_fl_detach(t, a);
    drain();
    ck_assert_int_eq(sc_flight_release(t, SC_FL_LEASE, key), 0);
    /* An expired lease counts as none: the next leased lookup leads. */
    p.deadline_ms = sc_now_ms() - 1;
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_LEAD);
    sc_fl_put(t, lead);
    p.deadline_ms = sc_now_ms() + 60000;
    ck_assert_int_eq(sc_flight_join(t, &w, &p, wake, NULL, &lead, &a, &sim), SC_FL_LEAD);
    sc_fl_put(t, lead);
    ck_assert_int_eq(w.pending_ops, 0);
    sc_flight_destroy(t); /* frees the lease still in the table */
}
END_TEST

START_TEST(coalesced_answers_are_counted_by_namespace_with_a_cap)
{
    sc_flight_t *t;
    ck_assert_int_eq(sc_flight_create(&t, 2), 0);
    sc_flight_count(t, "a", 1, 0);
    sc_flight_count(t, "a", 1, 1);
    sc_flight_count(t, "b", 1, 0);
    sc_flight_count(t, "c", 1, 0); /* past the cap */
    sc_buf_t b = {0};
    sc_flight_prometheus(t, &b);
    sc_buf_append(&b, "", 1);
    ck_assert(strstr(b.data, "semcached_coalesced_total{namespace=\"a\",match=\"exact\"} 1\n"));
    ck_assert(strstr(b.data, "semcached_coalesced_total{namespace=\"a\",match=\"semantic\"} 1\n"));
    ck_assert(strstr(b.data, "semcached_coalesced_total{namespace=\"_other\",match=\"exact\"} 1\n"));
    ck_assert(!strstr(b.data, "namespace=\"c\""));
    sc_buf_reset(&b);
    sc_flight_stats_json(t, &b);
    sc_buf_append(&b, "", 1);
    ck_assert_str_eq(b.data, "\"coalesced\":{\"exact\":3,\"semantic\":1}");
    sc_buf_free(&b);
    sc_flight_destroy(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flight");
    TCase *tc = tcase_create("flight");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, identical_requests_follow_one_leader);
    tcase_add_test(tc, a_leader_that_leaves_without_an_answer_fails_its_followers);
    tcase_add_test(tc, close_requests_of_one_scope_follow_semantically);
    tcase_add_test(tc, leases_end_at_their_deadline_or_their_store);
    tcase_add_test(tc, coalesced_answers_are_counted_by_namespace_with_a_cap);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
