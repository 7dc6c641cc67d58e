/* tests/cache/store.c -- the LMDB store (cache/store*.c): the record codec
 * and the on-disk bytes of the previous release, reads, group-committed
 * writes, invalidation, TTL sweeping, LRU and value eviction, per-namespace
 * usage and caps. All the store's files are included, to reach its statics. */
#include "../../cache/store.c"
#include "../../cache/store_evict.c"
#include "../../cache/store_ops.c"
#include "../../cache/store_record.c"
#include "../../cache/store_writer.c"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store_helpers.h"
#include "testutil.h"

/* An op the test waits for (see store_helpers.h). */
typedef struct {
    sc_write_op_t op;
} sync_op_t;

/* Submits 'op' and waits for the writer to finish it. Returns op->result. */
static int run_op(sc_store_t *st, sync_op_t *s)
{
    return th_store_write(st, &s->op);
}

static char dir[TH_DIR_CAP];
static sc_log_t quiet;

/* Opens a store in a fresh directory with 'cfg'. */
static sc_store_t *open_store_cfg(const sc_config_t *cfg)
{
    sc_log_init(&quiet, NULL, SC_ERROR);
    return th_store_open(cfg, dir);
}

static sc_store_t *open_store_limited(const char *map_size, const char *evict,
                                      const char *max_entries)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    ck_assert_int_eq(sc_config_set(&cfg, "max-entries", max_entries, stderr), 0);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", map_size, stderr), 0);
    ck_assert_int_eq(sc_config_set(&cfg, "evict", evict, stderr), 0);
    ck_assert_int_eq(sc_config_set(&cfg, "sweep-interval-ms", "3600000", stderr), 0);
    return open_store_cfg(&cfg);
}

static sc_store_t *open_store(const char *map_size, const char *evict)
{
    return open_store_limited(map_size, evict, "0");
}

static void close_store(sc_store_t *s)
{
    th_store_remove(s, dir);
}

static void make_key(uint8_t key[16], unsigned i)
{
    memset(key, 0, 16);
    memcpy(key, &i, sizeof(i));
    key[15] = 0xab;
}

static uint64_t cap_entries, cap_bytes; /* namespace caps put() sends (0 = none) */

static int put(sc_store_t *s, unsigned i, const char *ns, const char *tenant, const char *model,
               const char *resp, uint64_t created, uint64_t expires)
{
    sync_op_t op = {0};
    op.op.type = SC_OP_PUT;
    op.op.ns_max_entries = cap_entries;
    op.op.ns_max_bytes = cap_bytes;
    make_key(op.op.key, i);
    sc_entry_t e = {.created_ms = created,
                    .expires_ms = expires,
                    .scope = 7,
                    .prompt_tokens = 11,
                    .completion_tokens = 22,
                    .ns = {ns, strlen(ns)},
                    .tenant = {tenant, strlen(tenant)},
                    .model = {model, strlen(model)},
                    .text = {"text", 4},
                    .response = {resp, strlen(resp)}};
    ck_assert_int_eq(sc_store_encode(&e, &op.op.record), 0);
    int rc = run_op(s, &op);
    sc_write_op_clear(&op.op);
    return rc;
}

/* Returns 1 and the response if 'i' is present. */
static int get(sc_store_t *s, unsigned i, char *resp, size_t cap, sc_entry_meta_t *meta)
{
    sc_store_reader_t *r;
    ck_assert_int_eq(sc_store_reader_create(s, &r), 0);
    ck_assert_int_eq(sc_store_read_begin(r), 0);
    uint8_t key[16];
    make_key(key, i);
    sc_entry_t e;
    int rc = sc_store_get(r, key, &e, meta);
    if (rc == 0 && resp)
        snprintf(resp, cap, "%.*s", (int)e.response.len, e.response.ptr);
    sc_store_read_end(r);
    sc_store_reader_destroy(r);
    ck_assert(rc == 0 || rc == SC_ENOTFOUND);
    return rc == 0;
}

