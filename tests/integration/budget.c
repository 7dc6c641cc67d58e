/* tests/integration/budget.c -- the error-budget mode through the real binary
 * on a replay whose ground truth is known. Questions come from topics in
 * sibling pairs: a topic's rewordings share its answer, a sibling topic is
 * close in embedding space but has another answer. The test plays the
 * application (caller delivery): it looks up, checks every served hit against
 * the truth, reports sampled hits through /v1/feedback, and stores the true
 * answer after a miss (which resolves explorations). The served semantic
 * false-hit rate must stay within max_error_rate while hits are served. */
#define _GNU_SOURCE
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define DIM 32
#define TOPICS 200 /* 100 sibling pairs */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
    return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform());
}

static void normalize(double *v)
{
    double n = 0;
    for (int i = 0; i < DIM; i++)
        n += v[i] * v[i];
    n = sqrt(n);
    for (int i = 0; i < DIM; i++)
        v[i] /= n;
}

/* v = normalize(base + noise * g / sqrt(DIM)). */
static void perturb(const double *base, double noise, double *v)
{
    for (int i = 0; i < DIM; i++)
        v[i] = base[i] + noise * gauss() / sqrt((double)DIM);
    normalize(v);
}

static void vec_json(const double *v, char *out, size_t cap)
{
    size_t o = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < DIM; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%.6f", i ? "," : "", v[i]);
    snprintf(out + o, cap - o, "]");
}

START_TEST(error_budget_holds_on_a_replay_with_known_truth)
{
    static double centre[TOPICS][DIM];
    for (int t = 0; t < TOPICS; t += 2) {
        for (int i = 0; i < DIM; i++)
            centre[t][i] = gauss();
        normalize(centre[t]);
        perturb(centre[t], 0.5, centre[t + 1]); /* the sibling: cos about 0.9 */
    }
    tu_server_t s;
    const char *args[] = {"--validate-first", "0", NULL};
    tu_server_start(&s, args);
    /* guards off: the prompts "q<n>" are labels whose numbers always differ */
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/b",
                        "{\"max_error_rate\":0.05,\"threshold\":null,\"sample_rate\":0.3,"
                        "\"explore_rate\":1,\"explore_floor\":0.5,\"guards\":false}",
                        200));
    const int lookups = 2500;
    int semantic_hits = 0, wrong_hits = 0, explored = 0, late_hits = 0;
    for (int n = 0; n < lookups; n++) {
        int t = (int)(uniform() * TOPICS) % TOPICS;
        double v[DIM];
        perturb(centre[t], 0.4, v); /* rewordings: cos about 0.86 to each other */
        char vec[DIM * 12 + 8], body[DIM * 12 + 256];
        vec_json(v, vec, sizeof(vec));
        snprintf(body, sizeof(body),
                 "{\"namespace\":\"b\",\"model\":\"m\",\"prompt\":\"q%d\",\"embedding\":%s}", n,
                 vec);
        json_t *j = tu_call(s.port, "POST", "/v1/lookup", body, 200);
        const char *status = tu_str(j, "status");
        char truth[32];
        snprintf(truth, sizeof(truth), "topic-%d", t);
        if (strcmp(status, "hit") == 0) {
            ck_assert_str_eq(tu_str(j, "match"), "semantic");
            int wrong = strcmp(json_string_value(json_object_get(j, "response")), truth) != 0;
            semantic_hits++;
            late_hits += n >= lookups / 2;
            wrong_hits += wrong;
            if (json_is_true(json_object_get(j, "validate"))) {
                snprintf(body, sizeof(body), "{\"validation_id\":\"%s\",\"fresh_response\":\"%s\"}",
                         tu_str(j, "validation_id"), truth);
                json_decref(tu_call(s.port, "POST", "/v1/feedback", body, 200));
            }
        } else {
            explored += json_is_true(json_object_get(j, "explore"));
            /* The application calls the model and stores its answer; that
             * store resolves an exploration of this lookup. */
            snprintf(body, sizeof(body),
                     "{\"namespace\":\"b\",\"model\":\"m\",\"prompt\":\"q%d\","
                     "\"embedding\":%s,\"response\":\"%s\"}",
                     n, vec, truth);
            json_decref(tu_call(s.port, "POST", "/v1/store", body, 201));
        }
        json_decref(j);
    }
    double rate = semantic_hits ? (double)wrong_hits / semantic_hits : 0;
    fprintf(stderr,
            "budget 0.05: %d semantic hits of %d lookups (%d in the second half), %d wrong "
            "(%.4f), %d explored\n",
            semantic_hits, lookups, late_hits, wrong_hits, rate, explored);
    json_t *ns = tu_call(s.port, "GET", "/v1/namespaces/b", NULL, 200);
    json_t *q = json_object_get(ns, "quality");
    json_t *lt = json_object_get(q, "learned_threshold");
    fprintf(stderr, "learned threshold %.3f from %lld observations\n", json_real_value(lt),
            (long long)json_integer_value(json_object_get(q, "budget_observations")));
    /* It learned, it explored, and it serves hits once it knows enough... */
    ck_assert(json_is_real(lt));
    ck_assert_int_gt(explored, 100);
    ck_assert_int_gt(late_hits, lookups / 10);
    /* ...and what it served stays within the budget. */
    ck_assert_double_le(rate, 0.05);
    /* The wrong explorations it saw are real: siblings sit above the floor. */
    ck_assert_int_gt(json_integer_value(json_object_get(q, "explored_wrong")), 0);
    json_decref(ns);
    tu_server_destroy(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("budget");
    TCase *tc = tcase_create("budget");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, error_budget_holds_on_a_replay_with_known_truth);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
