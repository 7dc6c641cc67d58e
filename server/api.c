/* api.c -- the v1 JSON API: routing and handlers.
 * Reads (lookup, entry fetch, stats, metrics) run on the event loop against an
 * LMDB read snapshot and answer in microseconds. Writes (store, delete,
 * invalidate) become store ops; the HTTP reply is sent when the writer reports
 * the op durable. A lookup never fails because of an internal error: it answers
 * "miss" (fail-open), since the caller can always ask the model instead. */
#define _GNU_SOURCE
#include "server_internal.h"
#include "validate.h"
#include "searchpool.h"
#include "sc_index.h"
#include "sc_request.h"
#include "sc_veccache.h"

#include <stddef.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JSON_CT "application/json"

/* ---- helpers ---------------------------------------------------------- */

static int path_is(sc_slice_t p, const char *s)
{
    size_t n = strlen(s);
    return p.len == n && memcmp(p.ptr, s, n) == 0;
}

static int path_has_prefix(sc_slice_t p, const char *s, sc_slice_t *rest)
{
    size_t n = strlen(s);
    if (p.len < n || memcmp(p.ptr, s, n) != 0)
        return 0;
    rest->ptr = p.ptr + n;
    rest->len = p.len - n;
    return 1;
}

static void reply_json(sc_conn_t *c, sc_endpoint_t ep, const sc_http_request_t *req, int status,
                       const sc_buf_t *b)
{
    sc_conn_respond(c, ep, req->started_ns, status, JSON_CT, NULL, b->data ? b->data : "", b->len);
}

static void method_not_allowed(sc_conn_t *c, sc_endpoint_t ep, uint64_t started, const char *allow)
{
    char detail[96], hdr[64];
    snprintf(detail, sizeof(detail), "this resource allows %s", allow);
    snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
    sc_buf_t b = {0};
    sc_buf_printf(&b, "{\"type\":\"urn:semcached:problem:method-not-allowed\",\"title\":"
                      "\"Method Not Allowed\",\"status\":405,\"detail\":\"%s\"}", detail);
    sc_conn_respond(c, ep, started, 405, "application/problem+json", hdr, b.data, b.len);
    sc_buf_free(&b);
}

static int require_json(sc_conn_t *c, sc_endpoint_t ep, const sc_http_request_t *req)
{
    if (req->content_type_json)
        return 1;
    sc_conn_problem(c, ep, req->started_ns, 415, "unsupported-media-type",
                    "send the body as application/json (Content-Type: application/json)");
    return 0;
}

static void append_key(sc_buf_t *b, const uint8_t key[SC_KEY_BYTES])
{
    char hex[SC_KEY_HEX + 1];
    sc_hex_encode(key, SC_KEY_BYTES, hex);
    sc_buf_append(b, hex, SC_KEY_HEX);
}

/* Writes a JSON value compactly, keeping object key order and printing each
 * number in its shortest round-trip form (jansson's dump would print 0.1 as
 * 0.10000000000000001). */
static int dump_compact(const json_t *v, sc_buf_t *out)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *val;
        int first = 1;
        sc_buf_append(out, "{", 1);
        json_object_foreach((json_t *)v, k, val) {
            if (!first)
                sc_buf_append(out, ",", 1);
            first = 0;
            sc_buf_json_str(out, k, strlen(k));
            sc_buf_append(out, ":", 1);
            if (dump_compact(val, out))
                return SC_ENOMEM;
        }
        return sc_buf_append(out, "}", 1);
    }
    case JSON_ARRAY:
        sc_buf_append(out, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                sc_buf_append(out, ",", 1);
            if (dump_compact(json_array_get(v, i), out))
                return SC_ENOMEM;
        }
        return sc_buf_append(out, "]", 1);
    default:
        return sc_canonical_json(v, out); /* scalars: canonical == compact */
    }
}

/* ---- lookup ----------------------------------------------------------- */

/* Checks a request's vector against server and namespace limits. Returns 0,
 * or answers the error itself and returns -1. */
static int check_vector(sc_conn_t *c, sc_endpoint_t ep, const sc_http_request_t *hr,
                        const sc_request_t *req, int record, sc_ns_config_t *ns, int *recorded)
{
    sc_server_t *srv = c->w->srv;
    char err[256];
    *recorded = 0;
    if (!req->vec || !req->text.len)
        return 0;
    if (req->dim > (uint32_t)srv->cfg.max_dimensions) {
        snprintf(err, sizeof(err), "\"embedding\" has %u dimensions; --max-dimensions is %lld",
                 req->dim, (long long)srv->cfg.max_dimensions);
        sc_conn_problem(c, ep, hr->started_ns, 400, "invalid-request", err);
        return -1;
    }
    int rc = sc_namespaces_check_vector(srv->namespaces, req->ns, req->ns_len, req->dim,
                                        req->embedder, record, recorded, ns);
    if (rc == SC_EDIM) {
        snprintf(err, sizeof(err), "\"embedding\" has %u dimensions but namespace '%.*s' uses %u",
                 req->dim, (int)req->ns_len, req->ns, ns->dimensions);
        sc_conn_problem(c, ep, hr->started_ns, 400, "dimension-mismatch", err);
        return -1;
    }
    if (rc == SC_ECONFLICT) {
        snprintf(err, sizeof(err), "namespace '%.*s' holds vectors from embedder '%s', not '%s'; "
                 "delete the namespace to change embedders", (int)req->ns_len, req->ns,
                 ns->embedder, req->embedder);
        sc_conn_problem(c, ep, hr->started_ns, 409, "embedder-mismatch", err);
        return -1;
    }
    return 0;
}

typedef struct {
    int hit;
    int searched;            /* a valid candidate was seen */
    double similarity;       /* of the hit, or the best valid candidate */
    uint8_t key[SC_KEY_BYTES];
} semantic_result_t;

/* Searches the request's scope and validates candidates against LMDB, best
 * first: expired, deleted, too old or foreign entries are skipped. The first
 * valid candidate decides: a hit if it clears 'threshold'. On a hit the entry
 * is left in 'e'/'meta' (the caller's read snapshot must still be open). */
