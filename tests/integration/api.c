/* tests/integration/api.c -- black-box tests: start the real semcached binary
 * on a free loopback port and speak HTTP to it. Covers the v1 API, TTL,
 * restarts, pipelining, error responses and the metrics exposition. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static tu_server_t srv; /* shared by the "api" test case */

static void srv_up(void)
{
    const char *args[] = {
        "--request-timeout-ms", "500", "--max-body-bytes", "64K", "--max-header-bytes", "4K", NULL};
    tu_server_start(&srv, args);
}

static void srv_down(void)
{
    tu_server_destroy(&srv);
}

static json_t *json_of(const tu_resp_t *r)
{
    json_error_t e;
    json_t *j = json_loads(r->body ? r->body : "", 0, &e);
    ck_assert_msg(j != NULL, "response is not JSON: %s", r->body ? r->body : "(none)");
    return j;
}

static const char *str_field(json_t *j, const char *k)
{
    json_t *v = json_object_get(j, k);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* POSTs 'body' and checks the status; returns the parsed JSON (caller frees). */
static json_t *post(int port, const char *path, const char *body, int want_status)
{
    tu_resp_t r = tu_http(port, "POST", path, body);
    ck_assert_msg(r.status == want_status, "POST %s %s -> %d (want %d): %s", path, body, r.status,
                  want_status, r.body ? r.body : "");
    json_t *j = json_of(&r);
    tu_resp_free(&r);
    return j;
}

static void assert_healthy(int port)
{
    tu_resp_t r = tu_http(port, "GET", "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    tu_resp_free(&r);
}

#define Q(text)                                                                                    \
    "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"" text                   \
    "\"}],\"params\":{\"temperature\":0}"

START_TEST(store_then_lookup_hits)
{
    json_t *j = post(srv.port, "/v1/lookup", Q("capital of France?") "}", 200);
    ck_assert_str_eq(str_field(j, "status"), "miss");
    char key[64];
    snprintf(key, sizeof(key), "%s", str_field(j, "key"));
    ck_assert_int_eq((int)strlen(key), 32);
    json_decref(j);

    j = post(srv.port, "/v1/store",
             Q("capital of France?") ",\"response\":{\"choices\":[{\"message\":"
                                     "{\"role\":\"assistant\",\"content\":\"Paris.\"}}],\"p\":0.1},"
                                     "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}",
             201);
    ck_assert_str_eq(str_field(j, "key"), key);
    json_decref(j);

    /* Byte-different but equivalent request: same entry. */
    j = post(srv.port, "/v1/lookup",
             "{ \"params\": {\"temperature\": 0.0}, \"model\": \"gpt-4o\","
             " \"messages\": [ {\"content\": \"capital of France?\", \"role\": \"user\"} ] }",
             200);
    ck_assert_str_eq(str_field(j, "status"), "hit");
    ck_assert_str_eq(str_field(j, "match"), "exact");
    ck_assert_str_eq(str_field(j, "key"), key);
    json_t *content = json_object_get(
        json_object_get(
            json_array_get(json_object_get(json_object_get(j, "response"), "choices"), 0),
            "message"),
        "content");
    ck_assert_str_eq(json_string_value(content), "Paris.");
    ck_assert(json_real_value(json_object_get(json_object_get(j, "response"), "p")) == 0.1);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "hits")), 1);
    ck_assert(json_is_number(json_object_get(j, "age_s")));
    json_decref(j);
    /* Each hit is counted at once, though counts reach the store only every
     * --hit-flush-ms (10 s). */
    for (int i = 2; i <= 3; i++) {
        j = post(srv.port, "/v1/lookup",
                 "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
                 "\"content\":\"capital of France?\"}],\"params\":{\"temperature\":0}}",
                 200);
        ck_assert_str_eq(str_field(j, "status"), "hit");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "hits")), i);
        json_decref(j);
    }

    /* A different parameter is a different request. */
    j = post(srv.port, "/v1/lookup",
             "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":"
             "\"capital of France?\"}],\"params\":{\"temperature\":0.5}}",
             200);
    ck_assert_str_eq(str_field(j, "status"), "miss");
    json_decref(j);

    /* GET the entry. */
    char path[128];
    snprintf(path, sizeof(path), "/v1/entries/%s", key);
    tu_resp_t r = tu_http(srv.port, "GET", path, NULL);
    ck_assert_int_eq(r.status, 200);
    j = json_of(&r);
    ck_assert_str_eq(str_field(j, "model"), "gpt-4o");
    ck_assert_str_eq(str_field(j, "text"), "capital of France?");
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "usage"), "prompt_tokens")), 9);
    json_decref(j);
    tu_resp_free(&r);

    /* Stats count the hit and the tokens it saved. */
    r = tu_http(srv.port, "GET", "/v1/stats", NULL);
    j = json_of(&r);
    ck_assert_int_ge(
        json_integer_value(json_object_get(json_object_get(j, "lookups"), "exact_hit")), 1);
    ck_assert_int_ge(
        json_integer_value(json_object_get(json_object_get(j, "tokens_saved"), "prompt")), 9);
    json_decref(j);
    tu_resp_free(&r);
}
END_TEST

