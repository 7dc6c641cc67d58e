/* api_store.c -- POST /v1/store, and the proxy's stores: the entry encoded
 * from a request and its answer, the namespace's embedder recorded on its
 * first vector, the write queued to the store's writer. A native store is
 * answered at commit (sc_pending_t); the proxy's answer went out before, so
 * its write is detached and only counted when it fails. An explored miss's
 * stored answer validates the candidate it was not served. */
#define _GNU_SOURCE
#include "api.h"
#include "api_cache_internal.h"
#include "api_lease.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>

/* ---- POST /v1/store: answered at commit ---------------------------------------- */

static void store_complete(sc_pending_t *p)
{
    if (p->op.result)
        sc_pending_failed(p);
    else
        sc_api_reply_key(p->conn, 201, "", p->key);
    sc_lease_release(p->w->ctx, p->key); /* leased lookups waiting for it look again */
    sc_pending_finish(p);
}

/* Encodes the entry 'req' describes, with 'response' (compact JSON), into
 * write op 'op'; 'ttl' in seconds (0 = never expires). */
static int encode_entry(sc_write_op_t *op, const sc_request_t *req, sc_slice_t response,
                        int64_t ttl)
{
    uint64_t now = sc_now_ms();
    sc_entry_t e = {
        .created_ms = now,
        .expires_ms = ttl ? now + (uint64_t)ttl * 1000u : 0,
        .scope = req->scope,
        .prompt_tokens = req->prompt_tokens,
        .completion_tokens = req->completion_tokens,
        .ns = {req->ns, req->ns_len},
        .tenant = {req->tenant, req->tenant_len},
        .model = {req->model, req->model_len},
        .text = {req->text.data ? req->text.data : "", req->text.len},
        .response = response,
        /* A vector is kept only with semantic text to match against. */
        .vector = req->text.len ? req->vec : NULL,
        .dim = req->text.len && req->vec ? req->dim : 0,
    };
    op->type = SC_OP_PUT;
    memcpy(op->key, req->key, SC_KEY_BYTES);
    return sc_store_encode(&e, &op->record) ? SC_ETOOBIG : 0;
}

/* Before an entry's write: records the namespace's embedder on its first
 * vector (persisted ahead of the entry, in queue order) and reads the
 * namespace's settings into 'ns'. 0, or SC_EDIM / SC_ECONFLICT when a
 * concurrent first store recorded another embedder. */
static int store_prepare(sc_ctx_t *ctx, const sc_request_t *req, const char *embedder,
                         sc_ns_config_t *ns)
{
    int recorded = 0;
    sc_namespaces_get(ctx->namespaces, req->ns, req->ns_len, ns);
    if (req->vec && req->text.len) {
        int rc = sc_namespaces_check_vector(ctx->namespaces, req->ns, req->ns_len, req->dim,
                                            embedder, 1, &recorded, ns);
        if (rc)
            return rc;
    }
    if (recorded && sc_api_ns_persist(ctx, req->ns, req->ns_len, ns))
        sc_log(ctx->log, SC_ERROR, "namespace %.*s: could not persist its dimensions",
               (int)req->ns_len, req->ns);
    return 0;
}

static int64_t store_ttl(const sc_ctx_t *ctx, const sc_request_t *req, const sc_ns_config_t *ns)
{
    return req->has_ttl ? req->ttl_s : ns->ttl_s >= 0 ? ns->ttl_s : ctx->cfg.default_ttl_s;
}

void sc__store_commit(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, const char *embedder)
{
    sc_ctx_t *ctx = w->ctx;
    sc_ns_config_t ns;
    int rc = store_prepare(ctx, req, embedder, &ns);
    if (rc) { /* a concurrent first store recorded another embedder */
        sc_conn_problem(c, rc == SC_EDIM ? 400 : 409, "embedder-mismatch",
                        "the namespace's embedder changed meanwhile; retry");
        return;
    }
    sc_buf_t resp = {0};
    sc_pending_t *p = sc_pending_new(w, c, store_complete, SC_OP_PUT);
    rc = !p || sc_api_dump_compact(req->response, &resp)
             ? SC_ENOMEM
             : encode_entry(&p->op, req, (sc_slice_t){resp.data, resp.len},
                            store_ttl(ctx, req, &ns));
    sc_buf_free(&resp);
    if (rc) {
        if (p)
            sc_pending_free(p);
        if (rc == SC_ENOMEM)
            sc_conn_problem(c, 503, "out-of-memory", "out of memory");
        else
            sc_conn_problem(c, 413, "entry-too-large",
                            "a field of the entry exceeds the record format's limits");
        return;
    }
    memcpy(p->key, req->key, SC_KEY_BYTES);
    p->op.ns_max_entries = ns.max_entries;
    p->op.ns_max_bytes = ns.max_bytes;
    sc_pending_submit(p);
}

