/* request.c -- decode and validate lookup/store bodies, canonicalize, and hash.
 * Unknown top-level fields are refused rather than ignored: a parameter sent in
 * the wrong place would otherwise be left out of the key and cause false hits. */
#define _GNU_SOURCE
#include "sc_request.h"
#include "sc_vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

const char *const sc_ignored_params[] = {
    "user",           /* end-user id for abuse tracking */
    "stream",         /* delivery, not content */
    "stream_options",
    "store",          /* provider-side retention flag */
    "metadata",       /* provider-side tags */
    "service_tier",   /* latency class, not content */
    "request_id",
    NULL,
};

static int is_ignored_param(const char *k)
{
    for (int i = 0; sc_ignored_params[i]; i++)
        if (strcmp(k, sc_ignored_params[i]) == 0)
            return 1;
    return 0;
}

/* ---- canonical JSON ---------------------------------------------------- */

static int cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int canon_number(double d, sc_buf_t *out)
{
    if (!isfinite(d))
        return SC_EINVAL; /* jansson never produces these; be safe anyway */
    return sc_buf_double(out, d + 0.0); /* + 0.0 turns -0 into 0 */
}

static int canon(const json_t *v, sc_buf_t *out, int (*skip)(const char *))
{
    switch (json_typeof(v)) {
    case JSON_NULL: return sc_buf_append(out, "null", 4);
    case JSON_TRUE: return sc_buf_append(out, "true", 4);
    case JSON_FALSE: return sc_buf_append(out, "false", 5);
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        if (i < 0 && sc_buf_append(out, "-", 1))
            return SC_ENOMEM;
        /* magnitude computed unsigned, so the most negative value works too */
        return sc_buf_u64(out, i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i);
    }
    case JSON_REAL: return canon_number(json_real_value(v), out);
    case JSON_STRING: return sc_buf_json_str(out, json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        if (sc_buf_append(out, "[", 1))
            return SC_ENOMEM;
        for (size_t i = 0; i < json_array_size(v); i++) {
            if ((i && sc_buf_append(out, ",", 1)) || canon(json_array_get(v, i), out, NULL))
                return SC_ENOMEM;
        }
        return sc_buf_append(out, "]", 1);
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v), k = 0;
        /* Request objects are small: sort their keys on the stack. */
        const char *small[16];
        const char **keys = n <= 16 ? small : malloc(n * sizeof(*keys));
        if (!keys)
            return SC_ENOMEM;
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val) {
            if (!skip || !skip(key))
                keys[k++] = key;
        }
        qsort(keys, k, sizeof(*keys), cmp_keys);
        int rc = sc_buf_append(out, "{", 1);
        for (size_t i = 0; i < k && !rc; i++) {
            if (i)
                rc = sc_buf_append(out, ",", 1);
            if (!rc)
                rc = sc_buf_json_str(out, keys[i], strlen(keys[i]));
            if (!rc)
                rc = sc_buf_append(out, ":", 1);
            if (!rc)
                rc = canon(json_object_get(v, keys[i]), out, NULL);
        }
        if (keys != small)
            free(keys);
        return rc ? rc : sc_buf_append(out, "}", 1);
    }
    }
    return SC_EINVAL;
}

int sc_canonical_json(const json_t *v, sc_buf_t *out)
{
    return canon(v, out, NULL);
}

/* ---- validation ------------------------------------------------------- */

#define FAIL(...)                                    \
    do {                                             \
        snprintf(err, err_cap, __VA_ARGS__);         \
        rc = SC_EINVAL;                              \
        goto fail;                                   \
    } while (0)

