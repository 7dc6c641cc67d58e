/* api_lease.c -- the native lease (api_lease.h). A leased lookup that
 * misses joins the process-wide flight table under its key: the first
 * leads and is told so in its miss answer; the others hold their
 * connection and wait on their own loop, woken when a store of that key
 * commits (sc_lease_release) or by their timer at the lease's end, and then
 * run the ordinary lookup again, so what they answer is exactly what a
 * lookup would answer then. */
#define _GNU_SOURCE
#include "api_lease.h"

#include <stdlib.h>
#include <string.h>

#include "flight.h"

typedef struct {
    uv_timer_t timer; /* the lease's end; data = this */
    sc_worker_t *w;
    sc_conn_t *c; /* held */
    sc_request_t req;
    sc_fl_wait_t *wt; /* until detached */
    sc_lease_again_fn again;
} lease_wait_t;

static void lease_closed(uv_handle_t *h)
{
    lease_wait_t *lw = h->data;
    sc_request_free(&lw->req);
    free(lw);
}

/* The wait is over (stored, expired or failed): look up again. */
static void lease_finish(lease_wait_t *lw)
{
    sc_conn_t *c = lw->c;
    sc_fl_detach(lw->w->ctx->flight, lw->wt);
    lw->wt = NULL;
    uv_timer_stop(&lw->timer);
    sc_request_t req = lw->req;
    memset(&lw->req, 0, sizeof(lw->req));
    uv_close((uv_handle_t *)&lw->timer, lease_closed);
    lw->again(lw->w, c, &req); /* answers, or holds 'c' itself */
    sc_request_free(&req);
    sc_conn_release(c);
}

static void lease_wake(void *arg)
{
    lease_wait_t *lw = arg;
    sc_fl_view_t v;
    if (!lw->wt)
        return;
    int rc = sc_fl_read(lw->wt, &v, NULL, NULL);
    if (!rc && v.state == SC_FL_RUNNING && !(v.deadline_ms && sc_now_ms() >= v.deadline_ms))
        return; /* news of nothing that ends the wait */
    if (!rc && v.state == SC_FL_DONE)
        sc_flight_count(lw->w->ctx->flight, lw->req.ns, lw->req.ns_len, 0);
    lease_finish(lw);
}

static void lease_timer(uv_timer_t *t)
{
    lease_wait_t *lw = t->data;
    if (lw->wt)
        lease_finish(lw);
}

int sc_lease_on_miss(sc_worker_t *w, sc_conn_t *c, sc_request_t *req, sc_lease_again_fn again)
{
    sc_ctx_t *ctx = w->ctx;
    if (!ctx->flight)
        return SC_LEASE_NONE;
    lease_wait_t *lw = calloc(1, sizeof(*lw));
    if (!lw)
        return SC_LEASE_NONE;
    uint64_t deadline = sc_now_ms() + (uint64_t)ctx->cfg.lease_ms;
    sc_fl_probe_t p = {.kind = SC_FL_LEASE, .key = req->key, .scope = req->scope,
                       .deadline_ms = deadline};
    sc_fl_t *lead = NULL;
    double sim;
    int rc = sc_flight_join(ctx->flight, w, &p, lease_wake, lw, &lead, &lw->wt, &sim);
    if (rc != SC_FL_FOLLOW) {
        free(lw);
        if (rc != SC_FL_LEAD)
            return SC_LEASE_NONE;
        sc_fl_put(ctx->flight, lead); /* the lease stays until its store or its end */
        return SC_LEASE_GRANTED;
    }
    lw->w = w;
    lw->c = c;
    lw->again = again;
    lw->req = *req;
    memset(req, 0, sizeof(*req));
    sc_conn_hold(c);
    uv_timer_init(&w->loop, &lw->timer);
    lw->timer.data = lw;
    /* The leader's deadline, which the follower reads from the flight. */
    sc_fl_view_t v;
    uint64_t now = sc_now_ms(), end = deadline;
    if (sc_fl_read(lw->wt, &v, NULL, NULL) == 0 && v.deadline_ms)
        end = v.deadline_ms;
    uv_timer_start(&lw->timer, lease_timer, end > now ? end - now : 0, 0);
    return SC_LEASE_WAITING;
}

void sc_lease_release(sc_ctx_t *ctx, const uint8_t key[SC_KEY_BYTES])
{
    if (ctx->flight)
        sc_flight_release(ctx->flight, SC_FL_LEASE, key);
}
