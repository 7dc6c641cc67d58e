/* tests/integration/proxy.c -- the transparent proxy through the real binary,
 * in front of tests/mock_upstream.py: miss then hit for every API (plain and
 * streamed, and each form served to the other), the cache headers and
 * Cache-Control / X-Semcached-* controls, tenants, upstream errors passed
 * through or answered in each API's shape, pass-through paths and embeddings
 * cached input by input. Streams under stress are in proxy_streams.c.
 * Upstream call counts come from the mock's /stats. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sc_common.h"
#include "testutil.h"

#include "proxy_fixture.h"

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
                ck_assert_int_eq(tu_count(hit.body, "data: "),
                                 tu_count(miss.body, "data: ") - pings);
                ck_assert_int_eq(tu_count(hit.body, "event: "),
                                 tu_count(miss.body, "event: ") - pings);
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
    ck_assert_int_gt(
        json_integer_value(json_object_get(json_object_get(j, "usage"), "completion_tokens")), 0);
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
    s = strdup(
        "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
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
    /* A fixed threshold, --threshold's 0.9 (not GloVe's own default, 0.99):
     * no default error budget (the fixture's). */
    const char *more[] = {"--model", model, "--model-thresholds", "off", NULL};
    server_with(&s, more);
    char *a = chat("How do I reset my password?", 0),
         *near = chat("How can I reset my password?", 0),
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
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "last_headers"), "authorization")),
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
    ck_assert_str_eq(
        json_string_value(json_object_get(json_object_get(j, "last_headers"), "x-api-key")),
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
    resp_t r = post(srv.port, "/v1/chat/completions",
                    KEY_A "X-Mock-Status: 429\r\nX-Mock-Retry-After: 7\r\n", b);
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
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "upstream_unreachable");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                     "server_error");
    json_decref(j);
    resp_free(&r);
    r = post(s.port, "/v1/messages", ANTHROPIC, m);
    ck_assert_int_eq(r.status, 502);
    j = json_loads(r.body, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                     "api_error");
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
    r = post(srv.port, "/v1/messages", ANTHROPIC,
             "{\"model\":\"claude-haiku-4-5\",\"messages\":7}");
    ck_assert_int_eq(r.status, 400);
    ck_assert(strstr(r.body, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\""));
    resp_free(&r);
    ck_assert_int_eq(upstream_calls("/v1/chat/completions"), calls + 1);
}
END_TEST

START_TEST(bodies_over_max_body_are_413_in_each_shape)
{
    tu_server_t s;
    const char *more[] = {"--max-body-bytes", "1024", NULL};
    server_with(&s, more);
    char big[2048];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int calls = upstream_calls("/v1/chat/completions");
    resp_t r = post(s.port, "/v1/chat/completions", KEY_A, big);
    ck_assert_int_eq(r.status, 413);
    ck_assert_msg(strstr(r.body, "{\"error\":{\"message\":\"request body exceeds") &&
                      strstr(r.body, "\"type\":\"invalid_request_error\"") &&
                      strstr(r.body, "\"code\":\"request_too_large\"}}"),
                  "%s", r.body);
    resp_free(&r);
    /* Chunked, so the layer finds out while reading the body. */
    char *req;
    ck_assert_int_gt(asprintf(&req,
                              "POST /v1/messages HTTP/1.1\r\nHost: t\r\n" ANTHROPIC
                              "Transfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n0\r\n\r\n",
                              strlen(big), big),
                     0);
    size_t n;
    char *raw = tu_raw(s.port, req, strlen(req), 0, 10000, &n);
    parse_resp(raw, n, &r);
    ck_assert_int_eq(r.status, 413);
    ck_assert_msg(strstr(r.body, "{\"type\":\"error\",\"error\":{\"type\":\"request_too_large\""),
                  "%s", r.body);
    resp_free(&r);
    free(raw);
    free(req);
    /* The native API keeps its problem+json. */
    r = post(s.port, "/v1/lookup", NULL, big);
    ck_assert_int_eq(r.status, 413);
    ck_assert(strstr(r.body, "urn:semcached:problem:body-too-large"));
    resp_free(&r);
    ck_assert_int_eq(upstream_calls("/v1/chat/completions"), calls);
    tu_server_destroy(&s);
}
END_TEST

/* ---- what is passed through ------------------------------------------------------------ */

START_TEST(responses_with_state_and_other_paths_pass_through)
{
    const char *b =
        "{\"model\":\"gpt-4.1\",\"input\":\"go on\",\"previous_response_id\":\"resp_1\"}";
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
    r = http(srv.port, "GET", "/v1/models",
             KEY_A "OpenAI-Organization: org-1\r\nX-Semcached-TTL: 5\r\n", NULL);
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
    const char *first =
        "{\"model\":\"text-embedding-3-small\",\"input\":[\"red apple\",\"green pear\"]}";
    const char *second = "{\"model\":\"text-embedding-3-small\",\"input\":[\"green pear\",\"blue "
                         "plum\",\"red apple\"],"
                         "\"encoding_format\":\"float\"}";
    int entries = stored_entries(srv.port);
    resp_t a = post(srv.port, "/v1/embeddings", KEY_A, first);
    ck_assert_int_eq(a.status, 200);
    ck_assert_str_eq(hdr(&a, "X-Cache"), "MISS");
    wait_entries(srv.port, entries + 2);
    resp_t b = post(srv.port, "/v1/embeddings", KEY_A, second);
    ck_assert_str_eq(hdr(&b, "X-Semcached-Cached-Inputs"), "2/3");
    json_t *sent = upstream_last_body();
    ck_assert_int_eq((int)json_array_size(json_object_get(sent, "input")), 1);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(sent, "input"), 0)),
                     "blue plum");
    json_decref(sent);
    /* In the client's order: the same vectors a direct call gives. */
    resp_t d = post(mock_port, "/v1/embeddings", KEY_A, second);
    json_t *jb = json_loads(b.body, 0, NULL), *jd = json_loads(d.body, 0, NULL);
    for (int i = 0; i < 3; i++) {
        json_t *x =
            json_object_get(json_array_get(json_object_get(jb, "data"), (size_t)i), "embedding");
        json_t *y =
            json_object_get(json_array_get(json_object_get(jd, "data"), (size_t)i), "embedding");
        ck_assert_int_eq((int)json_array_size(x), 64);
        ck_assert_int_eq((int)json_array_size(y), 64);
        for (size_t k = 0; k < 64; k++)
            ck_assert_msg(json_number_value(json_array_get(x, k)) ==
                              json_number_value(json_array_get(y, k)),
                          "input %d differs at %zu", i, k);
    }
    json_decref(jb);
    json_decref(jd);
    resp_free(&a);
    resp_free(&b);
    resp_free(&d);
    int calls = upstream_calls("/v1/embeddings");
    wait_entries(srv.port, entries + 3);
    a = post(srv.port, "/v1/embeddings", KEY_A, second);
    ck_assert_str_eq(hdr(&a, "X-Cache"), "HIT");
    ck_assert_int_eq(upstream_calls("/v1/embeddings"), calls);
    resp_free(&a);
}
END_TEST

/* ---- clients and upstreams that leave ------------------------------------------------ */

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
    tcase_add_test(tc, bodies_over_max_body_are_413_in_each_shape);
    tcase_add_test(tc, responses_with_state_and_other_paths_pass_through);
    tcase_add_test(tc, embeddings_fetch_only_missing_inputs);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
