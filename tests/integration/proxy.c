/* tests/integration/proxy.c -- the transparent proxy through the real binary,
 * in front of tests/mock_upstream.py: miss then hit for every API (plain and
 * streamed, and each form served to the other), the cache headers and
 * Cache-Control / X-Semcached-* controls, tenants, upstream errors passed
 * through or answered in each API's shape, pass-through paths, embeddings
 * cached input by input, clients and upstreams that leave mid-stream, 200
 * concurrent streams compared event by event with the mock's own, a slow
 * client (flow control), replay pacing, and the native API beside it. Upstream call counts come from the mock's /stats. */
#define _GNU_SOURCE
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sc_common.h"
#include "testutil.h"

static pid_t mock_pid;
static int mock_port;
static tu_server_t srv; /* the main proxy: exact-only, tenant by key */

#include "proxy_helpers.h"

static void srv_up(void)
{
    mock_pid = tu_mock_start("--port 0", &mock_port);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", mock_port);
    const char *args[] = {"--openai-base-url", base, "--anthropic-base-url", base, "--threads", "2", NULL};
    tu_server_start(&srv, args);
}

static void srv_down(void)
{
    tu_server_destroy(&srv);
    tu_mock_stop(mock_pid);
}

/* A second server in front of the same mock, with more options. */
static void server_with(tu_server_t *s, const char *const *more)
{
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", mock_port);
    const char *args[32] = {"--openai-base-url", base, "--anthropic-base-url", base, "--threads", "1"};
    int n = 6;
    for (int i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    tu_server_start(s, args);
}

/* ---- miss, then hit ------------------------------------------------------------- */

/* Asks 'body' at 'path' twice: a miss (one upstream call), then a hit (none). */
static void miss_then_hit(const char *path, const char *headers, const char *body, resp_t *miss,
                          resp_t *hit)
{
    int calls = upstream_calls(path);
    *miss = post(srv.port, path, headers, body);
    ck_assert_msg(miss->status == 200, "%s -> %d: %s", path, miss->status, miss->body);
    ck_assert_str_eq(hdr(miss, "X-Cache"), "MISS");
    ck_assert_int_eq((int)strlen(hdr(miss, "X-Semcached-Key")), 32);
    ck_assert_str_eq(hdr(miss, "Age"), "");
    ck_assert_int_eq(upstream_calls(path), calls + 1);
    *hit = post(srv.port, path, headers, body); /* at once: the miss ended at its commit */
    ck_assert_int_eq(hit->status, 200);
    ck_assert_str_eq(hdr(hit, "X-Cache"), "HIT");
    ck_assert_str_eq(hdr(hit, "X-Semcached-Match"), "exact");
    ck_assert_str_eq(hdr(hit, "X-Semcached-Key"), hdr(miss, "X-Semcached-Key"));
    ck_assert(strcmp(hdr(hit, "Age"), "0") == 0 || strcmp(hdr(hit, "Age"), "1") == 0);
    ck_assert_int_eq(upstream_calls(path), calls + 1);
}

START_TEST(each_api_misses_then_hits_plain_and_streamed)
{
    const char *paths[] = {"/v1/chat/completions", "/v1/messages", "/v1/responses"};
    const char *headers[] = {KEY_A, ANTHROPIC, KEY_A};
    char *(*make[])(const char *, int) = {chat, message, responses};
    for (int api = 0; api < 3; api++) {
        for (int stream = 0; stream < 2; stream++) {
            char q[64];
            snprintf(q, sizeof(q), "miss then hit %d %d", api, stream);
            char *body = make[api](q, stream);
            resp_t miss, hit;
            miss_then_hit(paths[api], headers[api], body, &miss, &hit);
            if (!stream) { /* the stored answer, byte for byte */
                ck_assert_str_eq(hdr(&hit, "Content-Type"), "application/json");
                ck_assert_str_eq(hit.body, miss.body);
            } else { /* the same events, with a fresh id */
                ck_assert(strncmp(hdr(&hit, "Content-Type"), "text/event-stream", 17) == 0);
                /* Anthropic's keep-alive pings are not part of the answer. */
                int pings = tu_count(miss.body, "event: ping");
                ck_assert_int_eq(tu_count(hit.body, "data: "), tu_count(miss.body, "data: ") - pings);
                ck_assert_int_eq(tu_count(hit.body, "event: "), tu_count(miss.body, "event: ") - pings);
                ck_assert(strcmp(hit.body, miss.body) != 0);
                ck_assert(miss.complete && hit.complete);
            }
            if (api == 0) {
                char a[128], b[128];
                chat_text(miss.body, stream, a, sizeof(a));
                chat_text(hit.body, stream, b, sizeof(b));
                ck_assert_str_eq(a, b);
                ck_assert(strncmp(a, "answer-", 7) == 0);
            }
            resp_free(&miss);
            resp_free(&hit);
            free(body);
        }
    }
}
END_TEST

START_TEST(a_stream_serves_a_plain_request_and_the_reverse)
{
    char *s = chat("stream first", 1), *p = chat("stream first", 0);
    int calls = upstream_calls("/v1/chat/completions");
    resp_t a = post(srv.port, "/v1/chat/completions", KEY_A, s);
    ck_assert_str_eq(hdr(&a, "X-Cache"), "MISS");
    wait_stored(srv.port, &a);
    resp_t b = post(srv.port, "/v1/chat/completions", KEY_A, p);
    ck_assert_str_eq(hdr(&b, "X-Cache"), "HIT");
    char ta[128], tb[128];
    chat_text(a.body, 1, ta, sizeof(ta));
    chat_text(b.body, 0, tb, sizeof(tb));
    ck_assert_str_eq(ta, tb);
    json_t *j = json_loads(b.body, 0, NULL); /* the assembled completion, usage included */
    ck_assert_str_eq(json_string_value(json_object_get(j, "object")), "chat.completion");
    ck_assert_int_gt(json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 0);
    json_decref(j);
    /* The client did not ask for usage: its stream has no usage chunk. */
    ck_assert_ptr_null(strstr(a.body, "\"choices\":[]"));
    resp_free(&a);
    resp_free(&b);
    free(s);
    free(p);
    s = chat("plain first", 1);
    p = chat("plain first", 0);
    a = post(srv.port, "/v1/chat/completions", KEY_A, p);
    wait_stored(srv.port, &a);
    b = post(srv.port, "/v1/chat/completions", KEY_A, s);
    ck_assert_str_eq(hdr(&b, "X-Cache"), "HIT");
    chat_text(a.body, 0, ta, sizeof(ta));
    chat_text(b.body, 1, tb, sizeof(tb));
    ck_assert_str_eq(ta, tb);
    ck_assert(strstr(b.body, "data: [DONE]"));
    ck_assert_int_eq(upstream_calls("/v1/chat/completions"), calls + 2);
    resp_free(&a);
    resp_free(&b);
    free(s);
    free(p);
    /* A streamed hit asking for usage gets the stored usage as its last chunk. */
    s = strdup("{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
               "\"messages\":[{\"role\":\"user\",\"content\":\"stream first\"}]}");
    a = post(srv.port, "/v1/chat/completions", KEY_A, s);
    ck_assert_str_eq(hdr(&a, "X-Cache"), "HIT");
    ck_assert(strstr(a.body, "\"choices\":[],\"usage\":{"));
    resp_free(&a);
    free(s);
}
END_TEST

/* ---- controls -------------------------------------------------------------------- */

START_TEST(cache_control_ttl_and_max_age)
{
    char *b = chat("controls", 0);
    int calls = upstream_calls("/v1/chat/completions");
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A "Cache-Control: no-store\r\n", b);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "BYPASS");
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_A "Cache-Control: no-cache\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "BYPASS");
    char fresh[4096];
    snprintf(fresh, sizeof(fresh), "%s", r.body);
    wait_stored(srv.port, &r);
    resp_free(&r);
    ck_assert_int_eq(upstream_calls("/v1/chat/completions"), calls + 2);
    /* no-store stored nothing, no-cache stored its fresh answer. */
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert_str_eq(r.body, fresh);
    resp_free(&r);
    /* max-age: an entry older than it is not served (and is replaced). */
    usleep(2000); /* older than 0 s */
    r = post(srv.port, "/v1/chat/completions", KEY_A "Cache-Control: max-age=0\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    wait_stored(srv.port, &r);
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_A "Cache-Control: max-age=60\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    resp_free(&r);
    free(b);
    /* X-Semcached-TTL: gone after a second. */
    b = chat("short lived", 0);
    r = post(srv.port, "/v1/chat/completions", KEY_A "X-Semcached-TTL: 1\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    wait_stored(srv.port, &r);
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    resp_free(&r);
    usleep(1100 * 1000);
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    /* A bad control is the API's 400, before any upstream call. */
    calls = upstream_calls("/v1/chat/completions");
    r = post(srv.port, "/v1/chat/completions", KEY_A "X-Semcached-TTL: soon\r\n", b);
    ck_assert_int_eq(r.status, 400);
    ck_assert(strstr(r.body, "\"error\":{\"message\":"));
    ck_assert_int_eq(upstream_calls("/v1/chat/completions"), calls);
    resp_free(&r);
    free(b);
}
END_TEST

START_TEST(threshold_can_only_be_raised)
{
    char model[512];
    snprintf(model, sizeof(model), "%s/glove-100d.scglove",
             getenv("SEMCACHED_MODEL_CACHE") ? getenv("SEMCACHED_MODEL_CACHE") : "/nonexistent");
    if (access(model, R_OK) != 0) {
        tu_skip("the semantic proxy test needs the default model (make model)");
        return;
    }
    tu_server_t s;
    const char *more[] = {"--model", model, NULL};
    server_with(&s, more);
    char *a = chat("How do I reset my password?", 0), *near = chat("How can I reset my password?", 0),
         *far = chat("What is the weather in Paris?", 0);
    resp_t r = post(s.port, "/v1/chat/completions", KEY_A, a);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    wait_stored(s.port, &r);
    resp_free(&r);
    /* The namespace's 0.9 serves the paraphrase (0.99); 0.999 does not. */
    r = post(s.port, "/v1/chat/completions", KEY_A "X-Semcached-Threshold: 0.999\r\n", near);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    r = post(s.port, "/v1/chat/completions", KEY_A "Cache-Control: no-store\r\n", far);
    resp_free(&r);
    r = post(s.port, "/v1/chat/completions", KEY_A "X-Semcached-Threshold: 0.1\r\n", far);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS"); /* 0.48 < 0.9: lowering is ignored */
    resp_free(&r);
    free(far);
    far = chat("How can I reset my password, please?", 0);
    r = post(s.port, "/v1/chat/completions", KEY_A, far);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert_str_eq(hdr(&r, "X-Semcached-Match"), "semantic");
    ck_assert(atof(hdr(&r, "X-Semcached-Similarity")) >= 0.9);
    resp_free(&r);
    tu_server_destroy(&s);
    free(a);
    free(near);
    free(far);
}
END_TEST

/* ---- tenants --------------------------------------------------------------------- */

START_TEST(two_keys_never_share_an_entry)
{
    char *b = chat("whose entry", 0);
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    wait_stored(srv.port, &r);
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_B, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", "x-api-key: sk-alpha\r\n", b); /* the same key */
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    resp_free(&r);
    free(b);
    /* header mode: X-Semcached-Tenant decides, whatever the key. */
    tu_server_t s;
    const char *header_mode[] = {"--proxy-tenant", "header", NULL};
    server_with(&s, header_mode);
    b = chat("tenant by header", 0);
    r = post(s.port, "/v1/chat/completions", KEY_A "X-Semcached-Tenant: t1\r\n", b);
    wait_stored(s.port, &r);
    resp_free(&r);
    r = post(s.port, "/v1/chat/completions", KEY_B "X-Semcached-Tenant: t1\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    resp_free(&r);
    r = post(s.port, "/v1/chat/completions", KEY_A "X-Semcached-Tenant: t2\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    tu_server_destroy(&s);
    /* none: every key shares; and --auth-token wants X-Semcached-Token. */
    const char *none_mode[] = {"--proxy-tenant", "none", "--auth-token", "tok", NULL};
    server_with(&s, none_mode);
    r = post(s.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_int_eq(r.status, 401);
    ck_assert(strstr(r.body, "\"code\":\"invalid_semcached_token\""));
    resp_free(&r);
    r = post(s.port, "/v1/messages", ANTHROPIC "X-Semcached-Token: nope\r\n", b);
    ck_assert_int_eq(r.status, 401);
    ck_assert(strstr(r.body, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\""));
    resp_free(&r);
    r = post(s.port, "/v1/chat/completions", KEY_A "X-Semcached-Token: tok\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    wait_stored_token(s.port, &r, "tok");
    resp_free(&r);
    r = post(s.port, "/v1/chat/completions", KEY_B "X-Semcached-Token: Bearer tok\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    resp_free(&r);
    tu_server_destroy(&s);
    free(b);
}
END_TEST

START_TEST(a_configured_key_fills_in_for_clients_without_one)
{
    setenv("SC_PROXY_TEST_KEY", "sk-from-env", 1); /* the server inherits it */
    tu_server_t s;
    const char *more[] = {"--openai-key-env", "SC_PROXY_TEST_KEY", "--anthropic-key-env",
                          "SC_PROXY_TEST_KEY", NULL};
    server_with(&s, more);
    unsetenv("SC_PROXY_TEST_KEY");
    resp_t r = http(s.port, "GET", "/v1/models", NULL, NULL);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    r = http(mock_port, "GET", "/stats", NULL, NULL);
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "last_headers"), "authorization")),
                     "Bearer sk-from-env");
    json_decref(j);
    resp_free(&r);
    char *m = message("a keyless client", 0);
    r = post(s.port, "/v1/messages", "anthropic-version: 2023-06-01\r\n", m);
    ck_assert_int_eq(r.status, 200); /* the mock refuses a request without a key */
    resp_free(&r);
    /* The keyless client's tenant is the configured key's: not a client with its own key. */
    r = post(s.port, "/v1/messages", ANTHROPIC, m);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    r = http(mock_port, "GET", "/stats", NULL, NULL);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "last_headers"), "x-api-key")),
                     "sk-alpha"); /* the client's own key goes upstream */
    json_decref(j);
    resp_free(&r);
    free(m);
    tu_server_destroy(&s);
}
END_TEST

