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

/* A lookup decoded by the fast path keeps its body here instead of a tree. */
typedef struct sc_request_src_s sc_request_src_t;

typedef struct sc_request_s {
    json_t *root;          /* owned: the decoded body (for a proxy request, the
                              canonical request built from it), or NULL when the
                              fast path decoded it: read it with sc_request_json */
    sc_request_src_t *src; /* owned: the fast path's copy of the body, or NULL */
    const char *ns;        /* the strings below point into 'root' or 'src' */
    size_t ns_len;
    const char *tenant;
    size_t tenant_len;
    const char *model;
    size_t model_len;
    sc_buf_t text; /* owned: semantic text ("" when there is none) */
    uint8_t key[SC_KEY_BYTES];
    uint64_t scope; /* fingerprint of everything but the semantic text */
    int has_max_age;
    double max_age_s; /* lookup: reject entries older than this */
    int has_ttl;
    int64_t ttl_s;    /* store: 0 = never expires */
    json_t *response; /* store: borrowed from 'root' */
    float *vec;       /* owned: "embedding", L2-normalized; NULL if absent */
    uint32_t dim;
    const char *embedder; /* "embedder" (borrowed from 'root'), or NULL */
    int has_threshold;
    double threshold; /* lookup: requested cosine threshold */
    int lease;        /* lookup: "lease": true (a miss leads until its store) */
    int has_usage;
    uint32_t prompt_tokens; /* store: from "usage" */
    uint32_t completion_tokens;
} sc_request_t;

/* Decodes 'body' as a request of 'kind'. On SC_EINVAL, 'err' holds a sentence
 * for the client (problem+json detail). On success the caller owns 'req' and
 * releases it with sc_request_free. On failure nothing needs freeing. A
 * lookup goes through sc_request_parse_fast first; what it declines, and
 * every store, is decoded with jansson. 'body' is only read during the call. */
int sc_request_parse(sc_request_t *req, sc_req_kind_t kind, const char *body, size_t len, char *err,
                     size_t err_cap);
/* The lookup decoder of the hot path (request_fast.c): one pass over 'body',
 * no jansson tree; req->root stays NULL and req->src holds a copy of the
 * body. 0 with 'req' exactly as sc_request_parse's jansson path would fill it
 * (same key, scope, fields and text); SC_EINVAL when it declines: anything it
 * does not fully handle or that is invalid (the jansson path then decides
 * and words the error); SC_ENOMEM. Nothing needs freeing on failure. */
int sc_request_parse_fast(sc_request_t *req, const char *body, size_t len);
/* The decoded body: req->root, or for a fast-path request the body decoded
 * by jansson now (once; kept with the request). Borrowed: lives as long as
 * 'req'. NULL only when out of memory. */
json_t *sc_request_json(const sc_request_t *req);
/* The same from an already decoded body. Takes ownership of 'root' whatever
 * the outcome: on success it becomes req->root, on failure it is released. */
int sc_request_from_json(sc_request_t *req, sc_req_kind_t kind, json_t *root, char *err,
                         size_t err_cap);
void sc_request_free(sc_request_t *req);

/* What a key is derived from. Native requests leave 'api' NULL, which adds
 * nothing to the encoding (their keys never change); the proxy names its API
 * there ("openai.chat", ...), a member beside "params" rather than inside it,
 * so no request parameter and no native request can produce it. All pointers
 * are borrowed for the call. */
typedef struct {
    const char *api; /* NUL-terminated, or NULL for the native API */
    const char *ns;
    size_t ns_len;
    const char *tenant;
    size_t tenant_len;
    const char *model;
    size_t model_len;
    const json_t *params;  /* object, or NULL for {}; sc_ignored_params are left out */
    const char *body_name; /* "prompt", "messages" or "input" (embeddings) */
    const json_t *body;    /* the value hashed under body_name */
    /* "messages" only: the final message as the scope sees it, or NULL for the
     * native rule (a final user message counts without its "content"). */
    const json_t *scope_last;
} sc_canon_req_t;

/* Writes the exact key (XXH3-128) and, when 'scope' is not NULL, the scope
 * (XXH3-64 of the same minus the semantic text: for "messages" the history
 * with the final message as above, otherwise just the form). 0 or SC_ENOMEM. */
int sc_canon_hash(const sc_canon_req_t *c, uint8_t key[SC_KEY_BYTES], uint64_t *scope);

/* Appends the text of a message's content: a string, or the "text" of every
 * part whose "type" is 'part_type', joined by newlines. 0 or SC_ENOMEM. */
int sc_request_content_text(const json_t *content, const char *part_type, sc_buf_t *out);
/* Checks a "messages" array: non-empty, each an object with a non-empty
 * string "role" and a "content" that is absent, null, a string or an array.
 * 0, or SC_EINVAL with a sentence in 'err'. */
int sc_request_check_messages(const json_t *messages, char *err, size_t err_cap);
/* Empties 'text' when it holds only whitespace: such a text is no text. */
void sc_request_drop_blank_text(sc_buf_t *text);
/* 1 when 's' is a valid namespace name: 1 to SC_MAX_NAMESPACE bytes of
 * [A-Za-z0-9_.-]. */
int sc_request_namespace_valid(const char *s, size_t n);

/* Writes the canonical encoding of 'v' into 'out' (appending). 'v' may be any
 * JSON value; numbers that are equal encode alike (1, 1.0 and 1e0 all as 1). */
int sc_canonical_json(const json_t *v, sc_buf_t *out);

/* Request parameters that never change the answer and are left out of the key
 * (NULL-terminated); documented in the README. */
extern const char *const sc_ignored_params[];

#endif
