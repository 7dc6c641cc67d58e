/* fleet_read.c -- the reader: follows the fleet's stream with XREAD BLOCK from
 * the last ID read (not a consumer group: every node needs every record)
 * and hands each reply to the writer as one SC_OP_FLEET_APPLY batch, which
 * the store applies only on top of the ID it was read after. Up to
 * FLEET_APPLY_INFLIGHT batches wait at the writer while the next XREAD is
 * out; if one fails, those after it are refused by the store and reading
 * resumes from the ID last applied. Entries that are not well-formed
 * records (another program's, another version's) are skipped and counted:
 * they never stop replication. Own records are skipped here. */
#define _GNU_SOURCE
#include "fleet_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "sc_fleet_record.h"

void sc__fleet_batch_free(fleet_batch_t *b)
{
    sc_write_op_clear(&b->op);
    free(b);
}

void sc__fleet_batch_done(sc_write_op_t *op)
{
    fleet_batch_t *b = (fleet_batch_t *)op; /* op is the first member */
    sc_fleet_t *f = b->f;
    b->next = NULL;
    pthread_mutex_lock(&f->mu);
    if (f->done_tail)
        f->done_tail->next = b;
    else
        f->done_head = b;
    f->done_tail = b;
    if (f->running)
        uv_async_send(&f->wake);
    pthread_mutex_unlock(&f->mu);
}

/* A new batch read in this generation (NULL when out of memory). */
static fleet_batch_t *batch_new(sc_fleet_t *f)
{
    fleet_batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->f = f;
    b->gen = f->gen;
    b->op.type = SC_OP_FLEET_APPLY;
    b->op.done = sc__fleet_batch_done;
    return b;
}

static void id_to_key(uint8_t out[16], const sc_stream_id_t *id)
{
    put_be64(out, id->ms);
    put_be64(out + 8, id->seq);
}

static void mark_ready(sc_fleet_t *f, const char *how)
{
    if (atomic_load(&f->ready))
        return;
    atomic_store(&f->ready, 1);
    char pos[48];
    sc__fleet_id_format(&f->read_id, pos);
    sc_log(f->log, SC_INFO, "fleet: caught up at %s (%s); ready", pos, how);
}

/* Gives 'b' to the writer; a full queue keeps it in f->held for the tick. */
static int submit(sc_fleet_t *f, fleet_batch_t *b)
{
    f->submitted_ms = sc__fleet_mono_ms();
    int rc = sc_store_submit(f->store, &b->op);
    if (rc == SC_EBUSY) {
        f->held = b;
        return 0;
    }
    f->held = NULL;
    if (rc) {
        sc__fleet_batch_free(b);
        return rc;
    }
    f->apply_inflight++;
    f->inflight_records += b->records;
    return 0;
}

static void malformed(sc_fleet_t *f, const char *id, const char *why)
{
    atomic_fetch_add(&f->malformed, 1);
    uint64_t now = sc_now_ms();
    if (now >= f->last_malformed_log_ms + 60000) {
        f->last_malformed_log_ms = now;
        sc_log(f->log, SC_WARN,
               "fleet: skipped stream entry %s: %s (counted in "
               "fleet.malformed; said once a minute)",
               id, why);
    }
}

/* Adds stream entry 'e' ([id, [field, value, ...]]) to 'b'. 0, or -1 when
 * the entry has no usable ID (the reply is not a stream's). */
static int add_entry(sc_fleet_t *f, fleet_batch_t *b, const redisReply *e, sc_stream_id_t *last)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        sc__fleet_id_parse(e->element[0]->str, e->element[0]->len, last))
        return -1;
    const char *id = e->element[0]->str;
    const redisReply *fields = e->element[1];
    atomic_fetch_add(&f->read, 1);
    if (fields->type != REDIS_REPLY_ARRAY || fields->elements != 2 ||
        fields->element[0]->type != REDIS_REPLY_STRING ||
        fields->element[1]->type != REDIS_REPLY_STRING || fields->element[0]->len != 1 ||
        fields->element[0]->str[0] != 'r') {
        malformed(f, id, "not a semcached record (one field \"r\")");
        return 0;
    }
    const redisReply *v = fields->element[1];
    sc_frec_t r;
    sc_entry_t entry;
    if (sc_frec_decode(v->str, v->len, &r) ||
        (r.type == SC_FREC_PUT &&
         (sc_store_decode(r.payload.ptr, r.payload.len, &entry) || entry.dim > SC_FREC_MAX_DIM))) {
        malformed(f, id, "a damaged record, or one of another version");
        return 0;
    }
    if (r.origin == sc_store_fleet_node(f->store)) {
        atomic_fetch_add(&f->own, 1); /* applied when it was made */
        return 0;
    }
    if (sc_store_fleet_batch_add(&b->op.record, v->str, v->len))
        return -1;
    b->records++;
    return 0;
}

