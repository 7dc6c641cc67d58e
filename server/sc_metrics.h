/* sc_metrics.h -- the server's request and lookup counters, one shard per
 * event-loop thread. A shard is written only by its own thread (relaxed
 * single-writer updates, no locked instructions); readers sum the shards.
 * Label values that come from requests (namespace, model) are capped at
 * --max-label-values distinct values; the rest are counted under "_other" so
 * a client cannot blow up Prometheus. Tenant is never a label. This module
 * only counts: the Prometheus text is written by api_stats.c, and endpoint
 * labels are small ints whose names the route table owns. */
#ifndef SC_METRICS_H
#define SC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"

typedef enum { SC_LR_EXACT_HIT, SC_LR_SEMANTIC_HIT, SC_LR_MISS, SC_LR_COUNT } sc_lookup_result_t;

/* The most endpoint labels a metrics object can count. */
#define SC_METRICS_MAX_ENDPOINTS 32
/* Status codes counted by name; any other counts in the last slot ("other"). */
#define SC_METRICS_STATUS_SLOTS 23
extern const int sc_metrics_status_codes[SC_METRICS_STATUS_SLOTS - 1];
/* Request duration buckets in seconds (100 us to 10 s), and similarity
 * buckets (fine-grained where thresholds are usually set). */
#define SC_METRICS_DUR_BUCKETS 16
extern const double sc_metrics_dur_le[SC_METRICS_DUR_BUCKETS];
#define SC_METRICS_SIM_BUCKETS 14
extern const double sc_metrics_sim_le[SC_METRICS_SIM_BUCKETS];

typedef struct sc_metrics_s sc_metrics_t;
typedef struct sc_metrics_shard_s sc_metrics_shard_t;

/* 'n_shards' is the number of writer threads, 'n_endpoints' the number of
 * endpoint labels (at most SC_METRICS_MAX_ENDPOINTS), 'max_labels' the cap
 * on request-derived label values. */
int sc_metrics_create(sc_metrics_t **out, int n_shards, int n_endpoints, int max_labels);
void sc_metrics_destroy(sc_metrics_t *m);
/* The shard owned by thread 'i' (0 <= i < n_shards). Valid until destroy. */
sc_metrics_shard_t *sc_metrics_shard(sc_metrics_t *m, int i);

/* Hot-path updates; call only from the shard's owning thread. An endpoint
 * out of range counts as the last one. */
void sc_metrics_request(sc_metrics_shard_t *sh, int endpoint, int status, uint64_t dur_ns);
void sc_metrics_lookup(sc_metrics_shard_t *sh, const char *ns, size_t ns_len,
                       sc_lookup_result_t result);
/* A served hit's stored usage and, when its model has a price ('priced'),
 * what that call would have cost in pico-dollars (sc_prices.h); an unpriced
 * hit's tokens are counted as unpriced, never as dollars. */
void sc_metrics_saved(sc_metrics_shard_t *sh, const char *ns, size_t ns_len, const char *model,
                      size_t model_len, uint64_t prompt_tokens, uint64_t completion_tokens,
                      int priced, uint64_t pico);
/* One paid validation call (re-inference, judge) of 'tokens' tokens costing
 * 'pico' when 'priced'. Any thread: shared counters with atomic adds (such
 * calls are rare next to lookups), under the same namespace+model label cap. */
void sc_metrics_validation_cost(sc_metrics_t *m, const char *ns, size_t ns_len, const char *model,
                                size_t model_len, uint64_t tokens, int priced, uint64_t pico);
/* A semantic hit the guards refused (sc_guards.h): one count for each
 * reason in 'bits' (SC_GUARD_NEGATION 1, _NUMBERS 2, _RARE_WORD 4, in the
 * order of sc_metrics_guard_reasons). */
#define SC_METRICS_GUARD_REASONS 3
extern const char *const sc_metrics_guard_reasons[SC_METRICS_GUARD_REASONS];
void sc_metrics_guard_rejection(sc_metrics_shard_t *sh, const char *ns, size_t ns_len,
                                unsigned bits);
/* A semantic search's best similarity: of the hit served, or (near miss) of
 * the best valid candidate below the threshold. */
void sc_metrics_similarity(sc_metrics_shard_t *sh, int hit, double similarity);

