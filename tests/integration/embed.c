/* tests/integration/embed.c -- server-side embedding through the real binary:
 * plain-text lookups hit semantically, the store after a miss reuses the
 * lookup's embedding, the namespace records the model's identity, embedding
 * failures degrade to exact-only answers ("semantic":"skipped"), a
 * missing model is a clear start-up error, a remote endpoint down at start
 * is not (the model comes up when it answers), and namespaces choose among
 * several loaded models. */
#define _GNU_SOURCE
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define call tu_call
#define sfield tu_str

static long long metric(int port, const char *name)
{
    tu_resp_t r = tu_http(port, "GET", "/metrics", NULL);
    const char *p = strstr(r.body, name);
    long long v = -1;
    while (p && (p > r.body && p[-1] != '\n'))
        p = strstr(p + 1, name);
    if (p)
        v = atoll(p + strlen(name));
    tu_resp_free(&r);
    return v;
}

static char potion[2048];

static void start_with_potion(tu_server_t *s)
{
    snprintf(potion, sizeof(potion), "%s/models/potion-base-2M", tu_shared());
    const char *args[] = {"--model", potion, NULL};
    tu_server_start(s, args);
}

START_TEST(text_lookups_hit_semantically)
{
    tu_server_t s;
    start_with_potion(&s);
    json_t *j = call(s.port, "GET", "/v1/stats", NULL, 200);
    ck_assert(
        strncmp(json_string_value(json_object_get(json_object_get(j, "embedder"), "identity")),
                "model2vec:potion-base-2M@", 25) == 0);
    json_decref(j);
    /* A miss, then its store: embedded once, reused by the store. */
    j = call(s.port, "POST", "/v1/lookup",
             "{\"model\":\"m\",\"prompt\":\"How do I reset my password?\"}", 200);
    ck_assert_str_eq(sfield(j, "status"), "miss");
    ck_assert_ptr_null(json_object_get(j, "semantic"));
    json_decref(j);
    long long texts_before = metric(s.port, "semcached_embed_texts_total ");
    json_decref(call(s.port, "POST", "/v1/store",
                     "{\"model\":\"m\",\"prompt\":\"How do I reset my "
                     "password?\",\"response\":\"Use the link.\"}",
                     201));
    ck_assert_int_eq(metric(s.port, "semcached_embed_texts_total "), texts_before);
    /* Same words, other case and punctuation: a semantic hit (not exact). */
    j = call(s.port, "POST", "/v1/lookup",
             "{\"model\":\"m\",\"prompt\":\"how do i reset my password\"}", 200);
    ck_assert_str_eq(sfield(j, "status"), "hit");
    ck_assert_str_eq(sfield(j, "match"), "semantic");
    ck_assert_str_eq(sfield(j, "matched_prompt"), "How do I reset my password?");
    ck_assert_str_eq(sfield(j, "response"), "Use the link.");
    json_decref(j);
    /* An unrelated question misses and says how close it came. */
    j = call(s.port, "POST", "/v1/lookup",
             "{\"model\":\"m\",\"prompt\":\"What is the boiling point of water at sea level?\"}",
             200);
    ck_assert_str_eq(sfield(j, "status"), "miss");
    ck_assert(json_real_value(json_object_get(j, "best_similarity")) < 0.9);
    json_decref(j);
    /* Another tenant never sees it. */
    j = call(s.port, "POST", "/v1/lookup",
             "{\"tenant\":\"other\",\"model\":\"m\",\"prompt\":\"how do i reset my password\"}",
             200);
    ck_assert_str_eq(sfield(j, "status"), "miss");
    json_decref(j);
    /* The namespace recorded the model; a client naming another embedder is refused. */
    j = call(s.port, "GET", "/v1/namespaces/default", NULL, 200);
    ck_assert(
        strncmp(json_string_value(json_object_get(json_object_get(j, "settings"), "embedder")),
                "model2vec:potion-base-2M@", 25) == 0);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "settings"), "dimensions")), 64);
    json_decref(j);
    char *body;
    ck_assert_int_gt(asprintf(&body,
                              "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1,\"embedder\":"
                              "\"other\",\"embedding\":[%s1]}",
                              "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
                              "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"),
                     0);
    json_decref(call(s.port, "POST", "/v1/store", body, 409));
    free(body);
    /* Survives a restart: the namespace still names the model. */
    tu_server_stop(&s, SIGTERM);
    tu_server_restart(&s);
    j = call(s.port, "POST", "/v1/lookup",
             "{\"model\":\"m\",\"prompt\":\"HOW DO I RESET MY PASSWORD\"}", 200);
    ck_assert_str_eq(sfield(j, "match"), "semantic");
    json_decref(j);
    tu_server_destroy(&s);
}
END_TEST

