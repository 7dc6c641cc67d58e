/* bench.c -- semcached-bench's engine: an HTTP/1.1 load generator on libuv.
 * Closed loop (each connection keeps --pipeline requests outstanding) or open
 * loop at a fixed --rate, where every request has an intended send time on a
 * fixed schedule (a timerfd with nanosecond resolution) and its latency is
 * measured from that time, so a stalled server cannot hide its queueing
 * (no coordinated omission). The clock (warm-up, then the measured window)
 * starts only once every connection is up, so a run without warm-up does not
 * charge the client's own start-up (thread start, connect storm) to the
 * server as the queueing of requests scheduled before it could send them;
 * how long connecting took is reported apart. Latencies go into a log-linear
 * histogram; non-2xx answers and transport errors are counted apart, never
 * folded in. The options, data files and report are in bench_main.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#include "histogram.h"
#include "sc_common.h"

#include "bench_internal.h"

/* ---- randomness and data ------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double rng_unit(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

size_t bench_zipf_pick(bench_t *b, uint64_t *rng)
{
    if (!b->zipf_cdf)
        return (size_t)(rng_next(rng) % b->cfg.keys);
    double u = rng_unit(rng);
    size_t lo = 0, hi = b->cfg.keys - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (b->zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void vector_raw(float *out, uint64_t k, int dim, double noise, uint64_t *rng);

/* Vector of key 'k' (deterministic), plus noise when 'noise' > 0, as base64
 * little-endian float32: what OpenAI's encoding_format "base64" returns. */
void bench_vector_b64(sc_buf_t *out, uint64_t k, int dim, double noise, uint64_t *rng)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t raw[4 * 4096 + 3];
    float v[4096];
    vector_raw(v, k, dim, noise, rng);
    memcpy(raw, v, (size_t)dim * 4); /* x86-64 is little-endian */
    size_t n = (size_t)dim * 4;
    raw[n] = raw[n + 1] = 0;
    sc_buf_reserve(out, n / 3 * 4 + 8);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
        char q[4] = {tbl[v >> 18 & 63], tbl[v >> 12 & 63], tbl[v >> 6 & 63], tbl[v & 63]};
        if (i + 1 >= n)
            q[2] = '=';
        if (i + 2 >= n)
            q[3] = '=';
        sc_buf_append(out, q, 4);
    }
}

/* The raw float32 vector of key 'k' (what vector_b64 encodes). Sentence
 * embeddings occupy a low-dimensional part of their space, so each vector is
 * a random point of a fixed 32-dimensional subspace plus a little isotropic
 * noise; 'noise' adds a paraphrase's perturbation on top. */
#define LATENT 32
static void vector_raw(float *out, uint64_t k, int dim, double noise, uint64_t *rng)
{
    uint64_t s = k * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
    double z[LATENT];
    for (int j = 0; j < LATENT; j++)
        z[j] = rng_unit(&s) - 0.5;
    for (int i = 0; i < dim; i++) {
        uint64_t a = 0xA5A5A5A5ULL + (uint64_t)i * 0x100000001B3ULL; /* the fixed basis */
        double x = 0;
        for (int j = 0; j < LATENT; j++)
            x += z[j] * (rng_unit(&a) - 0.5);
        x += 0.05 * (rng_unit(&s) - 0.5);
        if (noise > 0)
            x += noise * (rng_unit(rng) - 0.5);
        out[i] = (float)x;
    }
}

/* Writes the base vectors and the vectors workload's query pool (the same
 * QUERY_POOL noisy queries, from the same seed, that a run sends) as texmex
 * fvecs, and each query's source key as PREFIX_source.ivecs, so an in-process
 * peer searches exactly the same data and can check what the server serves. */
