/* tests/integration/guards.c -- the guards before a semantic hit and the
 * threshold in force, through the real binary: a candidate at the
 * threshold whose texts differ by a negation, a number or a rare word is a
 * miss (counted by reason in semcached_guard_rejections_total; the
 * rare-word check only with a built-in static model), unless the
 * namespace turns "guards" off; GET /v1/namespaces/{name} says which
 * threshold is in force and where it comes from (namespace, the model's
 * default, the server's, or learned under an error budget). Vectors are
 * given by the client (identical, similarity 1), except in the model test,
 * which needs GloVe (`make model`) and skips without it. */
#define _GNU_SOURCE
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define VEC "[0.5,0.5,0.5,0.5]"

static void store(int port, const char *ns, const char *prompt, const char *vec)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"namespace\":\"%s\",\"model\":\"m\",\"prompt\":\"%s\",%s%s%s\"response\":\"r\"}",
             ns, prompt, vec ? "\"embedding\":" : "", vec ? vec : "", vec ? "," : "");
    json_decref(tu_call(port, "POST", "/v1/store", body, 201));
}

static json_t *lookup(int port, const char *ns, const char *prompt, const char *vec)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"namespace\":\"%s\",\"model\":\"m\",\"prompt\":\"%s\"%s%s}", ns,
             prompt, vec ? ",\"embedding\":" : "", vec ? vec : "");
    return tu_call(port, "POST", "/v1/lookup", body, 200);
}

/* A lookup that the guards turn into a miss for 'reason', counted once. */
static void expect_refused(int port, const char *ns, const char *prompt, const char *vec,
                           const char *reason)
{
    json_t *j = lookup(port, ns, prompt, vec);
    ck_assert_str_eq(tu_str(j, "status"), "miss");
    ck_assert_str_eq(tu_str(j, "guard_refused"), reason);
    json_decref(j);
    char series[256];
    snprintf(series, sizeof(series),
             "semcached_guard_rejections_total{namespace=\"%s\",reason=\"%s\"}", ns, reason);
    ck_assert_double_eq(tu_metric(port, series), 1);
}

/* GET /v1/namespaces/{ns}: the threshold in force and its source. */
static void threshold_of(int port, const char *ns, double *t, char source[32])
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/namespaces/%s", ns);
    json_t *j = tu_call(port, "GET", path, NULL, 200);
    json_t *tj = json_object_get(j, "threshold");
    *t = json_is_number(tj) ? json_number_value(tj) : -9;
    snprintf(source, 32, "%s", tu_str(j, "threshold_source"));
    json_decref(j);
}

START_TEST(guards_refuse_hits_that_differ_in_negation_numbers_or_rare_words)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    store(s.port, "g", "How do I reset my password?", VEC);
    expect_refused(s.port, "g", "How do I not reset my password?", VEC, "negation");
    /* Client vectors: no rare-word check (a strong embedder sees rare
     * words itself); the vectors decide. */
    json_t *j = lookup(s.port, "g", "How do I reset my router?", VEC);
    ck_assert_str_eq(tu_str(j, "status"), "hit");
    json_decref(j);
    /* A rewording with nothing the guards object to is served. */
    j = lookup(s.port, "g", "how do i reset my password", VEC);
    ck_assert_str_eq(tu_str(j, "status"), "hit");
    ck_assert_str_eq(tu_str(j, "match"), "semantic");
    json_decref(j);
    ck_assert_double_eq(
        tu_metric(s.port, "semcached_guard_rejections_total{namespace=\"g\",reason=\"rare_word\"}"),
        0);
    /* "guards": false serves what the vectors say. */
    j = tu_call(s.port, "PUT", "/v1/namespaces/g", "{\"guards\":false}", 200);
    ck_assert(json_is_false(json_object_get(json_object_get(j, "settings"), "guards")));
    json_decref(j);
    j = lookup(s.port, "g", "How do I not reset my password?", VEC);
    ck_assert_str_eq(tu_str(j, "status"), "hit");
    json_decref(j);
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/g", "{\"guards\":1}", 400));
    tu_server_destroy(&s);
}
END_TEST

