/* proxy_entry.c -- the stored form of a proxied answer: entry views over a
 * recorder or a body, and their JSON encoding. Encoding writes straight into
 * a buffer (each event is a two- or three-element array, so a stream costs
 * little more than its data); decoding validates every member and copies
 * all strings into one allocation, so a decoded entry is freed at once. */
#include "sc_proxy_entry.h"
#include "sse_json.h"

#include <stdlib.h>
#include <string.h>

#define ENTRY_VERSION 1

static const char *const FORM_NAMES[] = {NULL, "json", "stream"};

void sc_proxy_entry_free(sc_proxy_entry_t *e)
{
    if (!e)
        return;
    free(e->owned_);
    memset(e, 0, sizeof(*e));
}

static sc_slice_t cslice(const char *s)
{
    return (sc_slice_t){s ? s : "", s ? strlen(s) : 0};
}

int sc_proxy_entry_from_rec(sc_proxy_entry_t *e, const sc_sse_rec_t *r)
{
    sc_sse_rec_state_t st;
    sc_sse_rec_state(r, &st);
    if (!st.storable)
        return SC_EINVAL;
    /* The recorder keeps its events in its own layout; the view needs an
     * array of sc_proxy_event_t, built once here and owned by the entry. */
    sc_proxy_event_t *ev = calloc(st.n_events ? st.n_events : 1, sizeof(*ev));
    if (!ev)
        return SC_ENOMEM;
    for (size_t i = 0; i < st.n_events; i++)
        sc_sse_rec_event(r, i, &ev[i].event, &ev[i].data, &ev[i].offset_ms);
    *e = (sc_proxy_entry_t){
        .api = sc_sse_rec_api(r),
        .form = SC_PROXY_FORM_STREAM,
        .status = st.status,
        .content_type = cslice(sc_sse_rec_content_type(r)),
        .model = cslice(sc_sse_rec_model(r)),
        .usage = sc_sse_rec_usage(r),
        .events = ev,
        .n_events = st.n_events,
        .owned_ = ev,
    };
    return 0;
}

int sc_proxy_body_usage(sc_api_t api, const char *body, size_t len, sc_sse_usage_t *usage,
                        char *model, size_t model_cap)
{
    json_t *o = sc__json_object(body, len);
    if (!o)
        return SC_EINVAL;
    *usage = SC_SSE_USAGE_UNKNOWN;
    sc__usage_merge(api, json_object_get(o, "usage"), usage);
    if (model && model_cap) {
        const char *m = sc__json_str(o, "model");
        size_t n = m ? strlen(m) : 0;
        if (n >= model_cap)
            n = model_cap - 1;
        memcpy(model, m ? m : "", n);
        model[n] = '\0';
    }
    json_decref(o);
    return 0;
}

/* The body is stored and served verbatim, its id and created included: a
 * non-streamed hit must be byte for byte what the SDK would have received,
 * and its ids are not reused within a stream the way a replay's are. Fresh
 * ids go only into replayed streams (sc_proxy_replay_event). */
int sc_proxy_entry_from_body(sc_proxy_entry_t *e, sc_api_t api, int status,
                             const char *content_type, const char *body, size_t len)
{
    if (!sc_api_entry_name(api))
        return SC_EINVAL;
    char model[256];
    sc_sse_usage_t u;
    int rc = sc_proxy_body_usage(api, body, len, &u, model, sizeof(model));
    if (rc)
        return rc;
    /* The model string must outlive this call: find it in the body itself. */
    sc_slice_t mv = {body, 0};
    if (model[0] && sc__json_member(body, body + len, "model", &mv) == 0 && mv.len >= 2 &&
        !memchr(mv.ptr, '\\', mv.len)) {
        mv.ptr++;
        mv.len -= 2; /* the raw string without its quotes; a name with escapes is left out */
    } else {
        mv.len = 0;
    }
    *e = (sc_proxy_entry_t){
        .api = api,
        .form = SC_PROXY_FORM_JSON,
        .status = status,
        .content_type = cslice(content_type),
        .model = mv,
        .usage = u,
        .body = {body, len},
    };
    return 0;
}

