/* proxy_observe.c -- the proxy's share of the quality loop. A proxied miss
 * whose best candidate is above the exploration floor keeps that candidate;
 * when the fresh upstream answer (which the client gets anyway) is stored,
 * the two are compared and the verdict recorded as match kind "observed":
 * an observation at no model call. A sampled proxied hit is re-inferred by
 * sending the client's own request (stream off) to the same upstream with
 * the client's own credentials, after the hit was served; the credentials
 * live in the call only and are wiped with it, never stored or logged.
 * Answers are compared on their comparable core: a stream is assembled, and
 * an Anthropic or Responses body is reduced to its text (or its blocks
 * without ids), as chat bodies already are by sc_answer_core. */
#define _GNU_SOURCE
#include "observe.h"
#include "proxy_internal.h"
#include "savings.h"
#include "validate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct px_obs_s {
    sc_validation_t v;
    sc_buf_t candidate; /* the candidate entry's response (an encoded proxy entry) */
};

/* ---- the comparable answer --------------------------------------------------- */

/* Drops the ids a model mints afresh for every answer from each item. */
static void drop_ids(json_t *items)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) if (json_is_object(it))
    {
        json_object_del(it, "id");
        json_object_del(it, "call_id");
    }
}

/* Text of the parts of 'items' whose type is 'part' (member 'field'), into
 * 'text'; 0 when some item is of another type (the answer is a structure). */
static int all_text(json_t *items, const char *part, sc_buf_t *text)
{
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *type = json_string_value(json_object_get(it, "type"));
        json_t *t = json_object_get(it, "text");
        if (!type || strcmp(type, part) || !json_is_string(t))
            return 0;
        sc_buf_append(text, json_string_value(t), json_string_length(t));
    }
    return 1;
}

/* The answer of a non-streamed body of 'api' as sc_answers_agree reads it:
 * chat bodies as they are; Anthropic content blocks and Responses output
 * items as {"content": their text} or {"content": the items without ids}. */
static int body_answer(sc_api_t api, const char *body, size_t len, sc_buf_t *out)
{
    if (api != SC_API_ANTHROPIC_MESSAGES && api != SC_API_OPENAI_RESPONSES)
        return sc_buf_append(out, body, len);
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *items = json_object_get(root, api == SC_API_OPENAI_RESPONSES ? "output" : "content");
    if (!json_is_array(items)) {
        json_decref(root);
        return sc_buf_append(out, body, len);
    }
    sc_buf_t text = {0};
    int is_text = 1;
    if (api == SC_API_ANTHROPIC_MESSAGES) {
        is_text = all_text(items, "text", &text);
    } else { /* Responses: message items holding output_text parts */
        size_t i;
        json_t *it;
        json_array_foreach(items, i, it)
        {
            const char *type = json_string_value(json_object_get(it, "type"));
            json_t *parts = json_object_get(it, "content");
            if (!type || strcmp(type, "message") || !json_is_array(parts) ||
                !all_text(parts, "output_text", &text)) {
                is_text = 0;
                break;
            }
        }
    }
    json_t *answer = json_object();
    if (is_text) {
        json_object_set_new(answer, "content", json_stringn(text.data ? text.data : "", text.len));
    } else {
        drop_ids(items);
        json_object_set(answer, "content", items);
    }
    int rc = sc_api_dump_compact(answer, out);
    json_decref(answer);
    json_decref(root);
    sc_buf_free(&text);
    return rc;
}

/* The answer a stored proxy entry holds (its stream assembled). */
static int entry_answer(const char *json, size_t len, sc_buf_t *out)
{
    sc_proxy_entry_t e;
    if (sc_proxy_entry_decode(&e, json, len))
        return SC_ECORRUPT;
    sc_buf_t body = {0};
    int rc = e.form == SC_PROXY_FORM_STREAM ? sc_proxy_assemble(&e, &body)
                                            : sc_buf_append(&body, e.body.ptr, e.body.len);
    if (!rc)
        rc = body_answer(e.api, body.data ? body.data : "", body.len, out);
    sc_proxy_entry_free(&e);
    sc_buf_free(&body);
    return rc;
}

