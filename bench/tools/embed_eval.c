/* embed_eval.c -- semcached-embed-eval: how well an embedder separates
 * duplicate from non-duplicate question pairs, and how fast it embeds.
 * Reads question1<TAB>question2<TAB>is_duplicate lines (QQP), embeds both
 * sides in batches on one thread, and prints one JSON object: sentences per
 * second, ROC-AUC of the cosine, and precision / recall / hit rate at
 * thresholds 0.80 to 0.95, i.e. what a cache at that threshold would serve. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_common.h"
#include "sc_embed.h"
#include "sc_index.h"

typedef struct {
    double score;
    int label;
} scored_t;

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const scored_t *)a)->score, y = ((const scored_t *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: semcached-embed-eval MODEL PAIRS.tsv [max_pairs]\n");
        return 2;
    }
    size_t max_pairs = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;
    char err[512];
    sc_embedder_t *e;
    if (sc_embedder_open(&e, argv[1], err, sizeof(err))) {
        fprintf(stderr, "semcached-embed-eval: %s\n", err);
        return 1;
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    size_t cap = 1024, n = 0;
    char **q1 = malloc(cap * sizeof(char *)), **q2 = malloc(cap * sizeof(char *));
    int *label = malloc(cap * sizeof(int));
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0 && (!max_pairs || n < max_pairs)) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2)
            continue;
        *t1 = *t2 = '\0';
        if (n == cap) {
            cap *= 2;
            q1 = realloc(q1, cap * sizeof(char *));
            q2 = realloc(q2, cap * sizeof(char *));
            label = realloc(label, cap * sizeof(int));
        }
        q1[n] = strdup(line);
        q2[n] = strdup(t1 + 1);
        label[n] = atoi(t2 + 1) == 1;
        n++;
    }
    free(line);
    fclose(f);
    uint32_t dim = sc_embedder_dim(e);
    const size_t batch = 32;
    float *v1 = malloc(batch * dim * sizeof(float)), *v2 = malloc(batch * dim * sizeof(float));
    uint8_t em1[8], em2[8];
    scored_t *sc = malloc(n * sizeof(scored_t));
    size_t used = 0, positives = 0;
    uint64_t t0 = sc_mono_ns();
    for (size_t i = 0; i < n; i += batch) {
        size_t m = n - i < batch ? n - i : batch;
        size_t l1[32], l2[32];
        for (size_t k = 0; k < m; k++) {
            l1[k] = strlen(q1[i + k]);
            l2[k] = strlen(q2[i + k]);
        }
        if (sc_embedder_embed(e, (const char *const *)q1 + i, l1, m, v1, em1) ||
            sc_embedder_embed(e, (const char *const *)q2 + i, l2, m, v2, em2)) {
            fprintf(stderr, "semcached-embed-eval: embedding failed\n");
            return 1;
        }
        for (size_t k = 0; k < m; k++) {
            if ((em1[k / 8] | em2[k / 8]) >> (k % 8) & 1)
                continue; /* a side with no known token cannot be matched */
            sc[used].score = sc_vec_dot(v1 + k * dim, v2 + k * dim, dim);
            sc[used].label = label[i + k];
            positives += (size_t)label[i + k];
            used++;
        }
    }
    double secs = (double)(sc_mono_ns() - t0) / 1e9;
    /* ROC-AUC: the probability that a random duplicate pair outscores a random
     * non-duplicate pair (ties count half), by one pass over the sorted list. */
    qsort(sc, used, sizeof(scored_t), by_score_desc);
    size_t negatives = used - positives;
    double auc_sum = 0, neg_below = (double)negatives;
    for (size_t i = 0; i < used;) {
        size_t j = i, pos = 0, neg = 0;
        while (j < used && sc[j].score == sc[i].score) {
            pos += (size_t)sc[j].label;
            neg += (size_t)!sc[j].label;
            j++;
        }
        neg_below -= (double)neg;
        auc_sum += (double)pos * (neg_below + 0.5 * (double)neg);
        i = j;
    }
    double auc = positives && negatives ? auc_sum / ((double)positives * (double)negatives) : 0;
    printf("{\"model\":\"%s\",\"pairs\":%zu,\"duplicates\":%zu,\"sentences_per_s\":%.0f,\"roc_"
           "auc\":%.4f,\"thresholds\":[",
           sc_embedder_identity(e), used, positives, 2.0 * (double)n / secs, auc);
    for (int t = 0; t < 4; t++) {
        double th = 0.80 + 0.05 * t;
        size_t tp = 0, fp = 0;
        for (size_t i = 0; i < used && sc[i].score >= th; i++) {
            tp += (size_t)sc[i].label;
            fp += (size_t)!sc[i].label;
        }
        printf("%s{\"threshold\":%.2f,\"precision\":%.4f,\"recall\":%.4f,\"hit_rate\":%.4f}",
               t ? "," : "", th, tp + fp ? (double)tp / (double)(tp + fp) : 1.0,
               positives ? (double)tp / (double)positives : 0.0, (double)(tp + fp) / (double)used);
    }
    printf("]}\n");
    for (size_t i = 0; i < n; i++) {
        free(q1[i]);
        free(q2[i]);
    }
    free(q1);
    free(q2);
    free(label);
    free(sc);
    free(v1);
    free(v2);
    sc_embedder_close(e);
    return 0;
}
