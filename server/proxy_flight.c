/* proxy_flight.c -- single-flight misses for the proxy. A cacheable miss
 * joins the process-wide flight table (flight.h): the first of identical
 * requests (or, with a vector, of requests within the serving threshold in
 * one scope) leads and is forwarded; the others wait on their own loop,
 * bounded by --coalesce-wait-ms. A streamed follower of a streamed leader
 * gets the bytes relayed so far and then follows the live stream; every
 * other follower is served the leader's stored entry as a hit (assembled or
 * synthesized as its form needs). A follower whose leader fails, or that
 * waited too long, is forwarded itself if nothing was sent to it yet. */
#define _GNU_SOURCE
#include "proxy_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flight.h"

/* ---- the leader's hooks ----------------------------------------------------------- */

void px_flight_head(px_t *px, int status, const char *ctype)
{
    if (px->flight)
        sc_fl_head(px->flight, status, ctype,
                   px->stream && status >= 200 && status < 300 &&
                       strncasecmp(ctype, "text/event-stream", 17) == 0);
}

void px_flight_bytes(px_t *px, const char *p, size_t n)
{
    if (px->flight)
        sc_fl_bytes(px->flight, p, n);
}

void px_flight_ended(px_t *px)
{
    if (px->flight)
        sc_fl_ended(px->flight);
}

void px_flight_done(px_t *px, const sc_buf_t *entry_json)
{
    if (px->flight && entry_json->len)
        sc_fl_done(px->flight, entry_json->data, entry_json->len);
}

/* ---- a follower ---------------------------------------------------------------------- */

/* Stops following: the wait's timer and the flight. */
static void unfollow(px_t *px)
{
    if (!px->fl_wait)
        return;
    sc_fl_detach(px->w->ctx->flight, px->fl_wait);
    px->fl_wait = NULL;
    uv_timer_stop(&px->timer);
}

void px_flight_leave(px_t *px)
{
    if (px->flight) {
        sc_fl_leave(px->w->ctx->flight, px->flight);
        px->flight = NULL;
    }
    unfollow(px);
}

/* Nothing was sent: the follower calls upstream itself, as the miss it is. */
static void go_alone(px_t *px)
{
    unfollow(px);
    px->coalesced = 0;
    px->result = SC_PXR_MISS;
    px->store = 1;
    px_forward_request(px);
}

/* What a follower's answer says about itself (X-Cache: HIT). */
static void follower_hit(const px_t *px, const sc_fl_view_t *v, sc_lookup_out_t *o)
{
    memset(o, 0, sizeof(*o));
    int exact = memcmp(v->key, px->req.key, SC_KEY_BYTES) == 0;
    o->result = exact ? SC_LR_EXACT_HIT : SC_LR_SEMANTIC_HIT;
    memcpy(o->key, v->key, SC_KEY_BYTES);
    o->similarity = exact ? 1.0 : px->fl_similarity;
    o->created_ms = sc_now_ms();
}

static void count(px_t *px, const sc_fl_view_t *v)
{
    sc_flight_count(px->w->ctx->flight, px->req.ns, px->req.ns_len,
                    memcmp(v->key, px->req.key, SC_KEY_BYTES) != 0);
}

/* The leader's stream head: ours goes out with the same status and type. */
static void begin_live(px_t *px, const sc_fl_view_t *v)
{
    sc_lookup_out_t o;
    sc_buf_t h = {0};
    follower_hit(px, v, &o);
    px->result = SC_PXR_HIT;
    px->coalesced = 1;
    px_cache_headers(px, &h, &o);
    uv_timer_stop(&px->timer); /* following now: the leader's own timeouts bound it */
    sc_conn_stream_begin(px->conn, v->status, v->ctype, h.data);
    sc_buf_free(&h);
    px->begun = 1;
    /* The leader asked upstream for usage (for the cache); a chat client
     * that did not ask gets it filtered out, as its leader's client does. */
    px->inject_usage = px->api == SC_API_OPENAI_CHAT && !px->include_usage;
    px_record_begin(px, v->status, v->ctype); /* store is 0: only the filter */
}

/* Serves the leader's entry as a hit; 0, or -1 when it cannot (nothing
 * was sent). */
static int serve_entry(px_t *px, const sc_fl_view_t *v, sc_buf_t *entry)
{
    sc_lookup_out_t o;
    follower_hit(px, v, &o);
    o.response = *entry; /* borrowed */
    px->result = SC_PXR_HIT;
    px->coalesced = 1;
    sc_flight_t *t = px->w->ctx->flight;
    char ns[SC_MAX_NAMESPACE];
    size_t ns_len = px->req.ns_len < sizeof(ns) ? px->req.ns_len : sizeof(ns);
    memcpy(ns, px->req.ns, ns_len);
    /* Served like a lookup's hit, so sampled like one (validated, counted
     * against the namespace's validation budget). */
    if (sc_cache_sample_hit(px->w, &px->req, o.key, o.result == SC_LR_SEMANTIC_HIT, o.similarity,
                            entry->data ? entry->data : "", entry->len, o.validation_id) == 1)
        px_validate_hit(px, &o);
    if (px_serve_hit(px, &o) == 0) { /* answered, px freed */
        sc_flight_count(t, ns, ns_len, o.result == SC_LR_SEMANTIC_HIT);
        return 0;
    }
    return -1;
}

