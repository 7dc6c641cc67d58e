/* sse_replay.c -- the bytes sent for each event of a cache hit: fresh id,
 * current created time and the request's model spliced into the stored
 * data by a byte-level rewrite (every other byte is the upstream's), and the
 * chat usage chunk kept or dropped as the request's include_usage says. */
#include "sc_proxy_entry.h"
#include "sse_json.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Appends 'n' characters drawn uniformly from 'alphabet' (of size 'k'). */
static void draw(char *dst, size_t n, const char *alphabet, uint64_t k, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = alphabet[splitmix64(rng) % k]; /* bias of k/2^64: nil */
    dst[n] = '\0';
}

int sc_proxy_replay_init(sc_proxy_replay_t *rp, sc_api_t api, uint64_t *rng, uint64_t now_s,
                         const char *model, size_t model_len, int include_usage)
{
    static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    static const char HEX[] = "0123456789abcdef";
    if (!sc_api_entry_name(api) || !rng)
        return SC_EINVAL;
    memset(rp, 0, sizeof(*rp));
    rp->api = api;
    rp->include_usage = include_usage;
    /* The providers' own shapes: chatcmpl- + 29 base62 characters, msg_01 +
     * 22 base62, resp_ + 48 hex digits. */
    if (api == SC_API_OPENAI_CHAT) {
        memcpy(rp->id, "chatcmpl-", 9);
        draw(rp->id + 9, 29, B62, 62, rng);
    } else if (api == SC_API_ANTHROPIC_MESSAGES) {
        memcpy(rp->id, "msg_01", 6);
        draw(rp->id + 6, 22, B62, 62, rng);
    } else {
        memcpy(rp->id, "resp_", 5);
        draw(rp->id + 5, 48, HEX, 16, rng);
    }
    snprintf(rp->created, sizeof(rp->created), "%llu", (unsigned long long)now_s);
    if (model) {
        sc_buf_t b = {0};
        if (sc_buf_json_str(&b, model, model_len))
            return SC_ENOMEM;
        rp->model_json = b.data;
    }
    return 0;
}

void sc_proxy_replay_free(sc_proxy_replay_t *rp)
{
    free(rp->model_json);
    rp->model_json = NULL;
    for (size_t i = 0; i < sizeof(rp->echo_json) / sizeof(rp->echo_json[0]); i++) {
        free(rp->echo_json[i]);
        rp->echo_json[i] = NULL;
    }
}

