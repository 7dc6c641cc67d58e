/* tests/index/flat.c -- the exact flat index (index/flat.c) against a model:
 * a plain list of (label, vector) rows kept by this test. Searches are
 * compared with a brute-force double-precision scan of that list (several
 * dims incl. 384, k past n, n = 0, more rows than the scan's stack buffer),
 * batches with single searches, the int8 pass and an index kept to sgemv
 * (sc_flat_set_scan8) with the model, and add/replace/remove with the rows
 * the index exposes. Ties within float rounding may come in either order, so
 * labels are compared only where the scores are apart. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scan8.h"
#include "sc_index.h"
#include "testutil.h"

#define TOL 2e-5 /* float sgemv/sgemm against a double scan of unit vectors */

/* ck_assert reports every passing check to the parent process (a write per
 * assertion); inner loops here run ~10^6 checks, so they complain only on
 * failure. */
#define EXPECT(c, ...)                                                                             \
    do {                                                                                           \
        if (!(c))                                                                                  \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

static uint64_t rng = 0x2545f4914f6cdd1dULL;
static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static float frand(void)
{
    return (float)((double)(next_u64() >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
}

/* A random vector; unit length unless dim is 1 (a 1-d unit vector is +-1,
 * and every search would be a tie). */
static void random_vec(float *v, uint32_t dim)
{
    for (uint32_t i = 0; i < dim; i++)
        v[i] = frand();
    if (dim > 1)
        EXPECT(sc_vec_normalize(v, dim) == 0, "normalize failed");
}

/* The model: the rows the index should hold, in no particular order. */
typedef struct {
    uint32_t dim;
    size_t n, cap;
    uint64_t *labels;
    float *vecs;
} model_t;

static void model_init(model_t *m, uint32_t dim, size_t cap)
{
    m->dim = dim;
    m->n = 0;
    m->cap = cap;
    m->labels = malloc(cap * sizeof(uint64_t));
    m->vecs = malloc(cap * dim * sizeof(float));
}

static void model_free(model_t *m)
{
    free(m->labels);
    free(m->vecs);
}

static ptrdiff_t model_find(const model_t *m, uint64_t label)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->labels[i] == label)
            return (ptrdiff_t)i;
    return -1;
}

/* Adds (or replaces) in both the model and the index. */
static void add_both(model_t *m, sc_flat_t *f, const float *v, uint64_t label)
{
    ptrdiff_t at = model_find(m, label);
    if (at < 0) {
        EXPECT(m->n < m->cap, "model full");
        at = (ptrdiff_t)m->n++;
    }
    m->labels[at] = label;
    memcpy(m->vecs + (size_t)at * m->dim, v, m->dim * sizeof(float));
    EXPECT(sc_flat_add(f, v, label) == 0, "add %llu failed", (unsigned long long)label);
}

static void remove_both(model_t *m, sc_flat_t *f, uint64_t label)
{
    ptrdiff_t at = model_find(m, label);
    EXPECT(at >= 0, "removing %llu, absent from the model", (unsigned long long)label);
    m->n--;
    m->labels[at] = m->labels[m->n];
    memmove(m->vecs + (size_t)at * m->dim, m->vecs + m->n * m->dim, m->dim * sizeof(float));
    EXPECT(sc_flat_remove(f, label) == 0, "remove %llu failed", (unsigned long long)label);
}

static double dot_d(const float *a, const float *b, uint32_t dim)
{
    double s = 0;
    for (uint32_t i = 0; i < dim; i++)
        s += (double)a[i] * b[i];
    return s;
}

typedef struct {
    double score;
    uint64_t label;
} scored_t;

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const scored_t *)a)->score, y = ((const scored_t *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Checks one search result against a brute-force scan of the model. */
static void check_topk(const model_t *m, const float *q, size_t k, const uint64_t *labels,
                       const float *sims, size_t n)
{
    scored_t *all = malloc((m->n + 1) * sizeof(scored_t));
    for (size_t i = 0; i < m->n; i++)
        all[i] = (scored_t){dot_d(q, m->vecs + i * m->dim, m->dim), m->labels[i]};
    qsort(all, m->n, sizeof(scored_t), by_score_desc);
    size_t want = k < m->n ? k : m->n;
    EXPECT(n == want, "k %zu of %zu rows: got %zu results", k, m->n, n);
    const double tol = TOL;
    for (size_t i = 0; i < n; i++) {
        /* The i-th best score is the brute force's i-th best. */
        EXPECT(fabs(sims[i] - all[i].score) <= tol, "rank %zu: %.7f vs %.7f", i, (double)sims[i],
               all[i].score);
        /* The label is in the model, once, and its own score is the one given. */
        ptrdiff_t at = model_find(m, labels[i]);
        EXPECT(at >= 0, "rank %zu: label %llu is not in the index", i,
               (unsigned long long)labels[i]);
        EXPECT(fabs(dot_d(q, m->vecs + (size_t)at * m->dim, m->dim) - sims[i]) <= tol,
               "rank %zu: label %llu does not score %.7f", i, (unsigned long long)labels[i],
               (double)sims[i]);
        for (size_t j = 0; j < i; j++)
            EXPECT(labels[j] != labels[i], "label %llu twice", (unsigned long long)labels[i]);
        EXPECT(i == 0 || sims[i] <= sims[i - 1], "rank %zu: not sorted", i);
        /* Where the scan's neighbours are clearly apart, the label is exact. */
        int apart = (i == 0 || all[i - 1].score - all[i].score > 2 * tol) &&
                    (i + 1 >= m->n || all[i].score - all[i + 1].score > 2 * tol);
        EXPECT(!apart || labels[i] == all[i].label, "rank %zu: label %llu, want %llu", i,
               (unsigned long long)labels[i], (unsigned long long)all[i].label);
    }
    free(all);
}

/* Vectors crowding around one direction, as averaged word vectors do (the
 * hard case for the int8 pass: many rows within its error of each other). */
static void crowded_vec(float *v, const float *common, uint32_t dim, float spread)
{
    for (uint32_t i = 0; i < dim; i++)
        v[i] = common[i] + spread * frand();
    EXPECT(sc_vec_normalize(v, dim) == 0, "normalize failed");
}

/* Past SCAN8_MIN rows the scan runs the int8 pass (on CPUs with AVX-512
 * VNNI) and scores in float only the rows it cannot rule out: the answer
 * must be the float scan's (sgemm batch) and the brute force's, through
 * adds, replaces and swap-removes, for crowded and for spread-out rows. */
START_TEST(int8_scan_equals_float_scan)
{
    const uint32_t dims[] = {3, 64, 100, 384};
    const float spreads[] = {0.05f, 0.3f, 2.0f};
    fprintf(stderr, "int8 pass %s\n", sc8_available() ? "on" : "off (no AVX-512 VNNI)");
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++)
        for (size_t sp = 0; sp < sizeof(spreads) / sizeof(spreads[0]); sp++) {
            uint32_t dim = dims[d];
            size_t n = dim == 384 ? 3000 : 6000;
            float *common = malloc(dim * sizeof(float)), *v = malloc(dim * sizeof(float));
            random_vec(common, dim);
            model_t m;
            model_init(&m, dim, n + 16);
            sc_flat_t *f, *ff; /* ff: sc_flat_set_scan8(ff, 0), sgemv only */
            ck_assert_int_eq(sc_flat_create(&f, dim), 0);
            ck_assert_int_eq(sc_flat_create(&ff, dim), 0);
            sc_flat_set_scan8(ff, 0);
            for (size_t i = 0; i < n; i++) {
                crowded_vec(v, common, dim, spreads[sp]);
                add_both(&m, f, v, 1000 + i);
                EXPECT(sc_flat_add(ff, v, 1000 + i) == 0, "float-only add");
            }
            for (size_t i = 0; i < 300; i++) { /* replaces and removes */
                crowded_vec(v, common, dim, spreads[sp]);
                uint64_t label = 1000 + next_u64() % n;
                add_both(&m, f, v, label);
                EXPECT(sc_flat_add(ff, v, label) == 0, "float-only add");
                uint64_t gone = m.labels[next_u64() % m.n];
                remove_both(&m, f, gone);
                EXPECT(sc_flat_remove(ff, gone) == 0, "float-only remove");
            }
            const size_t ks[] = {1, 8, 100};
            for (size_t qi = 0; qi < 40; qi++) {
                float *q = malloc(dim * sizeof(float));
                if (qi % 2)
                    crowded_vec(q, common, dim, spreads[sp]);
                else /* a stored row itself: a duplicate lookup */
                    memcpy(q, m.vecs + (next_u64() % m.n) * dim, dim * sizeof(float));
                for (size_t ki = 0; ki < 3; ki++) {
                    size_t k = ks[ki], got, bn;
                    uint64_t l[100], bl[100];
                    float s[100], bs[100];
                    ck_assert_int_eq(sc_flat_search(f, q, k, l, s, &got), 0);
                    check_topk(&m, q, k, l, s, got);
                    ck_assert_int_eq(sc_flat_search_batch(f, q, 1, k, bl, bs, &bn), 0);
                    ck_assert_uint_eq(got, bn);
                    EXPECT(sc_flat_search(ff, q, k, l, s, &got) == 0, "float-only search");
                    check_topk(&m, q, k, l, s, got); /* the sgemv-only index, exact too */
                    ck_assert_int_eq(sc_flat_search(f, q, k, l, s, &got), 0);
                    EXPECT(l[0] == bl[0] || fabsf(s[0] - bs[0]) < 1e-6f,
                           "dim %u spread %.2f: best %llu (%.7f), float scan %llu (%.7f)", dim,
                           (double)spreads[sp], (unsigned long long)l[0], (double)s[0],
                           (unsigned long long)bl[0], (double)bs[0]);
                }
                free(q);
            }
            model_free(&m);
            sc_flat_destroy(f);
            sc_flat_destroy(ff);
            free(common);
            free(v);
        }
}
END_TEST

START_TEST(empty_and_degenerate_indexes)
{
    sc_flat_t *f = NULL;
    ck_assert_int_eq(sc_flat_create(&f, 0), SC_EINVAL);
    ck_assert_ptr_null(f);
    ck_assert_int_eq(sc_flat_create(&f, 8), 0);
    ck_assert_uint_eq(sc_flat_dim(f), 8);
    ck_assert_uint_eq(sc_flat_count(f), 0);
    ck_assert_int_eq(sc_flat_contains(f, 0), 0);
    ck_assert_int_eq(sc_flat_remove(f, 0), SC_ENOTFOUND);
    float q[3 * 8];
    for (int i = 0; i < 3; i++)
        random_vec(q + i * 8, 8);
    uint64_t l[3 * 4];
    float s[3 * 4];
    size_t n = 99, bn[3] = {99, 99, 99};
    ck_assert_int_eq(sc_flat_search(f, q, 4, l, s, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(sc_flat_search_batch(f, q, 3, 4, l, s, bn), 0);
    ck_assert(bn[0] == 0 && bn[1] == 0 && bn[2] == 0);
    /* k = 0 finds nothing even in a full index; nq = 0 touches nothing. */
    ck_assert_int_eq(sc_flat_add(f, q, 1), 0);
    n = 99;
    ck_assert_int_eq(sc_flat_search(f, q, 0, l, s, &n), 0);
    ck_assert_uint_eq(n, 0);
    bn[0] = bn[1] = 99;
    ck_assert_int_eq(sc_flat_search_batch(f, q, 2, 0, l, s, bn), 0);
    ck_assert(bn[0] == 0 && bn[1] == 0);
    bn[0] = 99;
    ck_assert_int_eq(sc_flat_search_batch(f, q, 0, 4, l, s, bn), 0);
    ck_assert_uint_eq(bn[0], 99);
    /* One row: every k finds exactly it. */
    ck_assert_int_eq(sc_flat_search(f, q, 5, l, s, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(l[0], 1);
    ck_assert_float_eq_tol(s[0], 1.0f, 1e-6f);
    sc_flat_destroy(f);
    sc_flat_destroy(NULL);
}
END_TEST

/* Fills an index of 'n' random rows (labels spread over the whole range). */
static sc_flat_t *random_index(model_t *m, uint32_t dim, size_t n)
{
    sc_flat_t *f;
    ck_assert_int_eq(sc_flat_create(&f, dim), 0);
    model_init(m, dim, n + 1);
    float *v = malloc(dim * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        random_vec(v, dim);
        uint64_t label;
        do
            label = i == 0 ? 0 : i == 1 ? UINT64_MAX : next_u64();
        while (model_find(m, label) >= 0);
        add_both(m, f, v, label);
    }
    free(v);
    ck_assert_uint_eq(sc_flat_count(f), n);
    return f;
}

START_TEST(search_equals_brute_force)
{
    const uint32_t dims[] = {1, 2, 17, 100, 384};
    const size_t sizes[] = {1, 2, 63, 64, 65, 300};
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++)
        for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
            uint32_t dim = dims[d];
            size_t n = sizes[z];
            model_t m;
            sc_flat_t *f = random_index(&m, dim, n);
            const size_t ks[] = {1, 2, 8, n, n + 5};
            float *q = malloc(dim * sizeof(float));
            uint64_t *l = malloc((n + 5) * sizeof(uint64_t));
            float *s = malloc((n + 5) * sizeof(float));
            for (int rep = 0; rep < 4; rep++) {
                random_vec(q, dim);
                for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
                    size_t got;
                    ck_assert_int_eq(sc_flat_search(f, q, ks[ki], l, s, &got), 0);
                    check_topk(&m, q, ks[ki], l, s, got);
                }
            }
            /* A stored unit vector finds itself first (in 1-d the query
             * closest by inner product is the extreme value, not itself). */
            if (dim > 1) {
                size_t got;
                ck_assert_int_eq(sc_flat_search(f, m.vecs + (n - 1) * dim, 1, l, s, &got), 0);
                ck_assert_uint_eq(l[0], m.labels[n - 1]);
                ck_assert_float_eq_tol(s[0], 1.0f, 1e-5f);
            }
            free(q);
            free(l);
            free(s);
            model_free(&m);
            sc_flat_destroy(f);
        }
}
END_TEST

START_TEST(search_past_the_stack_buffer)
{
    /* Over 4096 rows the scan's scores go to the heap. */
    model_t m;
    sc_flat_t *f = random_index(&m, 384, 5000);
    float q[384];
    uint64_t l[10];
    float s[10];
    for (int rep = 0; rep < 5; rep++) {
        random_vec(q, 384);
        size_t got;
        ck_assert_int_eq(sc_flat_search(f, q, 10, l, s, &got), 0);
        check_topk(&m, q, 10, l, s, got);
    }
    /* And the row written last is reachable. */
    size_t got;
    ck_assert_int_eq(sc_flat_search(f, m.vecs + 4999 * 384, 1, l, s, &got), 0);
    ck_assert_uint_eq(l[0], m.labels[4999]);
    model_free(&m);
    sc_flat_destroy(f);
}
END_TEST

START_TEST(batch_equals_single_searches)
{
    const uint32_t dims[] = {3, 64, 384};
    const size_t nqs[] = {1, 2, 7, 33};
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        uint32_t dim = dims[d];
        model_t m;
        sc_flat_t *f = random_index(&m, dim, 200);
        const size_t ks[] = {1, 4, 203};
        for (size_t qi = 0; qi < sizeof(nqs) / sizeof(nqs[0]); qi++)
            for (size_t ki = 0; ki < sizeof(ks) / sizeof(ks[0]); ki++) {
                size_t nq = nqs[qi], k = ks[ki];
                float *q = malloc(nq * dim * sizeof(float));
                for (size_t i = 0; i < nq; i++)
                    random_vec(q + i * dim, dim);
                uint64_t *bl = malloc(nq * k * sizeof(uint64_t)), *l = malloc(k * sizeof(uint64_t));
                float *bs = malloc(nq * k * sizeof(float)), *s = malloc(k * sizeof(float));
                size_t *bn = malloc(nq * sizeof(size_t));
                ck_assert_int_eq(sc_flat_search_batch(f, q, nq, k, bl, bs, bn), 0);
                for (size_t i = 0; i < nq; i++) {
                    size_t n;
                    ck_assert_int_eq(sc_flat_search(f, q + i * dim, k, l, s, &n), 0);
                    ck_assert_uint_eq(bn[i], n);
                    check_topk(&m, q + i * dim, k, bl + i * k, bs + i * k, bn[i]);
                    for (size_t r = 0; r < n; r++) {
                        EXPECT(fabsf(bs[i * k + r] - s[r]) <= (float)TOL,
                               "query %zu rank %zu: "
                               "batch %.7f, single %.7f",
                               i, r, (double)bs[i * k + r], (double)s[r]);
                        int tie = (r > 0 && s[r - 1] - s[r] <= 2 * (float)TOL) ||
                                  (r + 1 < n && s[r] - s[r + 1] <= 2 * (float)TOL);
                        EXPECT(tie || bl[i * k + r] == l[r],
                               "query %zu rank %zu: batch label "
                               "%llu, single %llu",
                               i, r, (unsigned long long)bl[i * k + r], (unsigned long long)l[r]);
                    }
                }
                free(q);
                free(bl);
                free(l);
                free(bs);
                free(s);
                free(bn);
            }
        model_free(&m);
        sc_flat_destroy(f);
    }
}
END_TEST

START_TEST(remove_swaps_the_last_row_in)
{
    enum { D = 4 };
    sc_flat_t *f;
    ck_assert_int_eq(sc_flat_create(&f, D), 0);
    float v[5][D];
    for (int i = 0; i < 5; i++) {
        random_vec(v[i], D);
        ck_assert_int_eq(sc_flat_add(f, v[i], 10 + (uint64_t)i), 0);
    }
    /* Rows 10 11 12 13 14: removing 11 moves 14 into its place. */
    ck_assert_int_eq(sc_flat_remove(f, 11), 0);
    const uint64_t after1[] = {10, 14, 12, 13};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(sc_flat_label(f, i), after1[i]);
        ck_assert_int_eq(memcmp(sc_flat_row(f, i), v[after1[i] - 10], sizeof(v[0])), 0);
    }
    ck_assert_int_eq(sc_flat_contains(f, 11), 0);
    ck_assert_int_eq(sc_flat_remove(f, 11), SC_ENOTFOUND);
    /* Removing the last row moves nothing. */
    ck_assert_int_eq(sc_flat_remove(f, 13), 0);
    const uint64_t after2[] = {10, 14, 12};
    for (size_t i = 0; i < 3; i++) {
        ck_assert_uint_eq(sc_flat_label(f, i), after2[i]);
        ck_assert_int_eq(memcmp(sc_flat_row(f, i), v[after2[i] - 10], sizeof(v[0])), 0);
    }
    /* Searches see exactly the rows left. */
    for (int i = 0; i < 5; i++) {
        uint64_t l[5];
        float s[5];
        size_t n;
        ck_assert_int_eq(sc_flat_search(f, v[i], 5, l, s, &n), 0);
        ck_assert_uint_eq(n, 3);
        int live = i == 0 || i == 2 || i == 4;
        ck_assert_int_eq(l[0] == 10 + (uint64_t)i, live);
        for (size_t r = 0; r < n; r++)
            ck_assert(l[r] != 11 && l[r] != 13);
    }
    /* Down to empty and back. */
    ck_assert_int_eq(sc_flat_remove(f, 10), 0);
    ck_assert_int_eq(sc_flat_remove(f, 12), 0);
    ck_assert_int_eq(sc_flat_remove(f, 14), 0);
    ck_assert_uint_eq(sc_flat_count(f), 0);
    ck_assert_int_eq(sc_flat_add(f, v[3], 13), 0);
    ck_assert_uint_eq(sc_flat_count(f), 1);
    ck_assert_uint_eq(sc_flat_label(f, 0), 13);
    sc_flat_destroy(f);
}
END_TEST