/* ---- errors ------------------------------------------------------------------------ */

START_TEST(upstream_errors_pass_through_uncached)
{
    char *b = chat("rate limited", 0);
    int calls = upstream_calls("/v1/chat/completions");
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A "X-Mock-Status: 429\r\nX-Mock-Retry-After: 7\r\n", b);
    ck_assert_int_eq(r.status, 429);
    ck_assert_str_eq(hdr(&r, "retry-after"), "7");
    ck_assert_int_eq((int)strlen(hdr(&r, "x-request-id")), 28);
    ck_assert(strstr(r.body, "\"code\":\"rate_limit_exceeded\""));
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_A, b); /* the 429 was not stored */
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    ck_assert_int_eq(upstream_calls("/v1/chat/completions"), calls + 2);
    free(b);
    /* Streamed too, and in Anthropic's shape. */
    b = message("overloaded", 1);
    r = post(srv.port, "/v1/messages", ANTHROPIC "X-Mock-Status: 529\r\n", b);
    ck_assert_int_eq(r.status, 529);
    ck_assert(strstr(r.body, "\"type\":\"error\""));
    resp_free(&r);
    r = post(srv.port, "/v1/messages", ANTHROPIC, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    free(b);
}
END_TEST

START_TEST(upstream_down_or_hanging_is_502_or_504_in_each_shape)
{
    tu_server_t s;
    const char *down[] = {"--openai-base-url", "http://127.0.0.1:1/v1", "--anthropic-base-url",
                          "http://127.0.0.1:1/v1", NULL};
    tu_server_start(&s, down);
    char *c = chat("anyone there", 1), *m = message("anyone there", 0);
    resp_t r = post(s.port, "/v1/chat/completions", KEY_A, c);
    ck_assert_int_eq(r.status, 502);
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")), "upstream_unreachable");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")), "server_error");
    json_decref(j);
    resp_free(&r);
    r = post(s.port, "/v1/messages", ANTHROPIC, m);
    ck_assert_int_eq(r.status, 502);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")), "api_error");
    json_decref(j);
    resp_free(&r);
    tu_server_destroy(&s);
    const char *slow[] = {"--proxy-timeout-ms", "400", NULL};
    server_with(&s, slow);
    r = post(s.port, "/v1/chat/completions", KEY_A "X-Mock-Hang: 1\r\n", c);
    ck_assert_int_eq(r.status, 504);
    ck_assert(strstr(r.body, "\"code\":\"upstream_timeout\""));
    resp_free(&r);
    r = post(s.port, "/v1/messages", ANTHROPIC "X-Mock-Hang: 1\r\n", m);
    ck_assert_int_eq(r.status, 504);
    ck_assert(strstr(r.body, "{\"type\":\"error\",\"error\":{\"type\":\"api_error\""));
    resp_free(&r);
    tu_server_destroy(&s);
    free(c);
    free(m);
}
END_TEST

