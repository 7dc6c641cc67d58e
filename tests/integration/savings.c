/* tests/integration/savings.c -- dollars through the real binary with a
 * --prices table of known prices: a scripted run of native hits (a priced
 * and an unpriced model), proxied hits against tests/mock_upstream.py and an
 * upstream re-inference, whose /metrics rows, /v1/stats "savings",
 * GET /v1/namespaces/{name} and X-Semcached-Saved-Usd headers must equal the
 * figures computed here from the table; an unknown model counts no dollars. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sc_common.h"
#include "sc_prices.h"
#include "testutil.h"

#include "proxy_fixture.h"

static const char table[] =
    "{\"taken\":\"2026-12-01\",\"sources\":[\"test\"],\"models\":{"
    "\"m-priced\":{\"input\":2,\"output\":10},\"m-flat\":{\"input\":1,\"output\":1},"
    "\"claude-haiku-4-5\":{\"input\":1,\"cached_input\":0.1,\"output\":5}}}";

/* The value of the /metrics sample 'series' (name{labels}), or -1. */
static double sample(int port, const char *series)
{
    tu_resp_t r = tu_http(port, "GET", "/metrics", NULL);
    char pat[256];
    snprintf(pat, sizeof(pat), "\n%s ", series);
    const char *at = r.body ? strstr(r.body, pat) : NULL;
    double v = at ? atof(at + strlen(pat)) : -1;
    tu_resp_free(&r);
    return v;
}

static json_t *savings_of(int port, const char *ns, int from_stats)
{
    char path[128];
    snprintf(path, sizeof(path), from_stats ? "/v1/stats" : "/v1/namespaces/%s", ns);
    json_t *j = tu_call(port, "GET", path, NULL, 200);
    json_t *s = json_object_get(j, "savings");
    if (from_stats)
        s = json_object_get(json_object_get(s, "namespaces"), ns);
    ck_assert_msg(json_is_object(s), "no savings for %s", ns);
    json_incref(s);
    json_decref(j);
    return s;
}

#define NUM(j, k) json_number_value(json_object_get(j, k))
#define INT(j, k) json_integer_value(json_object_get(j, k))

static void store(int port, const char *ns, const char *model, const char *prompt,
                  const char *answer, int pt, int ct)
{
    char body[768];
    snprintf(body, sizeof(body),
             "{\"namespace\":\"%s\",\"model\":\"%s\",\"prompt\":\"%s\",\"response\":{\"choices\":"
             "[{\"message\":{\"role\":\"assistant\",\"content\":\"%s\"}}]},"
             "\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d}}",
             ns, model, prompt, answer, pt, ct);
    json_decref(tu_call(port, "POST", "/v1/store", body, 201));
}

static void hit(int port, const char *ns, const char *model, const char *prompt)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"namespace\":\"%s\",\"model\":\"%s\",\"prompt\":\"%s\"}", ns,
             model, prompt);
    json_t *j = tu_call(port, "POST", "/v1/lookup", body, 200);
    ck_assert_str_eq(tu_str(j, "match"), "exact");
    json_decref(j);
}

