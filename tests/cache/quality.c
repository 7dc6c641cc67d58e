/* tests/cache/quality.c -- the pieces of the quality loop that are pure
 * logic (cache/quality.c): comparing answers by each method, the exact
 * binomial bound behind the error budget, the thresholds learned from
 * observations, and the pending table's expiry. */
#include "../../cache/quality.c"

#include "testutil.h"

#define AGREE(a, b, m) sc_answers_agree(a, strlen(a), b, strlen(b), m)

START_TEST(answers_compare_by_method)
{
    /* Text answers: exact is byte-equal text, normalized folds case,
     * whitespace and punctuation, semantic defers differing words (2). */
    ck_assert_int_eq(AGREE("\"Paris.\"", "\"Paris.\"", "exact"), 1);
    ck_assert_int_eq(AGREE("\"Paris.\"", "\"paris\"", "exact"), 0);
    ck_assert_int_eq(AGREE("\"Paris.\"", "\"  paris!\"", "normalized"), 1);
    ck_assert_int_eq(AGREE("\"Paris\"", "\"Lyon\"", "normalized"), 0);
    ck_assert_int_eq(AGREE("\"Paris\"", "\"PARIS\"", "semantic"), 1);
    ck_assert_int_eq(AGREE("\"Paris\"", "\"Lyon\"", "semantic"), 2);
    ck_assert_int_eq(AGREE("\"Paris!\"", "\"paris\"", "judge"), 1);
    ck_assert_int_eq(AGREE("\"Paris\"", "\"It is Paris\"", "judge"), 2);
    ck_assert_int_eq(AGREE("\"Paris\"", "\"It is Paris\"", "normalized"), 0);
    /* The text is found inside completions and {"content": ...} objects,
     * whatever else differs (ids, timestamps, usage). */
    const char *c1 =
        "{\"id\":\"a\",\"created\":1,\"choices\":[{\"message\":{\"role\":\"assistant\","
        "\"content\":\"Hello there\"}}],\"usage\":{\"total_tokens\":3}}";
    const char *c2 =
        "{\"id\":\"b\",\"created\":2,\"choices\":[{\"message\":{\"role\":\"assistant\","
        "\"content\":\"Hello there\"}}],\"usage\":{\"total_tokens\":9}}";
    ck_assert_int_eq(AGREE(c1, c2, "exact"), 1);
    ck_assert_int_eq(AGREE(c1, "{\"content\":\"hello, there\"}", "normalized"), 1);
    ck_assert_int_eq(AGREE(c1, "{\"content\":\"hello, there\"}", "exact"), 0);
    /* JSON-mode text compares as structure: key order and spacing do not
     * matter, values do, for every method. */
    ck_assert_int_eq(AGREE("\"{\\\"a\\\": 1, \\\"b\\\": [2, 3]}\"",
                           "\"{\\\"b\\\":[2,3],\\\"a\\\":1.0}\"", "exact"),
                     1);
    ck_assert_int_eq(AGREE("\"{\\\"a\\\": 1}\"", "\"{\\\"a\\\": 2}\"", "semantic"), 0);
    /* Tool calls compare by structure without their freshly minted ids. */
    const char *t1 =
        "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}";
    const char *t2 =
        "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"call_9\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}";
    const char *t3 =
        "{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}";
    ck_assert_int_eq(AGREE(t1, t2, "normalized"), 1);
    ck_assert_int_eq(AGREE(t1, t3, "normalized"), 0);
    /* A structure never equals a text; invalid JSON never agrees. */
    ck_assert_int_eq(AGREE(t1, "\"f\"", "normalized"), 0);
    ck_assert_int_eq(AGREE("{", "{", "exact"), 0);
}
END_TEST

/* P(Bin(n, eps) <= k) by direct summation, for checking the bound. */
static double binom_cdf(uint64_t n, double eps, int64_t k)
{
    double sum = 0;
    for (int64_t i = 0; i <= k; i++)
        sum += exp(lgamma((double)n + 1) - lgamma((double)i + 1) -
                   lgamma((double)(n - (uint64_t)i) + 1) + (double)i * log(eps) +
                   (double)(n - (uint64_t)i) * log1p(-eps));
    return sum;
}

