/* tests/integration/quality.c -- validation sampling and feedback through the
 * real binary (caller delivery): the sampled fraction, a new scope's first
 * semantic hits, verdicts by validation id and by key, answer comparison,
 * invalidation and negative pairs on wrong answers, the bounded pending table,
 * false-hit rates with their confidence bound, and the records kept. */
#define _GNU_SOURCE
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define call tu_call
#define sfield tu_str

static int validated(json_t *j)
{
    return json_is_true(json_object_get(j, "validate")) && strlen(sfield(j, "validation_id")) == 32;
}

/* 1 when lookup 'body' is a miss. */
static int is_miss(int port, const char *body)
{
    json_t *j = call(port, "POST", "/v1/lookup", body, 200);
    int miss = strcmp(sfield(j, "status"), "miss") == 0;
    json_decref(j);
    return miss;
}

START_TEST(sampled_fraction_is_the_sample_rate)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    json_decref(call(s.port, "PUT", "/v1/namespaces/q", "{\"validation_budget\":1,\"sample_rate\":0.2}", 200));
    json_decref(call(s.port, "POST", "/v1/store",
                     "{\"namespace\":\"q\",\"model\":\"m\",\"prompt\":\"p\",\"response\":1}", 201));
    int n = 2000, marked = 0;
    for (int i = 0; i < n; i++) {
        json_t *j = call(s.port, "POST", "/v1/lookup",
                         "{\"namespace\":\"q\",\"model\":\"m\",\"prompt\":\"p\"}", 200);
        ck_assert_str_eq(sfield(j, "match"), "exact");
        marked += validated(j);
        json_decref(j);
    }
    /* Binomial(2000, 0.2): mean 400, sd 17.9; 4 sd either side. */
    fprintf(stderr, "sampled %d of %d at rate 0.2\n", marked, n);
    ck_assert_int_ge(marked, 328);
    ck_assert_int_le(marked, 472);
    /* sample_rate 0 marks nothing. */
    json_decref(call(s.port, "PUT", "/v1/namespaces/q", "{\"validation_budget\":1,\"sample_rate\":0}", 200));
    for (int i = 0; i < 200; i++) {
        json_t *j = call(s.port, "POST", "/v1/lookup",
                         "{\"namespace\":\"q\",\"model\":\"m\",\"prompt\":\"p\"}", 200);
        ck_assert(!validated(j));
        json_decref(j);
    }
    tu_server_destroy(&s);
}
END_TEST

START_TEST(first_semantic_hits_of_a_scope_are_always_validated)
{
    tu_server_t s;
    const char *args[] = {"--validate-first", "3", "--sample-rate", "0", "--validation-budget", "1",
                          NULL};
    tu_server_start(&s, args);
    json_decref(call(
        s.port, "POST", "/v1/store",
        "{\"model\":\"m\",\"prompt\":\"alpha\",\"embedding\":[1,0,0],\"response\":\"A\"}", 201));
    for (int i = 0; i < 5; i++) {
        char body[160];
        snprintf(body, sizeof(body),
                 "{\"model\":\"m\",\"prompt\":\"alpha%.*s\",\"embedding\":[1,0.1,0.0%d]}", i + 1,
                 "?????", i); /* no number in the text: the guards let it pass */
        json_t *j = call(s.port, "POST", "/v1/lookup", body, 200);
        ck_assert_str_eq(sfield(j, "match"), "semantic");
        ck_assert_int_eq(validated(j), i < 3);
        json_decref(j);
    }
    /* Exact hits are not "first semantic hits". */
    json_t *j = call(s.port, "POST", "/v1/lookup",
                     "{\"model\":\"m\",\"prompt\":\"alpha\",\"embedding\":[1,0,0]}", 200);
    ck_assert(!validated(j));
    json_decref(j);
    tu_server_destroy(&s);
}
END_TEST