/* ---- comparing and applying -------------------------------------------------- */

/* Two answers on their way through sc_compare_answers. */
typedef struct {
    sc_http_call_t call; /* the paid re-inference (unused for an observation) */
    sc_ctx_t *ctx;
    sc_validation_t v;
    int pending; /* 'v' is registered: take it by id before applying */
    sc_buf_t fresh, cached;
    const char *method;
} px_check_t;

static void check_free(px_check_t *x)
{
    /* The call held the client's credentials: wiped, never kept. */
    explicit_bzero(x->call.auth, sizeof(x->call.auth));
    if (x->call.headers.data)
        explicit_bzero(x->call.headers.data, x->call.headers.len);
    sc_http_call_clear(&x->call);
    sc_buf_free(&x->fresh);
    sc_buf_free(&x->cached);
    free(x);
}

static void check_compared(void *arg, int verdict, double answer_sim)
{
    px_check_t *x = arg;
    sc_validation_t v = x->v;
    if (verdict < 0) {
        atomic_fetch_add(&x->ctx->compare_failures, 1);
        if (x->pending)
            sc_quality_abandon(x->ctx->quality, x->v.id);
    } else if (!x->pending || sc_quality_take(x->ctx->quality, x->v.id, &v) == 0) {
        sc_validation_apply(x->ctx, &v, (sc_verdict_t)verdict, x->method, answer_sim, x->fresh.data,
                            x->fresh.len, x->cached.data, x->cached.len);
    }
    check_free(x);
}

/* Compares x->fresh with x->cached by the namespace's method; 'x' is
 * finished (and freed) whatever happens. */
static void check_run(px_check_t *x)
{
    sc_ns_config_t ns;
    sc_namespaces_get(x->ctx->namespaces, x->v.ns, strlen(x->v.ns), &ns);
    if (!x->fresh.data || !x->cached.data ||
        sc_compare_answers(x->ctx, &ns, x->fresh.data, x->fresh.len, x->cached.data, x->cached.len,
                           check_compared, x, &x->method))
        check_compared(x, -1, -2);
}

/* ---- observations of misses ---------------------------------------------------- */

void px_observe_keep(px_t *px, sc_lookup_out_t *out)
{
    if (!out->observe || !px->has_req || px->obs)
        return;
    struct px_obs_s *o = calloc(1, sizeof(*o));
    if (!o)
        return;
    sc_observe_validation(&px->req, out->observe_key, SC_MATCH_OBSERVED, out->observe_similarity,
                          &o->v);
    o->candidate = out->candidate; /* moved */
    memset(&out->candidate, 0, sizeof(out->candidate));
    px->obs = o;
}

void px_observe_settle(px_t *px, const sc_buf_t *entry_json)
{
    struct px_obs_s *o = px->obs;
    if (!o || !entry_json->data)
        return;
    px->obs = NULL;
    px_check_t *x = calloc(1, sizeof(*x));
    if (x) {
        x->ctx = px->w->ctx;
        x->v = o->v;
        if (entry_answer(entry_json->data, entry_json->len, &x->fresh) ||
            entry_answer(o->candidate.data, o->candidate.len, &x->cached)) {
            check_free(x); /* not a proxy entry: nothing to compare */
        } else {
            check_run(x);
        }
    }
    sc_buf_free(&o->candidate);
    free(o);
}

void px_observe_free(px_t *px)
{
    if (!px->obs)
        return;
    sc_buf_free(&px->obs->candidate);
    free(px->obs);
    px->obs = NULL;
}

/* ---- re-inferring a sampled hit through the same upstream ------------------------ */

