/* bench_internal.h -- what the load tool's two files share: its settings,
 * per-thread and per-connection state, and the calls between the engine
 * (bench.c: requests, connections, schedule, phases) and the front
 * (bench_main.c: options, data files, report, main). Private to bench/. */
#ifndef SC_BENCH_INTERNAL_H
#define SC_BENCH_INTERNAL_H

#include <http_parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "histogram.h"
#include "sc_common.h"

#define MAX_PIPELINE 256

typedef enum { K_LOOKUP, K_STORE, K_RAW, K_COUNT } kind_t;
typedef enum {
    W_EXACT,
    W_MISS_STORE,
    W_VECTORS,
    W_TEXT,
    W_RAW,
    W_VECTOR_STORE,
    W_COUNT
} workload_t;
static const char *const workload_names[W_COUNT] = {"exact", "miss-store", "vectors",
                                                    "text",  "raw",        "vector-store"};

typedef struct {
    char host[256];
    int port;
    int connections, pipeline, threads;
    double duration_s, warmup_s, rate;
    uint64_t requests;
    int mix[W_COUNT]; /* weights; the workload of each request */
    int mix_total;
    size_t keys;
    double zipf;
    size_t value_size;
    long ttl_s; /* miss-store: ttl_s of the stores (0 = server default) */
    int dim;
    char dataset[1024];
    char raw_path[512];
    char ns[128];
    int json;
    int populate;           /* store the key space first */
    char dump_prefix[1024]; /* write the vectors as fvecs and exit */
    int series;             /* per-second latency windows (bench_series.c) */
} cfg_t;

typedef struct {
    char *q1, *q2;
    int duplicate;
} pair_t;

typedef struct {
    uint64_t key;
    char *b64; /* base64 of the noisy query vector */
} query_t;

#define QUERY_POOL 4096
#define QUERY_SEED 99     /* the pool's random stream (bench_dump_vectors repeats it) */
#define QUERY_NOISE 0.02  /* a paraphrase's perturbation, per coordinate */

typedef struct {
    cfg_t cfg;
    query_t *queries; /* vectors workload: pre-encoded lookups, so the
                         load generator spends its CPU on sending */
    double *zipf_cdf;
    pair_t *pairs;
    size_t n_pairs;
    char *value; /* the stored response string */
    uint64_t start_ns, measure_ns, end_ns; /* the clock: set once every connection is up */
    uint64_t connect_ns;                   /* how long connecting took (not measured) */
    _Atomic int ready_threads;             /* threads whose connections all settled */
    _Atomic int stopping;
} bench_t;

typedef struct {
    kind_t kind;
    workload_t wl;
    uint64_t intended_ns; /* open loop: scheduled time; closed: send time */
    int label;            /* text workload: the pair's is_duplicate */
    uint64_t follow_key;  /* miss-store: key to store after the miss */
    int64_t src_key;      /* vectors: the key the query rewords (-1: none) */
} inflight_t;

typedef struct thread_s thread_t;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    thread_t *t;
    http_parser parser;
    int connected, closed;
    int settled; /* its first connect finished (either way) */
    inflight_t q[MAX_PIPELINE];
    int head, count;
    sc_buf_t body;
    sc_buf_t pending; /* follow-up requests to send first */
    char rbuf[65536]; /* reads land here: no allocation per read */
    int pending_n;
    inflight_t pending_meta[MAX_PIPELINE];
} conn_t;

typedef struct {
    uint64_t done[K_COUNT];
    uint64_t non2xx, transport;
    uint64_t exact_hits, semantic_hits, misses;
    uint64_t tp, fp; /* semantic hits on labelled pairs */
    uint64_t sem_on_source; /* vectors: semantic hits on the reworded entry */
    histogram_t lat[K_COUNT];
    histogram_t all;
    histogram_t *sec; /* --series: one per measured second; owned */
    size_t n_sec;
} stats_t;

struct thread_s {
    bench_t *b;
    int id;
    uv_loop_t loop;
    conn_t *conns;
    int n_conns;
    pthread_t th;
    uint64_t rng;
    uint64_t key_counter;
    stats_t st;    /* measured window only */
    uv_async_t go; /* the main thread's signal that the clock has started */
    int going;     /* nothing is sent before it */
    int n_settled; /* connections whose first connect finished */
    _Atomic uint64_t live_done, live_errors, live_hits;
    /* open loop */
    int timer_fd;
    uv_poll_t timer_poll;
    uint64_t next_ns, interval_ns;
    uint64_t *backlog; /* intended send times not yet sent */
    size_t bl_head, bl_count, bl_cap;
    uv_timer_t stop_timer;
    uint64_t sent_total;
};


/* bench.c */
size_t bench_zipf_pick(bench_t *b, uint64_t *rng);
void bench_vector_b64(sc_buf_t *out, uint64_t k, int dim, double noise, uint64_t *rng);
int bench_dump_vectors(bench_t *b, const char *prefix);
void bench_run_phase(bench_t *b, thread_t *threads, int progress);
void bench_populate(bench_t *b, workload_t wl);
/* Appends to 'out' the HTTP request storing key 'k' of workload 'wl' (the
 * answer a later hit of 'k' returns); 't' gives the config and randomness. */
void bench_build_store(thread_t *t, sc_buf_t *out, workload_t wl, uint64_t k);

/* bench_series.c: --series (no-ops without it). */
void bench_series_init(stats_t *st, const cfg_t *c); /* no memory: no series, said on stderr */
void bench_series_record(stats_t *st, uint64_t since_measure_ns, uint64_t latency_ns);
void bench_series_merge(stats_t *into, const stats_t *from);
void bench_series_print(const stats_t *tot, int json);
void bench_series_free(stats_t *st);

#endif
