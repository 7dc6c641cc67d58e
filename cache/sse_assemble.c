/* sse_assemble.c -- a recorded stream into the non-streamed body its SDK
 * would have built (openai lib/ChatCompletionStream's accumulator and
 * finalizeChatCompletion; @anthropic-ai/sdk MessageStream#accumulateMessage;
 * the Responses API's response.completed payload, taken byte for byte).
 * Growing text goes into sc_bufs, not jansson strings, so assembling n
 * deltas costs O(total bytes), not O(n^2). */
#include "sc_proxy_entry.h"
#include "sse_json.h"

#include <stdlib.h>
#include <string.h>

/* The API's own limits: n <= 128 choices; parallel tool calls are far fewer
 * than this. Larger indexes mean a corrupt or hostile stream. */
#define MAX_INDEX 1024

static int set_str(json_t *o, const char *key, const sc_buf_t *b)
{
    return json_object_set_new(o, key, json_stringn(b->data ? b->data : "", b->len)) ? SC_ENOMEM
                                                                                     : 0;
}

static int append_json_str(sc_buf_t *b, const json_t *s)
{
    return json_is_string(s) ? sc_buf_append(b, json_string_value(s), json_string_length(s)) : 0;
}

/* Grows 'arr' (of 'size'-byte elements, '*n' used) to hold index 'i'. */
static int grow(void **arr, size_t *n, size_t i, size_t size)
{
    if (i < *n)
        return 0;
    if (i >= MAX_INDEX)
        return SC_ECORRUPT;
    void *a = realloc(*arr, (i + 1) * size);
    if (!a)
        return SC_ENOMEM;
    memset((char *)a + *n * size, 0, (i + 1 - *n) * size);
    *arr = a;
    *n = i + 1;
    return 0;
}

/* ---- chat ---------------------------------------------------------------- */

typedef struct {
    json_t *obj; /* id, type and extra fields; function.name */
    sc_buf_t args;
} tool_t;

typedef struct {
    int seen;
    json_t *msg; /* the message: role and other delta fields */
    sc_buf_t content, refusal;
    int has_content, has_refusal;
    tool_t *tools;
    size_t n_tools;
    json_t *finish;   /* finish_reason */
    json_t *logprobs; /* {"content":[...],"refusal":[...]} merged, or NULL */
} choice_t;

static int chat_tool_delta(choice_t *c, const json_t *td)
{
    json_t *ji = json_object_get(td, "index");
    if (!json_is_integer(ji) || json_integer_value(ji) < 0)
        return SC_ECORRUPT;
    size_t i = (size_t)json_integer_value(ji);
    int rc = grow((void **)&c->tools, &c->n_tools, i, sizeof(tool_t));
    if (rc)
        return rc;
    tool_t *t = &c->tools[i];
    if (!t->obj && !(t->obj = json_object()))
        return SC_ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)td, k, v)
    {
        if (strcmp(k, "index") == 0)
            continue;
        if (strcmp(k, "function") == 0) {
            json_t *name = json_object_get(v, "name");
            if (json_is_string(name) && json_string_length(name))
                json_object_set(t->obj, "name", name); /* moved under function at the end */
            if (append_json_str(&t->args, json_object_get(v, "arguments")))
                return SC_ENOMEM;
        } else if ((strcmp(k, "id") != 0 && strcmp(k, "type") != 0) || !json_is_null(v)) {
            json_object_set(t->obj, k, v);
        }
    }
    return 0;
}

static int merge_logprobs(choice_t *c, json_t *lp)
{
    if (!json_is_object(lp))
        return 0;
    if (!c->logprobs && !(c->logprobs = json_object()))
        return SC_ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(lp, k, v)
    {
        json_t *have = json_object_get(c->logprobs, k);
        if (json_is_array(have) && json_is_array(v))
            json_array_extend(have, v);
        else
            json_object_set_new(c->logprobs, k, json_deep_copy(v));
    }
    return 0;
}