START_TEST(record_roundtrip_and_corruption)
{
    float vec[3] = {0.5f, -1.0f, 2.0f};
    sc_entry_t e = {.created_ms = 1,
                    .expires_ms = 2,
                    .scope = 3,
                    .prompt_tokens = 4,
                    .completion_tokens = 5,
                    .ns = {"ns", 2},
                    .tenant = {"tenant", 6},
                    .model = {"m", 1},
                    .text = {"hello", 5},
                    .response = {"\"r\"", 3},
                    .vector = vec,
                    .dim = 3};
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_store_encode(&e, &b), 0);
    sc_entry_t d;
    ck_assert_int_eq(sc_store_decode(b.data, b.len, &d), 0);
    ck_assert_uint_eq(d.expires_ms, 2);
    ck_assert_uint_eq(d.completion_tokens, 5);
    ck_assert_int_eq((int)d.tenant.len, 6);
    ck_assert(memcmp(d.tenant.ptr, "tenant", 6) == 0);
    ck_assert(memcmp(d.response.ptr, "\"r\"", 3) == 0);
    ck_assert_uint_eq(d.dim, 3);
    float got[3];
    memcpy(got, d.vector, sizeof(got));
    ck_assert(got[1] == -1.0f);
    ck_assert_int_eq(sc_store_decode(b.data, b.len - 1, &d), SC_ECORRUPT);
    b.data[0] ^= 1;
    ck_assert_int_eq(sc_store_decode(b.data, b.len, &d), SC_ECORRUPT);
    sc_buf_free(&b);
}
END_TEST

START_TEST(put_get_replace_delete)
{
    sc_store_t *s = open_store("64M", "lru");
    char resp[64];
    ck_assert_int_eq(get(s, 1, resp, sizeof(resp), NULL), 0);
    ck_assert_int_eq(put(s, 1, "ns", "t", "m", "\"first\"", 1000, 0), 0);
    ck_assert_int_eq(get(s, 1, resp, sizeof(resp), NULL), 1);
    ck_assert_str_eq(resp, "\"first\"");
    ck_assert_int_eq(put(s, 1, "ns", "t", "m", "\"second\"", 2000, 0), 0);
    ck_assert_int_eq(get(s, 1, resp, sizeof(resp), NULL), 1);
    ck_assert_str_eq(resp, "\"second\"");
    sc_store_stats_t st;
    ck_assert_int_eq(sc_store_stats(s, &st), 0);
    ck_assert_uint_eq(st.entries, 1);

    sync_op_t del = {0};
    del.op.type = SC_OP_DELETE;
    make_key(del.op.key, 1);
    ck_assert_int_eq(run_op(s, &del), 0);
    ck_assert_uint_eq(del.op.count, 1);
    ck_assert_int_eq(get(s, 1, NULL, 0, NULL), 0);
    sync_op_t del2 = {0};
    del2.op.type = SC_OP_DELETE;
    make_key(del2.op.key, 1);
    ck_assert_int_eq(run_op(s, &del2), 0);
    ck_assert_uint_eq(del2.op.count, 0);
    close_store(s);
}
END_TEST

START_TEST(entries_survive_reopen)
{
    sc_store_t *s = open_store("64M", "lru");
    for (unsigned i = 0; i < 100; i++)
        ck_assert_int_eq(put(s, i, "ns", "t", "m", "\"v\"", 1000, 0), 0);
    sc_store_destroy(s);
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_config_set(&cfg, "map-size", "64M", NULL);
    ck_assert_int_eq(sc_store_create(&s, &cfg, &quiet), 0);
    ck_assert_int_eq(sc_store_open(s, dir), 0);
    for (unsigned i = 0; i < 100; i++)
        ck_assert_int_eq(get(s, i, NULL, 0, NULL), 1);
    close_store(s);
}
END_TEST

