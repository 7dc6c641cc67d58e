/* crossover.c -- semcached-crossover: times one lookup against the BLAS flat
 * scan and against an HNSW scope (server defaults) at growing scope sizes,
 * in process, to choose --index-flat-max: below the crossover the exact scan
 * is as fast and has perfect recall. HNSW is timed with the widest beam
 * alone (--hnsw-ef-search) and with the decide-search at threshold 0.90 on
 * cache-like traffic: half the queries reword a stored entry (cosine
 * 0.70-1.00 to it), half are new, timed after one untimed pass (a scope's
 * first few hundred decisions are all checked at the widest beam; a scope
 * near the promotion size has long passed them). Times are CPU time of the
 * one searching thread (run it with OPENBLAS_NUM_THREADS=1). Prints one JSON
 * object per size. Usage: semcached-crossover [DIM [LARGEST_SIZE]]. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sc_common.h"
#include "sc_config.h"
#include "sc_index.h"
#include "sc_scopes.h"

static uint64_t rng = 88172645463325252ULL;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5);
}

/* CPU time of this thread, in ns: on a machine shared with other work the
 * flat scan and the graph search, timed one after the other, are compared
 * by the CPU they take rather than by the neighbours' load meanwhile. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Like sentence embeddings (and semcached-bench's vectors workload): a random
 * point of a fixed 32-dimensional subspace plus a little isotropic noise. */
#define LATENT 32
static float *basis;
static void embedding_like(float *v, int dim)
{
    float z[LATENT];
    for (int j = 0; j < LATENT; j++)
        z[j] = frand();
    for (int i = 0; i < dim; i++) {
        float x = 0;
        for (int j = 0; j < LATENT; j++)
            x += z[j] * basis[i * LATENT + j];
        v[i] = x + 0.05f * frand();
    }
    sc_vec_normalize(v, (uint32_t)dim);
}

/* A rewording of stored vector 'src': cosine about 'cosine' to it. */
static void reword(const float *src, int dim, double cosine, float *out)
{
    double t = sqrt(1 / (cosine * cosine) - 1), ss = 0;
    for (int i = 0; i < dim; i++) {
        out[i] = frand();
        ss += (double)out[i] * out[i];
    }
    for (int i = 0; i < dim; i++)
        out[i] = (float)(src[i] + t / sqrt(ss) * out[i]);
    sc_vec_normalize(out, (uint32_t)dim);
}

int main(int argc, char **argv)
{
    int dim = argc > 1 ? atoi(argv[1]) : 384;
    size_t max_n = argc > 2 ? strtoull(argv[2], NULL, 10) : 32000; /* the largest size timed */
    static const size_t sizes[] = {250, 500, 1000, 2000, 4000, 8000, 16000, 32000};
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_scopes_config_t scfg;
    sc_scopes_config_from(&scfg, &cfg);
    scfg.flat_max = 0; /* a graph at any size */
    scfg.scan_max = 0; /* (the int8 scan would keep it flat) */
    const size_t nq = 2000;
    basis = malloc((size_t)dim * LATENT * sizeof(float));
    for (size_t i = 0; i < (size_t)dim * LATENT; i++)
        basis[i] = frand();
    float *q = malloc(nq * (size_t)dim * sizeof(float));
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]) && sizes[si] <= max_n; si++) {
        size_t n = sizes[si];
        sc_flat_t *f, *ff; /* ff: sgemv only, as where the int8 pass cannot run */
        sc_scopes_t *s;
        sc_flat_create(&f, (uint32_t)dim);
        sc_flat_create(&ff, (uint32_t)dim);
        sc_flat_set_scan8(ff, 0);
        sc_scopes_create(&s, &scfg, NULL);
        float *v = malloc(n * (size_t)dim * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            embedding_like(v + i * (size_t)dim, dim);
            sc_flat_add(f, v + i * (size_t)dim, i);
            sc_flat_add(ff, v + i * (size_t)dim, i);
            sc_scopes_load_add(s, 1, i, v + i * (size_t)dim, (uint32_t)dim);
        }
        sc_scopes_finish_load(s);
        for (size_t i = 0; i < nq; i++) {
            if (i % 2)
                embedding_like(q + i * (size_t)dim, dim);
            else
                reword(v + (size_t)((frand() + 0.5f) * (float)(n - 1)) * (size_t)dim, dim,
                       0.85 + 0.3 * frand(), q + i * (size_t)dim);
        }
        uint64_t labels[8];
        float sims[8];
        size_t got;
        double t_flat, t_float, t_wide, t_decide;
        uint64_t t0 = cpu_ns();
        for (size_t i = 0; i < nq; i++)
            sc_flat_search(f, q + i * (size_t)dim, 8, labels, sims, &got);
        t_flat = (double)(cpu_ns() - t0) / (double)nq / 1e3;
        t0 = cpu_ns();
        for (size_t i = 0; i < nq; i++)
            sc_flat_search(ff, q + i * (size_t)dim, 8, labels, sims, &got);
        t_float = (double)(cpu_ns() - t0) / (double)nq / 1e3;
        t0 = cpu_ns();
        for (size_t i = 0; i < nq; i++)
            sc_scopes_search(s, 1, q + i * (size_t)dim, (uint32_t)dim, 8, labels, sims, &got);
        t_wide = (double)(cpu_ns() - t0) / (double)nq / 1e3;
        for (size_t i = 0; i < nq; i++) /* the scope's verification warm-up */
            sc_scopes_search_decide(s, 1, q + i * (size_t)dim, (uint32_t)dim, 8, 0.90, labels, sims,
                                    &got, NULL);
        sc_scopes_stats_t st0;
        sc_scopes_stats(s, &st0);
        t0 = cpu_ns();
        for (size_t i = 0; i < nq; i++)
            sc_scopes_search_decide(s, 1, q + i * (size_t)dim, (uint32_t)dim, 8, 0.90, labels, sims,
                                    &got, NULL);
        t_decide = (double)(cpu_ns() - t0) / (double)nq / 1e3;
        sc_scopes_stats_t st;
        sc_scopes_stats(s, &st);
        printf("{\"vectors\":%zu,\"dim\":%d,\"flat_us\":%.2f,\"float_us\":%.2f,\"hnsw_us\":%.2f,"
               "\"ef_search\":%lld,\"decide_us\":%.2f,\"ef_search_min\":%lld,\"small_beam\":%.3f,"
               "\"cpu_time\":true}\n",
               n, dim, t_flat, t_float, t_wide, (long long)cfg.hnsw_ef_search, t_decide,
               (long long)cfg.hnsw_ef_search_min,
               (double)(st.decided_small - st0.decided_small) /
                   (double)(st.decided_small + st.decided_wide - st0.decided_small -
                            st0.decided_wide));
        fflush(stdout);
        free(v);
        sc_flat_destroy(f);
        sc_flat_destroy(ff);
        sc_scopes_destroy(s);
    }
    free(q);
    free(basis);
    return 0;
}
