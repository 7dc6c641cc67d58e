/* fleet_record.c -- the codec of one replication record (sc_fleet_record.h).
 * Layout, little-endian: magic "SCF1", type u8, flags u8, reserved u16 (0),
 * origin u64, hlc u64, key[16], key2[16], a u64, b u64, then the lengths of
 * ns, tenant, model, embedder and payload (u32 each) -> 92 bytes; then those
 * five parts in that order. Foreign input is refused whole: the lengths must
 * add up exactly and every part must fit its record type (a store's entry
 * record itself is the store's to check: this file does not depend on it). */
#include "sc_fleet_record.h"

#include <jansson.h>
#include <string.h>

#include "bytes.h"

#define FREC_MAGIC 0x31464353u /* "SCF1" little-endian */

static const char *const type_names[SC_FREC_TYPE_MAX + 1] = {
    "unknown", "put", "delete", "invalidate", "ns_put", "ns_delete", "validation", "negative",
};

const char *sc_frec_type_name(int type)
{
    return type >= 1 && type <= SC_FREC_TYPE_MAX ? type_names[type] : type_names[0];
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* 1 if 'p' is a JSON object (namespace settings are one). */
static int is_json_object(sc_slice_t p)
{
    json_error_t err;
    json_t *j = json_loadb(p.ptr, p.len, JSON_REJECT_DUPLICATES, &err);
    int ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

/* The per-type rules, shared by encode and decode. 0 or SC_ECORRUPT. */
static int check_parts(const sc_frec_t *r)
{
    if (r->type < 1 || r->type > SC_FREC_TYPE_MAX || (r->flags & ~SC_FREC_FLAGS_KNOWN) ||
        !r->origin || !r->hlc)
        return SC_ECORRUPT;
    if (r->ns.len > SC_FREC_MAX_NAME || r->tenant.len > SC_FREC_MAX_NAME ||
        r->model.len > SC_FREC_MAX_NAME || r->embedder.len > SC_FREC_MAX_EMBEDDER ||
        r->payload.len > SC_FREC_MAX_PAYLOAD)
        return SC_ECORRUPT;
    int has_filters = r->ns.len || r->tenant.len || r->model.len;
    int has_key2 = !all_zero(r->key2, SC_KEY_BYTES);
    if (r->type != SC_FREC_INVALIDATE && r->flags)
        return SC_ECORRUPT;
    if (r->type != SC_FREC_PUT && (r->embedder.len || r->b))
        return SC_ECORRUPT;
    if (r->type != SC_FREC_NEGATIVE && has_key2)
        return SC_ECORRUPT;
    switch (r->type) {
    case SC_FREC_PUT:
        /* The payload is the store's entry record: the store's decoder
         * checks it (the reader, before a batch reaches the writer). */
        return has_filters || !r->payload.len ? SC_ECORRUPT : 0;
    case SC_FREC_DELETE:
    case SC_FREC_NEGATIVE:
        return has_filters || r->payload.len || r->a ? SC_ECORRUPT : 0;
    case SC_FREC_INVALIDATE:
        /* Filters are present exactly when flagged; "all" takes none. */
        if ((!(r->flags & SC_FREC_HAS_NS) && r->ns.len) ||
            (!(r->flags & SC_FREC_HAS_TENANT) && r->tenant.len) ||
            (!(r->flags & SC_FREC_HAS_MODEL) && r->model.len))
            return SC_ECORRUPT;
        if ((r->flags & SC_FREC_ALL) && (r->flags & ~SC_FREC_ALL))
            return SC_ECORRUPT;
        return r->payload.len || r->a || !all_zero(r->key, SC_KEY_BYTES) ? SC_ECORRUPT : 0;
    case SC_FREC_NS_PUT:
        if (!r->ns.len || r->tenant.len || r->model.len || r->a || !is_json_object(r->payload))
            return SC_ECORRUPT;
        return all_zero(r->key, SC_KEY_BYTES) ? 0 : SC_ECORRUPT;
    case SC_FREC_NS_DELETE:
        if (!r->ns.len || r->tenant.len || r->model.len || r->a || r->payload.len)
            return SC_ECORRUPT;
        return all_zero(r->key, SC_KEY_BYTES) ? 0 : SC_ECORRUPT;
    case SC_FREC_VALIDATION:
        return has_filters || !r->payload.len ? SC_ECORRUPT : 0;
    }
    return SC_ECORRUPT;
}

int sc_frec_encode(const sc_frec_t *r, sc_buf_t *out)
{
    if (check_parts(r))
        return SC_EINVAL;
    const sc_slice_t *parts[] = {&r->ns, &r->tenant, &r->model, &r->embedder, &r->payload};
    size_t total = SC_FREC_HEADER;
    for (int i = 0; i < 5; i++)
        total += parts[i]->len;
    if (sc_buf_reserve(out, total))
        return SC_ENOMEM;
    uint8_t *h = (uint8_t *)out->data + out->len;
    memset(h, 0, SC_FREC_HEADER);
    put_le32(h, FREC_MAGIC);
    h[4] = (uint8_t)r->type;
    h[5] = (uint8_t)r->flags;
    put_le64(h + 8, r->origin);
    put_le64(h + 16, r->hlc);
    memcpy(h + 24, r->key, SC_KEY_BYTES);
    memcpy(h + 40, r->key2, SC_KEY_BYTES);
    put_le64(h + 56, r->a);
    put_le64(h + 64, r->b);
    uint8_t *p = h + SC_FREC_HEADER;
    for (int i = 0; i < 5; i++) {
        put_le32(h + 72 + 4 * i, (uint32_t)parts[i]->len);
        if (parts[i]->len)
            memcpy(p, parts[i]->ptr, parts[i]->len);
        p += parts[i]->len;
    }
    out->len += total;
    out->data[out->len] = '\0';
    return 0;
}

int sc_frec_decode(const void *bytes, size_t len, sc_frec_t *r)
{
    const uint8_t *h = bytes;
    memset(r, 0, sizeof(*r));
    if (!h || len < SC_FREC_HEADER || get_le32(h) != FREC_MAGIC || h[6] || h[7])
        return SC_ECORRUPT;
    r->type = (sc_frec_type_t)h[4];
    r->flags = h[5];
    r->origin = get_le64(h + 8);
    r->hlc = get_le64(h + 16);
    memcpy(r->key, h + 24, SC_KEY_BYTES);
    memcpy(r->key2, h + 40, SC_KEY_BYTES);
    r->a = get_le64(h + 56);
    r->b = get_le64(h + 64);
    sc_slice_t *parts[] = {&r->ns, &r->tenant, &r->model, &r->embedder, &r->payload};
    uint64_t total = SC_FREC_HEADER;
    const char *p = (const char *)h + SC_FREC_HEADER;
    for (int i = 0; i < 5; i++) {
        uint32_t n = get_le32(h + 72 + 4 * i);
        total += n;
        if (total > len)
            return SC_ECORRUPT;
        parts[i]->ptr = n ? p : "";
        parts[i]->len = n;
        p += n;
    }
    if (total != len)
        return SC_ECORRUPT;
    return check_parts(r);
}
