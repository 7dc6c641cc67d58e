/* bench_populate.c -- semcached-bench's populate: the key space stored once,
 * before the measured run, over POPULATE_CONNS blocking connections of
 * pipelined chunks (not measured, so plain sockets, not the libuv engine):
 * one connection would pay a durable commit per store. */
#define _GNU_SOURCE
#include <http_parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "sc_common.h"

#include "bench_internal.h"

typedef struct {
    size_t left;
    int bad;
} populate_ctx_t; /* one chunk's answers still to come, and failed ones */

static int populate_done(http_parser *p)
{
    populate_ctx_t *ctx = p->data;
    if (p->status_code != 201)
        ctx->bad++;
    ctx->left--;
    return 0;
}

typedef struct {
    bench_t *b;
    workload_t wl;
    size_t n, first; /* chunks of POPULATE_CHUNK: first, first + POPULATE_CONNS, ... */
    pthread_t th;
} populate_part_t;

#define POPULATE_CHUNK 64
#define POPULATE_CONNS 16

static void populate_fail(const char *why)
{
    fprintf(stderr, "semcached-bench: populate: %s\n", why);
    exit(1);
}

/* One connection's share of the populate: its chunks of pipelined stores. */
static void *populate_part(void *arg)
{
    populate_part_t *pp = arg;
    struct sockaddr_in a;
    uv_ip4_addr(pp->b->cfg.host, pp->b->cfg.port, &a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
        populate_fail("cannot connect to the server");
    thread_t tmp = {.b = pp->b, .rng = 7};
    http_parser_settings settings = {.on_message_complete = populate_done};
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    char rbuf[65536];
    for (size_t i = pp->first * POPULATE_CHUNK; i < pp->n; i += POPULATE_CONNS * POPULATE_CHUNK) {
        sc_buf_t out = {0};
        size_t batch = pp->n - i < POPULATE_CHUNK ? pp->n - i : POPULATE_CHUNK;
        for (size_t j = 0; j < batch; j++)
            bench_build_store(&tmp, &out, pp->wl, i + j);
        for (size_t off = 0; off < out.len;) {
            ssize_t w = write(fd, out.data + off, out.len - off);
            if (w <= 0)
                populate_fail("cannot send");
            off += (size_t)w;
        }
        sc_buf_free(&out);
        populate_ctx_t ctx = {batch, 0};
        p.data = &ctx;
        while (ctx.left) {
            ssize_t r = read(fd, rbuf, sizeof(rbuf));
            if (r <= 0 || http_parser_execute(&p, &settings, rbuf, (size_t)r) != (size_t)r)
                populate_fail("connection failed");
        }
        if (ctx.bad)
            populate_fail("stores failed");
    }
    close(fd);
    return NULL;
}

/* Stores the key space once over POPULATE_CONNS blocking connections (not
 * measured): one connection pays a durable commit per store (QQP: 574 s). */
void bench_populate(bench_t *b, workload_t wl)
{
    size_t n = wl == W_TEXT ? b->n_pairs : b->cfg.keys;
    populate_part_t parts[POPULATE_CONNS];
    uint64_t t0 = sc_mono_ns();
    for (size_t k = 0; k < POPULATE_CONNS; k++) {
        parts[k] = (populate_part_t){.b = b, .wl = wl, .n = n, .first = k};
        if (pthread_create(&parts[k].th, NULL, populate_part, &parts[k]))
            populate_fail("cannot start a thread");
    }
    for (size_t k = 0; k < POPULATE_CONNS; k++)
        pthread_join(parts[k].th, NULL);
    fprintf(stderr, "populated %zu entries in %.1f s\n", n, (double)(sc_mono_ns() - t0) / 1e9);
}