START_TEST(malformed_bodies)
{
    int calls = upstream_calls("/v1/chat/completions");
    /* Not JSON: the upstream's business (its own 400). */
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A, "{not json");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "BYPASS");
    ck_assert(strstr(r.body, "could not parse the JSON body"));
    resp_free(&r);
    ck_assert_int_eq(upstream_calls("/v1/chat/completions"), calls + 1);
    /* JSON, but not a request of the API: our 400, in its shape. */
    r = post(srv.port, "/v1/chat/completions", KEY_A, "{\"model\":\"gpt-4o-mini\"}");
    ck_assert_int_eq(r.status, 400);
    ck_assert(strstr(r.body, "{\"error\":{\"message\":"));
    ck_assert(strstr(r.body, "\"type\":\"invalid_request_error\""));
    resp_free(&r);
    r = post(srv.port, "/v1/messages", ANTHROPIC, "{\"model\":\"claude-haiku-4-5\",\"messages\":7}");
    ck_assert_int_eq(r.status, 400);
    ck_assert(strstr(r.body, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\""));
    resp_free(&r);
    ck_assert_int_eq(upstream_calls("/v1/chat/completions"), calls + 1);
}
END_TEST

/* ---- what is passed through ------------------------------------------------------------ */

START_TEST(responses_with_state_and_other_paths_pass_through)
{
    const char *b = "{\"model\":\"gpt-4.1\",\"input\":\"go on\",\"previous_response_id\":\"resp_1\"}";
    int calls = upstream_calls("/v1/responses");
    for (int i = 0; i < 2; i++) {
        resp_t r = post(srv.port, "/v1/responses", KEY_A, b);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(hdr(&r, "X-Cache"), "BYPASS");
        resp_free(&r);
    }
    ck_assert_int_eq(upstream_calls("/v1/responses"), calls + 2);
    /* A hit echoes this request's metadata, not the one stored with it. */
    resp_t r = post(srv.port, "/v1/responses", KEY_A,
                    "{\"model\":\"gpt-4.1\",\"input\":\"echo\",\"metadata\":{\"who\":\"first\"}}");
    ck_assert(strstr(r.body, "\"metadata\":{\"who\":\"first\"}"));
    wait_stored(srv.port, &r);
    resp_free(&r);
    r = post(srv.port, "/v1/responses", KEY_A,
             "{\"model\":\"gpt-4.1\",\"input\":\"echo\",\"metadata\":{\"who\":\"second\"}}");
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert(strstr(r.body, "\"metadata\":{\"who\":\"second\"}"));
    resp_free(&r);
    r = post(srv.port, "/v1/responses", KEY_A, "{\"model\":\"gpt-4.1\",\"input\":\"echo\"}");
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert(strstr(r.body, "\"metadata\":{}"));
    resp_free(&r);
    calls = upstream_calls("/v1/models");
    r = http(srv.port, "GET", "/v1/models", KEY_A, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strstr(r.body, "\"gpt-4o-mini\""));
    resp_free(&r);
    r = http(srv.port, "GET", "/v1/models/gpt-4.1?x=1", KEY_A, NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert(strstr(r.body, "\"id\":\"gpt-4.1\""));
    resp_free(&r);
    ck_assert_int_eq(upstream_calls("/v1/models"), calls + 1);
    /* The client's headers reach the upstream, semcached's do not. */
    json_t *j;
    r = http(srv.port, "GET", "/v1/models", KEY_A "OpenAI-Organization: org-1\r\nX-Semcached-TTL: 5\r\n", NULL);
    resp_free(&r);
    r = http(mock_port, "GET", "/stats", NULL, NULL);
    j = json_loads(r.body, 0, NULL);
    json_t *h = json_object_get(j, "last_headers");
    ck_assert_str_eq(json_string_value(json_object_get(h, "openai-organization")), "org-1");
    ck_assert_str_eq(json_string_value(json_object_get(h, "authorization")), "Bearer sk-alpha");
    ck_assert_ptr_null(json_object_get(h, "x-semcached-ttl"));
    json_decref(j);
    resp_free(&r);
}
END_TEST

START_TEST(embeddings_fetch_only_missing_inputs)
{
    const char *first = "{\"model\":\"text-embedding-3-small\",\"input\":[\"red apple\",\"green pear\"]}";
    const char *second = "{\"model\":\"text-embedding-3-small\",\"input\":[\"green pear\",\"blue plum\",\"red apple\"],"
                         "\"encoding_format\":\"float\"}";
    int entries = stored_entries(srv.port);
    resp_t a = post(srv.port, "/v1/embeddings", KEY_A, first);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(hdr(&a, "X-Cache"), "MISS");
    for (int i = 0; i < 400 && stored_entries(srv.port) < entries + 2; i++)
        usleep(5000);
    resp_t b = post(srv.port, "/v1/embeddings", KEY_A, second);
    ck_assert_str_eq(hdr(&b, "X-Semcached-Cached-Inputs"), "2/3");
    json_t *sent = upstream_last_body();
    ck_assert_int_eq((int)json_array_size(json_object_get(sent, "input")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(sent, "input"), 0)), "blue plum");
    json_decref(sent);
    /* In the client's order: the same vectors a direct call gives. */
    resp_t d = post(mock_port, "/v1/embeddings", KEY_A, second);
    json_t *jb = json_loads(b.body, 0, NULL), *jd = json_loads(d.body, 0, NULL);
    for (int i = 0; i < 3; i++) {
        json_t *x = json_object_get(json_array_get(json_object_get(jb, "data"), (size_t)i), "embedding");
        json_t *y = json_object_get(json_array_get(json_object_get(jd, "data"), (size_t)i), "embedding");
        ck_assert_int_eq((int)json_array_size(x), 64);
        ck_assert_int_eq((int)json_array_size(y), 64);
        for (size_t k = 0; k < 64; k++)
            ck_assert_msg(json_number_value(json_array_get(x, k)) == json_number_value(json_array_get(y, k)),
                          "input %d differs at %zu", i, k);
    }
    json_decref(jb);
    json_decref(jd);
    resp_free(&a);
    resp_free(&b);
    resp_free(&d);
    int calls = upstream_calls("/v1/embeddings");
    for (int i = 0; i < 400 && stored_entries(srv.port) < entries + 3; i++)
        usleep(5000);
    a = post(srv.port, "/v1/embeddings", KEY_A, second);
    ck_assert_str_eq(hdr(&a, "X-Cache"), "HIT");
    ck_assert_int_eq(upstream_calls("/v1/embeddings"), calls);
    resp_free(&a);
}
END_TEST

