/* proxy_request.c -- maps OpenAI chat / responses and Anthropic messages bodies
 * onto the canonical request (the rules are in sc_proxy_request.h) and parses
 * the proxy's header controls. The mapping builds a small canonical JSON object
 * that holds references to the body's pieces, then hashes it with the native
 * sc_canon_hash: the proxy and the native API share one key function. */
#include "proxy_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Left out of proxy keys besides sc_ignored_params: OpenAI's successor of
 * "user" and its prompt-caching hints, none of which changes the answer.
 * (Not added to sc_ignored_params: that would change native keys.) */
static const char *const proxy_ignored[] = {"safety_identifier", "prompt_cache_key",
                                            "prompt_cache_retention", NULL};

static int in_list(const char *const *list, const char *k)
{
    for (size_t i = 0; list && list[i]; i++)
        if (strcmp(list[i], k) == 0)
            return 1;
    return 0;
}

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(err, err_cap, __VA_ARGS__);                                                       \
        return code;                                                                               \
    } while (0)

int sc_proxy_load(const char *body, size_t len, json_t **out, char *err, size_t err_cap)
{
    json_error_t jerr;
    *out = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (*out)
        return 0;
    if (json_error_code(&jerr) == json_error_out_of_memory)
        return SC_ENOMEM;
    FAIL(SC_ENOTCACHEABLE, "request body is not JSON the cache can key (%s, line %d, column %d)",
         jerr.text, jerr.line, jerr.column);
}

int sc_proxy_canon_start(json_t *body, sc_api_t api, const char *const *mapped,
                         const sc_proxy_ctx_t *ctx, json_t **out, char *err, size_t err_cap)
{
    *out = NULL;
    if (!json_is_object(body))
        FAIL(SC_EINVAL, "request body must be a JSON object");
    const char *ns = ctx && ctx->ns ? ctx->ns : SC_DEFAULT_NAMESPACE;
    size_t ns_len = ctx && ctx->ns ? ctx->ns_len : strlen(SC_DEFAULT_NAMESPACE);
    if (!sc_request_namespace_valid(ns, ns_len))
        FAIL(SC_EINVAL, "the namespace must be 1 to %d characters from [A-Za-z0-9_.-]",
             SC_MAX_NAMESPACE);
    const char *tenant = ctx && ctx->tenant ? ctx->tenant : "";
    size_t tenant_len = ctx && ctx->tenant ? ctx->tenant_len : 0;
    if (tenant_len > SC_MAX_TENANT)
        FAIL(SC_EINVAL, "the tenant must be at most %d bytes", SC_MAX_TENANT);
    json_t *model = json_object_get(body, "model");
    if (!model)
        FAIL(SC_EINVAL, "\"model\" is required");
    if (!json_is_string(model) || json_string_length(model) == 0 ||
        json_string_length(model) > SC_MAX_MODEL)
        FAIL(SC_EINVAL, "\"model\" must be a non-empty string of at most %d bytes", SC_MAX_MODEL);

    json_t *root = json_object(), *params = json_object();
    int rc = !root || !params;
    rc = rc || json_object_set_new(root, "api", json_string(sc_api_key_name(api)));
    rc = rc || json_object_set_new(root, "namespace", json_stringn_nocheck(ns, ns_len));
    /* The tenant is hashed byte for byte, as the server hands it over. */
    rc = rc || json_object_set_new(root, "tenant", json_stringn_nocheck(tenant, tenant_len));
    rc = rc || json_object_set(root, "model", model);
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (rc)
            break;
        if (strcmp(k, "model") == 0 || in_list(mapped, k) || in_list(sc_ignored_params, k) ||
            in_list(proxy_ignored, k))
            continue;
        rc = json_object_set(params, k, v);
    }
    rc = rc || json_object_set(root, "params", params);
    json_decref(params);
    if (rc) {
        json_decref(root);
        return SC_ENOMEM;
    }
    *out = root;
    return 0;
}

