/* fleet.c -- the fleet's lifecycle and its link to Redis (sc_fleet.h). One
 * thread runs a libuv loop of its own with two hiredis async connections:
 * the publisher's (XADD, and the heartbeat: registry row, lag count,
 * trimmed-stream check) and the reader's, which spends its life in XREAD
 * BLOCK. A lost or stalled connection is dropped and retried with backoff;
 * while Redis is away the node serves and stores locally and its outbox
 * grows. The publisher is fleet_pub.c, the reader fleet_read.c. */
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

/* ---- Redis addresses, stream IDs, keys -------------------------------------- */

static int copy_part(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

static int parse_uint(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!n || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]) || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int sc_redis_addr_parse(const char *url, sc_redis_addr_t *a, char *err, size_t err_cap)
{
    memset(a, 0, sizeof(*a));
    a->port = 6379;
    uint64_t v;
    if (url[0] == '/' || strncmp(url, "unix://", 7) == 0) {
        const char *path = url[0] == '/' ? url : url + 7;
        const char *q = strstr(path, "?db=");
        size_t n = q ? (size_t)(q - path) : strlen(path);
        if (!n || copy_part(a->unix_path, sizeof(a->unix_path), path, n) ||
            (q && parse_uint(q + 4, strlen(q + 4), 65535, &v))) {
            snprintf(err, err_cap, "--redis: bad unix socket path or ?db= in '%s'", url);
            return SC_EINVAL;
        }
        a->db = q ? (int)v : 0;
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, err_cap, "--redis must be redis://[user:password@]host:port[/db] or a "
                               "unix socket path, not '%s'", url);
        return SC_EINVAL;
    }
    const char *rest = url + 8, *at = strrchr(rest, '@'), *host = at ? at + 1 : rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if ((colon && copy_part(a->user, sizeof(a->user), rest, (size_t)(colon - rest))) ||
            copy_part(a->password, sizeof(a->password), colon ? colon + 1 : rest,
                      (size_t)(at - (colon ? colon + 1 : rest)))) {
            snprintf(err, err_cap, "--redis: user or password too long");
            return SC_EINVAL;
        }
    }
    const char *slash = strchr(host, '/');
    size_t hp_len = slash ? (size_t)(slash - host) : strlen(host);
    const char *hp_end = host + hp_len, *port = NULL, *h_end = hp_end;
    if (host[0] == '[') { /* [IPv6]:port */
        const char *close = memchr(host, ']', hp_len);
        if (!close)
            goto bad;
        port = close + 1 < hp_end && close[1] == ':' ? close + 2 : NULL;
        if (copy_part(a->host, sizeof(a->host), host + 1, (size_t)(close - host - 1)))
            goto bad;
    } else {
        const char *colon = memchr(host, ':', hp_len);
        if (colon) {
            port = colon + 1;
            h_end = colon;
        }
        if (copy_part(a->host, sizeof(a->host), host, (size_t)(h_end - host)))
            goto bad;
    }
    if (!a->host[0] || (port && (parse_uint(port, (size_t)(hp_end - port), 65535, &v) || !v)))
        goto bad;
    if (port)
        a->port = (int)v;
    if (slash && slash[1]) {
        if (parse_uint(slash + 1, strlen(slash + 1), 65535, &v))
            goto bad;
        a->db = (int)v;
    }
    return 0;
bad:
    snprintf(err, err_cap, "--redis: bad host, port or database in '%s'", url);
    return SC_EINVAL;
}

int sc__fleet_id_parse(const char *s, size_t len, sc_stream_id_t *id)
{
    const char *dash = memchr(s, '-', len);
    if (!dash || parse_uint(s, (size_t)(dash - s), UINT64_MAX, &id->ms) ||
        parse_uint(dash + 1, len - (size_t)(dash - s) - 1, UINT64_MAX, &id->seq))
        return SC_EINVAL;
    return 0;
}

void sc__fleet_id_format(const sc_stream_id_t *id, char out[48])
{
    snprintf(out, 48, "%" PRIu64 "-%" PRIu64, id->ms, id->seq);
}

