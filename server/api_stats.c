/* api_stats.c -- the read-only views of the process: GET /metrics (the
 * Prometheus text exposition: this is the one place that writes it, from the
 * shard counters of metrics.c, the store, the indexes, the embedding pools,
 * quality and the process counters) and the health checks /healthz and
 * /readyz. GET /v1/stats, the same figures as JSON, is api_stats_json.c. */
#define _GNU_SOURCE
#include "api.h"
#include "api_stats_internal.h"
#include "flight.h"
#include "proxy.h"
#include "savings.h"

#include <stdlib.h>
#include <string.h>

static const char *const result_names[SC_LR_COUNT] = {"exact_hit", "semantic_hit", "miss"};

/* ---- Prometheus text helpers ------------------------------------------- */

static void family(sc_buf_t *b, const char *name, const char *type, const char *help)
{
    sc_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family with one unlabelled sample. */
typedef struct {
    const char *name, *type, *help;
    uint64_t v;
} scalar_t;

static void scalars(sc_buf_t *b, const scalar_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        family(b, s[i].name, s[i].type, s[i].help);
        sc_buf_printf(b, "%s %llu\n", s[i].name, (unsigned long long)s[i].v);
    }
}

/* Prometheus label values escape backslash, quote and newline. */
static void label_value(sc_buf_t *out, const char *v, size_t len)
{
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

/* ---- the shard counters -------------------------------------------------- */

static void render_requests(sc_metrics_t *m, sc_buf_t *b)
{
    sc_metrics_endpoint_t e[SC_EP_COUNT];
    for (int ep = 0; ep < SC_EP_COUNT; ep++)
        sc_metrics_endpoint(m, ep, &e[ep]);
    family(b, "semcached_requests_total", "counter", "HTTP requests by endpoint and status code.");
    for (int ep = 0; ep < SC_EP_COUNT; ep++)
        for (size_t c = 0; c < SC_METRICS_STATUS_SLOTS; c++) {
            if (!e[ep].by_status[c])
                continue;
            sc_buf_printf(b, "semcached_requests_total{endpoint=\"%s\",code=\"",
                          sc_endpoint_names[ep]);
            if (c < SC_METRICS_STATUS_SLOTS - 1)
                sc_buf_printf(b, "%d", sc_metrics_status_codes[c]);
            else
                sc_buf_puts(b, "other");
            sc_buf_printf(b, "\"} %llu\n", (unsigned long long)e[ep].by_status[c]);
        }
    family(b, "semcached_request_duration_seconds", "histogram",
           "Time from a request's last byte to its response being queued.");
    for (int ep = 0; ep < SC_EP_COUNT; ep++) {
        const char *name = sc_endpoint_names[ep];
        if (!e[ep].count)
            continue;
        for (size_t k = 0; k < SC_METRICS_DUR_BUCKETS; k++)
            sc_buf_printf(
                b, "semcached_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n",
                name, sc_metrics_dur_le[k], (unsigned long long)e[ep].le[k]);
        sc_buf_printf(
            b,
            "semcached_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n"
            "semcached_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n"
            "semcached_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
            name, (unsigned long long)e[ep].count, name, (double)e[ep].sum_ns / 1e9, name,
            (unsigned long long)e[ep].count);
    }
}

static void render_similarity(sc_metrics_t *m, sc_buf_t *b)
{
    family(b, "semcached_semantic_similarity", "histogram",
           "Best similarity of semantic searches: of served hits, and of near misses (a valid "
           "candidate below the threshold).");
    for (int hit = 1; hit >= 0; hit--) {
        const char *outcome = hit ? "hit" : "near_miss";
        sc_metrics_similarity_t s;
        sc_metrics_similarities(m, hit, &s);
        for (size_t k = 0; k < SC_METRICS_SIM_BUCKETS; k++)
            sc_buf_printf(b,
                          "semcached_semantic_similarity_bucket{outcome=\"%s\",le=\"%g\"} %llu\n",
                          outcome, sc_metrics_sim_le[k], (unsigned long long)s.le[k]);
        sc_buf_printf(b,
                      "semcached_semantic_similarity_bucket{outcome=\"%s\",le=\"+Inf\"} %llu\n"
                      "semcached_semantic_similarity_sum{outcome=\"%s\"} %.6f\n"
                      "semcached_semantic_similarity_count{outcome=\"%s\"} %llu\n",
                      outcome, (unsigned long long)s.count, outcome, s.sum, outcome,
                      (unsigned long long)s.count);
    }
}

/* Values past the label cap are "_other", shown only when counted. */
static void lookup_row(void *arg, const char *ns, size_t ns_len, const uint64_t v[SC_LR_COUNT])
{
    sc_buf_t *b = arg;
    for (int r = 0; r < SC_LR_COUNT; r++) {
        if (!ns && !v[r])
            continue;
        sc_buf_puts(b, "semcached_lookups_total{namespace=\"");
        if (ns)
            label_value(b, ns, ns_len);
        else
            sc_buf_puts(b, "_other");
        sc_buf_printf(b, "\",result=\"%s\"} %llu\n", result_names[r], (unsigned long long)v[r]);
    }
}

static void guard_row(void *arg, const char *ns, size_t ns_len,
                      const uint64_t v[SC_METRICS_GUARD_REASONS])
{
    sc_buf_t *b = arg;
    for (int r = 0; r < SC_METRICS_GUARD_REASONS; r++) {
        sc_buf_puts(b, "semcached_guard_rejections_total{namespace=\"");
        if (ns)
            label_value(b, ns, ns_len);
        else
            sc_buf_puts(b, "_other");
        sc_buf_printf(b, "\",reason=\"%s\"} %llu\n", sc_metrics_guard_reasons[r],
                      (unsigned long long)v[r]);
    }
}

static void render_shards(sc_metrics_t *m, sc_buf_t *b)
{
    render_requests(m, b);
    render_similarity(m, b);
    family(b, "semcached_lookups_total", "counter", "Lookups by namespace and result.");
    sc_metrics_foreach_lookups(m, lookup_row, b);
    sc_savings_prometheus(m, b, label_value); /* tokens and dollars saved, validation spend */
    family(b, "semcached_guard_rejections_total", "counter",
           "Semantic hits not served because their texts failed a guard, by reason (one count "
           "per reason that fired).");
    sc_metrics_foreach_guards(m, guard_row, b);
}

/* ---- the proxy ----------------------------------------------------------------- */

static void upstream_hist(sc_buf_t *b, const char *name, const sc_metrics_proxy_t *px, int ttfb)
{
    for (int a = 0; a < SC_METRICS_PROXY_APIS; a++) {
        const sc_metrics_hist_t *h = ttfb ? &px->ttfb[a] : &px->total[a];
        const char *api = sc_proxy_api_names[a];
        if (!h->count)
            continue;
        for (size_t k = 0; k < SC_METRICS_UP_BUCKETS; k++)
            sc_buf_printf(b, "%s_bucket{api=\"%s\",le=\"%g\"} %llu\n", name, api,
                          sc_metrics_up_le[k], (unsigned long long)h->le[k]);
        sc_buf_printf(b,
                      "%s_bucket{api=\"%s\",le=\"+Inf\"} %llu\n%s_sum{api=\"%s\"} %.6f\n"
                      "%s_count{api=\"%s\"} %llu\n",
                      name, api, (unsigned long long)h->count, name, api, (double)h->sum_ns / 1e9,
                      name, api, (unsigned long long)h->count);
    }
}

static void render_proxy(sc_ctx_t *ctx, sc_buf_t *b)
{
    sc_metrics_proxy_t px;
    uint64_t fb[SC_PXF_COUNT];
    sc_metrics_proxy_read(ctx->metrics, &px);
    sc_proxy_fallbacks(ctx->proxy, fb);
    family(b, "semcached_proxy_requests_total", "counter",
           "Proxied requests by API and result: hit (served from the cache), miss (forwarded, "
           "then stored), bypass (Cache-Control no-cache or no-store), passthrough (not cacheable, "
           "or not a cached API), error (the proxy's own answer: upstream unreachable or late, "
           "a malformed request).");
    for (int a = 0; a < SC_METRICS_PROXY_APIS; a++)
        for (int r = 0; r < SC_METRICS_PROXY_RESULTS; r++)
            sc_buf_printf(b, "semcached_proxy_requests_total{api=\"%s\",result=\"%s\"} %llu\n",
                          sc_proxy_api_names[a], sc_proxy_result_names[r],
                          (unsigned long long)px.requests[a][r]);
    family(b, "semcached_proxy_fallbacks_total", "counter",
           "Proxied requests the cache side let through as a plain proxy would, by reason.");
    for (int i = 0; i < SC_PXF_COUNT; i++)
        sc_buf_printf(b, "semcached_proxy_fallbacks_total{reason=\"%s\"} %llu\n",
                      sc_proxy_fallback_names[i], (unsigned long long)fb[i]);
    family(b, "semcached_proxy_upstream_pauses_total", "counter",
           "Upstream transfers paused because their client read slowly (--proxy-buffer-high).");
    sc_buf_printf(b, "semcached_proxy_upstream_pauses_total %llu\n",
                  (unsigned long long)sc_proxy_pauses(ctx->proxy));
    family(b, "semcached_proxy_upstream_seconds", "histogram",
           "Upstream calls of the proxy, from the transfer's start to its last byte.");
    upstream_hist(b, "semcached_proxy_upstream_seconds", &px, 0);
    family(b, "semcached_proxy_upstream_first_byte_seconds", "histogram",
           "Upstream calls of the proxy, from the transfer's start to the first response byte.");
    upstream_hist(b, "semcached_proxy_upstream_first_byte_seconds", &px, 1);
    sc_flight_prometheus(ctx->flight, b);
}

/* ---- the store, the indexes, the models ---------------------------------- */

static void render_engine(sc_ctx_t *ctx, sc_buf_t *b)
{
    sc_store_stats_t st;
    sc_scopes_stats_t ix;
    sc_embed_pool_stats_t ep = {0};
    for (int i = 0; i < ctx->models.n; i++) { /* all models' workers together */
        sc_embed_pool_stats_t one;
        sc_embed_pool_stats(ctx->models.m[i].pool, &one);
        ep.texts += one.texts;
        ep.batches += one.batches;
        ep.queue_depth += one.queue_depth;
    }
    sc_store_stats(ctx->store, &st);
    sc_scopes_stats(ctx->scopes, &ix);
    const scalar_t store[] = {
        {"semcached_entries", "gauge", "Entries in the store (expired ones until swept).",
         st.entries},
        {"semcached_store_bytes", "gauge", "Bytes of LMDB pages in use.", st.bytes},
        {"semcached_store_map_bytes", "gauge", "Configured LMDB map size (--map-size).",
         st.map_bytes},
        {"semcached_expired_total", "counter", "Entries removed because their TTL passed.",
         st.expired_total},
        {"semcached_evicted_total", "counter", "Entries removed to make room.", st.evicted_total},
        {"semcached_store_commits_total", "counter", "Write transactions committed.",
         st.commits_total},
        {"semcached_store_writes_total", "counter", "Write operations applied.", st.writes_total},
        {"semcached_write_queue_depth", "gauge", "Write operations waiting for the writer.",
         st.queue_depth},
        {"semcached_hit_updates_dropped_total", "counter",
         "Hit-count updates dropped because the buffer was full.", st.touches_dropped},
    };
    scalars(b, store, sizeof(store) / sizeof(store[0]));
    family(b, "semcached_index_vectors", "gauge", "Live vectors by index kind.");
    sc_buf_printf(b,
                  "semcached_index_vectors{kind=\"flat\"} "
                  "%llu\nsemcached_index_vectors{kind=\"hnsw\"} %llu\n",
                  (unsigned long long)ix.vectors_flat, (unsigned long long)ix.vectors_hnsw);
    family(b, "semcached_index_scopes", "gauge", "Scopes by index kind.");
    sc_buf_printf(
        b,
        "semcached_index_scopes{kind=\"flat\"} %llu\nsemcached_index_scopes{kind=\"hnsw\"} %llu\n",
        (unsigned long long)ix.scopes_flat, (unsigned long long)ix.scopes_hnsw);
    const scalar_t index[] = {
        {"semcached_index_delta_vectors", "gauge",
         "Vectors of HNSW scopes kept in their exact delta, not yet merged into the graph.",
         ix.vectors_delta},
        {"semcached_index_deleted_vectors", "gauge",
         "Vectors deleted or tombstoned in HNSW indexes, awaiting compaction.", ix.deleted_hnsw},
        {"semcached_index_promotions_total", "counter", "Scopes promoted from flat to HNSW.",
         ix.promotions},
        {"semcached_index_merges_total", "counter",
         "Deltas merged into a copy of their HNSW graph.", ix.merges},
        {"semcached_index_compactions_total", "counter",
         "HNSW indexes rebuilt to drop deleted vectors.", ix.compactions},
        {"semcached_index_ready", "gauge", "1 once the indexes are loaded.",
         (uint64_t)sc_scopes_ready(ctx->scopes)},
    };
    scalars(b, index, sizeof(index) / sizeof(index[0]));
    /* The decide-search on HNSW scopes (README "Semantic lookup and scopes"):
     * disagreed / verified is the measured small-beam disagreement rate. */
    family(b, "semcached_search_decisions_total", "counter",
           "Semantic lookups on HNSW scopes by the beam whose answer was served "
           "(small: --hnsw-ef-search-min, wide: --hnsw-ef-search).");
    sc_buf_printf(b,
                  "semcached_search_decisions_total{beam=\"small\"} %llu\n"
                  "semcached_search_decisions_total{beam=\"wide\"} %llu\n",
                  (unsigned long long)ix.decided_small, (unsigned long long)ix.decided_wide);
    const scalar_t search[] = {
        {"semcached_search_verified_total", "counter",
         "Small-beam decisions re-run at the widest beam to measure the small beam "
         "(each scope's warm-up, then 1 in --search-verify-every).",
         ix.verified},
        {"semcached_search_disagreed_total", "counter",
         "Verified decisions on which the small and the widest beam disagreed.", ix.disagreed},
        {"semcached_search_scopes_untrusted", "gauge",
         "HNSW scopes whose small beam disagreed with the widest too often (--search-max-disagree) "
         "on hits or on misses; the widest beam answers those decisions.",
         ix.scopes_untrusted},
    };
    scalars(b, search, sizeof(search) / sizeof(search[0]));
    family(b, "semcached_semantic_skipped_total", "counter",
           "Lookups answered exact-only (and stores kept without a vector) because embedding was "
           "not possible.");
    for (int r = 0; r < SC_SKIP_COUNT; r++)
        sc_buf_printf(b, "semcached_semantic_skipped_total{reason=\"%s\"} %llu\n",
                      sc_skip_reason_name((sc_skip_reason_t)r),
                      (unsigned long long)atomic_load(&ctx->semantic_skipped[r]));
    const scalar_t embed[] = {
        {"semcached_embed_texts_total", "counter", "Texts embedded by the server's model.",
         ep.texts},
        {"semcached_embed_batches_total", "counter", "Embedding batches run.", ep.batches},
        {"semcached_embed_queue_depth", "gauge", "Texts waiting for the embedding workers.",
         ep.queue_depth},
        {"semcached_connections", "gauge", "Open client connections.",
         (uint64_t)atomic_load(&ctx->n_conns)},
    };
    scalars(b, embed, sizeof(embed) / sizeof(embed[0]));
    family(b, "semcached_embedder_up", "gauge",
           "1 while the model can embed (a remote endpoint's last call answered), else 0.");
    for (int i = 0; i < ctx->models.n; i++)
        sc_buf_printf(b, "semcached_embedder_up{model=\"%s\"} %d\n", ctx->models.m[i].name,
                      sc_embedder_state(ctx->models.m[i].embedder) == SC_EMBEDDER_UP);
}

/* ---- quality --------------------------------------------------------------- */


static void render_quality(void *arg, const char *ns, const sc_quality_ns_t *st)
{
    quality_render_t *r = arg;
    if (r->left-- <= 0)
        return; /* bounded like every request-derived label */
    if (r->section == 0) {
        for (int m = 0; m < SC_MATCH_KINDS; m++) {
            sc_buf_printf(r->b,
                          "semcached_validations_total{namespace=\"%s\",match=\"%s\",verdict="
                          "\"correct\"} %llu\n",
                          ns, sc_match_names[m],
                          (unsigned long long)(st->validated[m] - st->wrong[m]));
            sc_buf_printf(r->b,
                          "semcached_validations_total{namespace=\"%s\",match=\"%s\",verdict="
                          "\"wrong\"} %llu\n",
                          ns, sc_match_names[m], (unsigned long long)st->wrong[m]);
        }
    } else if (r->section <= 2) {
        sc_buf_printf(r->b, "semcached_false_hit_rate%s{namespace=\"%s\"} %.6f\n",
                      r->section == 1 ? "" : "_upper", ns, r->section == 1 ? st->rate : st->upper);
    } else {
        sc_buf_printf(r->b, "semcached_semantic_false_hit_rate%s{namespace=\"%s\"} %.6f\n",
                      r->section == 3 ? "" : "_upper", ns,
                      r->section == 3 ? st->semantic_rate : st->semantic_upper);
    }
}

/* Namespace names with validations, collected first: the learned threshold
 * takes the quality lock that sc_quality_foreach holds. */
typedef struct {
    char (*names)[SC_MAX_NAMESPACE + 1];
    int n, cap;
} ns_names_t;

static void collect_name(void *arg, const char *ns, const sc_quality_ns_t *st)
{
    ns_names_t *l = arg;
    (void)st;
    if (l->n < l->cap)
        snprintf(l->names[l->n++], SC_MAX_NAMESPACE + 1, "%s", ns);
}

static void render_learned_thresholds(sc_ctx_t *ctx, sc_buf_t *b)
{
    ns_names_t l = {NULL, 0, (int)ctx->cfg.max_label_values};
    l.names = calloc((size_t)l.cap, sizeof(*l.names));
    if (!l.names)
        return;
    sc_quality_foreach(ctx->quality, collect_name, &l);
    family(b, "semcached_learned_threshold", "gauge",
           "Similarity above which a max_error_rate namespace serves semantic hits (absent until "
           "its validations support one).");
    for (int i = 0; i < l.n; i++) {
        sc_ns_config_t ns;
        double t;
        sc_namespaces_get(ctx->namespaces, l.names[i], strlen(l.names[i]), &ns);
        if (sc_api_learned_threshold(ctx, l.names[i], &ns, &t, NULL))
            sc_buf_printf(b, "semcached_learned_threshold{namespace=\"%s\"} %.3f\n", l.names[i], t);
    }
    free(l.names);
}

/* Paid validations and the ones the validation budget paused. */
typedef struct {
    sc_buf_t *b;
    int paused;
    int left;
} spend_render_t;

static void render_spend_ns(void *arg, const char *ns, const sc_spend_stats_t *st)
{
    spend_render_t *r = arg;
    if (r->left-- > 0)
        sc_buf_printf(r->b, "semcached_validation_%s_total{namespace=\"%s\"} %llu\n",
                      r->paused ? "paused" : "paid", ns,
                      (unsigned long long)(r->paused ? st->paused : st->paid));
}

static void render_spend(sc_ctx_t *ctx, sc_buf_t *b)
{
    family(b, "semcached_validation_paid_total", "counter",
           "Paid validations (sampled hits re-inferred, explorations sent upstream) by namespace.");
    spend_render_t r = {b, 0, (int)ctx->cfg.max_label_values};
    sc_spend_foreach(sc_quality_spend(ctx->quality), render_spend_ns, &r);
    family(b, "semcached_validation_paused_total", "counter",
           "Validations not made because the namespace's validation_budget was spent.");
    r = (spend_render_t){b, 1, (int)ctx->cfg.max_label_values};
    sc_spend_foreach(sc_quality_spend(ctx->quality), render_spend_ns, &r);
}

static void render_validation(sc_ctx_t *ctx, sc_buf_t *b)
{
    static const char *const rates[4][2] = {
        {"semcached_false_hit_rate", "Wrong validated hits over validated hits."},
        {"semcached_false_hit_rate_upper",
         "Upper end of the 95 % Wilson interval of the false-hit rate."},
        {"semcached_semantic_false_hit_rate",
         "Wrong validated semantic hits over validated semantic hits."},
        {"semcached_semantic_false_hit_rate_upper",
         "Upper end of the 95 % Wilson interval of the semantic false-hit rate."},
    };
    quality_render_t qr = {b, 0, (int)ctx->cfg.max_label_values};
    family(b, "semcached_validations_total", "counter",
           "Validated hits by namespace, match kind and verdict.");
    sc_quality_foreach(ctx->quality, render_quality, &qr);
    for (int i = 0; i < 4; i++) {
        family(b, rates[i][0], "gauge", rates[i][1]);
        qr.section = i + 1;
        qr.left = (int)ctx->cfg.max_label_values;
        sc_quality_foreach(ctx->quality, render_quality, &qr);
    }
    render_learned_thresholds(ctx, b);
    render_spend(ctx, b);
}

/* The whole /metrics text. */
/* ---- the fleet ------------------------------------------------------------ */


static void render_fleet(sc_ctx_t *ctx, sc_buf_t *b)
{
    if (!ctx->fleet)
        return;
    sc_fleet_stats_t f;
    sc_fleet_stats(ctx->fleet, &f);
    const scalar_t gauges[] = {
        {"semcached_fleet_connected", "gauge", "1 while both Redis connections are up.",
         (uint64_t)f.connected},
        {"semcached_fleet_ready", "gauge", "1 unless this node is joining and not caught up.",
         (uint64_t)f.ready},
        {"semcached_fleet_resync_needed", "gauge",
         "1 when the stream was trimmed past this node while it ran (restart it).",
         (uint64_t)f.resync_needed},
        {"semcached_fleet_replication_lag_records", "gauge",
         "Stream records after this node's position (exact up to 100000).", f.lag_records},
        {"semcached_fleet_outbox_depth", "gauge", "Local changes not yet published.",
         f.store.outbox_depth},
        {"semcached_fleet_outbox_dropped_total", "counter",
         "Unpublished local changes dropped beyond --fleet-outbox-max.", f.store.outbox_dropped},
        {"semcached_fleet_published_total", "counter", "Local changes published to the stream.",
         f.published},
        {"semcached_fleet_publish_errors_total", "counter", "Records Redis refused.",
         f.publish_errors},
        {"semcached_fleet_applied_total", "counter", "Peers' changes applied.", f.store.applied},
        {"semcached_fleet_conflicts_total", "counter",
         "Peers' changes that lost to a newer version or a tombstone.", f.store.conflicts},
        {"semcached_fleet_duplicates_total", "counter", "Records applied already.",
         f.store.duplicates},
        {"semcached_fleet_refused_total", "counter",
         "Peers' stores this node could not hold (full, expired).", f.store.refused},
        {"semcached_fleet_vectors_dropped_total", "counter",
         "Peers' entries kept exact-only: another embedder made their vectors.",
         f.store.vectors_dropped},
        {"semcached_fleet_tombstones", "gauge", "Deletes remembered.", f.store.tombstones},
        {"semcached_fleet_reconnects_total", "counter", "Redis connections established.",
         f.reconnects},
    };
    family(b, "semcached_fleet_replication_lag_seconds", "gauge",
           "Age of the newest peer change when this node applied it (0 when caught up).");
    sc_buf_printf(b, "semcached_fleet_replication_lag_seconds %.3f\n", (double)f.lag_ms / 1e3);
    scalars(b, gauges, sizeof(gauges) / sizeof(gauges[0]));
    family(b, "semcached_fleet_skipped_total", "counter", "Stream records not applied, by reason.");
    sc_buf_printf(b,
                  "semcached_fleet_skipped_total{reason=\"own\"} %llu\n"
                  "semcached_fleet_skipped_total{reason=\"malformed\"} %llu\n"
                  "semcached_fleet_skipped_total{reason=\"skewed\"} %llu\n",
                  (unsigned long long)f.store.own, (unsigned long long)f.malformed,
                  (unsigned long long)f.store.skewed);
    sc_fleet_peer_t peers[FLEET_PEERS_SHOWN];
    size_t n = sc_fleet_peers(ctx->fleet, peers, FLEET_PEERS_SHOWN);
    family(b, "semcached_fleet_node_lag_seconds", "gauge",
           "Each node's replication lag as its last heartbeat in the registry said.");
    for (size_t i = 0; i < n; i++)
        sc_buf_printf(b, "semcached_fleet_node_lag_seconds{node=\"%016llx\"} %.3f\n",
                      (unsigned long long)peers[i].node, (double)peers[i].lag_ms / 1e3);
    family(b, "semcached_fleet_node_lag_records", "gauge",
           "Each node's replication lag in records as its last heartbeat said.");
    for (size_t i = 0; i < n; i++)
        sc_buf_printf(b, "semcached_fleet_node_lag_records{node=\"%016llx\"} %llu\n",
                      (unsigned long long)peers[i].node, (unsigned long long)peers[i].lag_records);
}

static void render_prometheus(sc_ctx_t *ctx, sc_buf_t *b)
{
    render_shards(ctx->metrics, b);
    render_proxy(ctx, b);
    render_engine(ctx, b);
    render_validation(ctx, b);
    render_fleet(ctx, b);
    sc_store_stats_t st;
    sc_store_stats(ctx->store, &st);
    family(
        b, "semcached_store_writer_seconds_total", "counter",
        "Time the store's writer thread spent by kind of work (a busy writer makes stores wait).");
    sc_buf_printf(b,
                  "semcached_store_writer_seconds_total{work=\"writes\"} %.6f\n"
                  "semcached_store_writer_seconds_total{work=\"sweep\"} %.6f\n"
                  "semcached_store_writer_seconds_total{work=\"sync\"} %.6f\n",
                  (double)st.writer_writes_ns / 1e9, (double)st.writer_sweep_ns / 1e9,
                  (double)st.writer_sync_ns / 1e9);
    const scalar_t process[] = {
        {"semcached_validation_dropped_total", "counter",
         "Hits that were to be validated but found the pending table full or could not be "
         "delivered.",
         sc_quality_dropped(ctx->quality)},
        {"semcached_validation_expired_total", "counter",
         "Validations forgotten unanswered after --validation-timeout-s.",
         sc_quality_expired(ctx->quality)},
        {"semcached_validations_pending", "gauge", "Validations awaiting feedback.",
         sc_quality_pending(ctx->quality)},
        {"semcached_upstream_calls_total", "counter",
         "Re-inference calls to --upstream-url that ended.", atomic_load(&ctx->upstream_calls)},
        {"semcached_upstream_failures_total", "counter",
         "Re-inferences that failed (error, timeout, non-2xx, no comparison).",
         atomic_load(&ctx->upstream_failures)},
        {"semcached_webhook_posts_total", "counter", "Validations posted to --webhook-url.",
         atomic_load(&ctx->webhook_posts)},
        {"semcached_webhook_failures_total", "counter", "Webhook posts that failed.",
         atomic_load(&ctx->webhook_failures)},
        {"semcached_compare_failures_total", "counter",
         "Verdicts lost because the answers could not be embedded.",
         atomic_load(&ctx->compare_failures)},
    };
    scalars(b, process, sizeof(process) / sizeof(process[0]));
    static const char *const judge_results[4] = {"same", "different", "no_verdict", "failed"};
    family(b, "semcached_judge_calls_total", "counter",
           "compare \"judge\" calls by result (no_verdict: the reply was not exactly SAME or "
           "DIFFERENT; failed: not sent, failed, or no model to ask).");
    for (int r = 0; r < 4; r++)
        sc_buf_printf(b, "semcached_judge_calls_total{result=\"%s\"} %llu\n", judge_results[r],
                      (unsigned long long)atomic_load(&ctx->judge_verdicts[r]));
}

void sc_api_metrics(const sc_call_t *a)
{
    sc_buf_t b = {0};
    render_prometheus(a->ctx, &b);
    sc_conn_respond(a->c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL,
                    b.data ? b.data : "", b.len);
    sc_buf_free(&b);
}

/* /healthz: the loop answers. /readyz: the store is open and the indexes
 * are loaded (a load balancer holds traffic until then), and a node joining
 * a fleet has caught up with it; its body also says each model's state,
 * which never makes it 503: exact hits need no model. */
void sc_api_health(const sc_call_t *a)
{
    if (a->route->label == SC_EP_READYZ && !atomic_load(&a->ctx->ready)) {
        static const char nr[] = "{\"status\":\"starting\"}";
        sc_conn_respond(a->c, 503, SC_JSON_CT, NULL, nr, sizeof(nr) - 1);
        return;
    }
    if (a->route->label == SC_EP_READYZ && a->ctx->fleet && !sc_fleet_ready(a->ctx->fleet)) {
        static const char cu[] = "{\"status\":\"catching_up\"}";
        sc_conn_respond(a->c, 503, SC_JSON_CT, NULL, cu, sizeof(cu) - 1);
        return;
    }
    if (a->route->label == SC_EP_READYZ) {
        const sc_models_t *ms = &a->ctx->models;
        sc_buf_t b = {0};
        sc_buf_puts(&b, "{\"status\":\"ok\",\"embedders\":{");
        for (int i = 0; i < ms->n; i++) {
            if (i)
                sc_buf_puts(&b, ",");
            sc_buf_json_str(&b, ms->m[i].name, strlen(ms->m[i].name));
            sc_buf_printf(&b, ":\"%s\"",
                          sc_embedder_state_name(sc_embedder_state(ms->m[i].embedder)));
        }
        sc_buf_puts(&b, "}}");
        sc_api_reply_json(a->c, 200, &b);
        sc_buf_free(&b);
        return;
    }
    static const char ok[] = "{\"status\":\"ok\"}";
    sc_conn_respond(a->c, 200, SC_JSON_CT, NULL, ok, sizeof(ok) - 1);
}