void sc_proxy_canon_fill(const json_t *root, sc_canon_req_t *c)
{
    const json_t *ns = json_object_get(root, "namespace");
    const json_t *tenant = json_object_get(root, "tenant");
    const json_t *model = json_object_get(root, "model");
    memset(c, 0, sizeof(*c));
    c->api = json_string_value(json_object_get(root, "api"));
    c->ns = json_string_value(ns);
    c->ns_len = json_string_length(ns);
    c->tenant = json_string_value(tenant);
    c->tenant_len = json_string_length(tenant);
    c->model = json_string_value(model);
    c->model_len = json_string_length(model);
    c->params = json_object_get(root, "params");
}

/* ---- chat-style bodies --------------------------------------------------- */

static int present(const json_t *v)
{
    return v && !json_is_null(v);
}

/* Why a Responses request depends on state kept upstream (or answers with
 * something that is not the answer), or NULL when it is self-contained. */
static const char *responses_not_cacheable(const json_t *body)
{
    const json_t *store = json_object_get(body, "store");
    const json_t *prompt = json_object_get(body, "prompt");
    if (present(json_object_get(body, "previous_response_id")))
        return "\"previous_response_id\" continues a conversation stored upstream";
    if (present(json_object_get(body, "conversation")))
        return "\"conversation\" continues a conversation stored upstream";
    /* Upstream stores a response when "store" is absent (it defaults to
     * true), but the task counts absent like false: the answer itself does
     * not depend on that copy, only a later previous_response_id would, and
     * such a request is passed through. So: false or absent. */
    if (present(store) && !json_is_false(store))
        return "\"store\" is not false: the response is kept upstream for later turns";
    if (json_is_true(json_object_get(body, "background")))
        return "\"background\" answers with a queued response, not the answer";
    if (present(prompt) && !json_is_string(json_object_get(prompt, "version")))
        return "a \"prompt\" template without a pinned \"version\" can change upstream";
    return NULL;
}

/* The Responses "input" as messages: a string is one user message; in an
 * array, message items lose "type" (so {"type":"message",...} and the short
 * form agree) and other items are history as sent. */
static int responses_messages(const json_t *body, json_t **out, char *err, size_t err_cap)
{
    json_t *input = json_object_get(body, "input");
    json_t *msgs = json_array();
    *out = msgs;
    if (!msgs)
        return SC_ENOMEM;
    if (json_is_string(input)) {
        json_t *m = json_object();
        if (json_array_append_new(msgs, m) || json_object_set_new(m, "role", json_string("user")) ||
            json_object_set(m, "content", input))
            return SC_ENOMEM;
        return 0;
    }
    if (!present(input)) {
        if (!present(json_object_get(body, "prompt")))
            FAIL(SC_EINVAL, "\"input\" is required");
        return 0; /* a pinned prompt template with no input */
    }
    if (!json_is_array(input))
        FAIL(SC_EINVAL, "\"input\" must be a string or an array of input items");
    for (size_t i = 0; i < json_array_size(input); i++) {
        json_t *item = json_array_get(input, i);
        if (!json_is_object(item))
            FAIL(SC_EINVAL, "input[%zu] must be an object", i);
        const json_t *type = json_object_get(item, "type");
        if (type && !json_is_string(type))
            FAIL(SC_EINVAL, "input[%zu].type must be a string", i);
        if (type && strcmp(json_string_value(type), "message") != 0) {
            if (json_array_append(msgs, item))
                return SC_ENOMEM;
            continue;
        }
        const json_t *role = json_object_get(item, "role");
        const json_t *content = json_object_get(item, "content");
        if (!json_is_string(role) || json_string_length(role) == 0)
            FAIL(SC_EINVAL, "input[%zu].role must be a non-empty string", i);
        if (!json_is_string(content) && !json_is_array(content))
            FAIL(SC_EINVAL, "input[%zu].content must be a string or an array of content parts", i);
        json_t *m = type ? json_copy(item) : json_incref(item);
        if (json_array_append_new(msgs, m))
            return SC_ENOMEM;
        if (type)
            json_object_del(m, "type");
    }
    return 0;
}

/* When the final message is the user's: its text into 'text' and, into
 * '*scope_last', the message as the scope sees it (text parts emptied). */
