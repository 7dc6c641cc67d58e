/* tests/server/validate.c -- validation (server/validate.c) on a process
 * context with a real store: comparing answers by each method (the verdict
 * comes at once when no embedding is needed; "semantic" without a model
 * falls back to "normalized"), delivering to the caller or dropping what
 * cannot be delivered, and applying verdicts: counts, the audit record, the
 * negative pair, and deleting a wrongly served entry only when asked. */
#include "../../server/validate.c"

#include <unistd.h>

#include "ctx_fixture.h"

typedef struct {
    int calls, verdict;
    double sim;
} verdict_t;

static void got_verdict(void *arg, int verdict, double answer_sim)
{
    verdict_t *v = arg;
    v->calls++;
    v->verdict = verdict;
    v->sim = answer_sim;
}

static int compare(sc_ctx_t *ctx, const char *method, const char *a, const char *b, verdict_t *v,
                   const char **used)
{
    sc_ns_config_t ns;
    sc_ns_config_defaults(&ctx->cfg, &ns);
    snprintf(ns.compare, sizeof(ns.compare), "%s", method);
    memset(v, 0, sizeof(*v));
    return sc_compare_answers(ctx, &ns, a, strlen(a), b, strlen(b), got_verdict, v, used);
}

START_TEST(answers_compare_by_method)
{
    tctx_t t;
    tctx_open(&t, 8, NULL);
    verdict_t v;
    const char *used;
    ck_assert_int_eq(compare(&t.ctx, "exact", "\"Paris\"", "\"Paris\"", &v, &used), 0);
    ck_assert_int_eq(v.calls, 1);
    ck_assert_int_eq(v.verdict, SC_VERDICT_CORRECT);
    ck_assert(v.sim == -2);
    ck_assert_str_eq(used, "exact");
    ck_assert_int_eq(compare(&t.ctx, "exact", "\"Paris\"", "\"paris!\"", &v, &used), 0);
    ck_assert_int_eq(v.verdict, SC_VERDICT_WRONG);
    ck_assert_int_eq(compare(&t.ctx, "normalized", "\"Paris\"", "\"  paris! \"", &v, &used), 0);
    ck_assert_int_eq(v.verdict, SC_VERDICT_CORRECT);
    ck_assert_str_eq(used, "normalized");
    /* No model on this server: "semantic" is compared as "normalized". */
    ck_assert_int_eq(compare(&t.ctx, "semantic", "\"Lyon\"", "\"Paris\"", &v, &used), 0);
    ck_assert_int_eq(v.calls, 1);
    ck_assert_int_eq(v.verdict, SC_VERDICT_WRONG);
    ck_assert_str_eq(used, "normalized");
    /* Structures agree on their canonical form, whatever the method. */
    ck_assert_int_eq(
        compare(&t.ctx, "exact", "{\"a\":1,\"b\":[2]}", "{\"b\":[2],\"a\":1}", &v, &used), 0);
    ck_assert_int_eq(v.verdict, SC_VERDICT_CORRECT);
    tctx_close(&t);
}
END_TEST

static sc_validation_t sampled(sc_ctx_t *ctx, uint64_t *rng, const char *ns, sc_match_t match)
{
    sc_validation_t v;
    memset(&v, 0, sizeof(v));
    memset(v.entry_key, 0xAB, sizeof(v.entry_key));
    memset(v.request_key, 0xCD, sizeof(v.request_key));
    v.scope = 42;
    v.match = match;
    v.similarity = 0.91;
    snprintf(v.ns, sizeof(v.ns), "%s", ns);
    ck_assert_int_eq(sc_quality_sample(ctx->quality, 1.0, &v, sc_now_ms(), rng), 1);
    ck_assert_int_eq((int)strlen(v.id), SC_VALIDATION_ID_HEX);
    return v;
}

START_TEST(delivery_asks_the_caller_or_drops)
{
    tctx_t t;
    tctx_open(&t, 8, NULL);
    sc_ctx_t *ctx = &t.ctx;
    sc_ns_config_t ns;
    sc_ns_config_defaults(&ctx->cfg, &ns);
    sc_request_t req;
    memset(&req, 0, sizeof(req));
    sc_validation_t v = sampled(ctx, &t.w.rng, "d", SC_MATCH_SEMANTIC);
    ck_assert_int_eq((int)sc_quality_pending(ctx->quality), 1);
    ns.delivery = SC_DELIVERY_CALLER;
    ck_assert_int_eq(sc_validation_deliver(ctx, &ns, &v, &req, "\"x\"", 3), 1);
    ck_assert_int_eq((int)sc_quality_pending(ctx->quality), 1); /* the caller answers it */
    /* No --upstream-url (no client): the validation is dropped, counted. */
    ns.delivery = SC_DELIVERY_UPSTREAM;
    ck_assert_int_eq(sc_validation_deliver(ctx, &ns, &v, &req, "\"x\"", 3), 0);
    ck_assert_int_eq((int)sc_quality_pending(ctx->quality), 0);
    ck_assert_int_eq((int)sc_quality_dropped(ctx->quality), 1);
    tctx_close(&t);
}
END_TEST