/* ---- encode -------------------------------------------------------------- */

/* 1 when the bytes are well-formed UTF-8 (no overlongs, surrogates or
 * values past U+10FFFF): the JSON decoder takes nothing else back. */
static int utf8_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80)
            continue;
        int k = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
        if (k < 0 || c > 0xF4 || end - p < k)
            return 0;
        unsigned cp = c & (0x3F >> k);
        for (int i = 0; i < k; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return 0;
        p += k;
    }
    return 1;
}

static int put_str(sc_buf_t *out, sc_slice_t s)
{
    if (!utf8_ok(s.ptr, s.len))
        return SC_EINVAL;
    return sc_buf_json_str(out, s.ptr, s.len);
}

/* A count as stored: -1 for every unknown (negative) value. */
static long long count(int64_t v)
{
    return v < 0 ? -1 : (long long)v;
}

static int encode_events(const sc_proxy_entry_t *e, sc_buf_t *out)
{
    int rc = sc_buf_puts(out, ",\"events\":[");
    for (size_t i = 0; i < e->n_events && !rc; i++) {
        const sc_proxy_event_t *ev = &e->events[i];
        rc = sc_buf_printf(out, "%s[%u,", i ? "," : "", (unsigned)ev->offset_ms);
        rc = rc ? rc : put_str(out, ev->data);
        if (ev->event.len) {
            rc = rc ? rc : sc_buf_puts(out, ",");
            rc = rc ? rc : put_str(out, ev->event);
        }
        rc = rc ? rc : sc_buf_puts(out, "]");
    }
    return rc ? rc : sc_buf_puts(out, "]");
}

int sc_proxy_entry_encode(const sc_proxy_entry_t *e, sc_buf_t *out)
{
    const char *api = sc_api_entry_name(e->api);
    if (!api || (e->form != SC_PROXY_FORM_JSON && e->form != SC_PROXY_FORM_STREAM) ||
        (e->form == SC_PROXY_FORM_STREAM && e->n_events == 0))
        return SC_EINVAL;
    size_t mark = out->len;
    int rc = sc_buf_printf(
        out,
        "{\"sc_proxy\":%d,\"api\":\"%s\",\"form\":\"%s\",\"status\":%d,\"ctype\":", ENTRY_VERSION,
        api, FORM_NAMES[e->form], e->status);
    rc = rc ? rc : put_str(out, e->content_type);
    rc = rc ? rc : sc_buf_puts(out, ",\"model\":");
    rc = rc ? rc : put_str(out, e->model);
    rc = rc ? rc
            : sc_buf_printf(out, ",\"usage\":[%lld,%lld,%lld]", count(e->usage.input),
                            count(e->usage.output), count(e->usage.cached_input));
    if (e->form == SC_PROXY_FORM_JSON) {
        rc = rc ? rc : sc_buf_puts(out, ",\"body\":");
        rc = rc ? rc : put_str(out, e->body);
    } else {
        rc = rc ? rc : encode_events(e, out);
    }
    rc = rc ? rc : sc_buf_puts(out, "}");
    if (rc)
        sc__buf_truncate(out, mark);
    return rc;
}

/* ---- decode -------------------------------------------------------------- */

/* Copies string 's' into the arena at '*at' and returns its slice there. */
static sc_slice_t stash(char **at, const json_t *s)
{
    size_t n = json_string_length(s);
    char *p = *at;
    memcpy(p, json_string_value(s), n);
    p[n] = '\0';
    *at += n + 1;
    return (sc_slice_t){p, n};
}

