/* tests/server/router.c -- the route table and the router (server/
 * api_router.c): every row's path, methods, admin flag and metrics label;
 * 404 and 405 (with its Allow list) from the same table; token checks for
 * user, admin, public and metrics rows; the proxy's rows and its catch-all
 * pass-through, with the token in X-Semcached-Token; and the router end to
 * end on a connection with no socket, whose answers are seen through the
 * metrics it records. */
#include "../../server/api_router.c"

#include "../../server/proxy_internal.h"
#include "http_internal.h"
#include "testutil.h"

#define S(lit) ((sc_slice_t){lit, sizeof(lit) - 1})

/* What the table must say, row by row (the API's contract). */
static const struct {
    const char *path;
    int method;
    int admin;
    sc_endpoint_t label;
    int proxy;
} expected[] = {
    {"/v1/lookup", HTTP_POST, 0, SC_EP_LOOKUP},
    {"/v1/store", HTTP_POST, 0, SC_EP_STORE},
    {"/v1/entries/0123456789abcdef0123456789abcdef", HTTP_GET, 0, SC_EP_ENTRIES},
    {"/v1/entries/0123456789abcdef0123456789abcdef", HTTP_DELETE, 0, SC_EP_ENTRIES},
    {"/v1/namespaces/ns", HTTP_GET, 0, SC_EP_NAMESPACES},
    {"/v1/namespaces/ns", HTTP_PUT, 1, SC_EP_NAMESPACES},
    {"/v1/namespaces/ns", HTTP_DELETE, 1, SC_EP_NAMESPACES},
    {"/v1/invalidate", HTTP_POST, 1, SC_EP_INVALIDATE},
    {"/v1/feedback", HTTP_POST, 0, SC_EP_FEEDBACK},
    {"/v1/validations", HTTP_GET, 0, SC_EP_FEEDBACK},
    {"/v1/stats", HTTP_GET, 0, SC_EP_STATS},
    {"/healthz", HTTP_GET, 0, SC_EP_HEALTHZ},
    {"/healthz", HTTP_HEAD, 0, SC_EP_HEALTHZ},
    {"/readyz", HTTP_GET, 0, SC_EP_READYZ},
    {"/readyz", HTTP_HEAD, 0, SC_EP_READYZ},
    {"/metrics", HTTP_GET, 0, SC_EP_METRICS},
    {"/ui", HTTP_GET, 0, SC_EP_UI},
    {"/v1/fleet/snapshot", HTTP_GET, 1, SC_EP_FLEET},
    {"/v1/fleet/checksum", HTTP_GET, 1, SC_EP_FLEET},
    {"/v1/chat/completions", HTTP_POST, 0, SC_EP_CHAT, 1},
    {"/v1/chat/completions", HTTP_GET, 0, SC_EP_PROXY, 1},
    {"/v1/messages", HTTP_POST, 0, SC_EP_MESSAGES, 1},
    {"/v1/messages", HTTP_GET, 0, SC_EP_PROXY, 1},
    {"/v1/responses", HTTP_POST, 0, SC_EP_RESPONSES, 1},
    {"/v1/responses", HTTP_DELETE, 0, SC_EP_PROXY, 1},
    {"/v1/embeddings", HTTP_POST, 0, SC_EP_EMBEDDINGS, 1},
    {"/v1/embeddings", HTTP_GET, 0, SC_EP_PROXY, 1},
    {"/v1/models", HTTP_GET, 0, SC_EP_PROXY, 1},
};

