/* sc_metrics.h -- Prometheus metrics with one shard per event-loop thread.
 * A shard is written only by its own thread (relaxed single-writer updates,
 * no locked instructions), and the scraper sums shards. Label values that come
 * from requests (namespace, model) are capped at --max-label-values distinct
 * values; the rest are reported as "_other" so a client cannot blow up
 * Prometheus. Tenant is never a label. */
#ifndef SC_METRICS_H
#define SC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"

typedef enum {
    SC_EP_LOOKUP, SC_EP_STORE, SC_EP_ENTRIES, SC_EP_INVALIDATE, SC_EP_STATS, SC_EP_HEALTHZ,
    SC_EP_READYZ, SC_EP_METRICS, SC_EP_NAMESPACES, SC_EP_FEEDBACK, SC_EP_OTHER, SC_EP_COUNT
} sc_endpoint_t;

typedef enum { SC_LR_EXACT_HIT, SC_LR_SEMANTIC_HIT, SC_LR_MISS, SC_LR_COUNT } sc_lookup_result_t;

typedef struct sc_metrics_s sc_metrics_t;
typedef struct sc_metrics_shard_s sc_metrics_shard_t;

/* 'n_shards' is the number of writer threads; 'max_labels' the label cap. */
int sc_metrics_create(sc_metrics_t **out, int n_shards, int max_labels);
void sc_metrics_destroy(sc_metrics_t *m);
/* The shard owned by thread 'i' (0 <= i < n_shards). Valid until destroy. */
sc_metrics_shard_t *sc_metrics_shard(sc_metrics_t *m, int i);

/* Hot-path updates; call only from the shard's owning thread. */
void sc_metrics_request(sc_metrics_shard_t *sh, sc_endpoint_t ep, int status, uint64_t dur_ns);
void sc_metrics_lookup(sc_metrics_shard_t *sh, const char *ns, size_t ns_len,
                       sc_lookup_result_t result);
void sc_metrics_tokens_saved(sc_metrics_shard_t *sh, const char *ns, size_t ns_len,
                             const char *model, size_t model_len, uint64_t prompt_tokens,
                             uint64_t completion_tokens);

/* A semantic search's best similarity: of the hit served, or (near miss) of
 * the best valid candidate below the threshold. */
void sc_metrics_similarity(sc_metrics_shard_t *sh, int hit, double similarity);

/* Appends the text exposition of every family above to 'out'. */
int sc_metrics_render(sc_metrics_t *m, sc_buf_t *out);

/* Totals across shards, for /v1/stats. */
typedef struct {
    uint64_t lookups[SC_LR_COUNT];
    uint64_t prompt_tokens_saved;
    uint64_t completion_tokens_saved;
    uint64_t requests;
} sc_metrics_totals_t;
void sc_metrics_totals(sc_metrics_t *m, sc_metrics_totals_t *t);

const char *sc_endpoint_name(sc_endpoint_t ep);

#endif
