/* bert_bench.c -- semcached-bert-bench: sentences per second of the BERT
 * encoder (embed/bert.c) on a model directory, at 16 and 64 tokens and batch
 * 1, 8 and 32, plus this machine's OpenBLAS sgemm peak measured in the same
 * run and the fraction of it the encoder reaches. With THREADS, the forward
 * pass is split over that many threads (intra-op) and OpenBLAS runs one
 * thread inside each; without, OpenBLAS's own threading is all there is.
 * Prints JSON lines. */
#define _GNU_SOURCE
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_common.h"
#include "sc_embed_internal.h"

/* Multiply-adds of one forward pass over 'n' sequences of 'len' tokens. */
static double flops(int H, int FF, int layers, int n, int len)
{
    double tok = (double)n * len;
    double per_layer = tok * (2.0 * 3 * H * H + 2.0 * H * H + 2.0 * 2 * H * FF) +
                       (double)n * 2.0 * 2 * len * len * H;
    return per_layer * layers;
}

static double sgemm_peak(void)
{
    const int n = 1024;
    float *a = malloc(sizeof(float) * n * n), *b = malloc(sizeof(float) * n * n),
          *c = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++)
        a[i] = b[i] = 0.001f * (float)(i % 97);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
    int reps = 0;
    uint64_t t0 = sc_mono_ns();
    while (sc_mono_ns() - t0 < 2000000000ull) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        reps++;
    }
    double secs = (double)(sc_mono_ns() - t0) / 1e9;
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n * reps / secs / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: semcached-bert-bench MODEL_DIR [THREADS]\n");
        return 2;
    }
    char err[512];
    uint64_t hash;
    sc_bert_t *b;
    if (sc_bert_open(&b, argv[1], &hash, err, sizeof(err))) {
        fprintf(stderr, "semcached-bert-bench: %s\n", err);
        return 1;
    }
    int intra = argc > 2 ? atoi(argv[2]) : 0;
    /* The peak is OpenBLAS's with all the threads the pass may use. */
    if (intra > 0)
        openblas_set_num_threads(intra);
    double peak = sgemm_peak();
    int threads = openblas_get_num_threads();
    if (intra > 0) {
        openblas_set_num_threads(1);
        sc_bert_set_threads(b, intra);
    }
    printf("{\"sgemm_gflops\":%.1f,\"threads\":%d,\"intra_op\":%s}\n", peak, threads,
           intra > 0 ? "true" : "false");
    /* The shape, for the FLOP count: read back from the config the encoder used. */
    FILE *f;
    char path[4096];
    snprintf(path, sizeof(path), "%s/config.json", argv[1]);
    int H = (int)sc_bert_dim(b), FF = 4 * H, layers = 6;
    if ((f = fopen(path, "r"))) {
        char buf[4096];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        char *p = strstr(buf, "\"intermediate_size\":");
        if (p)
            FF = atoi(p + 20);
        p = strstr(buf, "\"num_hidden_layers\":");
        if (p)
            layers = atoi(p + 20);
        fclose(f);
    }
    static const int lens[] = {16, 64}, batches[] = {1, 8, 32};
    float *out = malloc(sizeof(float) * 32 * (size_t)H);
    for (int li = 0; li < 2; li++)
        for (int bi = 0; bi < 3; bi++) {
            int len = lens[li], n = batches[bi];
            int32_t *ids[32];
            size_t l[32];
            for (int i = 0; i < n; i++) {
                ids[i] = malloc(sizeof(int32_t) * (size_t)len);
                ids[i][0] = 2;
                for (int k = 1; k < len - 1; k++)
                    ids[i][k] = 5 + (i * 131 + k * 17) % 30000;
                ids[i][len - 1] = 3;
                l[i] = (size_t)len;
            }
            sc_bert_encode_ids(b, (const int32_t *const *)ids, l, (size_t)n, out); /* warm up */
            int reps = 0;
            uint64_t t0 = sc_mono_ns();
            while (sc_mono_ns() - t0 < 2000000000ull) {
                sc_bert_encode_ids(b, (const int32_t *const *)ids, l, (size_t)n, out);
                reps++;
            }
            double secs = (double)(sc_mono_ns() - t0) / 1e9;
            double sps = (double)n * reps / secs;
            double gflops = flops(H, FF, layers, n, len) * reps / secs / 1e9;
            printf("{\"tokens\":%d,\"batch\":%d,\"sentences_per_s\":%.1f,\"gflops\":%.1f,\"of_"
                   "peak\":%.3f}\n",
                   len, n, sps, gflops, gflops / peak);
            fflush(stdout);
            for (int i = 0; i < n; i++)
                free(ids[i]);
        }
    free(out);
    sc_bert_close(b);
    return 0;
}
