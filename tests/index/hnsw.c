/* tests/index/hnsw.c -- the HNSW wrapper (index/hnsw.cc) and the BLAS flat
 * index (index/flat.c): recall of HNSW against the exact flat scan on SIFT
 * (../shared; 50,000 clustered 384-d vectors are in tests/index/decide.c,
 * which builds that graph once for recall and decisions), deletes, capacity
 * growth, save/load, explicit beams, the int8 walk (sc_hnsw_quantize), and
 * exceptions turned into error codes. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sc_config.h"
#include "sc_index.h"
#include "testutil.h"
#include "vecdata.h"

static uint64_t rng_state = 42;
static float nrand(void)
{
    return vd_nrand(&rng_state);
}

typedef struct {
    double r1, r10;
} recall_t;

/* Recall of HNSW against the exact flat index for every query; 'int8':
 * the graph walks its int8 copy (sc_hnsw_quantize). */
static recall_t measure_recall(const float *base, size_t n, const float *queries, size_t nq,
                               uint32_t dim, int int8)
{
    /* The server's defaults, not numbers tuned for this test. */
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_hnsw_t *h;
    sc_flat_t *f;
    ck_assert_int_eq(
        sc_hnsw_create(&h, dim, 1024, (size_t)cfg.hnsw_m, (size_t)cfg.hnsw_ef_construction, 1), 0);
    sc_hnsw_set_ef(h, (size_t)cfg.hnsw_ef_search);
    ck_assert_int_eq(sc_hnsw_quantize(h, int8), 0);
    ck_assert_int_eq(sc_flat_create(&f, dim), 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(sc_hnsw_add(h, base + i * dim, i), 0);
        ck_assert_int_eq(sc_flat_add(f, base + i * dim, i), 0);
    }
    ck_assert_uint_eq(sc_hnsw_live(h), n);
    size_t hits1 = 0, hits10 = 0;
    for (size_t q = 0; q < nq; q++) {
        uint64_t hl[10], fl[10];
        float hs[10], fs[10];
        size_t hn, fn;
        ck_assert_int_eq(sc_hnsw_search(h, queries + q * dim, 10, hl, hs, &hn), 0);
        ck_assert_int_eq(sc_flat_search(f, queries + q * dim, 10, fl, fs, &fn), 0);
        ck_assert_uint_eq(hn, 10);
        ck_assert_uint_eq(fn, 10);
        /* Similarities come back best first and agree with the exact ones. */
        for (int i = 1; i < 10; i++)
            ck_assert(hs[i] <= hs[i - 1] + 1e-6f);
        hits1 += hl[0] == fl[0] || fabsf(hs[0] - fs[0]) < 1e-6f; /* ties count */
        for (int i = 0; i < 10; i++)
            for (int j = 0; j < 10; j++)
                if (hl[i] == fl[j]) {
                    hits10++;
                    break;
                }
    }
    sc_hnsw_destroy(h);
    sc_flat_destroy(f);
    recall_t r = {(double)hits1 / (double)nq, (double)hits10 / (double)(nq * 10)};
    return r;
}

