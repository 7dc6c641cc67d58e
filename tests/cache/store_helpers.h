/* tests/cache/store_helpers.h -- what the cache tests that need a real store
 * share: a store opened in a fresh temporary directory, a write that waits
 * until the writer thread has committed it, and removal of the directory.
 * Header-only (static inline), included after the code under test. */
#ifndef SC_TESTS_STORE_HELPERS_H
#define SC_TESTS_STORE_HELPERS_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "sc_store.h"
#include "testutil.h"

#define TH_DIR_CAP 64

/* Opens a store configured by 'cfg' in a new directory, written to 'dir'.
 * Logs only errors; the log lives as long as the test process. */
static inline sc_store_t *th_store_open(const sc_config_t *cfg, char dir[TH_DIR_CAP])
{
    static sc_log_t quiet;
    sc_log_init(&quiet, NULL, SC_ERROR);
    snprintf(dir, TH_DIR_CAP, "/tmp/sc-cache-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    sc_store_t *s;
    ck_assert_int_eq(sc_store_create(&s, cfg, &quiet), 0);
    ck_assert_int_eq(sc_store_open(s, dir), 0);
    return s;
}

/* Destroys 's' (may be NULL: already destroyed) and removes 'dir'. */
static inline void th_store_remove(sc_store_t *s, const char *dir)
{
    sc_store_destroy(s);
    char cmd[TH_DIR_CAP + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} th_wait_t;

static inline void th_write_done(sc_write_op_t *op)
{
    th_wait_t *w = op->data;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Submits 'op' (its 'done' and 'data' are taken) and waits until the
 * writer has finished it. Returns op->result. */
static inline int th_store_write(sc_store_t *s, sc_write_op_t *op)
{
    th_wait_t w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    op->data = &w;
    op->done = th_write_done;
    ck_assert_int_eq(sc_store_submit(s, op), 0);
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    return op->result;
}

#endif
