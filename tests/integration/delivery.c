/* tests/integration/delivery.c -- the validation deliveries through the real
 * binary against tests/mock_upstream.py: "upstream" (the server re-infers a
 * sampled hit itself and acts on the comparison; slow or failing upstreams
 * never reach the caller), "webhook" (a receiver is told and answers through
 * /v1/feedback), and the "semantic" answer comparison through the server's
 * embedder. */
#define _GNU_SOURCE
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define call tu_call
#define sfield tu_str

/* A small labelled pair file for the mock's chat answers. */
static void write_pairs(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/sc-pairs-%d.tsv", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("question1\tquestion2\tis_duplicate\n"
          "What is the capital of France?\tWhich city is the capital of France?\t1\n"
          "How tall is Mount Everest?\tHow high is Everest?\t1\n"
          "How tall is Mount Everest?\tHow tall is K2?\t0\n",
          f);
    fclose(f);
}

/* The mock's answer to 'question' (what a fresh inference returns). */
static char *mock_answer(int mport, const char *question)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", question);
    json_t *j = call(mport, "POST", "/v1/chat/completions", body, 200);
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    char *a = strdup(json_string_value(json_object_get(msg, "content")));
    json_decref(j);
    return a;
}

static json_t *ns_quality(int port, const char *ns)
{
    char path[128];
    snprintf(path, sizeof(path), "/v1/namespaces/%s", ns);
    json_t *j = call(port, "GET", path, NULL, 200);
    json_t *q = json_incref(json_object_get(j, "quality"));
    json_decref(j);
    return q;
}

/* Waits (up to 10 s) until namespace 'ns' has 'n' validated hits. */
static json_t *wait_validated(int port, const char *ns, int n)
{
    for (int i = 0; i < 500; i++) {
        json_t *q = ns_quality(port, ns);
        if (json_integer_value(json_object_get(q, "validated")) >= n)
            return q;
        json_decref(q);
        usleep(20000);
    }
    ck_abort_msg("namespace %s never reached %d validations", ns, n);
    return NULL;
}

static double metric(int port, const char *name)
{
    tu_resp_t r = tu_http(port, "GET", "/metrics", NULL);
    char pat[160];
    snprintf(pat, sizeof(pat), "\n%s ", name);
    const char *at = strstr(r.body, pat);
    double v = at ? atof(at + strlen(pat)) : -1;
    tu_resp_free(&r);
    return v;
}

static void store(int port, const char *ns, const char *prompt, const char *answer, char key[33])
{
    char body[512];
    snprintf(
        body, sizeof(body),
        "{\"namespace\":\"%s\",\"model\":\"m\",\"prompt\":\"%s\","
        "\"response\":{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"%s\"}}]}}",
        ns, prompt, answer);
    json_t *j = call(port, "POST", "/v1/store", body, 201);
    if (key)
        snprintf(key, 33, "%s", sfield(j, "key"));
    json_decref(j);
}

static json_t *lookup(int port, const char *ns, const char *prompt)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"namespace\":\"%s\",\"model\":\"m\",\"prompt\":\"%s\"}", ns,
             prompt);
    return call(port, "POST", "/v1/lookup", body, 200);
}