static void semantic_lookup(sc_server_t *srv, sc_store_reader_t *reader, const sc_request_t *req,
                            double threshold, uint64_t now, sc_entry_t *e, sc_entry_meta_t *meta,
                            semantic_result_t *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t labels[256];
    float sims[256];
    size_t n = 0, k = (size_t)srv->cfg.semantic_candidates;
    if (sc_scopes_search(srv->scopes, req->scope, req->vec, req->dim, k, labels, sims, &n))
        return;
    float stored[4096], *sv = req->dim <= 4096 ? stored : malloc(req->dim * sizeof(float));
    if (!sv)
        return;
    for (size_t i = 0; i < n; i++) {
        uint8_t key[SC_KEY_BYTES];
        if (sc_store_get_by_label(reader, labels[i], key, e, meta))
            continue;
        double age_s = now > e->created_ms ? (double)(now - e->created_ms) / 1000.0 : 0.0;
        /* Scope equality is the isolation rule; namespace, tenant and model
         * are compared again so a hash collision can never leak an entry. */
        if (e->scope != req->scope || e->dim != req->dim ||
            e->ns.len != req->ns_len || memcmp(e->ns.ptr, req->ns, req->ns_len) ||
            e->tenant.len != req->tenant_len || memcmp(e->tenant.ptr, req->tenant, req->tenant_len) ||
            e->model.len != req->model_len || memcmp(e->model.ptr, req->model, req->model_len) ||
            (e->expires_ms && now >= e->expires_ms) || (req->has_max_age && age_s > req->max_age_s))
            continue;
        if (sc_store_is_negative(reader, req->key, key))
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
    append_key(b, key);
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
    if (sc_quality_sample(w->srv->quality, drawn ? 1.0 : 0.0, &v, sc_now_ms(), &w->rng) != 1)
        return;
    if (!sc_validation_deliver(w->srv, ns, &v, req, e->response.ptr, e->response.len))
        return;
    b->len--; /* reopen the object */
    sc_buf_printf(b, ",%s\"validate\":true,\"validation_id\":\"%s\"}",
                  match == SC_MATCH_EXPLORE ? "\"explore\":true," : "", v.id);
}

static int learned_threshold(sc_server_t *srv, const char *name, const sc_ns_config_t *ns, double *t,
                             uint64_t *n_obs);

static const char *const skip_reasons[4] = {"queue_full", "timeout", "error", "embedder_mismatch"};
enum { SKIP_QUEUE_FULL, SKIP_TIMEOUT, SKIP_ERROR, SKIP_EMBEDDER };

/* The threshold a max_error_rate namespace serves at: what its validations
 * support (nothing at all until they support some cut), never below an
 * explicit namespace threshold or a request's own. */
static double budget_threshold(sc_server_t *srv, const sc_request_t *req, const sc_ns_config_t *ns)
{
    double t;
    int from_scope;
    char name[SC_MAX_NAMESPACE + 1];
    snprintf(name, sizeof(name), "%.*s", (int)req->ns_len, req->ns);
    if (!sc_quality_budget_threshold(srv->quality, name, req->scope, ns->max_error_rate, &t,
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
    sc_conn_t *conn;
    sc_server_t *srv;
    sc_request_t req;             /* owned (moved from the handler) */
    sc_ns_config_t ns;            /* its namespace's settings, read once */
    double threshold;
    int skip;
    int held;                     /* the connection waits for the worker */
    uint64_t started_ns, now;
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
    sc_entry_t e;
    sc_entry_meta_t meta;
    semantic_lookup(lw->srv, reader, &lw->req, lw->threshold, lw->now, &e, &meta, &lw->sem);
    if (lw->sem.hit) {
        uint32_t unwritten = sc_store_touch(lw->srv->store, lw->sem.key, lw->now);
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

static void lookup_respond(lookup_wait_t *lw)
{
    sc_conn_t *c = lw->conn;
    sc_worker_t *w = c->w;
    sc_server_t *srv = w->srv;
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
        sc_buf_puts(&b, "{\"status\":\"miss\",\"key\":\"");
        append_key(&b, req->key);
        sc_buf_puts(&b, "\"");
        if (sem->searched)
            sc_buf_printf(&b, ",\"best_similarity\":%.6f", sem->similarity);
        if (lw->skip >= 0) {
            sc_buf_printf(&b, ",\"semantic\":\"skipped\",\"semantic_skip_reason\":\"%s\"",
                          skip_reasons[lw->skip]);
            atomic_fetch_add(&srv->semantic_skipped[lw->skip], 1);
        }
        sc_buf_puts(&b, "}");
        /* Error budget: a candidate below the learned threshold may be
         * checked instead, so the threshold can come down where that is
         * safe. The caller re-infers on a miss anyway. */
        if (sem->searched && ns->max_error_rate > 0 && sem->similarity >= ns->explore_floor)
            maybe_sample(w, req, ns, sem->key, SC_MATCH_EXPLORE, sem->similarity, &cand, &b);
        /* The store that usually follows a miss can reuse this embedding. */
        if (req->vec && srv->vec_cache)
            sc_vec_cache_put(srv->vec_cache, req->key, req->vec, req->dim, lw->now);
    }
    sc_metrics_lookup(w->metrics, req->ns, req->ns_len, result);
    sc_conn_respond(c, SC_EP_LOOKUP, lw->started_ns, 200, JSON_CT, NULL, b.data ? b.data : "", b.len);
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
    sc_worker_post(lw->conn->w, &lw->task);
}

/* Answers a lookup that missed exactly, after an optional semantic search
 * with the request's vector. 'skip' >= 0 says why semantic was skipped.
 * Takes 'req' over (the caller's copy is left empty). */
static void finish_lookup(sc_conn_t *c, sc_request_t *req, double threshold, int semantic,
                          int skip, uint64_t started_ns)
{
    sc_worker_t *w = c->w;
    sc_server_t *srv = w->srv;
    lookup_wait_t *lw = calloc(1, sizeof(*lw));
    if (!lw) {
        sc_conn_problem(c, SC_EP_LOOKUP, started_ns, 503, "out-of-memory", "out of memory");
        return;
    }
    lw->job.run = lookup_job_run;
    lw->task.run = lookup_task_run;
    lw->conn = c;
    lw->srv = srv;
    lw->req = *req;
    memset(req, 0, sizeof(*req));
    lw->skip = skip;
    lw->started_ns = started_ns;
    lw->now = sc_now_ms();
    sc_namespaces_get(srv->namespaces, lw->req.ns, lw->req.ns_len, &lw->ns);
    lw->threshold = lw->ns.max_error_rate > 0 ? budget_threshold(srv, &lw->req, &lw->ns) : threshold;
    if (semantic && lw->req.vec) {
        if (!srv->search_pool) {
            lookup_search(lw, w->reader);
        } else if (sc_search_pool_submit(srv->search_pool, &lw->job) == 0) {
            lw->held = 1;
            sc_conn_hold(c);
            return; /* answered when the search is done */
        } else {
            lw->skip = SKIP_QUEUE_FULL; /* exact-only rather than wait */
        }
    }
    lookup_respond(lw);
}

/* A request waiting for the embedding workers. */
typedef struct {
    sc_task_t task;
    sc_embed_job_t job;
    sc_conn_t *conn;
    sc_request_t req;             /* owned (moved from the handler) */
    double threshold;
    uint64_t started_ns;
    int is_store;
    const sc_model_t *model;      /* the namespace's; lives as long as the server */
} embed_wait_t;

static void store_commit(sc_conn_t *c, uint64_t started_ns, sc_request_t *req,
                         const char *embedder);

static void embed_job_done(sc_embed_job_t *job)
{
    embed_wait_t *ew = (embed_wait_t *)((char *)job - offsetof(embed_wait_t, job));
    sc_worker_post(ew->conn->w, &ew->task);
}

static void embed_task_run(sc_task_t *t)
{
    embed_wait_t *ew = (embed_wait_t *)t;
    sc_conn_t *c = ew->conn;
    sc_server_t *srv = c->w->srv;
    int skip = -1;
    if (ew->job.result) {
        skip = ew->job.result == SC_ETIMEDOUT ? SKIP_TIMEOUT : SKIP_ERROR;
        sc_log(srv->log, SC_WARN, "embedding failed (%s): %s", ew->is_store ? "stored without a vector" : "exact-only lookup",
               sc_strerror(ew->job.result));
    } else if (!ew->job.empty) {
        ew->req.vec = ew->job.vec; /* the request owns it now */
        ew->req.dim = ew->job.dim;
        ew->job.vec = NULL;
    }
    free(ew->job.vec);
    if (ew->is_store) {
        if (skip >= 0)
            atomic_fetch_add(&srv->semantic_skipped[skip], 1);
        store_commit(c, ew->started_ns, &ew->req, sc_embedder_identity(ew->model->embedder));
    } else {
        finish_lookup(c, &ew->req, ew->threshold, 1, skip, ew->started_ns);
    }
    sc_request_free(&ew->req);
    free(ew);
    sc_conn_release(c);
}

/* Hands the request to the embedding workers; the connection waits. Returns
 * -1 (nothing queued) when the queue is full. */
static int embed_async(sc_conn_t *c, const sc_model_t *m, sc_request_t *req, double threshold,
                       uint64_t started_ns, int is_store)
{
    sc_server_t *srv = c->w->srv;
    embed_wait_t *ew = calloc(1, sizeof(*ew));
    if (!ew)
        return -1;
    ew->task.run = embed_task_run;
    ew->conn = c;
    ew->req = *req; /* moved: the handler must not free it now */
    ew->threshold = threshold;
    ew->started_ns = started_ns;
    ew->is_store = is_store;
    ew->model = m;
    ew->job.text = ew->req.text.data;
    ew->job.len = ew->req.text.len;
    ew->job.deadline_ns = sc_mono_ns() + (uint64_t)srv->cfg.embed_timeout_ms * 1000000u;
    ew->job.done = embed_job_done;
    if (sc_embed_pool_submit(m->pool, &ew->job)) {
        *req = ew->req;
        free(ew);
        return -1;
    }
    memset(req, 0, sizeof(*req));
    sc_conn_hold(c);
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

static void handle_lookup(sc_conn_t *c, const sc_http_request_t *hr)
{
    sc_worker_t *w = c->w;
    sc_server_t *srv = w->srv;
    if (!require_json(c, SC_EP_LOOKUP, hr))
        return;
    sc_request_t req;
    char err[256];
    if (sc_request_parse(&req, SC_REQ_LOOKUP, hr->body.ptr, hr->body.len, err, sizeof(err))) {
        sc_conn_problem(c, SC_EP_LOOKUP, hr->started_ns, 400, "invalid-request", err);
        return;
    }
    sc_ns_config_t ns;
    int recorded;
    sc_namespaces_get(srv->namespaces, req.ns, req.ns_len, &ns);
    double threshold = ns.threshold;
    if (req.has_threshold) {
        if (req.threshold < ns.threshold && !ns.allow_lower_threshold) {
            snprintf(err, sizeof(err), "namespace '%.*s' does not allow lowering its threshold "
                     "(%.4g); set allow_lower_threshold to permit it", (int)req.ns_len, req.ns,
                     ns.threshold);
            sc_request_free(&req);
            sc_conn_problem(c, SC_EP_LOOKUP, hr->started_ns, 403, "threshold-not-allowed", err);
            return;
        }
        threshold = req.threshold;
    }
    if (check_vector(c, SC_EP_LOOKUP, hr, &req, 0, &ns, &recorded)) {
        sc_request_free(&req);
        return;
    }
    sc_buf_t b = {0};
    uint64_t now = sc_now_ms();
    sc_entry_t e;
    sc_entry_meta_t meta;
    int hit = 0;
    int rc = sc_store_read_begin(w->reader);
    if (rc == 0) {
        rc = sc_store_get(w->reader, req.key, &e, &meta);
        if (rc == 0) {
            double age_s = now > e.created_ms ? (double)(now - e.created_ms) / 1000.0 : 0.0;
            if ((e.expires_ms == 0 || now < e.expires_ms) &&
                (!req.has_max_age || age_s <= req.max_age_s)) {
                hit = 1;
                uint32_t unwritten = sc_store_touch(srv->store, req.key, now);
                append_hit(&b, "exact", req.key, &e, meta.hits + (unwritten ? unwritten : 1), now, NULL);
                maybe_sample(w, &req, &ns, req.key, SC_MATCH_EXACT, 1.0, &e, &b);
                sc_metrics_tokens_saved(w->metrics, req.ns, req.ns_len, req.model, req.model_len,
                                        e.prompt_tokens, e.completion_tokens);
            }
        } else if (rc != SC_ENOTFOUND) {
            sc_log(srv->log, SC_WARN, "lookup: store read failed (answering miss): %s",
                   sc_strerror(rc));
        }
        sc_store_read_end(w->reader);
    } else {
        sc_log(srv->log, SC_WARN, "lookup: cannot begin read (answering miss): %s", sc_strerror(rc));
    }
    if (hit) {
        sc_metrics_lookup(w->metrics, req.ns, req.ns_len, SC_LR_EXACT_HIT);
        reply_json(c, SC_EP_LOOKUP, hr, 200, &b);
        sc_buf_free(&b);
        sc_request_free(&req);
        return;
    }
    sc_buf_free(&b);
    int semantic = ns.semantic && req.text.len;
    int skip = -1;
    const sc_model_t *model = sc_server_model(srv, &ns);
    if (semantic && !req.vec && model) {
        if (!model_fits(model, &ns))
            skip = SKIP_EMBEDDER;
        else if (embed_async(c, model, &req, threshold, hr->started_ns, 0) == 0)
            return; /* answered when the embedding is done */
        else
            skip = SKIP_QUEUE_FULL;
    }
    finish_lookup(c, &req, threshold, semantic, skip, hr->started_ns);
    sc_request_free(&req);
}

/* ---- async writes ----------------------------------------------------- */

static sc_pending_t *pending_new(sc_conn_t *c, sc_endpoint_t ep, const sc_http_request_t *hr,
                                 void (*complete)(sc_pending_t *), sc_op_type_t type)
{
    sc_pending_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->op.type = type;
    p->op.done = sc_api_op_done;
    p->conn = c;
    p->complete = complete;
    p->endpoint = ep;
    p->started_ns = hr->started_ns;
    return p;
}

static void pending_free(sc_pending_t *p)
{
    sc_write_op_clear(&p->op);
    free(p);
}

/* Submits 'p'; on failure answers 503 and frees it. */
static void pending_submit(sc_conn_t *c, sc_pending_t *p)
{
    int rc = sc_store_submit(c->w->srv->store, &p->op);
    if (rc) {
        sc_endpoint_t ep = p->endpoint;
        uint64_t started = p->started_ns;
        pending_free(p);
        sc_conn_problem(c, ep, started, 503,
                        rc == SC_EBUSY ? "write-queue-full" : "shutting-down",
                        rc == SC_EBUSY ? "the write queue is full (--writer-queue); retry shortly"
                                       : "the server is shutting down");
        return;
    }
    sc_conn_hold(c);
}

static void write_failed(sc_conn_t *c, sc_pending_t *p)
{
    int rc = p->op.result;
    if (rc == SC_EFULL)
        sc_conn_problem(c, p->endpoint, p->started_ns, 507, "store-full",
                        c->w->srv->cfg.evict == SC_EVICT_NONE
                            ? "the store is full (--map-size or --max-entries), or its namespace is "
                              "(max_entries or max_bytes), and eviction is off (--evict none)"
                            : "the store is full (--map-size) and nothing more can be evicted");
    else if (rc == SC_ETOOBIG)
        sc_conn_problem(c, p->endpoint, p->started_ns, 413, "entry-too-large",
                        "the entry is larger than the store or its namespace's max_bytes can hold");
    else
        sc_conn_problem(c, p->endpoint, p->started_ns, 500, "store-error", sc_strerror(rc));
}

static void store_complete(sc_pending_t *p)
{
    sc_conn_t *c = p->conn;
    if (p->op.result) {
        write_failed(c, p);
    } else {
        sc_buf_t b = {0};
        sc_buf_puts(&b, "{\"key\":\"");
        append_key(&b, p->key);
        sc_buf_puts(&b, "\"}");
        sc_conn_respond(c, SC_EP_STORE, p->started_ns, 201, JSON_CT, NULL, b.data, b.len);
        sc_buf_free(&b);
    }
    pending_free(p);
    sc_conn_release(c);
}

static int submit_ns_put(sc_server_t *srv, const char *name, size_t len, const sc_ns_config_t *ns)
{
    sc_write_op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return SC_ENOMEM;
    op->type = SC_OP_NS_PUT;
    op->done = sc_write_op_free; /* nobody waits for it */
    op->ns = strndup(name, len);
    int rc = op->ns ? sc_ns_config_to_json(ns, &op->record) : SC_ENOMEM;
    if (!rc)
        rc = sc_store_submit(srv->store, op);
    if (rc)
        sc_write_op_free(op);
    return rc;
}

/* Builds the entry (TTL, response, vector) and queues its write; the reply
 * goes out when the commit is durable. Records the namespace's embedder on
 * its first vector. Does not free 'req'. */
static void store_commit(sc_conn_t *c, uint64_t started_ns, sc_request_t *req,
                         const char *embedder)
{
    sc_server_t *srv = c->w->srv;
    const sc_config_t *cfg = &srv->cfg;
    sc_ns_config_t ns;
    int recorded = 0;
    sc_namespaces_get(srv->namespaces, req->ns, req->ns_len, &ns);
    if (req->vec && req->text.len) {
        int rc = sc_namespaces_check_vector(srv->namespaces, req->ns, req->ns_len, req->dim,
                                            embedder, 1, &recorded, &ns);
        if (rc) { /* a concurrent first store recorded another embedder */
            sc_conn_problem(c, SC_EP_STORE, started_ns, rc == SC_EDIM ? 400 : 409,
                            "embedder-mismatch", "the namespace's embedder changed meanwhile; retry");
            return;
        }
    }
    /* The namespace's first vector fixes its dimensions (and embedder):
     * persist that before the entry, in queue order. */
    if (recorded && submit_ns_put(srv, req->ns, req->ns_len, &ns))
        sc_log(srv->log, SC_ERROR, "namespace %.*s: could not persist its dimensions",
               (int)req->ns_len, req->ns);
    int64_t ttl = req->has_ttl ? req->ttl_s : ns.ttl_s >= 0 ? ns.ttl_s : cfg->default_ttl_s;
    uint64_t now = sc_now_ms();
    sc_buf_t resp = {0};
    sc_http_request_t hr = {.started_ns = started_ns};
    sc_pending_t *p = pending_new(c, SC_EP_STORE, &hr, store_complete, SC_OP_PUT);
    if (!p || dump_compact(req->response, &resp)) {
        free(p);
        sc_buf_free(&resp);
        sc_conn_problem(c, SC_EP_STORE, started_ns, 503, "out-of-memory", "out of memory");
        return;
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
    p->op.ns_max_entries = ns.max_entries;
    p->op.ns_max_bytes = ns.max_bytes;
    int rc = sc_store_encode(&e, &p->op.record);
    sc_buf_free(&resp);
    if (rc) {
        pending_free(p);
        sc_conn_problem(c, SC_EP_STORE, started_ns, 413, "entry-too-large",
                        "a field of the entry exceeds the record format's limits");
        return;
    }
    pending_submit(c, p);
}

/* An explored miss whose answer is now being stored: that fresh answer
 * validates the candidate it was not served, at no extra inference. */
typedef struct {
    sc_server_t *srv;
    sc_validation_t val;
    sc_buf_t fresh, cached;
    const char *method;
} explore_check_t;

static void explore_compared(void *ctx, int verdict, double answer_sim)
{
    explore_check_t *x = ctx;
    if (verdict >= 0)
        sc_validation_apply(x->srv, &x->val, (sc_verdict_t)verdict, x->method, answer_sim,
                            x->fresh.data, x->fresh.len, x->cached.data, x->cached.len);
    else
        atomic_fetch_add(&x->srv->compare_failures, 1);
    sc_buf_free(&x->fresh);
    sc_buf_free(&x->cached);
    free(x);
}

static void resolve_exploration(sc_worker_t *w, const sc_request_t *req)
{
    sc_server_t *srv = w->srv;
    sc_validation_t val;
    if (!req->response || sc_quality_take_explore(srv->quality, req->key, &val))
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
    x->srv = srv;
    x->val = val;
    dump_compact(req->response, &x->fresh);
    sc_ns_config_t ns;
    sc_namespaces_get(srv->namespaces, val.ns, strlen(val.ns), &ns);
    if (sc_compare_answers(srv, &ns, x->fresh.data ? x->fresh.data : "", x->fresh.len,
                           x->cached.data, x->cached.len, explore_compared, x, &x->method))
        explore_compared(x, -1, -2);
}

static void handle_store(sc_conn_t *c, const sc_http_request_t *hr)
{
    sc_server_t *srv = c->w->srv;
    const sc_config_t *cfg = &srv->cfg;
    if (!require_json(c, SC_EP_STORE, hr))
        return;
    sc_request_t req;
    char err[256];
    if (sc_request_parse(&req, SC_REQ_STORE, hr->body.ptr, hr->body.len, err, sizeof(err))) {
        sc_conn_problem(c, SC_EP_STORE, hr->started_ns, 400, "invalid-request", err);
        return;
    }
    if (req.has_ttl && req.ttl_s > cfg->max_ttl_s) {
        snprintf(err, sizeof(err), "\"ttl_s\" must be at most %lld (--max-ttl-s)",
                 (long long)cfg->max_ttl_s);
        sc_request_free(&req);
        sc_conn_problem(c, SC_EP_STORE, hr->started_ns, 400, "invalid-request", err);
        return;
    }
    sc_ns_config_t ns;
    int recorded;
    sc_namespaces_get(srv->namespaces, req.ns, req.ns_len, &ns);
    if (check_vector(c, SC_EP_STORE, hr, &req, 0, &ns, &recorded)) {
        sc_request_free(&req);
        return;
    }
    resolve_exploration(c->w, &req);
    const sc_model_t *model = sc_server_model(srv, &ns);
    if (!req.vec && req.text.len && ns.semantic && model) {
        if (!model_fits(model, &ns)) {
            snprintf(err, sizeof(err), "namespace '%.*s' holds vectors from another embedder than "
                     "its model's (%s); delete the namespace to change embedders",
                     (int)req.ns_len, req.ns, sc_embedder_identity(model->embedder));
            sc_request_free(&req);
            sc_conn_problem(c, SC_EP_STORE, hr->started_ns, 409, "embedder-mismatch", err);
            return;
        }
        /* Reuse the embedding of the lookup that missed, if it is recent. */
        req.vec = sc_vec_cache_take(srv->vec_cache, req.key, sc_embedder_dim(model->embedder),
                                    sc_now_ms());
        if (req.vec) {
            req.dim = sc_embedder_dim(model->embedder);
        } else if (embed_async(c, model, &req, 0, hr->started_ns, 1) == 0) {
            return; /* committed once embedded */
        } else {
            atomic_fetch_add(&srv->semantic_skipped[SKIP_QUEUE_FULL], 1);
        }
        store_commit(c, hr->started_ns, &req, sc_embedder_identity(model->embedder));
    } else {
        store_commit(c, hr->started_ns, &req, req.embedder);
    }
    sc_request_free(&req);
}

/* ---- entries ---------------------------------------------------------- */

static void delete_complete(sc_pending_t *p)
{
    sc_conn_t *c = p->conn;
    if (p->op.result) {
        write_failed(c, p);
    } else if (!p->op.count) {
        sc_conn_problem(c, SC_EP_ENTRIES, p->started_ns, 404, "not-found", "no entry with this key");
    } else {
        sc_buf_t b = {0};
        sc_buf_puts(&b, "{\"deleted\":true,\"key\":\"");
        append_key(&b, p->key);
        sc_buf_puts(&b, "\"}");
        sc_conn_respond(c, SC_EP_ENTRIES, p->started_ns, 200, JSON_CT, NULL, b.data, b.len);
        sc_buf_free(&b);
    }
    pending_free(p);
    sc_conn_release(c);
}

static void handle_entry(sc_conn_t *c, const sc_http_request_t *hr, sc_slice_t keyhex)
{
    uint8_t key[SC_KEY_BYTES];
    if (hr->method != HTTP_GET && hr->method != HTTP_DELETE) {
        method_not_allowed(c, SC_EP_ENTRIES, hr->started_ns, "GET, DELETE");
        return;
    }
    if (sc_hex_decode(keyhex.ptr, keyhex.len, key, SC_KEY_BYTES)) {
        sc_conn_problem(c, SC_EP_ENTRIES, hr->started_ns, 404, "not-found",
                        "an entry key is 32 hexadecimal digits");
        return;
    }
    if (hr->method == HTTP_DELETE) {
        sc_pending_t *p = pending_new(c, SC_EP_ENTRIES, hr, delete_complete, SC_OP_DELETE);
        if (!p) {
            sc_conn_problem(c, SC_EP_ENTRIES, hr->started_ns, 503, "out-of-memory", "out of memory");
            return;
        }
        memcpy(p->key, key, SC_KEY_BYTES);
        memcpy(p->op.key, key, SC_KEY_BYTES);
        pending_submit(c, p);
        return;
    }
    sc_worker_t *w = c->w;
    sc_entry_t e;
    sc_entry_meta_t meta;
    uint64_t now = sc_now_ms();
    int rc = sc_store_read_begin(w->reader);
    if (rc == 0)
        rc = sc_store_get(w->reader, key, &e, &meta);
    if (rc == 0 && e.expires_ms && now >= e.expires_ms)
        rc = SC_EEXPIRED;
    if (rc) {
        sc_store_read_end(w->reader);
        if (rc == SC_ENOTFOUND || rc == SC_EEXPIRED)
            sc_conn_problem(c, SC_EP_ENTRIES, hr->started_ns, 404, "not-found",
                            rc == SC_EEXPIRED ? "the entry has expired" : "no entry with this key");
        else
            sc_conn_problem(c, SC_EP_ENTRIES, hr->started_ns, 500, "store-error", sc_strerror(rc));
        return;
    }
    sc_buf_t b = {0};
    sc_buf_puts(&b, "{\"key\":\"");
    append_key(&b, key);
    sc_buf_puts(&b, "\",\"namespace\":");
    sc_buf_json_str(&b, e.ns.ptr, e.ns.len);
    sc_buf_puts(&b, ",\"tenant\":");
    sc_buf_json_str(&b, e.tenant.ptr, e.tenant.len);
    sc_buf_puts(&b, ",\"model\":");
    sc_buf_json_str(&b, e.model.ptr, e.model.len);
    sc_buf_puts(&b, ",\"text\":");
    sc_buf_json_str(&b, e.text.ptr, e.text.len);
    sc_buf_puts(&b, ",\"response\":");
    sc_buf_append(&b, e.response.ptr, e.response.len);
    sc_buf_printf(&b, ",\"created_ms\":%llu,\"expires_ms\":", (unsigned long long)e.created_ms);
    if (e.expires_ms)
        sc_buf_printf(&b, "%llu", (unsigned long long)e.expires_ms);
    else
        sc_buf_puts(&b, "null");
    sc_buf_printf(&b, ",\"age_s\":%.3f,\"hits\":%llu,\"last_hit_ms\":%llu,"
                      "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u}}",
                  now > e.created_ms ? (double)(now - e.created_ms) / 1000.0 : 0.0,
                  (unsigned long long)meta.hits, (unsigned long long)meta.last_hit_ms,
                  e.prompt_tokens, e.completion_tokens);
    sc_store_read_end(w->reader);
    reply_json(c, SC_EP_ENTRIES, hr, 200, &b);
    sc_buf_free(&b);
}

/* ---- invalidate ------------------------------------------------------- */

/* Completes ops that answer how many entries they removed (invalidate, and
 * deleting a namespace). */
static void removed_complete(sc_pending_t *p)
{
    sc_conn_t *c = p->conn;
    if (p->op.result) {
        write_failed(c, p);
    } else {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"removed\":%llu}", (unsigned long long)p->op.count);
        sc_conn_respond(c, p->endpoint, p->started_ns, 200, JSON_CT, NULL, body, (size_t)n);
    }
    pending_free(p);
    sc_conn_release(c);
}

static void handle_invalidate(sc_conn_t *c, const sc_http_request_t *hr)
{
    if (!require_json(c, SC_EP_INVALIDATE, hr))
        return;
    json_error_t jerr;
    json_t *root = json_loadb(hr->body.ptr, hr->body.len, JSON_REJECT_DUPLICATES, &jerr);
    char err[256] = "";
    const char *k;
    json_t *v;
    sc_pending_t *p = NULL;
    if (!root || !json_is_object(root)) {
        snprintf(err, sizeof(err), "body must be a JSON object like {\"namespace\":\"...\"}%s%s",
                 root ? "" : ": ", root ? "" : jerr.text);
        goto bad;
    }
    p = pending_new(c, SC_EP_INVALIDATE, hr, removed_complete, SC_OP_INVALIDATE);
    if (!p) {
        snprintf(err, sizeof(err), "out of memory");
        goto bad;
    }
    json_object_foreach(root, k, v) {
        char **slot = strcmp(k, "namespace") == 0 ? &p->op.ns
                      : strcmp(k, "tenant") == 0  ? &p->op.tenant
                      : strcmp(k, "model") == 0   ? &p->op.model
                                                  : NULL;
        if (slot) {
            if (!json_is_string(v)) {
                snprintf(err, sizeof(err), "\"%s\" must be a string", k);
                goto bad;
            }
            *slot = strdup(json_string_value(v));
        } else if (strcmp(k, "all") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(err, sizeof(err), "\"all\" must be true or false");
                goto bad;
            }
            p->op.all = json_is_true(v);
        } else {
            snprintf(err, sizeof(err), "unknown field '%s' (use namespace, tenant, model or all)", k);
            goto bad;
        }
    }
    if (!p->op.all && !p->op.ns && !p->op.tenant && !p->op.model) {
        snprintf(err, sizeof(err), "give at least one of namespace, tenant, model, "
                                   "or {\"all\": true} to remove every entry");
        goto bad;
    }
    if (p->op.all && (p->op.ns || p->op.tenant || p->op.model)) {
        snprintf(err, sizeof(err), "\"all\" cannot be combined with filters");
        goto bad;
    }
    json_decref(root);
    pending_submit(c, p);
    return;
bad:
    if (p)
        pending_free(p);
    if (root)
        json_decref(root);
    sc_conn_problem(c, SC_EP_INVALIDATE, hr->started_ns, 400, "invalid-request", err);
}

/* ---- namespaces ------------------------------------------------------- */

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

static void reply_namespace(sc_conn_t *c, uint64_t started, int status, sc_slice_t name,
                            const sc_ns_config_t *ns)
{
    sc_buf_t b = {0};
    sc_buf_puts(&b, "{\"name\":");
    sc_buf_json_str(&b, name.ptr, name.len);
    sc_buf_printf(&b, ",\"configured\":%s,\"settings\":", ns->configured ? "true" : "false");
    sc_ns_config_to_json(ns, &b);
    char name_z[SC_MAX_NAMESPACE + 1];
    snprintf(name_z, sizeof(name_z), "%.*s", (int)name.len, name.ptr);
    sc_quality_ns_t q;
    uint64_t used_entries = 0, used_bytes = 0;
    if (sc_store_read_begin(c->w->reader) == 0) {
        sc_store_ns_usage(c->w->reader, name_z, &used_entries, &used_bytes);
        sc_store_read_end(c->w->reader);
    }
    sc_buf_printf(&b, ",\"usage\":{\"entries\":%llu,\"bytes\":%llu}",
                  (unsigned long long)used_entries, (unsigned long long)used_bytes);
    sc_quality_ns(c->w->srv->quality, name_z, &q);
    sc_buf_printf(&b, ",\"quality\":{\"validated\":%llu,\"wrong\":%llu,\"false_hit_rate\":%.6f,"
                      "\"false_hit_rate_upper\":%.6f,\"semantic_false_hit_rate\":%.6f,"
                      "\"semantic_false_hit_rate_upper\":%.6f,\"explored\":%llu,\"explored_wrong\":%llu",
                  (unsigned long long)(q.validated[0] + q.validated[1]),
                  (unsigned long long)(q.wrong[0] + q.wrong[1]), q.rate, q.upper, q.semantic_rate,
                  q.semantic_upper, (unsigned long long)q.validated[SC_MATCH_EXPLORE],
                  (unsigned long long)q.wrong[SC_MATCH_EXPLORE]);
    double lt;
    uint64_t n_obs = 0;
    if (ns->max_error_rate > 0) {
        int ok = learned_threshold(c->w->srv, name_z, ns, &lt, &n_obs);
        sc_buf_printf(&b, ",\"budget_observations\":%llu,\"learned_threshold\":",
                      (unsigned long long)n_obs);
        if (ok)
            sc_buf_printf(&b, "%.3f", lt);
        else
            sc_buf_puts(&b, "null");
    }
    sc_buf_puts(&b, "}}");
    sc_conn_respond(c, SC_EP_NAMESPACES, started, status, JSON_CT, NULL, b.data, b.len);
    sc_buf_free(&b);
}

static void ns_put_complete(sc_pending_t *p)
{
    sc_conn_t *c = p->conn;
    if (p->op.result) {
        write_failed(c, p);
    } else {
        sc_ns_config_t ns;
        sc_slice_t name = {p->op.ns, strlen(p->op.ns)};
        sc_namespaces_get(c->w->srv->namespaces, name.ptr, name.len, &ns);
        reply_namespace(c, p->started_ns, 200, name, &ns);
    }
    pending_free(p);
    sc_conn_release(c);
}

static void handle_namespace(sc_conn_t *c, const sc_http_request_t *hr, sc_slice_t name)
{
    sc_server_t *srv = c->w->srv;
    uint64_t t0 = hr->started_ns;
    if (!valid_ns_name(name)) {
        sc_conn_problem(c, SC_EP_NAMESPACES, t0, 404, "not-found",
                        "a namespace name is 1 to 128 characters from [A-Za-z0-9_.-]");
        return;
    }
    sc_ns_config_t ns;
    sc_namespaces_get(srv->namespaces, name.ptr, name.len, &ns);
    if (hr->method == HTTP_GET) {
        reply_namespace(c, t0, 200, name, &ns);
        return;
    }
    if (hr->method == HTTP_DELETE) {
        sc_pending_t *p = pending_new(c, SC_EP_NAMESPACES, hr, removed_complete, SC_OP_NS_DELETE);
        if (!p || !(p->op.ns = strndup(name.ptr, name.len))) {
            free(p);
            sc_conn_problem(c, SC_EP_NAMESPACES, t0, 503, "out-of-memory", "out of memory");
            return;
        }
        sc_namespaces_remove(srv->namespaces, name.ptr, name.len);
        pending_submit(c, p);
        return;
    }
    if (hr->method != HTTP_PUT) {
        method_not_allowed(c, SC_EP_NAMESPACES, t0, "GET, PUT, DELETE");
        return;
    }
    if (!require_json(c, SC_EP_NAMESPACES, hr))
        return;
    json_error_t jerr;
    char err[768]; /* names two embedder identities and a namespace */
    json_t *j = json_loadb(hr->body.ptr, hr->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        snprintf(err, sizeof(err), "body is not valid JSON: %s", jerr.text);
        sc_conn_problem(c, SC_EP_NAMESPACES, t0, 400, "invalid-request", err);
        return;
    }
    /* PUT replaces the settings a user controls; the recorded embedder and
     * dimensions stay unless given, and cannot change while entries exist. */
    sc_ns_config_t next;
    sc_ns_config_defaults(&srv->cfg, &next);
    next.dimensions = ns.dimensions;
    memcpy(next.embedder, ns.embedder, sizeof(next.embedder));
    int rc = sc_ns_config_apply_json(&next, j, err, sizeof(err));
    json_decref(j);
    /* Settings this server cannot honour are refused now, not discovered
     * later as silently dropped validations. */
    if (!rc && next.delivery == SC_DELIVERY_UPSTREAM && !srv->cfg.upstream_url[0]) {
        snprintf(err, sizeof(err), "delivery \"upstream\" needs the server started with --upstream-url");
        rc = SC_EINVAL;
    } else if (!rc && next.delivery == SC_DELIVERY_WEBHOOK && !srv->cfg.webhook_url[0]) {
        snprintf(err, sizeof(err), "delivery \"webhook\" needs the server started with --webhook-url");
        rc = SC_EINVAL;
    } else if (!rc && next.model[0] && !sc_server_model(srv, &next)) {
        snprintf(err, sizeof(err), "model \"%s\" is not loaded (--models NAME=SPEC loads it)",
                 next.model);
        rc = SC_EINVAL;
    } else if (!rc && strcmp(next.compare, "semantic") == 0 && !sc_server_model(srv, &next)) {
        snprintf(err, sizeof(err), "compare \"semantic\" embeds the answers and needs a server-side "
                                   "model (--model)");
        rc = SC_EINVAL;
    }
    if (rc) {
        sc_conn_problem(c, SC_EP_NAMESPACES, t0, 400, "invalid-request", err);
        return;
    }
    /* A namespace that holds vectors keeps its embedder: choosing a model
     * that is another one is refused like any other change of embedder. */
    const sc_model_t *chosen = sc_server_model(srv, &next);
    if (ns.embedder[0] && chosen && strcmp(ns.model, next.model) != 0 &&
        strcmp(ns.embedder, sc_embedder_identity(chosen->embedder)) != 0) {
        snprintf(err, sizeof(err), "namespace '%.*s' holds vectors from embedder '%s', not model "
                 "\"%s\" (%s); DELETE the namespace to change models", (int)name.len, name.ptr,
                 ns.embedder, next.model[0] ? next.model : "default",
                 sc_embedder_identity(chosen->embedder));
        sc_conn_problem(c, SC_EP_NAMESPACES, t0, 409, "embedder-mismatch", err);
        return;
    }
    if ((ns.dimensions && next.dimensions != ns.dimensions) ||
        (ns.embedder[0] && strcmp(ns.embedder, next.embedder) != 0)) {
        snprintf(err, sizeof(err), "namespace '%.*s' already holds vectors of %u dimensions from "
                 "embedder '%s'; DELETE the namespace to change them", (int)name.len, name.ptr,
                 ns.dimensions, ns.embedder[0] ? ns.embedder : "(unnamed)");
        sc_conn_problem(c, SC_EP_NAMESPACES, t0, 409, "embedder-mismatch", err);
        return;
    }
    next.configured = 1;
    sc_pending_t *p = pending_new(c, SC_EP_NAMESPACES, hr, ns_put_complete, SC_OP_NS_PUT);
    if (!p || !(p->op.ns = strndup(name.ptr, name.len)) || sc_ns_config_to_json(&next, &p->op.record) ||
        sc_namespaces_set(srv->namespaces, name.ptr, name.len, &next)) {
        if (p)
            pending_free(p);
        sc_conn_problem(c, SC_EP_NAMESPACES, t0, 503, "out-of-memory", "out of memory");
        return;
    }
    pending_submit(c, p);
}

/* ---- feedback --------------------------------------------------------- */

/* A feedback request whose fresh answer is being compared (possibly by the
 * embedding workers); the verdict is applied and answered on the loop. */
typedef struct {
    sc_task_t task;
    sc_conn_t *conn;
    uint64_t started_ns;
    sc_validation_t val;
    sc_buf_t fresh, cached;
    int have_entry;
    const char *method;
    int verdict;
    double answer_sim;
} feedback_wait_t;

static void feedback_finish(sc_conn_t *c, uint64_t t0, sc_validation_t *val, sc_verdict_t verd,
                            const char *method, double answer_sim, const sc_buf_t *fresh,
                            const sc_buf_t *cached, int have_entry)
{
    int invalidated = sc_validation_apply(c->w->srv, val, verd, method, answer_sim, fresh->data,
                                          fresh->len, cached->data, cached->len) && have_entry;
    char hex[SC_KEY_HEX + 1];
    sc_hex_encode(val->entry_key, SC_KEY_BYTES, hex);
    sc_buf_t b = {0};
    sc_buf_printf(&b, "{\"validation_id\":\"%s\",\"key\":\"%s\",\"match\":\"%s\",\"verdict\":\"%s\","
                      "\"method\":\"%s\",", val->id, hex, sc_match_names[val->match],
                  verd == SC_VERDICT_WRONG ? "wrong" : "correct", method);
    if (answer_sim > -2)
        sc_buf_printf(&b, "\"answer_similarity\":%.6f,", answer_sim);
    sc_buf_printf(&b, "\"invalidated\":%s}", invalidated ? "true" : "false");
    sc_conn_respond(c, SC_EP_FEEDBACK, t0, 200, JSON_CT, NULL, b.data, b.len);
    sc_buf_free(&b);
}

static void feedback_task_run(sc_task_t *t)
{
    feedback_wait_t *fw = (feedback_wait_t *)t;
    sc_conn_t *c = fw->conn;
    if (fw->verdict < 0) {
        /* No verdict could be reached: the validation stays answerable. */
        sc_conn_problem(c, SC_EP_FEEDBACK, fw->started_ns, 503, "compare-failed",
                        "the answers could not be embedded for comparison (embedding queue full "
                        "or timeout); this validation was dropped");
    } else {
        feedback_finish(c, fw->started_ns, &fw->val, (sc_verdict_t)fw->verdict, fw->method,
                        fw->answer_sim, &fw->fresh, &fw->cached, fw->have_entry);
    }
    sc_buf_free(&fw->fresh);
    sc_buf_free(&fw->cached);
    free(fw);
    sc_conn_release(c);
}

static void feedback_compared(void *ctx, int verdict, double answer_sim)
{
    feedback_wait_t *fw = ctx;
    fw->verdict = verdict;
    fw->answer_sim = answer_sim;
    sc_worker_post(fw->conn->w, &fw->task);
}

static void handle_feedback(sc_conn_t *c, const sc_http_request_t *hr)
{
    sc_server_t *srv = c->w->srv;
    uint64_t t0 = hr->started_ns;
    if (hr->method != HTTP_POST)
        return method_not_allowed(c, SC_EP_FEEDBACK, t0, "POST");
    if (!require_json(c, SC_EP_FEEDBACK, hr))
        return;
    char err[256] = "";
    json_error_t je;
    json_t *root = json_loadb(hr->body.ptr, hr->body.len, JSON_REJECT_DUPLICATES, &je);
    const char *k;
    json_t *v;
    json_t *vid = NULL, *key = NULL, *fresh = NULL, *verdict = NULL;
    if (!json_is_object(root)) {
        snprintf(err, sizeof(err), "body must be a JSON object%s%s", root ? "" : ": ", root ? "" : je.text);
        goto bad;
    }
    json_object_foreach(root, k, v) {
        if (strcmp(k, "validation_id") == 0)
            vid = v;
        else if (strcmp(k, "key") == 0)
            key = v;
        else if (strcmp(k, "fresh_response") == 0)
            fresh = v;
        else if (strcmp(k, "verdict") == 0)
            verdict = v;
        else {
            snprintf(err, sizeof(err), "unknown field '%s' (validation_id or key, and fresh_response or verdict)", k);
            goto bad;
        }
    }
    if (!vid == !key || !fresh == !verdict) {
        snprintf(err, sizeof(err), "give one of validation_id or key, and one of fresh_response or verdict");
        goto bad;
    }
    if ((vid && !json_is_string(vid)) || (key && !json_is_string(key)) ||
        (verdict && (!json_is_string(verdict) || (strcmp(json_string_value(verdict), "correct") &&
                                                   strcmp(json_string_value(verdict), "wrong"))))) {
        snprintf(err, sizeof(err), "validation_id and key are strings; verdict is \"correct\" or \"wrong\"");
        goto bad;
    }
    sc_validation_t val;
    memset(&val, 0, sizeof(val));
    uint8_t kb[SC_KEY_BYTES];
    if (key && sc_hex_decode(json_string_value(key), json_string_length(key), kb, SC_KEY_BYTES)) {
        snprintf(err, sizeof(err), "\"key\" is 32 hexadecimal digits");
        goto bad;
    }
    if (vid) {
        if (sc_quality_take(srv->quality, json_string_value(vid), &val)) {
            json_decref(root);
            sc_conn_problem(c, SC_EP_FEEDBACK, t0, 404, "not-found",
                            "unknown validation_id, or it was already answered");
            return;
        }
    } else if (sc_quality_take_by_key(srv->quality, kb, &val)) {
        /* Feedback on an entry nobody asked about: an exact-hit check. */
        memcpy(val.entry_key, kb, SC_KEY_BYTES);
        memcpy(val.request_key, kb, SC_KEY_BYTES);
        val.match = SC_MATCH_EXACT;
        val.similarity = 1;
    }
    /* The served answer, and the namespace when the validation did not say. */
    sc_worker_t *w = c->w;
    sc_entry_t e;
    sc_entry_meta_t meta;
    int have_entry = sc_store_read_begin(w->reader) == 0 &&
                     sc_store_get(w->reader, val.entry_key, &e, &meta) == 0;
    sc_buf_t cached = {0}, fb = {0};
    if (have_entry) {
        sc_buf_append(&cached, e.response.ptr, e.response.len);
        if (!val.ns[0])
            snprintf(val.ns, sizeof(val.ns), "%.*s", (int)e.ns.len, e.ns.ptr);
        if (!val.scope)
            val.scope = e.scope;
    }
    sc_store_read_end(w->reader);
    if (!have_entry && (fresh || !val.ns[0])) {
        sc_buf_free(&cached);
        json_decref(root);
        sc_conn_problem(c, SC_EP_FEEDBACK, t0, 404, "not-found",
                        "the entry is gone (deleted or expired); nothing to compare with");
        return;
    }
    if (verdict) {
        sc_verdict_t verd = strcmp(json_string_value(verdict), "wrong") == 0 ? SC_VERDICT_WRONG
                                                                            : SC_VERDICT_CORRECT;
        json_decref(root);
        feedback_finish(c, t0, &val, verd, "reported", -2, &fb, &cached, have_entry);
        sc_buf_free(&cached);
        return;
    }
    dump_compact(fresh, &fb);
    json_decref(root);
    sc_ns_config_t ns;
    sc_namespaces_get(srv->namespaces, val.ns, strlen(val.ns), &ns);
    feedback_wait_t *fw = calloc(1, sizeof(*fw));
    if (!fw) {
        atomic_fetch_add(&srv->compare_failures, 1);
        sc_buf_free(&fb);
        sc_buf_free(&cached);
        sc_conn_problem(c, SC_EP_FEEDBACK, t0, 503, "out-of-memory", "out of memory");
        return;
    }
    fw->task.run = feedback_task_run;
    fw->conn = c;
    fw->started_ns = t0;
    fw->val = val;
    fw->fresh = fb;
    fw->cached = cached;
    fw->have_entry = have_entry;
    sc_conn_hold(c);
    if (sc_compare_answers(srv, &ns, fw->fresh.data ? fw->fresh.data : "", fw->fresh.len,
                           fw->cached.data, fw->cached.len, feedback_compared, fw, &fw->method)) {
        fw->verdict = -1;
        feedback_task_run(&fw->task); /* answers 503 and releases */
    }
    return;
bad:
    json_decref(root);
    sc_conn_problem(c, SC_EP_FEEDBACK, t0, 400, "invalid-request", err);
}

static void handle_validations(sc_conn_t *c, const sc_http_request_t *hr)
{
    if (hr->method != HTTP_GET)
        return method_not_allowed(c, SC_EP_FEEDBACK, hr->started_ns, "GET");
    size_t limit = 100;
    const char *q = hr->query.ptr;
    if (q && hr->query.len > 6 && strncmp(q, "limit=", 6) == 0) {
        long v = strtol(q + 6, NULL, 10);
        limit = v < 1 ? 1 : v > 10000 ? 10000 : (size_t)v;
    }
    sc_buf_t b = {0};
    int rc = sc_store_read_begin(c->w->reader);
    if (!rc)
        rc = sc_store_validations(c->w->reader, limit, &b);
    sc_store_read_end(c->w->reader);
    if (rc) {
        sc_buf_free(&b);
        sc_conn_problem(c, SC_EP_FEEDBACK, hr->started_ns, 500, "store-error", sc_strerror(rc));
        return;
    }
    reply_json(c, SC_EP_FEEDBACK, hr, 200, &b);
    sc_buf_free(&b);
}

typedef struct {
    sc_buf_t *b;
    int section; /* 0 counts, 1 rate, 2 upper */
    int left;
} quality_render_t;

static void render_quality(void *ctx, const char *ns, const sc_quality_ns_t *st)
{
    quality_render_t *r = ctx;
    if (r->left-- <= 0)
        return; /* bounded like every request-derived label */
    if (r->section == 0) {
        for (int m = 0; m < SC_MATCH_KINDS; m++) {
            sc_buf_printf(r->b, "semcached_validations_total{namespace=\"%s\",match=\"%s\",verdict=\"correct\"} %llu\n",
                          ns, sc_match_names[m], (unsigned long long)(st->validated[m] - st->wrong[m]));
            sc_buf_printf(r->b, "semcached_validations_total{namespace=\"%s\",match=\"%s\",verdict=\"wrong\"} %llu\n",
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

static void render_quality_json(void *ctx, const char *ns, const sc_quality_ns_t *st)
{
    quality_render_t *r = ctx;
    if (r->left-- <= 0)
        return;
    if (r->section++)
        sc_buf_puts(r->b, ",");
    sc_buf_json_str(r->b, ns, strlen(ns));
    sc_buf_printf(r->b, ":{\"validated\":{\"exact\":%llu,\"semantic\":%llu,\"explore\":%llu},"
                        "\"wrong\":{\"exact\":%llu,\"semantic\":%llu,\"explore\":%llu},"
                        "\"false_hit_rate\":%.6f,\"false_hit_rate_upper\":%.6f,"
                        "\"semantic_false_hit_rate\":%.6f,\"semantic_false_hit_rate_upper\":%.6f}",
                  (unsigned long long)st->validated[0], (unsigned long long)st->validated[1],
                  (unsigned long long)st->validated[2], (unsigned long long)st->wrong[0],
                  (unsigned long long)st->wrong[1], (unsigned long long)st->wrong[2], st->rate,
                  st->upper, st->semantic_rate, st->semantic_upper);
}

/* Namespace names with validations, collected first: the learned threshold
 * takes the quality lock that sc_quality_foreach holds. */
typedef struct {
    char (*names)[SC_MAX_NAMESPACE + 1];
    int n, cap;
} ns_names_t;

static void collect_name(void *ctx, const char *ns, const sc_quality_ns_t *st)
{
    ns_names_t *l = ctx;
    (void)st;
    if (l->n < l->cap)
        snprintf(l->names[l->n++], SC_MAX_NAMESPACE + 1, "%s", ns);
}

/* The learned threshold of a max_error_rate namespace (at namespace level):
 * 1 and '*t' when its validations support one. */
static int learned_threshold(sc_server_t *srv, const char *name, const sc_ns_config_t *ns, double *t,
                             uint64_t *n_obs)
{
    int from_scope;
    return ns->max_error_rate > 0 &&
           sc_quality_budget_threshold(srv->quality, name, 0, ns->max_error_rate, t, &from_scope,
                                       n_obs);
}

static void render_learned_thresholds(sc_server_t *srv, sc_buf_t *b)
{
    ns_names_t l = {NULL, 0, (int)srv->cfg.max_label_values};
    l.names = calloc((size_t)l.cap, sizeof(*l.names));
    if (!l.names)
        return;
    sc_quality_foreach(srv->quality, collect_name, &l);
    sc_buf_puts(b, "# HELP semcached_learned_threshold Similarity above which a max_error_rate "
                   "namespace serves semantic hits (absent until its validations support one).\n"
                   "# TYPE semcached_learned_threshold gauge\n");
    for (int i = 0; i < l.n; i++) {
        sc_ns_config_t ns;
        double t;
        sc_namespaces_get(srv->namespaces, l.names[i], strlen(l.names[i]), &ns);
        if (learned_threshold(srv, l.names[i], &ns, &t, NULL))
            sc_buf_printf(b, "semcached_learned_threshold{namespace=\"%s\"} %.3f\n", l.names[i], t);
    }
    free(l.names);
}

/* ---- stats, health, metrics ------------------------------------------- */

static void handle_stats(sc_conn_t *c, const sc_http_request_t *hr)
{
    sc_server_t *srv = c->w->srv;
    sc_store_stats_t st;
    sc_metrics_totals_t t;
    sc_store_stats(srv->store, &st);
    sc_metrics_totals(srv->metrics, &t);
    uint64_t lookups = t.lookups[SC_LR_EXACT_HIT] + t.lookups[SC_LR_SEMANTIC_HIT] + t.lookups[SC_LR_MISS];
    uint64_t hits = t.lookups[SC_LR_EXACT_HIT] + t.lookups[SC_LR_SEMANTIC_HIT];
    sc_scopes_stats_t ix;
    sc_scopes_stats(srv->scopes, &ix);
    int ready = atomic_load(&srv->ready);
    sc_buf_t b = {0};
    /* "embedder" is the default model's (null without --model); "models"
     * lists every model namespaces may choose. */
    const sc_model_t *dm = sc_server_model_named(srv, "default");
    sc_buf_puts(&b, "{\"embedder\":");
    if (dm)
        sc_buf_printf(&b, "{\"identity\":\"%s\",\"dimensions\":%u},",
                      sc_embedder_identity(dm->embedder), sc_embedder_dim(dm->embedder));
    else
        sc_buf_puts(&b, "null,");
    sc_buf_puts(&b, "\"models\":{");
    for (int i = 0; i < srv->n_models; i++)
        sc_buf_printf(&b, "%s\"%s\":{\"identity\":\"%s\",\"dimensions\":%u}", i ? "," : "",
                      srv->models[i].name, sc_embedder_identity(srv->models[i].embedder),
                      sc_embedder_dim(srv->models[i].embedder));
    sc_buf_puts(&b, "},");
    sc_buf_printf(&b,
                  "\"index\":{\"ready\":%s,\"loaded_from\":\"%s\",\"load_s\":%.3f,"
                  "\"vectors\":{\"flat\":%llu,\"hnsw\":%llu},\"scopes\":{\"flat\":%llu,\"hnsw\":%llu},"
                  "\"delta\":%llu,\"deleted\":%llu,\"promotions\":%llu,\"merges\":%llu,"
                  "\"compactions\":%llu,\"rebuilding\":%llu},"
                  "\"entries\":%llu,\"store_bytes\":%llu,\"map_bytes\":%llu,"
                  "\"lookups\":{\"total\":%llu,\"exact_hit\":%llu,\"semantic_hit\":%llu,\"miss\":%llu},"
                  "\"hit_rate\":%.6f,"
                  "\"tokens_saved\":{\"prompt\":%llu,\"completion\":%llu},"
                  "\"expired_total\":%llu,\"evicted_total\":%llu,\"commits_total\":%llu,"
                  "\"writes_total\":%llu,\"write_queue\":%llu,"
                  "\"writer_busy_s\":{\"writes\":%.3f,\"sweep\":%.3f,\"sync\":%.3f},"
                  "\"connections\":%lld,"
                  "\"event_loops\":%d,\"uptime_s\":%llu}",
                  ready ? "true" : "false", ready ? srv->index_source : "loading",
                  ready ? srv->index_load_s : 0.0,
                  (unsigned long long)ix.vectors_flat, (unsigned long long)ix.vectors_hnsw,
                  (unsigned long long)ix.scopes_flat, (unsigned long long)ix.scopes_hnsw,
                  (unsigned long long)ix.vectors_delta, (unsigned long long)ix.deleted_hnsw,
                  (unsigned long long)ix.promotions, (unsigned long long)ix.merges,
                  (unsigned long long)ix.compactions, (unsigned long long)ix.rebuilding,
                  (unsigned long long)st.entries, (unsigned long long)st.bytes,
                  (unsigned long long)st.map_bytes, (unsigned long long)lookups,
                  (unsigned long long)t.lookups[SC_LR_EXACT_HIT],
                  (unsigned long long)t.lookups[SC_LR_SEMANTIC_HIT],
                  (unsigned long long)t.lookups[SC_LR_MISS],
                  lookups ? (double)hits / (double)lookups : 0.0,
                  (unsigned long long)t.prompt_tokens_saved,
                  (unsigned long long)t.completion_tokens_saved,
                  (unsigned long long)st.expired_total, (unsigned long long)st.evicted_total,
                  (unsigned long long)st.commits_total, (unsigned long long)st.writes_total,
                  (unsigned long long)st.queue_depth, (double)st.writer_writes_ns / 1e9,
                  (double)st.writer_sweep_ns / 1e9, (double)st.writer_sync_ns / 1e9,
                  (long long)atomic_load(&srv->n_conns), srv->n_workers, (unsigned long long)((sc_now_ms() - srv->started_ms) / 1000));
    b.len--; /* reopen the object for the loops and quality sections */
    sc_buf_puts(&b, ",\"connections_by_loop\":[");
    for (int i = 0; i < srv->n_workers; i++)
        sc_buf_printf(&b, "%s%d", i ? "," : "", atomic_load(&srv->workers[i].n_open));
    sc_buf_puts(&b, "]");
    sc_buf_printf(&b, ",\"quality\":{\"pending\":%llu,\"dropped\":%llu,\"namespaces\":{",
                  (unsigned long long)sc_quality_pending(srv->quality),
                  (unsigned long long)sc_quality_dropped(srv->quality));
    quality_render_t qr = {&b, 0, (int)srv->cfg.max_label_values};
    sc_quality_foreach(srv->quality, render_quality_json, &qr);
    sc_buf_puts(&b, "}}}");
    reply_json(c, SC_EP_STATS, hr, 200, &b);
    sc_buf_free(&b);
}

static void handle_metrics(sc_conn_t *c, const sc_http_request_t *hr)
{
    sc_server_t *srv = c->w->srv;
    sc_store_stats_t st;
    sc_buf_t b = {0};
    sc_scopes_stats_t ix;
    sc_embed_pool_stats_t ep = {0};
    for (int i = 0; i < srv->n_models; i++) { /* all models' workers together */
        sc_embed_pool_stats_t one;
        sc_embed_pool_stats(srv->models[i].pool, &one);
        ep.texts += one.texts;
        ep.batches += one.batches;
        ep.queue_depth += one.queue_depth;
        ep.timeouts += one.timeouts;
        ep.rejected += one.rejected;
        ep.errors += one.errors;
    }
    sc_metrics_render(srv->metrics, &b);
    sc_store_stats(srv->store, &st);
    sc_scopes_stats(srv->scopes, &ix);
    sc_buf_printf(&b,
                  "# HELP semcached_entries Entries in the store (expired ones until swept).\n"
                  "# TYPE semcached_entries gauge\nsemcached_entries %llu\n"
                  "# HELP semcached_store_bytes Bytes of LMDB pages in use.\n"
                  "# TYPE semcached_store_bytes gauge\nsemcached_store_bytes %llu\n"
                  "# HELP semcached_store_map_bytes Configured LMDB map size (--map-size).\n"
                  "# TYPE semcached_store_map_bytes gauge\nsemcached_store_map_bytes %llu\n"
                  "# HELP semcached_expired_total Entries removed because their TTL passed.\n"
                  "# TYPE semcached_expired_total counter\nsemcached_expired_total %llu\n"
                  "# HELP semcached_evicted_total Entries removed to make room.\n"
                  "# TYPE semcached_evicted_total counter\nsemcached_evicted_total %llu\n"
                  "# HELP semcached_store_commits_total Write transactions committed.\n"
                  "# TYPE semcached_store_commits_total counter\nsemcached_store_commits_total %llu\n"
                  "# HELP semcached_store_writes_total Write operations applied.\n"
                  "# TYPE semcached_store_writes_total counter\nsemcached_store_writes_total %llu\n"
                  "# HELP semcached_write_queue_depth Write operations waiting for the writer.\n"
                  "# TYPE semcached_write_queue_depth gauge\nsemcached_write_queue_depth %llu\n"
                  "# HELP semcached_hit_updates_dropped_total Hit-count updates dropped because "
                  "the buffer was full.\n"
                  "# TYPE semcached_hit_updates_dropped_total counter\n"
                  "semcached_hit_updates_dropped_total %llu\n"
                  "# HELP semcached_index_vectors Live vectors by index kind.\n"
                  "# TYPE semcached_index_vectors gauge\n"
                  "semcached_index_vectors{kind=\"flat\"} %llu\nsemcached_index_vectors{kind=\"hnsw\"} %llu\n"
                  "# HELP semcached_index_scopes Scopes by index kind.\n"
                  "# TYPE semcached_index_scopes gauge\n"
                  "semcached_index_scopes{kind=\"flat\"} %llu\nsemcached_index_scopes{kind=\"hnsw\"} %llu\n"
                  "# HELP semcached_index_delta_vectors Vectors of HNSW scopes kept in their "
                  "exact delta, not yet merged into the graph.\n"
                  "# TYPE semcached_index_delta_vectors gauge\nsemcached_index_delta_vectors %llu\n"
                  "# HELP semcached_index_deleted_vectors Vectors deleted or tombstoned in HNSW "
                  "indexes, awaiting compaction.\n"
                  "# TYPE semcached_index_deleted_vectors gauge\nsemcached_index_deleted_vectors %llu\n"
                  "# HELP semcached_index_promotions_total Scopes promoted from flat to HNSW.\n"
                  "# TYPE semcached_index_promotions_total counter\nsemcached_index_promotions_total %llu\n"
                  "# HELP semcached_index_merges_total Deltas merged into a copy of their HNSW graph.\n"
                  "# TYPE semcached_index_merges_total counter\nsemcached_index_merges_total %llu\n"
                  "# HELP semcached_index_compactions_total HNSW indexes rebuilt to drop deleted vectors.\n"
                  "# TYPE semcached_index_compactions_total counter\nsemcached_index_compactions_total %llu\n"
                  "# HELP semcached_index_ready 1 once the indexes are loaded.\n"
                  "# TYPE semcached_index_ready gauge\nsemcached_index_ready %d\n"
                  "# HELP semcached_semantic_skipped_total Lookups answered exact-only (and stores "
                  "kept without a vector) because embedding was not possible.\n"
                  "# TYPE semcached_semantic_skipped_total counter\n"
                  "semcached_semantic_skipped_total{reason=\"queue_full\"} %llu\n"
                  "semcached_semantic_skipped_total{reason=\"timeout\"} %llu\n"
                  "semcached_semantic_skipped_total{reason=\"error\"} %llu\n"
                  "semcached_semantic_skipped_total{reason=\"embedder_mismatch\"} %llu\n"
                  "# HELP semcached_embed_texts_total Texts embedded by the server's model.\n"
                  "# TYPE semcached_embed_texts_total counter\nsemcached_embed_texts_total %llu\n"
                  "# HELP semcached_embed_batches_total Embedding batches run.\n"
                  "# TYPE semcached_embed_batches_total counter\nsemcached_embed_batches_total %llu\n"
                  "# HELP semcached_embed_queue_depth Texts waiting for the embedding workers.\n"
                  "# TYPE semcached_embed_queue_depth gauge\nsemcached_embed_queue_depth %llu\n"
                  "# HELP semcached_connections Open client connections.\n"
                  "# TYPE semcached_connections gauge\nsemcached_connections %lld\n",
                  (unsigned long long)st.entries, (unsigned long long)st.bytes,
                  (unsigned long long)st.map_bytes, (unsigned long long)st.expired_total,
                  (unsigned long long)st.evicted_total, (unsigned long long)st.commits_total,
                  (unsigned long long)st.writes_total, (unsigned long long)st.queue_depth,
                  (unsigned long long)st.touches_dropped,
                  (unsigned long long)ix.vectors_flat, (unsigned long long)ix.vectors_hnsw,
                  (unsigned long long)ix.scopes_flat, (unsigned long long)ix.scopes_hnsw,
                  (unsigned long long)ix.vectors_delta,
                  (unsigned long long)ix.deleted_hnsw, (unsigned long long)ix.promotions,
                  (unsigned long long)ix.merges,
                  (unsigned long long)ix.compactions, sc_scopes_ready(srv->scopes),
                  (unsigned long long)atomic_load(&srv->semantic_skipped[0]),
                  (unsigned long long)atomic_load(&srv->semantic_skipped[1]),
                  (unsigned long long)atomic_load(&srv->semantic_skipped[2]),
                  (unsigned long long)atomic_load(&srv->semantic_skipped[3]),
                  (unsigned long long)ep.texts, (unsigned long long)ep.batches,
                  (unsigned long long)ep.queue_depth,
                  (long long)atomic_load(&srv->n_conns));
    quality_render_t qr = {&b, 0, (int)srv->cfg.max_label_values};
    sc_buf_puts(&b, "# HELP semcached_validations_total Validated hits by namespace, match kind and verdict.\n"
                    "# TYPE semcached_validations_total counter\n");
    sc_quality_foreach(srv->quality, render_quality, &qr);
    static const char *const rate_help[] = {
        "# HELP semcached_false_hit_rate Wrong validated hits over validated hits.\n"
        "# TYPE semcached_false_hit_rate gauge\n",
        "# HELP semcached_false_hit_rate_upper Upper end of the 95 % Wilson interval of "
        "the false-hit rate.\n# TYPE semcached_false_hit_rate_upper gauge\n",
        "# HELP semcached_semantic_false_hit_rate Wrong validated semantic hits over validated "
        "semantic hits.\n# TYPE semcached_semantic_false_hit_rate gauge\n",
        "# HELP semcached_semantic_false_hit_rate_upper Upper end of the 95 % Wilson interval of "
        "the semantic false-hit rate.\n# TYPE semcached_semantic_false_hit_rate_upper gauge\n",
    };
    for (int i = 0; i < 4; i++) {
        sc_buf_puts(&b, rate_help[i]);
        qr.section = i + 1;
        qr.left = (int)srv->cfg.max_label_values;
        sc_quality_foreach(srv->quality, render_quality, &qr);
    }
    render_learned_thresholds(srv, &b);
    sc_buf_printf(&b,
                  "# HELP semcached_store_writer_seconds_total Time the store's writer thread spent "
                  "by kind of work (a busy writer makes stores wait).\n"
                  "# TYPE semcached_store_writer_seconds_total counter\n"
                  "semcached_store_writer_seconds_total{work=\"writes\"} %.6f\n"
                  "semcached_store_writer_seconds_total{work=\"sweep\"} %.6f\n"
                  "semcached_store_writer_seconds_total{work=\"sync\"} %.6f\n",
                  (double)st.writer_writes_ns / 1e9, (double)st.writer_sweep_ns / 1e9,
                  (double)st.writer_sync_ns / 1e9);
    sc_buf_printf(&b, "# HELP semcached_validation_dropped_total Hits that were to be validated but "
                      "found the pending table full or could not be delivered.\n"
                      "# TYPE semcached_validation_dropped_total counter\n"
                      "semcached_validation_dropped_total %llu\n"
                      "# HELP semcached_validation_expired_total Validations forgotten unanswered after "
                      "--validation-timeout-s.\n# TYPE semcached_validation_expired_total counter\n"
                      "semcached_validation_expired_total %llu\n"
                      "# HELP semcached_validations_pending Validations awaiting feedback.\n"
                      "# TYPE semcached_validations_pending gauge\nsemcached_validations_pending %llu\n"
                      "# HELP semcached_upstream_calls_total Re-inference calls to --upstream-url that ended.\n"
                      "# TYPE semcached_upstream_calls_total counter\nsemcached_upstream_calls_total %llu\n"
                      "# HELP semcached_upstream_failures_total Re-inferences that failed (error, timeout, "
                      "non-2xx, no comparison).\n# TYPE semcached_upstream_failures_total counter\n"
                      "semcached_upstream_failures_total %llu\n"
                      "# HELP semcached_webhook_posts_total Validations posted to --webhook-url.\n"
                      "# TYPE semcached_webhook_posts_total counter\nsemcached_webhook_posts_total %llu\n"
                      "# HELP semcached_webhook_failures_total Webhook posts that failed.\n"
                      "# TYPE semcached_webhook_failures_total counter\nsemcached_webhook_failures_total %llu\n"
                      "# HELP semcached_compare_failures_total Verdicts lost because the answers could not be embedded.\n"
                      "# TYPE semcached_compare_failures_total counter\nsemcached_compare_failures_total %llu\n",
                  (unsigned long long)sc_quality_dropped(srv->quality),
                  (unsigned long long)sc_quality_expired(srv->quality),
                  (unsigned long long)sc_quality_pending(srv->quality),
                  (unsigned long long)atomic_load(&srv->upstream_calls),
                  (unsigned long long)atomic_load(&srv->upstream_failures),
                  (unsigned long long)atomic_load(&srv->webhook_posts),
                  (unsigned long long)atomic_load(&srv->webhook_failures),
                  (unsigned long long)atomic_load(&srv->compare_failures));
    sc_conn_respond(c, SC_EP_METRICS, hr->started_ns, 200, "text/plain; version=0.0.4; charset=utf-8",
                    NULL, b.data ? b.data : "", b.len);
    sc_buf_free(&b);
}

/* ---- authorization ------------------------------------------------------ */

/* Compares in time that depends only on the lengths, not on where the first
 * difference is, so the token cannot be guessed byte by byte. */
static int token_equal(const char *given, size_t glen, const char *want)
{
    size_t wlen = strlen(want);
    unsigned diff = (unsigned)(glen ^ wlen);
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < glen ? given[i] : 0);
    return diff == 0;
}

/* 0 = allowed; otherwise the status to answer (401 or 403). */
static int check_auth(const sc_server_t *srv, const sc_http_request_t *hr, int admin)
{
    const char *user = srv->cfg.auth_token, *adm = srv->cfg.admin_token[0] ? srv->cfg.admin_token : user;
    const char *need = admin ? adm : user;
    if (!need[0] && !(admin && user[0]))
        return 0;
    const char *v = hr->authorization.ptr;
    size_t n = hr->authorization.len;
    if (n < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return 401;
    v += 7;
    n -= 7;
    if (admin)
        return token_equal(v, n, adm) ? 0 : (user[0] && token_equal(v, n, user) ? 403 : 401);
    return token_equal(v, n, user) || (adm[0] && token_equal(v, n, adm)) ? 0 : 401;
}

/* Admin endpoints: invalidate (and flush), namespace changes. */
static int is_admin(const sc_http_request_t *hr)
{
    sc_slice_t rest;
    return path_is(hr->path, "/v1/invalidate") ||
           (path_has_prefix(hr->path, "/v1/namespaces/", &rest) && hr->method != HTTP_GET);
}

/* ---- router ----------------------------------------------------------- */

void sc_api_handle(sc_conn_t *c, const sc_http_request_t *hr)
{
    sc_slice_t rest;
    sc_slice_t p = hr->path;
    int m = hr->method;
    uint64_t t0 = hr->started_ns;
    sc_server_t *srv = c->w->srv;
    int open_path = path_is(p, "/healthz") || path_is(p, "/readyz") ||
                    (path_is(p, "/metrics") && !srv->cfg.metrics_auth);
    if (!open_path) {
        int deny = check_auth(srv, hr, is_admin(hr));
        if (deny == 401) {
            static const char body[] = "{\"type\":\"urn:semcached:problem:unauthorized\",\"title\":"
                                        "\"Unauthorized\",\"status\":401,\"detail\":\"send "
                                        "Authorization: Bearer <token>\"}";
            return sc_conn_respond(c, SC_EP_OTHER, t0, 401, "application/problem+json",
                                   "WWW-Authenticate: Bearer\r\n", body, sizeof(body) - 1);
        }
        if (deny == 403)
            return sc_conn_problem(c, SC_EP_OTHER, t0, 403, "admin-only",
                                   "this operation needs the admin token");
    }
    if (path_is(p, "/v1/lookup")) {
        if (m != HTTP_POST)
            return method_not_allowed(c, SC_EP_LOOKUP, t0, "POST");
        return handle_lookup(c, hr);
    }
    if (path_is(p, "/v1/store")) {
        if (m != HTTP_POST)
            return method_not_allowed(c, SC_EP_STORE, t0, "POST");
        return handle_store(c, hr);
    }
    if (path_has_prefix(p, "/v1/entries/", &rest))
        return handle_entry(c, hr, rest);
    if (path_has_prefix(p, "/v1/namespaces/", &rest))
        return handle_namespace(c, hr, rest);
    if (path_is(p, "/v1/invalidate")) {
        if (m != HTTP_POST)
            return method_not_allowed(c, SC_EP_INVALIDATE, t0, "POST");
        return handle_invalidate(c, hr);
    }
    if (path_is(p, "/v1/feedback"))
        return handle_feedback(c, hr);
    if (path_is(p, "/v1/validations"))
        return handle_validations(c, hr);
    if (path_is(p, "/v1/stats")) {
        if (m != HTTP_GET)
            return method_not_allowed(c, SC_EP_STATS, t0, "GET");
        return handle_stats(c, hr);
    }
    if (path_is(p, "/healthz") || path_is(p, "/readyz")) {
        sc_endpoint_t ep = p.len == 8 ? SC_EP_HEALTHZ : SC_EP_READYZ;
        if (m != HTTP_GET && m != HTTP_HEAD)
            return method_not_allowed(c, ep, t0, "GET, HEAD");
        if (ep == SC_EP_READYZ && !atomic_load(&c->w->srv->ready)) {
            static const char nr[] = "{\"status\":\"starting\"}";
            return sc_conn_respond(c, ep, t0, 503, JSON_CT, NULL, nr, sizeof(nr) - 1);
        }
        static const char ok[] = "{\"status\":\"ok\"}";
        return sc_conn_respond(c, ep, t0, 200, JSON_CT, NULL, ok, sizeof(ok) - 1);
    }
    if (path_is(p, "/metrics")) {
        if (m != HTTP_GET)
            return method_not_allowed(c, SC_EP_METRICS, t0, "GET");
        return handle_metrics(c, hr);
    }
    sc_conn_problem(c, SC_EP_OTHER, t0, 404, "not-found", "no such endpoint; see the README for the API");
}
