/* tests/server/searchpool.c -- the semantic-search workers (server/
 * searchpool.c): every job runs once on a worker with a store reader, a full
 * queue refuses instead of blocking, and destroy runs what is queued. */
#include "../../server/searchpool.c"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

typedef struct {
    sc_search_job_t job;
    _Atomic int *ran;
    int had_reader;
    pthread_mutex_t *gate; /* held by the test to keep workers busy, or NULL */
} test_job_t;

static void run_job(sc_search_job_t *job, sc_store_reader_t *reader)
{
    test_job_t *t = (test_job_t *)job;
    if (t->gate) {
        pthread_mutex_lock(t->gate);
        pthread_mutex_unlock(t->gate);
    }
    /* The reader works: a snapshot opens and closes. */
    t->had_reader = reader && sc_store_read_begin(reader) == 0;
    if (t->had_reader)
        sc_store_read_end(reader);
    atomic_fetch_add(t->ran, 1);
}

static sc_store_t *open_store(char *dir)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    static sc_log_t quiet;
    sc_log_init(&quiet, NULL, SC_ERROR);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sc_store_t *s;
    ck_assert_int_eq(sc_store_create(&s, &cfg, &quiet), 0);
    ck_assert_int_eq(sc_store_open(s, dir), 0);
    return s;
}

START_TEST(jobs_run_once_and_a_full_queue_refuses)
{
    char dir[] = "/tmp/sc-searchpool-XXXXXX";
    sc_store_t *st = open_store(dir);
    sc_search_pool_t *p;
    ck_assert_int_eq(sc_search_pool_create(&p, st, 2, 4), 0);
    _Atomic int ran = 0;
    pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&gate);
    test_job_t jobs[8];
    for (int i = 0; i < 8; i++)
        jobs[i] = (test_job_t){{run_job, NULL}, &ran, 0, &gate};
    /* Two workers take a job each and wait at the gate; four fit the queue. */
    ck_assert_int_eq(sc_search_pool_submit(p, &jobs[0].job), 0);
    ck_assert_int_eq(sc_search_pool_submit(p, &jobs[1].job), 0);
    for (int i = 0; i < 100 && sc_search_pool_depth(p) > 0; i++)
        usleep(10000);
    for (int i = 2; i < 6; i++)
        ck_assert_int_eq(sc_search_pool_submit(p, &jobs[i].job), 0);
    ck_assert_int_eq(sc_search_pool_submit(p, &jobs[6].job), SC_EBUSY);
    ck_assert_int_eq((int)sc_search_pool_depth(p), 4);
    pthread_mutex_unlock(&gate);
    sc_search_pool_destroy(p); /* runs what is queued, then joins */
    ck_assert_int_eq(atomic_load(&ran), 6);
    for (int i = 0; i < 6; i++)
        ck_assert(jobs[i].had_reader);
    sc_store_destroy(st);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("searchpool");
    TCase *tc = tcase_create("searchpool");
    tcase_add_test(tc, jobs_run_once_and_a_full_queue_refuses);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
