/* request.c -- decode and validate lookup/store bodies, canonicalize, and hash.
 * Unknown top-level fields are refused rather than ignored: a parameter sent in
 * the wrong place would otherwise be left out of the key and cause false hits. */
#define _GNU_SOURCE
#include "request_internal.h"
#include "sc_vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

const char *const sc_ignored_params[] = {
    "user",                    /* end-user id for abuse tracking */
    "stream",                  /* delivery, not content */
    "stream_options", "store", /* provider-side retention flag */
    "metadata",                /* provider-side tags */
    "service_tier",            /* latency class, not content */
    "request_id",     NULL,
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
        return SC_EINVAL;               /* jansson never produces these; be safe anyway */
    return sc_buf_double(out, d + 0.0); /* + 0.0 turns -0 into 0 */
}

static int canon(const json_t *v, sc_buf_t *out, int (*skip)(const char *))
{
    switch (json_typeof(v)) {
    case JSON_NULL:
        return sc_buf_append(out, "null", 4);
    case JSON_TRUE:
        return sc_buf_append(out, "true", 4);
    case JSON_FALSE:
        return sc_buf_append(out, "false", 5);
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        if (i < 0 && sc_buf_append(out, "-", 1))
            return SC_ENOMEM;
        /* magnitude computed unsigned, so the most negative value works too */
        return sc_buf_u64(out, i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i);
    }
    case JSON_REAL:
        return canon_number(json_real_value(v), out);
    case JSON_STRING:
        return sc_buf_json_str(out, json_string_value(v), json_string_length(v));
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
        json_object_foreach((json_t *)v, key, val)
        {
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

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, err_cap, __VA_ARGS__);                                                       \
        rc = SC_EINVAL;                                                                            \
        goto fail;                                                                                 \
    } while (0)

int sc_request_namespace_valid(const char *s, size_t n)
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

#define FIELD_NAME(id, name) name,
const char *const sc__lookup_fields[] = {SC__LOOKUP_FIELDS(FIELD_NAME) NULL};
#undef FIELD_NAME
static const char *const store_fields[] = {"namespace", "tenant",    "model",    "prompt",
                                           "messages",  "params",    "response", "ttl_s",
                                           "usage",     "embedding", "embedder", NULL};

static int field_allowed(const char *const *fields, const char *k)
{
    for (int i = 0; fields[i]; i++)
        if (strcmp(fields[i], k) == 0)
            return 1;
    return 0;
}

/* Appends the text of a message content: a string, or the "text" of each part
 * of type 'part_type' in a multi-part array, joined by newlines. */
