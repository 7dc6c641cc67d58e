/* tests/server/ctx_fixture.h -- a process context (sc_ctx_t) with a real
 * store in a temporary directory, indexes, namespaces, quality and metrics,
 * and one worker with a store reader and a metrics shard: enough to call the
 * API's and validation's functions without starting the server. Included by
 * the unit tests of server/ that need it (static functions only). */
#ifndef SC_TEST_CTX_FIXTURE_H
#define SC_TEST_CTX_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "testutil.h"

typedef struct {
    sc_ctx_t ctx;
    sc_worker_t w;
    sc_log_t log;
    char dir[64];
} tctx_t;

/* 'max_labels' is --max-label-values; 'opts' are extra option pairs (NULL-ended). */
static void tctx_open(tctx_t *t, int max_labels, const char *const *opts)
{
    memset(t, 0, sizeof(*t));
    sc_ctx_t *ctx = &t->ctx;
    sc_config_defaults(&ctx->cfg);
    char labels[16];
    snprintf(labels, sizeof(labels), "%d", max_labels);
    ck_assert_int_eq(sc_config_set(&ctx->cfg, "max-label-values", labels, stderr), 0);
    ck_assert_int_eq(sc_config_set(&ctx->cfg, "map-size", "64M", stderr), 0);
    ck_assert_int_eq(sc_config_set(&ctx->cfg, "sync", "none", stderr), 0);
    for (size_t i = 0; opts && opts[i]; i += 2)
        ck_assert_int_eq(sc_config_set(&ctx->cfg, opts[i], opts[i + 1], stderr), 0);
    sc_log_init(&t->log, NULL, SC_ERROR);
    ctx->log = &t->log;
    snprintf(t->dir, sizeof(t->dir), "/tmp/sc-ctx-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    sc_scopes_config_t icfg = {.flat_max = 64,
                               .hnsw_m = 8,
                               .hnsw_ef_construction = 40,
                               .hnsw_ef_search = 20,
                               .compact_deleted_ratio = 0.5,
                               .delta_max = 64};
    sc_quality_opts_t q = {.max_pending = 64,
                           .budget_confidence = 0.95,
                           .budget_min_scope_obs = 10,
                           .budget_max_scopes = 16};
    ck_assert_int_eq(sc_metrics_create(&ctx->metrics, 1, SC_EP_COUNT, max_labels), 0);
    ck_assert_int_eq(sc_store_create(&ctx->store, &ctx->cfg, ctx->log), 0);
    ck_assert_int_eq(sc_store_open(ctx->store, t->dir), 0);
    ck_assert_int_eq(sc_namespaces_create(&ctx->namespaces, &ctx->cfg), 0);
    ck_assert_int_eq(sc_scopes_create(&ctx->scopes, &icfg, ctx->log), 0);
    ck_assert_int_eq(sc_quality_create(&ctx->quality, &q), 0);
    ctx->n_workers = 1;
    ctx->workers = &t->w;
    t->w.ctx = ctx;
    t->w.metrics = sc_metrics_shard(ctx->metrics, 0);
    t->w.rng = 12345;
    ck_assert_int_eq(sc_store_reader_create(ctx->store, &t->w.reader), 0);
}

static void tctx_close(tctx_t *t)
{
    sc_ctx_t *ctx = &t->ctx;
    sc_store_reader_destroy(t->w.reader);
    sc_store_destroy(ctx->store);
    sc_scopes_destroy(ctx->scopes);
    sc_namespaces_destroy(ctx->namespaces);
    sc_quality_destroy(ctx->quality);
    sc_metrics_destroy(ctx->metrics);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
    ck_assert_int_eq(system(cmd), 0);
}

#endif
