/* store_writer.c -- the writer thread: every write goes through its queue.
 * Writes are group-committed: the writer drains up to --writer-batch queued
 * operations into one transaction, so one fsync acknowledges many stores.
 * Hit counts are buffered in an open-addressing table (sc_store_touch never
 * blocks) and applied every --hit-flush-ms, coalesced per key; with no store
 * waiting, a flush is one transaction applied in paced runs (PACE_RUN_NS),
 * so the writer never holds a core the event loops need for long. Between
 * batches the writer runs its timers: the TTL sweep (store_evict.c), in
 * slices, and the periodic fsync of --sync periodic. */
#define _GNU_SOURCE
#include "store_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t mono_ms(void)
{
    return sc_mono_ns() / 1000000u;
}

/* ---- hit counts ----------------------------------------------------------- */

uint32_t sc_store_touch(sc_store_t *s, const uint8_t key[SC_KEY_BYTES], uint64_t now_ms)
{
    /* Keys are hashes already: their first 8 bytes make a good slot index. */
    uint64_t h;
    memcpy(&h, key, 8);
    size_t mask = s->touch_cap - 1;
    uint32_t unwritten = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = (size_t)h & mask, probes = 0; probes < 64; i = (i + 1) & mask, probes++) {
        touch_t *t = &s->touches[i];
        if (!t->count) {
            /* Keep the table at most 3/4 full so probe runs stay short. */
            if (s->n_touches >= s->touch_cap / 4 * 3)
                break;
            memcpy(t->key, key, SC_KEY_BYTES);
            t->ts = now_ms;
            t->count = 1;
            s->n_touches++;
            unwritten = 1;
            break;
        }
        if (memcmp(t->key, key, SC_KEY_BYTES) == 0) {
            unwritten = ++t->count;
            if (now_ms > t->ts)
                t->ts = now_ms;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (!unwritten)
        atomic_fetch_add_explicit(&s->touches_dropped, 1, memory_order_relaxed);
    return unwritten;
}

/* Makes the live table the one being drained and gives the (empty) spare
 * table to sc_store_touch. Caller holds 'mu'; nothing may be draining. */
static void start_draining(sc_store_t *s)
{
    s->draining = s->touches;
    s->drain_pos = 0;
    s->touches = s->touches_spare;
    s->touches_spare = s->draining;
    s->n_touches = 0;
}

/* A flush with no store waiting applies its counts in runs of at most
 * PACE_RUN_NS, each followed by a pause of PACE_PAUSE_NS (cut short when a
 * write is queued, after which the rest goes at full speed). After a burst of
 * new entries the hot entries' meta rows are spread over every leaf of a
 * grown table: one flush of 10,000 hot keys over 50,000 entries took the
 * writer 52-78 ms of CPU and rewrote 8-26 MB (17-29 ms and 1.8 MB before the
 * burst), one long stretch on one of the two cores both event loops need. */
#define PACE_RUN_NS 1000000ull
#define PACE_PAUSE_NS 2000000ull

static void deadline_after_ns(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ns / 1000000000u);
    ts->tv_nsec += (long)(ns % 1000000000u);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Pauses the paced flush; 0 if a write or a stop is waiting (stop pacing). */
static int pace_pause(sc_store_t *s, uint64_t *paused_ns)
{
    uint64_t t0 = sc_mono_ns();
    pthread_mutex_lock(&s->mu);
    if (!s->head && !s->stopping) {
        struct timespec ts;
        deadline_after_ns(&ts, PACE_PAUSE_NS);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts); /* sc_store_submit signals */
    }
    int keep_pacing = !s->head && !s->stopping;
    pthread_mutex_unlock(&s->mu);
    *paused_ns += sc_mono_ns() - t0;
    return keep_pacing;
}

/* Applies every hit count not applied yet (the rest of the table being
 * drained, then the live one) inside 'txn'. 'paused_ns' NULL: at once;
 * otherwise paced, the time spent pausing added to it. */
