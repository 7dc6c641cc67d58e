/* search_bench.c -- semcached-search-bench: lookups/s and decision agreement
 * of the scope index in process, one thread: the decide-search (small beam,
 * widened near the threshold) against fixed beams, every answer checked
 * against an exact scan. Data: N clustered vectors (generated, seeded, as
 * tests/index/decide.c makes them) looked up with cache-like traffic, or
 * QQP dev pairs embedded by a model (question 1 stored, question 2 looked
 * up). --dump PREFIX writes PREFIX_base.fvecs, PREFIX_query.fvecs and
 * PREFIX_exact.ivecs for bench/hnswlib_decide.py; --ef-min/--ef set the
 * decide-search's beams (default: the server's), --fixed 0 leaves out the
 * fixed beams. Speeds are given per wall-clock and per CPU-second of the
 * searching thread (comparable across a shared machine's load). One JSON
 * object a line. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sc_config.h"
#include "sc_embed.h"
#include "sc_index.h"
#include "sc_scopes.h"

static uint64_t rng = 42;
static double urand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static float nrand(void)
{
    double u = urand(), v = urand();
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

/* n points around n/25 centres (noise 1.2 per coordinate); queries: 80 %
 * rewordings of stored points (cosine 0.70-1.00 to their source), 20 % new
 * points on the same topics. */
static void clustered(size_t n, uint32_t dim, size_t nq, float **base, float **queries)
{
    size_t clusters = n / 25 ? n / 25 : 1;
    float *c = malloc(clusters * dim * sizeof(float));
    *base = malloc(n * dim * sizeof(float));
    *queries = malloc(nq * dim * sizeof(float));
    for (size_t i = 0; i < clusters * dim; i++)
        c[i] = nrand();
    for (size_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < dim; j++)
            (*base)[i * dim + j] = c[(i % clusters) * dim + j] + 1.2f * nrand();
        sc_vec_normalize(*base + i * dim, dim);
    }
    for (size_t q = 0; q < nq; q++) {
        float *out = *queries + q * dim;
        if (q % 5 == 4) {
            size_t ci = (size_t)(urand() * (double)clusters);
            for (uint32_t j = 0; j < dim; j++)
                out[j] = c[ci * dim + j] + 1.2f * nrand();
        } else {
            const float *src = *base + (size_t)(urand() * (double)n) * dim;
            double cosine = 0.70 + 0.30 * urand(), t = sqrt(1 / (cosine * cosine) - 1), ss = 0;
            for (uint32_t j = 0; j < dim; j++) {
                out[j] = nrand();
                ss += (double)out[j] * out[j];
            }
            for (uint32_t j = 0; j < dim; j++)
                out[j] = (float)(src[j] + t / sqrt(ss) * out[j]);
        }
        sc_vec_normalize(out, dim);
    }
    free(c);
}

/* QQP dev pairs embedded by 'model': returns the pairs kept. */
static size_t qqp(const char *model, const char *tsv, uint32_t *dim, float **base, float **queries)
{
    char err[256];
    sc_embedder_t *e;
    if (sc_embedder_open(&e, model, err, sizeof(err))) {
        fprintf(stderr, "semcached-search-bench: %s\n", err);
        exit(1);
    }
    *dim = sc_embedder_dim(e);
    FILE *in = fopen(tsv, "r");
    if (!in) {
        perror(tsv);
        exit(1);
    }
    size_t cap = 1024, n = 0, lcap = 0, row = 0;
    *base = malloc(cap * *dim * sizeof(float));
    *queries = malloc(cap * *dim * sizeof(float));
    char *line = NULL;
    float *v = malloc(2 * *dim * sizeof(float));
    while (getline(&line, &lcap, in) > 0) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (row++ == 0 || !t2)
            continue;
        const char *texts[2] = {line, t1 + 1};
        size_t lens[2] = {(size_t)(t1 - line), (size_t)(t2 - t1 - 1)};
        uint8_t empty = 0;
        if (sc_embedder_embed(e, texts, lens, 2, v, &empty) || empty)
            continue;
        if (n == cap) {
            cap *= 2;
            *base = realloc(*base, cap * *dim * sizeof(float));
            *queries = realloc(*queries, cap * *dim * sizeof(float));
        }
        memcpy(*base + n * *dim, v, *dim * sizeof(float));
        memcpy(*queries + n * *dim, v + *dim, *dim * sizeof(float));
        n++;
    }
    free(v);
    free(line);
    fclose(in);
    sc_embedder_close(e);
    return n;
}

