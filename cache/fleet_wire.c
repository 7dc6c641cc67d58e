/* fleet_wire.c -- the fleet's formats on the Redis side: the --redis URL,
 * stream IDs ("ms-seq", parsed strictly), the fleet's key names (one hash
 * tag, so a Redis Cluster keeps them in one slot), the XADD of a record with
 * its retention trim, the registry row a node writes, and what XINFO STREAM
 * says about records trimmed past a node. Pure functions, no I/O. */
#define _GNU_SOURCE
#include "fleet_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy_part(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

static int parse_uint(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (!n || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]) || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

int sc_redis_addr_parse(const char *url, sc_redis_addr_t *a, char *err, size_t err_cap)
{
    memset(a, 0, sizeof(*a));
    a->port = 6379;
    uint64_t v;
    if (url[0] == '/' || strncmp(url, "unix://", 7) == 0) {
        const char *path = url[0] == '/' ? url : url + 7;
        const char *q = strstr(path, "?db=");
        size_t n = q ? (size_t)(q - path) : strlen(path);
        if (!n || copy_part(a->unix_path, sizeof(a->unix_path), path, n) ||
            (q && parse_uint(q + 4, strlen(q + 4), 65535, &v))) {
            snprintf(err, err_cap, "--redis: bad unix socket path or ?db= in '%s'", url);
            return SC_EINVAL;
        }
        a->db = q ? (int)v : 0;
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, err_cap,
                 "--redis must be redis://[user:password@]host:port[/db] or a "
                 "unix socket path, not '%s'",
                 url);
        return SC_EINVAL;
    }
    const char *rest = url + 8, *at = strrchr(rest, '@'), *host = at ? at + 1 : rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        if ((colon && copy_part(a->user, sizeof(a->user), rest, (size_t)(colon - rest))) ||
            copy_part(a->password, sizeof(a->password), colon ? colon + 1 : rest,
                      (size_t)(at - (colon ? colon + 1 : rest)))) {
            snprintf(err, err_cap, "--redis: user or password too long");
            return SC_EINVAL;
        }
    }
    const char *slash = strchr(host, '/');
    size_t hp_len = slash ? (size_t)(slash - host) : strlen(host);
    const char *hp_end = host + hp_len, *port = NULL, *h_end = hp_end;
    if (host[0] == '[') { /* [IPv6]:port */
        const char *close = memchr(host, ']', hp_len);
        if (!close)
            goto bad;
        port = close + 1 < hp_end && close[1] == ':' ? close + 2 : NULL;
        if (copy_part(a->host, sizeof(a->host), host + 1, (size_t)(close - host - 1)))
            goto bad;
    } else {
        const char *colon = memchr(host, ':', hp_len);
        if (colon) {
            port = colon + 1;
            h_end = colon;
        }
        if (copy_part(a->host, sizeof(a->host), host, (size_t)(h_end - host)))
            goto bad;
    }
    if (!a->host[0] || (port && (parse_uint(port, (size_t)(hp_end - port), 65535, &v) || !v)))
        goto bad;
    if (port)
        a->port = (int)v;
    if (slash && slash[1]) {
        if (parse_uint(slash + 1, strlen(slash + 1), 65535, &v))
            goto bad;
        a->db = (int)v;
    }
    return 0;
bad:
    snprintf(err, err_cap, "--redis: bad host, port or database in '%s'", url);
    return SC_EINVAL;
}

int sc__fleet_id_parse(const char *s, size_t len, sc_stream_id_t *id)
{
    const char *dash = memchr(s, '-', len);
    if (!dash || parse_uint(s, (size_t)(dash - s), UINT64_MAX, &id->ms) ||
        parse_uint(dash + 1, len - (size_t)(dash - s) - 1, UINT64_MAX, &id->seq))
        return SC_EINVAL;
    return 0;
}

void sc__fleet_id_format(const sc_stream_id_t *id, char out[48])
{
    snprintf(out, 48, "%" PRIu64 "-%" PRIu64, id->ms, id->seq);
}

