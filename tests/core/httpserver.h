/* tests/core/httpserver.h -- a small HTTP/1.1 server for the HTTP client's
 * test (tests/core/httpclient.c includes it once): plain blocking sockets, one
 * thread per connection, keep-alive, and routes that echo, stream, stall or
 * sleep on demand, counting connections and requests in progress. A header,
 * not a .c, because every .c under tests/ builds into a test binary. */
#ifndef TESTS_CORE_HTTPSERVER_H
#define TESTS_CORE_HTTPSERVER_H

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sc_common.h"

/* ---- the server ------------------------------------------------------------
 * GET|POST|... /echo         200, body = the request head as received + body
 * /status                    429 with Retry-After, x-request-id, openai-*
 * /headers?n=N               200 with N extra header fields
 * /sleep?ms=N                200 "ok" after N ms (counts requests in progress)
 * /stream?n=N&delay=D        SSE, chunked: N events "data: i\n\n", D ms apart
 * /drip                      SSE headers and one event, then silence
 * /hang                      reads the request, never answers
 * /big?n=N                   N bytes, byte i = i % 251 (counts bytes sent)
 * Every response carries X-Conn: the number of the TCP connection. */

#define MAX_CONNS 512

typedef struct {
    int lfd, port;
    pthread_t acceptor;
    pthread_mutex_t mu;
    int fds[MAX_CONNS];
    pthread_t threads[MAX_CONNS];
    int nconn;
    atomic_int stopping;
    atomic_int accepted, active, max_active;
    atomic_long big_sent;
    atomic_int sent;      /* /stream: events sent so far */
    uint64_t sent_ns[64]; /* /stream: when each event left */
} srv_t;

typedef struct {
    srv_t *s;
    int fd, id;
} conn_t;

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static long query(const char *path, const char *key, long def)
{
    const char *q = strchr(path, '?');
    size_t kl = strlen(key);
    for (const char *p = q; p; p = strchr(p + 1, '&'))
        if (strncmp(p + 1, key, kl) == 0 && p[1 + kl] == '=')
            return atol(p + 2 + kl);
    return def;
}

/* Sleeps 'ms', or less when the server stops; 0 when it stopped. */
static int nap(srv_t *s, long ms)
{
    for (long t = 0; t < ms; t += 5) {
        if (atomic_load(&s->stopping))
            return 0;
        usleep(5000);
    }
    return !atomic_load(&s->stopping);
}

/* Waits until the client closes the connection or the server stops. */
static void wait_close(conn_t *cn)
{
    char b[256];
    while (!atomic_load(&cn->s->stopping)) {
        struct pollfd p = {.fd = cn->fd, .events = POLLIN};
        if (poll(&p, 1, 20) > 0 && recv(cn->fd, b, sizeof(b), 0) <= 0)
            return;
    }
}

static int reply(conn_t *cn, int status, const char *extra, const char *body, size_t len)
{
    char head[8192];
    int n =
        snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nX-Conn: %d\r\n%s\r\n",
                 status, len, cn->id, extra ? extra : "");
    return send_all(cn->fd, head, (size_t)n) || send_all(cn->fd, body, len) ? 0 : 1;
}

static int sse_head(conn_t *cn)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Transfer-Encoding: chunked\r\nX-Conn: %d\r\n\r\n",
                     cn->id);
    return send_all(cn->fd, head, (size_t)n);
}

static int sse_event(conn_t *cn, const char *ev)
{
    char frame[256];
    int n = snprintf(frame, sizeof(frame), "%zx\r\n%s\r\n", strlen(ev), ev);
    return send_all(cn->fd, frame, (size_t)n);
}

static int route_stream(conn_t *cn, const char *path)
{
    srv_t *s = cn->s;
    long n = query(path, "n", 5), delay = query(path, "delay", 100);
    if (sse_head(cn))
        return 0;
    for (long i = 0; i < n; i++) {
        char ev[64];
        snprintf(ev, sizeof(ev), "data: %ld\n\n", i);
        if ((i && !nap(s, delay)) || sse_event(cn, ev))
            return 0;
        if (i < 64)
            s->sent_ns[i] = sc_mono_ns();
        atomic_store(&s->sent, (int)i + 1);
    }
    return send_all(cn->fd, "0\r\n\r\n", 5) ? 0 : 1;
}

static int route_big(conn_t *cn, const char *path)
{
    long n = query(path, "n", 1 << 20);
    char head[128], piece[65536];
    int hl = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\n\r\n", n);
    if (send_all(cn->fd, head, (size_t)hl))
        return 0;
    for (long at = 0; at < n;) {
        size_t k = (size_t)(n - at) < sizeof(piece) ? (size_t)(n - at) : sizeof(piece);
        for (size_t i = 0; i < k; i++)
            piece[i] = (char)((at + (long)i) % 251);
        if (send_all(cn->fd, piece, k))
            return 0;
        at += (long)k;
        atomic_fetch_add(&cn->s->big_sent, (long)k);
    }
    return 1;
}

