/* tests/integration/judge.c -- compare "judge" through the real binary
 * against tests/mock_upstream.py, whose judge_reply answers the fixed prompt
 * by markers ("judge:same", "judge:different", "judge:garbage") or by the
 * answers' first words: a SAME verdict is correct, DIFFERENT wrong, a chatty
 * reply no verdict (counted, never correct); the agreement with the cheap
 * second method shows per namespace; the model asked is the request's or
 * --judge-model; the setting needs --upstream-url. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static void store(int port, const char *ns, const char *prompt, const char *answer)
{
    char body[512];
    snprintf(
        body, sizeof(body),
        "{\"namespace\":\"%s\",\"model\":\"m\",\"prompt\":\"%s\","
        "\"response\":{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"%s\"}}]}}",
        ns, prompt, answer);
    json_decref(tu_call(port, "POST", "/v1/store", body, 201));
}

static json_t *lookup(int port, const char *ns, const char *prompt)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"namespace\":\"%s\",\"model\":\"m\",\"prompt\":\"%s\"}", ns,
             prompt);
    return tu_call(port, "POST", "/v1/lookup", body, 200);
}

/* The judge calls ended so far, all results. */
static double judge_calls(int port)
{
    const char *r[] = {"same", "different", "no_verdict", "failed"};
    double n = 0;
    for (int i = 0; i < 4; i++) {
        char s[96];
        snprintf(s, sizeof(s), "semcached_judge_calls_total{result=\"%s\"}", r[i]);
        n += tu_metric(port, s);
    }
    return n;
}

static void wait_judge_calls(int port, int n)
{
    for (int i = 0; i < 500 && judge_calls(port) < n; i++)
        usleep(20000);
    ck_assert_int_eq((int)judge_calls(port), n);
}

/* The mock's last request body (a judge call: its model and messages). */
static json_t *mock_last_body(int mport)
{
    json_t *st = tu_call(mport, "GET", "/stats", NULL, 200);
    json_t *b = json_incref(json_object_get(st, "last_body"));
    json_decref(st);
    ck_assert_ptr_nonnull(b);
    return b;
}

static const char *msg_content(json_t *body, size_t i)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(body, "messages"), i), "content"));
}

static json_t *ns_get(int port, const char *ns)
{
    char path[96];
    snprintf(path, sizeof(path), "/v1/namespaces/%s", ns);
    return tu_call(port, "GET", path, NULL, 200);
}

/* The mock upstream and a server re-inferring (and judging) through it,
 * with --judge-model 'judge_model' unless NULL; returns the mock's pid. */
static pid_t start_with_mock(tu_server_t *s, int *mport, const char *judge_model)
{
    pid_t mock = tu_mock_start("", mport);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", *mport);
    const char *args[] = {"--upstream-url", url, "--sample-rate", "0", "--judge-model",
                          judge_model,      NULL};
    if (!judge_model)
        args[4] = NULL;
    tu_server_start(s, args);
    return mock;
}