START_TEST(invalidate_by_filters)
{
    sc_store_t *s = open_store("64M", "lru");
    put(s, 1, "a", "t1", "m1", "1", 1, 0);
    put(s, 2, "a", "t2", "m1", "1", 1, 0);
    put(s, 3, "a", "t1", "m2", "1", 1, 0);
    put(s, 4, "b", "t1", "m1", "1", 1, 0);
    sync_op_t op = {0};
    op.op.type = SC_OP_INVALIDATE;
    op.op.ns = strdup("a");
    op.op.tenant = strdup("t1");
    ck_assert_int_eq(run_op(s, &op), 0);
    ck_assert_uint_eq(op.op.count, 2);
    sc_write_op_clear(&op.op);
    ck_assert_int_eq(get(s, 1, NULL, 0, NULL), 0);
    ck_assert_int_eq(get(s, 2, NULL, 0, NULL), 1);
    ck_assert_int_eq(get(s, 3, NULL, 0, NULL), 0);
    ck_assert_int_eq(get(s, 4, NULL, 0, NULL), 1);
    sync_op_t all = {0};
    all.op.type = SC_OP_INVALIDATE;
    all.op.all = 1;
    ck_assert_int_eq(run_op(s, &all), 0);
    ck_assert_uint_eq(all.op.count, 2);
    sc_store_stats_t st;
    sc_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, 0);
    close_store(s);
}
END_TEST

START_TEST(sweeper_removes_only_expired_entries)
{
    sc_store_t *s = open_store("64M", "lru");
    /* Stop the writer so the test can drive the sweeper itself. */
    for (unsigned i = 0; i < 50; i++)
        put(s, i, "ns", "t", "m", "1", 1000, i < 20 ? 5000 + i : (i < 40 ? 100000 : 0));
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->writer, NULL);
    s->writer_started = 0;
    ck_assert_int_eq(sc_store_sweep_now(s, 4000), 0);
    ck_assert_int_eq(sc_store_sweep_now(s, 5009), 10); /* expires 5000..5009 */
    ck_assert_int_eq(sc_store_sweep_now(s, 6000), 10);
    ck_assert_int_eq(sc_store_sweep_now(s, 6000), 0);
    for (unsigned i = 0; i < 50; i++)
        ck_assert_int_eq(get(s, i, NULL, 0, NULL), i >= 20);
    ck_assert_int_eq(sc_store_sweep_now(s, 200000), 20);
    sc_store_stats_t st;
    sc_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, 10); /* the never-expiring ones */
    ck_assert_uint_eq(st.expired_total, 40);
    /* The expiry index is empty again: nothing left to walk. */
    MDB_txn *txn;
    MDB_stat ms;
    mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    mdb_stat(txn, s->dbi_expiry, &ms);
    mdb_txn_abort(txn);
    ck_assert_uint_eq(ms.ms_entries, 0);
    close_store(s);
}
END_TEST

/* The writer's own timers, with more expired entries than one sweep slice and
 * more hit counts than one touch slice: both are applied in pieces between
 * stores, and all of them get done without any explicit sync op. */
