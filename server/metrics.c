/* metrics.c -- sharded counters and histograms rendered in Prometheus text
 * format. Label values from requests go through a registry (mutex-guarded,
 * append-only, capped) fronted by a per-shard direct-mapped cache, so the hot
 * path takes no lock after a namespace's first request on a thread. */
#define _GNU_SOURCE
#include "sc_metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static const int status_codes[] = {200, 201, 204, 400, 401, 403, 404, 405, 408, 409,
                                   411, 413, 415, 422, 429, 431, 500, 503, 505, 507};
#define N_CODES (sizeof(status_codes) / sizeof(status_codes[0]) + 1) /* + "other" */

/* Request duration buckets in seconds: 100 us to 10 s. */
static const double dur_buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS (sizeof(dur_buckets) / sizeof(dur_buckets[0]))

/* Similarity buckets: fine-grained where thresholds are usually set. */
static const double sim_buckets[] = {0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.875, 0.9,
                                     0.925, 0.95, 0.975, 0.99, 1};
#define N_SIM_BUCKETS (sizeof(sim_buckets) / sizeof(sim_buckets[0]))

static const char *const endpoint_names[SC_EP_COUNT] = {
    "lookup", "store", "entries", "invalidate", "stats", "healthz",
    "readyz", "metrics", "namespaces", "feedback", "other"};
static const char *const result_names[SC_LR_COUNT] = {"exact_hit", "semantic_hit", "miss"};

#define CACHE_SLOTS 64

typedef _Atomic uint64_t counter_t;

/* A label registry: id -> value, append-only so readers may hold pointers. */
typedef struct {
    pthread_mutex_t mu;
    char **values;       /* [cap]; set once, never freed before destroy */
    size_t *lens;
    _Atomic size_t n;
    size_t cap;          /* the overflow id is 'cap' ("_other") */
} registry_t;

typedef struct {
    const char *value;   /* points into the registry */
    size_t len;
    int id;
} cache_slot_t;

struct sc_metrics_shard_s {
    struct sc_metrics_s *owner; /* for the label registries */
    counter_t requests[SC_EP_COUNT][N_CODES];
    counter_t dur_bucket[SC_EP_COUNT][N_BUCKETS];
    counter_t dur_count[SC_EP_COUNT];
    counter_t dur_sum_ns[SC_EP_COUNT];
    counter_t sim_bucket[2][N_SIM_BUCKETS]; /* [miss, hit] */
    counter_t sim_count[2];
    _Atomic double sim_sum[2];
    counter_t *lookups;       /* [(cap+1) * SC_LR_COUNT] by namespace id */
    counter_t *tokens;        /* [(cap+1) * 2] by namespace+model id */
    cache_slot_t ns_cache[CACHE_SLOTS];
    cache_slot_t nsm_cache[CACHE_SLOTS];
    char pad[64];             /* keeps neighbouring shards off this cache line */
};

