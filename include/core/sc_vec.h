/* sc_vec.h -- vector helpers shared by the embedders, the index and the cache
 * engine: normalization, dot product, and decoding a client's embedding. */
#ifndef SC_VEC_H
#define SC_VEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"

/* Scales 'v' to unit length. SC_EINVAL if it has a NaN/Inf or zero norm. */
int sc_vec_normalize(float *v, uint32_t dim);
float sc_vec_dot(const float *a, const float *b, uint32_t dim);

/* Decodes an embedding: a JSON array of numbers or a base64 string of
 * little-endian float32. Checks finiteness and a non-zero norm, then
 * L2-normalizes. On success '*out' is malloc'd (caller frees). */
int sc_embedding_decode(const json_t *v, float **out, uint32_t *dim, char *err, size_t err_cap);

#endif
