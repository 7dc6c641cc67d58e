/* proxy_embeddings.c -- POST /v1/embeddings, exact-cached input by input: a
 * batch is looked up in one read snapshot, only the inputs not found go
 * upstream (in one call), and the answer is reassembled in the client's
 * order, as floats or base64 as it asked. Each input is an ordinary entry
 * (so /v1/entries and /v1/invalidate see it) whose response is
 * {"sc_proxy":1,"api":"embeddings","model":...,"dim":N,"b64":...}: the
 * vector as little-endian float32, exact, never indexed for semantic
 * search. */
#define _GNU_SOURCE
#include "proxy_internal.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(float) == 4, "vectors are stored as float32");

typedef struct {
    sc_proxy_embeddings_t e;
    float **vecs; /* [e.n]: cached or fetched, owned */
    uint32_t *dims;
    size_t *missing; /* the inputs sent upstream, in order */
    size_t n_missing;
    uint64_t oldest_ms;              /* the oldest cached input served (Age) */
    sc_buf_t answer, answer_headers; /* the client's answer, sent once the fetched are stored */
} emb_t;

static void emb_free(void *arg)
{
    emb_t *m = arg;
    for (size_t i = 0; m->vecs && i < m->e.n; i++)
        free(m->vecs[i]);
    free(m->vecs);
    free(m->dims);
    free(m->missing);
    sc_buf_free(&m->answer);
    sc_buf_free(&m->answer_headers);
    sc_proxy_embeddings_free(&m->e);
    free(m);
}

/* ---- an input's entry ------------------------------------------------------------ */

static int encode_vector(const emb_t *m, const float *v, uint32_t dim, sc_buf_t *out)
{
    size_t raw = (size_t)dim * 4;
    unsigned char *b64 = malloc(4 * ((raw + 2) / 3) + 1);
    if (!b64)
        return SC_ENOMEM;
    EVP_EncodeBlock(b64, (const unsigned char *)v, (int)raw); /* float32, little-endian hosts */
    int rc = sc_buf_puts(out, "{\"sc_proxy\":1,\"api\":\"embeddings\",\"model\":");
    if (!rc)
        rc = sc_buf_json_str(out, m->e.model.ptr, m->e.model.len);
    if (!rc)
        rc = sc_buf_printf(out, ",\"dim\":%u,\"b64\":\"%s\"}", dim, (const char *)b64);
    free(b64);
    return rc;
}

/* The vector of a stored input, malloc'd; NULL when the entry is not one. */
static float *decode_vector(const char *json, size_t len, uint32_t *dim)
{
    json_t *o = json_loadb(json, len, 0, NULL);
    const char *b64 = json_string_value(json_object_get(o, "b64"));
    json_int_t d = json_integer_value(json_object_get(o, "dim"));
    float *v = NULL;
    size_t n = b64 ? strlen(b64) : 0;
    if (b64 && d > 0 && d <= 65536 && n == 4 * (((size_t)d * 4 + 2) / 3)) {
        unsigned char *raw = malloc(n / 4 * 3 + 1);
        v = raw ? malloc((size_t)d * sizeof(float)) : NULL;
        if (v && EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n) >= (int)d * 4) {
            memcpy(v, raw, (size_t)d * sizeof(float));
            *dim = (uint32_t)d;
        } else {
            free(v);
            v = NULL;
        }
        free(raw);
    }
    json_decref(o);
    return v;
}

/* Looks every input up in one snapshot; fills vecs/dims of the ones found
 * and 'missing' with the others. */
static void lookup_inputs(px_t *px, emb_t *m)
{
    sc_worker_t *w = px->w;
    uint64_t now = sc_now_ms();
    int snap = !px->ctl.no_cache && sc_store_read_begin(w->reader) == 0;
    for (size_t i = 0; i < m->e.n; i++) {
        sc_entry_t e;
        double age_s = 0;
        int found = snap && sc_store_get(w->reader, m->e.keys[i], &e, NULL) == 0;
        if (found) {
            age_s = now > e.created_ms ? (double)(now - e.created_ms) / 1000.0 : 0.0;
            found =
                !(e.expires_ms && now >= e.expires_ms) &&
                !(px->ctl.has_max_age && age_s > (double)px->ctl.max_age_s) &&
                (m->vecs[i] = decode_vector(e.response.ptr, e.response.len, &m->dims[i])) != NULL;
        }
        if (found) {
            sc_store_touch(w->ctx->store, m->e.keys[i], now);
            if (!m->oldest_ms || e.created_ms < m->oldest_ms)
                m->oldest_ms = e.created_ms;
        } else {
            m->missing[m->n_missing++] = i;
        }
    }
    if (snap)
        sc_store_read_end(w->reader);
}

/* ---- answering --------------------------------------------------------------------- */

/* Builds the client's answer into m->answer / m->answer_headers; 0, or
 * answered (502) already. */
static int prepare(px_t *px, emb_t *m, const sc_proxy_usage_t *usage, const char *upstream_headers)
{
    sc_buf_t *h = &m->answer_headers;
    if (sc_proxy_embeddings_answer(&m->e, (const float *const *)m->vecs, m->dims, NULL, usage,
                                   &m->answer)) {
        px->result = SC_PXR_ERROR;
        px_error(px, 502, "the embeddings could not be assembled");
        return -1;
    }
    if (upstream_headers)
        sc_buf_puts(h, upstream_headers);
    px_cache_headers(px, h, NULL);
    /* Each input's own entry, in the client's order. */
    sc_buf_puts(h, "X-Semcached-Key: ");
    for (size_t i = 0; i < m->e.n; i++) {
        if (i)
            sc_buf_puts(h, ", ");
        sc_api_append_key(h, m->e.keys[i]);
    }
    sc_buf_printf(h, "\r\nX-Semcached-Cached-Inputs: %zu/%zu\r\n", m->e.n - m->n_missing, m->e.n);
    if (!m->n_missing)
        sc_buf_printf(h, "Age: %llu\r\n",
                      (unsigned long long)((sc_now_ms() - m->oldest_ms) / 1000));
    return 0;
}

