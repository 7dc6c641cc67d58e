/* wordpiece.c -- BERT tokenization as Hugging Face does it: BertNormalizer
 * (clean text, space out CJK ideographs, NFD + drop nonspacing marks, lower
 * case), BertPreTokenizer (split on whitespace and around punctuation), then
 * greedy longest-match-first WordPiece with "##" continuations. Unicode
 * properties and decompositions come from utf8proc, not hand-written tables. */
#define _GNU_SOURCE
#include "sc_embed.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "sc_strindex.h"

struct sc_wordpiece_s {
    sc_wordpiece_opts_t o;
    char **tokens; /* id -> token */
    size_t n;
    sc_strindex_t index; /* token -> id */
    int32_t unk;
};

/* ---- vocabulary --------------------------------------------------------- */

static int32_t lookup(const sc_wordpiece_t *t, const char *s, size_t len)
{
    return sc_strindex_find(&t->index, s, len);
}

static int build_index(sc_wordpiece_t *t)
{
    if (sc_strindex_build(&t->index, (const char *const *)t->tokens, t->n))
        return SC_ENOMEM;
    t->unk = lookup(t, "[UNK]", 5);
    return 0;
}

static int add_token(sc_wordpiece_t *t, size_t id, const char *s, size_t len, size_t *cap)
{
    if (id >= *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        while (nc <= id)
            nc *= 2;
        char **nt = realloc(t->tokens, nc * sizeof(char *));
        if (!nt)
            return SC_ENOMEM;
        memset(nt + *cap, 0, (nc - *cap) * sizeof(char *));
        t->tokens = nt;
        *cap = nc;
    }
    if (t->tokens[id]) /* the same id twice: the file is malformed */
        return SC_EINVAL;
    if (!(t->tokens[id] = strndup(s, len)))
        return SC_ENOMEM;
    if (id + 1 > t->n)
        t->n = id + 1;
    return 0;
}

static void default_opts(sc_wordpiece_opts_t *o)
{
    o->lowercase = 1;
    o->strip_accents = -1;
    o->chinese_chars = 1;
    o->clean_text = 1;
    o->max_word_chars = 100;
}

int sc_wordpiece_load_vocab(sc_wordpiece_t **out, const char *path, const sc_wordpiece_opts_t *o)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return SC_ENOTFOUND;
    sc_wordpiece_t *t = calloc(1, sizeof(*t));
    if (!t) {
        fclose(f);
        return SC_ENOMEM;
    }
    if (o)
        t->o = *o;
    else
        default_opts(&t->o);
    char *line = NULL;
    size_t lcap = 0, cap = 0, id = 0;
    ssize_t len;
    int rc = 0;
    while (!rc && (len = getline(&line, &lcap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        rc = add_token(t, id++, line, (size_t)len, &cap);
    }
    free(line);
    fclose(f);
    if (!rc && !t->n)
        rc = SC_EINVAL;
    if (!rc)
        rc = build_index(t);
    if (rc) {
        sc_wordpiece_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int sc_wordpiece_load_json(sc_wordpiece_t **out, const char *path, char *err, size_t err_cap)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        snprintf(err, err_cap, "%s: %s", path, je.text);
        return SC_EINVAL;
    }
    int rc = SC_EINVAL;
    sc_wordpiece_t *t = calloc(1, sizeof(*t));
    json_t *model = json_object_get(root, "model");
    json_t *vocab = json_object_get(model, "vocab");
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!t || !type || strcmp(type, "WordPiece") != 0 || !json_is_object(vocab)) {
        snprintf(err, err_cap, "%s: only WordPiece tokenizers are supported (model.type is %s)",
                 path, type ? type : "missing");
        goto done;
    }
    default_opts(&t->o);
    json_t *norm = json_object_get(root, "normalizer");
    const char *ntype = json_string_value(json_object_get(norm, "type"));
    if (ntype && strcmp(ntype, "BertNormalizer") == 0) {
        t->o.lowercase = json_is_true(json_object_get(norm, "lowercase"));
        json_t *sa = json_object_get(norm, "strip_accents");
        t->o.strip_accents = json_is_null(sa) || !sa ? -1 : json_is_true(sa);
        t->o.chinese_chars = json_is_true(json_object_get(norm, "handle_chinese_chars"));
        t->o.clean_text = json_is_true(json_object_get(norm, "clean_text"));
    } else if (norm && !json_is_null(norm)) {
        snprintf(err, err_cap, "%s: unsupported normalizer %s", path, ntype ? ntype : "?");
        goto done;
    }
    json_t *mwc = json_object_get(model, "max_input_chars_per_word");
    if (json_is_integer(mwc) && json_integer_value(mwc) > 0)
        t->o.max_word_chars = (size_t)json_integer_value(mwc);
    size_t cap = 0;
    const char *k;
    json_t *v;
    rc = 0;
    json_object_foreach(vocab, k, v)
    {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id > 10000000) {
            rc = SC_EINVAL;
            break;
        }
        if ((rc = add_token(t, (size_t)id, k, strlen(k), &cap)))
            break;
    }
    for (size_t i = 0; !rc && i < t->n; i++)
        if (!t->tokens[i])
            rc = SC_EINVAL; /* ids must be dense */
    if (!rc && !t->n)
        rc = SC_EINVAL;
    if (!rc)
        rc = build_index(t);
    if (rc)
        snprintf(err, err_cap, "%s: malformed WordPiece vocabulary", path);
