/* api_router.c -- the route table and the router: every endpoint is one row
 * (pattern, methods, auth flags, metrics label, handler), and routing,
 * authorization (admin included) and the metrics labels all read it. An
 * unknown path is a 404 problem, a known path with another method a 405 with
 * Allow; both after authorization, as every non-public request is. */
#define _GNU_SOURCE
#include "api.h"
#include "proxy.h"

#include <string.h>
#include <strings.h>

#define M SC_METHOD

#define PROXY SC_ROUTE_PROXY

/* Lookups first: they are most of the traffic. The proxied APIs follow, each
 * with a pass-through row for its other methods (OpenAI lists stored chat
 * completions with GET /v1/chat/completions), and the catch-all last: it
 * takes exactly the /v1/ paths no row before it knows. */
const sc_route_t sc_routes[] = {
    {"/v1/lookup", M(HTTP_POST), 0, SC_EP_LOOKUP, sc_api_lookup},
    {"/v1/store", M(HTTP_POST), 0, SC_EP_STORE, sc_api_store},
    {"/v1/entries/{key}", M(HTTP_GET) | M(HTTP_DELETE), 0, SC_EP_ENTRIES, sc_api_entry},
    {"/v1/namespaces/{name}", M(HTTP_GET), 0, SC_EP_NAMESPACES, sc_api_namespace},
    {"/v1/namespaces/{name}", M(HTTP_PUT) | M(HTTP_DELETE), SC_ROUTE_ADMIN, SC_EP_NAMESPACES,
     sc_api_namespace},
    {"/v1/invalidate", M(HTTP_POST), SC_ROUTE_ADMIN, SC_EP_INVALIDATE, sc_api_invalidate},
    {"/v1/feedback", M(HTTP_POST), 0, SC_EP_FEEDBACK, sc_api_feedback},
    {"/v1/validations", M(HTTP_GET), 0, SC_EP_FEEDBACK, sc_api_validations},
    {"/v1/stats", M(HTTP_GET), 0, SC_EP_STATS, sc_api_stats},
    {"/healthz", M(HTTP_GET) | M(HTTP_HEAD), SC_ROUTE_PUBLIC, SC_EP_HEALTHZ, sc_api_health},
    {"/readyz", M(HTTP_GET) | M(HTTP_HEAD), SC_ROUTE_PUBLIC, SC_EP_READYZ, sc_api_health},
    {"/metrics", M(HTTP_GET), SC_ROUTE_METRICS_AUTH, SC_EP_METRICS, sc_api_metrics},
    /* The dashboard: /ui, /ui/ and /ui/<asset>. Static, so public: its fetches send the token. */
    {"/ui{asset}", M(HTTP_GET), SC_ROUTE_PUBLIC, SC_EP_UI, sc_api_ui},
    {"/v1/fleet/snapshot", M(HTTP_GET), SC_ROUTE_ADMIN, SC_EP_FLEET, sc_api_fleet_snapshot},
    {"/v1/fleet/checksum", M(HTTP_GET), SC_ROUTE_ADMIN, SC_EP_FLEET, sc_api_fleet_checksum},
    {"/v1/chat/completions", M(HTTP_POST), PROXY, SC_EP_CHAT, sc_proxy_api},
    {"/v1/chat/completions", SC_METHODS_ANY, PROXY, SC_EP_PROXY, sc_proxy_passthrough},
    {"/v1/messages", M(HTTP_POST), PROXY, SC_EP_MESSAGES, sc_proxy_api},
    {"/v1/messages", SC_METHODS_ANY, PROXY, SC_EP_PROXY, sc_proxy_passthrough},
    {"/v1/responses", M(HTTP_POST), PROXY, SC_EP_RESPONSES, sc_proxy_api},
    {"/v1/responses", SC_METHODS_ANY, PROXY, SC_EP_PROXY, sc_proxy_passthrough},
    {"/v1/embeddings", M(HTTP_POST), PROXY, SC_EP_EMBEDDINGS, sc_proxy_embeddings},
    {"/v1/embeddings", SC_METHODS_ANY, PROXY, SC_EP_PROXY, sc_proxy_passthrough},
    {"/v1/{path}", SC_METHODS_ANY, PROXY, SC_EP_PROXY, sc_proxy_passthrough},
};
const size_t sc_n_routes = sizeof(sc_routes) / sizeof(sc_routes[0]);