/* ---- clients and upstreams that leave ------------------------------------------------ */

START_TEST(a_client_leaving_mid_stream_does_not_stop_the_recording)
{
    char *b = chat("I will not wait", 1);
    char *req = request_text("POST", "/v1/chat/completions",
                             KEY_A "X-Mock-Chunks: 6\r\nX-Mock-Chunk-Delay-Ms: 100\r\n", b);
    int fd = tu_connect(srv.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(tu_send_all(fd, req, strlen(req)), 0);
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0); /* the head and the first event */
    ck_assert_int_gt((int)n, 0);
    buf[n] = '\0';
    ck_assert(strstr(buf, "X-Cache: MISS"));
    close(fd);
    resp_t head;
    parse_resp(buf, (size_t)n, &head); /* the upstream finishes about 0.8 s after its first event */
    wait_stored(srv.port, &head);
    resp_free(&head);
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert_int_eq(tu_count(r.body, "data: "), 9); /* role, 6 pieces, finish, [DONE] */
    resp_free(&r);
    free(req);
    free(b);
}
END_TEST

START_TEST(an_upstream_dying_mid_stream_cuts_the_client_and_stores_nothing)
{
    char *b = chat("the upstream dies", 1);
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A "X-Mock-Fail-After-Chunks: 3\r\n", b);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.complete, 0); /* no last chunk: the client sees the cut */
    ck_assert_int_eq(tu_count(r.body, "data: "), 3);
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    ck_assert(r.complete);
    resp_free(&r);
    free(b);
    /* A JSON answer cut half-way: the client's body is cut too. */
    b = chat("the upstream dies again", 0);
    r = post(srv.port, "/v1/chat/completions", KEY_A "X-Mock-Fail-After-Chunks: 0\r\n", b);
    ck_assert(!r.complete || r.status >= 500);
    resp_free(&r);
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    free(b);
}
END_TEST

