/* scopes_snapshot.c -- the scope manager's snapshots: every scope's index in
 * its own file (flat rows, an hnswlib graph plus its unmerged delta and
 * tombstones) and a manifest, written then renamed, that names the LMDB
 * transaction the files match and an xxh3 per file. A load is all or
 * nothing: any stale or damaged part and the caller rebuilds from LMDB. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "scopes_internal.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define FLAT_MAGIC 0x31464353u  /* "SCF1" */
#define DELTA_MAGIC 0x31444353u /* "SCD1" */

static int file_xxh3(const char *path, uint64_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    XXH3_state_t *st = XXH3_createState();
    if (!st) {
        fclose(f);
        return SC_ENOMEM;
    }
    XXH3_64bits_reset(st);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        XXH3_64bits_update(st, buf, n);
    int rc = ferror(f) ? SC_ECORRUPT : 0;
    fclose(f);
    *out = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return rc;
}

static int write_flat(const sc_flat_t *f, const char *path)
{
    FILE *o = fopen(path, "wb");
    if (!o)
        return -errno;
    uint32_t hdr[2] = {FLAT_MAGIC, sc_flat_dim(f)};
    uint64_t n = sc_flat_count(f);
    int ok = fwrite(hdr, sizeof(hdr), 1, o) == 1 && fwrite(&n, 8, 1, o) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        uint64_t label = sc_flat_label(f, i);
        ok = fwrite(&label, 8, 1, o) == 1 &&
             fwrite(sc_flat_row(f, i), sizeof(float), hdr[1], o) == hdr[1];
    }
    ok = fflush(o) == 0 && fsync(fileno(o)) == 0 && ok;
    return fclose(o) == 0 && ok ? 0 : SC_ESTORE;
}

static int read_flat(const char *path, uint32_t dim, sc_flat_t **out)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        return SC_ECORRUPT;
    uint32_t hdr[2];
    uint64_t n;
    int rc = SC_ECORRUPT;
    float *row = malloc(dim * sizeof(float));
    if (row && fread(hdr, sizeof(hdr), 1, in) == 1 && fread(&n, 8, 1, in) == 1 &&
        hdr[0] == FLAT_MAGIC && hdr[1] == dim && sc_flat_create(out, dim) == 0) {
        rc = 0;
        for (uint64_t i = 0; i < n && !rc; i++) {
            uint64_t label;
            if (fread(&label, 8, 1, in) != 1 || fread(row, sizeof(float), dim, in) != dim)
                rc = SC_ECORRUPT;
            else
                rc = sc_flat_add(*out, row, label);
        }
        if (rc)
            sc_flat_destroy(*out);
    }
    free(row);
    fclose(in);
    return rc;
}

/* The upper layers of an HNSW scope as one file: delta rows (the current
 * delta, then frozen rows nobody replaced or removed since), then the
 * tombstones that name a live graph vector. Loaded back, they rebuild the
 * same layers around the saved graph. */
static int write_delta(const scope_t *sc, const char *path)
{
    FILE *o = fopen(path, "wb");
    if (!o)
        return -errno;
    uint32_t hdr[2] = {DELTA_MAGIC, sc->dim};
    const sc_flat_t *fd = sc->frozen_delta;
    uint64_t n = sc_flat_count(sc->delta);
    for (size_t i = 0; fd && i < sc_flat_count(fd); i++)
        n += !labelset_has(&sc->tomb, sc_flat_label(fd, i));
    int ok = fwrite(hdr, sizeof(hdr), 1, o) == 1 && fwrite(&n, 8, 1, o) == 1;
    for (int layer = 0; layer < 2; layer++) {
        const sc_flat_t *f = layer ? fd : sc->delta;
        for (size_t i = 0; ok && f && i < sc_flat_count(f); i++) {
            uint64_t label = sc_flat_label(f, i);
            if (layer && labelset_has(&sc->tomb, label))
                continue;
            ok = fwrite(&label, 8, 1, o) == 1 &&
                 fwrite(sc_flat_row(f, i), sizeof(float), sc->dim, o) == sc->dim;
        }
    }
    uint64_t nt = 0;
    const labelset_t *sets[2] = {&sc->tomb, &sc->frozen_tomb};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < sets[k]->cap; i++)
            nt += sets[k]->used[i] && sc_hnsw_contains(sc->graph->h, sets[k]->keys[i]) &&
                  (k == 0 || !labelset_has(&sc->tomb, sets[k]->keys[i]));
    ok = ok && fwrite(&nt, 8, 1, o) == 1;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; ok && i < sets[k]->cap; i++)
            if (sets[k]->used[i] && sc_hnsw_contains(sc->graph->h, sets[k]->keys[i]) &&
                (k == 0 || !labelset_has(&sc->tomb, sets[k]->keys[i])))
                ok = fwrite(&sets[k]->keys[i], 8, 1, o) == 1;
    ok = fflush(o) == 0 && fsync(fileno(o)) == 0 && ok;
    return fclose(o) == 0 && ok ? 0 : SC_ESTORE;
}