START_TEST(recall_on_sift5k)
{
    const char *shared = tu_shared();
    char path[1024];
    uint32_t dim, qdim, gdim;
    size_t n, nq, ng;
    snprintf(path, sizeof(path), "%s/data/ann/derived_sift5k_base.fvecs", shared);
    float *base = vd_read_vecs(path, &dim, &n);
    snprintf(path, sizeof(path), "%s/data/ann/siftsmall_query.fvecs", shared);
    float *queries = vd_read_vecs(path, &qdim, &nq);
    snprintf(path, sizeof(path), "%s/data/ann/derived_sift5k_groundtruth_siftsmallq_k100.ivecs",
             shared);
    int32_t *gt = vd_read_vecs(path, &gdim, &ng);
    ck_assert_uint_eq(n, 5000);
    ck_assert_uint_eq(dim, 128);
    ck_assert_uint_eq(nq, 100);
    ck_assert_uint_eq(ng, 100);
    /* The files are read right: exact L2 on the raw vectors reproduces the
     * published ground truth's nearest neighbour. */
    size_t agree = 0;
    for (size_t q = 0; q < nq; q++) {
        double best = INFINITY;
        size_t arg = 0;
        for (size_t i = 0; i < n; i++) {
            double d = 0;
            for (uint32_t j = 0; j < dim; j++) {
                double t = (double)base[i * dim + j] - queries[q * dim + j];
                d += t * t;
            }
            if (d < best)
                best = d, arg = i;
        }
        agree += (int32_t)arg == gt[q * gdim];
    }
    ck_assert_uint_ge(agree, 99);
    /* The server compares L2-normalized vectors by inner product. */
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(sc_vec_normalize(base + i * dim, dim), 0);
    for (size_t q = 0; q < nq; q++)
        ck_assert_int_eq(sc_vec_normalize(queries + q * dim, dim), 0);
    for (int int8 = 0; int8 <= 1; int8++) {
        recall_t r = measure_recall(base, n, queries, nq, dim, int8);
        fprintf(stderr, "sift5k%s: recall@1 %.3f recall@10 %.3f\n", int8 ? " (int8 walk)" : "",
                r.r1, r.r10);
        ck_assert_msg(r.r1 >= 0.99, "recall@1 %.3f", r.r1);
        ck_assert_msg(r.r10 >= 0.95, "recall@10 %.3f", r.r10);
    }
    free(base);
    free(queries);
    free(gt);
}
END_TEST

START_TEST(explicit_beam_matches_the_index_beam)
{
    /* sc_hnsw_search_ef(ef) answers as sc_hnsw_search does after
     * sc_hnsw_set_ef(ef), without changing the index's own beam. */
    enum { N = 3000, D = 24 };
    float *v = malloc((size_t)N * D * sizeof(float));
    sc_hnsw_t *h;
    ck_assert_int_eq(sc_hnsw_create(&h, D, N, 16, 100, 5), 0);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++)
            v[i * D + j] = nrand();
        sc_vec_normalize(v + i * D, D);
        ck_assert_int_eq(sc_hnsw_add(h, v + i * D, (uint64_t)i), 0);
    }
    ck_assert_int_eq(sc_hnsw_mark_deleted(h, 11), 0); /* the deletion-aware path too */
    static const size_t efs[] = {1, 8, 64, 300};
    size_t differ_from_wide = 0;
    for (size_t e = 0; e < sizeof(efs) / sizeof(efs[0]); e++) {
        for (int i = 0; i < N; i += 29) {
            float q[D];
            for (int j = 0; j < D; j++)
                q[j] = v[i * D + j] + 0.3f * nrand();
            sc_vec_normalize(q, D);
            uint64_t l1[10], l2[10], l3[10];
            float s1[10], s2[10], s3[10];
            size_t n1, n2, n3;
            sc_hnsw_set_ef(h, efs[e]);
            ck_assert_int_eq(sc_hnsw_search(h, q, 10, l1, s1, &n1), 0);
            sc_hnsw_set_ef(h, 500);
            ck_assert_int_eq(sc_hnsw_search_ef(h, q, 10, efs[e], l2, s2, &n2), 0);
            ck_assert_int_eq(sc_hnsw_search(h, q, 10, l3, s3, &n3), 0);
            ck_assert_uint_eq(n1, 10);
            ck_assert_uint_eq(n1, n2);
            for (size_t k = 0; k < n1; k++) {
                ck_assert_uint_eq(l1[k], l2[k]);
                ck_assert_float_eq(s1[k], s2[k]);
                ck_assert_uint_ne(l2[k], 11);
            }
            differ_from_wide += l2[0] != l3[0];
        }
    }
    /* A beam of 1 is not the beam of 500: the argument is used. */
    ck_assert_uint_gt(differ_from_wide, 0);
    sc_hnsw_destroy(h);
    free(v);
}
END_TEST

/* _i = 1: the same on a graph that walks its int8 copy, which must grow,
 * follow replacements and skip deletions with it. */