/* A text lookup of 'prompt' whose answer has 'field' equal to 'want'. */
static void expect_lookup(int port, const char *prompt, const char *field, const char *want)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"model\":\"m\",\"prompt\":\"%s\"}", prompt);
    json_t *j = call(port, "POST", "/v1/lookup", body, 200);
    ck_assert_str_eq(sfield(j, field), want);
    json_decref(j);
}

/* A text lookup of 'prompt' answers exact-only for 'reason'; its store still
 * succeeds (kept for exact matching) and the same lookup then hits exactly. */
static void skipped_then_exact(int port, const char *prompt, const char *reason)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"model\":\"m\",\"prompt\":\"%s\"}", prompt);
    json_t *j = call(port, "POST", "/v1/lookup", body, 200);
    ck_assert_str_eq(sfield(j, "status"), "miss");
    ck_assert_str_eq(sfield(j, "semantic"), "skipped");
    ck_assert_str_eq(sfield(j, "semantic_skip_reason"), reason);
    json_decref(j);
    snprintf(body, sizeof(body), "{\"model\":\"m\",\"prompt\":\"%s\",\"response\":1}", prompt);
    json_decref(call(port, "POST", "/v1/store", body, 201));
    expect_lookup(port, prompt, "match", "exact");
}

START_TEST(embedding_failures_fall_back_to_exact)
{
    tu_server_t s;
    /* Every job must be done within 1 ms, and waits 5 ms for its batch: as none
     * is ever embedded in time, the worker never learns how fast the model is. */
    snprintf(potion, sizeof(potion), "%s/models/potion-base-2M", tu_shared());
    const char *args[] = {"--model", potion, "--embed-timeout-ms", "1", "--embed-wait-us",
                          "5000",    NULL};
    tu_server_start(&s, args);
    skipped_then_exact(s.port, "anything at all", "timeout");
    ck_assert_int_ge(metric(s.port, "semcached_semantic_skipped_total{reason=\"timeout\"} "), 2);
    tu_server_destroy(&s);
}
END_TEST

START_TEST(missing_model_is_a_clear_startup_error)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "%s --port 1 --data-dir /tmp/sc-nomodel-$$ --model /nonexistent/model 2>&1; "
             "rc=$?; rm -rf /tmp/sc-nomodel-$$; exit $rc",
             tu_bin("semcached"));
    FILE *p = popen(cmd, "r");
    char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    ck_assert_msg(strstr(out, "cannot load the model"), "output: %s", out);
}
END_TEST

START_TEST(remote_embedder_end_to_end)
{
    int mport;
    pid_t mock = tu_mock_start("--require-key s3cret --delay-ms 2000 --slow-word slowly", &mport);
    setenv("SEMCACHED_EMBED_API_KEY", "s3cret", 1);
    char model[128];
    snprintf(model, sizeof(model), "remote:http://127.0.0.1:%d", mport);
    const char *args[] = {"--model", model, "--embed-timeout-ms", "400", NULL};
    tu_server_t s;
    tu_server_start(&s, args);
    json_t *j = call(s.port, "GET", "/v1/stats", NULL, 200);
    ck_assert(
        strncmp(json_string_value(json_object_get(json_object_get(j, "embedder"), "identity")),
                "remote:text-embedding-3-small@", 30) == 0);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "embedder"), "dimensions")), 64);
    json_decref(j);
    json_decref(
        call(s.port, "POST", "/v1/store",
             "{\"model\":\"m\",\"prompt\":\"reset my password please\",\"response\":\"ok\"}", 201));
    expect_lookup(s.port, "Please reset my password", "match", "semantic");
    /* A slow endpoint: answered exact-only after the timeout, not stalled. */
    uint64_t t0 = (uint64_t)time(NULL);
    j = call(s.port, "POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"answer slowly please\"}",
             200);
    ck_assert_str_eq(sfield(j, "semantic"), "skipped");
    ck_assert_str_eq(sfield(j, "semantic_skip_reason"), "timeout");
    ck_assert_uint_le((uint64_t)time(NULL) - t0, 2);
    json_decref(j);
    /* The endpoint gone: errors, still answered. */
    tu_mock_stop(mock);
    j = call(s.port, "POST", "/v1/lookup",
             "{\"model\":\"m\",\"prompt\":\"password reset please my\"}", 200);
    ck_assert_str_eq(sfield(j, "status"), "miss");
    ck_assert_str_eq(sfield(j, "semantic_skip_reason"), "error");
    json_decref(j);
    /* Exact hits never needed the endpoint. */
    expect_lookup(s.port, "reset my password please", "match", "exact");
    tu_server_destroy(&s);
    unsetenv("SEMCACHED_EMBED_API_KEY");
}
END_TEST

