/* process.c -- the workers: one libuv loop per thread, each listening on the
 * shared port (SO_REUSEPORT, so the kernel spreads connections with no accept
 * lock) and handing its connections to the HTTP layer. A loop that got two
 * more connections than another hands the new one over (the kernel's hash is
 * uneven, and a loop is the unit of CPU). Work finished on other threads
 * (store commits, embeddings, searches) comes back as tasks through a
 * mutex-guarded list and a uv_async wake-up. */
#define _GNU_SOURCE
#include "process.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const skip_names[SC_SKIP_COUNT] = {"queue_full", "timeout", "error",
                                                      "embedder_mismatch", "embedder_unavailable"};
static const char *const index_names[SC_INDEX_SOURCE_COUNT] = {
    "loading",       "snapshot", "rebuild", "rebuild_stale_snapshot", "rebuild_damaged_snapshot",
    "rebuild_failed"};

const char *sc_skip_reason_name(sc_skip_reason_t r)
{
    return (unsigned)r < SC_SKIP_COUNT ? skip_names[r] : "unknown";
}

const char *sc_index_source_name(sc_index_source_t s)
{
    return (unsigned)s < SC_INDEX_SOURCE_COUNT ? index_names[s] : "unknown";
}

/* ---- accepting, and handing connections over -------------------------- */

/* The loop a new connection should live on: the one owning the fewest
 * (this one unless another has at least two fewer). SO_REUSEPORT hashes
 * connections to loops at random, so 32 connections often split 12/20, and
 * with a steady request rate per connection the busier loop saturates while
 * the other idles: handing connections over keeps the loops even. */
