/* http_request.c -- the request side of the HTTP layer: http_parser callbacks
 * that collect the target, every header (bounded by --max-header-bytes, names
 * lower-cased into one per-connection buffer) and the de-chunked body, and
 * the sc_http_request_t a handler receives. Parse errors become a status and
 * a static detail string; http.c turns them into a 4xx/5xx answer. */
#define _GNU_SOURCE
#include "http_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *sc_http_reason(int status)
{
    switch (status) {
#define XX(num, name, string)                                                                      \
    case num:                                                                                      \
        return #string;
        HTTP_STATUS_MAP(XX)
#undef XX
    default:
        return "Unknown";
    }
}

const char *sc_http_method_name(int method)
{
    return http_method_str((enum http_method)method);
}

sc_slice_t sc_http_request_header(const sc_http_request_t *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++) {
        const sc_http_header_t *h = &r->headers[i];
        if (h->name.len == n && strncasecmp(h->name.ptr, name, n) == 0)
            return h->value;
    }
    return (sc_slice_t){NULL, 0};
}

const sc_http_header_t *sc_http_request_header_at(const sc_http_request_t *r, size_t i)
{
    return i < r->n_headers ? &r->headers[i] : NULL;
}

/* ---- parser callbacks ------------------------------------------------- */

static int fail_request(sc_conn_t *c, int status, const char *detail)
{
    if (!c->err_status) {
        c->err_status = status;
        c->err_detail = detail;
    }
    return -1; /* makes http_parser stop with a callback error */
}

static int on_message_begin(http_parser *p)
{
    sc_conn_t *c = p->data;
    sc_buf_reset(&c->url);
    sc_buf_reset(&c->body);
    sc_buf_reset(&c->hbuf);
    c->n_hrefs = 0;
    c->in_value = 0;
    c->header_bytes = 0;
    c->content_type_json = 1;
    c->send_continue = 0;
    c->head_read = 0;
    c->in_message = 1;
    return 0;
}

static int count_header_bytes(sc_conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->hl->lim.max_header_bytes)
        return fail_request(c, 431, "request line and headers exceed --max-header-bytes");
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    sc_conn_t *c = p->data;
    if (count_header_bytes(c, n))
        return -1;
    return sc_buf_append(&c->url, at, n) ? fail_request(c, 503, "out of memory") : 0;
}

