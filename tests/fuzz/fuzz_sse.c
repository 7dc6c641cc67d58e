/* fuzz_sse.c -- libFuzzer harness for the proxy's stream code (cache/sse*.c,
 * cache/proxy_entry.c). Byte 0 picks the API, byte 1 a feed step; the rest
 * is an upstream stream and, separately, a stored entry. Properties: parsing
 * in steps equals parsing at once and the raw bytes rebuild the input; a
 * storable recording encodes and decodes to itself; whatever assembles is
 * JSON and re-synthesizes; replayed bytes parse back into the same events. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sc_proxy_entry.h"

#define SSE_MAX_EVENT 4096

static int sse_log(void *ud, const sc_sse_event_t *ev)
{
    sc_buf_t *b = ud;
    if (sc_buf_printf(b, "%d|%zu:", ev->dispatch, ev->event.len) ||
        sc_buf_append(b, ev->event.ptr, ev->event.len) || sc_buf_printf(b, "|%zu:", ev->data.len) ||
        sc_buf_append(b, ev->data.ptr, ev->data.len) || sc_buf_printf(b, "|%d:", ev->has_id) ||
        sc_buf_append(b, ev->id.ptr, ev->id.len) ||
        sc_buf_printf(b, "|%lld\n", (long long)ev->retry))
        return SC_ENOMEM;
    return 0;
}

static int sse_raw(void *ud, const sc_sse_event_t *ev)
{
    return sc_buf_append(ud, ev->raw.ptr, ev->raw.len) ? SC_ENOMEM : 0;
}

/* Parses 'in' fed 'step' bytes at a time; logs blocks into 'log' and their
 * raw bytes into 'raw' (either may be NULL). Returns the feed result. */
static int sse_parse(const char *in, size_t n, size_t step, sc_buf_t *log, sc_buf_t *raw,
                     size_t *pending)
{
    sc_sse_parser_t *p;
    if (sc_sse_parser_create(&p, SSE_MAX_EVENT))
        return SC_ENOMEM;
    int rc = 0;
    for (size_t at = 0; at < n && !rc; at += step)
        rc = sc_sse_parser_feed(p, in + at, n - at < step ? n - at : step, log ? sse_log : sse_raw,
                                log ? (void *)log : (void *)raw);
    *pending = sc_sse_parser_pending(p);
    sc_sse_parser_destroy(p);
    return rc;
}

typedef struct {
    size_t n;
    const sc_proxy_entry_t *e;
    int bad;
} sse_count_t;

static int sse_count(void *ud, const sc_sse_event_t *ev)
{
    sse_count_t *c = ud;
    if (!ev->dispatch)
        return 0;
    if (c->n >= c->e->n_events || ev->event.len != c->e->events[c->n].event.len ||
        memcmp(ev->event.ptr, c->e->events[c->n].event.ptr, ev->event.len))
        c->bad = 1;
    c->n++;
    return 0;
}

/* Replays every event of 'e' (no usage added or dropped) and parses the
 * bytes back: the same events, by name, in the same order. */
static void sse_check_replay(const sc_proxy_entry_t *e)
{
    sc_proxy_replay_t rp;
    uint64_t rng = 1;
    if (sc_proxy_replay_init(&rp, e->api, &rng, 1800000000, "m", 1, 1))
        __builtin_trap();
    sc_buf_t wire = {0};
    int rc = 0;
    for (size_t i = 0; i < e->n_events && !rc; i++)
        rc = sc_proxy_replay_event(&rp, &e->events[i], NULL, &wire);
    sc_proxy_replay_free(&rp);
    if (!rc) {
        sc_sse_parser_t *p;
        sse_count_t c = {0, e, 0};
        if (sc_sse_parser_create(&p, wire.len + 16))
            __builtin_trap();
        if (sc_sse_parser_feed(p, wire.data ? wire.data : "", wire.len, sse_count, &c) ||
            sc_sse_parser_pending(p) || c.bad || c.n != e->n_events)
            __builtin_trap();
        sc_sse_parser_destroy(p);
    } else if (rc != SC_ENOMEM) {
        __builtin_trap();
    }
    sc_buf_free(&wire);
}

/* Assembles a stream entry; what comes out must be a JSON object that
 * synthesizes into a stream again. */
