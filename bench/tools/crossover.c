/* crossover.c -- semcached-crossover: times one query against the BLAS flat
 * scan and against HNSW (server defaults) at growing scope sizes, in process,
 * to choose --index-flat-max: below the crossover the exact scan is as fast
 * and has perfect recall. Prints one JSON object per size. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "sc_common.h"
#include "sc_config.h"
#include "sc_index.h"

static uint64_t rng = 88172645463325252ULL;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 - 0.5);
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

int main(int argc, char **argv)
{
    int dim = argc > 1 ? atoi(argv[1]) : 384;
    static const size_t sizes[] = {250, 500, 1000, 2000, 4000, 8000, 16000, 32000};
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    const size_t nq = 2000;
    basis = malloc((size_t)dim * LATENT * sizeof(float));
    for (size_t i = 0; i < (size_t)dim * LATENT; i++)
        basis[i] = frand();
    float *q = malloc(nq * (size_t)dim * sizeof(float));
    for (size_t i = 0; i < nq; i++)
        embedding_like(q + i * (size_t)dim, dim);
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        size_t n = sizes[si];
        sc_flat_t *f;
        sc_hnsw_t *h;
        sc_flat_create(&f, (uint32_t)dim);
        sc_hnsw_create(&h, (uint32_t)dim, n, (size_t)cfg.hnsw_m, (size_t)cfg.hnsw_ef_construction, 1);
        sc_hnsw_set_ef(h, (size_t)cfg.hnsw_ef_search);
        float *v = malloc((size_t)dim * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            embedding_like(v, dim);
            sc_flat_add(f, v, i);
            sc_hnsw_add(h, v, i);
        }
        uint64_t labels[8];
        float sims[8];
        size_t got;
        double t_flat, t_hnsw;
        uint64_t t0 = sc_mono_ns();
        for (size_t i = 0; i < nq; i++)
            sc_flat_search(f, q + i * (size_t)dim, 8, labels, sims, &got);
        t_flat = (double)(sc_mono_ns() - t0) / (double)nq / 1e3;
        t0 = sc_mono_ns();
        for (size_t i = 0; i < nq; i++)
            sc_hnsw_search(h, q + i * (size_t)dim, 8, labels, sims, &got);
        t_hnsw = (double)(sc_mono_ns() - t0) / (double)nq / 1e3;
        printf("{\"vectors\":%zu,\"dim\":%d,\"flat_us\":%.2f,\"hnsw_us\":%.2f,\"ef_search\":%lld}\n", n,
               dim, t_flat, t_hnsw, (long long)cfg.hnsw_ef_search);
        fflush(stdout);
        free(v);
        sc_flat_destroy(f);
        sc_hnsw_destroy(h);
    }
    free(q);
    return 0;
}
