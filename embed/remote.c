/* remote.c -- an OpenAI-compatible embedding endpoint as an embedder:
 * POST {url}/v1/embeddings {"model", "input": [texts]} through the shared
 * curl-multi client, so waiting on the network ties up no thread of its own
 * beyond the embedding worker that asked. The identity is the endpoint and
 * model name (remote weights cannot be hashed), so it is known without the
 * endpoint; the dimension is given (--embed-dimensions) or learnt from a
 * probe, at open or later from a worker thread: the only mutable state is
 * three atomics (dimension, last call answered, probes), so any thread may
 * read them while a worker calls. */
#define _GNU_SOURCE
#include "sc_embed_internal.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sc_httpclient.h"
#include "sc_vec.h"

struct sc_remote_s {
    sc_http_client_t *client;
    sc_log_t *log;
    char url[1024];
    char model[256];
    char auth[512];
    long timeout_ms;
    _Atomic uint32_t dim;    /* 0 until given or learnt; never changes after */
    _Atomic int up;          /* the last call answered with embeddings */
    _Atomic uint32_t probes; /* probes made (for the log) */
};

/* What one call learnt besides the vectors. */
typedef struct {
    long status;   /* HTTP status, 0 if no answer */
    uint32_t dim;  /* of the vectors answered */
    char why[320]; /* a failure, for logs */
} call_result_t;

/* Decodes the "data" array of an answer for 'n' texts into 'out'; every
 * vector must have 'want_dim' values (0 = any; 'out' must then hold
 * n x 65536 floats). */
static int decode_answer(const sc_buf_t *body, size_t n, float *out, uint32_t want_dim,
                         call_result_t *res)
{
    json_error_t je;
    json_t *root = json_loadb(body->data ? body->data : "", body->len, 0, &je);
    json_t *data = json_object_get(root, "data");
    int rc = 0;
    if (!json_is_array(data) || json_array_size(data) != n) {
        snprintf(res->why, sizeof(res->why), "the answer has no \"data\" list of %zu embeddings",
                 n);
        rc = SC_EINVAL;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *item = json_array_get(data, i);
        json_t *idx = json_object_get(item, "index");
        size_t at = json_is_integer(idx) ? (size_t)json_integer_value(idx) : i;
        float *vec = NULL;
        uint32_t dim = 0;
        char err[128];
        if (at >= n ||
            sc_embedding_decode(json_object_get(item, "embedding"), &vec, &dim, err, sizeof(err))) {
            snprintf(res->why, sizeof(res->why), "embedding %zu is not a vector", i);
            rc = SC_EINVAL;
        } else if (want_dim && dim != want_dim) {
            snprintf(res->why, sizeof(res->why), "the endpoint answers %u dimensions, not %u", dim,
                     want_dim);
            rc = SC_EDIM;
        } else {
            memcpy(out + at * dim, vec, dim * sizeof(float));
            res->dim = dim;
        }
        free(vec);
    }
    json_decref(root);
    return rc;
}

/* Embeds 'n' texts with one call; records whether the endpoint answered. */
static int remote_call(sc_remote_t *r, const char *const *texts, const size_t *lens, size_t n,
                       float *out, uint32_t want_dim, call_result_t *res)
{
    sc_http_call_t call;
    memset(&call, 0, sizeof(call));
    memset(res, 0, sizeof(*res));
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
    res->status = call.status;
    if (rc) {
        snprintf(res->why, sizeof(res->why), "%s",
                 call.error_text[0] ? call.error_text : sc_strerror(rc));
    } else if (call.status < 200 || call.status > 299) {
        snprintf(res->why, sizeof(res->why), "HTTP %ld", call.status);
        rc = SC_EREMOTE; /* the endpoint refused */
    } else {
        rc = decode_answer(&call.response, n, out, want_dim, res);
    }
    atomic_store(&r->up, rc == 0);
    sc_http_call_clear(&call);
    return rc;
}

int sc_remote_embed(sc_remote_t *r, const char *const *texts, const size_t *lens, size_t n,
                    float *out)
{
    call_result_t res;
    uint32_t dim = atomic_load(&r->dim);
    return dim ? remote_call(r, texts, lens, n, out, dim, &res) : SC_EREMOTE;
}

/* A refusal that a retry cannot fix (a wrong key, URL or model name): any
 * 4xx but 408 and 429, or a 2xx that is not an embeddings answer. */
static int refused(int rc, const call_result_t *res)
{
    if (res->status >= 200 && res->status <= 299)
        return rc == SC_EINVAL;
    return res->status >= 400 && res->status <= 499 && res->status != 408 && res->status != 429;
}

int sc_remote_probe(sc_remote_t *r, char *err, size_t err_cap)
{
    float *probe = malloc(65536 * sizeof(float));
    const char *t = "dimension probe";
    size_t len = strlen(t);
    uint32_t want = atomic_load(&r->dim);
    call_result_t res = {.why = "out of memory"};
    int rc = probe ? remote_call(r, &t, &len, 1, probe, want, &res) : SC_ENOMEM;
    free(probe);
    uint32_t n = atomic_fetch_add(&r->probes, 1) + 1;
    if (rc && refused(rc, &res)) {
        snprintf(err, err_cap,
                 "remote embedder %s (model %s) refused probe %u: %s (check the URL, "
                 "--embed-remote-model and SEMCACHED_EMBED_API_KEY)",
                 r->url, r->model, n, res.why);
        return SC_EINVAL;
    }
    if (rc) {
        snprintf(err, err_cap, "remote embedder %s (model %s) %s probe %u: %s", r->url, r->model,
                 rc == SC_EDIM ? "gave another size to" : "did not answer", n, res.why);
        return rc;
    }
    if (!want) {
        atomic_store(&r->dim, res.dim);
        sc_log(r->log, SC_INFO, "remote embedder %s (model %s) answered probe %u: %u dimensions",
               r->url, r->model, n, res.dim);
    }
    return 0;
}

int sc_remote_open(sc_remote_t **out, const char *url, const char *model, const char *api_key,
                   long timeout_ms, int max_inflight, uint32_t dimensions, sc_log_t *log, char *err,
                   size_t err_cap)
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
    r->log = log;
    atomic_init(&r->dim, dimensions);
    int rc = sc_http_client_create(&r->client, max_inflight, 4096, log);
    if (rc) {
        free(r);
        return rc;
    }
    /* Without a given dimension, one probe learns it. An endpoint that
     * refuses it is misconfigured and stops the start; one that does not
     * answer leaves the embedder unavailable until a later probe. */
    if (!dimensions && (rc = sc_remote_probe(r, err, err_cap)) != 0) {
        if (rc == SC_EINVAL) {
            sc_remote_close(r);
            return rc;
        }
        sc_log(log, SC_WARN, "%s; starting without it", err);
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
    return atomic_load(&r->dim);
}

int sc_remote_up(const sc_remote_t *r)
{
    return atomic_load(&r->up);
}