static void respond_prepared(px_t *px)
{
    emb_t *m = px->ext;
    px_respond(px, 200, SC_JSON_CT, m->answer_headers.data, m->answer.data ? m->answer.data : "",
               m->answer.len);
}

/* Stores every fetched input under its own key (no text: exact only). */
static void store_fetched(px_t *px, emb_t *m)
{
    for (size_t j = 0; j < m->n_missing && px->store; j++) {
        size_t i = m->missing[j];
        sc_buf_t json = {0};
        if (encode_vector(m, m->vecs[i], m->dims[i], &json)) {
            sc_buf_free(&json);
            px_fallback(px->proxy, SC_PXF_NOMEM);
            return;
        }
        /* Borrowed strings, no root: nothing here is freed by the store. */
        sc_request_t req = {
            .ns = m->e.ns.ptr,
            .ns_len = m->e.ns.len,
            .tenant = m->e.tenant.ptr,
            .tenant_len = m->e.tenant.len,
            .model = m->e.model.ptr,
            .model_len = m->e.model.len,
            .has_ttl = px->ctl.has_ttl,
            .ttl_s = px->ctl.ttl_s,
        };
        memcpy(req.key, m->e.keys[i], SC_KEY_BYTES);
        px_store_request(px, &req, &json);
        sc_buf_free(&json);
    }
}

/* The upstream's answer to the missing inputs (PX_COLLECT). */
static void collected(px_t *px)
{
    emb_t *m = px->ext;
    sc_http_call_t *call = &px->call;
    char err[256];
    sc_proxy_usage_t usage = {0, 0};
    sc_buf_t h = {0};
    px_upstream_headers(px, &h);
    if (call->error || px->body_over) {
        int timeout = call->error == SC_ETIMEDOUT;
        px->result = SC_PXR_ERROR;
        px_error(px, timeout ? 504 : 502,
                 timeout ? "the upstream API did not answer in time"
                         : "the upstream API is unreachable");
    } else if (call->status < 200 || call->status >= 300 ||
               sc_proxy_embeddings_upstream_answer(&m->e, px->body.data ? px->body.data : "",
                                                   px->body.len, m->missing, m->n_missing, m->vecs,
                                                   m->dims, &usage, err, sizeof(err))) {
        /* An error (or an answer the proxy does not follow) goes to the
         * client as the upstream gave it. */
        const char *ct = sc_http_call_header(call, "content-type");
        px_cache_headers(px, &h, NULL);
        px_respond(px, (int)call->status, ct ? ct : SC_JSON_CT, h.data,
                   px->body.data ? px->body.data : "", px->body.len);
    } else if (prepare(px, m, &usage, h.data) == 0) {
        store_fetched(px, m); /* queued (copied) first: m->e borrows from the request */
        respond_prepared(px); /* without waiting for the commit */
    }
    sc_buf_free(&h);
}

void px_embeddings(px_t *px, const sc_proxy_ctx_t *pctx)
{
    char err[256];
    emb_t *m = calloc(1, sizeof(*m));
    int rc = m ? sc_proxy_embeddings_parse(&m->e, px->http->body.ptr, px->http->body.len, pctx, err,
                                           sizeof(err))
               : SC_ENOMEM;
    if (m) {
        px->ext = m;
        px->ext_free = emb_free;
    }
    if (rc == SC_EINVAL) {
        px->result = SC_PXR_ERROR;
        px_error(px, 400, err);
        px_free(px);
        return;
    }
    if (rc || px->ctl.no_store) { /* not JSON, or hands off: a plain relay */
        if (rc == SC_ENOMEM)
            px_fallback(px->proxy, SC_PXF_NOMEM);
        px->result = rc ? SC_PXR_PASSTHROUGH : SC_PXR_BYPASS;
        px_forward(px, NULL);
        return;
    }
    m->vecs = calloc(m->e.n, sizeof(*m->vecs));
    m->dims = calloc(m->e.n, sizeof(*m->dims));
    m->missing = calloc(m->e.n, sizeof(*m->missing));
    if (!m->vecs || !m->dims || !m->missing) {
        px_fallback(px->proxy, SC_PXF_NOMEM);
        px_forward(px, NULL);
        return;
    }
    lookup_inputs(px, m);
    px->result = px->ctl.no_cache ? SC_PXR_BYPASS : m->n_missing ? SC_PXR_MISS : SC_PXR_HIT;
    if (!m->n_missing) {
        if (prepare(px, m, NULL, NULL) == 0)
            respond_prepared(px);
        px_free(px);
        return;
    }
    if (px->ctl.only_if_cached) {
        px_error(px, 504, "not in the cache (Cache-Control: only-if-cached)");
        px_free(px);
        return;
    }
    sc_buf_t body = {0};
    if (sc_proxy_embeddings_upstream_body(&m->e, m->missing, m->n_missing, &body)) {
        sc_buf_free(&body);
        px_fallback(px->proxy, SC_PXF_NOMEM);
        px_forward(px, NULL);
        return;
    }
    px->store = 1;
    px->mode = PX_COLLECT;
    px->collected = collected;
    px_forward(px, &body);
    sc_buf_free(&body);
}
