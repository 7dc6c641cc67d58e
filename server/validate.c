/* validate.c -- delivering sampled hits for validation and acting on the
 * verdicts. Three deliveries: "caller" (the lookup response asks the caller),
 * "upstream" (this server re-infers against an OpenAI-compatible endpoint
 * through the shared curl-multi client) and "webhook" (a receiver is told and
 * answers through /v1/feedback). Nothing here runs on the request path beyond
 * copying the request and queueing a call: a full queue or a failed call
 * drops the validation (counted), never the caller's answer. Verdicts may
 * arrive on any thread (a loop, the HTTP client's, an embedding worker's);
 * applying one only takes the quality mutex and queues store writes. */
#define _GNU_SOURCE
#include "validate.h"
#include "savings.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "sc_index.h"

static void submit_detached(sc_ctx_t *ctx, sc_write_op_t *op)
{
    op->done = sc_write_op_free;
    if (sc_store_submit(ctx->store, op)) {
        sc_log(ctx->log, SC_WARN, "validation: write queue full; a validation write was dropped");
        sc_write_op_free(op);
    }
}

int sc_validation_apply(sc_ctx_t *ctx, sc_validation_t *v, sc_verdict_t verd, const char *method,
                        double answer_sim, const char *fresh, size_t flen, const char *cached,
                        size_t clen)
{
    sc_quality_record(ctx->quality, v->ns, v->match, verd);
    if (v->match != SC_MATCH_EXACT)
        sc_quality_observe(ctx->quality, v->ns, v->scope, v->similarity, verd);
    uint64_t now = sc_now_ms();
    if (!v->id[0]) {
        /* Feedback by key for an entry nobody sampled: give the record an id. */
        uint8_t raw[16];
        uint64_t a = now * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)v, b = sc_mono_ns();
        memcpy(raw, &a, 8);
        memcpy(raw + 8, &b, 8);
        sc_hex_encode(raw, 16, v->id);
    }
    sc_write_op_t *rec = calloc(1, sizeof(*rec));
    sc_verdict_info_t info = {verd,   method, answer_sim,
                              cached, clen,   fresh,
                              flen,   now,    (uint64_t)ctx->cfg.validation_retention};
    if (rec && sc_quality_validation_op(rec, v, &info) == 0)
        submit_detached(ctx, rec);
    else if (rec)
        sc_write_op_free(rec);
    /* A wrong semantic pairing is remembered so this request never matches
     * that entry again, whether or not the entry itself stays. */
    if (verd == SC_VERDICT_WRONG && v->match != SC_MATCH_EXACT &&
        memcmp(v->request_key, v->entry_key, SC_KEY_BYTES)) {
        sc_write_op_t *neg = calloc(1, sizeof(*neg));
        if (neg) {
            sc_quality_negative_op(neg, v->request_key, v->entry_key);
            submit_detached(ctx, neg);
        }
    }
    /* An exploration or observation was never served: its candidate may be
     * right for its own question, so it stays. */
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, v->ns, strlen(v->ns), &ns);
    if (verd == SC_VERDICT_WRONG && (v->match == SC_MATCH_EXACT || v->match == SC_MATCH_SEMANTIC) &&
        ns.invalidate_on_wrong) {
        sc_write_op_t *del = calloc(1, sizeof(*del));
        if (del) {
            del->type = SC_OP_DELETE;
            memcpy(del->key, v->entry_key, SC_KEY_BYTES);
            submit_detached(ctx, del);
            return 1;
        }
    }
    return 0;
}

/* ---- comparing, possibly through the embedder -------------------------- */

typedef struct {
    sc_embed_job_t job[2];
    char *text[2];
    _Atomic int left;
    sc_compare_done_fn done;
    void *arg;
    double min_sim;
} sem_compare_t;

/* Both jobs lead back to their context through their position in it. */
static sem_compare_t *sem_of(sc_embed_job_t *job, int i)
{
    return (sem_compare_t *)((char *)(job - i) - offsetof(sem_compare_t, job));
}

