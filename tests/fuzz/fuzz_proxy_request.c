/* fuzz_proxy_request.c -- libFuzzer harness for the proxy's request mapping
 * (cache/proxy_request.c, cache/proxy_embeddings.c): any bytes, as a body of
 * each provider API and as each header value, must map, pass through
 * (SC_ENOTCACHEABLE) or be refused (SC_EINVAL) with a message; keys must be
 * deterministic, and an embeddings batch sent upstream in reverse order must
 * key the same inputs alike and render an answer that is JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sc_proxy_request.h"

static const sc_proxy_ctx_t proxy_fuzz_ctx = {
    .ns = "fuzz", .ns_len = 4, .tenant = "t", .tenant_len = 1};

static int proxy_fuzz_refusal(int rc, const char *err)
{
    return (rc == SC_EINVAL || rc == SC_ENOTCACHEABLE) && err[0];
}

static void proxy_fuzz_chat(const uint8_t *data, size_t size, sc_api_t api)
{
    sc_proxy_request_t a, b;
    char err[256] = "";
    int rc = sc_proxy_request_parse(&a, api, (const char *)data, size, &proxy_fuzz_ctx, err,
                                    sizeof(err));
    if (rc) {
        if (!proxy_fuzz_refusal(rc, err) && rc != SC_ENOMEM)
            __builtin_trap();
        if (a.req.root)
            __builtin_trap(); /* nothing to free after a failure */
        return;
    }
    if (!a.req.root || a.req.ns_len != 4 || a.req.model_len == 0 ||
        sc_proxy_request_parse(&b, api, (const char *)data, size, &proxy_fuzz_ctx, err,
                               sizeof(err)) ||
        memcmp(a.req.key, b.req.key, SC_KEY_BYTES) || a.req.scope != b.req.scope ||
        a.req.text.len != b.req.text.len)
        __builtin_trap();
    sc_proxy_request_free(&a);
    sc_proxy_request_free(&b);
}

static void proxy_fuzz_embeddings(const uint8_t *data, size_t size)
{
    sc_proxy_embeddings_t e, up;
    char err[256] = "";
    int rc =
        sc_proxy_embeddings_parse(&e, (const char *)data, size, &proxy_fuzz_ctx, err, sizeof(err));
    if (rc) {
        if (!proxy_fuzz_refusal(rc, err) && rc != SC_ENOMEM)
            __builtin_trap();
        return;
    }
    size_t n = e.n;
    size_t *missing = malloc(n * sizeof(*missing));
    float *vals = malloc(n * sizeof(*vals));
    const float **vecs = malloc(n * sizeof(*vecs));
    uint32_t *dims = malloc(n * sizeof(*dims));
    sc_buf_t body = {0}, answer = {0};
    if (!n || !missing || !vals || !vecs || !dims)
        __builtin_trap();
    for (size_t j = 0; j < n; j++) {
        missing[j] = n - 1 - j;
        vals[j] = (float)j - 0.5f;
        vecs[j] = &vals[j];
        dims[j] = 1;
    }
    if (sc_proxy_embeddings_upstream_body(&e, missing, n, &body) ||
        sc_proxy_embeddings_parse(&up, body.data, body.len, &proxy_fuzz_ctx, err, sizeof(err)) ||
        up.n != n || up.base64)
        __builtin_trap();
    for (size_t j = 0; j < n; j++)
        if (memcmp(up.keys[j], e.keys[missing[j]], SC_KEY_BYTES))
            __builtin_trap(); /* an input's key does not depend on its position */
    if (sc_proxy_embeddings_answer(&e, vecs, dims, NULL, NULL, &answer))
        __builtin_trap();
    json_t *parsed = json_loadb(answer.data, answer.len, 0, NULL);
    if (!parsed || json_array_size(json_object_get(parsed, "data")) != n)
        __builtin_trap();
    json_decref(parsed);
    sc_proxy_embeddings_free(&up);
    sc_proxy_embeddings_free(&e);
    sc_buf_free(&body);
    sc_buf_free(&answer);
    free(missing);
    free(vals);
    free(vecs);
    free(dims);
}

static void proxy_fuzz_headers(const uint8_t *data, size_t size)
{
    sc_slice_t v = {(const char *)data, size};
    sc_proxy_headers_t hs[] = {{.cache_control = v}, {.ttl = v}, {.threshold = v}, {.ns = v}};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++) {
        sc_proxy_controls_t c;
        char err[256] = "";
        int rc = sc_proxy_controls_parse(&hs[i], &c, err, sizeof(err));
        if (rc) {
            if (rc != SC_EINVAL || !err[0])
                __builtin_trap();
            continue;
        }
        if ((c.has_max_age && (c.max_age_s < 0 || c.max_age_s > 2147483648LL)) ||
            (c.has_ttl && c.ttl_s < 0) ||
            (c.has_threshold && !(c.threshold >= -1 && c.threshold <= 1)) ||
            (c.ns && !sc_request_namespace_valid(c.ns, c.ns_len)))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    proxy_fuzz_chat(data, size, SC_API_OPENAI_CHAT);
    proxy_fuzz_chat(data, size, SC_API_OPENAI_RESPONSES);
    proxy_fuzz_chat(data, size, SC_API_ANTHROPIC_MESSAGES);
    proxy_fuzz_embeddings(data, size);
    proxy_fuzz_headers(data, size);
    return 0;
}
