/* tests/cache/prices.c -- the price table (cache/prices.c): the built-in
 * table parses and prices real model names by longest prefix, a bad table is
 * refused naming its field, costs are exact integers, and the usage objects
 * of the OpenAI and Anthropic APIs are normalized the same way. */
#include "../../cache/prices.c"

#include <unistd.h>

#include "testutil.h"

#define PRICE_OF(p, m) sc_prices_lookup(p, m, strlen(m), NULL)

START_TEST(builtin_table_prices_real_model_names)
{
    char err[256] = "";
    sc_prices_t *p;
    ck_assert_int_eq(sc_prices_default(&p, err, sizeof(err)), 0);
    ck_assert_uint_ge(sc_prices_count(p), 20);
    ck_assert_str_eq(sc_prices_taken(p), "2026-12-01");
    const char *key;
    /* A dated snapshot is priced as its family; a longer key wins. */
    const sc_price_t *pr = sc_prices_lookup(p, "gpt-5-mini-2025-08-07", 21, &key);
    ck_assert_ptr_nonnull(pr);
    ck_assert_str_eq(key, "gpt-5-mini");
    ck_assert_uint_eq(pr->input, 250000);
    ck_assert_uint_eq(pr->cached_input, 25000);
    ck_assert_uint_eq(pr->output, 2000000);
    sc_prices_lookup(p, "gpt-5.1-2025-11-13", 18, &key);
    ck_assert_str_eq(key, "gpt-5.1");
    sc_prices_lookup(p, "GPT-5-nano", 10, &key);
    ck_assert_str_eq(key, "gpt-5-nano");
    sc_prices_lookup(p, "claude-sonnet-4@20250514", 24, &key);
    ck_assert_str_eq(key, "claude-sonnet-4");
    sc_prices_lookup(p, "claude-sonnet-4-5-20250929", 26, &key);
    ck_assert_str_eq(key, "claude-sonnet-4-5");
    pr = sc_prices_lookup(p, "claude-opus-4-5-20251101", 24, &key);
    ck_assert_str_eq(key, "claude-opus-4-5");
    ck_assert_uint_eq(pr->input, 5000000); /* not Opus 4.1's $15 */
    ck_assert_uint_eq(pr->cache_write, 6250000);
    sc_prices_lookup(p, "claude-3-5-haiku-20241022", 25, &key);
    ck_assert_str_eq(key, "claude-3-5-haiku");
    sc_prices_lookup(p, "openai/gpt-5.1", 14, &key);
    ck_assert_str_eq(key, "gpt-5.1");
    /* The rest of the name must start at a boundary: "gpt-4" is not a
     * price for "gpt-4o" nor "gpt-4.5"; models no official page confirmed
     * (dropped from the table) are unknown; unknown is NULL. */
    ck_assert_ptr_null(PRICE_OF(p, "gpt-4.5-preview"));
    ck_assert_ptr_null(PRICE_OF(p, "gpt-4o"));
    ck_assert_ptr_null(PRICE_OF(p, "gpt-4o-mini-2024-07-18"));
    ck_assert_ptr_null(PRICE_OF(p, "gpt-5"));
    ck_assert_ptr_null(PRICE_OF(p, "o1x"));
    ck_assert_ptr_null(PRICE_OF(p, "llama3:8b"));
    ck_assert_ptr_null(PRICE_OF(p, ""));
    ck_assert_ptr_nonnull(PRICE_OF(p, "gpt-4-0613"));
    /* Absent optional prices take the input price. */
    pr = PRICE_OF(p, "gpt-4");
    ck_assert_uint_eq(pr->cached_input, pr->input);
    ck_assert_uint_eq(pr->cache_write, pr->input);
    sc_prices_free(p);
}
END_TEST

