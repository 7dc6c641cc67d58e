/* fleet_bench.c -- semcached-fleet-bench: what an exact hit costs when every
 * lookup reads a shared remote store (the design LiteLLM, Kong and Bifrost
 * use: a Redis GET of the serialized entry on each request) against
 * semcached's local hit (an LMDB read on the node), in one run, through the
 * same entry bytes: the store's own record (512-byte response, 384-d vector
 * by default), and the same client library the fleet uses (hiredis). Each
 * side runs closed loop on 1 and 2 threads, alternating, several rounds;
 * one JSON line per run on stdout (bench/fleet.sh collects them). The
 * HTTP front both designs share is left out: this is the part that differs. */
#define _GNU_SOURCE
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../histogram.h"
#include "sc_store.h"

typedef struct {
    int redis_port;
    size_t entries, value_size;
    int dim, rounds;
    double duration_s;
} opts_t;

typedef struct {
    const opts_t *o;
    sc_store_t *store;
    int remote;
    uint64_t seed;
    uint64_t ops, checksum;
    histogram_t h;
    _Atomic int *stop;
} worker_t;

static void key_of(size_t i, uint8_t key[SC_KEY_BYTES])
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    for (int k = 0; k < SC_KEY_BYTES; k++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ULL;
        key[k] = (uint8_t)(x >> 56);
    }
}

static void redis_key(const uint8_t key[SC_KEY_BYTES], char out[48])
{
    char hex[SC_KEY_BYTES * 2 + 1];
    sc_hex_encode(key, SC_KEY_BYTES, hex);
    snprintf(out, 48, "sc:%s", hex);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t left;
} pending_t;

static void op_done(sc_write_op_t *op)
{
    pending_t *p = op->data;
    pthread_mutex_lock(&p->mu);
    if (--p->left == 0)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    sc_write_op_clear(op);
    free(op);
}

/* The same entry into the local store and, as its record bytes, into Redis. */
static int populate(const opts_t *o, sc_store_t *s, redisContext *rc)
{
    pending_t p = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, o->entries};
    char *resp = malloc(o->value_size + 1);
    float *vec = calloc((size_t)o->dim, sizeof(float));
    memset(resp, 'a', o->value_size);
    resp[o->value_size] = '\0';
    for (size_t i = 0; i < o->entries; i++) {
        sc_write_op_t *op = calloc(1, sizeof(*op));
        char text[32], rk[48];
        snprintf(text, sizeof(text), "question %zu", i);
        for (int d = 0; d < o->dim; d++)
            vec[d] = (float)((i * 31 + (size_t)d * 7) % 97) / 97.0f;
        sc_entry_t e = {.created_ms = sc_now_ms(),
                        .scope = 1,
                        .ns = {"bench", 5},
                        .model = {"m", 1},
                        .text = {text, strlen(text)},
                        .response = {resp, o->value_size},
                        .vector = vec,
                        .dim = (uint32_t)o->dim};
        op->type = SC_OP_PUT;
        key_of(i, op->key);
        sc_store_encode(&e, &op->record);
        redis_key(op->key, rk);
        redisAppendCommand(rc, "SET %s %b", rk, op->record.data, op->record.len);
        op->done = op_done;
        op->data = &p;
        while (sc_store_submit(s, op) == SC_EBUSY)
            usleep(1000);
    }
    for (size_t i = 0; i < o->entries; i++) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr, "redis SET failed\n");
            return -1;
        }
        freeReplyObject(r);
    }
    pthread_mutex_lock(&p.mu);
    while (p.left)
        pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    free(resp);
    free(vec);
    return 0;
}

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* One exact hit: find the entry by key and read its response. */
static int hit_local(sc_store_reader_t *r, const uint8_t *key, uint64_t *sum)
{
    sc_entry_t e;
    sc_store_read_begin(r);
    int rc = sc_store_get(r, key, &e, NULL);
    if (rc == 0)
        *sum += (uint8_t)e.response.ptr[e.response.len / 2];
    sc_store_read_end(r);
    return rc;
}

