/* fleet_boot.c -- joining a fleet whose stream no longer holds what a node
 * needs: before the store opens, a node whose last applied ID lies before
 * the part of the stream Redis trimmed away (a new node in an old fleet, or
 * one down for longer than --fleet-retention) first publishes its own
 * unpublished records, then copies a compacted snapshot of a peer's LMDB
 * (the peer streams mdb_env_copyfd2 output, with its last applied ID
 * inside, as a Redis replica takes an RDB file) and adopts it under a new
 * node id; it then follows the stream from that ID. Runs once at start-up on
 * the main thread, so it uses hiredis's blocking API and libcurl's easy one. */
#define _GNU_SOURCE
#include "fleet_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOT_TIMEOUT_S 5

static redisContext *connect_sync(const sc_redis_addr_t *a, sc_log_t *log)
{
    struct timeval tv = {BOOT_TIMEOUT_S, 0};
    redisContext *c = a->unix_path[0] ? redisConnectUnixWithTimeout(a->unix_path, tv)
                                      : redisConnectWithTimeout(a->host, a->port, tv);
    if (!c || c->err) {
        sc_log(log, SC_WARN,
               "fleet: Redis unreachable at start-up (%s); starting from the "
               "local store",
               c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (a->password[0])
        r = a->user[0] ? redisCommand(c, "AUTH %s %s", a->user, a->password)
                       : redisCommand(c, "AUTH %s", a->password);
    if (a->password[0] && (!r || r->type == REDIS_REPLY_ERROR)) {
        sc_log(log, SC_ERROR, "fleet: Redis refused AUTH: %s", r ? r->str : c->errstr);
        goto fail;
    }
    freeReplyObject(r);
    r = NULL;
    if (a->db && (!(r = redisCommand(c, "SELECT %d", a->db)) || r->type == REDIS_REPLY_ERROR)) {
        sc_log(log, SC_ERROR, "fleet: Redis refused SELECT %d", a->db);
        goto fail;
    }
    freeReplyObject(r);
    return c;
fail:
    freeReplyObject(r);
    redisFree(c);
    return NULL;
}

/* Whether the stream lost records after 'pos' to trimming; '*first' is
 * where it starts now. No stream yet: nothing lost. */
static int stream_gap(redisContext *c, const char *key, const sc_stream_id_t *pos,
                      sc_stream_id_t *first, int *gap)
{
    redisReply *r = redisCommand(c, "XINFO STREAM %s", key);
    if (!r)
        return SC_EREMOTE;
    *gap = r->type == REDIS_REPLY_ARRAY && sc__fleet_trimmed_past(r, pos, first);
    freeReplyObject(r);
    return 0;
}

typedef struct {
    redisContext *c;
    const sc_config_t *cfg;
    const char *key;
    uint64_t sent, failed;
} flush_t;

static int flush_one(void *ctx, uint64_t seq, const void *rec, size_t len)
{
    flush_t *fl = ctx;
    const char *argv[8];
    size_t lens[8];
    char trim[32];
    (void)seq;
    int argc = sc__fleet_xadd_args(fl->cfg, fl->key, rec, len, trim, argv, lens);
    redisReply *r = redisCommandArgv(fl->c, argc, argv, lens);
    if (!r || r->type == REDIS_REPLY_ERROR)
        fl->failed++;
    else
        fl->sent++;
    freeReplyObject(r);
    return fl->failed ? 1 : 0;
}

/* Opens the local store (creating it) to read its position, and publishes
 * what it has not published: the snapshot replaces the whole environment. */
static int local_position(const sc_config_t *cfg, sc_log_t *log, const char *dir, redisContext *c,
                          const char *key, sc_stream_id_t *applied, uint64_t *node, int publish)
{
    sc_store_t *s;
    sc_store_fleet_opts_t o = {.outbox_max = 0, .tombstone_ms = 1000, .max_skew_ms = 1000};
    int rc = sc_store_create(&s, cfg, log);
    if (rc)
        return rc;
    if ((rc = sc_store_fleet_enable(s, &o, NULL)) || (rc = sc_store_open(s, dir))) {
        sc_store_destroy(s);
        return rc;
    }
    sc_store_fleet_applied(s, applied);
    *node = sc_store_fleet_node(s);
    flush_t fl = {c, cfg, key, 0, 0};
    if (publish)
        sc_store_fleet_outbox_read(s, 0, SIZE_MAX, flush_one, &fl);
    sc_store_destroy(s);
    if (fl.failed) {
        sc_log(log, SC_ERROR,
               "fleet: could not publish this node's %llu unpublished changes "
               "before copying a snapshot; keeping the local store",
               (unsigned long long)fl.failed);
        return SC_EREMOTE;
    }
    if (fl.sent)
        sc_log(log, SC_INFO, "fleet: published %llu unpublished local changes",
               (unsigned long long)fl.sent);
    return 0;
}

/* Peers that can serve a snapshot covering 'need', best (furthest) first. */
static size_t pick_peers(redisContext *c, const char *nodes_key, uint64_t self,
                         const sc_stream_id_t *need, fleet_peer_t *out, size_t cap)
{
    redisReply *r = redisCommand(c, "HGETALL %s", nodes_key);
    size_t n = 0;
    uint64_t now = sc_now_ms();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements && n < cap;
         i += 2) {
        redisReply *k = r->element[i], *v = r->element[i + 1];
        fleet_peer_t p;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
            sc__fleet_peer_parse(k->str, k->len, v->str, v->len, &p) || p.node == self ||
            strcmp(p.url, "-") == 0 || p.seen_ms + FLEET_PEER_FRESH_MS < now ||
            sc__fleet_id_cmp(&p.applied, need) < 0)
            continue;
        size_t at = n++;
        while (at && sc__fleet_id_cmp(&out[at - 1].applied, &p.applied) < 0) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = p;
    }
    freeReplyObject(r);
    return n;
}