int sc_proxy_replay_echo(sc_proxy_replay_t *rp, const char *body, size_t len)
{
    static const char *const echoed[] = SC_PROXY_ECHOED;
    if (rp->api != SC_API_OPENAI_RESPONSES)
        return 0;
    json_t *req = json_loadb(body, len, 0, NULL);
    int rc = 0;
    for (size_t i = 0; json_is_object(req) && i < sizeof(echoed) / sizeof(echoed[0]) && !rc; i++) {
        json_t *v = json_object_get(req, echoed[i]);
        json_t *dflt = v ? NULL : strcmp(echoed[i], "metadata") == 0 ? json_object() : json_null();
        free(rp->echo_json[i]);
        rp->echo_json[i] = json_dumps(v ? v : dflt, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(dflt);
        if (!rp->echo_json[i])
            rc = SC_ENOMEM;
    }
    json_decref(req);
    return rc;
}

/* Rewrites 'data' into 'out'; SC_EINVAL (nothing appended) when it is not
 * a JSON object. */
static int rewrite(const sc_proxy_replay_t *rp, const char *data, size_t len, sc_buf_t *out)
{
    static const char *const nest[] = {"message", "response", NULL};
    static const char *const echoed[] = SC_PROXY_ECHOED;
    char id[72];
    size_t idn = (size_t)snprintf(id, sizeof(id), "\"%s\"", rp->id);
    sc__json_repl_t repl[8] = {
        {"id", {id, idn}},
        {"created", {rp->created, strlen(rp->created)}},
        {"created_at", {rp->created, strlen(rp->created)}},
    };
    size_t n = 3;
    if (rp->model_json)
        repl[n++] = (sc__json_repl_t){"model", {rp->model_json, strlen(rp->model_json)}};
    for (size_t i = 0; i < sizeof(echoed) / sizeof(echoed[0]); i++)
        if (rp->echo_json[i])
            repl[n++] = (sc__json_repl_t){echoed[i], {rp->echo_json[i], strlen(rp->echo_json[i])}};
    return sc__json_rewrite(data, data + len, repl, n, nest, out);
}

int sc_proxy_rewrite_body(const sc_proxy_replay_t *rp, const char *body, size_t len, sc_buf_t *out)
{
    return rewrite(rp, body, len, out);
}

/* Appends one SSE event: the name line, one data line per line of 'data'
 * (a line break inside the data becomes a new data: line, which the reader
 * joins back with "\n"), and the blank line. */
static int put_event(sc_buf_t *out, sc_slice_t name, const char *data, size_t len)
{
    int rc = 0;
    if (name.len) {
        rc = sc_buf_append(out, "event: ", 7);
        if (!rc)
            rc = sc_buf_append(out, name.ptr, name.len);
        if (!rc)
            rc = sc_buf_append(out, "\n", 1);
    }
    size_t i = 0;
    do {
        size_t b = i;
        while (i < len && data[i] != '\n' && data[i] != '\r')
            i++;
        if (!rc)
            rc = sc_buf_append(out, "data: ", 6);
        if (!rc)
            rc = sc_buf_append(out, data + b, i - b);
        if (!rc)
            rc = sc_buf_append(out, "\n", 1);
        if (i < len && data[i] == '\r' && i + 1 < len && data[i + 1] == '\n')
            i++;
    } while (i++ < len);
    return rc ? rc : sc_buf_append(out, "\n", 1);
}

/* A chat chunk with empty choices and a usage object: the include_usage chunk. */
static int is_usage_chunk(const char *d, size_t len)
{
    sc_slice_t ch, u;
    if (sc__json_member(d, d + len, "choices", &ch) || sc__json_member(d, d + len, "usage", &u))
        return 0;
    const char *p = ch.ptr + 1;
    while (p < ch.ptr + ch.len && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return ch.ptr[0] == '[' && *p == ']' && u.ptr[0] == '{';
}

/* The usage chunk a stream without one gets when the request asks for it. */
static int add_usage_chunk(sc_proxy_replay_t *rp, const sc_sse_usage_t *u, sc_buf_t *out)
{
    sc_buf_t d = {0};
    const char *model = rp->model_json       ? rp->model_json
                        : rp->chunk_model[0] ? rp->chunk_model
                                             : "\"\"";
    int rc = sc_buf_printf(&d,
                           "{\"id\":\"%s\",\"object\":\"chat.completion.chunk\",\"created\":%s,"
                           "\"model\":%s,\"choices\":[],\"usage\":{\"prompt_tokens\":%lld,"
                           "\"completion_tokens\":%lld,\"total_tokens\":%lld",
                           rp->id, rp->created, model, (long long)u->input, (long long)u->output,
                           (long long)(u->input + u->output));
    if (!rc && u->cached_input >= 0)
        rc = sc_buf_printf(&d, ",\"prompt_tokens_details\":{\"cached_tokens\":%lld}",
                           (long long)u->cached_input);
    if (!rc)
        rc = sc_buf_puts(&d, "}}");
    if (!rc)
        rc = put_event(out, (sc_slice_t){"", 0}, d.data, d.len);
    sc_buf_free(&d);
    rp->usage_sent = 1;
    return rc;
}

int sc_proxy_replay_event(sc_proxy_replay_t *rp, const sc_proxy_event_t *ev,
                          const sc_sse_usage_t *usage, sc_buf_t *out)
{
    const char *d = ev->data.ptr;
    size_t len = ev->data.len;
    if (rp->api == SC_API_OPENAI_CHAT) {
        if (len >= 6 && memcmp(d, "[DONE]", 6) == 0) {
            if (rp->include_usage && !rp->usage_sent && usage && usage->input >= 0 &&
                usage->output >= 0) {
                int rc = add_usage_chunk(rp, usage, out);
                if (rc)
                    return rc;
            }
            return put_event(out, ev->event, d, len);
        }
        if (is_usage_chunk(d, len)) {
            if (!rp->include_usage)
                return 0;
            rp->usage_sent = 1;
        }
        sc_slice_t m;
        if (!rp->model_json && sc__json_member(d, d + len, "model", &m) == 0 &&
            m.len < sizeof(rp->chunk_model)) {
            memcpy(rp->chunk_model, m.ptr, m.len);
            rp->chunk_model[m.len] = '\0';
        }
    }
    sc_buf_t tmp = {0};
    int rc = rewrite(rp, d, len, &tmp);
    if (rc == 0)
        rc = put_event(out, ev->event, tmp.data, tmp.len);
    else if (rc == SC_EINVAL)
        rc = put_event(out, ev->event, d, len);
    sc_buf_free(&tmp);
    return rc;
}