/* ---- matching ----------------------------------------------------------- */

/* Does 'pattern' match 'path'? Sets 'param' for a {name} pattern. */
static int pattern_match(const char *pattern, sc_slice_t path, sc_slice_t *param)
{
    size_t plen = strcspn(pattern, "{");
    int open = pattern[plen] != '\0';
    if (!open)
        return path.len == plen && memcmp(path.ptr, pattern, plen) == 0;
    if (path.len < plen || memcmp(path.ptr, pattern, plen) != 0)
        return 0;
    param->ptr = path.ptr + plen;
    param->len = path.len - plen;
    return 1;
}

/* Strictness of a row's authorization, for a resource with several rows. */
static int strictness(unsigned flags)
{
    return flags & SC_ROUTE_ADMIN          ? 3
           : flags & SC_ROUTE_PUBLIC       ? 0
           : flags & SC_ROUTE_METRICS_AUTH ? 1
                                           : 2;
}

/* The token a request presents for a row with 'flags', as "Bearer <token>":
 * Authorization, or X-Semcached-Token on proxied rows (where Authorization
 * carries the provider's key), bare or with its "Bearer " prefix. 'buf'
 * holds the rebuilt value. */
static sc_slice_t presented_token(const sc_http_request_t *req, unsigned flags, char *buf,
                                  size_t cap)
{
    if (!(flags & SC_ROUTE_PROXY))
        return sc_http_request_header(req, "authorization");
    sc_slice_t t = sc_http_request_header(req, "x-semcached-token");
    if (!t.ptr || (t.len >= 7 && strncasecmp(t.ptr, "Bearer ", 7) == 0))
        return t;
    int n = snprintf(buf, cap, "Bearer %.*s", (int)t.len, t.ptr);
    return n > 0 && (size_t)n < cap ? (sc_slice_t){buf, (size_t)n} : (sc_slice_t){NULL, 0};
}

sc_route_result_t sc_route_match(const sc_route_t *routes, size_t n, sc_slice_t path, int method,
                                 sc_route_match_t *m)
{
    memset(m, 0, sizeof(*m));
    size_t i = 0;
    while (i < n && !pattern_match(routes[i].pattern, path, &m->param))
        i++;
    if (i == n)
        return SC_ROUTE_NOT_FOUND;
    const char *resource = routes[i].pattern;
    m->route = &routes[i];
    m->flags = routes[i].flags;
    for (size_t j = i; j < n; j++) {
        if (strcmp(routes[j].pattern, resource) != 0)
            continue;
        if (method >= 0 && method < 64 && (routes[j].methods & SC_METHOD(method))) {
            m->route = &routes[j];
            m->flags = routes[j].flags;
            m->allow = 0;
            return SC_ROUTE_FOUND;
        }
        m->allow |= routes[j].methods;
        if (strictness(routes[j].flags) > strictness(m->flags))
            m->flags = routes[j].flags;
    }
    return SC_ROUTE_NO_METHOD;
}

void sc_route_allow(uint64_t methods, char *out, size_t cap)
{
    /* The usual order first, then any other method in enum order. */
    static const int usual[] = {HTTP_GET,    HTTP_HEAD,  HTTP_POST,   HTTP_PUT,
                                HTTP_DELETE, HTTP_PATCH, HTTP_OPTIONS};
    size_t len = 0;
    out[0] = '\0';
    uint64_t left = methods;
    for (int k = 0; k < 64 + 7 && left; k++) {
        int mth = k < 7 ? usual[k] : k - 7;
        if (!(left & SC_METHOD(mth)))
            continue;
        left &= ~SC_METHOD(mth);
        const char *name = sc_http_method_name(mth);
        int w = snprintf(out + len, cap - len, "%s%s", len ? ", " : "", name);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
}

/* ---- authorization ------------------------------------------------------ */

/* Compares in time that depends only on the lengths, not on where the first
 * difference is, so the token cannot be guessed byte by byte. */
static int token_equal(const char *given, size_t glen, const char *want)
{
    size_t wlen = strlen(want);
    unsigned diff = (unsigned)(glen ^ wlen);
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)want[i] ^ (unsigned char)(i < glen ? given[i] : 0);
    return diff == 0;
}

