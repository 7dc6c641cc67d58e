/* request_fast.c -- a lookup body decoded in one pass, without a jansson tree:
 * the body becomes a flat tape of nodes (json_tape.c), from which the fields,
 * the semantic text and the canonical encoding are read. It accepts only what
 * the jansson path accepts, with byte-identical keys: whatever it does not
 * fully handle (what the tape declines, embeddings as arrays) or finds
 * invalid, it declines, and request.c decodes it with jansson, which decides. */
#define _GNU_SOURCE
#include "json_tape.h"
#include "request_internal.h"
#include "sc_vec.h"

#include <stdlib.h>
#include <string.h>

#define DECLINE SC_EINVAL

static int is_number(const sc_tape_t *t, uint32_t i)
{
    return t->nodes[i].type == SC_TAPE_INT || t->nodes[i].type == SC_TAPE_REAL;
}

/* ---- the canonical encoding ------------------------------------------------- */

enum { SKIP_NONE, SKIP_IGNORED, SKIP_CONTENT };

static int skipped(const sc_tape_t *t, uint32_t key, int skip)
{
    const sc_tape_node_t *k = &t->nodes[key];
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
static int canon_str(const sc_tape_t *t, uint32_t i, sc_buf_t *out, sc_buf_t *scratch)
{
    const sc_tape_node_t *nd = &t->nodes[i];
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
    int rc = sc__tape_append_str(t, i, scratch);
    return rc ? rc : sc_buf_json_str(out, scratch->data, scratch->len);
}

/* request.c's canon() over the tape: sorted keys, no whitespace, numbers
 * as their values ("-0" as 0, reals through sc_buf_double). */
static int canon_node(const sc_tape_t *t, uint32_t i, int skip, sc_buf_t *out, sc_buf_t *scratch)
{
    const sc_tape_node_t *nd = &t->nodes[i];
    int rc = 0, first = 1;
    switch (nd->type) {
    case SC_TAPE_NULL:
        return sc_buf_append(out, "null", 4);
    case SC_TAPE_TRUE:
        return sc_buf_append(out, "true", 4);
    case SC_TAPE_FALSE:
        return sc_buf_append(out, "false", 5);
    case SC_TAPE_INT:
        if (nd->len == 2 && t->s[nd->off] == '-' && t->s[nd->off + 1] == '0')
            return sc_buf_append(out, "0", 1);
        return sc_buf_append(out, t->s + nd->off, nd->len);
    case SC_TAPE_REAL:
        return sc_buf_double(out, nd->u.d + 0.0); /* + 0.0 turns -0 into 0 */
    case SC_TAPE_STR:
        return canon_str(t, i, out, scratch);
    case SC_TAPE_ARR:
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
#define FIELD_LEN(id, name) sizeof(name) - 1,
static const uint8_t field_len[F_COUNT] = {SC__LOOKUP_FIELDS(FIELD_LEN)};
#undef FIELD_LEN

/* The value node of each top-level field (0: absent); unknown fields decline. */
static int fields_of(const sc_tape_t *t, uint32_t f[F_COUNT])
{
    const sc_tape_node_t *root = &t->nodes[0];
    memset(f, 0, F_COUNT * sizeof(*f));
    for (uint32_t i = 0; i < root->u.c.n; i++) {
        uint32_t key = t->order[root->u.c.keys + i];
        const sc_tape_node_t *k = &t->nodes[key];
        int id = 0;
        while (id < F_COUNT && !(field_len[id] == k->len &&
                                 memcmp(sc__lookup_fields[id], t->s + k->off, k->len) == 0))
            id++;
        if (id == F_COUNT)
            return DECLINE;
        f[id] = key + 1;
    }
    return 0;
}

/* sc_request_check_messages over the tape. */
static int messages_ok(const sc_tape_t *t, uint32_t msgs)
{
    const sc_tape_node_t *a = &t->nodes[msgs];
    if (a->type != SC_TAPE_ARR || a->u.c.n == 0)
        return 0;
    for (uint32_t k = 0, m = msgs + 1; k < a->u.c.n; k++, m = t->nodes[m].next) {
        uint32_t role = sc__tape_member(t, m, "role"), content = sc__tape_member(t, m, "content");
        if (t->nodes[m].type != SC_TAPE_OBJ || !role || t->nodes[role].type != SC_TAPE_STR ||
            t->nodes[role].len == 0)
            return 0;
        if (content && t->nodes[content].type != SC_TAPE_STR &&
            t->nodes[content].type != SC_TAPE_ARR && t->nodes[content].type != SC_TAPE_NULL)
            return 0;
    }
    return 1;
}

/* sc_request_content_text over the tape, for parts of type "text". */
static int content_text(const sc_tape_t *t, uint32_t content, sc_buf_t *out)
{
    const sc_tape_node_t *c = &t->nodes[content];
    if (c->type == SC_TAPE_STR)
        return sc__tape_append_str(t, content, out);
    int first = 1, rc = 0;
    for (uint32_t k = 0, p = content + 1; c->type == SC_TAPE_ARR && k < c->u.c.n && !rc;
         k++, p = t->nodes[p].next) {
        uint32_t type = sc__tape_member(t, p, "type"), text = sc__tape_member(t, p, "text");
        if (!type || !sc__tape_str_is(t, type, "text") || !text ||
            t->nodes[text].type != SC_TAPE_STR)
            continue;
        if (!first)
            rc = sc_buf_append(out, "\n", 1);
        rc = rc ? rc : sc__tape_append_str(t, text, out);
        first = 0;
    }
    return rc;
}

/* The checks of sc_request_from_json for a lookup, over the tape: 1 when
 * every field is valid. Strings' lengths are their decoded lengths. */
static int fields_valid(const sc_tape_t *t, const uint32_t *f)
{
    const sc_tape_node_t *n = t->nodes;
    if (f[F_NAMESPACE] && n[f[F_NAMESPACE]].type != SC_TAPE_STR)
        return 0;
    if (f[F_TENANT] &&
        (n[f[F_TENANT]].type != SC_TAPE_STR || sc__tape_str_len(t, f[F_TENANT]) > SC_MAX_TENANT))
        return 0;
    if (!f[F_MODEL] || n[f[F_MODEL]].type != SC_TAPE_STR || n[f[F_MODEL]].len == 0 ||
        sc__tape_str_len(t, f[F_MODEL]) > SC_MAX_MODEL)
        return 0;
    if (!f[F_PROMPT] == !f[F_MESSAGES] || (f[F_PROMPT] && n[f[F_PROMPT]].type != SC_TAPE_STR) ||
        (f[F_MESSAGES] && !messages_ok(t, f[F_MESSAGES])))
        return 0;
    if (f[F_PARAMS] && n[f[F_PARAMS]].type != SC_TAPE_OBJ)
        return 0;
    if (f[F_MAX_AGE_S] && (!is_number(t, f[F_MAX_AGE_S]) || sc__tape_number(t, f[F_MAX_AGE_S]) < 0))
        return 0;
    if (f[F_THRESHOLD] &&
        (!is_number(t, f[F_THRESHOLD]) ||
         !(sc__tape_number(t, f[F_THRESHOLD]) >= -1 && sc__tape_number(t, f[F_THRESHOLD]) <= 1)))
        return 0;
    if (f[F_LEASE] && n[f[F_LEASE]].type != SC_TAPE_TRUE && n[f[F_LEASE]].type != SC_TAPE_FALSE)
        return 0;
    if (f[F_EMBEDDER] && (n[f[F_EMBEDDER]].type != SC_TAPE_STR || n[f[F_EMBEDDER]].len == 0 ||
                          sc__tape_str_len(t, f[F_EMBEDDER]) >= 128))
        return 0;
    /* An embedding as an array of numbers is left to jansson. */
    return !f[F_EMBEDDING] || n[f[F_EMBEDDING]].type == SC_TAPE_STR;
}

/* Copies the body and the decoded field strings into req->src and points
 * req->ns, tenant, model and embedder there. The namespace is checked here,
 * on its decoded bytes. */
static int keep_strings(const sc_tape_t *t, const uint32_t *f, sc_request_t *req)
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
        size_t n = sc__tape_decode(t, f[ids[k]], o);
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
static int fast_hash(const sc_tape_t *t, const uint32_t *f, sc_request_t *req, sc_buf_t *scratch)
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
    rc = rc            ? rc
         : f[F_PARAMS] ? canon_node(t, f[F_PARAMS], SKIP_IGNORED, &b, scratch)
                       : sc_buf_append(&b, "{}", 2);
    rc = rc ? rc : sc__canon_tenant(&c, &b);
    size_t head_len = b.len;
    rc =
        rc ? rc : (f[F_PROMPT] ? SC_BUF_LIT(&b, ",\"prompt\":") : SC_BUF_LIT(&b, ",\"messages\":"));
    rc = rc ? rc : canon_node(t, body, SKIP_NONE, &b, scratch);
    rc = rc ? rc : SC_BUF_LIT(&b, ",\"v\":1}");
    if (!rc) {
        sc__canon_key(b.data, b.len, req->key);
        b.len = head_len;
    }
    if (!rc && f[F_PROMPT]) {
        rc = SC_BUF_LIT(&b, ",\"form\":\"prompt\"");
    } else if (!rc) { /* the history; a final user message without its content */
        const sc_tape_node_t *a = &t->nodes[body];
        uint32_t last = sc__tape_element(t, body, a->u.c.n - 1);
        int last_is_user = sc__tape_str_is(t, sc__tape_member(t, last, "role"), "user");
        rc = SC_BUF_LIT(&b, ",\"history\":[");
        for (uint32_t k = 0, m = body + 1; k < a->u.c.n && !rc; k++, m = t->nodes[m].next) {
            if (k)
                rc = sc_buf_append(&b, ",", 1);
            rc = rc ? rc
                    : canon_node(t, m, m == last && last_is_user ? SKIP_CONTENT : SKIP_NONE, &b,
                                 scratch);
        }
        rc = rc ? rc : SC_BUF_LIT(&b, "]");
    }
    rc = rc ? rc : SC_BUF_LIT(&b, ",\"v\":1}");
    if (!rc)
        req->scope = sc__canon_scope(b.data, b.len);
    sc_buf_free(&b);
    return rc;
}

/* The semantic text and the request's scalar fields. */
static int fast_fields(const sc_tape_t *t, const uint32_t *f, sc_request_t *req, sc_buf_t *scratch)
{
    int rc = 0;
    if ((req->has_max_age = f[F_MAX_AGE_S] != 0))
        req->max_age_s = sc__tape_number(t, f[F_MAX_AGE_S]);
    if ((req->has_threshold = f[F_THRESHOLD] != 0))
        req->threshold = sc__tape_number(t, f[F_THRESHOLD]);
    req->lease = f[F_LEASE] && t->nodes[f[F_LEASE]].type == SC_TAPE_TRUE;
    if (f[F_EMBEDDING]) { /* a base64 string: decoded as the jansson path does */
        char err[8];
        sc_buf_reset(scratch);
        rc = sc__tape_append_str(t, f[F_EMBEDDING], scratch);
        json_t *s = rc ? NULL : json_stringn_nocheck(scratch->data, scratch->len);
        rc = rc   ? rc
             : !s ? SC_ENOMEM
                  : sc_embedding_decode(s, &req->vec, &req->dim, err, sizeof(err));
        json_decref(s);
        if (rc)
            return rc == SC_ENOMEM ? rc : DECLINE;
    }
    if (f[F_PROMPT]) {
        rc = sc__tape_append_str(t, f[F_PROMPT], &req->text);
    } else {
        uint32_t msgs = f[F_MESSAGES];
        uint32_t last = sc__tape_element(t, msgs, t->nodes[msgs].u.c.n - 1);
        uint32_t content = sc__tape_member(t, last, "content");
        if (sc__tape_str_is(t, sc__tape_member(t, last, "role"), "user") && content)
            rc = content_text(t, content, &req->text);
    }
    if (!rc)
        sc_request_drop_blank_text(&req->text);
    return rc;
}

int sc_request_parse_fast(sc_request_t *req, const char *body, size_t len)
{
    sc_tape_t t;
    uint32_t f[F_COUNT];
    sc_buf_t scratch = {0};
    memset(req, 0, sizeof(*req));
    int rc = sc__tape_parse(&t, body, len);
    rc = rc ? rc : fields_of(&t, f);
    rc = rc ? rc : fields_valid(&t, f) ? 0 : DECLINE;
    rc = rc ? rc : keep_strings(&t, f, req);
    rc = rc ? rc : fast_fields(&t, f, req, &scratch);
    rc = rc ? rc : fast_hash(&t, f, req, &scratch);
    sc__tape_free(&t);
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