int sc__fleet_id_cmp(const sc_stream_id_t *a, const sc_stream_id_t *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void sc__fleet_keys(const char *name, char *stream_key, char *nodes_key, size_t cap)
{
    /* One hash tag: in a Redis Cluster both keys live in one slot. */
    snprintf(stream_key, cap, "semcached:{%s}:stream", name);
    snprintf(nodes_key, cap, "semcached:{%s}:nodes", name);
}

int sc__fleet_xadd_args(const sc_config_t *cfg, const char *key, const void *rec, size_t len,
                        char trim[32], const char **argv, size_t *lens)
{
    int argc = 0;
    argv[argc++] = "XADD";
    argv[argc++] = key;
    if (cfg->fleet_retention_s > 0) {
        uint64_t now = sc_now_ms(), keep = (uint64_t)cfg->fleet_retention_s * 1000u;
        snprintf(trim, 32, "%" PRIu64, now > keep ? now - keep : 0);
        argv[argc++] = "MINID";
    } else if (cfg->fleet_retention > 0) {
        snprintf(trim, 32, "%" PRId64, cfg->fleet_retention);
        argv[argc++] = "MAXLEN";
    }
    if (argc == 3) {
        argv[argc++] = "~"; /* whole macro nodes only: trimming stays O(1) per XADD */
        argv[argc++] = trim;
    }
    argv[argc++] = "*";
    argv[argc++] = "r";
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    argv[argc] = rec;
    lens[argc++] = len;
    return argc;
}

int sc__fleet_peer_parse(const char *field, size_t flen, const char *val, size_t vlen,
                         fleet_peer_t *p)
{
    uint8_t raw[8];
    char v[700], id[48];
    memset(p, 0, sizeof(*p));
    if (flen != 16 || sc_hex_decode(field, 16, raw, 8) || vlen >= sizeof(v))
        return SC_EINVAL;
    for (int i = 0; i < 8; i++)
        p->node = p->node << 8 | raw[i];
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    unsigned long long seen, lag, lagr;
    if (sscanf(v, "%511s %47s %llu %llu %llu", p->url, id, &seen, &lag, &lagr) != 5 ||
        sc__fleet_id_parse(id, strlen(id), &p->applied))
        return SC_EINVAL;
    p->seen_ms = seen;
    p->lag_ms = lag;
    p->lag_records = lagr;
    return 0;
}

/* ---- hiredis on libuv ------------------------------------------------------ */

/* hiredis 0.14's adapters/libuv.h returns on a poll error (status < 0, after
 * which libuv has stopped the handle), so a connection reset by Redis went
 * unnoticed until the watchdog fired (5 s in tests/integration/fleet.c).
 * This copy hands the error to hiredis, whose read then fails and
 * disconnects; otherwise it is the shipped adapter. */
typedef struct {
    redisAsyncContext *ac;      /* NULL once hiredis cleaned up */
    uv_poll_t handle;
    int events;
} uv_events_t;

static void ev_poll(uv_poll_t *h, int status, int events)
{
    uv_events_t *p = h->data;
    if (p->ac && status < 0) {
        redisAsyncHandleRead(p->ac);
        if (p->ac && p->events) /* nothing wrong after all: poll again */
            uv_poll_start(&p->handle, p->events, ev_poll);
        return;
    }
    if (p->ac && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

static void ev_update(uv_events_t *p, int add, int ev)
{
    p->events = add ? p->events | ev : p->events & ~ev;
    if (p->events)
        uv_poll_start(&p->handle, p->events, ev_poll);
    else
        uv_poll_stop(&p->handle);
}

static void ev_add_read(void *d) { ev_update(d, 1, UV_READABLE); }
static void ev_del_read(void *d) { ev_update(d, 0, UV_READABLE); }
static void ev_add_write(void *d) { ev_update(d, 1, UV_WRITABLE); }
static void ev_del_write(void *d) { ev_update(d, 0, UV_WRITABLE); }

static void ev_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ev_cleanup(void *d)
{
    uv_events_t *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->handle, ev_closed);
}

static int ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    uv_events_t *p = calloc(1, sizeof(*p));
    if (!p || ac->ev.data)
        goto fail;
    if (uv_poll_init(loop, &p->handle, ac->c.fd))
        goto fail;
    p->ac = ac;
    p->handle.data = p;
    ac->ev.data = p;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return REDIS_OK;
fail:
    free(p);
    return REDIS_ERR;
}

/* ---- connections ------------------------------------------------------------ */

static void conn_down(fleet_conn_t *c, const char *why)
{
    sc_fleet_t *f = c->f;
    conn_state_t was = c->state;
    if (was == CONN_DOWN)
        return;
    c->state = CONN_DOWN;
    atomic_store(c->up, 0);
    c->ac = NULL;
    c->outstanding = 0;
    c->busy_since_ms = 0;
    c->since_ms = sc__fleet_mono_ms();
    c->retry_at_ms = c->since_ms + c->backoff_ms;
    c->backoff_ms = c->backoff_ms * 2 > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS
                                                             : c->backoff_ms * 2;
    if (was == CONN_READY && !f->stopping && !f->closing)
        sc_log(f->log, SC_WARN, "fleet: %s connection to Redis lost (%s); retrying", c->name,
               why);
    c->on_down(f);
}

/* Frees a connection from outside hiredis's callbacks. */
static void conn_kill(fleet_conn_t *c, const char *why)
{
    redisAsyncContext *ac = c->ac;
    if (!ac)
        return;
    c->ac = NULL;
    redisAsyncFree(ac); /* pending callbacks get NULL; on_disconnect may run */
    conn_down(c, why);
}

void sc__fleet_drop(fleet_conn_t *c, const char *why)
{
    if (c->ac) {
        sc_log(c->f->log, SC_WARN, "fleet: dropping the %s connection: %s", c->name, why);
        redisAsyncDisconnect(c->ac); /* on_disconnect follows */
    }
}

int sc__fleet_command(fleet_conn_t *c, redisCallbackFn *fn, void *priv, int argc,
                      const char **argv, const size_t *lens)
{
    if (!c->ac || redisAsyncCommandArgv(c->ac, fn, priv, argc, argv, lens) != REDIS_OK)
        return SC_EREMOTE;
    if (!c->outstanding++)
        c->busy_since_ms = sc__fleet_mono_ms();
    return 0;
}

void sc__fleet_answered(fleet_conn_t *c)
{
    if (c->outstanding > 0 && --c->outstanding)
        c->busy_since_ms = sc__fleet_mono_ms(); /* progress: restart the watchdog */
    else
        c->busy_since_ms = 0;
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    fleet_conn_t *c = ac->data;
    if (status != REDIS_OK) {
        /* Said once per outage, not at every retry. */
        sc_log(c->f->log, c->warned ? SC_DEBUG : SC_WARN,
               "fleet: cannot connect to Redis (%s): %s; serving locally, retrying", c->name,
               ac->errstr);
        c->warned = 1;
        conn_down(c, "connect failed"); /* hiredis frees 'ac' */
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    fleet_conn_t *c = ac->data;
    (void)status;
    conn_down(c, ac->err ? ac->errstr : "closed");
}

/* AUTH and SELECT: a refusal is logged (a wrong password must be visible)
 * and the connection dropped. */
static void on_handshake(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    redisReply *r = reply;
    sc__fleet_answered(c);
    if (r && r->type == REDIS_REPLY_ERROR) {
        /* A wrong password must be visible, once per outage. */
        sc_log(c->f->log, c->warned ? SC_DEBUG : SC_ERROR, "fleet: Redis refused %s: %s",
               (const char *)priv, r->str);
        c->warned = 1;
        redisAsyncDisconnect(c->ac);
    }
}

static void on_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    redisReply *r = reply;
    (void)priv;
    sc__fleet_answered(c);
    if (!r || r->type == REDIS_REPLY_ERROR || c->state != CONN_CONNECTING)
        return;
    c->state = CONN_READY;
    atomic_store(c->up, 1);
    c->since_ms = sc__fleet_mono_ms();
    c->backoff_ms = 100;
    c->warned = 0;
    atomic_fetch_add(&c->f->reconnects, 1);
    sc_log(c->f->log, SC_INFO, "fleet: %s connected to Redis", c->name);
    c->on_ready(c->f);
}

static void conn_connect(fleet_conn_t *c)
{
    sc_fleet_t *f = c->f;
    const sc_redis_addr_t *a = &f->addr;
    redisAsyncContext *ac =
        a->unix_path[0] ? redisAsyncConnectUnix(a->unix_path) : redisAsyncConnect(a->host, a->port);
    c->since_ms = sc__fleet_mono_ms();
    if (!ac || ac->err || ev_attach(ac, &f->loop) != REDIS_OK) {
        if (ac)
            redisAsyncFree(ac);
        c->retry_at_ms = c->since_ms + c->backoff_ms;
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = CONN_CONNECTING;
    /* Pipelined: sent as soon as the socket connects. */
    if (a->password[0]) {
        const char *argv[3] = {"AUTH", a->user, a->password};
        if (a->user[0])
            sc__fleet_command(c, on_handshake, (void *)"AUTH", 3, argv, NULL);
        else {
            argv[1] = a->password;
            sc__fleet_command(c, on_handshake, (void *)"AUTH", 2, argv, NULL);
        }
    }
    if (a->db) {
        char db[16];
        snprintf(db, sizeof(db), "%d", a->db);
        const char *argv[2] = {"SELECT", db};
        sc__fleet_command(c, on_handshake, (void *)"SELECT", 2, argv, NULL);
    }
    const char *ping[1] = {"PING"};
    sc__fleet_command(c, on_ping, NULL, 1, ping, NULL);
}

/* Connects, retries and watches one connection (every tick). */
static void conn_tick(fleet_conn_t *c, uint64_t now, int wanted)
{
    if (c->state == CONN_DOWN && wanted && now >= c->retry_at_ms)
        conn_connect(c);
    else if (c->state == CONN_CONNECTING && now > c->since_ms + FLEET_CONNECT_MS)
        conn_kill(c, "connect timed out");
    else if (c->state == CONN_READY && c->busy_since_ms &&
             now > c->busy_since_ms + FLEET_BLOCK_MS + FLEET_STALL_MS)
        conn_kill(c, "Redis stopped answering");
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

int sc__fleet_trimmed_past(const redisReply *r, const sc_stream_id_t *pos,
                           sc_stream_id_t *first)
{
    long long length = -1, added = -1;
    sc_stream_id_t deleted = {0, 0};
    int gap = 0;
    first->ms = first->seq = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "length") == 0 && v->type == REDIS_REPLY_INTEGER)
            length = v->integer;
        else if (strcmp(k->str, "entries-added") == 0 && v->type == REDIS_REPLY_INTEGER)
            added = v->integer;
        else if (strcmp(k->str, "recorded-first-entry-id") == 0 && v->type == REDIS_REPLY_STRING)
            sc__fleet_id_parse(v->str, v->len, first);
        else if (strcmp(k->str, "first-entry") == 0 && v->type == REDIS_REPLY_ARRAY &&
                 v->elements == 2 && v->element[0]->type == REDIS_REPLY_STRING && !first->ms)
            sc__fleet_id_parse(v->element[0]->str, v->element[0]->len, first); /* Redis 6 */
        else if (strcmp(k->str, "max-deleted-entry-id") == 0 && v->type == REDIS_REPLY_STRING &&
                 sc__fleet_id_parse(v->str, v->len, &deleted) == 0)
            gap |= sc__fleet_id_cmp(&deleted, pos) > 0;
    }
    /* Trimming removes entries from the head and (in Redis 7.0) does not
     * move max-deleted-entry-id: records were lost to this position when
     * some were removed and the first one left lies past it. */
    if (length >= 0 && added > length && sc__fleet_id_cmp(first, pos) > 0)
        gap = 1;
    return gap;
}

