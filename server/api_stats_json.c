/* api_stats_json.c -- GET /v1/stats: the figures of /metrics as one JSON
 * object (store, indexes, models and queues, lookups, quality, savings,
 * single flight, the fleet, and what the /ui dashboard draws), composed
 * on the loop from the same counters, without locks beyond each module's own
 * snapshot. */
#define _GNU_SOURCE
#include "api.h"
#include "api_stats_internal.h"
#include "flight.h"
#include "proxy.h"
#include "savings.h"

#include <stdlib.h>
#include <string.h>

static void stats_fleet(sc_ctx_t *ctx, sc_buf_t *b)
{
    if (!ctx->fleet) {
        sc_buf_puts(b, "null");
        return;
    }
    sc_fleet_stats_t f;
    sc_fleet_stats(ctx->fleet, &f);
    sc_buf_printf(b, "{\"name\":");
    sc_buf_json_str(b, ctx->cfg.fleet, strlen(ctx->cfg.fleet));
    sc_buf_printf(b,
                  ",\"node\":\"%s\",\"connected\":%s,\"ready\":%s,\"resync_needed\":%s,"
                  "\"read_id\":\"%llu-%llu\",\"lag_ms\":%llu,\"lag_records\":%llu,"
                  "\"lag_p50_ms\":%llu,\"lag_p99_ms\":%llu,"
                  "\"outbox\":{\"depth\":%llu,\"dropped\":%llu},\"recorded\":%llu,"
                  "\"published\":%llu,\"publish_errors\":%llu,\"read\":%llu,\"batches\":%llu,"
                  "\"applied\":%llu,\"duplicates\":%llu,\"conflicts\":%llu,\"refused\":%llu,"
                  "\"skipped\":{\"own\":%llu,\"malformed\":%llu,\"skewed\":%llu},"
                  "\"vectors_dropped\":%llu,\"tombstones\":%llu,\"reconnects\":%llu,\"nodes\":[",
                  sc_fleet_node_hex(ctx->fleet), f.connected ? "true" : "false",
                  f.ready ? "true" : "false", f.resync_needed ? "true" : "false",
                  (unsigned long long)f.read_id.ms, (unsigned long long)f.read_id.seq,
                  (unsigned long long)f.lag_ms, (unsigned long long)f.lag_records,
                  (unsigned long long)f.lag_p50_ms, (unsigned long long)f.lag_p99_ms,
                  (unsigned long long)f.store.outbox_depth,
                  (unsigned long long)f.store.outbox_dropped, (unsigned long long)f.store.recorded,
                  (unsigned long long)f.published, (unsigned long long)f.publish_errors,
                  (unsigned long long)f.read, (unsigned long long)f.batches,
                  (unsigned long long)f.store.applied, (unsigned long long)f.store.duplicates,
                  (unsigned long long)f.store.conflicts, (unsigned long long)f.store.refused,
                  (unsigned long long)f.store.own, (unsigned long long)f.malformed,
                  (unsigned long long)f.store.skewed, (unsigned long long)f.store.vectors_dropped,
                  (unsigned long long)f.store.tombstones, (unsigned long long)f.reconnects);
    sc_fleet_peer_t peers[FLEET_PEERS_SHOWN];
    size_t n = sc_fleet_peers(ctx->fleet, peers, FLEET_PEERS_SHOWN);
    uint64_t now = sc_now_ms();
    for (size_t i = 0; i < n; i++)
        sc_buf_printf(b,
                      "%s{\"node\":\"%016llx\",\"applied_id\":\"%llu-%llu\",\"lag_ms\":%llu,"
                      "\"lag_records\":%llu,\"seen_ms_ago\":%llu}",
                      i ? "," : "", (unsigned long long)peers[i].node,
                      (unsigned long long)peers[i].applied.ms,
                      (unsigned long long)peers[i].applied.seq, (unsigned long long)peers[i].lag_ms,
                      (unsigned long long)peers[i].lag_records,
                      (unsigned long long)(now > peers[i].seen_ms ? now - peers[i].seen_ms : 0));
    sc_buf_puts(b, "]}");
}

/* ---- /v1/stats ------------------------------------------------------------- */

static void render_quality_json(void *arg, const char *ns, const sc_quality_ns_t *st)
{
    quality_render_t *r = arg;
    if (r->left-- <= 0)
        return;
    if (r->section++)
        sc_buf_puts(r->b, ",");
    sc_buf_json_str(r->b, ns, strlen(ns));
    sc_buf_printf(r->b,
                  ":{\"validated\":{\"exact\":%llu,\"semantic\":%llu,\"explore\":%llu,"
                  "\"observed\":%llu},"
                  "\"wrong\":{\"exact\":%llu,\"semantic\":%llu,\"explore\":%llu,"
                  "\"observed\":%llu},"
                  "\"false_hit_rate\":%.6f,\"false_hit_rate_upper\":%.6f,"
                  "\"semantic_false_hit_rate\":%.6f,\"semantic_false_hit_rate_upper\":%.6f}",
                  (unsigned long long)st->validated[0], (unsigned long long)st->validated[1],
                  (unsigned long long)st->validated[2], (unsigned long long)st->validated[3],
                  (unsigned long long)st->wrong[0], (unsigned long long)st->wrong[1],
                  (unsigned long long)st->wrong[2], (unsigned long long)st->wrong[3], st->rate,
                  st->upper, st->semantic_rate, st->semantic_upper);
}