START_TEST(budget_bound_is_the_exact_binomial_one)
{
    /* k = 0 passes once (1 - eps)^n <= alpha: 0.95^59 = 0.0485, 0.95^58 = 0.0510. */
    ck_assert_int_eq(sc_budget_max_wrong(58, 0.05, 0.05), -1);
    ck_assert_int_eq(sc_budget_max_wrong(59, 0.05, 0.05), 0);
    /* 0.98^148 = 0.0503, 0.98^149 = 0.0493. */
    ck_assert_int_eq(sc_budget_max_wrong(148, 0.02, 0.05), -1);
    ck_assert_int_eq(sc_budget_max_wrong(149, 0.02, 0.05), 0);
    /* In general: the returned k passes and k + 1 does not. */
    uint64_t ns[] = {100, 500, 1000, 5000, 20000};
    double eps[] = {0.01, 0.02, 0.05, 0.1};
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < 4; j++) {
            int64_t k = sc_budget_max_wrong(ns[i], eps[j], 0.05);
            if (k >= 0)
                ck_assert_double_le(binom_cdf(ns[i], eps[j], k), 0.05 + 1e-9);
            ck_assert_double_gt(binom_cdf(ns[i], eps[j], k + 1), 0.05 - 1e-9);
            /* And it is below the point estimate eps * n: the bound is conservative. */
            ck_assert_int_lt(k, (int64_t)(eps[j] * (double)ns[i]));
        }
}
END_TEST

static sc_quality_t *quality_new(uint32_t min_scope_obs)
{
    sc_quality_opts_t o = {.max_pending = 16,
                           .first_n = 0,
                           .budget_confidence = 0.95,
                           .budget_min_scope_obs = min_scope_obs,
                           .budget_max_scopes = 8,
                           .pending_timeout_ms = 1000};
    sc_quality_t *q;
    ck_assert_int_eq(sc_quality_create(&q, &o), 0);
    return q;
}

START_TEST(thresholds_are_learned_conservatively)
{
    sc_quality_t *q = quality_new(1000000);
    double t;
    int from_scope;
    /* No observations: no threshold at all. */
    ck_assert_int_eq(sc_quality_budget_threshold(q, "n", 7, 0.05, &t, &from_scope, NULL), 0);
    /* Ground truth: answers are right above 0.8 and wrong below. 40
     * observations cannot support a 5 % bound even with none wrong. */
    uint64_t rng = 42;
    for (int i = 0; i < 40; i++)
        sc_quality_observe(q, "n", 7, 0.8 + 0.2 * (double)(next_rand(&rng) % 1000) / 1000.0,
                           SC_VERDICT_CORRECT);
    ck_assert_int_eq(sc_quality_budget_threshold(q, "n", 7, 0.05, &t, &from_scope, NULL), 0);
    /* With plenty of data on both sides the threshold lands near 0.8: the
     * scan may take in a few wrong answers below 0.8, never so many that
     * the bound is broken. */
    for (int i = 0; i < 4000; i++) {
        double s = 0.5 + 0.5 * (double)(next_rand(&rng) % 10000) / 10000.0;
        sc_quality_observe(q, "n", 7, s, s >= 0.8 ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG);
    }
    uint64_t n_obs;
    ck_assert_int_eq(sc_quality_budget_threshold(q, "n", 7, 0.05, &t, &from_scope, &n_obs), 1);
    ck_assert_int_eq(from_scope, 0);
    ck_assert_int_eq(n_obs, 4040);
    ck_assert_double_ge(t, 0.78);
    ck_assert_double_le(t, 0.82);
    /* A tighter budget never gives a lower threshold. */
    double t2;
    ck_assert_int_eq(sc_quality_budget_threshold(q, "n", 7, 0.01, &t2, &from_scope, NULL), 1);
    ck_assert_double_ge(t2, t);
    /* Other namespaces learn nothing from this one. */
    ck_assert_int_eq(sc_quality_budget_threshold(q, "other", 7, 0.05, &t, &from_scope, NULL), 0);
    sc_quality_destroy(q);
}
END_TEST