static int valid_namespace(const char *s, size_t n)
{
    if (n == 0 || n > SC_MAX_NAMESPACE)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static const char *const lookup_fields[] = {"namespace", "tenant", "model", "prompt", "messages",
                                            "params", "max_age_s", "embedding", "embedder",
                                            "threshold", NULL};
static const char *const store_fields[] = {"namespace", "tenant", "model", "prompt", "messages",
                                           "params", "response", "ttl_s", "usage", "embedding",
                                           "embedder", NULL};

static int field_allowed(const char *const *fields, const char *k)
{
    for (int i = 0; fields[i]; i++)
        if (strcmp(fields[i], k) == 0)
            return 1;
    return 0;
}

/* Appends the text of a message content: a string, or the "text" of each
 * text part of a multi-part array joined by newlines. */
static int content_text(const json_t *content, sc_buf_t *out)
{
    if (json_is_string(content))
        return sc_buf_append(out, json_string_value(content), json_string_length(content));
    if (!json_is_array(content))
        return 0;
    int first = 1;
    for (size_t i = 0; i < json_array_size(content); i++) {
        const json_t *part = json_array_get(content, i);
        const json_t *type = json_object_get(part, "type");
        const json_t *text = json_object_get(part, "text");
        if (!json_is_string(type) || strcmp(json_string_value(type), "text") != 0 ||
            !json_is_string(text))
            continue;
        if ((!first && sc_buf_append(out, "\n", 1)) ||
            sc_buf_append(out, json_string_value(text), json_string_length(text)))
            return SC_ENOMEM;
        first = 0;
    }
    return 0;
}

static int only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '\f' &&
            s[i] != '\v')
            return 0;
    return 1;
}

static int skip_ignored(const char *k)
{
    return is_ignored_param(k);
}

static int skip_content(const char *k)
{
    return strcmp(k, "content") == 0;
}

/* Canonical prefix shared by key and scope: namespace, tenant, model, params. */
static int canon_head(const sc_request_t *req, const json_t *params, sc_buf_t *out)
{
    int rc = sc_buf_puts(out, "{\"model\":");
    rc = rc ? rc : sc_buf_json_str(out, req->model, req->model_len);
    rc = rc ? rc : sc_buf_puts(out, ",\"namespace\":");
    rc = rc ? rc : sc_buf_json_str(out, req->ns, req->ns_len);
    rc = rc ? rc : sc_buf_puts(out, ",\"params\":");
    rc = rc ? rc : (params ? canon(params, out, skip_ignored) : sc_buf_puts(out, "{}"));
    rc = rc ? rc : sc_buf_puts(out, ",\"tenant\":");
    rc = rc ? rc : sc_buf_json_str(out, req->tenant, req->tenant_len);
    return rc;
}

