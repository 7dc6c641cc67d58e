/* tests/server/embedpool.c -- the embedding workers (server/embedpool.c):
 * a lone text is embedded at once rather than after --embed-wait-us when the
 * model's batches are fast, and texts still gather into one batch when
 * batches are slow; an embedder that is not up is probed with a doubling
 * wait; a measured cheap model's short texts are embedded inline (the same
 * vector as a worker's), long ones and unmeasured models' are not. The model is the small
 * GloVe file of the fuzz corpus, so the test needs nothing outside the tree. */
#include "../../server/embedpool.c"

#include <stdatomic.h>
#include <unistd.h>

#include "testutil.h"

typedef struct {
    sc_embed_job_t job;
    _Atomic int done;
} test_job_t;

static void job_done(sc_embed_job_t *job)
{
    atomic_store(&((test_job_t *)job)->done, 1);
}

static sc_embedder_t *open_model(void)
{
    sc_embedder_t *e;
    char err[256];
    ck_assert_msg(sc_embedder_open(&e, "tests/fuzz/corpus/glove/small.scglove", err, sizeof(err)) ==
                      0,
                  "%s", err);
    return e;
}

static void submit(sc_embed_pool_t *p, test_job_t *j, const char *text)
{
    *j = (test_job_t){0};
    j->job.text = text;
    j->job.len = strlen(text);
    j->job.done = job_done;
    ck_assert_int_eq(sc_embed_pool_submit(p, &j->job), 0);
}

static void wait_done(test_job_t *j)
{
    for (int i = 0; i < 3000 && !atomic_load(&j->done); i++)
        usleep(1000);
    ck_assert(atomic_load(&j->done));
}

START_TEST(straggler_wait_is_bounded_by_the_batch_time)
{
    sc_embed_pool_t p = {.max_wait_ns = 1000000};
    ck_assert_uint_eq(straggler_wait_ns(&p), 1000000); /* nothing measured yet */
    p.batch_ns_avg = 8000;
    ck_assert_uint_eq(straggler_wait_ns(&p), 8000);
    p.batch_ns_avg = 9000000;
    ck_assert_uint_eq(straggler_wait_ns(&p), 1000000);
}
END_TEST

/* With a 1-s --embed-wait-us, one text after another: the first waits it out
 * (the model's cost is not known yet), but a static model's batches take
 * microseconds, so the other 19 do not (a flat wait: 20 s in all). */
START_TEST(lone_texts_do_not_wait_out_max_wait_with_a_fast_model)
{
    sc_embedder_t *e = open_model();
    sc_embed_pool_t *p;
    ck_assert_int_eq(sc_embed_pool_create(&p, e, 1, 32, 1000000, 64, NULL), 0);
    uint64_t t0 = sc_mono_ns();
    for (int i = 0; i < 20; i++) {
        test_job_t j;
        submit(p, &j, "the cat");
        wait_done(&j);
        ck_assert_int_eq(j.job.result, 0);
        ck_assert_uint_eq(j.job.dim, sc_embedder_dim(e));
        free(j.job.vec);
    }
    uint64_t took_ms = (sc_mono_ns() - t0) / 1000000;
    ck_assert_msg(took_ms < 5000, "20 lone texts took %llu ms", (unsigned long long)took_ms);
    sc_embed_pool_stats_t st;
    sc_embed_pool_stats(p, &st);
    ck_assert_uint_eq(st.texts, 20);
    sc_embed_pool_destroy(p);
    sc_embedder_close(e);
}
END_TEST

/* When a batch is known to take long (here: the average set to 10 s), texts
 * arriving together are embedded in one call. */
START_TEST(texts_gather_into_one_batch_when_batches_are_slow)
{
    sc_embedder_t *e = open_model();
    sc_embed_pool_t *p;
    ck_assert_int_eq(sc_embed_pool_create(&p, e, 1, 32, 300000, 64, NULL), 0);
    pthread_mutex_lock(&p->mu);
    p->batch_ns_avg = 10000000000ull;
    pthread_mutex_unlock(&p->mu);
    test_job_t j[4];
    for (int i = 0; i < 4; i++)
        submit(p, &j[i], "the dog");
    for (int i = 0; i < 4; i++) {
        wait_done(&j[i]);
        ck_assert_int_eq(j[i].job.result, 0);
        free(j[i].job.vec);
    }
    sc_embed_pool_stats_t st;
    sc_embed_pool_stats(p, &st);
    ck_assert_uint_eq(st.texts, 4);
    ck_assert_uint_eq(st.batches, 1);
    sc_embed_pool_destroy(p);
    sc_embedder_close(e);
}
END_TEST

/* A remote embedder whose endpoint never answers (a port nothing listens
 * on): it opens unavailable, and the idle worker probes at once, then 1 s and
 * 2 s later (the wait doubles). A local model is never probed. */
