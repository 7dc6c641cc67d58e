/* embedpool.h -- embedding worker threads with micro-batching, one pool per
 * server-side model (models.c); handlers submit through sc_model_t. Event loops
 * submit one text per job and never run model code; a worker takes the jobs
 * that arrived within a short wait after the first (up to --embed-batch) and
 * embeds them in one call. The wait is --embed-wait-us at most and never
 * longer than a batch of this model takes to embed (a running average). The queue is bounded: a
 * full queue, a job past its deadline or a model error fail the job, and the caller falls back to
 * an exact-only lookup instead of waiting. Idle workers also probe an embedder that is not up (a
 * remote endpoint down), so it comes up without a restart. */
#ifndef SC_EMBEDPOOL_H
#define SC_EMBEDPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "sc_embed.h"

typedef struct sc_embed_job_s sc_embed_job_t;
struct sc_embed_job_s {
    const char *text; /* borrowed: must stay valid until 'done' */
    size_t len;
    uint64_t deadline_ns; /* monotonic; a job still queued then is failed */
    float *vec;           /* out: malloc'd unit vector, owned by the job's owner */
    uint32_t dim;
    int empty;  /* out: no known token in the text */
    int result; /* out: 0, SC_ETIMEDOUT, SC_ECLOSED or a model error */
    /* Called on a worker thread when the job is finished; must not block. */
    void (*done)(sc_embed_job_t *job);
    sc_embed_job_t *next; /* queue link, owned by the pool while queued */
};

typedef struct sc_embed_pool_s sc_embed_pool_t;
struct sc_log_s;

/* 'e' and 'log' (may be NULL: failed probes are not logged) must outlive
 * the pool. While 'e' is not up (sc_embedder_state), an idle worker probes
 * it: at once, then 1 s after a failed probe, doubling to 30 s. */
int sc_embed_pool_create(sc_embed_pool_t **out, sc_embedder_t *e, int threads, size_t max_batch,
                         uint64_t max_wait_us, size_t max_queue, struct sc_log_s *log);
/* Queues 'job'. SC_EBUSY when the queue is full (done is not called). */
int sc_embed_pool_submit(sc_embed_pool_t *p, sc_embed_job_t *job);
/* Lets sc_embed_pool_try_inline embed texts the model is measured to embed
 * within 'max_us' (0, the default: never). Call once, before the pool is
 * used; only for a local model (a remote call blocks for its round trip). */
void sc_embed_pool_set_inline(sc_embed_pool_t *p, uint64_t max_us);
/* Embeds 'job' on the calling thread (an event loop) when its text is within
 * the inline bound at the model's measured cost per byte (measured by the
 * workers' batches first: an unmeasured model never runs inline): returns 1
 * with the job finished (result, vec, dim, empty as a worker sets them;
 * 'done' is NOT called). Returns 0, the job untouched, when it should be
 * submitted instead. */
int sc_embed_pool_try_inline(sc_embed_pool_t *p, sc_embed_job_t *job);
/* Fails queued jobs with SC_ECLOSED, finishes running batches, joins. */
void sc_embed_pool_destroy(sc_embed_pool_t *p);

typedef struct {
    uint64_t batches, texts, timeouts, rejected, errors;
    uint64_t probes;  /* sc_embedder_probe calls */
    uint64_t inlined; /* texts embedded by sc_embed_pool_try_inline (also in texts) */
    uint64_t queue_depth;
} sc_embed_pool_stats_t;
void sc_embed_pool_stats(sc_embed_pool_t *p, sc_embed_pool_stats_t *st);

#endif
