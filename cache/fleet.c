/* fleet.c -- the fleet's lifecycle and its loop (sc_fleet.h). One thread runs
 * a libuv loop of its own with two hiredis async connections (fleet_conn.c):
 * the publisher's (XADD, fleet_pub.c, and the heartbeat here: registry row,
 * lag count, trimmed-stream check) and the reader's, which spends its life
 * in XREAD BLOCK (fleet_read.c). While Redis is away the node serves and
 * stores locally and its outbox grows. */
#define _GNU_SOURCE
#include "fleet_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t sc__fleet_mono_ms(void)
{
    return sc_mono_ns() / 1000000u;
}

/* ---- heartbeat: registry row, peers, trimmed-stream check, lag count -------- */

static void beat_answered(sc_fleet_t *f)
{
    sc__fleet_answered(&f->pub);
    if (f->beat_pending > 0)
        f->beat_pending--;
}

static void on_beat_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    (void)reply;
    (void)priv;
    beat_answered(c->f);
}

static void on_peers(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    sc_fleet_t *f = c->f;
    redisReply *r = reply;
    (void)priv;
    beat_answered(f);
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return;
    fleet_peer_t *peers = calloc(r->elements / 2 + 1, sizeof(*peers));
    size_t n = 0;
    uint64_t now = sc_now_ms();
    for (size_t i = 0; peers && i + 1 < r->elements; i += 2) {
        redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            sc__fleet_peer_parse(k->str, k->len, v->str, v->len, &peers[n]))
            continue;
        if (peers[n].seen_ms + FLEET_PEER_FORGET_MS < now) {
            /* A node gone for a day (every snapshot install makes a new
             * id): any node's heartbeat removes its row. */
            const char *argv[3] = {"HDEL", f->nodes_key, k->str};
            size_t lens[3] = {4, strlen(f->nodes_key), k->len};
            f->beat_pending += sc__fleet_command(&f->pub, on_beat_reply, NULL, 3, argv, lens) == 0;
            continue;
        }
        n++;
    }
    pthread_mutex_lock(&f->peers_mu);
    free(f->peers);
    f->peers = peers;
    f->n_peers = peers ? n : 0;
    pthread_mutex_unlock(&f->peers_mu);
}

static void on_xinfo(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    sc_fleet_t *f = c->f;
    sc_stream_id_t first;
    (void)priv;
    beat_answered(f);
    if (reply && sc__fleet_trimmed_past(reply, &f->read_id, &first))
        sc__fleet_flag_trimmed(f, &f->read_id, &first);
}

void sc__fleet_flag_trimmed(sc_fleet_t *f, const sc_stream_id_t *pos, const sc_stream_id_t *first)
{
    if (atomic_exchange(&f->resync_needed, 1))
        return;
    /* Remembered on disk: the records read since then moved this node's
     * position past the gap, where the start-up check cannot see it. */
    char marker[1200];
    snprintf(marker, sizeof(marker), "%s/" SC_FLEET_RESYNC_MARKER, f->cfg.data_dir);
    FILE *m = fopen(marker, "w");
    if (m)
        fclose(m);
    char at[48], head[80] = "";
    sc__fleet_id_format(pos, at);
    if (first) {
        char id[48];
        sc__fleet_id_format(first, id);
        snprintf(head, sizeof(head), " (it now starts at %s)", id);
    }
    sc_log(f->log, SC_ERROR,
           "fleet: the stream was trimmed past this node's position %s%s: changes were lost to "
           "it; %s",
           at, head,
           f->cfg.fleet_auto_resync ? "copying a peer's snapshot (--fleet-auto-resync)"
                                    : "restart it to copy a peer's snapshot");
}

static void on_lag_count(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    sc_fleet_t *f = c->f;
    redisReply *r = reply;
    (void)priv;
    beat_answered(f);
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0)
        atomic_store(&f->lag_records, (uint64_t)r->integer + f->inflight_records);
}

/* Counts the stream records after 'from' inside Redis, up to a bound:
 * nothing crosses the network but the number. */
static const char LAG_SCRIPT[] =
    "return #redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])";

