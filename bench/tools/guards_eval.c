/* guards_eval.c -- semcached-guards-eval: what the semantic-hit guards
 * (cache/guards.c) and a fixed threshold do on labelled sentence pairs.
 * Pairs mode: for pairs at or above a cosine threshold, how many
 * non-duplicates each guard refuses (false hits removed) against duplicates
 * (true hits lost). Replay mode (QQP): the traffic of bench/qqp_replay.py
 * without the server (store question 1, look up question 2 against every
 * stored question, store question 2), the false-hit rate of served semantic
 * hits by threshold, and the threshold that meets a target chosen on one
 * half of the file and reported on the other. Prints Markdown. */
#define _GNU_SOURCE
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_common.h"
#include "sc_embed.h"
#include "sc_guards.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define N_CUTS 100    /* thresholds 0.500, 0.505, ... 0.995 */
#define MIN_SERVED 50 /* a cut is judged on at least this many served hits */

typedef struct {
    uint32_t a, b; /* text ids */
    int dup;
    int half; /* 0 = A (even data rows), 1 = B (odd) */
    float cos;
    unsigned bits; /* negation and numbers guards that fire */
    int32_t lone;  /* rare-word guard: fires for rare_rank <= lone */
} pair_t;

typedef struct {
    char **text;
    uint32_t n, cap;
    uint32_t *slot; /* id + 1 */
    size_t mask;
} texts_t;

static uint32_t text_id(texts_t *t, const char *s)
{
    if (2 * (size_t)(t->n + 1) > t->mask) {
        size_t cap = t->mask ? 2 * (t->mask + 1) : 1 << 16;
        free(t->slot);
        t->slot = calloc(cap, sizeof(uint32_t));
        t->mask = cap - 1;
        for (uint32_t i = 0; i < t->n; i++) {
            size_t h = (size_t)XXH3_64bits(t->text[i], strlen(t->text[i])) & t->mask;
            while (t->slot[h])
                h = (h + 1) & t->mask;
            t->slot[h] = i + 1;
        }
    }
    size_t h = (size_t)XXH3_64bits(s, strlen(s)) & t->mask;
    for (; t->slot[h]; h = (h + 1) & t->mask)
        if (strcmp(t->text[t->slot[h] - 1], s) == 0)
            return t->slot[h] - 1;
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 1024;
        t->text = realloc(t->text, t->cap * sizeof(char *));
    }
    t->text[t->n] = strdup(s);
    t->slot[h] = t->n + 1;
    return t->n++;
}

/* ---- reading the pair files ------------------------------------------------------ */

static char *field(char **line)
{
    char *f = *line, *tab = f ? strchr(f, '\t') : NULL;
    *line = tab ? tab + 1 : NULL;
    if (tab)
        *tab = '\0';
    return f;
}

/* One data row of 'fmt' into (s1, s2, dup); 0 to skip the row. */
static int parse_row(const char *fmt, char *line, char **s1, char **s2, int *dup)
{
    char *f[12] = {0};
    for (int i = 0; i < 12; i++)
        f[i] = field(&line);
    if (strcmp(fmt, "qqp") == 0) {
        *s1 = f[0], *s2 = f[1];
        *dup = f[2] && atoi(f[2]) == 1;
        return f[2] != NULL;
    }
    if (strcmp(fmt, "mrpc") == 0) { /* Quality, #1 ID, #2 ID, #1 String, #2 String */
        *s1 = f[3], *s2 = f[4];
        *dup = f[0] && atoi(f[0]) == 1;
        return f[4] && strcmp(f[1], "-1") && strcmp(f[2], "-1");
    }
    if (strcmp(fmt, "stsb") ==
        0) { /* genre, file, year, id, score, s1, s2: paraphrase = score >= 4 */
        *s1 = f[5], *s2 = f[6];
        *dup = f[4] && atof(f[4]) >= 4.0;
        return f[6] != NULL;
    }
    if (strcmp(fmt, "sick") == 0) { /* pair_ID, A, B, label, score, AB, BA: mutual entailment */
        *s1 = f[1], *s2 = f[2];
        *dup = f[6] && strcmp(f[5], "A_entails_B") == 0 && strcmp(f[6], "B_entails_A") == 0;
        return f[6] != NULL;
    }
    return 0;
}