START_TEST(judge_verdicts_decide_upstream_validations)
{
    int mport;
    tu_server_t s;
    pid_t mock = start_with_mock(&s, &mport, NULL);
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/j",
                        "{\"delivery\":\"upstream\",\"sample_rate\":1,\"validation_budget\":1,\"compare\":\"judge\","
                        "\"invalidate_on_wrong\":false}",
                        200));
    /* The re-inference answers "answer-<hash>"; each cached answer differs
     * in words, so the judge decides, by the marker in the request. */
    const char *prompts[] = {"capital judge:same", "tallest judge:different",
                             "longest judge:garbage"};
    for (int i = 0; i < 3; i++) {
        store(s.port, "j", prompts[i], "a cached answer in other words");
        json_t *j = lookup(s.port, "j", prompts[i]);
        ck_assert_str_eq(tu_str(j, "match"), "exact");
        json_decref(j);
        wait_judge_calls(s.port, i + 1); /* one at a time: the mock's last request is ours */
        if (i == 0) {                    /* the request's model and text went to the judge */
            json_t *b = mock_last_body(mport);
            ck_assert_str_eq(tu_str(b, "model"), "m");
            ck_assert_ptr_nonnull(strstr(msg_content(b, 0), "You check a response cache."));
            ck_assert_ptr_nonnull(strstr(msg_content(b, 1), "<request>\ncapital judge:same"));
            ck_assert_ptr_nonnull(strstr(msg_content(b, 1), "a cached answer in other words"));
            json_decref(b);
        }
    }
    ck_assert_double_eq(tu_metric(s.port, "semcached_judge_calls_total{result=\"same\"}"), 1);
    ck_assert_double_eq(tu_metric(s.port, "semcached_judge_calls_total{result=\"different\"}"), 1);
    ck_assert_double_eq(tu_metric(s.port, "semcached_judge_calls_total{result=\"no_verdict\"}"), 1);
    json_t *j = NULL;
    /* The verdict is applied after the count (by the writer thread). */
    for (long long t0 = tu_now_ms(); tu_now_ms() - t0 <= TU_PATIENCE_MS;) {
        json_decref(j);
        j = ns_get(s.port, "j");
        if (json_integer_value(json_object_get(json_object_get(j, "quality"), "validated")) >= 2)
            break;
        usleep(20000);
    }
    json_t *q = json_object_get(j, "quality");
    /* The garbage reply gave no verdict: two validations, one wrong. */
    ck_assert_int_eq(json_integer_value(json_object_get(q, "validated")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "wrong")), 1);
    /* No model in this server: the second method is normalized, which
     * called both pairs wrong; the judge agreed on one. */
    json_t *ag = json_array_get(json_object_get(q, "agreement"), 0);
    ck_assert_ptr_nonnull(ag);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(ag, "methods"), 0)),
                     "normalized");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(ag, "methods"), 1)), "judge");
    ck_assert_int_eq(json_integer_value(json_object_get(ag, "pairs")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(ag, "both_wrong")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(ag, "only_normalized_wrong")), 1);
    ck_assert_double_eq_tol(json_real_value(json_object_get(ag, "agreement")), 0.5, 1e-9);
    json_decref(j);
    tu_server_destroy(&s);
    tu_mock_stop(mock);
}
END_TEST

START_TEST(judge_model_option_and_feedback)
{
    int mport;
    tu_server_t s;
    pid_t mock = start_with_mock(&s, &mport, "judge-1");
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/f",
                        "{\"sample_rate\":1,\"validation_budget\":1,\"compare\":\"judge\",\"invalidate_on_wrong\":false}",
                        200));
    store(s.port, "f", "capital of France?", "Paris is the capital.");
    const char *fresh[] = {"paris, of course", "Lyon, I think"};
    const char *want[] = {"correct", "wrong"};
    for (int i = 0; i < 2; i++) {
        json_t *j = lookup(s.port, "f", "capital of France?");
        char body[256];
        snprintf(body, sizeof(body), "{\"validation_id\":\"%s\",\"fresh_response\":\"%s\"}",
                 tu_str(j, "validation_id"), fresh[i]);
        json_decref(j);
        j = tu_call(s.port, "POST", "/v1/feedback", body, 200);
        ck_assert_str_eq(tu_str(j, "verdict"), want[i]);
        ck_assert_str_eq(tu_str(j, "method"), "judge");
        json_decref(j);
        json_t *b = mock_last_body(mport);
        ck_assert_str_eq(tu_str(b, "model"), "judge-1");
        json_decref(b);
    }
    /* A chatty reply is no verdict: the feedback says so, nothing counted. */
    json_t *j = lookup(s.port, "f", "capital of France?");
    char body[256];
    snprintf(body, sizeof(body),
             "{\"validation_id\":\"%s\",\"fresh_response\":\"Paris judge:garbage\"}",
             tu_str(j, "validation_id"));
    json_decref(j);
    json_decref(tu_call(s.port, "POST", "/v1/feedback", body, 503));
    j = ns_get(s.port, "f");
    json_t *q = json_object_get(j, "quality");
    ck_assert_int_eq(json_integer_value(json_object_get(q, "validated")), 2);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "wrong")), 1);
    json_decref(j);
    tu_server_destroy(&s);
    tu_mock_stop(mock);
}
END_TEST

START_TEST(judge_needs_an_upstream)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    json_t *j = tu_call(s.port, "PUT", "/v1/namespaces/x", "{\"compare\":\"judge\"}", 400);
    ck_assert_ptr_nonnull(strstr(tu_str(j, "detail"), "--upstream-url"));
    json_decref(j);
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/x", "{\"compare\":\"fuzzy\"}", 400));
    tu_server_destroy(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("judge");
    TCase *tc = tcase_create("judge");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, judge_verdicts_decide_upstream_validations);
    tcase_add_test(tc, judge_model_option_and_feedback);
    tcase_add_test(tc, judge_needs_an_upstream);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