/* Reads a delta file into the (empty) upper layers of HNSW scope 'sc'. */
static int read_delta(const char *path, scope_t *sc)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        return SC_ECORRUPT;
    uint32_t hdr[2];
    uint64_t n = 0, nt = 0;
    int rc = SC_ECORRUPT;
    float *row = malloc(sc->dim * sizeof(float));
    if (row && fread(hdr, sizeof(hdr), 1, in) == 1 && fread(&n, 8, 1, in) == 1 &&
        hdr[0] == DELTA_MAGIC && hdr[1] == sc->dim) {
        rc = 0;
        for (uint64_t i = 0; i < n && !rc; i++) {
            uint64_t label;
            if (fread(&label, 8, 1, in) != 1 || fread(row, sizeof(float), sc->dim, in) != sc->dim)
                rc = SC_ECORRUPT;
            else
                rc = sc_flat_add(sc->delta, row, label);
        }
        if (!rc && fread(&nt, 8, 1, in) != 1)
            rc = SC_ECORRUPT;
        for (uint64_t i = 0; i < nt && !rc; i++) {
            uint64_t label;
            if (fread(&label, 8, 1, in) != 1 || !sc_hnsw_contains(sc->graph->h, label))
                rc = SC_ECORRUPT;
            else
                rc = labelset_add(&sc->tomb, label);
        }
    }
    free(row);
    fclose(in);
    return rc;
}

static void hex64(char out[17], uint64_t v)
{
    snprintf(out, 17, "%016llx", (unsigned long long)v);
}

int sc_scopes_save(sc_scopes_t *s, const char *dir, uint64_t txnid)
{
    if (mkdir(dir, 0755) && errno != EEXIST)
        return -errno;
    json_t *scopes = json_array();
    int rc = 0;
    pthread_rwlock_rdlock(&s->table_lock);
    for (size_t i = 0; i < s->n_buckets && !rc; i++)
        for (scope_t *sc = s->buckets[i]; sc && !rc; sc = sc->next) {
            pthread_rwlock_rdlock(&sc->lock);
            if (scopes_index_live(sc) == 0) {
                pthread_rwlock_unlock(&sc->lock);
                continue;
            }
            char name[64], dname[64], path[4096];
            char scope_hex[17], sum_hex[17], dsum_hex[17];
            snprintf(name, sizeof(name), "%016llx.%s", (unsigned long long)sc->id,
                     sc->flat ? "flat" : "hnsw");
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            rc = sc->flat ? write_flat(sc->flat, path) : sc_hnsw_save(sc->graph->h, path);
            uint64_t sum = 0, dsum = 0;
            if (!rc)
                rc = file_xxh3(path, &sum);
            if (!rc && !sc->flat) {
                snprintf(dname, sizeof(dname), "%016llx.delta", (unsigned long long)sc->id);
                snprintf(path, sizeof(path), "%s/%s", dir, dname);
                rc = write_delta(sc, path);
                if (!rc)
                    rc = file_xxh3(path, &dsum);
            }
            hex64(scope_hex, sc->id);
            hex64(sum_hex, sum);
            hex64(dsum_hex, dsum);
            json_t *ent = json_pack("{s:s,s:s,s:i,s:s,s:s}", "scope", scope_hex, "kind",
                                    sc->flat ? "flat" : "hnsw", "dim", (json_int_t)sc->dim, "file",
                                    name, "xxh3", sum_hex);
            if (!sc->flat) {
                json_object_set_new(ent, "delta_file", json_string(dname));
                json_object_set_new(ent, "delta_xxh3", json_string(dsum_hex));
            }
            json_array_append_new(scopes, ent);
            pthread_rwlock_unlock(&sc->lock);
        }
    pthread_rwlock_unlock(&s->table_lock);
    if (!rc) {
        char txn[32], tmp[4096], path[4096];
        snprintf(txn, sizeof(txn), "%llu", (unsigned long long)txnid);
        json_t *m = json_pack("{s:i,s:s,s:o}", "version", 1, "lmdb_txnid", txn, "scopes", scopes);
        scopes = NULL;
        snprintf(tmp, sizeof(tmp), "%s/manifest.json.tmp", dir);
        snprintf(path, sizeof(path), "%s/manifest.json", dir);
        /* Written then renamed: a crash leaves the old manifest or the new. */
        rc = json_dump_file(m, tmp, JSON_INDENT(1)) ? SC_ESTORE : 0;
        json_decref(m);
        if (!rc && rename(tmp, path))
            rc = -errno;
    }
    json_decref(scopes);
    return rc;
}