static void on_reinferred(sc_http_call_t *call)
{
    px_check_t *x = (px_check_t *)call;
    sc_ctx_t *ctx = x->ctx;
    atomic_fetch_add(&ctx->upstream_calls, 1);
    if (call->error || call->status < 200 || call->status >= 300 ||
        body_answer((sc_api_t)(uintptr_t)call->data, call->response.data ? call->response.data : "",
                    call->response.len, &x->fresh)) {
        atomic_fetch_add(&ctx->upstream_failures, 1);
        sc_quality_abandon(ctx->quality, x->v.id);
        check_free(x);
        return;
    }
    /* What the re-inference cost: its answer's usage at the price table's. */
    sc_savings_validation_answer(ctx, x->v.ns, strlen(x->v.ns), call->body.data, call->body.len,
                                 call->response.data, call->response.len);
    check_run(x);
}

/* Request headers the re-inference carries: who is asking (the client's
 * key), which API version, the body's type. Nothing else of the client's. */
static int carried(const px_t *px, sc_slice_t n)
{
    (void)px;
    static const char *const keep[] = {
        "authorization",  "x-api-key", "anthropic-version", "anthropic-beta", "openai-organization",
        "openai-project", NULL};
    for (int i = 0; keep[i]; i++)
        if (n.len == strlen(keep[i]) && strncasecmp(n.ptr, keep[i], n.len) == 0)
            return 1;
    return 0;
}

/* The client's body, never streamed. */
static int unstreamed_body(const px_t *px, sc_buf_t *out)
{
    json_t *root = json_loadb(px->http->body.ptr, px->http->body.len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return SC_EINVAL;
    }
    json_object_del(root, "stream");
    json_object_del(root, "stream_options");
    int rc = sc_api_dump_compact(root, out);
    json_decref(root);
    return rc;
}

static int build_reinference(px_t *px, px_check_t *x)
{
    const sc_config_t *cfg = &px->w->ctx->cfg;
    sc_http_call_t *call = &x->call;
    int rc = px_upstream_url(px, call->url, sizeof(call->url));
    snprintf(call->method, sizeof(call->method), "POST");
    if (!rc)
        rc = px_carry_headers(px, call, carried);
    if (!rc)
        rc = sc_http_call_add_header(call, "content-type", "application/json");
    if (!rc)
        rc = unstreamed_body(px, &call->body);
    call->timeout_ms = (long)cfg->proxy_timeout_ms;
    call->connect_timeout_ms = (long)cfg->proxy_connect_timeout_ms;
    call->done = on_reinferred;
    call->data = (void *)(uintptr_t)px->api;
    return rc;
}

void px_validate_hit(px_t *px, const sc_lookup_out_t *out)
{
    if (!out->validation_id[0] || !px->has_req || !px->http)
        return;
    sc_ctx_t *ctx = px->w->ctx;
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, px->req.ns, px->req.ns_len, &ns);
    sc_observe_proxy_ns(&ctx->cfg, &ns);
    if (ns.delivery != SC_DELIVERY_UPSTREAM)
        return; /* the client answers (X-Semcached-Validation-Id), or the webhook */
    px_check_t *x = calloc(1, sizeof(*x));
    if (!x) {
        sc_quality_abandon(ctx->quality, out->validation_id);
        return;
    }
    /* It stays pending under its id: the re-inference's verdict takes it
     * (unless the client's feedback answered it first). */
    x->ctx = ctx;
    sc_observe_validation(&px->req, out->key, SC_MATCH_SEMANTIC, out->similarity, &x->v);
    memcpy(x->v.id, out->validation_id, sizeof(x->v.id));
    x->pending = 1;
    if (entry_answer(out->response.data ? out->response.data : "", out->response.len, &x->cached) ||
        build_reinference(px, x) || sc_http_client_submit(px->proxy->client, &x->call)) {
        check_free(x);
        sc_quality_abandon(ctx->quality, out->validation_id);
    }
}
