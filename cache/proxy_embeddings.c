/* proxy_embeddings.c -- the proxy's embeddings batches: one exact key per input
 * (so a batch is looked up input by input), the upstream request for just the
 * missing inputs, decoding upstream's floats, and the client's answer in its
 * own order and encoding_format. Vectors are kept as upstream gave them (not
 * normalized): the answer must be the provider's, bit for bit in float32. */
#include "proxy_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(err, err_cap, __VA_ARGS__);                                                       \
        return code;                                                                               \
    } while (0)

#define MAX_DIM 65536

static int all_of(const json_t *a, int (*is)(const json_t *))
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (!is(json_array_get(a, i)))
            return 0;
    return 1;
}

static int is_string(const json_t *v)
{
    return json_is_string(v);
}

static int is_integer(const json_t *v)
{
    return json_is_integer(v);
}

static int is_token_ids(const json_t *v)
{
    return json_is_array(v) && json_array_size(v) > 0 && all_of(v, is_integer);
}

/* The inputs as an array of items (a new reference), or NULL when "input" is
 * none of the four forms. */
static json_t *input_items(json_t *input)
{
    if (json_is_string(input) || is_token_ids(input)) {
        json_t *a = json_array();
        if (a && json_array_append(a, input)) {
            json_decref(a);
            return NULL;
        }
        return a;
    }
    if (json_is_array(input) && json_array_size(input) > 0 &&
        (all_of(input, is_string) || all_of(input, is_token_ids)))
        return json_incref(input);
    return NULL;
}

static int parse_body(sc_proxy_embeddings_t *e, const sc_proxy_ctx_t *ctx, char *err,
                      size_t err_cap)
{
    json_t *body = e->body;
    static const char *const mapped[] = {"input", "encoding_format", NULL};
    int rc =
        sc_proxy_canon_start(body, SC_API_OPENAI_EMBEDDINGS, mapped, ctx, &e->root, err, err_cap);
    if (rc)
        return rc;
    const json_t *fmt = json_object_get(body, "encoding_format");
    if (fmt && !json_is_null(fmt)) {
        const char *f = json_string_value(fmt);
        if (!f || (strcmp(f, "float") != 0 && strcmp(f, "base64") != 0))
            FAIL(SC_EINVAL, "\"encoding_format\" must be \"float\" or \"base64\"");
        e->base64 = strcmp(f, "base64") == 0;
    }
    json_t *input = json_object_get(body, "input");
    if (!input)
        FAIL(SC_EINVAL, "\"input\" is required");
    json_t *items = input_items(input);
    if (!items)
        FAIL(SC_EINVAL, "\"input\" must be a string, an array of strings, an array of token ids "
                        "or an array of token-id arrays, and not empty");
    if (json_object_set_new(e->root, "input", items))
        return SC_ENOMEM;
    e->items = items;
    e->n = json_array_size(items);
    if (!(e->keys = malloc(e->n * sizeof(*e->keys))))
        return SC_ENOMEM;
    sc_canon_req_t c;
    sc_proxy_canon_fill(e->root, &c);
    c.body_name = "input";
    for (size_t i = 0; i < e->n; i++) {
        c.body = json_array_get(items, i);
        if ((rc = sc_canon_hash(&c, e->keys[i], NULL)))
            return rc;
    }
    e->ns = (sc_slice_t){c.ns, c.ns_len};
    e->tenant = (sc_slice_t){c.tenant, c.tenant_len};
    e->model = (sc_slice_t){c.model, c.model_len};
    return 0;
}

int sc_proxy_embeddings_parse(sc_proxy_embeddings_t *out, const char *body, size_t len,
                              const sc_proxy_ctx_t *ctx, char *err, size_t err_cap)
{
    memset(out, 0, sizeof(*out));
    int rc = sc_proxy_load(body, len, &out->body, err, err_cap);
    if (!rc)
        rc = parse_body(out, ctx, err, err_cap);
    if (rc) {
        if (rc == SC_ENOMEM)
            snprintf(err, err_cap, "out of memory while decoding the request");
        sc_proxy_embeddings_free(out);
    }
    return rc;
}

void sc_proxy_embeddings_free(sc_proxy_embeddings_t *e)
{
    json_decref(e->root);
    json_decref(e->body);
    free(e->keys);
    memset(e, 0, sizeof(*e));
}