/* ---- the proxy's store: nobody waits for it ---------------------------------- */

typedef struct {
    sc_write_op_t op; /* first member: the store hands back &op */
    sc_store_done_fn done;
    void *arg;
} detached_op_t;

static void detached_done(sc_write_op_t *op)
{
    detached_op_t *d = (detached_op_t *)op;
    if (d->done)
        d->done(d->arg, op->result);
    sc_write_op_clear(op);
    free(d);
}

void sc__store_detached(sc_worker_t *w, sc_request_t *req, const char *embedder,
                        const sc_buf_t *response, sc_store_done_fn done, void *arg)
{
    sc_ctx_t *ctx = w->ctx;
    sc_ns_config_t ns;
    detached_op_t *d = calloc(1, sizeof(*d));
    int rc = d ? store_prepare(ctx, req, embedder, &ns) : SC_ENOMEM;
    if (!rc)
        rc = encode_entry(&d->op, req,
                          (sc_slice_t){response->data ? response->data : "", response->len},
                          store_ttl(ctx, req, &ns));
    if (!rc) {
        d->op.ns_max_entries = ns.max_entries;
        d->op.ns_max_bytes = ns.max_bytes;
        d->op.done = detached_done;
        d->done = done;
        d->arg = arg;
        rc = sc_store_submit(ctx->store, &d->op);
        if (!rc)
            return;
    }
    if (d) {
        sc_write_op_clear(&d->op);
        free(d);
    }
    if (done)
        done(arg, rc);
}

void sc_cache_store_detached(sc_worker_t *w, sc_request_t *req, sc_buf_t *response,
                             sc_store_done_fn done, void *arg)
{
    sc_ctx_t *ctx = w->ctx;
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, req->ns, req->ns_len, &ns);
    const sc_model_t *model = sc_models_for(&ctx->models, &ns);
    /* The proxy's vectors are always its model's (from the lookup). */
    const char *embedder =
        req->vec && model ? sc_embedder_identity(model->embedder) : req->embedder;
    if (!req->vec && req->text.len && ns.semantic && model && !sc_models_available(model)) {
        atomic_fetch_add(&ctx->semantic_skipped[SC_SKIP_UNAVAILABLE], 1);
        model = NULL; /* stored exact-only, never embedded later */
    }
    if (!req->vec && req->text.len && ns.semantic && model) {
        embedder = sc_embedder_identity(model->embedder);
        if (!sc__model_fits(model, &ns)) {
            atomic_fetch_add(&ctx->semantic_skipped[SC_SKIP_EMBEDDER], 1);
            embedder = NULL; /* stored exact-only */
        } else if (sc__embed_async(w, NULL, model, req,
                                   &(sc__embed_wait_t){.kind = EW_STORE_DETACHED,
                                                       .response = *response,
                                                       .store_done = done,
                                                       .store_arg = arg}) == 0) {
            memset(response, 0, sizeof(*response));
            return; /* committed once embedded */
        } else {
            atomic_fetch_add(&ctx->semantic_skipped[SC_SKIP_QUEUE_FULL], 1);
        }
    }
    sc__store_detached(w, req, embedder, response, done, arg);
    sc_request_free(req);
    sc_buf_free(response);
}

/* An explored miss whose answer is now being stored: that fresh answer
 * validates the candidate it was not served, at no extra inference. */
typedef struct {
    sc_ctx_t *ctx;
    sc_validation_t val;
    sc_buf_t fresh, cached;
    const char *method;
} explore_check_t;