static pair_t *read_pairs(const char *fmt, const char *path, size_t max, texts_t *t, size_t *n_out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    int header = strcmp(fmt, "stsb") != 0;
    size_t n = 0, cap = 1024, row = 0;
    pair_t *p = malloc(cap * sizeof(pair_t));
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0 && (!max || n < max)) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (header) {
            header = 0;
            continue;
        }
        char *s1, *s2;
        int dup;
        if (!parse_row(fmt, line, &s1, &s2, &dup) || !*s1 || !*s2)
            continue;
        if (n == cap)
            p = realloc(p, (cap *= 2) * sizeof(pair_t));
        memset(&p[n], 0, sizeof(pair_t));
        p[n].a = text_id(t, s1);
        p[n].b = text_id(t, s2);
        p[n].dup = dup;
        p[n].half = (int)(row++ % 2);
        n++;
    }
    free(line);
    fclose(f);
    *n_out = n;
    return p;
}

static float *embed_all(const sc_embedder_t *e, const texts_t *t)
{
    uint32_t dim = sc_embedder_dim(e);
    float *v = malloc((size_t)t->n * dim * sizeof(float));
    for (uint32_t i = 0; i < t->n; i += 64) {
        uint32_t m = t->n - i < 64 ? t->n - i : 64;
        size_t lens[64];
        for (uint32_t k = 0; k < m; k++)
            lens[k] = strlen(t->text[i + k]);
        if (sc_embedder_embed(e, (const char *const *)t->text + i, lens, m, v + (size_t)i * dim,
                              NULL)) {
            fprintf(stderr, "embedding failed\n");
            exit(1);
        }
    }
    return v;
}

static void guard(const texts_t *t, uint32_t a, uint32_t b, const sc_guard_opts_t *o,
                  unsigned *bits, int32_t *lone)
{
    sc_guard_result_t r;
    if (sc_guard_check(t->text[a], strlen(t->text[a]), t->text[b], strlen(t->text[b]), o, &r) < 0) {
        fprintf(stderr, "guard check failed\n");
        exit(1);
    }
    *bits = r.refused & (SC_GUARD_NEGATION | SC_GUARD_NUMBERS);
    *lone = r.lone_rank;
}

/* ---- pairs mode ------------------------------------------------------------------- */

/* The guards as evaluated: each alone, then all three. */
#define N_GUARDS 4
static const char *const guard_names[N_GUARDS] = {"negation", "numbers", "rare word", "all three"};

static int fires(const pair_t *p, int g, int32_t rare_rank)
{
    int rare = p->lone >= rare_rank;
    switch (g) {
    case 0:
        return (p->bits & SC_GUARD_NEGATION) != 0;
    case 1:
        return (p->bits & SC_GUARD_NUMBERS) != 0;
    case 2:
        return rare;
    default:
        return p->bits || rare;
    }
}

static void pairs_table(const pair_t *p, size_t n, int half, int32_t rare_rank)
{
    static const double cuts[] = {0.80, 0.85, 0.90, 0.95};
    printf("| cosine >= | pairs | non-dup (false hits) | guard | false hits removed | true hits "
           "lost | "
           "false-hit rate after |\n|---:|---:|---:|---|---:|---:|---:|\n");
    for (int c = 0; c < 4; c++) {
        size_t total = 0, neg = 0, removed[N_GUARDS] = {0}, lost[N_GUARDS] = {0};
        for (size_t i = 0; i < n; i++) {
            if ((half >= 0 && p[i].half != half) || p[i].cos < cuts[c])
                continue;
            total++;
            neg += !p[i].dup;
            for (int g = 0; g < N_GUARDS; g++)
                if (fires(&p[i], g, rare_rank))
                    (p[i].dup ? lost : removed)[g]++;
        }
        for (int g = 0; g < N_GUARDS; g++) {
            size_t left = total - removed[g] - lost[g], wrong = neg - removed[g];
            printf(
                "| %.2f | %zu | %zu (%.1f %%) | %s | %zu (%.1f %%) | %zu (%.1f %%) | %.1f %% |\n",
                cuts[c], total, neg, total ? 100.0 * (double)neg / (double)total : 0,
                guard_names[g], removed[g], neg ? 100.0 * (double)removed[g] / (double)neg : 0,
                lost[g], total - neg ? 100.0 * (double)lost[g] / (double)(total - neg) : 0,
                left ? 100.0 * (double)wrong / (double)left : 0);
        }
    }
}

/* The numbers behind SC_GUARD_RARE_RANK: on half A, among pairs at cosine
 * >= 0.80, the share of non-duplicates and of duplicates each cut refuses;
 * the cut with the largest difference (Youden's J, which does not depend on
 * how many candidates are duplicates) is chosen (docs/quality.md). */