static int chat_choice(choice_t *cs, size_t n_cs, const json_t *ch)
{
    json_t *ji = json_object_get(ch, "index");
    if (!json_is_integer(ji) || json_integer_value(ji) < 0 ||
        (size_t)json_integer_value(ji) >= n_cs)
        return SC_ECORRUPT;
    choice_t *c = &cs[json_integer_value(ji)];
    c->seen = 1;
    if (!c->msg && !(c->msg = json_object()))
        return SC_ENOMEM;
    json_t *fr = json_object_get(ch, "finish_reason");
    if (json_is_string(fr)) {
        json_decref(c->finish);
        c->finish = json_incref(fr);
    }
    if (merge_logprobs(c, json_object_get(ch, "logprobs")))
        return SC_ENOMEM;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(ch, "delta"), k, v)
    {
        int rc = 0;
        if (strcmp(k, "content") == 0 && json_is_string(v)) {
            c->has_content = 1;
            rc = append_json_str(&c->content, v);
        } else if (strcmp(k, "refusal") == 0 && json_is_string(v)) {
            c->has_refusal = 1;
            rc = append_json_str(&c->refusal, v);
        } else if (strcmp(k, "tool_calls") == 0 && json_is_array(v)) {
            for (size_t i = 0; i < json_array_size(v) && !rc; i++)
                rc = chat_tool_delta(c, json_array_get(v, i));
        } else if (strcmp(k, "role") == 0 && json_is_string(v)) {
            json_object_set(c->msg, "role", v);
        } else if (strcmp(k, "content") && strcmp(k, "refusal") && strcmp(k, "tool_calls") &&
                   strcmp(k, "role") && strcmp(k, "obfuscation")) {
            json_object_set(c->msg, k, v);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static json_t *chat_tool_json(tool_t *t)
{
    json_t *o = json_object(), *fn = json_object();
    json_t *name = json_object_get(t->obj, "name");
    json_object_set_new(fn, "name", name ? json_incref(name) : json_string(""));
    set_str(fn, "arguments", &t->args);
    json_t *id = json_object_get(t->obj, "id"), *type = json_object_get(t->obj, "type");
    json_object_set_new(o, "id", id ? json_incref(id) : json_string(""));
    json_object_set_new(o, "type", type ? json_incref(type) : json_string("function"));
    json_object_set_new(o, "function", fn);
    const char *k;
    json_t *v;
    json_object_foreach(t->obj, k, v) if (strcmp(k, "name") && strcmp(k, "id") && strcmp(k, "type"))
        json_object_set(o, k, v);
    return o;
}

static json_t *chat_choice_json(choice_t *c, size_t index)
{
    json_t *msg = json_object();
    json_t *role = json_object_get(c->msg, "role");
    json_object_set_new(msg, "role", role ? json_incref(role) : json_string("assistant"));
    if (c->has_content)
        set_str(msg, "content", &c->content);
    else
        json_object_set_new(msg, "content", json_null());
    if (c->has_refusal)
        set_str(msg, "refusal", &c->refusal);
    else
        json_object_set_new(msg, "refusal", json_null());
    if (c->n_tools) {
        json_t *tc = json_array();
        for (size_t i = 0; i < c->n_tools; i++)
            if (c->tools[i].obj)
                json_array_append_new(tc, chat_tool_json(&c->tools[i]));
        json_object_set_new(msg, "tool_calls", tc);
    }
    const char *k;
    json_t *v;
    json_object_foreach(c->msg, k, v) if (!json_object_get(msg, k)) json_object_set(msg, k, v);
    json_t *ch = json_object();
    json_object_set_new(ch, "index", json_integer((json_int_t)index));
    json_object_set_new(ch, "message", msg);
    json_object_set_new(ch, "logprobs", c->logprobs ? json_incref(c->logprobs) : json_null());
    json_object_set_new(ch, "finish_reason", c->finish ? json_incref(c->finish) : json_null());
    return ch;
}

static void choices_free(choice_t *cs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < cs[i].n_tools; j++) {
            json_decref(cs[i].tools[j].obj);
            sc_buf_free(&cs[i].tools[j].args);
        }
        free(cs[i].tools);
        json_decref(cs[i].msg);
        json_decref(cs[i].finish);
        json_decref(cs[i].logprobs);
        sc_buf_free(&cs[i].content);
        sc_buf_free(&cs[i].refusal);
    }
    free(cs);
}

