/* request_fast.c -- a lookup body decoded in one pass, without a jansson tree.
 * The bytes become a flat tape of nodes on the stack (yyjson's layout, written
 * for this one hot path), from which the fields, the semantic text and the
 * canonical encoding are read. It accepts only what the jansson path accepts,
 * with byte-identical keys: whatever it does not fully handle (escaped object
 * keys, integers past 18 digits, deep nesting, embeddings as arrays) or finds
 * invalid, it declines, and request.c decodes it with jansson, which decides. */
#define _GNU_SOURCE
#include "request_internal.h"
#include "sc_vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DECLINE SC_EINVAL
#define MAX_DEPTH 32     /* deeper bodies go to jansson (its own limit is 2048) */
#define MAX_MEMBERS 64   /* per object, sorted on the stack */
#define SMALL_NODES 128  /* a chat lookup has 10 to 100 nodes: no malloc */
#define MAX_NODES 262144 /* past this, jansson */

enum { N_OBJ, N_ARR, N_STR, N_INT, N_REAL, N_TRUE, N_FALSE, N_NULL };

typedef struct {
    uint8_t type;
    uint8_t esc;   /* N_STR: holds a backslash escape */
    uint32_t off;  /* N_STR: the byte after the opening quote; numbers: the first byte */
    uint32_t len;  /* raw bytes (N_STR: without the quotes) */
    uint32_t next; /* the node after this value and everything inside it */
    union {
        struct {
            uint32_t n;    /* N_OBJ: members; N_ARR: elements */
            uint32_t keys; /* N_OBJ: where its key nodes start in tape.order */
        } c;
        double d; /* N_REAL: the value */
    } u;
} node_t;

/* An object's members are its key nodes, each followed by its value's
 * nodes; tape.order lists every object's key nodes sorted by key, the order
 * the canonical encoding writes them in. */
typedef struct {
    const char *s;
    uint32_t len, pos;
    node_t *nodes;
    uint32_t n, cap;
    uint32_t *order;
    uint32_t n_order, cap_order;
    node_t small[SMALL_NODES];
    uint32_t small_order[SMALL_NODES];
} tape_t;

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

static int new_node(tape_t *t, uint32_t *idx)
{
    if (t->n == t->cap) {
        void *p = t->nodes;
        int rc = grow(&p, &t->cap, sizeof(node_t), t->small);
        if (rc)
            return rc;
        t->nodes = p;
    }
    *idx = t->n++;
    memset(&t->nodes[*idx], 0, sizeof(node_t));
    return 0;
}

static void skip_ws(tape_t *t)
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

/* A string, t->pos just past its opening quote. */
static int scan_string(tape_t *t, node_t *nd)
{
    const unsigned char *s = (const unsigned char *)t->s;
    uint32_t i = t->pos, len = t->len;
    nd->type = N_STR;
    nd->off = i;
    for (;;) {
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
static int scan_number(tape_t *t, node_t *nd)
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
        nd->type = N_INT;
        /* jansson refuses integers past int64; 18 digits always fit */
        return nd->len - (s[nd->off] == '-') > 18 ? DECLINE : 0;
    }
    char tmp[64], *end;
    if (nd->len >= sizeof(tmp))
        return DECLINE;
    memcpy(tmp, s + nd->off, nd->len);
    tmp[nd->len] = '\0';
    nd->type = N_REAL;
    nd->u.d = strtod(tmp, &end);
    return end == tmp + nd->len && isfinite(nd->u.d) ? 0 : DECLINE;
}

static int scan_word(tape_t *t, node_t *nd, const char *w, int type)
{
    size_t n = strlen(w);
    if (t->len - t->pos < n || memcmp(t->s + t->pos, w, n) != 0)
        return DECLINE;
    nd->type = (uint8_t)type;
    t->pos += (uint32_t)n;
    return 0;
}

