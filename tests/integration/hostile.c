/* tests/integration/hostile.c -- a catalog of malformed and hostile requests
 * sent raw to the real binary. Each must get its documented 4xx (or a clean
 * close), the server must keep answering, and stored data must stay intact.
 * Also: bearer-token authorization with a separate admin token. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define call tu_call
#define sfield tu_str

static tu_server_t srv;
static void up(void)
{
    const char *args[] = {"--max-body-bytes",
                          "64K",
                          "--max-header-bytes",
                          "8K",
                          "--request-timeout-ms",
                          "1000",
                          "--max-dimensions",
                          "1024",
                          NULL};
    tu_server_start(&srv, args);
}
static void down(void)
{
    tu_server_destroy(&srv);
}

static char *post_raw(const char *path, const char *body, const char *extra_headers)
{
    char *req;
    int n = asprintf(&req,
                     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     path, extra_headers ? extra_headers : "", strlen(body), body);
    ck_assert_int_gt(n, 0);
    return req;
}

typedef struct {
    const char *name;
    char *raw; /* owned */
    size_t len;
    int want;     /* expected status; 0 = any 4xx or a close without an answer */
    int one_byte; /* send one byte per packet */
} case_t;

static int n_cases;
static case_t cases[80];

static void add(const char *name, char *raw, int want)
{
    cases[n_cases++] = (case_t){name, raw, strlen(raw), want, 0};
}

static void add_lookup(const char *name, const char *body, int want)
{
    add(name, post_raw("/v1/lookup", body, NULL), want);
}

static void add_store(const char *name, const char *body, int want)
{
    add(name, post_raw("/v1/store", body, NULL), want);
}

static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    char *s = malloc(pl + n + sl + 1);
    memcpy(s, prefix, pl);
    memset(s + pl, c, n);
    memcpy(s + pl + n, suffix, sl + 1);
    return s;
}