static void rank_choice(const pair_t *p, size_t n)
{
    static const int32_t ranks[] = {1000, 2000, 5000, 10000, 20000, 50000, 100000, INT32_MAX};
    size_t pos = 0, neg = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i].half == 0 && p[i].cos >= 0.80)
            p[i].dup ? pos++ : neg++;
    printf("Half A, cosine >= 0.80: %zu non-duplicates, %zu duplicates\n\n"
           "| rare_rank | non-dup refused | dup refused | J |\n|---:|---:|---:|---:|\n",
           neg, pos);
    for (int r = 0; r < 8; r++) {
        size_t removed = 0, lost = 0;
        for (size_t i = 0; i < n; i++)
            if (p[i].half == 0 && p[i].cos >= 0.80 && p[i].lone >= ranks[r])
                p[i].dup ? lost++ : removed++;
        double a = neg ? (double)removed / (double)neg : 0,
               b = pos ? (double)lost / (double)pos : 0;
        if (ranks[r] == INT32_MAX)
            printf("| unlisted only |");
        else
            printf("| %d |", ranks[r]);
        printf(" %.1f %% | %.1f %% | %.3f |\n", 100 * a, 100 * b, a - b);
    }
}

/* ---- replay mode ------------------------------------------------------------------ */

typedef struct {
    float sim; /* best candidate's cosine (-2: exact hit or no candidate) */
    int correct;
    unsigned bits;
    int32_t lone;
} lookup_t;

/* Answers as the mock upstream gives them: duplicates, transitively, share one. */
static uint32_t find(uint32_t *parent, uint32_t x)
{
    while (parent[x] != x)
        x = parent[x] = parent[parent[x]];
    return x;
}

static lookup_t *replay(const pair_t *p, size_t n, int half, const texts_t *t, const float *vec,
                        uint32_t dim, const uint32_t *answer, const sc_guard_opts_t *o,
                        size_t *n_out)
{
    size_t cap = 2 * n + 1, stored = 0, k = 0;
    float *m = malloc(cap * dim * sizeof(float)), *sims = malloc(cap * sizeof(float));
    uint32_t *id = malloc(cap * sizeof(uint32_t));
    uint8_t *in = calloc(t->n, 1);
    lookup_t *out = calloc(n, sizeof(lookup_t));
    for (size_t i = 0; i < n; i++) {
        if (p[i].half != half)
            continue;
        uint32_t q[2] = {p[i].a, p[i].b};
        if (!in[q[0]]) { /* store question 1 */
            memcpy(m + stored * dim, vec + (size_t)q[0] * dim, dim * sizeof(float));
            id[stored++] = q[0];
            in[q[0]] = 1;
        }
        lookup_t *l = &out[k++];
        l->sim = -2;
        if (in[q[1]])
            continue; /* an exact hit */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)stored, (int)dim, 1.0f, m, (int)dim,
                    vec + (size_t)q[1] * dim, 1, 0.0f, sims, 1);
        size_t best = 0;
        for (size_t j = 1; j < stored; j++)
            if (sims[j] > sims[best])
                best = j;
        l->sim = sims[best];
        l->correct = answer[id[best]] == answer[q[1]];
        guard(t, q[1], id[best], o, &l->bits, &l->lone);
        memcpy(m + stored * dim, vec + (size_t)q[1] * dim, dim * sizeof(float)); /* then store it */
        id[stored++] = q[1];
        in[q[1]] = 1;
    }
    free(m);
    free(sims);
    free(id);
    free(in);
    *n_out = k;
    return out;
}

typedef struct {
    size_t served[N_CUTS], wrong[N_CUTS];
} sweep_t;

static double cut_of(int c)
{
    return 0.5 + 0.005 * c;
}

static void sweep(const lookup_t *l, size_t n, int guarded, int32_t rare_rank, sweep_t *s)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        if (l[i].sim < -1 || (guarded && (l[i].bits || l[i].lone >= rare_rank)))
            continue;
        for (int c = 0; c < N_CUTS && l[i].sim >= cut_of(c) - 1e-9; c++) {
            s->served[c]++;
            s->wrong[c] += !l[i].correct;
        }
    }
}

/* From the highest cut down, cuts with at least MIN_SERVED hits are tested;
 * the first whose false-hit rate exceeds 'target' ends the scan. Returns the
 * lowest cut that passed, or -1. */