START_TEST(verdicts_count_invalidate_and_remember_negatives)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    json_decref(call(s.port, "PUT", "/v1/namespaces/v",
                     "{\"validation_budget\":1,\"sample_rate\":1,\"invalidate_on_wrong\":false}", 200));
    json_decref(
        call(s.port, "POST", "/v1/store",
             "{\"namespace\":\"v\",\"model\":\"m\",\"prompt\":\"capital of France\","
             "\"embedding\":[1,0,0],\"response\":{\"role\":\"assistant\",\"content\":\"Paris.\"}}",
             201));
    /* A semantic hit judged by comparing answers: case and punctuation fold. */
    json_t *j = call(s.port, "POST", "/v1/lookup",
                     "{\"namespace\":\"v\",\"model\":\"m\",\"prompt\":\"France "
                     "capital?\",\"embedding\":[1,0.1,0]}",
                     200);
    ck_assert(validated(j));
    char body[256];
    snprintf(body, sizeof(body),
             "{\"validation_id\":\"%s\",\"fresh_response\":{\"content\":\"paris\"}}",
             sfield(j, "validation_id"));
    json_decref(j);
    j = call(s.port, "POST", "/v1/feedback", body, 200);
    ck_assert_str_eq(sfield(j, "verdict"), "correct");
    ck_assert_str_eq(sfield(j, "match"), "semantic");
    ck_assert_str_eq(sfield(j, "method"), "normalized");
    json_decref(j);
    /* The same id twice is refused. */
    json_decref(call(s.port, "POST", "/v1/feedback", body, 404));
    /* Another request hits the same entry and is wrong for it. */
    j = call(s.port, "POST", "/v1/lookup",
             "{\"namespace\":\"v\",\"model\":\"m\",\"prompt\":\"capital of "
             "Texas\",\"embedding\":[1,0.2,0]}",
             200);
    ck_assert_str_eq(sfield(j, "match"), "semantic");
    snprintf(body, sizeof(body), "{\"validation_id\":\"%s\",\"fresh_response\":\"Austin.\"}",
             sfield(j, "validation_id"));
    json_decref(j);
    j = call(s.port, "POST", "/v1/feedback", body, 200);
    ck_assert_str_eq(sfield(j, "verdict"), "wrong");
    ck_assert(!json_is_true(json_object_get(j, "invalidated"))); /* invalidate_on_wrong is off */
    json_decref(j);
    /* That request never hits that entry again; others still do. */
    int miss; /* the negative is written by the writer thread */
    TU_WAIT_UNTIL(miss,
                  is_miss(s.port, "{\"namespace\":\"v\",\"model\":\"m\",\"prompt\":\"capital "
                                  "of Texas\",\"embedding\":[1,0.2,0]}"),
                  TU_PATIENCE_MS);
    ck_assert(miss);
    j = call(s.port, "POST", "/v1/lookup",
             "{\"namespace\":\"v\",\"model\":\"m\",\"prompt\":\"France "
             "capital?\",\"embedding\":[1,0.1,0]}",
             200);
    ck_assert_str_eq(sfield(j, "match"), "semantic");
    json_decref(j);
    /* Counts and the confidence bound: 1 wrong of 2. */
    j = call(s.port, "GET", "/v1/namespaces/v", NULL, 200);
    json_t *q = json_object_get(j, "quality");
    ck_assert_int_eq(json_integer_value(json_object_get(q, "validated")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "wrong")), 1);
    ck_assert(fabs(json_real_value(json_object_get(q, "false_hit_rate")) - 0.5) < 1e-9);
    ck_assert(fabs(json_real_value(json_object_get(q, "false_hit_rate_upper")) - 0.905469) < 1e-5);
    json_decref(j);
    /* Feedback by key with a verdict; with invalidation on, the entry goes. */
    json_decref(call(s.port, "PUT", "/v1/namespaces/v",
                     "{\"validation_budget\":1,\"sample_rate\":0,\"invalidate_on_wrong\":true}", 200));
    j = call(s.port, "POST", "/v1/lookup",
             "{\"namespace\":\"v\",\"model\":\"m\",\"prompt\":\"capital of "
             "France\",\"embedding\":[1,0,0]}",
             200);
    snprintf(body, sizeof(body), "{\"key\":\"%s\",\"verdict\":\"wrong\"}", sfield(j, "key"));
    json_decref(j);
    j = call(s.port, "POST", "/v1/feedback", body, 200);
    ck_assert(json_is_true(json_object_get(j, "invalidated")));
    json_decref(j);
    int gone;
    TU_WAIT_UNTIL(gone,
                  is_miss(s.port, "{\"namespace\":\"v\",\"model\":\"m\",\"prompt\":\"capital "
                                  "of France\",\"embedding\":[1,0,0]}"),
                  TU_PATIENCE_MS);
    ck_assert(gone);
    /* Every verdict is on record, newest first. */
    j = call(s.port, "GET", "/v1/validations?limit=10", NULL, 200);
    ck_assert_int_eq((int)json_array_size(j), 3);
    ck_assert_str_eq(sfield(json_array_get(j, 0), "verdict"), "wrong");
    ck_assert_str_eq(sfield(json_array_get(j, 0), "method"), "reported");
    ck_assert_str_eq(sfield(json_array_get(j, 2), "verdict"), "correct");
    ck_assert_str_eq(sfield(json_array_get(j, 2), "namespace"), "v");
    json_decref(j);
    /* Metrics carry the counts and pass promtool's checks. */
    tu_resp_t r = tu_http(s.port, "GET", "/metrics", NULL);
    /* The by-key verdict went to the newest pending validation of that entry,
     * a semantic hit sampled above: two semantic wrongs in all. */
    ck_assert(strstr(
        r.body,
        "semcached_validations_total{namespace=\"v\",match=\"semantic\",verdict=\"wrong\"} 2"));
    ck_assert(strstr(r.body, "semcached_false_hit_rate_upper{namespace=\"v\"}"));
    char path[] = "/tmp/sc-qmetrics-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_eq((int)write(fd, r.body, r.body_len), (int)r.body_len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > /dev/null 2>&1", path);
    ck_assert_int_eq(system(cmd), 0);
    unlink(path);
    tu_resp_free(&r);
    tu_server_destroy(&s);
}
END_TEST