int bench_dump_vectors(bench_t *b, const char *prefix)
{
    char path[1100];
    int dim = b->cfg.dim;
    float *v = malloc((size_t)dim * sizeof(float));
    uint64_t rng = QUERY_SEED;
    snprintf(path, sizeof(path), "%s_source.ivecs", prefix);
    FILE *src = fopen(path, "wb");
    for (int file = 0; src && file < 2; file++) {
        snprintf(path, sizeof(path), "%s_%s.fvecs", prefix, file ? "query" : "base");
        FILE *f = fopen(path, "wb");
        if (!f)
            break;
        size_t n = file ? QUERY_POOL : b->cfg.keys;
        for (size_t i = 0; i < n; i++) {
            uint64_t k = file ? bench_zipf_pick(b, &rng) : i;
            vector_raw(v, k, dim, file ? QUERY_NOISE : 0, &rng);
            int32_t d = dim, key = (int32_t)k, one = 1;
            fwrite(&d, 4, 1, f);
            fwrite(v, sizeof(float), (size_t)dim, f);
            if (file) {
                fwrite(&one, 4, 1, src);
                fwrite(&key, 4, 1, src);
            }
        }
        fclose(f);
    }
    free(v);
    return src && !fclose(src) ? 0 : -1;
}

/* ---- request building --------------------------------------------------- */

static void http_post(sc_buf_t *out, const cfg_t *c, const char *path, const sc_buf_t *body)
{
    sc_buf_printf(out,
                  "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  path, c->host, body->len);
    sc_buf_append(out, body->data, body->len);
}

static void body_head(sc_buf_t *b, const cfg_t *c)
{
    sc_buf_printf(b,
                  "{\"namespace\":\"%s\",\"model\":\"bench-model\",\"params\":{\"temperature\":0},",
                  c->ns);
}

void bench_build_store(thread_t *t, sc_buf_t *out, workload_t wl, uint64_t k)
{
    bench_t *b = t->b;
    sc_buf_t body = {0};
    body_head(&body, &b->cfg);
    if (wl == W_TEXT) {
        sc_buf_puts(&body, "\"prompt\":");
        const char *q = b->pairs[k % b->n_pairs].q1;
        sc_buf_json_str(&body, q, strlen(q));
    } else {
        sc_buf_printf(&body, "\"prompt\":\"%s question number %llu\"",
                      wl == W_MISS_STORE ? "fresh" : "bench", (unsigned long long)k);
    }
    if (wl == W_VECTORS || wl == W_VECTOR_STORE) {
        sc_buf_puts(&body, ",\"embedding\":\"");
        bench_vector_b64(&body, k, b->cfg.dim, 0, &t->rng);
        sc_buf_puts(&body, "\"");
    }
    if ((wl == W_MISS_STORE || wl == W_VECTOR_STORE) &&
        b->cfg.ttl_s > 0) /* churn: fresh entries expire */
        sc_buf_printf(&body, ",\"ttl_s\":%ld", b->cfg.ttl_s);
    sc_buf_printf(
        &body, ",\"response\":\"%s\",\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":%zu}}",
        b->value, b->cfg.value_size / 4);
    http_post(out, &b->cfg, "/v1/store", &body);
    sc_buf_free(&body);
}