static void sem_finish(sem_compare_t *sc)
{
    if (atomic_fetch_sub(&sc->left, 1) != 1)
        return;
    int verdict = -1;
    double sim = -2;
    if (!sc->job[0].result && !sc->job[1].result && sc->job[0].vec && sc->job[1].vec &&
        sc->job[0].dim == sc->job[1].dim) {
        sim = sc_vec_dot(sc->job[0].vec, sc->job[1].vec, sc->job[0].dim);
        verdict = sim >= sc->min_sim ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG;
    } else if (!sc->job[0].result && !sc->job[1].result) {
        /* A text with no known word has no vector: only equal texts agree,
         * and the fold already said they differ. */
        verdict = SC_VERDICT_WRONG;
    }
    sc->done(sc->arg, verdict, sim);
    for (int i = 0; i < 2; i++) {
        free(sc->job[i].vec);
        free(sc->text[i]);
    }
    free(sc);
}

static void sem_done0(sc_embed_job_t *job)
{
    sem_finish(sem_of(job, 0));
}

static void sem_done1(sc_embed_job_t *job)
{
    sem_finish(sem_of(job, 1));
}

int sc_compare_answers(sc_ctx_t *ctx, const sc_ns_config_t *ns, const char *fresh, size_t flen,
                       const char *cached, size_t clen, sc_compare_done_fn done, void *arg,
                       const char **method)
{
    return sc_compare_answers_about(ctx, ns, NULL, fresh, flen, cached, clen, done, arg, method);
}

/* The judge's second method (sc_compare_fn). */
static int compare_semantic(sc_ctx_t *ctx, const sc_ns_config_t *ns, const char *fresh,
                            size_t flen, const char *cached, size_t clen, sc_compare_done_fn done,
                            void *arg)
{
    sc_ns_config_t sem = *ns;
    snprintf(sem.compare, sizeof(sem.compare), "semantic");
    const char *m;
    return sc_compare_answers(ctx, &sem, fresh, flen, cached, clen, done, arg, &m);
}

int sc_compare_answers_about(sc_ctx_t *ctx, const sc_ns_config_t *ns,
                             const sc_compare_about_t *about, const char *fresh, size_t flen,
                             const char *cached, size_t clen, sc_compare_done_fn done, void *arg,
                             const char **method)
{
    if (strcmp(ns->compare, "judge") == 0) {
        *method = "judge";
        return sc_judge_compare(ctx, ns, about, compare_semantic, fresh, flen, cached, clen, done,
                                arg);
    }
    /* A static string: callers keep it past 'ns'. */
    const char *m = strcmp(ns->compare, "exact") == 0      ? "exact"
                    : strcmp(ns->compare, "semantic") == 0 ? "semantic"
                                                           : "normalized";
    const sc_model_t *model = sc_models_for(&ctx->models, ns);
    if (strcmp(m, "semantic") == 0 && !model)
        m = "normalized"; /* no such model on this server: the nearest method it has */
    *method = m;
    int agree = sc_answers_agree(fresh, flen, cached, clen, m);
    if (agree != 2) {
        done(arg, agree ? SC_VERDICT_CORRECT : SC_VERDICT_WRONG, -2);
        return 0;
    }
    sem_compare_t *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return SC_ENOMEM;
    sc->text[0] = sc_answer_text(fresh, flen);
    sc->text[1] = sc_answer_text(cached, clen);
    sc->done = done;
    sc->arg = arg;
    sc->min_sim = ns->answer_similarity;
    atomic_store(&sc->left, 2);
    uint64_t deadline = sc_mono_ns() + (uint64_t)ctx->cfg.embed_timeout_ms * 1000000u;
    for (int i = 0; i < 2; i++) {
        sc->job[i].text = sc->text[i] ? sc->text[i] : "";
        sc->job[i].len = sc->text[i] ? strlen(sc->text[i]) : 0;
        sc->job[i].deadline_ns = deadline;
        sc->job[i].done = i ? sem_done1 : sem_done0;
    }
    if (sc_embed_pool_submit(model->pool, &sc->job[0])) {
        free(sc->text[0]);
        free(sc->text[1]);
        free(sc);
        return SC_EBUSY;
    }
    if (sc_embed_pool_submit(model->pool, &sc->job[1])) {
        sc->job[1].result = SC_EBUSY; /* the first job's completion finishes it */
        sem_finish(sc);
    }
    return 0;
}