static int flush_touches(sc_store_t *s, MDB_txn *txn, uint64_t *paused_ns)
{
    int rc = 0, paced = paused_ns != NULL;
    uint64_t run_start = sc_mono_ns();
    for (int round = 0; round < 2; round++) {
        if (s->draining) {
            for (size_t i = s->drain_pos; i < s->touch_cap; i++) {
                if (s->draining[i].count && !rc)
                    rc = sc__store_apply_touch(s, txn, &s->draining[i]);
                memset(&s->draining[i], 0, sizeof(touch_t));
                if (paced && (i & 15) == 15 && sc_mono_ns() - run_start >= PACE_RUN_NS) {
                    paced = pace_pause(s, paused_ns);
                    run_start = sc_mono_ns();
                }
            }
            s->draining = NULL;
        }
        if (round == 1)
            break;
        /* The spare table is empty now: swap the live one out. */
        pthread_mutex_lock(&s->mu);
        if (s->n_touches)
            start_draining(s);
        pthread_mutex_unlock(&s->mu);
    }
    return rc;
}

/* At once: eviction picks its victims by recency and value, and a sync op
 * promises counts are applied. Counts are expendable: if 'txn' aborts they
 * are lost. Writer thread. */
int sc__store_flush_touches(sc_store_t *s, MDB_txn *txn)
{
    return flush_touches(s, txn, NULL);
}

/* ---- one batch ------------------------------------------------------------ */

/* Completes every op of 'ops' with 'result' (0 after a commit). */
static void complete_ops(sc_store_t *s, sc_write_op_t *ops, int result)
{
    for (sc_write_op_t *op = ops, *next; op; op = next) {
        next = op->next;
        if (result)
            op->result = result;
        else
            atomic_fetch_add(&s->writes_total, 1);
        op->next = NULL;
        op->done(op);
    }
}

/* Applies 'ops' (and the pending hit 'touches') in one transaction. On
 * MDB_MAP_FULL it evicts and retries; if the batch still does not fit, each op
 * is retried alone so one oversized store cannot fail its neighbours. */
static void apply_batch(sc_store_t *s, sc_write_op_t *ops, touch_t *touches, size_t n_touches,
                        int split)
{
    int rc, attempt = 0, bumped = 0;
    MDB_txn *txn = NULL;
retry:;
    int refuse_puts = sc__store_make_room(s);
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)))
        goto fail;
    s->n_events = 0;
    sc__store_fleet_txn_reset(s);
    for (sc_write_op_t *op = ops; op; op = op->next) {
        op->result = 0;
        if ((rc = sc__store_apply_op(s, txn, op, refuse_puts)))
            break;
    }
    for (size_t i = 0; i < n_touches && !rc; i++)
        if (touches[i].count)
            rc = sc__store_apply_touch(s, txn, &touches[i]);
    uint64_t limit_evicted = 0;
    if (rc == 0)
        rc = sc__store_evict_over_entry_limit(s, txn, &limit_evicted);
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc == 0)
            atomic_fetch_add(&s->evicted_total, limit_evicted);
    }
    if (rc == MDB_MAP_FULL && !bumped) {
        if (txn)
            mdb_txn_abort(txn);
        txn = NULL;
        bumped = 1;
        if (sc__store_bump_generation(s) == 0)
            goto retry;
    }
    if (rc == MDB_MAP_FULL && s->cfg.evict != SC_EVICT_NONE && attempt < 3) {
        if (txn)
            mdb_txn_abort(txn);
        txn = NULL;
        MDB_stat st;
        mdb_env_stat(s->env, &st);
        size_t n = (size_t)(st.ms_entries / 20) + 64;
        attempt++;
        if (sc__store_evict_lru(s, n) == 0)
            goto retry;
    }
    if (rc == MDB_MAP_FULL && !split && ops && ops->next) {
        if (txn)
            mdb_txn_abort(txn);
        /* Retry one op per transaction; touches are expendable. */
        sc_write_op_t *op = ops;
        while (op) {
            sc_write_op_t *next = op->next;
            op->next = NULL;
            apply_batch(s, op, NULL, 0, 1);
            op = next;
        }
        return;
    }
    if (rc)
        goto fail;
    atomic_fetch_add(&s->commits_total, 1);
    sc__store_events_dispatch(s); /* before acknowledging: a hit must not precede its index */
    sc__store_fleet_committed(s);
    complete_ops(s, ops, 0);
    return;
fail:
    if (txn)
        mdb_txn_abort(txn);
    s->n_events = 0;
    sc__store_fleet_txn_reset(s);
    if (rc != MDB_MAP_FULL)
        sc_log(s->log, SC_ERROR, "store: write transaction failed: %s", mdb_strerror(rc));
    complete_ops(s, ops, sc__store_from_mdb(rc));
}