static void explore_compared(void *arg, int verdict, double answer_sim)
{
    explore_check_t *x = arg;
    if (verdict >= 0)
        sc_validation_apply(x->ctx, &x->val, (sc_verdict_t)verdict, x->method, answer_sim,
                            x->fresh.data, x->fresh.len, x->cached.data, x->cached.len);
    else
        atomic_fetch_add(&x->ctx->compare_failures, 1);
    sc_buf_free(&x->fresh);
    sc_buf_free(&x->cached);
    free(x);
}

static void resolve_exploration(sc_worker_t *w, const sc_request_t *req)
{
    sc_ctx_t *ctx = w->ctx;
    sc_validation_t val;
    if (!req->response || sc_quality_take_explore(ctx->quality, req->key, &val))
        return;
    explore_check_t *x = calloc(1, sizeof(*x));
    sc_entry_t e;
    sc_entry_meta_t meta;
    int have = x && sc_store_read_begin(w->reader) == 0 &&
               sc_store_get(w->reader, val.entry_key, &e, &meta) == 0;
    if (have)
        sc_buf_append(&x->cached, e.response.ptr, e.response.len);
    sc_store_read_end(w->reader);
    if (!have || !x->cached.data) { /* the candidate is gone: nothing to compare */
        if (x)
            sc_buf_free(&x->cached);
        free(x);
        return;
    }
    x->ctx = ctx;
    x->val = val;
    sc_api_dump_compact(req->response, &x->fresh);
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, val.ns, strlen(val.ns), &ns);
    char model[128];
    snprintf(model, sizeof(model), "%.*s", (int)req->model_len, req->model);
    sc_compare_about_t about = {val.ns, model, req->text.data, req->text.len};
    if (sc_compare_answers_about(ctx, &ns, &about, x->fresh.data ? x->fresh.data : "", x->fresh.len,
                                 x->cached.data, x->cached.len, explore_compared, x, &x->method))
        explore_compared(x, -1, -2);
}

void sc_api_store(const sc_call_t *a)
{
    sc_ctx_t *ctx = a->ctx;
    sc_request_t req;
    char err[256];
    if (sc__parse_request(a, SC_REQ_STORE, &req))
        return;
    if (req.has_ttl && req.ttl_s > ctx->cfg.max_ttl_s) {
        snprintf(err, sizeof(err), "\"ttl_s\" must be at most %lld (--max-ttl-s)",
                 (long long)ctx->cfg.max_ttl_s);
        sc_request_free(&req);
        sc_conn_problem(a->c, 400, "invalid-request", err);
        return;
    }
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, req.ns, req.ns_len, &ns);
    if (sc__check_vector(a, &req, &ns)) {
        sc_request_free(&req);
        return;
    }
    resolve_exploration(a->w, &req);
    const sc_model_t *model = sc_models_for(&ctx->models, &ns);
    const char *embedder = req.embedder;
    if (!req.vec && req.text.len && ns.semantic && model && !sc_models_available(model)) {
        atomic_fetch_add(&ctx->semantic_skipped[SC_SKIP_UNAVAILABLE], 1);
        model = NULL; /* stored exact-only, never embedded later */
    }
    if (!req.vec && req.text.len && ns.semantic && model) {
        embedder = sc_embedder_identity(model->embedder);
        if (!sc__model_fits(model, &ns)) {
            snprintf(err, sizeof(err),
                     "namespace '%.*s' holds vectors from another embedder than "
                     "its model's (%s); delete the namespace to change embedders",
                     (int)req.ns_len, req.ns, embedder);
            sc_request_free(&req);
            sc_conn_problem(a->c, 409, "embedder-mismatch", err);
            return;
        }
        /* Reuse the embedding of the lookup that missed, if it is recent. */
        uint32_t dim = sc_embedder_dim(model->embedder);
        req.vec = sc_vec_cache_take(ctx->vec_cache, req.key, dim, sc_now_ms());
        if (req.vec)
            req.dim = dim;
        else if (sc__embed_async(a->w, a->c, model, &req, &(sc__embed_wait_t){.kind = EW_STORE}) ==
                 0)
            return; /* committed once embedded */
        else
            atomic_fetch_add(&ctx->semantic_skipped[SC_SKIP_QUEUE_FULL], 1);
    }
    sc__store_commit(a->w, a->c, &req, embedder);
    sc_request_free(&req);
}
