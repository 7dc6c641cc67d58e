/* guards.c -- refusing semantic hits between texts that differ in negation,
 * numbers or a rare content word. Each text is tokenized once (utf8proc case
 * folding and accent stripping; runs of letters, runs of digits) into words,
 * normalized numbers and a negation flag; the checks then compare the two
 * token sets. The word list is a frequency-ordered vocabulary in an
 * open-addressing table (word -> rank), built once and shared read-only. */
#define _GNU_SOURCE
#include "sc_guards.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "sc_vec.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MAX_TOKENS 2048
#define WORD_MAX 64    /* longer runs are cut (no real word is longer) */
#define TYPO_MIN_LEN 5 /* words this long may differ by one edit (a typo) */

/* Generated from cache/guard_words.txt by the Makefile. */
extern const unsigned char sc_guard_words_txt[];
extern const size_t sc_guard_words_txt_len;

/* ---- the word list ---------------------------------------------------------- */

struct sc_guard_words_s {
    char *own;         /* the file's bytes (NULL for the built-in list) */
    const char **word; /* by rank */
    uint8_t *len;
    uint32_t n;
    uint32_t *slot; /* rank + 1; 0 = empty */
    size_t mask;
};

static int words_build(sc_guard_words_t *w, const char *text, size_t len, size_t max_words)
{
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    lines++;
    if (max_words && lines > max_words)
        lines = max_words;
    size_t cap = 16;
    while (cap < 2 * lines)
        cap *= 2;
    w->word = malloc(lines * sizeof(char *));
    w->len = malloc(lines);
    w->slot = calloc(cap, sizeof(uint32_t));
    if (!w->word || !w->len || !w->slot)
        return SC_ENOMEM;
    w->mask = cap - 1;
    for (const char *p = text, *end = text + len; p < end && w->n < lines;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t l = (size_t)((nl ? nl : end) - p);
        if (l && l <= WORD_MAX &&
            sc_guard_words_rank(w, p, l) < 0) { /* first (more frequent) wins */
            size_t i = (size_t)XXH3_64bits(p, l) & w->mask;
            while (w->slot[i])
                i = (i + 1) & w->mask;
            w->slot[i] = w->n + 1;
            w->word[w->n] = p;
            w->len[w->n++] = (uint8_t)l;
        }
        p += l + 1;
    }
    return 0;
}

int32_t sc_guard_words_rank(const sc_guard_words_t *w, const char *word, size_t len)
{
    if (!w || !len || len > WORD_MAX)
        return -1;
    for (size_t i = (size_t)XXH3_64bits(word, len) & w->mask; w->slot[i]; i = (i + 1) & w->mask) {
        uint32_t r = w->slot[i] - 1;
        if (w->len[r] == len && memcmp(w->word[r], word, len) == 0)
            return (int32_t)r;
    }
    return -1;
}

