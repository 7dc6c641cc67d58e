/* tests/server/metrics.c -- the shard counters (server/metrics.c) and the
 * Prometheus text written from them (server/api_stats.c): sums over shards,
 * cumulative histogram buckets, the label cap folding extra namespaces into
 * "_other", and the whole /metrics exposition parsed line by line (every
 * sample `name{labels} value`, every family with one HELP and one TYPE
 * before its samples). */
#include "../../server/api_stats.c"

#include <ctype.h>
#include <math.h>

#include "ctx_fixture.h"

START_TEST(shards_sum_and_buckets_accumulate)
{
    sc_metrics_t *m;
    ck_assert_int_eq(sc_metrics_create(&m, 3, 0, 4), SC_EINVAL); /* needs an endpoint */
    ck_assert_int_eq(sc_metrics_create(&m, 3, 4, 4), 0);
    for (int s = 0; s < 3; s++) {
        sc_metrics_shard_t *sh = sc_metrics_shard(m, s);
        sc_metrics_request(sh, 1, 200, 50000);          /* 50 us: the first bucket */
        sc_metrics_request(sh, 1, 404, 2000000);        /* 2 ms: the 2.5 ms bucket */
        sc_metrics_request(sh, 1, 418, 20000000000ull); /* 20 s: past every bucket; "other" code */
        sc_metrics_request(sh, 99, 200, 1000);          /* out of range: the last endpoint */
        sc_metrics_similarity(sh, 1, 0.93);
        sc_metrics_similarity(sh, 0, 0.7);
        sc_metrics_lookup(sh, "a", 1, SC_LR_MISS);
        sc_metrics_saved(sh, "a", 1, "m", 1, 10, 20, s == 0, 1000); /* 1 priced, 2 not */
    }
    sc_metrics_validation_cost(m, "a", 1, "m", 1, 7, 1, 500);
    sc_metrics_validation_cost(m, "a", 1, "x", 1, 9, 0, 0);
    sc_metrics_usage_t u;
    sc_metrics_ns_usage(m, "a", 1, &u);
    ck_assert_uint_eq(u.prompt_tokens, 30);
    ck_assert_uint_eq(u.saved_pico, 1000);
    ck_assert_uint_eq(u.saved_unpriced_tokens, 60); /* two unpriced hits of 30 tokens */
    ck_assert_uint_eq(u.validation_calls, 2);
    ck_assert_uint_eq(u.validation_tokens, 16);
    ck_assert_uint_eq(u.validation_pico, 500);
    ck_assert_uint_eq(u.validation_unpriced_tokens, 9);
    sc_metrics_ns_usage(m, "b", 1, &u);
    ck_assert_uint_eq(u.validation_calls + u.prompt_tokens, 0);
    sc_metrics_endpoint_t e;
    sc_metrics_endpoint(m, 1, &e);
    ck_assert_int_eq(e.count, 9);
    ck_assert_int_eq(e.sum_ns, 3 * (50000 + 2000000 + 20000000000ull));
    ck_assert_int_eq(e.by_status[0], 3);                           /* 200 */
    ck_assert_int_eq(e.by_status[6], 3);                           /* 404 */
    ck_assert_int_eq(e.by_status[SC_METRICS_STATUS_SLOTS - 1], 3); /* other */
    ck_assert_int_eq(e.le[0], 3);
    ck_assert_int_eq(e.le[3], 3);                          /* 1 ms */
    ck_assert_int_eq(e.le[4], 6);                          /* 2.5 ms */
    ck_assert_int_eq(e.le[SC_METRICS_DUR_BUCKETS - 1], 6); /* the 20 s ones only in +Inf */
    sc_metrics_endpoint(m, 3, &e);
    ck_assert_int_eq(e.count, 3);
    sc_metrics_endpoint(m, 2, &e);
    ck_assert_int_eq(e.count, 0);
    sc_metrics_similarity_t sim;
    sc_metrics_similarities(m, 1, &sim);
    ck_assert_int_eq(sim.count, 3);
    ck_assert(fabs(sim.sum - 3 * 0.93) < 1e-9);
    ck_assert_int_eq(sim.le[9], 0);  /* 0.925 */
    ck_assert_int_eq(sim.le[10], 3); /* 0.925 < 0.93 <= 0.95: counted from 0.95 on */
    ck_assert_int_eq(sim.le[SC_METRICS_SIM_BUCKETS - 1], 3);
    sc_metrics_totals_t t;
    sc_metrics_totals(m, &t);
    ck_assert_int_eq(t.lookups[SC_LR_MISS], 3);
    ck_assert_int_eq(t.prompt_tokens_saved, 30);
    ck_assert_int_eq(t.completion_tokens_saved, 60);
    ck_assert_uint_eq(t.usage.saved_pico, 1000);
    ck_assert_uint_eq(t.usage.validation_pico, 500);
    ck_assert_int_eq(t.requests, 12);
    sc_metrics_destroy(m);
}
END_TEST