START_TEST(remote_embedder_with_a_wrong_key_does_not_start)
{
    int mport;
    pid_t mock = tu_mock_start("--require-key right", &mport);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "SEMCACHED_EMBED_API_KEY=wrong %s --port 1 --data-dir /tmp/sc-rk-$$ "
             "--model remote:http://127.0.0.1:%d 2>&1; rc=$?; rm -rf /tmp/sc-rk-$$; exit $rc",
             tu_bin("semcached"), mport);
    FILE *p = popen(cmd, "r");
    char out[4096];
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    tu_mock_stop(mock);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    ck_assert_msg(strstr(out, "refused probe 1: HTTP 401"), "output: %s", out);
}
END_TEST

/* The default model's state in /readyz (which answers 200 whatever it is). */
static const char *readyz_state(int port, char *buf, size_t cap)
{
    json_t *j = call(port, "GET", "/readyz", NULL, 200);
    ck_assert_str_eq(sfield(j, "status"), "ok");
    snprintf(buf, cap, "%s", sfield(json_object_get(j, "embedders"), "default"));
    json_decref(j);
    return buf;
}

/* Polls /readyz until the default model is 'want'; the milliseconds it took,
 * or -1 after 'limit_ms'. */
static long wait_state(int port, const char *want, long limit_ms)
{
    char st[32];
    for (long ms = 0; ms <= limit_ms; ms += 20) {
        if (strcmp(readyz_state(port, st, sizeof(st)), want) == 0)
            return ms;
        usleep(20000);
    }
    return -1;
}

static void remote_args(char *model, size_t cap, int port)
{
    snprintf(model, cap, "remote:http://127.0.0.1:%d", port);
}

/* The endpoint is down at start: the server starts anyway, namespaces on the
 * model answer exact-only ("embedder_unavailable") and stores are kept
 * exact-only; once the endpoint listens, a background probe learns the
 * dimension and semantic lookups work without a restart. */
START_TEST(remote_embedder_down_at_start_comes_up)
{
    int mport = tu_free_port();
    char model[128], st[32];
    remote_args(model, sizeof(model), mport);
    const char *args[] = {"--model", model, NULL};
    tu_server_t s;
    tu_server_start(&s, args);
    ck_assert_str_eq(readyz_state(s.port, st, sizeof(st)), "unavailable");
    json_t *j = call(s.port, "GET", "/v1/stats", NULL, 200);
    json_t *em = json_object_get(j, "embedder");
    ck_assert(json_is_null(json_object_get(em, "dimensions")));
    ck_assert_str_eq(sfield(em, "state"), "unavailable");
    ck_assert(strncmp(sfield(em, "identity"), "remote:text-embedding-3-small@", 30) == 0);
    json_decref(j);
    ck_assert_int_eq(metric(s.port, "semcached_embedder_up{model=\"default\"} "), 0);
    /* Stored exact-only (never embedded later), and hit exactly. */
    skipped_then_exact(s.port, "reset my password please", "embedder_unavailable");
    ck_assert_int_eq(
        metric(s.port, "semcached_semantic_skipped_total{reason=\"embedder_unavailable\"} "), 2);
    ck_assert_int_eq(metric(s.port, "semcached_embed_texts_total "), 0);
    j = call(s.port, "GET", "/v1/namespaces/default", NULL, 200);
    ck_assert(json_is_null(json_object_get(json_object_get(j, "settings"), "dimensions")));
    json_decref(j);
    /* The endpoint appears: up within the backoff (1 s doubling to 30 s: at
     * most 30 s even under valgrind's slow start), no restart. */
    char opt[32];
    snprintf(opt, sizeof(opt), "--port %d", mport);
    int got;
    pid_t mock = tu_mock_start(opt, &got);
    ck_assert_int_eq(got, mport);
    long took = wait_state(s.port, "up", 31000);
    ck_assert_int_ge(took, 0);
    fprintf(stderr, "remote embedder came up %ld ms after its endpoint started\n", took);
    ck_assert_int_eq(metric(s.port, "semcached_embedder_up{model=\"default\"} "), 1);
    j = call(s.port, "GET", "/v1/stats", NULL, 200);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "embedder"), "dimensions")), 64);
    json_decref(j);
    json_decref(call(
        s.port, "POST", "/v1/store",
        "{\"model\":\"m\",\"prompt\":\"my account password changed\",\"response\":\"done\"}", 201));
    j = call(s.port, "POST", "/v1/lookup",
             "{\"model\":\"m\",\"prompt\":\"changed my account password\"}", 200);
    ck_assert_str_eq(sfield(j, "match"), "semantic");
    ck_assert_str_eq(sfield(j, "response"), "done");
    json_decref(j);
    /* The entry stored while unavailable stays exact-only: no vector to match. */
    expect_lookup(s.port, "please reset my password", "status", "miss");
    /* Down later: failures are "error" as ever, and /readyz says "down". */
    tu_mock_stop(mock);
    expect_lookup(s.port, "password my changed account", "semantic_skip_reason", "error");
    ck_assert_str_eq(readyz_state(s.port, st, sizeof(st)), "down");
    tu_server_destroy(&s);
}
END_TEST

