/* api_util.c -- what the API's handler families share: JSON replies and
 * checks, compact JSON output, holding a request for a task, and store
 * writes whose answer waits for the commit (sc_pending_t: the writer thread
 * posts the op back to the request's loop, which answers). */
#define _GNU_SOURCE
#include "api.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Here, not in the router, so that api_stats.c does not depend on the file
 * that dispatches to it. */
#define SC_EP_NAME(id, name) name,
const char *const sc_endpoint_names[SC_EP_COUNT] = {SC_ENDPOINTS(SC_EP_NAME)};
#undef SC_EP_NAME

void sc_api_reply_json(sc_conn_t *c, int status, const sc_buf_t *b)
{
    sc_conn_respond(c, status, SC_JSON_CT, NULL, b->data ? b->data : "", b->len);
}

void sc_api_reply_key(sc_conn_t *c, int status, const char *members,
                      const uint8_t key[SC_KEY_BYTES])
{
    char body[64 + SC_KEY_HEX];
    char hex[SC_KEY_HEX + 1];
    sc_hex_encode(key, SC_KEY_BYTES, hex);
    int n = snprintf(body, sizeof(body), "{%s\"key\":\"%s\"}", members, hex);
    sc_conn_respond(c, status, SC_JSON_CT, NULL, body, n < (int)sizeof(body) ? (size_t)n : 0);
}

int sc_api_require_json(const sc_call_t *a)
{
    if (a->http->content_type_json)
        return 1;
    sc_conn_problem(a->c, 415, "unsupported-media-type",
                    "send the body as application/json (Content-Type: application/json)");
    return 0;
}

void sc_api_append_key(sc_buf_t *b, const uint8_t key[SC_KEY_BYTES])
{
    char hex[SC_KEY_HEX + 1];
    sc_hex_encode(key, SC_KEY_BYTES, hex);
    sc_buf_append(b, hex, SC_KEY_HEX);
}

/* jansson's dump would print 0.1 as 0.10000000000000001. */
int sc_api_dump_compact(const json_t *v, sc_buf_t *out)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *val;
        int first = 1;
        sc_buf_append(out, "{", 1);
        json_object_foreach((json_t *)v, k, val)
        {
            if (!first)
                sc_buf_append(out, ",", 1);
            first = 0;
            sc_buf_json_str(out, k, strlen(k));
            sc_buf_append(out, ":", 1);
            if (sc_api_dump_compact(val, out))
                return SC_ENOMEM;
        }
        return sc_buf_append(out, "}", 1);
    }
    case JSON_ARRAY:
        sc_buf_append(out, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                sc_buf_append(out, ",", 1);
            if (sc_api_dump_compact(json_array_get(v, i), out))
                return SC_ENOMEM;
        }
        return sc_buf_append(out, "]", 1);
    default:
        return sc_canonical_json(v, out); /* scalars: canonical == compact */
    }
}

void sc_api_hold(sc_worker_t *w, sc_conn_t *c)
{
    sc_conn_hold(c);
    sc_worker_expect(w);
}

int sc_api_learned_threshold(sc_ctx_t *ctx, const char *name, const sc_ns_config_t *ns, double *t,
                             uint64_t *n_obs)
{
    int from_scope;
    return ns->max_error_rate > 0 &&
           sc_quality_budget_threshold(ctx->quality, name, 0, ns->max_error_rate, t, &from_scope,
                                       n_obs);
}

/* ---- writes answered at commit -------------------------------------------- */

static void pending_run(sc_task_t *t)
{
    sc_pending_t *p = (sc_pending_t *)((char *)t - offsetof(sc_pending_t, task));
    p->complete(p);
}

/* The store's completion hook (writer thread): back to the request's loop. */
static void pending_op_done(sc_write_op_t *op)
{
    sc_pending_t *p = (sc_pending_t *)op;
    p->task.run = pending_run;
    sc_worker_post(p->w, &p->task);
}

sc_pending_t *sc_pending_new(sc_worker_t *w, sc_conn_t *c, void (*complete)(sc_pending_t *),
                             sc_op_type_t type)
{
    sc_pending_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->op.type = type;
    p->op.done = pending_op_done;
    p->w = w;
    p->conn = c;
    p->complete = complete;
    return p;
}

void sc_pending_free(sc_pending_t *p)
{
    sc_write_op_clear(&p->op);
    free(p);
}

void sc_pending_submit(sc_pending_t *p)
{
    sc_conn_t *c = p->conn;
    int rc = sc_store_submit(p->w->ctx->store, &p->op);
    if (rc) {
        sc_pending_free(p);
        sc_conn_problem(c, 503, rc == SC_EBUSY ? "write-queue-full" : "shutting-down",
                        rc == SC_EBUSY ? "the write queue is full (--writer-queue); retry shortly"
                                       : "the server is shutting down");
        return;
    }
    sc_api_hold(p->w, c);
}

void sc_pending_failed(sc_pending_t *p)
{
    int rc = p->op.result;
    if (rc == SC_EFULL)
        sc_conn_problem(
            p->conn, 507, "store-full",
            p->w->ctx->cfg.evict == SC_EVICT_NONE
                ? "the store is full (--map-size or --max-entries), or its namespace is "
                  "(max_entries or max_bytes), and eviction is off (--evict none)"
                : "the store is full (--map-size) and nothing more can be evicted");
    else if (rc == SC_ETOOBIG)
        sc_conn_problem(p->conn, 413, "entry-too-large",
                        "the entry is larger than the store or its namespace's max_bytes can hold");
    else
        sc_conn_problem(p->conn, 500, "store-error", sc_strerror(rc));
}

void sc_pending_finish(sc_pending_t *p)
{
    sc_conn_t *c = p->conn;
    sc_pending_free(p);
    sc_conn_release(c);
}

void sc_pending_removed(sc_pending_t *p)
{
    if (p->op.result) {
        sc_pending_failed(p);
    } else {
        char body[64];
        int n = snprintf(body, sizeof(body), "{\"removed\":%llu}", (unsigned long long)p->op.count);
        sc_conn_respond(p->conn, 200, SC_JSON_CT, NULL, body, (size_t)n);
    }
    sc_pending_finish(p);
}
