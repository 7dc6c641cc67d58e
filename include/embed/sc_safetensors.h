/* sc_safetensors.h -- a small, checked reader of the safetensors format: an
 * 8-byte little-endian header length, a JSON header naming each tensor's dtype,
 * shape and byte range, then the raw data. The file is mapped read-only; every
 * offset, size and shape is validated before anything points into it. */
#ifndef SC_SAFETENSORS_H
#define SC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SC_DT_F32,
    SC_DT_F16,
    SC_DT_BF16,
    SC_DT_F64,
    SC_DT_I8,
    SC_DT_I32,
    SC_DT_I64
} sc_dtype_t;

#define SC_TENSOR_MAX_DIMS 4

typedef struct {
    char name[256];
    sc_dtype_t dtype;
    int ndim;
    int64_t shape[SC_TENSOR_MAX_DIMS];
    uint64_t count;   /* elements */
    const void *data; /* points into the mapping; valid until close */
    size_t nbytes;
} sc_tensor_t;

typedef struct sc_safetensors_s sc_safetensors_t;

int sc_safetensors_open(sc_safetensors_t **out, const char *path, char *err, size_t err_cap);
/* Parses an in-memory image (not copied; must outlive the result). */
int sc_safetensors_parse(sc_safetensors_t **out, const void *buf, size_t len, char *err,
                         size_t err_cap);
void sc_safetensors_close(sc_safetensors_t *s);
/* NULL if absent. */
const sc_tensor_t *sc_safetensors_get(const sc_safetensors_t *s, const char *name);
size_t sc_safetensors_count(const sc_safetensors_t *s);
const sc_tensor_t *sc_safetensors_at(const sc_safetensors_t *s, size_t i);
/* Element 'i' of a float tensor (F32, F16, BF16, F64; also I8 as a number). */
float sc_tensor_f32(const sc_tensor_t *t, uint64_t i);
/* IEEE half precision to single. */
float sc_half_to_float(uint16_t h);
/* XXH3-64 of the whole file: part of an embedder's identity. */
uint64_t sc_safetensors_hash(const sc_safetensors_t *s);

#endif
