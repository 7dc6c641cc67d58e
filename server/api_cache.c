/* api_cache.c -- POST /v1/lookup and POST /v1/store, and the asynchronous
 * steps they share: embedding a text on the model's workers, the semantic
 * search on a search worker, and the store write answered at commit. An
 * exact lookup runs on the loop against an LMDB read snapshot and answers in
 * microseconds. A lookup never fails because of an internal error: it
 * answers "miss" (fail-open), since the caller can always ask the model. */
#define _GNU_SOURCE
#include "api.h"
#include "validate.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(SC_SEMANTIC_CANDIDATES_MAX >= 1, "the search needs room for one candidate");

/* Checks a request's vector against server and namespace limits. Returns 0,
 * or answers the error itself and returns -1. */
static int check_vector(const sc_call_t *a, const sc_request_t *req, sc_ns_config_t *ns)
{
    sc_ctx_t *ctx = a->ctx;
    char err[256];
    int recorded;
    if (!req->vec || !req->text.len)
        return 0;
    if (req->dim > (uint32_t)ctx->cfg.max_dimensions) {
        snprintf(err, sizeof(err), "\"embedding\" has %u dimensions; --max-dimensions is %lld",
                 req->dim, (long long)ctx->cfg.max_dimensions);
        sc_conn_problem(a->c, 400, "invalid-request", err);
        return -1;
    }
    int rc = sc_namespaces_check_vector(ctx->namespaces, req->ns, req->ns_len, req->dim,
                                        req->embedder, 0, &recorded, ns);
    if (rc == SC_EDIM) {
        snprintf(err, sizeof(err), "\"embedding\" has %u dimensions but namespace '%.*s' uses %u",
                 req->dim, (int)req->ns_len, req->ns, ns->dimensions);
        sc_conn_problem(a->c, 400, "dimension-mismatch", err);
        return -1;
    }
    if (rc == SC_ECONFLICT) {
        snprintf(err, sizeof(err), "namespace '%.*s' holds vectors from embedder '%s', not '%s'; "
                 "delete the namespace to change embedders", (int)req->ns_len, req->ns,
                 ns->embedder, req->embedder);
        sc_conn_problem(a->c, 409, "embedder-mismatch", err);
        return -1;
    }
    return 0;
}

/* Does model 'm' match what namespace settings 'ns' (read once by the
 * caller) have recorded? The same rule as sc_namespaces_check_vector,
 * without taking the table's write lock again on every text request. */
static int model_fits(const sc_model_t *m, const sc_ns_config_t *ns)
{
    return (!ns->dimensions || ns->dimensions == sc_embedder_dim(m->embedder)) &&
           (!ns->embedder[0] || strcmp(ns->embedder, sc_embedder_identity(m->embedder)) == 0);
}

/* ---- the semantic search ------------------------------------------------- */

typedef struct {
    int hit;
    int searched;            /* a valid candidate was seen */
    double similarity;       /* of the hit, or the best valid candidate */
    uint8_t key[SC_KEY_BYTES];
} semantic_result_t;

/* Is candidate 'e' one this request may be answered with? Scope equality is
 * the isolation rule; namespace, tenant and model are compared again so a
 * hash collision can never leak an entry. */
static int candidate_valid(const sc_request_t *req, const sc_entry_t *e, uint64_t now)
{
    double age_s = now > e->created_ms ? (double)(now - e->created_ms) / 1000.0 : 0.0;
    return e->scope == req->scope && e->dim == req->dim && e->ns.len == req->ns_len &&
           !memcmp(e->ns.ptr, req->ns, req->ns_len) && e->tenant.len == req->tenant_len &&
           !memcmp(e->tenant.ptr, req->tenant, req->tenant_len) && e->model.len == req->model_len &&
           !memcmp(e->model.ptr, req->model, req->model_len) &&
           !(e->expires_ms && now >= e->expires_ms) && !(req->has_max_age && age_s > req->max_age_s);
}

/* Searches the request's scope and validates candidates against LMDB, best
 * first: expired, deleted, too old or foreign entries are skipped. The first
 * valid candidate decides: a hit if it clears 'threshold'. On a hit the entry
 * is left in 'e'/'meta' (the caller's read snapshot must still be open). */