/* 1 when every missing[j] is a distinct input index. */
static int valid_missing(const sc_proxy_embeddings_t *e, const size_t *missing, size_t n_missing,
                         int *oom)
{
    *oom = 0;
    if (n_missing > e->n)
        return 0;
    unsigned char *seen = calloc(e->n ? e->n : 1, 1);
    if (!seen) {
        *oom = 1;
        return 0;
    }
    int ok = 1;
    for (size_t j = 0; j < n_missing && ok; j++) {
        ok = missing[j] < e->n && !seen[missing[j]];
        if (ok)
            seen[missing[j]] = 1;
    }
    free(seen);
    return ok;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return sc_buf_append(data, buf, size) ? -1 : 0;
}

int sc_proxy_embeddings_upstream_body(const sc_proxy_embeddings_t *e, const size_t *missing,
                                      size_t n_missing, sc_buf_t *out)
{
    int oom;
    if (!valid_missing(e, missing, n_missing, &oom))
        return oom ? SC_ENOMEM : SC_EINVAL;
    json_t *req = json_copy(e->body); /* shallow: the other members are shared */
    json_t *items = json_array();
    int rc = !req || !items;
    for (size_t j = 0; j < n_missing && !rc; j++)
        rc = json_array_append(items, json_array_get(e->items, missing[j]));
    rc = rc || json_object_set(req, "input", items);
    rc = rc || json_object_set_new(req, "encoding_format", json_string("float"));
    rc = rc || json_dump_callback(req, dump_cb, out, JSON_COMPACT);
    json_decref(items);
    json_decref(req);
    return rc ? SC_ENOMEM : 0;
}

/* One upstream "data" element into tmp[index]. */
static int take_vector(const json_t *d, size_t n_missing, float **tmp, uint32_t *tdim, char *err,
                       size_t err_cap)
{
    const json_t *index = json_object_get(d, "index");
    const json_t *emb = json_object_get(d, "embedding");
    if (!json_is_integer(index) || json_integer_value(index) < 0 ||
        (uint64_t)json_integer_value(index) >= n_missing || tmp[json_integer_value(index)])
        FAIL(SC_EREMOTE, "upstream's embeddings answer has a missing, repeated or out-of-range "
                         "\"index\"");
    size_t dim = json_array_size(emb);
    if (!json_is_array(emb) || dim == 0 || dim > MAX_DIM)
        FAIL(SC_EREMOTE,
             "upstream's embeddings answer has an \"embedding\" that is not an array "
             "of 1 to %d numbers",
             MAX_DIM);
    float *v = malloc(dim * sizeof(float));
    if (!v)
        return SC_ENOMEM;
    for (size_t k = 0; k < dim; k++) {
        const json_t *x = json_array_get(emb, k);
        double d = json_number_value(x);
        /* Range first: converting a double beyond FLT_MAX is undefined. */
        if (!json_is_number(x) || !(fabs(d) <= FLT_MAX)) {
            free(v);
            FAIL(SC_EREMOTE, "upstream's embeddings answer has a value that is not a finite "
                             "float32");
        }
        v[k] = (float)d;
    }
    size_t i = (size_t)json_integer_value(index);
    tmp[i] = v;
    tdim[i] = (uint32_t)dim;
    return 0;
}