static void follow_wake(void *arg)
{
    px_t *px = arg;
    sc_fl_view_t v;
    sc_buf_t bytes = {0}, entry = {0};
    if (!px->fl_wait)
        return;
    /* A Responses stream echoes its request's user and metadata: followers
     * get the stored entry, with their own (px_serve_hit), not the live bytes. */
    int live = px->stream && px->api != SC_API_OPENAI_RESPONSES;
    int rc = sc_fl_read(px->fl_wait, &v, live ? &bytes : NULL, &entry);
    if (rc)
        v.state = SC_FL_FAILED; /* out of memory: as if the leader failed */
    if (!rc && live && !px->begun && v.head && v.live && v.state != SC_FL_FAILED)
        begin_live(px, &v);
    if (px->begun && bytes.len)
        px_relay(px, bytes.data, bytes.len);
    sc_buf_free(&bytes);
    /* Running, or ended with its entry still to come (the leader records
     * it right after its stream ends): a follower that has not begun waits. */
    int waiting = v.state == SC_FL_RUNNING || (v.state == SC_FL_ENDED && !px->begun);
    if (waiting && !(px->begun && !v.live)) {
        sc_buf_free(&entry);
        return;
    }
    unfollow(px);
    if (px->begun) { /* it ends as the leader's stream did */
        if ((v.state == SC_FL_DONE || v.state == SC_FL_ENDED) && v.live) {
            count(px, &v);
            px_end_stream(px);
        } else {
            if (px->conn)
                sc_conn_stream_abort(px->conn);
            px_release(px);
            px_free(px);
        }
    } else if (v.state != SC_FL_DONE || serve_entry(px, &v, &entry)) {
        go_alone(px);
    }
    sc_buf_free(&entry);
}

/* --coalesce-wait-ms passed with nothing sent: on our own. */
static void follow_timeout(uv_timer_t *t)
{
    px_t *px = t->data;
    if (px->fl_wait && !px->begun)
        go_alone(px);
}

static void follow_gone(sc_conn_t *c, void *arg, int why)
{
    px_t *px = arg;
    (void)c;
    (void)why;
    px->gone = 1;
    unfollow(px);
    if (px->begun) {
        px_end_stream(px);
        return;
    }
    px_release(px);
    px_free(px);
}

/* A leader whose identical predecessor finished between this request's
 * lookup and its join (that one committed, then left the table) finds the
 * entry by the lookup's own exact step: it answers from it, as that lookup
 * would have, and hands it to any followers that joined it meanwhile. 1
 * when answered. */
static int lead_from_store(px_t *px)
{
    sc_lookup_out_t o;
    if (!sc_cache_exact_probe(px->w, &px->req, &o))
        return 0;
    px_flight_done(px, &o.response);
    px->result = SC_PXR_HIT;
    px->store = 0;
    px_validate_hit(px, &o);
    int rc = px_serve_hit(px, &o); /* 0: answered, px freed */
    sc_buf_free(&o.response);
    return rc == 0;
}

int px_flight_join(px_t *px, const sc_lookup_out_t *out)
{
    sc_ctx_t *ctx = px->w->ctx;
    if (!ctx->flight || ctx->cfg.coalesce_wait_ms <= 0 || !px->has_req || !px->conn)
        return 0;
    sc_fl_probe_t p = {
        .kind = SC_FL_PROXY,
        .key = px->req.key,
        .scope = px->req.scope,
        .vec = out->threshold < 1.0 ? px->req.vec : NULL, /* > 1: a budget with no cut yet */
        .dim = px->req.dim,
        .threshold = out->threshold,
    };
    sc_fl_t *lead = NULL;
    sc_fl_wait_t *wt = NULL;
    double sim = 0;
    int rc = sc_flight_join(ctx->flight, px->w, &p, follow_wake, px, &lead, &wt, &sim);
    if (rc == SC_FL_LEAD) {
        px->flight = lead;
        return lead_from_store(px);
    }
    if (rc != SC_FL_FOLLOW)
        return 0;
    px->fl_wait = wt;
    px->fl_similarity = sim;
    px->store = 0; /* the leader stores */
    px_hold(px);
    uv_timer_start(&px->timer, follow_timeout, (uint64_t)ctx->cfg.coalesce_wait_ms, 0);
    sc_conn_on_gone(px->conn, follow_gone, px);
    if (sc_conn_gone(px->conn))
        follow_gone(px->conn, px, sc_conn_gone(px->conn));
    return 1;
}