/* After a batch read from 'pos' on: trimming takes records from the head of
 * the stream only, so while the record at 'pos' is still there, nothing
 * after it was lost when the XREAD ran. When it is gone the batch may have
 * skipped trimmed records (a node frozen or cut off for longer than the
 * retention): the node is flagged for a resync. Conservative: a record at
 * 'pos' trimmed just after the XREAD flags it too. The batch is applied
 * either way (newer records, newest timestamp wins). */
static void on_gap_check(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    sc_fleet_t *f = c->f;
    redisReply *r = reply;
    sc__fleet_answered(c);
    if (!r || (uint64_t)(uintptr_t)priv != f->gen || r->type != REDIS_REPLY_ARRAY || r->elements)
        return;
    sc__fleet_flag_trimmed(f, &f->checked_id, NULL);
}

static void check_gap(sc_fleet_t *f, const sc_stream_id_t *pos)
{
    if (!pos->ms && !pos->seq)
        return; /* from the start: the start-up bootstrap checked */
    char id[48];
    sc__fleet_id_format(pos, id);
    f->checked_id = *pos;
    const char *argv[4] = {"XRANGE", f->stream_key, id, id};
    sc__fleet_command(&f->rd, on_gap_check, (void *)(uintptr_t)f->gen, 4, argv, NULL);
}

static void on_xread(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    sc_fleet_t *f = c->f;
    redisReply *r = reply;
    sc__fleet_answered(c);
    if (!r)
        return; /* the connection is going */
    f->xread_pending = 0;
    if ((uint64_t)(uintptr_t)priv != f->gen || f->resync || f->stopping)
        return; /* read before a failure or a reconnect: read again */
    if (r->type == REDIS_REPLY_ERROR) {
        sc_log(f->log, SC_ERROR, "fleet: XREAD on %s refused: %s", f->stream_key, r->str);
        f->read_retry_at_ms = sc__fleet_mono_ms() + 1000;
        return;
    }
    const redisReply *entries = NULL;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        entries = r->element[0]->element[1];
    if (!entries || entries->type != REDIS_REPLY_ARRAY || !entries->elements) {
        /* BLOCK timed out: nothing after this node's position. */
        f->at_end = 1;
        if (!f->apply_inflight) {
            atomic_store(&f->lag_ms, 0);
            mark_ready(f, "stream read to its end");
        }
        sc__fleet_read_pump(f);
        return;
    }
    fleet_batch_t *b = batch_new(f);
    if (!b)
        return;
    sc_stream_id_t last = f->read_id;
    for (size_t i = 0; i < entries->elements; i++) {
        if (add_entry(f, b, entries->element[i], &last)) {
            sc_log(f->log, SC_ERROR, "fleet: XREAD answered with something not a stream");
            sc__fleet_batch_free(b);
            f->read_retry_at_ms = sc__fleet_mono_ms() + 1000;
            return;
        }
    }
    b->at_end = entries->elements < FLEET_READ_COUNT;
    f->at_end = b->at_end;
    if (!atomic_load(&f->resync_needed))
        check_gap(f, &f->read_id);
    f->read_id = last;
    atomic_store(&f->read_ms, last.ms);
    atomic_store(&f->read_seq, last.seq);
    /* Only this node's own records: no writer transaction (on a node that
     * mostly stores, one per XREAD doubled its commits); the next batch, or
     * the heartbeat, records the position. Re-reading them after a crash
     * skips them again. */
    if (!b->records && !b->at_end && sc__fleet_mono_ms() < f->submitted_ms + FLEET_HEARTBEAT_MS) {
        sc__fleet_batch_free(b);
        sc__fleet_read_pump(f);
        return;
    }
    id_to_key(b->op.key2, &f->submitted_id);
    id_to_key(b->op.key, &last);
    f->submitted_id = last;
    if (submit(f, b))
        f->resync = 1; /* the store is closing */
    sc__fleet_read_pump(f);
}