done:
    json_decref(root);
    if (rc) {
        sc_wordpiece_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void sc_wordpiece_free(sc_wordpiece_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++)
        free(t->tokens[i]);
    free(t->tokens);
    sc_strindex_free(&t->index);
    free(t);
}

int32_t sc_wordpiece_unk(const sc_wordpiece_t *t)
{
    return t->unk;
}

int32_t sc_wordpiece_id(const sc_wordpiece_t *t, const char *token)
{
    return lookup(t, token, strlen(token));
}

size_t sc_wordpiece_vocab_size(const sc_wordpiece_t *t)
{
    return t->n;
}

const char *sc_wordpiece_token(const sc_wordpiece_t *t, int32_t id)
{
    return id >= 0 && (size_t)id < t->n ? t->tokens[id] : NULL;
}

/* ---- normalization ------------------------------------------------------- */

static int is_ws(utf8proc_int32_t c)
{
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || c == 0x85)
        return 1;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
           cat == UTF8PROC_CATEGORY_ZP;
}

static int is_control(utf8proc_int32_t c)
{
    if (c == '\t' || c == '\n' || c == '\r')
        return 0;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
           cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CS ||
           cat == UTF8PROC_CATEGORY_CN;
}

static int is_cjk(utf8proc_int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_punct(utf8proc_int32_t c)
{
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
        (c >= 123 && c <= 126))
        return 1;
    utf8proc_category_t cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

typedef struct {
    utf8proc_int32_t *cp;
    size_t n, cap;
} cpbuf_t;

static int cp_push(cpbuf_t *b, utf8proc_int32_t c)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        utf8proc_int32_t *p = realloc(b->cp, cap * sizeof(*p));
        if (!p)
            return SC_ENOMEM;
        b->cp = p;
        b->cap = cap;
    }
    b->cp[b->n++] = c;
    return 0;
}

/* Text -> normalized code points (separators kept as ' '). */
static int normalize(const sc_wordpiece_opts_t *o, const char *text, size_t len, cpbuf_t *out)
{
    int strip = o->strip_accents < 0 ? o->lowercase : o->strip_accents;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    utf8proc_ssize_t left = (utf8proc_ssize_t)len;
    while (left > 0) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate(p, left, &c);
        if (k <= 0) { /* invalid UTF-8: skip one byte, like a replacement char */
            p++;
            left--;
            continue;
        }
        p += k;
        left -= k;
        if (o->clean_text) {
            if (c == 0 || c == 0xFFFD || is_control(c))
                continue;
            if (is_ws(c))
                c = ' ';
        }
        if (o->chinese_chars && is_cjk(c)) {
            if (cp_push(out, ' ') || cp_push(out, c) || cp_push(out, ' '))
                return SC_ENOMEM;
            continue;
        }
        utf8proc_int32_t dec[16];
        utf8proc_ssize_t nd = 1;
        dec[0] = c;
        if (strip) {
            int bound = 0;
            nd = utf8proc_decompose_char(c, dec, 16, UTF8PROC_DECOMPOSE, &bound);
            if (nd < 1 || nd > 16) {
                dec[0] = c;
                nd = 1;
            }
        }
        for (utf8proc_ssize_t i = 0; i < nd; i++) {
            utf8proc_int32_t d = dec[i];
            if (strip && utf8proc_category(d) == UTF8PROC_CATEGORY_MN)
                continue;
            if (o->lowercase)
                d = utf8proc_tolower(d);
            if (cp_push(out, d))
                return SC_ENOMEM;
        }
    }
    return 0;
}