START_TEST(every_row_routes_as_the_api_says)
{
    int rows_hit[64] = {0};
    ck_assert_int_le((int)sc_n_routes, 64);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        sc_route_match_t m;
        sc_slice_t p = {expected[i].path, strlen(expected[i].path)};
        ck_assert_int_eq(sc_route_match(sc_routes, sc_n_routes, p, expected[i].method, &m),
                         SC_ROUTE_FOUND);
        ck_assert_int_eq(m.route->label, expected[i].label);
        ck_assert_int_eq((m.route->flags & SC_ROUTE_ADMIN) != 0, expected[i].admin);
        ck_assert_int_eq((m.route->flags & SC_ROUTE_PROXY) != 0, expected[i].proxy);
        ck_assert_int_eq(m.flags, m.route->flags);
        ck_assert(m.route->handler != NULL);
        rows_hit[m.route - sc_routes]++;
    }
    /* No row is left untested, every label but "other" has a row, and
     * every row's label has a name. */
    int labelled[SC_EP_COUNT] = {0};
    for (size_t i = 0; i < sc_n_routes; i++) {
        ck_assert_msg(rows_hit[i] > 0, "row %s is not in the expectations", sc_routes[i].pattern);
        ck_assert(sc_routes[i].pattern[0] == '/');
        ck_assert(sc_routes[i].methods != 0);
        ck_assert_int_lt(sc_routes[i].label, SC_EP_OTHER);
        labelled[sc_routes[i].label]++;
    }
    for (int ep = 0; ep < SC_EP_OTHER; ep++)
        ck_assert_msg(labelled[ep] > 0, "endpoint %s has no row", sc_endpoint_names[ep]);
    ck_assert_str_eq(sc_endpoint_names[SC_EP_LOOKUP], "lookup");
    ck_assert_str_eq(sc_endpoint_names[SC_EP_OTHER], "other");
    /* Only the entries and namespaces rows have a parameter: the rest of the path. */
    sc_route_match_t m;
    ck_assert_int_eq(sc_route_match(sc_routes, sc_n_routes, S("/v1/entries/a/b"), HTTP_GET, &m),
                     SC_ROUTE_FOUND);
    ck_assert_int_eq((int)m.param.len, 3);
    ck_assert(memcmp(m.param.ptr, "a/b", 3) == 0);
    ck_assert_int_eq(sc_route_match(sc_routes, sc_n_routes, S("/v1/namespaces/"), HTTP_GET, &m),
                     SC_ROUTE_FOUND);
    ck_assert_int_eq((int)m.param.len, 0);
}
END_TEST

START_TEST(unknown_paths_and_wrong_methods)
{
    const char *unknown[] = {"/", "/v2/lookup", "/healthzz", "/metrics/", "/V1/lookup"};
    sc_route_match_t m;
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        sc_slice_t p = {unknown[i], strlen(unknown[i])};
        ck_assert_msg(sc_route_match(sc_routes, sc_n_routes, p, HTTP_GET, &m) == SC_ROUTE_NOT_FOUND,
                      "%s", unknown[i]);
    }
    /* Under /v1/, what no native row knows is the proxy's pass-through. */
    const char *proxied[] = {"/v1/lookupx",
                             "/v1/looku",
                             "/v1/entries",
                             "/v1/models/gpt-4.1",
                             "/v1/chat/completions/abc",
                             "/v1/messages/count_tokens"};
    for (size_t i = 0; i < sizeof(proxied) / sizeof(proxied[0]); i++) {
        sc_slice_t p = {proxied[i], strlen(proxied[i])};
        ck_assert_msg(sc_route_match(sc_routes, sc_n_routes, p, HTTP_PATCH, &m) == SC_ROUTE_FOUND,
                      "%s", proxied[i]);
        ck_assert_int_eq(m.route->label, SC_EP_PROXY);
        ck_assert(m.route->handler == sc_proxy_passthrough);
    }
    char allow[96];
    ck_assert_int_eq(sc_route_match(sc_routes, sc_n_routes, S("/v1/lookup"), HTTP_GET, &m),
                     SC_ROUTE_NO_METHOD);
    ck_assert_int_eq(m.route->label, SC_EP_LOOKUP);
    sc_route_allow(m.allow, allow, sizeof(allow));
    ck_assert_str_eq(allow, "POST");
    ck_assert_int_eq(sc_route_match(sc_routes, sc_n_routes, S("/v1/entries/k"), HTTP_PATCH, &m),
                     SC_ROUTE_NO_METHOD);
    sc_route_allow(m.allow, allow, sizeof(allow));
    ck_assert_str_eq(allow, "GET, DELETE");
    /* A resource of several rows: all their methods, and the strictest auth. */
    ck_assert_int_eq(sc_route_match(sc_routes, sc_n_routes, S("/v1/namespaces/x"), HTTP_POST, &m),
                     SC_ROUTE_NO_METHOD);
    sc_route_allow(m.allow, allow, sizeof(allow));
    ck_assert_str_eq(allow, "GET, PUT, DELETE");
    ck_assert(m.flags & SC_ROUTE_ADMIN);
    ck_assert_int_eq(sc_route_match(sc_routes, sc_n_routes, S("/healthz"), HTTP_POST, &m),
                     SC_ROUTE_NO_METHOD);
    sc_route_allow(m.allow, allow, sizeof(allow));
    ck_assert_str_eq(allow, "GET, HEAD");
    ck_assert(m.flags & SC_ROUTE_PUBLIC);
    sc_route_allow(SC_METHOD(HTTP_MKCOL) | SC_METHOD(HTTP_OPTIONS), allow, sizeof(allow));
    ck_assert_str_eq(allow, "OPTIONS, MKCOL");
}
END_TEST