static void write_vecs(const char *prefix, const char *what, const void *rows, size_t n,
                       uint32_t dim)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s_%s", prefix, what);
    FILE *f = fopen(path, "wb");
    int32_t d = (int32_t)dim;
    for (size_t i = 0; f && i < n; i++) {
        fwrite(&d, 4, 1, f);
        fwrite((const char *)rows + i * dim * 4, 4, dim, f);
    }
    if (f)
        fclose(f);
}

typedef struct {
    double per_s, per_cpu_s, agree, small;
} run_t;

/* This thread's CPU time: on a machine shared with other work, lookups per
 * CPU-second compare with a peer measured minutes apart; wall time does not. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Every query once at threshold 't' (t < -1: no threshold, sc_scopes_search). */
static run_t run(sc_scopes_t *s, const float *base, const float *queries, size_t nq, uint32_t dim,
                 const uint32_t *exact, double t)
{
    uint64_t labels[8];
    float sims[8];
    size_t got, agree = 0, small = 0;
    uint64_t t0 = sc_mono_ns(), search_ns = 0;
    for (size_t i = 0; i < nq; i++) {
        sc_search_info_t info;
        uint64_t s0 = cpu_ns();
        sc_scopes_search_decide(s, 1, queries + i * dim, dim, 8, t, labels, sims, &got, &info);
        search_ns += cpu_ns() - s0;
        small += info.beam == SC_SEARCH_SMALL;
        const float *q = queries + i * dim;
        float se = sc_vec_dot(base + (size_t)exact[i] * dim, q, dim);
        float sd = got ? sc_vec_dot(base + labels[0] * dim, q, dim) : -2;
        int he = se >= t, hd = sd >= t;
        agree += he == hd && (!he || labels[0] == exact[i] || fabsf(sd - se) < 1e-6f);
    }
    double secs = (double)(sc_mono_ns() - t0) / 1e9;
    run_t r = {(double)nq / secs, (double)nq / ((double)search_ns / 1e9), (double)agree / (double)nq,
               (double)small / (double)nq};
    return r;
}

