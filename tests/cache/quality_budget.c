/* tests/cache/quality_budget.c -- the validation budget (cache/quality_budget.c)
 * and free observations in the pending table (cache/quality.c): paid
 * validations stay within the budget's share of hits served, pause beyond
 * it except at the pass-through rate, the window slides, namespaces are
 * apart; observations are settled by the store's key and never fill more
 * than half the pending table. */
#include "sc_quality.h"

#include <string.h>

#include "testutil.h"

START_TEST(paid_validations_stay_within_the_budget)
{
    sc_spend_t *s;
    ck_assert_int_eq(sc_spend_create(&s), 0);
    uint64_t rng = 42;
    /* No hit served yet: nothing may be paid (pass 0). */
    ck_assert_int_eq(sc_spend_allow(s, "a", 1, 0.05, 0), 0);
    /* 1,000 hits at 5 %: exactly 50 paid, the rest paused. */
    int allowed = 0;
    for (int i = 0; i < 1000; i++) {
        sc_spend_hits(s, "a", 1, 1);
        allowed += sc_spend_allow(s, "a", 1, 0.05, 0);
    }
    ck_assert_int_eq(allowed, 50);
    sc_spend_stats_t st;
    sc_spend_get(s, "a", 1, &st);
    ck_assert_uint_eq(st.hits, 1000);
    ck_assert_uint_eq(st.paid, 50);
    ck_assert_uint_eq(st.paused, 1000 - 50 + 1);
    /* Another namespace has its own account. */
    sc_spend_get(s, "b", 1, &st);
    ck_assert_uint_eq(st.hits + st.paid + st.paused, 0);
    ck_assert_int_eq(sc_spend_allow(s, "b", 1, 0.05, 0), 0);
    /* Over budget, the pass-through rate still lets some through. */
    int passed = 0;
    for (int i = 0; i < 10000; i++)
        passed += sc_spend_allow(s, "a", 1, 0.05, sc_quality_draw(&rng, 0.1));
    ck_assert_int_ge(passed, 850);
    ck_assert_int_le(passed, 1150);
    sc_spend_destroy(s);
}
END_TEST

START_TEST(the_window_slides_by_halves)
{
    sc_spend_t *s;
    ck_assert_int_eq(sc_spend_create(&s), 0);
    sc_spend_hits(s, "w", 1, SC_SPEND_WINDOW - 1);
    for (int i = 0; i < 98; i++)
        ck_assert_int_eq(sc_spend_allow(s, "w", 1, 0.01, 0), 1);
    sc_spend_hits(s, "w", 1, 1); /* the window fills: both counts halve */
    sc_spend_stats_t st;
    sc_spend_get(s, "w", 1, &st);
    ck_assert(st.window_hits == SC_SPEND_WINDOW / 2);
    ck_assert(st.window_paid == 49);
    ck_assert_uint_eq(st.hits, SC_SPEND_WINDOW);
    ck_assert_uint_eq(st.paid, 98);
    ck_assert_int_eq(sc_spend_allow(s, "w", 1, 0.01, 0), 1); /* 50 of 50 */
    ck_assert_int_eq(sc_spend_allow(s, "w", 1, 0.01, 0), 0);
    sc_spend_hits(s, "w", 1, 100);
    ck_assert_int_eq(sc_spend_allow(s, "w", 1, 0.01, 0), 1);
    sc_spend_destroy(s);
}
END_TEST

static sc_validation_t observation(int i)
{
    sc_validation_t v;
    memset(&v, 0, sizeof(v));
    v.match = SC_MATCH_OBSERVED;
    v.request_key[0] = (uint8_t)i;
    v.entry_key[0] = (uint8_t)(100 + i);
    v.similarity = 0.8;
    snprintf(v.ns, sizeof(v.ns), "o");
    return v;
}

START_TEST(observations_are_settled_by_key_and_never_crowd_out_hits)
{
    sc_quality_t *q;
    sc_quality_opts_t o = {.max_pending = 8,
                           .first_n = 0,
                           .budget_confidence = 0.95,
                           .budget_min_scope_obs = 10,
                           .budget_max_scopes = 4};
    ck_assert_int_eq(sc_quality_create(&q, &o), 0);
    ck_assert_ptr_nonnull(sc_quality_spend(q));
    uint64_t rng = 3;
    /* Half the table at most: the fifth observation is refused, uncounted. */
    for (int i = 0; i < 5; i++) {
        sc_validation_t v = observation(i);
        ck_assert_int_eq(sc_quality_sample(q, 1.0, &v, 1000, &rng), i < 4);
    }
    ck_assert_uint_eq(sc_quality_pending(q), 4);
    ck_assert_uint_eq(sc_quality_dropped(q), 0);
    /* A served hit's validation still finds room. */
    sc_validation_t hit = observation(9);
    hit.match = SC_MATCH_EXACT;
    ck_assert_int_eq(sc_quality_sample(q, 1.0, &hit, 1000, &rng), 1);
    /* The store with the lookup's key takes the observation back... */
    uint8_t key[SC_KEY_BYTES] = {2};
    sc_validation_t got;
    ck_assert_int_eq(sc_quality_take_explore(q, key, &got), 0);
    ck_assert_int_eq(got.match, SC_MATCH_OBSERVED);
    ck_assert_int_eq(got.entry_key[0], 102);
    ck_assert_int_eq(sc_quality_take_explore(q, key, &got), SC_ENOTFOUND);
    /* ...and an entry's feedback never settles one (it was never served). */
    uint8_t entry[SC_KEY_BYTES] = {101};
    ck_assert_int_eq(sc_quality_take_by_key(q, entry, &got), SC_ENOTFOUND);
    /* Its verdict counts apart from served hits. */
    sc_quality_record(q, "o", SC_MATCH_OBSERVED, SC_VERDICT_WRONG);
    sc_quality_ns_t st;
    sc_quality_ns(q, "o", &st);
    ck_assert_uint_eq(st.validated[SC_MATCH_OBSERVED], 1);
    ck_assert_uint_eq(st.wrong[SC_MATCH_OBSERVED], 1);
    ck_assert(st.rate == 0);
    ck_assert_str_eq(sc_match_names[SC_MATCH_OBSERVED], "observed");
    sc_quality_destroy(q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quality_budget");
    TCase *tc = tcase_create("quality_budget");
    tcase_add_test(tc, paid_validations_stay_within_the_budget);
    tcase_add_test(tc, the_window_slides_by_halves);
    tcase_add_test(tc, observations_are_settled_by_key_and_never_crowd_out_hits);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