/* Waits (up to 2 s) until the writer has committed what 'check' looks for. */
static int eventually(sc_ctx_t *ctx, sc_store_reader_t *r,
                      int (*check)(sc_ctx_t *, sc_store_reader_t *))
{
    for (int i = 0; i < 200; i++) {
        if (check(ctx, r))
            return 1;
        usleep(10000);
    }
    return 0;
}

static int has_record(sc_ctx_t *ctx, sc_store_reader_t *r)
{
    sc_buf_t b = {0};
    (void)ctx;
    int ok = sc_store_read_begin(r) == 0 && sc_quality_validations_json(r, 10, &b) == 0 && b.data &&
             strstr(b.data, "\"verdict\":\"wrong\"") && strstr(b.data, "\"method\":\"exact\"") &&
             strstr(b.data, "\"cached_answer\":\"old\"") &&
             strstr(b.data, "\"fresh_answer\":\"new\"");
    sc_store_read_end(r);
    sc_buf_free(&b);
    return ok;
}

static int has_negative(sc_ctx_t *ctx, sc_store_reader_t *r)
{
    uint8_t req[16], entry[16];
    (void)ctx;
    memset(req, 0xCD, 16);
    memset(entry, 0xAB, 16);
    int ok = sc_store_read_begin(r) == 0 && sc_quality_is_negative(r, req, entry);
    sc_store_read_end(r);
    return ok;
}

START_TEST(verdicts_count_record_and_invalidate_when_asked)
{
    tctx_t t;
    tctx_open(&t, 8, NULL);
    sc_ctx_t *ctx = &t.ctx;
    /* A wrong semantic hit in a namespace without invalidate_on_wrong: counted,
     * recorded, remembered as a negative pair; the entry stays. */
    sc_ns_config_t ns;
    sc_ns_config_defaults(&ctx->cfg, &ns);
    ns.invalidate_on_wrong = 0;
    ck_assert_int_eq(sc_namespaces_set(ctx->namespaces, "keep", 4, &ns), 0);
    sc_validation_t v = sampled(ctx, &t.w.rng, "keep", SC_MATCH_SEMANTIC);
    ck_assert_int_eq(sc_quality_take(ctx->quality, v.id, &v), 0);
    ck_assert_int_eq(
        sc_validation_apply(ctx, &v, SC_VERDICT_WRONG, "exact", -2, "\"new\"", 5, "\"old\"", 5), 0);
    sc_quality_ns_t q;
    sc_quality_ns(ctx->quality, "keep", &q);
    ck_assert_int_eq((int)q.validated[SC_MATCH_SEMANTIC], 1);
    ck_assert_int_eq((int)q.wrong[SC_MATCH_SEMANTIC], 1);
    ck_assert(eventually(ctx, t.w.reader, has_record));
    ck_assert(eventually(ctx, t.w.reader, has_negative));
    /* The same in a namespace that invalidates: the entry is deleted. */
    ns.invalidate_on_wrong = 1;
    ck_assert_int_eq(sc_namespaces_set(ctx->namespaces, "drop", 4, &ns), 0);
    v = sampled(ctx, &t.w.rng, "drop", SC_MATCH_SEMANTIC);
    ck_assert_int_eq(
        sc_validation_apply(ctx, &v, SC_VERDICT_WRONG, "exact", -2, "\"a\"", 3, "\"b\"", 3), 1);
    /* An exploration was never served: its candidate stays. */
    v = sampled(ctx, &t.w.rng, "drop", SC_MATCH_EXPLORE);
    ck_assert_int_eq(
        sc_validation_apply(ctx, &v, SC_VERDICT_WRONG, "exact", -2, "\"a\"", 3, "\"b\"", 3), 0);
    /* Feedback by key on an unsampled entry gets an id. */
    sc_validation_t byk;
    memset(&byk, 0, sizeof(byk));
    snprintf(byk.ns, sizeof(byk.ns), "drop");
    ck_assert_int_eq(
        sc_validation_apply(ctx, &byk, SC_VERDICT_CORRECT, "reported", -2, NULL, 0, "\"b\"", 3), 0);
    ck_assert_int_eq((int)strlen(byk.id), SC_VALIDATION_ID_HEX);
    sc_quality_ns(ctx->quality, "drop", &q);
    ck_assert_int_eq((int)(q.validated[0] + q.validated[1] + q.validated[2]), 3);
    tctx_close(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("validate");
    tcase_add_test(tc, answers_compare_by_method);
    tcase_add_test(tc, delivery_asks_the_caller_or_drops);
    tcase_add_test(tc, verdicts_count_record_and_invalidate_when_asked);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
