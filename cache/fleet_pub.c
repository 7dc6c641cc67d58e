/* fleet_pub.c -- the publisher: moves the outbox to the fleet's stream. Up to
 * FLEET_PUB_WINDOW XADDs are in flight on one connection, so Redis answers
 * them in order; the outbox records up to the last one Redis acknowledged
 * are then removed through the writer (SC_OP_FLEET_ACK). After a refusal
 * nothing later is acknowledged and the window restarts from the last
 * acknowledged record a second later: a record may reach the stream twice
 * (peers count it as a duplicate), never not at all. Loop thread only. */
#define _GNU_SOURCE
#include "fleet_internal.h"

#include <stdlib.h>
#include <string.h>

/* Removes the acknowledged records from the outbox, in chunks (one writer
 * op per FLEET_ACK_EVERY records, or when the window drains). */
static void maybe_ack(sc_fleet_t *f)
{
    if (f->acked_upto <= f->ack_submitted ||
        (f->pub_inflight && f->acked_upto - f->ack_submitted < FLEET_ACK_EVERY))
        return;
    sc_write_op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return;
    op->type = SC_OP_FLEET_ACK;
    op->count = f->acked_upto;
    op->done = sc_write_op_free; /* nobody waits: a lost ack republishes */
    if (sc_store_submit(f->store, op)) {
        free(op);
        return;
    }
    f->ack_submitted = f->acked_upto;
}

static void on_xadd(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    sc_fleet_t *f = c->f;
    redisReply *r = reply;
    uint64_t seq = (uint64_t)(uintptr_t)priv;
    sc__fleet_answered(c);
    if (!r)
        return; /* the connection is going: pub_down resets the window */
    f->pub_inflight--;
    if (r->type == REDIS_REPLY_ERROR) {
        atomic_fetch_add(&f->publish_errors, 1);
        if (!f->pub_failed)
            sc_log(f->log, SC_ERROR, "fleet: Redis refused a record: %s; retrying", r->str);
        f->pub_failed = 1;
    } else if (!f->pub_failed && seq > f->acked_upto) {
        f->acked_upto = seq;
        atomic_fetch_add(&f->published, 1);
    }
    if (f->pub_failed && !f->pub_inflight) {
        f->sent_upto = f->acked_upto;
        f->pub_failed = 0;
        f->pub_retry_at_ms = sc__fleet_mono_ms() + 1000;
    }
    maybe_ack(f);
    sc__fleet_pub_pump(f);
}

static int send_one(void *ctx, uint64_t seq, const void *rec, size_t len)
{
    sc_fleet_t *f = ctx;
    const char *argv[8];
    size_t lens[8];
    char trim[32];
    int argc = sc__fleet_xadd_args(&f->cfg, f->stream_key, rec, len, trim, argv, lens);
    if (sc__fleet_command(&f->pub, on_xadd, (void *)(uintptr_t)seq, argc, argv, lens))
        return 1;
    f->sent_upto = seq;
    f->pub_inflight++;
    return 0;
}

void sc__fleet_pub_pump(sc_fleet_t *f)
{
    if (f->closing || f->pub.state != CONN_READY || f->pub_failed ||
        sc__fleet_mono_ms() < f->pub_retry_at_ms)
        return;
    int room = FLEET_PUB_WINDOW - f->pub_inflight;
    if (room > 0)
        sc_store_fleet_outbox_read(f->store, f->sent_upto, (size_t)room, send_one, f);
    maybe_ack(f);
}

void sc__fleet_pub_reset(sc_fleet_t *f)
{
    f->sent_upto = f->acked_upto;
    f->pub_inflight = 0;
    f->pub_failed = 0;
}

static int any(void *ctx, uint64_t seq, const void *rec, size_t len)
{
    (void)seq;
    (void)rec;
    (void)len;
    *(int *)ctx = 1;
    return 1;
}

int sc__fleet_pub_busy(sc_fleet_t *f)
{
    int more = 0;
    if (f->pub_inflight || f->acked_upto > f->ack_submitted)
        return 1;
    sc_store_fleet_outbox_read(f->store, f->acked_upto, 1, any, &more);
    return more;
}
