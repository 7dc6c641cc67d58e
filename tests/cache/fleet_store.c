/* tests/cache/fleet_store.c -- fleet mode in the store (cache/store_fleet*.c),
 * with no Redis: records are carried from one store's outbox to another's
 * SC_OP_FLEET_APPLY by hand. Local changes of every kind are recorded in
 * the same commit; a batch applies once and in order; newest wins per key;
 * tombstones stop late stores; the outbox bound drops the oldest records;
 * a peer's vector made by another embedder is kept exact-only; snapshots
 * adopt a new identity; state survives a reopen. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet_helpers.h"
#include "sc_fleet_record.h"
#include "sc_store.h"
#include "store_helpers.h"
#include "testutil.h"

typedef struct {
    sc_store_t *s;
    char dir[TH_DIR_CAP];
    char embedder[32];
    int ns_events;  /* on_ns calls */
    int ns_deleted; /* of which deletes */
    char last_doc[128];
} node_t;

static sc_log_t quiet;

static void on_ns(void *ctx, const char *name, size_t len, const char *doc, size_t doc_len)
{
    node_t *n = ctx;
    (void)name;
    (void)len;
    n->ns_events++;
    n->ns_deleted += doc == NULL;
    snprintf(n->last_doc, sizeof(n->last_doc), "%.*s", (int)doc_len, doc ? doc : "");
}

static void embedder_of(void *ctx, sc_slice_t ns, char *out, size_t cap)
{
    node_t *n = ctx;
    (void)ns;
    snprintf(out, cap, "%s", n->embedder);
}

static sc_store_fleet_opts_t opts = {
    .outbox_max = 0, .tombstone_ms = 3600000, .max_skew_ms = 60000};

static void node_open_in(node_t *n)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.map_size = 64 << 20;
    cfg.sweep_interval_ms = 3600000;
    sc_store_fleet_hooks_t hooks = {.on_ns = on_ns, .embedder_of = embedder_of, .ctx = n};
    ck_assert_int_eq(sc_store_create(&n->s, &cfg, &quiet), 0);
    ck_assert_int_eq(sc_store_fleet_enable(n->s, &opts, &hooks), 0);
    ck_assert_int_eq(sc_store_open(n->s, n->dir), 0);
}