START_TEST(writer_sweeps_and_applies_hits_in_slices)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    ck_assert_int_eq(sc_config_set(&cfg, "sweep-interval-ms", "50", stderr), 0);
    ck_assert_int_eq(sc_config_set(&cfg, "hit-flush-ms", "50", stderr), 0);
    sc_store_t *s = open_store_cfg(&cfg);
    enum { EXPIRED = 3 * SWEEP_SLICE + 5, HOT = 3 * TOUCH_SLICE + 7 };
    uint64_t now = sc_now_ms();
    /* Entries HOT.. are long expired (the sweeper takes them); 0..HOT-1 live
     * and are hit three times each. */
    for (unsigned i = 0; i < HOT; i++)
        ck_assert_int_eq(put(s, i, "ns", "t", "m", "1", now, 0), 0);
    for (unsigned i = HOT; i < HOT + EXPIRED; i++)
        ck_assert_int_eq(put(s, i, "ns", "t", "m", "1", 1000, 2000), 0);
    for (int round = 0; round < 3; round++)
        for (unsigned i = 0; i < HOT; i++) {
            uint8_t key[16];
            make_key(key, i);
            sc_store_touch(s, key, now + 1 + (uint64_t)round);
        }
    /* Stores keep arriving while both are worked off. */
    unsigned next = HOT + EXPIRED;
    int done = 0;
    for (int waited_ms = 0; waited_ms < 15000 && !done; waited_ms += 20) {
        ck_assert_int_eq(put(s, next++, "ns", "t", "m", "1", now, 0), 0);
        usleep(20000);
        sc_store_stats_t st;
        sc_store_stats(s, &st);
        sc_entry_meta_t m0, mlast;
        ck_assert_int_eq(get(s, 0, NULL, 0, &m0), 1);
        ck_assert_int_eq(get(s, HOT - 1, NULL, 0, &mlast), 1);
        done = st.expired_total == EXPIRED && m0.hits == 3 && mlast.hits == 3;
    }
    ck_assert_msg(done, "expired entries or hit counts were not all applied");
    for (unsigned i = 0; i < HOT; i++) {
        sc_entry_meta_t m;
        ck_assert_int_eq(get(s, i, NULL, 0, &m), 1);
        ck_assert_uint_eq(m.hits, 3);
        ck_assert_uint_eq(m.last_hit_ms, now + 3);
    }
    for (unsigned i = HOT; i < HOT + EXPIRED; i++)
        ck_assert_int_eq(get(s, i, NULL, 0, NULL), 0);
    for (unsigned i = HOT + EXPIRED; i < next; i++)
        ck_assert_int_eq(get(s, i, NULL, 0, NULL), 1);
    sc_store_stats_t st;
    sc_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, HOT + (next - HOT - EXPIRED));
    ck_assert_uint_gt(st.writer_sweep_ns, 0);
    ck_assert_uint_gt(st.writer_writes_ns, 0);
    close_store(s);
}
END_TEST

/* The flush with no store waiting (paced, in one transaction) applies every
 * count, and the pages it frees are reused by the next flush: before, each of
 * the two flushes after a burst of new entries grew the file by the whole set
 * of pages the hot keys' rows live on. */
START_TEST(paced_flush_applies_every_count_and_reuses_its_pages)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    ck_assert_int_eq(sc_config_set(&cfg, "hit-flush-ms", "20", stderr), 0);
    ck_assert_int_eq(sc_config_set(&cfg, "sync", "none", stderr), 0);
    /* The writer wakes for its timers and then sees the waiting counts. */
    ck_assert_int_eq(sc_config_set(&cfg, "sweep-interval-ms", "50", stderr), 0);
    sc_store_t *s = open_store_cfg(&cfg);
    enum { ENTRIES = 6000, HOT = 3000 };
    uint64_t now = sc_now_ms();
    for (unsigned i = 0; i < ENTRIES; i++)
        ck_assert_int_eq(put(s, i, "ns", "t", "m", "1", now, 0), 0);
    uint64_t last_pgno[4];
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    last_pgno[0] = info.me_last_pgno;
    for (unsigned round = 1; round <= 3; round++) {
        /* Hot keys spread over the whole table, each moving in LRU order. */
        for (unsigned i = 0; i < HOT; i++) {
            uint8_t key[16];
            make_key(key, i * 2);
            sc_store_touch(s, key, now + 20000 * (uint64_t)round);
        }
        int applied = 0;
        for (int waited_ms = 0; waited_ms < 20000 && !applied; waited_ms += 10) {
            usleep(10000);
            sc_entry_meta_t m0, m1;
            applied = get(s, 0, NULL, 0, &m0) && get(s, 2 * (HOT - 1), NULL, 0, &m1) &&
                      m0.hits == round && m1.hits == round;
        }
        ck_assert_msg(applied, "flush %u was not applied", round);
        usleep(50000); /* the generation bump after it */
        mdb_env_info(s->env, &info);
        last_pgno[round] = info.me_last_pgno;
    }
    for (unsigned i = 0; i < HOT; i++) {
        sc_entry_meta_t m;
        ck_assert_int_eq(get(s, i * 2, NULL, 0, &m), 1);
        ck_assert_uint_eq(m.hits, 3);
        ck_assert_uint_eq(m.last_hit_ms, now + 60000);
    }
    /* The first flush needs new pages; the next ones reuse what it freed. */
    uint64_t first = last_pgno[1] - last_pgno[0];
    ck_assert_uint_gt(first, 50);
    ck_assert_msg(last_pgno[2] - last_pgno[1] < first / 4 && last_pgno[3] - last_pgno[2] < first / 4,
                  "the file grew by %llu, %llu, %llu pages", (unsigned long long)first,
                  (unsigned long long)(last_pgno[2] - last_pgno[1]),
                  (unsigned long long)(last_pgno[3] - last_pgno[2]));
    close_store(s);
}
END_TEST