static void semantic_lookup(sc_ctx_t *ctx, sc_store_reader_t *reader, const sc_request_t *req,
                            double threshold, uint64_t now, sc_entry_t *e, sc_entry_meta_t *meta,
                            semantic_result_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t labels[SC_SEMANTIC_CANDIDATES_MAX];
    float sims[SC_SEMANTIC_CANDIDATES_MAX];
    size_t n = 0, k = (size_t)ctx->cfg.semantic_candidates;
    if (k > SC_SEMANTIC_CANDIDATES_MAX)
        k = SC_SEMANTIC_CANDIDATES_MAX; /* refused at start-up; never overrun */
    if (sc_scopes_search(ctx->scopes, req->scope, req->vec, req->dim, k, labels, sims, &n))
        return;
    float stored[4096], *sv = req->dim <= 4096 ? stored : malloc(req->dim * sizeof(float));
    if (!sv)
        return;
    for (size_t i = 0; i < n; i++) {
        uint8_t key[SC_KEY_BYTES];
        if (sc_store_get_by_label(reader, labels[i], key, e, meta) || !candidate_valid(req, e, now))
            continue;
        if (sc_quality_is_negative(reader, req->key, key))
            continue; /* validated as a wrong answer for this very request */
        memcpy(sv, e->vector, req->dim * sizeof(float)); /* LMDB data is unaligned */
        double sim = sc_vec_dot(sv, req->vec, req->dim);
        out->searched = 1;
        out->similarity = sim;
        memcpy(out->key, key, SC_KEY_BYTES);
        /* 1.0 is literal: only the identical vector, whatever float rounding
         * does to its dot product with itself. */
        out->hit = threshold > 1.0    ? 0 /* an error budget with no supported cut yet */
                   : threshold >= 1.0 ? memcmp(sv, req->vec, req->dim * sizeof(float)) == 0
                                      : sim >= threshold;
        break;
    }
    if (sv != stored)
        free(sv);
}

/* 'hits' counts this hit: the stored count plus the store's buffered ones. */
static void append_hit(sc_buf_t *b, const char *match, const uint8_t key[SC_KEY_BYTES],
                       const sc_entry_t *e, uint64_t hits, uint64_t now,
                       const semantic_result_t *sem)
{
    uint64_t age_ms = now > e->created_ms ? now - e->created_ms : 0;
    sc_buf_reserve(b, e->response.len + e->text.len * 6 + 256);
    sc_buf_puts(b, "{\"status\":\"hit\",\"match\":\"");
    sc_buf_puts(b, match);
    sc_buf_puts(b, "\",\"key\":\"");
    sc_api_append_key(b, key);
    sc_buf_puts(b, "\"");
    if (sem) {
        sc_buf_printf(b, ",\"similarity\":%.6f,\"matched_prompt\":", sem->similarity);
        sc_buf_json_str(b, e->text.ptr, e->text.len);
    }
    sc_buf_puts(b, ",\"response\":");
    sc_buf_append(b, e->response.ptr, e->response.len);
    /* age_s with millisecond precision, formatted without printf. */
    char frac[4] = {(char)('0' + age_ms % 1000 / 100), (char)('0' + age_ms % 100 / 10),
                    (char)('0' + age_ms % 10), 0};
    sc_buf_puts(b, ",\"age_s\":");
    sc_buf_u64(b, age_ms / 1000);
    sc_buf_puts(b, ".");
    sc_buf_puts(b, frac);
    sc_buf_puts(b, ",\"hits\":");
    sc_buf_u64(b, hits);
    sc_buf_puts(b, "}");
}

/* Marks a served hit (or an explored candidate) for validation and hands it
 * to the namespace's delivery; with delivery "caller" the answer gains
 * "validate": true and a "validation_id" for POST /v1/feedback. 'b' holds the
 * finished response object; 'e' is the served or candidate entry. */
