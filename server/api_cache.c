/* api_cache.c -- POST /v1/lookup, and the asynchronous steps lookups and
 * stores (api_store.c) share: embedding a text on the model's workers and
 * the semantic search on a search worker. An exact lookup runs on the loop
 * against an LMDB read snapshot and answers in microseconds. A lookup never
 * fails because of an internal error: it answers "miss" (fail-open), since
 * the caller can always ask the model. The proxy (proxy*.c) runs the same
 * lookup through sc_cache_lookup: one lookup, two ways of answering. */
#define _GNU_SOURCE
#include "api.h"
#include "api_cache_internal.h"
#include "api_lease.h"
#include "observe.h"
#include "savings.h"
#include "validate.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(SC_SEMANTIC_CANDIDATES_MAX >= 1, "the search needs room for one candidate");

int sc__check_vector(const sc_call_t *a, const sc_request_t *req, sc_ns_config_t *ns)
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
        snprintf(err, sizeof(err),
                 "namespace '%.*s' holds vectors from embedder '%s', not '%s'; "
                 "delete the namespace to change embedders",
                 (int)req->ns_len, req->ns, ns->embedder, req->embedder);
        sc_conn_problem(a->c, 409, "embedder-mismatch", err);
        return -1;
    }
    return 0;
}

int sc__model_fits(const sc_model_t *m, const sc_ns_config_t *ns)
{
    return (!ns->dimensions || ns->dimensions == sc_embedder_dim(m->embedder)) &&
           (!ns->embedder[0] || strcmp(ns->embedder, sc_embedder_identity(m->embedder)) == 0);
}

/* ---- the semantic search ------------------------------------------------- */

typedef struct {
    int hit;
    int searched;      /* a valid candidate was seen */
    double similarity; /* of the hit, or the best valid candidate */
    uint8_t key[SC_KEY_BYTES];
    unsigned guard; /* SC_GUARD_* bits that refused a hit at the threshold; 0 = none */
} semantic_result_t;

/* Not expired, and young enough for the request's max-age. */
static int entry_fresh(const sc_request_t *req, const sc_entry_t *e, uint64_t now)
{
    double age_s = now > e->created_ms ? (double)(now - e->created_ms) / 1000.0 : 0.0;
    return !(e->expires_ms && now >= e->expires_ms) &&
           !(req->has_max_age && age_s > req->max_age_s);
}

/* Is candidate 'e' one this request may be answered with? Scope equality is
 * the isolation rule; namespace, tenant and model are compared again so a
 * hash collision can never leak an entry. */
static int candidate_valid(const sc_request_t *req, const sc_entry_t *e, uint64_t now)
{
    return e->scope == req->scope && e->dim == req->dim && e->ns.len == req->ns_len &&
           !memcmp(e->ns.ptr, req->ns, req->ns_len) && e->tenant.len == req->tenant_len &&
           !memcmp(e->tenant.ptr, req->tenant, req->tenant_len) && e->model.len == req->model_len &&
           !memcmp(e->model.ptr, req->model, req->model_len) && entry_fresh(req, e, now);
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
    /* The threshold lets the index answer a clear hit or miss from its small
     * beam and take the wide one only near it (README "Semantic lookup"). */
    if (sc_scopes_search_decide(ctx->scopes, req->scope, req->vec, req->dim, k, threshold, labels,
                                sims, &n, NULL))
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
    SC_BUF_LIT(b, "{\"status\":\"hit\",\"match\":\"");
    sc_buf_puts(b, match);
    SC_BUF_LIT(b, "\",\"key\":\"");
    sc_api_append_key(b, key);
    SC_BUF_LIT(b, "\"");
    if (sem) {
        sc_buf_printf(b, ",\"similarity\":%.6f,\"matched_prompt\":", sem->similarity);
        sc_buf_json_str(b, e->text.ptr, e->text.len);
    }
    SC_BUF_LIT(b, ",\"response\":");
    sc_buf_append(b, e->response.ptr, e->response.len);
    /* age_s with millisecond precision, formatted without printf. */
    char frac[4] = {(char)('0' + age_ms % 1000 / 100), (char)('0' + age_ms % 100 / 10),
                    (char)('0' + age_ms % 10), 0};
    SC_BUF_LIT(b, ",\"age_s\":");
    sc_buf_u64(b, age_ms / 1000);
    SC_BUF_LIT(b, ".");
    sc_buf_puts(b, frac);
    SC_BUF_LIT(b, ",\"hits\":");
    sc_buf_u64(b, hits);
    SC_BUF_LIT(b, "}");
}

