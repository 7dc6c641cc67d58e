/* store_record.c -- every byte layout the store writes: the entry record,
 * the meta record, the LRU/expiry index keys and the per-namespace usage.
 * Pure functions with no LMDB in sight, so they are tested on bytes alone;
 * the layouts are on disk, so changing one breaks existing stores (the table
 * list is in store_internal.h). */
#include "store_internal.h"

#include <string.h>

#define RECORD_MAGIC 0x31454353u /* "SCE1" little-endian */

/* Layout (little-endian): magic, reserved, created, expires, scope,
 * prompt_tokens, completion_tokens, ns_len(u16), model_len(u16), tenant_len,
 * text_len, resp_len, dim, reserved -> 64 bytes; then ns, tenant, model,
 * text, response, zero padding to 4, dim floats. */
int sc_store_encode(const sc_entry_t *e, sc_buf_t *out)
{
    if (e->ns.len > UINT16_MAX || e->model.len > UINT16_MAX || e->tenant.len > UINT32_MAX ||
        e->text.len > UINT32_MAX || e->response.len > UINT32_MAX)
        return SC_ETOOBIG;
    size_t strs = e->ns.len + e->tenant.len + e->model.len + e->text.len + e->response.len;
    size_t pad = (4 - (RECORD_HEADER + strs) % 4) % 4;
    size_t total = RECORD_HEADER + strs + pad + (size_t)e->dim * 4;
    if (sc_buf_reserve(out, total))
        return SC_ENOMEM;
    uint8_t *h = (uint8_t *)out->data + out->len;
    memset(h, 0, RECORD_HEADER);
    put_le32(h + 0, RECORD_MAGIC);
    put_le64(h + 8, e->created_ms);
    put_le64(h + 16, e->expires_ms);
    put_le64(h + 24, e->scope);
    put_le32(h + 32, e->prompt_tokens);
    put_le32(h + 36, e->completion_tokens);
    h[40] = (uint8_t)e->ns.len;
    h[41] = (uint8_t)(e->ns.len >> 8);
    h[42] = (uint8_t)e->model.len;
    h[43] = (uint8_t)(e->model.len >> 8);
    put_le32(h + 44, (uint32_t)e->tenant.len);
    put_le32(h + 48, (uint32_t)e->text.len);
    put_le32(h + 52, (uint32_t)e->response.len);
    put_le32(h + 56, e->dim);
    uint8_t *p = h + RECORD_HEADER;
    const sc_slice_t *parts[] = {&e->ns, &e->tenant, &e->model, &e->text, &e->response};
    for (int i = 0; i < 5; i++) {
        if (parts[i]->len)
            memcpy(p, parts[i]->ptr, parts[i]->len);
        p += parts[i]->len;
    }
    memset(p, 0, pad);
    p += pad;
    if (e->dim)
        memcpy(p, e->vector, (size_t)e->dim * 4);
    out->len += total;
    out->data[out->len] = '\0';
    return 0;
}

int sc_store_decode(const void *rec, size_t len, sc_entry_t *e)
{
    const uint8_t *h = rec;
    if (len < RECORD_HEADER || get_le32(h) != RECORD_MAGIC)
        return SC_ECORRUPT;
    memset(e, 0, sizeof(*e));
    e->created_ms = get_le64(h + 8);
    e->expires_ms = get_le64(h + 16);
    e->scope = get_le64(h + 24);
    e->prompt_tokens = get_le32(h + 32);
    e->completion_tokens = get_le32(h + 36);
    size_t lens[5] = {(size_t)h[40] | (size_t)h[41] << 8, get_le32(h + 44),
                      (size_t)h[42] | (size_t)h[43] << 8, get_le32(h + 48), get_le32(h + 52)};
    e->dim = get_le32(h + 56);
    uint64_t strs = 0;
    for (int i = 0; i < 5; i++)
        strs += lens[i];
    uint64_t pad = (4 - (RECORD_HEADER + strs) % 4) % 4;
    if ((uint64_t)RECORD_HEADER + strs + pad + (uint64_t)e->dim * 4 != len)
        return SC_ECORRUPT;
    const char *p = (const char *)h + RECORD_HEADER;
    sc_slice_t *parts[] = {&e->ns, &e->tenant, &e->model, &e->text, &e->response};
    for (int i = 0; i < 5; i++) {
        parts[i]->ptr = p;
        parts[i]->len = lens[i];
        p += lens[i];
    }
    e->vector = e->dim ? p + pad : NULL;
    return 0;
}

/* Meta record: the public fields plus the timestamp under which the entry is
 * filed in the LRU table (which lags last_hit_ms by up to the granularity). */
void sc__store_meta_encode(const sc_entry_meta_t *m, uint64_t lru_ms, uint8_t out[META_BYTES])
{
    put_le64(out, m->created_ms);
    put_le64(out + 8, m->expires_ms);
    put_le64(out + 16, m->last_hit_ms);
    put_le64(out + 24, m->hits);
    put_le64(out + 32, m->bytes);
    put_le64(out + 40, lru_ms);
}

int sc__store_meta_decode(const void *rec, size_t len, sc_entry_meta_t *m, uint64_t *lru_ms)
{
    if (len != META_BYTES)
        return SC_ECORRUPT;
    const uint8_t *p = rec;
    m->created_ms = get_le64(p);
    m->expires_ms = get_le64(p + 8);
    m->last_hit_ms = get_le64(p + 16);
    m->hits = get_le64(p + 24);
    m->bytes = get_le64(p + 32);
    if (lru_ms)
        *lru_ms = get_le64(p + 40);
    return 0;
}

void sc__store_index_key(uint8_t out[INDEX_KEY_BYTES], uint64_t ms, const uint8_t *key)
{
    put_be64(out, ms);
    memcpy(out + 8, key, SC_KEY_BYTES);
}

void sc__store_usage_encode(uint64_t entries, uint64_t bytes, uint8_t out[USAGE_BYTES])
{
    put_le64(out, entries);
    put_le64(out + 8, bytes);
}

void sc__store_usage_decode(const void *val, size_t len, uint64_t *entries, uint64_t *bytes)
{
    *entries = *bytes = 0;
    if (len == USAGE_BYTES) {
        *entries = get_le64(val);
        *bytes = get_le64((const uint8_t *)val + 8);
    }
}
