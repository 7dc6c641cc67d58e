/* embedpool.c -- the embedding workers. One mutex-guarded FIFO; a worker
 * that finds a job waits a moment for more, then embeds the batch with one
 * sc_embedder_embed call outside the lock. The moment is max_wait at most and
 * never longer than a batch takes to embed (a running average): waiting pays
 * off only where a batch has a fixed cost comparable to the wait (a
 * transformer's matrix products, a remote call), while a static model embeds
 * a text in microseconds and a lone lookup would otherwise sit out the whole
 * max_wait. Under load, jobs that arrive while a batch runs form the next
 * batch without any wait. Until a batch has been embedded the worker waits
 * the whole max_wait, as it knows nothing of the model's cost. An idle
 * worker also probes an embedder that is not up (a remote endpoint that did
 * not answer), one worker at a time, 1 s after a failed probe and doubling to
 * 30 s: the blocking call is the worker's, never an event loop's. A text the
 * model is measured to embed within the inline bound (a static model: a few
 * table reads per word) may be embedded by the caller instead
 * (sc_embed_pool_try_inline): two thread hand-offs cost more than that. */
#define _GNU_SOURCE
#include "embedpool.h"

#include "sc_common.h"
#include "sc_fifo.h"
#include "sc_log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sc_embed_pool_s {
    sc_embedder_t *e;
    sc_log_t *log; /* borrowed; may be NULL */
    size_t max_batch;
    uint64_t max_wait_ns;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sc_fifo_t jobs; /* guarded by mu */
    int stopping;
    uint64_t batch_ns_avg;     /* guarded by mu: running average of a batch's
                                  embedding time, bounds the straggler wait */
    uint64_t next_probe_ns;    /* guarded by mu: monotonic time of the next probe */
    uint64_t probe_backoff_ns; /* guarded by mu: the wait after the next failure */
    int probing;               /* guarded by mu: a worker is probing */
    uint64_t inline_max_ns;    /* set before use: longest inline embedding, 0 = never */
    /* Running average of the model's cost per text byte, in picoseconds
     * (0 = not measured yet). Updated without a lock by workers and inline
     * callers alike: a lost update only delays the average a little. */
    _Atomic uint64_t ps_per_byte;
    pthread_t *threads;
    int n_threads;
    _Atomic uint64_t batches, texts, timeouts, rejected, errors, probes, inlined;
};

#define PROBE_FIRST_NS 1000000000ull /* 1 s after the first failed probe */
#define PROBE_MAX_NS 30000000000ull  /* doubling up to 30 s */

static void cost_record(sc_embed_pool_t *p, uint64_t ns, size_t bytes)
{
    uint64_t ps = ns * 1000u / (bytes ? bytes : 1) + 1;
    uint64_t old = atomic_load_explicit(&p->ps_per_byte, memory_order_relaxed);
    atomic_store_explicit(&p->ps_per_byte, old ? (old * 7 + ps) / 8 : ps, memory_order_relaxed);
}

static void finish(sc_embed_job_t *j, int result)
{
    j->result = result;
    j->done(j);
}

/* Embeds the jobs still within their deadline; returns how long the model
 * took (0 when every job had timed out and nothing was embedded). */