/* ---- upstream and webhook delivery ------------------------------------- */

typedef struct {
    sc_http_call_t call;
    sc_ctx_t *ctx;
    sc_validation_t v;
    sc_ns_config_t ns;
    sc_buf_t cached; /* the served (or candidate) answer */
    int webhook;
    const char *method; /* comparison used (static) */
    char model[128];    /* the request's, for compare "judge" */
    sc_buf_t text;      /* the request's semantic text, for compare "judge" */
} delivery_t;

static void delivery_free(delivery_t *d)
{
    sc_http_call_clear(&d->call);
    sc_buf_free(&d->cached);
    sc_buf_free(&d->text);
    free(d);
}

static void upstream_verdict(void *arg, int verdict, double answer_sim)
{
    delivery_t *d = arg;
    sc_ctx_t *ctx = d->ctx;
    sc_validation_t v;
    const char *method = d->method;
    if (verdict < 0) {
        atomic_fetch_add(&ctx->upstream_failures, 1);
        sc_quality_abandon(ctx->quality, d->v.id);
    } else if (sc_quality_take(ctx->quality, d->v.id, &v) == 0) {
        /* Still pending (feedback did not answer it first): ours to apply. */
        sc_validation_apply(ctx, &v, (sc_verdict_t)verdict, method, answer_sim,
                            d->call.response.data, d->call.response.len, d->cached.data,
                            d->cached.len);
    }
    delivery_free(d);
}

/* One line per 10 s at most: an upstream outage under load must not flood
 * the log (the counters in /metrics have every failure). */
static int may_warn(sc_ctx_t *ctx)
{
    uint64_t now = sc_now_ms(), last = atomic_load(&ctx->delivery_warned_ms);
    return now - last >= 10000 &&
           atomic_compare_exchange_strong(&ctx->delivery_warned_ms, &last, now);
}

static void on_delivered(sc_http_call_t *call)
{
    delivery_t *d = (delivery_t *)call;
    sc_ctx_t *ctx = d->ctx;
    int ok = !call->error && call->status >= 200 && call->status < 300;
    if (d->webhook) {
        atomic_fetch_add(ok ? &ctx->webhook_posts : &ctx->webhook_failures, 1);
        if (!ok) {
            if (may_warn(ctx))
                sc_log(ctx->log, SC_WARN,
                       "webhook: delivery failed (%s, HTTP %ld); validation dropped "
                       "(further failures for 10 s are only counted)",
                       call->error ? sc_strerror(call->error) : "answered", call->status);
            sc_quality_abandon(ctx->quality, d->v.id);
        }
        delivery_free(d); /* the receiver answers through /v1/feedback */
        return;
    }
    atomic_fetch_add(&ctx->upstream_calls, 1);
    if (!ok) {
        atomic_fetch_add(&ctx->upstream_failures, 1);
        if (may_warn(ctx))
            sc_log(ctx->log, SC_WARN,
                   "upstream: re-inference failed (%s, HTTP %ld); validation dropped "
                   "(further failures for 10 s are only counted)",
                   call->error ? sc_strerror(call->error) : "answered", call->status);
        sc_quality_abandon(ctx->quality, d->v.id);
        delivery_free(d);
        return;
    }
    sc_savings_validation_answer(ctx, d->v.ns, strlen(d->v.ns), d->call.body.data, d->call.body.len,
                                 call->response.data, call->response.len);
    sc_compare_about_t about = {d->v.ns, d->model, d->text.data, d->text.len};
    if (sc_compare_answers_about(ctx, &d->ns, &about,
                                 call->response.data ? call->response.data : "", call->response.len,
                                 d->cached.data, d->cached.len, upstream_verdict, d, &d->method)) {
        sc_quality_abandon(ctx->quality, d->v.id);
        delivery_free(d);
    }
}