/* XINFO STREAM: records after this node's position trimmed away are
 * changes it will never see; said once, and flagged in the stats. */
static void on_xinfo(redisAsyncContext *ac, void *reply, void *priv)
{
    fleet_conn_t *c = ac->data;
    sc_fleet_t *f = c->f;
    sc_stream_id_t first;
    (void)priv;
    beat_answered(f);
    if (!reply || !sc__fleet_trimmed_past(reply, &f->read_id, &first) ||
        atomic_load(&f->resync_needed))
        return;
    char pos[48], head[48];
    sc__fleet_id_format(&f->read_id, pos);
    sc__fleet_id_format(&first, head);
    atomic_store(&f->resync_needed, 1);
    sc_log(f->log, SC_ERROR,
           "fleet: the stream was trimmed past this node's position %s (it now starts at %s): "
           "changes were lost to it; restart it to copy a peer's snapshot",
           pos, head);
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
             f->snapshot_url[0] ? f->snapshot_url : "-", id, sc_now_ms(),
             atomic_load(&f->lag_ms), atomic_load(&f->lag_records));
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
    conn_kill(&f->pub, "stopping");
    conn_kill(&f->rd, "stopping");
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
    conn_tick(&f->pub, now, 1);
    conn_tick(&f->rd, now, !f->stopping);
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
        conn_kill(&f->rd, "stopping");
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
        sc_log(log, SC_ERROR, "fleet: --redis and --fleet go together; --fleet is 1-64 of "
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
    f->pub = (fleet_conn_t){.f = f, .name = "publisher", .backoff_ms = 100, .up = &f->pub_up,
                            .on_ready = pub_ready, .on_down = pub_down};
    f->rd = (fleet_conn_t){.f = f, .name = "reader", .backoff_ms = 100, .up = &f->rd_up,
                           .on_ready = rd_ready, .on_down = rd_down};
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
    sc_store_fleet_hooks_t h = {.on_outbox = hook_outbox, .on_ns = hook_ns,
                                .embedder_of = hook_embedder, .ctx = f};
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
    sc_log(f->log, SC_INFO, "fleet: node %s joins fleet '%s' at %s (%s)", f->node_hex,
           f->cfg.fleet, f->addr.unix_path[0] ? f->addr.unix_path : f->addr.host,
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