static int choose(const sweep_t *s, double target)
{
    int chosen = -1;
    for (int c = N_CUTS - 1; c >= 0; c--) {
        if (s->served[c] < MIN_SERVED)
            continue;
        if ((double)s->wrong[c] > target * (double)s->served[c])
            break;
        chosen = c;
    }
    return chosen;
}

/* Thresholds chosen on half A ('la') for each target, with and without the
 * guards, and what they give on half B ('lb'); then half B's curve. */
static void threshold_report(const lookup_t *la, size_t na, const lookup_t *lb, size_t nb,
                             int32_t rare_rank)
{
    printf("| guards | target | threshold (chosen on half A) | half A: hits | half A: false-hit "
           "rate | "
           "half B: hits | half B: false-hit rate |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (int g = 0; g < 2; g++) {
        sweep_t sa, sb;
        sweep(la, na, g, rare_rank, &sa);
        sweep(lb, nb, g, rare_rank, &sb);
        static const double targets[] = {0.30, 0.20, 0.10, 0.05, 0.02};
        for (int k = 0; k < 5; k++) {
            int c = choose(&sa, targets[k]);
            printf("| %s | %.0f %% |", g ? "all three" : "none", 100 * targets[k]);
            if (c < 0) {
                printf(" none | 0 | - | 0 | - |\n");
                continue;
            }
            printf(" %.3f | %.2f %% | %.1f %% | %.2f %% | %.1f %% |\n", cut_of(c),
                   100.0 * (double)sa.served[c] / (double)na,
                   100.0 * (double)sa.wrong[c] / (double)sa.served[c],
                   100.0 * (double)sb.served[c] / (double)nb,
                   sb.served[c] ? 100.0 * (double)sb.wrong[c] / (double)sb.served[c] : 0);
        }
    }
    printf("\nHalf B by fixed threshold (share served, false-hit rate of those served):\n\n"
           "| threshold | no guard: served | no guard: false | guards: served | guards: false |\n"
           "|---:|---:|---:|---:|---:|\n");
    sweep_t s0, s1;
    sweep(lb, nb, 0, rare_rank, &s0);
    sweep(lb, nb, 1, rare_rank, &s1);
    static const int rows[] = {60, 70, 80, 90, 94, 96, 98, 99};
    for (int r = 0; r < 8; r++) {
        int c = rows[r];
        printf("| %.3f | %.2f %% | %.1f %% | %.2f %% | %.1f %% |\n", cut_of(c),
               100.0 * (double)s0.served[c] / (double)nb,
               s0.served[c] ? 100.0 * (double)s0.wrong[c] / (double)s0.served[c] : 0,
               100.0 * (double)s1.served[c] / (double)nb,
               s1.served[c] ? 100.0 * (double)s1.wrong[c] / (double)s1.served[c] : 0);
    }
}

/* Pairs as lookups: each pair of a half is one candidate at its cosine. */
static lookup_t *pairs_as_lookups(const pair_t *p, size_t n, int half, size_t *n_out)
{
    lookup_t *l = calloc(n, sizeof(lookup_t));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i].half == half)
            l[k++] = (lookup_t){p[i].cos, p[i].dup, p[i].bits, p[i].lone};
    *n_out = k;
    return l;
}

static void replay_report(const pair_t *p, size_t n, const texts_t *t, const float *vec,
                          uint32_t dim, const sc_guard_opts_t *o, int32_t rare_rank)
{
    uint32_t *parent = malloc(t->n * sizeof(uint32_t));
    for (uint32_t i = 0; i < t->n; i++)
        parent[i] = i;
    for (size_t i = 0; i < n; i++)
        if (p[i].dup)
            parent[find(parent, p[i].a)] = find(parent, p[i].b);
    for (uint32_t i = 0; i < t->n; i++)
        parent[i] = find(parent, i);
    size_t na, nb;
    lookup_t *la = replay(p, n, 0, t, vec, dim, parent, o, &na);
    lookup_t *lb = replay(p, n, 1, t, vec, dim, parent, o, &nb);
    threshold_report(la, na, lb, nb, rare_rank);
    free(la);
    free(lb);
    free(parent);
}

