/* proxy_fixture.h -- the proxy tests' shared fixture: one mock upstream and
 * one proxy (exact-only, tenant by key) per test binary, plus the
 * miss-then-hit helper. Included once by each tests/integration/proxy*.c. */
/* Options every server of the including test gets (a test may define its own).
 * By default no default error budget: the tests count upstream calls (a miss,
 * then none for its hit), and that budget re-infers about 1 in 100 hits
 * through the upstream after serving it. A test of that loop sets a
 * namespace's budget or delivery itself. */
#ifndef PX_FIXTURE_MORE
#define PX_FIXTURE_MORE "--proxy-max-error-rate", "0",
#endif

static pid_t mock_pid;
static int mock_port;
static tu_server_t srv; /* the main proxy: exact-only, tenant by key */

#include "proxy_helpers.h"

static inline void srv_up(void)
{
    mock_pid = tu_mock_start("--port 0", &mock_port);
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", mock_port);
    const char *args[] = {
        "--openai-base-url", base, "--anthropic-base-url", base, "--threads", "2",
        PX_FIXTURE_MORE NULL};
    tu_server_start(&srv, args);
}

static inline void srv_down(void)
{
    tu_server_destroy(&srv);
    tu_mock_stop(mock_pid);
}

/* A second server in front of the same mock, with more options. */
static inline void server_with(tu_server_t *s, const char *const *more)
{
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d/v1", mock_port);
    const char *args[32] = {"--openai-base-url", base, "--anthropic-base-url", base,
                            "--threads",         "1", PX_FIXTURE_MORE NULL};
    int n = 0;
    while (args[n])
        n++;
    for (int i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    tu_server_start(s, args);
}

/* ---- miss, then hit ------------------------------------------------------------- */

/* Asks 'body' at 'path' twice: a miss (one upstream call), then a hit (none). */
static inline void miss_then_hit(const char *path, const char *headers, const char *body,
                                 resp_t *miss, resp_t *hit)
{
    int calls = upstream_calls(path);
    *miss = post(srv.port, path, headers, body);
    ck_assert_msg(miss->status == 200, "%s -> %d: %s", path, miss->status, miss->body);
    ck_assert_str_eq(hdr(miss, "X-Cache"), "MISS");
    ck_assert_int_eq((int)strlen(hdr(miss, "X-Semcached-Key")), 32);
    ck_assert_str_eq(hdr(miss, "Age"), "");
    ck_assert_int_eq(upstream_calls(path), calls + 1);
    wait_stored(srv.port, miss); /* the answer does not wait for the commit */
    *hit = post(srv.port, path, headers, body);
    ck_assert_int_eq(hit->status, 200);
    ck_assert_str_eq(hdr(hit, "X-Cache"), "HIT");
    ck_assert_str_eq(hdr(hit, "X-Semcached-Match"), "exact");
    ck_assert_str_eq(hdr(hit, "X-Semcached-Key"), hdr(miss, "X-Semcached-Key"));
    ck_assert(strcmp(hdr(hit, "Age"), "0") == 0 || strcmp(hdr(hit, "Age"), "1") == 0);
    ck_assert_int_eq(upstream_calls(path), calls + 1);
}