/* Marks a served hit (or an explored candidate) for validation and hands it
 * to the namespace's delivery: 1 with the validation's id in 'id' when the
 * delivery is "caller" (the answer must carry it). 'e' is the served or
 * candidate entry. */
static int sample(sc_worker_t *w, const sc_request_t *req, const sc_ns_config_t *ns,
                  const uint8_t entry_key[SC_KEY_BYTES], sc_match_t match, double similarity,
                  const sc_entry_t *e, char id[SC_VALIDATION_ID_HEX + 1])
{
    double rate = match == SC_MATCH_EXPLORE ? ns->explore_rate : ns->sample_rate;
    int drawn = sc_quality_draw(&w->rng, rate);
    if (match != SC_MATCH_EXPLORE) /* a hit: one model call saved */
        sc_spend_hits(sc_quality_spend(w->ctx->quality), req->ns, req->ns_len, 1);
    if (!drawn && match == SC_MATCH_EXPLORE)
        sc_observe_near_miss(w, req, entry_key, similarity); /* free: the store settles it */
    if (!drawn && match != SC_MATCH_SEMANTIC)
        return 0; /* the common case, before building anything */
    sc_validation_t v;
    sc_observe_validation(req, entry_key, match, similarity, &v);
    if (sc_quality_sample(w->ctx->quality, drawn ? 1.0 : 0.0, &v, sc_now_ms(), &w->rng) != 1)
        return 0;
    if (!sc_observe_may_pay(w, ns, &v, drawn ? rate : 0))
        return 0; /* the namespace's validation budget is spent */
    if (!sc_validation_deliver(w->ctx, ns, &v, req, e->response.ptr, e->response.len))
        return 0;
    memcpy(id, v.id, sizeof(v.id));
    return 1;
}

int sc_cache_sample_hit(sc_worker_t *w, const sc_request_t *req,
                        const uint8_t entry_key[SC_KEY_BYTES], int semantic, double similarity,
                        const char *response, size_t len, char id[SC_VALIDATION_ID_HEX + 1])
{
    sc_ns_config_t ns;
    sc_namespaces_get(w->ctx->namespaces, req->ns, req->ns_len, &ns);
    sc_observe_proxy_lookup_ns(&w->ctx->cfg, &ns); /* as the proxy's lookups see it */
    sc_entry_t e = {.response = {response, len}};
    return sample(w, req, &ns, entry_key, semantic ? SC_MATCH_SEMANTIC : SC_MATCH_EXACT, similarity,
                  &e, id);
}

/* sample() for the native answer: with delivery "caller" it gains
 * "validate": true and a "validation_id" for POST /v1/feedback. 'b' holds the
 * finished response object. */
