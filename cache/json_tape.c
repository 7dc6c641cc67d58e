/* json_tape.c -- JSON text to a flat tape of nodes in one pass (json_tape.h):
 * the grammar, UTF-8 and escape checks of jansson, keys sorted once per
 * object, strings decoded only when read. Used by request_fast.c, whose
 * differential test (tests/cache/request_fast.c) holds it to jansson. */
#define _GNU_SOURCE
#include "json_tape.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DECLINE SC_EINVAL
#define MAX_DEPTH 32     /* deeper bodies go to jansson (its own limit is 2048) */
#define MAX_MEMBERS 64   /* per object, sorted on the stack */
#define MAX_NODES 262144 /* past this, jansson */

/* ---- the tape ------------------------------------------------------------ */

static int grow(void **arr, uint32_t *cap, size_t elem, void *small)
{
    uint32_t ncap = *cap * 2;
    if (ncap > MAX_NODES)
        return DECLINE;
    void *p = *arr == small ? malloc(ncap * elem) : realloc(*arr, ncap * elem);
    if (!p)
        return SC_ENOMEM;
    if (*arr == small)
        memcpy(p, small, *cap * elem);
    *arr = p;
    *cap = ncap;
    return 0;
}

static int new_node(sc_tape_t *t, uint32_t *idx)
{
    if (t->n == t->cap) {
        void *p = t->nodes;
        int rc = grow(&p, &t->cap, sizeof(sc_tape_node_t), t->small);
        if (rc)
            return rc;
        t->nodes = p;
    }
    *idx = t->n++;
    memset(&t->nodes[*idx], 0, sizeof(sc_tape_node_t));
    return 0;
}

static void skip_ws(sc_tape_t *t)
{
    while (t->pos < t->len) {
        char c = t->s[t->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
            return;
        t->pos++;
    }
}

static int hex4(const unsigned char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        unsigned d = c >= '0' && c <= '9'   ? c - '0'
                     : c >= 'a' && c <= 'f' ? c - 'a' + 10
                     : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                            : 16;
        if (d == 16)
            return DECLINE;
        *v = *v << 4 | d;
    }
    return 0;
}

/* One UTF-8 sequence at s[*i] (a lead byte >= 0x80), as strictly as jansson
 * checks it: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int utf8_seq(const unsigned char *s, uint32_t len, uint32_t *i)
{
    unsigned c = s[*i];
    uint32_t n, cp;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return DECLINE;
    if (len - *i < n)
        return DECLINE;
    for (uint32_t k = 1; k < n; k++) {
        unsigned cc = s[*i + k];
        if ((cc & 0xC0) != 0x80)
            return DECLINE;
        cp = cp << 6 | (cc & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return DECLINE;
    *i += n;
    return 0;
}

/* One \u escape at s[i] (the backslash): how many bytes it and, for a high
 * surrogate, its low half take, or 0 for what jansson refuses (bad hex, a
 * lone surrogate, \u0000). */