static void maybe_sample(sc_worker_t *w, const sc_request_t *req, const sc_ns_config_t *ns,
                         const uint8_t entry_key[SC_KEY_BYTES], sc_match_t match,
                         double similarity, const sc_entry_t *e, sc_buf_t *b)
{
    double rate = match == SC_MATCH_EXPLORE ? ns->explore_rate : ns->sample_rate;
    int drawn = sc_quality_draw(&w->rng, rate);
    if (!b->len || (!drawn && match != SC_MATCH_SEMANTIC))
        return; /* the common case, before building anything */
    sc_validation_t v;
    memset(&v, 0, sizeof(v));
    memcpy(v.entry_key, entry_key, SC_KEY_BYTES);
    memcpy(v.request_key, req->key, SC_KEY_BYTES);
    v.scope = req->scope;
    v.match = match;
    v.similarity = similarity;
    snprintf(v.ns, sizeof(v.ns), "%.*s", (int)req->ns_len, req->ns);
    if (sc_quality_sample(w->ctx->quality, drawn ? 1.0 : 0.0, &v, sc_now_ms(), &w->rng) != 1)
        return;
    if (!sc_validation_deliver(w->ctx, ns, &v, req, e->response.ptr, e->response.len))
        return;
    b->len--; /* reopen the object */
    sc_buf_printf(b, ",%s\"validate\":true,\"validation_id\":\"%s\"}",
                  match == SC_MATCH_EXPLORE ? "\"explore\":true," : "", v.id);
}

/* The threshold a max_error_rate namespace serves at: what its validations
 * support (nothing at all until they support some cut), never below an
 * explicit namespace threshold or a request's own. */
static double budget_threshold(sc_ctx_t *ctx, const sc_request_t *req, const sc_ns_config_t *ns)
{
    double t;
    int from_scope;
    char name[SC_MAX_NAMESPACE + 1];
    snprintf(name, sizeof(name), "%.*s", (int)req->ns_len, req->ns);
    if (!sc_quality_budget_threshold(ctx->quality, name, req->scope, ns->max_error_rate, &t,
                                     &from_scope, NULL))
        t = 2.0; /* above any cosine: no semantic hit yet */
    if (ns->threshold_explicit && ns->threshold > t)
        t = ns->threshold;
    if (req->has_threshold && req->threshold > t)
        t = req->threshold;
    return t;
}

/* A lookup that missed exactly, with its optional semantic search: the
 * search runs on a search worker (or inline when there is no pool), the
 * answer is composed on the request's event loop. */
typedef struct {
    sc_search_job_t job;
    sc_task_t task;
    sc_worker_t *w;
    sc_conn_t *conn;
    sc_request_t req;             /* owned (moved from the handler) */
    sc_ns_config_t ns;            /* its namespace's settings, read once */
    double threshold;
    int skip;                     /* sc_skip_reason_t, or -1 */
    int held;                     /* the connection waits for the worker */
    uint64_t now;
    semantic_result_t sem;
    sc_buf_t hit;                 /* the complete hit object when sem.hit */
    sc_buf_t cached;              /* response of the hit or best candidate */
    uint32_t prompt_tokens, completion_tokens;
} lookup_wait_t;

/* The search and the checks of its candidates; 'reader' has no snapshot open. */
static void lookup_search(lookup_wait_t *lw, sc_store_reader_t *reader)
{
    if (sc_store_read_begin(reader))
        return;
    sc_ctx_t *ctx = lw->w->ctx;
    sc_entry_t e;
    sc_entry_meta_t meta;
    semantic_lookup(ctx, reader, &lw->req, lw->threshold, lw->now, &e, &meta, &lw->sem);
    if (lw->sem.hit) {
        uint32_t unwritten = sc_store_touch(ctx->store, lw->sem.key, lw->now);
        append_hit(&lw->hit, "semantic", lw->sem.key, &e, meta.hits + (unwritten ? unwritten : 1),
                   lw->now, &lw->sem);
    }
    if (lw->sem.searched) {
        sc_buf_append(&lw->cached, e.response.ptr, e.response.len);
        lw->prompt_tokens = e.prompt_tokens;
        lw->completion_tokens = e.completion_tokens;
    }
    sc_store_read_end(reader);
}