static size_t write_file(char *p, size_t size, size_t n, void *ctx)
{
    return fwrite(p, size, n, (FILE *)ctx);
}

/* GETs 'url' into 'path'. */
static int download(const char *url, const char *token, const char *path, sc_log_t *log)
{
    FILE *out = fopen(path, "wb");
    if (!out)
        return -errno;
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = NULL;
    char auth[300];
    if (token && token[0]) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, auth);
    }
    CURLcode cc = CURLE_FAILED_INIT;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_file);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
        curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)BOOT_TIMEOUT_S);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* stalled 30 s: give up */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
        cc = curl_easy_perform(h);
        curl_easy_cleanup(h);
    }
    curl_slist_free_all(hdr);
    int frc = fflush(out) || fsync(fileno(out));
    fclose(out);
    if (cc != CURLE_OK || frc) {
        sc_log(log, SC_WARN, "fleet: snapshot from %s failed: %s", url,
               cc != CURLE_OK ? curl_easy_strerror(cc) : "could not write it");
        return SC_EREMOTE;
    }
    return 0;
}

/* Checks the trailer of the snapshot in 'path' and cuts it off. */
static int strip_trailer(const char *path)
{
    struct stat st;
    uint8_t t[SC_FLEET_SNAPSHOT_TRAILER], want[SC_FLEET_SNAPSHOT_TRAILER];
    FILE *f = fopen(path, "r+b");
    if (!f)
        return -errno;
    int rc = SC_ECORRUPT;
    if (fstat(fileno(f), &st) == 0 && st.st_size > SC_FLEET_SNAPSHOT_TRAILER &&
        fseeko(f, st.st_size - SC_FLEET_SNAPSHOT_TRAILER, SEEK_SET) == 0 &&
        fread(t, 1, sizeof(t), f) == sizeof(t)) {
        uint64_t len = (uint64_t)st.st_size - SC_FLEET_SNAPSHOT_TRAILER;
        sc_fleet_snapshot_trailer(len, want);
        if (memcmp(t, want, sizeof(t)) == 0 && ftruncate(fileno(f), (off_t)len) == 0 &&
            fsync(fileno(f)) == 0)
            rc = 0;
    }
    fclose(f);
    return rc;
}

/* Copies peer 'p''s snapshot into 'dir' (replacing its environment) if it
 * covers 'need'. */
