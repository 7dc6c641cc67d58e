/* tests/cache/fleet.c -- the fleet engine (cache/fleet*.c) against a real
 * redis-server started by the test on a loopback port: stores, deletes,
 * invalidations, namespace settings and TTLs reach every node; foreign and
 * damaged stream entries are skipped and counted; concurrent writes to one
 * key end with one winner everywhere; a Redis outage loses nothing; a node
 * joining a trimmed stream copies a peer's snapshot and converges; AUTH.
 * Several stores in one process, each with its own fleet thread. Skipped
 * when redis-server is not installed. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet_helpers.h"
#include "redis_helpers.h"
#include "sc_fleet.h"
#include "sc_fleet_record.h"
#include "sc_store.h"
#include "store_helpers.h"
#include "testutil.h"

typedef struct {
    sc_store_t *s;
    sc_fleet_t *f;
    char dir[TH_DIR_CAP];
    sc_config_t cfg;
    _Atomic int ns_events;
} fnode_t;

static sc_log_t quiet;

static void on_ns(void *ctx, const char *name, size_t len, const char *doc, size_t doc_len)
{
    fnode_t *n = ctx;
    (void)name;
    (void)len;
    (void)doc;
    (void)doc_len;
    atomic_fetch_add(&n->ns_events, 1);
}

/* Configures 'n' for fleet 'fleet' on 'r' ('url' overrides the address). */
static void fnode_config(fnode_t *n, const th_redis_t *r, const char *fleet, const char *url)
{
    memset(n, 0, sizeof(*n));
    sc_log_init(&quiet, NULL, SC_ERROR);
    sc_config_defaults(&n->cfg);
    n->cfg.map_size = 64 << 20;
    n->cfg.sweep_interval_ms = 50;
    if (url)
        snprintf(n->cfg.redis, sizeof(n->cfg.redis), "%s", url);
    else
        snprintf(n->cfg.redis, sizeof(n->cfg.redis), "redis://127.0.0.1:%d", r->port);
    snprintf(n->cfg.fleet, sizeof(n->cfg.fleet), "%s", fleet);
    snprintf(n->dir, sizeof(n->dir), "/tmp/sc-fleet-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(n->dir));
}

static void fnode_start(fnode_t *n, const char *snapshot_url, int joining)
{
    sc_store_fleet_hooks_t hooks = {.on_ns = on_ns, .ctx = n};
    ck_assert_int_eq(sc_fleet_create(&n->f, &n->cfg, &quiet), 0);
    ck_assert_int_eq(sc_store_create(&n->s, &n->cfg, &quiet), 0);
    ck_assert_int_eq(sc_fleet_attach(n->f, n->s, &hooks), 0);
    ck_assert_int_eq(sc_store_open(n->s, n->dir), 0);
    ck_assert_int_eq(sc_fleet_start(n->f, snapshot_url, joining), 0);
}

static void fnode_open(fnode_t *n, const th_redis_t *r, const char *fleet)
{
    fnode_config(n, r, fleet, NULL);
    fnode_start(n, NULL, 0);
}

/* Stops 'n' as a server does: the fleet first (it publishes what it can),
 * then the writer (batches in flight complete), then the rest. */
static void fnode_stop(fnode_t *n)
{
    sc_fleet_stop(n->f, 2000);
    sc_store_stop_writer(n->s);
    sc_fleet_destroy(n->f);
    sc_store_destroy(n->s);
}

static void fnode_close(fnode_t *n)
{
    fnode_stop(n);
    th_store_remove(NULL, n->dir);
}

static int put(fnode_t *n, unsigned i, const char *ns, const char *resp, uint64_t ttl_ms)
{
    return fh_put(n->s, i, ns, resp, ttl_ms ? sc_now_ms() + ttl_ms : 0, 1);
}

static int write_op(fnode_t *n, sc_op_type_t type, const char *ns, const char *doc)
{
    return fh_write(n->s, type, 0, ns, doc);
}

static int has(fnode_t *n, unsigned i, uint32_t *dim)
{
    return fh_has(n->s, i, dim);
}

static sc_fleet_stats_t stats(fnode_t *n);

/* A Redis and two nodes of fleet 'name' on it, both connected. */
static void pair_up(th_redis_t *r, fnode_t *a, fnode_t *b, const char *name)
{
    memset(r, 0, sizeof(*r));
    th_redis_start(r);
    fnode_open(a, r, name);
    fnode_open(b, r, name);
    ASSERT_SOON(stats(a).connected && stats(b).connected, 5000);
}

static void pair_down(th_redis_t *r, fnode_t *a, fnode_t *b)
{
    fnode_close(a);
    fnode_close(b);
    th_redis_destroy(r);
}

static sc_fleet_stats_t stats(fnode_t *n)
{
    sc_fleet_stats_t st;
    sc_fleet_stats(n->f, &st);
    return st;
}

static uint64_t sum_of(fnode_t *n, uint64_t *entries)
{
    uint64_t e, s;
    ck_assert_int_eq(sc_store_fleet_checksum(n->s, sc_now_ms(), &e, &s), 0);
    if (entries)
        *entries = e;
    return s;
}

/* Both nodes hold the same entries at the same versions, with nothing left
 * to publish. */
static int converged(fnode_t *a, fnode_t *b, uint64_t want_entries)
{
    uint64_t ea, eb;
    uint64_t sa = sum_of(a, &ea), sb = sum_of(b, &eb);
    return sa == sb && ea == want_entries && eb == want_entries && !stats(a).store.outbox_depth &&
           !stats(b).store.outbox_depth;
}

START_TEST(changes_reach_every_node)
{
    th_redis_t r = {0};
    th_redis_start(&r);
    fnode_t a, b, c;
    fnode_open(&a, &r, "three");
    fnode_open(&b, &r, "three");
    fnode_open(&c, &r, "three");
    ASSERT_SOON(stats(&a).connected && stats(&b).connected && stats(&c).connected, 5000);
    ck_assert_int_eq(put(&a, 1, "ns", "\"one\"", 0), 0);
    long took;
    WAIT_UNTIL(took, has(&b, 1, NULL) && has(&c, 1, NULL), 5000);
    ck_assert_int_ge(took, 0);
    fprintf(stderr, "fleet: a store on A reached B and C in %ld ms\n", took);
    ck_assert_int_le(took, 1000);
    uint32_t dim = 0;
    ck_assert(has(&c, 1, &dim));
    ck_assert_uint_eq(dim, 3); /* the vector travels: C does not embed again */
    /* An invalidation on C removes it everywhere. */
    ck_assert_int_eq(write_op(&c, SC_OP_INVALIDATE, "ns", NULL), 0);
    ASSERT_SOON(!has(&a, 1, NULL) && !has(&b, 1, NULL), 5000);
    /* Namespace settings made on A apply on B. */
    ck_assert_int_eq(write_op(&a, SC_OP_NS_PUT, "ns2", "{\"threshold\":0.8}"), 0);
    ASSERT_SOON(atomic_load(&b.ns_events) == 1 && atomic_load(&c.ns_events) == 1, 5000);
    /* TTLs expire on every node. */
    ck_assert_int_eq(put(&b, 2, "ns", "\"two\"", 400), 0);
    ASSERT_SOON(has(&a, 2, NULL) && has(&c, 2, NULL), 5000);
    ASSERT_SOON(!has(&a, 2, NULL) && !has(&b, 2, NULL) && !has(&c, 2, NULL), 5000);
    sc_fleet_stats_t st = stats(&b);
    ck_assert_uint_ge(st.store.applied, 3);
    ck_assert_uint_ge(st.published, 1);
    ck_assert_uint_ge(st.batches, 1);
    ck_assert_uint_eq(st.malformed, 0);
    ck_assert(st.ready);
    fnode_close(&a);
    fnode_close(&b);
    fnode_close(&c);
    th_redis_destroy(&r);
}
END_TEST

START_TEST(foreign_entries_are_skipped_and_counted)
{
    th_redis_t r;
    fnode_t a, b;
    pair_up(&r, &a, &b, "bad");
    redisContext *rc = th_redis_conn(&r);
    ck_assert_ptr_nonnull(rc);
    const char *key = "semcached:{bad}:stream";
    freeReplyObject(redisCommand(rc, "XADD %s * x y", key));
    freeReplyObject(redisCommand(rc, "XADD %s * r %b", key, "garbage", (size_t)7));
    /* A well-formed record with a field too many, and one whose lengths lie. */
    sc_buf_t rec = {0}, entry = {0};
    sc_entry_t e = {.created_ms = 1, .ns = {"ns", 2}, .response = {"1", 1}};
    sc_store_encode(&e, &entry);
    sc_frec_t fr = {.type = SC_FREC_PUT,
                    .origin = 99,
                    .hlc = sc_now_ms() << 16,
                    .payload = {entry.data, entry.len}};
    fh_key(fr.key, 50);
    ck_assert_int_eq(sc_frec_encode(&fr, &rec), 0);
    freeReplyObject(redisCommand(rc, "XADD %s * r %b extra 1", key, rec.data, rec.len));
    rec.data[72] ^= 1;
    freeReplyObject(redisCommand(rc, "XADD %s * r %b", key, rec.data, rec.len));
    /* Well-formed, but what it stores is not an entry record. */
    sc_frec_t junk = {.type = SC_FREC_PUT,
                      .origin = 99,
                      .hlc = sc_now_ms() << 16,
                      .payload = {"not an entry", 12}};
    fh_key(junk.key, 51);
    sc_buf_t jrec = {0};
    ck_assert_int_eq(sc_frec_encode(&junk, &jrec), 0);
    freeReplyObject(redisCommand(rc, "XADD %s * r %b", key, jrec.data, jrec.len));
    sc_buf_free(&jrec);
    redisFree(rc);
    ck_assert_int_eq(put(&a, 3, "ns", "\"after\"", 0), 0);
    ASSERT_SOON(has(&b, 3, NULL), 5000);
    ck_assert(!has(&b, 50, NULL) && !has(&b, 51, NULL));
    ck_assert_uint_eq(stats(&b).malformed, 5);
    ck_assert_uint_eq(stats(&a).malformed, 5);
    sc_buf_free(&rec);
    sc_buf_free(&entry);
    pair_down(&r, &a, &b);
}
END_TEST

START_TEST(concurrent_writes_to_one_key_end_with_one_winner)
{
    th_redis_t r;
    fnode_t a, b;
    pair_up(&r, &a, &b, "race");
    for (int i = 0; i < 30; i++) {
        char v[16];
        snprintf(v, sizeof(v), "\"a%d\"", i);
        ck_assert_int_eq(put(&a, 7, "ns", v, 0), 0);
        snprintf(v, sizeof(v), "\"b%d\"", i);
        ck_assert_int_eq(put(&b, 7, "ns", v, 0), 0);
    }
    ASSERT_SOON(converged(&a, &b, 1), 10000);
    ck_assert_uint_gt(stats(&a).store.conflicts + stats(&b).store.conflicts, 0);
    pair_down(&r, &a, &b);
}
END_TEST

START_TEST(a_redis_outage_loses_nothing)
{
    th_redis_t r;
    fnode_t a, b;
    pair_up(&r, &a, &b, "outage");
    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(put(&a, i, "ns", "\"x\"", 0), 0);
    th_redis_stop(&r);
    for (unsigned i = 10; i < 30; i++) /* served and stored locally meanwhile */
        ck_assert_int_eq(put(i % 2 ? &a : &b, i, "ns", "\"y\"", 0), 0);
    ASSERT_SOON(!stats(&a).connected && !stats(&b).connected, 5000);
    ck_assert_uint_ge(stats(&a).store.outbox_depth + stats(&b).store.outbox_depth, 20);
    th_sleep_ms(1500);
    th_redis_restart(&r);
    long took;
    WAIT_UNTIL(took, converged(&a, &b, 30), 15000);
    ck_assert_int_ge(took, 0);
    fprintf(stderr, "fleet: converged %ld ms after Redis came back\n", took);
    for (unsigned i = 0; i < 30; i++)
        ck_assert(has(&a, i, NULL) && has(&b, i, NULL));
    ck_assert_uint_ge(stats(&a).reconnects, 4);
    pair_down(&r, &a, &b);
}
END_TEST

START_TEST(a_node_joining_a_trimmed_stream_copies_a_snapshot)
{
    th_redis_t r = {0};
    th_redis_start(&r);
    fnode_t a, d;
    char snap_dir[] = "/tmp/sc-fleet-snap-XXXXXX", snap[96], url[128];
    ck_assert_ptr_nonnull(mkdtemp(snap_dir));
    snprintf(snap, sizeof(snap), "%s/data.mdb", snap_dir);
    snprintf(url, sizeof(url), "file://%s", snap);
    fnode_config(&a, &r, "join", NULL);
    a.cfg.fleet_retention = 20;
    fnode_start(&a, url, 0);
    for (unsigned i = 0; i < 150; i++)
        ck_assert_int_eq(put(&a, i, "ns", "\"v\"", 0), 0);
    /* A has read its own records back (its position passed the trimmed part). */
    ASSERT_SOON(stats(&a).store.own == 150 && stats(&a).store.outbox_depth == 0, 10000);
    redisContext *rc = th_redis_conn(&r);
    redisReply *len = redisCommand(rc, "XLEN semcached:{join}:stream");
    ck_assert_int_lt(len->integer, 150);
    freeReplyObject(len);
    redisFree(rc);
    /* A serves its snapshot (here as a file; the server streams it over HTTP). */
    FILE *out = fopen(snap, "wb");
    ck_assert_int_eq(sc_store_snapshot_copy(a.s, fileno(out)), 0);
    uint8_t trailer[SC_FLEET_SNAPSHOT_TRAILER];
    sc_fleet_snapshot_trailer((uint64_t)lseek(fileno(out), 0, SEEK_END), trailer);
    ck_assert_int_eq(write(fileno(out), trailer, sizeof(trailer)), (int)sizeof(trailer));
    fclose(out);
    fnode_config(&d, &r, "join", NULL);
    int installed = 0;
    /* A's registry row is written by its heartbeat (every second). */
    th_sleep_ms(1200);
    ck_assert_int_eq(sc_fleet_bootstrap(&d.cfg, &quiet, d.dir, NULL, &installed), 0);
    ck_assert_int_eq(installed, 1);
    fnode_start(&d, NULL, 1);
    ck_assert_uint_ne(sc_store_fleet_node(d.s), sc_store_fleet_node(a.s));
    ASSERT_SOON(sc_fleet_ready(d.f), 5000);
    for (unsigned i = 150; i < 155; i++)
        ck_assert_int_eq(put(&a, i, "ns", "\"w\"", 0), 0);
    ASSERT_SOON(converged(&a, &d, 155), 10000);
    /* Restarted, D is past the trimmed part: it keeps what it has. */
    fnode_stop(&d);
    ck_assert_int_eq(sc_fleet_bootstrap(&d.cfg, &quiet, d.dir, NULL, &installed), 0);
    ck_assert_int_eq(installed, 0);
    th_store_remove(NULL, d.dir);
    fnode_close(&a);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", snap_dir);
    ck_assert_int_eq(system(cmd), 0);
    th_redis_destroy(&r);
}
END_TEST

START_TEST(auth_is_required_and_used)
{
    th_redis_t r = {.password = "s3cret"};
    th_redis_start(&r);
    fnode_t good, bad;
    char url[128];
    snprintf(url, sizeof(url), "redis://:s3cret@127.0.0.1:%d/2", r.port);
    fnode_config(&good, &r, "auth", url);
    fnode_start(&good, NULL, 0);
    snprintf(url, sizeof(url), "redis://default:wrong@127.0.0.1:%d", r.port);
    fnode_config(&bad, &r, "auth", url);
    fnode_start(&bad, NULL, 0);
    ASSERT_SOON(stats(&good).connected, 5000);
    ck_assert_int_eq(put(&good, 1, "ns", "\"v\"", 0), 0);
    ck_assert_int_eq(put(&bad, 2, "ns", "\"v\"", 0), 0); /* stored locally all the same */
    ASSERT_SOON(stats(&good).published == 1, 5000);
    th_sleep_ms(300);
    ck_assert(!stats(&bad).connected);
    ck_assert_uint_eq(stats(&bad).store.outbox_depth, 1);
    redisContext *rc = th_redis_conn(&r);
    redisReply *sel = redisCommand(rc, "SELECT 2");
    freeReplyObject(sel);
    redisReply *len = redisCommand(rc, "XLEN semcached:{auth}:stream");
    ck_assert_int_eq(len->integer, 1); /* in database 2, as the URL said */
    freeReplyObject(len);
    redisFree(rc);
    fnode_close(&good);
    fnode_close(&bad);
    th_redis_destroy(&r);
}
END_TEST

START_TEST(redis_addresses_parse)
{
    sc_redis_addr_t a;
    char err[256];
    ck_assert_int_eq(sc_redis_addr_parse("redis://u:p@w@h.example:6380/3", &a, err, sizeof(err)),
                     0);
    ck_assert_str_eq(a.user, "u");
    ck_assert_str_eq(a.password, "p@w");
    ck_assert_str_eq(a.host, "h.example");
    ck_assert_int_eq(a.port, 6380);
    ck_assert_int_eq(a.db, 3);
    ck_assert_int_eq(sc_redis_addr_parse("redis://:pw@127.0.0.1", &a, err, sizeof(err)), 0);
    ck_assert_str_eq(a.user, "");
    ck_assert_str_eq(a.password, "pw");
    ck_assert_int_eq(a.port, 6379);
    ck_assert_int_eq(sc_redis_addr_parse("redis://[::1]:7000", &a, err, sizeof(err)), 0);
    ck_assert_str_eq(a.host, "::1");
    ck_assert_int_eq(a.port, 7000);
    ck_assert_int_eq(sc_redis_addr_parse("/run/redis.sock", &a, err, sizeof(err)), 0);
    ck_assert_str_eq(a.unix_path, "/run/redis.sock");
    ck_assert_int_eq(sc_redis_addr_parse("unix:///run/r.sock?db=4", &a, err, sizeof(err)), 0);
    ck_assert_str_eq(a.unix_path, "/run/r.sock");
    ck_assert_int_eq(a.db, 4);
    const char *bad[] = {"http://x",      "redis://",     "redis://h:0",  "redis://h:99999",
                         "redis://h:12x", "redis://h/db", "redis://[::1", "unix://"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(sc_redis_addr_parse(bad[i], &a, err, sizeof(err)), SC_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--redis"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fleet");
    TCase *tc = tcase_create("fleet");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, redis_addresses_parse);
    if (th_redis_binary()) {
        tcase_add_test(tc, changes_reach_every_node);
        tcase_add_test(tc, foreign_entries_are_skipped_and_counted);
        tcase_add_test(tc, concurrent_writes_to_one_key_end_with_one_winner);
        tcase_add_test(tc, a_redis_outage_loses_nothing);
        tcase_add_test(tc, a_node_joining_a_trimmed_stream_copies_a_snapshot);
        tcase_add_test(tc, auth_is_required_and_used);
    } else {
        tu_skip("fleet tests with Redis: redis-server is not installed (make deps-test)");
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
