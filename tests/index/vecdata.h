/* vecdata.h -- test data for the index tests (the tests in tests/index use it):
 * texmex .fvecs/.ivecs files, a seeded normal generator, clustered vectors
 * and "paraphrases" (a stored vector plus noise at a chosen cosine). Header
 * only, static inline functions: each test binary gets its own copy. */
#ifndef SC_TESTS_VECDATA_H
#define SC_TESTS_VECDATA_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sc_vec.h"
#include "testutil.h"

/* Reads a texmex .fvecs/.ivecs file: per row an int32 dim then dim values.
 * Returns rows x dim values (malloc'd). */
static inline void *vd_read_vecs(const char *path, uint32_t *dim, size_t *rows)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    int32_t d;
    ck_assert_int_eq(fread(&d, 4, 1, f), 1);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    size_t n = (size_t)size / (4 + 4 * (size_t)d);
    char *out = malloc(n * (size_t)d * 4);
    for (size_t i = 0; i < n; i++) {
        int32_t dd;
        ck_assert_int_eq(fread(&dd, 4, 1, f), 1);
        ck_assert_int_eq(dd, d);
        ck_assert_int_eq(fread(out + i * (size_t)d * 4, 4, (size_t)d, f), (size_t)d);
    }
    fclose(f);
    *dim = (uint32_t)d;
    *rows = n;
    return out;
}

/* Uniform in (0, 1) and normal deviates (Box-Muller) from a small
 * deterministic generator. */
static inline double vd_urand(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(*state >> 11) + 0.5) / 9007199254740992.0;
}

static inline float vd_nrand(uint64_t *state)
{
    double u = vd_urand(state), v = vd_urand(state);
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

/* 'n' unit vectors around 'clusters' random centres: point i belongs to
 * centre i % clusters, plus isotropic noise of 'noise' per coordinate (1.2:
 * larger than the centre, so topics overlap and neighbours are not
 * trivial). 'centers' (clusters x dim) is filled too when not NULL. */
static inline void vd_clustered(uint64_t *rng, float *out, size_t n, uint32_t dim, float *centers,
                                size_t clusters, float noise)
{
    float *c = centers ? centers : malloc(clusters * dim * sizeof(float));
    for (size_t i = 0; i < clusters * dim; i++)
        c[i] = vd_nrand(rng);
    for (size_t i = 0; i < n; i++) {
        const float *ci = c + (i % clusters) * dim;
        for (uint32_t j = 0; j < dim; j++)
            out[i * dim + j] = ci[j] + noise * vd_nrand(rng);
        sc_vec_normalize(out + i * dim, dim);
    }
    if (!centers)
        free(c);
}

/* A paraphrase of unit vector 'src': src + t * u for a random unit
 * direction u, with t chosen so the cosine to 'src' is about 'cosine'
 * (exactly, when u is orthogonal to src, as it nearly is in high
 * dimensions). */
static inline void vd_paraphrase(uint64_t *rng, const float *src, uint32_t dim, double cosine,
                                 float *out)
{
    double t = sqrt(1.0 / (cosine * cosine) - 1.0), ss = 0;
    for (uint32_t j = 0; j < dim; j++) {
        out[j] = vd_nrand(rng);
        ss += (double)out[j] * out[j];
    }
    double scale = t / sqrt(ss);
    for (uint32_t j = 0; j < dim; j++)
        out[j] = (float)(src[j] + scale * out[j]);
    sc_vec_normalize(out, dim);
}

#endif
