/* sse_json.c -- the proxy stream files' JSON helpers: usage counts per API,
 * compact dumping, and a scanner that edits a few members of an object in
 * place of a parse/re-encode round trip (which would reformat numbers and
 * escapes the SDK never asked us to touch). */
#include "sse_json.h"

#include <string.h>

static void set_count(const json_t *o, const char *key, int64_t *dst)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        *dst = (int64_t)json_integer_value(v);
}

void sc__usage_merge(sc_api_t api, const json_t *usage, sc_sse_usage_t *u)
{
    if (!json_is_object(usage))
        return;
    switch (api) {
    case SC_API_OPENAI_CHAT:
        set_count(usage, "prompt_tokens", &u->input);
        set_count(usage, "completion_tokens", &u->output);
        set_count(json_object_get(usage, "prompt_tokens_details"), "cached_tokens",
                  &u->cached_input);
        break;
    case SC_API_OPENAI_RESPONSES:
        set_count(usage, "input_tokens", &u->input);
        set_count(usage, "output_tokens", &u->output);
        set_count(json_object_get(usage, "input_tokens_details"), "cached_tokens",
                  &u->cached_input);
        break;
    case SC_API_ANTHROPIC_MESSAGES:
        set_count(usage, "input_tokens", &u->input);
        set_count(usage, "output_tokens", &u->output);
        set_count(usage, "cache_read_input_tokens", &u->cached_input);
        break;
    case SC_API_OPENAI_EMBEDDINGS: /* embeddings usage is summed by proxy_embeddings.c */
        break;
    }
}

void sc__buf_truncate(sc_buf_t *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
}

static int dump_cb(const char *buf, size_t size, void *data)
{
    return sc_buf_append(data, buf, size) ? -1 : 0;
}

int sc__json_dump(sc_buf_t *out, const json_t *j)
{
    return json_dump_callback(j, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY) ? SC_ENOMEM : 0;
}

json_t *sc__json_object(const char *s, size_t len)
{
    json_t *j = json_loadb(s, len, JSON_ALLOW_NUL, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

const char *sc__json_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- scanner ----------------------------------------------------------- */

#define MAX_DEPTH 256

static const char *ws(const char *s, const char *end)
{
    while (s < end && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    return s;
}

/* 's' is at an opening quote; returns the byte after the closing one. */
static const char *skip_string(const char *s, const char *end)
{
    for (s++; s < end; s++) {
        if (*s == '\\')
            s++;
        else if (*s == '"')
            return s + 1;
    }
    return NULL;
}

static int scalar_byte(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '+' || c == '.';
}

const char *sc__json_skip(const char *s, const char *end)
{
    char stack[MAX_DEPTH];
    int depth = 0;
    s = ws(s, end);
    do {
        if (s >= end)
            return NULL;
        char c = *s;
        if (c == '"') {
            s = skip_string(s, end);
            if (!s)
                return NULL;
        } else if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH)
                return NULL;
            stack[depth++] = c == '{' ? '}' : ']';
            s++;
        } else if (c == '}' || c == ']') {
            if (depth == 0 || stack[depth - 1] != c)
                return NULL;
            depth--;
            s++;
        } else if (depth > 0 &&
                   (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r')) {
            s++;
        } else if (scalar_byte(c)) {
            while (s < end && scalar_byte(*s))
                s++;
        } else {
            return NULL;
        }
    } while (depth > 0);
    return s;
}

/* Walks the members of the object text at 's'. For each, 'fn' gets the key
 * (without quotes) and the value's extent; a non-zero return stops the walk
 * and is returned. SC_EINVAL when the text is not a well-formed object. */
typedef int (*member_fn)(void *ud, sc_slice_t key, const char *v, const char *vend);

static int walk(const char *s, const char *end, member_fn fn, void *ud, const char **obj_end)
{
    s = ws(s, end);
    if (s >= end || *s != '{')
        return SC_EINVAL;
    s = ws(s + 1, end);
    if (s < end && *s == '}') {
        *obj_end = s + 1;
        return 0;
    }
    for (;;) {
        if (s >= end || *s != '"')
            return SC_EINVAL;
        const char *k = s + 1, *kend = skip_string(s, end);
        if (!kend)
            return SC_EINVAL;
        s = ws(kend, end);
        if (s >= end || *s != ':')
            return SC_EINVAL;
        const char *v = ws(s + 1, end), *vend = sc__json_skip(v, end);
        if (!vend)
            return SC_EINVAL;
        int rc = fn(ud, (sc_slice_t){k, (size_t)(kend - 1 - k)}, v, vend);
        if (rc)
            return rc;
        s = ws(vend, end);
        if (s < end && *s == ',') {
            s = ws(s + 1, end);
            continue;
        }
        if (s < end && *s == '}') {
            *obj_end = s + 1;
            return 0;
        }
        return SC_EINVAL;
    }
}

static int key_is(sc_slice_t k, const char *want)
{
    return strlen(want) == k.len && memcmp(k.ptr, want, k.len) == 0;
}

typedef struct {
    const char *key;
    sc_slice_t *val;
} find_t;

static int find_fn(void *ud, sc_slice_t key, const char *v, const char *vend)
{
    find_t *f = ud;
    if (!key_is(key, f->key))
        return 0;
    *f->val = (sc_slice_t){v, (size_t)(vend - v)};
    return 1;
}

int sc__json_member(const char *s, const char *end, const char *key, sc_slice_t *val)
{
    find_t f = {key, val};
    const char *oend;
    int rc = walk(s, end, find_fn, &f, &oend);
    return rc == 1 ? 0 : rc ? rc : SC_ENOTFOUND;
}

typedef struct {
    const sc__json_repl_t *repl;
    size_t n_repl;
    const char *const *nest;
    sc_buf_t *out;
    const char *copied; /* input up to here is already in 'out' */
} rewrite_t;

static int rewrite_fn(void *ud, sc_slice_t key, const char *v, const char *vend)
{
    rewrite_t *w = ud;
    for (size_t i = 0; i < w->n_repl; i++) {
        if (!key_is(key, w->repl[i].key))
            continue;
        if (sc_buf_append(w->out, w->copied, (size_t)(v - w->copied)) ||
            sc_buf_append(w->out, w->repl[i].val.ptr, w->repl[i].val.len))
            return SC_ENOMEM;
        w->copied = vend;
        return 0;
    }
    for (size_t i = 0; w->nest && w->nest[i]; i++) {
        if (!key_is(key, w->nest[i]) || *v != '{')
            continue;
        if (sc_buf_append(w->out, w->copied, (size_t)(v - w->copied)))
            return SC_ENOMEM;
        w->copied = v;
        int rc = sc__json_rewrite(v, vend, w->repl, w->n_repl, NULL, w->out);
        if (rc)
            return rc;
        w->copied = vend;
        return 0;
    }
    return 0;
}

int sc__json_rewrite(const char *s, const char *end, const sc__json_repl_t *repl, size_t n_repl,
                     const char *const *nest, sc_buf_t *out)
{
    size_t mark = out->len;
    rewrite_t w = {repl, n_repl, nest, out, s};
    const char *oend;
    int rc = walk(s, end, rewrite_fn, &w, &oend);
    if (!rc && sc_buf_append(out, w.copied, (size_t)(end - w.copied)))
        rc = SC_ENOMEM;
    if (rc)
        sc__buf_truncate(out, mark);
    return rc;
}
