/* prices.c -- the price table: strict parsing (a bad table is refused whole,
 * naming the field), longest-prefix lookup over keys kept sorted (each
 * boundary of the name is one binary search, longest first), integer costs
 * in pico-dollars, and the usage objects of the OpenAI and Anthropic APIs.
 * The default table is the bytes of contrib/prices.json that the Makefile
 * compiles into the library (build/gen/prices_json.c). */
#define _GNU_SOURCE
#include "sc_prices.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 128
#define PRICE_MAX 1000000.0 /* dollars per million tokens */

/* Generated from contrib/prices.json by the Makefile. */
extern const unsigned char sc_prices_json[];
extern const size_t sc_prices_json_len;

typedef struct {
    char *key; /* lower-case */
    sc_price_t price;
} entry_t;

struct sc_prices_s {
    entry_t *e;
    size_t n;
    char taken[11];
};

static int by_key(const void *a, const void *b)
{
    return strcmp(((const entry_t *)a)->key, ((const entry_t *)b)->key);
}

static int fail(char *err, size_t cap, const char *fmt, const char *field)
{
    snprintf(err, cap, fmt, field);
    return SC_EINVAL;
}

/* A price in dollars per million tokens -> micro-dollars per million. */
static int micro(json_t *v, uint64_t *out)
{
    if (!json_is_number(v))
        return -1;
    double x = json_number_value(v);
    if (!(x >= 0 && x <= PRICE_MAX))
        return -1;
    double m = x * 1e6, r = nearbyint(m);
    if (fabs(m - r) > 1e-3) /* more than 6 decimals */
        return -1;
    *out = (uint64_t)r;
    return 0;
}

static int valid_date(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return 0;
    int month = atoi(s + 5), day = atoi(s + 8);
    return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

static int parse_model(const char *name, json_t *v, entry_t *e, char *err, size_t cap)
{
    char field[KEY_MAX + 64];
    size_t nl = strlen(name);
    int bad_name = nl == 0 || nl > KEY_MAX;
    for (size_t i = 0; i < nl && !bad_name; i++)
        bad_name = (unsigned char)name[i] <= ' ' || name[i] == 0x7f;
    if (bad_name)
        return fail(err, cap, "models: \"%.128s\" is not a model name (1-128 bytes, no spaces)",
                    name);
    if (!json_is_object(v))
        return fail(err, cap, "models.%s: must be an object", name);
    static const char *const fields[] = {"input", "cached_input", "cache_write", "output"};
    uint64_t *dst[] = {&e->price.input, &e->price.cached_input, &e->price.cache_write,
                       &e->price.output};
    int have[4] = {0};
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        int f = 0;
        while (f < 4 && strcmp(k, fields[f]) != 0)
            f++;
        snprintf(field, sizeof(field), "models.%s.%.32s", name, k);
        if (f == 4 && strcmp(k, "source") == 0) { /* where this row was read: kept in the file */
            if (!json_is_string(x) || json_string_length(x) == 0)
                return fail(err, cap, "%s: must be a non-empty string", field);
            continue;
        }
        if (f == 4)
            return fail(err, cap,
                        "%s: unknown field (input, cached_input, cache_write, output, source)",
                        field);
        if (micro(x, dst[f]))
            return fail(err, cap,
                        "%s: must be a number >= 0 and <= 1000000 with at most 6 decimals", field);
        have[f] = 1;
    }
    if (!have[0] || !have[3]) {
        snprintf(field, sizeof(field), "models.%s.%s", name, have[0] ? "output" : "input");
        return fail(err, cap, "%s: missing", field);
    }
    if (!have[1])
        e->price.cached_input = e->price.input;
    if (!have[2])
        e->price.cache_write = e->price.input;
    if (!(e->key = strdup(name)))
        return SC_ENOMEM;
    for (char *c = e->key; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return 0;
}

static int parse_header(json_t *root, sc_prices_t *p, char *err, size_t cap)
{
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (strcmp(k, "note") && strcmp(k, "currency") && strcmp(k, "taken") &&
            strcmp(k, "sources") && strcmp(k, "models"))
            return fail(err, cap, "%.64s: unknown field (note, currency, taken, sources, models)",
                        k);
    }
    json_t *cur = json_object_get(root, "currency"), *note = json_object_get(root, "note");
    if (cur && !(json_is_string(cur) && strcmp(json_string_value(cur), "USD") == 0))
        return fail(err, cap, "%s: must be \"USD\"", "currency");
    if (note && !json_is_string(note))
        return fail(err, cap, "%s: must be a string", "note");
    json_t *taken = json_object_get(root, "taken");
    if (!json_is_string(taken) || !valid_date(json_string_value(taken)))
        return fail(err, cap, "%s: must be the date the prices were taken, YYYY-MM-DD", "taken");
    memcpy(p->taken, json_string_value(taken), 11);
    json_t *src = json_object_get(root, "sources");
    if (!json_is_array(src) || json_array_size(src) == 0)
        return fail(err, cap, "%s: must be a non-empty array of URLs or references", "sources");
    size_t i;
    json_array_foreach(src, i, v)
    {
        if (!json_is_string(v) || json_string_length(v) == 0)
            return fail(err, cap, "%s: every source must be a non-empty string", "sources");
    }
    json_t *models = json_object_get(root, "models");
    if (!json_is_object(models) || json_object_size(models) == 0)
        return fail(err, cap, "%s: must be a non-empty object of model name -> prices", "models");
    return 0;
}