START_TEST(numbers_guard)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    store(s.port, "n", "best laptop of 2019", VEC);
    expect_refused(s.port, "n", "best laptop of 2020", VEC, "numbers");
    tu_server_destroy(&s);
}
END_TEST

START_TEST(threshold_in_force_and_its_source)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    double t;
    char src[32];
    threshold_of(s.port, "plain", &t, src); /* no model: the server's default */
    ck_assert_double_eq_tol(t, 0.90, 1e-9);
    ck_assert_str_eq(src, "server_default");
    json_t *j = tu_call(s.port, "PUT", "/v1/namespaces/plain", "{\"threshold\":0.8}", 200);
    ck_assert_double_eq_tol(json_number_value(json_object_get(j, "threshold")), 0.8, 1e-9);
    ck_assert_str_eq(tu_str(j, "threshold_source"), "namespace");
    json_decref(j);
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/budget", "{\"max_error_rate\":0.05}", 200));
    threshold_of(s.port, "budget", &t, src); /* nothing learned yet: no semantic hits */
    ck_assert_double_eq(t, -9);
    ck_assert_str_eq(src, "learned");
    /* A restart keeps "not set" as not set (the stored settings say null). */
    ck_assert_int_eq(tu_server_stop(&s, SIGTERM), 0); /* a clean exit, then the same data */
    tu_server_restart(&s);
    threshold_of(s.port, "plain", &t, src);
    ck_assert_str_eq(src, "namespace");
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/plain", "{\"semantic\":true}", 200));
    ck_assert_int_eq(tu_server_stop(&s, SIGTERM), 0); /* a clean exit, then the same data */
    tu_server_restart(&s);
    threshold_of(s.port, "plain", &t, src);
    ck_assert_str_eq(src, "server_default");
    tu_server_destroy(&s);
}
END_TEST

/* GloVe's own default (0.99, docs/quality.md) applies unless
 * --model-thresholds is off; the README's near miss is refused at it. */
START_TEST(model_default_threshold)
{
    char model[1024];
    const char *cache = getenv("SEMCACHED_MODEL_CACHE");
    snprintf(model, sizeof(model), "%s/glove-100d.scglove",
             cache && *cache ? cache : "/root/.cache/semcached");
    if (access(model, R_OK) != 0) {
        tu_skip("GloVe model absent (make model)");
        return;
    }
    tu_server_t s;
    tu_server_start(&s, (const char *[]){"--model", model, NULL});
    double t;
    char src[32];
    threshold_of(s.port, "m", &t, src);
    ck_assert_double_eq_tol(t, 0.99, 1e-9);
    ck_assert_str_eq(src, "model_default");
    store(s.port, "m", "How do I reset my password?", NULL);
    json_t *j = lookup(s.port, "m", "How do I reset my router?", NULL);
    ck_assert_str_eq(tu_str(j, "status"), "miss");
    ck_assert(json_number_value(json_object_get(j, "best_similarity")) < 0.99);
    json_decref(j);
    j = lookup(s.port, "m", "how do I reset my password", NULL);
    ck_assert_str_eq(tu_str(j, "status"), "hit");
    json_decref(j);
    /* Below it, GloVe's namespaces also get the rare-word guard. */
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/m", "{\"threshold\":0.9}", 200));
    expect_refused(s.port, "m", "How do I reset my router?", NULL, "rare_word");
    tu_server_destroy(&s);
    tu_server_start(&s, (const char *[]){"--model", model, "--threshold", "0.85",
                                         "--model-thresholds", "off", NULL});
    threshold_of(s.port, "m", &t, src);
    ck_assert_double_eq_tol(t, 0.85, 1e-9);
    ck_assert_str_eq(src, "server_default");
    tu_server_destroy(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("guards");
    TCase *tc = tcase_create("guards");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, guards_refuse_hits_that_differ_in_negation_numbers_or_rare_words);
    tcase_add_test(tc, numbers_guard);
    tcase_add_test(tc, threshold_in_force_and_its_source);
    tcase_add_test(tc, model_default_threshold);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
