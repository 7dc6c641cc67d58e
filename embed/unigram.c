/* unigram.c -- the Unigram tokenizer of Hugging Face's tokenizers library, as
 * vocab-quantized model2vec models use it: the tokenizer.json's normalizer
 * sequence, the Metaspace pre-tokenizer (spaces become U+2581 "▁", one
 * prepended), then a Viterbi pass that picks the segmentation with the
 * highest total piece score. The lattice is walked position by position with
 * a hash lookup per candidate length (pieces are at most a few dozen
 * characters), and ties go to the earliest-starting piece, the order in which
 * tokenizers' lattice visits them, so the ids are the same. */
#define _GNU_SOURCE
#include "sc_embed.h"

#include <float.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "sc_common.h"
#include "sc_strindex.h"

#define UNK_PENALTY 10.0 /* tokenizers' kUnkPenalty */

typedef enum { NORM_BERT, NORM_LOWER, NORM_REPLACE, NORM_COLLAPSE_WS, NORM_STRIP } norm_kind_t;

typedef struct {
    norm_kind_t kind;
    sc_wordpiece_opts_t bert; /* NORM_BERT */
    char *from, *to;          /* NORM_REPLACE (to: also NORM_COLLAPSE_WS) */
    int left, right;          /* NORM_STRIP */
} norm_step_t;

struct sc_unigram_s {
    norm_step_t *steps;
    size_t n_steps;
    char replacement[8]; /* Metaspace's, UTF-8 */
    int prepend;         /* prepend_scheme "always" / "first" (one text = first) */
    int split;           /* split at each replacement */
    char **pieces;       /* id -> piece */
    double *scores;
    size_t n;
    size_t max_piece_bytes;
    sc_strindex_t index;
    int32_t unk;
    double unk_score;
};

/* ---- loading ---------------------------------------------------------------- */

static int add_step(sc_unigram_t *t, const norm_step_t *s)
{
    norm_step_t *p = realloc(t->steps, (t->n_steps + 1) * sizeof(*p));
    if (!p)
        return SC_ENOMEM;
    t->steps = p;
    t->steps[t->n_steps++] = *s;
    return 0;
}

/* One normalizer (not a Sequence). Returns 0, or SC_EINVAL with 'err' set. */
static int load_normalizer(sc_unigram_t *t, json_t *n, const char *path, char *err, size_t cap)
{
    const char *type = json_string_value(json_object_get(n, "type"));
    norm_step_t s = {0};
    if (type && strcmp(type, "BertNormalizer") == 0) {
        s.kind = NORM_BERT;
        s.bert.lowercase = json_is_true(json_object_get(n, "lowercase"));
        json_t *sa = json_object_get(n, "strip_accents");
        s.bert.strip_accents = !sa || json_is_null(sa) ? -1 : json_is_true(sa);
        s.bert.chinese_chars = json_is_true(json_object_get(n, "handle_chinese_chars"));
        s.bert.clean_text = json_is_true(json_object_get(n, "clean_text"));
        return add_step(t, &s);
    }
    if (type && strcmp(type, "Lowercase") == 0) {
        s.kind = NORM_LOWER;
        s.bert.lowercase = 1;
        s.bert.strip_accents = 0;
        return add_step(t, &s);
    }
    if (type && strcmp(type, "Strip") == 0) {
        s.kind = NORM_STRIP;
        s.left = !json_is_false(json_object_get(n, "strip_left"));
        s.right = !json_is_false(json_object_get(n, "strip_right"));
        return add_step(t, &s);
    }
    if (type && strcmp(type, "Replace") == 0) {
        json_t *pat = json_object_get(n, "pattern");
        const char *str = json_string_value(json_object_get(pat, "String"));
        const char *re = json_string_value(json_object_get(pat, "Regex"));
        const char *content = json_string_value(json_object_get(n, "content"));
        if (content && str && *str) {
            s.kind = NORM_REPLACE;
        } else if (content && re && strcmp(re, "\\s+") == 0) {
            s.kind = NORM_COLLAPSE_WS;
        } else {
            snprintf(err, cap, "%s: unsupported Replace normalizer (only strings and \"\\\\s+\")",
                     path);
            return SC_EINVAL;
        }
        s.from = str && s.kind == NORM_REPLACE ? strdup(str) : NULL;
        s.to = strdup(content);
        if (!s.to || (s.kind == NORM_REPLACE && !s.from)) {
            free(s.from);
            free(s.to);
            return SC_ENOMEM;
        }
        int rc = add_step(t, &s);
        if (rc) {
            free(s.from);
            free(s.to);
        }
        return rc;
    }
    snprintf(err, cap, "%s: unsupported normalizer %s for a Unigram tokenizer", path,
             type ? type : "?");
    return SC_EINVAL;
}

