/* proxy_stream.c -- an upstream answer on its way to the client and into
 * the cache, and a hit on its way out of it. A miss's bytes are relayed as
 * they arrive, unchanged (event boundaries included), while a recorder
 * parses the same bytes; the answer is stored only when the recorder says
 * the stream ended properly with a 2xx status and no error event (a JSON
 * answer: 2xx and an object). A hit is served in the form the request asks
 * for: the stored body verbatim, a recorded stream assembled into a body,
 * or events (recorded, or synthesized from a body) replayed with a fresh id
 * and created time and the request's model (and for Responses its echoed
 * fields), all at once or at the recorded pace. */
#define _GNU_SOURCE
#include "proxy_internal.h"
#include "savings.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- relaying and recording a miss ------------------------------------------------ */

static int is_event_stream(int status, const char *ctype)
{
    return status >= 200 && status < 300 && strncasecmp(ctype, "text/event-stream", 17) == 0;
}

void px_record_begin(px_t *px, int status, const char *ctype)
{
    const sc_config_t *cfg = &px->w->ctx->cfg;
    size_t max = (size_t)cfg->proxy_record_max_bytes;
    px_flight_head(px, status, ctype);
    if (px->inject_usage && is_event_stream(status, ctype) &&
        sc_sse_parser_create(&px->filter, max > (16u << 20) ? max : (16u << 20))) {
        px->filter = NULL; /* cannot filter: the extra usage chunk goes through */
        px_fallback(px->proxy, SC_PXF_NOMEM);
    }
    if (!px->store)
        return;
    if (!px->stream) {
        px->body_over = !(status >= 200 && status < 300); /* an error is never recorded */
        return;
    }
    if (sc_sse_rec_create(&px->rec, px->api, max, max) ||
        sc_sse_rec_set_response(px->rec, status, ctype)) {
        px_fallback(px->proxy, SC_PXF_NOMEM);
        px->store = 0;
    }
}

/* The openai SDK's include_usage chunk: empty choices and a usage object. */
static int is_usage_chunk(const sc_sse_event_t *ev)
{
    if (!memmem(ev->data.ptr, ev->data.len, "\"usage\"", 7))
        return 0;
    json_t *o = json_loadb(ev->data.ptr, ev->data.len, 0, NULL);
    json_t *ch = json_object_get(o, "choices");
    int usage = json_is_array(ch) && json_array_size(ch) == 0 &&
                json_is_object(json_object_get(o, "usage"));
    json_decref(o);
    return usage;
}

static int filter_event(void *ud, const sc_sse_event_t *ev)
{
    px_t *px = ud;
    if (is_usage_chunk(ev))
        return 0; /* asked for the cache's sake, not the client's */
    return sc_buf_append(&px->out, ev->raw.ptr, ev->raw.len);
}

static void write_out(px_t *px, const char *p, size_t n)
{
    if (!px->conn || px->gone || !n)
        return;
    if (sc_conn_stream_write(px->conn, p, n) == SC_ECLOSED)
        px_client_gone(px);
}

void px_relay(px_t *px, const char *p, size_t n)
{
    px_flight_bytes(px, p, n);
    if (px->filter) {
        sc_buf_reset(&px->out);
        if (sc_sse_parser_feed(px->filter, p, n, filter_event, px)) {
            /* An event past 16 MiB: nothing faithful can follow. */
            px->store = 0;
            px_client_gone(px);
            px_cancel(px);
        }
        write_out(px, px->out.data, px->out.len);
    } else {
        write_out(px, p, n);
    }
    if (!px->store)
        return;
    if (px->rec) {
        sc_sse_rec_feed(px->rec, p, n, sc_now_ms(), NULL, NULL); /* a failure shows in its state */
    } else if (!px->body_over) {
        if (px->body.len + n > (size_t)px->w->ctx->cfg.proxy_record_max_bytes) {
            px->body_over = 1;
            px_fallback(px->proxy, SC_PXF_TOO_LARGE);
        } else if (sc_buf_append(&px->body, p, n)) {
            px->body_over = 1;
            px_fallback(px->proxy, SC_PXF_NOMEM);
        }
    }
}