static int usage_count(const json_t *usage, const char *name, uint64_t *out)
{
    const json_t *v = json_object_get(usage, name);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return SC_EREMOTE;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int sc_proxy_embeddings_upstream_answer(const sc_proxy_embeddings_t *e, const char *body,
                                        size_t len, const size_t *missing, size_t n_missing,
                                        float **vecs, uint32_t *dims, sc_proxy_usage_t *usage,
                                        char *err, size_t err_cap)
{
    int oom;
    if (!valid_missing(e, missing, n_missing, &oom)) {
        if (oom)
            return SC_ENOMEM;
        FAIL(SC_EINVAL, "the missing inputs must be distinct input indexes");
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    const json_t *data = json_object_get(root, "data");
    const json_t *u = json_object_get(root, "usage");
    uint64_t pt = 0, tt = 0;
    int rc = 0;
    if (!root)
        snprintf(err, err_cap, "upstream's embeddings answer is not JSON: %s", jerr.text);
    else if (json_array_size(data) != n_missing)
        snprintf(err, err_cap, "upstream's embeddings answer has %zu vectors for %zu inputs",
                 json_array_size(data), n_missing);
    else if ((u && !json_is_object(u)) || usage_count(u, "prompt_tokens", &pt) ||
             usage_count(u, "total_tokens", &tt))
        snprintf(err, err_cap, "upstream's embeddings answer has a malformed \"usage\"");
    else
        rc = 1; /* well-formed so far */
    rc = rc ? 0 : SC_EREMOTE;
    float **tmp = rc ? NULL : calloc(n_missing ? n_missing : 1, sizeof(*tmp));
    uint32_t *tdim = rc ? NULL : calloc(n_missing ? n_missing : 1, sizeof(*tdim));
    if (!rc && (!tmp || !tdim))
        rc = SC_ENOMEM;
    for (size_t j = 0; j < n_missing && !rc; j++)
        rc = take_vector(json_array_get(data, j), n_missing, tmp, tdim, err, err_cap);
    for (size_t j = 0; j < n_missing && tmp; j++) {
        if (rc) {
            free(tmp[j]);
        } else {
            vecs[missing[j]] = tmp[j];
            dims[missing[j]] = tdim[j];
        }
    }
    if (!rc && usage) {
        usage->prompt_tokens += pt;
        usage->total_tokens += tt;
    }
    free(tmp);
    free(tdim);
    json_decref(root);
    return rc;
}

/* Standard base64 with padding of 'n' bytes. */
static int b64_append(sc_buf_t *out, const uint8_t *in, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (sc_buf_reserve(out, (n + 2) / 3 * 4))
        return SC_ENOMEM;
    char *o = out->data + out->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t t = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = tbl[t >> 18];
        *o++ = tbl[(t >> 12) & 63];
        *o++ = tbl[(t >> 6) & 63];
        *o++ = tbl[t & 63];
    }
    if (i < n) {
        uint32_t t = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = tbl[t >> 18];
        *o++ = tbl[(t >> 12) & 63];
        *o++ = i + 1 < n ? tbl[(t >> 6) & 63] : '=';
        *o++ = '=';
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return 0;
}

static int vector_append(sc_buf_t *out, const float *v, uint32_t dim, int base64)
{
    if (base64) {
        uint8_t *bytes = malloc((size_t)dim * 4);
        if (!bytes)
            return SC_ENOMEM;
        for (uint32_t k = 0; k < dim; k++) {
            uint32_t u;
            memcpy(&u, &v[k], 4);
            bytes[4 * k] = (uint8_t)u;
            bytes[4 * k + 1] = (uint8_t)(u >> 8);
            bytes[4 * k + 2] = (uint8_t)(u >> 16);
            bytes[4 * k + 3] = (uint8_t)(u >> 24);
        }
        int rc = sc_buf_append(out, "\"", 1) || b64_append(out, bytes, (size_t)dim * 4) ||
                 sc_buf_append(out, "\"", 1);
        free(bytes);
        return rc ? SC_ENOMEM : 0;
    }
    /* %.9g: the shortest precision at which every float32 round-trips. */
    if (sc_buf_reserve(out, (size_t)dim * 17 + 2))
        return SC_ENOMEM;
    out->data[out->len++] = '[';
    for (uint32_t k = 0; k < dim; k++) {
        int w = snprintf(out->data + out->len, 17, k ? ",%.9g" : "%.9g", (double)v[k]);
        out->len += (size_t)w;
    }
    out->data[out->len++] = ']';
    out->data[out->len] = '\0';
    return 0;
}

int sc_proxy_embeddings_answer(const sc_proxy_embeddings_t *e, const float *const *vecs,
                               const uint32_t *dims, const char *model,
                               const sc_proxy_usage_t *usage, sc_buf_t *out)
{
    for (size_t i = 0; i < e->n; i++) {
        if (!vecs[i] || dims[i] == 0 || dims[i] > MAX_DIM)
            return SC_EINVAL;
        for (uint32_t k = 0; k < dims[i]; k++)
            if (!isfinite(vecs[i][k]))
                return SC_EINVAL;
    }
    int rc = sc_buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < e->n && !rc; i++) {
        rc = sc_buf_puts(out, i ? ",{\"object\":\"embedding\",\"index\":"
                                : "{\"object\":\"embedding\",\"index\":");
        rc = rc ? rc : sc_buf_u64(out, i);
        rc = rc ? rc : sc_buf_puts(out, ",\"embedding\":");
        rc = rc ? rc : vector_append(out, vecs[i], dims[i], e->base64);
        rc = rc ? rc : sc_buf_puts(out, "}");
    }
    rc = rc ? rc : sc_buf_puts(out, "],\"model\":");
    rc = rc ? rc
            : (model ? sc_buf_json_str(out, model, strlen(model))
                     : sc_buf_json_str(out, e->model.ptr, e->model.len));
    rc = rc ? rc : sc_buf_puts(out, ",\"usage\":{\"prompt_tokens\":");
    rc = rc ? rc : sc_buf_u64(out, usage ? usage->prompt_tokens : 0);
    rc = rc ? rc : sc_buf_puts(out, ",\"total_tokens\":");
    rc = rc ? rc : sc_buf_u64(out, usage ? usage->total_tokens : 0);
    rc = rc ? rc : sc_buf_puts(out, "}}");
    return rc ? SC_ENOMEM : 0;
}