/* Answers one request; 1 to keep the connection. */
static int route(conn_t *cn, const char *head, size_t head_len, const char *body, size_t blen)
{
    srv_t *s = cn->s;
    char path[512] = "";
    sscanf(head, "%*s %511s", path);
    if (strncmp(path, "/echo", 5) == 0) {
        char *all = malloc(head_len + blen + 1);
        memcpy(all, head, head_len);
        memcpy(all + head_len, body, blen);
        int keep = reply(cn, 200, "Content-Type: text/plain\r\n", all, head_len + blen);
        free(all);
        return keep;
    }
    if (strncmp(path, "/status", 7) == 0)
        return reply(cn, 429,
                     "Content-Type: application/json\r\nRetry-After: 7\r\n"
                     "x-request-id: req-123\r\nopenai-processing-ms: 12\r\n",
                     "{\"error\":\"rate\"}", 16);
    if (strncmp(path, "/headers", 8) == 0) {
        char extra[8192] = "";
        size_t at = 0;
        for (long i = 0; i < query(path, "n", 1) && at < sizeof(extra) - 64; i++)
            at += (size_t)snprintf(extra + at, sizeof(extra) - at, "X-H-%ld: v%ld\r\n", i, i);
        return reply(cn, 200, extra, "h", 1);
    }
    if (strncmp(path, "/sleep", 6) == 0) {
        int now = atomic_fetch_add(&s->active, 1) + 1, max = atomic_load(&s->max_active);
        while (now > max && !atomic_compare_exchange_weak(&s->max_active, &max, now))
            ;
        int ok = nap(s, query(path, "ms", 100));
        atomic_fetch_sub(&s->active, 1);
        return ok && reply(cn, 200, NULL, "ok", 2);
    }
    if (strncmp(path, "/stream", 7) == 0)
        return route_stream(cn, path);
    if (strncmp(path, "/drip", 5) == 0) {
        if (!sse_head(cn) && !sse_event(cn, "data: first\n\n"))
            wait_close(cn);
        return 0;
    }
    if (strncmp(path, "/hang", 5) == 0) {
        wait_close(cn);
        return 0;
    }
    if (strncmp(path, "/big", 4) == 0)
        return route_big(cn, path);
    return reply(cn, 404, NULL, "", 0);
}

static size_t content_length(const char *head)
{
    const char *p = strcasestr(head, "\r\nContent-Length:");
    return p ? (size_t)atol(p + 17) : 0;
}

static void *conn_main(void *arg)
{
    conn_t cn = *(conn_t *)arg;
    free(arg);
    size_t cap = 1 << 16, have = 0;
    char *buf = malloc(cap);
    for (;;) {
        char *end;
        while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
            ssize_t r = have < cap ? recv(cn.fd, buf + have, cap - have, 0) : -1;
            if (r <= 0)
                goto out;
            have += (size_t)r;
        }
        size_t head_len = (size_t)(end + 4 - buf);
        char *head = strndup(buf, head_len);
        size_t clen = content_length(head), got = have - head_len < clen ? have - head_len : clen;
        char *body = malloc(clen + 1);
        memcpy(body, buf + head_len, got);
        while (got < clen) {
            ssize_t r = recv(cn.fd, body + got, clen - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        int keep = got == clen && route(&cn, head, head_len, body, clen);
        size_t used = head_len + (have - head_len < clen ? have - head_len : clen);
        memmove(buf, buf + used, have - used);
        have -= used;
        free(head);
        free(body);
        if (!keep)
            break;
    }
out:
    shutdown(cn.fd, SHUT_RDWR); /* closed at stop, so its number is never reused meanwhile */
    free(buf);
    return NULL;
}

static void *accept_main(void *arg)
{
    srv_t *s = arg;
    for (;;) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (atomic_load(&s->stopping))
                return NULL;
            continue;
        }
        pthread_mutex_lock(&s->mu);
        conn_t *cn = malloc(sizeof(*cn));
        *cn = (conn_t){s, fd, atomic_fetch_add(&s->accepted, 1) + 1};
        if (s->nconn < MAX_CONNS && !pthread_create(&s->threads[s->nconn], NULL, conn_main, cn)) {
            s->fds[s->nconn++] = fd;
        } else {
            close(fd);
            free(cn);
        }
        pthread_mutex_unlock(&s->mu);
    }
}

static srv_t *srv_start(void)
{
    srv_t *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s->lfd, 256), 0);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->acceptor, NULL, accept_main, s);
    return s;
}

static void srv_stop(srv_t *s)
{
    atomic_store(&s->stopping, 1);
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->acceptor, NULL);
    close(s->lfd);
    for (int i = 0; i < s->nconn; i++) {
        shutdown(s->fds[i], SHUT_RDWR);
        pthread_join(s->threads[i], NULL);
        close(s->fds[i]);
    }
    pthread_mutex_destroy(&s->mu);
    free(s);
}

#endif