/* Whether file 'name' in 'dir' has checksum 'sum_hex'. */
static int checksum_ok(const char *dir, const char *name, const char *sum_hex)
{
    char path[4096];
    uint64_t sum;
    if (!name || !sum_hex || strchr(name, '/'))
        return 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return file_xxh3(path, &sum) == 0 && sum == strtoull(sum_hex, NULL, 16);
}

int sc_scopes_load_snapshot(sc_scopes_t *s, const char *dir, uint64_t txnid)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    json_error_t e;
    json_t *m = json_load_file(path, 0, &e);
    if (!m)
        return access(path, F_OK) ? SC_ENOTFOUND : SC_ECORRUPT;
    const char *txn = json_string_value(json_object_get(m, "lmdb_txnid"));
    json_t *scopes = json_object_get(m, "scopes");
    if (json_integer_value(json_object_get(m, "version")) != 1 || !txn || !json_is_array(scopes)) {
        json_decref(m);
        return SC_ECORRUPT;
    }
    if (strtoull(txn, NULL, 10) != txnid) {
        json_decref(m);
        return SC_ECONFLICT;
    }
    int rc = 0;
    size_t i;
    json_t *ent;
    json_array_foreach(scopes, i, ent)
    {
        const char *scope_hex = json_string_value(json_object_get(ent, "scope"));
        const char *kind = json_string_value(json_object_get(ent, "kind"));
        const char *file = json_string_value(json_object_get(ent, "file"));
        const char *sum_hex = json_string_value(json_object_get(ent, "xxh3"));
        json_int_t dim = json_integer_value(json_object_get(ent, "dim"));
        if (!scope_hex || !kind || !file || !sum_hex || dim <= 0 || dim > 65536 ||
            strchr(file, '/')) {
            rc = SC_ECORRUPT;
            break;
        }
        const char *dfile = json_string_value(json_object_get(ent, "delta_file"));
        const char *dsum = json_string_value(json_object_get(ent, "delta_xxh3"));
        if (!checksum_ok(dir, file, sum_hex) || (dfile && !checksum_ok(dir, dfile, dsum))) {
            rc = SC_ECORRUPT;
            break;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        scope_t *sc = scopes_scope_new(strtoull(scope_hex, NULL, 16), (uint32_t)dim);
        if (!sc) {
            rc = SC_ENOMEM;
            break;
        }
        if (strcmp(kind, "hnsw") == 0) {
            sc_hnsw_t *h = NULL;
            rc = sc_hnsw_load(&h, path, (uint32_t)dim);
            if (!rc) {
                sc_hnsw_set_ef(h, s->cfg.hnsw_ef_search);
                (void)sc_hnsw_quantize(h, s->cfg.hnsw_int8); /* float32 without memory for it */
                rc = scopes_become_hnsw(sc, h);
                if (rc)
                    sc_hnsw_destroy(h);
            }
            if (!rc && dfile) {
                snprintf(path, sizeof(path), "%s/%s", dir, dfile);
                rc = read_delta(path, sc);
            }
        } else {
            sc_flat_destroy(sc->flat);
            sc->flat = NULL;
            rc = read_flat(path, (uint32_t)dim, &sc->flat);
        }
        if (rc) {
            scopes_scope_free(sc);
            rc = SC_ECORRUPT;
            break;
        }
        scopes_insert(s, sc);
    }
    json_decref(m);
    if (rc)
        scopes_clear_table(s); /* all or nothing: the caller rebuilds from LMDB */
    return rc;
}