int sc_guard_words_default(sc_guard_words_t **out)
{
    sc_guard_words_t *w = calloc(1, sizeof(*w));
    if (!w)
        return SC_ENOMEM;
    int rc = words_build(w, (const char *)sc_guard_words_txt, sc_guard_words_txt_len, 0);
    if (rc) {
        sc_guard_words_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

int sc_guard_words_load(sc_guard_words_t **out, const char *path, size_t max_words)
{
    sc_buf_t b = {0};
    int rc = sc_read_file(path, (size_t)1 << 30, &b);
    if (rc < 0 && rc > -4096) {
        sc_buf_free(&b);
        return SC_ENOTFOUND;
    }
    sc_guard_words_t *w = rc ? NULL : calloc(1, sizeof(*w));
    if (!rc && !w)
        rc = SC_ENOMEM;
    if (!rc) {
        w->own = b.data ? b.data : strdup("");
        b.data = NULL;
        rc = w->own ? words_build(w, w->own, strlen(w->own), max_words) : SC_ENOMEM;
    }
    sc_buf_free(&b);
    if (rc) {
        sc_guard_words_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

void sc_guard_words_free(sc_guard_words_t *w)
{
    if (!w)
        return;
    free(w->own);
    free(w->word);
    free(w->len);
    free(w->slot);
    free(w);
}

/* ---- tokens ------------------------------------------------------------------- */

enum { TOK_WORD = 0, TOK_NUMBER = 1 };

typedef struct {
    uint32_t off, len; /* into the text's token bytes */
    uint8_t kind;
} tok_t;

typedef struct {
    sc_buf_t bytes; /* token strings, each NUL-terminated */
    tok_t tok[MAX_TOKENS];
    uint32_t n;
    int negated;
} text_t;

static const char *tok_str(const text_t *t, uint32_t i)
{
    return t->bytes.data + t->tok[i].off;
}

static int emit(text_t *t, const char *s, size_t len, int kind)
{
    if (t->n == MAX_TOKENS || !len)
        return 0;
    tok_t *k = &t->tok[t->n];
    k->off = (uint32_t)t->bytes.len;
    k->len = (uint32_t)len;
    k->kind = (uint8_t)kind;
    if (sc_buf_append(&t->bytes, s, len) || sc_buf_append(&t->bytes, "", 1))
        return SC_ENOMEM;
    t->n++;
    return 0;
}

/* The cue words of negation; "n't" is found in contractions (tokenize). The
 * list and its limits are documented in docs/quality.md ("Guards"). */
static const char *const negations[] = {
    "not",     "no",     "never",   "none",   "nobody", "nothing", "neither", "nor",
    "nowhere", "noone",  "without", "cannot", "non",    "dont",    "doesnt",  "didnt",
    "isnt",    "arent",  "wasnt",   "werent", "cant",   "couldnt", "wouldnt", "shouldnt",
    "wont",    "havent", "hasnt",   "hadnt",  "aint",   "neednt",  "mustnt",  NULL};

/* Number words: two to twenty and the tens. "one" is left out: it is a
 * pronoun as often as a number ("which one is better"). */
static const char *const number_words[] = {
    "zero",    "",          "two",      "three",    "four",   "five",     "six",      "seven",
    "eight",   "nine",      "ten",      "eleven",   "twelve", "thirteen", "fourteen", "fifteen",
    "sixteen", "seventeen", "eighteen", "nineteen", "twenty", NULL};
static const char *const tens[] = {"thirty",  "forty",  "fifty",  "sixty",
                                   "seventy", "eighty", "ninety", NULL};
/* Dates: month and weekday names ("may" is left out: a modal verb). */
static const char *const date_words[] = {
    "january",   "february", "march",    "april",    "june",   "july",    "august",
    "september", "october",  "november", "december", "monday", "tuesday", "wednesday",
    "thursday",  "friday",   "saturday", "sunday",   NULL};

static int in_list(const char *const *list, const char *w, size_t len)
{
    for (int i = 0; list[i]; i++)
        if (strlen(list[i]) == len && memcmp(list[i], w, len) == 0)
            return i;
    return -1;
}

/* A finished run of letters: a negation cue, a number word, a date word or
 * a word. */
static int word_done(text_t *t, const char *w, size_t len)
{
    char num[24];
    int i;
    if (in_list(negations, w, len) >= 0) {
        t->negated = 1;
        return 0;
    }
    if ((i = in_list(number_words, w, len)) >= 0) {
        snprintf(num, sizeof(num), "%d", i);
        return emit(t, num, strlen(num), TOK_NUMBER);
    }
    if ((i = in_list(tens, w, len)) >= 0) {
        snprintf(num, sizeof(num), "%d", 30 + 10 * i);
        return emit(t, num, strlen(num), TOK_NUMBER);
    }
    if ((i = in_list(date_words, w, len)) >= 0) {
        snprintf(num, sizeof(num), "%s%d", i < 11 ? "month:" : "day:", i < 11 ? i : i - 11);
        return emit(t, num, strlen(num), TOK_NUMBER);
    }
    return emit(t, w, len, TOK_WORD);
}

/* A finished run of digits (with '.' between digits kept, thousands
 * separators dropped): leading zeros and a decimal fraction's trailing
 * zeros go, so "007", "7" and "7.0" are one number. */
static int number_done(text_t *t, char *d, size_t len)
{
    size_t s = 0;
    while (s + 1 < len && d[s] == '0' && d[s + 1] != '.')
        s++;
    char *dot = memchr(d + s, '.', len - s);
    if (dot && !memchr(dot + 1, '.', len - (size_t)(dot + 1 - d))) {
        while (len > (size_t)(dot - d) + 1 && d[len - 1] == '0')
            len--;
        if (d[len - 1] == '.')
            len--;
    }
    return emit(t, d + s, len - s, TOK_NUMBER);
}

/* Case-folded, accent-stripped code points of 'c' into 'out' (at most 4). */
static int fold_char(utf8proc_int32_t c, utf8proc_int32_t out[4])
{
    int lb = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(
        c, out, 4, UTF8PROC_CASEFOLD | UTF8PROC_DECOMPOSE | UTF8PROC_STRIPMARK | UTF8PROC_STABLE,
        &lb);
    return n < 0 || n > 4 ? 0 : (int)n;
}

typedef struct {
    const uint8_t *p;
    utf8proc_ssize_t left;
} cursor_t;

/* The next folded code point (-1 at the end; invalid bytes are spaces). */
static utf8proc_int32_t next_cp(cursor_t *c, utf8proc_int32_t pend[4], int *np, int *ip)
{
    while (*ip >= *np) {
        if (c->left <= 0)
            return -1;
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(c->p, c->left, &cp);
        if (k <= 0) {
            k = 1;
            cp = ' ';
        }
        c->p += k;
        c->left -= k;
        *np = fold_char(cp, pend);
        *ip = 0;
    }
    return pend[(*ip)++];
}

static int is_letter(utf8proc_int32_t c)
{
    return c >= 0 && utf8proc_category(c) >= UTF8PROC_CATEGORY_LU &&
           utf8proc_category(c) <= UTF8PROC_CATEGORY_LO;
}

static int is_digit(utf8proc_int32_t c)
{
    return c >= '0' && c <= '9';
}

/* Splits a text into words and numbers. One code point of look-ahead is
 * enough for every rule: an apostrophe inside letters, a '.' or ',' inside
 * digits. The contraction "n't" marks negation and leaves the stem
 * ("don't" -> "do"); other clitics ('s, 're, ...) are dropped. */
static int tokenize(text_t *t, const char *text, size_t len)
{
    cursor_t cur = {(const uint8_t *)text, (utf8proc_ssize_t)len};
    utf8proc_int32_t pend[4];
    int np = 0, ip = 0, rc = 0;
    char w[WORD_MAX + 8];
    size_t wl = 0;
    int kind = -1; /* of the run in w: TOK_WORD, TOK_NUMBER, or none */
    utf8proc_int32_t c = next_cp(&cur, pend, &np, &ip), nx = next_cp(&cur, pend, &np, &ip);
    while (!rc && c >= 0) {
        int letter = is_letter(c), digit = is_digit(c);
        if ((letter || digit) && (kind < 0 || kind == (letter ? TOK_WORD : TOK_NUMBER))) {
            kind = letter ? TOK_WORD : TOK_NUMBER;
            if (wl < WORD_MAX)
                wl += (size_t)utf8proc_encode_char(c, (utf8proc_uint8_t *)w + wl);
        } else if (kind == TOK_NUMBER && (c == '.' || c == ',') && is_digit(nx)) {
            if (c == '.' && wl < WORD_MAX) /* a ',' between digits is a thousands separator */
                w[wl++] = '.';
        } else if (kind == TOK_WORD && (c == '\'' || c == 0x2019) && is_letter(nx)) {
            utf8proc_int32_t after = next_cp(&cur, pend, &np, &ip);
            if (nx == 't' && wl && w[wl - 1] == 'n' && !is_letter(after)) {
                t->negated = 1;
                wl--;
            }
            while (is_letter(after)) /* the rest of the clitic goes */
                after = next_cp(&cur, pend, &np, &ip);
            rc = word_done(t, w, wl);
            wl = 0;
            kind = -1;
            c = after;
            nx = next_cp(&cur, pend, &np, &ip);
            continue;
        } else {
            if (kind >= 0)
                rc = kind == TOK_WORD ? word_done(t, w, wl) : number_done(t, w, wl);
            wl = 0;
            kind = -1;
            if (letter || digit)
                continue; /* letters after digits or the reverse: c starts the next run */
        }
        c = nx;
        nx = next_cp(&cur, pend, &np, &ip);
    }
    if (!rc && kind >= 0)
        rc = kind == TOK_WORD ? word_done(t, w, wl) : number_done(t, w, wl);
    return rc;
}

/* ---- counterparts ------------------------------------------------------------- */

/* A light English stemmer (plural and verb endings, a final 'e', a doubled
 * final consonant), enough to pair "programs" with "programming". Writes
 * the stem into 'out' (WORD_MAX + 8 bytes) and returns its length. */
static size_t stem(const char *w, size_t n, char *out)
{
    memcpy(out, w, n);
#define ENDS(s) (n > strlen(s) && memcmp(out + n - strlen(s), s, strlen(s)) == 0)
    if (n > 4 && ENDS("ies")) {
        n -= 2;
        out[n - 1] = 'y';
    } else if (n > 4 &&
               (ENDS("ses") || ENDS("xes") || ENDS("zes") || ENDS("ches") || ENDS("shes"))) {
        n -= 2;
    } else if (n > 3 && ENDS("s") && !ENDS("ss") && !ENDS("us") && !ENDS("is")) {
        n--;
    }
    if (n > 5 && ENDS("ing"))
        n -= 3;
    else if (n > 4 && ENDS("ed"))
        n -= 2;
    else if (n > 4 && ENDS("er"))
        n -= 2;
    if (n > 3 && out[n - 1] == 'e')
        n--;
    if (n > 3 && out[n - 1] == out[n - 2] && !strchr("aeiouls", out[n - 1]))
        n--;
#undef ENDS
    out[n] = '\0';
    return n;
}

/* Damerau-Levenshtein distance <= 1 (one insertion, deletion, substitution
 * or swap of neighbours). */
static int one_edit(const char *a, size_t al, const char *b, size_t bl)
{
    if (al > bl + 1 || bl > al + 1)
        return 0;
    size_t i = 0;
    while (i < al && i < bl && a[i] == b[i])
        i++;
    if (al == bl)
        return i == al || strcmp(a + i + 1, b + i + 1) == 0 ||
               (i + 1 < al && a[i] == b[i + 1] && a[i + 1] == b[i] &&
                strcmp(a + i + 2, b + i + 2) == 0);
    return al > bl ? strcmp(a + i + 1, b + i) == 0 : strcmp(a + i, b + i + 1) == 0;
}

/* 1 if word 'i' of 'x' has a counterpart in 'y' by spelling: the same word,
 * the same stem, a stem extended by at most 4 letters (program/programmer),
 * one typo in a word of TYPO_MIN_LEN letters or more, or two neighbouring
 * words of 'y' written together ("smartphone" / "smart phone"). */
static int spelled_counterpart(const text_t *x, uint32_t i, const text_t *y)
{
    const char *w = tok_str(x, i);
    size_t wl = x->tok[i].len;
    char ws[WORD_MAX + 8], ys[WORD_MAX + 8];
    size_t sl = stem(w, wl < WORD_MAX ? wl : WORD_MAX, ws);
    for (uint32_t j = 0; j < y->n; j++) {
        if (y->tok[j].kind != TOK_WORD)
            continue;
        const char *v = tok_str(y, j);
        size_t vl = y->tok[j].len;
        if (vl == wl && memcmp(v, w, wl) == 0)
            return 1;
        size_t tl = stem(v, vl < WORD_MAX ? vl : WORD_MAX, ys);
        size_t lo = sl < tl ? sl : tl, hi = sl < tl ? tl : sl;
        if (lo >= TYPO_MIN_LEN && hi - lo <= 4 && memcmp(ws, ys, lo) == 0)
            return 1;
        if ((sl == tl && memcmp(ws, ys, sl) == 0) ||
            (wl >= TYPO_MIN_LEN && vl >= TYPO_MIN_LEN && one_edit(w, wl, v, vl)))
            return 1;
        if (j + 1 < y->n && y->tok[j + 1].kind == TOK_WORD && vl + y->tok[j + 1].len == wl &&
            memcmp(w, v, vl) == 0 && memcmp(w + vl, tok_str(y, j + 1), wl - vl) == 0)
            return 1;
    }
    return 0;
}

/* Letters of the Latin script only (after accent stripping): the word list
 * can judge no other script. */
static int latin(const char *w, size_t len)
{
    for (size_t i = 0; i < len;) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k =
            utf8proc_iterate((const utf8proc_uint8_t *)w + i, (utf8proc_ssize_t)(len - i), &c);
        if (k <= 0 || c >= 0x250)
            return 0;
        i += (size_t)k;
    }
    return 1;
}

static int is_rare(const text_t *x, uint32_t i, const sc_guard_opts_t *o)
{
    /* Single letters ("i", "a") are not in the list and carry no content. */
    if (x->tok[i].kind != TOK_WORD || x->tok[i].len < 2 || !latin(tok_str(x, i), x->tok[i].len))
        return 0;
    int32_t r = sc_guard_words_rank(o->words, tok_str(x, i), x->tok[i].len);
    uint32_t cut = o->rare_rank ? o->rare_rank : SC_GUARD_RARE_RANK;
    return r < 0 || (uint32_t)r >= cut;
}

/* Word vectors of every word of both texts (a: rows 0..a->n-1, b after),
 * zero rows for numbers and unknown words. '*vec' is malloc'd. */
static int word_vectors(const text_t *a, const text_t *b, const sc_embedder_t *e, float **vec)
{
    uint32_t n = a->n + b->n, dim = sc_embedder_dim(e);
    const char **texts = malloc(n * sizeof(char *));
    size_t *lens = malloc(n * sizeof(size_t));
    *vec = malloc((size_t)n * dim * sizeof(float));
    int rc = texts && lens && *vec ? 0 : SC_ENOMEM;
    for (uint32_t i = 0; !rc && i < n; i++) {
        const text_t *t = i < a->n ? a : b;
        uint32_t k = i < a->n ? i : i - a->n;
        texts[i] = tok_str(t, k);
        lens[i] = t->tok[k].kind == TOK_WORD ? t->tok[k].len : 0;
    }
    if (!rc)
        rc = sc_embedder_embed(e, texts, lens, n, *vec, NULL);
    free(texts);
    free(lens);
    return rc;
}

static int embedded_counterpart(const float *vx, const text_t *y, const float *vy, uint32_t dim,
                                double sim)
{
    for (uint32_t j = 0; j < y->n; j++)
        if (y->tok[j].kind == TOK_WORD && sc_vec_dot(vx, vy + (size_t)j * dim, dim) >= sim)
            return 1;
    return 0;
}

/* ---- the checks ---------------------------------------------------------------- */

static int by_str(const void *p, const void *q)
{
    return strcmp(*(const char *const *)p, *(const char *const *)q);
}

/* The first number of 'x' that 'y' lacks, or NULL. */
static const char *lone_number(const text_t *x, const text_t *y)
{
    const char *ys[MAX_TOKENS];
    size_t n = 0;
    for (uint32_t j = 0; j < y->n; j++)
        if (y->tok[j].kind == TOK_NUMBER)
            ys[n++] = tok_str(y, j);
    qsort(ys, n, sizeof(char *), by_str);
    for (uint32_t i = 0; i < x->n; i++) {
        const char *k = tok_str(x, i);
        if (x->tok[i].kind == TOK_NUMBER && !bsearch(&k, ys, n, sizeof(char *), by_str))
            return k;
    }
    return NULL;
}

/* The first rare word of 'x' (rows of 'vx' when embedded) with no
 * counterpart in 'y', or NULL; '*lone_rank' is raised to the highest rank of
 * such words (INT32_MAX for an unlisted one). */
static const char *lone_rare_word(const text_t *x, const float *vx, const text_t *y,
                                  const float *vy, const sc_guard_opts_t *o, int32_t *lone_rank)
{
    uint32_t dim = o->embedder ? sc_embedder_dim(o->embedder) : 0;
    const char *first = NULL;
    for (uint32_t i = 0; i < x->n; i++) {
        if (!is_rare(x, i, o) || spelled_counterpart(x, i, y))
            continue;
        if (vx && embedded_counterpart(vx + (size_t)i * dim, y, vy, dim, o->counterpart_sim))
            continue;
        int32_t r = sc_guard_words_rank(o->words, tok_str(x, i), x->tok[i].len);
        r = r < 0 ? INT32_MAX : r;
        *lone_rank = r > *lone_rank ? r : *lone_rank;
        if (!first)
            first = tok_str(x, i);
    }
    return first;
}

static void reason(sc_guard_result_t *out, unsigned bit, const char *fmt, const char *what)
{
    if (!out->refused)
        snprintf(out->detail, sizeof(out->detail), fmt, what);
    out->refused |= bit;
}

int sc_guard_check(const char *a, size_t alen, const char *b, size_t blen, const sc_guard_opts_t *o,
                   sc_guard_result_t *out)
{
    memset(out, 0, sizeof(*out));
    out->lone_rank = -1;
    text_t *ta = calloc(1, sizeof(text_t)), *tb = calloc(1, sizeof(text_t));
    float *vec = NULL;
    int rc = ta && tb ? 0 : SC_ENOMEM;
    if (!rc)
        rc = tokenize(ta, a, alen);
    if (!rc)
        rc = tokenize(tb, b, blen);
    if (!rc && (o->checks & SC_GUARD_NEGATION) && ta->negated != tb->negated)
        reason(out, SC_GUARD_NEGATION, "negation in the %s text only",
               ta->negated ? "first" : "second");
    const char *w;
    if (!rc && (o->checks & SC_GUARD_NUMBERS) &&
        ((w = lone_number(ta, tb)) != NULL || (w = lone_number(tb, ta)) != NULL))
        reason(out, SC_GUARD_NUMBERS, "number %.64s in one text only", w);
    if (!rc && (o->checks & SC_GUARD_RARE_WORD) && o->words) {
        if (o->embedder)
            rc = word_vectors(ta, tb, o->embedder, &vec);
        uint32_t dim = o->embedder ? sc_embedder_dim(o->embedder) : 0;
        const float *va = vec, *vb = vec ? vec + (size_t)ta->n * dim : NULL;
        const char *wa = rc ? NULL : lone_rare_word(ta, va, tb, vb, o, &out->lone_rank);
        const char *wb = rc ? NULL : lone_rare_word(tb, vb, ta, va, o, &out->lone_rank);
        if (wa || wb)
            reason(out, SC_GUARD_RARE_WORD, "rare word \"%.64s\" has no counterpart", wa ? wa : wb);
    }
    free(vec);
    if (ta)
        sc_buf_free(&ta->bytes);
    if (tb)
        sc_buf_free(&tb->bytes);
    free(ta);
    free(tb);
    return rc ? rc : out->refused ? 1 : 0;
}
