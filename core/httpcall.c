/* httpcall.c -- one call of the HTTP client: its curl easy handle (method,
 * body, exactly the headers asked for, timeouts, HTTP/2 over TLS), the
 * response header block parsed into "name\0value\0" pairs for the caller, and
 * the body handed over as it arrives or buffered. Runs on the client thread;
 * the loop and cross-thread controls are in httpclient.c. */
#define _GNU_SOURCE
#include "httpclient_internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

_Static_assert(SC_HTTP_ERROR_TEXT >= CURL_ERROR_SIZE, "curl's error buffer must fit");

/* ---- request --------------------------------------------------------------- */

static int is_token(const char *p, size_t n)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!isalnum(ch) && !strchr("!#$%&'*+-.^_`|~", ch))
            return 0;
    }
    return 1;
}

int sc_httpc_check_request(const sc_http_call_t *call)
{
    size_t ml = strnlen(call->method, sizeof(call->method));
    if (ml == sizeof(call->method) || (ml && !is_token(call->method, ml)))
        return SC_EINVAL;
    if (strnlen(call->url, sizeof(call->url)) == sizeof(call->url) ||
        strnlen(call->auth, sizeof(call->auth)) == sizeof(call->auth))
        return SC_EINVAL;
    return call->done ? 0 : SC_EINVAL;
}

/* Headers the client frames itself, or that only concern one hop. */
static const char *const own_headers[] = {
    "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection",
    "TE",   "Trailer",        "Upgrade",           "Expect",     NULL,
};

static int name_is(const char *p, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(p, name, n) == 0;
}

int sc_http_call_add_header_n(sc_http_call_t *call, const char *name, size_t name_len,
                              const char *value, size_t value_len)
{
    if (!is_token(name, name_len))
        return SC_EINVAL;
    for (size_t i = 0; i < value_len; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return SC_EINVAL;
    for (int i = 0; own_headers[i]; i++)
        if (name_is(name, name_len, own_headers[i]))
            return 0;
    while (value_len && (*value == ' ' || *value == '\t'))
        value++, value_len--;
    while (value_len && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    sc_buf_t *b = &call->headers;
    size_t undo = b->len;
    /* curl's syntax: "Name;" sends the header with an empty value. */
    int rc = sc_buf_append(b, name, name_len);
    if (!rc)
        rc = value_len ? sc_buf_append(b, ": ", 2) : sc_buf_append(b, ";", 1);
    if (!rc)
        rc = sc_buf_append(b, value, value_len);
    if (!rc)
        rc = sc_buf_append(b, "\n", 1);
    if (rc) {
        b->len = undo;
        if (b->data)
            b->data[undo] = '\0';
    }
    return rc;
}

int sc_http_call_add_header(sc_http_call_t *call, const char *name, const char *value)
{
    return sc_http_call_add_header_n(call, name, strlen(name), value, strlen(value));
}

/* Whether the caller's header lines name 'name'. */
static int has_header(const sc_http_call_t *call, const char *name)
{
    size_t n = strlen(name);
    const char *p = call->headers.data, *end = p + call->headers.len;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && (p[n] == ':' || p[n] == ';'))
            return 1;
        p = eol + 1;
    }
    return 0;
}

static int add_line(struct curl_slist **h, const char *line, size_t n)
{
    char *s = strndup(line, n);
    struct curl_slist *l = s ? curl_slist_append(*h, s) : NULL;
    free(s);
    if (!l)
        return SC_ENOMEM;
    *h = l;
    return 0;
}

/* The header list curl sends: ours, the caller's, and empty lines ("Name:")
 * that stop curl from adding its defaults (Accept, Expect, form
 * Content-Type). */
static int build_headers(const sc_http_call_t *call, struct curl_slist **out)
{
    int legacy = !call->method[0], rc = 0;
    struct curl_slist *h = NULL;
    if (call->auth[0]) {
        char line[sizeof(call->auth) + 16];
        int n = snprintf(line, sizeof(line), "Authorization: %s", call->auth);
        rc = add_line(&h, line, (size_t)n);
    }
    const char *p = call->headers.data, *end = p + call->headers.len;
    while (!rc && p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        rc = add_line(&h, p, (size_t)(eol - p));
        p = eol + 1;
    }
    const char *defaults[4];
    int nd = 0;
    if (!has_header(call, "Content-Type"))
        defaults[nd++] = legacy ? "Content-Type: application/json" : "Content-Type:";
    if (!has_header(call, "Accept"))
        defaults[nd++] = "Accept:";
    defaults[nd++] = "Expect:";
    for (int i = 0; !rc && i < nd; i++)
        rc = add_line(&h, defaults[i], strlen(defaults[i]));
    if (rc) {
        curl_slist_free_all(h);
        return rc;
    }
    *out = h;
    return 0;
}

