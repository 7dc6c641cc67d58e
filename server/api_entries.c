/* api_entries.c -- single entries and bulk removal: GET and DELETE
 * /v1/entries/{key} and POST /v1/invalidate (admin). Reads answer from the
 * loop's LMDB snapshot; deletions are store writes answered at commit. */
#define _GNU_SOURCE
#include "api.h"

#include <stdlib.h>
#include <string.h>

static void delete_complete(sc_pending_t *p)
{
    if (p->op.result) {
        sc_pending_failed(p);
    } else if (!p->op.count) {
        sc_conn_problem(p->conn, 404, "not-found", "no entry with this key");
    } else {
        sc_api_reply_key(p->conn, 200, "\"deleted\":true,", p->key);
    }
    sc_pending_finish(p);
}

static void entry_json(sc_buf_t *b, const uint8_t key[SC_KEY_BYTES], const sc_entry_t *e,
                       const sc_entry_meta_t *meta, uint64_t now)
{
    sc_buf_puts(b, "{\"key\":\"");
    sc_api_append_key(b, key);
    sc_buf_puts(b, "\",\"namespace\":");
    sc_buf_json_str(b, e->ns.ptr, e->ns.len);
    sc_buf_puts(b, ",\"tenant\":");
    sc_buf_json_str(b, e->tenant.ptr, e->tenant.len);
    sc_buf_puts(b, ",\"model\":");
    sc_buf_json_str(b, e->model.ptr, e->model.len);
    sc_buf_puts(b, ",\"text\":");
    sc_buf_json_str(b, e->text.ptr, e->text.len);
    sc_buf_puts(b, ",\"response\":");
    sc_buf_append(b, e->response.ptr, e->response.len);
    sc_buf_printf(b, ",\"created_ms\":%llu,\"expires_ms\":", (unsigned long long)e->created_ms);
    if (e->expires_ms)
        sc_buf_printf(b, "%llu", (unsigned long long)e->expires_ms);
    else
        sc_buf_puts(b, "null");
    sc_buf_printf(b,
                  ",\"age_s\":%.3f,\"hits\":%llu,\"last_hit_ms\":%llu,"
                  "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%u}}",
                  now > e->created_ms ? (double)(now - e->created_ms) / 1000.0 : 0.0,
                  (unsigned long long)meta->hits, (unsigned long long)meta->last_hit_ms,
                  e->prompt_tokens, e->completion_tokens);
}

static void get_entry(const sc_call_t *a, const uint8_t key[SC_KEY_BYTES])
{
    sc_worker_t *w = a->w;
    sc_entry_t e;
    sc_entry_meta_t meta;
    uint64_t now = sc_now_ms();
    int rc = sc_store_read_begin(w->reader);
    if (rc == 0)
        rc = sc_store_get(w->reader, key, &e, &meta);
    if (rc == 0 && e.expires_ms && now >= e.expires_ms)
        rc = SC_EEXPIRED;
    if (rc) {
        sc_store_read_end(w->reader);
        if (rc == SC_ENOTFOUND || rc == SC_EEXPIRED)
            sc_conn_problem(a->c, 404, "not-found",
                            rc == SC_EEXPIRED ? "the entry has expired" : "no entry with this key");
        else
            sc_conn_problem(a->c, 500, "store-error", sc_strerror(rc));
        return;
    }
    sc_buf_t b = {0};
    entry_json(&b, key, &e, &meta, now);
    sc_store_read_end(w->reader);
    sc_api_reply_json(a->c, 200, &b);
    sc_buf_free(&b);
}

/* GET or DELETE /v1/entries/{key}; the route table admits no other method. */
void sc_api_entry(const sc_call_t *a)
{
    uint8_t key[SC_KEY_BYTES];
    if (sc_hex_decode(a->param.ptr, a->param.len, key, SC_KEY_BYTES)) {
        sc_conn_problem(a->c, 404, "not-found", "an entry key is 32 hexadecimal digits");
        return;
    }
    if (a->http->method != HTTP_DELETE) {
        get_entry(a, key);
        return;
    }
    sc_pending_t *p = sc_pending_new(a->w, a->c, delete_complete, SC_OP_DELETE);
    if (!p) {
        sc_conn_problem(a->c, 503, "out-of-memory", "out of memory");
        return;
    }
    memcpy(p->key, key, SC_KEY_BYTES);
    memcpy(p->op.key, key, SC_KEY_BYTES);
    sc_pending_submit(p);
}

/* ---- POST /v1/invalidate ------------------------------------------------ */

/* Fills 'op''s filters from the body object; 0, or an error in 'err'. */
static int invalidate_filters(json_t *root, sc_write_op_t *op, char *err, size_t cap)
{
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        char **slot = strcmp(k, "namespace") == 0 ? &op->ns
                      : strcmp(k, "tenant") == 0  ? &op->tenant
                      : strcmp(k, "model") == 0   ? &op->model
                                                  : NULL;
        if (slot) {
            if (!json_is_string(v)) {
                snprintf(err, cap, "\"%s\" must be a string", k);
                return SC_EINVAL;
            }
            *slot = strdup(json_string_value(v));
        } else if (strcmp(k, "all") == 0) {
            if (!json_is_boolean(v)) {
                snprintf(err, cap, "\"all\" must be true or false");
                return SC_EINVAL;
            }
            op->all = json_is_true(v);
        } else {
            snprintf(err, cap, "unknown field '%s' (use namespace, tenant, model or all)", k);
            return SC_EINVAL;
        }
    }
    if (!op->all && !op->ns && !op->tenant && !op->model) {
        snprintf(err, cap,
                 "give at least one of namespace, tenant, model, "
                 "or {\"all\": true} to remove every entry");
        return SC_EINVAL;
    }
    if (op->all && (op->ns || op->tenant || op->model)) {
        snprintf(err, cap, "\"all\" cannot be combined with filters");
        return SC_EINVAL;
    }
    return 0;
}

void sc_api_invalidate(const sc_call_t *a)
{
    if (!sc_api_require_json(a))
        return;
    json_error_t jerr;
    json_t *root = json_loadb(a->http->body.ptr, a->http->body.len, JSON_REJECT_DUPLICATES, &jerr);
    char err[256] = "";
    sc_pending_t *p = NULL;
    if (!root || !json_is_object(root))
        snprintf(err, sizeof(err), "body must be a JSON object like {\"namespace\":\"...\"}%s%s",
                 root ? "" : ": ", root ? "" : jerr.text);
    else if (!(p = sc_pending_new(a->w, a->c, sc_pending_removed, SC_OP_INVALIDATE)))
        snprintf(err, sizeof(err), "out of memory");
    else if (invalidate_filters(root, &p->op, err, sizeof(err)) == 0) {
        json_decref(root);
        sc_pending_submit(p);
        return;
    }
    if (p)
        sc_pending_free(p);
    json_decref(root);
    sc_conn_problem(a->c, 400, "invalid-request", err);
}