int main(int argc, char **argv)
{
    size_t n = 100000, nq = 5000;
    uint32_t dim = 384;
    const char *model = NULL, *tsv = NULL, *dump = NULL, *name = "clustered";
    long ef_min = -1, ef_wide = -1; /* the decide-search's beams: the server's defaults */
    int with_fixed = 1;             /* --fixed 0: the decide-search alone */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            n = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--queries"))
            nq = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dim"))
            dim = (uint32_t)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--qqp"))
            tsv = argv[i + 1];
        else if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--dump"))
            dump = argv[i + 1];
        else if (!strcmp(argv[i], "--ef-min"))
            ef_min = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--ef"))
            ef_wide = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--fixed"))
            with_fixed = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: semcached-search-bench [--n N --dim D --queries Q] "
                            "[--qqp qqp_dev.tsv --model MODEL] [--dump PREFIX] "
                            "[--ef-min N --ef N] [--fixed 0|1]\n");
            return 2;
        }
    }
    float *base, *queries;
    if (tsv && model) {
        n = nq = qqp(model, tsv, &dim, &base, &queries);
        name = model;
    } else {
        clustered(n, dim, nq, &base, &queries);
    }
    sc_config_t defaults;
    sc_config_defaults(&defaults);
    sc_scopes_config_t cfg;
    sc_scopes_config_from(&cfg, &defaults);
    cfg.flat_max = 1000; /* a graph at any size */
    cfg.scan_max = 0;
    if (ef_min >= 0)
        cfg.hnsw_ef_search_min = (size_t)ef_min;
    if (ef_wide > 0)
        cfg.hnsw_ef_search = (size_t)ef_wide;
    sc_scopes_t *s;
    sc_scopes_create(&s, &cfg, NULL);
    uint64_t t0 = sc_mono_ns();
    for (size_t i = 0; i < n; i++)
        sc_scopes_load_add(s, 1, i, base + i * dim, dim);
    sc_scopes_finish_load(s);
    double build_s = (double)(sc_mono_ns() - t0) / 1e9;
    /* Exact answers: one sgemm per 256 queries. */
    sc_flat_t *f;
    sc_flat_create(&f, dim);
    for (size_t i = 0; i < n; i++)
        sc_flat_add(f, base + i * dim, i);
    uint32_t *exact = malloc(nq * sizeof(uint32_t));
    for (size_t i = 0; i < nq; i += 256) {
        size_t m = nq - i < 256 ? nq - i : 256, got[256];
        uint64_t l[256];
        float sm[256];
        sc_flat_search_batch(f, queries + i * dim, m, 1, l, sm, got);
        for (size_t j = 0; j < m; j++)
            exact[i + j] = (uint32_t)l[j];
    }
    sc_flat_destroy(f);
    printf("{\"data\":\"%s\",\"vectors\":%zu,\"dim\":%u,\"queries\":%zu,\"build_s\":%.1f}\n", name,
           n, dim, nq, build_s);
    if (dump) {
        write_vecs(dump, "base.fvecs", base, n, dim);
        write_vecs(dump, "query.fvecs", queries, nq, dim);
        write_vecs(dump, "exact.ivecs", exact, nq, 1);
    }
    static const double ts[] = {0.80, 0.90, 0.95};
    static const size_t fixed[] = {64, 128, 256, 512, 1024};
    for (size_t ti = 0; ti < sizeof(ts) / sizeof(ts[0]); ti++) {
        for (size_t fi = 0; with_fixed && fi < sizeof(fixed) / sizeof(fixed[0]); fi++) {
            sc_scopes_config_t c = cfg;
            c.hnsw_ef_search = fixed[fi];
            c.hnsw_ef_search_min = 0;
            sc_scopes_set_search(s, &c);
            run_t r = run(s, base, queries, nq, dim, exact, ts[ti]);
            printf("{\"threshold\":%.2f,\"search\":\"fixed\",\"ef\":%zu,\"lookups_per_s\":%.0f,"
                   "\"lookups_per_cpu_s\":%.0f,\"agreement\":%.5f}\n",
                   ts[ti], fixed[fi], r.per_s, r.per_cpu_s, r.agree);
            fflush(stdout);
        }
        sc_scopes_set_search(s, &cfg);
        run_t r = run(s, base, queries, nq, dim, exact, ts[ti]);
        sc_scopes_stats_t st;
        sc_scopes_stats(s, &st);
        printf("{\"threshold\":%.2f,\"search\":\"decide\",\"ef_min\":%zu,\"ef\":%zu,"
               "\"lookups_per_s\":%.0f,\"lookups_per_cpu_s\":%.0f,\"agreement\":%.5f,"
               "\"small_beam\":%.3f,\"untrusted_scopes\":%llu}\n",
               ts[ti], cfg.hnsw_ef_search_min, cfg.hnsw_ef_search, r.per_s, r.per_cpu_s, r.agree,
               r.small,
               (unsigned long long)st.scopes_untrusted);
        fflush(stdout);
    }
    sc_scopes_destroy(s);
    free(exact);
    free(base);
    free(queries);
    return 0;
}
