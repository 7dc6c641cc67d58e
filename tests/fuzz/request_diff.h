/* request_diff.h -- the fast lookup decoder (cache/request_fast.c) against the
 * jansson path on one body, for the differential unit test and the libFuzzer
 * harness: whenever the fast path accepts, jansson must accept too, with the
 * same key, scope, fields, text and vector, and the body it keeps must decode
 * to the same tree. */
#ifndef REQUEST_DIFF_H
#define REQUEST_DIFF_H

#include <stdio.h>
#include <string.h>

#include "sc_request.h"

static int diff_str(const char *a, size_t an, const char *b, size_t bn)
{
    return an != bn || (an && memcmp(a, b, an) != 0);
}

/* 1: the fast path accepted and agrees; 0: it declined; -1: they disagree,
 * with the first difference in 'why'. */
static inline int request_diff(const char *body, size_t len, char *why, size_t why_cap)
{
    sc_request_t f, j;
    char err[256];
    int frc = sc_request_parse_fast(&f, body, len);
    if (frc != 0 && frc != SC_EINVAL && frc != SC_ENOMEM) {
        snprintf(why, why_cap, "fast path returned %d", frc);
        return -1;
    }
    if (frc)
        return 0;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    int jrc = root ? sc_request_from_json(&j, SC_REQ_LOOKUP, root, err, sizeof(err)) : SC_EINVAL;
    const char *d = NULL;
    if (jrc)
        d = root ? err : "jansson refuses the body";
    else if (memcmp(f.key, j.key, sizeof(f.key)))
        d = "key";
    else if (f.scope != j.scope)
        d = "scope";
    else if (diff_str(f.ns, f.ns_len, j.ns, j.ns_len) || f.ns[f.ns_len])
        d = "namespace";
    else if (diff_str(f.tenant, f.tenant_len, j.tenant, j.tenant_len) || f.tenant[f.tenant_len])
        d = "tenant";
    else if (diff_str(f.model, f.model_len, j.model, j.model_len) || f.model[f.model_len])
        d = "model";
    else if (diff_str(f.text.data, f.text.len, j.text.data, j.text.len))
        d = "text";
    else if (f.has_max_age != j.has_max_age || memcmp(&f.max_age_s, &j.max_age_s, sizeof(double)))
        d = "max_age_s";
    else if (f.has_threshold != j.has_threshold ||
             memcmp(&f.threshold, &j.threshold, sizeof(double)))
        d = "threshold";
    else if (f.lease != j.lease)
        d = "lease";
    else if (!f.embedder != !j.embedder || (f.embedder && strcmp(f.embedder, j.embedder)))
        d = "embedder";
    else if (f.dim != j.dim || !f.vec != !j.vec ||
             (f.vec && memcmp(f.vec, j.vec, f.dim * sizeof(float))))
        d = "embedding";
    else if (f.root || !f.src || !json_equal(sc_request_json(&f), j.root))
        d = "the kept body";
    if (d) { /* truncated to 'why_cap' (copied by hand: gcc warns of snprintf's truncation) */
        size_t n = 0;
        for (const char *p = "fast path and jansson differ: "; *p && n + 1 < why_cap; p++)
            why[n++] = *p;
        for (const char *p = d; *p && n + 1 < why_cap; p++)
            why[n++] = *p;
        why[n] = '\0';
    }
    sc_request_free(&f);
    if (!jrc)
        sc_request_free(&j);
    return d ? -1 : 1;
}

#endif