static int load_pre_tokenizer(sc_unigram_t *t, json_t *p, const char *path, char *err, size_t cap)
{
    const char *type = json_string_value(json_object_get(p, "type"));
    if (type && strcmp(type, "Sequence") == 0 &&
        json_array_size(json_object_get(p, "pretokenizers")) == 1)
        return load_pre_tokenizer(t, json_array_get(json_object_get(p, "pretokenizers"), 0), path,
                                  err, cap);
    if (!type || strcmp(type, "Metaspace") != 0) {
        snprintf(err, cap, "%s: a Unigram tokenizer needs the Metaspace pre-tokenizer (got %s)",
                 path, type ? type : "none");
        return SC_EINVAL;
    }
    const char *rep = json_string_value(json_object_get(p, "replacement"));
    if (!rep || !*rep || strlen(rep) >= sizeof(t->replacement)) {
        snprintf(err, cap, "%s: Metaspace needs a one-character replacement", path);
        return SC_EINVAL;
    }
    strcpy(t->replacement, rep);
    const char *scheme = json_string_value(json_object_get(p, "prepend_scheme"));
    json_t *add = json_object_get(p, "add_prefix_space"); /* older files */
    t->prepend = scheme ? strcmp(scheme, "never") != 0 : !json_is_false(add);
    json_t *split = json_object_get(p, "split");
    t->split = !json_is_false(split);
    return 0;
}

int sc_unigram_load_json(sc_unigram_t **out, const char *path, char *err, size_t err_cap)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        snprintf(err, err_cap, "%s: %s", path, je.text);
        return SC_EINVAL;
    }
    int rc = SC_EINVAL;
    sc_unigram_t *t = calloc(1, sizeof(*t));
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!t) {
        rc = SC_ENOMEM;
        goto done;
    }
    if (!type || strcmp(type, "Unigram") != 0 || !json_is_array(vocab) || !json_array_size(vocab)) {
        snprintf(err, err_cap, "%s: not a Unigram tokenizer (model.type is %s)", path,
                 type ? type : "missing");
        goto done;
    }
    if (json_is_true(json_object_get(model, "byte_fallback"))) {
        snprintf(err, err_cap, "%s: Unigram with byte_fallback is not supported", path);
        goto done;
    }
    json_t *norm = json_object_get(root, "normalizer");
    const char *ntype = json_string_value(json_object_get(norm, "type"));
    if (ntype && strcmp(ntype, "Sequence") == 0) {
        json_t *list = json_object_get(norm, "normalizers");
        for (size_t i = 0; i < json_array_size(list); i++)
            if ((rc = load_normalizer(t, json_array_get(list, i), path, err, err_cap)))
                goto done;
    } else if (norm && !json_is_null(norm)) {
        if ((rc = load_normalizer(t, norm, path, err, err_cap)))
            goto done;
    }
    if ((rc = load_pre_tokenizer(t, json_object_get(root, "pre_tokenizer"), path, err, err_cap)))
        goto done;
    t->n = json_array_size(vocab);
    t->pieces = calloc(t->n, sizeof(char *));
    t->scores = calloc(t->n, sizeof(double));
    rc = t->pieces && t->scores ? 0 : SC_ENOMEM;
    double min_score = DBL_MAX;
    for (size_t i = 0; i < t->n && !rc; i++) {
        json_t *e = json_array_get(vocab, i);
        const char *piece = json_string_value(json_array_get(e, 0));
        json_t *score = json_array_get(e, 1);
        if (!piece || !json_is_number(score)) {
            snprintf(err, err_cap, "%s: malformed Unigram vocabulary entry %zu", path, i);
            rc = SC_EINVAL;
            break;
        }
        if (!(t->pieces[i] = strdup(piece))) {
            rc = SC_ENOMEM;
            break;
        }
        t->scores[i] = json_number_value(score);
        if (t->scores[i] < min_score)
            min_score = t->scores[i];
        size_t len = strlen(piece);
        if (len > t->max_piece_bytes)
            t->max_piece_bytes = len;
    }
    json_t *unk = json_object_get(model, "unk_id");
    t->unk = json_is_integer(unk) && json_integer_value(unk) >= 0 &&
                     (size_t)json_integer_value(unk) < t->n
                 ? (int32_t)json_integer_value(unk)
                 : -1;
    t->unk_score = min_score - UNK_PENALTY;
    if (!rc)
        rc = sc_strindex_build(&t->index, (const char *const *)t->pieces, t->n);
