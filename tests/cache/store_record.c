/* tests/cache/store_record.c -- the store's byte layouts (cache/store_record.c)
 * and its tables on disk. Records written by the previous release (hex
 * fixtures produced by the code before the store was split, at 64bed02)
 * still decode and re-encode to the same bytes; truncated or inconsistent
 * records are refused with SC_ECORRUPT; and a store written now holds, in
 * each of its nine tables, the bytes the previous release wrote. */
#define _GNU_SOURCE /* mkdtemp, strdup */
#include "../../cache/store_record.c"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store_helpers.h"
#include "testutil.h"

/* An entry with every field set and a 3-dimension vector, 124 bytes. */
static const char *const full_hex =
    "53434531000000007b68e5cf8b010000fb561cd08b010000efcdab8967452301"
    "110000002a00000004000500040000000d000000160000000300000000000000"
    "646f637361636d656770742d7857686174206973204c4d44423f7b22636f6e74"
    "656e74223a224120422d74726565227d0000003f000080bf00000040";
/* An entry with empty tenant, model and text, no TTL and no vector: 68 bytes. */
static const char *const bare_hex =
    "5343453100000000050000000000000000000000000000000000000000000000"
    "0000000000000000010000000000000000000000010000000000000000000000"
    "6e310000";

/* Decodes hex fixture 'hex' into a malloc'd buffer; '*len' receives its size. */
static uint8_t *from_hex(const char *hex, size_t *len)
{
    *len = strlen(hex) / 2;
    uint8_t *b = malloc(*len);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(sc_hex_decode(hex, strlen(hex), b, *len), 0);
    return b;
}

static int slice_is(sc_slice_t s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

START_TEST(previous_release_records_decode_and_reencode_alike)
{
    size_t len;
    uint8_t *rec = from_hex(full_hex, &len);
    ck_assert_uint_eq(len, 124);
    sc_entry_t e;
    ck_assert_int_eq(sc_store_decode(rec, len, &e), 0);
    ck_assert_uint_eq(e.created_ms, 1700000000123ull);
    ck_assert_uint_eq(e.expires_ms, 1700003600123ull);
    ck_assert_uint_eq(e.scope, 0x0123456789abcdefull);
    ck_assert_uint_eq(e.prompt_tokens, 17);
    ck_assert_uint_eq(e.completion_tokens, 42);
    ck_assert(slice_is(e.ns, "docs"));
    ck_assert(slice_is(e.tenant, "acme"));
    ck_assert(slice_is(e.model, "gpt-x"));
    ck_assert(slice_is(e.text, "What is LMDB?"));
    ck_assert(slice_is(e.response, "{\"content\":\"A B-tree\"}"));
    ck_assert_uint_eq(e.dim, 3);
    float vec[3];
    memcpy(vec, e.vector, sizeof(vec));
    ck_assert(vec[0] == 0.5f && vec[1] == -1.0f && vec[2] == 2.0f);
    /* Encoding what was decoded gives the stored bytes back. */
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_store_encode(&e, &b), 0);
    ck_assert_uint_eq(b.len, len);
    ck_assert(memcmp(b.data, rec, len) == 0);
    free(rec);

    rec = from_hex(bare_hex, &len);
    ck_assert_uint_eq(len, 68);
    ck_assert_int_eq(sc_store_decode(rec, len, &e), 0);
    ck_assert_uint_eq(e.created_ms, 5);
    ck_assert_uint_eq(e.expires_ms, 0);
    ck_assert(slice_is(e.ns, "n") && slice_is(e.response, "1"));
    ck_assert_uint_eq(e.tenant.len + e.model.len + e.text.len, 0);
    ck_assert_uint_eq(e.dim, 0);
    ck_assert_ptr_null(e.vector);
    sc_buf_reset(&b);
    ck_assert_int_eq(sc_store_encode(&e, &b), 0);
    ck_assert_uint_eq(b.len, len);
    ck_assert(memcmp(b.data, rec, len) == 0);
    free(rec);
    sc_buf_free(&b);
}
END_TEST