static uint32_t scan_u_escape(const unsigned char *s, uint32_t len, uint32_t i)
{
    uint32_t u, lo;
    if (len - i < 6 || hex4(s + i + 2, &u) || u == 0 || (u >= 0xDC00 && u <= 0xDFFF))
        return 0;
    if (u < 0xD800 || u > 0xDBFF)
        return 6;
    if (len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(s + i + 8, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    return 12;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* The bytes of 'v' that may need a look, as their high bits: a quote, a
 * backslash, a control character or a non-ASCII byte ("Bit Twiddling
 * Hacks": a borrow may flag bytes after a true one, never before it, so the
 * lowest flag is exact). */
static uint64_t special8(uint64_t v)
{
    uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
    return (((v - ONES * 0x20) & ~v) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | v) & HIGHS;
}

/* Skips the plain bytes from s[i]: 8 at a time to the first that may need a
 * look (little-endian: the lowest flag is the first byte in memory). */
static uint32_t skip_plain(const unsigned char *s, uint32_t len, uint32_t i)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (len - i >= 8) {
        uint64_t v, m;
        memcpy(&v, s + i, 8);
        if ((m = special8(v)))
            return i + (uint32_t)(__builtin_ctzll(m) >> 3);
        i += 8;
    }
#endif
    (void)s;
    return i;
}

/* A string, t->pos just past its opening quote. */
static int scan_string(sc_tape_t *t, sc_tape_node_t *nd)
{
    const unsigned char *s = (const unsigned char *)t->s;
    uint32_t i = t->pos, len = t->len;
    nd->type = SC_TAPE_STR;
    nd->off = i;
    for (;;) {
        i = skip_plain(s, len, i);
        if (i >= len)
            return DECLINE;
        unsigned c = s[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return DECLINE; /* a raw control character */
        if (c >= 0x80) {
            if (utf8_seq(s, len, &i))
                return DECLINE;
            continue;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        nd->esc = 1;
        c = i + 1 < len ? s[i + 1] : 0;
        if (c == 'u') {
            uint32_t n = scan_u_escape(s, len, i);
            if (!n)
                return DECLINE;
            i += n;
        } else if (c && strchr("\"\\/bfnrt", (int)c)) {
            i += 2;
        } else {
            return DECLINE;
        }
    }
    nd->len = i - nd->off;
    t->pos = i + 1;
    return 0;
}

static int digits(const char *s, uint32_t len, uint32_t *i)
{
    uint32_t start = *i;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return *i > start ? 0 : DECLINE;
}

/* A number by JSON's grammar. An integer is kept as its token; a real is
 * parsed as jansson parses it (strtod, overflow refused). */
static int scan_number(sc_tape_t *t, sc_tape_node_t *nd)
{
    const char *s = t->s;
    uint32_t i = t->pos, len = t->len;
    int real = 0;
    nd->off = i;
    if (s[i] == '-')
        i++;
    if (i < len && s[i] == '0')
        i++;
    else if (digits(s, len, &i))
        return DECLINE;
    if (i < len && s[i] == '.') {
        i++;
        real = 1;
        if (digits(s, len, &i))
            return DECLINE;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        real = 1;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (digits(s, len, &i))
            return DECLINE;
    }
    nd->len = i - nd->off;
    t->pos = i;
    if (!real) {
        nd->type = SC_TAPE_INT;
        /* jansson refuses integers past int64; 18 digits always fit */
        return nd->len - (s[nd->off] == '-') > 18 ? DECLINE : 0;
    }
    char tmp[64], *end;
    if (nd->len >= sizeof(tmp))
        return DECLINE;
    memcpy(tmp, s + nd->off, nd->len);
    tmp[nd->len] = '\0';
    nd->type = SC_TAPE_REAL;
    nd->u.d = strtod(tmp, &end);
    return end == tmp + nd->len && isfinite(nd->u.d) ? 0 : DECLINE;
}

static int scan_word(sc_tape_t *t, sc_tape_node_t *nd, const char *w, int type)
{
    size_t n = strlen(w);
    if (t->len - t->pos < n || memcmp(t->s + t->pos, w, n) != 0)
        return DECLINE;
    nd->type = (uint8_t)type;
    t->pos += (uint32_t)n;
    return 0;
}

/* Key order: strcmp's (keys hold no NUL: \u0000 is declined). Keys are
 * short: compared here, not through a call to memcmp. */
static int key_cmp(const sc_tape_t *t, uint32_t a, uint32_t b)
{
    const sc_tape_node_t *x = &t->nodes[a], *y = &t->nodes[b];
    const unsigned char *p = (const unsigned char *)t->s + x->off,
                        *q = (const unsigned char *)t->s + y->off;
    uint32_t n = x->len < y->len ? x->len : y->len;
    for (uint32_t i = 0; i < n; i++)
        if (p[i] != q[i])
            return p[i] < q[i] ? -1 : 1;
    return (x->len > y->len) - (x->len < y->len);
}

/* Sorts an object's keys into tape.order; duplicates are declined (jansson
 * refuses them: JSON_REJECT_DUPLICATES). */
static int sort_keys(sc_tape_t *t, sc_tape_node_t *obj, uint32_t *keys, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) { /* insertion sort: a handful of keys */
        uint32_t k = keys[i], j = i;
        for (; j > 0 && key_cmp(t, keys[j - 1], k) > 0; j--)
            keys[j] = keys[j - 1];
        keys[j] = k;
    }
    for (uint32_t i = 1; i < n; i++)
        if (key_cmp(t, keys[i - 1], keys[i]) == 0)
            return DECLINE;
    while (t->cap_order - t->n_order < n) {
        void *p = t->order;
        int rc = grow(&p, &t->cap_order, sizeof(uint32_t), t->small_order);
        if (rc)
            return rc;
        t->order = p;
    }
    obj->u.c.n = n;
    obj->u.c.keys = t->n_order;
    memcpy(t->order + t->n_order, keys, n * sizeof(uint32_t));
    t->n_order += n;
    return 0;
}

static int parse_value(sc_tape_t *t, int depth);

/* After a member or element: 1 at 'close', 0 after a comma, or DECLINE. */
static int separator(sc_tape_t *t, char close)
{
    skip_ws(t);
    if (t->pos >= t->len)
        return DECLINE;
    char c = t->s[t->pos++];
    return c == ',' ? 0 : c == close ? 1 : DECLINE;
}

static int parse_object(sc_tape_t *t, uint32_t me, int depth)
{
    uint32_t keys[MAX_MEMBERS], n = 0;
    int rc = 0;
    t->pos++;
    skip_ws(t);
    if (t->pos < t->len && t->s[t->pos] == '}')
        t->pos++;
    else
        while (!rc) {
            uint32_t k;
            skip_ws(t);
            if (t->pos >= t->len || t->s[t->pos] != '"' || n == MAX_MEMBERS)
                return DECLINE;
            if ((rc = new_node(t, &k)))
                return rc;
            t->pos++;
            if ((rc = scan_string(t, &t->nodes[k])))
                return rc;
            if (t->nodes[k].esc)
                return DECLINE; /* escaped keys are rare: jansson compares them */
            t->nodes[k].next = k + 1;
            keys[n++] = k;
            skip_ws(t);
            if (t->pos >= t->len || t->s[t->pos] != ':')
                return DECLINE;
            t->pos++;
            if ((rc = parse_value(t, depth)) || (rc = separator(t, '}')) < 0)
                return rc;
        }
    t->nodes[me].type = SC_TAPE_OBJ;
    return sort_keys(t, &t->nodes[me], keys, n);
}

static int parse_array(sc_tape_t *t, uint32_t me, int depth)
{
    uint32_t n = 0;
    int rc = 0;
    t->pos++;
    skip_ws(t);
    if (t->pos < t->len && t->s[t->pos] == ']')
        t->pos++;
    else
        while (!rc) {
            if ((rc = parse_value(t, depth)) || (rc = separator(t, ']')) < 0)
                return rc;
            n++;
        }
    t->nodes[me].type = SC_TAPE_ARR;
    t->nodes[me].u.c.n = n;
    return 0;
}

static int parse_value(sc_tape_t *t, int depth)
{
    uint32_t me;
    int rc;
    skip_ws(t);
    if (t->pos >= t->len)
        return DECLINE;
    if ((rc = new_node(t, &me)))
        return rc;
    char c = t->s[t->pos];
    if ((c == '{' || c == '[') && depth >= MAX_DEPTH) {
        rc = DECLINE;
    } else if (c == '{') {
        rc = parse_object(t, me, depth + 1);
    } else if (c == '[') {
        rc = parse_array(t, me, depth + 1);
    } else if (c == '"') {
        t->pos++;
        rc = scan_string(t, &t->nodes[me]);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        rc = scan_number(t, &t->nodes[me]);
    } else {
        rc = c == 't'   ? scan_word(t, &t->nodes[me], "true", SC_TAPE_TRUE)
             : c == 'f' ? scan_word(t, &t->nodes[me], "false", SC_TAPE_FALSE)
             : c == 'n' ? scan_word(t, &t->nodes[me], "null", SC_TAPE_NULL)
                        : DECLINE;
    }
    t->nodes[me].next = t->n;
    return rc;
}

void sc__tape_free(sc_tape_t *t)
{
    if (t->nodes != t->small)
        free(t->nodes);
    if (t->order != t->small_order)
        free(t->order);
}

/* The whole body: one object and nothing after it but whitespace. */
int sc__tape_parse(sc_tape_t *t, const char *s, size_t len)
{
    t->s = s;
    t->len = (uint32_t)len;
    t->pos = t->n = t->n_order = 0;
    t->nodes = t->small;
    t->cap = SC_TAPE_SMALL;
    t->order = t->small_order;
    t->cap_order = SC_TAPE_SMALL;
    if (len >= UINT32_MAX / 2)
        return DECLINE;
    skip_ws(t);
    if (t->pos >= t->len || t->s[t->pos] != '{')
        return DECLINE;
    int rc = parse_value(t, 0);
    skip_ws(t);
    return rc ? rc : t->pos == t->len ? 0 : DECLINE;
}

/* ---- reading the tape ------------------------------------------------------ */

static size_t utf8_put(char *o, uint32_t u)
{
    if (u < 0x80) {
        o[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        o[0] = (char)(0xC0 | u >> 6);
        o[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        o[0] = (char)(0xE0 | u >> 12);
        o[1] = (char)(0x80 | (u >> 6 & 0x3F));
        o[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | u >> 18);
    o[1] = (char)(0x80 | (u >> 12 & 0x3F));
    o[2] = (char)(0x80 | (u >> 6 & 0x3F));
    o[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

/* Decodes string node 'i' into 'o', which has room for its raw length (a
 * decoded string is never longer); its length. The scan checked every escape. */
size_t sc__tape_decode(const sc_tape_t *t, uint32_t i, char *o)
{
    const sc_tape_node_t *nd = &t->nodes[i];
    const unsigned char *s = (const unsigned char *)t->s + nd->off, *e = s + nd->len;
    char *start = o;
    while (s < e) {
        const unsigned char *bs = nd->esc ? memchr(s, '\\', (size_t)(e - s)) : NULL;
        size_t plain = bs ? (size_t)(bs - s) : (size_t)(e - s);
        memcpy(o, s, plain);
        o += plain;
        s += plain;
        if (!bs)
            break;
        uint32_t u, lo;
        switch (s[1]) {
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u':
            hex4(s + 2, &u);
            if (u >= 0xD800 && u <= 0xDBFF) {
                hex4(s + 8, &lo);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            }
            o += utf8_put(o, u);
            s += 4;
            break;
        default:
            *o++ = (char)s[1]; /* " \ / */
        }
        s += 2;
    }
    return (size_t)(o - start);
}

/* Appends string node 'i', decoded, to 'out'. */
int sc__tape_append_str(const sc_tape_t *t, uint32_t i, sc_buf_t *out)
{
    if (sc_buf_reserve(out, t->nodes[i].len))
        return SC_ENOMEM;
    out->len += sc__tape_decode(t, i, out->data + out->len);
    out->data[out->len] = '\0';
    return 0;
}

/* 1 when string node 'i' decodes to 'w' (a short word). A decoded byte takes
 * at most 6 raw ones (\u00XX), so a longer raw string cannot be 'w'. */
int sc__tape_str_is(const sc_tape_t *t, uint32_t i, const char *w)
{
    const sc_tape_node_t *nd = &t->nodes[i];
    size_t n = strlen(w);
    char tmp[64];
    if (nd->type != SC_TAPE_STR || nd->len < n || (!nd->esc && nd->len != n))
        return 0;
    if (!nd->esc)
        return memcmp(t->s + nd->off, w, n) == 0;
    return nd->len <= 6 * n && nd->len <= sizeof(tmp) && sc__tape_decode(t, i, tmp) == n &&
           memcmp(tmp, w, n) == 0;
}

/* The decoded length of string node 'i'. */
size_t sc__tape_str_len(const sc_tape_t *t, uint32_t i)
{
    char tmp[256];
    const sc_tape_node_t *nd = &t->nodes[i];
    if (!nd->esc)
        return nd->len;
    if (nd->len <= sizeof(tmp))
        return sc__tape_decode(t, i, tmp);
    char *p = malloc(nd->len);
    size_t n = p ? sc__tape_decode(t, i, p) : SIZE_MAX;
    free(p);
    return n;
}

/* The value of member 'name' of object node 'obj', or 0 when it has none
 * (node 0 is the body itself, never a member's value). */
uint32_t sc__tape_member(const sc_tape_t *t, uint32_t obj, const char *name)
{
    const sc_tape_node_t *o = &t->nodes[obj];
    size_t n = strlen(name);
    if (o->type != SC_TAPE_OBJ)
        return 0;
    for (uint32_t i = 0; i < o->u.c.n; i++) {
        const sc_tape_node_t *k = &t->nodes[t->order[o->u.c.keys + i]];
        if (k->len == n && memcmp(t->s + k->off, name, n) == 0)
            return t->order[o->u.c.keys + i] + 1;
    }
    return 0;
}

/* Element 'k' of array node 'arr' (in range). */
uint32_t sc__tape_element(const sc_tape_t *t, uint32_t arr, uint32_t k)
{
    uint32_t i = arr + 1;
    while (k--)
        i = t->nodes[i].next;
    return i;
}

/* json_number_value's answer for number node 'i'. */
double sc__tape_number(const sc_tape_t *t, uint32_t i)
{
    const sc_tape_node_t *nd = &t->nodes[i];
    if (nd->type == SC_TAPE_REAL)
        return nd->u.d;
    int64_t v = 0;
    for (uint32_t k = nd->off + (t->s[nd->off] == '-'); k < nd->off + nd->len; k++)
        v = v * 10 + (t->s[k] - '0');
    return (double)(t->s[nd->off] == '-' ? -v : v);
}