/* A miss answer: the key, the best similarity seen, why semantic was skipped. */
static void append_miss(sc_ctx_t *ctx, const lookup_wait_t *lw, sc_buf_t *b)
{
    sc_buf_puts(b, "{\"status\":\"miss\",\"key\":\"");
    sc_api_append_key(b, lw->req.key);
    sc_buf_puts(b, "\"");
    if (lw->sem.searched)
        sc_buf_printf(b, ",\"best_similarity\":%.6f", lw->sem.similarity);
    if (lw->skip >= 0) {
        sc_buf_printf(b, ",\"semantic\":\"skipped\",\"semantic_skip_reason\":\"%s\"",
                      sc_skip_reason_name((sc_skip_reason_t)lw->skip));
        atomic_fetch_add(&ctx->semantic_skipped[lw->skip], 1);
    }
    sc_buf_puts(b, "}");
}

static void lookup_respond(lookup_wait_t *lw)
{
    sc_conn_t *c = lw->conn;
    sc_worker_t *w = lw->w;
    sc_ctx_t *ctx = w->ctx;
    sc_request_t *req = &lw->req;
    semantic_result_t *sem = &lw->sem;
    sc_lookup_result_t result = SC_LR_MISS;
    const sc_ns_config_t *ns = &lw->ns;
    /* maybe_sample needs the served (or candidate) answer only. */
    sc_entry_t cand = {.response = {lw->cached.data ? lw->cached.data : "", lw->cached.len}};
    sc_buf_t b = {0};
    if (sem->searched)
        sc_metrics_similarity(w->metrics, sem->hit, sem->similarity);
    if (sem->hit && lw->hit.len) {
        result = SC_LR_SEMANTIC_HIT;
        b = lw->hit;
        memset(&lw->hit, 0, sizeof(lw->hit));
        sc_metrics_tokens_saved(w->metrics, req->ns, req->ns_len, req->model, req->model_len,
                                lw->prompt_tokens, lw->completion_tokens);
        maybe_sample(w, req, ns, sem->key, SC_MATCH_SEMANTIC, sem->similarity, &cand, &b);
    } else {
        append_miss(ctx, lw, &b);
        /* Error budget: a candidate below the learned threshold may be
         * checked instead, so the threshold can come down where that is
         * safe. The caller re-infers on a miss anyway. */
        if (sem->searched && ns->max_error_rate > 0 && sem->similarity >= ns->explore_floor)
            maybe_sample(w, req, ns, sem->key, SC_MATCH_EXPLORE, sem->similarity, &cand, &b);
        /* The store that usually follows a miss can reuse this embedding. */
        if (req->vec && ctx->vec_cache)
            sc_vec_cache_put(ctx->vec_cache, req->key, req->vec, req->dim, lw->now);
    }
    sc_metrics_lookup(w->metrics, req->ns, req->ns_len, result);
    sc_api_reply_json(c, 200, &b);
    sc_buf_free(&b);
    int held = lw->held;
    sc_request_free(&lw->req);
    sc_buf_free(&lw->hit);
    sc_buf_free(&lw->cached);
    free(lw);
    if (held)
        sc_conn_release(c);
}

static void lookup_task_run(sc_task_t *t)
{
    lookup_respond((lookup_wait_t *)((char *)t - offsetof(lookup_wait_t, task)));
}

static void lookup_job_run(sc_search_job_t *job, sc_store_reader_t *reader)
{
    lookup_wait_t *lw = (lookup_wait_t *)job;
    lookup_search(lw, reader);
    sc_worker_post(lw->w, &lw->task);
}

/* Answers a lookup that missed exactly, after an optional semantic search
 * with the request's vector. 'skip' >= 0 says why semantic was skipped.
 * Takes 'req' over (the caller's copy is left empty). */