START_TEST(costs_are_exact_and_saturate)
{
    sc_price_t pr = {150000, 75000, 150000, 600000}; /* gpt-4o-mini */
    sc_usage_t u = {1000, 500, 0, 200};
    /* 1000 x 0.15 + 500 x 0.075 + 200 x 0.60 dollars per million tokens */
    ck_assert_uint_eq(sc_price_cost(&pr, &u), 1000ull * 150000 + 500ull * 75000 + 200ull * 600000);
    char buf[32];
    ck_assert_int_eq(sc_usd_format(sc_price_cost(&pr, &u), buf, sizeof(buf)), 9);
    ck_assert_str_eq(buf, "0.0003075");
    sc_usd_format(0, buf, sizeof(buf));
    ck_assert_str_eq(buf, "0");
    sc_usd_format(3000000000000ull, buf, sizeof(buf));
    ck_assert_str_eq(buf, "3");
    sc_usd_format(1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "0.000000000001");
    ck_assert_int_eq(sc_usd_format(12345678901234ull, buf, 5), SC_ETOOBIG);
    ck_assert(fabs(sc_pico_to_usd(3075 * 100000000ull) - 0.3075) < 1e-15);
    sc_usage_t huge = {UINT64_MAX / 2, 0, 0, UINT64_MAX / 2};
    ck_assert_uint_eq(sc_price_cost(&pr, &huge), UINT64_MAX);
    char err[256];
    sc_prices_t *p;
    ck_assert_int_eq(sc_prices_default(&p, err, sizeof(err)), 0);
    uint64_t pico = 1;
    ck_assert_int_eq(sc_prices_cost(p, "mystery-model", 13, &u, &pico), SC_ENOTFOUND);
    ck_assert_uint_eq(pico, 0);
    ck_assert_int_eq(sc_prices_cost(p, "gpt-5-mini", 10, &u, &pico), 0);
    /* 1000 x 0.25 + 500 x 0.025 + 200 x 2.00 */
    ck_assert_uint_eq(pico, 1000ull * 250000 + 500ull * 25000 + 200ull * 2000000);
    sc_prices_free(p);
}
END_TEST

/* Parses 'json' expecting refusal with 'field' in the message. */
static void refused(const char *json, const char *field)
{
    char err[256] = "";
    sc_prices_t *p = NULL;
    ck_assert_int_eq(sc_prices_parse(&p, json, strlen(json), err, sizeof(err)), SC_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err, field) != NULL, "'%s' does not name '%s'", err, field);
}

#define HEAD "{\"taken\":\"2025-01-31\",\"sources\":[\"x\"],"

START_TEST(bad_tables_are_refused_naming_the_field)
{
    char err[256];
    sc_prices_t *p;
    const char *ok = HEAD "\"models\":{\"m\":{\"input\":1,\"output\":2.5}}}";
    ck_assert_int_eq(sc_prices_parse(&p, ok, strlen(ok), err, sizeof(err)), 0);
    ck_assert_uint_eq(PRICE_OF(p, "m-1")->output, 2500000);
    sc_prices_free(p);
    refused("[1]", "top level");
    refused("{", "line 1");
    refused(HEAD "\"models\":{}}", "models");
    refused(HEAD "\"model\":{\"m\":{\"input\":1,\"output\":2}}}", "model");
    refused("{\"sources\":[\"x\"],\"models\":{\"m\":{\"input\":1,\"output\":2}}}", "taken");
    refused("{\"taken\":\"2025-13-01\",\"sources\":[\"x\"],\"models\":{\"m\":{\"input\":1,"
            "\"output\":2}}}",
            "taken");
    refused(
        "{\"taken\":\"2025-01-31\",\"sources\":[],\"models\":{\"m\":{\"input\":1,\"output\":2}}}",
        "sources");
    refused(HEAD "\"currency\":\"EUR\",\"models\":{\"m\":{\"input\":1,\"output\":2}}}", "currency");
    refused(HEAD "\"models\":{\"m\":{\"input\":1}}}", "models.m.output: missing");
    refused(HEAD "\"models\":{\"m\":{\"output\":1}}}", "models.m.input: missing");
    refused(HEAD "\"models\":{\"m\":{\"input\":-1,\"output\":2}}}", "models.m.input");
    refused(HEAD "\"models\":{\"m\":{\"input\":\"1\",\"output\":2}}}", "models.m.input");
    refused(HEAD "\"models\":{\"m\":{\"input\":1,\"output\":0.0000001}}}", "models.m.output");
    refused(HEAD "\"models\":{\"m\":{\"input\":1,\"output\":2,\"cached\":1}}}", "models.m.cached");
    refused(HEAD "\"models\":{\"m\":{\"input\":1,\"output\":2,\"source\":\"\"}}}",
            "models.m.source");
    const char *sourced = HEAD "\"models\":{\"m\":{\"input\":1,\"output\":2,\"source\":\"u\"}}}";
    ck_assert_int_eq(sc_prices_parse(&p, sourced, strlen(sourced), err, sizeof(err)), 0);
    sc_prices_free(p);
    refused(HEAD "\"models\":{\"a b\":{\"input\":1,\"output\":2}}}", "a b");
    refused(HEAD "\"models\":{\"m\":{\"input\":1,\"output\":2},\"M\":{\"input\":1,\"output\":2}}}",
            "listed twice");
    refused(HEAD "\"models\":{\"m\":{\"input\":1,\"output\":2},\"m\":{\"input\":1,\"output\":2}}}",
            "duplicate");
    /* A file's errors name the file. */
    char path[64];
    tu_write_temp(path, HEAD "\"models\":{\"m\":{\"input\":1}}}");
    ck_assert_int_eq(sc_prices_load(&p, path, err, sizeof(err)), SC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "models.m.output"));
    unlink(path);
    ck_assert_int_eq(sc_prices_load(&p, path, err, sizeof(err)), SC_ENOTFOUND);
    /* The shipped file parses as the built-in one does. */
    ck_assert_int_eq(sc_prices_load(&p, "contrib/prices.json", err, sizeof(err)), 0);
    sc_prices_free(p);
}
END_TEST