/* The chunks' content deltas and finish reasons, one line each: what two
 * streams of the same answer share (ids and times differ). */
static char *stream_shape(const char *body)
{
    char *out = strdup("");
    for (const char *p = strstr(body, "data: "); p; p = strstr(p + 6, "data: ")) {
        const char *e = strstr(p, "\n");
        size_t len = e ? (size_t)(e - p - 6) : strlen(p + 6);
        json_t *j = json_loadb(p + 6, len, 0, NULL);
        json_t *c = json_array_get(json_object_get(j, "choices"), 0);
        const char *t = json_string_value(json_object_get(json_object_get(c, "delta"), "content"));
        const char *f = json_string_value(json_object_get(c, "finish_reason"));
        char *more;
        ck_assert_int_gt(asprintf(&more, "%s%s|%s|%s\n", out, j ? "" : "raw", t ? t : "-", f ? f : "-"), 0);
        free(out);
        out = more;
        json_decref(j);
    }
    return out;
}

typedef struct {
    int port, i;
    resp_t r;
} conc_t;

static void *one_stream(void *arg)
{
    conc_t *c = arg;
    char q[64];
    snprintf(q, sizeof(q), "concurrent question number %d", c->i);
    char *b = chat(q, 1);
    c->r = post(c->port, "/v1/chat/completions", KEY_A "X-Mock-Chunks: 8\r\n", b);
    free(b);
    return NULL;
}