done:
    json_decref(root);
    if (rc) {
        sc_unigram_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void sc_unigram_free(sc_unigram_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_steps; i++) {
        free(t->steps[i].from);
        free(t->steps[i].to);
    }
    free(t->steps);
    for (size_t i = 0; t->pieces && i < t->n; i++)
        free(t->pieces[i]);
    free(t->pieces);
    free(t->scores);
    sc_strindex_free(&t->index);
    free(t);
}

int32_t sc_unigram_unk(const sc_unigram_t *t)
{
    return t->unk;
}

size_t sc_unigram_vocab_size(const sc_unigram_t *t)
{
    return t->n;
}

const char *sc_unigram_token(const sc_unigram_t *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n ? t->pieces[id] : NULL;
}

/* ---- normalization -------------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Applies one step to 'in' (n bytes), writing the result to 'out'. */
static int apply_step(const norm_step_t *st, const char *in, size_t n, sc_buf_t *out)
{
    out->len = 0;
    switch (st->kind) {
    case NORM_BERT:
    case NORM_LOWER: {
        char *s;
        size_t len;
        int rc = sc_bert_normalize(&st->bert, in, n, &s, &len);
        if (rc)
            return rc;
        rc = sc_buf_append(out, s, len);
        free(s);
        return rc;
    }
    case NORM_REPLACE: {
        size_t flen = strlen(st->from), tlen = strlen(st->to), i = 0;
        while (i < n) {
            const char *hit = flen <= n - i ? memmem(in + i, n - i, st->from, flen) : NULL;
            size_t upto = hit ? (size_t)(hit - in) : n;
            if (sc_buf_append(out, in + i, upto - i) || (hit && sc_buf_append(out, st->to, tlen)))
                return SC_ENOMEM;
            i = hit ? upto + flen : n;
        }
        return sc_buf_append(out, "", 0);
    }
    case NORM_COLLAPSE_WS: {
        size_t tlen = strlen(st->to);
        for (size_t i = 0; i < n;) {
            if (is_space(in[i])) {
                while (i < n && is_space(in[i]))
                    i++;
                if (sc_buf_append(out, st->to, tlen))
                    return SC_ENOMEM;
            } else {
                size_t j = i;
                while (j < n && !is_space(in[j]))
                    j++;
                if (sc_buf_append(out, in + i, j - i))
                    return SC_ENOMEM;
                i = j;
            }
        }
        return sc_buf_append(out, "", 0);
    }
    case NORM_STRIP: {
        size_t b = 0, e = n;
        while (st->left && b < e && is_space(in[b]))
            b++;
        while (st->right && e > b && is_space(in[e - 1]))
            e--;
        return sc_buf_append(out, in + b, e - b);
    }
    }
    return SC_EINVAL;
}

/* ---- Viterbi ------------------------------------------------------------------ */

