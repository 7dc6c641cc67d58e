/* sse_synth.c -- a stored non-streamed answer into the events its API would
 * have streamed, in the shapes the SDKs' accumulators read (openai
 * ChatCompletionStream and ResponseStream, @anthropic-ai/sdk MessageStream).
 * Events are built with jansson into one arena and handed out as an owned
 * entry; the Responses terminal event embeds the stored body's own bytes. */
#include "sc_proxy_entry.h"
#include "sse_json.h"

#include <stdlib.h>
#include <string.h>

/* Text deltas of at most this many bytes: short enough to look like a
 * stream to a UI, long enough that a long answer is not thousands of events. */
#define PIECE_MAX 64

typedef struct {
    size_t name_off, name_len, data_off, data_len;
} span_t;

typedef struct {
    sc_buf_t arena;
    span_t *ev;
    size_t n, cap;
    int rc;      /* first error; later adds are no-ops */
    int64_t seq; /* responses: sequence_number of the next event */
} builder_t;

static void add_raw(builder_t *b, const char *name, const char *data, size_t len)
{
    if (b->rc)
        return;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        span_t *ev = realloc(b->ev, cap * sizeof(*ev));
        if (!ev) {
            b->rc = SC_ENOMEM;
            return;
        }
        b->ev = ev;
        b->cap = cap;
    }
    span_t *s = &b->ev[b->n];
    s->name_off = b->arena.len;
    s->name_len = name ? strlen(name) : 0;
    if (sc_buf_append(&b->arena, name ? name : "", s->name_len)) {
        b->rc = SC_ENOMEM;
        return;
    }
    s->data_off = b->arena.len;
    s->data_len = len;
    if (sc_buf_append(&b->arena, data, len))
        b->rc = SC_ENOMEM;
    else
        b->n++;
}

/* Adds an event whose data is 'j' (reference stolen). */
static void add(builder_t *b, const char *name, json_t *j)
{
    sc_buf_t tmp = {0};
    if (!j)
        b->rc = b->rc ? b->rc : SC_ENOMEM;
    else if (!b->rc && sc__json_dump(&tmp, j))
        b->rc = SC_ENOMEM;
    else
        add_raw(b, name, tmp.data, tmp.len);
    sc_buf_free(&tmp);
    json_decref(j);
}

/* Bytes of the next piece of 's' (n > 0): at most PIECE_MAX, ending after a
 * space when one falls in the second half, never inside a UTF-8 sequence. */
