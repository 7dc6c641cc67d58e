/* tests/cache/quality_records.c -- the quality loop's records in the store
 * (cache/quality_records.c): the exact bytes of a validation record and its
 * key (as the previous release wrote them from server/validate.c), answers
 * cut on a UTF-8 boundary, and, through a real store, the newest-first
 * listing with its retention and the negatives set. */
#include "../../cache/quality_records.c"

#include "store_helpers.h"
#include "testutil.h"

static sc_validation_t sample_validation(void)
{
    sc_validation_t v;
    memset(&v, 0, sizeof(v));
    snprintf(v.id, sizeof(v.id), "00112233445566778899aabbccddeeff");
    for (int i = 0; i < SC_KEY_BYTES; i++) {
        v.entry_key[i] = (uint8_t)(0xa0 + i);
        v.request_key[i] = (uint8_t)(0x30 + i);
    }
    v.scope = 0x0123456789abcdefull;
    v.match = SC_MATCH_SEMANTIC;
    v.similarity = 0.9123456;
    snprintf(v.ns, sizeof(v.ns), "docs");
    return v;
}

/* The record and key below are what the previous release stored for this
 * verdict (server/validate.c at 64bed02 built them); stores written by it
 * are listed by GET /v1/validations as they are. */
START_TEST(validation_record_keeps_the_previous_bytes)
{
    sc_validation_t v = sample_validation();
    const char *cached = "{\"content\":\"A B-tree\"}", *fresh = "\"Lyon\"";
    sc_verdict_info_t info = {SC_VERDICT_WRONG, "normalized",     0.5,
                              cached,           strlen(cached),   fresh,
                              strlen(fresh),    1700000000123ull, 1000};
    sc_write_op_t op = {0};
    ck_assert_int_eq(sc_quality_validation_op(&op, &v, &info), 0);
    ck_assert_int_eq(op.type, SC_OP_VALIDATION);
    ck_assert_uint_eq(op.count, 1000);
    char key_hex[SC_KEY_HEX + 1];
    sc_hex_encode(op.key, SC_KEY_BYTES, key_hex);
    ck_assert_str_eq(key_hex, "0000018bcfe5687b0011223344556677"); /* be64 time | id */
    ck_assert_str_eq(
        op.record.data,
        "{\"validation_id\":\"00112233445566778899aabbccddeeff\",\"time_ms\":"
        "1700000000123,\"namespace\":\"docs\",\"key\":\"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\","
        "\"scope\":\"0123456789abcdef\",\"match\":\"semantic\",\"similarity\":0.912346,"
        "\"verdict\":\"wrong\",\"method\":\"normalized\",\"answer_similarity\":0.500000,"
        "\"cached_answer\":\"A B-tree\",\"fresh_answer\":\"Lyon\"}");
    sc_write_op_clear(&op);
    /* No answer similarity measured, answers unknown. */
    v.match = SC_MATCH_EXACT;
    v.similarity = 1;
    sc_verdict_info_t bare = {SC_VERDICT_CORRECT, "exact", -2, NULL, 0, NULL, 0, 5, 0};
    sc_write_op_t op2 = {0};
    ck_assert_int_eq(sc_quality_validation_op(&op2, &v, &bare), 0);
    ck_assert_str_eq(op2.record.data,
                     "{\"validation_id\":\"00112233445566778899aabbccddeeff\",\"time_ms\":5,"
                     "\"namespace\":\"docs\",\"key\":\"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\","
                     "\"scope\":\"0123456789abcdef\",\"match\":\"exact\",\"similarity\":1.000000,"
                     "\"verdict\":\"correct\",\"method\":\"exact\",\"cached_answer\":null,"
                     "\"fresh_answer\":null}");
    sc_write_op_clear(&op2);
}
END_TEST

START_TEST(long_answers_are_cut_between_characters)
{
    /* "a" then 1,100 two-byte characters: byte 1,024 is the second half of
     * one, so the cut falls before it, at 1,023 bytes. */
    sc_buf_t answer = {0};
    sc_buf_puts(&answer, "\"a");
    for (int i = 0; i < 1100; i++)
        sc_buf_puts(&answer, "\xc3\xa9");
    sc_buf_puts(&answer, "\"");
    sc_validation_t v = sample_validation();
    sc_verdict_info_t info = {
        SC_VERDICT_CORRECT, "exact", -2, answer.data, answer.len, NULL, 0, 1, 0};
    sc_write_op_t op = {0};
    ck_assert_int_eq(sc_quality_validation_op(&op, &v, &info), 0);
    const char *start = strstr(op.record.data, "\"cached_answer\":\"") + 17;
    const char *end = strstr(start, "\"");
    ck_assert_int_eq((int)(end - start), SC_RECORD_ANSWER_MAX - 1);
    ck_assert_int_eq((unsigned char)end[-1], 0xa9); /* a whole character last */
    sc_write_op_clear(&op);
    sc_buf_free(&answer);
}
END_TEST

/* ---- through a store ----------------------------------------------------- */

/* Writes 'op' and checks that it succeeded. */
static void write_now(sc_store_t *s, sc_write_op_t *op)
{
    ck_assert_int_eq(th_store_write(s, op), 0);
}

START_TEST(validations_are_listed_newest_first_and_negatives_found)
{
    char dir[TH_DIR_CAP];
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    sc_store_t *s = th_store_open(&cfg, dir);
    /* Three verdicts with a retention of two: the oldest goes. */
    sc_validation_t v = sample_validation();
    for (int i = 0; i < 3; i++) {
        sc_verdict_info_t info = {SC_VERDICT_CORRECT, "exact", -2, NULL, 0, NULL, 0,
                                  1000 + (uint64_t)i, 2};
        sc_write_op_t op = {0};
        ck_assert_int_eq(sc_quality_validation_op(&op, &v, &info), 0);
        write_now(s, &op);
        sc_write_op_clear(&op);
    }
    sc_write_op_t neg = {0};
    sc_quality_negative_op(&neg, v.request_key, v.entry_key);
    write_now(s, &neg);

    sc_store_reader_t *r;
    ck_assert_int_eq(sc_store_reader_create(s, &r), 0);
    ck_assert_int_eq(sc_store_read_begin(r), 0);
    sc_buf_t list = {0};
    ck_assert_int_eq(sc_quality_validations_json(r, 10, &list), 0);
    ck_assert_ptr_nonnull(strstr(list.data, "\"time_ms\":1002"));
    ck_assert(strstr(list.data, "\"time_ms\":1002") < strstr(list.data, "\"time_ms\":1001"));
    ck_assert_ptr_null(strstr(list.data, "\"time_ms\":1000"));
    ck_assert_int_eq(list.data[0], '[');
    ck_assert_int_eq(list.data[list.len - 1], ']');
    sc_buf_reset(&list);
    ck_assert_int_eq(sc_quality_validations_json(r, 1, &list), 0);
    ck_assert_ptr_null(strstr(list.data, "\"time_ms\":1001"));
    /* A negative holds for that request and that entry only, one way. */
    ck_assert_int_eq(sc_quality_is_negative(r, v.request_key, v.entry_key), 1);
    ck_assert_int_eq(sc_quality_is_negative(r, v.entry_key, v.request_key), 0);
    sc_store_read_end(r);
    sc_store_reader_destroy(r);
    sc_buf_free(&list);
    th_store_remove(s, dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("quality_records");
    TCase *tc = tcase_create("quality_records");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, validation_record_keeps_the_previous_bytes);
    tcase_add_test(tc, long_answers_are_cut_between_characters);
    tcase_add_test(tc, validations_are_listed_newest_first_and_negatives_found);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