START_TEST(store_replaces_and_delete_removes)
{
    json_t *j = post(srv.port, "/v1/store",
                     "{\"model\":\"m\",\"prompt\":\"replace me\",\"response\":\"one\"}", 201);
    char key[64];
    snprintf(key, sizeof(key), "%s", str_field(j, "key"));
    json_decref(j);
    json_decref(post(srv.port, "/v1/store",
                     "{\"model\":\"m\",\"prompt\":\"replace me\",\"response\":\"two\"}", 201));
    j = post(srv.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"replace me\"}", 200);
    ck_assert_str_eq(json_string_value(json_object_get(j, "response")), "two");
    json_decref(j);

    char path[128];
    snprintf(path, sizeof(path), "/v1/entries/%s", key);
    tu_resp_t r = tu_http(srv.port, "DELETE", path, NULL);
    ck_assert_int_eq(r.status, 200);
    tu_resp_free(&r);
    r = tu_http(srv.port, "GET", path, NULL);
    ck_assert_int_eq(r.status, 404);
    ck_assert(strstr(r.headers, "application/problem+json"));
    tu_resp_free(&r);
    r = tu_http(srv.port, "DELETE", path, NULL);
    ck_assert_int_eq(r.status, 404);
    tu_resp_free(&r);
    j = post(srv.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"replace me\"}", 200);
    ck_assert_str_eq(str_field(j, "status"), "miss");
    json_decref(j);
    r = tu_http(srv.port, "GET", "/v1/entries/not-a-key", NULL);
    ck_assert_int_eq(r.status, 404);
    tu_resp_free(&r);
}
END_TEST

START_TEST(max_age_rejects_older_entries)
{
    json_decref(
        post(srv.port, "/v1/store", "{\"model\":\"m\",\"prompt\":\"aging\",\"response\":1}", 201));
    usleep(120 * 1000);
    json_t *j = post(srv.port, "/v1/lookup",
                     "{\"model\":\"m\",\"prompt\":\"aging\",\"max_age_s\":0.05}", 200);
    ck_assert_str_eq(str_field(j, "status"), "miss");
    json_decref(j);
    j = post(srv.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"aging\",\"max_age_s\":60}",
             200);
    ck_assert_str_eq(str_field(j, "status"), "hit");
    json_decref(j);
}
END_TEST