/* With --embed-dimensions the endpoint is never needed to start; once it
 * listens the first embedding works at once (no probe waited for). A given
 * dimension that conflicts with what a namespace recorded keeps semantic off
 * there (embedder_mismatch). */
START_TEST(remote_embedder_with_given_dimensions)
{
    int mport = tu_free_port();
    char model[128], st[32], opt[32];
    remote_args(model, sizeof(model), mport);
    const char *args[] = {"--model", model, "--embed-dimensions", "64", NULL};
    tu_server_t s;
    tu_server_start(&s, args);
    /* Known dimension, no answer yet: "down", and lookups try (and fail). */
    ck_assert_str_eq(readyz_state(s.port, st, sizeof(st)), "down");
    expect_lookup(s.port, "reset my password please", "semantic_skip_reason", "error");
    snprintf(opt, sizeof(opt), "--port %d", mport);
    int got;
    pid_t mock = tu_mock_start(opt, &got);
    /* At once, before the next probe (1 s after the failed one): embedded. */
    json_decref(call(
        s.port, "POST", "/v1/store",
        "{\"model\":\"m\",\"prompt\":\"reset my password please\",\"response\":\"link\"}", 201));
    json_t *j = call(s.port, "GET", "/v1/namespaces/default", NULL, 200);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "settings"), "dimensions")), 64);
    json_decref(j);
    ck_assert_str_eq(readyz_state(s.port, st, sizeof(st)), "up");
    expect_lookup(s.port, "please reset my password", "match", "semantic");
    /* Restarted with another given dimension: the namespace's 64 wins. */
    tu_server_stop(&s, SIGTERM);
    free(s.args[s.n_args - 1]);
    s.args[s.n_args - 1] = strdup("32");
    tu_server_restart(&s);
    expect_lookup(s.port, "my password reset please", "semantic_skip_reason", "embedder_mismatch");
    /* The endpoint answers 64, not 32: a probe fails and says so. */
    ck_assert_int_eq(wait_state(s.port, "up", 1500), -1);
    ck_assert_str_eq(readyz_state(s.port, st, sizeof(st)), "down");
    tu_mock_stop(mock);
    tu_server_destroy(&s);
}
END_TEST

/* Two tiny random BERT models (tests/embed/tiny_bert.py, different weights):
 * --model is "default", --models names the other; a namespace picks one. */