void px_record_end(px_t *px)
{
    px_flight_ended(px);
    if (!px->store)
        return;
    sc_proxy_entry_t e;
    sc_buf_t json = {0};
    int rc;
    if (px->rec) {
        sc_sse_rec_state_t st;
        sc_sse_rec_state(px->rec, &st);
        if (st.gave_up)
            px_fallback(px->proxy, SC_PXF_TOO_LARGE);
        if (!st.storable)
            return;
        rc = sc_proxy_entry_from_rec(&e, px->rec);
    } else {
        if (px->body_over)
            return;
        const char *ctype = sc_http_call_header(&px->call, "content-type");
        rc = sc_proxy_entry_from_body(&e, px->api, (int)px->call.status, ctype ? ctype : SC_JSON_CT,
                                      px->body.data ? px->body.data : "", px->body.len);
    }
    if (rc)
        return;
    rc = sc_proxy_entry_encode(&e, &json);
    sc_sse_usage_t usage = e.usage;
    sc_proxy_entry_free(&e);
    if (rc == 0) {
        px_observe_settle(px, &json); /* a near miss's candidate meets the fresh answer */
        px_flight_done(px, &json);
        px_store(px, &json, &usage);
    }
    sc_buf_free(&json);
}

/* ---- serving a hit ---------------------------------------------------------------------- */

/* Writes every event due by now; schedules the next, or ends. */
static void replay_tick(uv_timer_t *t)
{
    px_t *px = t->data;
    uint64_t elapsed = sc_now_ms() - px->replay_t0_ms;
    sc_buf_t b = {0};
    while (px->next_ev < px->entry.n_events && px->entry.events[px->next_ev].offset_ms <= elapsed)
        sc_proxy_replay_event(&px->rp, &px->entry.events[px->next_ev++], &px->entry.usage, &b);
    write_out(px, b.data, b.len);
    sc_buf_free(&b);
    if (px->gone || px->next_ev >= px->entry.n_events) {
        px_end_stream(px);
        return;
    }
    uv_timer_start(&px->timer, replay_tick, px->entry.events[px->next_ev].offset_ms - elapsed, 0);
}

static void replay_gone(sc_conn_t *c, void *arg, int why)
{
    px_t *px = arg;
    (void)c;
    (void)why;
    px->gone = 1;
    uv_timer_stop(&px->timer);
    px_end_stream(px);
}

/* A streamed hit: 'e' (a STREAM entry, taken over) replayed. */
static int serve_stream(px_t *px, sc_proxy_entry_t *e, const char *headers)
{
    const sc_config_t *cfg = &px->w->ctx->cfg;
    const char *model = px->has_req ? px->req.model : NULL;
    size_t model_len = px->has_req ? px->req.model_len : 0;
    int rc = sc_proxy_replay_init(&px->rp, px->api, &px->w->rng, sc_now_ms() / 1000, model,
                                  model_len, px->include_usage);
    if (!rc && px->http)
        rc = sc_proxy_replay_echo(&px->rp, px->http->body.ptr, px->http->body.len);
    if (rc)
        return rc;
    char ctype[128] = "text/event-stream; charset=utf-8";
    if (e->content_type.len && e->content_type.len < sizeof(ctype)) {
        memcpy(ctype, e->content_type.ptr, e->content_type.len);
        ctype[e->content_type.len] = '\0';
    }
    px->entry = *e;
    memset(e, 0, sizeof(*e));
    if (cfg->stream_replay_pace == 0 || px->entry.n_events < 2) {
        sc_buf_t b = {0};
        for (size_t i = 0; i < px->entry.n_events && !rc; i++)
            rc = sc_proxy_replay_event(&px->rp, &px->entry.events[i], &px->entry.usage, &b);
        if (!rc)
            px_respond(px, px->entry.status, ctype, headers, b.data ? b.data : "", b.len);
        sc_buf_free(&b);
        if (!rc)
            px_free(px);
        return rc;
    }
    sc_conn_stream_begin(px->conn, px->entry.status, ctype, headers);
    px_hold(px);
    px->replay_t0_ms = sc_now_ms();
    sc_conn_on_gone(px->conn, replay_gone, px);
    if (sc_conn_gone(px->conn)) {
        replay_gone(px->conn, px, sc_conn_gone(px->conn));
        return 0;
    }
    replay_tick(&px->timer);
    return 0;
}

