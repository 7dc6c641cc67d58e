/* proxy.c -- the proxy's routes. POST /v1/chat/completions, /v1/responses
 * and /v1/messages are looked up like a native lookup (exact, then
 * semantic), served from the cache on a hit and forwarded (then stored) on
 * a miss; POST /v1/embeddings goes to proxy_embeddings.c; any other /v1/
 * path is passed through. This file reads the request (header controls,
 * tenant, body mapped onto the canonical request), decides, and owns the
 * px_t's lifetime and the proxy's own answers, which always come in the
 * provider's error shape so that SDKs raise their usual exceptions. */
#define _GNU_SOURCE
#include "proxy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const sc_proxy_api_names[SC_METRICS_PROXY_APIS] = {"chat", "responses", "messages",
                                                               "embeddings", "other"};
const char *const sc_proxy_result_names[SC_METRICS_PROXY_RESULTS] = {"hit", "miss", "bypass",
                                                                     "passthrough", "error"};
const char *const sc_proxy_fallback_names[SC_PXF_COUNT] = {
    "store_full",       "write_queue_full", "store_error",  "semantic_skipped",
    "entry_unreadable", "answer_too_large", "out_of_memory"};

/* ---- the proxy's own answers ----------------------------------------------- */

/* Anthropic's API is /v1/messages (and its sub-paths), or whatever a client
 * sends with an anthropic-version header; the rest is OpenAI's. */
static px_provider_t provider_of(const sc_http_request_t *r)
{
    sc_slice_t p = r->path;
    if ((p.len == 12 || (p.len > 12 && p.ptr[12] == '/')) && memcmp(p.ptr, "/v1/messages", 12) == 0)
        return PX_ANTHROPIC;
    return sc_http_request_header(r, "anthropic-version").ptr ? PX_ANTHROPIC : PX_OPENAI;
}

/* The error type each provider's SDK maps a status to. */
static void error_body(px_provider_t provider, int status, const char *message, sc_buf_t *b)
{
    const char *openai = status == 400 || status == 401 || status == 404 || status == 411 ||
                                 status == 413
                             ? "invalid_request_error"
                             : "server_error";
    const char *anthropic = status == 400 || status == 411 ? "invalid_request_error"
                            : status == 401                ? "authentication_error"
                            : status == 413                ? "request_too_large"
                            : status == 503                ? "overloaded_error"
                                                           : "api_error";
    const char *code = status == 401   ? "invalid_semcached_token"
                       : status == 413 ? "request_too_large"
                       : status == 502 ? "upstream_unreachable"
                       : status == 503 ? "proxy_busy"
                       : status == 504 ? "upstream_timeout"
                                       : NULL;
    if (provider == PX_ANTHROPIC) {
        sc_buf_printf(b, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":", anthropic);
        sc_buf_json_str(b, message, strlen(message));
        sc_buf_puts(b, "}}");
        return;
    }
    sc_buf_puts(b, "{\"error\":{\"message\":");
    sc_buf_json_str(b, message, strlen(message));
    sc_buf_printf(b, ",\"type\":\"%s\",\"param\":null,\"code\":", openai);
    if (code)
        sc_buf_printf(b, "\"%s\"}}", code);
    else
        sc_buf_puts(b, "null}}");
}

void sc_proxy_refuse(sc_conn_t *c, const sc_http_request_t *req, int status, const char *message)
{
    sc_buf_t b = {0};
    error_body(provider_of(req), status, message, &b);
    sc_conn_respond(c, status, SC_JSON_CT, NULL, b.data ? b.data : "", b.len);
    sc_buf_free(&b);
}

void sc_proxy_deny(sc_conn_t *c, const sc_http_request_t *req, int status)
{
    sc_proxy_refuse(c, req, status,
                    "semcached needs its token in X-Semcached-Token on proxied routes (--auth-token)");
}

void px_fallback(sc_proxy_t *p, sc_pxf_t why)
{
    atomic_fetch_add(&p->fallbacks[why], 1);
}

void sc_proxy_fallbacks(const sc_proxy_t *p, uint64_t out[SC_PXF_COUNT])
{
    for (int i = 0; i < SC_PXF_COUNT; i++)
        out[i] = p ? atomic_load(&p->fallbacks[i]) : 0;
}

