/* sse_rec.c -- the recorder of one upstream event stream. Each delivered
 * event is kept (name, data, arrival offset) in one arena and read as the
 * SDK would read it: its JSON parsed once to learn the model, the usage, an
 * error, and whether the API's end marker came, which decides if the answer
 * may be stored at all. */
#define _GNU_SOURCE
#include "sc_sse.h"
#include "sse_json.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
    size_t name_off, data_off; /* into the arena */
    uint32_t name_len;
    uint32_t offset_ms;
    size_t data_len;
} rec_ev_t;

struct sc_sse_rec_s {
    sc_api_t api;
    size_t max_total;
    sc_sse_parser_t *parser;
    sc_sse_event_cb fwd; /* the feed's callback and its argument */
    void *fwd_ud;
    uint64_t feed_ms; /* arrival time of the bytes being fed */
    int status;
    char *ctype;
    uint64_t t0_ms; /* arrival of the first recorded event */
    rec_ev_t *ev;
    size_t n_ev, cap_ev;
    sc_buf_t arena; /* names and data of every recorded event */
    int ended, error, gave_up;
    sc_sse_usage_t usage;
    char model[256];
};

int sc_sse_rec_create(sc_sse_rec_t **out, sc_api_t api, size_t max_event, size_t max_total)
{
    if (!out || !sc_api_entry_name(api))
        return SC_EINVAL;
    sc_sse_rec_t *r = calloc(1, sizeof(*r));
    if (!r)
        return SC_ENOMEM;
    int rc = sc_sse_parser_create(&r->parser, max_event);
    if (rc) {
        free(r);
        return rc;
    }
    r->api = api;
    r->max_total = max_total;
    r->usage = SC_SSE_USAGE_UNKNOWN;
    *out = r;
    return 0;
}

static void drop_events(sc_sse_rec_t *r)
{
    free(r->ev);
    r->ev = NULL;
    r->n_ev = r->cap_ev = 0;
    sc_buf_free(&r->arena);
}

void sc_sse_rec_destroy(sc_sse_rec_t *r)
{
    if (!r)
        return;
    sc_sse_parser_destroy(r->parser);
    drop_events(r);
    free(r->ctype);
    free(r);
}

int sc_sse_rec_set_response(sc_sse_rec_t *r, int status, const char *content_type)
{
    char *ct = NULL;
    if (content_type && !(ct = strdup(content_type)))
        return SC_ENOMEM;
    free(r->ctype);
    r->ctype = ct;
    r->status = status;
    return 0;
}

static int slice_is(sc_slice_t s, const char *want)
{
    return strlen(want) == s.len && memcmp(s.ptr, want, s.len) == 0;
}

static void take_model(sc_sse_rec_t *r, const json_t *o)
{
    const char *m = sc__json_str(o, "model");
    if (m && !r->model[0] && strlen(m) < sizeof(r->model))
        strcpy(r->model, m);
}

/* JavaScript truthiness, which the openai SDK applies to "error". */
static int truthy(const json_t *v)
{
    if (!v || json_is_null(v) || json_is_false(v))
        return 0;
    if (json_is_string(v))
        return json_string_length(v) > 0;
    if (json_is_number(v))
        return json_number_value(v) != 0;
    return 1;
}

/* A chat.completion.chunk: the model, and usage in the last chunk when the
 * request asked for stream_options.include_usage. */
static void read_chat(sc_sse_rec_t *r, const json_t *o)
{
    take_model(r, o);
    sc__usage_merge(r->api, json_object_get(o, "usage"), &r->usage);
}

/* message_start carries the model and the input counts, message_delta the
 * final output count (and repeats others when they apply). */
static void read_messages(sc_sse_rec_t *r, const char *type, const json_t *o)
{
    if (strcmp(type, "message_start") == 0) {
        const json_t *m = json_object_get(o, "message");
        take_model(r, m);
        sc__usage_merge(r->api, json_object_get(m, "usage"), &r->usage);
    } else if (strcmp(type, "message_delta") == 0) {
        sc__usage_merge(r->api, json_object_get(o, "usage"), &r->usage);
    } else if (strcmp(type, "message_stop") == 0) {
        r->ended = 1;
    }
}

/* The response object rides on the lifecycle events; only
 * response.completed ends a stream worth storing (failed is an error,
 * incomplete an answer cut short). */
static void read_responses(sc_sse_rec_t *r, const char *type, const json_t *o)
{
    const json_t *resp = json_object_get(o, "response");
    if (strncmp(type, "response.", 9) == 0 && json_is_object(resp))
        take_model(r, resp);
    if (strcmp(type, "response.completed") == 0) {
        sc__usage_merge(r->api, json_object_get(resp, "usage"), &r->usage);
        r->ended = 1;
    } else if (strcmp(type, "response.failed") == 0) {
        r->error = 1;
    }
}