static void build_catalog(void)
{
    n_cases = 0;
    /* Broken JSON */
    add_lookup("truncated object", "{\"model\":\"m\",\"prompt\":\"x\"", 400);
    add_lookup("trailing garbage", "{\"model\":\"m\",\"prompt\":\"x\"} xyz", 400);
    add_lookup("bare string", "\"just a string\"", 400);
    add_lookup("empty body", "", 400);
    add_lookup("array", "[{\"model\":\"m\"}]", 400);
    add_lookup("single quotes", "{'model':'m','prompt':'x'}", 400);
    add_lookup("comments", "{\"model\":\"m\", /* c */ \"prompt\":\"x\"}", 400);
    add_lookup("NaN literal", "{\"model\":\"m\",\"prompt\":\"x\",\"params\":{\"t\":NaN}}", 400);
    add_lookup("Infinity literal", "{\"model\":\"m\",\"prompt\":\"x\",\"params\":{\"t\":Infinity}}",
               400);
    add_lookup("huge number", "{\"model\":\"m\",\"prompt\":\"x\",\"params\":{\"t\":1e999}}", 400);
    add_lookup(
        "huge integer",
        "{\"model\":\"m\",\"prompt\":\"x\",\"params\":{\"seed\":123456789012345678901234567890}}",
        400);
    add_lookup("invalid UTF-8", "{\"model\":\"m\",\"prompt\":\"\xc3\x28\"}", 400);
    add_lookup("NUL escape", "{\"model\":\"m\",\"prompt\":\"a\\u0000b\"}", 400);
    add_lookup("lone surrogate", "{\"model\":\"m\",\"prompt\":\"\\ud800\"}", 400);
    /* deep nesting */
    char *deep = repeat("{\"model\":\"m\",\"prompt\":\"x\",\"params\":{\"a\":", '[', 10000, "");
    char *deep2 = repeat(deep, ']', 10000, "}}");
    free(deep);
    add_lookup("nesting 10000 deep", deep2, 400);
    free(deep2);
    /* Wrong fields */
    add_lookup("missing model", "{\"prompt\":\"x\"}", 400);
    add_lookup("model is a number", "{\"model\":1,\"prompt\":\"x\"}", 400);
    add_lookup("unknown field", "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":0}", 400);
    add_lookup("duplicate field", "{\"model\":\"m\",\"model\":\"n\",\"prompt\":\"x\"}", 400);
    add_lookup("messages not array", "{\"model\":\"m\",\"messages\":{}}", 400);
    add_lookup("message without role", "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", 400);
    add_lookup("namespace with slash", "{\"namespace\":\"a/b\",\"model\":\"m\",\"prompt\":\"x\"}",
               400);
    char *tenant = repeat("{\"model\":\"m\",\"prompt\":\"x\",\"tenant\":\"", 'a', 300, "\"}");
    add_lookup("huge tenant", tenant, 400);
    free(tenant);
    /* Vectors */
    add_lookup("empty vector", "{\"model\":\"m\",\"prompt\":\"x\",\"embedding\":[]}", 400);
    add_lookup("zero vector", "{\"model\":\"m\",\"prompt\":\"x\",\"embedding\":[0,0,0]}", 400);
    add_lookup("vector of strings",
               "{\"model\":\"m\",\"prompt\":\"x\",\"embedding\":[\"a\",\"b\"]}", 400);
    add_lookup("NaN in base64", "{\"model\":\"m\",\"prompt\":\"x\",\"embedding\":\"AADAfw==\"}",
               400);
    add_lookup("bad base64", "{\"model\":\"m\",\"prompt\":\"x\",\"embedding\":\"!!!!\"}", 400);
    char *longvec = malloc(20000);
    size_t o = (size_t)sprintf(longvec, "{\"model\":\"m\",\"prompt\":\"x\",\"embedding\":[");
    for (int i = 0; i < 2000; i++)
        o += (size_t)sprintf(longvec + o, "%s1", i ? "," : "");
    sprintf(longvec + o, "]}");
    add_lookup("vector over --max-dimensions", longvec, 400);
    free(longvec);
    add_lookup("threshold out of range",
               "{\"model\":\"m\",\"prompt\":\"x\",\"embedding\":[1,0],\"threshold\":7}", 400);
    /* TTLs */
    add_store("negative TTL", "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1,\"ttl_s\":-1}",
              400);
    add_store("huge TTL",
              "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1,\"ttl_s\":99999999999999}", 400);
    add_store("fractional TTL", "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1,\"ttl_s\":1.5}",
              400);
    add_store("no response", "{\"model\":\"m\",\"prompt\":\"x\"}", 400);
    /* HTTP framing */
    add("oversized headers",
        repeat("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ", 'a', 9000, "\r\n\r\n"), 431);
    add("oversized body (Content-Length)",
        strdup("POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{"), 413);
    add("oversized chunked body",
        repeat("POST /v1/lookup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n11000\r\n",
               'a', 70000, "\r\n0\r\n\r\n"),
        413);
    add("bad chunk size",
        strdup("POST /v1/lookup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        400);
    /* Debian's http_parser is built non-strict: the bytes after a short chunk
     * are read as the next chunk's size, so this ends in 408, not 400. */
    add("chunk longer than declared",
        strdup("POST /v1/lookup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
               "chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n"),
        0);
    add("conflicting Content-Length",
        strdup("POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: "
               "7\r\n\r\n{}{}{}{"),
        400);
    add("Content-Length with Transfer-Encoding (smuggling)",
        strdup("POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: "
               "chunked\r\n\r\n0\r\n\r\nGET /v1/stats HTTP/1.1\r\n\r\n"),
        400);
    add("negative Content-Length",
        strdup("POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"), 400);
    add("POST without length", strdup("POST /v1/lookup HTTP/1.1\r\nHost: x\r\n\r\n"), 411);
    add("not HTTP", strdup("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 tls hello\r\n\r\n"), 400);
    add("bad method", strdup("BREW /v1/lookup HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
    add("unsupported HTTP version", strdup("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"), 505);
    add("header line without a colon", strdup("GET /healthz HTTP/1.1\r\nNoColonHere\r\n\r\n"), 400);
    add("wrong content type",
        post_raw("/v1/lookup", "model=m&prompt=x",
                 "Content-Type: application/x-www-form-urlencoded\r\n"),
        415);
    add("unknown path", strdup("GET /etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
    add("path traversal", strdup("GET /v1/entries/../../etc HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
    add("wrong method", strdup("PATCH /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
        405);
    add("bad entry key", strdup("GET /v1/entries/xyz HTTP/1.1\r\nHost: x\r\n\r\n"), 404);
    /* Slow: one byte per packet still gets a proper answer. */
    add_lookup("one byte per packet", "{\"model\":\"m\",\"prompt\":\"x\",\"oops\":1}", 400);
    cases[n_cases - 1].one_byte = 1;
    /* Slowloris: a request that never finishes is cut off. */
    add("unfinished request (slowloris)",
        strdup("POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"), 408);
}

START_TEST(hostile_requests_get_their_4xx_and_nothing_breaks)
{
    json_decref(call(srv.port, "POST", "/v1/store",
                     "{\"model\":\"m\",\"prompt\":\"precious\",\"response\":\"intact\"}", 201));
    build_catalog();
    ck_assert_int_ge(n_cases, 40);
    for (int i = 0; i < n_cases; i++) {
        size_t n;
        char *out = tu_raw(srv.port, cases[i].raw, cases[i].len, cases[i].one_byte, 3000, &n);
        int status = 0;
        sscanf(out, "HTTP/1.1 %d", &status);
        if (cases[i].want)
            ck_assert_msg(status == cases[i].want, "%s: got %d (want %d): %.200s", cases[i].name,
                          status, cases[i].want, out);
        else
            ck_assert_msg(status == 0 || (status >= 400 && status < 500), "%s: got %d",
                          cases[i].name, status);
        /* (505 is the one 5xx here: the right answer to HTTP/9.9.) */
        if (status >= 400)
            ck_assert_msg(strstr(out, "application/problem+json"), "%s: not problem+json",
                          cases[i].name);
        free(out);
        free(cases[i].raw);
        /* After every case the server still answers. */
        tu_resp_t r = tu_http(srv.port, "GET", "/healthz", NULL);
        ck_assert_msg(r.status == 200, "after %s: /healthz -> %d", cases[i].name, r.status);
        tu_resp_free(&r);
    }
    /* A pipelining flood: 2,000 requests in one write, all answered in order. */
    size_t one = strlen("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    char *flood = malloc(one * 2000 + 64);
    for (int i = 0; i < 2000; i++)
        memcpy(flood + (size_t)i * one, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", one);
    strcpy(flood + one * 2000, "GET /v1/stats HTTP/1.1\r\nConnection: close\r\n\r\n");
    size_t n;
    char *out = tu_raw(srv.port, flood, strlen(flood), 0, 10000, &n);
    ck_assert_int_eq(tu_count(out, "HTTP/1.1 200"), 2001);
    free(out);
    free(flood);
    /* The stored entry is intact. */
    json_t *j =
        call(srv.port, "POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"precious\"}", 200);
    ck_assert_str_eq(sfield(j, "response"), "intact");
    json_decref(j);
}
END_TEST

static int status_with_token(int port, const char *method, const char *path, const char *body,
                             const char *token)
{
    char req[1024], auth[300] = "";
    if (token)
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             method, path, auth, body ? strlen(body) : 0, body ? body : "");
    size_t n;
    char *out = tu_raw(port, req, strlen(req), 0, 3000, &n);
    int status = 0;
    sscanf(out, "HTTP/1.1 %d", &status);
    free(out);
    return status;
}

START_TEST(bearer_tokens_guard_the_api)
{
    setenv("SEMCACHED_AUTH_TOKEN", "user-token", 1);
    setenv("SEMCACHED_ADMIN_TOKEN", "admin-token", 1);
    tu_server_t s;
    tu_server_start(&s, NULL);
    unsetenv("SEMCACHED_AUTH_TOKEN");
    unsetenv("SEMCACHED_ADMIN_TOKEN");
    const char *lookup = "{\"model\":\"m\",\"prompt\":\"x\"}";
    ck_assert_int_eq(status_with_token(s.port, "GET", "/healthz", NULL, NULL), 200);
    ck_assert_int_eq(status_with_token(s.port, "GET", "/readyz", NULL, NULL), 200);
    ck_assert_int_eq(status_with_token(s.port, "GET", "/metrics", NULL, NULL), 200);
    ck_assert_int_eq(status_with_token(s.port, "POST", "/v1/lookup", lookup, NULL), 401);
    ck_assert_int_eq(status_with_token(s.port, "POST", "/v1/lookup", lookup, "wrong"), 401);
    ck_assert_int_eq(status_with_token(s.port, "POST", "/v1/lookup", lookup, "user-toke"), 401);
    ck_assert_int_eq(status_with_token(s.port, "POST", "/v1/lookup", lookup, "user-tokenX"), 401);
    ck_assert_int_eq(status_with_token(s.port, "POST", "/v1/lookup", lookup, "user-token"), 200);
    ck_assert_int_eq(status_with_token(s.port, "GET", "/v1/stats", NULL, "user-token"), 200);
    /* Admin operations need the admin token; the user token gets 403. */
    ck_assert_int_eq(
        status_with_token(s.port, "POST", "/v1/invalidate", "{\"all\":true}", "user-token"), 403);
    ck_assert_int_eq(status_with_token(s.port, "POST", "/v1/invalidate", "{\"all\":true}", NULL),
                     401);
    ck_assert_int_eq(
        status_with_token(s.port, "POST", "/v1/invalidate", "{\"all\":true}", "admin-token"), 200);
    ck_assert_int_eq(status_with_token(s.port, "PUT", "/v1/namespaces/x", "{}", "user-token"), 403);
    ck_assert_int_eq(status_with_token(s.port, "PUT", "/v1/namespaces/x", "{}", "admin-token"),
                     200);
    ck_assert_int_eq(status_with_token(s.port, "GET", "/v1/namespaces/x", NULL, "user-token"), 200);
    /* The admin token works everywhere. */
    ck_assert_int_eq(status_with_token(s.port, "POST", "/v1/lookup", lookup, "admin-token"), 200);
    tu_server_destroy(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("hostile");
    tcase_add_unchecked_fixture(tc, up, down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, hostile_requests_get_their_4xx_and_nothing_breaks);
    suite_add_tcase(s, tc);
    TCase *auth = tcase_create("auth");
    tcase_set_timeout(auth, 60);
    tcase_add_test(auth, bearer_tokens_guard_the_api);
    suite_add_tcase(s, auth);
    return tu_run(s);
}
