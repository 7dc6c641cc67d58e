/* tests/cache/fleet_helpers.h -- what the fleet's store-level tests share
 * (tests/cache/fleet_store.c, tests/cache/fleet.c): entry keys by number,
 * a store of a small entry, the other write ops, and "is entry i there".
 * Each waits for the writer (store_helpers.h). Header-only, static inline. */
#ifndef SC_TESTS_FLEET_HELPERS_H
#define SC_TESTS_FLEET_HELPERS_H

#include <string.h>

#include "sc_store.h"
#include "store_helpers.h"

/* The key of entry number 'i'. */
static inline void fh_key(uint8_t key[SC_KEY_BYTES], unsigned i)
{
    memset(key, 0, SC_KEY_BYTES);
    memcpy(key, &i, sizeof(i));
    key[SC_KEY_BYTES - 1] = 0xcd;
}

/* Stores entry 'i' of namespace 'ns' answering 'resp' (JSON), expiring at
 * 'expires_ms' (0 = never), with a 3-d vector when 'with_vec'. */
static inline int fh_put(sc_store_t *s, unsigned i, const char *ns, const char *resp,
                         uint64_t expires_ms, int with_vec)
{
    sc_write_op_t op = {.type = SC_OP_PUT};
    fh_key(op.key, i);
    float vec[3] = {1, 0, 0};
    sc_entry_t e = {.created_ms = sc_now_ms(),
                    .expires_ms = expires_ms,
                    .scope = 9,
                    .ns = {ns, strlen(ns)},
                    .tenant = {"t", 1},
                    .model = {"m", 1},
                    .text = {"q", 1},
                    .response = {resp, strlen(resp)},
                    .vector = with_vec ? vec : NULL,
                    .dim = with_vec ? 3 : 0};
    ck_assert_int_eq(sc_store_encode(&e, &op.record), 0);
    int rc = th_store_write(s, &op);
    sc_write_op_clear(&op);
    return rc;
}

/* Any other write op: on entry 'i' (DELETE, VALIDATION, NEGATIVE with 'i'
 * and 'i' + 1), namespace 'ns' (NS_*, INVALIDATE; NULL invalidates all)
 * with settings or record 'doc'. */
static inline int fh_write(sc_store_t *s, sc_op_type_t type, unsigned i, const char *ns,
                           const char *doc)
{
    sc_write_op_t op = {.type = type};
    fh_key(op.key, i);
    if (ns)
        op.ns = strdup(ns);
    if (doc)
        sc_buf_puts(&op.record, doc);
    if (type == SC_OP_INVALIDATE && !ns)
        op.all = 1;
    if (type == SC_OP_NEGATIVE)
        fh_key(op.key2, i + 1);
    if (type == SC_OP_VALIDATION)
        op.count = 100;
    int rc = th_store_write(s, &op);
    sc_write_op_clear(&op);
    return rc;
}

/* 1 if entry 'i' is there; '*dim' (may be NULL) receives its vector's size. */
static inline int fh_has(sc_store_t *s, unsigned i, uint32_t *dim)
{
    sc_store_reader_t *r;
    ck_assert_int_eq(sc_store_reader_create(s, &r), 0);
    ck_assert_int_eq(sc_store_read_begin(r), 0);
    uint8_t key[SC_KEY_BYTES];
    fh_key(key, i);
    sc_entry_t e;
    int found = sc_store_get(r, key, &e, NULL) == 0;
    if (found && dim)
        *dim = e.dim;
    sc_store_read_end(r);
    sc_store_reader_destroy(r);
    return found;
}

#endif