static void set_method(CURL *e, const sc_http_call_t *call)
{
    int has_body = call->body.len || call->body.data;
    const char *m = call->method[0] ? call->method : has_body ? "POST" : "GET";
    if (!has_body && strcmp(m, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (!has_body && strcmp(m, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (has_body || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH")) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body.data ? call->body.data : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->body.len);
        if (strcmp(m, "POST"))
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
}

/* ---- response ----------------------------------------------------------------- */

static void xfer_abort(sc_httpc_xfer_t *x, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void xfer_abort(sc_httpc_xfer_t *x, int error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->why, sizeof(x->why), fmt, ap);
    va_end(ap);
    x->abort_error = error < 0 ? error : SC_ECANCELED;
}

/* "HTTP/1.1 200 OK", "HTTP/2 429": a new header block starts. */
static void status_line(sc_http_call_t *call, const char *p, size_t n)
{
    int major = n > 5 && isdigit((unsigned char)p[5]) ? p[5] - '0' : 0;
    int minor = n > 7 && p[6] == '.' && isdigit((unsigned char)p[7]) ? p[7] - '0' : 0;
    call->http_version = major * 10 + minor;
    const char *sp = memchr(p, ' ', n);
    long status = 0;
    for (size_t i = sp ? (size_t)(sp - p) + 1 : n; i < n && isdigit((unsigned char)p[i]); i++)
        status = status * 10 + (p[i] - '0');
    call->status = status;
    sc_buf_reset(&call->resp_headers);
    call->resp_header_count = 0;
}

static void trim(const char **p, size_t *n)
{
    while (*n && (**p == ' ' || **p == '\t'))
        (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

/* One "Name: value" line (or an obsolete folded continuation) of the block. */
static int add_field(sc_httpc_xfer_t *x, const char *p, size_t n)
{
    sc_http_call_t *call = x->call;
    sc_buf_t *b = &call->resp_headers;
    if (memchr(p, '\0', n))
        return 0; /* not representable as C strings: dropped */
    const char *name = p, *value;
    size_t nl, vl;
    int fold = *p == ' ' || *p == '\t';
    if (fold) {
        if (!call->resp_header_count)
            return 0;
        value = p, vl = n, nl = 0;
    } else {
        const char *colon = memchr(p, ':', n);
        if (!colon)
            return 0; /* curl let a malformed line through: dropped */
        nl = (size_t)(colon - p);
        value = colon + 1;
        vl = n - nl - 1;
        trim(&name, &nl);
    }
    trim(&value, &vl);
    if (call->resp_header_count + !fold > SC_HTTP_MAX_RESP_HEADERS ||
        b->len + nl + vl + 2 > SC_HTTP_MAX_RESP_HEADER_BYTES) {
        xfer_abort(x, SC_EREMOTE, "response headers over %d fields or %u bytes",
                   SC_HTTP_MAX_RESP_HEADERS, SC_HTTP_MAX_RESP_HEADER_BYTES);
        return x->abort_error;
    }
    int rc;
    if (fold) {
        b->len--; /* the last value's terminator; the folded text joins it */
        rc = sc_buf_append(b, " ", 1);
    } else {
        rc = sc_buf_append(b, name, nl);
        if (!rc)
            rc = sc_buf_append(b, "", 1);
        call->resp_header_count++;
    }
    if (!rc)
        rc = sc_buf_append(b, value, vl);
    if (!rc)
        rc = sc_buf_append(b, "", 1);
    if (rc)
        xfer_abort(x, SC_ENOMEM, "out of memory for response headers");
    return rc;
}

/* The blank line: an interim (1xx) block is forgotten, the final one is
 * handed to on_headers. */
static int block_end(sc_httpc_xfer_t *x)
{
    sc_http_call_t *call = x->call;
    if (call->status >= 100 && call->status < 200)
        return 0;
    x->headers_done = 1;
    int rc = call->on_headers ? call->on_headers(call) : 0;
    if (rc)
        xfer_abort(x, rc, "on_headers ended the call (%s)", sc_strerror(rc));
    return rc;
}

static size_t on_header_line(char *p, size_t size, size_t nitems, void *ud)
{
    sc_httpc_xfer_t *x = ud;
    size_t len = size * nitems, n = len;
    x->last_rx_ms = uv_now(sc_httpc_loop(x->c));
    if (x->headers_done)
        return len; /* trailers after a chunked body */
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        status_line(x->call, p, n);
        return len;
    }
    int rc = n ? add_field(x, p, n) : block_end(x);
    return rc ? 0 : len;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    sc_httpc_xfer_t *x = ud;
    sc_http_call_t *call = x->call;
    size_t n = size * nmemb;
    uint64_t now = uv_now(sc_httpc_loop(x->c));
    if (sc_httpc_hold(x->c, call)) {
        /* curl keeps this piece and hands it over again after CURLPAUSE_CONT. */
        if (!x->paused) {
            x->paused = 1;
            x->paused_at_ms = now;
            sc_httpc_arm_watchdog(x);
        }
        return CURL_WRITEFUNC_PAUSE;
    }
    x->last_rx_ms = now;
    call->body_bytes += n;
    if (call->on_data) {
        int rc = call->on_data(call, p, n);
        if (rc) {
            xfer_abort(x, rc, "on_data ended the call (%s)", sc_strerror(rc));
            return 0;
        }
        return n;
    }
    if (call->response.len + n > SC_HTTP_MAX_RESPONSE) {
        xfer_abort(x, SC_ETOOBIG, "response body over %u bytes", SC_HTTP_MAX_RESPONSE);
        return 0;
    }
    if (sc_buf_append(&call->response, p, n)) {
        xfer_abort(x, SC_ENOMEM, "out of memory for the response body");
        return 0;
    }
    return n;
}

int sc_httpc_xfer_setup(sc_httpc_xfer_t *x, sc_http_client_t *c, sc_http_call_t *call)
{
    x->c = c;
    x->call = call;
    x->easy = curl_easy_init();
    if (!x->easy || build_headers(call, &x->hdrs)) {
        sc_httpc_xfer_release(x);
        return SC_ENOMEM;
    }
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, call->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->error_text);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, call->timeout_ms > 0 ? call->timeout_ms : 2000L);
    if (call->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, call->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS,
                     1L); /* a proxy's block is not the answer */
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 60L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 30L);
    set_method(e, call);
    return 0;
}

void sc_httpc_xfer_release(sc_httpc_xfer_t *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    x->easy = NULL;
    x->hdrs = NULL;
}

int sc_httpc_map_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return SC_ETIMEDOUT;
    case CURLE_OUT_OF_MEMORY:
        return SC_ENOMEM;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return SC_EINVAL;
    default: /* refused, DNS, TLS, reset, malformed or empty answer, HTTP/2 errors */
        return SC_EREMOTE;
    }
}

/* ---- accessors ------------------------------------------------------------------ */

int sc_http_call_header_next(const sc_http_call_t *call, size_t *pos, const char **name,
                             const char **value)
{
    const sc_buf_t *b = &call->resp_headers;
    if (!b->data || *pos >= b->len)
        return SC_ENOTFOUND;
    *name = b->data + *pos;
    *value = *name + strlen(*name) + 1;
    *pos = (size_t)(*value - b->data) + strlen(*value) + 1;
    return 0;
}

const char *sc_http_call_header(const sc_http_call_t *call, const char *name)
{
    size_t pos = 0;
    const char *n, *v;
    while (sc_http_call_header_next(call, &pos, &n, &v) == 0)
        if (strcasecmp(n, name) == 0)
            return v;
    return NULL;
}

void sc_http_call_clear(sc_http_call_t *call)
{
    sc_buf_free(&call->body);
    sc_buf_free(&call->headers);
    sc_buf_free(&call->response);
    sc_buf_free(&call->resp_headers);
    call->resp_header_count = 0;
}