int sc_request_content_text(const json_t *content, const char *part_type, sc_buf_t *out)
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
        if (!json_is_string(type) || strcmp(json_string_value(type), part_type) != 0 ||
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

/* Canonical prefix shared by key and scope: api (proxy requests only, so
 * native encodings are unchanged), model, namespace, params, tenant. */
int sc__canon_open(const sc_canon_req_t *c, sc_buf_t *out)
{
    int rc = SC_BUF_LIT(out, "{");
    if (c->api) {
        rc = rc ? rc : SC_BUF_LIT(out, "\"api\":");
        rc = rc ? rc : sc_buf_json_str(out, c->api, strlen(c->api));
        rc = rc ? rc : SC_BUF_LIT(out, ",");
    }
    rc = rc ? rc : SC_BUF_LIT(out, "\"model\":");
    rc = rc ? rc : sc_buf_json_str(out, c->model, c->model_len);
    rc = rc ? rc : SC_BUF_LIT(out, ",\"namespace\":");
    rc = rc ? rc : sc_buf_json_str(out, c->ns, c->ns_len);
    return rc ? rc : SC_BUF_LIT(out, ",\"params\":");
}

int sc__canon_tenant(const sc_canon_req_t *c, sc_buf_t *out)
{
    int rc = SC_BUF_LIT(out, ",\"tenant\":");
    return rc ? rc : sc_buf_json_str(out, c->tenant, c->tenant_len);
}

void sc__canon_key(const char *enc, size_t len, uint8_t key[SC_KEY_BYTES])
{
    XXH128_canonical_t hc;
    XXH128_canonicalFromHash(&hc, XXH3_128bits(enc, len));
    memcpy(key, hc.digest, SC_KEY_BYTES);
}

uint64_t sc__canon_scope(const char *enc, size_t len)
{
    return XXH3_64bits(enc, len);
}

static int canon_head(const sc_canon_req_t *c, sc_buf_t *out)
{
    int rc = sc__canon_open(c, out);
    rc = rc ? rc : (c->params ? canon(c->params, out, skip_ignored) : sc_buf_puts(out, "{}"));
    return rc ? rc : sc__canon_tenant(c, out);
}

/* The scope's view of a conversation: every message, the final one as
 * 'c->scope_last' gives it or, by the native rule, without its "content"
 * when it is the user's. */
static int canon_history(const sc_canon_req_t *c, sc_buf_t *out)
{
    size_t n = json_array_size(c->body);
    const json_t *last = n ? json_array_get(c->body, n - 1) : NULL;
    const char *role = json_string_value(json_object_get(last, "role"));
    int last_is_user = role && strcmp(role, "user") == 0;
    int rc = sc_buf_puts(out, ",\"history\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = sc_buf_append(out, ",", 1);
        if (rc)
            break;
        if (i == n - 1 && c->scope_last)
            rc = canon(c->scope_last, out, NULL);
        else
            rc = canon(json_array_get(c->body, i), out,
                       i == n - 1 && last_is_user ? skip_content : NULL);
    }
    return rc ? rc : sc_buf_puts(out, "]");
}

int sc_canon_hash(const sc_canon_req_t *c, uint8_t key[SC_KEY_BYTES], uint64_t *scope)
{
    /* Exact key: everything that changes the answer. The head is shared
     * with the scope below, so it is built once. */
    sc_buf_t b = {0};
    int rc = sc_buf_reserve(&b, 512);
    rc = rc ? rc : canon_head(c, &b);
    size_t head_len = b.len;
    rc = rc ? rc : sc_buf_puts(&b, ",");
    rc = rc ? rc : sc_buf_json_str(&b, c->body_name, strlen(c->body_name));
    rc = rc ? rc : sc_buf_puts(&b, ":");
    rc = rc ? rc : canon(c->body, &b, NULL);
    rc = rc ? rc : sc_buf_puts(&b, ",\"v\":1}");
    if (!rc)
        sc__canon_key(b.data, b.len, key);
    /* Scope: the same minus the semantic text, the only part a semantic
     * match may differ in. */
    if (!rc && scope) {
        b.len = head_len;
        if (strcmp(c->body_name, "messages") == 0) {
            rc = canon_history(c, &b);
        } else {
            rc = sc_buf_puts(&b, ",\"form\":");
            rc = rc ? rc : sc_buf_json_str(&b, c->body_name, strlen(c->body_name));
        }
        rc = rc ? rc : sc_buf_puts(&b, ",\"v\":1}");
        if (!rc)
            *scope = sc__canon_scope(b.data, b.len);
    }
    sc_buf_free(&b);
    return rc;
}

int sc_request_check_messages(const json_t *messages, char *err, size_t err_cap)
{
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        snprintf(err, err_cap, "\"messages\" must be a non-empty array");
        return SC_EINVAL;
    }
    for (size_t i = 0; i < json_array_size(messages); i++) {
        const json_t *m = json_array_get(messages, i);
        const json_t *role = json_object_get(m, "role");
        const json_t *content = json_object_get(m, "content");
        if (!json_is_object(m))
            snprintf(err, err_cap, "messages[%zu] must be an object", i);
        else if (!json_is_string(role) || json_string_length(role) == 0)
            snprintf(err, err_cap, "messages[%zu].role must be a non-empty string", i);
        else if (content && !json_is_string(content) && !json_is_array(content) &&
                 !json_is_null(content))
            snprintf(err, err_cap,
                     "messages[%zu].content must be a string, an array of parts or null", i);
        else
            continue;
        return SC_EINVAL;
    }
    return 0;
}

