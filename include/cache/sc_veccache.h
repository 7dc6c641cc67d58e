/* veccache.h -- the embeddings of recent lookups, keyed by the request's exact
 * key, so the store that follows a miss does not embed the same text again.
 * Fixed size, direct-mapped, entries expire after a few minutes: a lost entry
 * only costs one more embedding. */
#ifndef SC_VECCACHE_H
#define SC_VECCACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sc_vec_cache_s sc_vec_cache_t;

int sc_vec_cache_create(sc_vec_cache_t **out, size_t slots, uint64_t ttl_ms);
void sc_vec_cache_destroy(sc_vec_cache_t *c);
/* Copies 'vec' in under 'key'. */
void sc_vec_cache_put(sc_vec_cache_t *c, const uint8_t key[16], const float *vec, uint32_t dim,
                      uint64_t now_ms);
/* A malloc'd copy of the vector stored under 'key' (caller frees), or NULL. */
float *sc_vec_cache_take(sc_vec_cache_t *c, const uint8_t key[16], uint32_t dim, uint64_t now_ms);

#endif
