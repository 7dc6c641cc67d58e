/* tests/cache/fleet_record.c -- the replication record codec
 * (cache/fleet_record.c): every type round-trips, and foreign or damaged
 * input (short, long, wrong magic, unknown type or flags, parts that do not
 * fit the type, every single-byte truncation and a sweep of bit flips) is
 * refused without reading past the bytes given. */
#include "../../cache/fleet_record.c"

#include <stdlib.h>

#include "sc_store.h"
#include "testutil.h"

static sc_buf_t entry_record(uint32_t dim)
{
    float vec[4] = {0.5f, -1.0f, 2.0f, 0.25f};
    sc_entry_t e = {.created_ms = 1000,
                    .expires_ms = 0,
                    .scope = 42,
                    .ns = {"ns", 2},
                    .tenant = {"t", 1},
                    .model = {"m", 1},
                    .text = {"hello", 5},
                    .response = {"{\"a\":1}", 7},
                    .vector = dim ? vec : NULL,
                    .dim = dim};
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_store_encode(&e, &b), 0);
    return b;
}

static sc_frec_t base(sc_frec_type_t t)
{
    sc_frec_t r = {.type = t, .origin = 0x1122334455667788ull, .hlc = (1700000000000ull << 16) | 3};
    return r;
}

START_TEST(every_type_round_trips)
{
    sc_buf_t entry = entry_record(4);
    sc_frec_t recs[7];
    recs[0] = base(SC_FREC_PUT);
    memset(recs[0].key, 0xab, SC_KEY_BYTES);
    recs[0].payload = (sc_slice_t){entry.data, entry.len};
    recs[0].embedder = (sc_slice_t){"glove-100d", 10};
    recs[0].a = 5;
    recs[0].b = 4096;
    recs[1] = base(SC_FREC_DELETE);
    memset(recs[1].key, 0x01, SC_KEY_BYTES);
    recs[2] = base(SC_FREC_INVALIDATE);
    recs[2].flags = SC_FREC_HAS_NS | SC_FREC_HAS_MODEL;
    recs[2].ns = (sc_slice_t){"prod", 4};
    recs[2].model = (sc_slice_t){"gpt", 3};
    recs[3] = base(SC_FREC_NS_PUT);
    recs[3].ns = (sc_slice_t){"prod", 4};
    recs[3].payload = (sc_slice_t){"{\"threshold\":0.9}", 17};
    recs[4] = base(SC_FREC_NS_DELETE);
    recs[4].ns = (sc_slice_t){"prod", 4};
    recs[5] = base(SC_FREC_VALIDATION);
    memset(recs[5].key, 0x07, SC_KEY_BYTES);
    recs[5].payload = (sc_slice_t){"{\"verdict\":\"wrong\"}", 19};
    recs[5].a = 1000;
    recs[6] = base(SC_FREC_NEGATIVE);
    memset(recs[6].key, 0x02, SC_KEY_BYTES);
    memset(recs[6].key2, 0x03, SC_KEY_BYTES);
    for (int i = 0; i < 7; i++) {
        sc_buf_t b = {0};
        ck_assert_int_eq(sc_frec_encode(&recs[i], &b), 0);
        sc_frec_t d;
        ck_assert_int_eq(sc_frec_decode(b.data, b.len, &d), 0);
        ck_assert_int_eq(d.type, recs[i].type);
        ck_assert_uint_eq(d.flags, recs[i].flags);
        ck_assert_uint_eq(d.origin, recs[i].origin);
        ck_assert_uint_eq(d.hlc, recs[i].hlc);
        ck_assert_uint_eq(d.a, recs[i].a);
        ck_assert_uint_eq(d.b, recs[i].b);
        ck_assert_mem_eq(d.key, recs[i].key, SC_KEY_BYTES);
        ck_assert_mem_eq(d.key2, recs[i].key2, SC_KEY_BYTES);
        const sc_slice_t *want[] = {&recs[i].ns, &recs[i].tenant, &recs[i].model, &recs[i].embedder,
                                    &recs[i].payload};
        const sc_slice_t *got[] = {&d.ns, &d.tenant, &d.model, &d.embedder, &d.payload};
        for (int p = 0; p < 5; p++) {
            ck_assert_uint_eq(got[p]->len, want[p]->len);
            if (want[p]->len)
                ck_assert_mem_eq(got[p]->ptr, want[p]->ptr, want[p]->len);
        }
        ck_assert_str_eq(sc_frec_type_name(d.type), type_names[recs[i].type]);
        sc_buf_free(&b);
    }
    sc_buf_free(&entry);
}
END_TEST