int sc_request_parse(sc_request_t *req, sc_req_kind_t kind, const char *body, size_t len,
                     char *err, size_t err_cap)
{
    int rc = 0;
    sc_buf_t canon_buf = {0};
    memset(req, 0, sizeof(*req));
    json_error_t jerr;
    req->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req->root) {
        snprintf(err, err_cap, "request body is not valid JSON: %s (line %d, column %d)",
                 jerr.text, jerr.line, jerr.column);
        return SC_EINVAL;
    }
    json_t *root = req->root;
    if (!json_is_object(root))
        FAIL("request body must be a JSON object");

    const char *const *fields = kind == SC_REQ_STORE ? store_fields : lookup_fields;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        if (!field_allowed(fields, k))
            FAIL("unknown field '%s' in a %s request (model parameters belong in \"params\")",
                 k, kind == SC_REQ_STORE ? "store" : "lookup");
    }

    json_t *ns = json_object_get(root, "namespace");
    if (ns) {
        if (!json_is_string(ns) || !valid_namespace(json_string_value(ns), json_string_length(ns)))
            FAIL("\"namespace\" must be a string of 1 to %d characters from [A-Za-z0-9_.-]",
                 SC_MAX_NAMESPACE);
        req->ns = json_string_value(ns);
        req->ns_len = json_string_length(ns);
    } else {
        req->ns = SC_DEFAULT_NAMESPACE;
        req->ns_len = strlen(SC_DEFAULT_NAMESPACE);
    }
    json_t *tenant = json_object_get(root, "tenant");
    if (tenant) {
        if (!json_is_string(tenant) || json_string_length(tenant) > SC_MAX_TENANT)
            FAIL("\"tenant\" must be a string of at most %d bytes", SC_MAX_TENANT);
        req->tenant = json_string_value(tenant);
        req->tenant_len = json_string_length(tenant);
    } else {
        req->tenant = "";
    }
    json_t *model = json_object_get(root, "model");
    if (!model)
        FAIL("\"model\" is required");
    if (!json_is_string(model) || json_string_length(model) == 0 ||
        json_string_length(model) > SC_MAX_MODEL)
        FAIL("\"model\" must be a non-empty string of at most %d bytes", SC_MAX_MODEL);
    req->model = json_string_value(model);
    req->model_len = json_string_length(model);

    json_t *prompt = json_object_get(root, "prompt");
    json_t *messages = json_object_get(root, "messages");
    if (prompt && messages)
        FAIL("give either \"prompt\" or \"messages\", not both");
    if (!prompt && !messages)
        FAIL("\"prompt\" or \"messages\" is required");
    if (prompt && !json_is_string(prompt))
        FAIL("\"prompt\" must be a string");
    size_t n_msgs = 0;
    if (messages) {
        if (!json_is_array(messages) || json_array_size(messages) == 0)
            FAIL("\"messages\" must be a non-empty array");
        n_msgs = json_array_size(messages);
        for (size_t i = 0; i < n_msgs; i++) {
            json_t *m = json_array_get(messages, i);
            if (!json_is_object(m))
                FAIL("messages[%zu] must be an object", i);
            json_t *role = json_object_get(m, "role");
            if (!json_is_string(role) || json_string_length(role) == 0)
                FAIL("messages[%zu].role must be a non-empty string", i);
            json_t *content = json_object_get(m, "content");
            if (content && !json_is_string(content) && !json_is_array(content) &&
                !json_is_null(content))
                FAIL("messages[%zu].content must be a string, an array of parts or null", i);
        }
    }
    json_t *params = json_object_get(root, "params");
    if (params && !json_is_object(params))
        FAIL("\"params\" must be an object");

    json_t *max_age = json_object_get(root, "max_age_s");
    if (max_age) {
        if (!json_is_number(max_age) || json_number_value(max_age) < 0)
            FAIL("\"max_age_s\" must be a non-negative number");
        req->has_max_age = 1;
        req->max_age_s = json_number_value(max_age);
    }
    json_t *threshold = json_object_get(root, "threshold");
    if (threshold) {
        if (!json_is_number(threshold) || !(json_number_value(threshold) >= -1 &&
                                            json_number_value(threshold) <= 1))
            FAIL("\"threshold\" must be a cosine similarity in [-1, 1]");
        req->has_threshold = 1;
        req->threshold = json_number_value(threshold);
    }
    json_t *embedder = json_object_get(root, "embedder");
    if (embedder) {
        if (!json_is_string(embedder) || json_string_length(embedder) == 0 ||
            json_string_length(embedder) >= 128)
            FAIL("\"embedder\" must be a string of 1 to 127 bytes");
        req->embedder = json_string_value(embedder);
    }
    json_t *embedding = json_object_get(root, "embedding");
    if (embedding && (rc = sc_embedding_decode(embedding, &req->vec, &req->dim, err, err_cap)))
        goto fail;
    if (kind == SC_REQ_STORE) {
        req->response = json_object_get(root, "response");
        if (!req->response)
            FAIL("\"response\" is required in a store request");
        json_t *ttl = json_object_get(root, "ttl_s");
        if (ttl) {
            if (!json_is_integer(ttl) || json_integer_value(ttl) < 0)
                FAIL("\"ttl_s\" must be a non-negative integer (0 = never expires)");
            req->has_ttl = 1;
            req->ttl_s = json_integer_value(ttl);
        }
        json_t *usage = json_object_get(root, "usage");
        if (usage) {
            if (!json_is_object(usage))
                FAIL("\"usage\" must be an object");
            json_t *pt = json_object_get(usage, "prompt_tokens");
            json_t *ct = json_object_get(usage, "completion_tokens");
            if ((pt && (!json_is_integer(pt) || json_integer_value(pt) < 0 ||
                        json_integer_value(pt) > UINT32_MAX)) ||
                (ct && (!json_is_integer(ct) || json_integer_value(ct) < 0 ||
                        json_integer_value(ct) > UINT32_MAX)))
                FAIL("usage.prompt_tokens and usage.completion_tokens must be "
                     "non-negative integers");
            req->has_usage = 1;
            req->prompt_tokens = pt ? (uint32_t)json_integer_value(pt) : 0;
            req->completion_tokens = ct ? (uint32_t)json_integer_value(ct) : 0;
        }
    }

    /* Semantic text: the prompt, or the final message when it is the user's.
     * A conversation ending in a tool or assistant turn has none. */
    json_t *last = n_msgs ? json_array_get(messages, n_msgs - 1) : NULL;
    int last_is_user = last && strcmp(json_string_value(json_object_get(last, "role")), "user") == 0;
    if (prompt)
        rc = sc_buf_append(&req->text, json_string_value(prompt), json_string_length(prompt));
    else if (last_is_user)
        rc = content_text(json_object_get(last, "content"), &req->text);
    if (rc)
        goto fail;
    if (only_space(req->text.data ? req->text.data : "", req->text.len))
        sc_buf_reset(&req->text);

    /* Exact key: everything that changes the answer. The head is shared
     * with the scope below, so it is built once. */
    rc = sc_buf_reserve(&canon_buf, 512);
    rc = rc ? rc : canon_head(req, params, &canon_buf);
    size_t head_len = canon_buf.len;
    rc = rc ? rc : sc_buf_puts(&canon_buf, prompt ? ",\"prompt\":" : ",\"messages\":");
    rc = rc ? rc : canon(prompt ? prompt : messages, &canon_buf, NULL);
    rc = rc ? rc : sc_buf_puts(&canon_buf, ",\"v\":1}");
    if (rc)
        goto fail;
    XXH128_hash_t h = XXH3_128bits(canon_buf.data, canon_buf.len);
    XXH128_canonical_t hc;
    XXH128_canonicalFromHash(&hc, h);
    memcpy(req->key, hc.digest, SC_KEY_BYTES);

    /* Scope: the same minus the final user message's content, which is the
     * only part a semantic match may differ in. */
    canon_buf.len = head_len;
    if (prompt) {
        rc = sc_buf_puts(&canon_buf, ",\"form\":\"prompt\"");
    } else if (!rc) {
        rc = sc_buf_puts(&canon_buf, ",\"history\":[");
        for (size_t i = 0; i < n_msgs && !rc; i++) {
            json_t *m = json_array_get(messages, i);
            if (i)
                rc = sc_buf_append(&canon_buf, ",", 1);
            if (rc)
                break;
            rc = canon(m, &canon_buf, i == n_msgs - 1 && last_is_user ? skip_content : NULL);
        }
        rc = rc ? rc : sc_buf_puts(&canon_buf, "]");
    }
    rc = rc ? rc : sc_buf_puts(&canon_buf, ",\"v\":1}");
    if (rc)
        goto fail;
    req->scope = XXH3_64bits(canon_buf.data, canon_buf.len);
    sc_buf_free(&canon_buf);
    return 0;

fail:
    if (rc == SC_ENOMEM)
        snprintf(err, err_cap, "out of memory while decoding the request");
    sc_buf_free(&canon_buf);
    sc_request_free(req);
    return rc;
}

void sc_request_free(sc_request_t *req)
{
    if (req->root)
        json_decref(req->root);
    free(req->vec);
    sc_buf_free(&req->text);
    memset(req, 0, sizeof(*req));
}