/* The paced flush pauses between runs, and not once a write is waiting. */
START_TEST(paced_flush_stops_pausing_when_a_write_waits)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_store_t *s;
    ck_assert_int_eq(sc_store_create(&s, &cfg, NULL), 0); /* no writer thread */
    uint64_t paused = 0, t0 = sc_mono_ns();
    ck_assert_int_eq(pace_pause(s, &paused), 1);
    ck_assert_uint_ge(sc_mono_ns() - t0, PACE_PAUSE_NS);
    ck_assert_uint_ge(paused, PACE_PAUSE_NS);
    sc_write_op_t op = {0};
    s->head = s->tail = &op; /* a queued write */
    paused = 0;
    ck_assert_int_eq(pace_pause(s, &paused), 0);
    ck_assert_uint_lt(paused, PACE_PAUSE_NS);
    s->head = s->tail = NULL;
    sc_store_destroy(s);
}
END_TEST

START_TEST(touch_counts_hits)
{
    sc_store_t *s = open_store("64M", "lru");
    put(s, 9, "ns", "t", "m", "1", 1000, 0);
    uint8_t key[16];
    make_key(key, 9);
    for (int i = 0; i < 5; i++)
        sc_store_touch(s, key, 2000 + (uint64_t)i);
    /* A sync op commits after pending touches are applied in its batch. */
    sync_op_t op = {0};
    op.op.type = SC_OP_SYNC;
    ck_assert_int_eq(run_op(s, &op), 0);
    sc_entry_meta_t meta;
    ck_assert_int_eq(get(s, 9, NULL, 0, &meta), 1);
    ck_assert_uint_eq(meta.hits, 5);
    ck_assert_uint_eq(meta.last_hit_ms, 2004);
    close_store(s);
}
END_TEST

/* Stores entries 0..n-1 arriving 20 s apart (more than the 10 s LRU
 * granularity, so LRU order is exact), hitting entry 0 before each store so
 * that it is always the most recently hit. */
static void put_with_hot_first_entry(sc_store_t *s, unsigned n, const char *resp)
{
    uint8_t key0[16];
    make_key(key0, 0);
    ck_assert_int_eq(put(s, 0, "ns", "t", "m", resp, 1000, 0), 0);
    for (unsigned i = 1; i < n; i++) {
        sc_store_touch(s, key0, 1000 + 20000 * (uint64_t)i);
        ck_assert_int_eq(put(s, i, "ns", "t", "m", resp, 1001 + 20000 * (uint64_t)i, 0), 0);
    }
}

START_TEST(full_store_evicts_least_recently_hit)
{
    sc_store_t *s = open_store("2M", "lru");
    char big[8192];
    memset(big, 'x', sizeof(big) - 3);
    big[0] = '"';
    big[sizeof(big) - 2] = '"';
    big[sizeof(big) - 1] = '\0';
    put_with_hot_first_entry(s, 1000, big); /* entry 0 must survive eviction */
    sc_store_stats_t st;
    sc_store_stats(s, &st);
    ck_assert_uint_gt(st.evicted_total, 0);
    ck_assert_uint_lt(st.entries, 1000);
    ck_assert_int_eq(get(s, 0, NULL, 0, NULL), 1);
    ck_assert_int_eq(get(s, 999, NULL, 0, NULL), 1);
    ck_assert_int_eq(get(s, 1, NULL, 0, NULL), 0);
    close_store(s);
}
END_TEST

