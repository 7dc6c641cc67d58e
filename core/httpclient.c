/* httpclient.c -- curl multi on a private libuv loop (curl's socket API:
 * curl says which sockets to watch and when to time out; uv_poll and a
 * uv_timer tell it back). Submissions, cancels and resumes cross threads
 * through one lock and a uv_async wake-up; every curl call and every
 * callback runs on the client thread. One call's request set-up and response
 * parsing are in httpcall.c. */
#define _GNU_SOURCE
#include "httpclient_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_fifo.h"

/* A call's place, guarded by the client's lock (priv_state). */
enum { ST_IDLE = 0, ST_QUEUED, ST_RUNNING, ST_CANCELLED };

struct sc_http_client_s {
    sc_log_t *log;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu;
    sc_fifo_t queued;           /* guarded by mu */
    sc_http_call_t *cancelled;  /* guarded by mu: cancelled while queued, done pending */
    int ctl_pending;            /* guarded by mu: a running call awaits cancel or resume */
    int stopping;               /* guarded by mu */
    int inflight, max_inflight; /* client thread only */
    sc_http_call_t *running;    /* in-flight calls, client thread only */
};

static void check_done(sc_http_client_t *c);
static void start_queued(sc_http_client_t *c);

/* ---- curl's sockets and timer on the libuv loop --------------------------- */

typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    sc_http_client_t *c;
} sock_ctx_t;

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_ctx_t *s = p->data;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(s->c->multi, s->fd, flags, &running);
    check_done(s->c);
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    sc_http_client_t *c = userp;
    sock_ctx_t *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_poll_closed);
            curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->c = c;
        if (uv_poll_init_socket(&c->loop, &s->poll, fd)) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    sc_http_client_t *c = t->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    sc_http_client_t *c = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- hooks for httpcall.c -------------------------------------------------- */

uv_loop_t *sc_httpc_loop(sc_http_client_t *c)
{
    return &c->loop;
}

int sc_httpc_hold(sc_http_client_t *c, sc_http_call_t *call)
{
    pthread_mutex_lock(&c->mu);
    int hold = call->priv_pause;
    pthread_mutex_unlock(&c->mu);
    return hold;
}

/* ---- ending calls ------------------------------------------------------------ */

static void xfer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* Ends 'call' with 'error' (a requested cancel wins) and hands it back
 * through 'done'. Never from inside a curl callback: it removes the easy
 * handle from the multi. */
static void finish(sc_http_client_t *c, sc_http_call_t *call, int error)
{
    sc_httpc_xfer_t *x = call->priv;
    if (x) {
        curl_off_t t = 0;
        if (curl_easy_getinfo(x->easy, CURLINFO_STARTTRANSFER_TIME_T, &t) == CURLE_OK)
            call->ttfb_us = (int64_t)t;
        if (curl_easy_getinfo(x->easy, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK)
            call->total_us = (int64_t)t;
        if (!call->status)
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &call->status);
        curl_multi_remove_handle(c->multi, x->easy);
        sc_httpc_xfer_release(x);
        x->call = NULL;
        uv_close((uv_handle_t *)&x->watchdog, xfer_closed);
        call->priv = NULL;
        c->inflight--;
        if (call->run_prev)
            call->run_prev->run_next = call->run_next;
        else
            c->running = call->run_next;
        if (call->run_next)
            call->run_next->run_prev = call->run_prev;
        call->run_prev = call->run_next = NULL;
    }
    pthread_mutex_lock(&c->mu);
    if (call->priv_cancel && error != SC_ECANCELED) {
        error = SC_ECANCELED;
        snprintf(call->error_text, sizeof(call->error_text), "canceled");
    }
    call->priv_state = ST_IDLE;
    call->priv_cancel = call->priv_pause = 0;
    pthread_mutex_unlock(&c->mu);
    call->error = error;
    if (!error)
        call->error_text[0] = '\0';
    else if (!call->error_text[0])
        snprintf(call->error_text, sizeof(call->error_text), "%s", sc_strerror(error));
    call->done(call);
}