START_TEST(deletes_growth_and_replace)
{
    const uint32_t dim = 16;
    sc_hnsw_t *h;
    ck_assert_int_eq(sc_hnsw_create(&h, dim, 4, 8, 50, 3), 0); /* grows from 4 */
    ck_assert_int_eq(sc_hnsw_quantize(h, _i), 0);
    float v[16];
    for (uint64_t i = 0; i < 300; i++) {
        for (uint32_t j = 0; j < dim; j++)
            v[j] = nrand();
        sc_vec_normalize(v, dim);
        ck_assert_int_eq(sc_hnsw_add(h, v, 1000 + i), 0);
    }
    ck_assert_uint_eq(sc_hnsw_live(h), 300);
    /* An exact copy of the last vector finds itself with similarity ~1. */
    uint64_t l[5];
    float s[5];
    size_t n;
    ck_assert_int_eq(sc_hnsw_search(h, v, 5, l, s, &n), 0);
    ck_assert_uint_eq(l[0], 1299);
    ck_assert(fabsf(s[0] - 1.0f) < 1e-5f);
    ck_assert_int_eq(sc_hnsw_mark_deleted(h, 1299), 0);
    ck_assert_int_eq(sc_hnsw_mark_deleted(h, 1299), SC_ENOTFOUND);
    ck_assert_int_eq(sc_hnsw_mark_deleted(h, 77), SC_ENOTFOUND);
    ck_assert_int_eq(sc_hnsw_search(h, v, 5, l, s, &n), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_uint_ne(l[i], 1299);
    ck_assert_uint_eq(sc_hnsw_live(h), 299);
    ck_assert_uint_eq(sc_hnsw_deleted(h), 1);
    /* Adding a deleted label again brings it back. */
    ck_assert_int_eq(sc_hnsw_add(h, v, 1299), 0);
    ck_assert_int_eq(sc_hnsw_search(h, v, 1, l, s, &n), 0);
    ck_assert_uint_eq(l[0], 1299);
    ck_assert_uint_eq(sc_hnsw_live(h), 300);
    /* Replacing a label's vector moves it: the old vector no longer finds it
     * at ~1, the new one does. */
    float w[16];
    for (uint32_t j = 0; j < dim; j++)
        w[j] = nrand();
    sc_vec_normalize(w, dim);
    ck_assert_int_eq(sc_hnsw_add(h, w, 1299), 0);
    ck_assert_int_eq(sc_hnsw_search(h, w, 1, l, s, &n), 0);
    ck_assert_uint_eq(l[0], 1299);
    ck_assert(fabsf(s[0] - 1.0f) < 1e-5f);
    ck_assert_int_eq(sc_hnsw_search(h, v, 1, l, s, &n), 0);
    ck_assert(l[0] != 1299 || s[0] < 0.999f);
    ck_assert_uint_eq(sc_hnsw_quantized_bytes(h) > 0, (unsigned)_i);
    sc_hnsw_destroy(h);
}
END_TEST

/* The int8 walk against the float walk on one graph (two clones): the same
 * best answer on nearly every query at the same beam, similarities that are
 * the float inner products (never the int8 estimates), a clone keeps the
 * copy, and quantize(0) drops it. */
START_TEST(int8_walk_answers_like_the_float_walk)
{
    const uint32_t D = 384;
    const size_t N = 4000, NQ = 400;
    float *v = malloc(N * D * sizeof(float)), *q = malloc(NQ * D * sizeof(float));
    for (size_t i = 0; i < N * D; i++)
        v[i] = nrand();
    for (size_t i = 0; i < N; i++)
        sc_vec_normalize(v + i * D, D);
    for (size_t i = 0; i < NQ; i++) { /* a stored vector plus noise */
        for (uint32_t j = 0; j < D; j++)
            q[i * D + j] = v[(i * 7 % N) * D + j] + 0.05f * nrand();
        sc_vec_normalize(q + i * D, D);
    }
    sc_hnsw_t *h, *f, *c;
    ck_assert_int_eq(sc_hnsw_create(&h, D, 64, 16, 100, 9), 0);
    ck_assert_int_eq(sc_hnsw_quantize(h, 1), 0);
    for (size_t i = 0; i < N; i++)
        ck_assert_int_eq(sc_hnsw_add(h, v + i * D, i), 0);
    ck_assert_uint_ge(sc_hnsw_quantized_bytes(h), N * D);
    ck_assert_int_eq(sc_hnsw_clone(h, 0, &f), 0);
    ck_assert_uint_eq(sc_hnsw_quantized_bytes(f), sc_hnsw_quantized_bytes(h));
    ck_assert_int_eq(sc_hnsw_quantize(f, 0), 0);
    ck_assert_uint_eq(sc_hnsw_quantized_bytes(f), 0);
    size_t same = 0;
    for (size_t i = 0; i < NQ; i++) {
        uint64_t a[10], b[10];
        float as[10], bs[10];
        size_t an, bn;
        ck_assert_int_eq(sc_hnsw_search_ef(h, q + i * D, 10, 32, a, as, &an), 0);
        ck_assert_int_eq(sc_hnsw_search_ef(f, q + i * D, 10, 32, b, bs, &bn), 0);
        ck_assert_uint_eq(an, 10);
        same += a[0] == b[0];
        for (size_t r = 0; r < an; r++) {
            ck_assert(r == 0 || as[r] <= as[r - 1]);
            float dot = 0;
            for (uint32_t j = 0; j < D; j++)
                dot += q[i * D + j] * v[a[r] * D + j];
            ck_assert_msg(fabsf(dot - as[r]) < 1e-5f, "%f vs %f", dot, as[r]);
        }
    }
    ck_assert_msg(same >= NQ * 99 / 100, "%zu of %zu", same, NQ);
    /* Off and on again on a filled graph rebuilds the copy from its vectors. */
    ck_assert_int_eq(sc_hnsw_quantize(f, 1), 0);
    ck_assert_int_eq(sc_hnsw_clone(f, 10, &c), 0);
    uint64_t l[1];
    float s[1];
    size_t n;
    ck_assert_int_eq(sc_hnsw_search(c, v + 11 * D, 1, l, s, &n), 0);
    ck_assert_uint_eq(l[0], 11);
    ck_assert(fabsf(s[0] - 1.0f) < 1e-5f);
    sc_hnsw_destroy(c);
    sc_hnsw_destroy(f);
    sc_hnsw_destroy(h);
    free(v);
    free(q);
}
END_TEST

static void count_cb(void *ctx, uint64_t label, const float *vec)
{
    (void)vec;
    *(uint64_t *)ctx += label;
}

START_TEST(save_load_and_bad_files)
{
    const uint32_t dim = 8;
    sc_hnsw_t *h, *g;
    ck_assert_int_eq(sc_hnsw_create(&h, dim, 16, 8, 50, 3), 0);
    float v[8];
    uint64_t sum = 0;
    for (uint64_t i = 1; i <= 50; i++) {
        for (uint32_t j = 0; j < dim; j++)
            v[j] = nrand();
        sc_vec_normalize(v, dim);
        sc_hnsw_add(h, v, i);
        sum += i;
    }
    sc_hnsw_mark_deleted(h, 7);
    char path[] = "/tmp/sc-hnsw-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ck_assert_int_eq(sc_hnsw_save(h, path), 0);
    ck_assert_int_eq(sc_hnsw_load(&g, path, dim), 0);
    ck_assert_uint_eq(sc_hnsw_live(g), 49);
    uint64_t got = 0;
    sc_hnsw_foreach(g, count_cb, &got);
    ck_assert_uint_eq(got, sum - 7);
    uint64_t l1, l2;
    float s1, s2;
    size_t n1, n2;
    sc_hnsw_search(h, v, 1, &l1, &s1, &n1);
    sc_hnsw_search(g, v, 1, &l2, &s2, &n2);
    ck_assert_uint_eq(l1, l2);
    sc_hnsw_destroy(g);
    /* Wrong dimension and a missing file are errors, not crashes. */
    ck_assert_int_eq(sc_hnsw_load(&g, path, dim * 2), SC_ECORRUPT);
    ck_assert_int_eq(sc_hnsw_load(&g, "/nonexistent/x.hnsw", dim), SC_ECORRUPT);
    unlink(path);
    sc_hnsw_destroy(h);
    ck_assert_int_eq(sc_hnsw_create(&h, 0, 16, 8, 50, 3), SC_EINVAL);
}
END_TEST

START_TEST(normalize_handles_tiny_huge_and_bad_vectors)
{
    /* Tiny vectors (found by fuzz_model2vec: 1 / sqrt(ss) overflowed a
     * float), huge ones, and the refusals. */
    float tiny[3] = {1e-40f, 0, 1e-40f}, huge[2] = {3e38f, 3e38f}, zero[2] = {0, 0};
    float nan_v[2] = {NAN, 1}, inf_v[2] = {INFINITY, 1};
    ck_assert_int_eq(sc_vec_normalize(tiny, 3), 0);
    ck_assert(fabsf(tiny[0] - 0.70710678f) < 1e-6f && tiny[1] == 0 &&
              fabsf(tiny[2] - 0.70710678f) < 1e-6f);
    ck_assert_int_eq(sc_vec_normalize(huge, 2), 0);
    ck_assert(fabsf(huge[0] - 0.70710678f) < 1e-6f);
    ck_assert_int_eq(sc_vec_normalize(zero, 2), SC_EINVAL);
    ck_assert_int_eq(sc_vec_normalize(nan_v, 2), SC_EINVAL);
    ck_assert_int_eq(sc_vec_normalize(inf_v, 2), SC_EINVAL);
}
END_TEST

START_TEST(flat_matches_brute_force_and_batches)
{
    const uint32_t dim = 32;
    sc_flat_t *f;
    ck_assert_int_eq(sc_flat_create(&f, dim), 0);
    float *vecs = malloc(500 * dim * sizeof(float));
    for (size_t i = 0; i < 500; i++) {
        for (uint32_t j = 0; j < dim; j++)
            vecs[i * dim + j] = nrand();
        sc_vec_normalize(vecs + i * dim, dim);
        ck_assert_int_eq(sc_flat_add(f, vecs + i * dim, 100 + i), 0);
    }
    /* Remove every third; the scan must agree with brute force on the rest. */
    for (size_t i = 0; i < 500; i += 3)
        ck_assert_int_eq(sc_flat_remove(f, 100 + i), 0);
    ck_assert_int_eq(sc_flat_remove(f, 100), SC_ENOTFOUND);
    ck_assert_uint_eq(sc_flat_count(f), 500 - 167);
    float q[4 * 32];
    for (size_t i = 0; i < 4 * dim; i++)
        q[i] = nrand();
    for (int k = 0; k < 4; k++)
        sc_vec_normalize(q + k * dim, dim);
    uint64_t bl[4 * 5];
    float bs[4 * 5];
    size_t bn[4];
    ck_assert_int_eq(sc_flat_search_batch(f, q, 4, 5, bl, bs, bn), 0);
    for (int k = 0; k < 4; k++) {
        float best = -2;
        uint64_t arg = 0;
        for (size_t i = 0; i < 500; i++) {
            if (i % 3 == 0)
                continue;
            float d = sc_vec_dot(q + k * dim, vecs + i * dim, dim);
            if (d > best)
                best = d, arg = 100 + i;
        }
        uint64_t l[5];
        float s[5];
        size_t n;
        ck_assert_int_eq(sc_flat_search(f, q + k * dim, 5, l, s, &n), 0);
        ck_assert_uint_eq(n, 5);
        ck_assert_uint_eq(l[0], arg);
        ck_assert(fabsf(s[0] - best) < 1e-5f);
        for (int i = 1; i < 5; i++)
            ck_assert(s[i] <= s[i - 1]);
        ck_assert_uint_eq(bn[k], 5);
        ck_assert_uint_eq(bl[k * 5], arg);
    }
    free(vecs);
    sc_flat_destroy(f);
    float z[3] = {0, 0, 0}, bad[3] = {1, NAN, 0};
    ck_assert_int_eq(sc_vec_normalize(z, 3), SC_EINVAL);
    ck_assert_int_eq(sc_vec_normalize(bad, 3), SC_EINVAL);
}
END_TEST

START_TEST(clone_is_deep_and_independent)
{
    enum { N = 500, D = 16 };
    float *v = malloc((size_t)N * D * sizeof(float));
    sc_hnsw_t *h, *c;
    ck_assert_int_eq(sc_hnsw_create(&h, D, 64, 16, 100, 3), 0); /* grows while adding */
    sc_hnsw_set_ef(h, 200);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < D; j++)
            v[i * D + j] = nrand();
        ck_assert_int_eq(sc_vec_normalize(v + i * D, D), 0);
        ck_assert_int_eq(sc_hnsw_add(h, v + i * D, (uint64_t)i), 0);
    }
    ck_assert_int_eq(sc_hnsw_mark_deleted(h, 7), 0);
    ck_assert_int_eq(sc_hnsw_clone(h, 10, &c), 0);
    ck_assert_uint_eq(sc_hnsw_live(c), N - 1);
    ck_assert_uint_eq(sc_hnsw_deleted(c), 1);
    ck_assert_int_eq(sc_hnsw_contains(c, 7), 0);
    ck_assert_int_eq(sc_hnsw_contains(c, 8), 1);
    /* Same answers as the original (the clone carries its ef too). */
    for (int i = 0; i < N; i += 7) {
        uint64_t l1[5], l2[5];
        float s1[5], s2[5];
        size_t n1, n2;
        ck_assert_int_eq(sc_hnsw_search(h, v + i * D, 5, l1, s1, &n1), 0);
        ck_assert_int_eq(sc_hnsw_search(c, v + i * D, 5, l2, s2, &n2), 0);
        ck_assert_uint_eq(n1, n2);
        for (size_t k = 0; k < n1; k++) {
            ck_assert_uint_eq(l1[k], l2[k]);
            ck_assert_float_eq(s1[k], s2[k]);
        }
    }
    /* Changing the clone (past its capacity, so it grows) leaves the
     * original as it was, and the original can be freed first. */
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(sc_hnsw_add(c, v + i * D, (uint64_t)(N + i)), 0);
    ck_assert_int_eq(sc_hnsw_add(c, v + 7 * D, 7), 0);
    ck_assert_int_eq(sc_hnsw_mark_deleted(c, 9), 0);
    ck_assert_uint_eq(sc_hnsw_live(h), N - 1);
    ck_assert_int_eq(sc_hnsw_contains(h, 9), 1);
    ck_assert_int_eq(sc_hnsw_contains(h, N + 1), 0);
    sc_hnsw_destroy(h);
    ck_assert_uint_eq(sc_hnsw_live(c), N - 1 + 40 + 1 - 1);
    uint64_t l[1];
    float sim[1];
    size_t n;
    ck_assert_int_eq(sc_hnsw_search(c, v + 7 * D, 1, l, sim, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(l[0] == 7 || l[0] == N + 7);
    sc_hnsw_destroy(c);
    free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("index");
    TCase *tc = tcase_create("index");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, deletes_growth_and_replace, 0, 2);
    tcase_add_test(tc, int8_walk_answers_like_the_float_walk);
    tcase_add_test(tc, clone_is_deep_and_independent);
    tcase_add_test(tc, explicit_beam_matches_the_index_beam);
    tcase_add_test(tc, save_load_and_bad_files);
    tcase_add_test(tc, flat_matches_brute_force_and_batches);
    tcase_add_test(tc, normalize_handles_tiny_huge_and_bad_vectors);
    if (tu_shared())
        tcase_add_test(tc, recall_on_sift5k);
    else
        tu_skip("recall_on_sift5k: ../shared/data/ann is absent");
    suite_add_tcase(s, tc);
    return tu_run(s);
}
