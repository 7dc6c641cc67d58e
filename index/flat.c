/* flat.c -- exact nearest neighbours for small scopes: one row-major matrix
 * scanned with OpenBLAS sgemv (sgemm for a batch of queries), then a partial
 * top-k selection. Past SCAN8_MIN rows, on CPUs with AVX-512 VNNI, an int8
 * copy of the rows (index/scan8.c) rules out all but a few rows with proven
 * bounds first, so the answer stays the float scan's at a fraction of the
 * cost. No approximation, no build cost, deletes are a swap with the last row. */
#include "sc_index.h"

#include "scan8.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sc_flat_s {
    uint32_t dim;
    size_t n, cap;
    float *rows;      /* n x dim, row-major */
    uint64_t *labels; /* n */
    sc8_t q8;         /* the int8 copy (q8.m NULL: none), rebuilt as 'rows' grows */
    uint32_t *slots;  /* label -> row + 1 (0: empty): linear probing, 2 x n slots at least */
    size_t nslots;    /* a power of two, or 0 */
    int no_scan8;     /* sc_flat_set_scan8(f, 0): sgemv only */
};

/* Below this many rows sgemv is as fast as the int8 pass and its build. */
#define SCAN8_MIN 2048

int sc_flat_create(sc_flat_t **out, uint32_t dim)
{
    if (dim == 0)
        return SC_EINVAL;
    sc_flat_t *f = calloc(1, sizeof(*f));
    if (!f)
        return SC_ENOMEM;
    f->dim = dim;
    *out = f;
    return 0;
}

void sc_flat_set_scan8(sc_flat_t *f, int on)
{
    f->no_scan8 = !on;
    if (!on)
        sc8_free(&f->q8);
}

void sc_flat_destroy(sc_flat_t *f)
{
    if (!f)
        return;
    free(f->rows);
    free(f->labels);
    free(f->slots);
    sc8_free(&f->q8);
    free(f);
}

/* ---- label -> row (a scope past --index-flat-max holds 100k+ rows) ---- */

static size_t slot_of(const sc_flat_t *f, uint64_t label)
{
    return (size_t)((label ^ (label >> 31)) * 0x9E3779B97F4A7C15ull >> 17) & (f->nslots - 1);
}

/* The slot holding 'label', or the empty slot where it would go. */
static size_t probe(const sc_flat_t *f, uint64_t label)
{
    size_t i = slot_of(f, label);
    while (f->slots[i] && f->labels[f->slots[i] - 1] != label)
        i = (i + 1) & (f->nslots - 1);
    return i;
}

static ptrdiff_t find(const sc_flat_t *f, uint64_t label)
{
    if (!f->n)
        return -1;
    uint32_t r = f->slots[probe(f, label)];
    return r ? (ptrdiff_t)r - 1 : -1;
}

/* Room for one more row in the slots (rehashing into twice as many). */
static int slots_reserve(sc_flat_t *f)
{
    if ((f->n + 1) * 2 <= f->nslots)
        return 0;
    size_t n = f->nslots ? f->nslots * 2 : 128;
    uint32_t *s = calloc(n, sizeof(uint32_t));
    if (!s)
        return SC_ENOMEM;
    free(f->slots);
    f->slots = s;
    f->nslots = n;
    for (size_t r = 0; r < f->n; r++)
        f->slots[probe(f, f->labels[r])] = (uint32_t)(r + 1);
    return 0;
}

/* Empties slot 'i', moving later entries of its probe run back into the
 * gap (linear probing's deletion without tombstones). */
static void slot_clear(sc_flat_t *f, size_t i)
{
    size_t mask = f->nslots - 1;
    f->slots[i] = 0;
    for (size_t j = (i + 1) & mask; f->slots[j]; j = (j + 1) & mask) {
        size_t h = slot_of(f, f->labels[f->slots[j] - 1]);
        /* Entry j may fill the gap at i unless its home lies in (i, j]. */
        int home_between = i < j ? (h > i && h <= j) : (h > i || h <= j);
        if (!home_between) {
            f->slots[i] = f->slots[j];
            f->slots[j] = 0;
            i = j;
        }
    }
}