START_TEST(bad_feedback_and_a_full_pending_table)
{
    tu_server_t s;
    const char *args[] = {"--validation-pending", "2", "--sample-rate", "1",
                          "--validation-budget", "1", NULL};
    tu_server_start(&s, args);
    json_decref(call(s.port, "POST", "/v1/store",
                     "{\"model\":\"m\",\"prompt\":\"p\",\"response\":1}", 201));
    int marked = 0;
    for (int i = 0; i < 5; i++) {
        json_t *j = call(s.port, "POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"p\"}", 200);
        ck_assert_str_eq(sfield(j, "match"), "exact"); /* a full table never blocks a hit */
        marked += validated(j);
        json_decref(j);
    }
    ck_assert_int_eq(marked, 2);
    tu_resp_t r = tu_http(s.port, "GET", "/metrics", NULL);
    ck_assert(strstr(r.body, "semcached_validation_dropped_total 3"));
    ck_assert(strstr(r.body, "semcached_validations_pending 2"));
    tu_resp_free(&r);
    const char *bad[] = {
        "{}",
        "[]",
        "{\"validation_id\":\"x\",\"key\":\"y\",\"verdict\":\"wrong\"}",
        "{\"validation_id\":\"x\"}",
        "{\"key\":\"zz\",\"verdict\":\"wrong\"}",
        "{\"key\":\"00000000000000000000000000000000\",\"verdict\":\"maybe\"}",
        "{\"validation_id\":\"x\",\"verdict\":\"wrong\",\"extra\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        json_decref(call(s.port, "POST", "/v1/feedback", bad[i], 400));
    json_decref(call(
        s.port, "POST", "/v1/feedback",
        "{\"validation_id\":\"0123456789abcdef0123456789abcdef\",\"verdict\":\"wrong\"}", 404));
    json_decref(call(s.port, "POST", "/v1/feedback",
                     "{\"key\":\"00000000000000000000000000000000\",\"fresh_response\":1}", 404));
    json_decref(call(s.port, "PUT", "/v1/namespaces/default", "{\"compare\":\"semantic\"}", 400));
    json_decref(call(s.port, "PUT", "/v1/namespaces/default", "{\"delivery\":\"webhook\"}", 400));
    json_decref(call(s.port, "PUT", "/v1/namespaces/default", "{\"validation_budget\":1,\"sample_rate\":1.5}", 400));
    tu_server_destroy(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quality");
    TCase *tc = tcase_create("quality");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, sampled_fraction_is_the_sample_rate);
    tcase_add_test(tc, first_semantic_hits_of_a_scope_are_always_validated);
    tcase_add_test(tc, verdicts_count_invalidate_and_remember_negatives);
    tcase_add_test(tc, bad_feedback_and_a_full_pending_table);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