/* Top-level members of each chunk overwrite the previous ones (the SDK's
 * Object.assign); the body then takes them in the order a non-streamed
 * chat.completion has them. */
static int chat_top(json_t *top, const json_t *chunk)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)chunk, k, v)
    {
        if (strcmp(k, "choices") == 0 || strcmp(k, "object") == 0 || strcmp(k, "obfuscation") == 0)
            continue;
        if (strcmp(k, "usage") == 0 && json_is_null(v) && json_object_get(top, "usage"))
            continue;
        if (json_object_set(top, k, v))
            return SC_ENOMEM;
    }
    return 0;
}

static int chat_body(json_t *top, choice_t *cs, size_t n_cs, sc_buf_t *out)
{
    static const char *const order[] = {"id",      "object", "created",      "model",
                                        "choices", "usage",  "service_tier", "system_fingerprint",
                                        NULL};
    json_t *body = json_object(), *choices = json_array();
    json_object_set_new(top, "object", json_string("chat.completion"));
    for (size_t i = 0; i < n_cs; i++)
        if (cs[i].seen)
            json_array_append_new(choices, chat_choice_json(&cs[i], i));
    json_object_set_new(top, "choices", choices);
    if (json_is_null(json_object_get(top, "usage")))
        json_object_del(top, "usage");
    for (size_t i = 0; order[i]; i++)
        if (json_object_get(top, order[i]))
            json_object_set(body, order[i], json_object_get(top, order[i]));
    json_object_update_missing(body, top);
    int rc = sc__json_dump(out, body);
    json_decref(body);
    return rc;
}

static int assemble_chat(const sc_proxy_entry_t *e, sc_buf_t *out)
{
    json_t *top = json_object();
    choice_t *cs = NULL;
    size_t n_cs = 0;
    int rc = top ? 0 : SC_ENOMEM;
    for (size_t i = 0; i < e->n_events && !rc; i++) {
        const sc_slice_t d = e->events[i].data;
        if (d.len >= 6 && memcmp(d.ptr, "[DONE]", 6) == 0)
            break;
        json_t *o = sc__json_object(d.ptr, d.len);
        json_t *chs = json_object_get(o, "choices");
        if (!o || (chs && !json_is_array(chs))) {
            rc = SC_ECORRUPT;
        } else {
            rc = chat_top(top, o);
            for (size_t j = 0; j < json_array_size(chs) && !rc; j++) {
                json_t *ji = json_object_get(json_array_get(chs, j), "index");
                rc = json_is_integer(ji) && json_integer_value(ji) >= 0
                         ? grow((void **)&cs, &n_cs, (size_t)json_integer_value(ji),
                                sizeof(choice_t))
                         : SC_ECORRUPT;
                if (!rc)
                    rc = chat_choice(cs, n_cs, json_array_get(chs, j));
            }
        }
        json_decref(o);
    }
    if (!rc)
        rc = chat_body(top, cs, n_cs, out);
    choices_free(cs, n_cs);
    json_decref(top);
    return rc;
}

/* ---- messages ------------------------------------------------------------ */

enum { BLK_OTHER = 0, BLK_TEXT, BLK_THINKING, BLK_TOOL };

typedef struct {
    int kind;
    sc_buf_t buf; /* text, thinking, or the joined partial_json */
} block_t;