START_TEST(full_store_without_eviction_refuses_cleanly)
{
    sc_store_t *s = open_store("1M", "none");
    char big[8192];
    memset(big, 'x', sizeof(big) - 3);
    big[0] = '"';
    big[sizeof(big) - 2] = '"';
    big[sizeof(big) - 1] = '\0';
    unsigned stored = 0;
    int rc = 0;
    for (unsigned i = 0; i < 1000 && rc == 0; i++) {
        rc = put(s, i, "ns", "t", "m", big, 1000, 0);
        if (rc == 0)
            stored++;
    }
    ck_assert_int_eq(rc, SC_EFULL);
    ck_assert_uint_gt(stored, 10);
    /* Everything acknowledged is still there and readable. */
    for (unsigned i = 0; i < stored; i++)
        ck_assert_int_eq(get(s, i, NULL, 0, NULL), 1);
    /* Deleting makes room again. */
    sync_op_t op = {0};
    op.op.type = SC_OP_INVALIDATE;
    op.op.all = 1;
    ck_assert_int_eq(run_op(s, &op), 0);
    ck_assert_int_eq(put(s, 5000, "ns", "t", "m", big, 1000, 0), 0);
    close_store(s);
}
END_TEST

START_TEST(entry_limit_evicts_least_recently_hit)
{
    sc_store_t *s = open_store_limited("64M", "lru", "100");
    put_with_hot_first_entry(s, 250, "\"r\""); /* entry 0 must survive eviction */
    sc_store_stats_t st;
    sc_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, 100);
    ck_assert_uint_eq(st.evicted_total, 150);
    ck_assert_int_eq(get(s, 0, NULL, 0, NULL), 1);
    ck_assert_int_eq(get(s, 249, NULL, 0, NULL), 1);
    ck_assert_int_eq(get(s, 151, NULL, 0, NULL), 1); /* the 99 newest survive */
    ck_assert_int_eq(get(s, 150, NULL, 0, NULL), 0);
    ck_assert_int_eq(get(s, 1, NULL, 0, NULL), 0);
    close_store(s);
}
END_TEST

START_TEST(entry_limit_without_eviction_refuses_new_keys)
{
    sc_store_t *s = open_store_limited("64M", "none", "10");
    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(put(s, i, "ns", "t", "m", "\"r\"", 1000, 0), 0);
    ck_assert_int_eq(put(s, 10, "ns", "t", "m", "\"r\"", 1000, 0), SC_EFULL);
    /* Replacing a stored key adds nothing, so it is allowed. */
    ck_assert_int_eq(put(s, 3, "ns", "t", "m", "\"new\"", 2000, 0), 0);
    char resp[32];
    ck_assert_int_eq(get(s, 3, resp, sizeof(resp), NULL), 1);
    ck_assert_str_eq(resp, "\"new\"");
    sync_op_t op = {0};
    op.op.type = SC_OP_DELETE;
    make_key(op.op.key, 7);
    ck_assert_int_eq(run_op(s, &op), 0);
    ck_assert_int_eq(put(s, 10, "ns", "t", "m", "\"r\"", 1000, 0), 0);
    sc_store_stats_t st;
    sc_store_stats(s, &st);
    ck_assert_uint_eq(st.entries, 10);
    ck_assert_uint_eq(st.evicted_total, 0);
    close_store(s);
}
END_TEST

/* The record size put() writes for 'ns' and 'resp'. */
static uint64_t record_len(const char *ns, const char *resp)
{
    sc_entry_t e = {.ns = {ns, strlen(ns)},
                    .tenant = {"t", 1},
                    .model = {"m", 1},
                    .text = {"text", 4},
                    .response = {resp, strlen(resp)}};
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_store_encode(&e, &b), 0);
    uint64_t n = b.len;
    sc_buf_free(&b);
    return n;
}