/* One model: identity, dimensions (null while a remote one is unknown) and
 * state ("up", "down", "unavailable"). */
static void model_info(sc_buf_t *b, const sc_model_t *m)
{
    uint32_t dim = sc_embedder_dim(m->embedder);
    sc_buf_printf(b, "{\"identity\":\"%s\",\"dimensions\":", sc_embedder_identity(m->embedder));
    if (dim)
        sc_buf_printf(b, "%u", dim);
    else
        sc_buf_puts(b, "null");
    sc_buf_printf(b, ",\"state\":\"%s\"}", sc_embedder_state_name(sc_embedder_state(m->embedder)));
}

/* "embedder" is the default model's (null without --model); "models" lists
 * every model namespaces may choose. */
static void stats_models(sc_ctx_t *ctx, sc_buf_t *b)
{
    const sc_model_t *dm = sc_models_find(&ctx->models, "default");
    sc_buf_puts(b, "{\"embedder\":");
    if (dm)
        model_info(b, dm);
    else
        sc_buf_puts(b, "null");
    sc_buf_puts(b, ",\"models\":{");
    for (int i = 0; i < ctx->models.n; i++) {
        if (i)
            sc_buf_puts(b, ",");
        sc_buf_json_str(b, ctx->models.m[i].name, strlen(ctx->models.m[i].name));
        sc_buf_puts(b, ":");
        model_info(b, &ctx->models.m[i]);
    }
    sc_buf_puts(b, "},");
}

static void stats_engine(sc_ctx_t *ctx, sc_buf_t *b)
{
    sc_store_stats_t st;
    sc_metrics_totals_t t;
    sc_scopes_stats_t ix;
    sc_store_stats(ctx->store, &st);
    sc_metrics_totals(ctx->metrics, &t);
    sc_scopes_stats(ctx->scopes, &ix);
    uint64_t lookups =
        t.lookups[SC_LR_EXACT_HIT] + t.lookups[SC_LR_SEMANTIC_HIT] + t.lookups[SC_LR_MISS];
    uint64_t hits = t.lookups[SC_LR_EXACT_HIT] + t.lookups[SC_LR_SEMANTIC_HIT];
    int ready = atomic_load(&ctx->ready);
    sc_buf_printf(
        b,
        "\"index\":{\"ready\":%s,\"loaded_from\":\"%s\",\"load_s\":%.3f,"
        "\"vectors\":{\"flat\":%llu,\"hnsw\":%llu},\"scopes\":{\"flat\":%llu,\"hnsw\":%llu},"
        "\"delta\":%llu,\"deleted\":%llu,\"promotions\":%llu,\"merges\":%llu,"
        "\"compactions\":%llu,\"rebuilding\":%llu,"
        "\"search\":{\"small\":%llu,\"wide\":%llu,\"verified\":%llu,\"disagreed\":%llu,"
        "\"untrusted_scopes\":%llu}},",
        ready ? "true" : "false",
        sc_index_source_name(ready ? ctx->index_source : SC_INDEX_LOADING),
        ready ? ctx->index_load_s : 0.0, (unsigned long long)ix.vectors_flat,
        (unsigned long long)ix.vectors_hnsw, (unsigned long long)ix.scopes_flat,
        (unsigned long long)ix.scopes_hnsw, (unsigned long long)ix.vectors_delta,
        (unsigned long long)ix.deleted_hnsw, (unsigned long long)ix.promotions,
        (unsigned long long)ix.merges, (unsigned long long)ix.compactions,
        (unsigned long long)ix.rebuilding, (unsigned long long)ix.decided_small,
        (unsigned long long)ix.decided_wide, (unsigned long long)ix.verified,
        (unsigned long long)ix.disagreed, (unsigned long long)ix.scopes_untrusted);
    sc_buf_printf(
        b,
        "\"entries\":%llu,\"store_bytes\":%llu,\"map_bytes\":%llu,"
        "\"lookups\":{\"total\":%llu,\"exact_hit\":%llu,\"semantic_hit\":%llu,\"miss\":%llu},"
        "\"hit_rate\":%.6f,\"tokens_saved\":{\"prompt\":%llu,\"completion\":%llu},"
        "\"expired_total\":%llu,\"evicted_total\":%llu,\"commits_total\":%llu,"
        "\"writes_total\":%llu,\"write_queue\":%llu,"
        "\"writer_busy_s\":{\"writes\":%.3f,\"sweep\":%.3f,\"sync\":%.3f},",
        (unsigned long long)st.entries, (unsigned long long)st.bytes,
        (unsigned long long)st.map_bytes, (unsigned long long)lookups,
        (unsigned long long)t.lookups[SC_LR_EXACT_HIT],
        (unsigned long long)t.lookups[SC_LR_SEMANTIC_HIT],
        (unsigned long long)t.lookups[SC_LR_MISS], lookups ? (double)hits / (double)lookups : 0.0,
        (unsigned long long)t.prompt_tokens_saved, (unsigned long long)t.completion_tokens_saved,
        (unsigned long long)st.expired_total, (unsigned long long)st.evicted_total,
        (unsigned long long)st.commits_total, (unsigned long long)st.writes_total,
        (unsigned long long)st.queue_depth, (double)st.writer_writes_ns / 1e9,
        (double)st.writer_sweep_ns / 1e9, (double)st.writer_sync_ns / 1e9);
}