static size_t utf8_char_len(unsigned char c)
{
    return c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

/* Segments 's' (n bytes) and appends its ids. Returns the new count, or SC_E*. */
static int viterbi(const sc_unigram_t *t, const char *s, size_t n, int32_t *ids, size_t cap,
                   size_t have)
{
    if (!n)
        return (int)have;
    double *best = malloc((n + 1) * sizeof(double));
    int32_t *piece = malloc((n + 1) * sizeof(int32_t)); /* piece ending here on the best path */
    size_t *from = malloc((n + 1) * sizeof(size_t));
    int32_t *rev = malloc((n + 1) * sizeof(int32_t));
    int rc = best && piece && from && rev ? 0 : SC_ENOMEM;
    if (rc)
        goto out;
    for (size_t i = 0; i <= n; i++)
        from[i] = SIZE_MAX;
    best[0] = 0.0;
    from[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (from[i] == SIZE_MAX || (i && ((unsigned char)s[i] & 0xC0) == 0x80))
            continue;
        size_t ch = utf8_char_len((unsigned char)s[i]);
        if (ch > n - i)
            ch = n - i;
        int single = 0;
        for (size_t j = i + 1; j <= n && j - i <= t->max_piece_bytes; j++) {
            if (j < n && ((unsigned char)s[j] & 0xC0) == 0x80)
                continue; /* not a character boundary */
            int32_t id = sc_strindex_find(&t->index, s + i, j - i);
            if (id < 0)
                continue;
            single |= j == i + ch;
            double cand = best[i] + t->scores[id];
            if (from[j] == SIZE_MAX || cand > best[j]) {
                best[j] = cand;
                from[j] = i;
                piece[j] = id;
            }
        }
        if (!single) { /* no piece covers this character: [UNK] */
            double cand = best[i] + t->unk_score;
            size_t j = i + ch;
            if (from[j] == SIZE_MAX || cand > best[j]) {
                best[j] = cand;
                from[j] = i;
                piece[j] = -1;
            }
        }
    }
    size_t k = 0;
    if (from[n] == SIZE_MAX) { /* unreachable with valid UTF-8; never loop on it */
        rc = (int)have;
        goto out;
    }
    for (size_t j = n; j > 0; j = from[j])
        rev[k++] = piece[j];
    /* Consecutive unknown characters make one [UNK], as with fuse_unk. */
    for (size_t i = k; i-- > 0 && have < cap;) {
        int32_t id = rev[i] < 0 ? t->unk : rev[i];
        if (rev[i] < 0 && i + 1 < k && rev[i + 1] < 0)
            continue;
        ids[have++] = id;
    }
    rc = (int)have;
out:
    free(best);
    free(piece);
    free(from);
    free(rev);
    return rc;
}

int sc_unigram_encode(const sc_unigram_t *t, const char *text, size_t len, int32_t *ids, size_t cap)
{
    sc_buf_t a = {0}, b = {0};
    /* Only valid UTF-8 goes on (invalid bytes are dropped, as the BERT
     * normalizer does), so every character boundary is found below. */
    int rc = sc_buf_append(&a, "", 0);
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    for (utf8proc_ssize_t left = (utf8proc_ssize_t)len; left > 0 && !rc;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(p, left, &c);
        if (k <= 0) {
            p++;
            left--;
            continue;
        }
        rc = sc_buf_append(&a, (const char *)p, (size_t)k);
        p += k;
        left -= k;
    }
    for (size_t i = 0; i < t->n_steps && !rc; i++) {
        rc = apply_step(&t->steps[i], a.data, a.len, &b);
        sc_buf_t tmp = a;
        a = b;
        b = tmp;
    }
    /* Metaspace: spaces become the replacement, one is prepended. */
    size_t rlen = strlen(t->replacement);
    b.len = 0;
    if (!rc && t->prepend && a.len && (a.len < rlen || memcmp(a.data, t->replacement, rlen) != 0))
        rc = sc_buf_append(&b, t->replacement, rlen);
    for (size_t i = 0; i < a.len && !rc; i++)
        rc = a.data[i] == ' ' ? sc_buf_append(&b, t->replacement, rlen)
                              : sc_buf_append(&b, a.data + i, 1);
    int have = 0;
    if (!rc) {
        /* With split, each word starts at a replacement (merged with next). */
        size_t start = 0;
        for (size_t i = 1; t->split && i <= b.len && have >= 0; i++) {
            if (i == b.len ||
                (i + rlen <= b.len && memcmp(b.data + i, t->replacement, rlen) == 0)) {
                have = viterbi(t, b.data + start, i - start, ids, cap, (size_t)have);
                start = i;
            }
        }
        if (!t->split)
            have = viterbi(t, b.data, b.len, ids, cap, 0);
        rc = have < 0 ? have : 0;
    }
    sc_buf_free(&a);
    sc_buf_free(&b);
    return rc ? rc : have;
}