static int msg_block_start(json_t *content, block_t **bs, size_t *n_bs, const json_t *o)
{
    json_t *ji = json_object_get(o, "index"), *cb = json_object_get(o, "content_block");
    if (!json_is_integer(ji) || (size_t)json_integer_value(ji) != json_array_size(content) ||
        !json_is_object(cb))
        return SC_ECORRUPT;
    int rc = grow((void **)bs, n_bs, json_array_size(content), sizeof(block_t));
    if (rc)
        return rc;
    block_t *b = &(*bs)[json_array_size(content)];
    const char *type = sc__json_str(cb, "type");
    type = type ? type : "";
    if (strcmp(type, "text") == 0) {
        b->kind = BLK_TEXT;
        rc = append_json_str(&b->buf, json_object_get(cb, "text"));
    } else if (strcmp(type, "thinking") == 0) {
        b->kind = BLK_THINKING;
        rc = append_json_str(&b->buf, json_object_get(cb, "thinking"));
    } else if (json_object_get(cb, "input")) {
        b->kind = BLK_TOOL; /* tool_use, server_tool_use, mcp_tool_use: input streams as JSON */
    }
    if (!rc && json_array_append_new(content, json_deep_copy(cb)))
        rc = SC_ENOMEM;
    return rc;
}

static int msg_block_delta(json_t *content, block_t *bs, size_t n_bs, const json_t *o)
{
    json_t *ji = json_object_get(o, "index"), *d = json_object_get(o, "delta");
    if (!json_is_integer(ji) || json_integer_value(ji) < 0 ||
        (size_t)json_integer_value(ji) >= n_bs)
        return SC_ECORRUPT;
    size_t i = (size_t)json_integer_value(ji);
    block_t *b = &bs[i];
    json_t *blk = json_array_get(content, i);
    const char *type = sc__json_str(d, "type");
    type = type ? type : "";
    if (strcmp(type, "text_delta") == 0 && b->kind == BLK_TEXT)
        return append_json_str(&b->buf, json_object_get(d, "text"));
    if (strcmp(type, "thinking_delta") == 0 && b->kind == BLK_THINKING)
        return append_json_str(&b->buf, json_object_get(d, "thinking"));
    if (strcmp(type, "input_json_delta") == 0 && b->kind == BLK_TOOL)
        return append_json_str(&b->buf, json_object_get(d, "partial_json"));
    if (strcmp(type, "signature_delta") == 0 && b->kind == BLK_THINKING)
        return json_object_set(blk, "signature", json_object_get(d, "signature")) ? SC_ECORRUPT : 0;
    if (strcmp(type, "citations_delta") == 0 && b->kind == BLK_TEXT) {
        json_t *cits = json_object_get(blk, "citations");
        if (!json_is_array(cits)) {
            cits = json_array();
            json_object_set_new(blk, "citations", cits);
        }
        return json_array_append(cits, json_object_get(d, "citation")) ? SC_ECORRUPT : 0;
    }
    return 0; /* a delta type this SDK version does not know: ignored, as it would be */
}

/* message_delta: stop_reason and stop_sequence always, usage counts when
 * present (they are cumulative totals, overwritten, never added). */
static void msg_delta(json_t *msg, const json_t *o)
{
    json_t *d = json_object_get(o, "delta"), *u = json_object_get(o, "usage");
    const char *k;
    json_t *v;
    json_object_foreach(d, k, v) json_object_set(msg, k, v);
    json_t *mu = json_object_get(msg, "usage");
    if (!json_is_object(mu)) {
        mu = json_object();
        json_object_set_new(msg, "usage", mu);
    }
    json_object_foreach(u, k, v) if (!json_is_null(v)) json_object_set(mu, k, v);
}

static int msg_finish(json_t *content, block_t *bs, size_t n_bs)
{
    for (size_t i = 0; i < n_bs; i++) {
        json_t *blk = json_array_get(content, i);
        if (bs[i].kind == BLK_TEXT || bs[i].kind == BLK_THINKING) {
            if (set_str(blk, bs[i].kind == BLK_TEXT ? "text" : "thinking", &bs[i].buf))
                return SC_ENOMEM;
        } else if (bs[i].kind == BLK_TOOL && bs[i].buf.len) {
            json_t *in = json_loadb(bs[i].buf.data, bs[i].buf.len, JSON_DECODE_ANY, NULL);
            if (!in)
                return SC_ECORRUPT;
            json_object_set_new(blk, "input", in);
        }
    }
    return 0;
}

