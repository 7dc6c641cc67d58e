/* fleet_node.c -- fleet mode in the process (fleet_node.h): the bootstrap and
 * the store's fleet hooks before it opens, the start once the port is known,
 * the stop between the loops' and the writer's. The hooks run on the store's
 * writer thread after a commit: a peer's namespace settings go into the
 * in-memory table (as stored settings do at start-up), and the embedder this
 * node would make a namespace's vectors with is named from its model (a
 * peer's vector from another embedder is then kept exact-only). */
#define _GNU_SOURCE
#include "fleet_node.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void sc_fleet_node_ns_loaded(void *arg, const char *name, size_t len, const char *doc,
                             size_t doc_len)
{
    sc_ctx_t *ctx = arg;
    if (!doc) {
        sc_namespaces_remove(ctx->namespaces, name, len);
        return;
    }
    json_error_t e;
    json_t *j = json_loadb(doc, doc_len, 0, &e);
    sc_ns_config_t c;
    char err[256];
    sc_ns_config_defaults(&ctx->cfg, &c);
    if (j && sc_ns_config_apply_json(&c, j, err, sizeof(err)) == 0) {
        c.configured = 1;
        sc_namespaces_set(ctx->namespaces, name, len, &c);
    } else {
        sc_log(ctx->log, SC_ERROR, "namespace %.*s: stored settings are unreadable; using defaults",
               (int)len, name);
    }
    json_decref(j);
}

/* The model this node embeds namespace 'ns' with, else the embedder its
 * vectors were recorded with (clients send them). */
static void embedder_of(void *arg, sc_slice_t ns, char *out, size_t cap)
{
    sc_ctx_t *ctx = arg;
    sc_ns_config_t c;
    sc_namespaces_get(ctx->namespaces, ns.ptr, ns.len, &c);
    const sc_model_t *m = sc_models_for(&ctx->models, &c);
    snprintf(out, cap, "%s", m ? sc_embedder_identity(m->embedder) : c.embedder);
}

int sc_fleet_node_prepare(sc_ctx_t *ctx, const char *index_dir, int *joining)
{
    const sc_config_t *cfg = &ctx->cfg;
    *joining = 0;
    if (!cfg->redis[0] && !cfg->fleet[0])
        return 0;
    int rc = sc_fleet_create(&ctx->fleet, cfg, ctx->log);
    if (rc)
        return rc;
    const char *token = cfg->admin_token[0] ? cfg->admin_token : cfg->auth_token;
    if ((rc = sc_fleet_bootstrap(cfg, ctx->log, cfg->data_dir, token, joining)))
        return rc;
    if (*joining) { /* the index snapshot described the store replaced */
        char manifest[1200];
        snprintf(manifest, sizeof(manifest), "%s/manifest.json", index_dir);
        unlink(manifest);
    }
    sc_store_fleet_hooks_t hooks = {
        .on_ns = sc_fleet_node_ns_loaded, .embedder_of = embedder_of, .ctx = ctx};
    return sc_fleet_attach(ctx->fleet, ctx->store, &hooks);
}

int sc_fleet_node_start(sc_ctx_t *ctx, int port, int joining)
{
    const sc_config_t *cfg = &ctx->cfg;
    if (!ctx->fleet)
        return 0;
    sc_stream_id_t applied;
    sc_store_fleet_applied(ctx->store, &applied);
    joining |= !applied.ms && !applied.seq;
    char url[600];
    if (cfg->fleet_advertise[0]) {
        size_t n = strlen(cfg->fleet_advertise);
        while (n && cfg->fleet_advertise[n - 1] == '/')
            n--;
        snprintf(url, sizeof(url), "%.*s/v1/fleet/snapshot", (int)n, cfg->fleet_advertise);
    } else {
        int v6 = strchr(cfg->host, ':') != NULL;
        snprintf(url, sizeof(url), "http://%s%s%s:%d/v1/fleet/snapshot", v6 ? "[" : "", cfg->host,
                 v6 ? "]" : "", port);
        if (!strcmp(cfg->host, "0.0.0.0") || !strcmp(cfg->host, "::"))
            sc_log(ctx->log, SC_WARN,
                   "fleet: peers cannot reach %s; set --fleet-advertise to "
                   "the URL they reach this node at",
                   url);
    }
    return sc_fleet_start(ctx->fleet, url, joining);
}

void sc_fleet_node_stop(sc_ctx_t *ctx)
{
    if (ctx->fleet)
        sc_fleet_stop(ctx->fleet, 2000);
}

void sc_fleet_node_destroy(sc_ctx_t *ctx)
{
    sc_fleet_destroy(ctx->fleet);
    ctx->fleet = NULL;
}