/* ---- the thread ----------------------------------------------------------- */

/* The writer's timers and its slice of hit counts, on its own stack. */
typedef struct {
    uint64_t next_sweep, next_sync; /* monotonic ms */
    uint64_t touches_since_ms;      /* when unflushed hit counts started waiting; 0 = none */
    uint64_t sweep_started_ms;      /* the sweep under way removes what expired by then */
    touch_t slice[TOUCH_SLICE];     /* hit counts applied beside this pass's stores */
} writer_t;

/* Sleeps until there is work or a timer is due. Caller holds 'mu'. */
static void wait_for_work(sc_store_t *s, writer_t *w)
{
    while (!s->head && !s->stopping && !s->draining) {
        uint64_t now = mono_ms();
        if (s->n_touches && !w->touches_since_ms)
            w->touches_since_ms = now;
        uint64_t wake = w->next_sweep;
        if (s->cfg.sync == SC_SYNC_PERIODIC && w->next_sync < wake)
            wake = w->next_sync;
        if (s->n_touches && w->touches_since_ms + (uint64_t)s->cfg.hit_flush_ms < wake)
            wake = w->touches_since_ms + (uint64_t)s->cfg.hit_flush_ms;
        if (wake <= now)
            break;
        struct timespec ts;
        deadline_after_ns(&ts, (wake - now) * 1000000u);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
}

/* Waits for work, then takes up to one batch of ops off the queue and, when
 * due, the table of hit counts. '*stop' is set when the writer may exit
 * after this pass. */
static sc_write_op_t *take_work(sc_store_t *s, writer_t *w, int *stop)
{
    pthread_mutex_lock(&s->mu);
    wait_for_work(s, w);
    sc_write_op_t *batch = s->head, *last = NULL;
    size_t n = 0;
    for (sc_write_op_t *op = s->head; op && n < (size_t)s->cfg.writer_batch; op = op->next) {
        last = op;
        n++;
    }
    if (last) {
        s->head = last->next;
        if (!s->head)
            s->tail = NULL;
        last->next = NULL;
        s->queued -= n;
    } else {
        batch = NULL;
    }
    /* Hit counts are flushed every --hit-flush-ms, or sooner when their table
     * is half full, and the flushed table is applied TOUCH_SLICE entries
     * per pass. Applying them with every batch, as before, rewrote the
     * same popular entries' meta pages dozens of times a second. */
    uint64_t now = mono_ms();
    if (s->n_touches && !w->touches_since_ms)
        w->touches_since_ms = now;
    if (!s->draining && s->n_touches &&
        (s->stopping || now >= w->touches_since_ms + (uint64_t)s->cfg.hit_flush_ms ||
         s->n_touches >= s->touch_cap / 2)) {
        start_draining(s);
        w->touches_since_ms = 0;
    }
    *stop = s->stopping && !s->head && !s->n_touches;
    pthread_mutex_unlock(&s->mu);
    return batch;
}

/* Takes this pass's share of the table being drained into w->slice and
 * returns how many; the drained table is the writer's alone until the next
 * swap, which waits until it is empty again. With no batch to go beside, the
 * rest of the table is applied at once instead and 0 is returned. */
static size_t drain_touches(sc_store_t *s, writer_t *w, int have_batch)
{
    touch_t *d = s->draining;
    size_t n = 0;
    if (d && !have_batch) {
        /* No store is waiting: the rest of the flush in one transaction,
         * paced (flush_touches). Each commit is an fsync with --sync full,
         * and dozens of small ones a second made the event loops' lookups
         * stall (open-loop p99 at 26k hits/s: 5-12 ms against 0.9-1.5 ms). */
        uint64_t t0 = sc_mono_ns(), paused = 0;
        MDB_txn *txn;
        if (mdb_txn_begin(s->env, NULL, 0, &txn) == 0) {
            s->n_events = 0;
            if (flush_touches(s, txn, &paused) != 0) {
                mdb_txn_abort(txn); /* counts are expendable */
            } else if (mdb_txn_commit(txn) == 0) {
                atomic_fetch_add(&s->commits_total, 1);
                /* The pages this flush freed are reusable from two commits
                 * on (store_evict.c): without this one the next flush could
                 * not reuse them and grew the file instead, by the whole hot
                 * set, twice after every burst of new entries. */
                sc__store_bump_generation(s);
            }
        }
        s->draining = NULL; /* flush_touches cleared what it took */
        w->touches_since_ms = 0;
        atomic_fetch_add_explicit(&s->writer_writes_ns, sc_mono_ns() - t0 - paused,
                                  memory_order_relaxed);
        return 0;
    }
    while (d && s->drain_pos < s->touch_cap && n < TOUCH_SLICE) {
        if (d[s->drain_pos].count) {
            w->slice[n++] = d[s->drain_pos];
            memset(&d[s->drain_pos], 0, sizeof(touch_t));
        }
        s->drain_pos++;
    }
    if (d && s->drain_pos == s->touch_cap)
        s->draining = NULL;
    return n;
}

/* The sweep (one slice per pass: queued writes go between slices) and the
 * periodic fsync, when due. */
static void run_timers(sc_store_t *s, writer_t *w)
{
    uint64_t now = mono_ms();
    if (now >= w->next_sweep) {
        /* The sweep time is the first slice's start, so entries that expire
         * while a long sweep is under way wait for the next one. */
        if (!w->sweep_started_ms)
            w->sweep_started_ms = sc_now_ms();
        uint64_t t0 = sc_mono_ns();
        int more = 0;
        int rc = sc__store_sweep_slice(s, w->sweep_started_ms, &more);
        atomic_fetch_add_explicit(&s->writer_sweep_ns, sc_mono_ns() - t0, memory_order_relaxed);
        if (rc < 0) {
            sc_log(s->log, SC_ERROR, "store: sweep failed: %s", sc_strerror(rc));
            more = 0;
        }
        if (more) {
            w->next_sweep = now; /* continue after the queued writes */
        } else {
            w->sweep_started_ms = 0;
            w->next_sweep = now + (uint64_t)s->cfg.sweep_interval_ms;
        }
    }
    if (s->cfg.sync == SC_SYNC_PERIODIC && now >= w->next_sync) {
        uint64_t t0 = sc_mono_ns();
        mdb_env_sync(s->env, 1);
        atomic_fetch_add_explicit(&s->writer_sync_ns, sc_mono_ns() - t0, memory_order_relaxed);
        w->next_sync = now + (uint64_t)s->cfg.sync_interval_ms;
    }
    sc__store_fleet_gc(s);
}

void *sc__store_writer_main(void *arg)
{
    sc_store_t *s = arg;
    pthread_setname_np(pthread_self(), "sc-writer");
    writer_t ws = {0}, *w = &ws; /* 8 KB: the thread's stack is megabytes */
    w->next_sweep = mono_ms() + (uint64_t)s->cfg.sweep_interval_ms;
    w->next_sync = mono_ms() + (uint64_t)s->cfg.sync_interval_ms;
    for (;;) {
        int stop;
        sc_write_op_t *batch = take_work(s, w, &stop);
        size_t n_touches = drain_touches(s, w, batch != NULL);
        stop = stop && !s->draining;
        if (batch || n_touches) {
            uint64_t t0 = sc_mono_ns();
            apply_batch(s, batch, n_touches ? w->slice : NULL, n_touches, 0);
            atomic_fetch_add_explicit(&s->writer_writes_ns, sc_mono_ns() - t0,
                                      memory_order_relaxed);
        }
        run_timers(s, w);
        if (stop)
            break;
    }
    return NULL;
}

/* ---- the queue ------------------------------------------------------------ */

int sc_store_submit(sc_store_t *s, sc_write_op_t *op)
{
    pthread_mutex_lock(&s->mu);
    if (s->stopping || !s->opened) {
        pthread_mutex_unlock(&s->mu);
        return SC_ECLOSED;
    }
    if (s->queued >= (size_t)s->cfg.writer_queue) {
        pthread_mutex_unlock(&s->mu);
        return SC_EBUSY;
    }
    op->next = NULL;
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    s->queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sc_write_op_free(sc_write_op_t *op)
{
    sc_write_op_clear(op);
    free(op);
}

void sc_write_op_clear(sc_write_op_t *op)
{
    sc_buf_free(&op->record);
    free(op->ns);
    free(op->tenant);
    free(op->model);
    op->ns = op->tenant = op->model = NULL;
}
