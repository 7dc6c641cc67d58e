/* tests/integration/proxy_helpers.h -- what tests/integration/proxy.c
 * speaks to the proxy with: raw HTTP/1.1 with headers of its own and
 * de-chunked bodies (noting whether a stream reached its last chunk), the
 * mock upstream's counters, request bodies for each API, and waits for a
 * stored entry. Static functions: included by that one test only, which
 * defines 'mock_port' first. */
#ifndef SC_TEST_PROXY_HELPERS_H
#define SC_TEST_PROXY_HELPERS_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "testutil.h"

#define KEY_A "Authorization: Bearer sk-alpha\r\n"
#define KEY_B "Authorization: Bearer sk-beta\r\n"
#define ANTHROPIC "x-api-key: sk-alpha\r\nanthropic-version: 2023-06-01\r\n"

/* ---- HTTP with headers of our own, streams de-chunked ------------------------------ */

typedef struct {
    int status;
    char *headers; /* the raw head */
    char *body;    /* de-chunked */
    size_t body_len;
    int complete; /* a chunked body reached its last chunk (or had a length) */
} resp_t;

static inline void resp_free(resp_t *r)
{
    free(r->headers);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* The value of header 'name' in 'r' (static buffer), or "" when absent. */
static inline const char *hdr(const resp_t *r, const char *name)
{
    static char v[256];
    size_t n = strlen(name);
    v[0] = '\0';
    for (const char *p = r->headers ? strstr(r->headers, "\r\n") : NULL; p && p[2];
         p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *s = line + n + 1, *e = strstr(s, "\r\n");
            while (*s == ' ')
                s++;
            snprintf(v, sizeof(v), "%.*s", (int)(e - s), s);
            break;
        }
    }
    return v;
}

static inline void parse_resp(const char *raw, size_t len, resp_t *r)
{
    memset(r, 0, sizeof(*r));
    r->status = -1;
    const char *end = memmem(raw, len, "\r\n\r\n", 4);
    if (!end || sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1)
        return;
    r->headers = strndup(raw, (size_t)(end - raw) + 2);
    const char *b = end + 4, *stop = raw + len;
    r->body = malloc(len + 1);
    if (strcasestr(r->headers, "transfer-encoding: chunked")) {
        while (b < stop) {
            char *next;
            unsigned long n = strtoul(b, &next, 16);
            /* memchr, not strstr: 'raw' is not NUL-terminated, and ASan's
             * strstr would measure the rest of it at every chunk. */
            const char *data = memchr(next, '\r', (size_t)(stop - next));
            if (!data || data + 1 >= stop || data[1] != '\n' || next == b)
                break;
            data += 2;
            if (n == 0) {
                r->complete = 1;
                break;
            }
            if (data + n > stop)
                break;
            memcpy(r->body + r->body_len, data, n);
            r->body_len += n;
            b = data + n + 2;
        }
    } else {
        r->body_len = (size_t)(stop - b);
        memcpy(r->body, b, r->body_len);
        r->complete = 1;
    }
    r->body[r->body_len] = '\0';
}

static inline char *request_text(const char *method, const char *path, const char *headers,
                                 const char *body)
{
    char *req;
    ck_assert_int_gt(asprintf(&req,
                              "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                              "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
                              method, path, body ? strlen(body) : 0, headers ? headers : "",
                              body ? body : ""),
                     0);
    return req;
}

static inline resp_t http(int port, const char *method, const char *path, const char *headers,
                          const char *body)
{
    char *req = request_text(method, path, headers, body);
    size_t n;
    char *raw = tu_raw(port, req, strlen(req), 0, 10000, &n);
    resp_t r;
    parse_resp(raw, n, &r);
    free(req);
    free(raw);
    return r;
}

static inline resp_t post(int port, const char *path, const char *headers, const char *body)
{
    return http(port, "POST", path, headers, body);
}

/* Waits until the entry a miss's answer named is stored (on a server with
 * --auth-token, 'token'). A miss's answer ends with the upstream's, before
 * the store commits, so a test that wants the next request to hit waits. */