int sc_bert_normalize(const sc_wordpiece_opts_t *o, const char *text, size_t len, char **out,
                      size_t *out_len)
{
    cpbuf_t cps = {0};
    int rc = normalize(o, text, len, &cps);
    char *s = rc ? NULL : malloc(cps.n * 4 + 1);
    if (!rc && !s)
        rc = SC_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; !rc && i < cps.n; i++)
        n += (size_t)utf8proc_encode_char(cps.cp[i], (utf8proc_uint8_t *)s + n);
    free(cps.cp);
    if (rc)
        return rc;
    s[n] = '\0';
    *out = s;
    *out_len = n;
    return 0;
}

/* ---- WordPiece ------------------------------------------------------------- */

/* Encodes code points [b, e) as UTF-8 into 'buf' (cap >= 4*(e-b)+3). */
static size_t utf8_of(const utf8proc_int32_t *cp, size_t b, size_t e, char *buf)
{
    size_t n = 0;
    for (size_t i = b; i < e; i++)
        n += (size_t)utf8proc_encode_char(cp[i], (utf8proc_uint8_t *)buf + n);
    return n;
}

/* Appends the pieces of one word; returns the new count or < 0. */
static int word_pieces(const sc_wordpiece_t *t, const utf8proc_int32_t *w, size_t len, int32_t *ids,
                       size_t cap, size_t count, char *scratch)
{
    if (len > t->o.max_word_chars) {
        if (count < cap)
            ids[count] = t->unk;
        return (int)(count + 1);
    }
    size_t start = 0, first = count;
    while (start < len) {
        size_t end = len;
        int32_t found = -1;
        while (end > start) {
            size_t off = 0;
            if (start > 0) {
                scratch[0] = scratch[1] = '#';
                off = 2;
            }
            size_t n = off + utf8_of(w, start, end, scratch + off);
            found = lookup(t, scratch, n);
            if (found >= 0)
                break;
            end--;
        }
        if (found < 0) { /* no piece fits: the whole word is unknown */
            count = first;
            if (count < cap)
                ids[count] = t->unk;
            return (int)(count + 1);
        }
        if (count < cap)
            ids[count] = found;
        count++;
        start = end;
    }
    return (int)count;
}

int sc_wordpiece_encode(const sc_wordpiece_t *t, const char *text, size_t len, int32_t *ids,
                        size_t cap)
{
    cpbuf_t cps = {0};
    int rc = normalize(&t->o, text, len, &cps);
    if (rc) {
        free(cps.cp);
        return rc;
    }
    char *scratch = malloc(4 * (t->o.max_word_chars + 1) + 8);
    if (!scratch) {
        free(cps.cp);
        return SC_ENOMEM;
    }
    size_t count = 0;
    size_t i = 0;
    while (i < cps.n && count < cap) {
        if (cps.cp[i] == ' ') {
            i++;
            continue;
        }
        size_t j = i;
        if (is_punct(cps.cp[i])) {
            j = i + 1; /* punctuation is a word of its own */
        } else {
            while (j < cps.n && cps.cp[j] != ' ' && !is_punct(cps.cp[j]))
                j++;
        }
        int c = word_pieces(t, cps.cp + i, j - i, ids, cap, count, scratch);
        if (c < 0) {
            rc = c;
            break;
        }
        count = (size_t)c < cap ? (size_t)c : cap;
        i = j;
    }
    free(scratch);
    free(cps.cp);
    return rc ? rc : (int)count;
}