START_TEST(upstream_reinfers_sampled_hits_and_acts_on_them)
{
    char pairs[128], args[256], url[128];
    write_pairs(pairs, sizeof(pairs));
    snprintf(args, sizeof(args), "--pairs %s", pairs);
    int mport;
    pid_t mock = tu_mock_start(args, &mport);
    setenv("SEMCACHED_UPSTREAM_API_KEY", "up-key", 1);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", mport);
    const char *sargs[] = {"--upstream-url", url, "--sample-rate", "0", NULL};
    tu_server_t s;
    tu_server_start(&s, sargs);
    json_decref(call(s.port, "PUT", "/v1/namespaces/u",
                     "{\"delivery\":\"upstream\",\"validation_budget\":1,\"sample_rate\":1}", 200));
    /* One entry holds what the model says, one a stale wrong answer. */
    char *right = mock_answer(mport, "What is the capital of France?");
    char kright[33], kwrong[33];
    store(s.port, "u", "What is the capital of France?", right, kright);
    store(s.port, "u", "How tall is Mount Everest?", "eight kilometres, give or take", kwrong);
    /* Hits are served at once, without a validation id for the caller. */
    for (int i = 0; i < 2; i++) {
        json_t *j = lookup(s.port, "u",
                           i ? "How tall is Mount Everest?" : "What is the capital of France?");
        ck_assert_str_eq(sfield(j, "match"), "exact");
        ck_assert_ptr_null(json_object_get(j, "validation_id"));
        json_decref(j);
    }
    json_t *q = wait_validated(s.port, "u", 2);
    ck_assert_int_eq(json_integer_value(json_object_get(q, "wrong")), 1);
    json_decref(q);
    /* The wrong entry is gone, the right one stays. */
    char path[64];
    snprintf(path, sizeof(path), "/v1/entries/%s", kwrong);
    int gone;
    TU_WAIT_UNTIL(gone, tu_status(s.port, "GET", path) == 404, TU_PATIENCE_MS);
    ck_assert(gone);
    snprintf(path, sizeof(path), "/v1/entries/%s", kright);
    json_decref(call(s.port, "GET", path, NULL, 200));
    /* The mock saw both re-inferences, with the key from the environment
     * (the test's own call above came first, without one). */
    json_t *st = call(mport, "GET", "/stats", NULL, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(st, "chat_calls")), 3);
    ck_assert_str_eq(sfield(st, "last_authorization"), "Bearer up-key");
    json_decref(st);
    ck_assert(metric(s.port, "semcached_upstream_calls_total") == 2);
    /* The records keep the inputs of each verdict. */
    json_t *v = call(s.port, "GET", "/v1/validations?limit=5", NULL, 200);
    ck_assert_int_eq((int)json_array_size(v), 2);
    int seen_wrong = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *r = json_array_get(v, i);
        ck_assert_str_eq(sfield(r, "method"), "normalized");
        if (strcmp(sfield(r, "verdict"), "wrong") == 0) {
            seen_wrong = 1;
            ck_assert_str_eq(sfield(r, "cached_answer"), "eight kilometres, give or take");
            char *fresh = mock_answer(mport, "How tall is Mount Everest?");
            ck_assert_str_eq(sfield(r, "fresh_answer"), fresh);
            free(fresh);
        }
    }
    ck_assert(seen_wrong);
    json_decref(v);
    free(right);
    tu_server_destroy(&s);
    tu_mock_stop(mock);
    unlink(pairs);
}
END_TEST

START_TEST(slow_or_failing_upstream_never_reaches_the_caller)
{
    int mport;
    pid_t mock = tu_mock_start("--delay-ms 6000", &mport);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", mport);
    /* The first two calls time out after 2 s and make room in the queue: the
     * 40 lookups below must all come before that (they take about 0.3 s under
     * ASan; 0.3 s was the whole margin with a 300-ms timeout). */
    const char *sargs[] = {"--upstream-url",
                           url,
                           "--upstream-timeout-ms",
                           "2000",
                           "--upstream-concurrency",
                           "2",
                           "--upstream-queue",
                           "4",
                           NULL};
    tu_server_t s;
    tu_server_start(&s, sargs);
    json_decref(call(s.port, "PUT", "/v1/namespaces/u",
                     "{\"delivery\":\"upstream\",\"validation_budget\":1,\"sample_rate\":1}", 200));
    store(s.port, "u", "p", "cached answer", NULL);
    /* 40 hits, each sampled: every caller is answered while the upstream
     * hangs (a caller that waited for its re-inference would wait the 2-s
     * timeout), and samples beyond the queue are dropped, not waited for. */
    long long slowest = 0, start = tu_now_ms();
    for (int i = 0; i < 40; i++) {
        long long t0 = tu_now_ms();
        json_t *j = lookup(s.port, "u", "p");
        ck_assert_str_eq(sfield(j, "match"), "exact");
        json_decref(j);
        long long took = tu_now_ms() - t0;
        if (took > slowest)
            slowest = took;
    }
    fprintf(stderr, "40 sampled hits in %lld ms, the slowest %lld ms\n", tu_now_ms() - start,
            slowest);
    ck_assert_msg(slowest < 1000, "a sampled hit took %lld ms", slowest);
    /* The ones that ran time out (after 2, 4 and 6 s) and are counted;
     * nothing was judged. */
    int failed;
    TU_WAIT_UNTIL(failed, metric(s.port, "semcached_upstream_failures_total") >= 6, TU_PATIENCE_MS);
    ck_assert(failed);
    ck_assert(metric(s.port, "semcached_validation_dropped_total") >= 34);
    json_t *q = ns_quality(s.port, "u");
    ck_assert_int_eq(json_integer_value(json_object_get(q, "validated")), 0);
    json_decref(q);
    json_t *j = lookup(s.port, "u", "p");
    ck_assert_str_eq(sfield(j, "match"), "exact");
    json_decref(j);
    tu_server_destroy(&s);
    tu_mock_stop(mock);
}
END_TEST

