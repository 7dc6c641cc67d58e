/* httpclient.c -- curl multi on a private libuv loop (curl's socket API:
 * curl says which sockets to watch and when to time out; uv_poll and a
 * uv_timer tell it back). Submissions cross threads through a locked queue
 * and a uv_async wake-up; completions call the caller's 'done' on this thread. */
#define _GNU_SOURCE
#include "sc_httpclient.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "sc_fifo.h"

#define MAX_RESPONSE (64u << 20)

struct sc_http_client_s {
    sc_log_t *log;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer;
    CURLM *multi;
    pthread_t thread;
    pthread_mutex_t mu;
    sc_fifo_t queued;              /* guarded by mu */
    int inflight, max_inflight;    /* loop thread only */
    sc_http_call_t *running;       /* in-flight calls, loop thread only */
    int stopping;                  /* guarded by mu */
};

typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    sc_http_client_t *c;
} sock_ctx_t;

static void check_done(sc_http_client_t *c);
static void start_queued(sc_http_client_t *c);

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
        uv_poll_init_socket(&c->loop, &s->poll, fd);
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

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    sc_http_call_t *call = userdata;
    size_t n = size * nmemb;
    if (call->response.len + n > MAX_RESPONSE || sc_buf_append(&call->response, ptr, n))
        return 0; /* makes curl fail the transfer */
    return n;
}

static void finish(sc_http_client_t *c, sc_http_call_t *call, int error)
{
    if (call->priv_easy) {
        curl_multi_remove_handle(c->multi, call->priv_easy);
        curl_easy_cleanup(call->priv_easy);
        c->inflight--;
        if (call->run_prev)
            call->run_prev->run_next = call->run_next;
        else
            c->running = call->run_next;
        if (call->run_next)
            call->run_next->run_prev = call->run_prev;
        call->run_prev = call->run_next = NULL;
    }
    curl_slist_free_all(call->priv_hdrs);
    call->priv_easy = call->priv_hdrs = NULL;
    call->error = error;
    call->done(call);
}

static void check_done(sc_http_client_t *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        sc_http_call_t *call;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&call);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &call->status);
        CURLcode rc = msg->data.result;
        finish(c, call, rc == CURLE_OK ? 0 : rc == CURLE_OPERATION_TIMEDOUT ? SC_ETIMEDOUT : SC_EREMOTE);
    }
    start_queued(c);
}

static void start_queued(sc_http_client_t *c)
{
    for (;;) {
        pthread_mutex_lock(&c->mu);
        sc_http_call_t *call = c->inflight < c->max_inflight ? sc_fifo_pop(&c->queued) : NULL;
        pthread_mutex_unlock(&c->mu);
        if (!call)
            return;
        CURL *e = curl_easy_init();
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        if (call->auth[0]) {
            char line[600];
            snprintf(line, sizeof(line), "Authorization: %s", call->auth);
            h = curl_slist_append(h, line);
        }
        if (!e || !h) {
            curl_easy_cleanup(e);
            curl_slist_free_all(h);
            call->error = SC_ENOMEM;
            call->done(call);
            continue;
        }
        curl_easy_setopt(e, CURLOPT_URL, call->url);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
        curl_easy_setopt(e, CURLOPT_PRIVATE, call);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, call->timeout_ms > 0 ? call->timeout_ms : 2000L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        if (call->body.len || call->body.data) {
            curl_easy_setopt(e, CURLOPT_POST, 1L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body.data ? call->body.data : "");
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)call->body.len);
        }
        call->priv_easy = e;
        call->priv_hdrs = h;
        call->run_prev = NULL;
        call->run_next = c->running;
        if (c->running)
            c->running->run_prev = call;
        c->running = call;
        c->inflight++;
        curl_multi_add_handle(c->multi, e);
    }
}

static void on_wake(uv_async_t *a)
{
    sc_http_client_t *c = a->data;
    pthread_mutex_lock(&c->mu);
    int stop = c->stopping;
    pthread_mutex_unlock(&c->mu);
    if (!stop) {
        start_queued(c);
        return;
    }
    /* Stopping: fail what is queued and what is running, then close. */
    pthread_mutex_lock(&c->mu);
    sc_http_call_t *q = sc_fifo_take_all(&c->queued);
    pthread_mutex_unlock(&c->mu);
    while (q) {
        sc_http_call_t *next = sc_fifo_next(&c->queued, q);
        q->error = SC_ECLOSED;
        q->done(q);
        q = next;
    }
    while (c->running)
        finish(c, c->running, SC_ECLOSED);
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->timer, NULL);
}

static void *client_main(void *arg)
{
    sc_http_client_t *c = arg;
    pthread_setname_np(pthread_self(), "sc-httpclient");
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

int sc_http_client_create(sc_http_client_t **out, int max_inflight, size_t max_queue,
                          sc_log_t *log)
{
    sc_http_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return SC_ENOMEM;
    c->log = log;
    c->max_inflight = max_inflight < 1 ? 1 : max_inflight;
    c->queued = SC_FIFO_INIT(sc_http_call_t, next, max_queue);
    pthread_mutex_init(&c->mu, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    c->multi = curl_multi_init();
    if (!c->multi || uv_loop_init(&c->loop)) {
        free(c);
        return SC_ENOMEM;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    uv_timer_init(&c->loop, &c->timer);
    c->timer.data = c;
    if (pthread_create(&c->thread, NULL, client_main, c)) {
        curl_multi_cleanup(c->multi);
        free(c);
        return SC_ENOMEM;
    }
    *out = c;
    return 0;
}

int sc_http_client_submit(sc_http_client_t *c, sc_http_call_t *call)
{
    pthread_mutex_lock(&c->mu);
    call->status = 0;
    call->error = 0;
    int rc = c->stopping ? SC_ECLOSED : sc_fifo_push(&c->queued, call);
    pthread_mutex_unlock(&c->mu);
    if (!rc)
        uv_async_send(&c->wake);
    return rc;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    void (*user_done)(sc_http_call_t *);
    void *user_data;
} waiter_t;

static void wake_waiter(sc_http_call_t *call)
{
    waiter_t *w = call->data;
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
    w.user_data = call->data;
    call->data = &w;
    call->done = wake_waiter;
    int rc = sc_http_client_submit(c, call);
    if (!rc) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = call->error;
    }
    call->data = w.user_data;
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
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->wake);
    pthread_join(c->thread, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT); /* close callbacks of the last sockets */
    uv_loop_close(&c->loop);
    curl_multi_cleanup(c->multi);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void sc_http_call_clear(sc_http_call_t *call)
{
    sc_buf_free(&call->body);
    sc_buf_free(&call->response);
}
