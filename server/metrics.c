/* metrics.c -- sharded counters and histograms, summed on demand (the text
 * exposition is api_stats.c's). Label values from requests go through a
 * registry (mutex-guarded, append-only, capped) fronted by a per-shard
 * direct-mapped cache, so the hot path takes no lock after a namespace's
 * first request on a thread. */
#define _GNU_SOURCE
#include "sc_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

const int sc_metrics_status_codes[SC_METRICS_STATUS_SLOTS - 1] = {
    200, 201, 204, 400, 401, 403, 404, 405, 408, 409, 411, 413,
    415, 422, 429, 431, 500, 502, 503, 504, 505, 507}; /* 502 and 504: the proxy's upstream
                                                          unreachable or late */
#define N_CODES SC_METRICS_STATUS_SLOTS

const double sc_metrics_dur_le[SC_METRICS_DUR_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define N_BUCKETS SC_METRICS_DUR_BUCKETS

const double sc_metrics_sim_le[SC_METRICS_SIM_BUCKETS] = {
    0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.875, 0.9, 0.925, 0.95, 0.975, 0.99, 1};
#define N_SIM_BUCKETS SC_METRICS_SIM_BUCKETS

const double sc_metrics_up_le[SC_METRICS_UP_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                        1,     2.5,  5,     10,   30,  60,   300};
#define N_UP SC_METRICS_UP_BUCKETS
#define N_PAPI SC_METRICS_PROXY_APIS
#define N_EP SC_METRICS_MAX_ENDPOINTS

#define CACHE_SLOTS 64

/* Per namespace+model: what served hits saved (a loop's shard) and what
 * paid validation calls cost (sc_metrics_t.validation, any thread). */
typedef enum { SV_PROMPT, SV_COMPLETION, SV_PICO, SV_UNPRICED, N_SAVED } saved_slot_t;
typedef enum { VC_CALLS, VC_TOKENS, VC_PICO, VC_UNPRICED, N_VALID } valid_slot_t;

typedef _Atomic uint64_t counter_t;

/* A label registry: id -> value, append-only so readers may hold pointers. */
typedef struct {
    pthread_mutex_t mu;
    char **values; /* [cap]; set once, never freed before destroy */
    size_t *lens;
    _Atomic size_t n;
    size_t cap; /* the overflow id is 'cap' ("_other") */
} registry_t;

typedef struct {
    const char *value; /* points into the registry */
    size_t len;
    int id;
} cache_slot_t;

struct sc_metrics_shard_s {
    struct sc_metrics_s *owner; /* for the label registries */
    counter_t requests[N_EP][N_CODES];
    counter_t dur_bucket[N_EP][N_BUCKETS];
    counter_t dur_count[N_EP];
    counter_t dur_sum_ns[N_EP];
    counter_t sim_bucket[2][N_SIM_BUCKETS]; /* [miss, hit] */
    counter_t sim_count[2];
    _Atomic double sim_sum[2];
    counter_t proxy[N_PAPI][SC_METRICS_PROXY_RESULTS];
    counter_t up_bucket[2][N_PAPI][N_UP]; /* [ttfb, total] */
    counter_t up_count[2][N_PAPI];
    counter_t up_sum_ns[2][N_PAPI];
    counter_t *lookups; /* [(cap+1) * SC_LR_COUNT] by namespace id */
    counter_t *tokens;  /* [(cap+1) * N_SAVED] by namespace+model id (saved_slot_t) */
    counter_t *guards;  /* [(cap+1) * SC_METRICS_GUARD_REASONS] by namespace id */
    cache_slot_t ns_cache[CACHE_SLOTS];
    cache_slot_t nsm_cache[CACHE_SLOTS];
    char pad[64]; /* keeps neighbouring shards off this cache line */
};

struct sc_metrics_s {
    int n_shards;
    int n_endpoints;
    sc_metrics_shard_t *shards;
    registry_t ns;         /* namespace values */
    registry_t nsm;        /* "namespace\0model" values */
    counter_t *validation; /* [(cap+1) * N_VALID] by namespace+model id; atomic adds */
};

/* Single-writer increment: a relaxed load and store, no lock prefix. */
static inline void bump(counter_t *c, uint64_t by)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}
static inline uint64_t rd(counter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static int registry_init(registry_t *r, size_t cap)
{
    pthread_mutex_init(&r->mu, NULL);
    r->cap = cap;
    r->values = calloc(cap, sizeof(char *));
    r->lens = calloc(cap, sizeof(size_t));
    atomic_store(&r->n, 0);
    return r->values && r->lens ? 0 : SC_ENOMEM;
}

static void registry_free(registry_t *r)
{
    size_t n = atomic_load(&r->n);
    for (size_t i = 0; i < n; i++)
        free(r->values[i]);
    free(r->values);
    free(r->lens);
    pthread_mutex_destroy(&r->mu);
}

static int registry_id(registry_t *r, const char *v, size_t len)
{
    pthread_mutex_lock(&r->mu);
    size_t n = atomic_load(&r->n);
    for (size_t i = 0; i < n; i++) {
        if (r->lens[i] == len && memcmp(r->values[i], v, len) == 0) {
            pthread_mutex_unlock(&r->mu);
            return (int)i;
        }
    }
    int id = (int)r->cap; /* overflow: "_other" */
    if (n < r->cap) {
        char *copy = malloc(len + 1);
        if (copy) {
            memcpy(copy, v, len);
            copy[len] = '\0';
            r->values[n] = copy;
            r->lens[n] = len;
            atomic_store(&r->n, n + 1);
            id = (int)n;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return id;
}

static int cached_id(registry_t *r, cache_slot_t *cache, const char *v, size_t len)
{
    cache_slot_t *slot = &cache[XXH3_64bits(v, len) % CACHE_SLOTS];
    if (slot->value && slot->len == len && memcmp(slot->value, v, len) == 0)
        return slot->id;
    int id = registry_id(r, v, len);
    if (id < (int)r->cap) { /* only real values are cached; overflow re-checks */
        slot->value = r->values[id];
        slot->len = len;
        slot->id = id;
    }
    return id;
}

int sc_metrics_create(sc_metrics_t **out, int n_shards, int n_endpoints, int max_labels)
{
    if (n_endpoints < 1 || n_endpoints > N_EP)
        return SC_EINVAL;
    sc_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return SC_ENOMEM;
    m->n_shards = n_shards;
    m->n_endpoints = n_endpoints;
    m->shards = calloc((size_t)n_shards, sizeof(sc_metrics_shard_t));
    m->validation = calloc(((size_t)max_labels + 1) * N_VALID, sizeof(counter_t));
    if (!m->shards || !m->validation || registry_init(&m->ns, (size_t)max_labels) ||
        registry_init(&m->nsm, (size_t)max_labels))
        goto fail;
    for (int i = 0; i < n_shards; i++) {
        m->shards[i].owner = m;
        m->shards[i].lookups = calloc(((size_t)max_labels + 1) * SC_LR_COUNT, sizeof(counter_t));
        m->shards[i].tokens = calloc(((size_t)max_labels + 1) * N_SAVED, sizeof(counter_t));
        m->shards[i].guards =
            calloc(((size_t)max_labels + 1) * SC_METRICS_GUARD_REASONS, sizeof(counter_t));
        if (!m->shards[i].lookups || !m->shards[i].tokens || !m->shards[i].guards)
            goto fail;
    }
    *out = m;
    return 0;
fail:
    sc_metrics_destroy(m);
    return SC_ENOMEM;
}

void sc_metrics_destroy(sc_metrics_t *m)
{
    if (!m)
        return;
    for (int i = 0; m->shards && i < m->n_shards; i++) {
        free(m->shards[i].lookups);
        free(m->shards[i].tokens);
        free(m->shards[i].guards);
    }
    free(m->shards);
    free(m->validation);
    if (m->ns.values || m->ns.lens)
        registry_free(&m->ns);
    if (m->nsm.values || m->nsm.lens)
        registry_free(&m->nsm);
    free(m);
}

sc_metrics_shard_t *sc_metrics_shard(sc_metrics_t *m, int i)
{
    return &m->shards[i];
}

static size_t code_index(int status)
{
    for (size_t i = 0; i < N_CODES - 1; i++)
        if (sc_metrics_status_codes[i] == status)
            return i;
    return N_CODES - 1;
}

void sc_metrics_request(sc_metrics_shard_t *sh, int ep, int status, uint64_t dur_ns)
{
    if (ep < 0 || ep >= sh->owner->n_endpoints)
        ep = sh->owner->n_endpoints - 1;
    bump(&sh->requests[ep][code_index(status)], 1);
    double secs = (double)dur_ns / 1e9;
    for (size_t i = 0; i < N_BUCKETS; i++)
        if (secs <= sc_metrics_dur_le[i]) {
            bump(&sh->dur_bucket[ep][i], 1); /* cumulated at render time */
            break;
        }
    bump(&sh->dur_count[ep], 1);
    bump(&sh->dur_sum_ns[ep], dur_ns);
}

void sc_metrics_lookup(sc_metrics_shard_t *sh, const char *ns, size_t ns_len,
                       sc_lookup_result_t result)
{
    sc_metrics_t *m = sh->owner;
    int id = cached_id(&m->ns, sh->ns_cache, ns, ns_len);
    bump(&sh->lookups[(size_t)id * SC_LR_COUNT + result], 1);
}

const char *const sc_metrics_guard_reasons[SC_METRICS_GUARD_REASONS] = {"negation", "numbers",
                                                                        "rare_word"};

void sc_metrics_guard_rejection(sc_metrics_shard_t *sh, const char *ns, size_t ns_len,
                                unsigned bits)
{
    sc_metrics_t *m = sh->owner;
    int id = cached_id(&m->ns, sh->ns_cache, ns, ns_len);
    for (int r = 0; r < SC_METRICS_GUARD_REASONS; r++)
        if (bits & (1u << r))
            bump(&sh->guards[(size_t)id * SC_METRICS_GUARD_REASONS + (size_t)r], 1);
}

/* The id of "namespace\0model", through the shard's cache when there is one. */
static int nsm_id(sc_metrics_t *m, cache_slot_t *cache, const char *ns, size_t ns_len,
                  const char *model, size_t model_len)
{
    char key[512];
    if (ns_len > 255)
        ns_len = 255; /* both are bounded well below this */
    if (ns_len + 1 + model_len > sizeof(key))
        model_len = sizeof(key) - 1 - ns_len;
    memcpy(key, ns, ns_len);
    key[ns_len] = '\0';
    memcpy(key + ns_len + 1, model, model_len);
    size_t len = ns_len + 1 + model_len;
    return cache ? cached_id(&m->nsm, cache, key, len) : registry_id(&m->nsm, key, len);
}

void sc_metrics_saved(sc_metrics_shard_t *sh, const char *ns, size_t ns_len, const char *model,
                      size_t model_len, uint64_t prompt_tokens, uint64_t completion_tokens,
                      int priced, uint64_t pico)
{
    if (!prompt_tokens && !completion_tokens)
        return;
    int id = nsm_id(sh->owner, sh->nsm_cache, ns, ns_len, model, model_len);
    counter_t *c = &sh->tokens[(size_t)id * N_SAVED];
    bump(&c[SV_PROMPT], prompt_tokens);
    bump(&c[SV_COMPLETION], completion_tokens);
    if (priced)
        bump(&c[SV_PICO], pico);
    else
        bump(&c[SV_UNPRICED], prompt_tokens + completion_tokens);
}

void sc_metrics_validation_cost(sc_metrics_t *m, const char *ns, size_t ns_len, const char *model,
                                size_t model_len, uint64_t tokens, int priced, uint64_t pico)
{
    int id = nsm_id(m, NULL, ns, ns_len, model, model_len);
    counter_t *c = &m->validation[(size_t)id * N_VALID];
    atomic_fetch_add_explicit(&c[VC_CALLS], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c[VC_TOKENS], tokens, memory_order_relaxed);
    atomic_fetch_add_explicit(&c[priced ? VC_PICO : VC_UNPRICED], priced ? pico : tokens,
                              memory_order_relaxed);
}

void sc_metrics_similarity(sc_metrics_shard_t *sh, int hit, double similarity)
{
    hit = hit != 0;
    for (size_t i = 0; i < N_SIM_BUCKETS; i++)
        if (similarity <= sc_metrics_sim_le[i]) {
            bump(&sh->sim_bucket[hit][i], 1);
            break;
        }
    bump(&sh->sim_count[hit], 1);
    atomic_store_explicit(&sh->sim_sum[hit],
                          atomic_load_explicit(&sh->sim_sum[hit], memory_order_relaxed) +
                              similarity,
                          memory_order_relaxed);
}

void sc_metrics_proxy_request(sc_metrics_shard_t *sh, int api, int result)
{
    if (api >= 0 && api < N_PAPI && result >= 0 && result < SC_METRICS_PROXY_RESULTS)
        bump(&sh->proxy[api][result], 1);
}

void sc_metrics_proxy_upstream(sc_metrics_shard_t *sh, int api, uint64_t ttfb_ns, uint64_t total_ns)
{
    if (api < 0 || api >= N_PAPI)
        return;
    uint64_t ns[2] = {ttfb_ns, total_ns};
    for (int k = 0; k < 2; k++) {
        double secs = (double)ns[k] / 1e9;
        for (size_t i = 0; i < N_UP; i++)
            if (secs <= sc_metrics_up_le[i]) {
                bump(&sh->up_bucket[k][api][i], 1);
                break;
            }
        bump(&sh->up_count[k][api], 1);
        bump(&sh->up_sum_ns[k][api], ns[k]);
    }
}

/* ---- reading ---------------------------------------------------------- */

void sc_metrics_proxy_read(sc_metrics_t *m, sc_metrics_proxy_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int s = 0; s < m->n_shards; s++) {
        sc_metrics_shard_t *sh = &m->shards[s];
        for (int a = 0; a < N_PAPI; a++) {
            for (int r = 0; r < SC_METRICS_PROXY_RESULTS; r++)
                out->requests[a][r] += rd(&sh->proxy[a][r]);
            sc_metrics_hist_t *h[2] = {&out->ttfb[a], &out->total[a]};
            for (int k = 0; k < 2; k++) {
                for (size_t b = 0; b < N_UP; b++)
                    h[k]->le[b] += rd(&sh->up_bucket[k][a][b]);
                h[k]->count += rd(&sh->up_count[k][a]);
                h[k]->sum_ns += rd(&sh->up_sum_ns[k][a]);
            }
        }
    }
    for (int a = 0; a < N_PAPI; a++)
        for (size_t b = 1; b < N_UP; b++) {
            out->ttfb[a].le[b] += out->ttfb[a].le[b - 1];
            out->total[a].le[b] += out->total[a].le[b - 1];
        }
}

void sc_metrics_endpoint(sc_metrics_t *m, int ep, sc_metrics_endpoint_t *out)
{
    memset(out, 0, sizeof(*out));
    if (ep < 0 || ep >= m->n_endpoints)
        return;
    for (int s = 0; s < m->n_shards; s++) {
        sc_metrics_shard_t *sh = &m->shards[s];
        for (size_t c = 0; c < N_CODES; c++)
            out->by_status[c] += rd(&sh->requests[ep][c]);
        for (size_t b = 0; b < N_BUCKETS; b++)
            out->le[b] += rd(&sh->dur_bucket[ep][b]);
        out->count += rd(&sh->dur_count[ep]);
        out->sum_ns += rd(&sh->dur_sum_ns[ep]);
    }
    for (size_t b = 1; b < N_BUCKETS; b++) /* counted in the first bucket that fits */
        out->le[b] += out->le[b - 1];
}

void sc_metrics_similarities(sc_metrics_t *m, int hit, sc_metrics_similarity_t *out)
{
    memset(out, 0, sizeof(*out));
    hit = hit != 0;
    for (int s = 0; s < m->n_shards; s++) {
        sc_metrics_shard_t *sh = &m->shards[s];
        for (size_t b = 0; b < N_SIM_BUCKETS; b++)
            out->le[b] += rd(&sh->sim_bucket[hit][b]);
        out->count += rd(&sh->sim_count[hit]);
        out->sum += atomic_load_explicit(&sh->sim_sum[hit], memory_order_relaxed);
    }
    for (size_t b = 1; b < N_SIM_BUCKETS; b++)
        out->le[b] += out->le[b - 1];
}

void sc_metrics_foreach_lookups(sc_metrics_t *m,
                                void (*fn)(void *arg, const char *ns, size_t ns_len,
                                           const uint64_t by_result[SC_LR_COUNT]),
                                void *arg)
{
    size_t n = atomic_load(&m->ns.n);
    for (size_t id = 0; id <= m->ns.cap; id++) {
        if (id < m->ns.cap && id >= n)
            continue;
        uint64_t v[SC_LR_COUNT] = {0};
        for (int s = 0; s < m->n_shards; s++)
            for (int r = 0; r < SC_LR_COUNT; r++)
                v[r] += rd(&m->shards[s].lookups[id * SC_LR_COUNT + (size_t)r]);
        if (id < m->ns.cap)
            fn(arg, m->ns.values[id], m->ns.lens[id], v);
        else
            fn(arg, NULL, 0, v);
    }
}

/* Namespace+model id 'id''s counters summed over the shards. */
static void usage_of(sc_metrics_t *m, size_t id, sc_metrics_usage_t *u)
{
    uint64_t v[N_SAVED] = {0};
    for (int s = 0; s < m->n_shards; s++)
        for (int k = 0; k < N_SAVED; k++)
            v[k] += rd(&m->shards[s].tokens[id * N_SAVED + (size_t)k]);
    counter_t *c = &m->validation[id * N_VALID];
    *u = (sc_metrics_usage_t){v[SV_PROMPT],    v[SV_COMPLETION],   v[SV_PICO],
                              v[SV_UNPRICED],  rd(&c[VC_CALLS]),   rd(&c[VC_TOKENS]),
                              rd(&c[VC_PICO]), rd(&c[VC_UNPRICED])};
}

void sc_metrics_foreach_guards(sc_metrics_t *m,
                               void (*fn)(void *arg, const char *ns, size_t ns_len,
                                          const uint64_t by_reason[SC_METRICS_GUARD_REASONS]),
                               void *arg)
{
    size_t n = atomic_load(&m->ns.n);
    for (size_t id = 0; id <= m->ns.cap; id++) {
        if (id < m->ns.cap && id >= n)
            continue;
        uint64_t v[SC_METRICS_GUARD_REASONS] = {0}, any = 0;
        for (int s = 0; s < m->n_shards; s++)
            for (int r = 0; r < SC_METRICS_GUARD_REASONS; r++)
                any |= v[r] += rd(&m->shards[s].guards[id * SC_METRICS_GUARD_REASONS + (size_t)r]);
        if (any)
            fn(arg, id < m->ns.cap ? m->ns.values[id] : NULL, id < m->ns.cap ? m->ns.lens[id] : 0,
               v);
    }
}

void sc_metrics_foreach_usage(sc_metrics_t *m,
                              void (*fn)(void *arg, const char *ns, size_t ns_len,
                                         const char *model, size_t model_len,
                                         const sc_metrics_usage_t *u),
                              void *arg)
{
    size_t n = atomic_load(&m->nsm.n);
    for (size_t id = 0; id <= m->nsm.cap; id++) {
        if (id < m->nsm.cap && id >= n)
            continue;
        sc_metrics_usage_t u;
        usage_of(m, id, &u);
        if (id < m->nsm.cap) { /* stored as "namespace\0model" */
            const char *val = m->nsm.values[id];
            size_t ns_len = strlen(val);
            fn(arg, val, ns_len, val + ns_len + 1, m->nsm.lens[id] - ns_len - 1, &u);
        } else {
            fn(arg, NULL, 0, NULL, 0, &u);
        }
    }
}

static void add_usage(sc_metrics_usage_t *to, const sc_metrics_usage_t *u)
{
    uint64_t *t = &to->prompt_tokens;
    const uint64_t *f = &u->prompt_tokens;
    for (size_t i = 0; i < sizeof(*u) / sizeof(uint64_t); i++)
        t[i] += f[i];
}

void sc_metrics_ns_usage(sc_metrics_t *m, const char *ns, size_t ns_len, sc_metrics_usage_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = atomic_load(&m->nsm.n);
    for (size_t id = 0; id < n; id++) {
        const char *val = m->nsm.values[id];
        if (strlen(val) != ns_len || memcmp(val, ns, ns_len) != 0)
            continue;
        sc_metrics_usage_t u;
        usage_of(m, id, &u);
        add_usage(out, &u);
    }
}

void sc_metrics_totals(sc_metrics_t *m, sc_metrics_totals_t *t)
{
    memset(t, 0, sizeof(*t));
    size_t ids = m->ns.cap + 1;
    for (int s = 0; s < m->n_shards; s++) {
        sc_metrics_shard_t *sh = &m->shards[s];
        for (size_t id = 0; id < ids; id++)
            for (int r = 0; r < SC_LR_COUNT; r++)
                t->lookups[r] += rd(&sh->lookups[id * SC_LR_COUNT + (size_t)r]);
        for (int ep = 0; ep < m->n_endpoints; ep++)
            t->requests += rd(&sh->dur_count[ep]);
    }
    for (size_t id = 0; id < m->nsm.cap + 1; id++) {
        sc_metrics_usage_t u;
        usage_of(m, id, &u);
        add_usage(&t->usage, &u);
    }
    t->prompt_tokens_saved = t->usage.prompt_tokens;
    t->completion_tokens_saved = t->usage.completion_tokens;
}