static int read_count(const json_t *a, size_t i, int64_t *out)
{
    const json_t *v = json_array_get(a, i);
    if (!json_is_integer(v) || json_integer_value(v) < -1)
        return SC_ECORRUPT;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

/* Checks the events array; adds their string bytes to '*bytes'. */
static int check_events(const json_t *evs, size_t *bytes)
{
    if (!json_is_array(evs) || json_array_size(evs) == 0)
        return SC_ECORRUPT;
    for (size_t i = 0; i < json_array_size(evs); i++) {
        const json_t *ev = json_array_get(evs, i);
        size_t n = json_array_size(ev);
        const json_t *ms = json_array_get(ev, 0), *data = json_array_get(ev, 1);
        const json_t *name = json_array_get(ev, 2);
        if (!json_is_array(ev) || n < 2 || n > 3 || !json_is_integer(ms) ||
            json_integer_value(ms) < 0 || json_integer_value(ms) > UINT32_MAX ||
            !json_is_string(data) || (n == 3 && !json_is_string(name)))
            return SC_ECORRUPT;
        /* A name is one SSE line: a line break in it would split the event. */
        if (n == 3 && strcspn(json_string_value(name), "\r\n") != strlen(json_string_value(name)))
            return SC_ECORRUPT;
        *bytes += json_string_length(data) + 1 + (n == 3 ? json_string_length(name) + 1 : 0);
    }
    return 0;
}

static int decode_obj(sc_proxy_entry_t *e, const json_t *o)
{
    const json_t *ver = json_object_get(o, "sc_proxy"), *api = json_object_get(o, "api");
    const json_t *form = json_object_get(o, "form"), *status = json_object_get(o, "status");
    const json_t *ct = json_object_get(o, "ctype"), *model = json_object_get(o, "model");
    const json_t *usage = json_object_get(o, "usage"), *body = json_object_get(o, "body");
    const json_t *evs = json_object_get(o, "events");
    if (!json_is_integer(ver) || json_integer_value(ver) != ENTRY_VERSION || !json_is_string(api) ||
        !json_is_string(form) || !json_is_integer(status) || json_integer_value(status) < 100 ||
        json_integer_value(status) > 599 || !json_is_string(ct) || !json_is_string(model) ||
        !json_is_array(usage) || json_array_size(usage) != 3)
        return SC_ECORRUPT;
    sc_proxy_entry_t d = {.status = (int)json_integer_value(status)};
    d.api = sc_api_from_entry_name(json_string_value(api), json_string_length(api));
    if (!d.api)
        return SC_ECORRUPT;
    if (read_count(usage, 0, &d.usage.input) || read_count(usage, 1, &d.usage.output) ||
        read_count(usage, 2, &d.usage.cached_input))
        return SC_ECORRUPT;
    size_t bytes = json_string_length(ct) + 1 + json_string_length(model) + 1;
    if (strcmp(json_string_value(form), "json") == 0 && json_is_string(body) && !evs) {
        d.form = SC_PROXY_FORM_JSON;
        bytes += json_string_length(body) + 1;
    } else if (strcmp(json_string_value(form), "stream") == 0 && !body) {
        d.form = SC_PROXY_FORM_STREAM;
        if (check_events(evs, &bytes))
            return SC_ECORRUPT;
        d.n_events = json_array_size(evs);
    } else {
        return SC_ECORRUPT;
    }
    /* One block: the event array first (aligned), then every string. */
    size_t head = d.n_events * sizeof(sc_proxy_event_t);
    char *mem = malloc(head + bytes);
    if (!mem)
        return SC_ENOMEM;
    char *at = mem + head;
    sc_proxy_event_t *ev = (sc_proxy_event_t *)(void *)mem;
    d.content_type = stash(&at, ct);
    d.model = stash(&at, model);
    if (d.form == SC_PROXY_FORM_JSON)
        d.body = stash(&at, body);
    for (size_t i = 0; i < d.n_events; i++) {
        const json_t *a = json_array_get(evs, i);
        ev[i].offset_ms = (uint32_t)json_integer_value(json_array_get(a, 0));
        ev[i].data = stash(&at, json_array_get(a, 1));
        ev[i].event =
            json_array_size(a) == 3 ? stash(&at, json_array_get(a, 2)) : (sc_slice_t){"", 0};
    }
    d.events = d.n_events ? ev : NULL;
    d.owned_ = mem;
    *e = d;
    return 0;
}

int sc_proxy_entry_decode(sc_proxy_entry_t *e, const char *json, size_t len)
{
    json_t *o = sc__json_object(json, len);
    if (!o)
        return SC_ECORRUPT;
    int rc = decode_obj(e, o);
    json_decref(o);
    return rc;
}