static int final_user_turn(const json_t *msgs, const char *part_type, sc_buf_t *text,
                           json_t **scope_last)
{
    size_t n = json_array_size(msgs);
    const json_t *last = n ? json_array_get(msgs, n - 1) : NULL;
    const char *role = json_string_value(json_object_get(last, "role"));
    *scope_last = NULL;
    if (!role || strcmp(role, "user") != 0)
        return 0;
    const json_t *content = json_object_get(last, "content");
    int rc = sc_request_content_text(content, part_type, text);
    if (rc)
        return rc;
    sc_request_drop_blank_text(text);
    json_t *sl = json_copy((json_t *)last); /* shallow: the parts stay shared */
    *scope_last = sl;
    if (!sl)
        return SC_ENOMEM;
    if (!json_is_array(content)) {
        json_object_del(sl, "content");
        return 0;
    }
    json_t *parts = json_array();
    if (!parts || json_object_set_new(sl, "content", parts))
        return SC_ENOMEM;
    for (size_t i = 0; i < json_array_size(content); i++) {
        json_t *part = json_array_get(content, i);
        const char *type = json_string_value(json_object_get(part, "type"));
        if (type && strcmp(type, part_type) == 0) {
            json_t *p = json_copy(part);
            if (!p || json_array_append_new(parts, p))
                return SC_ENOMEM;
            json_object_del(p, "text");
        } else if (json_array_append(parts, part)) {
            return SC_ENOMEM;
        }
    }
    return 0;
}

static int map_body(sc_proxy_request_t *out, json_t *b, const sc_proxy_ctx_t *ctx, char *err,
                    size_t err_cap)
{
    sc_request_t *req = &out->req;
    int responses = out->api == SC_API_OPENAI_RESPONSES;
    const json_t *stream = json_object_get(b, "stream");
    const json_t *so = json_object_get(b, "stream_options");
    const json_t *iu = json_object_get(so, "include_usage");
    /* Read leniently first, so even a pass-through knows how to answer. */
    out->stream = json_is_true(stream);
    out->include_usage = json_is_true(iu);
    if (!json_is_object(b))
        FAIL(SC_EINVAL, "request body must be a JSON object");
    const char *why = responses ? responses_not_cacheable(b) : NULL;
    if (why)
        FAIL(SC_ENOTCACHEABLE, "%s", why);
    if (present(stream) && !json_is_boolean(stream))
        FAIL(SC_EINVAL, "\"stream\" must be a boolean");
    if (present(so) && !json_is_object(so))
        FAIL(SC_EINVAL, "\"stream_options\" must be an object");
    if (present(iu) && !json_is_boolean(iu))
        FAIL(SC_EINVAL, "\"stream_options.include_usage\" must be a boolean");

    static const char *const mapped_messages[] = {"messages", NULL};
    static const char *const mapped_input[] = {"input", NULL};
    int rc = sc_proxy_canon_start(b, out->api, responses ? mapped_input : mapped_messages, ctx,
                                  &req->root, err, err_cap);
    if (rc)
        return rc;
    json_t *msgs;
    if (responses) {
        rc = responses_messages(b, &msgs, err, err_cap);
    } else {
        msgs = json_incref(json_object_get(b, "messages"));
        rc = sc_request_check_messages(msgs, err, err_cap);
    }
    if (json_object_set_new(req->root, "messages", msgs) && !rc)
        rc = SC_ENOMEM;
    json_t *scope_last = NULL;
    if (!rc)
        rc = final_user_turn(msgs, responses ? "input_text" : "text", &req->text, &scope_last);
    if (!rc) {
        sc_canon_req_t c;
        sc_proxy_canon_fill(req->root, &c);
        c.body_name = "messages";
        c.body = msgs;
        c.scope_last = scope_last;
        rc = sc_canon_hash(&c, req->key, &req->scope);
        req->ns = c.ns;
        req->ns_len = c.ns_len;
        req->tenant = c.tenant;
        req->tenant_len = c.tenant_len;
        req->model = c.model;
        req->model_len = c.model_len;
    }
    json_decref(scope_last);
    const sc_proxy_controls_t *ctl = ctx ? ctx->controls : NULL;
    if (ctl) {
        req->has_max_age = ctl->has_max_age;
        req->max_age_s = (double)ctl->max_age_s;
        req->has_threshold = ctl->has_threshold;
        req->threshold = ctl->threshold;
        req->has_ttl = ctl->has_ttl;
        req->ttl_s = ctl->ttl_s;
    }
    return rc;
}