START_TEST(scopes_get_their_own_threshold_once_observed_enough)
{
    sc_quality_t *q = quality_new(300);
    uint64_t rng = 7;
    /* Scope 1: right above 0.6. Scope 2: right only above 0.8. */
    for (int i = 0; i < 1200; i++) {
        double s = 0.5 + 0.5 * (double)(next_rand(&rng) % 10000) / 10000.0;
        sc_quality_observe(q, "n", 1, s, s >= 0.6 ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG);
    }
    double t1, t2;
    int fs;
    ck_assert_int_eq(sc_quality_budget_threshold(q, "n", 1, 0.05, &t1, &fs, NULL), 1);
    ck_assert_int_eq(fs, 1);
    ck_assert_double_le(t1, 0.62);
    /* Scope 2 has too few observations of its own: the namespace's. */
    for (int i = 0; i < 100; i++) {
        double s = 0.5 + 0.5 * (double)(next_rand(&rng) % 10000) / 10000.0;
        sc_quality_observe(q, "n", 2, s, s >= 0.8 ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG);
    }
    ck_assert_int_eq(sc_quality_budget_threshold(q, "n", 2, 0.05, &t2, &fs, NULL), 1);
    ck_assert_int_eq(fs, 0);
    /* Once it has enough, its own, much higher one. */
    for (int i = 0; i < 900; i++) {
        double s = 0.5 + 0.5 * (double)(next_rand(&rng) % 10000) / 10000.0;
        sc_quality_observe(q, "n", 2, s, s >= 0.8 ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG);
    }
    ck_assert_int_eq(sc_quality_budget_threshold(q, "n", 2, 0.05, &t2, &fs, NULL), 1);
    ck_assert_int_eq(fs, 1);
    ck_assert_double_ge(t2, 0.78);
    sc_quality_destroy(q);
}
END_TEST

START_TEST(unanswered_validations_expire_to_make_room)
{
    sc_quality_t *q = quality_new(10);
    uint64_t rng = 1;
    sc_validation_t v;
    memset(&v, 0, sizeof(v));
    snprintf(v.ns, sizeof(v.ns), "n");
    for (int i = 0; i < 16; i++) {
        v.entry_key[0] = (uint8_t)i;
        ck_assert_int_eq(sc_quality_sample(q, 1.0, &v, 1000, &rng), 1);
    }
    /* Full, and nothing is old enough: dropped. */
    ck_assert_int_eq(sc_quality_sample(q, 1.0, &v, 1500, &rng), SC_EBUSY);
    ck_assert_int_eq(sc_quality_dropped(q), 1);
    /* Past the timeout the old ones make room (and are counted). */
    ck_assert_int_eq(sc_quality_sample(q, 1.0, &v, 2500, &rng), 1);
    ck_assert_int_eq(sc_quality_expired(q), 16);
    ck_assert_int_eq(sc_quality_pending(q), 1);
    /* An abandoned validation is gone and counted as dropped. */
    sc_quality_abandon(q, v.id);
    ck_assert_int_eq(sc_quality_pending(q), 0);
    ck_assert_int_eq(sc_quality_dropped(q), 2);
    /* Explorations are found again by their lookup's key. */
    v.match = SC_MATCH_EXPLORE;
    memset(v.request_key, 0xAB, 16);
    ck_assert_int_eq(sc_quality_sample(q, 1.0, &v, 3000, &rng), 1);
    sc_validation_t out;
    uint8_t other[16] = {0};
    ck_assert_int_eq(sc_quality_take_explore(q, other, &out), SC_ENOTFOUND);
    ck_assert_int_eq(sc_quality_take_explore(q, v.request_key, &out), 0);
    ck_assert_str_eq(out.id, v.id);
    sc_quality_destroy(q);
}
END_TEST

static void list_pair(void *ctx, const sc_agreement_t *ag)
{
    sc_buf_printf(ctx, "%s/%s:%llu ", ag->a, ag->b, (unsigned long long)ag->pairs);
}