/* Key order: strcmp's (keys hold no NUL: \u0000 is declined). */
static int key_cmp(const tape_t *t, uint32_t a, uint32_t b)
{
    const node_t *x = &t->nodes[a], *y = &t->nodes[b];
    int c = memcmp(t->s + x->off, t->s + y->off, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* Sorts an object's keys into tape.order; duplicates are declined (jansson
 * refuses them: JSON_REJECT_DUPLICATES). */
static int sort_keys(tape_t *t, node_t *obj, uint32_t *keys, uint32_t n)
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

static int parse_value(tape_t *t, int depth);

/* After a member or element: 1 at 'close', 0 after a comma, or DECLINE. */
static int separator(tape_t *t, char close)
{
    skip_ws(t);
    if (t->pos >= t->len)
        return DECLINE;
    char c = t->s[t->pos++];
    return c == ',' ? 0 : c == close ? 1 : DECLINE;
}

static int parse_object(tape_t *t, uint32_t me, int depth)
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
    t->nodes[me].type = N_OBJ;
    return sort_keys(t, &t->nodes[me], keys, n);
}

static int parse_array(tape_t *t, uint32_t me, int depth)
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
    t->nodes[me].type = N_ARR;
    t->nodes[me].u.c.n = n;
    return 0;
}

static int parse_value(tape_t *t, int depth)
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
        rc = c == 't'   ? scan_word(t, &t->nodes[me], "true", N_TRUE)
             : c == 'f' ? scan_word(t, &t->nodes[me], "false", N_FALSE)
             : c == 'n' ? scan_word(t, &t->nodes[me], "null", N_NULL)
                        : DECLINE;
    }
    t->nodes[me].next = t->n;
    return rc;
}

static void tape_free(tape_t *t)
{
    if (t->nodes != t->small)
        free(t->nodes);
    if (t->order != t->small_order)
        free(t->order);
}

/* The whole body: one object and nothing after it but whitespace. */
static int tape_parse(tape_t *t, const char *s, size_t len)
{
    t->s = s;
    t->len = (uint32_t)len;
    t->pos = t->n = t->n_order = 0;
    t->nodes = t->small;
    t->cap = SMALL_NODES;
    t->order = t->small_order;
    t->cap_order = SMALL_NODES;
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
static size_t decode(const tape_t *t, uint32_t i, char *o)
{
    const node_t *nd = &t->nodes[i];
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
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
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
        default: *o++ = (char)s[1]; /* " \ / */
        }
        s += 2;
    }
    return (size_t)(o - start);
}

/* Appends string node 'i', decoded, to 'out'. */
static int append_str(const tape_t *t, uint32_t i, sc_buf_t *out)
{
    if (sc_buf_reserve(out, t->nodes[i].len))
        return SC_ENOMEM;
    out->len += decode(t, i, out->data + out->len);
    out->data[out->len] = '\0';
    return 0;
}

/* 1 when string node 'i' decodes to 'w' (a short word). A decoded byte takes
 * at most 6 raw ones (\u00XX), so a longer raw string cannot be 'w'. */
static int str_is(const tape_t *t, uint32_t i, const char *w)
{
    const node_t *nd = &t->nodes[i];
    size_t n = strlen(w);
    char tmp[64];
    if (nd->type != N_STR || nd->len < n || (!nd->esc && nd->len != n))
        return 0;
    if (!nd->esc)
        return memcmp(t->s + nd->off, w, n) == 0;
    return nd->len <= 6 * n && nd->len <= sizeof(tmp) && decode(t, i, tmp) == n &&
           memcmp(tmp, w, n) == 0;
}

/* The decoded length of string node 'i'. */
static size_t str_len(const tape_t *t, uint32_t i)
{
    char tmp[256];
    const node_t *nd = &t->nodes[i];
    if (!nd->esc)
        return nd->len;
    if (nd->len <= sizeof(tmp))
        return decode(t, i, tmp);
    char *p = malloc(nd->len);
    size_t n = p ? decode(t, i, p) : SIZE_MAX;
    free(p);
    return n;
}

/* The value of member 'name' of object node 'obj', or 0 when it has none
 * (node 0 is the body itself, never a member's value). */