/* Appends the next request of a workload; fills in what to expect. */
static void build_request(thread_t *t, sc_buf_t *out, inflight_t *m)
{
    bench_t *b = t->b;
    const cfg_t *c = &b->cfg;
    int pick = (int)(rng_next(&t->rng) % (uint64_t)c->mix_total);
    workload_t wl = 0;
    for (int i = 0; i < W_COUNT; i++) {
        if (pick < c->mix[i]) {
            wl = (workload_t)i;
            break;
        }
        pick -= c->mix[i];
    }
    m->wl = wl;
    m->kind = K_LOOKUP;
    m->label = -1;
    m->follow_key = 0;
    m->src_key = -1;
    sc_buf_t body = {0};
    switch (wl) {
    case W_RAW:
        m->kind = K_RAW;
        sc_buf_printf(out, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", c->raw_path, c->host);
        return;
    case W_EXACT: {
        uint64_t k = bench_zipf_pick(b, &t->rng);
        body_head(&body, c);
        sc_buf_printf(&body, "\"prompt\":\"bench question number %llu\"}", (unsigned long long)k);
        break;
    }
    case W_MISS_STORE: {
        uint64_t k = ((uint64_t)t->id << 40) + ++t->key_counter + ((uint64_t)b->start_ns << 8);
        body_head(&body, c);
        sc_buf_printf(&body, "\"prompt\":\"fresh question number %llu\"}", (unsigned long long)k);
        m->follow_key = k;
        break;
    }
    case W_VECTORS: {
        const query_t *q = &b->queries[rng_next(&t->rng) % QUERY_POOL];
        body_head(&body, c);
        sc_buf_printf(&body, "\"prompt\":\"reworded bench question %llu\",\"embedding\":\"%s\"}",
                      (unsigned long long)q->key, q->b64);
        m->src_key = (int64_t)q->key;
        break;
    }
    case W_VECTOR_STORE: {
        /* A new entry with a vector in the vectors workload's scope: the
         * index grows while it is searched. */
        uint64_t k = c->keys + ((((uint64_t)t->id << 48) ^ ((uint64_t)b->start_ns << 20)) >> 1) +
                     ++t->key_counter; /* fresh in every run */
        m->kind = K_STORE;
        bench_build_store(t, out, W_VECTOR_STORE, k);
        return;
    }
    case W_TEXT: {
        uint64_t k = rng_next(&t->rng) % b->n_pairs;
        body_head(&body, c);
        sc_buf_puts(&body, "\"prompt\":");
        sc_buf_json_str(&body, b->pairs[k].q2, strlen(b->pairs[k].q2));
        sc_buf_puts(&body, "}");
        m->label = b->pairs[k].duplicate;
        break;
    }
    default:
        break;
    }
    http_post(out, c, "/v1/lookup", &body);
    sc_buf_free(&body);
}

/* ---- connections -------------------------------------------------------- */

static void conn_send(conn_t *cn, sc_buf_t *bytes);

typedef struct {
    uv_write_t req;
    sc_buf_t buf;
} wbuf_t;

static void on_written(uv_write_t *w, int status)
{
    wbuf_t *wb = (wbuf_t *)w;
    conn_t *cn = w->data;
    if (status < 0 && !cn->closed)
        cn->t->st.transport++;
    sc_buf_free(&wb->buf);
    free(wb);
}

/* Writes what the socket takes now and queues only the rest: a uv_write that
 * completes costs libuv an epoll_ctl when its queue drains, and the client
 * shares the machine's cores with the server it measures. */
static void conn_send(conn_t *cn, sc_buf_t *bytes)
{
    uv_buf_t now = uv_buf_init(bytes->data, (unsigned)bytes->len);
    int n = uv_try_write((uv_stream_t *)&cn->tcp, &now, 1);
    if (n < 0 && n != UV_EAGAIN) {
        cn->t->st.transport++;
        sc_buf_free(bytes);
        return;
    }
    size_t written = n > 0 ? (size_t)n : 0;
    if (written == bytes->len) {
        sc_buf_free(bytes);
        return;
    }
    wbuf_t *wb = calloc(1, sizeof(*wb));
    if (!wb) {
        cn->t->st.transport++;
        sc_buf_free(bytes);
        return;
    }
    wb->buf = *bytes;
    memset(bytes, 0, sizeof(*bytes));
    wb->req.data = cn;
    uv_buf_t ub = uv_buf_init(wb->buf.data + written, (unsigned)(wb->buf.len - written));
    if (uv_write(&wb->req, (uv_stream_t *)&cn->tcp, &ub, 1, on_written)) {
        cn->t->st.transport++;
        sc_buf_free(&wb->buf);
        free(wb);
    }
}

static int open_loop(const thread_t *t)
{
    return t->b->cfg.rate > 0;
}

static int may_send(thread_t *t)
{
    bench_t *b = t->b;
    if (atomic_load(&b->stopping))
        return 0;
    if (b->cfg.requests && t->sent_total >= b->cfg.requests / (uint64_t)b->cfg.threads)
        return 0;
    return 1;
}

/* Sends requests while the connection has pipeline room: in closed loop
 * always, in open loop only for scheduled times waiting in the backlog. */
static void conn_fill(conn_t *cn)
{
    thread_t *t = cn->t;
    if (!cn->connected || cn->closed || !t->going)
        return;
    sc_buf_t out = {0};
    while (cn->count < t->b->cfg.pipeline) {
        inflight_t m;
        if (cn->pending_n) { /* a store following a miss goes first */
            m = cn->pending_meta[0];
            memmove(cn->pending_meta, cn->pending_meta + 1, (size_t)--cn->pending_n * sizeof(m));
            bench_build_store(t, &out, W_MISS_STORE, m.follow_key);
            m.kind = K_STORE;
            m.follow_key = 0;
        } else {
            if (!may_send(t))
                break;
            if (open_loop(t)) {
                if (!t->bl_count)
                    break;
                m.intended_ns = t->backlog[t->bl_head];
                t->bl_head = (t->bl_head + 1) % t->bl_cap;
                t->bl_count--;
            } else {
                m.intended_ns = sc_mono_ns();
            }
            uint64_t intended = m.intended_ns;
            build_request(t, &out, &m);
            m.intended_ns = intended;
            t->sent_total++;
        }
        cn->q[(cn->head + cn->count) % MAX_PIPELINE] = m;
        cn->count++;
    }
    if (out.len)
        conn_send(cn, &out);
    sc_buf_free(&out);
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    conn_t *cn = p->data;
    if (cn->body.len < 4096) /* only the start matters for classification */
        sc_buf_append(&cn->body, at, n);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    conn_t *cn = p->data;
    sc_buf_reset(&cn->body);
    return 0;
}

/* Whether a semantic hit's answer is the entry the query reworded: its
 * matched prompt is that key's (bench_build_store's "bench question number K"). */
static int served_source(const char *body, uint64_t key)
{
    char want[96];
    snprintf(want, sizeof(want), "\"matched_prompt\":\"bench question number %llu\"",
             (unsigned long long)key);
    return strstr(body, want) != NULL;
}

static int on_message_complete(http_parser *p)
{
    conn_t *cn = p->data;
    thread_t *t = cn->t;
    bench_t *b = t->b;
    if (!cn->count) {
        t->st.transport++; /* an answer nobody asked for */
        return 0;
    }
    inflight_t m = cn->q[cn->head];
    cn->head = (cn->head + 1) % MAX_PIPELINE;
    cn->count--;
    uint64_t now = sc_mono_ns();
    int measured = m.intended_ns >= b->measure_ns && now <= b->end_ns + 2000000000ull;
    int ok = p->status_code >= 200 && p->status_code < 300;
    stats_t *st = &t->st;
    if (measured) {
        if (!ok) {
            st->non2xx++;
        } else {
            st->done[m.kind]++;
            hist_record(&st->lat[m.kind], now - m.intended_ns);
            hist_record(&st->all, now - m.intended_ns);
            bench_series_record(st, m.intended_ns - b->measure_ns, now - m.intended_ns);
        }
    }
    atomic_fetch_add_explicit(&t->live_done, 1, memory_order_relaxed);
    if (!ok)
        atomic_fetch_add_explicit(&t->live_errors, 1, memory_order_relaxed);
    if (ok && m.kind == K_LOOKUP) {
        const char *bd = cn->body.data ? cn->body.data : "";
        int exact = strstr(bd, "\"match\":\"exact\"") != NULL;
        int sem = !exact && strstr(bd, "\"match\":\"semantic\"") != NULL;
        if (exact || sem)
            atomic_fetch_add_explicit(&t->live_hits, 1, memory_order_relaxed);
        if (measured) {
            st->exact_hits += (uint64_t)exact;
            st->semantic_hits += (uint64_t)sem;
            st->misses += (uint64_t)(!exact && !sem);
            if (sem && m.src_key >= 0)
                st->sem_on_source += served_source(bd, (uint64_t)m.src_key);
            if (sem && m.label >= 0) {
                st->tp += (uint64_t)(m.label == 1);
                st->fp += (uint64_t)(m.label == 0);
            }
        }
        if (m.follow_key && !exact && !sem && cn->pending_n < MAX_PIPELINE) {
            m.intended_ns = now;
            cn->pending_meta[cn->pending_n++] = m;
        }
    }
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *cn = h->data;
    (void)suggested;
    buf->base = cn->rbuf;
    buf->len = sizeof(cn->rbuf);
}

static void on_connect(uv_connect_t *req, int status);

/* A connection the server closed is replaced, as a real client would; only
 * requests that were outstanding on it count as errors. */
static void on_closed_reconnect(uv_handle_t *h)
{
    conn_t *cn = h->data;
    thread_t *t = cn->t;
    if (atomic_load(&t->b->stopping) || cn->closed != 2)
        return;
    cn->count = cn->head = 0;
    cn->pending_n = 0;
    cn->connected = 0;
    cn->closed = 0;
    sc_buf_reset(&cn->body);
    uv_tcp_init(&t->loop, &cn->tcp);
    cn->tcp.data = cn;
    http_parser_init(&cn->parser, HTTP_RESPONSE);
    cn->parser.data = cn;
    struct sockaddr_in a;
    uv_ip4_addr(t->b->cfg.host, t->b->cfg.port, &a);
    cn->creq.data = cn;
    uv_tcp_connect(&cn->creq, &cn->tcp, (struct sockaddr *)&a, on_connect);
}

static void conn_close(conn_t *cn)
{
    if (cn->closed)
        return;
    cn->closed = 1;
    uv_close((uv_handle_t *)&cn->tcp, NULL);
}

static void conn_close_reconnect(conn_t *cn)
{
    if (cn->closed)
        return;
    cn->closed = 2;
    uv_close((uv_handle_t *)&cn->tcp, on_closed_reconnect);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *cn = s->data;
    if (n < 0) {
        if (cn->count)
            cn->t->st.transport += (uint64_t)cn->count;
        if (n == UV_EOF && !atomic_load(&cn->t->b->stopping))
            conn_close_reconnect(cn);
        else
            conn_close(cn);
    } else if (n > 0) {
        size_t used = http_parser_execute(&cn->parser, &parser_settings, buf->base, (size_t)n);
        if (used != (size_t)n || HTTP_PARSER_ERRNO(&cn->parser) != HPE_OK) {
            cn->t->st.transport++;
            conn_close(cn);
        } else {
            conn_fill(cn);
        }
    }
}

/* A connection's first connect has finished, either way: when the thread's
 * last one has, the thread is ready for the clock to start. */
static void conn_settle(conn_t *cn)
{
    thread_t *t = cn->t;
    if (cn->settled)
        return;
    cn->settled = 1;
    if (++t->n_settled == t->n_conns)
        atomic_fetch_add(&t->b->ready_threads, 1);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *cn = req->data;
    conn_settle(cn);
    if (cn->closed)
        return;
    if (status < 0) {
        fprintf(stderr, "semcached-bench: connect to %s:%d: %s\n", cn->t->b->cfg.host,
                cn->t->b->cfg.port, uv_strerror(status));
        cn->t->st.transport++;
        conn_close(cn);
        return;
    }
    cn->connected = 1;
    uv_tcp_nodelay(&cn->tcp, 1);
    uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read);
    conn_fill(cn);
}