static void finish_lookup(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, double threshold,
                          int semantic, int skip)
{
    sc_ctx_t *ctx = w->ctx;
    lookup_wait_t *lw = calloc(1, sizeof(*lw));
    if (!lw) {
        sc_conn_problem(c, 503, "out-of-memory", "out of memory");
        return;
    }
    lw->job.run = lookup_job_run;
    lw->task.run = lookup_task_run;
    lw->w = w;
    lw->conn = c;
    lw->req = *req;
    memset(req, 0, sizeof(*req));
    lw->skip = skip;
    lw->now = sc_now_ms();
    sc_namespaces_get(ctx->namespaces, lw->req.ns, lw->req.ns_len, &lw->ns);
    lw->threshold = lw->ns.max_error_rate > 0 ? budget_threshold(ctx, &lw->req, &lw->ns) : threshold;
    if (semantic && lw->req.vec) {
        if (!ctx->search_pool) {
            lookup_search(lw, w->reader);
        } else if (sc_search_pool_submit(ctx->search_pool, &lw->job) == 0) {
            lw->held = 1;
            sc_api_hold(w, c);
            return; /* answered when the search is done */
        } else {
            lw->skip = SC_SKIP_QUEUE_FULL; /* exact-only rather than wait */
        }
    }
    lookup_respond(lw);
}

/* ---- embedding on the model's workers ------------------------------------ */

static void store_commit(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, const char *embedder);

/* A request waiting for the embedding workers. */
typedef struct {
    sc_task_t task;
    sc_embed_job_t job;
    sc_worker_t *w;
    sc_conn_t *conn;
    sc_request_t req;             /* owned (moved from the handler) */
    double threshold;
    int is_store;
    const sc_model_t *model;      /* the namespace's; lives as long as the server */
} embed_wait_t;

static void embed_job_done(sc_embed_job_t *job)
{
    embed_wait_t *ew = (embed_wait_t *)((char *)job - offsetof(embed_wait_t, job));
    sc_worker_post(ew->w, &ew->task);
}

static void embed_task_run(sc_task_t *t)
{
    embed_wait_t *ew = (embed_wait_t *)t;
    sc_conn_t *c = ew->conn;
    sc_ctx_t *ctx = ew->w->ctx;
    int skip = -1;
    if (ew->job.result) {
        skip = ew->job.result == SC_ETIMEDOUT ? SC_SKIP_TIMEOUT : SC_SKIP_ERROR;
        sc_log(ctx->log, SC_WARN, "embedding failed (%s): %s",
               ew->is_store ? "stored without a vector" : "exact-only lookup", sc_strerror(ew->job.result));
    } else if (!ew->job.empty) {
        ew->req.vec = ew->job.vec; /* the request owns it now */
        ew->req.dim = ew->job.dim;
        ew->job.vec = NULL;
    }
    free(ew->job.vec);
    if (ew->is_store) {
        if (skip >= 0)
            atomic_fetch_add(&ctx->semantic_skipped[skip], 1);
        store_commit(ew->w, c, &ew->req, sc_embedder_identity(ew->model->embedder));
    } else {
        finish_lookup(ew->w, c, &ew->req, ew->threshold, 1, skip);
    }
    sc_request_free(&ew->req);
    free(ew);
    sc_conn_release(c);
}

/* Hands the request to the embedding workers; the connection waits. Returns
 * -1 (nothing queued, 'req' untouched) when the queue is full. */
static int embed_async(const sc_call_t *a, const sc_model_t *m, sc_request_t *req, double threshold,
                       int is_store)
{
    embed_wait_t *ew = calloc(1, sizeof(*ew));
    if (!ew)
        return -1;
    ew->task.run = embed_task_run;
    ew->w = a->w;
    ew->conn = a->c;
    ew->req = *req; /* moved: the handler must not free it now */
    ew->threshold = threshold;
    ew->is_store = is_store;
    ew->model = m;
    ew->job.text = ew->req.text.data;
    ew->job.len = ew->req.text.len;
    ew->job.deadline_ns = sc_mono_ns() + (uint64_t)a->ctx->cfg.embed_timeout_ms * 1000000u;
    ew->job.done = embed_job_done;
    if (sc_embed_pool_submit(m->pool, &ew->job)) {
        *req = ew->req;
        free(ew);
        return -1;
    }
    memset(req, 0, sizeof(*req));
    sc_api_hold(a->w, a->c);
    return 0;
}

/* ---- POST /v1/lookup ------------------------------------------------------- */