static void noop(const sc_call_t *a)
{
    (void)a;
}

START_TEST(a_catch_all_row_takes_only_unknown_paths)
{
    static const sc_route_t table[] = {
        {"/v1/lookup", SC_METHOD(HTTP_POST), 0, SC_EP_LOOKUP, noop},
        {"/healthz", SC_METHOD(HTTP_GET), SC_ROUTE_PUBLIC, SC_EP_HEALTHZ, noop},
        {"/v1/{path}", SC_METHODS_ANY, 0, SC_EP_OTHER, noop},
    };
    sc_route_match_t m;
    int methods[] = {HTTP_GET, HTTP_POST, HTTP_DELETE, HTTP_PATCH, HTTP_OPTIONS};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        ck_assert_int_eq(sc_route_match(table, 3, S("/v1/chat/completions"), methods[i], &m),
                         SC_ROUTE_FOUND);
        ck_assert_ptr_eq(m.route, &table[2]);
        ck_assert_int_eq((int)m.param.len, 16);
    }
    /* A known resource keeps its 405; paths outside /v1/ stay unknown. */
    ck_assert_int_eq(sc_route_match(table, 3, S("/v1/lookup"), HTTP_GET, &m), SC_ROUTE_NO_METHOD);
    ck_assert_int_eq(sc_route_match(table, 3, S("/v1/lookup"), HTTP_POST, &m), SC_ROUTE_FOUND);
    ck_assert_ptr_eq(m.route, &table[0]);
    ck_assert_int_eq(sc_route_match(table, 3, S("/v2/x"), HTTP_GET, &m), SC_ROUTE_NOT_FOUND);
}
END_TEST

START_TEST(tokens_guard_user_admin_and_metrics_rows)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    /* No tokens configured: everything is open. */
    ck_assert_int_eq(sc_route_auth(&cfg, 0, (sc_slice_t){NULL, 0}), 0);
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_ADMIN, (sc_slice_t){NULL, 0}), 0);
    /* A user token only: it is the admin token too. */
    snprintf(cfg.auth_token, sizeof(cfg.auth_token), "user-token");
    ck_assert_int_eq(sc_route_auth(&cfg, 0, (sc_slice_t){NULL, 0}), 401);
    ck_assert_int_eq(sc_route_auth(&cfg, 0, S("Bearer user-token")), 0);
    ck_assert_int_eq(sc_route_auth(&cfg, 0, S("bearer user-token")), 0);
    ck_assert_int_eq(sc_route_auth(&cfg, 0, S("Bearer user-toke")), 401);
    ck_assert_int_eq(sc_route_auth(&cfg, 0, S("Bearer user-tokenX")), 401);
    ck_assert_int_eq(sc_route_auth(&cfg, 0, S("Basic user-token")), 401);
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_ADMIN, S("Bearer user-token")), 0);
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_PUBLIC, (sc_slice_t){NULL, 0}), 0);
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_METRICS_AUTH, (sc_slice_t){NULL, 0}), 0);
    cfg.metrics_auth = 1;
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_METRICS_AUTH, (sc_slice_t){NULL, 0}), 401);
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_METRICS_AUTH, S("Bearer user-token")), 0);
    /* An admin token: the user token gets 403 on admin rows. */
    snprintf(cfg.admin_token, sizeof(cfg.admin_token), "admin-token");
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_ADMIN, S("Bearer user-token")), 403);
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_ADMIN, S("Bearer admin-token")), 0);
    ck_assert_int_eq(sc_route_auth(&cfg, SC_ROUTE_ADMIN, S("Bearer nobody")), 401);
    ck_assert_int_eq(sc_route_auth(&cfg, 0, S("Bearer admin-token")), 0);
}
END_TEST