static uint32_t member(const tape_t *t, uint32_t obj, const char *name)
{
    const node_t *o = &t->nodes[obj];
    size_t n = strlen(name);
    if (o->type != N_OBJ)
        return 0;
    for (uint32_t i = 0; i < o->u.c.n; i++) {
        const node_t *k = &t->nodes[t->order[o->u.c.keys + i]];
        if (k->len == n && memcmp(t->s + k->off, name, n) == 0)
            return t->order[o->u.c.keys + i] + 1;
    }
    return 0;
}

/* Element 'k' of array node 'arr' (in range). */
static uint32_t element(const tape_t *t, uint32_t arr, uint32_t k)
{
    uint32_t i = arr + 1;
    while (k--)
        i = t->nodes[i].next;
    return i;
}

static int is_number(const tape_t *t, uint32_t i)
{
    return t->nodes[i].type == N_INT || t->nodes[i].type == N_REAL;
}

/* json_number_value's answer for number node 'i'. */
static double number(const tape_t *t, uint32_t i)
{
    const node_t *nd = &t->nodes[i];
    if (nd->type == N_REAL)
        return nd->u.d;
    int64_t v = 0;
    for (uint32_t k = nd->off + (t->s[nd->off] == '-'); k < nd->off + nd->len; k++)
        v = v * 10 + (t->s[k] - '0');
    return (double)(t->s[nd->off] == '-' ? -v : v);
}

/* ---- the canonical encoding ------------------------------------------------- */

enum { SKIP_NONE, SKIP_IGNORED, SKIP_CONTENT };

static int skipped(const tape_t *t, uint32_t key, int skip)
{
    const node_t *k = &t->nodes[key];
    if (skip == SKIP_CONTENT)
        return k->len == 7 && memcmp(t->s + k->off, "content", 7) == 0;
    for (int i = 0; skip == SKIP_IGNORED && sc_ignored_params[i]; i++)
        if (k->len == strlen(sc_ignored_params[i]) &&
            memcmp(t->s + k->off, sc_ignored_params[i], k->len) == 0)
            return 1;
    return 0;
}

/* A string as sc_buf_json_str writes its decoded bytes: an unescaped one
 * (no control characters, quotes or backslashes in it) is its raw bytes. */
static int canon_str(const tape_t *t, uint32_t i, sc_buf_t *out, sc_buf_t *scratch)
{
    const node_t *nd = &t->nodes[i];
    if (!nd->esc) {
        if (sc_buf_reserve(out, nd->len + 2))
            return SC_ENOMEM;
        char *o = out->data + out->len;
        o[0] = '"';
        memcpy(o + 1, t->s + nd->off, nd->len);
        o[nd->len + 1] = '"';
        out->len += nd->len + 2;
        out->data[out->len] = '\0';
        return 0;
    }
    sc_buf_reset(scratch);
    int rc = append_str(t, i, scratch);
    return rc ? rc : sc_buf_json_str(out, scratch->data, scratch->len);
}

/* request.c's canon() over the tape: sorted keys, no whitespace, numbers
 * as their values ("-0" as 0, reals through sc_buf_double). */
static int canon_node(const tape_t *t, uint32_t i, int skip, sc_buf_t *out, sc_buf_t *scratch)
{
    const node_t *nd = &t->nodes[i];
    int rc = 0, first = 1;
    switch (nd->type) {
    case N_NULL:
        return sc_buf_append(out, "null", 4);
    case N_TRUE:
        return sc_buf_append(out, "true", 4);
    case N_FALSE:
        return sc_buf_append(out, "false", 5);
    case N_INT:
        if (nd->len == 2 && t->s[nd->off] == '-' && t->s[nd->off + 1] == '0')
            return sc_buf_append(out, "0", 1);
        return sc_buf_append(out, t->s + nd->off, nd->len);
    case N_REAL:
        return sc_buf_double(out, nd->u.d + 0.0); /* + 0.0 turns -0 into 0 */
    case N_STR:
        return canon_str(t, i, out, scratch);
    case N_ARR:
        rc = sc_buf_append(out, "[", 1);
        for (uint32_t k = 0, c = i + 1; k < nd->u.c.n && !rc; k++, c = t->nodes[c].next) {
            if (k)
                rc = sc_buf_append(out, ",", 1);
            rc = rc ? rc : canon_node(t, c, SKIP_NONE, out, scratch);
        }
        return rc ? rc : sc_buf_append(out, "]", 1);
    default:
        rc = sc_buf_append(out, "{", 1);
        for (uint32_t k = 0; k < nd->u.c.n && !rc; k++) {
            uint32_t key = t->order[nd->u.c.keys + k];
            if (skipped(t, key, skip))
                continue;
            if (!first)
                rc = sc_buf_append(out, ",", 1);
            first = 0;
            rc = rc ? rc : canon_str(t, key, out, scratch);
            rc = rc ? rc : sc_buf_append(out, ":", 1);
            rc = rc ? rc : canon_node(t, key + 1, SKIP_NONE, out, scratch);
        }
        return rc ? rc : sc_buf_append(out, "}", 1);
    }
}