START_TEST(invalidate_by_namespace_tenant_model)
{
    const char *bodies[] = {
        "{\"namespace\":\"inv-a\",\"tenant\":\"t1\",\"model\":\"m1\",\"prompt\":\"q1\","
        "\"response\":1}",
        "{\"namespace\":\"inv-a\",\"tenant\":\"t2\",\"model\":\"m1\",\"prompt\":\"q1\","
        "\"response\":1}",
        "{\"namespace\":\"inv-a\",\"tenant\":\"t1\",\"model\":\"m2\",\"prompt\":\"q1\","
        "\"response\":1}",
        "{\"namespace\":\"inv-b\",\"tenant\":\"t1\",\"model\":\"m1\",\"prompt\":\"q1\","
        "\"response\":1}",
    };
    for (int i = 0; i < 4; i++)
        json_decref(post(srv.port, "/v1/store", bodies[i], 201));
    json_t *j =
        post(srv.port, "/v1/invalidate", "{\"namespace\":\"inv-a\",\"tenant\":\"t1\"}", 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "removed")), 2);
    json_decref(j);
    j = post(srv.port, "/v1/lookup",
             "{\"namespace\":\"inv-a\",\"tenant\":\"t2\",\"model\":\"m1\",\"prompt\":\"q1\"}", 200);
    ck_assert_str_eq(str_field(j, "status"), "hit");
    json_decref(j);
    j = post(srv.port, "/v1/lookup",
             "{\"namespace\":\"inv-a\",\"tenant\":\"t1\",\"model\":\"m1\",\"prompt\":\"q1\"}", 200);
    ck_assert_str_eq(str_field(j, "status"), "miss");
    json_decref(j);
    j = post(srv.port, "/v1/invalidate", "{\"model\":\"m1\",\"namespace\":\"inv-b\"}", 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "removed")), 1);
    json_decref(j);
    json_decref(post(srv.port, "/v1/invalidate", "{}", 400));
    json_decref(post(srv.port, "/v1/invalidate", "{\"namespace\":5}", 400));
    json_decref(post(srv.port, "/v1/invalidate", "{\"bogus\":\"x\"}", 400));
}
END_TEST

static void assert_problem(tu_resp_t *r, int status)
{
    ck_assert_msg(r->status == status, "status %d, want %d: %s", r->status, status,
                  r->body ? r->body : "");
    ck_assert_msg(strstr(r->headers, "Content-Type: application/problem+json"), "headers: %s",
                  r->headers);
    json_t *j = json_of(r);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "status")), status);
    ck_assert(json_is_string(json_object_get(j, "type")));
    ck_assert(json_is_string(json_object_get(j, "title")));
    ck_assert(strlen(str_field(j, "detail")) > 5);
    json_decref(j);
}