START_TEST(webhook_is_told_and_answers_by_feedback)
{
    int mport;
    pid_t mock = tu_mock_start("", &mport);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/webhook", mport);
    setenv("SEMCACHED_WEBHOOK_TOKEN", "hook-token", 1);
    const char *sargs[] = {"--webhook-url", url, NULL};
    tu_server_t s;
    tu_server_start(&s, sargs);
    json_decref(call(s.port, "PUT", "/v1/namespaces/w",
                     "{\"delivery\":\"webhook\",\"validation_budget\":1,\"sample_rate\":1}", 200));
    char key[33];
    store(s.port, "w", "What is 2+2?", "5", key);
    json_t *j = lookup(s.port, "w", "What is 2+2?");
    ck_assert_ptr_null(json_object_get(j, "validation_id"));
    json_decref(j);
    json_t *posts = NULL;
    for (int i = 0; i < 250; i++) {
        posts = call(mport, "GET", "/webhook", NULL, 200);
        if (json_array_size(posts))
            break;
        json_decref(posts);
        posts = NULL;
        usleep(20000);
    }
    ck_assert_ptr_nonnull(posts);
    ck_assert_int_eq((int)json_array_size(posts), 1);
    json_t *p = json_array_get(posts, 0);
    ck_assert_str_eq(sfield(p, "key"), key);
    ck_assert_str_eq(sfield(p, "match"), "exact");
    ck_assert_str_eq(sfield(p, "namespace"), "w");
    ck_assert(fabs(json_real_value(json_object_get(p, "similarity")) - 1.0) < 1e-9);
    ck_assert_str_eq(sfield(json_object_get(p, "request"), "prompt"), "What is 2+2?");
    ck_assert_ptr_nonnull(json_object_get(p, "cached_response"));
    char body[160];
    snprintf(body, sizeof(body), "{\"validation_id\":\"%s\",\"fresh_response\":\"4\"}",
             sfield(p, "validation_id"));
    json_decref(posts);
    j = call(s.port, "POST", "/v1/feedback", body, 200);
    ck_assert_str_eq(sfield(j, "verdict"), "wrong");
    ck_assert(json_is_true(json_object_get(j, "invalidated")));
    json_decref(j);
    ck_assert(metric(s.port, "semcached_webhook_posts_total") == 1);
    json_t *st = call(mport, "GET", "/stats", NULL, 200);
    ck_assert_str_eq(sfield(st, "last_authorization"), "Bearer hook-token");
    json_decref(st);
    tu_server_destroy(&s);
    tu_mock_stop(mock);
}
END_TEST

START_TEST(semantic_comparison_embeds_the_answers)
{
    /* The mock's embeddings are bags of words: the same words in another
     * order are the same vector, other words are far. */
    int mport;
    pid_t mock = tu_mock_start("", &mport);
    char model[128];
    snprintf(model, sizeof(model), "remote:http://127.0.0.1:%d", mport);
    const char *sargs[] = {"--model", model, "--sample-rate", "1", NULL};
    tu_server_t s;
    tu_server_start(&s, sargs);
    json_decref(call(s.port, "PUT", "/v1/namespaces/c",
                     "{\"compare\":\"semantic\",\"answer_similarity\":0.9,\"validation_budget\":1}", 200));
    const char *fresh[] = {"Paris is the capital of France", "Bananas grow on trees"};
    const char *want[] = {"correct", "wrong"};
    for (int i = 0; i < 2; i++) {
        char prompt[32], body[256];
        snprintf(prompt, sizeof(prompt), "question %d", i);
        store(s.port, "c", prompt, "The capital of France is Paris", NULL);
        json_t *j = lookup(s.port, "c", prompt);
        ck_assert_str_eq(sfield(j, "match"), "exact");
        snprintf(body, sizeof(body), "{\"validation_id\":\"%s\",\"fresh_response\":\"%s\"}",
                 sfield(j, "validation_id"), fresh[i]);
        json_decref(j);
        j = call(s.port, "POST", "/v1/feedback", body, 200);
        ck_assert_str_eq(sfield(j, "verdict"), want[i]);
        ck_assert_str_eq(sfield(j, "method"), "semantic");
        double sim = json_real_value(json_object_get(j, "answer_similarity"));
        ck_assert(i == 0 ? sim > 0.999 : sim < 0.9);
        json_decref(j);
    }
    tu_server_destroy(&s);
    tu_mock_stop(mock);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("delivery");
    TCase *tc = tcase_create("delivery");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, upstream_reinfers_sampled_hits_and_acts_on_them);
    tcase_add_test(tc, slow_or_failing_upstream_never_reaches_the_caller);
    tcase_add_test(tc, webhook_is_told_and_answers_by_feedback);
    tcase_add_test(tc, semantic_comparison_embeds_the_answers);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
