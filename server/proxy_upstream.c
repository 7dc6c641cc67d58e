/* proxy_upstream.c -- the upstream call of a proxied request and the
 * proxy's set-up. The call carries the client's method, path, query, body
 * and headers (minus hop-by-hop ones and semcached's own; plus the
 * configured key when the client sent none) and runs on the HTTP client's
 * thread, where its callbacks only hand the head, each body piece and the
 * end over to the request's loop: one task per px, posted when there is
 * something new and coalesced only while the loop is busy, so an event is
 * relayed as soon as the loop runs. Flow control pauses the transfer while
 * the client has more than --proxy-buffer-high bytes unread; a client that
 * leaves during a miss lets the answer finish within
 * --proxy-finish-after-disconnect-ms, to be stored. The client's answer
 * never waits for a store's commit. */
#define _GNU_SOURCE
#include "proxy_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- set-up --------------------------------------------------------------- */

int sc_proxy_create(sc_proxy_t **out, sc_ctx_t *ctx)
{
    const sc_config_t *cfg = &ctx->cfg;
    sc_proxy_t *p = calloc(1, sizeof(*p));
    if (!p)
        return SC_ENOMEM;
    p->ctx = ctx;
    const char *env[2] = {cfg->openai_key_env, cfg->anthropic_key_env};
    for (int i = 0; i < 2; i++) {
        const char *k = env[i][0] ? getenv(env[i]) : NULL;
        if (k && strlen(k) < sizeof(p->key[i]))
            strcpy(p->key[i], k);
        else if (k)
            sc_log(ctx->log, SC_WARN, "$%s is too long for an API key: ignored", env[i]);
    }
    sc_http_client_opts_t opts = {
        .max_inflight = (int)cfg->proxy_concurrency,
        .max_queue = (size_t)cfg->proxy_queue,
        .max_host_connections = (long)cfg->proxy_max_host_connections,
    };
    int rc = px_secret_load(cfg->data_dir, p->secret);
    if (rc)
        sc_log(ctx->log, SC_ERROR, "proxy: cannot read or create %s/proxy.secret: %s",
               cfg->data_dir, sc_strerror(rc));
    if (!rc)
        rc = sc_http_client_create_opts(&p->client, &opts, ctx->log);
    if (rc) {
        sc_proxy_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

void sc_proxy_destroy(sc_proxy_t *p)
{
    if (!p)
        return;
    sc_http_client_destroy(p->client);
    explicit_bzero(p->secret, sizeof(p->secret));
    explicit_bzero(p->key, sizeof(p->key));
    free(p);
}

/* ---- building the call ------------------------------------------------------- */

static int name_is(sc_slice_t n, const char *want)
{
    return n.len == strlen(want) && strncasecmp(n.ptr, want, n.len) == 0;
}

/* Request headers that stay here: the hop's own, semcached's, and
 * Accept-Encoding (the answer is parsed and stored as text). The client's
 * Cache-Control is semcached's on the cached APIs. */
static int keep_request_header(const px_t *px, sc_slice_t n)
{
    static const char *const drop[] = {
        "host", "content-length", "transfer-encoding", "connection", "keep-alive",
        "te",   "trailer",        "upgrade",           "expect",     "accept-encoding",
        NULL};
    for (int i = 0; drop[i]; i++)
        if (name_is(n, drop[i]))
            return 0;
    if ((n.len >= 6 && strncasecmp(n.ptr, "proxy-", 6) == 0) ||
        (n.len >= 12 && strncasecmp(n.ptr, "x-semcached-", 12) == 0))
        return 0;
    return !(px->api && name_is(n, "cache-control"));
}

/* <base URL> + the path after "/v1" + the query. */
int px_upstream_url(px_t *px, char *url, size_t cap)
{
    const sc_config_t *cfg = &px->w->ctx->cfg;
    const char *base =
        px->provider == PX_ANTHROPIC ? cfg->anthropic_base_url : cfg->openai_base_url;
    size_t blen = strlen(base);
    while (blen && base[blen - 1] == '/')
        blen--;
    sc_slice_t path = px->http->path, q = px->http->query;
    size_t skip = path.len >= 3 && memcmp(path.ptr, "/v1", 3) == 0 ? 3 : 0;
    int n = snprintf(url, cap, "%.*s%.*s%s%.*s", (int)blen, base, (int)(path.len - skip),
                     path.ptr + skip, q.len ? "?" : "", (int)q.len, q.ptr);
    return n < 0 || (size_t)n >= cap ? SC_ETOOBIG : 0;
}

static int default_key(const px_t *px, sc_http_call_t *call, int has_key)
{
    const char *key = px->proxy->key[px->provider];
    if (has_key || !key[0])
        return 0;
    if (px->provider == PX_ANTHROPIC)
        return sc_http_call_add_header(call, "x-api-key", key);
    snprintf(call->auth, sizeof(call->auth), "Bearer %s", key);
    return 0;
}

int px_carry_headers(const px_t *px, sc_http_call_t *call,
                     int (*keep)(const px_t *px, sc_slice_t name))
{
    int has_key = 0;
    for (size_t i = 0; i < px->http->n_headers; i++) {
        const sc_http_header_t *h = sc_http_request_header_at(px->http, i);
        if (!keep(px, h->name))
            continue;
        has_key |= name_is(h->name, "authorization") || name_is(h->name, "x-api-key");
        int rc =
            sc_http_call_add_header_n(call, h->name.ptr, h->name.len, h->value.ptr, h->value.len);
        if (rc && rc != SC_EINVAL) /* one curl cannot send is one the upstream never sees */
            return rc;
    }
    return default_key(px, call, has_key);
}

static int build_call(px_t *px, sc_buf_t *body)
{
    const sc_config_t *cfg = &px->w->ctx->cfg;
    const sc_http_request_t *r = px->http;
    sc_http_call_t *call = &px->call;
    int rc = px_upstream_url(px, call->url, sizeof(call->url));
    snprintf(call->method, sizeof(call->method), "%s", sc_http_method_name(r->method));
    if (!rc)
        rc = px_carry_headers(px, call, keep_request_header);
    if (!rc && body && body->len) {
        call->body = *body; /* taken over */
        memset(body, 0, sizeof(*body));
    } else if (!rc && r->body.len) {
        rc = sc_buf_append(&call->body, r->body.ptr, r->body.len);
    }
    call->timeout_ms = (long)cfg->proxy_timeout_ms;
    call->connect_timeout_ms = (long)cfg->proxy_connect_timeout_ms;
    call->idle_timeout_ms = (long)cfg->proxy_idle_timeout_ms;
    call->pause_timeout_ms = (long)cfg->proxy_idle_timeout_ms;
    return rc;
}

/* ---- the client thread's side -------------------------------------------------- */

/* Under px->mu: pauses the transfer (once). Pause and resume are both
 * decided under the px's lock, so the client thread's pause (a loop that
 * falls behind) and the loop's (a client that reads slowly) never cross. */
static void pause_locked(px_t *px)
{
    if (!px->paused && sc_http_client_pause(px->proxy->client, &px->call) == 0) {
        px->paused = 1;
        atomic_fetch_add(&px->proxy->pauses, 1);
    }
}

/* Hands something new to the loop: sets '*flag' (when not NULL) or appends
 * 'n' bytes to the inbox (pausing the transfer while the inbox is past the
 * high mark), and posts the px's task unless it is already waiting. 0 or
 * SC_ENOMEM. */
static int kick(px_t *px, int *flag, const char *p, size_t n)
{
    pthread_mutex_lock(&px->mu);
    int rc = 0;
    if (flag)
        *flag = 1;
    else
        rc = sc_buf_append(&px->inbox, p, n);
    if (!flag && px->inbox.len > (size_t)px->w->ctx->cfg.proxy_buffer_high)
        pause_locked(px);
    if (!px->queued) {
        px->queued = 1;
        sc_worker_post(px->w, &px->task);
    }
    pthread_mutex_unlock(&px->mu);
    return rc;
}

static int on_up_headers(sc_http_call_t *call)
{
    px_t *px = call->data;
    return kick(px, &px->up_headers, NULL, 0);
}

static int on_up_data(sc_http_call_t *call, const char *p, size_t n)
{
    return kick(call->data, NULL, p, n);
}

/* The client thread's last touch of 'px': once the loop has seen up_done
 * it may free it. */
static void on_up_done(sc_http_call_t *call)
{
    px_t *px = call->data;
    kick(px, &px->up_done, NULL, 0);
}

/* ---- the loop's side ------------------------------------------------------------ */

void px_cancel(px_t *px)
{
    if (px->call.done)
        sc_http_client_cancel(px->proxy->client, &px->call); /* done comes, once */
}

static void timer_every(px_t *px, uint64_t ms);

/* Response headers that stay upstream: framing, the hop's own, and the
 * cache's (ours replace them). */
static int keep_response_header(const char *name)
{
    static const char *const drop[] = {
        "connection", "keep-alive", "transfer-encoding", "content-length", "content-type", "te",
        "trailer",    "upgrade",    "proxy-connection",  "x-cache",        "age",          NULL};
    for (int i = 0; drop[i]; i++)
        if (strcasecmp(name, drop[i]) == 0)
            return 0;
    return strncasecmp(name, "x-semcached-", 12) != 0;
}

void px_upstream_headers(const px_t *px, sc_buf_t *out)
{
    size_t pos = 0;
    const char *name, *value;
    while (sc_http_call_header_next(&px->call, &pos, &name, &value) == 0)
        if (keep_response_header(name))
            sc_buf_printf(out, "%s: %s\r\n", name, value);
}

/* The upstream's head: the client's response begins with the same status,
 * type and headers (and ours). */
static void take_headers(px_t *px)
{
    if (px->mode == PX_COLLECT)
        return;
    const char *ctype = sc_http_call_header(&px->call, "content-type");
    if (!ctype)
        ctype = "application/octet-stream";
    sc_buf_t h = {0};
    px_upstream_headers(px, &h);
    px_cache_headers(px, &h, NULL);
    if (px->conn)
        sc_conn_stream_begin(px->conn, (int)px->call.status, ctype, h.data);
    px->begun = 1;
    sc_buf_free(&h);
    px_record_begin(px, (int)px->call.status, ctype);
}

static void take_bytes(px_t *px, const char *p, size_t n)
{
    if (px->mode == PX_COLLECT) {
        if (!px->body_over &&
            (px->body.len + n > SC_HTTP_MAX_RESPONSE || sc_buf_append(&px->body, p, n)))
            px->body_over = 1;
        return;
    }
    px_relay(px, p, n);
    if (px->conn && !px->gone &&
        sc_conn_out_pending(px->conn) > (size_t)px->w->ctx->cfg.proxy_buffer_high) {
        pthread_mutex_lock(&px->mu);
        pause_locked(px);
        pthread_mutex_unlock(&px->mu);
    }
}

/* The upstream call ended: the client's answer ends with it. */
static void finish(px_t *px)
{
    sc_http_call_t *call = &px->call;
    if (call->status)
        sc_metrics_proxy_upstream(px->w->metrics, (int)px->label, (uint64_t)call->ttfb_us * 1000u,
                                  (uint64_t)call->total_us * 1000u);
    if (px->mode == PX_COLLECT) {
        px->collected(px);
    } else if (!px->begun) { /* no answer at all (or the client left first: cancelled) */
        int timeout = call->error == SC_ETIMEDOUT;
        if (!px->gone) {
            sc_log(px->w->ctx->log, SC_WARN, "proxy: upstream %s: %s", call->url,
                   call->error_text[0] ? call->error_text : sc_strerror(call->error));
            px->result = SC_PXR_ERROR;
        }
        px_error(px, timeout ? 504 : 502,
                 timeout ? "the upstream API did not answer in time"
                         : "the upstream API is unreachable");
    } else if (call->error) { /* cut mid-way: the client sees the cut, nothing is stored */
        if (px->conn)
            sc_conn_stream_abort(px->conn);
        px_release(px);
    } else {
        /* The client's answer ends with the upstream's: it asked the model,
         * not the cache, so it does not wait for the commit. The store goes
         * on in the background and px lives until it is committed (the
         * loop's pending count keeps a drain waiting for it too). */
        if (px->conn)
            sc_conn_stream_end(px->conn);
        px_release(px);
        px_record_end(px);
    }
    if (px->stores_pending) {
        uv_timer_stop(&px->timer); /* no flow control or finish window left */
        px->timer_on = 0;
        px->after_store = px_free;
    } else {
        px_free(px);
    }
}

static void px_task(sc_task_t *t)
{
    px_t *px = (px_t *)((char *)t - offsetof(px_t, task));
    sc_buf_reset(&px->spare); /* its room is reused for the next pieces */
    pthread_mutex_lock(&px->mu);
    sc_buf_t in = px->inbox;
    px->inbox = px->spare;
    int hdr = px->up_headers && !px->headers_taken;
    int done = px->up_done;
    px->queued = 0;
    pthread_mutex_unlock(&px->mu);
    memset(&px->spare, 0, sizeof(px->spare));
    if (!done)
        sc_worker_expect(px->w); /* for the next post (the one done makes, at least) */
    if (hdr) {
        px->headers_taken = 1;
        take_headers(px);
    }
    if (in.len)
        take_bytes(px, in.data, in.len);
    px->spare = in;
    if (done) {
        finish(px);
        return;
    }
    pthread_mutex_lock(&px->mu);
    int paused = px->paused;
    pthread_mutex_unlock(&px->mu);
    if (paused)
        timer_every(px, 2); /* sc_conn has no drain notice: watch the output */
}

/* Flow control while paused (every 2 ms): resumes once the inbox and the
 * client's output are below the low mark (or the client left); the finish
 * window once the client left (every 100 ms). */
static void on_tick(uv_timer_t *t)
{
    px_t *px = t->data;
    sc_ctx_t *ctx = px->w->ctx;
    size_t low = (size_t)ctx->cfg.proxy_buffer_low;
    int out_low = !px->conn || px->gone || sc_conn_out_pending(px->conn) <= low;
    pthread_mutex_lock(&px->mu);
    if (px->paused && out_low && px->inbox.len <= low &&
        sc_http_client_resume(px->proxy->client, &px->call) != SC_EINVAL)
        px->paused = 0;
    int paused = px->paused;
    pthread_mutex_unlock(&px->mu);
    if (px->gone && (atomic_load(&ctx->stopping) || sc_now_ms() >= px->gone_deadline_ms)) {
        px_cancel(px);
        px->gone_deadline_ms = UINT64_MAX; /* once */
    }
    if (!paused && !(px->gone && px->gone_deadline_ms != UINT64_MAX)) {
        uv_timer_stop(t);
        px->timer_on = 0;
    } else if (!paused && px->timer_on != 100) {
        timer_every(px, 100);
    }
}

static void timer_every(px_t *px, uint64_t ms)
{
    if (px->timer_on == (int)ms)
        return;
    uv_timer_start(&px->timer, on_tick, ms, ms);
    px->timer_on = (int)ms;
}

void px_client_gone(px_t *px)
{
    sc_ctx_t *ctx = px->w->ctx;
    if (px->gone)
        return;
    px->gone = 1;
    int64_t window = ctx->cfg.proxy_finish_after_disconnect_ms;
    if (!px->store || window <= 0 || atomic_load(&ctx->stopping)) {
        px->gone_deadline_ms = UINT64_MAX;
        px_cancel(px);
        return;
    }
    px->gone_deadline_ms = sc_now_ms() + (uint64_t)window;
    timer_every(px, 100);
    on_tick(&px->timer); /* resumes a paused transfer */
}

static void on_gone(sc_conn_t *c, void *arg, int why)
{
    (void)c;
    (void)why;
    px_client_gone(arg);
}

void px_forward(px_t *px, sc_buf_t *body)
{
    px->task.run = px_task;
    px->call.data = px;
    px->call.on_headers = on_up_headers;
    px->call.on_data = on_up_data;
    px->call.done = on_up_done;
    px->submitted_ns = sc_mono_ns();
    int rc = build_call(px, body);
    if (!rc)
        rc = sc_http_client_submit(px->proxy->client, &px->call);
    if (rc) {
        px->result = SC_PXR_ERROR;
        px_error(px, rc == SC_EBUSY ? 503 : 502,
                 rc == SC_EBUSY ? "too many upstream calls waiting (--proxy-queue); retry shortly"
                 : rc == SC_ETOOBIG ? "the upstream URL is too long"
                                    : "the upstream call could not be made");
        px_free(px);
        return;
    }
    sc_worker_expect(px->w); /* the loop cannot run the post before we return */
    px_hold(px);
    sc_conn_on_gone(px->conn, on_gone, px);
    if (sc_conn_gone(px->conn))
        on_gone(px->conn, px, sc_conn_gone(px->conn));
}

/* ---- storing an answer ------------------------------------------------------------ */

/* One detached write of this px, reported back to its loop. */
typedef struct {
    sc_task_t task;
    px_t *px;
} store_wait_t;

static void store_task(sc_task_t *t)
{
    store_wait_t *sw = (store_wait_t *)t;
    px_t *px = sw->px;
    free(sw);
    if (--px->stores_pending == 0 && px->after_store)
        px->after_store(px);
}

/* The store's writer thread (or the loop, when the write was not queued). */
static void store_done(void *arg, int rc)
{
    store_wait_t *sw = arg;
    if (rc)
        px_fallback(sw->px->proxy, rc == SC_EFULL || rc == SC_ETOOBIG ? SC_PXF_STORE_FULL
                                   : rc == SC_EBUSY                   ? SC_PXF_WRITE_QUEUE
                                                                      : SC_PXF_STORE_ERROR);
    sc_worker_post(sw->px->w, &sw->task);
}

void px_store_request(px_t *px, sc_request_t *req, sc_buf_t *entry_json)
{
    store_wait_t *sw = calloc(1, sizeof(*sw));
    if (!sw) {
        px_fallback(px->proxy, SC_PXF_NOMEM);
        sc_request_free(req);
        return;
    }
    sw->task.run = store_task;
    sw->px = px;
    px->stores_pending++;
    sc_worker_expect(px->w); /* the post store_done makes, once */
    sc_cache_store_detached(px->w, req, entry_json, store_done, sw);
}

static uint32_t tokens(int64_t n)
{
    return n <= 0 ? 0 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

void px_store(px_t *px, sc_buf_t *entry_json, const sc_sse_usage_t *usage)
{
    if (!px->has_req || !px->store)
        return;
    sc_request_t req = px->req;
    memset(&px->req, 0, sizeof(px->req));
    px->has_req = 0;
    /* Anthropic counts cache reads apart from its input; both were prompt. */
    int64_t cached =
        px->api == SC_API_ANTHROPIC_MESSAGES && usage->cached_input > 0 ? usage->cached_input : 0;
    req.prompt_tokens = tokens(usage->input >= 0 ? usage->input + cached : 0);
    req.completion_tokens = tokens(usage->output);
    req.has_usage = usage->input >= 0 || usage->output >= 0;
    px_store_request(px, &req, entry_json);
}
