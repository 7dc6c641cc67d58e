/* proxy_internal.h -- helpers shared by the proxy's request mapping
 * (proxy_request.c) and its embeddings batching (proxy_embeddings.c).
 * Internal to cache/; the public API is sc_proxy_request.h. */
#ifndef SC_PROXY_INTERNAL_H
#define SC_PROXY_INTERNAL_H

#include "sc_proxy_request.h"

/* Decodes a provider body. A body that is not JSON (or has duplicate keys,
 * which providers resolve differently) is SC_ENOTCACHEABLE with the reason
 * in 'err'; on success '*out' is owned by the caller. */
int sc_proxy_load(const char *body, size_t len, json_t **out, char *err, size_t err_cap);

/* Starts the canonical request of 'body' (a JSON object, borrowed) in '*out'
 * (a new object, owned by the caller on success): "api", "namespace" and
 * "tenant" from 'ctx', the validated "model", and "params": every member of
 * 'body' but "model", the names in 'mapped' (NULL-terminated) and the fields
 * that never change the answer. SC_EINVAL with a sentence, or SC_ENOMEM. */
int sc_proxy_canon_start(json_t *body, sc_api_t api, const char *const *mapped,
                         const sc_proxy_ctx_t *ctx, json_t **out, char *err, size_t err_cap);

/* Points the fields of 'c' at the canonical request 'root' (borrowed). */
void sc_proxy_canon_fill(const json_t *root, sc_canon_req_t *c);

#endif