#define USAGE(body, u) sc_usage_parse(body, strlen(body), u)

START_TEST(usage_of_each_api)
{
    sc_usage_t u;
    /* OpenAI: prompt_tokens includes the cached ones. */
    ck_assert_int_eq(
        USAGE("{\"id\":\"c\",\"usage\":{\"prompt_tokens\":1200,\"completion_tokens\":80,"
              "\"total_tokens\":1280,\"prompt_tokens_details\":{\"cached_tokens\":1024}}}",
              &u),
        0);
    ck_assert_uint_eq(u.input, 176);
    ck_assert_uint_eq(u.cached_input, 1024);
    ck_assert_uint_eq(u.output, 80);
    /* Embeddings: prompt tokens only. */
    ck_assert_int_eq(USAGE("{\"data\":[],\"usage\":{\"prompt_tokens\":8,\"total_tokens\":8}}", &u),
                     0);
    ck_assert_uint_eq(u.input, 8);
    ck_assert_uint_eq(u.output, 0);
    /* Anthropic: input_tokens excludes cache reads and writes. */
    ck_assert_int_eq(
        USAGE("{\"type\":\"message\",\"usage\":{\"input_tokens\":20,\"output_tokens\":7,"
              "\"cache_read_input_tokens\":300,\"cache_creation_input_tokens\":50}}",
              &u),
        0);
    ck_assert_uint_eq(u.input, 20);
    ck_assert_uint_eq(u.cached_input, 300);
    ck_assert_uint_eq(u.cache_write, 50);
    ck_assert_uint_eq(u.output, 7);
    /* Responses API, also nested in a response.completed event. */
    ck_assert_int_eq(
        USAGE("{\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":30,"
              "\"input_tokens_details\":{\"cached_tokens\":10},\"output_tokens\":5}}}",
              &u),
        0);
    ck_assert_uint_eq(u.input, 20);
    ck_assert_uint_eq(u.cached_input, 10);
    ck_assert_uint_eq(u.output, 5);
    ck_assert_int_eq(USAGE("{\"choices\":[]}", &u), SC_ENOTFOUND);
    ck_assert_int_eq(USAGE("{\"usage\":null}", &u), SC_ENOTFOUND);
    ck_assert_int_eq(USAGE("not json", &u), SC_EINVAL);
    ck_assert_int_eq(USAGE("{\"usage\":{\"prompt_tokens\":-1}}", &u), SC_EINVAL);
    ck_assert_int_eq(USAGE("{\"usage\":{\"prompt_tokens\":1.5}}", &u), SC_EINVAL);
    ck_assert_int_eq(
        USAGE("{\"usage\":{\"prompt_tokens\":5,\"prompt_tokens_details\":{\"cached_tokens\":9}}}",
              &u),
        SC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prices");
    TCase *tc = tcase_create("prices");
    tcase_add_test(tc, builtin_table_prices_real_model_names);
    tcase_add_test(tc, costs_are_exact_and_saturate);
    tcase_add_test(tc, bad_tables_are_refused_naming_the_field);
    tcase_add_test(tc, usage_of_each_api);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