/* A Responses body echoes request fields the key leaves out (they never
 * change the answer): the stored body gets this request's values, or their
 * defaults when it sent none, so no client sees another's. The body is
 * re-encoded only when a value differs. */
static int responses_echo(const px_t *px, sc_buf_t *body)
{
    static const char *const echoed[] = SC_PROXY_ECHOED;
    json_t *req = px->http ? json_loadb(px->http->body.ptr, px->http->body.len, 0, NULL) : NULL;
    json_t *b = json_loadb(body->data ? body->data : "", body->len, 0, NULL);
    int changed = 0, rc = 0;
    for (size_t i = 0; i < sizeof(echoed) / sizeof(echoed[0]) && json_is_object(b); i++) {
        json_t *want = json_object_get(req, echoed[i]), *have = json_object_get(b, echoed[i]);
        if (!have ||
            (want ? json_equal(want, have)
                  : json_is_null(have) || (json_is_object(have) && !json_object_size(have))))
            continue; /* absent from the answer, or already what this request implies */
        json_object_set_new(b, echoed[i],
                            want                                 ? json_incref(want)
                            : strcmp(echoed[i], "metadata") == 0 ? json_object()
                                                                 : json_null());
        changed = 1;
    }
    if (changed) {
        sc_buf_reset(body);
        rc = sc_api_dump_compact(b, body);
    }
    json_decref(req);
    json_decref(b);
    return rc;
}

int px_serve_hit(px_t *px, sc_lookup_out_t *out)
{
    sc_proxy_entry_t e, synth;
    sc_buf_t h = {0}, body = {0};
    if (!out->response.data || sc_proxy_entry_decode(&e, out->response.data, out->response.len))
        return SC_ECORRUPT;
    int rc = e.api == px->api ? 0 : SC_ECORRUPT;
    if (!rc) {
        px_cache_headers(px, &h, out);
        /* As px_store counted it: Anthropic's cache reads were prompt too. */
        int64_t in = e.usage.input + (e.api == SC_API_ANTHROPIC_MESSAGES && e.usage.cached_input > 0
                                          ? e.usage.cached_input
                                          : 0);
        uint64_t pin = e.usage.input >= 0 && in > 0 ? (uint64_t)in : 0;
        uint64_t pout = e.usage.output > 0 ? (uint64_t)e.usage.output : 0;
        sc_savings_header(px->w->ctx, px->req.model, px->req.model_len, pin, pout, &h);
        /* A lookup counted what its hit saved; a request answered from a
         * concurrent one's entry (single flight) saved a call too. */
        if (px->coalesced)
            sc_savings_hit(px->w, px->req.ns, px->req.ns_len, px->req.model, px->req.model_len,
                           pin, pout);
    }
    if (!rc && px->stream) {
        if (e.form == SC_PROXY_FORM_JSON && (rc = sc_proxy_synthesize(&e, &synth)) == 0) {
            sc_proxy_entry_free(&e);
            e = synth;
        }
        if (!rc)
            rc = serve_stream(px, &e, h.data);
    } else if (!rc) {
        if (e.form == SC_PROXY_FORM_STREAM)
            rc = sc_proxy_assemble(&e, &body);
        else
            rc = sc_buf_append(&body, e.body.ptr, e.body.len);
        if (!rc && px->api == SC_API_OPENAI_RESPONSES)
            rc = responses_echo(px, &body);
        if (!rc) {
            px_respond(px, e.status, SC_JSON_CT, h.data, body.data ? body.data : "", body.len);
            px_free(px);
        }
    }
    sc_proxy_entry_free(&e);
    sc_buf_free(&h);
    sc_buf_free(&body);
    return rc ? SC_ECORRUPT : 0;
}

/* ---- the body a recorded chat stream is asked with ----------------------------------- */

int px_usage_body(const char *body, size_t len, sc_buf_t *out)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return SC_EINVAL;
    }
    json_t *so = json_object_get(root, "stream_options");
    if (!json_is_object(so)) {
        so = json_object();
        json_object_set_new(root, "stream_options", so);
    }
    int rc = json_object_set_new(so, "include_usage", json_true()) ? SC_ENOMEM
                                                                   : sc_api_dump_compact(root, out);
    json_decref(root);
    return rc;
}