static int install_from(const fleet_peer_t *p, const char *token, const char *dir,
                        const sc_stream_id_t *need, sc_log_t *log)
{
    char tmp[1200], file[1300], target[1300], lock[1300];
    snprintf(tmp, sizeof(tmp), "%s/.snapshot", dir);
    snprintf(file, sizeof(file), "%s/data.mdb", tmp);
    snprintf(target, sizeof(target), "%s/data.mdb", dir);
    snprintf(lock, sizeof(lock), "%s/lock.mdb", tmp);
    if (mkdir(tmp, 0755) && errno != EEXIST)
        return -errno;
    sc_stream_id_t got;
    int rc = download(p->url, token, file, log);
    if (!rc && (rc = strip_trailer(file)))
        sc_log(log, SC_WARN, "fleet: the snapshot from %s is incomplete", p->url);
    if (!rc && (rc = sc_store_fleet_adopt(tmp, &got)) == 0 && sc__fleet_id_cmp(&got, need) < 0)
        rc = SC_ECONFLICT; /* the peer fell behind meanwhile */
    if (!rc && rename(file, target))
        rc = -errno;
    unlink(file);
    unlink(lock);
    rmdir(tmp);
    if (rc)
        return rc;
    snprintf(lock, sizeof(lock), "%s/lock.mdb", dir);
    unlink(lock);
    char id[48];
    sc__fleet_id_format(&got, id);
    sc_log(log, SC_INFO,
           "fleet: installed the snapshot of node %016llx from %s (applied up "
           "to %s)",
           (unsigned long long)p->node, p->url, id);
    return 0;
}

int sc_fleet_bootstrap(const sc_config_t *cfg, sc_log_t *log, const char *dir,
                       const char *admin_token, int *installed)
{
    sc_redis_addr_t addr;
    char err[256], stream_key[192], nodes_key[192];
    *installed = 0;
    if (sc_redis_addr_parse(cfg->redis, &addr, err, sizeof(err)))
        return SC_EINVAL;
    sc__fleet_keys(cfg->fleet, stream_key, nodes_key, sizeof(stream_key));
    redisContext *c = connect_sync(&addr, log);
    if (!c)
        return 0;
    sc_stream_id_t first, applied;
    uint64_t node;
    int gap = 0;
    int rc = local_position(cfg, log, dir, c, stream_key, &applied, &node, 0);
    if (!rc)
        rc = stream_gap(c, stream_key, &applied, &first, &gap);
    char marker[1200];
    snprintf(marker, sizeof(marker), "%s/" SC_FLEET_RESYNC_MARKER, dir);
    int forced = !rc && !gap && access(marker, F_OK) == 0;
    if (forced) { /* it saw the gap while running, then read on past it */
        sc_log(log, SC_INFO, "fleet: this node missed trimmed records while it ran (%s)", marker);
        first = applied; /* a peer's snapshot must cover this node's position */
        if (first.seq != UINT64_MAX)
            first.seq++;
        else
            first = (sc_stream_id_t){first.ms + 1, 0};
        gap = 1;
    }
    if (rc || !gap) {
        redisFree(c);
        return rc == SC_EREMOTE ? 0 : rc; /* nothing was trimmed past this node */
    }
    char have[48], head[48];
    sc__fleet_id_format(&applied, have);
    sc__fleet_id_format(&first, head);
    if (!forced)
        sc_log(log, SC_INFO,
               "fleet: the stream now starts at %s, records after this node's "
               "position %s were trimmed: copying a peer's snapshot",
               head, have);
    /* A peer's snapshot covers the gap if it applied up to just before the
     * first record left. */
    sc_stream_id_t trimmed = first;
    if (trimmed.seq)
        trimmed.seq--;
    else if (trimmed.ms)
        trimmed = (sc_stream_id_t){trimmed.ms - 1, UINT64_MAX};
    if (local_position(cfg, log, dir, c, stream_key, &applied, &node, 1)) {
        redisFree(c);
        return 0;
    }
    fleet_peer_t peers[16];
    /* The peers' registry rows are a heartbeat (about a second) behind what
     * they applied: wait for one to show it covers this node's gap. */
    size_t n = 0;
    for (int tries = 0; tries < 4 * BOOT_TIMEOUT_S; tries++) {
        if ((n = pick_peers(c, nodes_key, node, &trimmed, peers, 16)) > 0)
            break;
        usleep(250 * 1000);
    }
    redisFree(c);
    for (size_t i = 0; i < n; i++)
        if (install_from(&peers[i], admin_token, dir, &trimmed, log) == 0) {
            *installed = 1;
            unlink(marker);
            return 0;
        }
    sc_log(log, SC_ERROR,
           "fleet: no peer could give a snapshot (%zu tried); starting from "
           "the local store, which misses the changes trimmed from the stream",
           n);
    return 0;
}