int sc_route_auth(const sc_config_t *cfg, unsigned flags, sc_slice_t authorization)
{
    if ((flags & SC_ROUTE_PUBLIC) || ((flags & SC_ROUTE_METRICS_AUTH) && !cfg->metrics_auth))
        return 0;
    int admin = (flags & SC_ROUTE_ADMIN) != 0;
    const char *user = cfg->auth_token, *adm = cfg->admin_token[0] ? cfg->admin_token : user;
    const char *need = admin ? adm : user;
    if (!need[0] && !(admin && user[0]))
        return 0;
    const char *v = authorization.ptr;
    size_t n = authorization.len;
    if (!v || n < 7 || strncasecmp(v, "Bearer ", 7) != 0)
        return 401;
    v += 7;
    n -= 7;
    if (admin)
        return token_equal(v, n, adm) ? 0 : (user[0] && token_equal(v, n, user) ? 403 : 401);
    return token_equal(v, n, user) || (adm[0] && token_equal(v, n, adm)) ? 0 : 401;
}

/* ---- the router ----------------------------------------------------------- */

static void deny(sc_conn_t *c, int status)
{
    if (status == 401) {
        static const char body[] = "{\"type\":\"urn:semcached:problem:unauthorized\",\"title\":"
                                   "\"Unauthorized\",\"status\":401,\"detail\":\"send "
                                   "Authorization: Bearer <token>\"}";
        sc_conn_respond(c, 401, "application/problem+json", "WWW-Authenticate: Bearer\r\n", body,
                        sizeof(body) - 1);
    } else {
        sc_conn_problem(c, 403, "admin-only", "this operation needs the admin token");
    }
}

static void method_not_allowed(sc_conn_t *c, uint64_t allow)
{
    char methods[96], detail[128], hdr[128];
    sc_route_allow(allow, methods, sizeof(methods));
    snprintf(detail, sizeof(detail), "this resource allows %s", methods);
    snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", methods);
    sc_buf_t b = {0};
    sc_buf_printf(&b,
                  "{\"type\":\"urn:semcached:problem:method-not-allowed\",\"title\":"
                  "\"Method Not Allowed\",\"status\":405,\"detail\":\"%s\"}",
                  detail);
    sc_conn_respond(c, 405, "application/problem+json", hdr, b.data ? b.data : "", b.len);
    sc_buf_free(&b);
}

void sc_api_on_request(void *worker, sc_conn_t *c, const sc_http_request_t *req)
{
    sc_worker_t *w = worker;
    sc_route_match_t m;
    sc_route_result_t r = sc_route_match(sc_routes, sc_n_routes, req->path, req->method, &m);
    /* Unknown paths need the user token like any API call: no probing. */
    unsigned flags = r == SC_ROUTE_NOT_FOUND ? 0 : m.flags;
    char token[320];
    int denied =
        sc_route_auth(&w->ctx->cfg, flags, presented_token(req, flags, token, sizeof(token)));
    if (denied) { /* labelled "other": no endpoint was reached */
        if (flags & SC_ROUTE_PROXY)
            sc_proxy_deny(c, req, denied);
        else
            deny(c, denied);
        return;
    }
    if (r == SC_ROUTE_NOT_FOUND) {
        sc_conn_problem(c, 404, "not-found", "no such endpoint; see the README for the API");
        return;
    }
    sc_conn_set_tag(c, (int)m.route->label);
    if (r == SC_ROUTE_NO_METHOD) {
        method_not_allowed(c, m.allow);
        return;
    }
    sc_call_t call = {m.route, w, w->ctx, c, req, m.param};
    m.route->handler(&call);
}

int sc_api_on_refused(void *worker, sc_conn_t *c, const sc_http_request_t *req, int status,
                      const char *detail)
{
    (void)worker;
    sc_route_match_t m;
    if (sc_route_match(sc_routes, sc_n_routes, req->path, req->method, &m) != SC_ROUTE_FOUND ||
        !(m.flags & SC_ROUTE_PROXY))
        return 0;
    sc_conn_set_tag(c, (int)m.route->label);
    sc_proxy_refuse(c, req, status, detail);
    return 1;
}

void sc_api_on_response(void *worker, int tag, int status, uint64_t dur_ns)
{
    sc_worker_t *w = worker;
    sc_metrics_request(w->metrics, tag >= 0 && tag < SC_EP_COUNT ? tag : SC_EP_OTHER, status,
                       dur_ns);
}