static void end_call(sc_http_client_t *c, sc_http_call_t *call, int error, const char *why)
{
    if (why)
        snprintf(call->error_text, sizeof(call->error_text), "%s", why);
    finish(c, call, error);
}

static void check_done(sc_http_client_t *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *p = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &p);
        sc_httpc_xfer_t *x = (sc_httpc_xfer_t *)(void *)p;
        int error = sc_httpc_map_curl(msg->data.result);
        if (x->abort_error) {
            error = x->abort_error;
            snprintf(x->call->error_text, sizeof(x->call->error_text), "%s", x->why);
        }
        finish(c, x->call, error);
    }
    start_queued(c);
}

/* ---- watchdog: idle and pause timeouts ------------------------------------- */

static void on_watchdog(uv_timer_t *t)
{
    sc_httpc_xfer_t *x = t->data;
    sc_http_call_t *call = x->call;
    if (!call)
        return;
    uint64_t now = uv_now(&x->c->loop);
    char why[96];
    if (x->paused && call->pause_timeout_ms > 0 &&
        now - x->paused_at_ms >= (uint64_t)call->pause_timeout_ms) {
        snprintf(why, sizeof(why), "paused for more than %ld ms", call->pause_timeout_ms);
    } else if (!x->paused && call->idle_timeout_ms > 0 &&
               now - x->last_rx_ms >= (uint64_t)call->idle_timeout_ms) {
        snprintf(why, sizeof(why), "no byte received for %ld ms", call->idle_timeout_ms);
    } else {
        sc_httpc_arm_watchdog(x);
        return;
    }
    sc_http_client_t *c = x->c;
    end_call(c, call, SC_ETIMEDOUT, why);
    start_queued(c);
}

void sc_httpc_arm_watchdog(sc_httpc_xfer_t *x)
{
    const sc_http_call_t *call = x->call;
    uint64_t now = uv_now(&x->c->loop), due;
    if (x->paused && call->pause_timeout_ms > 0)
        due = x->paused_at_ms + (uint64_t)call->pause_timeout_ms;
    else if (!x->paused && call->idle_timeout_ms > 0)
        due = x->last_rx_ms + (uint64_t)call->idle_timeout_ms;
    else {
        uv_timer_stop(&x->watchdog);
        return;
    }
    uv_timer_start(&x->watchdog, on_watchdog, due > now ? due - now : 0, 0);
}

/* ---- starting calls ------------------------------------------------------------ */

static void start_call(sc_http_client_t *c, sc_http_call_t *call)
{
    sc_httpc_xfer_t *x = calloc(1, sizeof(*x));
    int rc = x ? sc_httpc_xfer_setup(x, c, call) : SC_ENOMEM;
    if (rc) {
        free(x);
        end_call(c, call, rc, NULL);
        return;
    }
    uv_timer_init(&c->loop, &x->watchdog);
    x->watchdog.data = x;
    x->last_rx_ms = uv_now(&c->loop);
    call->priv = x;
    call->run_prev = NULL;
    call->run_next = c->running;
    if (c->running)
        c->running->run_prev = call;
    c->running = call;
    c->inflight++;
    if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
        end_call(c, call, SC_ENOMEM, "curl_multi_add_handle failed");
        return;
    }
    sc_httpc_arm_watchdog(x);
}

static void start_queued(sc_http_client_t *c)
{
    for (;;) {
        pthread_mutex_lock(&c->mu);
        sc_http_call_t *call = c->inflight < c->max_inflight ? sc_fifo_pop(&c->queued) : NULL;
        if (call)
            call->priv_state = ST_RUNNING;
        pthread_mutex_unlock(&c->mu);
        if (!call)
            return;
        start_call(c, call);
    }
}