uint64_t sc_proxy_pauses(const sc_proxy_t *p)
{
    return p ? atomic_load(&p->pauses) : 0;
}

void px_cache_headers(const px_t *px, sc_buf_t *out, const sc_lookup_out_t *hit)
{
    static const char *const x_cache[] = {"HIT", "MISS", "BYPASS", "BYPASS", "MISS"};
    sc_buf_puts(out, "X-Cache: ");
    sc_buf_puts(out, x_cache[px->result]);
    sc_buf_puts(out, "\r\n");
    if (hit || px->has_key) {
        sc_buf_puts(out, "X-Semcached-Key: ");
        sc_api_append_key(out, hit ? hit->key : px->key);
        sc_buf_puts(out, "\r\n");
    }
    if (!hit)
        return;
    uint64_t now = sc_now_ms();
    sc_buf_printf(out, "X-Semcached-Match: %s\r\nAge: %llu\r\n",
                  hit->result == SC_LR_SEMANTIC_HIT ? "semantic" : "exact",
                  (unsigned long long)(now > hit->created_ms ? (now - hit->created_ms) / 1000 : 0));
    if (hit->result == SC_LR_SEMANTIC_HIT)
        sc_buf_printf(out, "X-Semcached-Similarity: %.6f\r\n", hit->similarity);
    if (hit->validation_id[0])
        sc_buf_printf(out, "X-Semcached-Validation-Id: %s\r\n", hit->validation_id);
    if (px->coalesced)
        sc_buf_puts(out, "X-Semcached-Coalesced: 1\r\n");
}

/* ---- a px's life -------------------------------------------------------------- */

px_t *px_new(const sc_call_t *a, sc_api_t api, sc_pxa_t label, px_provider_t provider)
{
    px_t *px = calloc(1, sizeof(*px));
    if (!px) {
        sc_buf_t b = {0};
        error_body(provider, 503, "out of memory", &b);
        sc_conn_respond(a->c, 503, SC_JSON_CT, NULL, b.data ? b.data : "", b.len);
        sc_buf_free(&b);
        return NULL;
    }
    px->w = a->w;
    px->proxy = a->ctx->proxy;
    px->conn = a->c;
    px->http_copy = *a->http;
    px->http = &px->http_copy;
    px->provider = provider;
    px->api = api;
    px->label = label;
    px->result = SC_PXR_PASSTHROUGH;
    pthread_mutex_init(&px->mu, NULL);
    uv_timer_init(&a->w->loop, &px->timer);
    px->timer.data = px;
    return px;
}

static void px_closed(uv_handle_t *h)
{
    px_t *px = h->data;
    pthread_mutex_destroy(&px->mu);
    free(px);
}

void px_free(px_t *px)
{
    px_flight_leave(px);
    sc_metrics_proxy_request(px->w->metrics, (int)px->label, (int)px->result);
    if (px->has_req)
        sc_request_free(&px->req);
    if (px->ext_free)
        px->ext_free(px->ext);
    sc_sse_rec_destroy(px->rec);
    sc_sse_parser_destroy(px->filter);
    sc_buf_free(&px->out);
    sc_buf_free(&px->body);
    sc_buf_free(&px->inbox);
    sc_buf_free(&px->spare);
    px_observe_free(px);
    sc_proxy_entry_free(&px->entry);
    sc_proxy_replay_free(&px->rp);
    sc_http_call_clear(&px->call);
    uv_close((uv_handle_t *)&px->timer, px_closed);
}

void px_hold(px_t *px)
{
    if (!px->held && px->conn) {
        sc_conn_hold(px->conn);
        px->held = 1;
    }
}

void px_release(px_t *px)
{
    sc_conn_t *c = px->conn;
    px->conn = NULL;
    px->http = NULL;
    if (c && px->held)
        sc_conn_release(c);
    px->held = 0;
}

void px_end_stream(px_t *px)
{
    if (px->conn)
        sc_conn_stream_end(px->conn);
    px_release(px);
    px_free(px);
}

void px_respond(px_t *px, int status, const char *ctype, const char *headers, const char *body,
                size_t len)
{
    if (!px->conn)
        return;
    sc_conn_respond(px->conn, status, ctype, headers, body, len);
    px_release(px);
}