START_TEST(bad_requests_get_problem_json_and_server_keeps_serving)
{
    struct {
        const char *method, *path, *body, *ct;
        int status;
    } cases[] = {
        {"POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":", "application/json", 400},
        {"POST", "/v1/lookup", "{\"model\":5,\"prompt\":\"x\"}", "application/json", 400},
        {"POST", "/v1/lookup", "{\"prompt\":\"x\"}", "application/json", 400},
        {"POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":1}",
         "application/json", 400},
        {"POST", "/v1/lookup", "[]", "application/json", 400},
        {"POST", "/v1/store", "{\"model\":\"m\",\"prompt\":\"x\"}", "application/json", 400},
        {"POST", "/v1/store",
         "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1,\"ttl_s\":99999999999}",
         "application/json", 400},
        {"POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"x\"}", "text/plain", 415},
        {"GET", "/v1/lookup", NULL, NULL, 405},
        {"DELETE", "/v1/store", NULL, NULL, 405},
        {"PUT", "/v1/stats", "{}", "application/json", 405},
        {"GET", "/v2/whatever", NULL, NULL, 404},
        {"GET", "/", NULL, NULL, 404},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tu_resp_t r =
            tu_http_ct(srv.port, cases[i].method, cases[i].path, cases[i].body, cases[i].ct);
        assert_problem(&r, cases[i].status);
        if (cases[i].status == 405)
            ck_assert(strstr(r.headers, "Allow: "));
        tu_resp_free(&r);
    }
    /* 411: a POST with neither Content-Length nor chunked encoding. */
    size_t n;
    const char *no_len = "POST /v1/lookup HTTP/1.1\r\nHost: x\r\n\r\n";
    char *out = tu_raw(srv.port, no_len, strlen(no_len), 0, 1000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 411", 12) == 0, "got %s", out);
    free(out);
    /* 413: body over --max-body-bytes (64K), refused from Content-Length. */
    char *big = malloc(70000);
    memset(big, ' ', 69999);
    big[69999] = '\0';
    big[0] = '{';
    big[69998] = '}';
    tu_resp_t r = tu_http(srv.port, "POST", "/v1/lookup", big);
    assert_problem(&r, 413);
    tu_resp_free(&r);
    free(big);
    /* 431: headers over --max-header-bytes (4K). */
    char hdrs[8192];
    int len = snprintf(hdrs, sizeof(hdrs), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(hdrs + len, 'a', 5000);
    len += 5000;
    len += snprintf(hdrs + len, sizeof(hdrs) - (size_t)len, "\r\n\r\n");
    out = tu_raw(srv.port, hdrs, (size_t)len, 0, 1000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 431", 12) == 0, "got %.40s", out);
    free(out);
    /* Garbage is a 400 and a closed connection. */
    const char *junk = "\x01\x02 NOT HTTP\r\n\r\n";
    out = tu_raw(srv.port, junk, strlen(junk), 0, 1000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 400", 12) == 0, "got %s", out);
    free(out);
    assert_healthy(srv.port);
}
END_TEST

START_TEST(pipelined_requests_answer_in_order)
{
    const char *one = "{\"model\":\"m\",\"prompt\":\"pipelined\"}";
    const char *st = "{\"model\":\"m\",\"prompt\":\"pipelined\",\"response\":\"piped\"}";
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s"
                     "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                     "POST /v1/store HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s"
                     "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s"
                     "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     strlen(one), one, strlen(st), st, strlen(one), one);
    /* Round 0 sends everything at once, round 1 one byte per packet. */
    for (int split = 0; split < 2; split++) {
        size_t len;
        char *out = tu_raw(srv.port, req, (size_t)n, split, 5000, &len);
        const char *want[] = {
            "HTTP/1.1 200", "{\"status\":", "HTTP/1.1 200",     "{\"status\":\"ok\"}",
            "HTTP/1.1 201", "{\"key\":",    "HTTP/1.1 200",     "\"status\":\"hit\"",
            "HTTP/1.1 404", "HTTP/1.1 200", "Connection: close"};
        const char *p = out;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
            const char *q = strstr(p, want[i]);
            ck_assert_msg(q != NULL, "round %d: '%s' missing or out of order in:\n%s", split,
                          want[i], out);
            p = q + strlen(want[i]);
        }
        ck_assert_int_eq(tu_count(out, "HTTP/1.1 "), 6);
        free(out);
    }
}
END_TEST

START_TEST(chunked_body_and_expect_continue)
{
    const char *req = "POST /v1/store HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      "Content-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n"
                      "10\r\n{\"model\":\"m\",\"pr\r\n"
                      "1e\r\nompt\":\"chunked\",\"response\":42}\r\n0\r\n\r\n";
    size_t n;
    char *out = tu_raw(srv.port, req, strlen(req), 0, 2000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 201", 12) == 0, "got %s", out);
    free(out);
    json_t *j = post(srv.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"chunked\"}", 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "response")), 42);
    json_decref(j);
    const char *body = "{\"model\":\"m\",\"prompt\":\"chunked\"}";
    char req2[512];
    snprintf(req2, sizeof(req2),
             "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             strlen(body), body);
    out = tu_raw(srv.port, req2, strlen(req2), 0, 2000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200", 37) == 0, "got %s",
                  out);
    free(out);
    /* Bad chunk framing is a 400. */
    const char *bad =
        "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    out = tu_raw(srv.port, bad, strlen(bad), 0, 2000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 400", 12) == 0, "got %s", out);
    free(out);
    assert_healthy(srv.port);
}
END_TEST

START_TEST(slow_request_times_out_with_408)
{
    /* --request-timeout-ms is 500 on this server. */
    const char *partial = "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mo";
    size_t n;
    char *out = tu_raw(srv.port, partial, strlen(partial), 0, 3000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 408", 12) == 0, "got '%s'", out);
    free(out);
    assert_healthy(srv.port);
}
END_TEST

START_TEST(metrics_pass_promtool)
{
    json_decref(post(srv.port, "/v1/lookup",
                     "{\"namespace\":\"metrics-ns\",\"model\":\"m\",\"prompt\":\"q\"}", 200));
    tu_resp_t r = tu_http(srv.port, "GET", "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strstr(r.headers, "text/plain; version=0.0.4"));
    const char *families[] = {"semcached_requests_total{",
                              "semcached_lookups_total{namespace=\"metrics-ns\",result=\"miss\"} 1",
                              "semcached_request_duration_seconds_bucket{",
                              "semcached_entries ",
                              "semcached_store_bytes ",
                              "semcached_expired_total ",
                              "semcached_evicted_total ",
                              "# TYPE semcached_tokens_saved_total counter"};
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        ck_assert_msg(strstr(r.body, families[i]), "missing %s in\n%s", families[i], r.body);
    ck_assert_msg(!strstr(r.body, "tenant"), "tenant must never be a label");
    char path[] = "/tmp/sc-metrics-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq((int)write(fd, r.body, r.body_len), (int)r.body_len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    char out[4096] = "";
    size_t got = fread(out, 1, sizeof(out) - 1, p);
    out[got] = '\0';
    int rc = pclose(p);
    unlink(path);
    ck_assert_msg(rc == 0, "promtool check metrics failed:\n%s", out);
    tu_resp_free(&r);
}
END_TEST

/* ---- tests with their own server -------------------------------------- */

START_TEST(ttl_expiry_and_sweeper)
{
    tu_server_t s;
    const char *args[] = {"--sweep-interval-ms", "100", NULL};
    tu_server_start(&s, args);
    json_decref(post(s.port, "/v1/store",
                     "{\"model\":\"m\",\"prompt\":\"short\",\"response\":1,\"ttl_s\":1}", 201));
    json_decref(
        post(s.port, "/v1/store", "{\"model\":\"m\",\"prompt\":\"long\",\"response\":2}", 201));
    json_decref(post(s.port, "/v1/store",
                     "{\"model\":\"m\",\"prompt\":\"forever\",\"response\":3,\"ttl_s\":0}", 201));
    json_t *j = post(s.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"short\"}", 200);
    ck_assert_str_eq(str_field(j, "status"), "hit");
    json_decref(j);
    usleep(1300 * 1000);
    j = post(s.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"short\"}", 200);
    ck_assert_str_eq(str_field(j, "status"), "miss");
    json_decref(j);
    j = post(s.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"long\"}", 200);
    ck_assert_str_eq(str_field(j, "status"), "hit");
    json_decref(j);
    /* The sweeper has purged it: the store holds two entries. */
    int entries = -1, expired = -1;
    for (long long t0 = tu_now_ms(); entries != 2 && tu_now_ms() - t0 <= TU_PATIENCE_MS;) {
        tu_resp_t r = tu_http(s.port, "GET", "/v1/stats", NULL);
        j = json_of(&r);
        entries = (int)json_integer_value(json_object_get(j, "entries"));
        expired = (int)json_integer_value(json_object_get(j, "expired_total"));
        json_decref(j);
        tu_resp_free(&r);
        usleep(50 * 1000);
    }
    ck_assert_int_eq(entries, 2);
    ck_assert_int_eq(expired, 1);
    tu_server_destroy(&s);
}
END_TEST

/* Stores prompts "q0".."q<n-1>" with responses 0..n-1, each acknowledged. */
static void store_numbered(int port, int n)
{
    for (int i = 0; i < n; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"prompt\":\"q%d\",\"response\":%d}", i, i);
        json_decref(post(port, "/v1/store", body, 201));
    }
}

START_TEST(restart_keeps_acknowledged_entries)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    store_numbered(s.port, 50);
    /* SIGKILL: no chance to flush anything that was not already durable. */
    tu_server_stop(&s, SIGKILL);
    tu_server_restart(&s);
    for (int i = 0; i < 50; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"prompt\":\"q%d\"}", i);
        json_t *j = post(s.port, "/v1/lookup", body, 200);
        ck_assert_str_eq(str_field(j, "status"), "hit");
        ck_assert_int_eq(json_integer_value(json_object_get(j, "response")), i);
        json_decref(j);
    }
    /* SIGTERM drains and exits 0. */
    int st = tu_server_stop(&s, SIGTERM);
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
    tu_server_restart(&s);
    json_t *j = post(s.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"q7\"}", 200);
    ck_assert_str_eq(str_field(j, "status"), "hit");
    json_decref(j);
    tu_server_destroy(&s);
}
END_TEST