/* Closes the last header: its value is complete, so trim and terminate it. */
static void finish_header(sc_conn_t *c)
{
    if (!c->in_value)
        return;
    sc__hdr_ref_t *h = &c->hrefs[c->n_hrefs - 1];
    h->val_len = c->hbuf.len - h->val_off;
    while (h->val_len && (c->hbuf.data[h->val_off] == ' ' || c->hbuf.data[h->val_off] == '\t'))
        h->val_off++, h->val_len--;
    while (h->val_len && (c->hbuf.data[h->val_off + h->val_len - 1] == ' ' ||
                          c->hbuf.data[h->val_off + h->val_len - 1] == '\t'))
        h->val_len--;
    sc_buf_append(&c->hbuf, "", 1); /* the NUL after the value (and its room) */
    c->hbuf.data[h->val_off + h->val_len] = '\0';
    c->in_value = 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    sc_conn_t *c = p->data;
    if (count_header_bytes(c, n))
        return -1;
    if (c->in_value || c->n_hrefs == 0) { /* a new header starts */
        finish_header(c);
        if (c->n_hrefs == c->cap_hrefs) {
            size_t cap = c->cap_hrefs ? c->cap_hrefs * 2 : 16;
            sc__hdr_ref_t *a = realloc(c->hrefs, cap * sizeof(*a));
            if (!a)
                return fail_request(c, 503, "out of memory");
            c->hrefs = a;
            c->cap_hrefs = cap;
        }
        c->hrefs[c->n_hrefs++] = (sc__hdr_ref_t){c->hbuf.len, 0, 0, 0};
    }
    if (sc_buf_reserve(&c->hbuf, n + 1))
        return fail_request(c, 503, "out of memory");
    for (size_t i = 0; i < n; i++) { /* ASCII only, as header names are (RFC 9110 token) */
        char ch = at[i];
        c->hbuf.data[c->hbuf.len++] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    c->hbuf.data[c->hbuf.len] = '\0';
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    sc_conn_t *c = p->data;
    if (count_header_bytes(c, n))
        return -1;
    if (!c->in_value) { /* the name is complete: terminate it */
        sc__hdr_ref_t *h = &c->hrefs[c->n_hrefs - 1];
        h->name_len = c->hbuf.len - h->name_off;
        if (sc_buf_append(&c->hbuf, "", 1))
            return fail_request(c, 503, "out of memory");
        h->val_off = c->hbuf.len;
        c->in_value = 1;
    }
    return sc_buf_append(&c->hbuf, at, n) ? fail_request(c, 503, "out of memory") : 0;
}

static const char *ref_name(const sc_conn_t *c, const sc__hdr_ref_t *h)
{
    return c->hbuf.data + h->name_off;
}

/* application/json, optionally with parameters; also +json types. */
static int is_json_type(const char *v, size_t len)
{
    size_t n = strcspn(v, ";");
    if (n > len)
        n = len;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return (n == 16 && strncasecmp(v, "application/json", 16) == 0) ||
           (n > 5 && strncasecmp(v + n - 5, "+json", 5) == 0 && memchr(v, '/', n));
}

static int on_headers_complete(http_parser *p)
{
    sc_conn_t *c = p->data;
    finish_header(c);
    c->head_read = 1;
    const sc_http_limits_t *lim = &c->hl->lim;
    int has_clen = 0, expect_continue = 0;
    for (size_t i = 0; i < c->n_hrefs; i++) {
        const sc__hdr_ref_t *h = &c->hrefs[i];
        const char *name = ref_name(c, h), *v = c->hbuf.data + h->val_off;
        if (strcmp(name, "content-type") == 0) { /* the last one counts */
            c->content_type_json = is_json_type(v, h->val_len);
        } else if (strcmp(name, "expect") == 0) {
            expect_continue = strncasecmp(v, "100-continue", 12) == 0;
        } else if (strcmp(name, "content-length") == 0) {
            has_clen = 1;
        }
    }
    if (p->http_major != 1)
        return fail_request(c, 505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
    int chunked = (p->flags & F_CHUNKED) != 0;
    int has_body = chunked || (has_clen && p->content_length > 0);
    if (has_clen && p->content_length > (uint64_t)lim->max_body_bytes)
        return fail_request(c, 413, "request body exceeds --max-body-bytes");
    if ((p->method == HTTP_POST || p->method == HTTP_PUT) && !chunked && !has_clen)
        return fail_request(c, 411, "a request body needs Content-Length or chunked encoding");
    c->send_continue = expect_continue && has_body;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    sc_conn_t *c = p->data;
    if (c->body.len + n > c->hl->lim.max_body_bytes)
        return fail_request(c, 413, "request body exceeds --max-body-bytes");
    return sc_buf_append(&c->body, at, n) ? fail_request(c, 503, "out of memory") : 0;
}

static int on_message_complete(http_parser *p)
{
    sc_conn_t *c = p->data;
    c->keep_alive = http_should_keep_alive(p);
    c->request_ready = 1;
    c->in_message = 0;
    http_parser_pause(p, 1);
    return 0;
}

const http_parser_settings sc__http_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the request handed to the handler ---------------------------------- */

/* 1 for a target that is a path and nothing else ("/v1/lookup"): it starts
 * with '/' and has only unreserved characters and '/', so
 * http_parser_parse_url would find the same path and no query. */
static int plain_path(const char *u, size_t n)
{
    if (!n || u[0] != '/')
        return 0;
    for (size_t i = 1; i < n; i++) {
        char ch = u[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '/' || ch == '-' || ch == '_' || ch == '.' || ch == '~'))
            return 0;
    }
    return 1;
}

int sc__http_request_build(sc_conn_t *c, sc_http_request_t *req)
{
    struct http_parser_url u;
    memset(req, 0, sizeof(*req));
    req->method = c->parser.method;
    req->version_minor = c->parser.http_minor;
    req->started_ns = sc_mono_ns();
    req->body.ptr = c->body.data ? c->body.data : "";
    req->body.len = c->body.len;
    req->content_type_json = c->content_type_json;
    if (c->n_hrefs > c->cap_hviews) {
        sc_http_header_t *v = realloc(c->hviews, c->n_hrefs * sizeof(*v));
        if (!v)
            return SC_ENOMEM;
        c->hviews = v;
        c->cap_hviews = c->n_hrefs;
    }
    for (size_t i = 0; i < c->n_hrefs; i++) {
        const sc__hdr_ref_t *h = &c->hrefs[i];
        c->hviews[i].name = (sc_slice_t){c->hbuf.data + h->name_off, h->name_len};
        c->hviews[i].value = (sc_slice_t){c->hbuf.data + h->val_off, h->val_len};
    }
    req->headers = c->hviews;
    req->n_headers = c->n_hrefs;
    if (plain_path(c->url.data, c->url.len)) { /* the usual target: all path */
        req->target = req->path = (sc_slice_t){c->url.data, c->url.len};
        return 0;
    }
    http_parser_url_init(&u);
    if (!c->url.len || http_parser_parse_url(c->url.data, c->url.len, 0, &u) ||
        !(u.field_set & (1 << UF_PATH)))
        return SC_EINVAL;
    req->target = (sc_slice_t){c->url.data, c->url.len};
    req->path.ptr = c->url.data + u.field_data[UF_PATH].off;
    req->path.len = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
        req->query.ptr = c->url.data + u.field_data[UF_QUERY].off;
        req->query.len = u.field_data[UF_QUERY].len;
    }
    return 0;
}

void sc__http_request_free(sc_conn_t *c)
{
    sc_buf_free(&c->url);
    sc_buf_free(&c->body);
    sc_buf_free(&c->hbuf);
    free(c->hrefs);
    free(c->hviews);
}