int sc_proxy_request_parse(sc_proxy_request_t *out, sc_api_t api, const char *body, size_t len,
                           const sc_proxy_ctx_t *ctx, char *err, size_t err_cap)
{
    memset(out, 0, sizeof(*out));
    out->api = api;
    if (api != SC_API_OPENAI_CHAT && api != SC_API_OPENAI_RESPONSES &&
        api != SC_API_ANTHROPIC_MESSAGES)
        FAIL(SC_EINVAL, "not a chat-style API (embeddings go to sc_proxy_embeddings_parse)");
    json_t *b;
    int rc = sc_proxy_load(body, len, &b, err, err_cap);
    if (rc)
        return rc;
    rc = map_body(out, b, ctx, err, err_cap);
    json_decref(b); /* the canonical request keeps what it needs */
    if (rc) {
        if (rc == SC_ENOMEM)
            snprintf(err, err_cap, "out of memory while decoding the request");
        sc_request_free(&out->req);
    }
    return rc;
}

void sc_proxy_request_free(sc_proxy_request_t *r)
{
    sc_request_free(&r->req);
}

/* ---- header controls ------------------------------------------------------ */

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static sc_slice_t trim(sc_slice_t s)
{
    while (s.len && is_ows(s.ptr[0]))
        s.ptr++, s.len--;
    while (s.len && is_ows(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static int name_is(const char *p, size_t n, const char *lower)
{
    if (strlen(lower) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i] >= 'A' && p[i] <= 'Z' ? (char)(p[i] - 'A' + 'a') : p[i];
        if (c != lower[i])
            return 0;
    }
    return 1;
}

/* delta-seconds (RFC 9111 1.2.2): digits, saturating at 2^31. 'v' is the
 * argument as sent, a token or the inside of a quoted-string. */
static int delta_seconds(const char *v, size_t n, int quoted, int64_t *out)
{
    int64_t x = 0;
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (quoted && v[i] == '\\' && i + 1 < n)
            i++; /* quoted-pair */
        if (v[i] < '0' || v[i] > '9')
            return SC_EINVAL;
        x = x >= 2147483648LL ? x : x * 10 + (v[i] - '0');
        digits++;
    }
    if (!digits)
        return SC_EINVAL;
    *out = x > 2147483648LL ? 2147483648LL : x;
    return 0;
}

/* Cache-Control = #cache-directive; cache-directive = token [ "=" ( token /
 * quoted-string ) ]. Unknown directives are ignored (RFC 9111 5.2.3). */
static int cache_control(sc_slice_t s, sc_proxy_controls_t *out, char *err, size_t err_cap)
{
    size_t i = 0, n = s.len;
    const char *p = s.ptr;
    while (i < n) {
        while (i < n && (is_ows(p[i]) || p[i] == ','))
            i++;
        if (i == n)
            break;
        size_t name = i;
        while (i < n && is_tchar((unsigned char)p[i]))
            i++;
        size_t name_len = i - name;
        if (!name_len)
            FAIL(SC_EINVAL, "Cache-Control: unexpected byte 0x%02x at offset %zu",
                 (unsigned char)p[i], i);
        const char *arg = NULL;
        size_t arg_len = 0;
        int quoted = 0;
        if (i < n && p[i] == '=') {
            i++;
            if (i < n && p[i] == '"') {
                quoted = 1;
                arg = p + ++i;
                while (i < n && p[i] != '"')
                    i += p[i] == '\\' && i + 1 < n ? 2 : 1;
                if (i >= n)
                    FAIL(SC_EINVAL, "Cache-Control: unterminated quoted string");
                arg_len = (size_t)(p + i - arg);
                i++;
            } else {
                arg = p + i;
                while (i < n && is_tchar((unsigned char)p[i]))
                    i++;
                arg_len = (size_t)(p + i - arg);
                if (!arg_len)
                    FAIL(SC_EINVAL, "Cache-Control: '%.*s=' needs a value", (int)name_len,
                         p + name);
            }
        }
        while (i < n && is_ows(p[i]))
            i++;
        if (i < n && p[i] != ',')
            FAIL(SC_EINVAL, "Cache-Control: expected ',' after '%.*s'", (int)name_len, p + name);
        if (name_is(p + name, name_len, "no-cache")) {
            out->no_cache = 1;
        } else if (name_is(p + name, name_len, "no-store")) {
            out->no_store = 1;
        } else if (name_is(p + name, name_len, "only-if-cached")) {
            out->only_if_cached = 1;
        } else if (name_is(p + name, name_len, "max-age")) {
            int64_t secs;
            if (!arg || delta_seconds(arg, arg_len, quoted, &secs))
                FAIL(SC_EINVAL, "Cache-Control: max-age must be a whole number of seconds");
            /* Several max-age directives: the most restrictive wins. */
            if (!out->has_max_age || secs < out->max_age_s)
                out->max_age_s = secs;
            out->has_max_age = 1;
        }
    }
    return 0;
}

int sc_proxy_controls_parse(const sc_proxy_headers_t *h, sc_proxy_controls_t *out, char *err,
                            size_t err_cap)
{
    memset(out, 0, sizeof(*out));
    if (h->cache_control.ptr) {
        int rc = cache_control(h->cache_control, out, err, err_cap);
        if (rc)
            return rc;
    }
    if (h->ttl.ptr) {
        sc_slice_t v = trim(h->ttl);
        int64_t ttl = 0;
        size_t i = 0;
        for (; i < v.len && i < 15 && v.ptr[i] >= '0' && v.ptr[i] <= '9'; i++)
            ttl = ttl * 10 + (v.ptr[i] - '0');
        if (!v.len || i != v.len)
            FAIL(SC_EINVAL, "X-Semcached-TTL must be a whole number of seconds below 10^15 "
                            "(0 = never expires)");
        out->has_ttl = 1;
        out->ttl_s = ttl;
    }
    if (h->threshold.ptr) {
        /* A JSON number: -?digits[.digits][e[+-]digits], then [-1, 1]. */
        sc_slice_t v = trim(h->threshold);
        char buf[64];
        size_t i = 0, int_digits = 0, frac_digits = 1, exp_digits = 1;
        const char *q = v.ptr;
        if (v.len && v.len < sizeof(buf)) {
            i += q[i] == '-';
            for (; i < v.len && q[i] >= '0' && q[i] <= '9'; i++)
                int_digits++;
            if (i < v.len && q[i] == '.')
                for (frac_digits = 0, i++; i < v.len && q[i] >= '0' && q[i] <= '9'; i++)
                    frac_digits++;
            if (i < v.len && (q[i] == 'e' || q[i] == 'E')) {
                i++;
                i += i < v.len && (q[i] == '+' || q[i] == '-');
                for (exp_digits = 0; i < v.len && q[i] >= '0' && q[i] <= '9'; i++)
                    exp_digits++;
            }
        }
        double t = NAN;
        if (v.len && i == v.len && int_digits && frac_digits && exp_digits) {
            memcpy(buf, v.ptr, v.len);
            buf[v.len] = '\0';
            t = strtod(buf, NULL);
        }
        if (!(t >= -1 && t <= 1))
            FAIL(SC_EINVAL, "X-Semcached-Threshold must be a cosine similarity in [-1, 1]");
        out->has_threshold = 1;
        out->threshold = t;
    }
    if (h->ns.ptr) {
        sc_slice_t v = trim(h->ns);
        if (!sc_request_namespace_valid(v.ptr, v.len))
            FAIL(SC_EINVAL, "X-Semcached-Namespace must be 1 to %d characters from [A-Za-z0-9_.-]",
                 SC_MAX_NAMESPACE);
        out->ns = v.ptr;
        out->ns_len = v.len;
    }
    return 0;
}