START_TEST(add_copies_and_replaces)
{
    enum { D = 16 };
    sc_flat_t *f;
    ck_assert_int_eq(sc_flat_create(&f, D), 0);
    float a[D], b[D], keep[D];
    random_vec(a, D);
    random_vec(b, D);
    memcpy(keep, a, sizeof(a));
    ck_assert_int_eq(sc_flat_add(f, a, 7), 0);
    ck_assert_int_eq(sc_flat_add(f, b, 8), 0);
    a[0] = 42; /* the index holds a copy */
    ck_assert_int_eq(memcmp(sc_flat_row(f, 0), keep, sizeof(keep)), 0);
    /* The same label again replaces its row in place. */
    ck_assert_int_eq(sc_flat_add(f, b, 7), 0);
    ck_assert_uint_eq(sc_flat_count(f), 2);
    ck_assert_uint_eq(sc_flat_label(f, 0), 7);
    ck_assert_int_eq(memcmp(sc_flat_row(f, 0), b, sizeof(b)), 0);
    uint64_t l[2];
    float s[2];
    size_t n;
    ck_assert_int_eq(sc_flat_search(f, keep, 2, l, s, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_float_eq_tol(s[0], s[1], 1e-6f); /* both rows are now b */
    sc_flat_destroy(f);
}
END_TEST

START_TEST(random_operations_keep_rows_and_labels)
{
    /* 4000 adds, replaces and removes against the model; every 100 the
     * index's rows are compared with it one by one, and searched. */
    enum { D = 24, OPS = 4000, MAXN = 700 };
    model_t m;
    model_init(&m, D, MAXN + 1);
    sc_flat_t *f;
    ck_assert_int_eq(sc_flat_create(&f, D), 0);
    float v[D];
    for (int op = 1; op <= OPS; op++) {
        uint64_t r = next_u64() % 10;
        if (m.n && (r < 3 || m.n >= MAXN)) {
            remove_both(&m, f, m.labels[next_u64() % m.n]);
        } else if (m.n && r < 4) {
            random_vec(v, D);
            add_both(&m, f, v, m.labels[next_u64() % m.n]);
        } else if (r < 5) {
            uint64_t absent;
            do
                absent = next_u64() % 5000;
            while (model_find(&m, absent) >= 0);
            ck_assert_int_eq(sc_flat_remove(f, absent), SC_ENOTFOUND);
        } else {
            uint64_t label;
            do
                label = next_u64() % 5000;
            while (model_find(&m, label) >= 0);
            random_vec(v, D);
            add_both(&m, f, v, label);
        }
        if (op % 100)
            continue;
        ck_assert_uint_eq(sc_flat_count(f), m.n);
        for (size_t i = 0; i < m.n; i++) {
            ptrdiff_t at = model_find(&m, sc_flat_label(f, i));
            EXPECT(at >= 0, "op %d: row %zu has a removed label", op, i);
            EXPECT(memcmp(sc_flat_row(f, i), m.vecs + (size_t)at * D, D * sizeof(float)) == 0,
                   "op %d: row %zu is not its label's vector", op, i);
            EXPECT(sc_flat_contains(f, m.labels[i]), "op %d: label lost", op);
        }
        uint64_t l[8];
        float s[8];
        size_t n;
        random_vec(v, D);
        ck_assert_int_eq(sc_flat_search(f, v, 8, l, s, &n), 0);
        check_topk(&m, v, 8, l, s, n);
    }
    model_free(&m);
    sc_flat_destroy(f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("flat");
    TCase *tc = tcase_create("flat");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, empty_and_degenerate_indexes);
    tcase_add_test(tc, search_equals_brute_force);
    tcase_add_test(tc, search_past_the_stack_buffer);
    tcase_add_test(tc, batch_equals_single_searches);
    tcase_add_test(tc, remove_swaps_the_last_row_in);
    tcase_add_test(tc, add_copies_and_replaces);
    tcase_add_test(tc, random_operations_keep_rows_and_labels);
    tcase_add_test(tc, int8_scan_equals_float_scan);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
