/* veccache.c -- direct-mapped cache of lookup embeddings under one mutex; it
 * is touched once per semantic miss and once per store, never per hit. */
#include "sc_veccache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sc_common.h"

typedef struct {
    uint8_t key[16];
    uint64_t ts_ms;
    uint32_t dim;
    float *vec;
} slot_t;

struct sc_vec_cache_s {
    pthread_mutex_t mu;
    slot_t *slots;
    size_t n;
    uint64_t ttl_ms;
};

int sc_vec_cache_create(sc_vec_cache_t **out, size_t slots, uint64_t ttl_ms)
{
    sc_vec_cache_t *c = calloc(1, sizeof(*c));
    if (!c || !(c->slots = calloc(slots, sizeof(slot_t)))) {
        free(c);
        return SC_ENOMEM;
    }
    c->n = slots;
    c->ttl_ms = ttl_ms;
    pthread_mutex_init(&c->mu, NULL);
    *out = c;
    return 0;
}

void sc_vec_cache_destroy(sc_vec_cache_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->slots[i].vec);
    free(c->slots);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static slot_t *slot_of(sc_vec_cache_t *c, const uint8_t key[16])
{
    uint64_t h;
    memcpy(&h, key, 8); /* keys are hashes already */
    return &c->slots[h % c->n];
}

void sc_vec_cache_put(sc_vec_cache_t *c, const uint8_t key[16], const float *vec, uint32_t dim,
                      uint64_t now_ms)
{
    float *copy = malloc(dim * sizeof(float));
    if (!copy)
        return;
    memcpy(copy, vec, dim * sizeof(float));
    pthread_mutex_lock(&c->mu);
    slot_t *s = slot_of(c, key);
    free(s->vec);
    memcpy(s->key, key, 16);
    s->vec = copy;
    s->dim = dim;
    s->ts_ms = now_ms;
    pthread_mutex_unlock(&c->mu);
}

float *sc_vec_cache_take(sc_vec_cache_t *c, const uint8_t key[16], uint32_t dim, uint64_t now_ms)
{
    float *out = NULL;
    pthread_mutex_lock(&c->mu);
    slot_t *s = slot_of(c, key);
    if (s->vec && s->dim == dim && memcmp(s->key, key, 16) == 0 && now_ms - s->ts_ms <= c->ttl_ms) {
        out = s->vec; /* taken: a store needs it once */
        s->vec = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    return out;
}