static void heartbeat(sc_fleet_t *f, uint64_t now)
{
    if (f->pub.state != CONN_READY || f->beat_pending || now < f->next_heartbeat_ms)
        return;
    f->next_heartbeat_ms = now + FLEET_HEARTBEAT_MS;
    sc_stream_id_t applied;
    char row[700], id[48], from[50], max[24];
    sc_store_fleet_applied(f->store, &applied);
    sc__fleet_id_format(&applied, id);
    snprintf(row, sizeof(row), "%s %s %" PRIu64 " %" PRIu64 " %" PRIu64,
             f->snapshot_url[0] ? f->snapshot_url : "-", id, sc_now_ms(), atomic_load(&f->lag_ms),
             atomic_load(&f->lag_records));
    const char *hset[4] = {"HSET", f->nodes_key, f->node_hex, row};
    const char *hgetall[2] = {"HGETALL", f->nodes_key};
    const char *xinfo[3] = {"XINFO", "STREAM", f->stream_key};
    f->beat_pending += sc__fleet_command(&f->pub, on_beat_reply, NULL, 4, hset, NULL) == 0;
    f->beat_pending += sc__fleet_command(&f->pub, on_peers, NULL, 2, hgetall, NULL) == 0;
    f->beat_pending += sc__fleet_command(&f->pub, on_xinfo, NULL, 3, xinfo, NULL) == 0;
    if (f->at_end) {
        atomic_store(&f->lag_records, f->inflight_records);
        return;
    }
    sc__fleet_id_format(&f->read_id, id);
    snprintf(from, sizeof(from), "(%s", id);
    snprintf(max, sizeof(max), "%d", FLEET_LAG_COUNT_MAX);
    const char *eval[6] = {"EVAL", LAG_SCRIPT, "1", f->stream_key, from, max};
    f->beat_pending += sc__fleet_command(&f->pub, on_lag_count, NULL, 6, eval, NULL) == 0;
}

/* ---- the loop ------------------------------------------------------------- */

static void pub_ready(sc_fleet_t *f)
{
    sc__fleet_pub_reset(f);
    f->next_heartbeat_ms = 0;
    sc__fleet_pub_pump(f);
}

static void pub_down(sc_fleet_t *f)
{
    sc__fleet_pub_reset(f);
    f->beat_pending = 0;
}

static void rd_ready(sc_fleet_t *f)
{
    sc__fleet_read_reset(f);
    sc__fleet_read_pump(f);
}

static void rd_down(sc_fleet_t *f)
{
    sc__fleet_read_reset(f);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

/* Everything is published (or the deadline passed): close the loop. */
static void finish_stop(sc_fleet_t *f)
{
    f->closing = 1;
    pthread_mutex_lock(&f->mu);
    f->running = 0;
    pthread_mutex_unlock(&f->mu);
    sc__fleet_conn_kill(&f->pub, "stopping");
    sc__fleet_conn_kill(&f->rd, "stopping");
    uv_timer_stop(&f->tick);
    uv_close((uv_handle_t *)&f->tick, on_closed);
    uv_close((uv_handle_t *)&f->wake, on_closed);
}

static void on_tick(uv_timer_t *t)
{
    sc_fleet_t *f = t->data;
    uint64_t now = sc__fleet_mono_ms();
    if (f->closing)
        return;
    sc__fleet_conn_tick(&f->pub, now, 1);
    sc__fleet_conn_tick(&f->rd, now, !f->stopping);
    if (f->stopping) {
        sc__fleet_pub_pump(f);
        if (f->pub.state != CONN_READY || !sc__fleet_pub_busy(f) || now >= f->flush_deadline_ms)
            finish_stop(f);
        return;
    }
    heartbeat(f, now);
    sc__fleet_read_settle(f);
    sc__fleet_pub_pump(f);
    sc__fleet_read_pump(f);
}

static void on_wake(uv_async_t *h)
{
    sc_fleet_t *f = h->data;
    pthread_mutex_lock(&f->mu);
    int stop = f->stop_requested;
    fleet_batch_t *done = f->done_head;
    f->done_head = f->done_tail = NULL;
    f->outbox_signal = 0;
    pthread_mutex_unlock(&f->mu);
    if (f->closing)
        return;
    if (done)
        sc__fleet_read_done(f, done);
    if (stop && !f->stopping) {
        f->stopping = 1; /* stop reading now; publish until the deadline */
        sc__fleet_conn_kill(&f->rd, "stopping");
    }
    sc__fleet_pub_pump(f);
    if (!f->stopping)
        sc__fleet_read_pump(f);
}

void sc__fleet_wake(sc_fleet_t *f)
{
    pthread_mutex_lock(&f->mu);
    if (f->running)
        uv_async_send(&f->wake);
    pthread_mutex_unlock(&f->mu);
}

static void *loop_main(void *arg)
{
    sc_fleet_t *f = arg;
    pthread_setname_np(pthread_self(), "sc-fleet");
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- hooks the store calls (writer thread) ---------------------------------- */

static void hook_outbox(void *ctx)
{
    sc_fleet_t *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->outbox_signal = 1;
    if (f->running)
        uv_async_send(&f->wake);
    pthread_mutex_unlock(&f->mu);
}

static void hook_ns(void *ctx, const char *name, size_t len, const char *doc, size_t doc_len)
{
    sc_fleet_t *f = ctx;
    if (f->hooks.on_ns)
        f->hooks.on_ns(f->hooks.ctx, name, len, doc, doc_len);
}

static void hook_embedder(void *ctx, sc_slice_t ns, char *out, size_t cap)
{
    sc_fleet_t *f = ctx;
    if (f->hooks.embedder_of)
        f->hooks.embedder_of(f->hooks.ctx, ns, out, cap);
    else if (cap)
        out[0] = '\0';
}

/* ---- lifecycle -------------------------------------------------------- */

/* A record timestamped further ahead than this is refused: it would hold
 * every later change to its key back until the clocks met. */
#define FLEET_MAX_SKEW_MS 300000

static int fleet_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
            return 0;
    return 1;
}

int sc_fleet_create(sc_fleet_t **out, const sc_config_t *cfg, sc_log_t *log)
{
    char err[256];
    if (!cfg->redis[0] || !fleet_name_ok(cfg->fleet)) {
        sc_log(log, SC_ERROR,
               "fleet: --redis and --fleet go together; --fleet is 1-64 of "
               "[A-Za-z0-9._-]");
        return SC_EINVAL;
    }
    sc_fleet_t *f = calloc(1, sizeof(*f));
    if (!f)
        return SC_ENOMEM;
    if (sc_redis_addr_parse(cfg->redis, &f->addr, err, sizeof(err))) {
        sc_log(log, SC_ERROR, "fleet: %s", err);
        free(f);
        return SC_EINVAL;
    }
    f->cfg = *cfg;
    f->log = log;
    sc__fleet_keys(cfg->fleet, f->stream_key, f->nodes_key, sizeof(f->stream_key));
    f->pub = (fleet_conn_t){.f = f,
                            .name = "publisher",
                            .backoff_ms = 100,
                            .up = &f->pub_up,
                            .on_ready = pub_ready,
                            .on_down = pub_down};
    f->rd = (fleet_conn_t){.f = f,
                           .name = "reader",
                           .backoff_ms = 100,
                           .up = &f->rd_up,
                           .on_ready = rd_ready,
                           .on_down = rd_down};
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->peers_mu, NULL);
    *out = f;
    return 0;
}