/* Reads the event as its SDK would; returns 1 when it should be recorded. */
static int read_event(sc_sse_rec_t *r, const sc_sse_event_t *ev)
{
    if (r->api == SC_API_OPENAI_CHAT && ev->data.len >= 6 &&
        memcmp(ev->data.ptr, "[DONE]", 6) == 0) {
        r->ended = 1; /* the SDK's test is startsWith('[DONE]') */
        return 1;
    }
    if (r->api == SC_API_ANTHROPIC_MESSAGES) {
        /* The Anthropic SDK skips unnamed events, pings and empty data. */
        if (ev->event.len == 0 || slice_is(ev->event, "ping"))
            return 0;
        if (slice_is(ev->event, "error")) {
            r->error = 1;
            return 0;
        }
        if (ev->data.len == 0)
            return 0;
    } else if (slice_is(ev->event, "error")) {
        r->error = 1;
        return 0;
    }
    json_t *o = sc__json_object(ev->data.ptr, ev->data.len);
    if (!o) {
        r->error = 1; /* the SDK would throw "Could not parse message into JSON" */
        return 0;
    }
    const char *type = sc__json_str(o, "type");
    if (r->api != SC_API_ANTHROPIC_MESSAGES && truthy(json_object_get(o, "error")))
        r->error = 1; /* openai core/streaming throws APIError on these */
    else if (r->api == SC_API_OPENAI_CHAT)
        read_chat(r, o);
    else if (type && strcmp(type, "error") == 0)
        r->error = 1;
    else if (type && r->api == SC_API_ANTHROPIC_MESSAGES)
        read_messages(r, type, o);
    else if (type)
        read_responses(r, type, o);
    json_decref(o);
    return !r->error;
}

static int keep(sc_sse_rec_t *r, const sc_sse_event_t *ev, uint64_t now_ms)
{
    if (r->arena.len + ev->event.len + ev->data.len > r->max_total || ev->data.len > UINT32_MAX ||
        ev->event.len > UINT32_MAX) {
        r->gave_up = 1;
        drop_events(r);
        return 0;
    }
    if (r->n_ev == r->cap_ev) {
        size_t cap = r->cap_ev ? r->cap_ev * 2 : 32;
        rec_ev_t *ev2 = realloc(r->ev, cap * sizeof(*ev2));
        if (!ev2)
            return SC_ENOMEM;
        r->ev = ev2;
        r->cap_ev = cap;
    }
    if (r->n_ev == 0)
        r->t0_ms = now_ms;
    uint64_t off = now_ms > r->t0_ms ? now_ms - r->t0_ms : 0;
    rec_ev_t *e = &r->ev[r->n_ev];
    e->name_off = r->arena.len;
    e->name_len = (uint32_t)ev->event.len;
    if (sc_buf_append(&r->arena, ev->event.ptr, ev->event.len))
        return SC_ENOMEM;
    e->data_off = r->arena.len;
    e->data_len = ev->data.len;
    if (sc_buf_append(&r->arena, ev->data.ptr, ev->data.len))
        return SC_ENOMEM;
    e->offset_ms = off > UINT32_MAX ? UINT32_MAX : (uint32_t)off;
    r->n_ev++;
    return 0;
}

int sc_sse_rec_add(sc_sse_rec_t *r, const sc_sse_event_t *ev, uint64_t now_ms)
{
    /* Nothing after the end marker or an error is part of the answer. */
    if (!ev->dispatch || r->ended || r->error)
        return 0;
    if (!read_event(r, ev) || r->gave_up)
        return 0;
    return keep(r, ev, now_ms);
}

static int on_block(void *ud, const sc_sse_event_t *ev)
{
    sc_sse_rec_t *r = ud;
    if (r->fwd) {
        int rc = r->fwd(r->fwd_ud, ev);
        if (rc)
            return rc;
    }
    return sc_sse_rec_add(r, ev, r->feed_ms);
}

int sc_sse_rec_feed(sc_sse_rec_t *r, const char *buf, size_t n, uint64_t now_ms, sc_sse_event_cb cb,
                    void *ud)
{
    r->fwd = cb;
    r->fwd_ud = ud;
    r->feed_ms = now_ms;
    int rc = sc_sse_parser_feed(r->parser, buf, n, on_block, r);
    if (rc && !r->gave_up) {
        r->gave_up = 1;
        drop_events(r);
    }
    return rc;
}

void sc_sse_rec_state(const sc_sse_rec_t *r, sc_sse_rec_state_t *out)
{
    const char *ct = r->ctype ? r->ctype : "";
    out->status = r->status;
    out->ended = r->ended;
    out->error = r->error;
    out->gave_up = r->gave_up;
    out->n_events = r->n_ev;
    out->bytes = r->arena.len;
    out->storable = r->status >= 200 && r->status < 300 && r->ended && !r->error && !r->gave_up &&
                    strncasecmp(ct, "text/event-stream", 17) == 0;
}

sc_sse_usage_t sc_sse_rec_usage(const sc_sse_rec_t *r)
{
    return r->usage;
}

const char *sc_sse_rec_model(const sc_sse_rec_t *r)
{
    return r->model;
}

const char *sc_sse_rec_content_type(const sc_sse_rec_t *r)
{
    return r->ctype ? r->ctype : "";
}

sc_api_t sc_sse_rec_api(const sc_sse_rec_t *r)
{
    return r->api;
}

int sc_sse_rec_event(const sc_sse_rec_t *r, size_t i, sc_slice_t *name, sc_slice_t *data,
                     uint32_t *offset_ms)
{
    if (i >= r->n_ev)
        return SC_ENOTFOUND;
    const rec_ev_t *e = &r->ev[i];
    const char *base = r->arena.data ? r->arena.data : ""; /* only empty events were kept */
    *name = (sc_slice_t){base + e->name_off, e->name_len};
    *data = (sc_slice_t){base + e->data_off, e->data_len};
    *offset_ms = e->offset_ms;
    return 0;
}