int main(int argc, char **argv)
{
    const char *words_path = NULL, *word_model = NULL;
    int32_t rare_rank = SC_GUARD_RARE_RANK;
    double counterpart_sim = 0;
    size_t max_pairs = 0;
    int do_replay = 0, choice = 0, ai = 1;
    for (; ai < argc && strncmp(argv[ai], "--", 2) == 0; ai++) {
        if (strcmp(argv[ai], "--replay") == 0)
            do_replay = 1;
        else if (strcmp(argv[ai], "--rank-choice") == 0)
            choice = 1;
        else if (ai + 1 < argc && strcmp(argv[ai], "--words") == 0)
            words_path = argv[++ai];
        else if (ai + 1 < argc && strcmp(argv[ai], "--rare-rank") == 0)
            rare_rank = atoi(argv[++ai]);
        else if (ai + 1 < argc && strcmp(argv[ai], "--word-model") == 0)
            word_model = argv[++ai];
        else if (ai + 1 < argc && strcmp(argv[ai], "--counterpart-sim") == 0)
            counterpart_sim = atof(argv[++ai]);
        else if (ai + 1 < argc && strcmp(argv[ai], "--max-pairs") == 0)
            max_pairs = strtoull(argv[++ai], NULL, 10);
        else
            break;
    }
    if (argc - ai != 3) {
        fprintf(
            stderr,
            "usage: semcached-guards-eval [--replay] [--rank-choice] [--words FILE]\n"
            "         [--rare-rank N] [--word-model MODEL --counterpart-sim S] [--max-pairs N]\n"
            "         MODEL qqp|mrpc|stsb|sick PAIRS\n");
        return 2;
    }
    char err[512];
    sc_embedder_t *e, *we = NULL;
    sc_guard_words_t *words;
    if (sc_embedder_open(&e, argv[ai], err, sizeof(err)) ||
        (word_model && sc_embedder_open(&we, word_model, err, sizeof(err)))) {
        fprintf(stderr, "semcached-guards-eval: %s\n", err);
        return 1;
    }
    if (words_path ? sc_guard_words_load(&words, words_path, 0) : sc_guard_words_default(&words)) {
        fprintf(stderr, "semcached-guards-eval: cannot read the word list\n");
        return 1;
    }
    texts_t t = {0};
    size_t n;
    pair_t *p = read_pairs(argv[ai + 1], argv[ai + 2], max_pairs, &t, &n);
    uint32_t dim = sc_embedder_dim(e);
    float *vec = embed_all(e, &t);
    /* rare_rank 2: every listed word but the two most frequent is a
     * candidate; lone_rank then says for which cuts the check fires. */
    sc_guard_opts_t o = {.checks = SC_GUARD_ALL,
                         .words = words,
                         .rare_rank = 2,
                         .embedder = we,
                         .counterpart_sim = counterpart_sim};
    size_t dups = 0;
    for (size_t i = 0; i < n; i++) {
        p[i].cos =
            cblas_sdot((int)dim, vec + (size_t)p[i].a * dim, 1, vec + (size_t)p[i].b * dim, 1);
        guard(&t, p[i].a, p[i].b, &o, &p[i].bits, &p[i].lone);
        dups += p[i].dup;
    }
    printf("%s on %s (%s): %zu pairs, %zu positive; rare_rank %d%s\n\n", sc_embedder_identity(e),
           argv[ai + 2], argv[ai + 1], n, dups, rare_rank, we ? ", word-vector counterparts" : "");
    if (choice) {
        rank_choice(p, n);
        printf("\n");
    }
    if (strcmp(argv[ai + 1], "qqp") == 0) {
        printf("Half B (odd data rows):\n\n");
        pairs_table(p, n, 1, rare_rank);
    } else {
        pairs_table(p, n, -1, rare_rank);
    }
    if (strcmp(argv[ai + 1], "qqp") == 0) {
        printf("\nThresholds on the labelled pairs (a pair at or above the threshold is a hit;\n"
               "it is false when the pair is not a duplicate):\n\n");
        size_t na, nb;
        lookup_t *la = pairs_as_lookups(p, n, 0, &na), *lb = pairs_as_lookups(p, n, 1, &nb);
        threshold_report(la, na, lb, nb, rare_rank);
        free(la);
        free(lb);
    }
    if (do_replay) {
        printf("\nReplay:\n\n");
        replay_report(p, n, &t, vec, dim, &o, rare_rank);
    }
    for (uint32_t i = 0; i < t.n; i++)
        free(t.text[i]);
    free(t.text);
    free(t.slot);
    free(p);
    free(vec);
    sc_guard_words_free(words);
    sc_embedder_close(e);
    sc_embedder_close(we);
    return 0;
}