int sc__fleet_id_cmp(const sc_stream_id_t *a, const sc_stream_id_t *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void sc__fleet_keys(const char *name, char *stream_key, char *nodes_key, size_t cap)
{
    /* One hash tag: in a Redis Cluster both keys live in one slot. */
    snprintf(stream_key, cap, "semcached:{%s}:stream", name);
    snprintf(nodes_key, cap, "semcached:{%s}:nodes", name);
}

int sc__fleet_xadd_args(const sc_config_t *cfg, const char *key, const void *rec, size_t len,
                        char trim[32], const char **argv, size_t *lens)
{
    int argc = 0;
    argv[argc++] = "XADD";
    argv[argc++] = key;
    if (cfg->fleet_retention_s > 0) {
        uint64_t now = sc_now_ms(), keep = (uint64_t)cfg->fleet_retention_s * 1000u;
        snprintf(trim, 32, "%" PRIu64, now > keep ? now - keep : 0);
        argv[argc++] = "MINID";
    } else if (cfg->fleet_retention > 0) {
        snprintf(trim, 32, "%" PRId64, cfg->fleet_retention);
        argv[argc++] = "MAXLEN";
    }
    if (argc == 3) {
        argv[argc++] = "~"; /* whole macro nodes only: trimming stays O(1) per XADD */
        argv[argc++] = trim;
    }
    argv[argc++] = "*";
    argv[argc++] = "r";
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    argv[argc] = rec;
    lens[argc++] = len;
    return argc;
}

int sc__fleet_peer_parse(const char *field, size_t flen, const char *val, size_t vlen,
                         fleet_peer_t *p)
{
    uint8_t raw[8];
    char v[700], id[48];
    memset(p, 0, sizeof(*p));
    if (flen != 16 || sc_hex_decode(field, 16, raw, 8) || vlen >= sizeof(v))
        return SC_EINVAL;
    for (int i = 0; i < 8; i++)
        p->node = p->node << 8 | raw[i];
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    unsigned long long seen, lag, lagr;
    if (sscanf(v, "%511s %47s %llu %llu %llu", p->url, id, &seen, &lag, &lagr) != 5 ||
        sc__fleet_id_parse(id, strlen(id), &p->applied))
        return SC_EINVAL;
    p->seen_ms = seen;
    p->lag_ms = lag;
    p->lag_records = lagr;
    return 0;
}

int sc__fleet_trimmed_past(const redisReply *r, const sc_stream_id_t *pos, sc_stream_id_t *first)
{
    long long length = -1, added = -1;
    sc_stream_id_t deleted = {0, 0};
    int gap = 0;
    first->ms = first->seq = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "length") == 0 && v->type == REDIS_REPLY_INTEGER)
            length = v->integer;
        else if (strcmp(k->str, "entries-added") == 0 && v->type == REDIS_REPLY_INTEGER)
            added = v->integer;
        else if (strcmp(k->str, "recorded-first-entry-id") == 0 && v->type == REDIS_REPLY_STRING)
            sc__fleet_id_parse(v->str, v->len, first);
        else if (strcmp(k->str, "first-entry") == 0 && v->type == REDIS_REPLY_ARRAY &&
                 v->elements == 2 && v->element[0]->type == REDIS_REPLY_STRING && !first->ms)
            sc__fleet_id_parse(v->element[0]->str, v->element[0]->len, first); /* Redis 6 */
        else if (strcmp(k->str, "max-deleted-entry-id") == 0 && v->type == REDIS_REPLY_STRING &&
                 sc__fleet_id_parse(v->str, v->len, &deleted) == 0)
            gap |= sc__fleet_id_cmp(&deleted, pos) > 0;
    }
    /* Trimming removes entries from the head and (in Redis 7.0) does not
     * move max-deleted-entry-id: records were lost to this position when
     * some were removed and the first one left lies past it. */
    if (length >= 0 && added > length && sc__fleet_id_cmp(first, pos) > 0)
        gap = 1;
    return gap;
}

/* XINFO STREAM: records after this node's position trimmed away are
 * changes it will never see; said once, and flagged in the stats. */