typedef struct {
    char seen[8][16];
    uint64_t hits[8], other;
    int n;
} lookups_seen_t;

static void see_lookup(void *arg, const char *ns, size_t len, const uint64_t v[SC_LR_COUNT])
{
    lookups_seen_t *l = arg;
    if (!ns) {
        l->other = v[SC_LR_EXACT_HIT];
        return;
    }
    snprintf(l->seen[l->n], sizeof(l->seen[0]), "%.*s", (int)len, ns);
    l->hits[l->n++] = v[SC_LR_EXACT_HIT];
}

START_TEST(label_values_past_the_cap_are_other)
{
    sc_metrics_t *m;
    ck_assert_int_eq(sc_metrics_create(&m, 2, 1, 2), 0);
    const char *ns[] = {"a", "b", "c", "d", "a"};
    for (int i = 0; i < 5; i++)
        sc_metrics_lookup(sc_metrics_shard(m, i % 2), ns[i], 1, SC_LR_EXACT_HIT);
    lookups_seen_t l = {0};
    sc_metrics_foreach_lookups(m, see_lookup, &l);
    ck_assert_int_eq(l.n, 2);
    ck_assert_str_eq(l.seen[0], "a");
    ck_assert_int_eq(l.hits[0], 2);
    ck_assert_str_eq(l.seen[1], "b");
    ck_assert_int_eq(l.other, 2); /* c and d */
    sc_buf_t b = {0};
    render_shards(m, &b);
    ck_assert_ptr_nonnull(
        strstr(b.data, "semcached_lookups_total{namespace=\"_other\",result=\"exact_hit\"} 2\n"));
    ck_assert_ptr_null(strstr(b.data, "namespace=\"c\""));
    /* "_other" shows only counted results. */
    ck_assert_ptr_null(
        strstr(b.data, "semcached_lookups_total{namespace=\"_other\",result=\"miss\"}"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "semcached_lookups_total{namespace=\"b\",result=\"miss\"} 0\n"));
    sc_buf_free(&b);
    sc_metrics_destroy(m);
}
END_TEST

/* ---- the text exposition ------------------------------------------------- */

typedef struct {
    char name[96];
    char type[32];
    int help, samples;
} family_t;

static family_t *find_family(family_t *f, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(f[i].name, name) == 0)
            return &f[i];
    return NULL;
}