int sc_fleet_attach(sc_fleet_t *f, sc_store_t *s, const sc_store_fleet_hooks_t *hooks)
{
    if (hooks)
        f->hooks = *hooks;
    f->store = s;
    sc_store_fleet_opts_t o = {
        .outbox_max = (uint64_t)f->cfg.fleet_outbox_max,
        .tombstone_ms = (uint64_t)f->cfg.fleet_tombstone_s * 1000u,
        .max_skew_ms = FLEET_MAX_SKEW_MS,
    };
    sc_store_fleet_hooks_t h = {
        .on_outbox = hook_outbox, .on_ns = hook_ns, .embedder_of = hook_embedder, .ctx = f};
    return sc_store_fleet_enable(s, &o, &h);
}

int sc_fleet_start(sc_fleet_t *f, const char *snapshot_url, int joining)
{
    uint64_t node = sc_store_fleet_node(f->store);
    if (!node || f->started)
        return SC_EINVAL;
    uint8_t raw[8];
    for (int i = 0; i < 8; i++)
        raw[i] = (uint8_t)(node >> (56 - 8 * i));
    sc_hex_encode(raw, 8, f->node_hex);
    snprintf(f->snapshot_url, sizeof(f->snapshot_url), "%s", snapshot_url ? snapshot_url : "");
    sc_store_fleet_applied(f->store, &f->read_id);
    f->submitted_id = f->read_id;
    atomic_store(&f->read_ms, f->read_id.ms);
    atomic_store(&f->read_seq, f->read_id.seq);
    f->joining = joining;
    atomic_store(&f->ready, !joining);
    int rc = uv_loop_init(&f->loop);
    if (rc)
        return rc;
    uv_async_init(&f->loop, &f->wake, on_wake);
    uv_timer_init(&f->loop, &f->tick);
    f->wake.data = f->tick.data = f;
    uv_timer_start(&f->tick, on_tick, 0, FLEET_TICK_MS);
    f->running = 1;
    if ((rc = pthread_create(&f->thread, NULL, loop_main, f))) {
        f->running = 0;
        uv_close((uv_handle_t *)&f->tick, NULL);
        uv_close((uv_handle_t *)&f->wake, NULL);
        uv_run(&f->loop, UV_RUN_DEFAULT);
        uv_loop_close(&f->loop);
        return -rc;
    }
    f->started = 1;
    sc_log(f->log, SC_INFO, "fleet: node %s joins fleet '%s' at %s (%s)", f->node_hex, f->cfg.fleet,
           f->addr.unix_path[0] ? f->addr.unix_path : f->addr.host,
           joining ? "joining: not ready until caught up" : "following");
    return 0;
}