/* For the dashboard (/ui): the similarity histogram of semantic hits and
 * near misses (per bucket, not cumulative: bucket i counts le[i-1] < s <=
 * le[i]), lookups by namespace and result (the namespaces the loops have
 * seen, up to --max-label-values), and the embedders' queue. */
static void stats_lookups_ns(void *arg, const char *ns, size_t ns_len,
                             const uint64_t v[SC_LR_COUNT])
{
    sc_buf_t *b = arg;
    if (!ns)
        return; /* past the label cap */
    if (b->len && b->data[b->len - 1] != '{')
        sc_buf_puts(b, ",");
    sc_buf_json_str(b, ns, ns_len);
    sc_buf_printf(b, ":{\"exact_hit\":%llu,\"semantic_hit\":%llu,\"miss\":%llu}",
                  (unsigned long long)v[SC_LR_EXACT_HIT], (unsigned long long)v[SC_LR_SEMANTIC_HIT],
                  (unsigned long long)v[SC_LR_MISS]);
}

static void stats_dashboard(sc_ctx_t *ctx, sc_buf_t *b)
{
    sc_metrics_similarity_t s[2];
    sc_metrics_similarities(ctx->metrics, 1, &s[0]);
    sc_metrics_similarities(ctx->metrics, 0, &s[1]);
    sc_buf_puts(b, ",\"similarity\":{\"le\":[");
    for (size_t k = 0; k < SC_METRICS_SIM_BUCKETS; k++)
        sc_buf_printf(b, "%s%g", k ? "," : "", sc_metrics_sim_le[k]);
    for (int i = 0; i < 2; i++) {
        sc_buf_printf(b, "],\"%s\":[", i ? "near_miss" : "hit");
        for (size_t k = 0; k < SC_METRICS_SIM_BUCKETS; k++)
            sc_buf_printf(b, "%s%llu", k ? "," : "",
                          (unsigned long long)(s[i].le[k] - (k ? s[i].le[k - 1] : 0)));
    }
    sc_buf_puts(b, "]},\"lookups_by_namespace\":{");
    sc_metrics_foreach_lookups(ctx->metrics, stats_lookups_ns, b);
    uint64_t embed_queue = 0;
    for (int i = 0; i < ctx->models.n; i++) {
        sc_embed_pool_stats_t one;
        sc_embed_pool_stats(ctx->models.m[i].pool, &one);
        embed_queue += one.queue_depth;
    }
    sc_buf_printf(b, "},\"embed_queue\":%llu", (unsigned long long)embed_queue);
}

void sc_api_stats(const sc_call_t *a)
{
    sc_ctx_t *ctx = a->ctx;
    sc_buf_t b = {0};
    stats_models(ctx, &b);
    stats_engine(ctx, &b);
    sc_buf_printf(&b, "\"connections\":%lld,\"event_loops\":%d,\"uptime_s\":%llu",
                  (long long)atomic_load(&ctx->n_conns), ctx->n_workers,
                  (unsigned long long)((sc_now_ms() - ctx->started_ms) / 1000));
    sc_buf_puts(&b, ",\"connections_by_loop\":[");
    for (int i = 0; i < ctx->n_workers; i++)
        sc_buf_printf(&b, "%s%d", i ? "," : "", sc_http_loop_conns(ctx->workers[i].http));
    sc_buf_puts(&b, "]");
    sc_buf_printf(&b, ",\"quality\":{\"pending\":%llu,\"dropped\":%llu,\"namespaces\":{",
                  (unsigned long long)sc_quality_pending(ctx->quality),
                  (unsigned long long)sc_quality_dropped(ctx->quality));
    quality_render_t qr = {&b, 0, (int)ctx->cfg.max_label_values};
    sc_quality_foreach(ctx->quality, render_quality_json, &qr);
    sc_buf_puts(&b, "}},");
    sc_savings_stats_json(ctx, &b);
    sc_buf_puts(&b, ",");
    sc_flight_stats_json(ctx->flight, &b);
    sc_buf_puts(&b, ",\"fleet\":");
    stats_fleet(ctx, &b);
    stats_dashboard(ctx, &b);
    sc_buf_puts(&b, "}");
    sc_api_reply_json(a->c, 200, &b);
    sc_buf_free(&b);
}

/* ---- health ---------------------------------------------------------------- */

