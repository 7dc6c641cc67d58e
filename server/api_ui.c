/* api_ui.c -- GET /ui and /ui/<asset>: the live dashboard, one static page
 * (server/ui/) and uPlot, compiled into the binary by the Makefile (no file
 * is read at run time). The page holds no data and no secret, so its routes
 * are public; its script sends the API token on its own fetches. Every
 * asset is revalidated (Cache-Control: no-cache) against an ETag that is
 * the hash of its bytes, and the page is locked to its own origin by CSP. */
#define _GNU_SOURCE
#include "api.h"

#include <stdint.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

/* The bytes and their lengths (excluding a trailing NUL), from build/gen/. */
extern const unsigned char sc_ui_index_html[], sc_ui_css[], sc_ui_js[], sc_ui_uplot_js[],
    sc_ui_uplot_css[], sc_ui_uplot_license[];
extern const size_t sc_ui_index_html_len, sc_ui_css_len, sc_ui_js_len, sc_ui_uplot_js_len,
    sc_ui_uplot_css_len, sc_ui_uplot_license_len;

typedef struct {
    const char *name; /* the path after /ui/ ("": the page itself) */
    const char *type;
    const unsigned char *data;
    const size_t *len;
} asset_t;

static const asset_t assets[] = {
    {"", "text/html; charset=utf-8", sc_ui_index_html, &sc_ui_index_html_len},
    {"index.html", "text/html; charset=utf-8", sc_ui_index_html, &sc_ui_index_html_len},
    {"ui.css", "text/css; charset=utf-8", sc_ui_css, &sc_ui_css_len},
    {"ui.js", "text/javascript; charset=utf-8", sc_ui_js, &sc_ui_js_len},
    {"uPlot.iife.min.js", "text/javascript; charset=utf-8", sc_ui_uplot_js, &sc_ui_uplot_js_len},
    {"uPlot.min.css", "text/css; charset=utf-8", sc_ui_uplot_css, &sc_ui_uplot_css_len},
    {"uPlot.LICENSE", "text/plain; charset=utf-8", sc_ui_uplot_license, &sc_ui_uplot_license_len},
};

/* The page may load and fetch only from its own origin, and no other site
 * may frame it (the token is typed into it). */
#define UI_CSP                                                                                     \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "              \
    "frame-ancestors 'none'\r\n"

/* Does the If-None-Match value 'inm' name 'etag' (or "*")? */
static int etag_matches(sc_slice_t inm, const char *etag)
{
    size_t elen = strlen(etag);
    if (!inm.ptr)
        return 0;
    if (inm.len == 1 && inm.ptr[0] == '*')
        return 1;
    for (size_t i = 0; i + elen <= inm.len; i++)
        if (memcmp(inm.ptr + i, etag, elen) == 0)
            return 1;
    return 0;
}

void sc_api_ui(const sc_call_t *a)
{
    /* The row's pattern is "/ui{asset}": the param is "", "/" or "/<name>"
     * (or, for /uifoo, "foo", which is no asset). */
    sc_slice_t name = a->param;
    const asset_t *as = NULL;
    if (name.len && name.ptr[0] == '/') {
        name.ptr++;
        name.len--;
    } else if (name.len) {
        name.len = SIZE_MAX; /* matches nothing */
    }
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]) && !as; i++)
        if (name.len == strlen(assets[i].name) && memcmp(name.ptr, assets[i].name, name.len) == 0)
            as = &assets[i];
    if (!as) {
        sc_conn_problem(a->c, 404, "not-found", "no such dashboard asset");
        return;
    }
    char etag[24], headers[512 + sizeof(UI_CSP)];
    snprintf(etag, sizeof(etag), "\"%016llx\"",
             (unsigned long long)XXH3_64bits(as->data, *as->len));
    snprintf(headers, sizeof(headers),
             "ETag: %s\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
             "Referrer-Policy: no-referrer\r\n%s",
             etag, as->data == sc_ui_index_html ? UI_CSP : "");
    if (etag_matches(sc_http_request_header(a->http, "if-none-match"), etag))
        sc_conn_respond(a->c, 304, as->type, headers, "", 0);
    else
        sc_conn_respond(a->c, 200, as->type, headers, (const char *)as->data, *as->len);
}