START_TEST(truncated_or_inconsistent_records_are_corrupt)
{
    size_t len;
    uint8_t *rec = from_hex(full_hex, &len);
    sc_entry_t e;
    /* Every truncation, and any trailing bytes. */
    for (size_t n = 0; n < len; n++)
        ck_assert_int_eq(sc_store_decode(rec, n, &e), SC_ECORRUPT);
    uint8_t longer[128] = {0};
    memcpy(longer, rec, len);
    for (size_t n = len + 1; n <= sizeof(longer); n++)
        ck_assert_int_eq(sc_store_decode(longer, n, &e), SC_ECORRUPT);
    /* A wrong magic; then lengths that do not add up to the size. */
    static const size_t fields[] = {40, 42, 44,
                                    48, 52, 56}; /* ns, model, tenant, text, resp, dim */
    uint8_t bad[124];
    memcpy(bad, rec, len);
    bad[3] ^= 0x01;
    ck_assert_int_eq(sc_store_decode(bad, len, &e), SC_ECORRUPT);
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        memcpy(bad, rec, len);
        bad[fields[i]] = (uint8_t)(bad[fields[i]] + 4); /* 4: padding cannot absorb it */
        ck_assert_int_eq(sc_store_decode(bad, len, &e), SC_ECORRUPT);
        memcpy(bad, rec, len);
        bad[fields[i] + 1] = 0xff; /* a huge length */
        ck_assert_int_eq(sc_store_decode(bad, len, &e), SC_ECORRUPT);
    }
    free(rec);
    /* What cannot be encoded is refused before any byte is written. */
    static char big_ns[UINT16_MAX + 1];
    sc_entry_t too = {.ns = {big_ns, sizeof(big_ns)}};
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_store_encode(&too, &b), SC_ETOOBIG);
    ck_assert_uint_eq(b.len, 0);
    sc_buf_free(&b);
}
END_TEST

START_TEST(meta_index_and_usage_layouts)
{
    sc_entry_meta_t m = {1700000000123ull, 4000000000000ull, 1700000099000ull, 1, 124}, d;
    uint8_t mb[META_BYTES];
    sc__store_meta_encode(&m, 1700000099000ull, mb);
    char hex[2 * META_BYTES + 1];
    sc_hex_encode(mb, sizeof(mb), hex);
    ck_assert_str_eq(hex, "7b68e5cf8b01000000409452a3030000b8eae6cf8b0100000100000000000000"
                          "7c00000000000000b8eae6cf8b010000"); /* from a store of 64bed02 */
    uint64_t lru_ms = 0;
    ck_assert_int_eq(sc__store_meta_decode(mb, sizeof(mb), &d, &lru_ms), 0);
    ck_assert(memcmp(&d, &m, sizeof(m)) == 0);
    ck_assert_uint_eq(lru_ms, 1700000099000ull);
    ck_assert_int_eq(sc__store_meta_decode(mb, sizeof(mb) - 1, &d, NULL), SC_ECORRUPT);

    uint8_t key[SC_KEY_BYTES], ik[INDEX_KEY_BYTES];
    for (int i = 0; i < SC_KEY_BYTES; i++)
        key[i] = (uint8_t)(0xa0 + i);
    sc__store_index_key(ik, 4000000000000ull, key);
    char ihex[2 * INDEX_KEY_BYTES + 1];
    sc_hex_encode(ik, sizeof(ik), ihex);
    ck_assert_str_eq(ihex, "000003a352944000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");

    uint8_t ub[USAGE_BYTES];
    uint64_t n, bytes;
    sc__store_usage_encode(1, 124, ub);
    sc_hex_encode(ub, sizeof(ub), hex);
    ck_assert_str_eq(hex, "01000000000000007c00000000000000");
    sc__store_usage_decode(ub, sizeof(ub), &n, &bytes);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(bytes, 124);
    sc__store_usage_decode(ub, sizeof(ub) - 1, &n, &bytes);
    ck_assert_uint_eq(n + bytes, 0);
}
END_TEST

/* ---- the tables on disk ---------------------------------------------------- */

/* Writes 'op' and checks that it succeeded. */
static void write_now(sc_store_t *s, sc_write_op_t *op)
{
    ck_assert_int_eq(th_store_write(s, op), 0);
}

/* Every row of table 'name' as "keyhex -> valuehex\n", appended to 'out'. */
static void dump_table(MDB_txn *txn, const char *name, sc_buf_t *out)
{
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    ck_assert_int_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    sc_buf_printf(out, "%s:", name);
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        char *hex = malloc(2 * (k.mv_size + v.mv_size) + 2);
        sc_hex_encode(k.mv_data, k.mv_size, hex);
        sc_buf_printf(out, " %s->", hex);
        sc_hex_encode(v.mv_data, v.mv_size, hex);
        sc_buf_puts(out, hex);
        free(hex);
    }
    sc_buf_puts(out, "\n");
    mdb_cursor_close(cur);
}

/* The same writes as a store of the previous release was given: one entry
 * (key a0..af) with a hit, a validation, a negative and namespace settings.
 * Its tables then held exactly 'want' (dumped from that store). */
