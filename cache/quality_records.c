/* quality_records.c -- the quality loop's records in the store: validation
 * records (a log of verdicts, one JSON object each, under a key that starts
 * with the time so the log is in age order) and negatives (pairings of a
 * request and an entry judged wrong). The store keeps their bytes without
 * knowing what they are; this file is the only code that writes or reads
 * them, so their layout on disk is decided here (see sc_quality.h). */
#define _GNU_SOURCE
#include "sc_quality.h"

#include <stdlib.h>
#include <string.h>

/* Appends ',"<name>":' and the comparable core of answer 'json' (its text,
 * or its canonical structure), cut to SC_RECORD_ANSWER_MAX bytes on a UTF-8
 * boundary; null when there is none. 0 or SC_ENOMEM. */
static int record_answer(sc_buf_t *b, const char *name, const char *json, size_t len)
{
    char *text, *structure;
    int rc = sc_buf_printf(b, ",\"%s\":", name);
    if (!json || sc_answer_core(json, len, &text, &structure))
        return rc | sc_buf_puts(b, "null");
    const char *s = text ? text : structure;
    size_t n = strlen(s);
    if (n > SC_RECORD_ANSWER_MAX) {
        n = SC_RECORD_ANSWER_MAX;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--; /* do not cut a UTF-8 sequence */
    }
    rc |= sc_buf_json_str(b, s, n);
    free(text);
    free(structure);
    return rc;
}

int sc_quality_validation_op(sc_write_op_t *op, const sc_validation_t *v,
                             const sc_verdict_info_t *info)
{
    op->type = SC_OP_VALIDATION;
    for (int i = 0; i < 8; i++)
        op->key[i] = (uint8_t)(info->time_ms >> (56 - 8 * i)); /* time first: ordered by age */
    sc_hex_decode(v->id, 16, op->key + 8, 8);
    op->count = info->retention;
    char hex[SC_KEY_HEX + 1];
    sc_hex_encode(v->entry_key, SC_KEY_BYTES, hex);
    /* Each append fails only for want of memory; the failures are collected
     * so that a record cut short is never written. */
    sc_buf_t *b = &op->record;
    int rc = sc_buf_printf(b, "{\"validation_id\":\"%s\",\"time_ms\":%llu,\"namespace\":", v->id,
                           (unsigned long long)info->time_ms);
    rc |= sc_buf_json_str(b, v->ns, strlen(v->ns));
    rc |= sc_buf_printf(b,
                        ",\"key\":\"%s\",\"scope\":\"%016llx\",\"match\":\"%s\","
                        "\"similarity\":%.6f,\"verdict\":\"%s\",\"method\":\"%s\"",
                        hex, (unsigned long long)v->scope, sc_match_names[v->match], v->similarity,
                        info->verdict == SC_VERDICT_WRONG ? "wrong" : "correct", info->method);
    if (info->answer_similarity > -2)
        rc |= sc_buf_printf(b, ",\"answer_similarity\":%.6f", info->answer_similarity);
    rc |= record_answer(b, "cached_answer", info->cached, info->cached_len);
    rc |= record_answer(b, "fresh_answer", info->fresh, info->fresh_len);
    rc |= sc_buf_puts(b, "}");
    return rc ? SC_ENOMEM : 0;
}

/* The store's SC_OP_NEGATIVE adds the 32 bytes 'key' | 'key2': request
 * first, so sc_quality_is_negative builds the same key. */
void sc_quality_negative_op(sc_write_op_t *op, const uint8_t request_key[SC_KEY_BYTES],
                            const uint8_t entry_key[SC_KEY_BYTES])
{
    op->type = SC_OP_NEGATIVE;
    memcpy(op->key, request_key, SC_KEY_BYTES);
    memcpy(op->key2, entry_key, SC_KEY_BYTES);
}

int sc_quality_is_negative(sc_store_reader_t *r, const uint8_t request_key[SC_KEY_BYTES],
                           const uint8_t entry_key[SC_KEY_BYTES])
{
    uint8_t nk[2 * SC_KEY_BYTES];
    memcpy(nk, request_key, SC_KEY_BYTES);
    memcpy(nk + SC_KEY_BYTES, entry_key, SC_KEY_BYTES);
    return sc_store_table_has(r, SC_TABLE_NEGATIVES, nk, sizeof(nk));
}

typedef struct {
    sc_buf_t *out;
    size_t n;
} render_t;

static int render_one(void *ctx, const void *val, size_t len)
{
    render_t *rd = ctx;
    if (rd->n++)
        sc_buf_puts(rd->out, ",");
    sc_buf_append(rd->out, val, len);
    return 0;
}

int sc_quality_validations_json(sc_store_reader_t *r, size_t limit, sc_buf_t *out)
{
    render_t rd = {out, 0};
    sc_buf_puts(out, "[");
    int rc = sc_store_table_newest(r, SC_TABLE_VALIDATIONS, limit, render_one, &rd);
    sc_buf_puts(out, "]");
    return rc;
}