START_TEST(namespaces_choose_their_model)
{
    char dir_a[] = "/tmp/sc-model-a-XXXXXX", dir_b[] = "/tmp/sc-model-b-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir_a));
    ck_assert_ptr_nonnull(mkdtemp(dir_b));
    char cmd[1200], models[600];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/python3 tests/embed/tiny_bert.py %s F32 mean && "
             "/usr/bin/python3 tests/embed/tiny_bert.py %s F16 cls",
             dir_a, dir_b);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(models, sizeof(models), "small=%s", dir_b);
    tu_server_t s;
    const char *args[] = {"--model", dir_a, "--models", models, NULL};
    tu_server_start(&s, args);
    json_t *st = call(s.port, "GET", "/v1/stats", NULL, 200);
    json_t *ms = json_object_get(st, "models");
    char id_a[256], id_b[256];
    snprintf(id_a, sizeof(id_a), "%s", sfield(json_object_get(ms, "default"), "identity"));
    snprintf(id_b, sizeof(id_b), "%s", sfield(json_object_get(ms, "small"), "identity"));
    ck_assert(strncmp(id_a, "bert:", 5) == 0 && strncmp(id_b, "bert:", 5) == 0);
    ck_assert_str_ne(id_a, id_b);
    json_decref(st);
    /* Unknown models are refused; a namespace takes "small". */
    json_decref(call(s.port, "PUT", "/v1/namespaces/nb", "{\"model\":\"nope\"}", 400));
    json_t *j = call(s.port, "PUT", "/v1/namespaces/nb", "{\"model\":\"small\"}", 200);
    ck_assert_str_eq(sfield(json_object_get(j, "settings"), "model"), "small");
    json_decref(j);
    json_decref(call(
        s.port, "POST", "/v1/store",
        "{\"namespace\":\"nb\",\"model\":\"m\",\"prompt\":\"w1 w2 w3\",\"response\":\"B\"}", 201));
    json_decref(call(s.port, "POST", "/v1/store",
                     "{\"model\":\"m\",\"prompt\":\"w1 w2 w3\",\"response\":\"A\"}", 201));
    /* Each namespace recorded its own model's identity. */
    j = call(s.port, "GET", "/v1/namespaces/nb", NULL, 200);
    ck_assert_str_eq(sfield(json_object_get(j, "settings"), "embedder"), id_b);
    json_decref(j);
    j = call(s.port, "GET", "/v1/namespaces/default", NULL, 200);
    ck_assert_str_eq(sfield(json_object_get(j, "settings"), "embedder"), id_a);
    json_decref(j);
    /* Same tokens, other text (so another exact key): a semantic hit in each
     * namespace, on its own entry. */
    j = call(s.port, "POST", "/v1/lookup",
             "{\"namespace\":\"nb\",\"model\":\"m\",\"prompt\":\"w1  w2   w3\"}", 200);
    ck_assert_str_eq(sfield(j, "match"), "semantic");
    ck_assert_str_eq(sfield(j, "response"), "B");
    json_decref(j);
    j = call(s.port, "POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"w1  w2   w3\"}", 200);
    ck_assert_str_eq(sfield(j, "match"), "semantic");
    ck_assert_str_eq(sfield(j, "response"), "A");
    json_decref(j);
    /* A namespace holding "small" vectors cannot switch to the default model. */
    json_decref(call(s.port, "PUT", "/v1/namespaces/nb", "{\"model\":\"default\"}", 409));
    json_decref(call(s.port, "PUT", "/v1/namespaces/nc",
                     "{\"model\":\"small\",\"compare\":\"semantic\"}", 200));
    tu_server_destroy(&s);
    /* A --models entry that is not NAME=SPEC stops the start with a reason. */
    snprintf(cmd, sizeof(cmd), "%s --port 1 --models %s --data-dir %s 2>&1 | grep -q 'NAME=SPEC'",
             tu_bin("semcached"), dir_b, dir_a);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s %s", dir_a, dir_b);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed-server");
    TCase *tc = tcase_create("embed");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, missing_model_is_a_clear_startup_error);
    tcase_add_test(tc, remote_embedder_end_to_end);
    tcase_add_test(tc, remote_embedder_with_a_wrong_key_does_not_start);
    tcase_add_test(tc, remote_embedder_down_at_start_comes_up);
    tcase_add_test(tc, remote_embedder_with_given_dimensions);
    tcase_add_test(tc, namespaces_choose_their_model);
    if (tu_shared()) {
        tcase_add_test(tc, text_lookups_hit_semantically);
        tcase_add_test(tc, embedding_failures_fall_back_to_exact);
    } else {
        tu_skip("text_lookups_hit_semantically: ../shared (potion-base-2M) is absent");
        tu_skip("embedding_failures_fall_back_to_exact: ../shared (potion-base-2M) is absent");
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