struct sc_metrics_s {
    int n_shards;
    sc_metrics_shard_t *shards;
    registry_t ns;            /* namespace values */
    registry_t nsm;           /* "namespace\0model" values */
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

int sc_metrics_create(sc_metrics_t **out, int n_shards, int max_labels)
{
    sc_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return SC_ENOMEM;
    m->n_shards = n_shards;
    m->shards = calloc((size_t)n_shards, sizeof(sc_metrics_shard_t));
    if (!m->shards || registry_init(&m->ns, (size_t)max_labels) ||
        registry_init(&m->nsm, (size_t)max_labels))
        goto fail;
    for (int i = 0; i < n_shards; i++) {
        m->shards[i].owner = m;
        m->shards[i].lookups = calloc(((size_t)max_labels + 1) * SC_LR_COUNT, sizeof(counter_t));
        m->shards[i].tokens = calloc(((size_t)max_labels + 1) * 2, sizeof(counter_t));
        if (!m->shards[i].lookups || !m->shards[i].tokens)
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
    }
    free(m->shards);
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

const char *sc_endpoint_name(sc_endpoint_t ep)
{
    return endpoint_names[ep < SC_EP_COUNT ? ep : SC_EP_OTHER];
}

static size_t code_index(int status)
{
    for (size_t i = 0; i < N_CODES - 1; i++)
        if (status_codes[i] == status)
            return i;
    return N_CODES - 1;
}

void sc_metrics_request(sc_metrics_shard_t *sh, sc_endpoint_t ep, int status, uint64_t dur_ns)
{
    bump(&sh->requests[ep][code_index(status)], 1);
    double secs = (double)dur_ns / 1e9;
    for (size_t i = 0; i < N_BUCKETS; i++)
        if (secs <= dur_buckets[i]) {
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

void sc_metrics_tokens_saved(sc_metrics_shard_t *sh, const char *ns, size_t ns_len,
                             const char *model, size_t model_len, uint64_t prompt_tokens,
                             uint64_t completion_tokens)
{
    if (!prompt_tokens && !completion_tokens)
        return;
    sc_metrics_t *m = sh->owner;
    char key[512];
    if (ns_len + 1 + model_len > sizeof(key))
        model_len = sizeof(key) - 1 - ns_len; /* both are bounded well below this */
    memcpy(key, ns, ns_len);
    key[ns_len] = '\0';
    memcpy(key + ns_len + 1, model, model_len);
    int id = cached_id(&m->nsm, sh->nsm_cache, key, ns_len + 1 + model_len);
    bump(&sh->tokens[(size_t)id * 2], prompt_tokens);
    bump(&sh->tokens[(size_t)id * 2 + 1], completion_tokens);
}

void sc_metrics_similarity(sc_metrics_shard_t *sh, int hit, double similarity)
{
    hit = hit != 0;
    for (size_t i = 0; i < N_SIM_BUCKETS; i++)
        if (similarity <= sim_buckets[i]) {
            bump(&sh->sim_bucket[hit][i], 1);
            break;
        }
    bump(&sh->sim_count[hit], 1);
    atomic_store_explicit(&sh->sim_sum[hit],
                          atomic_load_explicit(&sh->sim_sum[hit], memory_order_relaxed) + similarity,
                          memory_order_relaxed);
}

/* ---- rendering -------------------------------------------------------- */

static void label_value(sc_buf_t *out, const char *v, size_t len)
{
    /* Prometheus label values escape backslash, quote and newline. */
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '\\' || c == '"')
            sc_buf_append(out, "\\", 1);
        if (c == '\n')
            sc_buf_append(out, "\\n", 2);
        else
            sc_buf_append(out, &c, 1);
    }
}

int sc_metrics_render(sc_metrics_t *m, sc_buf_t *out)
{
    sc_buf_puts(out, "# HELP semcached_requests_total HTTP requests by endpoint and status code.\n"
                     "# TYPE semcached_requests_total counter\n");
    for (int ep = 0; ep < SC_EP_COUNT; ep++)
        for (size_t c = 0; c < N_CODES; c++) {
            uint64_t v = 0;
            for (int s = 0; s < m->n_shards; s++)
                v += rd(&m->shards[s].requests[ep][c]);
            if (!v)
                continue;
            if (c < N_CODES - 1)
                sc_buf_printf(out, "semcached_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n",
                              endpoint_names[ep], status_codes[c], (unsigned long long)v);
            else
                sc_buf_printf(out, "semcached_requests_total{endpoint=\"%s\",code=\"other\"} %llu\n",
                              endpoint_names[ep], (unsigned long long)v);
        }

    sc_buf_puts(out, "# HELP semcached_request_duration_seconds Time from a request's last byte "
                     "to its response being queued.\n"
                     "# TYPE semcached_request_duration_seconds histogram\n");
    for (int ep = 0; ep < SC_EP_COUNT; ep++) {
        uint64_t count = 0, sum_ns = 0;
        for (int s = 0; s < m->n_shards; s++) {
            count += rd(&m->shards[s].dur_count[ep]);
            sum_ns += rd(&m->shards[s].dur_sum_ns[ep]);
        }
        if (!count)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < N_BUCKETS; b++) {
            for (int s = 0; s < m->n_shards; s++)
                cum += rd(&m->shards[s].dur_bucket[ep][b]);
            sc_buf_printf(out, "semcached_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                          endpoint_names[ep], dur_buckets[b], (unsigned long long)cum);
        }
        sc_buf_printf(out, "semcached_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n",
                      endpoint_names[ep], (unsigned long long)count);
        sc_buf_printf(out, "semcached_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n",
                      endpoint_names[ep], (double)sum_ns / 1e9);
        sc_buf_printf(out, "semcached_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
                      endpoint_names[ep], (unsigned long long)count);
    }

    sc_buf_puts(out, "# HELP semcached_semantic_similarity Best similarity of semantic searches: "
                     "of served hits, and of near misses (a valid candidate below the threshold).\n"
                     "# TYPE semcached_semantic_similarity histogram\n");
    for (int hit = 1; hit >= 0; hit--) {
        const char *outcome = hit ? "hit" : "near_miss";
        uint64_t count = 0, cum = 0;
        double sum = 0;
        for (int s = 0; s < m->n_shards; s++) {
            count += rd(&m->shards[s].sim_count[hit]);
            sum += atomic_load_explicit(&m->shards[s].sim_sum[hit], memory_order_relaxed);
        }
        for (size_t b = 0; b < N_SIM_BUCKETS; b++) {
            for (int s = 0; s < m->n_shards; s++)
                cum += rd(&m->shards[s].sim_bucket[hit][b]);
            sc_buf_printf(out, "semcached_semantic_similarity_bucket{outcome=\"%s\",le=\"%g\"} %llu\n",
                          outcome, sim_buckets[b], (unsigned long long)cum);
        }
        sc_buf_printf(out, "semcached_semantic_similarity_bucket{outcome=\"%s\",le=\"+Inf\"} %llu\n"
                           "semcached_semantic_similarity_sum{outcome=\"%s\"} %.6f\n"
                           "semcached_semantic_similarity_count{outcome=\"%s\"} %llu\n",
                      outcome, (unsigned long long)count, outcome, sum, outcome,
                      (unsigned long long)count);
    }

    sc_buf_puts(out, "# HELP semcached_lookups_total Lookups by namespace and result.\n"
                     "# TYPE semcached_lookups_total counter\n");
    size_t n_ns = atomic_load(&m->ns.n);
    for (size_t id = 0; id <= m->ns.cap; id++) {
        if (id < m->ns.cap && id >= n_ns)
            continue;
        for (int r = 0; r < SC_LR_COUNT; r++) {
            uint64_t v = 0;
            for (int s = 0; s < m->n_shards; s++)
                v += rd(&m->shards[s].lookups[id * SC_LR_COUNT + (size_t)r]);
            if (id == m->ns.cap && !v)
                continue;
            sc_buf_puts(out, "semcached_lookups_total{namespace=\"");
            if (id < m->ns.cap)
                label_value(out, m->ns.values[id], m->ns.lens[id]);
            else
                sc_buf_puts(out, "_other");
            sc_buf_printf(out, "\",result=\"%s\"} %llu\n", result_names[r], (unsigned long long)v);
        }
    }

    sc_buf_puts(out, "# HELP semcached_tokens_saved_total Prompt and completion tokens of served "
                     "hits, from the usage stored with each entry.\n"
                     "# TYPE semcached_tokens_saved_total counter\n");
    size_t n_nsm = atomic_load(&m->nsm.n);
    for (size_t id = 0; id <= m->nsm.cap; id++) {
        if (id < m->nsm.cap && id >= n_nsm)
            continue;
        for (int kind = 0; kind < 2; kind++) {
            uint64_t v = 0;
            for (int s = 0; s < m->n_shards; s++)
                v += rd(&m->shards[s].tokens[id * 2 + (size_t)kind]);
            if (id == m->nsm.cap && !v)
                continue;
            sc_buf_puts(out, "semcached_tokens_saved_total{namespace=\"");
            if (id < m->nsm.cap) {
                const char *val = m->nsm.values[id];
                size_t ns_len = strlen(val);
                label_value(out, val, ns_len);
                sc_buf_puts(out, "\",model=\"");
                label_value(out, val + ns_len + 1, m->nsm.lens[id] - ns_len - 1);
            } else {
                sc_buf_puts(out, "_other\",model=\"_other");
            }
            sc_buf_printf(out, "\",kind=\"%s\"} %llu\n", kind ? "completion" : "prompt",
                          (unsigned long long)v);
        }
    }
    return out->data ? 0 : SC_ENOMEM;
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
        for (size_t id = 0; id < m->nsm.cap + 1; id++) {
            t->prompt_tokens_saved += rd(&sh->tokens[id * 2]);
            t->completion_tokens_saved += rd(&sh->tokens[id * 2 + 1]);
        }
        for (int ep = 0; ep < SC_EP_COUNT; ep++)
            t->requests += rd(&sh->dur_count[ep]);
    }
}