START_TEST(agreement_between_methods_is_counted_per_namespace)
{
    sc_quality_opts_t o = {.max_pending = 4, .budget_max_scopes = 0};
    sc_quality_t *q;
    ck_assert_int_eq(sc_quality_create(&q, &o), 0);
    ck_assert_int_eq(sc_compare_method("judge"), 3);
    ck_assert_int_eq(sc_compare_method("fuzzy"), -1);
    /* semantic vs judge in "a": 3 agree (2 correct, 1 wrong), 1 where only
     * the semantic method said wrong, 1 where only the judge did; the
     * order of the methods in the call does not matter. */
    static const struct {
        const char *ns, *ma;
        sc_verdict_t va;
        const char *mb;
        sc_verdict_t vb;
        int rc;
    } rec[] = {
        {"a", "semantic", SC_VERDICT_CORRECT, "judge", SC_VERDICT_CORRECT, 0},
        {"a", "judge", SC_VERDICT_CORRECT, "semantic", SC_VERDICT_CORRECT, 0},
        {"a", "semantic", SC_VERDICT_WRONG, "judge", SC_VERDICT_WRONG, 0},
        {"a", "semantic", SC_VERDICT_WRONG, "judge", SC_VERDICT_CORRECT, 0},
        {"a", "judge", SC_VERDICT_WRONG, "semantic", SC_VERDICT_CORRECT, 0},
        {"a", "normalized", SC_VERDICT_WRONG, "judge", SC_VERDICT_CORRECT, 0},
        {"b", "exact", SC_VERDICT_WRONG, "normalized", SC_VERDICT_WRONG, 0},
        {"a", "judge", SC_VERDICT_WRONG, "judge", SC_VERDICT_CORRECT, SC_EINVAL},
        {"a", "fuzzy", SC_VERDICT_WRONG, "judge", SC_VERDICT_CORRECT, SC_EINVAL},
        {"a", "exact", (sc_verdict_t)7, "judge", SC_VERDICT_CORRECT, SC_EINVAL},
    };
    for (size_t i = 0; i < sizeof(rec) / sizeof(rec[0]); i++)
        ck_assert_int_eq(
            sc_quality_record_agreement(q, rec[i].ns, rec[i].ma, rec[i].va, rec[i].mb, rec[i].vb),
            rec[i].rc);
    sc_agreement_t ag;
    ck_assert_int_eq(sc_quality_agreement(q, "a", "judge", "semantic", &ag), 0);
    ck_assert_str_eq(ag.a, "semantic");
    ck_assert_str_eq(ag.b, "judge");
    ck_assert_uint_eq(ag.pairs, 5);
    ck_assert_uint_eq(ag.both_correct, 2);
    ck_assert_uint_eq(ag.both_wrong, 1);
    ck_assert_uint_eq(ag.a_wrong_only, 1);
    ck_assert_uint_eq(ag.b_wrong_only, 1);
    ck_assert_double_eq_tol(ag.agreement, 0.6, 1e-12);
    ck_assert_int_eq(sc_quality_agreement(q, "b", "semantic", "judge", &ag), 0);
    ck_assert_uint_eq(ag.pairs, 0);
    ck_assert_double_eq(ag.agreement, 0);
    ck_assert_int_eq(sc_quality_agreement(q, "none", "exact", "normalized", &ag), 0);
    ck_assert_uint_eq(ag.pairs, 0);
    ck_assert_int_eq(sc_quality_agreement(q, "a", "exact", "exact", &ag), SC_EINVAL);
    /* foreach lists the pairs of methods that have counts, in order. */
    sc_buf_t seen = {0};
    sc_quality_agreement_foreach(q, "a", list_pair, &seen);
    ck_assert_str_eq(seen.data, "normalized/judge:1 semantic/judge:5 ");
    sc_buf_reset(&seen);
    sc_quality_agreement_foreach(q, "nothing", list_pair, &seen);
    ck_assert_uint_eq(seen.len, 0);
    sc_buf_free(&seen);
    /* The verdict counts are untouched by agreement records. */
    sc_quality_ns_t st;
    sc_quality_ns(q, "a", &st);
    ck_assert_uint_eq(st.validated[SC_MATCH_SEMANTIC], 0);
    sc_quality_destroy(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quality");
    TCase *tc = tcase_create("quality");
    tcase_add_test(tc, answers_compare_by_method);
    tcase_add_test(tc, budget_bound_is_the_exact_binomial_one);
    tcase_add_test(tc, thresholds_are_learned_conservatively);
    tcase_add_test(tc, scopes_get_their_own_threshold_once_observed_enough);
    tcase_add_test(tc, unanswered_validations_expire_to_make_room);
    tcase_add_test(tc, agreement_between_methods_is_counted_per_namespace);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