/* The chat completion request a lookup stands for: its model and messages
 * (a prompt becomes one user message) with its parameters at the top level,
 * never streamed. */
static int upstream_body(const sc_request_t *req, sc_buf_t *out)
{
    json_t *root = sc_request_json(req); /* decoded now if the fast path did not */
    json_t *body = root ? json_object() : NULL;
    if (!body)
        return SC_ENOMEM;
    json_t *params = json_object_get(root, "params");
    if (json_is_object(params))
        json_object_update(body, params);
    json_object_set(body, "model", json_object_get(root, "model"));
    json_t *messages = json_object_get(root, "messages");
    if (messages) {
        json_object_set(body, "messages", messages);
    } else {
        json_t *m = json_pack("[{s:s, s:O}]", "role", "user", "content",
                              json_object_get(root, "prompt"));
        json_object_set_new(body, "messages", m ? m : json_array());
    }
    json_object_set_new(body, "stream", json_false());
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!s)
        return SC_ENOMEM;
    int rc = sc_buf_puts(out, s);
    free(s);
    return rc;
}

static int webhook_body(const sc_validation_t *v, const sc_request_t *req, const char *cached,
                        size_t clen, sc_buf_t *out)
{
    char hex[SC_KEY_HEX + 1];
    sc_hex_encode(v->entry_key, SC_KEY_BYTES, hex);
    json_t *root = sc_request_json(req);
    char *request = root ? json_dumps(root, JSON_COMPACT) : NULL;
    if (!request)
        return SC_ENOMEM;
    sc_buf_printf(out, "{\"validation_id\":\"%s\",\"key\":\"%s\",\"namespace\":", v->id, hex);
    sc_buf_json_str(out, v->ns, strlen(v->ns));
    sc_buf_printf(out, ",\"match\":\"%s\",\"similarity\":%.6f,\"request\":%s,\"cached_response\":",
                  sc_match_names[v->match], v->similarity, request);
    sc_buf_append(out, cached, clen);
    sc_buf_puts(out, "}");
    free(request);
    return out->data ? 0 : SC_ENOMEM;
}

int sc_validation_deliver(sc_ctx_t *ctx, const sc_ns_config_t *ns, const sc_validation_t *v,
                          const sc_request_t *req, const char *cached, size_t clen)
{
    if (ns->delivery == SC_DELIVERY_CALLER)
        return 1;
    const char *url =
        ns->delivery == SC_DELIVERY_UPSTREAM ? ctx->cfg.upstream_url : ctx->cfg.webhook_url;
    delivery_t *d = NULL;
    if (!ctx->vclient || !url[0] || !(d = calloc(1, sizeof(*d))))
        goto drop;
    d->ctx = ctx;
    d->v = *v;
    d->ns = *ns;
    d->webhook = ns->delivery == SC_DELIVERY_WEBHOOK;
    snprintf(d->model, sizeof(d->model), "%.*s", (int)req->model_len, req->model);
    if (req->text.len && sc_buf_append(&d->text, req->text.data, req->text.len))
        goto drop;
    snprintf(d->call.url, sizeof(d->call.url), "%s", url);
    const char *key = d->webhook ? ctx->webhook_key : ctx->upstream_key;
    if (key[0])
        snprintf(d->call.auth, sizeof(d->call.auth), "Bearer %s", key);
    d->call.timeout_ms = (long)ctx->cfg.upstream_timeout_ms;
    d->call.done = on_delivered;
    int rc = d->webhook ? webhook_body(v, req, cached, clen, &d->call.body)
                        : upstream_body(req, &d->call.body);
    if (rc || sc_buf_append(&d->cached, cached, clen) || !d->cached.data)
        goto drop;
    if (sc_http_client_submit(ctx->vclient, &d->call))
        goto drop;
    return 0;
drop:
    if (d)
        delivery_free(d);
    sc_quality_abandon(ctx->quality, v->id);
    return 0;
}