static sc_worker_t *least_loaded(sc_worker_t *w)
{
    sc_ctx_t *ctx = w->ctx;
    sc_worker_t *best = w;
    int best_n = sc_http_loop_conns(w->http);
    for (int i = 0; i < ctx->n_workers; i++) {
        sc_worker_t *o = &ctx->workers[i];
        if (o == w || !o->http)
            continue;
        int n = sc_http_loop_conns(o->http);
        if (n + 1 < best_n) { /* a stopping loop closes what it is handed */
            best = o;
            best_n = n;
        }
    }
    return best;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Accepts here, hands a duplicate of the socket to loop 'to' (libuv handles
 * belong to one loop) and closes ours. */
static void hand_over(sc_worker_t *w, sc_worker_t *to, uv_stream_t *listener)
{
    uv_tcp_t *tmp = malloc(sizeof(*tmp));
    if (!tmp)
        return;
    uv_tcp_init(&w->loop, tmp);
    uv_os_fd_t fd;
    int dup_fd = -1;
    if (uv_accept(listener, (uv_stream_t *)tmp) == 0 && uv_fileno((uv_handle_t *)tmp, &fd) == 0)
        dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    uv_close((uv_handle_t *)tmp, free_handle);
    if (dup_fd < 0)
        return;
    sc_http_loop_expect(to->http, 1);
    pthread_mutex_lock(&to->done_mu);
    if (to->n_adopt == to->cap_adopt) {
        size_t cap = to->cap_adopt ? to->cap_adopt * 2 : 16;
        int *a = realloc(to->adopt_fds, cap * sizeof(int));
        if (a) {
            to->adopt_fds = a;
            to->cap_adopt = cap;
        }
    }
    int queued = to->n_adopt < to->cap_adopt;
    if (queued)
        to->adopt_fds[to->n_adopt++] = dup_fd;
    pthread_mutex_unlock(&to->done_mu);
    if (queued) {
        uv_async_send(&to->wakeup);
        return;
    }
    sc_http_loop_expect(to->http, -1);
    sc_http_loop_expect(w->http, 1);
    sc_http_adopt(w->http, dup_fd); /* no room to hand it over: keep it */
}

static void on_connection(uv_stream_t *listener, int status)
{
    sc_worker_t *w = listener->data;
    if (status < 0 || w->stopping)
        return;
    sc_worker_t *to = least_loaded(w);
    if (to != w)
        hand_over(w, to, listener);
    else
        sc_http_accept(w->http, listener);
}

/* ---- tasks and the wake-up -------------------------------------------- */

static void close_wakeup_if_done(sc_worker_t *w)
{
    if (w->stopping && w->pending_ops == 0 && !uv_is_closing((uv_handle_t *)&w->wakeup))
        uv_close((uv_handle_t *)&w->wakeup, NULL);
}

/* Runs posted tasks on their loop, adopts handed-over connections, and
 * notices a stop request. */
static void on_wakeup(uv_async_t *a)
{
    sc_worker_t *w = a->data;
    pthread_mutex_lock(&w->done_mu);
    int *adopt = w->adopt_fds;
    size_t n_adopt = w->n_adopt;
    w->adopt_fds = NULL;
    w->n_adopt = w->cap_adopt = 0;
    sc_task_t *list = w->done_head;
    w->done_head = NULL;
    pthread_mutex_unlock(&w->done_mu);
    for (size_t i = 0; i < n_adopt; i++)
        sc_http_adopt(w->http, adopt[i]);
    free(adopt);
    /* Posted in reverse push order; reverse so replies keep their order. */
    sc_task_t *rev = NULL;
    while (list) {
        sc_task_t *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        sc_task_t *next = rev->next;
        w->pending_ops--;
        rev->run(rev);
        rev = next;
    }
    if (atomic_load(&w->ctx->stopping) && !w->stopping) {
        w->stopping = 1;
        if (w->listener_open) {
            uv_close((uv_handle_t *)&w->listener, NULL);
            w->listener_open = 0;
        }
        sc_http_drain(w->http, sc_mono_ns() + (uint64_t)w->ctx->cfg.drain_timeout_ms * 1000000u);
    }
    close_wakeup_if_done(w);
}

void sc_worker_expect(sc_worker_t *w)
{
    w->pending_ops++;
}

void sc_worker_post(sc_worker_t *w, sc_task_t *t)
{
    pthread_mutex_lock(&w->done_mu);
    t->next = w->done_head;
    w->done_head = t;
    pthread_mutex_unlock(&w->done_mu);
    uv_async_send(&w->wakeup);
}

void sc_worker_wake(sc_worker_t *w)
{
    uv_async_send(&w->wakeup);
}

/* ---- lifecycle -------------------------------------------------------- */

int sc_worker_init(sc_worker_t *w, sc_ctx_t *ctx, int id, int fd, const sc_http_handler_t *h)
{
    int rc;
    w->ctx = ctx;
    w->id = id;
    w->metrics = sc_metrics_shard(ctx->metrics, id);
    w->rng = (sc_mono_ns() ^ 0x9E3779B97F4A7C15ULL * (uint64_t)(id + 1)) | 1;
    if ((rc = uv_loop_init(&w->loop))) {
        close(fd);
        w->ctx = NULL; /* nothing to undo */
        return rc;
    }
    pthread_mutex_init(&w->done_mu, NULL);
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    sc_http_limits_t lim = {
        .max_header_bytes = (size_t)ctx->cfg.max_header_bytes,
        .max_body_bytes = (size_t)ctx->cfg.max_body_bytes,
        .request_timeout_ms = (uint64_t)ctx->cfg.request_timeout_ms,
        .idle_timeout_ms = (uint64_t)ctx->cfg.idle_timeout_ms,
        .max_connections = ctx->cfg.max_connections,
    };
    if ((rc = sc_store_reader_create(ctx->store, &w->reader)) ||
        (rc = sc_http_loop_create(&w->http, &w->loop, &lim, h, &ctx->n_conns))) {
        close(fd);
        return rc;
    }
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    w->listener_open = 1; /* closed by sc_worker_abandon if the rest fails */
    if ((rc = uv_tcp_open(&w->listener, fd))) {
        close(fd);
        return rc;
    }
    return uv_listen((uv_stream_t *)&w->listener, 1024, on_connection); /* fd is the handle's now */
}

void *sc_worker_main(void *arg)
{
    sc_worker_t *w = arg;
    /* Named so `top -H` shows which loop is busy. */
    pthread_setname_np(pthread_self(), "sc-loop");
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* Every handle is closed once uv_run returns; close_cb's have run. */
    return NULL;
}

void sc_worker_abandon(sc_worker_t *w)
{
    if (!w->ctx)
        return;
    if (w->listener_open)
        uv_close((uv_handle_t *)&w->listener, NULL);
    w->listener_open = 0;
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

void sc_worker_destroy(sc_worker_t *w)
{
    if (!w->ctx)
        return;
    uv_loop_close(&w->loop);
    sc_store_reader_destroy(w->reader);
    sc_http_loop_destroy(w->http);
    for (size_t k = 0; k < w->n_adopt; k++) /* handed over as the loop stopped */
        close(w->adopt_fds[k]);
    free(w->adopt_fds);
    pthread_mutex_destroy(&w->done_mu);
}