START_TEST(two_hundred_concurrent_streams_lose_and_reorder_nothing)
{
    enum { N = 200 };
    static conc_t c[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        c[i] = (conc_t){.port = srv.port, .i = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, one_stream, &c[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(c[i].r.status == 200 && c[i].r.complete, "stream %d: %d", i, c[i].r.status);
        ck_assert_str_eq(hdr(&c[i].r, "X-Cache"), "MISS");
        char q[64];
        snprintf(q, sizeof(q), "concurrent question number %d", i);
        char *b = chat(q, 1);
        resp_t d = post(mock_port, "/v1/chat/completions", KEY_A "X-Mock-Chunks: 8\r\n", b);
        char *got = stream_shape(c[i].r.body), *want = stream_shape(d.body);
        ck_assert_str_eq(got, want);
        ck_assert_int_eq(tu_count(got, "\n"), 11); /* role, 8 pieces, finish, [DONE] */
        free(got);
        free(want);
        free(b);
        resp_free(&d);
        resp_free(&c[i].r);
    }
}
END_TEST

START_TEST(a_slow_client_pauses_the_upstream_and_loses_nothing)
{
    tu_server_t s;
    const char *more[] = {"--proxy-buffer-high", "4096", "--proxy-buffer-low", "1024", NULL};
    server_with(&s, more);
    char *b = chat("a long answer for a slow reader", 1);
    /* About 5 MB of events: more than the sockets between us hold. */
    char *req = request_text("POST", "/v1/chat/completions",
                             KEY_A "X-Mock-Chunks: 20000\r\nX-Mock-Answer-Repeat: 10000\r\n", b);
    /* A modest receive window (set before connecting), and no reading for a
     * while: the sockets fill and the proxy's output backs up. */
    int fd = socket(AF_INET, SOCK_STREAM, 0), window = 65536;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &window, sizeof(window));
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(tu_send_all(fd, req, strlen(req)), 0);
    usleep(800 * 1000);
    size_t cap = 1 << 20, len = 0;
    char *raw = malloc(cap);
    for (;;) {
        if (len + 65536 > cap)
            raw = realloc(raw, cap *= 2);
        ssize_t n = recv(fd, raw + len, 65536, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    resp_t r;
    parse_resp(raw, len, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert(r.complete);
    ck_assert_int_eq(tu_count(r.body, "data: "), 20003); /* role, 20000 pieces, finish, [DONE] */
    static char text[300000];
    chat_text(r.body, 1, text, sizeof(text));
    ck_assert_int_eq((int)strlen(text), 10000 * 24 - 1); /* every piece, in order */
    for (int i = 0; i < 10000; i++)
        ck_assert(strncmp(text + i * 24, text, 23) == 0);
    resp_free(&r);
    r = http(s.port, "GET", "/metrics", NULL, NULL);
    const char *pauses = strstr(r.body, "\nsemcached_proxy_upstream_pauses_total ");
    ck_assert_ptr_nonnull(pauses);
    ck_assert_int_gt(atoi(pauses + 39), 0);
    resp_free(&r);
    free(raw);
    free(req);
    free(b);
    tu_server_destroy(&s);
}
END_TEST

START_TEST(a_streamed_hit_replays_at_the_recorded_pace_when_asked)
{
    tu_server_t s;
    const char *more[] = {"--stream-replay-pace", "original", NULL};
    server_with(&s, more);
    char *b = chat("slowly, please", 1);
    resp_t r = post(s.port, "/v1/chat/completions", KEY_A "X-Mock-Chunk-Delay-Ms: 60\r\n", b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    uint64_t t0 = sc_mono_ns();
    r = post(s.port, "/v1/chat/completions", KEY_A, b);
    double ms = (double)(sc_mono_ns() - t0) / 1e6;
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert(r.complete);
    ck_assert_int_eq(tu_count(r.body, "data: "), 7); /* role, 4 pieces, finish, [DONE] */
    /* 6 gaps of 60 ms were recorded: the replay takes them again. */
    ck_assert_msg(ms >= 300, "the paced replay took %.0f ms", ms);
    resp_free(&r);
    tu_server_destroy(&s);
    /* The default replays at once. */
    t0 = sc_mono_ns();
    r = post(srv.port, "/v1/chat/completions", KEY_A "X-Mock-Chunk-Delay-Ms: 60\r\n", b);
    resp_free(&r);
    t0 = sc_mono_ns();
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "HIT");
    ck_assert_msg((double)(sc_mono_ns() - t0) / 1e6 < 300, "an unpaced replay took long");
    resp_free(&r);
    free(b);
}
END_TEST

/* ---- beside the native API ------------------------------------------------------------ */

START_TEST(proxied_entries_are_ordinary_entries)
{
    char *b = chat("visible natively", 0);
    resp_t r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    wait_stored(srv.port, &r);
    char key[40], path[80];
    snprintf(key, sizeof(key), "%s", hdr(&r, "X-Semcached-Key"));
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/entries/%s", key);
    json_t *e = tu_call(srv.port, "GET", path, NULL, 200);
    ck_assert_str_eq(tu_str(e, "namespace"), "default");
    ck_assert_int_eq((int)strlen(tu_str(e, "tenant")), 64); /* a keyed hash, never the key */
    ck_assert_str_eq(tu_str(e, "model"), "gpt-4o-mini");
    json_t *resp = json_object_get(e, "response");
    ck_assert_str_eq(json_string_value(json_object_get(resp, "api")), "chat");
    json_decref(e);
    /* The native lookup and store work as before, beside the proxy. */
    json_decref(tu_call(srv.port, "POST", "/v1/store",
                        "{\"model\":\"m\",\"prompt\":\"native\",\"response\":\"yes\"}", 201));
    e = tu_call(srv.port, "POST", "/v1/lookup", "{\"model\":\"m\",\"prompt\":\"native\"}", 200);
    ck_assert_str_eq(tu_str(e, "status"), "hit");
    json_decref(e);
    e = tu_call(srv.port, "POST", "/v1/lookup", "{\"model\":\"gpt-4o-mini\",\"prompt\":\"visible natively\"}", 200);
    ck_assert_str_eq(tu_str(e, "status"), "miss"); /* another API: never the proxy's entry */
    json_decref(e);
    /* /v1/invalidate sees proxied entries. */
    json_decref(tu_call(srv.port, "POST", "/v1/invalidate", "{\"model\":\"gpt-4o-mini\"}", 200));
    r = post(srv.port, "/v1/chat/completions", KEY_A, b);
    ck_assert_str_eq(hdr(&r, "X-Cache"), "MISS");
    resp_free(&r);
    free(b);
    /* And the metrics count it all. */
    r = http(srv.port, "GET", "/metrics", NULL, NULL);
    ck_assert(strstr(r.body, "semcached_proxy_requests_total{api=\"chat\",result=\"miss\"}"));
    ck_assert(!strstr(r.body, "semcached_proxy_requests_total{api=\"chat\",result=\"hit\"} 0\n"));
    ck_assert(strstr(r.body, "semcached_proxy_upstream_first_byte_seconds_count{api=\"chat\"}"));
    ck_assert(strstr(r.body, "semcached_requests_total{endpoint=\"chat_completions\",code=\"200\"}"));
    ck_assert(strstr(r.body, "semcached_proxy_fallbacks_total{reason=\"store_full\"} 0"));
    /* Hits count the usage stored with their entries as tokens saved. */
    const char *saved = strstr(r.body, "semcached_tokens_saved_total{namespace=\"default\",model=\"gpt-4o-mini\",kind=\"completion\"} ");
    ck_assert_ptr_nonnull(saved);
    ck_assert_int_gt(atoi(strchr(saved, '}') + 2), 0);
    resp_free(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxy");
    tcase_add_unchecked_fixture(tc, srv_up, srv_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, each_api_misses_then_hits_plain_and_streamed);
    tcase_add_test(tc, a_stream_serves_a_plain_request_and_the_reverse);
    tcase_add_test(tc, cache_control_ttl_and_max_age);
    tcase_add_test(tc, threshold_can_only_be_raised);
    tcase_add_test(tc, two_keys_never_share_an_entry);
    tcase_add_test(tc, a_configured_key_fills_in_for_clients_without_one);
    tcase_add_test(tc, upstream_errors_pass_through_uncached);
    tcase_add_test(tc, upstream_down_or_hanging_is_502_or_504_in_each_shape);
    tcase_add_test(tc, malformed_bodies);
    tcase_add_test(tc, responses_with_state_and_other_paths_pass_through);
    tcase_add_test(tc, embeddings_fetch_only_missing_inputs);
    tcase_add_test(tc, a_client_leaving_mid_stream_does_not_stop_the_recording);
    tcase_add_test(tc, an_upstream_dying_mid_stream_cuts_the_client_and_stores_nothing);
    tcase_add_test(tc, two_hundred_concurrent_streams_lose_and_reorder_nothing);
    tcase_add_test(tc, a_slow_client_pauses_the_upstream_and_loses_nothing);
    tcase_add_test(tc, a_streamed_hit_replays_at_the_recorded_pace_when_asked);
    tcase_add_test(tc, proxied_entries_are_ordinary_entries);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
