/* sc_request.h -- decoding a lookup/store request body and deriving its keys.
 * The exact key is XXH3-128 over a canonical encoding (sorted object keys, no
 * insignificant whitespace, equal numbers written alike) of everything that can
 * change the model's answer; the scope is XXH3-64 over the same minus the
 * semantic text (the final user message), so semantic matches never cross it. */
#ifndef SC_REQUEST_H
#define SC_REQUEST_H

#include <jansson.h>
#include <stdint.h>

#include "sc_common.h"
#include "sc_key.h"
#include "sc_vec.h"

typedef enum { SC_REQ_LOOKUP = 1, SC_REQ_STORE = 2 } sc_req_kind_t;

#define SC_MAX_NAMESPACE 128
#define SC_MAX_TENANT 256
#define SC_MAX_MODEL 256
#define SC_DEFAULT_NAMESPACE "default"

typedef struct sc_request_s {
    json_t *root;            /* owned: the decoded body; freed by sc_request_free */
    const char *ns;          /* the strings below point into 'root' */
    size_t ns_len;
    const char *tenant;
    size_t tenant_len;
    const char *model;
    size_t model_len;
    sc_buf_t text;           /* owned: semantic text ("" when there is none) */
    uint8_t key[SC_KEY_BYTES];
    uint64_t scope;          /* fingerprint of everything but the semantic text */
    int has_max_age;
    double max_age_s;        /* lookup: reject entries older than this */
    int has_ttl;
    int64_t ttl_s;           /* store: 0 = never expires */
    json_t *response;        /* store: borrowed from 'root' */
    float *vec;              /* owned: "embedding", L2-normalized; NULL if absent */
    uint32_t dim;
    const char *embedder;    /* "embedder" (borrowed from 'root'), or NULL */
    int has_threshold;
    double threshold;        /* lookup: requested cosine threshold */
    int has_usage;
    uint32_t prompt_tokens;  /* store: from "usage" */
    uint32_t completion_tokens;
} sc_request_t;

/* Decodes 'body' as a request of 'kind'. On SC_EINVAL, 'err' holds a sentence
 * for the client (problem+json detail). On success the caller owns 'req' and
 * releases it with sc_request_free. On failure nothing needs freeing. */
int sc_request_parse(sc_request_t *req, sc_req_kind_t kind, const char *body, size_t len,
                     char *err, size_t err_cap);
void sc_request_free(sc_request_t *req);

/* Writes the canonical encoding of 'v' into 'out' (appending). 'v' may be any
 * JSON value; numbers that are equal encode alike (1, 1.0 and 1e0 all as 1). */
int sc_canonical_json(const json_t *v, sc_buf_t *out);

/* Request parameters that never change the answer and are left out of the key
 * (NULL-terminated); documented in the README. */
extern const char *const sc_ignored_params[];

#endif