static uint64_t run_batch(sc_embed_pool_t *p, sc_embed_job_t **jobs, size_t n)
{
    /* Callers submit only once the dimension is known; never embed without. */
    uint32_t dim = sc_embedder_dim(p->e);
    const char *texts[256];
    size_t lens[256], live = 0, bytes = 0;
    sc_embed_job_t *ok[256];
    uint64_t now = sc_mono_ns();
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->deadline_ns && now > jobs[i]->deadline_ns) {
            atomic_fetch_add(&p->timeouts, 1);
            finish(jobs[i], SC_ETIMEDOUT);
            continue;
        }
        texts[live] = jobs[i]->text;
        lens[live] = jobs[i]->len;
        bytes += jobs[i]->len;
        ok[live++] = jobs[i];
    }
    if (!live)
        return 0;
    float *out = dim ? malloc(live * dim * sizeof(float)) : NULL;
    uint8_t empty[32];
    uint64_t t0 = sc_mono_ns();
    int rc = out   ? sc_embedder_embed(p->e, texts, lens, live, out, empty)
             : dim ? SC_ENOMEM
                   : SC_EREMOTE;
    uint64_t took = sc_mono_ns() - t0;
    atomic_fetch_add(&p->batches, 1);
    atomic_fetch_add(&p->texts, live);
    if (rc)
        atomic_fetch_add(&p->errors, 1);
    else
        cost_record(p, took, bytes);
    for (size_t i = 0; i < live; i++) {
        sc_embed_job_t *j = ok[i];
        if (!rc && (j->vec = malloc(dim * sizeof(float)))) {
            memcpy(j->vec, out + i * dim, dim * sizeof(float));
            j->dim = dim;
            j->empty = (empty[i / 8] >> (i % 8)) & 1;
            finish(j, 0);
        } else {
            finish(j, rc ? rc : SC_ENOMEM);
        }
    }
    free(out);
    return took ? took : 1;
}

/* How long a worker holding fewer than max_batch jobs waits for more: caller
 * holds mu. Until a batch has been embedded its cost is unknown, and the
 * worker waits the whole max_wait. */
static uint64_t straggler_wait_ns(const sc_embed_pool_t *p)
{
    if (!p->batch_ns_avg || p->max_wait_ns < p->batch_ns_avg)
        return p->max_wait_ns;
    return p->batch_ns_avg;
}

/* The CLOCK_REALTIME deadline (the condition variable's clock) 'ns' from now. */
static struct timespec deadline_in(uint64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ns += (uint64_t)ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return ts;
}

/* One probe, with mu held on entry and exit (released during the call). */
static void probe_once(sc_embed_pool_t *p)
{
    char err[512];
    p->probing = 1;
    pthread_mutex_unlock(&p->mu);
    int rc = sc_embedder_probe(p->e, err, sizeof(err));
    atomic_fetch_add(&p->probes, 1);
    pthread_mutex_lock(&p->mu);
    p->probing = 0;
    if (rc) {
        p->next_probe_ns = sc_mono_ns() + p->probe_backoff_ns;
        sc_log(p->log, SC_WARN, "%s; next probe in %.0f s", err, (double)p->probe_backoff_ns / 1e9);
        p->probe_backoff_ns =
            p->probe_backoff_ns * 2 > PROBE_MAX_NS ? PROBE_MAX_NS : p->probe_backoff_ns * 2;
    }
}

/* Waits (mu held) until there is a job or the pool stops, probing an
 * embedder that is not up when its time comes. */
static void wait_for_jobs(sc_embed_pool_t *p)
{
    while (!p->jobs.len && !p->stopping) {
        if (p->probing || sc_embedder_state(p->e) == SC_EMBEDDER_UP) {
            if (!p->probing) { /* should it go down, probe at once */
                p->next_probe_ns = 0;
                p->probe_backoff_ns = PROBE_FIRST_NS;
            }
            pthread_cond_wait(&p->cv, &p->mu);
            continue;
        }
        uint64_t now = sc_mono_ns();
        if (now >= p->next_probe_ns) {
            probe_once(p);
            continue;
        }
        struct timespec ts = deadline_in(p->next_probe_ns - now);
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
}

static void *worker_main(void *arg)
{
    sc_embed_pool_t *p = arg;
    sc_embed_job_t *batch[256];
    pthread_setname_np(pthread_self(), "sc-embed");
    pthread_mutex_lock(&p->mu);
    for (;;) {
        wait_for_jobs(p);
        if (p->stopping && !p->jobs.len)
            break;
        /* Give stragglers a moment to join the batch. */
        uint64_t wait_ns = straggler_wait_ns(p);
        if (p->jobs.len < p->max_batch && wait_ns && !p->stopping) {
            struct timespec ts = deadline_in(wait_ns);
            while (p->jobs.len < p->max_batch && !p->stopping &&
                   pthread_cond_timedwait(&p->cv, &p->mu, &ts) == 0)
                ;
        }
        size_t n = 0;
        while (n < p->max_batch && (batch[n] = sc_fifo_pop(&p->jobs)))
            n++;
        pthread_mutex_unlock(&p->mu);
        if (p->stopping) {
            for (size_t i = 0; i < n; i++)
                finish(batch[i], SC_ECLOSED);
            pthread_mutex_lock(&p->mu);
        } else {
            uint64_t took = run_batch(p, batch, n);
            pthread_mutex_lock(&p->mu);
            if (took)
                p->batch_ns_avg = p->batch_ns_avg ? (p->batch_ns_avg * 7 + took) / 8 : took;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int sc_embed_pool_create(sc_embed_pool_t **out, sc_embedder_t *e, int threads, size_t max_batch,
                         uint64_t max_wait_us, size_t max_queue, sc_log_t *log)
{
    sc_embed_pool_t *p = calloc(1, sizeof(*p));
    if (!p)
        return SC_ENOMEM;
    p->e = e;
    p->log = log;
    p->probe_backoff_ns = PROBE_FIRST_NS; /* next_probe_ns 0: the first probe at once */
    p->max_batch = max_batch < 1 ? 1 : max_batch > 256 ? 256 : max_batch;
    p->max_wait_ns = max_wait_us * 1000u;
    p->jobs = SC_FIFO_INIT(sc_embed_job_t, next, max_queue);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)threads, sizeof(pthread_t));
    if (!p->threads) {
        free(p);
        return SC_ENOMEM;
    }
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p))
            break;
        p->n_threads++;
    }
    if (!p->n_threads) {
        free(p->threads);
        free(p);
        return SC_ENOMEM;
    }
    *out = p;
    return 0;
}