/* --max-entries through the binary: lru keeps the newest entries and counts
 * evictions in /metrics; none answers 507 problem+json for a new key. */
START_TEST(max_entries_bounds_the_store)
{
    const char *lru_args[] = {"--max-entries", "3", NULL};
    tu_server_t s;
    tu_server_start(&s, lru_args);
    store_numbered(s.port, 5);
    tu_resp_t r = tu_http(s.port, "GET", "/v1/stats", NULL);
    json_t *j = json_of(&r);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "entries")), 3);
    json_decref(j);
    tu_resp_free(&r);
    j = post(s.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"q4\"}", 200);
    ck_assert_str_eq(str_field(j, "status"), "hit");
    json_decref(j);
    r = tu_http(s.port, "GET", "/metrics", NULL);
    ck_assert_ptr_nonnull(strstr(r.body, "semcached_evicted_total 2"));
    tu_resp_free(&r);
    tu_server_destroy(&s);

    const char *none_args[] = {"--max-entries", "2", "--evict", "none", NULL};
    tu_server_start(&s, none_args);
    json_decref(
        post(s.port, "/v1/store", "{\"model\":\"m\",\"prompt\":\"a\",\"response\":1}", 201));
    json_decref(
        post(s.port, "/v1/store", "{\"model\":\"m\",\"prompt\":\"b\",\"response\":2}", 201));
    r = tu_http(s.port, "POST", "/v1/store", "{\"model\":\"m\",\"prompt\":\"c\",\"response\":3}");
    ck_assert_int_eq(r.status, 507);
    ck_assert_ptr_nonnull(strstr(r.body, "store-full"));
    tu_resp_free(&r);
    /* Replacing a stored request is not a new entry. */
    json_decref(
        post(s.port, "/v1/store", "{\"model\":\"m\",\"prompt\":\"a\",\"response\":9}", 201));
    j = post(s.port, "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"a\"}", 200);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "response")), 9);
    json_decref(j);
    assert_healthy(s.port);
    tu_server_destroy(&s);
}
END_TEST

