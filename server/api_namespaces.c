/* api_namespaces.c -- /v1/namespaces/{name}: GET shows a namespace's
 * settings, usage and quality; PUT replaces its settings and DELETE removes
 * it with its entries (both admin, both answered at commit). Settings this
 * server cannot honour (a delivery without its URL, an unloaded model) and
 * changes of embedder under stored vectors are refused up front. */
#define _GNU_SOURCE
#include "api.h"
#include "savings.h"
#include "observe.h"

#include <stdlib.h>
#include <string.h>

static int valid_ns_name(sc_slice_t n)
{
    if (n.len == 0 || n.len > SC_MAX_NAMESPACE)
        return 0;
    for (size_t i = 0; i < n.len; i++) {
        char ch = n.ptr[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return 0;
    }
    return 1;
}

static void agreement_row(void *arg, const sc_agreement_t *ag)
{
    sc_buf_t *b = arg;
    sc_buf_printf(
        b,
        "%s{\"methods\":[\"%s\",\"%s\"],\"pairs\":%llu,\"agreement\":%.6f,"
        "\"both_correct\":%llu,\"both_wrong\":%llu,\"only_%s_wrong\":%llu,"
        "\"only_%s_wrong\":%llu}",
        b->data[b->len - 1] == '[' ? "" : ",", ag->a, ag->b, (unsigned long long)ag->pairs,
        ag->agreement, (unsigned long long)ag->both_correct, (unsigned long long)ag->both_wrong,
        ag->a, (unsigned long long)ag->a_wrong_only, ag->b, (unsigned long long)ag->b_wrong_only);
}

/* The threshold in force and where it comes from; with an error budget,
 * the learned one (null until the validations support a cut; also shown as
 * quality.learned_threshold), which an explicit namespace threshold can
 * only raise. */
static void append_threshold(sc_ctx_t *ctx, const char *name, const sc_ns_config_t *ns, sc_buf_t *b)
{
    sc_threshold_source_t src;
    double t = sc_models_threshold(&ctx->models, &ctx->cfg, ns, &src), lt = 0;
    uint64_t n_obs = 0;
    int learned = ns->max_error_rate > 0 && sc_api_learned_threshold(ctx, name, ns, &lt, &n_obs);
    sc_buf_puts(b, ",\"threshold\":");
    if (ns->max_error_rate > 0 && !learned && !ns->threshold_explicit)
        sc_buf_puts(b, "null"); /* no semantic hit until a cut is supported */
    else
        sc_buf_double(b, learned && !(ns->threshold_explicit && ns->threshold > lt) ? lt : t);
    sc_buf_printf(b, ",\"threshold_source\":\"%s\"",
                  ns->max_error_rate > 0 && !(ns->threshold_explicit && ns->threshold > lt)
                      ? "learned"
                      : sc_threshold_source_names[src]);
}

static void append_quality(sc_ctx_t *ctx, const char *name, const sc_ns_config_t *ns, sc_buf_t *b)
{
    sc_quality_ns_t q;
    sc_quality_ns(ctx->quality, name, &q);
    sc_buf_printf(
        b,
        ",\"quality\":{\"validated\":%llu,\"wrong\":%llu,\"false_hit_rate\":%.6f,"
        "\"false_hit_rate_upper\":%.6f,\"semantic_false_hit_rate\":%.6f,"
        "\"semantic_false_hit_rate_upper\":%.6f,\"explored\":%llu,\"explored_wrong\":%llu,"
        "\"observed\":%llu,\"observed_wrong\":%llu",
        (unsigned long long)(q.validated[0] + q.validated[1]),
        (unsigned long long)(q.wrong[0] + q.wrong[1]), q.rate, q.upper, q.semantic_rate,
        q.semantic_upper, (unsigned long long)q.validated[SC_MATCH_EXPLORE],
        (unsigned long long)q.wrong[SC_MATCH_EXPLORE],
        (unsigned long long)q.validated[SC_MATCH_OBSERVED],
        (unsigned long long)q.wrong[SC_MATCH_OBSERVED]);
    sc_spend_stats_t sp;
    sc_spend_get(sc_quality_spend(ctx->quality), name, strlen(name), &sp);
    sc_buf_printf(b,
                  ",\"validation_spend\":{\"hits\":%llu,\"paid\":%llu,\"paused\":%llu,"
                  "\"window_hits\":%.0f,\"window_paid\":%.0f}",
                  (unsigned long long)sp.hits, (unsigned long long)sp.paid,
                  (unsigned long long)sp.paused, sp.window_hits, sp.window_paid);
    double lt;
    uint64_t n_obs = 0;
    sc_ns_config_t proxied = *ns; /* proxied traffic may have a budget by default */
    sc_observe_proxy_ns(&ctx->cfg, &proxied);
    if (proxied.max_error_rate > 0) {
        int ok = sc_api_learned_threshold(ctx, name, &proxied, &lt, &n_obs);
        sc_buf_printf(
            b, ",\"budget_observations\":%llu,\"learned_threshold\":", (unsigned long long)n_obs);
        if (ok)
            sc_buf_printf(b, "%.3f", lt);
        else
            sc_buf_puts(b, "null");
    }
    /* Pairs compared by two methods (compare "judge" adds a second). */
    sc_buf_puts(b, ",\"agreement\":[");
    sc_quality_agreement_foreach(ctx->quality, name, agreement_row, b);
    sc_buf_puts(b, "]}");
}

static void reply_namespace(sc_worker_t *w, sc_conn_t *c, int status, sc_slice_t name,
                            const sc_ns_config_t *ns)
{
    sc_buf_t b = {0};
    sc_buf_puts(&b, "{\"name\":");
    sc_buf_json_str(&b, name.ptr, name.len);
    sc_buf_printf(&b, ",\"configured\":%s,\"settings\":", ns->configured ? "true" : "false");
    sc_ns_config_to_json(ns, &b);
    char name_z[SC_MAX_NAMESPACE + 1];
    snprintf(name_z, sizeof(name_z), "%.*s", (int)name.len, name.ptr);
    append_threshold(w->ctx, name_z, ns, &b);
    uint64_t used_entries = 0, used_bytes = 0;
    if (sc_store_read_begin(w->reader) == 0) {
        sc_store_ns_usage(w->reader, name_z, &used_entries, &used_bytes);
        sc_store_read_end(w->reader);
    }
    sc_buf_printf(&b, ",\"usage\":{\"entries\":%llu,\"bytes\":%llu}",
                  (unsigned long long)used_entries, (unsigned long long)used_bytes);
    append_quality(w->ctx, name_z, ns, &b);
    sc_buf_puts(&b, ",\"savings\":");
    sc_savings_ns_json(w->ctx, name.ptr, name.len, &b); /* net of validation spend */
    sc_buf_puts(&b, "}");
    sc_conn_respond(c, status, SC_JSON_CT, NULL, b.data, b.len);
    sc_buf_free(&b);
}

static void ns_put_complete(sc_pending_t *p)
{
    if (p->op.result) {
        sc_pending_failed(p);
    } else {
        sc_ns_config_t ns;
        sc_slice_t name = {p->op.ns, strlen(p->op.ns)};
        sc_namespaces_get(p->w->ctx->namespaces, name.ptr, name.len, &ns);
        reply_namespace(p->w, p->conn, 200, name, &ns);
    }
    sc_pending_finish(p);
}

/* Settings this server cannot honour are refused now, not discovered later
 * as silently dropped validations. 0, or the reason in 'err'. */
static int check_supported(sc_ctx_t *ctx, const sc_ns_config_t *next, char *err, size_t cap)
{
    if (next->delivery == SC_DELIVERY_UPSTREAM && !ctx->cfg.upstream_url[0])
        snprintf(err, cap, "delivery \"upstream\" needs the server started with --upstream-url");
    else if (next->delivery == SC_DELIVERY_WEBHOOK && !ctx->cfg.webhook_url[0])
        snprintf(err, cap, "delivery \"webhook\" needs the server started with --webhook-url");
    else if (next->model[0] && !sc_models_for(&ctx->models, next))
        snprintf(err, cap, "model \"%s\" is not loaded (--models NAME=SPEC loads it)", next->model);
    else if (strcmp(next->compare, "judge") == 0 && !ctx->cfg.upstream_url[0])
        snprintf(err, cap,
                 "compare \"judge\" asks a model through --upstream-url (--judge-model "
                 "chooses it); start the server with --upstream-url");
    else if (strcmp(next->compare, "semantic") == 0 && !sc_models_for(&ctx->models, next))
        snprintf(err, cap,
                 "compare \"semantic\" embeds the answers and needs a server-side "
                 "model (--model)");
    else
        return 0;
    return SC_EINVAL;
}

/* A namespace that holds vectors keeps its embedder and dimensions: choosing
 * a model that is another embedder, or other settings, is refused (409). */
static int check_embedder_kept(sc_ctx_t *ctx, sc_slice_t name, const sc_ns_config_t *ns,
                               const sc_ns_config_t *next, char *err, size_t cap)
{
    const sc_model_t *chosen = sc_models_for(&ctx->models, next);
    if (ns->embedder[0] && chosen && strcmp(ns->model, next->model) != 0 &&
        strcmp(ns->embedder, sc_embedder_identity(chosen->embedder)) != 0) {
        snprintf(err, cap,
                 "namespace '%.*s' holds vectors from embedder '%s', not model "
                 "\"%s\" (%s); DELETE the namespace to change models",
                 (int)name.len, name.ptr, ns->embedder, next->model[0] ? next->model : "default",
                 sc_embedder_identity(chosen->embedder));
        return SC_ECONFLICT;
    }
    if ((ns->dimensions && next->dimensions != ns->dimensions) ||
        (ns->embedder[0] && strcmp(ns->embedder, next->embedder) != 0)) {
        snprintf(err, cap,
                 "namespace '%.*s' already holds vectors of %u dimensions from "
                 "embedder '%s'; DELETE the namespace to change them",
                 (int)name.len, name.ptr, ns->dimensions,
                 ns->embedder[0] ? ns->embedder : "(unnamed)");
        return SC_ECONFLICT;
    }
    return 0;
}

int sc_api_ns_persist(sc_ctx_t *ctx, const char *name, size_t len, const sc_ns_config_t *ns)
{
    sc_write_op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return SC_ENOMEM;
    op->type = SC_OP_NS_PUT;
    op->done = sc_write_op_free; /* nobody waits for it */
    op->ns = strndup(name, len);
    int rc = op->ns ? sc_ns_config_to_json(ns, &op->record) : SC_ENOMEM;
    if (!rc)
        rc = sc_store_submit(ctx->store, op);
    if (rc)
        sc_write_op_free(op);
    return rc;
}

/* What PUT does to the settings a user controls: they are replaced, the
 * recorded embedder and dimensions stay unless given, and the result must
 * be something this server can honour. 0, SC_EINVAL (400) or SC_ECONFLICT
 * (409) with the reason in 'err'. */
static int next_settings(sc_ctx_t *ctx, sc_slice_t name, const sc_ns_config_t *ns, const json_t *j,
                         sc_ns_config_t *next, char *err, size_t cap)
{
    sc_ns_config_defaults(&ctx->cfg, next);
    next->dimensions = ns->dimensions;
    memcpy(next->embedder, ns->embedder, sizeof(next->embedder));
    if (sc_ns_config_apply_json(next, j, err, cap) || check_supported(ctx, next, err, cap))
        return SC_EINVAL;
    int rc = check_embedder_kept(ctx, name, ns, next, err, cap);
    next->configured = 1;
    return rc;
}

int sc_api_ns_preset(sc_ctx_t *ctx, const char *name, const json_t *settings, char *err, size_t cap)
{
    sc_slice_t n = {name, strlen(name)};
    if (!valid_ns_name(n)) {
        snprintf(err, cap, "a namespace name is 1 to 128 characters from [A-Za-z0-9_.-]");
        return SC_EINVAL;
    }
    sc_ns_config_t ns, next;
    sc_namespaces_get(ctx->namespaces, n.ptr, n.len, &ns);
    int rc = next_settings(ctx, n, &ns, settings, &next, err, cap);
    if (!rc && (rc = sc_namespaces_set(ctx->namespaces, n.ptr, n.len, &next)) == 0)
        rc = sc_api_ns_persist(ctx, n.ptr, n.len, &next);
    if (rc == SC_ENOMEM)
        snprintf(err, cap, "out of memory");
    return rc;
}

static void put_namespace(const sc_call_t *a, sc_slice_t name, const sc_ns_config_t *ns)
{
    sc_ctx_t *ctx = a->ctx;
    if (!sc_api_require_json(a))
        return;
    json_error_t jerr;
    char err[768]; /* names two embedder identities and a namespace */
    json_t *j = json_loadb(a->http->body.ptr, a->http->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        snprintf(err, sizeof(err), "body is not valid JSON: %s", jerr.text);
        sc_conn_problem(a->c, 400, "invalid-request", err);
        return;
    }
    sc_ns_config_t next;
    int rc = next_settings(ctx, name, ns, j, &next, err, sizeof(err));
    json_decref(j);
    if (rc == SC_ECONFLICT) {
        sc_conn_problem(a->c, 409, "embedder-mismatch", err);
        return;
    }
    if (rc) {
        sc_conn_problem(a->c, 400, "invalid-request", err);
        return;
    }
    sc_pending_t *p = sc_pending_new(a->w, a->c, ns_put_complete, SC_OP_NS_PUT);
    if (!p || !(p->op.ns = strndup(name.ptr, name.len)) ||
        sc_ns_config_to_json(&next, &p->op.record) ||
        sc_namespaces_set(ctx->namespaces, name.ptr, name.len, &next)) {
        if (p)
            sc_pending_free(p);
        sc_conn_problem(a->c, 503, "out-of-memory", "out of memory");
        return;
    }
    sc_pending_submit(p);
}

/* GET, PUT or DELETE; the route table admits no other method. */
void sc_api_namespace(const sc_call_t *a)
{
    sc_ctx_t *ctx = a->ctx;
    sc_slice_t name = a->param;
    if (!valid_ns_name(name)) {
        sc_conn_problem(a->c, 404, "not-found",
                        "a namespace name is 1 to 128 characters from [A-Za-z0-9_.-]");
        return;
    }
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, name.ptr, name.len, &ns);
    if (a->http->method == HTTP_GET) {
        reply_namespace(a->w, a->c, 200, name, &ns);
    } else if (a->http->method == HTTP_DELETE) {
        sc_pending_t *p = sc_pending_new(a->w, a->c, sc_pending_removed, SC_OP_NS_DELETE);
        if (!p || !(p->op.ns = strndup(name.ptr, name.len))) {
            free(p);
            sc_conn_problem(a->c, 503, "out-of-memory", "out of memory");
            return;
        }
        sc_namespaces_remove(ctx->namespaces, name.ptr, name.len);
        sc_pending_submit(p);
    } else {
        put_namespace(a, name, &ns);
    }
}