int sc_flat_add(sc_flat_t *f, const float *vec, uint64_t label)
{
    ptrdiff_t at = find(f, label);
    if (at < 0) {
        if (f->n >= UINT32_MAX - 1 || slots_reserve(f))
            return SC_ENOMEM;
        if (f->n == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 64;
            float *rows = realloc(f->rows, cap * f->dim * sizeof(float));
            if (!rows)
                return SC_ENOMEM;
            f->rows = rows;
            uint64_t *labels = realloc(f->labels, cap * sizeof(uint64_t));
            if (!labels)
                return SC_ENOMEM;
            f->labels = labels;
            f->cap = cap;
            /* Rebuilt (and re-centred) at each doubling: amortized O(1) a
             * row. Without memory for it the float scan answers. */
            sc8_free(&f->q8);
            if (!f->no_scan8 && f->n >= SCAN8_MIN && sc8_available())
                sc8_build(&f->q8, f->rows, f->n, cap, f->dim);
        }
        at = (ptrdiff_t)f->n++;
        f->labels[at] = label;
        f->slots[probe(f, label)] = (uint32_t)at + 1;
    }
    memcpy(f->rows + (size_t)at * f->dim, vec, f->dim * sizeof(float));
    if (f->q8.m)
        sc8_set(&f->q8, (size_t)at, vec);
    return 0;
}

int sc_flat_contains(const sc_flat_t *f, uint64_t label)
{
    return find(f, label) >= 0;
}

int sc_flat_remove(sc_flat_t *f, uint64_t label)
{
    ptrdiff_t at = find(f, label);
    if (at < 0)
        return SC_ENOTFOUND;
    size_t last = f->n - 1;
    slot_clear(f, probe(f, label));
    if ((size_t)at != last) {
        f->slots[probe(f, f->labels[last])] = (uint32_t)at + 1;
        memcpy(f->rows + (size_t)at * f->dim, f->rows + last * f->dim, f->dim * sizeof(float));
        f->labels[at] = f->labels[last];
        if (f->q8.m)
            sc8_move(&f->q8, last, (size_t)at);
    }
    f->n--;
    return 0;
}

/* Picks the best 'k' of 'scores' into labels/sims, best first. k is small
 * (a handful of candidates), so insertion into a sorted array wins. */
static size_t top_k(const sc_flat_t *f, const float *scores, size_t k, uint64_t *labels,
                    float *sims)
{
    size_t m = 0;
    for (size_t i = 0; i < f->n; i++) {
        float s = scores[i];
        if (m == k && s <= sims[m - 1])
            continue;
        size_t j = m < k ? m++ : k - 1;
        while (j > 0 && sims[j - 1] < s) {
            sims[j] = sims[j - 1];
            labels[j] = labels[j - 1];
            j--;
        }
        sims[j] = s;
        labels[j] = f->labels[i];
    }
    return m;
}

int sc_flat_search(const sc_flat_t *f, const float *query, size_t k, uint64_t *labels, float *sims,
                   size_t *n)
{
    *n = 0;
    if (!f->n || !k)
        return 0;
    if (f->q8.m && f->n >= SCAN8_MIN && k <= 256) {
        uint32_t rows[256];
        int m = sc8_search(&f->q8, f->rows, f->n, query, k, rows, sims);
        if (m < 0)
            return m;
        for (int i = 0; i < m; i++)
            labels[i] = f->labels[rows[i]];
        *n = (size_t)m;
        return 0;
    }
    float stack[4096];
    float *scores = f->n <= 4096 ? stack : malloc(f->n * sizeof(float));
    if (!scores)
        return SC_ENOMEM;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)f->n, (blasint)f->dim, 1.0f, f->rows,
                (blasint)f->dim, query, 1, 0.0f, scores, 1);
    *n = top_k(f, scores, k, labels, sims);
    if (scores != stack)
        free(scores);
    return 0;
}

int sc_flat_search_batch(const sc_flat_t *f, const float *queries, size_t nq, size_t k,
                         uint64_t *labels, float *sims, size_t *n)
{
    if (!f->n || !k || !nq) {
        for (size_t q = 0; q < nq; q++)
            n[q] = 0;
        return 0;
    }
    float *scores = malloc(nq * f->n * sizeof(float));
    if (!scores)
        return SC_ENOMEM;
    /* scores[nq][n] = queries[nq][dim] x rows[n][dim]^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nq, (blasint)f->n,
                (blasint)f->dim, 1.0f, queries, (blasint)f->dim, f->rows, (blasint)f->dim, 0.0f,
                scores, (blasint)f->n);
    for (size_t q = 0; q < nq; q++)
        n[q] = top_k(f, scores + q * f->n, k, labels + q * k, sims + q * k);
    free(scores);
    return 0;
}

size_t sc_flat_count(const sc_flat_t *f)
{
    return f->n;
}

uint32_t sc_flat_dim(const sc_flat_t *f)
{
    return f->dim;
}

uint64_t sc_flat_label(const sc_flat_t *f, size_t i)
{
    return f->labels[i];
}

const float *sc_flat_row(const sc_flat_t *f, size_t i)
{
    return f->rows + i * f->dim;
}