static size_t piece_len(const char *s, size_t n)
{
    if (n <= PIECE_MAX)
        return n;
    size_t cut = PIECE_MAX;
    for (size_t i = PIECE_MAX; i > PIECE_MAX / 2; i--)
        if (s[i - 1] == ' ' || s[i - 1] == '\n') {
            cut = i;
            break;
        }
    while (cut > 1 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

/* Calls 'fn' with each piece of string 's' as a new JSON string. */
typedef void (*piece_fn)(builder_t *b, void *ud, json_t *piece);

static void pieces(builder_t *b, const json_t *s, piece_fn fn, void *ud)
{
    const char *p = json_string_value(s);
    size_t n = json_string_length(s);
    while (n && !b->rc) {
        size_t k = piece_len(p, n);
        fn(b, ud, json_stringn(p, k));
        p += k;
        n -= k;
    }
}

/* An owned entry holding the built events. */
static int finish(builder_t *b, const sc_proxy_entry_t *src, sc_proxy_entry_t *out)
{
    static const char CT[] = "text/event-stream; charset=utf-8";
    if (b->rc)
        return b->rc;
    size_t head = b->n * sizeof(sc_proxy_event_t);
    char *mem = malloc(head + b->arena.len + sizeof(CT) + src->model.len + 1);
    if (!mem)
        return SC_ENOMEM;
    sc_proxy_event_t *ev = (sc_proxy_event_t *)(void *)mem;
    char *arena = mem + head, *ct = arena + b->arena.len, *model = ct + sizeof(CT);
    if (b->arena.len)
        memcpy(arena, b->arena.data, b->arena.len);
    memcpy(ct, CT, sizeof(CT));
    if (src->model.len)
        memcpy(model, src->model.ptr, src->model.len);
    model[src->model.len] = '\0';
    for (size_t i = 0; i < b->n; i++)
        ev[i] = (sc_proxy_event_t){{arena + b->ev[i].name_off, b->ev[i].name_len},
                                   {arena + b->ev[i].data_off, b->ev[i].data_len},
                                   0};
    *out = (sc_proxy_entry_t){
        .api = src->api,
        .form = SC_PROXY_FORM_STREAM,
        .status = src->status,
        .content_type = {ct, sizeof(CT) - 1},
        .model = {model, src->model.len},
        .usage = src->usage,
        .events = ev,
        .n_events = b->n,
        .owned_ = mem,
    };
    return 0;
}

/* ---- chat ---------------------------------------------------------------- */

typedef struct {
    const json_t *body;
    json_int_t index;
} chat_ctx_t;

/* A chunk with the body's identity and one choice carrying 'delta'. */
static json_t *chat_chunk(const chat_ctx_t *c, json_t *delta, const json_t *logprobs,
                          const json_t *finish)
{
    static const char *const top[] = {
        "id", "object", "created", "model", "service_tier", "system_fingerprint", NULL};
    json_t *chunk = json_object(), *choice = json_object();
    for (size_t i = 0; top[i]; i++) {
        json_t *v = json_object_get(c->body, top[i]);
        if (i == 1)
            json_object_set_new(chunk, "object", json_string("chat.completion.chunk"));
        else if (v)
            json_object_set(chunk, top[i], v);
    }
    json_object_set_new(choice, "index", json_integer(c->index));
    json_object_set_new(choice, "delta", delta);
    json_object_set_new(choice, "logprobs",
                        logprobs ? json_incref((json_t *)logprobs) : json_null());
    json_object_set_new(choice, "finish_reason",
                        finish ? json_incref((json_t *)finish) : json_null());
    json_object_set_new(chunk, "choices", json_pack("[o]", choice));
    return chunk;
}

static void chat_content_piece(builder_t *b, void *ud, json_t *piece)
{
    add(b, NULL, chat_chunk(ud, json_pack("{s:o}", "content", piece), NULL, NULL));
}

static void chat_refusal_piece(builder_t *b, void *ud, json_t *piece)
{
    add(b, NULL, chat_chunk(ud, json_pack("{s:o}", "refusal", piece), NULL, NULL));
}

typedef struct {
    const chat_ctx_t *c;
    json_int_t tool;
} tool_ctx_t;

static void chat_args_piece(builder_t *b, void *ud, json_t *piece)
{
    tool_ctx_t *t = ud;
    add(b, NULL,
        chat_chunk(t->c,
                   json_pack("{s:[{s:I,s:{s:o}}]}", "tool_calls", "index", t->tool, "function",
                             "arguments", piece),
                   NULL, NULL));
}

static void chat_choice(builder_t *b, chat_ctx_t *c, const json_t *ch)
{
    const json_t *msg = json_object_get(ch, "message");
    const json_t *role = json_object_get(msg, "role"), *content = json_object_get(msg, "content");
    const json_t *tools = json_object_get(msg, "tool_calls");
    c->index = json_integer_value(json_object_get(ch, "index"));
    /* The first chunk names the role, with "" content as the API sends it. */
    json_t *first = json_pack("{s:o,s:s,s:n}", "role",
                              role ? json_incref((json_t *)role) : json_string("assistant"),
                              "content", "", "refusal");
    if (first && !json_is_string(content))
        json_object_set_new(first, "content", json_null());
    add(b, NULL, chat_chunk(c, first, NULL, NULL));
    if (json_is_string(content))
        pieces(b, content, chat_content_piece, c);
    if (json_is_string(json_object_get(msg, "refusal")))
        pieces(b, json_object_get(msg, "refusal"), chat_refusal_piece, c);
    for (size_t j = 0; j < json_array_size(tools); j++) {
        const json_t *t = json_array_get(tools, j), *fn = json_object_get(t, "function");
        const json_t *type = json_object_get(t, "type");
        tool_ctx_t tc = {c, (json_int_t)j};
        add(b, NULL,
            chat_chunk(c,
                       json_pack("{s:[{s:I,s:O?,s:o,s:{s:O?,s:s}}]}", "tool_calls", "index",
                                 tc.tool, "id", json_object_get(t, "id"), "type",
                                 type ? json_incref((json_t *)type) : json_string("function"),
                                 "function", "name", json_object_get(fn, "name"), "arguments", ""),
                       NULL, NULL));
        pieces(b, json_object_get(fn, "arguments"), chat_args_piece, &tc);
    }
    add(b, NULL,
        chat_chunk(c, json_object(), json_object_get(ch, "logprobs"),
                   json_object_get(ch, "finish_reason")));
}

static void synth_chat(builder_t *b, const json_t *body)
{
    const json_t *choices = json_object_get(body, "choices"),
                 *usage = json_object_get(body, "usage");
    chat_ctx_t c = {body, 0};
    for (size_t i = 0; i < json_array_size(choices) && !b->rc; i++) {
        const json_t *ch = json_array_get(choices, i);
        if (!json_is_integer(json_object_get(ch, "index")) ||
            !json_is_object(json_object_get(ch, "message")))
            b->rc = SC_ECORRUPT;
        else
            chat_choice(b, &c, ch);
    }
    if (json_is_object(usage)) {
        json_t *u = chat_chunk(&c, json_object(), NULL, NULL);
        json_object_set_new(u, "choices", json_array());
        json_object_set(u, "usage", (json_t *)usage);
        add(b, NULL, u);
    }
    add_raw(b, NULL, "[DONE]", 6);
}

/* ---- messages ------------------------------------------------------------ */

typedef struct {
    json_int_t index;
    const char *delta_type,
        *key; /* text_delta/text, thinking_delta/thinking, input_json_delta/partial_json */
} blk_ctx_t;

static void msg_piece(builder_t *b, void *ud, json_t *piece)
{
    blk_ctx_t *k = ud;
    add(b, "content_block_delta",
        json_pack("{s:s,s:I,s:{s:s,s:o}}", "type", "content_block_delta", "index", k->index,
                  "delta", "type", k->delta_type, k->key, piece));
}

static void msg_block(builder_t *b, const json_t *blk, json_int_t i)
{
    const char *type = sc__json_str(blk, "type");
    json_t *start = json_deep_copy(blk);
    blk_ctx_t k = {i, NULL, NULL};
    json_t *text = NULL; /* what streams as deltas, owned */
    const json_t *cites = NULL, *sig = NULL;
    if (type && strcmp(type, "text") == 0) {
        k = (blk_ctx_t){i, "text_delta", "text"};
        text = json_incref(json_object_get(blk, "text"));
        json_object_set_new(start, "text", json_string(""));
        cites = json_object_get(blk, "citations");
        if (json_is_array(cites))
            json_object_set_new(start, "citations", json_array());
    } else if (type && strcmp(type, "thinking") == 0) {
        k = (blk_ctx_t){i, "thinking_delta", "thinking"};
        text = json_incref(json_object_get(blk, "thinking"));
        sig = json_object_get(blk, "signature");
        json_object_set_new(start, "thinking", json_string(""));
        json_object_set_new(start, "signature", json_string(""));
    } else if (json_is_object(json_object_get(blk, "input"))) {
        k = (blk_ctx_t){i, "input_json_delta", "partial_json"};
        char *js = json_object_size(json_object_get(blk, "input"))
                       ? json_dumps(json_object_get(blk, "input"), JSON_COMPACT)
                       : NULL;
        text = js ? json_string(js) : NULL;
        free(js);
        json_object_set_new(start, "input", json_object());
    }
    add(b, "content_block_start",
        json_pack("{s:s,s:I,s:o}", "type", "content_block_start", "index", i, "content_block",
                  start));
    if (json_is_string(text))
        pieces(b, text, msg_piece, &k);
    json_decref(text);
    for (size_t c = 0; json_is_array(cites) && c < json_array_size(cites); c++)
        add(b, "content_block_delta",
            json_pack("{s:s,s:I,s:{s:s,s:O}}", "type", "content_block_delta", "index", i, "delta",
                      "type", "citations_delta", "citation", json_array_get(cites, c)));
    if (json_is_string(sig))
        add(b, "content_block_delta",
            json_pack("{s:s,s:I,s:{s:s,s:O}}", "type", "content_block_delta", "index", i, "delta",
                      "type", "signature_delta", "signature", sig));
    add(b, "content_block_stop", json_pack("{s:s,s:I}", "type", "content_block_stop", "index", i));
}

static void synth_messages(builder_t *b, const json_t *body)
{
    const json_t *content = json_object_get(body, "content");
    if (!json_is_array(content)) {
        b->rc = SC_ECORRUPT;
        return;
    }
    json_t *start = json_deep_copy(body);
    json_object_set_new(start, "content", json_array());
    json_object_set_new(start, "stop_reason", json_null());
    json_object_set_new(start, "stop_sequence", json_null());
    add(b, "message_start", json_pack("{s:s,s:o}", "type", "message_start", "message", start));
    for (size_t i = 0; i < json_array_size(content); i++)
        msg_block(b, json_array_get(content, i), (json_int_t)i);
    json_t *sr = json_object_get(body, "stop_reason"), *ss = json_object_get(body, "stop_sequence");
    json_t *usage = json_object_get(body, "usage");
    add(b, "message_delta",
        json_pack("{s:s,s:{s:O?,s:O?},s:o}", "type", "message_delta", "delta", "stop_reason", sr,
                  "stop_sequence", ss, "usage", usage ? json_incref(usage) : json_object()));
    add(b, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

/* ---- responses ----------------------------------------------------------- */

/* Adds a Responses event: {"type":T,"sequence_number":N, ...fields}. */
static void resp_add(builder_t *b, const char *type, json_t *fields)
{
    json_t *ev = json_pack("{s:s,s:I}", "type", type, "sequence_number", (json_int_t)b->seq++);
    if (ev && fields)
        json_object_update(ev, fields);
    json_decref(fields);
    add(b, type, ev);
}

typedef struct {
    const json_t *item_id;
    json_int_t output, content;
    const char *type, *done_key; /* the delta event's type; the done event's text member */
} part_ctx_t;

static json_t *part_fields(const part_ctx_t *p)
{
    return json_pack("{s:O?,s:I,s:I}", "item_id", p->item_id, "output_index", p->output,
                     "content_index", p->content);
}

static void resp_text_piece(builder_t *b, void *ud, json_t *piece)
{
    part_ctx_t *p = ud;
    json_t *f = part_fields(p);
    json_object_set_new(f, "delta", piece);
    if (strcmp(p->type, "response.output_text.delta") == 0)
        json_object_set_new(f, "logprobs", json_array());
    resp_add(b, p->type, f);
}

static void resp_args_piece(builder_t *b, void *ud, json_t *piece)
{
    part_ctx_t *p = ud;
    resp_add(b, "response.function_call_arguments.delta",
             json_pack("{s:O?,s:I,s:o}", "item_id", p->item_id, "output_index", p->output, "delta",
                       piece));
}

/* One content part of a message item: added (empty), deltas, done. */
static void resp_part(builder_t *b, part_ctx_t *p, const json_t *part)
{
    const char *type = sc__json_str(part, "type");
    const char *key = type && strcmp(type, "output_text") == 0 ? "text"
                      : type && strcmp(type, "refusal") == 0   ? "refusal"
                                                               : NULL;
    json_t *empty = json_deep_copy(part);
    const json_t *text = key ? json_object_get(part, key) : NULL;
    if (json_is_string(text))
        json_object_set_new(empty, key, json_string(""));
    if (json_is_array(json_object_get(part, "annotations")))
        json_object_set_new(empty, "annotations", json_array());
    json_t *f = part_fields(p);
    json_object_set_new(f, "part", empty);
    resp_add(b, "response.content_part.added", f);
    if (json_is_string(text)) {
        p->type =
            strcmp(key, "text") == 0 ? "response.output_text.delta" : "response.refusal.delta";
        pieces(b, text, resp_text_piece, p);
        f = part_fields(p);
        json_object_set(f, key, (json_t *)text);
        if (strcmp(key, "text") == 0)
            json_object_set_new(f, "logprobs", json_array());
        resp_add(
            b, strcmp(key, "text") == 0 ? "response.output_text.done" : "response.refusal.done", f);
    }
    f = part_fields(p);
    json_object_set(f, "part", (json_t *)part);
    resp_add(b, "response.content_part.done", f);
}

static void resp_item(builder_t *b, const json_t *item, json_int_t k)
{
    const char *type = sc__json_str(item, "type");
    int msg = type && strcmp(type, "message") == 0;
    int fc = type && strcmp(type, "function_call") == 0;
    part_ctx_t p = {json_object_get(item, "id"), k, 0, NULL, NULL};
    json_t *added = json_deep_copy(item);
    if (msg || fc)
        json_object_set_new(added, "status", json_string("in_progress"));
    if (msg)
        json_object_set_new(added, "content", json_array());
    if (fc)
        json_object_set_new(added, "arguments", json_string(""));
    resp_add(b, "response.output_item.added",
             json_pack("{s:I,s:o}", "output_index", k, "item", added));
    const json_t *content = json_object_get(item, "content");
    for (size_t c = 0; msg && c < json_array_size(content); c++) {
        p.content = (json_int_t)c;
        resp_part(b, &p, json_array_get(content, c));
    }
    const json_t *args = json_object_get(item, "arguments");
    if (fc && json_is_string(args)) {
        pieces(b, args, resp_args_piece, &p);
        resp_add(b, "response.function_call_arguments.done",
                 json_pack("{s:O?,s:I,s:O}", "item_id", p.item_id, "output_index", k, "arguments",
                           args));
    }
    resp_add(b, "response.output_item.done",
             json_pack("{s:I,s:O}", "output_index", k, "item", item));
}

/* The terminal event embeds the stored body's own bytes, so assembling the
 * synthesized stream gives back the body byte for byte. */
static void resp_terminal(builder_t *b, const json_t *body, sc_slice_t raw)
{
    const char *status = sc__json_str(body, "status");
    const char *type = status && strcmp(status, "incomplete") == 0 ? "response.incomplete"
                       : status && strcmp(status, "failed") == 0   ? "response.failed"
                                                                   : "response.completed";
    sc_buf_t d = {0};
    while (raw.len && (raw.ptr[raw.len - 1] == ' ' || raw.ptr[raw.len - 1] == '\n' ||
                       raw.ptr[raw.len - 1] == '\r' || raw.ptr[raw.len - 1] == '\t'))
        raw.len--;
    if (sc_buf_printf(&d, "{\"type\":\"%s\",\"sequence_number\":%lld,\"response\":", type,
                      (long long)b->seq++) ||
        sc_buf_append(&d, raw.ptr, raw.len) || sc_buf_puts(&d, "}"))
        b->rc = b->rc ? b->rc : SC_ENOMEM;
    else
        add_raw(b, type, d.data, d.len);
    sc_buf_free(&d);
}

static void synth_responses(builder_t *b, const json_t *body, sc_slice_t raw)
{
    const json_t *output = json_object_get(body, "output");
    if (!json_is_array(output)) {
        b->rc = SC_ECORRUPT;
        return;
    }
    json_t *start = json_deep_copy(body);
    json_object_set_new(start, "status", json_string("in_progress"));
    json_object_set_new(start, "output", json_array());
    json_object_set_new(start, "usage", json_null());
    resp_add(b, "response.created", json_pack("{s:O}", "response", start));
    resp_add(b, "response.in_progress", json_pack("{s:o}", "response", start));
    for (size_t k = 0; k < json_array_size(output); k++)
        resp_item(b, json_array_get(output, k), (json_int_t)k);
    resp_terminal(b, body, raw);
}

int sc_proxy_synthesize(const sc_proxy_entry_t *e, sc_proxy_entry_t *out)
{
    if (e->form != SC_PROXY_FORM_JSON)
        return SC_EINVAL;
    json_t *body = sc__json_object(e->body.ptr, e->body.len);
    if (!body)
        return SC_ECORRUPT;
    builder_t b = {0};
    switch (e->api) {
    case SC_API_OPENAI_CHAT:
        synth_chat(&b, body);
        break;
    case SC_API_ANTHROPIC_MESSAGES:
        synth_messages(&b, body);
        break;
    case SC_API_OPENAI_RESPONSES:
        synth_responses(&b, body, e->body);
        break;
    default:
        b.rc = SC_EINVAL;
    }
    int rc = finish(&b, e, out);
    json_decref(body);
    free(b.ev);
    sc_buf_free(&b.arena);
    return rc;
}