/* ---- the router end to end -------------------------------------------------- */

static sc_ctx_t ctx_;
static sc_worker_t worker_;
static sc_http_loop_t hloop_;
static sc_proxy_t proxy_; /* no upstream client: only requests answered before one is needed */

/* Routes one request on a connection that is already closing (nothing is
 * written; the response is still recorded through on_response), with an
 * Authorization header and an X-Semcached-Token header (NULL = none). A
 * proxied request carries the body "{}". */
static void route_proxy(int method, const char *path, const char *authorization, const char *token)
{
    sc_conn_t c;
    memset(&c, 0, sizeof(c));
    c.hl = &hloop_;
    c.closing = 1;
    c.keep_alive = 1;
    c.tag = -1;
    sc_http_header_t h[2];
    size_t n = 0;
    if (authorization)
        h[n++] = (sc_http_header_t){S("authorization"), {authorization, strlen(authorization)}};
    if (token)
        h[n++] = (sc_http_header_t){S("x-semcached-token"), {token, strlen(token)}};
    sc_http_request_t r = {.method = method,
                           .path = {path, strlen(path)},
                           .headers = h,
                           .n_headers = n,
                           .content_type_json = 1,
                           .body = S("{}"),
                           .started_ns = sc_mono_ns()};
    sc_api_on_request(&worker_, &c, &r);
    ck_assert_int_eq(c.responded, 1);
}

static void route(int method, const char *path, const char *authorization)
{
    route_proxy(method, path, authorization, NULL);
}

static uint64_t answered(sc_endpoint_t ep, int status)
{
    sc_metrics_endpoint_t e;
    sc_metrics_endpoint(ctx_.metrics, ep, &e);
    for (size_t i = 0; i < SC_METRICS_STATUS_SLOTS - 1; i++)
        if (sc_metrics_status_codes[i] == status)
            return e.by_status[i];
    return e.by_status[SC_METRICS_STATUS_SLOTS - 1];
}