static void usage_of(sc_store_t *s, const char *ns, uint64_t *entries, uint64_t *bytes)
{
    sc_store_reader_t *r;
    ck_assert_int_eq(sc_store_reader_create(s, &r), 0);
    ck_assert_int_eq(sc_store_read_begin(r), 0);
    sc_store_ns_usage(r, ns, entries, bytes);
    sc_store_read_end(r);
    sc_store_reader_destroy(r);
}

static void assert_usage(sc_store_t *s, const char *ns, uint64_t entries, uint64_t bytes)
{
    uint64_t n, b;
    usage_of(s, ns, &n, &b);
    ck_assert_uint_eq(n, entries);
    ck_assert_uint_eq(b, bytes);
}

START_TEST(namespace_usage_is_counted_and_rebuilt)
{
    sc_store_t *s = open_store("64M", "lru");
    uint64_t ra = record_len("a", "\"r\""), rbig = record_len("a", "\"a longer answer\""),
             rb = record_len("bb", "\"r\"");
    for (unsigned i = 0; i < 3; i++)
        put(s, i, "a", "t", "m", "\"r\"", 1000, 0);
    put(s, 10, "bb", "t", "m", "\"r\"", 1000, 0);
    put(s, 11, "bb", "t", "m", "\"r\"", 1000, 5000);
    assert_usage(s, "a", 3, 3 * ra);
    assert_usage(s, "bb", 2, 2 * rb);
    /* A replacement counts its new size once; a delete takes it away. */
    put(s, 1, "a", "t", "m", "\"a longer answer\"", 2000, 0);
    assert_usage(s, "a", 3, 2 * ra + rbig);
    sync_op_t op = {0};
    op.op.type = SC_OP_DELETE;
    make_key(op.op.key, 0);
    ck_assert_int_eq(run_op(s, &op), 0);
    assert_usage(s, "a", 2, ra + rbig);
    /* Expiry and invalidation count too. */
    ck_assert_int_eq(sc_store_sweep_now(s, 6000), 1);
    assert_usage(s, "bb", 1, rb);
    sync_op_t inv = {0};
    inv.op.type = SC_OP_INVALIDATE;
    inv.op.ns = strdup("bb");
    ck_assert_int_eq(run_op(s, &inv), 0);
    sc_write_op_clear(&inv.op);
    assert_usage(s, "bb", 0, 0);
    /* A store from before the usage table gets it counted at open. */
    sc_store_destroy(s);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 12);
    ck_assert_int_eq(mdb_env_open(env, dir, 0, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, "nsuse", 0, &dbi), 0);
    ck_assert_int_eq(mdb_drop(txn, dbi, 1), 0);
    ck_assert_int_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    ck_assert_int_eq(sc_store_create(&s, &cfg, &quiet), 0);
    ck_assert_int_eq(sc_store_open(s, dir), 0);
    assert_usage(s, "a", 2, ra + rbig);
    close_store(s);
}
END_TEST

START_TEST(namespace_caps_evict_inside_the_namespace)
{
    sc_store_t *s = open_store("64M", "lru");
    /* "big" has no cap; "small" holds at most 5 entries. */
    for (unsigned i = 0; i < 20; i++) {
        cap_entries = 0;
        ck_assert_int_eq(put(s, 1000 + i, "big", "t", "m", "\"r\"", 1000 + 20000 * (uint64_t)i, 0),
                         0);
        cap_entries = 5;
        ck_assert_int_eq(put(s, i, "small", "t", "m", "\"r\"", 1001 + 20000 * (uint64_t)i, 0), 0);
    }
    uint64_t n, b;
    usage_of(s, "small", &n, &b);
    ck_assert_uint_eq(n, 5);
    usage_of(s, "big", &n, &b);
    ck_assert_uint_eq(n, 20); /* older, but another namespace's */
    for (unsigned i = 0; i < 20; i++)
        ck_assert_int_eq(get(s, i, NULL, 0, NULL), i >= 15);
    /* A byte cap: at most what 3 records take. */
    cap_entries = 0;
    cap_bytes = 3 * record_len("bytes", "\"r\"");
    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(
            put(s, 2000 + i, "bytes", "t", "m", "\"r\"", 1000 + 20000 * (uint64_t)i, 0), 0);
    usage_of(s, "bytes", &n, &b);
    ck_assert_uint_le(b, cap_bytes);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(get(s, 2009, NULL, 0, NULL), 1);
    /* One entry larger than the namespace's whole byte cap is refused. */
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[0] = big[sizeof(big) - 2] = '"';
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(put(s, 3000, "bytes", "t", "m", big, 1000, 0), SC_ETOOBIG);
    cap_bytes = 0;
    close_store(s);
}
END_TEST