static inline void wait_stored_token(int port, const resp_t *miss, const char *token)
{
    char path[320], auth[128] = "";
    snprintf(path, sizeof(path), "/v1/entries/%s", hdr(miss, "X-Semcached-Key"));
    if (token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    for (long long t0 = tu_now_ms(); tu_now_ms() - t0 <= TU_PATIENCE_MS; usleep(5000)) {
        resp_t r = http(port, "GET", path, auth, NULL);
        int st = r.status;
        resp_free(&r);
        if (st == 200)
            return;
    }
    ck_abort_msg("%s was never stored", path);
}

static inline void wait_stored(int port, const resp_t *miss)
{
    wait_stored_token(port, miss, NULL);
}

/* The store's entry count (/v1/stats). */
static inline int stored_entries(int port)
{
    json_t *j = tu_call(port, "GET", "/v1/stats", NULL, 200);
    int n = (int)json_integer_value(json_object_get(j, "entries"));
    json_decref(j);
    return n;
}

/* Waits until the store holds at least 'n' entries (the writer thread
 * commits them after the answers). */
static inline void wait_entries(int port, int n)
{
    int ok;
    TU_WAIT_UNTIL(ok, stored_entries(port) >= n, TU_PATIENCE_MS);
    ck_assert_msg(ok, "the store never held %d entries", n);
}

/* Calls to 'path' the mock has received so far. */
static inline int upstream_calls(const char *path)
{
    resp_t r = http(mock_port, "GET", "/stats", NULL, NULL);
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    ck_assert_ptr_nonnull(j);
    int n = (int)json_integer_value(json_object_get(json_object_get(j, "calls"), path));
    json_decref(j);
    resp_free(&r);
    return n;
}

/* Waits until the mock has been sent 'n' calls to 'path' in all. It counts a
 * call when it arrives, before any delay its headers ask for: a leader whose
 * call has arrived is in flight, and requests sent now can follow it. */
static inline void wait_upstream_calls(const char *path, int n)
{
    int ok;
    TU_WAIT_UNTIL(ok, upstream_calls(path) >= n, TU_PATIENCE_MS);
    ck_assert_msg(ok, "the mock never saw %d calls to %s", n, path);
}

/* The mock's last request body, as JSON (caller decrefs). */
static inline json_t *upstream_last_body(void)
{
    resp_t r = http(mock_port, "GET", "/stats", NULL, NULL);
    json_t *j = json_loads(r.body ? r.body : "", 0, NULL);
    json_t *b = json_incref(json_object_get(j, "last_body"));
    json_decref(j);
    resp_free(&r);
    return b;
}

static inline char *chat(const char *q, int stream)
{
    char *b;
    ck_assert_int_gt(asprintf(&b,
                              "{\"model\":\"gpt-4o-mini\",%s\"messages\":[{\"role\":\"user\","
                              "\"content\":\"%s\"}]}",
                              stream ? "\"stream\":true," : "", q),
                     0);
    return b;
}

static inline char *message(const char *q, int stream)
{
    char *b;
    ck_assert_int_gt(asprintf(&b,
                              "{\"model\":\"claude-haiku-4-5\",\"max_tokens\":64,%s\"messages\":"
                              "[{\"role\":\"user\",\"content\":\"%s\"}]}",
                              stream ? "\"stream\":true," : "", q),
                     0);
    return b;
}

static inline char *responses(const char *q, int stream)
{
    char *b;
    ck_assert_int_gt(asprintf(&b, "{\"model\":\"gpt-4.1\",%s\"input\":\"%s\"}",
                              stream ? "\"stream\":true," : "", q),
                     0);
    return b;
}

/* The text a chat stream (or body) carries: every delta's content joined. */
static inline void chat_text(const char *body, int stream, char *out, size_t cap)
{
    out[0] = '\0';
    if (!stream) {
        json_t *j = json_loads(body, 0, NULL);
        const char *t = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message"),
            "content"));
        snprintf(out, cap, "%s", t ? t : "");
        json_decref(j);
        return;
    }
    size_t len = 0;
    for (const char *p = tu_find(body, "data: "); p; p = tu_find(p + 6, "data: ")) {
        const char *e = strchr(p, '\n');
        json_t *j = json_loadb(p + 6, e ? (size_t)(e - p - 6) : strlen(p + 6), 0, NULL);
        const char *t = json_string_value(json_object_get(
            json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta"), "content"));
        size_t n = t ? strlen(t) : 0;
        if (n && len + n < cap) {
            memcpy(out + len, t, n + 1);
            len += n;
        }
        json_decref(j);
    }
}

#endif