void px_error(px_t *px, int status, const char *message)
{
    sc_buf_t b = {0}, h = {0};
    error_body(px->provider, status, message, &b);
    px_cache_headers(px, &h, NULL);
    px_respond(px, status, SC_JSON_CT, h.data, b.data ? b.data : "", b.len);
    sc_buf_free(&b);
    sc_buf_free(&h);
}

/* ---- reading the request ------------------------------------------------------ */

/* The header controls (Cache-Control lines joined), the tenant (into
 * 'tenant', 'cap' bytes) and the namespace, as 'pctx'. 0, or -1 when the
 * request was answered (400) and 'px' freed. */
static int read_controls(px_t *px, char *tenant, size_t cap, sc_proxy_ctx_t *pctx)
{
    const sc_http_request_t *r = px->http;
    const sc_config_t *cfg = &px->w->ctx->cfg;
    sc_buf_t cc = {0};
    int have_cc = 0;
    for (size_t i = 0; i < r->n_headers; i++) {
        const sc_http_header_t *h = sc_http_request_header_at(r, i);
        if (h->name.len == 13 && memcmp(h->name.ptr, "cache-control", 13) == 0) {
            if (have_cc)
                sc_buf_append(&cc, ",", 1);
            sc_buf_append(&cc, h->value.ptr, h->value.len);
            have_cc = 1;
        }
    }
    sc_proxy_headers_t hd = {
        .cache_control = {have_cc ? (cc.data ? cc.data : "") : NULL, cc.len},
        .ttl = sc_http_request_header(r, "x-semcached-ttl"),
        .threshold = sc_http_request_header(r, "x-semcached-threshold"),
        .ns = sc_http_request_header(r, "x-semcached-namespace"),
    };
    char err[256];
    int rc = sc_proxy_controls_parse(&hd, &px->ctl, err, sizeof(err));
    sc_buf_free(&cc);
    int tlen = rc ? 0 : px_tenant(px->proxy, r, px->provider, tenant, cap);
    if (!rc && tlen < 0) {
        snprintf(err, sizeof(err),
                 "X-Semcached-Tenant is longer than %d bytes (or no tenant "
                 "could be derived)",
                 SC_MAX_TENANT);
        rc = SC_EINVAL;
    }
    if (rc) {
        px->result = SC_PXR_ERROR;
        px_error(px, 400, err);
        px_free(px);
        return -1;
    }
    if (px->ctl.has_ttl && px->ctl.ttl_s > cfg->max_ttl_s)
        px->ctl.ttl_s = cfg->max_ttl_s; /* never fail a request the upstream would answer */
    *pctx = (sc_proxy_ctx_t){px->ctl.ns, px->ctl.ns_len, tenant, (size_t)tlen, &px->ctl};
    return 0;
}

/* Forwards the client's request; a chat stream to be stored asks upstream
 * for its usage (the relay drops that chunk again for the client). */
void px_forward_request(px_t *px)
{
    sc_buf_t body = {0};
    if (px->store && px->api == SC_API_OPENAI_CHAT && px->stream && !px->include_usage &&
        px_usage_body(px->http->body.ptr, px->http->body.len, &body) == 0)
        px->inject_usage = 1;
    px_forward(px, px->inject_usage ? &body : NULL);
    sc_buf_free(&body);
}

/* ---- the cached APIs ------------------------------------------------------------- */

static void on_lookup(sc_worker_t *w, sc_conn_t *c, void *arg, sc_lookup_out_t *out)
{
    px_t *px = arg;
    (void)w;
    (void)c;
    px->req = out->req;
    memset(&out->req, 0, sizeof(out->req));
    px->has_req = 1;
    if (out->skip >= 0)
        px_fallback(px->proxy, SC_PXF_SEMANTIC);
    if (out->result != SC_LR_MISS) {
        px->result = SC_PXR_HIT;
        px_validate_hit(px, out); /* a sampled hit: re-inferred after it is served */
        if (px_serve_hit(px, out) == 0)
            return;
        px_fallback(px->proxy,
                    SC_PXF_ENTRY); /* unreadable: a miss, overwritten by the fresh answer */
    }
    px->result = SC_PXR_MISS;
    if (px->ctl.only_if_cached) {
        px_error(px, 504, "not in the cache (Cache-Control: only-if-cached)");
        px_free(px);
        return;
    }
    px->store = 1;
    if (px_flight_join(px, out))
        return; /* answered from an identical request's answer */
    px_observe_keep(px, out); /* a near miss: observed when the answer is stored */
    px_forward_request(px);
}