int sc_embed_pool_submit(sc_embed_pool_t *p, sc_embed_job_t *job)
{
    job->vec = NULL;
    pthread_mutex_lock(&p->mu);
    int rc = p->stopping ? SC_ECLOSED : sc_fifo_push(&p->jobs, job);
    if (!rc)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (rc)
        atomic_fetch_add(&p->rejected, 1);
    return rc;
}

void sc_embed_pool_set_inline(sc_embed_pool_t *p, uint64_t max_us)
{
    p->inline_max_ns = max_us * 1000u;
}

int sc_embed_pool_try_inline(sc_embed_pool_t *p, sc_embed_job_t *job)
{
    uint64_t ps = atomic_load_explicit(&p->ps_per_byte, memory_order_relaxed);
    uint32_t dim = sc_embedder_dim(p->e);
    /* Unmeasured, or longer than the bound at the measured cost: the pool's. */
    if (!p->inline_max_ns || !ps || !dim || sc_embedder_state(p->e) != SC_EMBEDDER_UP ||
        (uint64_t)job->len > p->inline_max_ns * 1000u / ps)
        return 0;
    job->vec = malloc(dim * sizeof(float));
    if (!job->vec)
        return 0;
    uint8_t empty[1] = {0};
    uint64_t t0 = sc_mono_ns();
    int rc = sc_embedder_embed(p->e, &job->text, &job->len, 1, job->vec, empty);
    uint64_t took = sc_mono_ns() - t0;
    atomic_fetch_add(&p->batches, 1);
    atomic_fetch_add(&p->texts, 1);
    atomic_fetch_add(&p->inlined, 1);
    if (rc) {
        atomic_fetch_add(&p->errors, 1);
        free(job->vec);
        job->vec = NULL;
    } else {
        cost_record(p, took, job->len);
        job->dim = dim;
        job->empty = empty[0] & 1;
    }
    job->result = rc;
    return 1;
}

void sc_embed_pool_destroy(sc_embed_pool_t *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

void sc_embed_pool_stats(sc_embed_pool_t *p, sc_embed_pool_stats_t *st)
{
    st->batches = atomic_load(&p->batches);
    st->texts = atomic_load(&p->texts);
    st->timeouts = atomic_load(&p->timeouts);
    st->rejected = atomic_load(&p->rejected);
    st->errors = atomic_load(&p->errors);
    st->probes = atomic_load(&p->probes);
    st->inlined = atomic_load(&p->inlined);
    pthread_mutex_lock(&p->mu);
    st->queue_depth = p->jobs.len;
    pthread_mutex_unlock(&p->mu);
}