/* The proxy's requests by API and result, and its upstream calls' time to
 * first byte and whole duration by API (small ints whose names proxy.h
 * owns). Buckets for upstream times, in seconds: LLM calls take seconds. */
#define SC_METRICS_PROXY_APIS 5
#define SC_METRICS_PROXY_RESULTS 5
#define SC_METRICS_UP_BUCKETS 14
extern const double sc_metrics_up_le[SC_METRICS_UP_BUCKETS];
void sc_metrics_proxy_request(sc_metrics_shard_t *sh, int api, int result);
void sc_metrics_proxy_upstream(sc_metrics_shard_t *sh, int api, uint64_t ttfb_ns,
                               uint64_t total_ns);

/* ---- reading: sums over every shard (each counter at some recent value) -- */

typedef struct {
    uint64_t by_status[SC_METRICS_STATUS_SLOTS];
    uint64_t
        le[SC_METRICS_DUR_BUCKETS]; /* cumulative: requests done within sc_metrics_dur_le[i] s */
    uint64_t count;
    uint64_t sum_ns;
} sc_metrics_endpoint_t;
void sc_metrics_endpoint(sc_metrics_t *m, int endpoint, sc_metrics_endpoint_t *out);

typedef struct {
    uint64_t le[SC_METRICS_SIM_BUCKETS]; /* cumulative */
    uint64_t count;
    double sum;
} sc_metrics_similarity_t;
/* 'hit' 1: served semantic hits; 0: near misses. */
void sc_metrics_similarities(sc_metrics_t *m, int hit, sc_metrics_similarity_t *out);

/* Calls 'fn' for every namespace seen (in first-seen order), then with
 * ns == NULL for "_other" (values past the cap). 'ns' is valid during the
 * call. */
void sc_metrics_foreach_lookups(sc_metrics_t *m,
                                void (*fn)(void *arg, const char *ns, size_t ns_len,
                                           const uint64_t by_result[SC_LR_COUNT]),
                                void *arg);
/* Savings and validation spend of one namespace+model (or a sum of them). */
typedef struct {
    uint64_t prompt_tokens, completion_tokens; /* of served hits */
    uint64_t saved_pico;                       /* what those calls would have cost */
    uint64_t saved_unpriced_tokens;            /* hit tokens of models with no price */
    uint64_t validation_calls, validation_tokens;
    uint64_t validation_pico;            /* what paid validation calls cost */
    uint64_t validation_unpriced_tokens; /* their tokens of models with no price */
} sc_metrics_usage_t;
/* The same by namespace and model (ns == NULL: "_other"). */
void sc_metrics_foreach_usage(sc_metrics_t *m,
                              void (*fn)(void *arg, const char *ns, size_t ns_len,
                                         const char *model, size_t model_len,
                                         const sc_metrics_usage_t *u),
                              void *arg);
/* Namespace 'ns''s sum over its models (zeros when unseen or past the cap). */
void sc_metrics_ns_usage(sc_metrics_t *m, const char *ns, size_t ns_len, sc_metrics_usage_t *out);
/* Guard rejections by namespace (only those with some), like lookups. */
void sc_metrics_foreach_guards(sc_metrics_t *m,
                               void (*fn)(void *arg, const char *ns, size_t ns_len,
                                          const uint64_t by_reason[SC_METRICS_GUARD_REASONS]),
                               void *arg);

typedef struct {
    uint64_t le[SC_METRICS_UP_BUCKETS]; /* cumulative */
    uint64_t count;
    uint64_t sum_ns;
} sc_metrics_hist_t;
typedef struct {
    uint64_t requests[SC_METRICS_PROXY_APIS][SC_METRICS_PROXY_RESULTS];
    sc_metrics_hist_t ttfb[SC_METRICS_PROXY_APIS], total[SC_METRICS_PROXY_APIS];
} sc_metrics_proxy_t;
void sc_metrics_proxy_read(sc_metrics_t *m, sc_metrics_proxy_t *out);

/* Totals across shards and labels, for /v1/stats. */
typedef struct {
    uint64_t lookups[SC_LR_COUNT];
    uint64_t prompt_tokens_saved;
    uint64_t completion_tokens_saved;
    uint64_t requests;
    sc_metrics_usage_t usage; /* every namespace and model */
} sc_metrics_totals_t;
void sc_metrics_totals(sc_metrics_t *m, sc_metrics_totals_t *t);

#endif