/* Cancels and resumes asked for from other threads. */
static void apply_controls(sc_http_client_t *c)
{
    sc_http_call_t *call = c->running, *next;
    for (; call; call = next) {
        next = call->run_next;
        pthread_mutex_lock(&c->mu);
        int cancel = call->priv_cancel, hold = call->priv_pause;
        pthread_mutex_unlock(&c->mu);
        sc_httpc_xfer_t *x = call->priv;
        if (cancel) {
            end_call(c, call, SC_ECANCELED, "canceled");
        } else if (x->paused && !hold) {
            x->paused = 0;
            x->last_rx_ms = uv_now(&c->loop);
            /* curl hands the held piece over from inside this call. */
            CURLcode rc = curl_easy_pause(x->easy, CURLPAUSE_CONT);
            if (rc != CURLE_OK && x->abort_error)
                end_call(c, call, x->abort_error, x->why);
            else if (rc != CURLE_OK)
                end_call(c, call, sc_httpc_map_curl(rc), curl_easy_strerror(rc));
            else
                sc_httpc_arm_watchdog(x);
        }
    }
}

/* Stopping: fail what is queued and what is running, then close. */
static void shut_down(sc_http_client_t *c)
{
    pthread_mutex_lock(&c->mu);
    sc_http_call_t *q = sc_fifo_take_all(&c->queued);
    pthread_mutex_unlock(&c->mu);
    while (q) {
        sc_http_call_t *next = q->next;
        end_call(c, q, SC_ECLOSED, "client closed");
        q = next;
    }
    while (c->running)
        end_call(c, c->running, SC_ECLOSED, "client closed");
    curl_multi_cleanup(c->multi); /* closes the cached connections' sockets */
    c->multi = NULL;
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->timer, NULL);
}

static void on_wake(uv_async_t *a)
{
    sc_http_client_t *c = a->data;
    pthread_mutex_lock(&c->mu);
    int stop = c->stopping, ctl = c->ctl_pending;
    sc_http_call_t *cancelled = c->cancelled;
    c->cancelled = NULL;
    c->ctl_pending = 0;
    pthread_mutex_unlock(&c->mu);
    while (cancelled) {
        sc_http_call_t *next = cancelled->next;
        end_call(c, cancelled, SC_ECANCELED, "canceled while queued");
        cancelled = next;
    }
    if (stop) {
        shut_down(c);
        return;
    }
    if (ctl)
        apply_controls(c);
    start_queued(c);
}