int sc_prices_parse(sc_prices_t **out, const char *json, size_t len, char *err, size_t cap)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, cap, "line %d: %s", je.line, je.text);
        return SC_EINVAL;
    }
    sc_prices_t *p = calloc(1, sizeof(*p));
    int rc = p ? 0 : SC_ENOMEM;
    if (!rc && !json_is_object(root))
        rc = fail(err, cap, "%s: the table must be a JSON object", "(top level)");
    if (!rc)
        rc = parse_header(root, p, err, cap);
    json_t *models = json_object_get(root, "models");
    if (!rc && !(p->e = calloc(json_object_size(models), sizeof(entry_t))))
        rc = SC_ENOMEM;
    const char *name;
    json_t *v;
    if (!rc) {
        json_object_foreach(models, name, v)
        {
            if ((rc = parse_model(name, v, &p->e[p->n], err, cap)) != 0)
                break;
            p->n++;
        }
    }
    if (!rc) {
        qsort(p->e, p->n, sizeof(entry_t), by_key);
        for (size_t i = 1; i < p->n && !rc; i++)
            if (strcmp(p->e[i - 1].key, p->e[i].key) == 0)
                rc = fail(err, cap, "models.%s: listed twice (names compare without case)",
                          p->e[i].key);
    }
    json_decref(root);
    if (rc) {
        sc_prices_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int sc_prices_load(sc_prices_t **out, const char *path, char *err, size_t cap)
{
    sc_buf_t b = {0};
    int rc = sc_read_file(path, 16u << 20, &b);
    if (rc < 0 && rc > -4096) {
        sc_buf_free(&b);
        snprintf(err, cap, "%s: cannot open", path);
        return SC_ENOTFOUND;
    }
    char inner[384] = "";
    if (!rc)
        rc = sc_prices_parse(out, b.data ? b.data : "", b.len, inner, sizeof(inner));
    else
        snprintf(inner, sizeof(inner), "%s",
                 rc == SC_ETOOBIG ? "larger than 16 MiB" : "out of memory");
    if (rc)
        snprintf(err, cap, "%s: %s", path, inner);
    sc_buf_free(&b);
    return rc;
}

int sc_prices_default(sc_prices_t **out, char *err, size_t cap)
{
    char inner[384] = "";
    int rc = sc_prices_parse(out, (const char *)sc_prices_json, sc_prices_json_len, inner,
                             sizeof(inner));
    if (rc)
        snprintf(err, cap, "built-in price table: %s", inner);
    return rc;
}

void sc_prices_free(sc_prices_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->e[i].key);
    free(p->e);
    free(p);
}

const char *sc_prices_taken(const sc_prices_t *p)
{
    return p->taken;
}

size_t sc_prices_count(const sc_prices_t *p)
{
    return p->n;
}

static const entry_t *find_exact(const sc_prices_t *p, const char *lower)
{
    entry_t probe = {(char *)lower, {0, 0, 0, 0}};
    return bsearch(&probe, p->e, p->n, sizeof(entry_t), by_key);
}

static const entry_t *longest_prefix(const sc_prices_t *p, const char *model, size_t len)
{
    char lower[KEY_MAX + 1];
    size_t m = len < KEY_MAX ? len : KEY_MAX;
    for (size_t i = 0; i < m; i++)
        lower[i] = (char)tolower((unsigned char)model[i]);
    /* Longest first: the whole name, then each prefix cut before a boundary. */
    for (size_t cut = m; cut > 0; cut--) {
        if (cut < len && model[cut] != '-' && model[cut] != ':' && model[cut] != '@')
            continue;
        lower[cut] = '\0';
        const entry_t *e = find_exact(p, lower);
        if (e)
            return e;
    }
    return NULL;
}

