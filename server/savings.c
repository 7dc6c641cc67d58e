/* savings.c -- prices hits and validation calls with the price table and
 * renders the money counters. Money stays integer (pico-dollars) from the
 * price table to the counters; it becomes a decimal only when written out
 * (sc_usd_format: exact, so /metrics and /v1/stats add up to the cent and
 * below). A model without a price is counted in tokens only. */
#define _GNU_SOURCE
#include "savings.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sc_prices.h"

/* prompt x input + completion x output: the call as a whole, no cache. */
static int price_of(const sc_ctx_t *ctx, const char *model, size_t len, uint64_t prompt,
                    uint64_t completion, uint64_t *pico)
{
    sc_usage_t u = {.input = prompt, .output = completion};
    *pico = 0;
    return ctx->prices && len && sc_prices_cost(ctx->prices, model, len, &u, pico) == 0;
}

void sc_savings_hit(sc_worker_t *w, const char *ns, size_t ns_len, const char *model,
                    size_t model_len, uint64_t prompt_tokens, uint64_t completion_tokens)
{
    uint64_t pico;
    int priced = price_of(w->ctx, model, model_len, prompt_tokens, completion_tokens, &pico);
    sc_metrics_saved(w->metrics, ns, ns_len, model, model_len, prompt_tokens, completion_tokens,
                     priced, pico);
}

void sc_savings_validation(sc_ctx_t *ctx, const char *ns, size_t ns_len, const char *model,
                           size_t model_len, uint64_t prompt_tokens, uint64_t completion_tokens)
{
    uint64_t pico;
    int priced = price_of(ctx, model, model_len, prompt_tokens, completion_tokens, &pico);
    sc_metrics_validation_cost(ctx->metrics, ns, ns_len, model, model_len,
                               prompt_tokens + completion_tokens, priced, pico);
}

/* The "model" string of JSON 'body', copied into 'out' ("" when none). */
static void model_of(const char *body, size_t len, char *out, size_t cap)
{
    out[0] = '\0';
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *m = json_object_get(root, "model");
    if (json_is_string(m))
        snprintf(out, cap, "%s", json_string_value(m));
    json_decref(root);
}

void sc_savings_validation_answer(sc_ctx_t *ctx, const char *ns, size_t ns_len, const char *request,
                                  size_t rlen, const char *answer, size_t alen)
{
    char model[256];
    model_of(answer, alen, model, sizeof(model));
    if (!model[0])
        model_of(request, rlen, model, sizeof(model));
    sc_usage_t u;
    if (!answer || sc_usage_parse(answer, alen, &u) != 0)
        memset(&u, 0, sizeof(u));
    uint64_t tokens = u.input + u.cached_input + u.cache_write + u.output, pico = 0;
    const sc_price_t *pr =
        ctx->prices && model[0] ? sc_prices_lookup(ctx->prices, model, strlen(model), NULL) : NULL;
    if (pr)
        pico = sc_price_cost(pr, &u);
    sc_metrics_validation_cost(ctx->metrics, ns, ns_len, model, strlen(model), tokens, pr != NULL,
                               pico);
}

void sc_savings_header(const sc_ctx_t *ctx, const char *model, size_t model_len,
                       uint64_t prompt_tokens, uint64_t completion_tokens, sc_buf_t *out)
{
    uint64_t pico;
    char usd[32];
    if ((prompt_tokens || completion_tokens) &&
        price_of(ctx, model, model_len, prompt_tokens, completion_tokens, &pico) &&
        sc_usd_format(pico, usd, sizeof(usd)) > 0)
        sc_buf_printf(out, "X-Semcached-Saved-Usd: %s\r\n", usd);
}

/* ---- rendering ------------------------------------------------------------ */

static void put_usd(sc_buf_t *b, uint64_t pico)
{
    char usd[32];
    sc_usd_format(pico, usd, sizeof(usd));
    sc_buf_puts(b, usd);
}

/* One family's rows: 'which' picks the value(s) of a namespace+model. */
typedef struct {
    sc_buf_t *b;
    void (*label)(sc_buf_t *b, const char *v, size_t len);
    const char *name;
    int which;
} family_t;

enum { F_TOKENS, F_SAVED_USD, F_VALID_CALLS, F_VALID_USD, F_UNPRICED, F_COUNT };

static void row_head(family_t *f, const char *ns, size_t ns_len, const char *model,
                     size_t model_len)
{
    sc_buf_printf(f->b, "%s{namespace=\"", f->name);
    if (ns) {
        f->label(f->b, ns, ns_len);
        sc_buf_puts(f->b, "\",model=\"");
        f->label(f->b, model, model_len);
    } else {
        sc_buf_puts(f->b, "_other\",model=\"_other");
    }
    sc_buf_puts(f->b, "\"");
}