void sc_fleet_stop(sc_fleet_t *f, uint64_t flush_ms)
{
    if (!f || !f->started || f->stopped)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop_requested = 1;
    f->flush_deadline_ms = sc__fleet_mono_ms() + flush_ms;
    uv_async_send(&f->wake);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    if (uv_loop_close(&f->loop))
        sc_log(f->log, SC_ERROR, "fleet: its loop still had handles at stop");
    f->stopped = 1;
}

void sc_fleet_destroy(sc_fleet_t *f)
{
    if (!f)
        return;
    sc_fleet_stop(f, 0);
    for (fleet_batch_t *b = f->done_head, *next; b; b = next) {
        next = b->next;
        sc__fleet_batch_free(b);
    }
    if (f->held)
        sc__fleet_batch_free(f->held);
    free(f->peers);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->peers_mu);
    free(f);
}

/* ---- state -------------------------------------------------------------- */

size_t sc_fleet_peers(sc_fleet_t *f, sc_fleet_peer_t *out, size_t cap)
{
    pthread_mutex_lock(&f->peers_mu);
    size_t n = f->n_peers < cap ? f->n_peers : cap;
    if (n)
        memcpy(out, f->peers, n * sizeof(*out));
    pthread_mutex_unlock(&f->peers_mu);
    return n;
}

const char *sc_fleet_node_hex(const sc_fleet_t *f)
{
    return f->node_hex;
}

void sc_fleet_snapshot_trailer(uint64_t bytes, uint8_t out[SC_FLEET_SNAPSHOT_TRAILER])
{
    memcpy(out, SC_FLEET_SNAPSHOT_MAGIC, 8);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (uint8_t)(bytes >> (8 * i));
}

int sc_fleet_ready(sc_fleet_t *f)
{
    return atomic_load(&f->ready);
}

static uint64_t lag_percentile(sc_fleet_t *f, double q)
{
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < FLEET_LAG_BUCKETS; i++)
        total += atomic_load(&f->lag_hist[i]);
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total);
    for (int b = 0; b < FLEET_LAG_BUCKETS; b++) {
        seen += atomic_load(&f->lag_hist[b]);
        if (seen > want) { /* the bucket's lower bound */
            if (b < 16)
                return (uint64_t)b;
            unsigned e = (unsigned)(b - 16) / 8 + 4, m = (unsigned)(b - 16) % 8;
            return (uint64_t)(8 + m) << (e - 3);
        }
    }
    return 0;
}

void sc__fleet_lag_add(sc_fleet_t *f, uint64_t ms)
{
    unsigned b;
    if (ms < 16) {
        b = (unsigned)ms;
    } else {
        unsigned e = 63u - (unsigned)__builtin_clzll(ms); /* >= 4 */
        b = 16 + (e - 4) * 8 + (unsigned)((ms >> (e - 3)) & 7);
    }
    if (b >= FLEET_LAG_BUCKETS)
        b = FLEET_LAG_BUCKETS - 1;
    atomic_fetch_add_explicit(&f->lag_hist[b], 1, memory_order_relaxed);
}

void sc_fleet_stats(sc_fleet_t *f, sc_fleet_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    if (f->store)
        sc_store_fleet_stats(f->store, &st->store);
    st->connected = atomic_load(&f->pub_up) && atomic_load(&f->rd_up);
    st->store.own += atomic_load(&f->own);
    st->ready = atomic_load(&f->ready);
    st->resync_needed = atomic_load(&f->resync_needed);
    st->published = atomic_load(&f->published);
    st->publish_errors = atomic_load(&f->publish_errors);
    st->read = atomic_load(&f->read);
    st->malformed = atomic_load(&f->malformed);
    st->batches = atomic_load(&f->batches);
    st->reconnects = atomic_load(&f->reconnects);
    st->lag_records = atomic_load(&f->lag_records);
    st->lag_ms = atomic_load(&f->lag_ms);
    st->lag_p50_ms = lag_percentile(f, 0.50);
    st->lag_p99_ms = lag_percentile(f, 0.99);
    st->read_id.ms = atomic_load(&f->read_ms);
    st->read_id.seq = atomic_load(&f->read_seq);
}