const sc_price_t *sc_prices_lookup(const sc_prices_t *p, const char *model, size_t len,
                                   const char **key)
{
    const entry_t *e = p && model ? longest_prefix(p, model, len) : NULL;
    if (!e && model) {
        const char *slash = memrchr(model, '/', len);
        if (slash)
            e = longest_prefix(p, slash + 1, len - (size_t)(slash + 1 - model));
    }
    if (key)
        *key = e ? e->key : NULL;
    return e ? &e->price : NULL;
}

static uint64_t mul_sat(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t sc_price_cost(const sc_price_t *pr, const sc_usage_t *u)
{
    /* micro-dollars per 10^6 tokens x tokens = pico-dollars, exactly */
    uint64_t c = mul_sat(pr->input, u->input);
    c = add_sat(c, mul_sat(pr->cached_input, u->cached_input));
    c = add_sat(c, mul_sat(pr->cache_write, u->cache_write));
    return add_sat(c, mul_sat(pr->output, u->output));
}

int sc_prices_cost(const sc_prices_t *p, const char *model, size_t len, const sc_usage_t *u,
                   uint64_t *pico)
{
    const sc_price_t *pr = sc_prices_lookup(p, model, len, NULL);
    *pico = pr ? sc_price_cost(pr, u) : 0;
    return pr ? 0 : SC_ENOTFOUND;
}

double sc_pico_to_usd(uint64_t pico)
{
    return (double)(pico / 1000000000000ull) + (double)(pico % 1000000000000ull) * 1e-12;
}

int sc_usd_format(uint64_t pico, char *buf, size_t cap)
{
    char frac[13];
    snprintf(frac, sizeof(frac), "%012llu", (unsigned long long)(pico % 1000000000000ull));
    int fl = 12;
    while (fl > 0 && frac[fl - 1] == '0')
        fl--;
    int n = snprintf(buf, cap, "%llu%s%.*s", (unsigned long long)(pico / 1000000000000ull),
                     fl ? "." : "", fl, frac);
    return n < 0 || (size_t)n >= cap ? SC_ETOOBIG : n;
}

/* A token count: absent is 0; present must be a non-negative integer. */
static int count(json_t *o, const char *name, uint64_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return SC_EINVAL;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int usage_of(json_t *u, sc_usage_t *out)
{
    uint64_t in = 0, cached = 0, written = 0, outp = 0;
    int rc;
    json_t *d;
    if (json_object_get(u, "prompt_tokens")) { /* OpenAI chat completions and embeddings */
        rc = count(u, "prompt_tokens", &in) | count(u, "completion_tokens", &outp);
        if (json_is_object(d = json_object_get(u, "prompt_tokens_details")))
            rc |= count(d, "cached_tokens", &cached);
    } else if (json_is_object(d = json_object_get(u, "input_tokens_details"))) { /* Responses */
        rc = count(u, "input_tokens", &in) | count(u, "output_tokens", &outp) |
             count(d, "cached_tokens", &cached);
    } else { /* Anthropic: input_tokens already leaves out cache reads and writes */
        rc = count(u, "input_tokens", &in) | count(u, "output_tokens", &outp) |
             count(u, "cache_read_input_tokens", &cached) |
             count(u, "cache_creation_input_tokens", &written);
        in += cached + written;
    }
    if (rc || cached + written > in) /* OpenAI's counts include the cached tokens */
        return SC_EINVAL;
    out->input = in - cached - written;
    out->cached_input = cached;
    out->cache_write = written;
    out->output = outp;
    return 0;
}

int sc_usage_parse(const char *json, size_t len, sc_usage_t *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = json_loadb(json, len, 0, NULL);
    if (!root)
        return SC_EINVAL;
    json_t *u = json_is_object(root) ? json_object_get(root, "usage") : NULL;
    if (!u) { /* a Responses API stream's last event nests it in "response" */
        json_t *r = json_is_object(root) ? json_object_get(root, "response") : NULL;
        u = json_is_object(r) ? json_object_get(r, "usage") : NULL;
    }
    int rc = !u || json_is_null(u) ? SC_ENOTFOUND
             : !json_is_object(u)  ? SC_EINVAL
                                   : usage_of(u, out);
    json_decref(root);
    return rc;
}