/* ---- the lookup ------------------------------------------------------------ */

#define FIELD_ID(id, name) F_##id,
enum { SC__LOOKUP_FIELDS(FIELD_ID) F_COUNT };
#undef FIELD_ID

/* The value node of each top-level field (0: absent); unknown fields decline. */
static int fields_of(const tape_t *t, uint32_t f[F_COUNT])
{
    const node_t *root = &t->nodes[0];
    memset(f, 0, F_COUNT * sizeof(*f));
    for (uint32_t i = 0; i < root->u.c.n; i++) {
        uint32_t key = t->order[root->u.c.keys + i];
        const node_t *k = &t->nodes[key];
        int id = 0;
        while (id < F_COUNT && !(strlen(sc__lookup_fields[id]) == k->len &&
                                 memcmp(sc__lookup_fields[id], t->s + k->off, k->len) == 0))
            id++;
        if (id == F_COUNT)
            return DECLINE;
        f[id] = key + 1;
    }
    return 0;
}

/* sc_request_check_messages over the tape. */
static int messages_ok(const tape_t *t, uint32_t msgs)
{
    const node_t *a = &t->nodes[msgs];
    if (a->type != N_ARR || a->u.c.n == 0)
        return 0;
    for (uint32_t k = 0, m = msgs + 1; k < a->u.c.n; k++, m = t->nodes[m].next) {
        uint32_t role = member(t, m, "role"), content = member(t, m, "content");
        if (t->nodes[m].type != N_OBJ || !role || t->nodes[role].type != N_STR ||
            t->nodes[role].len == 0)
            return 0;
        if (content && t->nodes[content].type != N_STR && t->nodes[content].type != N_ARR &&
            t->nodes[content].type != N_NULL)
            return 0;
    }
    return 1;
}

/* sc_request_content_text over the tape, for parts of type "text". */
static int content_text(const tape_t *t, uint32_t content, sc_buf_t *out)
{
    const node_t *c = &t->nodes[content];
    if (c->type == N_STR)
        return append_str(t, content, out);
    int first = 1, rc = 0;
    for (uint32_t k = 0, p = content + 1; c->type == N_ARR && k < c->u.c.n && !rc;
         k++, p = t->nodes[p].next) {
        uint32_t type = member(t, p, "type"), text = member(t, p, "text");
        if (!type || !str_is(t, type, "text") || !text || t->nodes[text].type != N_STR)
            continue;
        if (!first)
            rc = sc_buf_append(out, "\n", 1);
        rc = rc ? rc : append_str(t, text, out);
        first = 0;
    }
    return rc;
}

/* The checks of sc_request_from_json for a lookup, over the tape: 1 when
 * every field is valid. Strings' lengths are their decoded lengths. */
