/* fleet_conn.c -- the fleet's two Redis connections: hiredis's async API on
 * the fleet's own libuv loop (through a fixed copy of hiredis's libuv
 * adapter), the handshake (AUTH, SELECT, PING), reconnects with backoff, a
 * connect timeout and a watchdog for a Redis that stops answering. Loop
 * thread only. */
#define _GNU_SOURCE
#include "fleet_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hiredis on libuv ------------------------------------------------------ */

/* hiredis 0.14's adapters/libuv.h returns on a poll error (status < 0, after
 * which libuv has stopped the handle), so a connection reset by Redis went
 * unnoticed until the watchdog fired (5 s in tests/integration/fleet.c).
 * This copy hands the error to hiredis, whose read then fails and
 * disconnects; otherwise it is the shipped adapter. */
typedef struct {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
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

static void ev_add_read(void *d)
{
    ev_update(d, 1, UV_READABLE);
}
static void ev_del_read(void *d)
{
    ev_update(d, 0, UV_READABLE);
}
static void ev_add_write(void *d)
{
    ev_update(d, 1, UV_WRITABLE);
}
static void ev_del_write(void *d)
{
    ev_update(d, 0, UV_WRITABLE);
}

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
    c->backoff_ms =
        c->backoff_ms * 2 > FLEET_BACKOFF_MAX_MS ? FLEET_BACKOFF_MAX_MS : c->backoff_ms * 2;
    if (was == CONN_READY && !f->stopping && !f->closing)
        sc_log(f->log, SC_WARN, "fleet: %s connection to Redis lost (%s); retrying", c->name, why);
    c->on_down(f);
}

/* Frees a connection from outside hiredis's callbacks. */
void sc__fleet_conn_kill(fleet_conn_t *c, const char *why)
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

int sc__fleet_command(fleet_conn_t *c, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                      const size_t *lens)
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
void sc__fleet_conn_tick(fleet_conn_t *c, uint64_t now, int wanted)
{
    if (c->state == CONN_DOWN && wanted && now >= c->retry_at_ms)
        conn_connect(c);
    else if (c->state == CONN_CONNECTING && now > c->since_ms + FLEET_CONNECT_MS)
        sc__fleet_conn_kill(c, "connect timed out");
    else if (c->state == CONN_READY && c->busy_since_ms &&
             now > c->busy_since_ms + FLEET_BLOCK_MS + FLEET_STALL_MS)
        sc__fleet_conn_kill(c, "Redis stopped answering");
}