void sc_request_drop_blank_text(sc_buf_t *text)
{
    if (only_space(text->data ? text->data : "", text->len))
        sc_buf_reset(text);
}

int sc_request_parse(sc_request_t *req, sc_req_kind_t kind, const char *body, size_t len, char *err,
                     size_t err_cap)
{
    if (kind == SC_REQ_LOOKUP && sc_request_parse_fast(req, body, len) == 0)
        return 0;
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        memset(req, 0, sizeof(*req));
        snprintf(err, err_cap, "request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return SC_EINVAL;
    }
    return sc_request_from_json(req, kind, root, err, err_cap);
}

/* Validates the native fields of 'root' into 'req' and derives the text,
 * key and scope. Long for a function, but it reads top to bottom as the
 * list of fields a request may carry; splitting it would scatter that. */
int sc_request_from_json(sc_request_t *req, sc_req_kind_t kind, json_t *root, char *err,
                         size_t err_cap)
{
    int rc = 0;
    memset(req, 0, sizeof(*req));
    req->root = root;
    if (!json_is_object(root))
        FAIL("request body must be a JSON object");

    const char *const *fields = kind == SC_REQ_STORE ? store_fields : sc__lookup_fields;
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        if (!field_allowed(fields, k))
            FAIL("unknown field '%s' in a %s request (model parameters belong in \"params\")", k,
                 kind == SC_REQ_STORE ? "store" : "lookup");
    }

    json_t *ns = json_object_get(root, "namespace");
    if (ns) {
        if (!json_is_string(ns) ||
            !sc_request_namespace_valid(json_string_value(ns), json_string_length(ns)))
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
        if ((rc = sc_request_check_messages(messages, err, err_cap)))
            goto fail;
        n_msgs = json_array_size(messages);
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
        if (!json_is_number(threshold) ||
            !(json_number_value(threshold) >= -1 && json_number_value(threshold) <= 1))
            FAIL("\"threshold\" must be a cosine similarity in [-1, 1]");
        req->has_threshold = 1;
        req->threshold = json_number_value(threshold);
    }
    json_t *lease = json_object_get(root, "lease");
    if (lease) {
        if (!json_is_boolean(lease))
            FAIL("\"lease\" must be true or false");
        req->lease = json_is_true(lease);
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
    int last_is_user =
        last && strcmp(json_string_value(json_object_get(last, "role")), "user") == 0;
    if (prompt)
        rc = sc_buf_append(&req->text, json_string_value(prompt), json_string_length(prompt));
    else if (last_is_user)
        rc = sc_request_content_text(json_object_get(last, "content"), "text", &req->text);
    if (rc)
        goto fail;
    sc_request_drop_blank_text(&req->text);

    sc_canon_req_t c = {
        .ns = req->ns,
        .ns_len = req->ns_len,
        .tenant = req->tenant,
        .tenant_len = req->tenant_len,
        .model = req->model,
        .model_len = req->model_len,
        .params = params,
        .body_name = prompt ? "prompt" : "messages",
        .body = prompt ? prompt : messages,
    };
    if ((rc = sc_canon_hash(&c, req->key, &req->scope)))
        goto fail;
    return 0;

fail:
    if (rc == SC_ENOMEM)
        snprintf(err, err_cap, "out of memory while decoding the request");
    sc_request_free(req);
    return rc;
}

void sc_request_free(sc_request_t *req)
{
    if (req->root)
        json_decref(req->root);
    if (req->src && req->src->root)
        json_decref(req->src->root);
    free(req->src);
    free(req->vec);
    sc_buf_free(&req->text);
    memset(req, 0, sizeof(*req));
}