static void sse_check_assemble(const sc_proxy_entry_t *e)
{
    sc_buf_t body = {0};
    int rc = sc_proxy_assemble(e, &body);
    if (rc && rc != SC_ECORRUPT && rc != SC_ENOMEM)
        __builtin_trap();
    if (!rc) {
        json_t *j = json_loadb(body.data, body.len, JSON_ALLOW_NUL, NULL);
        if (!json_is_object(j))
            __builtin_trap();
        json_decref(j);
        sc_proxy_entry_t b, syn;
        if (sc_proxy_entry_from_body(&b, e->api, 200, "application/json", body.data, body.len))
            __builtin_trap();
        rc = sc_proxy_synthesize(&b, &syn);
        if (rc && rc != SC_ECORRUPT && rc != SC_ENOMEM)
            __builtin_trap();
        if (!rc) {
            sse_check_replay(&syn);
            sc_proxy_entry_free(&syn);
        }
    }
    sc_buf_free(&body);
}

static void sse_check_entry_codec(const sc_proxy_entry_t *e)
{
    sc_buf_t enc = {0};
    int rc = sc_proxy_entry_encode(e, &enc);
    if (rc && rc != SC_EINVAL && rc != SC_ENOMEM)
        __builtin_trap();
    if (!rc) {
        sc_proxy_entry_t d;
        if (sc_proxy_entry_decode(&d, enc.data, enc.len) || d.n_events != e->n_events ||
            d.body.len != e->body.len || d.api != e->api || d.form != e->form)
            __builtin_trap();
        for (size_t i = 0; i < d.n_events; i++)
            if (d.events[i].data.len != e->events[i].data.len ||
                memcmp(d.events[i].data.ptr, e->events[i].data.ptr, d.events[i].data.len))
                __builtin_trap();
        sc_proxy_entry_free(&d);
    }
    sc_buf_free(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    sc_api_t api = (sc_api_t)(1 + data[0] % 3);
    size_t step = data[1] ? data[1] : 1, n = size - 2, pend1, pend2;
    const char *in = (const char *)data + 2;
    /* Split invariance, and the raw bytes are the input. */
    sc_buf_t a = {0}, b = {0}, raw = {0};
    int rc1 = sse_parse(in, n, n ? n : 1, &a, NULL, &pend1);
    int rc2 = sse_parse(in, n, step, &b, NULL, &pend2);
    if (rc1 != rc2 || (rc1 && rc1 != SC_ETOOBIG && rc1 != SC_ENOMEM))
        __builtin_trap();
    if (!rc1 && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len))))
        __builtin_trap();
    if (!rc1 && (sse_parse(in, n, step, NULL, &raw, &pend2) || raw.len + pend2 != n ||
                 (raw.len && memcmp(raw.data, in, raw.len))))
        __builtin_trap();
    sc_buf_free(&a);
    sc_buf_free(&b);
    sc_buf_free(&raw);
    /* Record as a 200 event stream; a storable one goes through every path. */
    sc_sse_rec_t *r;
    if (sc_sse_rec_create(&r, api, SSE_MAX_EVENT, 1 << 20))
        return 0;
    sc_sse_rec_set_response(r, 200, "text/event-stream");
    int rc = 0;
    for (size_t at = 0, t = 0; at < n && !rc; at += step, t++)
        rc = sc_sse_rec_feed(r, in + at, n - at < step ? n - at : step, t, NULL, NULL);
    sc_proxy_entry_t e;
    if (sc_proxy_entry_from_rec(&e, r) == 0) {
        sse_check_entry_codec(&e);
        sse_check_assemble(&e);
        sse_check_replay(&e);
        sc_proxy_entry_free(&e);
    }
    sc_sse_rec_destroy(r);
    /* The same bytes as a stored entry: refused, or served in both forms. */
    rc = sc_proxy_entry_decode(&e, in, n);
    if (rc && rc != SC_ECORRUPT && rc != SC_ENOMEM)
        __builtin_trap();
    if (!rc) {
        sse_check_entry_codec(&e);
        if (e.form == SC_PROXY_FORM_STREAM) {
            sse_check_assemble(&e);
            sse_check_replay(&e);
        } else {
            sc_proxy_entry_t syn;
            rc = sc_proxy_synthesize(&e, &syn);
            if (rc && rc != SC_ECORRUPT && rc != SC_ENOMEM)
                __builtin_trap();
            if (!rc) {
                sse_check_assemble(&syn);
                sc_proxy_entry_free(&syn);
            }
        }
        sc_proxy_entry_free(&e);
    }
    return 0;
}
