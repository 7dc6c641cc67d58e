/* scan8.h -- an int8 copy of a flat index's rows for an exact top-k scan
 * (index/flat.c's large scans; private to index/). Rows are centred on a
 * fixed mean and quantized per row; each row keeps a bound on its
 * quantization error, so the int8 pass can rule rows out with certainty and
 * only the rows it cannot rule out are scored in float32: the answer is the
 * float scan's. Needs AVX-512 VNNI (checked at run time): sc8_available. */
#ifndef SC_SCAN8_H
#define SC_SCAN8_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t dim, groups; /* groups: 4-dimension groups per row, (dim + 3) / 4 */
    size_t cap;           /* rows with room (a multiple of 16) */
    int8_t *m;            /* 16-row blocks: [block][group][16 rows][4 dims] */
    float *inv;           /* per row: the scale back to floats */
    float *err;           /* per row: |row - mean - dequantized| (rounded up) */
    float *norm;          /* per row: |dequantized| (rounded up) */
    int32_t *bias;        /* per row: 128 x the sum of its int8 values */
    float *mean;          /* dim floats, fixed when the copy is built */
} sc8_t;

/* 1 if this CPU runs the int8 kernel (AVX-512 VNNI). */
int sc8_available(void);
/* Builds the copy of rows[0..n) (row-major, dim floats each) with room for
 * 'cap' >= n rows, centred on their mean. 0 or SC_ENOMEM ('q' is then
 * empty). */
int sc8_build(sc8_t *q, const float *rows, size_t n, size_t cap, uint32_t dim);
/* Quantizes x = 'vec' - 'mean' (dim floats; 'mean' NULL: zero) to int8 'v'
 * with one scale (the largest |x_j| maps to 127): '*inv' maps back, '*err'
 * bounds |x - v * inv| and '*norm' |v * inv| (both rounded up). Also the
 * int8 copy of index/hnsw.cc's graphs. */
void sc8_quantize(const float *vec, const float *mean, uint32_t dim, int8_t *v, float *inv,
                  float *err, float *norm);
/* Writes row 'i' (< cap) from 'vec'. */
void sc8_set(sc8_t *q, size_t i, const float *vec);
/* Copies row 'from' over row 'to' (a flat index's swap-remove). */
void sc8_move(sc8_t *q, size_t from, size_t to);
void sc8_free(sc8_t *q);

/* Exact top-'k' (k <= 256) of rows[0..n) by inner product with unit
 * vector 'query', best first: row numbers in 'rows_out', their float32
 * similarities (summed in order, row by row) in 'sims'. Returns how many
 * (min(k, n)), or SC_ENOMEM. 'rows' are the float rows the copy was made
 * from. Read-only on 'q': searches may run in parallel. */
int sc8_search(const sc8_t *q, const float *rows, size_t n, const float *query, size_t k,
               uint32_t *rows_out, float *sims);

#endif