/* Parses '{k="v",...}' at 'p'; returns the end, or NULL if malformed. */
static const char *parse_labels(const char *p)
{
    if (*p != '{')
        return p;
    p++;
    while (*p != '}') {
        if (!(isalpha((unsigned char)*p) || *p == '_'))
            return NULL;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        if (p[0] != '=' || p[1] != '"')
            return NULL;
        p += 2;
        while (*p != '"') {
            if (*p == '\n' || !*p)
                return NULL;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return NULL;
                p++;
            }
            p++;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

/* Checks the exposition; returns the number of samples. */
static int check_exposition(const char *text)
{
    family_t fam[128];
    int n_fam = 0, samples = 0;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        ck_assert_msg(eol != NULL, "the text must end with a newline");
        char l[1024];
        snprintf(l, sizeof(l), "%.*s", (int)(eol - line), line);
        line = eol + 1;
        char name[96], rest[512];
        if (strncmp(l, "# HELP ", 7) == 0) {
            ck_assert_int_eq(sscanf(l + 7, "%95s %511[^\n]", name, rest), 2);
            ck_assert_msg(!find_family(fam, n_fam, name), "HELP twice for %s", name);
            ck_assert_int_lt(n_fam, 128);
            family_t *f = &fam[n_fam++];
            snprintf(f->name, sizeof(f->name), "%s", name);
            f->help = 1;
            f->type[0] = '\0';
            f->samples = 0;
            continue;
        }
        if (strncmp(l, "# TYPE ", 7) == 0) {
            char type[32];
            ck_assert_int_eq(sscanf(l + 7, "%95s %31s", name, type), 2);
            family_t *f = find_family(fam, n_fam, name);
            ck_assert_msg(f && !f->type[0] && !f->samples, "TYPE of %s without HELP, twice or late",
                          name);
            ck_assert_msg(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                              !strcmp(type, "histogram"),
                          "type %s", type);
            snprintf(f->type, sizeof(f->type), "%s", type);
            continue;
        }
        ck_assert_msg(l[0] != '#', "stray comment: %s", l);
        /* name{labels} value */
        const char *p = l;
        ck_assert_msg(isalpha((unsigned char)*p) || *p == '_', "sample: %s", l);
        while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
            p++;
        snprintf(name, sizeof(name), "%.*s", (int)(p - l), l);
        p = parse_labels(p);
        ck_assert_msg(p && *p == ' ', "labels: %s", l);
        char *end;
        strtod(p + 1, &end);
        ck_assert_msg(end != p + 1 && *end == '\0', "value: %s", l);
        family_t *f = find_family(fam, n_fam, name);
        if (!f) { /* a histogram's series */
            char base[96];
            snprintf(base, sizeof(base), "%s", name);
            char *suffix = strrchr(base, '_');
            ck_assert_msg(suffix, "no family for %s", name);
            ck_assert(!strcmp(suffix, "_bucket") || !strcmp(suffix, "_sum") ||
                      !strcmp(suffix, "_count"));
            *suffix = '\0';
            f = find_family(fam, n_fam, base);
            ck_assert_msg(f && !strcmp(f->type, "histogram"), "no histogram for %s", name);
        }
        ck_assert_msg(f->type[0], "sample of %s before its TYPE", name);
        f->samples++;
        samples++;
    }
    for (int i = 0; i < n_fam; i++)
        ck_assert_msg(fam[i].type[0], "family %s has no TYPE", fam[i].name);
    return samples;
}

START_TEST(the_exposition_parses)
{
    tctx_t t;
    tctx_open(&t, 2, NULL);
    sc_ctx_t *ctx = &t.ctx;
    sc_metrics_shard_t *sh = t.w.metrics;
    const char *odd = "we\"ird\\ns\n";
    for (int ep = 0; ep < SC_EP_COUNT; ep++)
        sc_metrics_request(sh, ep, 200 + ep, 1000u * (uint64_t)ep);
    sc_metrics_lookup(sh, odd, strlen(odd), SC_LR_MISS);
    sc_metrics_lookup(sh, "b", 1, SC_LR_SEMANTIC_HIT);
    sc_metrics_lookup(sh, "c", 1, SC_LR_EXACT_HIT);
    static const char table[] = "{\"taken\":\"2026-12-01\",\"sources\":[\"test\"],\"models\":"
                                "{\"gpt\":{\"input\":2,\"output\":10}}}";
    char err[128];
    ck_assert_int_eq(sc_prices_parse(&ctx->prices, table, strlen(table), err, sizeof(err)), 0);
    sc_savings_hit(&t.w, "b", 1, "gpt", 3, 5, 6);           /* 5 x $2 + 6 x $10 per M */
    sc_savings_hit(&t.w, "b", 1, "llama", 5, 40, 2);        /* no price: tokens only */
    sc_savings_validation(ctx, "b", 1, "gpt", 3, 100, 50);  /* 100 x $2 + 50 x $10 per M */
    sc_savings_validation(ctx, "b", 1, "llama", 5, 10, 10); /* (2 label values: the cap) */
    sc_metrics_similarity(sh, 1, 0.97);
    sc_quality_record(ctx->quality, "b", SC_MATCH_SEMANTIC, SC_VERDICT_WRONG);
    atomic_store(&ctx->semantic_skipped[SC_SKIP_TIMEOUT], 4);
    atomic_store(&ctx->n_conns, 3);
    sc_buf_t b = {0};
    render_prometheus(ctx, &b);
    int samples = check_exposition(b.data);
    ck_assert_int_gt(samples, 100);
    ck_assert_ptr_nonnull(strstr(
        b.data, "semcached_lookups_total{namespace=\"we\\\"ird\\\\ns\\n\",result=\"miss\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "semcached_lookups_total{namespace=\"_other\",result=\"exact_hit\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "semcached_requests_total{endpoint=\"lookup\",code=\"200\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "semcached_requests_total{endpoint=\"other\",code=\"other\"} 1\n"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "semcached_semantic_skipped_total{reason=\"timeout\"} 4\n"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "semcached_semantic_skipped_total{reason=\"embedder_mismatch\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(
        b.data,
        "semcached_validations_total{namespace=\"b\",match=\"semantic\",verdict=\"wrong\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(
        b.data,
        "semcached_tokens_saved_total{namespace=\"b\",model=\"gpt\",kind=\"completion\"} 6\n"));
    ck_assert_ptr_nonnull(strstr(
        b.data, "semcached_cost_saved_dollars_total{namespace=\"b\",model=\"gpt\"} 0.00007\n"));
    ck_assert_ptr_null(
        strstr(b.data, "semcached_cost_saved_dollars_total{namespace=\"b\",model=\"llama\"}"));
    ck_assert_ptr_nonnull(strstr(
        b.data,
        "semcached_unpriced_tokens_total{namespace=\"b\",model=\"llama\",kind=\"saved\"} 42\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "semcached_validation_cost_dollars_total{namespace=\"b\","
                                         "model=\"gpt\"} 0.0007\n"));
    ck_assert_ptr_nonnull(
        strstr(b.data, "semcached_validation_calls_total{namespace=\"b\",model=\"llama\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "semcached_unpriced_tokens_total{namespace=\"b\","
                                         "model=\"llama\",kind=\"validation\"} 20\n"));
    sc_buf_reset(&b);
    sc_savings_ns_json(ctx, "b", 1, &b); /* net = 0.00007 - 0.0007 */
    ck_assert_str_eq(b.data,
                     "{\"saved_usd\":0.00007,\"validation_usd\":0.0007,\"net_usd\":-0.00063,"
                     "\"hit_tokens\":53,\"unpriced_hit_tokens\":42,\"validation_calls\":2,"
                     "\"validation_tokens\":170,\"unpriced_validation_tokens\":20}");
    sc_buf_reset(&b);
    sc_savings_header(ctx, "gpt-4", 5, 5, 6, &b);
    ck_assert_str_eq(b.data, "X-Semcached-Saved-Usd: 0.00007\r\n");
    sc_buf_reset(&b);
    sc_savings_header(ctx, "llama", 5, 5, 6, &b); /* no price: no header */
    ck_assert_uint_eq(b.len, 0);
    sc_prices_free(ctx->prices);
    ctx->prices = NULL;
    render_prometheus(ctx, &b);
    ck_assert_ptr_nonnull(strstr(b.data, "semcached_connections 3\n"));
    ck_assert_ptr_nonnull(strstr(b.data, "semcached_entries 0\n"));
    sc_buf_free(&b);
    tctx_close(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, shards_sum_and_buckets_accumulate);
    tcase_add_test(tc, label_values_past_the_cap_are_other);
    tcase_add_test(tc, the_exposition_parses);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