void sc__fleet_read_pump(sc_fleet_t *f)
{
    if (f->held && submit(f, f->held))
        f->resync = 1;
    if (f->held || f->closing || f->stopping || f->rd.state != CONN_READY || f->xread_pending ||
        f->resync || f->apply_inflight >= FLEET_APPLY_INFLIGHT ||
        sc__fleet_mono_ms() < f->read_retry_at_ms)
        return;
    char id[48], count[16], block[16];
    sc__fleet_id_format(&f->read_id, id);
    snprintf(count, sizeof(count), "%d", FLEET_READ_COUNT);
    snprintf(block, sizeof(block), "%d", FLEET_BLOCK_MS);
    const char *argv[8] = {"XREAD", "COUNT", count, "BLOCK", block, "STREAMS", f->stream_key, id};
    if (sc__fleet_command(&f->rd, on_xread, (void *)(uintptr_t)f->gen, 8, argv, NULL) == 0)
        f->xread_pending = 1;
}

void sc__fleet_read_settle(sc_fleet_t *f)
{
    if (f->held || f->resync || sc__fleet_id_cmp(&f->submitted_id, &f->read_id) == 0 ||
        sc__fleet_mono_ms() < f->submitted_ms + FLEET_HEARTBEAT_MS)
        return;
    fleet_batch_t *b = batch_new(f);
    if (!b)
        return;
    id_to_key(b->op.key2, &f->submitted_id);
    id_to_key(b->op.key, &f->read_id);
    f->submitted_id = f->read_id;
    if (submit(f, b))
        f->resync = 1;
}

void sc__fleet_read_reset(sc_fleet_t *f)
{
    f->xread_pending = 0;
    f->gen++; /* answers to XREADs of the old connection are dropped */
}

/* The lag of each record of 'b' (apply commit time minus the time it was
 * made, both wall clocks): the histogram, and the newest one's as the gauge. */
static void account_lag(sc_fleet_t *f, const fleet_batch_t *b)
{
    uint64_t now = sc_now_ms(), newest = 0;
    const uint8_t *p = (const uint8_t *)b->op.record.data, *end = p + b->op.record.len;
    while (end - p >= 4 + SC_FREC_HEADER) {
        uint32_t n = get_le32(p);
        uint64_t ms = SC_HLC_MS(get_le64(p + 4 + 16));
        uint64_t lag = now > ms ? now - ms : 0;
        sc__fleet_lag_add(f, lag);
        newest = lag;
        p += 4 + (size_t)n;
    }
    if (b->records)
        atomic_store(&f->lag_ms, newest);
    if (b->records && newest <= (uint64_t)f->cfg.fleet_max_lag_ms)
        mark_ready(f, "within --fleet-max-lag-ms");
}

void sc__fleet_read_done(sc_fleet_t *f, fleet_batch_t *list)
{
    for (fleet_batch_t *b = list, *next; b; b = next) {
        next = b->next;
        f->apply_inflight--;
        f->inflight_records -= b->records;
        if (b->gen != f->gen && b->op.result == SC_ECONFLICT) {
            sc__fleet_batch_free(b); /* after a failed batch: expected */
            continue;
        }
        if (b->op.result) {
            sc_log(f->log, b->op.result == SC_ECONFLICT ? SC_WARN : SC_ERROR,
                   "fleet: applying a batch failed: %s; re-reading from the last applied ID",
                   sc_strerror(b->op.result));
            f->resync = 1;
            f->gen++;
            sc__fleet_batch_free(b);
            continue;
        }
        atomic_fetch_add(&f->batches, 1);
        account_lag(f, b);
        if (b->at_end && !f->apply_inflight)
            mark_ready(f, "stream read to its end");
        sc__fleet_batch_free(b);
    }
    if (f->resync && !f->apply_inflight && !f->held) {
        sc_store_fleet_applied(f->store, &f->read_id);
        f->submitted_id = f->read_id;
        atomic_store(&f->read_ms, f->read_id.ms);
        atomic_store(&f->read_seq, f->read_id.seq);
        f->resync = 0;
        f->at_end = 0;
        f->xread_pending = 0;
        f->gen++;
    }
    sc__fleet_read_pump(f);
}