static void family_row(void *arg, const char *ns, size_t ns_len, const char *model,
                       size_t model_len, const sc_metrics_usage_t *u)
{
    family_t *f = arg;
    const uint64_t pairs[F_COUNT][2] = {
        [F_TOKENS] = {u->prompt_tokens, u->completion_tokens},
        [F_SAVED_USD] = {u->saved_pico, 0},
        [F_VALID_CALLS] = {u->validation_calls, 0},
        [F_VALID_USD] = {u->validation_pico, 0},
        [F_UNPRICED] = {u->saved_unpriced_tokens, u->validation_unpriced_tokens}};
    static const char *const kinds[F_COUNT][2] = {
        [F_TOKENS] = {"prompt", "completion"}, [F_UNPRICED] = {"saved", "validation"}};
    int n = kinds[f->which][0] ? 2 : 1;
    for (int k = 0; k < n; k++) {
        uint64_t v = pairs[f->which][k];
        if (!v && (!ns || f->which != F_TOKENS))
            continue; /* money rows only where there is money (or a priced model) */
        row_head(f, ns, ns_len, model, model_len);
        if (n == 2)
            sc_buf_printf(f->b, ",kind=\"%s\"", kinds[f->which][k]);
        sc_buf_puts(f->b, "} ");
        if (f->which == F_SAVED_USD || f->which == F_VALID_USD)
            put_usd(f->b, v);
        else
            sc_buf_printf(f->b, "%llu", (unsigned long long)v);
        sc_buf_puts(f->b, "\n");
    }
}

void sc_savings_prometheus(sc_metrics_t *m, sc_buf_t *b,
                           void (*label)(sc_buf_t *b, const char *v, size_t len))
{
    static const char *const fam[F_COUNT][2] = {
        [F_TOKENS] = {"semcached_tokens_saved_total",
                      "Prompt and completion tokens of served hits, from the usage stored with "
                      "each entry."},
        [F_SAVED_USD] = {"semcached_cost_saved_dollars_total",
                         "What the calls served hits replaced would have cost at list price "
                         "(prompt x input + completion x output, price table --prices)."},
        [F_VALID_CALLS] = {"semcached_validation_calls_total",
                           "Paid validation calls (upstream re-inferences, judge calls)."},
        [F_VALID_USD] = {"semcached_validation_cost_dollars_total",
                         "What paid validation calls cost, from their usage and the price table."},
        [F_UNPRICED] = {"semcached_unpriced_tokens_total",
                        "Tokens of models the price table has no price for (counted in no "
                        "dollar figure): of served hits (saved) and of validation calls."}};
    for (int i = 0; i < F_COUNT; i++) {
        sc_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", fam[i][0], fam[i][1], fam[i][0]);
        family_t f = {b, label, fam[i][0], i};
        sc_metrics_foreach_usage(m, family_row, &f);
    }
}

static void usage_json(const sc_metrics_usage_t *u, sc_buf_t *b)
{
    uint64_t saved = u->saved_pico, spent = u->validation_pico;
    sc_buf_puts(b, "{\"saved_usd\":");
    put_usd(b, saved);
    sc_buf_puts(b, ",\"validation_usd\":");
    put_usd(b, spent);
    sc_buf_puts(b, ",\"net_usd\":");
    if (spent > saved)
        sc_buf_puts(b, "-");
    put_usd(b, spent > saved ? spent - saved : saved - spent);
    sc_buf_printf(b,
                  ",\"hit_tokens\":%llu,\"unpriced_hit_tokens\":%llu,\"validation_calls\":%llu,"
                  "\"validation_tokens\":%llu,\"unpriced_validation_tokens\":%llu}",
                  (unsigned long long)(u->prompt_tokens + u->completion_tokens),
                  (unsigned long long)u->saved_unpriced_tokens,
                  (unsigned long long)u->validation_calls, (unsigned long long)u->validation_tokens,
                  (unsigned long long)u->validation_unpriced_tokens);
}

void sc_savings_ns_json(sc_ctx_t *ctx, const char *ns, size_t ns_len, sc_buf_t *b)
{
    sc_metrics_usage_t u;
    sc_metrics_ns_usage(ctx->metrics, ns, ns_len, &u);
    usage_json(&u, b);
}

/* Each namespace once (rows come per namespace+model, in first-seen order). */
typedef struct {
    sc_ctx_t *ctx;
    sc_buf_t *b;
    char **seen;
    size_t n, cap;
} ns_list_t;

static void ns_once(void *arg, const char *ns, size_t ns_len, const char *model, size_t model_len,
                    const sc_metrics_usage_t *u)
{
    ns_list_t *l = arg;
    (void)model, (void)model_len, (void)u;
    if (!ns)
        return;
    for (size_t i = 0; i < l->n; i++)
        if (strlen(l->seen[i]) == ns_len && memcmp(l->seen[i], ns, ns_len) == 0)
            return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **s = realloc(l->seen, cap * sizeof(*s));
        if (!s)
            return;
        l->seen = s, l->cap = cap;
    }
    if ((l->seen[l->n] = strndup(ns, ns_len)) == NULL)
        return;
    sc_buf_puts(l->b, l->n++ ? "," : "");
    sc_buf_json_str(l->b, ns, ns_len);
    sc_buf_puts(l->b, ":");
    sc_savings_ns_json(l->ctx, ns, ns_len, l->b);
}

void sc_savings_stats_json(sc_ctx_t *ctx, sc_buf_t *b)
{
    sc_metrics_totals_t t;
    sc_metrics_totals(ctx->metrics, &t);
    sc_buf_puts(b, "\"savings\":{\"prices_taken\":");
    if (ctx->prices)
        sc_buf_printf(b, "\"%s\"", sc_prices_taken(ctx->prices));
    else
        sc_buf_puts(b, "null");
    sc_buf_puts(b, ",\"total\":");
    usage_json(&t.usage, b);
    sc_buf_puts(b, ",\"namespaces\":{");
    ns_list_t l = {ctx, b, NULL, 0, 0};
    sc_metrics_foreach_usage(ctx->metrics, ns_once, &l);
    for (size_t i = 0; i < l.n; i++)
        free(l.seen[i]);
    free(l.seen);
    sc_buf_puts(b, "}}");
}
