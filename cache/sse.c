/* sse.c -- incremental server-sent-events parser. A byte-level scanner finds
 * block ends (a blank line after CR, LF or CRLF line endings) keeping its
 * state across feeds, so bytes are scanned once however the input is split;
 * complete blocks are parsed where they lie and only an unfinished block's
 * bytes are copied aside. */
#include "sc_sse.h"

#include <stdlib.h>
#include <string.h>

struct sc_sse_parser_s {
    size_t max_event;
    sc_buf_t pend;    /* bytes of the unfinished block, carried between feeds */
    sc_buf_t scratch; /* multi-line data joined with "\n" */
    size_t line_len;  /* scanner: content bytes in the current line so far */
    int prev_cr;      /* scanner: the last byte was CR, so an LF next ends nothing */
    int blk_after_cr; /* the current block follows a CR: its leading LF is that CR's */
    uint64_t offset;  /* bytes scanned since the start of the stream */
    int bom;          /* leading-BOM bytes matched; -1 once decided */
    int err;          /* sticky error */
};

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

int sc_sse_parser_create(sc_sse_parser_t **out, size_t max_event)
{
    if (!out || max_event < 16)
        return SC_EINVAL;
    sc_sse_parser_t *p = calloc(1, sizeof(*p));
    if (!p)
        return SC_ENOMEM;
    p->max_event = max_event;
    *out = p;
    return 0;
}

void sc_sse_parser_destroy(sc_sse_parser_t *p)
{
    if (!p)
        return;
    sc_buf_free(&p->pend);
    sc_buf_free(&p->scratch);
    free(p);
}

size_t sc_sse_parser_pending(const sc_sse_parser_t *p)
{
    return p->pend.len;
}

/* Scans 'n' bytes for the end of the current block. Returns the count of
 * bytes up to and including the blank line's terminator, or 0 when the block
 * does not end within them (all 'n' bytes were scanned). A UTF-8 BOM at the
 * very start of the stream is not line content (WHATWG: it is ignored). */
static size_t scan(sc_sse_parser_t *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (p->bom >= 0) {
            if (p->offset == (uint64_t)p->bom && c == BOM[p->bom]) {
                p->offset++;
                if (++p->bom == 3)
                    p->bom = -1;
                continue;
            }
            p->line_len += (size_t)p->bom; /* a partial BOM was content after all */
            p->bom = -1;
        }
        p->offset++;
        if (p->prev_cr && c == '\n') {
            p->prev_cr = 0;
            continue;
        }
        p->prev_cr = c == '\r';
        if (c == '\r' || c == '\n') {
            if (p->line_len == 0) {
                /* Take the LF of a CRLF blank line when it is already here,
                 * so the block's raw bytes end cleanly; otherwise it will
                 * lead the next block (which skips it). */
                if (c == '\r' && i + 1 < n && s[i + 1] == '\n') {
                    p->prev_cr = 0;
                    p->offset++;
                    return i + 2;
                }
                return i + 1;
            }
            p->line_len = 0;
        } else {
            p->line_len++;
        }
    }
    return 0;
}

static int field_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* Applies one non-empty, non-comment line to 'ev'. */
static int apply_line(sc_sse_parser_t *p, sc_sse_event_t *ev, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    const char *v = colon ? colon + 1 : line + len;
    size_t vlen = (size_t)(line + len - v);
    if (vlen && *v == ' ') {
        v++;
        vlen--;
    }
    if (field_is(line, nlen, "event")) {
        ev->event = (sc_slice_t){v, vlen};
    } else if (field_is(line, nlen, "data")) {
        if (ev->n_data == 0) {
            ev->data = (sc_slice_t){v, vlen};
        } else {
            /* A second line: the joined value no longer lies in the input. */
            if (ev->n_data == 1) {
                p->scratch.len = 0;
                if (sc_buf_append(&p->scratch, ev->data.ptr, ev->data.len))
                    return SC_ENOMEM;
            }
            if (sc_buf_append(&p->scratch, "\n", 1) || sc_buf_append(&p->scratch, v, vlen))
                return SC_ENOMEM;
            ev->data = (sc_slice_t){p->scratch.data, p->scratch.len};
        }
        ev->n_data++;
    } else if (field_is(line, nlen, "id")) {
        if (!memchr(v, '\0', vlen)) { /* WHATWG: an id with NUL is ignored */
            ev->id = (sc_slice_t){v, vlen};
            ev->has_id = 1;
        }
    } else if (field_is(line, nlen, "retry")) {
        int64_t ms = 0;
        size_t i = 0;
        for (; i < vlen && i < 18 && v[i] >= '0' && v[i] <= '9'; i++)
            ms = ms * 10 + (v[i] - '0');
        if (i == vlen && vlen > 0)
            ev->retry = ms;
    }
    /* Any other field is ignored, as the spec says. */
    return 0;
}

/* Parses one complete block and hands it to 'cb'. */
static int emit(sc_sse_parser_t *p, const char *s, size_t n, uint64_t start, sc_sse_event_cb cb,
                void *ud)
{
    sc_sse_event_t ev = {.raw = {s, n}, .event = {s, 0}, .data = {s, 0}, .id = {s, 0}, .retry = -1};
    size_t i = 0;
    if (p->blk_after_cr && n && s[0] == '\n')
        i = 1;
    if (start == 0 && n >= 3 && memcmp(s, BOM, 3) == 0)
        i = 3;
    p->blk_after_cr = n && s[n - 1] == '\r';
    while (i < n) {
        size_t b = i;
        while (i < n && s[i] != '\r' && s[i] != '\n')
            i++;
        size_t len = i - b;
        if (i < n && s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
            i++;
        i++;
        if (len == 0)
            break; /* the blank line: the scanner made it the block's last */
        if (s[b] == ':')
            continue; /* comment */
        int rc = apply_line(p, &ev, s + b, len);
        if (rc)
            return rc;
    }
    ev.dispatch = ev.event.len > 0 || ev.n_data > 0;
    return cb ? cb(ud, &ev) : 0;
}

int sc_sse_parser_feed(sc_sse_parser_t *p, const char *buf, size_t n, sc_sse_event_cb cb, void *ud)
{
    if (p->err)
        return p->err;
    size_t pos = 0;
    int rc = 0;
    while (pos < n && !rc) {
        uint64_t start = p->offset - p->pend.len;
        size_t len = scan(p, buf + pos, n - pos);
        if (len == 0) {
            if (p->pend.len + (n - pos) > p->max_event)
                rc = SC_ETOOBIG;
            else if (sc_buf_append(&p->pend, buf + pos, n - pos))
                rc = SC_ENOMEM;
            break;
        }
        if (p->pend.len + len > p->max_event) {
            rc = SC_ETOOBIG;
        } else if (p->pend.len) {
            if (sc_buf_append(&p->pend, buf + pos, len)) {
                rc = SC_ENOMEM;
            } else {
                rc = emit(p, p->pend.data, p->pend.len, start, cb, ud);
                p->pend.len = 0;
            }
        } else {
            rc = emit(p, buf + pos, len, start, cb, ud);
        }
        pos += len;
    }
    p->err = rc; /* the rest of 'buf' was not scanned: the parser cannot go on */
    return rc;
}