START_TEST(namespace_caps_without_eviction_refuse)
{
    sc_store_t *s = open_store("64M", "none");
    cap_entries = 4;
    for (unsigned i = 0; i < 4; i++)
        ck_assert_int_eq(put(s, i, "n", "t", "m", "\"r\"", 1000, 0), 0);
    ck_assert_int_eq(put(s, 4, "n", "t", "m", "\"r\"", 1000, 0), SC_EFULL);
    ck_assert_int_eq(put(s, 2, "n", "t", "m", "\"new\"", 2000, 0), 0); /* replacing adds nothing */
    ck_assert_int_eq(put(s, 5, "other", "t", "m", "\"r\"", 1000, 0), 0); /* its own count */
    cap_entries = 0;
    close_store(s);
}
END_TEST

START_TEST(value_eviction_keeps_entries_that_save_tokens)
{
    sc_store_t *s = open_store_limited("64M", "value", "10");
    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(put(s, i, "ns", "t", "m", "\"r\"", 1000 + 20000 * (uint64_t)i, 0), 0);
    /* Entries 0-4 are the oldest, but they have been hit. */
    for (unsigned i = 0; i < 5; i++) {
        uint8_t key[16];
        make_key(key, i);
        for (int h = 0; h < 3; h++)
            sc_store_touch(s, key, 1500 + (uint64_t)h);
    }
    sync_op_t op = {0};
    op.op.type = SC_OP_SYNC;
    ck_assert_int_eq(run_op(s, &op), 0);
    for (unsigned i = 10; i < 15; i++)
        ck_assert_int_eq(put(s, i, "ns", "t", "m", "\"r\"", 1000 + 20000 * (uint64_t)i, 0), 0);
    /* LRU would have dropped 0-4; value drops the never-hit 5-9. */
    for (unsigned i = 0; i < 15; i++)
        ck_assert_int_eq(get(s, i, NULL, 0, NULL), i < 5 || i >= 10);
    close_store(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("store");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, record_roundtrip_and_corruption);
    tcase_add_test(tc, put_get_replace_delete);
    tcase_add_test(tc, entries_survive_reopen);
    tcase_add_test(tc, invalidate_by_filters);
    tcase_add_test(tc, sweeper_removes_only_expired_entries);
    tcase_add_test(tc, touch_counts_hits);
    tcase_add_test(tc, paced_flush_applies_every_count_and_reuses_its_pages);
    tcase_add_test(tc, paced_flush_stops_pausing_when_a_write_waits);
    tcase_add_test(tc, writer_sweeps_and_applies_hits_in_slices);
    tcase_add_test(tc, full_store_evicts_least_recently_hit);
    tcase_add_test(tc, full_store_without_eviction_refuses_cleanly);
    tcase_add_test(tc, entry_limit_evicts_least_recently_hit);
    tcase_add_test(tc, entry_limit_without_eviction_refuses_new_keys);
    tcase_add_test(tc, namespace_usage_is_counted_and_rebuilt);
    tcase_add_test(tc, namespace_caps_evict_inside_the_namespace);
    tcase_add_test(tc, namespace_caps_without_eviction_refuse);
    tcase_add_test(tc, value_eviction_keeps_entries_that_save_tokens);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