static int assemble_messages(const sc_proxy_entry_t *e, sc_buf_t *out)
{
    json_t *msg = NULL, *content = NULL;
    block_t *bs = NULL;
    size_t n_bs = 0;
    int rc = 0, stopped = 0;
    for (size_t i = 0; i < e->n_events && !rc && !stopped; i++) {
        json_t *o = sc__json_object(e->events[i].data.ptr, e->events[i].data.len);
        const char *type = sc__json_str(o, "type");
        if (!type) {
            rc = SC_ECORRUPT;
        } else if (strcmp(type, "message_start") == 0) {
            json_t *m = json_object_get(o, "message");
            if (msg || !json_is_object(m)) {
                rc = SC_ECORRUPT;
            } else {
                msg = json_deep_copy(m);
                content = json_array();
                json_object_set_new(msg, "content", content);
            }
        } else if (!msg) {
            rc = SC_ECORRUPT;
        } else if (strcmp(type, "content_block_start") == 0) {
            rc = msg_block_start(content, &bs, &n_bs, o);
        } else if (strcmp(type, "content_block_delta") == 0) {
            rc = msg_block_delta(content, bs, n_bs, o);
        } else if (strcmp(type, "message_delta") == 0) {
            msg_delta(msg, o);
        } else if (strcmp(type, "message_stop") == 0) {
            stopped = 1;
        }
        json_decref(o);
    }
    if (!rc && (!msg || !stopped))
        rc = SC_ECORRUPT;
    if (!rc)
        rc = msg_finish(content, bs, n_bs);
    if (!rc)
        rc = sc__json_dump(out, msg);
    for (size_t i = 0; i < n_bs; i++)
        sc_buf_free(&bs[i].buf);
    free(bs);
    json_decref(msg);
    return rc;
}

/* ---- responses ----------------------------------------------------------- */

/* The terminal event carries the whole response: its raw bytes are the body. */
static int assemble_responses(const sc_proxy_entry_t *e, sc_buf_t *out)
{
    static const char *const terminal[] = {"response.completed", "response.incomplete",
                                           "response.failed", NULL};
    for (size_t i = e->n_events; i-- > 0;) {
        const sc_proxy_event_t *ev = &e->events[i];
        const char *end = ev->data.ptr + ev->data.len;
        sc_slice_t type, resp;
        if (sc__json_member(ev->data.ptr, end, "type", &type))
            continue;
        for (size_t t = 0; terminal[t]; t++) {
            size_t n = strlen(terminal[t]);
            if (type.len == n + 2 && memcmp(type.ptr + 1, terminal[t], n) == 0) {
                if (sc__json_member(ev->data.ptr, end, "response", &resp) || resp.len == 0 ||
                    resp.ptr[0] != '{')
                    return SC_ECORRUPT;
                /* The scanner checks structure only; the body must be JSON. */
                json_t *j = sc__json_object(resp.ptr, resp.len);
                if (!j)
                    return SC_ECORRUPT;
                json_decref(j);
                return sc_buf_append(out, resp.ptr, resp.len) ? SC_ENOMEM : 0;
            }
        }
    }
    return SC_ECORRUPT;
}

int sc_proxy_assemble(const sc_proxy_entry_t *e, sc_buf_t *out)
{
    if (e->form != SC_PROXY_FORM_STREAM)
        return SC_EINVAL;
    size_t mark = out->len;
    int rc = SC_EINVAL;
    switch (e->api) {
    case SC_API_OPENAI_CHAT:
        rc = assemble_chat(e, out);
        break;
    case SC_API_ANTHROPIC_MESSAGES:
        rc = assemble_messages(e, out);
        break;
    case SC_API_OPENAI_RESPONSES:
        rc = assemble_responses(e, out);
        break;
    case SC_API_OPENAI_EMBEDDINGS:
        break; /* never streamed */
    }
    if (rc)
        sc__buf_truncate(out, mark);
    return rc;
}
