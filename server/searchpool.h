/* searchpool.h -- worker threads for semantic searches. An HNSW search at the
 * default ef_search takes up to milliseconds, and an event loop that runs one
 * makes every exact hit queued behind it wait (measured in the soak: p99 of
 * all lookups unstable once a tenth of them were semantic). So loops hand
 * searches here; each worker owns a store reader, so the search and the
 * checks of its candidates against LMDB run off the loop. The queue is
 * bounded: when it is full the caller answers exact-only instead of waiting. */
#ifndef SC_SEARCHPOOL_H
#define SC_SEARCHPOOL_H

#include <stddef.h>

#include "sc_store.h"

typedef struct sc_search_job_s sc_search_job_t;
struct sc_search_job_s {
    /* Runs on a worker with that worker's reader (no read snapshot open). */
    void (*run)(sc_search_job_t *job, sc_store_reader_t *reader);
    sc_search_job_t *next; /* queue link, owned by the pool while queued */
};

typedef struct sc_search_pool_s sc_search_pool_t;

/* 'store' must outlive the pool. */
int sc_search_pool_create(sc_search_pool_t **out, sc_store_t *store, int threads, size_t max_queue);
/* Queues 'job'. SC_EBUSY when the queue is full, SC_ECLOSED when stopping
 * (run is then not called). */
int sc_search_pool_submit(sc_search_pool_t *p, sc_search_job_t *job);
/* Runs what is queued, then joins the workers. */
void sc_search_pool_destroy(sc_search_pool_t *p);
size_t sc_search_pool_depth(sc_search_pool_t *p);

#endif
