/* request_internal.h -- what request.c (the jansson path) and request_fast.c
 * (the one-pass lookup decoder) share, so both accept the same fields and lay
 * out the same canonical bytes: the field list, the fixed parts of the
 * encoding, and the fast path's copy of a body. */
#ifndef SC_REQUEST_INTERNAL_H
#define SC_REQUEST_INTERNAL_H

#include "sc_request.h"

/* The top-level fields a lookup may carry: X(id, name) for each, and as a
 * NULL-terminated list of names in the same order. */
#define SC__LOOKUP_FIELDS(X)                                                                       \
    X(NAMESPACE, "namespace")                                                                      \
    X(TENANT, "tenant")                                                                            \
    X(MODEL, "model")                                                                              \
    X(PROMPT, "prompt")                                                                            \
    X(MESSAGES, "messages")                                                                        \
    X(PARAMS, "params")                                                                            \
    X(MAX_AGE_S, "max_age_s")                                                                      \
    X(EMBEDDING, "embedding")                                                                      \
    X(EMBEDDER, "embedder")                                                                        \
    X(THRESHOLD, "threshold")                                                                      \
    X(LEASE, "lease")
extern const char *const sc__lookup_fields[];

/* Writes the encoding's opening up to the params value:
 * {"api":..,"model":..,"namespace":..,"params":  ('api' only when set).
 * The caller writes the params object, then sc__canon_tenant. */
int sc__canon_open(const sc_canon_req_t *c, sc_buf_t *out);
/* Writes ,"tenant":"..": the end of the head key and scope share. */
int sc__canon_tenant(const sc_canon_req_t *c, sc_buf_t *out);
/* The exact key of a complete encoding: XXH3-128 in canonical byte order. */
void sc__canon_key(const char *enc, size_t len, uint8_t key[SC_KEY_BYTES]);
/* The scope of a complete scope encoding: XXH3-64. */
uint64_t sc__canon_scope(const char *enc, size_t len);

/* A fast-path request's own copy of its body (for sc_request_json) and of
 * the strings req->ns, tenant, model and embedder point at. */
struct sc_request_src_s {
    json_t *root; /* owned: the body decoded by jansson on demand, or NULL */
    size_t len;   /* of the body */
    char *strings; /* NUL-terminated field strings, after the body in 'bytes' */
    char bytes[]; /* the body, a NUL, then 'strings' */
};

#endif