START_TEST(tables_hold_the_previous_release_bytes)
{
    char dir[TH_DIR_CAP];
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_store_t *s = th_store_open(&cfg, dir);
    size_t len;
    uint8_t *fixture = from_hex(full_hex, &len);
    sc_write_op_t op = {.type = SC_OP_PUT};
    for (int i = 0; i < SC_KEY_BYTES; i++)
        op.key[i] = (uint8_t)(0xa0 + i);
    sc_entry_t e;
    ck_assert_int_eq(sc_store_decode(fixture, len, &e), 0);
    e.expires_ms = 4000000000000ull; /* the fixture store's entry lives on */
    ck_assert_int_eq(sc_store_encode(&e, &op.record), 0);
    write_now(s, &op);
    sc_store_touch(s, op.key, 1700000099000ull);
    sc_write_op_clear(&op);
    sc_write_op_t sync = {.type = SC_OP_SYNC};
    write_now(s, &sync);
    sc_write_op_t val = {.type = SC_OP_VALIDATION, .count = 1000};
    for (int i = 0; i < SC_KEY_BYTES; i++)
        val.key[i] = (uint8_t)(0x10 + i);
    sc_buf_puts(&val.record, "{\"validation_id\":\"00112233445566778899aabbccddeeff\","
                             "\"verdict\":\"wrong\"}");
    write_now(s, &val);
    sc_write_op_clear(&val);
    sc_write_op_t neg = {.type = SC_OP_NEGATIVE};
    for (int i = 0; i < SC_KEY_BYTES; i++) {
        neg.key[i] = (uint8_t)(0x30 + i);
        neg.key2[i] = (uint8_t)(0xa0 + i);
    }
    write_now(s, &neg);
    sc_write_op_t ns = {.type = SC_OP_NS_PUT, .ns = strdup("docs")};
    sc_buf_puts(&ns.record, "{\"semantic\":true}");
    write_now(s, &ns);
    sc_write_op_clear(&ns);
    sc_store_destroy(s);
    free(fixture);

    /* The nine tables, in the main table's (sorted) order, and their rows. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi main_dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    ck_assert_int_eq(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 12);
    ck_assert_int_eq(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    ck_assert_int_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &main_dbi), 0);
    ck_assert_int_eq(mdb_cursor_open(txn, main_dbi, &cur), 0);
    sc_buf_t names = {0}, rows = {0};
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) {
        sc_buf_append(&names, k.mv_data, k.mv_size);
        sc_buf_puts(&names, " ");
    }
    mdb_cursor_close(cur);
    ck_assert_str_eq(names.data, "entries expiry lru meta negatives ns nsuse sys validations ");
    static const char *const tables[] = {"entries", "expiry", "lru", "meta",       "negatives",
                                         "ns",      "nsuse",  "sys", "validations"};
    for (size_t i = 0; i < 9; i++)
        dump_table(txn, tables[i], &rows);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    const char *want =
        "entries: a0a1a2a3a4a5a6a7a8a9aaabacadaeaf->53434531000000007b68e5cf8b01000000409452a"
        "3030000efcdab8967452301110000002a00000004000500040000000d000000160000000300000000000"
        "000646f637361636d656770742d7857686174206973204c4d44423f7b22636f6e74656e74223a2241204"
        "22d74726565227d0000003f000080bf00000040\n"
        "expiry: 000003a352944000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf->\n"
        "lru: 0000018bcfe6eab8a0a1a2a3a4a5a6a7a8a9aaabacadaeaf->\n"
        "meta: a0a1a2a3a4a5a6a7a8a9aaabacadaeaf->7b68e5cf8b01000000409452a3030000b8eae6cf8b01"
        "000001000000000000007c00000000000000b8eae6cf8b010000\n"
        "negatives: 303132333435363738393a3b3c3d3e3fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf->\n"
        "ns: 646f6373->7b2273656d616e746963223a747275657d\n"
        "nsuse: 646f6373->01000000000000007c00000000000000\n"
        "sys:\n"
        "validations: 101112131415161718191a1b1c1d1e1f->7b2276616c69646174696f6e5f6964223a223"
        "030313132323333343435353636373738383939616162626363646465656666222c22766572646963742"
        "23a2277726f6e67227d\n";
    ck_assert_str_eq(rows.data, want);
    sc_buf_free(&names);
    sc_buf_free(&rows);
    th_store_remove(NULL, dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("store_record");
    TCase *tc = tcase_create("store_record");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, previous_release_records_decode_and_reencode_alike);
    tcase_add_test(tc, truncated_or_inconsistent_records_are_corrupt);
    tcase_add_test(tc, meta_index_and_usage_layouts);
    tcase_add_test(tc, tables_hold_the_previous_release_bytes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