static void *client_main(void *arg)
{
    sc_http_client_t *c = arg;
    pthread_setname_np(pthread_self(), "sc-httpclient");
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- public API ---------------------------------------------------------------- */

int sc_http_client_create_opts(sc_http_client_t **out, const sc_http_client_opts_t *o,
                               sc_log_t *log)
{
    sc_http_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return SC_ENOMEM;
    c->log = log;
    c->max_inflight = o->max_inflight < 1 ? 1 : o->max_inflight;
    c->queued = SC_FIFO_INIT(sc_http_call_t, next, o->max_queue);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c->multi = curl_multi_init();
    if (!c->multi || uv_loop_init(&c->loop)) {
        if (c->multi)
            curl_multi_cleanup(c->multi);
        free(c);
        return SC_ENOMEM;
    }
    pthread_mutex_init(&c->mu, NULL);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    if (o->max_host_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->max_host_connections);
    if (o->max_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, o->max_connections);
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    uv_timer_init(&c->loop, &c->timer);
    c->timer.data = c;
    if (pthread_create(&c->thread, NULL, client_main, c)) {
        uv_close((uv_handle_t *)&c->wake, NULL);
        uv_close((uv_handle_t *)&c->timer, NULL);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
        curl_multi_cleanup(c->multi);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return SC_ENOMEM;
    }
    *out = c;
    return 0;
}

int sc_http_client_create(sc_http_client_t **out, int max_inflight, size_t max_queue, sc_log_t *log)
{
    sc_http_client_opts_t o = {.max_inflight = max_inflight, .max_queue = max_queue};
    return sc_http_client_create_opts(out, &o, log);
}

int sc_http_client_submit(sc_http_client_t *c, sc_http_call_t *call)
{
    if (sc_httpc_check_request(call))
        return SC_EINVAL;
    pthread_mutex_lock(&c->mu);
    int rc = c->stopping                      ? SC_ECLOSED
             : call->priv_state != ST_IDLE    ? SC_EINVAL
             : c->queued.len >= c->queued.max ? SC_EBUSY
                                              : 0;
    if (!rc) {
        call->status = 0;
        call->error = 0;
        call->error_text[0] = '\0';
        call->http_version = 0;
        sc_buf_reset(&call->response);
        sc_buf_reset(&call->resp_headers);
        call->resp_header_count = 0;
        call->body_bytes = 0;
        call->ttfb_us = call->total_us = 0;
        call->priv = NULL;
        sc_fifo_push(&c->queued, call); /* room checked above */
        call->priv_state = ST_QUEUED;
        call->priv_cancel = call->priv_pause = 0;
        uv_async_send(&c->wake); /* under the lock: the loop cannot be closing */
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Takes 'call' out of the queue (order of the rest kept). Under mu. */
static void unqueue(sc_http_client_t *c, sc_http_call_t *call)
{
    sc_http_call_t *q = sc_fifo_take_all(&c->queued);
    while (q) {
        sc_http_call_t *next = q->next;
        if (q != call)
            sc_fifo_push(&c->queued, q); /* cannot fail: it held them all */
        q = next;
    }
}

enum { CTL_CANCEL, CTL_PAUSE, CTL_RESUME };

/* Cancel, pause and resume from any thread: flags under the lock, and a
 * wake-up for what the client thread must act on. */
static int control(sc_http_client_t *c, sc_http_call_t *call, int what)
{
    int rc = 0;
    pthread_mutex_lock(&c->mu);
    int st = call->priv_state;
    if (st != ST_QUEUED && st != ST_RUNNING) {
        rc = SC_ENOTFOUND;
    } else if (what == CTL_CANCEL) {
        call->priv_cancel = 1;
        if (st == ST_QUEUED) { /* done on the client thread, without a transfer */
            unqueue(c, call);
            call->priv_state = ST_CANCELLED;
            call->next = c->cancelled;
            c->cancelled = call;
        }
    } else {
        call->priv_pause = what == CTL_PAUSE;
    }
    if (!rc && what != CTL_PAUSE) { /* a pause is seen at the next piece */
        c->ctl_pending |= st == ST_RUNNING;
        uv_async_send(&c->wake);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int sc_http_client_cancel(sc_http_client_t *c, sc_http_call_t *call)
{
    return control(c, call, CTL_CANCEL);
}

int sc_http_client_pause(sc_http_client_t *c, sc_http_call_t *call)
{
    return control(c, call, CTL_PAUSE);
}

int sc_http_client_resume(sc_http_client_t *c, sc_http_call_t *call)
{
    return control(c, call, CTL_RESUME);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} waiter_t;

static void wake_waiter(sc_http_call_t *call)
{
    waiter_t *w = call->priv_waiter;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int sc_http_client_call(sc_http_client_t *c, sc_http_call_t *call)
{
    waiter_t w = {.done = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    void (*user_done)(sc_http_call_t *) = call->done;
    call->priv_waiter = &w;
    call->done = wake_waiter;
    int rc = sc_http_client_submit(c, call);
    if (!rc) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = call->error;
    }
    call->done = user_done;
    call->priv_waiter = NULL;
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    return rc;
}

void sc_http_client_destroy(sc_http_client_t *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    uv_async_send(&c->wake);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT); /* close callbacks, if any are left */
    uv_loop_close(&c->loop);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