START_TEST(router_answers_404_405_401_403_and_health)
{
    sc_config_defaults(&ctx_.cfg);
    ck_assert_int_eq(sc_metrics_create(&ctx_.metrics, 1, SC_EP_COUNT, 8), 0);
    worker_.ctx = &ctx_;
    worker_.metrics = sc_metrics_shard(ctx_.metrics, 0);
    ck_assert_int_eq(uv_loop_init(&worker_.loop), 0);
    proxy_.ctx = &ctx_;
    ctx_.proxy = &proxy_;
    hloop_.h = (sc_http_handler_t){sc_api_on_request, sc_api_on_response, &worker_};
    route(HTTP_GET, "/nope", NULL);
    ck_assert_int_eq(answered(SC_EP_OTHER, 404), 1);
    route(HTTP_GET, "/v1/lookup", NULL);
    ck_assert_int_eq(answered(SC_EP_LOOKUP, 405), 1);
    route(HTTP_POST, "/healthz", NULL);
    ck_assert_int_eq(answered(SC_EP_HEALTHZ, 405), 1);
    route(HTTP_GET, "/healthz", NULL);
    ck_assert_int_eq(answered(SC_EP_HEALTHZ, 200), 1);
    route(HTTP_GET, "/readyz", NULL);
    ck_assert_int_eq(answered(SC_EP_READYZ, 503), 1);
    atomic_store(&ctx_.ready, 1);
    route(HTTP_HEAD, "/readyz", NULL);
    ck_assert_int_eq(answered(SC_EP_READYZ, 200), 1);
    /* With tokens: unknown paths and wrong methods need one too; health does not. */
    snprintf(ctx_.cfg.auth_token, sizeof(ctx_.cfg.auth_token), "u");
    snprintf(ctx_.cfg.admin_token, sizeof(ctx_.cfg.admin_token), "a");
    route(HTTP_GET, "/nope", NULL);
    route(HTTP_GET, "/v1/lookup", "Bearer wrong");
    ck_assert_int_eq(answered(SC_EP_OTHER, 401), 2);
    route(HTTP_PUT, "/v1/namespaces/x", "Bearer u");
    route(HTTP_POST, "/v1/namespaces/x", "Bearer u"); /* 405 only for the admin */
    route(HTTP_POST, "/v1/invalidate", "Bearer u");
    ck_assert_int_eq(answered(SC_EP_OTHER, 403), 3);
    route(HTTP_POST, "/v1/namespaces/x", "Bearer a");
    ck_assert_int_eq(answered(SC_EP_NAMESPACES, 405), 1);
    route(HTTP_GET, "/healthz", NULL);
    ck_assert_int_eq(answered(SC_EP_HEALTHZ, 200), 2);
    route(HTTP_GET, "/nope", "Bearer u");
    ck_assert_int_eq(answered(SC_EP_OTHER, 404), 2);
    /* Proxied routes: Authorization is the provider's key, so the user
     * token (bare or as a bearer) rides in X-Semcached-Token. */
    route_proxy(HTTP_POST, "/v1/chat/completions", "Bearer u", NULL);
    route_proxy(HTTP_GET, "/v1/models", "Bearer u", "wrong");
    ck_assert_int_eq(answered(SC_EP_OTHER, 401), 4);
    route_proxy(HTTP_POST, "/v1/messages", NULL, "u");
    route_proxy(HTTP_POST, "/v1/messages", NULL, "Bearer u");
    ck_assert_int_eq(answered(SC_EP_MESSAGES, 400), 2); /* admitted: a malformed body */
    uv_run(&worker_.loop, UV_RUN_DEFAULT); /* the proxy's requests close their timers */
    ck_assert_int_eq(uv_loop_close(&worker_.loop), 0);
    sc_metrics_destroy(ctx_.metrics);
}
END_TEST

/* --semantic-candidates cannot ask for more than the search arrays hold. */
START_TEST(semantic_candidates_bound_matches_the_option)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    FILE *devnull = fopen("/dev/null", "w");
    char v[16];
    snprintf(v, sizeof(v), "%d", SC_SEMANTIC_CANDIDATES_MAX);
    ck_assert_int_eq(sc_config_set(&cfg, "semantic-candidates", v, devnull), 0);
    snprintf(v, sizeof(v), "%d", SC_SEMANTIC_CANDIDATES_MAX + 1);
    ck_assert_int_ne(sc_config_set(&cfg, "semantic-candidates", v, devnull), 0);
    fclose(devnull);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("routes");
    tcase_add_test(tc, every_row_routes_as_the_api_says);
    tcase_add_test(tc, unknown_paths_and_wrong_methods);
    tcase_add_test(tc, a_catch_all_row_takes_only_unknown_paths);
    tcase_add_test(tc, tokens_guard_user_admin_and_metrics_rows);
    tcase_add_test(tc, router_answers_404_405_401_403_and_health);
    tcase_add_test(tc, semantic_candidates_bound_matches_the_option);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