/* Looks the request up with the namespace's threshold; a client's
 * X-Semcached-Threshold may raise it (lower only where the namespace allows
 * it, like the native threshold; otherwise it is ignored). */
static void lookup(px_t *px)
{
    sc_ctx_t *ctx = px->w->ctx;
    sc_ns_config_t ns;
    sc_namespaces_get(ctx->namespaces, px->req.ns, px->req.ns_len, &ns);
    double threshold = sc_models_threshold(&ctx->models, &ctx->cfg, &ns, NULL);
    if (px->req.has_threshold && (px->req.threshold >= threshold || ns.allow_lower_threshold))
        threshold = px->req.threshold;
    else
        px->req.has_threshold = 0;
    sc_request_t req = px->req;
    memset(&px->req, 0, sizeof(px->req));
    px->has_req = 0;
    sc_cache_lookup(px->w, px->conn, &req, threshold, on_lookup, px);
}

static sc_api_t api_of(sc_endpoint_t label)
{
    return label == SC_EP_RESPONSES  ? SC_API_OPENAI_RESPONSES
           : label == SC_EP_MESSAGES ? SC_API_ANTHROPIC_MESSAGES
                                     : SC_API_OPENAI_CHAT;
}

void sc_proxy_api(const sc_call_t *a)
{
    sc_api_t api = api_of(a->route->label);
    sc_pxa_t label = api == SC_API_OPENAI_RESPONSES     ? SC_PXA_RESPONSES
                     : api == SC_API_ANTHROPIC_MESSAGES ? SC_PXA_MESSAGES
                                                        : SC_PXA_CHAT;
    px_t *px = px_new(a, api, label, api == SC_API_ANTHROPIC_MESSAGES ? PX_ANTHROPIC : PX_OPENAI);
    char tenant[SC_MAX_TENANT + 8], err[256];
    sc_proxy_ctx_t pctx;
    if (!px || read_controls(px, tenant, sizeof(tenant), &pctx))
        return;
    sc_proxy_request_t pr;
    int rc = sc_proxy_request_parse(&pr, api, a->http->body.ptr, a->http->body.len, &pctx, err,
                                    sizeof(err));
    px->stream = pr.stream;
    px->include_usage = pr.include_usage;
    if (rc == SC_EINVAL) {
        px->result = SC_PXR_ERROR;
        px_error(px, 400, err);
        px_free(px);
        return;
    }
    if (rc) { /* not JSON, not self-contained: not the cache's business */
        if (rc == SC_ENOMEM)
            px_fallback(px->proxy, SC_PXF_NOMEM);
        px_forward_request(px);
        return;
    }
    px->req = pr.req; /* moved: pr holds nothing else */
    px->has_req = 1;
    memcpy(px->key, px->req.key, SC_KEY_BYTES);
    px->has_key = 1;
    if (px->ctl.no_store || px->ctl.no_cache) {
        px->result = SC_PXR_BYPASS;
        px->store = !px->ctl.no_store;
        px_forward_request(px);
        return;
    }
    lookup(px);
}

void sc_proxy_embeddings(const sc_call_t *a)
{
    px_t *px = px_new(a, SC_API_OPENAI_EMBEDDINGS, SC_PXA_EMBEDDINGS, PX_OPENAI);
    char tenant[SC_MAX_TENANT + 8];
    sc_proxy_ctx_t pctx;
    if (!px || read_controls(px, tenant, sizeof(tenant), &pctx))
        return;
    px_embeddings(px, &pctx);
}

void sc_proxy_passthrough(const sc_call_t *a)
{
    px_t *px = px_new(a, 0, SC_PXA_OTHER, provider_of(a->http));
    if (px)
        px_forward(px, NULL);
}