START_TEST(an_unavailable_embedder_is_probed_with_backoff)
{
    char url[64], err[512];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", tu_free_port());
    sc_embedder_t *e;
    ck_assert_int_eq(sc_embedder_open_remote(&e, url, "m", NULL, 500, 2, 0, NULL, err, sizeof(err)),
                     0);
    ck_assert_int_eq(sc_embedder_state(e), SC_EMBEDDER_UNAVAILABLE);
    ck_assert_uint_eq(sc_embedder_dim(e), 0);
    ck_assert_str_eq(sc_embedder_state_name(sc_embedder_state(e)), "unavailable");
    sc_embed_pool_t *p;
    ck_assert_int_eq(sc_embed_pool_create(&p, e, 1, 32, 1000, 64, NULL), 0);
    usleep(4000000); /* probes at ~0, 1 and 3 s; the next at 7 s */
    sc_embed_pool_stats_t st;
    sc_embed_pool_stats(p, &st);
    ck_assert_uint_eq(st.probes, 3);
    pthread_mutex_lock(&p->mu);
    uint64_t now = sc_mono_ns(); /* probe 3 at ~3 s waits 4 s: the next at ~7 s */
    ck_assert(p->next_probe_ns > now + 2 * PROBE_FIRST_NS &&
              p->next_probe_ns <= now + 4 * PROBE_FIRST_NS);
    ck_assert_uint_eq(p->probe_backoff_ns, 8 * PROBE_FIRST_NS);
    pthread_mutex_unlock(&p->mu);
    ck_assert_int_eq(sc_embedder_state(e), SC_EMBEDDER_UNAVAILABLE);
    ck_assert_int_eq(sc_embedder_probe(e, err, sizeof(err)), SC_EREMOTE);
    ck_assert_ptr_nonnull(strstr(err, "did not answer probe 5"));
    sc_embed_pool_destroy(p);
    sc_embedder_close(e);
    /* The local model is up from the start: its pool never probes. */
    e = open_model();
    ck_assert_int_eq(sc_embedder_state(e), SC_EMBEDDER_UP);
    ck_assert_int_eq(sc_embed_pool_create(&p, e, 1, 32, 1000, 64, NULL), 0);
    usleep(100000);
    sc_embed_pool_stats(p, &st);
    ck_assert_uint_eq(st.probes, 0);
    sc_embed_pool_destroy(p);
    sc_embedder_close(e);
}
END_TEST

/* Inline embedding: never before a batch has measured the model, nor when
 * disabled; then a short text is embedded on the calling thread into the
 * vector a worker gives, while a text past the bound (at the measured cost
 * per byte) is left to the workers. */
START_TEST(cheap_texts_are_embedded_inline_once_measured)
{
    sc_embedder_t *e = open_model();
    sc_embed_pool_t *p;
    ck_assert_int_eq(sc_embed_pool_create(&p, e, 1, 32, 0, 64, NULL), 0);
    sc_embed_pool_set_inline(p, 10000); /* 10 ms: a loaded test machine is slow */
    sc_embed_job_t in = {.text = "the cat", .len = 7};
    ck_assert_int_eq(sc_embed_pool_try_inline(p, &in), 0); /* not measured yet */
    ck_assert_ptr_null(in.vec);
    test_job_t j;
    submit(p, &j, "the cat");
    wait_done(&j);
    ck_assert_int_eq(j.job.result, 0);
    ck_assert_uint_gt(atomic_load(&p->ps_per_byte), 0);
    /* The measured cost is whatever this (loaded) machine took: set 1 ns a byte. */
    atomic_store(&p->ps_per_byte, 1000);
    ck_assert_int_eq(sc_embed_pool_try_inline(p, &in), 1);
    ck_assert_int_eq(in.result, 0);
    ck_assert_uint_eq(in.dim, sc_embedder_dim(e));
    ck_assert_int_eq(in.empty, j.job.empty);
    ck_assert_mem_eq(in.vec, j.job.vec, in.dim * sizeof(float));
    free(in.vec);
    free(j.job.vec);
    /* Past the bound at the measured cost: at 1 ms a byte, 100 bytes take 100 ms. */
    atomic_store(&p->ps_per_byte, 1000000000);
    char big[101];
    memset(big, 'a', sizeof(big) - 1);
    sc_embed_job_t long_text = {.text = big, .len = sizeof(big) - 1};
    ck_assert_int_eq(sc_embed_pool_try_inline(p, &long_text), 0);
    in = (sc_embed_job_t){.text = "the cat", .len = 7};
    ck_assert_int_eq(sc_embed_pool_try_inline(p, &in), 1);
    free(in.vec);
    sc_embed_pool_stats_t st;
    sc_embed_pool_stats(p, &st);
    ck_assert_uint_eq(st.inlined, 2);
    ck_assert_uint_eq(st.texts, 3);
    sc_embed_pool_set_inline(p, 0); /* disabled */
    in = (sc_embed_job_t){.text = "the cat", .len = 7};
    ck_assert_int_eq(sc_embed_pool_try_inline(p, &in), 0);
    sc_embed_pool_destroy(p);
    sc_embedder_close(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embedpool");
    TCase *tc = tcase_create("embedpool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, straggler_wait_is_bounded_by_the_batch_time);
    tcase_add_test(tc, lone_texts_do_not_wait_out_max_wait_with_a_fast_model);
    tcase_add_test(tc, texts_gather_into_one_batch_when_batches_are_slow);
    tcase_add_test(tc, an_unavailable_embedder_is_probed_with_backoff);
    tcase_add_test(tc, cheap_texts_are_embedded_inline_once_measured);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
