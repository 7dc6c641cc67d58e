/* tests/embed/bert.c -- the BERT encoder (embed/bert.c) against an
 * independent numpy float64 forward pass (tests/embed/tiny_bert.py) on small
 * random weights, for F32, F16 and BF16 files and for mean and CLS pooling;
 * and, when MODEL_DIR points at a real all-MiniLM-L6-v2, against the values
 * other projects publish (../shared/models/REFERENCE_VALUES.md). */
#define _GNU_SOURCE
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sc_embed.h"
#include "sc_embed_internal.h"
#include "testutil.h"

static double check_against_numpy(const char *dtype, const char *pooling)
{
    char dir[] = "/tmp/sc-bert-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 tests/embed/tiny_bert.py %s %s %s", dir, dtype,
             pooling);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    char err[256], path[512];
    uint64_t hash;
    sc_bert_t *b;
    int rc = sc_bert_open(&b, dir, &hash, err, sizeof(err));
    ck_assert_msg(rc == 0, "open: %s", err);
    ck_assert_uint_eq(sc_bert_dim(b), 32);
    snprintf(path, sizeof(path), "%s/expected.json", dir);
    json_error_t je;
    json_t *ref = json_load_file(path, 0, &je);
    ck_assert_ptr_nonnull(ref);
    json_t *ids = json_object_get(ref, "ids"), *emb = json_object_get(ref, "embeddings");
    size_t n = json_array_size(ids);
    int32_t *seqs[16];
    size_t lens[16];
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(ids, i);
        lens[i] = json_array_size(s);
        seqs[i] = malloc(lens[i] * sizeof(int32_t));
        for (size_t k = 0; k < lens[i]; k++)
            seqs[i][k] = (int32_t)json_integer_value(json_array_get(s, k));
    }
    float *out = malloc(n * 32 * sizeof(float));
    ck_assert_int_eq(sc_bert_encode_ids(b, (const int32_t *const *)seqs, lens, n, out), 0);
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t d = 0; d < 32; d++) {
            double diff =
                fabs(out[i * 32 + d] - json_real_value(json_array_get(json_array_get(emb, i), d)));
            if (diff > worst)
                worst = diff;
        }
    /* Split over 2 and 3 threads (rows and heads divide unevenly with 3),
     * the pass gives the reference's vectors too. */
    for (int threads = 2; threads <= 3; threads++) {
        float *par = malloc(n * 32 * sizeof(float));
        sc_bert_set_threads(b, threads);
        ck_assert_int_eq(sc_bert_encode_ids(b, (const int32_t *const *)seqs, lens, n, par), 0);
        for (size_t i = 0; i < n * 32; i++) {
            double diff =
                fabs(par[i] - json_real_value(json_array_get(json_array_get(emb, i / 32), i % 32)));
            if (diff > worst)
                worst = diff;
        }
        free(par);
    }
    sc_bert_set_threads(b, 1);
    /* One at a time gives the same vectors as the padded batch. */
    for (size_t i = 0; i < n; i++) {
        float one[32];
        ck_assert_int_eq(sc_bert_encode_ids(b, (const int32_t *const *)&seqs[i], &lens[i], 1, one),
                         0);
        for (size_t d = 0; d < 32; d++)
            ck_assert(fabsf(one[d] - out[i * 32 + d]) < 1e-5f);
    }
    /* Through the embedder front: texts of vocabulary words. */
    sc_embedder_t *e;
    ck_assert_int_eq(sc_embedder_open(&e, dir, err, sizeof(err)), 0);
    ck_assert(strncmp(sc_embedder_identity(e), "bert:", 5) == 0);
    const char *texts[] = {"w1 w2 w3", "w7", "w1 w2 w3"};
    size_t tl[] = {8, 2, 8};
    float tv[3 * 32];
    ck_assert_int_eq(sc_embedder_embed(e, texts, tl, 3, tv, NULL), 0);
    double dot = 0;
    for (size_t d = 0; d < 32; d++)
        dot += tv[d] * tv[64 + d];
    ck_assert(fabs(dot - 1.0) < 1e-5);
    sc_embedder_close(e);
    for (size_t i = 0; i < n; i++)
        free(seqs[i]);
    free(out);
    json_decref(ref);
    sc_bert_close(b);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
    return worst;
}

START_TEST(matches_numpy_f32_mean)
{
    double w = check_against_numpy("F32", "mean");
    fprintf(stderr, "bert F32 mean: max abs diff %.2e\n", w);
    ck_assert_msg(w < 1e-5, "max abs diff %.3e", w);
}
END_TEST

START_TEST(matches_numpy_f16_cls)
{
    double w = check_against_numpy("F16", "cls");
    fprintf(stderr, "bert F16 cls: max abs diff %.2e\n", w);
    ck_assert_msg(w < 1e-5, "max abs diff %.3e", w);
}
END_TEST

START_TEST(matches_numpy_bf16_mean)
{
    double w = check_against_numpy("BF16", "mean");
    fprintf(stderr, "bert BF16 mean: max abs diff %.2e\n", w);
    ck_assert_msg(w < 1e-5, "max abs diff %.3e", w);
}
END_TEST

/* Published values for all-MiniLM-L6-v2 ("hello world", first five dims, 1e-3). */
START_TEST(real_minilm_matches_published_values)
{
    char err[256];
    sc_embedder_t *e;
    ck_assert_int_eq(sc_embedder_open(&e, getenv("MODEL_DIR"), err, sizeof(err)), 0);
    const char *t = "hello world";
    size_t len = strlen(t);
    float v[384];
    ck_assert_int_eq(sc_embedder_embed(e, &t, &len, 1, v, NULL), 0);
    const double want[5] = {-0.034478, 0.03102, 0.00673, 0.02611, -0.039362};
    for (int i = 0; i < 5; i++)
        ck_assert_msg(fabs(v[i] - want[i]) < 1e-3, "dim %d: %f want %f", i, v[i], want[i]);
    sc_embedder_close(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bert");
    TCase *tc = tcase_create("bert");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, matches_numpy_f32_mean);
    tcase_add_test(tc, matches_numpy_f16_cls);
    tcase_add_test(tc, matches_numpy_bf16_mean);
    if (getenv("MODEL_DIR") && *getenv("MODEL_DIR"))
        tcase_add_test(tc, real_minilm_matches_published_values);
    else
        tu_skip(
            "real_minilm_matches_published_values: set MODEL_DIR to an all-MiniLM-L6-v2 directory");
    suite_add_tcase(s, tc);
    return tu_run(s);
}
