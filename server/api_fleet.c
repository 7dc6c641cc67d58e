/* api_fleet.c -- the fleet's endpoints (admin token): GET /v1/fleet/snapshot
 * streams a compacted copy of this node's LMDB to a joining peer, as a Redis
 * replica takes an RDB file; GET /v1/fleet/checksum digests the live entries
 * and their versions, to compare nodes. The copy (mdb_env_copyfd2, blocking)
 * runs on a thread of its own writing into a pipe; the loop reads the pipe
 * and streams it out, pausing while the client lags, and ends with a trailer
 * (sc_fleet.h) so a copy cut short is never taken for a whole one. */
#define _GNU_SOURCE
#include "api.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The copy pauses while this much is queued for a slow client. */
#define SNAPSHOT_HIGH_WATER (8u << 20)
#define SNAPSHOT_POLL_MS 5

typedef struct {
    sc_ctx_t *ctx;
    sc_conn_t *c;
    uv_pipe_t pipe;   /* the read end of the copy's pipe */
    uv_timer_t timer; /* resumes reading once the client caught up */
    pthread_t thread;
    int write_fd; /* the copy thread's; closed by it */
    int copy_rc;  /* the copy's result; read after the join */
    int joined, closed_handles;
    uint64_t bytes;
    char buf[64 * 1024];
} snapshot_t;

static void *copy_main(void *arg)
{
    snapshot_t *s = arg;
    pthread_setname_np(pthread_self(), "sc-snapshot");
    s->copy_rc = sc_store_snapshot_copy(s->ctx->store, s->write_fd);
    close(s->write_fd); /* the reader sees EOF */
    return NULL;
}

static void on_closed(uv_handle_t *h)
{
    snapshot_t *s = h->data;
    if (++s->closed_handles < 2)
        return;
    sc_conn_release(s->c);
    free(s);
}

/* Ends the stream (with the trailer when the copy is whole) and frees. A
 * failed or abandoned copy gets none: the peer refuses what it received. */
static void finish(snapshot_t *s, int client_gone)
{
    uv_read_stop((uv_stream_t *)&s->pipe);
    uv_timer_stop(&s->timer);
    /* Closing the read end first makes a copy still writing fail (EPIPE;
     * SIGPIPE is ignored), so the join below never waits long. */
    uv_close((uv_handle_t *)&s->pipe, on_closed);
    if (!s->joined) {
        pthread_join(s->thread, NULL);
        s->joined = 1;
    }
    if (!client_gone && s->copy_rc == 0) {
        uint8_t t[SC_FLEET_SNAPSHOT_TRAILER];
        sc_fleet_snapshot_trailer(s->bytes, t);
        sc_conn_stream_write(s->c, t, sizeof(t));
        sc_log(s->ctx->log, SC_INFO, "fleet: served a snapshot of %llu bytes",
               (unsigned long long)s->bytes);
    } else if (!client_gone) {
        sc_log(s->ctx->log, SC_ERROR, "fleet: snapshot copy failed: %s", sc_strerror(s->copy_rc));
    }
    sc_conn_stream_end(s->c);
    uv_close((uv_handle_t *)&s->timer, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    snapshot_t *s = h->data;
    (void)suggested;
    buf->base = s->buf;
    buf->len = sizeof(s->buf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void on_resume(uv_timer_t *t)
{
    snapshot_t *s = t->data;
    if (sc_conn_gone(s->c)) {
        finish(s, 1);
        return;
    }
    if (sc_conn_out_pending(s->c) < SNAPSHOT_HIGH_WATER / 2)
        uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read);
    else
        uv_timer_start(&s->timer, on_resume, SNAPSHOT_POLL_MS, 0);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    snapshot_t *s = st->data;
    if (n == UV_EOF || n < 0) {
        finish(s, 0);
        return;
    }
    if (n == 0)
        return;
    if (sc_conn_stream_write(s->c, buf->base, (size_t)n)) {
        finish(s, 1); /* the client is gone */
        return;
    }
    s->bytes += (uint64_t)n;
    if (sc_conn_out_pending(s->c) > SNAPSHOT_HIGH_WATER) { /* a slow client: wait for it */
        uv_read_stop(st);
        uv_timer_start(&s->timer, on_resume, SNAPSHOT_POLL_MS, 0);
    }
}

void sc_api_fleet_snapshot(const sc_call_t *a)
{
    if (!a->ctx->fleet) {
        sc_conn_problem(a->c, 404, "not-a-fleet", "this node is not in a fleet (--redis, --fleet)");
        return;
    }
    int fds[2];
    snapshot_t *s = calloc(1, sizeof(*s));
    if (!s || pipe2(fds, O_CLOEXEC)) {
        free(s);
        sc_conn_problem(a->c, 503, "out-of-resources", "cannot start a snapshot copy");
        return;
    }
    s->ctx = a->ctx;
    s->c = a->c;
    s->write_fd = fds[1];
    sc_conn_hold(a->c); /* released when both handles have closed */
    uv_pipe_init(&a->w->loop, &s->pipe, 0);
    uv_timer_init(&a->w->loop, &s->timer);
    s->pipe.data = s->timer.data = s;
    int opened = uv_pipe_open(&s->pipe, fds[0]) == 0;
    if (!opened || pthread_create(&s->thread, NULL, copy_main, s)) {
        if (!opened)
            close(fds[0]);
        close(fds[1]);
        s->joined = 1;
        sc_conn_problem(a->c, 503, "out-of-resources", "cannot start a snapshot copy");
        uv_close((uv_handle_t *)&s->pipe, on_closed);
        uv_close((uv_handle_t *)&s->timer, on_closed);
        return;
    }
    sc_conn_stream_begin(a->c, 200, "application/octet-stream",
                         "Content-Disposition: attachment; filename=\"data.mdb\"\r\n");
    uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read);
}

void sc_api_fleet_checksum(const sc_call_t *a)
{
    if (!a->ctx->fleet) {
        sc_conn_problem(a->c, 404, "not-a-fleet", "this node is not in a fleet (--redis, --fleet)");
        return;
    }
    /* O(entries) on the loop: a diagnostic for comparing nodes, not a
     * request to send often on a large store. */
    uint64_t entries, sum;
    int rc = sc_store_fleet_checksum(a->ctx->store, sc_now_ms(), &entries, &sum);
    if (rc) {
        sc_conn_problem(a->c, 500, "store-error", sc_strerror(rc));
        return;
    }
    sc_buf_t b = {0};
    sc_buf_printf(&b, "{\"entries\":%llu,\"checksum\":\"%016llx\"}", (unsigned long long)entries,
                  (unsigned long long)sum);
    sc_api_reply_json(a->c, 200, &b);
    sc_buf_free(&b);
}