static int hit_remote(redisContext *c, const uint8_t *key, uint64_t *sum)
{
    char rk[48];
    redis_key(key, rk);
    redisReply *r = redisCommand(c, "GET %s", rk);
    sc_entry_t e;
    int rc =
        r && r->type == REDIS_REPLY_STRING && sc_store_decode(r->str, r->len, &e) == 0 ? 0 : -1;
    if (rc == 0)
        *sum += (uint8_t)e.response.ptr[e.response.len / 2];
    freeReplyObject(r);
    return rc;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    sc_store_reader_t *r = NULL;
    redisContext *c = NULL;
    if (w->remote)
        c = redisConnect("127.0.0.1", w->o->redis_port);
    else
        sc_store_reader_create(w->store, &r);
    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        uint8_t key[SC_KEY_BYTES];
        key_of(next_rand(&w->seed) % w->o->entries, key);
        uint64_t t0 = sc_mono_ns();
        int rc = w->remote ? hit_remote(c, key, &w->checksum) : hit_local(r, key, &w->checksum);
        if (rc) {
            fprintf(stderr, "lookup failed\n");
            exit(1);
        }
        hist_record(&w->h, sc_mono_ns() - t0);
        w->ops++;
    }
    if (c)
        redisFree(c);
    sc_store_reader_destroy(r);
    return NULL;
}

static void run(const opts_t *o, sc_store_t *s, int remote, int threads, int round)
{
    worker_t w[2];
    pthread_t t[2];
    _Atomic int stop = 0;
    for (int i = 0; i < threads; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i] = (worker_t){.o = o,
                          .store = s,
                          .remote = remote,
                          .seed = 88172645463325252ULL + (uint64_t)i,
                          .stop = &stop};
        hist_init(&w[i].h);
        pthread_create(&t[i], NULL, worker_main, &w[i]);
    }
    usleep((useconds_t)(o->duration_s * 1e6));
    atomic_store(&stop, 1);
    histogram_t all;
    hist_init(&all);
    uint64_t ops = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        hist_merge(&all, &w[i].h);
        ops += w[i].ops;
    }
    printf("{\"name\":\"fleet_%s_hit\",\"threads\":%d,\"round\":%d,\"ops_s\":%.0f,"
           "\"p50_us\":%.2f,\"p99_us\":%.2f,\"entries\":%zu,\"value_size\":%zu,\"dim\":%d}\n",
           remote ? "remote" : "local", threads, round, (double)ops / o->duration_s,
           (double)hist_quantile(&all, 0.5) / 1e3, (double)hist_quantile(&all, 0.99) / 1e3,
           o->entries, o->value_size, o->dim);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    opts_t o = {.redis_port = 6379,
                .entries = 10000,
                .value_size = 512,
                .dim = 384,
                .rounds = 3,
                .duration_s = 3};
    static const struct option longopts[] = {{"redis-port", required_argument, NULL, 'p'},
                                             {"entries", required_argument, NULL, 'n'},
                                             {"value-size", required_argument, NULL, 'v'},
                                             {"dim", required_argument, NULL, 'D'},
                                             {"rounds", required_argument, NULL, 'r'},
                                             {"duration", required_argument, NULL, 'd'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "p:n:v:D:r:d:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            o.redis_port = atoi(optarg);
            break;
        case 'n':
            o.entries = (size_t)atol(optarg);
            break;
        case 'v':
            o.value_size = (size_t)atol(optarg);
            break;
        case 'D':
            o.dim = atoi(optarg);
            break;
        case 'r':
            o.rounds = atoi(optarg);
            break;
        case 'd':
            o.duration_s = atof(optarg);
            break;
        default:
            fprintf(stderr, "usage: semcached-fleet-bench --redis-port P [--entries N] "
                            "[--value-size B] [--dim D] [--rounds R] [--duration S]\n");
            return 2;
        }
    }
    char dir[] = "/tmp/sc-fleet-bench-XXXXXX";
    if (!mkdtemp(dir) || o.entries == 0 || o.dim < 0 || o.dim > 4096)
        return 2;
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.map_size = 1LL << 30;
    cfg.sync = SC_SYNC_NONE; /* populating only: the reads measured are the same */
    sc_log_t log;
    sc_log_init(&log, NULL, SC_WARN);
    sc_store_t *s;
    redisContext *rc = redisConnect("127.0.0.1", o.redis_port);
    if (!rc || rc->err || sc_store_create(&s, &cfg, &log) || sc_store_open(s, dir)) {
        fprintf(stderr, "cannot open the store or reach Redis on port %d\n", o.redis_port);
        return 1;
    }
    if (populate(&o, s, rc))
        return 1;
    redisFree(rc);
    for (int round = 1; round <= o.rounds; round++)
        for (int threads = 1; threads <= 2; threads++)
            for (int remote = 0; remote <= 1; remote++)
                run(&o, s, remote, threads, round);
    sc_store_destroy(s);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