/* The exact lookup, on the loop: 1 and the hit answer in 'b', or 0. */
static int exact_lookup(const sc_call_t *a, const sc_request_t *req, const sc_ns_config_t *ns,
                        sc_buf_t *b)
{
    sc_worker_t *w = a->w;
    uint64_t now = sc_now_ms();
    sc_entry_t e;
    sc_entry_meta_t meta;
    int hit = 0;
    int rc = sc_store_read_begin(w->reader);
    if (rc) {
        sc_log(a->ctx->log, SC_WARN, "lookup: cannot begin read (answering miss): %s", sc_strerror(rc));
        return 0;
    }
    rc = sc_store_get(w->reader, req->key, &e, &meta);
    if (rc == 0) {
        double age_s = now > e.created_ms ? (double)(now - e.created_ms) / 1000.0 : 0.0;
        if ((e.expires_ms == 0 || now < e.expires_ms) && (!req->has_max_age || age_s <= req->max_age_s)) {
            hit = 1;
            uint32_t unwritten = sc_store_touch(a->ctx->store, req->key, now);
            append_hit(b, "exact", req->key, &e, meta.hits + (unwritten ? unwritten : 1), now, NULL);
            maybe_sample(w, req, ns, req->key, SC_MATCH_EXACT, 1.0, &e, b);
            sc_metrics_tokens_saved(w->metrics, req->ns, req->ns_len, req->model, req->model_len,
                                    e.prompt_tokens, e.completion_tokens);
        }
    } else if (rc != SC_ENOTFOUND) {
        sc_log(a->ctx->log, SC_WARN, "lookup: store read failed (answering miss): %s", sc_strerror(rc));
    }
    sc_store_read_end(w->reader);
    return hit;
}

/* Decodes a lookup or store body into 'req'; 0, or the error is answered. */
static int parse_request(const sc_call_t *a, sc_req_kind_t kind, sc_request_t *req)
{
    char err[256];
    if (!sc_api_require_json(a))
        return -1;
    if (sc_request_parse(req, kind, a->http->body.ptr, a->http->body.len, err, sizeof(err))) {
        sc_conn_problem(a->c, 400, "invalid-request", err);
        return -1;
    }
    return 0;
}

void sc_api_lookup(const sc_call_t *a)
{
    sc_ctx_t *ctx = a->ctx;
    sc_request_t req;
    char err[256];
    if (parse_request(a, SC_REQ_LOOKUP, &req))
        return;
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, req.ns, req.ns_len, &ns);
    double threshold = ns.threshold;
    if (req.has_threshold) {
        if (req.threshold < ns.threshold && !ns.allow_lower_threshold) {
            snprintf(err, sizeof(err), "namespace '%.*s' does not allow lowering its threshold "
                     "(%.4g); set allow_lower_threshold to permit it", (int)req.ns_len, req.ns,
                     ns.threshold);
            sc_request_free(&req);
            sc_conn_problem(a->c, 403, "threshold-not-allowed", err);
            return;
        }
        threshold = req.threshold;
    }
    if (check_vector(a, &req, &ns)) {
        sc_request_free(&req);
        return;
    }
    sc_buf_t b = {0};
    if (exact_lookup(a, &req, &ns, &b)) {
        sc_metrics_lookup(a->w->metrics, req.ns, req.ns_len, SC_LR_EXACT_HIT);
        sc_api_reply_json(a->c, 200, &b);
        sc_buf_free(&b);
        sc_request_free(&req);
        return;
    }
    sc_buf_free(&b);
    int semantic = ns.semantic && req.text.len;
    int skip = -1;
    const sc_model_t *model = sc_models_for(&ctx->models, &ns);
    if (semantic && !req.vec && model) {
        if (!model_fits(model, &ns))
            skip = SC_SKIP_EMBEDDER;
        else if (embed_async(a, model, &req, threshold, 0) == 0)
            return; /* answered when the embedding is done */
        else
            skip = SC_SKIP_QUEUE_FULL;
    }
    finish_lookup(a->w, a->c, &req, threshold, semantic, skip);
    sc_request_free(&req);
}

/* ---- POST /v1/store -------------------------------------------------------- */

static void store_complete(sc_pending_t *p)
{
    if (p->op.result)
        sc_pending_failed(p);
    else
        sc_api_reply_key(p->conn, 201, "", p->key);
    sc_pending_finish(p);
}

