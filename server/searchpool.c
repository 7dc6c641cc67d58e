/* searchpool.c -- semantic-search workers: one mutex-guarded FIFO, N threads,
 * each with its own LMDB reader. Jobs are closures; the API layer
 * (api_cache.c) decides what a search does and posts its answer back to the
 * request's loop (process.c's tasks). Owned by the process context. */
#define _GNU_SOURCE
#include "searchpool.h"

#include "sc_fifo.h"

#include <pthread.h>
#include <stdlib.h>

struct sc_search_pool_s {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sc_fifo_t jobs; /* guarded by mu */
    int stopping;
    pthread_t *threads;
    sc_store_reader_t **readers;
    int n_threads;
};

typedef struct {
    sc_search_pool_t *p;
    int i;
} worker_arg_t;

static void *worker_main(void *arg)
{
    worker_arg_t *wa = arg;
    sc_search_pool_t *p = wa->p;
    sc_store_reader_t *reader = p->readers[wa->i];
    free(wa);
    pthread_setname_np(pthread_self(), "sc-search");
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->jobs.len && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        sc_search_job_t *job = sc_fifo_pop(&p->jobs);
        pthread_mutex_unlock(&p->mu);
        if (!job) /* stopping and drained */
            return NULL;
        job->run(job, reader);
    }
}

int sc_search_pool_create(sc_search_pool_t **out, sc_store_t *store, int threads, size_t max_queue)
{
    sc_search_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return SC_ENOMEM;
    p->jobs = SC_FIFO_INIT(sc_search_job_t, next, max_queue);
    p->threads = calloc((size_t)threads, sizeof(pthread_t));
    p->readers = calloc((size_t)threads, sizeof(sc_store_reader_t *));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (!p->threads || !p->readers) {
        sc_search_pool_destroy(p);
        return SC_ENOMEM;
    }
    for (int i = 0; i < threads; i++) {
        worker_arg_t *wa = malloc(sizeof(*wa));
        int rc = wa ? sc_store_reader_create(store, &p->readers[i]) : SC_ENOMEM;
        if (!rc) {
            wa->p = p;
            wa->i = i;
            rc = pthread_create(&p->threads[i], NULL, worker_main, wa) ? SC_ENOMEM : 0;
        }
        if (rc) {
            free(wa);
            if (p->readers[i]) {
                sc_store_reader_destroy(p->readers[i]);
                p->readers[i] = NULL;
            }
            sc_search_pool_destroy(p);
            return rc;
        }
        p->n_threads++;
    }
    *out = p;
    return 0;
}

int sc_search_pool_submit(sc_search_pool_t *p, sc_search_job_t *job)
{
    pthread_mutex_lock(&p->mu);
    int rc = p->stopping ? SC_ECLOSED : sc_fifo_push(&p->jobs, job);
    if (!rc)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return rc;
}

size_t sc_search_pool_depth(sc_search_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->jobs.len;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void sc_search_pool_destroy(sc_search_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    for (int i = 0; i < p->n_threads; i++)
        sc_store_reader_destroy(p->readers[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p->readers);
    free(p);
}