static void maybe_sample(sc_worker_t *w, const sc_request_t *req, const sc_ns_config_t *ns,
                         const uint8_t entry_key[SC_KEY_BYTES], sc_match_t match, double similarity,
                         const sc_entry_t *e, sc_buf_t *b)
{
    char id[SC_VALIDATION_ID_HEX + 1];
    if (!b->len || !sample(w, req, ns, entry_key, match, similarity, e, id))
        return;
    b->len--; /* reopen the object */
    sc_buf_printf(b, ",%s\"validate\":true,\"validation_id\":\"%s\"}",
                  match == SC_MATCH_EXPLORE ? "\"explore\":true," : "", id);
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
    sc_request_t req;  /* owned (moved from the handler) */
    sc_ns_config_t ns; /* its namespace's settings, read once */
    double threshold;
    int skip; /* sc_skip_reason_t, or -1 */
    int held; /* the connection waits for the worker */
    uint64_t now;
    semantic_result_t sem;
    sc_buf_t hit;    /* native: the complete hit object when sem.hit */
    sc_buf_t cached; /* response of the hit or best candidate */
    uint32_t prompt_tokens, completion_tokens;
    uint64_t created_ms;    /* of the hit or best candidate */
    sc_lookup_then_fn then; /* the proxy's continuation, or NULL: the native answer */
    void *then_arg;
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
    /* The guards read both texts while the snapshot holds the entry's. */
    if (lw->sem.hit && lw->ns.guards &&
        (lw->sem.guard =
             sc_models_guard(&ctx->models, sc_models_guard_checks(&ctx->models, &lw->ns),
                             lw->req.text.data, lw->req.text.len, e.text.ptr, e.text.len)))
        lw->sem.hit = 0;
    if (lw->sem.hit) {
        uint32_t unwritten = sc_store_touch(ctx->store, lw->sem.key, lw->now);
        if (!lw->then)
            append_hit(&lw->hit, "semantic", lw->sem.key, &e,
                       meta.hits + (unwritten ? unwritten : 1), lw->now, &lw->sem);
    }
    if (lw->sem.searched) {
        sc_buf_append(&lw->cached, e.response.ptr, e.response.len);
        lw->prompt_tokens = e.prompt_tokens;
        lw->completion_tokens = e.completion_tokens;
        lw->created_ms = e.created_ms;
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
    for (int r = 0; r < SC_METRICS_GUARD_REASONS; r++)
        if (lw->sem.guard & (1u << r)) { /* the first reason; the metric counts each */
            sc_buf_printf(b, ",\"guard_refused\":\"%s\"", sc_metrics_guard_reasons[r]);
            break;
        }
    if (lw->skip >= 0) {
        sc_buf_printf(b, ",\"semantic\":\"skipped\",\"semantic_skip_reason\":\"%s\"",
                      sc_skip_reason_name((sc_skip_reason_t)lw->skip));
        atomic_fetch_add(&ctx->semantic_skipped[lw->skip], 1);
    }
    sc_buf_puts(b, "}");
}

/* Frees a finished lookup and lets its connection go. */
static void lookup_free(lookup_wait_t *lw)
{
    sc_conn_t *c = lw->conn;
    int held = lw->held;
    sc_request_free(&lw->req);
    sc_buf_free(&lw->hit);
    sc_buf_free(&lw->cached);
    free(lw);
    if (held)
        sc_conn_release(c);
}

/* The proxy's end of a lookup that missed exactly: the outcome goes to its
 * continuation. Explorations are the native caller's (it stores the fresh
 * answer that resolves them); the proxy neither explores nor needs the
 * vector cache, since it gets the request back with its vector. */
static void lookup_hand_back(lookup_wait_t *lw)
{
    sc_worker_t *w = lw->w;
    semantic_result_t *sem = &lw->sem;
    sc_lookup_out_t out;
    memset(&out, 0, sizeof(out));
    out.result = SC_LR_MISS;
    out.skip = lw->skip;
    out.threshold = lw->threshold;
    if (sem->searched)
        sc_metrics_similarity(w->metrics, sem->hit, sem->similarity);
    if (sem->guard)
        sc_metrics_guard_rejection(w->metrics, lw->req.ns, lw->req.ns_len, sem->guard);
    if (lw->skip >= 0)
        atomic_fetch_add(&w->ctx->semantic_skipped[lw->skip], 1);
    if (!sem->hit && sem->searched && lw->cached.data &&
        sc_observe_wanted(&lw->ns, sem->similarity)) { /* compared with the fresh answer */
        out.observe = 1;
        memcpy(out.observe_key, sem->key, SC_KEY_BYTES);
        out.observe_similarity = sem->similarity;
        out.candidate = lw->cached;
        memset(&lw->cached, 0, sizeof(lw->cached));
    }
    if (sem->hit && lw->cached.data) {
        sc_entry_t cand = {.response = {lw->cached.data, lw->cached.len}};
        out.result = SC_LR_SEMANTIC_HIT;
        memcpy(out.key, sem->key, SC_KEY_BYTES);
        out.similarity = sem->similarity;
        out.created_ms = lw->created_ms;
        sc_savings_hit(w, lw->req.ns, lw->req.ns_len, lw->req.model, lw->req.model_len,
                       lw->prompt_tokens, lw->completion_tokens);
        sample(w, &lw->req, &lw->ns, sem->key, SC_MATCH_SEMANTIC, sem->similarity, &cand,
               out.validation_id);
        out.response = lw->cached;
        memset(&lw->cached, 0, sizeof(lw->cached));
    }
    sc_metrics_lookup(w->metrics, lw->req.ns, lw->req.ns_len, out.result);
    out.req = lw->req;
    memset(&lw->req, 0, sizeof(lw->req));
    lw->then(w, lw->conn, lw->then_arg, &out);
    sc_request_free(&out.req);
    sc_buf_free(&out.response);
    sc_buf_free(&out.candidate);
    lookup_free(lw);
}

static void lookup_again(sc_worker_t *w, sc_conn_t *c, sc_request_t *req);

static void lookup_respond(lookup_wait_t *lw)
{
    if (lw->then) {
        lookup_hand_back(lw);
        return;
    }
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
    if (sem->guard)
        sc_metrics_guard_rejection(w->metrics, req->ns, req->ns_len, sem->guard);
    if (sem->hit && lw->hit.len) {
        result = SC_LR_SEMANTIC_HIT;
        b = lw->hit;
        memset(&lw->hit, 0, sizeof(lw->hit));
        sc_savings_hit(w, req->ns, req->ns_len, req->model, req->model_len, lw->prompt_tokens,
                       lw->completion_tokens);
        maybe_sample(w, req, ns, sem->key, SC_MATCH_SEMANTIC, sem->similarity, &cand, &b);
    } else {
        /* A leased lookup may wait for the store of an identical one. */
        int lease = req->lease ? sc_lease_on_miss(w, c, req, lookup_again) : SC_LEASE_NONE;
        if (lease == SC_LEASE_WAITING) {
            lookup_free(lw);
            return;
        }
        append_miss(ctx, lw, &b);
        if (lease == SC_LEASE_GRANTED && b.len) {
            b.len--; /* reopen the object */
            sc_buf_puts(&b, ",\"lease\":true}");
        }
        /* Error budget: a candidate below the learned threshold may be
         * checked instead, so the threshold can come down where that is
         * safe. The caller re-infers on a miss anyway. */
        if (sem->searched && !sem->guard && ns->max_error_rate > 0 &&
            sem->similarity >= ns->explore_floor)
            maybe_sample(w, req, ns, sem->key, SC_MATCH_EXPLORE, sem->similarity, &cand, &b);
        /* The store that usually follows a miss can reuse this embedding. */
        if (req->vec && ctx->vec_cache)
            sc_vec_cache_put(ctx->vec_cache, req->key, req->vec, req->dim, lw->now);
    }
    sc_metrics_lookup(w->metrics, req->ns, req->ns_len, result);
    sc_api_reply_json(c, 200, &b);
    sc_buf_free(&b);
    lookup_free(lw);
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
 * Takes 'req' over (the caller's copy is left empty). 'then' NULL answers
 * the native way, else hands the outcome to it. */
static void finish_lookup(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, double threshold,
                          int semantic, int skip, sc_lookup_then_fn then, void *then_arg)
{
    sc_ctx_t *ctx = w->ctx;
    lookup_wait_t *lw = calloc(1, sizeof(*lw));
    if (!lw) {
        if (then) { /* a miss, as fail-open as the native lookup */
            sc_lookup_out_t out = {
                .result = SC_LR_MISS, .req = *req, .skip = skip, .threshold = 2.0};
            memset(req, 0, sizeof(*req));
            then(w, c, then_arg, &out);
            sc_request_free(&out.req);
        } else {
            sc_conn_problem(c, 503, "out-of-memory", "out of memory");
        }
        return;
    }
    lw->then = then;
    lw->then_arg = then_arg;
    lw->job.run = lookup_job_run;
    lw->task.run = lookup_task_run;
    lw->w = w;
    lw->conn = c;
    lw->req = *req;
    memset(req, 0, sizeof(*req));
    lw->skip = skip;
    lw->now = sc_now_ms();
    sc_namespaces_get(ctx->namespaces, lw->req.ns, lw->req.ns_len, &lw->ns);
    if (then)
        sc_observe_proxy_lookup_ns(&ctx->cfg, &lw->ns);
    lw->threshold =
        lw->ns.max_error_rate > 0 ? budget_threshold(ctx, &lw->req, &lw->ns) : threshold;
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

static void embed_job_done(sc_embed_job_t *job)
{
    sc__embed_wait_t *ew = (sc__embed_wait_t *)((char *)job - offsetof(sc__embed_wait_t, job));
    sc_worker_post(ew->w, &ew->task);
}

/* Carries on with the embedded request and frees 'ew' (not its connection). */
static void embed_finish(sc__embed_wait_t *ew)
{
    sc_conn_t *c = ew->conn;
    sc_ctx_t *ctx = ew->w->ctx;
    int skip = -1;
    if (ew->job.result) {
        skip = ew->job.result == SC_ETIMEDOUT ? SC_SKIP_TIMEOUT : SC_SKIP_ERROR;
        sc_log(ctx->log, SC_WARN, "embedding failed (%s): %s",
               ew->kind != EW_LOOKUP ? "stored without a vector" : "exact-only lookup",
               sc_strerror(ew->job.result));
    } else if (!ew->job.empty) {
        ew->req.vec = ew->job.vec; /* the request owns it now */
        ew->req.dim = ew->job.dim;
        ew->job.vec = NULL;
    }
    free(ew->job.vec);
    const char *embedder = sc_embedder_identity(ew->model->embedder);
    if (ew->kind != EW_LOOKUP && skip >= 0)
        atomic_fetch_add(&ctx->semantic_skipped[skip], 1);
    if (ew->kind == EW_STORE)
        sc__store_commit(ew->w, c, &ew->req, embedder);
    else if (ew->kind == EW_STORE_DETACHED)
        sc__store_detached(ew->w, &ew->req, embedder, &ew->response, ew->store_done, ew->store_arg);
    else
        finish_lookup(ew->w, c, &ew->req, ew->threshold, 1, skip, ew->then, ew->then_arg);
    sc_request_free(&ew->req);
    sc_buf_free(&ew->response);
    free(ew);
}

static void embed_task_run(sc_task_t *t)
{
    sc_conn_t *c = ((sc__embed_wait_t *)t)->conn;
    embed_finish((sc__embed_wait_t *)t);
    if (c)
        sc_conn_release(c);
}

int sc__embed_async(sc_worker_t *w, sc_conn_t *c, const sc_model_t *m, sc_request_t *req,
                    sc__embed_wait_t *how)
{
    sc__embed_wait_t *ew = malloc(sizeof(*ew));
    if (!ew)
        return -1;
    *ew = *how;
    memset(&ew->job, 0, sizeof(ew->job));
    ew->task.run = embed_task_run;
    ew->w = w;
    ew->conn = c;
    ew->req = *req; /* moved: the handler must not free it now */
    ew->model = m;
    ew->job.text = ew->req.text.data;
    ew->job.len = ew->req.text.len;
    ew->job.deadline_ns = sc_mono_ns() + (uint64_t)w->ctx->cfg.embed_timeout_ms * 1000000u;
    ew->job.done = embed_job_done;
    /* A static model's text is embedded here, in microseconds: cheaper than
     * the hand-offs to a worker and back (bounded by --embed-inline-us). */
    int here = sc_embed_pool_try_inline(m->pool, &ew->job);
    if (!here && sc_embed_pool_submit(m->pool, &ew->job)) {
        free(ew);
        return -1;
    }
    memset(req, 0, sizeof(*req));
    memset(&how->response, 0, sizeof(how->response));
    if (here) {
        embed_finish(ew);
        return 0;
    }
    if (c)
        sc_api_hold(w, c);
    else
        sc_worker_expect(w);
    return 0;
}

/* ---- POST /v1/lookup ------------------------------------------------------- */

/* The exact lookup, on the loop: 1 and the hit answer in 'b', or 0. */
static int exact_lookup(sc_worker_t *w, const sc_request_t *req, const sc_ns_config_t *ns,
                        sc_buf_t *b)
{
    sc_ctx_t *ctx = w->ctx;
    uint64_t now = sc_now_ms();
    sc_entry_t e;
    sc_entry_meta_t meta;
    int hit = 0;
    int rc = sc_store_read_begin(w->reader);
    if (rc) {
        sc_log(ctx->log, SC_WARN, "lookup: cannot begin read (answering miss): %s",
               sc_strerror(rc));
        return 0;
    }
    rc = sc_store_get(w->reader, req->key, &e, &meta);
    if (rc == 0) {
        double age_s = now > e.created_ms ? (double)(now - e.created_ms) / 1000.0 : 0.0;
        if ((e.expires_ms == 0 || now < e.expires_ms) &&
            (!req->has_max_age || age_s <= req->max_age_s)) {
            hit = 1;
            uint32_t unwritten = sc_store_touch(ctx->store, req->key, now);
            append_hit(b, "exact", req->key, &e, meta.hits + (unwritten ? unwritten : 1), now,
                       NULL);
            maybe_sample(w, req, ns, req->key, SC_MATCH_EXACT, 1.0, &e, b);
            sc_savings_hit(w, req->ns, req->ns_len, req->model, req->model_len, e.prompt_tokens,
                           e.completion_tokens);
        }
    } else if (rc != SC_ENOTFOUND) {
        sc_log(ctx->log, SC_WARN, "lookup: store read failed (answering miss): %s",
               sc_strerror(rc));
    }
    sc_store_read_end(w->reader);
    return hit;
}

int sc__parse_request(const sc_call_t *a, sc_req_kind_t kind, sc_request_t *req)
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

/* The native lookup of a checked request ('req' taken over): exact on the
 * loop, then semantic (embedding and search on their pools). */
static void lookup_run(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, double threshold,
                       const sc_ns_config_t *ns)
{
    sc_ctx_t *ctx = w->ctx;
    sc_buf_t b = {0};
    if (exact_lookup(w, req, ns, &b)) {
        sc_metrics_lookup(w->metrics, req->ns, req->ns_len, SC_LR_EXACT_HIT);
        sc_api_reply_json(c, 200, &b);
        sc_buf_free(&b);
        sc_request_free(req);
        return;
    }
    sc_buf_free(&b);
    int semantic = ns->semantic && req->text.len;
    int skip = -1;
    const sc_model_t *model = sc_models_for(&ctx->models, ns);
    if (semantic && !req->vec && model) {
        if (!sc_models_available(model))
            skip = SC_SKIP_UNAVAILABLE; /* its endpoint has not answered yet */
        else if (!sc__model_fits(model, ns))
            skip = SC_SKIP_EMBEDDER;
        else if (sc__embed_async(w, c, model, req,
                                 &(sc__embed_wait_t){.kind = EW_LOOKUP, .threshold = threshold}) ==
                 0)
            return; /* answered when the embedding is done */
        else
            skip = SC_SKIP_QUEUE_FULL;
    }
    finish_lookup(w, c, req, threshold, semantic, skip, NULL, NULL);
    sc_request_free(req);
}

void sc_api_lookup(const sc_call_t *a)
{
    sc_ctx_t *ctx = a->ctx;
    sc_request_t req;
    char err[256];
    if (sc__parse_request(a, SC_REQ_LOOKUP, &req))
        return;
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, req.ns, req.ns_len, &ns);
    double threshold = sc_models_threshold(&ctx->models, &ctx->cfg, &ns, NULL);
    if (req.has_threshold) {
        if (req.threshold < threshold && !ns.allow_lower_threshold) {
            snprintf(err, sizeof(err),
                     "namespace '%.*s' does not allow lowering its threshold "
                     "(%.4g); set allow_lower_threshold to permit it",
                     (int)req.ns_len, req.ns, threshold);
            sc_request_free(&req);
            sc_conn_problem(a->c, 403, "threshold-not-allowed", err);
            return;
        }
        threshold = req.threshold;
    }
    if (sc__check_vector(a, &req, &ns)) {
        sc_request_free(&req);
        return;
    }
    lookup_run(a->w, a->c, &req, threshold, &ns);
}

/* The lookup again for a leased request that waited ('req' taken over):
 * api_lease.c calls it back, with no lease this time. */
static void lookup_again(sc_worker_t *w, sc_conn_t *c, sc_request_t *req)
{
    sc_ns_config_t ns;
    sc_namespaces_get(w->ctx->namespaces, req->ns, req->ns_len, &ns);
    req->lease = 0;
    lookup_run(w, c, req, req->has_threshold ? req->threshold : ns.threshold, &ns);
}

/* ---- the proxy's lookup ------------------------------------------------------ */

/* sc_cache_lookup's exact step: 1 with 'out' filled on a fresh entry. */
static int exact_probe(sc_worker_t *w, const sc_request_t *req, const sc_ns_config_t *ns,
                       sc_lookup_out_t *out)
{
    uint64_t now = sc_now_ms();
    sc_entry_t e;
    int hit = 0;
    if (sc_store_read_begin(w->reader))
        return 0;
    if (sc_store_get(w->reader, req->key, &e, NULL) == 0 && entry_fresh(req, &e, now) &&
        sc_buf_append(&out->response, e.response.ptr, e.response.len) == 0) {
        hit = 1;
        sc_store_touch(w->ctx->store, req->key, now);
        out->result = SC_LR_EXACT_HIT;
        memcpy(out->key, req->key, SC_KEY_BYTES);
        out->similarity = 1.0;
        out->created_ms = e.created_ms;
        sample(w, req, ns, req->key, SC_MATCH_EXACT, 1.0, &e, out->validation_id);
        sc_savings_hit(w, req->ns, req->ns_len, req->model, req->model_len, e.prompt_tokens,
                       e.completion_tokens);
    }
    sc_store_read_end(w->reader);
    return hit;
}

int sc_cache_exact_probe(sc_worker_t *w, const sc_request_t *req, sc_lookup_out_t *out)
{
    sc_ns_config_t ns;
    sc_namespaces_get(w->ctx->namespaces, req->ns, req->ns_len, &ns);
    sc_observe_proxy_lookup_ns(&w->ctx->cfg, &ns);
    memset(out, 0, sizeof(*out));
    out->skip = -1;
    out->threshold = 2.0;
    return exact_probe(w, req, &ns, out);
}

void sc_cache_lookup(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, double threshold,
                     sc_lookup_then_fn then, void *arg)
{
    sc_ctx_t *ctx = w->ctx;
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, req->ns, req->ns_len, &ns);
    sc_observe_proxy_lookup_ns(&ctx->cfg, &ns);
    sc_lookup_out_t out;
    memset(&out, 0, sizeof(out));
    out.skip = -1;
    out.threshold = 2.0;
    if (exact_probe(w, req, &ns, &out)) {
        sc_metrics_lookup(w->metrics, req->ns, req->ns_len, SC_LR_EXACT_HIT);
        out.req = *req;
        memset(req, 0, sizeof(*req));
        then(w, c, arg, &out);
        sc_request_free(&out.req);
        sc_buf_free(&out.response);
        return;
    }
    sc_buf_free(&out.response);
    int semantic = ns.semantic && req->text.len;
    int skip = -1;
    const sc_model_t *model = sc_models_for(&ctx->models, &ns);
    if (semantic && !req->vec && model) {
        if (!sc_models_available(model))
            skip = SC_SKIP_UNAVAILABLE; /* its endpoint has not answered yet */
        else if (!sc__model_fits(model, &ns))
            skip = SC_SKIP_EMBEDDER;
        else if (sc__embed_async(w, c, model, req,
                                 &(sc__embed_wait_t){.kind = EW_LOOKUP,
                                                     .threshold = threshold,
                                                     .then = then,
                                                     .then_arg = arg}) == 0)
            return;
        else
            skip = SC_SKIP_QUEUE_FULL;
    }
    finish_lookup(w, c, req, threshold, semantic, skip, then, arg);
}
