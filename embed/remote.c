/* remote.c -- an OpenAI-compatible embedding endpoint as an embedder:
 * POST {url}/v1/embeddings {"model", "input": [texts]} through the shared
 * curl-multi client, so waiting on the network ties up no thread of its own
 * beyond the embedding worker that asked. The dimension is learnt from one
 * probe at start; the identity is the endpoint and model name, since remote
 * weights cannot be hashed. */
#define _GNU_SOURCE
#include "sc_embed_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_httpclient.h"
#include "sc_vec.h"

struct sc_remote_s {
    sc_http_client_t *client;
    char url[1024];
    char model[256];
    char auth[512];
    long timeout_ms;
    uint32_t dim;
};

/* Embeds 'n' texts; every vector must have 'want_dim' values (0 = any,
 * reported in '*got_dim'; 'out' must then hold n x 65536 floats). */
static int remote_call(const sc_remote_t *r, const char *const *texts, const size_t *lens,
                       size_t n, float *out, uint32_t want_dim, uint32_t *got_dim)
{
    sc_http_call_t call;
    memset(&call, 0, sizeof(call));
    snprintf(call.url, sizeof(call.url), "%s", r->url);
    snprintf(call.auth, sizeof(call.auth), "%s", r->auth);
    call.timeout_ms = r->timeout_ms;
    sc_buf_puts(&call.body, "{\"model\":");
    sc_buf_json_str(&call.body, r->model, strlen(r->model));
    sc_buf_puts(&call.body, ",\"input\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            sc_buf_puts(&call.body, ",");
        sc_buf_json_str(&call.body, texts[i], lens[i]);
    }
    sc_buf_puts(&call.body, "]}");
    int rc = sc_http_client_call(r->client, &call);
    if (!rc && (call.status < 200 || call.status > 299))
        rc = SC_EREMOTE; /* the endpoint refused */
    json_t *root = NULL;
    if (!rc) {
        json_error_t je;
        root = json_loadb(call.response.data ? call.response.data : "", call.response.len, 0, &je);
        json_t *data = json_object_get(root, "data");
        if (!json_is_array(data) || json_array_size(data) != n)
            rc = SC_EINVAL;
        for (size_t i = 0; !rc && i < n; i++) {
            json_t *item = json_array_get(data, i);
            json_t *idx = json_object_get(item, "index");
            size_t at = json_is_integer(idx) ? (size_t)json_integer_value(idx) : i;
            float *vec = NULL;
            uint32_t dim = 0;
            char err[128];
            if (at >= n || sc_embedding_decode(json_object_get(item, "embedding"), &vec, &dim, err,
                                               sizeof(err)) ||
                (want_dim && dim != want_dim)) {
                free(vec);
                rc = SC_EINVAL;
                break;
            }
            memcpy(out + at * dim, vec, dim * sizeof(float));
            if (got_dim)
                *got_dim = dim;
            free(vec);
        }
    }
    json_decref(root);
    sc_http_call_clear(&call);
    return rc;
}

int sc_remote_embed(const sc_remote_t *r, const char *const *texts, const size_t *lens, size_t n,
                    float *out)
{
    return remote_call(r, texts, lens, n, out, r->dim, NULL);
}

int sc_remote_open(sc_remote_t **out, const char *url, const char *model, const char *api_key,
                   long timeout_ms, int max_inflight, sc_log_t *log, char *err, size_t err_cap)
{
    sc_remote_t *r = calloc(1, sizeof(*r));
    if (!r)
        return SC_ENOMEM;
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    /* A base URL gets the standard path; a full .../embeddings URL is kept. */
    if (ul >= 11 && strncmp(url + ul - 11, "/embeddings", 11) == 0)
        snprintf(r->url, sizeof(r->url), "%.*s", (int)ul, url);
    else
        snprintf(r->url, sizeof(r->url), "%.*s/v1/embeddings", (int)ul, url);
    snprintf(r->model, sizeof(r->model), "%s", model && *model ? model : "text-embedding-3-small");
    if (api_key && *api_key)
        snprintf(r->auth, sizeof(r->auth), "Bearer %s", api_key);
    r->timeout_ms = timeout_ms;
    int rc = sc_http_client_create(&r->client, max_inflight, 4096, log);
    if (rc) {
        free(r);
        return rc;
    }
    /* One probe learns the dimension and proves the endpoint answers. */
    float *probe = malloc(65536 * sizeof(float));
    const char *t = "dimension probe";
    size_t len = strlen(t);
    rc = probe ? remote_call(r, &t, &len, 1, probe, 0, &r->dim) : SC_ENOMEM;
    free(probe);
    if (rc) {
        snprintf(err, err_cap, "remote embedder %s (model %s) did not answer a probe: %s", r->url,
                 r->model, sc_strerror(rc));
        sc_remote_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void sc_remote_close(sc_remote_t *r)
{
    if (!r)
        return;
    sc_http_client_destroy(r->client);
    free(r);
}

uint32_t sc_remote_dim(const sc_remote_t *r)
{
    return r->dim;
}
