/* sc_proxy_request.h -- the cache engine's half of the transparent proxy: maps
 * OpenAI and Anthropic request bodies onto the canonical request the native
 * API uses (exact key, scope, semantic text), gives every embeddings input a
 * key of its own, and parses the proxy's request headers. Pure functions: no
 * I/O and no server state, so each rule below is pinned by a unit test. */
#ifndef SC_PROXY_REQUEST_H
#define SC_PROXY_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "sc_common.h"
#include "sc_request.h"

#include "sc_upstream_api.h"

/* ---- request headers ------------------------------------------------------
 * Cache-Control (RFC 9111 5.2.1 request directives; names case-insensitive,
 * arguments as token or quoted-string, OWS around commas, empty list
 * elements and unknown directives ignored):
 *   no-cache        skip the lookup, forward, and store the fresh answer
 *   no-store        neither look up nor store (pure pass-through)
 *   max-age=N       serve only entries younger than N seconds; several
 *                   max-age directives: the smallest wins; values beyond
 *                   2^31 count as 2^31 (RFC 9111 1.2.2)
 *   only-if-cached  answer from the cache or not at all (the server says 504)
 * X-Semcached-TTL: N          store with a TTL of N seconds (0 = never expires)
 * X-Semcached-Threshold: T    cosine in [-1, 1]; like the native "threshold"
 *                             the server lets it only raise the namespace's
 * X-Semcached-Namespace: ns   validated like the native "namespace"
 * A value outside these forms is SC_EINVAL with a sentence naming the header. */
typedef struct {
    sc_slice_t cache_control; /* ptr NULL = header absent; several lines joined
                                 with "," by the caller (RFC 9110 5.3) */
    sc_slice_t ttl;           /* X-Semcached-TTL */
    sc_slice_t threshold;     /* X-Semcached-Threshold */
    sc_slice_t ns;            /* X-Semcached-Namespace */
} sc_proxy_headers_t;

typedef struct {
    int no_cache;
    int no_store;
    int only_if_cached;
    int has_max_age;
    int64_t max_age_s;
    int has_ttl;
    int64_t ttl_s;
    int has_threshold;
    double threshold;
    const char *ns; /* borrowed from the header value (whitespace
                       trimmed); NULL when the header is absent */
    size_t ns_len;
} sc_proxy_controls_t;

/* Parses the header values in 'h' (borrowed) into 'out' (zeroed first).
 * 0, or SC_EINVAL with a sentence in 'err'. */
int sc_proxy_controls_parse(const sc_proxy_headers_t *h, sc_proxy_controls_t *out, char *err,
                            size_t err_cap);

/* ---- chat-style requests ----------------------------------------------------
 * What the server knows besides the body. Everything is borrowed for the call
 * (the parsed request keeps copies). 'ns' and 'tenant' are final: the server
 * derives them from X-Semcached-Namespace or the API key (the tenant is
 * already a keyed hash of it); controls->ns is not consulted here. */
typedef struct {
    const char *ns; /* NULL = SC_DEFAULT_NAMESPACE */
    size_t ns_len;
    const char *tenant; /* NULL = "" */
    size_t tenant_len;
    const sc_proxy_controls_t *controls; /* NULL = no header controls */
} sc_proxy_ctx_t;

typedef struct {
    sc_request_t req; /* owned: key, scope, text, model, ns, tenant,
                         has_max_age / has_threshold / has_ttl from the
                         controls. req.root is the canonical request
                         ({"api","namespace","tenant","model","messages",
                         "params"}) and holds references into the body,
                         so 'req' may be moved out and freed on its own
                         with sc_request_free. */
    sc_api_t api;
    int stream;        /* "stream": true */
    int include_usage; /* "stream_options": {"include_usage": true} */
} sc_proxy_request_t;

/* Maps a chat, responses or messages body onto the canonical request:
 *
 *  model      "model" (required, 1..SC_MAX_MODEL bytes).
 *  messages   chat and messages: "messages", as sent. responses: "input"; a
 *             string is one {"role":"user","content":...} message; in an array,
 *             message items (no "type", or "type":"message") lose "type" and
 *             every other item (function_call, function_call_output,
 *             reasoning, ...) is kept verbatim as history.
 *  params     every other top-level field: Anthropic's "system", "tools",
 *             "max_tokens", OpenAI's "n", "temperature", "seed", "tools",
 *             "tool_choice", "response_format", "logprobs", Responses'
 *             "instructions", ... So they change the key AND the scope.
 *  left out   (never change the answer) sc_ignored_params ("user", "stream",
 *             "stream_options", "store", "metadata" -- Anthropic's
 *             metadata.user_id with it --, "service_tier", "request_id"),
 *             and OpenAI's other end-user and routing hints
 *             "safety_identifier", "prompt_cache_key", "prompt_cache_retention".
 *  api        sc_api_key_name(api), beside "params": a client's own field
 *             named "api" is an ordinary parameter and cannot collide.
 *  text       the final message's text when its role is "user": string
 *             content, or the "text" of its parts of type "text" (chat,
 *             messages) or "input_text" (responses), joined by newlines. A
 *             final turn of only tool_result blocks, a tool or assistant turn,
 *             or a non-message item has no text: the request is exact-only.
 *  scope      the key's input with the final user message's text parts
 *             emptied: a string content is left out, text parts keep their
 *             other members, and images, files and tool results stay -- a
 *             semantic match may differ in the wording only (stricter than
 *             the native scope, which drops the whole final content).
 *
 * Responses requests are cached only when self-contained: no
 * "previous_response_id", no "conversation", "store" false or absent,
 * not "background", and a "prompt" template only when pinned to a "version".
 * Otherwise SC_ENOTCACHEABLE.
 *
 * Returns 0 ('out' owned by the caller: sc_proxy_request_free);
 *  SC_ENOTCACHEABLE when the body is not JSON (also: duplicate keys) or the
 *   request is not self-contained: the server passes it through uncached;
 *   'err' says why (for logs);
 *  SC_EINVAL when the JSON is malformed for the API (not an object, no
 *   model, messages not an array, bad ctx namespace, ...): 'err' holds a
 *   sentence for the API's own 400 answer;
 *  SC_ENOMEM.
 * 'out' is always safe to pass to sc_proxy_request_free; after a non-zero
 * return it holds nothing to free (api, stream and include_usage are set as
 * far as they could be read, so a pass-through can still be streamed). */
