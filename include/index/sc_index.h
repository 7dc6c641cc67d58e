/* sc_index.h -- vector indexes over L2-normalized float32 vectors compared by
 * inner product, so a similarity is a cosine in [-1, 1].
 * - sc_hnsw_*: a thin C API over hnswlib (index/hnsw.cc, the only C++ file);
 *   every call catches C++ exceptions and returns SC_E* codes.
 * - sc_flat_*: an exact scan with OpenBLAS sgemv, for small scopes.
 * Neither locks: callers serialize writers against readers (index/scopes.c
 * does, per scope). Searches on one index may run in parallel. */
#ifndef SC_INDEX_H
#define SC_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"
#include "sc_vec.h"

/* ---- HNSW ------------------------------------------------------------- */

typedef struct sc_hnsw_s sc_hnsw_t;

/* Creates an empty index for 'dim'-dimensional vectors with room for
 * 'capacity' (grown automatically by sc_hnsw_add), graph degree 'm' and
 * construction beam 'ef_construction'. */
int sc_hnsw_create(sc_hnsw_t **out, uint32_t dim, size_t capacity, size_t m, size_t ef_construction,
                   uint64_t seed);
/* Search beam; larger is more accurate and slower. Default 64. */
void sc_hnsw_set_ef(sc_hnsw_t *h, size_t ef);
/* Adds 'vec' (dim floats, copied) under 'label'; an existing label is
 * replaced (and undeleted). */
int sc_hnsw_add(sc_hnsw_t *h, const float *vec, uint64_t label);
/* Marks 'label' deleted: it is never returned again. SC_ENOTFOUND if absent
 * or already deleted. */
int sc_hnsw_mark_deleted(sc_hnsw_t *h, uint64_t label);
/* 1 if 'label' is in the index and not deleted. */
int sc_hnsw_contains(const sc_hnsw_t *h, uint64_t label);
/* A deep copy with room for 'extra' more vectors, so a graph that searches
 * are reading can be changed by changing a copy and swapping it in. */
int sc_hnsw_clone(const sc_hnsw_t *h, size_t extra, sc_hnsw_t **out);
/* Up to 'k' nearest live vectors, best first: labels[i] with similarity
 * sims[i]. '*n' receives how many were found. */
int sc_hnsw_search(const sc_hnsw_t *h, const float *query, size_t k, uint64_t *labels, float *sims,
                   size_t *n);
/* The same with search beam 'ef' for this call only (the index's own beam is
 * untouched), so lookups with different beams may share one graph. */
int sc_hnsw_search_ef(const sc_hnsw_t *h, const float *query, size_t k, size_t ef, uint64_t *labels,
                      float *sims, size_t *n);
size_t sc_hnsw_live(const sc_hnsw_t *h);
size_t sc_hnsw_deleted(const sc_hnsw_t *h);
uint32_t sc_hnsw_dim(const sc_hnsw_t *h);
/* Calls 'fn' for every live vector (for rebuilds and snapshots). */
int sc_hnsw_foreach(const sc_hnsw_t *h, void (*fn)(void *ctx, uint64_t label, const float *vec),
                    void *ctx);
/* Writes the index to 'path' / reads it back. */
int sc_hnsw_save(const sc_hnsw_t *h, const char *path);
int sc_hnsw_load(sc_hnsw_t **out, const char *path, uint32_t dim);
void sc_hnsw_destroy(sc_hnsw_t *h);
/* on = 1: keeps an int8 copy of the vectors (about dim bytes each, a quarter
 * of the floats, rounded up to 64) that searches walk the graph on; the
 * candidates of the beam are scored in float32 before they are returned, so
 * similarities stay exact. Kept up to date by sc_hnsw_add and copied by
 * sc_hnsw_clone; sc_hnsw_load and sc_hnsw_create start without it. on = 0
 * frees it. 0 or SC_ENOMEM (the index then searches as before). Not while
 * the index is being searched. */
int sc_hnsw_quantize(sc_hnsw_t *h, int on);
/* The int8 copy's bytes (0 without one). */
size_t sc_hnsw_quantized_bytes(const sc_hnsw_t *h);
/* The SIMD distance kernels the wrapper was compiled with: "AVX-512", "AVX",
 * "SSE" or "none". Static string. */
const char *sc_hnsw_simd(void);

/* ---- flat (exact, BLAS) ----------------------------------------------- */

typedef struct sc_flat_s sc_flat_t;

int sc_flat_create(sc_flat_t **out, uint32_t dim);
/* on = 0: this index never uses the int8 pre-pass (sgemv only), as on a CPU
 * without AVX-512 VNNI (semcached-crossover times both); on = 1 (the
 * default) lets it build the copy again at its next growth. */
void sc_flat_set_scan8(sc_flat_t *f, int on);
/* Adds or replaces 'label'. */
int sc_flat_add(sc_flat_t *f, const float *vec, uint64_t label);
/* 1 if 'label' is in the index. */
int sc_flat_contains(const sc_flat_t *f, uint64_t label);
/* Removes 'label' (swap with the last row). SC_ENOTFOUND if absent. */
int sc_flat_remove(sc_flat_t *f, uint64_t label);
/* Exact top-'k' by inner product, best first. */
int sc_flat_search(const sc_flat_t *f, const float *query, size_t k, uint64_t *labels, float *sims,
                   size_t *n);
/* 'nq' queries at once (one sgemm); results row-major [nq][k]. */
int sc_flat_search_batch(const sc_flat_t *f, const float *queries, size_t nq, size_t k,
                         uint64_t *labels, float *sims, size_t *n);
size_t sc_flat_count(const sc_flat_t *f);
uint32_t sc_flat_dim(const sc_flat_t *f);
/* Row 'i' (0 <= i < count): its label and vector (valid until the next
 * add or remove). */
uint64_t sc_flat_label(const sc_flat_t *f, size_t i);
const float *sc_flat_row(const sc_flat_t *f, size_t i);
void sc_flat_destroy(sc_flat_t *f);

#endif