static int fields_valid(const tape_t *t, const uint32_t *f)
{
    const node_t *n = t->nodes;
    if (f[F_NAMESPACE] && n[f[F_NAMESPACE]].type != N_STR)
        return 0;
    if (f[F_TENANT] &&
        (n[f[F_TENANT]].type != N_STR || str_len(t, f[F_TENANT]) > SC_MAX_TENANT))
        return 0;
    if (!f[F_MODEL] || n[f[F_MODEL]].type != N_STR || n[f[F_MODEL]].len == 0 ||
        str_len(t, f[F_MODEL]) > SC_MAX_MODEL)
        return 0;
    if (!f[F_PROMPT] == !f[F_MESSAGES] || (f[F_PROMPT] && n[f[F_PROMPT]].type != N_STR) ||
        (f[F_MESSAGES] && !messages_ok(t, f[F_MESSAGES])))
        return 0;
    if (f[F_PARAMS] && n[f[F_PARAMS]].type != N_OBJ)
        return 0;
    if (f[F_MAX_AGE_S] && (!is_number(t, f[F_MAX_AGE_S]) || number(t, f[F_MAX_AGE_S]) < 0))
        return 0;
    if (f[F_THRESHOLD] &&
        (!is_number(t, f[F_THRESHOLD]) ||
         !(number(t, f[F_THRESHOLD]) >= -1 && number(t, f[F_THRESHOLD]) <= 1)))
        return 0;
    if (f[F_LEASE] && n[f[F_LEASE]].type != N_TRUE && n[f[F_LEASE]].type != N_FALSE)
        return 0;
    if (f[F_EMBEDDER] && (n[f[F_EMBEDDER]].type != N_STR || n[f[F_EMBEDDER]].len == 0 ||
                          str_len(t, f[F_EMBEDDER]) >= 128))
        return 0;
    /* An embedding as an array of numbers is left to jansson. */
    return !f[F_EMBEDDING] || n[f[F_EMBEDDING]].type == N_STR;
}

/* Copies the body and the decoded field strings into req->src and points
 * req->ns, tenant, model and embedder there. The namespace is checked here,
 * on its decoded bytes. */
static int keep_strings(const tape_t *t, const uint32_t *f, sc_request_t *req)
{
    sc_request_src_t *src = malloc(sizeof(*src) + 2 * (size_t)t->len + 8);
    if (!src)
        return SC_ENOMEM;
    req->src = src;
    src->root = NULL;
    src->len = t->len;
    memcpy(src->bytes, t->s, t->len);
    src->bytes[t->len] = '\0';
    src->strings = src->bytes + t->len + 1;
    char *o = src->strings;
    const int ids[] = {F_NAMESPACE, F_TENANT, F_MODEL, F_EMBEDDER};
    const char **dst[] = {&req->ns, &req->tenant, &req->model, &req->embedder};
    size_t *lens[] = {&req->ns_len, &req->tenant_len, &req->model_len, NULL};
    for (int k = 0; k < 4; k++) {
        if (!f[ids[k]])
            continue;
        size_t n = decode(t, f[ids[k]], o);
        o[n] = '\0';
        *dst[k] = o;
        if (lens[k])
            *lens[k] = n;
        o += n + 1;
    }
    if (!f[F_NAMESPACE]) {
        req->ns = SC_DEFAULT_NAMESPACE;
        req->ns_len = strlen(SC_DEFAULT_NAMESPACE);
    } else if (!sc_request_namespace_valid(req->ns, req->ns_len)) {
        return DECLINE;
    }
    if (!f[F_TENANT])
        req->tenant = "";
    return 0;
}