START_TEST(namespace_caps_bound_one_namespace)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    json_t *j = tu_call(s.port, "PUT", "/v1/namespaces/capped", "{\"max_entries\":2}", 200);
    ck_assert_int_eq(
        json_integer_value(json_object_get(json_object_get(j, "settings"), "max_entries")), 2);
    json_decref(j);
    for (int i = 0; i < 5; i++) {
        char body[128];
        snprintf(body, sizeof(body),
                 "{\"namespace\":\"capped\",\"model\":\"m\",\"prompt\":\"c%d\",\"response\":%d}", i,
                 i);
        json_decref(post(s.port, "/v1/store", body, 201));
    }
    store_numbered(s.port, 4); /* the default namespace is not capped */
    j = tu_call(s.port, "GET", "/v1/namespaces/capped", NULL, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "usage"), "entries")),
                     2);
    ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(j, "usage"), "bytes")), 0);
    json_decref(j);
    j = tu_call(s.port, "GET", "/v1/namespaces/default", NULL, 200);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "usage"), "entries")),
                     4);
    json_decref(j);
    j = post(s.port, "/v1/lookup", "{\"namespace\":\"capped\",\"model\":\"m\",\"prompt\":\"c4\"}",
             200);
    ck_assert_str_eq(str_field(j, "status"), "hit");
    json_decref(j);
    /* A byte cap smaller than one entry refuses it with 413. */
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/tiny", "{\"max_bytes\":64}", 200));
    tu_resp_t r = tu_http(
        s.port, "POST", "/v1/store",
        "{\"namespace\":\"tiny\",\"model\":\"m\",\"prompt\":\"x\",\"response\":\"an answer\"}");
    ck_assert_int_eq(r.status, 413);
    tu_resp_free(&r);
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/bad", "{\"max_entries\":0}", 400));
    json_decref(tu_call(s.port, "PUT", "/v1/namespaces/bad", "{\"max_bytes\":\"1G\"}", 400));
    assert_healthy(s.port);
    tu_server_destroy(&s);
}
END_TEST