int sc_proxy_request_parse(sc_proxy_request_t *out, sc_api_t api, const char *body, size_t len,
                           const sc_proxy_ctx_t *ctx, char *err, size_t err_cap);
void sc_proxy_request_free(sc_proxy_request_t *r);

/* ---- embeddings -------------------------------------------------------------
 * One exact key per input, so a batch is looked up input by input and only
 * the missing inputs go upstream. Each key hashes api "openai.embeddings",
 * namespace, tenant, model, the input item (a string or an array of token
 * ids) and the parameters other than "input", "encoding_format" (the server
 * stores floats and renders either format) and the ignored ones above --
 * that is "dimensions" and anything a future API adds. An input's key does
 * not depend on its position in the batch. Embeddings have no scope and no
 * semantic text. max-age and TTL are the server's own controls (the
 * sc_proxy_controls_t it parsed): they apply to every input alike. */
typedef struct {
    json_t *root;                  /* owned: {"namespace","tenant","model","params",
                                      "input":[items]}; the strings below point into it */
    json_t *body;                  /* owned: the client's decoded body */
    const json_t *items;           /* root's "input": the inputs in the client's order */
    size_t n;                      /* number of inputs (>= 1) */
    uint8_t (*keys)[SC_KEY_BYTES]; /* owned: keys[i] is input i's exact key */
    sc_slice_t ns, tenant, model;  /* point into 'root' (as sc_entry_t takes them) */
    int base64;                    /* the client asked for encoding_format "base64" */
} sc_proxy_embeddings_t;

/* Decodes an embeddings body: "input" is a string, an array of strings, an
 * array of token ids (one input) or an array of token-id arrays. Of 'ctx'
 * only the namespace and tenant are used.
 * Returns as sc_proxy_request_parse does (0, SC_ENOTCACHEABLE for non-JSON,
 * SC_EINVAL, SC_ENOMEM); free with sc_proxy_embeddings_free either way. */
int sc_proxy_embeddings_parse(sc_proxy_embeddings_t *out, const char *body, size_t len,
                              const sc_proxy_ctx_t *ctx, char *err, size_t err_cap);
void sc_proxy_embeddings_free(sc_proxy_embeddings_t *e);

/* The upstream request for the inputs missing[0..n_missing) (indexes into
 * the client's inputs, each once): the client's body with "input" the array
 * of those items in that order and "encoding_format" "float". Appended to
 * 'out' as compact JSON. 0, SC_EINVAL (bad index) or SC_ENOMEM. */
int sc_proxy_embeddings_upstream_body(const sc_proxy_embeddings_t *e, const size_t *missing,
                                      size_t n_missing, sc_buf_t *out);

/* Token counts of an embeddings answer. */
typedef struct {
    uint64_t prompt_tokens;
    uint64_t total_tokens;
} sc_proxy_usage_t;

/* Decodes upstream's answer to that request: for every j, vecs[missing[j]]
 * becomes a malloc'd copy (the caller frees) of the embedding at "index" j,
 * dims[missing[j]] its length; the vectors are stored as given (not
 * normalized). Upstream's "usage" is ADDED to '*usage' (a batch fetched in
 * several calls sums up; NULL = not wanted). On failure nothing is allocated and SC_EREMOTE
 * comes with a sentence in 'err' (or SC_ENOMEM). */
int sc_proxy_embeddings_upstream_answer(const sc_proxy_embeddings_t *e, const char *body,
                                        size_t len, const size_t *missing, size_t n_missing,
                                        float **vecs, uint32_t *dims, sc_proxy_usage_t *usage,
                                        char *err, size_t err_cap);

/* Appends the client's answer to 'out': {"object":"list","data":[{"object":
 * "embedding","index":i,"embedding":...}],"model":...,"usage":{...}} with
 * vecs[i] (dims[i] floats, borrowed; cached or fetched) for every input i in
 * the client's order, as JSON numbers (each float32 round-trips) or, when
 * e->base64, base64 of little-endian float32. 'model' NULL = the request's.
 * 'usage' (NULL = zeros) is what upstream reported for THIS request's
 * fetches: tokens of the missing inputs only, 0 for a batch served wholly
 * from the cache -- what the provider billed, not what the batch would cost.
 * 0, SC_EINVAL (a missing or non-finite vector) or SC_ENOMEM. */
int sc_proxy_embeddings_answer(const sc_proxy_embeddings_t *e, const float *const *vecs,
                               const uint32_t *dims, const char *model,
                               const sc_proxy_usage_t *usage, sc_buf_t *out);

#endif