START_TEST(encode_refuses_what_decode_would)
{
    sc_buf_t b = {0};
    sc_frec_t r = base(SC_FREC_PUT);
    r.payload = (sc_slice_t){"", 0}; /* a store carries its entry */
    ck_assert_int_eq(sc_frec_encode(&r, &b), SC_EINVAL);
    r = base(SC_FREC_NS_PUT);
    r.ns = (sc_slice_t){"n", 1};
    r.payload = (sc_slice_t){"[1,2]", 5}; /* settings are an object */
    ck_assert_int_eq(sc_frec_encode(&r, &b), SC_EINVAL);
    r = base(SC_FREC_DELETE);
    r.origin = 0;
    ck_assert_int_eq(sc_frec_encode(&r, &b), SC_EINVAL);
    r = base(SC_FREC_INVALIDATE);
    r.ns = (sc_slice_t){"x", 1}; /* a filter not flagged */
    ck_assert_int_eq(sc_frec_encode(&r, &b), SC_EINVAL);
    r = base(SC_FREC_DELETE);
    r.key2[0] = 1;
    ck_assert_int_eq(sc_frec_encode(&r, &b), SC_EINVAL);
    char big[SC_FREC_MAX_EMBEDDER + 1];
    memset(big, 'e', sizeof(big));
    sc_buf_t entry = entry_record(0);
    r = base(SC_FREC_PUT);
    r.payload = (sc_slice_t){entry.data, entry.len};
    r.embedder = (sc_slice_t){big, sizeof(big)};
    ck_assert_int_eq(sc_frec_encode(&r, &b), SC_EINVAL);
    ck_assert_uint_eq(b.len, 0);
    sc_buf_free(&entry);
    sc_buf_free(&b);
}
END_TEST

START_TEST(foreign_and_damaged_input_is_refused)
{
    sc_buf_t entry = entry_record(4);
    sc_frec_t r = base(SC_FREC_PUT);
    r.payload = (sc_slice_t){entry.data, entry.len};
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_frec_encode(&r, &b), 0);
    sc_frec_t d;
    /* Not ours at all. */
    ck_assert_int_eq(sc_frec_decode(NULL, 0, &d), SC_ECORRUPT);
    ck_assert_int_eq(sc_frec_decode("hello", 5, &d), SC_ECORRUPT);
    char junk[200];
    memset(junk, 0x5a, sizeof(junk));
    ck_assert_int_eq(sc_frec_decode(junk, sizeof(junk), &d), SC_ECORRUPT);
    /* Every truncation, and one byte too many. Each copy is exactly as long
     * as said, so reading past it would be caught by ASan. */
    for (size_t n = 0; n < b.len; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, b.data, n);
        ck_assert_int_eq(sc_frec_decode(copy, n, &d), SC_ECORRUPT);
        free(copy);
    }
    sc_buf_t longer = {0};
    sc_buf_append(&longer, b.data, b.len);
    sc_buf_append(&longer, "x", 1);
    ck_assert_int_eq(sc_frec_decode(longer.data, longer.len, &d), SC_ECORRUPT);
    /* Header fields a future version might set. */
    int header_refusals = 0;
    const size_t fields[] = {0, 4, 5, 6, 7};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        sc_buf_t c = {0};
        sc_buf_append(&c, b.data, b.len);
        c.data[fields[i]] ^= 0x40;
        header_refusals += sc_frec_decode(c.data, c.len, &d) == SC_ECORRUPT;
        sc_buf_free(&c);
    }
    ck_assert_int_eq(header_refusals, 5);
    /* Flipping any bit of the lengths breaks the sum; a flip elsewhere
     * either is refused or decodes to the same shape (no crash either way). */
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            sc_buf_t c = {0};
            sc_buf_append(&c, b.data, b.len);
            c.data[i] ^= (char)(1 << bit);
            int rc = sc_frec_decode(c.data, c.len, &d);
            if (i >= 72 && i < SC_FREC_HEADER)
                ck_assert_int_eq(rc, SC_ECORRUPT);
            else
                ck_assert(rc == 0 || rc == SC_ECORRUPT);
            sc_buf_free(&c);
        }
    }
    sc_buf_free(&longer);
    sc_buf_free(&b);
    sc_buf_free(&entry);
}
END_TEST

START_TEST(parts_must_fit_the_type)
{
    sc_buf_t b = {0};
    sc_frec_t r = base(SC_FREC_DELETE);
    ck_assert_int_eq(sc_frec_encode(&r, &b), 0);
    sc_frec_t d;
    /* A delete claiming a payload: the length field and the bytes agree, so
     * only the per-type rule refuses it. */
    sc_buf_t c = {0};
    sc_buf_append(&c, b.data, b.len);
    sc_buf_append(&c, "zz", 2);
    put_le32((uint8_t *)c.data + 88, 2);
    ck_assert_int_eq(sc_frec_decode(c.data, c.len, &d), SC_ECORRUPT);
    /* An unknown type and a zero timestamp. */
    c.len = 0;
    sc_buf_append(&c, b.data, b.len);
    c.data[4] = 9;
    ck_assert_int_eq(sc_frec_decode(c.data, c.len, &d), SC_ECORRUPT);
    c.len = 0;
    sc_buf_append(&c, b.data, b.len);
    memset(c.data + 16, 0, 8);
    ck_assert_int_eq(sc_frec_decode(c.data, c.len, &d), SC_ECORRUPT);
    ck_assert_str_eq(sc_frec_type_name(99), "unknown");
    sc_buf_free(&c);
    sc_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fleet_record");
    TCase *tc = tcase_create("fleet_record");
    tcase_add_test(tc, every_type_round_trips);
    tcase_add_test(tc, encode_refuses_what_decode_would);
    tcase_add_test(tc, foreign_and_damaged_input_is_refused);
    tcase_add_test(tc, parts_must_fit_the_type);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