START_TEST(help_lists_every_option)
{
    char cmd[1100];
    snprintf(cmd, sizeof(cmd), "%s --help", tu_bin("semcached"));
    FILE *p = popen(cmd, "r");
    static char out[65536]; /* all of it: a reader that stops early gets SIGPIPE */
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    const char *opts[] = {"--port",
                          "--threads",
                          "--data-dir",
                          "--map-size",
                          "--sync",
                          "--evict",
                          "--max-entries",
                          "--default-ttl-s",
                          "--max-header-bytes",
                          "--max-body-bytes",
                          "--max-connections",
                          "--idle-timeout-ms",
                          "--request-timeout-ms",
                          "--coalesce-wait-ms",
                          "--lease-ms",
                          "SEMCACHED_MAX_BODY_BYTES",
                          "default: 4M"};
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        ck_assert_msg(strstr(out, opts[i]), "--help does not mention %s", opts[i]);
    snprintf(cmd, sizeof(cmd), "%s --port 99999 2>&1", tu_bin("semcached"));
    p = popen(cmd, "r");
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(WEXITSTATUS(pclose(p)), 2);
    ck_assert(strstr(out, "--port"));
}
END_TEST

/* SO_REUSEPORT hashes connections to loops at random; the server hands new
 * connections over so no loop owns two more than another. */
START_TEST(connections_are_balanced_across_loops)
{
    tu_server_t s;
    const char *args[] = {"--threads", "2", NULL};
    tu_server_start(&s, args);
    enum { N = 40 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ck_assert_int_eq(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
        /* One request each, answered, so the connection is accepted and placed. */
        const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        ck_assert_int_eq(write(fds[i], req, strlen(req)), (ssize_t)strlen(req));
        char buf[512];
        ck_assert_int_gt(read(fds[i], buf, sizeof(buf)), 0);
    }
    json_t *j = tu_call(s.port, "GET", "/v1/stats", NULL, 200);
    json_t *loops = json_object_get(j, "connections_by_loop");
    ck_assert_int_eq(json_array_size(loops), 2);
    long a = (long)json_integer_value(json_array_get(loops, 0));
    long b = (long)json_integer_value(json_array_get(loops, 1));
    /* The stats call's own connection is counted too. */
    ck_assert_int_eq(a + b, N + 1);
    ck_assert_msg(labs(a - b) <= 2, "loops own %ld and %ld connections", a, b);
    json_decref(j);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    tu_server_destroy(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *api = tcase_create("api");
    tcase_add_unchecked_fixture(api, srv_up, srv_down);
    tcase_set_timeout(api, 30);
    tcase_add_test(api, store_then_lookup_hits);
    tcase_add_test(api, store_replaces_and_delete_removes);
    tcase_add_test(api, max_age_rejects_older_entries);
    tcase_add_test(api, invalidate_by_namespace_tenant_model);
    tcase_add_test(api, bad_requests_get_problem_json_and_server_keeps_serving);
    tcase_add_test(api, pipelined_requests_answer_in_order);
    tcase_add_test(api, chunked_body_and_expect_continue);
    tcase_add_test(api, slow_request_times_out_with_408);
    tcase_add_test(api, metrics_pass_promtool);
    suite_add_tcase(s, api);
    TCase *life = tcase_create("lifecycle");
    tcase_set_timeout(life, 60);
    tcase_add_test(life, ttl_expiry_and_sweeper);
    tcase_add_test(life, restart_keeps_acknowledged_entries);
    tcase_add_test(life, max_entries_bounds_the_store);
    tcase_add_test(life, namespace_caps_bound_one_namespace);
    tcase_add_test(life, help_lists_every_option);
    tcase_add_test(life, connections_are_balanced_across_loops);
    suite_add_tcase(s, life);
    return tu_run(s);
}