/* The exact key and the scope, laid out as sc_canon_hash lays them out. */
static int fast_hash(const tape_t *t, const uint32_t *f, sc_request_t *req, sc_buf_t *scratch)
{
    sc_canon_req_t c = {.ns = req->ns,
                        .ns_len = req->ns_len,
                        .tenant = req->tenant,
                        .tenant_len = req->tenant_len,
                        .model = req->model,
                        .model_len = req->model_len};
    uint32_t body = f[F_PROMPT] ? f[F_PROMPT] : f[F_MESSAGES];
    sc_buf_t b = {0};
    int rc = sc_buf_reserve(&b, 256 + 2 * (size_t)t->len);
    rc = rc ? rc : sc__canon_open(&c, &b);
    rc = rc ? rc
            : f[F_PARAMS] ? canon_node(t, f[F_PARAMS], SKIP_IGNORED, &b, scratch)
                          : sc_buf_append(&b, "{}", 2);
    rc = rc ? rc : sc__canon_tenant(&c, &b);
    size_t head_len = b.len;
    rc = rc ? rc : sc_buf_puts(&b, f[F_PROMPT] ? ",\"prompt\":" : ",\"messages\":");
    rc = rc ? rc : canon_node(t, body, SKIP_NONE, &b, scratch);
    rc = rc ? rc : sc_buf_puts(&b, ",\"v\":1}");
    if (!rc) {
        sc__canon_key(b.data, b.len, req->key);
        b.len = head_len;
    }
    if (!rc && f[F_PROMPT]) {
        rc = sc_buf_puts(&b, ",\"form\":\"prompt\"");
    } else if (!rc) { /* the history; a final user message without its content */
        const node_t *a = &t->nodes[body];
        uint32_t last = element(t, body, a->u.c.n - 1);
        int last_is_user = str_is(t, member(t, last, "role"), "user");
        rc = sc_buf_puts(&b, ",\"history\":[");
        for (uint32_t k = 0, m = body + 1; k < a->u.c.n && !rc; k++, m = t->nodes[m].next) {
            if (k)
                rc = sc_buf_append(&b, ",", 1);
            rc = rc ? rc
                    : canon_node(t, m, m == last && last_is_user ? SKIP_CONTENT : SKIP_NONE, &b,
                                 scratch);
        }
        rc = rc ? rc : sc_buf_puts(&b, "]");
    }
    rc = rc ? rc : sc_buf_puts(&b, ",\"v\":1}");
    if (!rc)
        req->scope = sc__canon_scope(b.data, b.len);
    sc_buf_free(&b);
    return rc;
}

/* The semantic text and the request's scalar fields. */
static int fast_fields(const tape_t *t, const uint32_t *f, sc_request_t *req, sc_buf_t *scratch)
{
    int rc = 0;
    if ((req->has_max_age = f[F_MAX_AGE_S] != 0))
        req->max_age_s = number(t, f[F_MAX_AGE_S]);
    if ((req->has_threshold = f[F_THRESHOLD] != 0))
        req->threshold = number(t, f[F_THRESHOLD]);
    req->lease = f[F_LEASE] && t->nodes[f[F_LEASE]].type == N_TRUE;
    if (f[F_EMBEDDING]) { /* a base64 string: decoded as the jansson path does */
        char err[8];
        sc_buf_reset(scratch);
        rc = append_str(t, f[F_EMBEDDING], scratch);
        json_t *s = rc ? NULL : json_stringn_nocheck(scratch->data, scratch->len);
        rc = rc ? rc : !s ? SC_ENOMEM : sc_embedding_decode(s, &req->vec, &req->dim, err, sizeof(err));
        json_decref(s);
        if (rc)
            return rc == SC_ENOMEM ? rc : DECLINE;
    }
    if (f[F_PROMPT]) {
        rc = append_str(t, f[F_PROMPT], &req->text);
    } else {
        uint32_t msgs = f[F_MESSAGES];
        uint32_t last = element(t, msgs, t->nodes[msgs].u.c.n - 1);
        uint32_t content = member(t, last, "content");
        if (str_is(t, member(t, last, "role"), "user") && content)
            rc = content_text(t, content, &req->text);
    }
    if (!rc)
        sc_request_drop_blank_text(&req->text);
    return rc;
}

int sc_request_parse_fast(sc_request_t *req, const char *body, size_t len)
{
    tape_t t;
    uint32_t f[F_COUNT];
    sc_buf_t scratch = {0};
    memset(req, 0, sizeof(*req));
    int rc = tape_parse(&t, body, len);
    rc = rc ? rc : fields_of(&t, f);
    rc = rc ? rc : fields_valid(&t, f) ? 0 : DECLINE;
    rc = rc ? rc : keep_strings(&t, f, req);
    rc = rc ? rc : fast_fields(&t, f, req, &scratch);
    rc = rc ? rc : fast_hash(&t, f, req, &scratch);
    tape_free(&t);
    sc_buf_free(&scratch);
    if (rc)
        sc_request_free(req);
    return rc;
}

json_t *sc_request_json(const sc_request_t *req)
{
    if (req->root || !req->src)
        return req->root;
    if (!req->src->root)
        req->src->root = json_loadb(req->src->bytes, req->src->len, JSON_REJECT_DUPLICATES, NULL);
    return req->src->root;
}