static int submit_ns_put(sc_ctx_t *ctx, const char *name, size_t len, const sc_ns_config_t *ns)
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

/* Encodes the entry 'req' describes into 'p''s write op; 'ttl' in seconds
 * (0 = never expires). */
static int encode_entry(sc_pending_t *p, const sc_request_t *req, int64_t ttl)
{
    uint64_t now = sc_now_ms();
    sc_buf_t resp = {0};
    if (sc_api_dump_compact(req->response, &resp)) {
        sc_buf_free(&resp);
        return SC_ENOMEM;
    }
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
        .response = {resp.data, resp.len},
        /* A vector is kept only with semantic text to match against. */
        .vector = req->text.len ? req->vec : NULL,
        .dim = req->text.len && req->vec ? req->dim : 0,
    };
    memcpy(p->key, req->key, SC_KEY_BYTES);
    memcpy(p->op.key, req->key, SC_KEY_BYTES);
    int rc = sc_store_encode(&e, &p->op.record);
    sc_buf_free(&resp);
    return rc ? SC_ETOOBIG : 0;
}

/* Builds the entry (TTL, response, vector) and queues its write; the reply
 * goes out when the commit is durable. Records the namespace's embedder on
 * its first vector. Does not free 'req'. */
static void store_commit(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, const char *embedder)
{
    sc_ctx_t *ctx = w->ctx;
    sc_ns_config_t ns;
    int recorded = 0;
    sc_namespaces_get(ctx->namespaces, req->ns, req->ns_len, &ns);
    if (req->vec && req->text.len) {
        int rc = sc_namespaces_check_vector(ctx->namespaces, req->ns, req->ns_len, req->dim,
                                            embedder, 1, &recorded, &ns);
        if (rc) { /* a concurrent first store recorded another embedder */
            sc_conn_problem(c, rc == SC_EDIM ? 400 : 409, "embedder-mismatch",
                            "the namespace's embedder changed meanwhile; retry");
            return;
        }
    }
    /* The namespace's first vector fixes its dimensions (and embedder):
     * persist that before the entry, in queue order. */
    if (recorded && submit_ns_put(ctx, req->ns, req->ns_len, &ns))
        sc_log(ctx->log, SC_ERROR, "namespace %.*s: could not persist its dimensions",
               (int)req->ns_len, req->ns);
    int64_t ttl = req->has_ttl ? req->ttl_s : ns.ttl_s >= 0 ? ns.ttl_s : ctx->cfg.default_ttl_s;
    sc_pending_t *p = sc_pending_new(w, c, store_complete, SC_OP_PUT);
    int rc = p ? encode_entry(p, req, ttl) : SC_ENOMEM;
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
    p->op.ns_max_entries = ns.max_entries;
    p->op.ns_max_bytes = ns.max_bytes;
    sc_pending_submit(p);
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
    if (sc_compare_answers(ctx, &ns, x->fresh.data ? x->fresh.data : "", x->fresh.len,
                           x->cached.data, x->cached.len, explore_compared, x, &x->method))
        explore_compared(x, -1, -2);
}

void sc_api_store(const sc_call_t *a)
{
    sc_ctx_t *ctx = a->ctx;
    sc_request_t req;
    char err[256];
    if (parse_request(a, SC_REQ_STORE, &req))
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
    if (check_vector(a, &req, &ns)) {
        sc_request_free(&req);
        return;
    }
    resolve_exploration(a->w, &req);
    const sc_model_t *model = sc_models_for(&ctx->models, &ns);
    const char *embedder = req.embedder;
    if (!req.vec && req.text.len && ns.semantic && model) {
        embedder = sc_embedder_identity(model->embedder);
        if (!model_fits(model, &ns)) {
            snprintf(err, sizeof(err), "namespace '%.*s' holds vectors from another embedder than "
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
        else if (embed_async(a, model, &req, 0, 1) == 0)
            return; /* committed once embedded */
        else
            atomic_fetch_add(&ctx->semantic_skipped[SC_SKIP_QUEUE_FULL], 1);
    }
    store_commit(a->w, a->c, &req, embedder);
    sc_request_free(&req);
}