/* ---- schedule (open loop) ------------------------------------------------ */

static void arm_timer(thread_t *t)
{
    struct itimerspec its = {0};
    its.it_value.tv_sec = (time_t)(t->next_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(t->next_ns % 1000000000ull);
    timerfd_settime(t->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_tick(uv_poll_t *p, int status, int events)
{
    thread_t *t = p->data;
    (void)status;
    (void)events;
    uint64_t expirations;
    if (read(t->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
        return;
    uint64_t now = sc_mono_ns();
    /* Only starts scheduled inside the window belong to the schedule: on a
     * loaded machine the stop timer can fire late, and ticks until then
     * must not add starts past its end. */
    while (t->next_ns <= now && t->next_ns < t->b->end_ns && may_send(t)) {
        if (t->bl_count == t->bl_cap) { /* grow the ring */
            size_t cap = t->bl_cap * 2;
            uint64_t *nb = malloc(cap * sizeof(uint64_t));
            for (size_t i = 0; i < t->bl_count; i++)
                nb[i] = t->backlog[(t->bl_head + i) % t->bl_cap];
            free(t->backlog);
            t->backlog = nb;
            t->bl_head = 0;
            t->bl_cap = cap;
        }
        t->backlog[(t->bl_head + t->bl_count) % t->bl_cap] = t->next_ns;
        t->bl_count++;
        t->next_ns += t->interval_ns;
    }
    /* Hand scheduled requests to the least loaded connections. */
    for (int round = 0; round < t->n_conns && t->bl_count; round++) {
        conn_t *best = NULL;
        for (int i = 0; i < t->n_conns; i++) {
            conn_t *cn = &t->conns[i];
            if (cn->connected && !cn->closed && cn->count < t->b->cfg.pipeline &&
                (!best || cn->count < best->count))
                best = cn;
        }
        if (!best)
            break;
        conn_fill(best);
    }
    arm_timer(t);
}

static void on_stop_timer(uv_timer_t *tm)
{
    thread_t *t = tm->data;
    int idle = 1;
    for (int i = 0; i < t->n_conns; i++)
        idle &= !t->conns[i].count || t->conns[i].closed;
    if (!atomic_load(&t->b->stopping) && sc_mono_ns() < t->b->end_ns && may_send(t))
        return;
    if (!idle && sc_mono_ns() < t->b->end_ns + 2000000000ull)
        return; /* let outstanding answers arrive, up to 2 s */
    for (int i = 0; i < t->n_conns; i++) {
        t->conns[i].closed = 0;
        if (!uv_is_closing((uv_handle_t *)&t->conns[i].tcp))
            uv_close((uv_handle_t *)&t->conns[i].tcp, NULL);
        t->conns[i].closed = 1;
    }
    if (open_loop(t)) {
        uv_poll_stop(&t->timer_poll);
        uv_close((uv_handle_t *)&t->timer_poll, NULL);
    }
    uv_close((uv_handle_t *)&t->go, NULL);
    uv_close((uv_handle_t *)tm, NULL);
}

/* The clock has started (bench_run_phase set b->start_ns before the signal):
 * the schedule begins, or in closed loop every connection starts sending. */
static void on_go(uv_async_t *a)
{
    thread_t *t = a->data;
    bench_t *b = t->b;
    if (t->going)
        return;
    t->going = 1;
    if (open_loop(t)) {
        t->next_ns = b->start_ns + (uint64_t)t->id * t->interval_ns / (uint64_t)b->cfg.threads;
        uv_poll_start(&t->timer_poll, UV_READABLE, on_tick);
        arm_timer(t);
    } else {
        for (int i = 0; i < t->n_conns; i++)
            conn_fill(&t->conns[i]);
    }
    uv_timer_init(&t->loop, &t->stop_timer);
    t->stop_timer.data = t;
    uv_timer_start(&t->stop_timer, on_stop_timer, 50, 50);
}

static void *thread_main(void *arg)
{
    thread_t *t = arg;
    bench_t *b = t->b;
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake on schedule, not 50 us late */
    struct sockaddr_storage addr;
    if (uv_ip4_addr(b->cfg.host, b->cfg.port, (struct sockaddr_in *)&addr))
        uv_ip6_addr(b->cfg.host, b->cfg.port, (struct sockaddr_in6 *)&addr);
    for (int i = 0; i < t->n_conns; i++) {
        conn_t *cn = &t->conns[i];
        cn->t = t;
        uv_tcp_init(&t->loop, &cn->tcp);
        cn->tcp.data = cn;
        http_parser_init(&cn->parser, HTTP_RESPONSE);
        cn->parser.data = cn;
        cn->creq.data = cn;
        uv_tcp_connect(&cn->creq, &cn->tcp, (struct sockaddr *)&addr, on_connect);
    }
    if (open_loop(t)) {
        t->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        t->interval_ns = (uint64_t)(1e9 * b->cfg.threads / b->cfg.rate);
        t->bl_cap = 1024;
        t->backlog = malloc(t->bl_cap * sizeof(uint64_t));
        uv_poll_init(&t->loop, &t->timer_poll, t->timer_fd);
        t->timer_poll.data = t;
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    if (open_loop(t))
        close(t->timer_fd);
    return NULL;
}

/* ---- phases -------------------------------------------------------------- */

void bench_run_phase(bench_t *b, thread_t *threads, int progress)
{
    uint64_t begin = sc_mono_ns();
    atomic_store(&b->stopping, 0);
    atomic_store(&b->ready_threads, 0);
    int per = b->cfg.connections / b->cfg.threads, extra = b->cfg.connections % b->cfg.threads;
    for (int i = 0; i < b->cfg.threads; i++) {
        thread_t *t = &threads[i];
        memset(t, 0, sizeof(*t));
        t->b = b;
        t->id = i;
        t->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^ begin;
        for (int k = 0; k < K_COUNT; k++)
            hist_init(&t->st.lat[k]);
        hist_init(&t->st.all);
        bench_series_init(&t->st, &b->cfg);
        t->n_conns = per + (i < extra);
        t->conns = calloc((size_t)t->n_conns, sizeof(conn_t));
        uv_loop_init(&t->loop);
        uv_async_init(&t->loop, &t->go, on_go);
        t->go.data = t;
        pthread_create(&t->th, NULL, thread_main, t);
    }
    /* The clock starts once every connection has settled (up to 10 s: a
     * server that accepts no more then is measured as it is). */
    while (atomic_load(&b->ready_threads) < b->cfg.threads && sc_mono_ns() - begin < 10000000000ull)
        usleep(200);
    b->start_ns = sc_mono_ns();
    b->connect_ns = b->start_ns - begin;
    b->measure_ns = b->start_ns + (uint64_t)(b->cfg.warmup_s * 1e9);
    b->end_ns = b->measure_ns + (uint64_t)(b->cfg.duration_s * 1e9);
    if (b->cfg.requests)
        b->end_ns = UINT64_MAX / 2;
    for (int i = 0; i < b->cfg.threads; i++)
        uv_async_send(&threads[i].go); /* after the clock's fields: a release */
    uint64_t last_done = 0, last_err = 0, last_hits = 0;
    double secs = 0;
    for (;;) {
        usleep(100000);
        uint64_t now = sc_mono_ns();
        uint64_t done = 0, err = 0, hits = 0, sent = 0;
        for (int i = 0; i < b->cfg.threads; i++) {
            done += atomic_load(&threads[i].live_done);
            err += atomic_load(&threads[i].live_errors);
            hits += atomic_load(&threads[i].live_hits);
            sent += threads[i].sent_total;
        }
        if (b->cfg.requests && sent >= b->cfg.requests && done >= sent)
            atomic_store(&b->stopping, 1);
        if (now >= b->end_ns)
            atomic_store(&b->stopping, 1);
        if (progress && (double)(now - b->start_ns) / 1e9 >= secs + 1.0) {
            secs += 1.0;
            uint64_t dd = done - last_done;
            fprintf(stderr, "[%3.0fs] %10llu req/s  errors %llu  hit rate %.1f%%\n", secs,
                    (unsigned long long)dd, (unsigned long long)(err - last_err),
                    dd ? 100.0 * (double)(hits - last_hits) / (double)dd : 0.0);
            last_done = done;
            last_err = err;
            last_hits = hits;
        }
        if (atomic_load(&b->stopping))
            break;
    }
    for (int i = 0; i < b->cfg.threads; i++) {
        pthread_join(threads[i].th, NULL);
        uv_loop_close(&threads[i].loop);
        for (int k = 0; k < threads[i].n_conns; k++) {
            sc_buf_free(&threads[i].conns[k].body);
            sc_buf_free(&threads[i].conns[k].pending);
        }
        free(threads[i].conns);
        free(threads[i].backlog);
    }
    if (b->cfg.requests)
        b->end_ns = sc_mono_ns();
}