START_TEST(a_scripted_run_adds_up_to_the_price_table)
{
    char prices[64], url[128];
    tu_write_temp(prices, table);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions", mock_port);
    tu_server_t s;
    server_with(&s, (const char *[]){"--prices", prices, "--upstream-url", url, "--sample-rate",
                                     "0", NULL});
    /* Native: 3 hits of 1000 + 200 tokens at $2 / $10 per million. */
    store(s.port, "fin", "m-priced", "q1", "a1", 1000, 200);
    store(s.port, "fin", "mystery-model", "q2", "a2", 50, 5);
    for (int i = 0; i < 3; i++)
        hit(s.port, "fin", "m-priced", "q1");
    for (int i = 0; i < 2; i++)
        hit(s.port, "fin", "mystery-model", "q2");
    double want = 3 * (1000 * 2.0 + 200 * 10.0) / 1e6; /* $0.012 */
    ck_assert(fabs(sample(s.port, "semcached_cost_saved_dollars_total{namespace=\"fin\","
                                  "model=\"m-priced\"}") -
                   want) < 1e-12);
    /* The unknown model: tokens, never dollars. */
    ck_assert(sample(s.port, "semcached_cost_saved_dollars_total{namespace=\"fin\","
                             "model=\"mystery-model\"}") == -1);
    ck_assert(sample(s.port, "semcached_tokens_saved_total{namespace=\"fin\","
                             "model=\"mystery-model\",kind=\"prompt\"}") == 100);
    ck_assert(sample(s.port, "semcached_unpriced_tokens_total{namespace=\"fin\","
                             "model=\"mystery-model\",kind=\"saved\"}") == 110);
    for (int from_stats = 0; from_stats < 2; from_stats++) {
        json_t *sv = savings_of(s.port, "fin", from_stats);
        ck_assert(fabs(NUM(sv, "saved_usd") - want) < 1e-12);
        ck_assert(fabs(NUM(sv, "net_usd") - want) < 1e-12);
        ck_assert(NUM(sv, "validation_usd") == 0);
        ck_assert_int_eq(INT(sv, "hit_tokens"), 3 * 1200 + 2 * 55);
        ck_assert_int_eq(INT(sv, "unpriced_hit_tokens"), 110);
        json_decref(sv);
    }

    /* Proxied: the hit's header is the price of the usage its miss reported,
     * and /metrics counts the same figure. */
    char *body = message("what does a hit save", 0);
    const char *h = ANTHROPIC "X-Semcached-Namespace: px\r\n";
    resp_t miss = post(s.port, "/v1/messages", h, body), ph = post(s.port, "/v1/messages", h, body);
    ck_assert_str_eq(hdr(&ph, "X-Cache"), "HIT");
    ck_assert_str_eq(hdr(&miss, "X-Semcached-Saved-Usd"), "");
    json_t *mj = json_loads(miss.body, 0, NULL), *u = json_object_get(mj, "usage");
    uint64_t in = (uint64_t)INT(u, "input_tokens") + (uint64_t)INT(u, "cache_read_input_tokens");
    uint64_t out = (uint64_t)INT(u, "output_tokens");
    ck_assert_uint_gt(in, 0);
    char usd[32];
    sc_usd_format(in * 1000000 + out * 5000000, usd, sizeof(usd));
    ck_assert_str_eq(hdr(&ph, "X-Semcached-Saved-Usd"), usd);
    ck_assert(fabs(sample(s.port, "semcached_cost_saved_dollars_total{namespace=\"px\","
                                  "model=\"claude-haiku-4-5\"}") -
                   atof(usd)) < 1e-12);
    json_decref(mj);
    resp_free(&miss);
    resp_free(&ph);
    free(body);
    /* A proxied model the table does not price: a hit, no header, no dollars. */
    body = chat("an unpriced model", 0);
    const char *hc = KEY_A "X-Semcached-Namespace: px2\r\n";
    resp_t m2 = post(s.port, "/v1/chat/completions", hc, body),
           h2 = post(s.port, "/v1/chat/completions", hc, body);
    ck_assert_str_eq(hdr(&h2, "X-Cache"), "HIT");
    ck_assert_str_eq(hdr(&h2, "X-Semcached-Saved-Usd"), "");
    ck_assert(sample(s.port, "semcached_unpriced_tokens_total{namespace=\"px2\","
                             "model=\"gpt-4o-mini\",kind=\"saved\"}") > 0);
    json_t *sv = savings_of(s.port, "px2", 0);
    ck_assert(NUM(sv, "saved_usd") == 0);
    json_decref(sv);
    resp_free(&m2);
    resp_free(&h2);
    free(body);

    /* Validation: a sampled hit re-inferred upstream costs its usage, which
     * comes off the namespace's savings (m-flat: $1 per million either way). */
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/val",
                        "{\"delivery\":\"upstream\",\"sample_rate\":1,"
                        "\"validation_budget\":1}", 200));
    store(s.port, "val", "m-flat", "what is checked", "an answer", 10, 10);
    hit(s.port, "val", "m-flat", "what is checked");
    json_t *v = NULL;
    for (int i = 0; i < 500; i++) {
        v = savings_of(s.port, "val", 0);
        if (INT(v, "validation_calls") == 1)
            break;
        json_decref(v);
        v = NULL;
        usleep(20000);
    }
    ck_assert_msg(v != NULL, "the re-inference was never counted");
    double tokens = (double)INT(v, "validation_tokens");
    ck_assert(tokens > 0);
    ck_assert(fabs(NUM(v, "validation_usd") - tokens / 1e6) < 1e-12);
    ck_assert(fabs(NUM(v, "saved_usd") - 20 / 1e6) < 1e-12);
    ck_assert(fabs(NUM(v, "net_usd") - (20 - tokens) / 1e6) < 1e-12);
    json_decref(v);
    ck_assert(fabs(sample(s.port, "semcached_validation_cost_dollars_total{namespace=\"val\","
                                  "model=\"m-flat\"}") -
                   tokens / 1e6) < 1e-12);
    json_t *st = tu_call(s.port, "GET", "/v1/stats", NULL, 200);
    ck_assert_str_eq(tu_str(json_object_get(st, "savings"), "prices_taken"), "2026-12-01");
    json_decref(st);
    tu_server_destroy(&s);
    unlink(prices);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("savings");
    TCase *tc = tcase_create("savings");
    tcase_add_unchecked_fixture(tc, srv_up, srv_down); /* the mock (and a default proxy) */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_scripted_run_adds_up_to_the_price_table);
    suite_add_tcase(su, tc);
    return tu_run(su);
}