static void node_open(node_t *n)
{
    sc_log_init(&quiet, NULL, SC_ERROR);
    memset(n, 0, sizeof(*n));
    snprintf(n->dir, sizeof(n->dir), "/tmp/sc-fleet-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(n->dir));
    node_open_in(n);
}

static void node_close(node_t *n)
{
    th_store_remove(n->s, n->dir);
}

static int put(node_t *n, unsigned i, const char *ns, uint64_t expires, int with_vec)
{
    return fh_put(n->s, i, ns, "\"a\"", expires, with_vec);
}

static int simple(node_t *n, sc_op_type_t type, unsigned i, const char *ns, const char *doc)
{
    return fh_write(n->s, type, i, ns, doc);
}

static int has(node_t *n, unsigned i, uint32_t *dim)
{
    return fh_has(n->s, i, dim);
}

typedef struct {
    sc_buf_t batch;
    uint64_t last_seq;
    size_t n;
} outbox_t;

static int collect(void *ctx, uint64_t seq, const void *rec, size_t len)
{
    outbox_t *o = ctx;
    ck_assert_int_eq(sc_store_fleet_batch_add(&o->batch, rec, len), 0);
    o->last_seq = seq;
    o->n++;
    return 0;
}

/* Applies 'batch' to 'to' as the next stream entry; returns op.result. */
static int apply(node_t *to, const sc_buf_t *batch, uint64_t *count)
{
    sc_stream_id_t cur;
    ck_assert_int_eq(sc_store_fleet_applied(to->s, &cur), 0);
    sc_write_op_t op = {.type = SC_OP_FLEET_APPLY};
    uint8_t from[16], next[16];
    for (int i = 0; i < 8; i++) {
        from[i] = (uint8_t)(cur.ms >> (56 - 8 * i));
        from[8 + i] = (uint8_t)(cur.seq >> (56 - 8 * i));
        next[i] = (uint8_t)((cur.ms + 1) >> (56 - 8 * i));
        next[8 + i] = 0;
    }
    memcpy(op.key, next, 16);
    memcpy(op.key2, from, 16);
    sc_buf_append(&op.record, batch->data, batch->len);
    int rc = th_store_write(to->s, &op);
    if (count)
        *count = op.count;
    sc_write_op_clear(&op);
    return rc;
}

/* Moves everything in 'from''s outbox to 'a' (and 'b', may be NULL), then
 * acknowledges it. Returns how many records moved. */
static size_t ship(node_t *from, node_t *a, node_t *b)
{
    outbox_t o = {0};
    ck_assert_int_eq(sc_store_fleet_outbox_read(from->s, 0, 100000, collect, &o), 0);
    if (o.n) {
        ck_assert_int_eq(apply(a, &o.batch, NULL), 0);
        if (b)
            ck_assert_int_eq(apply(b, &o.batch, NULL), 0);
        sc_write_op_t ack = {.type = SC_OP_FLEET_ACK, .count = o.last_seq};
        ck_assert_int_eq(th_store_write(from->s, &ack), 0);
    }
    sc_buf_free(&o.batch);
    return o.n;
}

static void checksum(node_t *n, uint64_t *entries, uint64_t *sum)
{
    ck_assert_int_eq(sc_store_fleet_checksum(n->s, sc_now_ms(), entries, sum), 0);
}

static sc_store_fleet_stats_t stats(node_t *n)
{
    sc_store_fleet_stats_t st;
    ck_assert_int_eq(sc_store_fleet_stats(n->s, &st), 0);
    return st;
}

typedef struct {
    int types[16];
    uint64_t hlc[16];
    uint64_t origin;
    size_t n;
} seen_t;

static int decode_each(void *ctx, uint64_t seq, const void *rec, size_t len)
{
    seen_t *s = ctx;
    sc_frec_t r;
    (void)seq;
    ck_assert_int_eq(sc_frec_decode(rec, len, &r), 0);
    ck_assert_uint_lt(s->n, 16);
    s->types[s->n] = r.type;
    s->hlc[s->n] = r.hlc;
    s->origin = r.origin;
    s->n++;
    return 0;
}

START_TEST(every_local_change_is_recorded_in_its_commit)
{
    node_t a;
    node_open(&a);
    ck_assert_uint_ne(sc_store_fleet_node(a.s), 0);
    ck_assert_int_eq(put(&a, 1, "ns", 0, 1), 0);
    ck_assert_int_eq(simple(&a, SC_OP_DELETE, 1, NULL, NULL), 0);
    ck_assert_int_eq(simple(&a, SC_OP_INVALIDATE, 0, "ns", NULL), 0);
    ck_assert_int_eq(simple(&a, SC_OP_NS_PUT, 0, "ns", "{\"threshold\":0.9}"), 0);
    ck_assert_int_eq(simple(&a, SC_OP_NS_DELETE, 0, "ns", NULL), 0);
    ck_assert_int_eq(simple(&a, SC_OP_VALIDATION, 5, NULL, "{\"v\":1}"), 0);
    ck_assert_int_eq(simple(&a, SC_OP_NEGATIVE, 6, NULL, NULL), 0);
    ck_assert_int_eq(simple(&a, SC_OP_SYNC, 0, NULL, NULL), 0);
    seen_t seen = {0};
    ck_assert_int_eq(sc_store_fleet_outbox_read(a.s, 0, 100, decode_each, &seen), 0);
    ck_assert_uint_eq(seen.n, 7); /* the sync changed nothing */
    int want[] = {SC_FREC_PUT,       SC_FREC_DELETE,     SC_FREC_INVALIDATE, SC_FREC_NS_PUT,
                  SC_FREC_NS_DELETE, SC_FREC_VALIDATION, SC_FREC_NEGATIVE};
    for (size_t i = 0; i < 7; i++) {
        ck_assert_int_eq(seen.types[i], want[i]);
        if (i)
            ck_assert_uint_gt(seen.hlc[i], seen.hlc[i - 1]);
    }
    ck_assert_uint_eq(seen.origin, sc_store_fleet_node(a.s));
    ck_assert_uint_le(SC_HLC_MS(seen.hlc[6]), sc_now_ms());
    sc_store_fleet_stats_t st = stats(&a);
    ck_assert_uint_eq(st.outbox_depth, 7);
    ck_assert_uint_eq(st.recorded, 7);
    ck_assert_uint_eq(st.tombstones, 1);
    /* Reading after a sequence, and acknowledging up to one. */
    seen_t tail = {0};
    ck_assert_int_eq(sc_store_fleet_outbox_read(a.s, 5, 100, decode_each, &tail), 0);
    ck_assert_uint_eq(tail.n, 2);
    sc_write_op_t ack = {.type = SC_OP_FLEET_ACK, .count = 4};
    ck_assert_int_eq(th_store_write(a.s, &ack), 0);
    ck_assert_uint_eq(stats(&a).outbox_depth, 3);
    node_close(&a);
}
END_TEST

START_TEST(a_batch_applies_once_and_in_order)
{
    node_t a, b;
    node_open(&a);
    node_open(&b);
    for (unsigned i = 0; i < 10; i++)
        ck_assert_int_eq(put(&a, i, "ns", 0, 1), 0);
    outbox_t o = {0};
    ck_assert_int_eq(sc_store_fleet_outbox_read(a.s, 0, 1000, collect, &o), 0);
    ck_assert_uint_eq(o.n, 10);
    uint64_t count = 0;
    ck_assert_int_eq(apply(&b, &o.batch, &count), 0);
    ck_assert_uint_eq(count, 10);
    for (unsigned i = 0; i < 10; i++)
        ck_assert(has(&b, i, NULL));
    sc_stream_id_t id;
    ck_assert_int_eq(sc_store_fleet_applied(b.s, &id), 0);
    ck_assert_uint_eq(id.ms, 1);
    /* The same batch again after the same ID: refused whole. */
    sc_write_op_t again = {.type = SC_OP_FLEET_APPLY};
    memset(again.key, 0, 16);
    again.key[7] = 1;
    sc_buf_append(&again.record, o.batch.data, o.batch.len);
    ck_assert_int_eq(th_store_write(b.s, &again), SC_ECONFLICT);
    sc_write_op_clear(&again);
    /* Read again under a later ID (a record published twice): duplicates. */
    ck_assert_int_eq(apply(&b, &o.batch, NULL), 0);
    sc_store_fleet_stats_t st = stats(&b);
    ck_assert_uint_eq(st.applied, 10);
    ck_assert_uint_eq(st.duplicates, 10);
    ck_assert_uint_eq(st.outbox_depth, 0); /* peers' changes are not republished */
    /* A's own records come back to it: skipped. */
    ck_assert_int_eq(apply(&a, &o.batch, NULL), 0);
    ck_assert_uint_eq(stats(&a).own, 10);
    uint64_t na, sa, nb, sb;
    checksum(&a, &na, &sa);
    checksum(&b, &nb, &sb);
    ck_assert_uint_eq(na, 10);
    ck_assert_uint_eq(nb, 10);
    ck_assert_uint_eq(sa, sb);
    sc_buf_free(&o.batch);
    node_close(&a);
    node_close(&b);
}
END_TEST

START_TEST(newest_write_wins_on_every_node)
{
    node_t a, b;
    node_open(&a);
    node_open(&b);
    ck_assert_int_eq(put(&a, 7, "ns", 0, 0), 0);
    usleep(2000);
    ck_assert_int_eq(put(&b, 7, "other", 0, 0), 0); /* later: it wins */
    ck_assert_uint_eq(ship(&a, &b, NULL), 1);
    ck_assert_uint_eq(ship(&b, &a, NULL), 1);
    uint64_t na, sa, nb, sb;
    checksum(&a, &na, &sa);
    checksum(&b, &nb, &sb);
    ck_assert_uint_eq(na, 1);
    ck_assert_uint_eq(sa, sb);
    ck_assert_uint_eq(stats(&b).conflicts, 1);
    ck_assert_uint_eq(stats(&a).applied, 1);
    node_close(&a);
    node_close(&b);
}
END_TEST

START_TEST(tombstones_stop_late_stores)
{
    node_t a, b;
    node_open(&a);
    node_open(&b);
    /* A stores 1; B, not having seen it, deletes 1 later. */
    ck_assert_int_eq(put(&a, 1, "ns", 0, 0), 0);
    usleep(2000);
    ck_assert_int_eq(simple(&b, SC_OP_DELETE, 1, NULL, NULL), 0);
    ship(&b, &a, NULL);
    ck_assert(!has(&a, 1, NULL));
    ship(&a, &b, NULL); /* the older store arrives late: refused */
    ck_assert(!has(&b, 1, NULL));
    ck_assert_uint_eq(stats(&b).conflicts, 1);
    /* A store of namespace "x" that an invalidation of "x" overtakes. */
    ck_assert_int_eq(put(&a, 2, "x", 0, 0), 0);
    ck_assert_int_eq(put(&a, 3, "y", 0, 0), 0);
    usleep(2000);
    ck_assert_int_eq(simple(&b, SC_OP_INVALIDATE, 0, "x", NULL), 0);
    ship(&b, &a, NULL);
    ck_assert(!has(&a, 2, NULL));
    ck_assert(has(&a, 3, NULL));
    ship(&a, &b, NULL);
    ck_assert(!has(&b, 2, NULL));
    ck_assert(has(&b, 3, NULL));
    /* Stored again after the invalidation: it stays. */
    ck_assert_int_eq(put(&a, 2, "x", 0, 0), 0);
    ship(&a, &b, NULL);
    ck_assert(has(&b, 2, NULL));
    /* A delete older than the entry a node holds does not remove it. */
    ck_assert_int_eq(simple(&b, SC_OP_DELETE, 3, NULL, NULL), 0);
    usleep(2000);
    ck_assert_int_eq(put(&a, 3, "y", 0, 0), 0);
    ship(&b, &a, NULL);
    ck_assert(has(&a, 3, NULL));
    ship(&a, &b, NULL);
    ck_assert(has(&b, 3, NULL));
    uint64_t na, sa, nb, sb;
    checksum(&a, &na, &sa);
    checksum(&b, &nb, &sb);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_eq(sa, sb);
    node_close(&a);
    node_close(&b);
}
END_TEST

START_TEST(namespace_changes_reach_the_hooks)
{
    node_t a, b;
    node_open(&a);
    node_open(&b);
    ck_assert_int_eq(simple(&a, SC_OP_NS_PUT, 0, "n1", "{\"threshold\":0.8}"), 0);
    ck_assert_int_eq(put(&a, 4, "n1", 0, 0), 0);
    ship(&a, &b, NULL);
    ck_assert_int_eq(b.ns_events, 1);
    ck_assert_str_eq(b.last_doc, "{\"threshold\":0.8}");
    ck_assert_int_eq(a.ns_events, 0); /* local changes are the caller's */
    sc_store_reader_t *r;
    ck_assert_int_eq(sc_store_reader_create(b.s, &r), 0);
    ck_assert_int_eq(sc_store_read_begin(r), 0);
    sc_buf_t doc = {0};
    ck_assert_int_eq(sc_store_ns_get(r, "n1", &doc), 0);
    ck_assert_str_eq(doc.data, "{\"threshold\":0.8}");
    sc_store_read_end(r);
    sc_store_reader_destroy(r);
    sc_buf_free(&doc);
    ck_assert_int_eq(simple(&a, SC_OP_NS_DELETE, 0, "n1", NULL), 0);
    ship(&a, &b, NULL);
    ck_assert_int_eq(b.ns_events, 2);
    ck_assert_int_eq(b.ns_deleted, 1);
    ck_assert(!has(&b, 4, NULL));
    node_close(&a);
    node_close(&b);
}
END_TEST

START_TEST(the_outbox_bound_drops_the_oldest_records)
{
    node_t a, b;
    opts.outbox_max = 3;
    node_open(&a);
    opts.outbox_max = 0;
    node_open(&b);
    for (unsigned i = 0; i < 5; i++)
        ck_assert_int_eq(put(&a, i, "ns", 0, 0), 0);
    sc_store_fleet_stats_t st = stats(&a);
    ck_assert_uint_eq(st.outbox_depth, 3);
    ck_assert_uint_eq(st.outbox_dropped, 2);
    for (unsigned i = 0; i < 5; i++)
        ck_assert(has(&a, i, NULL)); /* the local data stays */
    ship(&a, &b, NULL);
    ck_assert(!has(&b, 0, NULL));
    ck_assert(!has(&b, 1, NULL));
    ck_assert(has(&b, 4, NULL));
    node_close(&a);
    node_close(&b);
}
END_TEST

START_TEST(another_embedders_vectors_are_kept_exact_only)
{
    node_t a, b, c;
    node_open(&a);
    node_open(&b);
    node_open(&c);
    strcpy(a.embedder, "glove-100d");
    strcpy(b.embedder, "minilm");
    strcpy(c.embedder, "glove-100d");
    ck_assert_int_eq(put(&a, 1, "ns", 0, 1), 0);
    ship(&a, &b, &c);
    uint32_t dim = 99;
    ck_assert(has(&b, 1, &dim));
    ck_assert_uint_eq(dim, 0);
    ck_assert_uint_eq(stats(&b).vectors_dropped, 1);
    ck_assert(has(&c, 1, &dim));
    ck_assert_uint_eq(dim, 3);
    ck_assert_uint_eq(stats(&c).vectors_dropped, 0);
    node_close(&a);
    node_close(&b);
    node_close(&c);
}
END_TEST

START_TEST(expired_skewed_and_own_records_are_skipped)
{
    node_t a, b;
    node_open(&a);
    node_open(&b);
    ck_assert_int_eq(put(&a, 1, "ns", sc_now_ms() + 50, 0), 0);
    usleep(100000);
    ship(&a, &b, NULL);
    ck_assert(!has(&b, 1, NULL));
    ck_assert_uint_eq(stats(&b).refused, 1);
    /* A record from a clock an hour ahead. */
    sc_buf_t entry = {0}, batch = {0}, rec = {0};
    sc_entry_t e = {.created_ms = 1, .ns = {"ns", 2}, .response = {"1", 1}};
    ck_assert_int_eq(sc_store_encode(&e, &entry), 0);
    sc_frec_t r = {.type = SC_FREC_PUT,
                   .origin = 77,
                   .hlc = (sc_now_ms() + 3600000) << 16,
                   .payload = {entry.data, entry.len}};
    fh_key(r.key, 2);
    ck_assert_int_eq(sc_frec_encode(&r, &rec), 0);
    sc_store_fleet_batch_add(&batch, rec.data, rec.len);
    ck_assert_int_eq(apply(&b, &batch, NULL), 0);
    ck_assert(!has(&b, 2, NULL));
    ck_assert_uint_eq(stats(&b).skewed, 1);
    sc_buf_free(&entry);
    sc_buf_free(&batch);
    sc_buf_free(&rec);
    node_close(&a);
    node_close(&b);
}
END_TEST

START_TEST(old_tombstones_are_forgotten)
{
    node_t a;
    opts.tombstone_ms = 100;
    node_open(&a);
    opts.tombstone_ms = 3600000;
    ck_assert_int_eq(simple(&a, SC_OP_DELETE, 1, NULL, NULL), 0);
    ck_assert_int_eq(simple(&a, SC_OP_INVALIDATE, 0, NULL, NULL), 0);
    ck_assert_uint_eq(stats(&a).tombstones, 1);
    /* The writer looks every 50 ms; a write wakes it. */
    for (int i = 0; i < 50 && stats(&a).tombstones; i++) {
        usleep(50000);
        simple(&a, SC_OP_SYNC, 0, NULL, NULL);
    }
    ck_assert_uint_eq(stats(&a).tombstones, 0);
    node_close(&a);
}
END_TEST

START_TEST(snapshots_and_reopens_keep_the_right_state)
{
    node_t a, b;
    node_open(&a);
    node_open(&b);
    for (unsigned i = 0; i < 20; i++)
        ck_assert_int_eq(put(&a, i, "ns", 0, 1), 0);
    ship(&a, &b, NULL);
    ck_assert_int_eq(put(&b, 100, "ns", 0, 0), 0); /* unpublished: stays B's */
    uint64_t node_b = sc_store_fleet_node(b.s);
    sc_stream_id_t applied_b;
    sc_store_fleet_applied(b.s, &applied_b);
    /* A compacted copy of B, installed in a new directory. */
    node_t c;
    memset(&c, 0, sizeof(c));
    snprintf(c.dir, sizeof(c.dir), "/tmp/sc-fleet-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(c.dir));
    char path[TH_DIR_CAP + 16];
    snprintf(path, sizeof(path), "%s/data.mdb", c.dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(sc_store_snapshot_copy(b.s, fileno(f)), 0);
    fclose(f);
    sc_stream_id_t applied_c;
    ck_assert_int_eq(sc_store_fleet_adopt(c.dir, &applied_c), 0);
    ck_assert_uint_eq(applied_c.ms, applied_b.ms);
    node_open_in(&c);
    ck_assert_uint_ne(sc_store_fleet_node(c.s), node_b);
    ck_assert_uint_eq(stats(&c).outbox_depth, 0);
    ck_assert(has(&c, 19, NULL));
    ck_assert(has(&c, 100, NULL));
    uint64_t nb, sb, nc, sc;
    checksum(&b, &nb, &sb);
    checksum(&c, &nc, &sc);
    ck_assert_uint_eq(nb, 21);
    ck_assert_uint_eq(sb, sc);
    /* A reopened store keeps its id, clock, outbox and applied ID. */
    sc_store_destroy(b.s);
    node_open_in(&b);
    ck_assert_uint_eq(sc_store_fleet_node(b.s), node_b);
    sc_stream_id_t again;
    sc_store_fleet_applied(b.s, &again);
    ck_assert_uint_eq(again.ms, applied_b.ms);
    ck_assert_uint_eq(stats(&b).outbox_depth, 1);
    /* A directory that is no fleet store is refused. */
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    cfg.map_size = 16 << 20;
    char plain_dir[TH_DIR_CAP];
    sc_store_t *plain = th_store_open(&cfg, plain_dir);
    sc_store_destroy(plain);
    ck_assert_int_eq(sc_store_fleet_adopt(plain_dir, &again), SC_ECORRUPT);
    th_store_remove(NULL, plain_dir);
    node_close(&a);
    node_close(&b);
    node_close(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fleet_store");
    TCase *tc = tcase_create("fleet_store");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, every_local_change_is_recorded_in_its_commit);
    tcase_add_test(tc, a_batch_applies_once_and_in_order);
    tcase_add_test(tc, newest_write_wins_on_every_node);
    tcase_add_test(tc, tombstones_stop_late_stores);
    tcase_add_test(tc, namespace_changes_reach_the_hooks);
    tcase_add_test(tc, the_outbox_bound_drops_the_oldest_records);
    tcase_add_test(tc, another_embedders_vectors_are_kept_exact_only);
    tcase_add_test(tc, expired_skewed_and_own_records_are_skipped);
    tcase_add_test(tc, old_tombstones_are_forgotten);
    tcase_add_test(tc, snapshots_and_reopens_keep_the_right_state);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
