/* static.c -- static embedders: a sentence vector is a (weighted) mean of
 * per-token vectors, then L2-normalized. Two model families:
 * - model2vec: WordPiece or Unigram tokens (tokenizer.json), an "embeddings" tensor,
 *   optional per-token "weights" and a "mapping" into quantized rows; unknown
 *   tokens are dropped, inputs are cut to 512 tokens, as model2vec does.
 * - GloVe converted by semcached-convert into a .scglove file (float16 matrix
 *   plus the vocabulary in frequency order), mapped read-only; words are
 *   weighted by SIF, a / (a + p(w)), with p(w) from the Zipf law of the rank.
 * Tables are resolved at load so embedding is lookups and adds only. */
#define _GNU_SOURCE
#include "sc_embed.h"
#include "sc_embed_internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "sc_safetensors.h"
#include "sc_vec.h"

#include "sc_strindex.h"

#define M2V_MAX_TOKENS 512
#define SIF_A 1e-3
#define GLOVE_MAGIC "SCGLOVE1"

enum { KIND_M2V = 1, KIND_GLOVE = 2, KIND_BERT = 3, KIND_REMOTE = 4 };

struct sc_embedder_s {
    int kind;
    uint32_t dim;
    char identity[512];
    /* model2vec: one of the two tokenizers */
    sc_wordpiece_t *tok;
    sc_unigram_t *uni;
    float *table; /* vocab x dim, weights and mapping applied */
    size_t vocab;
    size_t max_chars; /* 512 x median token length, in code points */
    /* GloVe */
    void *map;
    size_t map_len;
    const uint16_t *f16; /* n_words x dim, float16 */
    const char **words;
    uint32_t n_words;
    sc_strindex_t word_index; /* word -> row */
    float *sif;               /* per-word weight */
    /* BERT */
    sc_bert_t *bert;
    /* remote */
    sc_remote_t *remote;
};

void sc_embedder_set_threads(sc_embedder_t *e, int threads)
{
    if (e->bert)
        sc_bert_set_threads(e->bert, threads);
}

uint32_t sc_embedder_dim(const sc_embedder_t *e)
{
    return e->kind == KIND_REMOTE ? sc_remote_dim(e->remote) : e->dim;
}

sc_embedder_state_t sc_embedder_state(const sc_embedder_t *e)
{
    if (e->kind != KIND_REMOTE)
        return SC_EMBEDDER_UP;
    if (!sc_remote_dim(e->remote))
        return SC_EMBEDDER_UNAVAILABLE;
    return sc_remote_up(e->remote) ? SC_EMBEDDER_UP : SC_EMBEDDER_DOWN;
}

const char *sc_embedder_state_name(sc_embedder_state_t s)
{
    return s == SC_EMBEDDER_UP ? "up" : s == SC_EMBEDDER_DOWN ? "down" : "unavailable";
}

int sc_embedder_probe(sc_embedder_t *e, char *err, size_t err_cap)
{
    return e->kind == KIND_REMOTE ? sc_remote_probe(e->remote, err, err_cap) : 0;
}

const char *sc_embedder_identity(const sc_embedder_t *e)
{
    return e->identity;
}

static const char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *end = path + n, *p = end;
    while (p > path && p[-1] != '/')
        p--;
    static __thread char buf[256];
    snprintf(buf, sizeof(buf), "%.*s", (int)(end - p), p);
    return buf;
}

/* ---- model2vec ------------------------------------------------------------ */

static int read_normalize_flag(const char *dir)
{
    /* model2vec's own config.json wins over the sentence-transformers one. */
    const char *names[] = {"config.json", "config_sentence_transformers.json"};
    for (int i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        json_error_t e;
        json_t *j = json_load_file(path, 0, &e);
        if (!j)
            continue;
        json_t *n = json_object_get(j, "normalize");
        int v = n ? json_is_true(n) : 1;
        json_decref(j);
        return v;
    }
    return 1;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static size_t m2v_vocab_size(const sc_embedder_t *e)
{
    return e->tok ? sc_wordpiece_vocab_size(e->tok) : sc_unigram_vocab_size(e->uni);
}

static const char *m2v_token(const sc_embedder_t *e, int32_t id)
{
    return e->tok ? sc_wordpiece_token(e->tok, id) : sc_unigram_token(e->uni, id);
}

static int open_model2vec(sc_embedder_t *e, const char *dir, char *err, size_t err_cap)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
    /* WordPiece (most models) or Unigram (vocab-quantized ones). */
    int rc = sc_wordpiece_load_json(&e->tok, path, err, err_cap);
    if (rc) {
        char err2[512];
        if (sc_unigram_load_json(&e->uni, path, err2, sizeof(err2)) != 0) {
            if (strstr(err, "only WordPiece")) /* neither: say why the Unigram try failed */
                snprintf(err, err_cap, "%s (WordPiece or Unigram tokenizers only)", err2);
            return rc;
        }
        rc = 0;
    }
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    sc_safetensors_t *st;
    if ((rc = sc_safetensors_open(&st, path, err, err_cap)))
        return rc;
    const sc_tensor_t *emb = sc_safetensors_get(st, "embeddings");
    if (!emb)
        emb = sc_safetensors_get(st, "embedding.weight"); /* sentence-transformers layout */
    const sc_tensor_t *weights = sc_safetensors_get(st, "weights");
    const sc_tensor_t *mapping = sc_safetensors_get(st, "mapping");
    size_t vocab = m2v_vocab_size(e);
    rc = SC_ECORRUPT;
    if (!emb || emb->ndim != 2 || emb->shape[1] < 1 || emb->shape[1] > 65536 ||
        emb->dtype == SC_DT_I32 || emb->dtype == SC_DT_I64) {
        snprintf(err, err_cap, "%s: no 2-d float \"embeddings\" tensor", path);
        goto done;
    }
    size_t rows = mapping ? (size_t)mapping->count : (size_t)emb->shape[0];
    if (mapping && (mapping->ndim != 1 || mapping->dtype != SC_DT_I32)) {
        snprintf(err, err_cap, "%s: \"mapping\" must be a 1-d I32 tensor", path);
        goto done;
    }
    if (weights && (weights->ndim != 1 || weights->count != rows)) {
        snprintf(err, err_cap, "%s: \"weights\" must have one value per token", path);
        goto done;
    }
    if (rows < vocab)
        vocab = rows; /* tokens beyond the table cannot be embedded */
    e->dim = (uint32_t)emb->shape[1];
    e->vocab = vocab;
    e->table = malloc(vocab * e->dim * sizeof(float));
    if (!e->table) {
        rc = SC_ENOMEM;
        goto done;
    }
    for (size_t t = 0; t < vocab; t++) {
        uint64_t row = t;
        if (mapping) {
            int32_t m;
            memcpy(&m, (const uint8_t *)mapping->data + 4 * t, 4);
            if (m < 0 || (int64_t)m >= emb->shape[0]) {
                snprintf(err, err_cap, "%s: \"mapping\" points outside \"embeddings\"", path);
                goto done;
            }
            row = (uint64_t)m;
        }
        float w = weights ? sc_tensor_f32(weights, t) : 1.0f;
        for (uint32_t d = 0; d < e->dim; d++)
            e->table[t * e->dim + d] = w * sc_tensor_f32(emb, row * e->dim + d);
    }
    /* model2vec cuts text to max_length x median token length characters. */
    size_t nv = m2v_vocab_size(e);
    size_t *lens = malloc(nv * sizeof(size_t));
    if (!lens) {
        rc = SC_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nv; i++) {
        const char *s = m2v_token(e, (int32_t)i);
        size_t cps = 0;
        for (const char *p = s; *p; p++)
            cps += ((unsigned char)*p & 0xC0) != 0x80;
        lens[i] = cps;
    }
    qsort(lens, nv, sizeof(size_t), cmp_size);
    e->max_chars = M2V_MAX_TOKENS * (lens[nv / 2] ? lens[nv / 2] : 1);
    free(lens);
    (void)read_normalize_flag; /* output is always normalized: cosine is what we use */
    snprintf(e->identity, sizeof(e->identity), "model2vec:%s@%016llx", base_name(dir),
             (unsigned long long)sc_safetensors_hash(st));
    e->kind = KIND_M2V;
    rc = 0;
done:
    sc_safetensors_close(st);
    return rc;
}

/* Byte length of the first 'max_cp' code points of 'text'. */
static size_t prefix_bytes(const char *text, size_t len, size_t max_cp)
{
    size_t cps = 0, i = 0;
    for (; i < len; i++) {
        if (((unsigned char)text[i] & 0xC0) != 0x80) {
            if (cps == max_cp)
                break;
            cps++;
        }
    }
    return i;
}

static int embed_m2v(const sc_embedder_t *e, const char *text, size_t len, float *out)
{
    int32_t ids[M2V_MAX_TOKENS * 2];
    len = prefix_bytes(text, len, e->max_chars);
    size_t cap = sizeof(ids) / sizeof(ids[0]);
    int n = e->tok ? sc_wordpiece_encode(e->tok, text, len, ids, cap)
                   : sc_unigram_encode(e->uni, text, len, ids, cap);
    if (n < 0)
        return n;
    int32_t unk = e->tok ? sc_wordpiece_unk(e->tok) : sc_unigram_unk(e->uni);
    size_t used = 0;
    memset(out, 0, e->dim * sizeof(float));
    for (int i = 0; i < n && used < M2V_MAX_TOKENS; i++) {
        if (ids[i] == unk || ids[i] < 0 || (size_t)ids[i] >= e->vocab)
            continue;
        const float *row = e->table + (size_t)ids[i] * e->dim;
        for (uint32_t d = 0; d < e->dim; d++)
            out[d] += row[d];
        used++;
    }
    return (int)used;
}

/* ---- GloVe ----------------------------------------------------------------- */

static int32_t glove_lookup(const sc_embedder_t *e, const char *w, size_t len)
{
    return sc_strindex_find(&e->word_index, w, len);
}

static int open_glove(sc_embedder_t *e, const char *path, char *err, size_t err_cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) || st.st_size < 24) {
        close(fd);
        snprintf(err, err_cap, "%s: not a semcached GloVe file", path);
        return SC_ECORRUPT;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return -errno;
    e->map = map;
    e->map_len = (size_t)st.st_size;
    const uint8_t *p = map;
    uint32_t hdr[4];
    memcpy(hdr, p + 8, sizeof(hdr));
    uint64_t matrix = (uint64_t)hdr[0] * hdr[1] * 2;
    if (memcmp(p, GLOVE_MAGIC, 8) != 0 || hdr[0] == 0 || hdr[0] > 4096 || hdr[1] == 0 ||
        24 + matrix + hdr[2] != (uint64_t)st.st_size || hdr[2] < hdr[1]) {
        snprintf(err, err_cap, "%s: not a semcached GloVe file (bad header)", path);
        return SC_ECORRUPT;
    }
    e->dim = hdr[0];
    e->n_words = hdr[1];
    e->f16 = (const uint16_t *)(p + 24);
    const char *w = (const char *)p + 24 + matrix, *end = w + hdr[2];
    if (end[-1] != '\0') {
        snprintf(err, err_cap, "%s: vocabulary is not NUL-terminated", path);
        return SC_ECORRUPT;
    }
    e->words = malloc(e->n_words * sizeof(char *));
    e->sif = malloc(e->n_words * sizeof(float));
    if (!e->words || !e->sif)
        return SC_ENOMEM;
    /* Words come in descending frequency; Zipf: p(rank r) = 1 / ((r + 1) H_n). */
    double h = log((double)e->n_words) + 0.5772156649;
    for (uint32_t i = 0; i < e->n_words; i++) {
        if (w >= end) {
            snprintf(err, err_cap, "%s: vocabulary shorter than its header says", path);
            return SC_ECORRUPT;
        }
        e->words[i] = w;
        size_t len = strlen(w);
        w += len + 1;
        double prob = 1.0 / ((double)(i + 1) * h);
        e->sif[i] = (float)(SIF_A / (SIF_A + prob));
    }
    if (sc_strindex_build(&e->word_index, e->words,
                          e->n_words)) /* the first, more frequent duplicate wins */
        return SC_ENOMEM;
    uint64_t hash = XXH3_64bits(map, e->map_len);
    snprintf(e->identity, sizeof(e->identity), "glove:%dd@%016llx", (int)e->dim,
             (unsigned long long)hash);
    e->kind = KIND_GLOVE;
    return 0;
}

static void glove_add(const sc_embedder_t *e, const char *word, size_t len, float *out,
                      double *wsum)
{
    int32_t id = glove_lookup(e, word, len);
    if (id < 0)
        return;
    float w = e->sif[id];
    const uint16_t *row = e->f16 + (size_t)id * e->dim;
    for (uint32_t d = 0; d < e->dim; d++)
        out[d] += w * sc_half_to_float(row[d]);
    *wsum += w;
}

/* GloVe's vocabulary is lower-case words, numbers and the Penn Treebank
 * clitics ("n't", "'s"); text is split the same way. */
static int embed_glove(const sc_embedder_t *e, const char *text, size_t len, float *out)
{
    memset(out, 0, e->dim * sizeof(float));
    char word[256];
    size_t wl = 0;
    double wsum = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)text;
    utf8proc_ssize_t left = (utf8proc_ssize_t)len;
    for (;;) {
        utf8proc_int32_t c = -1;
        utf8proc_ssize_t k = 0;
        if (left > 0) {
            k = utf8proc_iterate(p, left, &c);
            if (k <= 0) {
                k = 1;
                c = ' ';
            }
        }
        utf8proc_category_t cat = c >= 0 ? utf8proc_category(c) : UTF8PROC_CATEGORY_CN;
        int alnum = c >= 0 && (cat <= UTF8PROC_CATEGORY_LO || cat == UTF8PROC_CATEGORY_ND);
        int apostrophe = c == '\'' || c == 0x2019;
        if (alnum && wl + 4 < sizeof(word)) {
            wl += (size_t)utf8proc_encode_char(utf8proc_tolower(c), (utf8proc_uint8_t *)word + wl);
        } else if (apostrophe && wl && left > k && isalpha(p[k])) {
            /* a clitic: "don't" -> "do" + "n't", "it's" -> "it" + "'s" */
            size_t sl = 0;
            while ((size_t)k + sl < (size_t)left && isalpha(p[k + sl]) && sl < 8)
                sl++;
            char clitic[16];
            int nt = sl == 1 && (p[k] == 't' || p[k] == 'T') && word[wl - 1] == 'n';
            if (nt) {
                wl--;
                snprintf(clitic, sizeof(clitic), "n't");
            } else {
                clitic[0] = '\'';
                for (size_t i = 0; i < sl; i++)
                    clitic[i + 1] = (char)tolower(p[k + i]);
                clitic[sl + 1] = '\0';
            }
            glove_add(e, word, wl, out, &wsum);
            glove_add(e, clitic, strlen(clitic), out, &wsum);
            wl = 0;
            k += (utf8proc_ssize_t)sl;
        } else {
            if (wl)
                glove_add(e, word, wl, out, &wsum);
            wl = 0;
        }
        if (left <= 0)
            break;
        p += k;
        left -= k;
    }
    return wsum > 0 ? 1 : 0;
}

/* ---- public ------------------------------------------------------------------- */

int sc_embedder_open(sc_embedder_t **out, const char *spec, char *err, size_t err_cap)
{
    sc_embedder_t *e = calloc(1, sizeof(*e));
    if (!e)
        return SC_ENOMEM;
    struct stat st;
    int rc;
    if (stat(spec, &st)) {
        snprintf(err, err_cap, "%s: %s", spec, strerror(errno));
        rc = SC_ENOTFOUND;
    } else if (S_ISDIR(st.st_mode) && sc_bert_is_model_dir(spec)) {
        uint64_t hash = 0;
        rc = sc_bert_open(&e->bert, spec, &hash, err, err_cap);
        if (!rc) {
            e->kind = KIND_BERT;
            e->dim = sc_bert_dim(e->bert);
            snprintf(e->identity, sizeof(e->identity), "bert:%s@%016llx", base_name(spec),
                     (unsigned long long)hash);
        }
    } else if (S_ISDIR(st.st_mode)) {
        rc = open_model2vec(e, spec, err, err_cap);
    } else {
        rc = open_glove(e, spec, err, err_cap);
    }
    if (rc) {
        sc_embedder_close(e);
        return rc;
    }
    *out = e;
    return 0;
}

int sc_embedder_open_remote(sc_embedder_t **out, const char *url, const char *model,
                            const char *api_key, long timeout_ms, int max_inflight,
                            uint32_t dimensions, struct sc_log_s *log, char *err, size_t err_cap)
{
    sc_embedder_t *e = calloc(1, sizeof(*e));
    if (!e)
        return SC_ENOMEM;
    int rc = sc_remote_open(&e->remote, url, model, api_key, timeout_ms, max_inflight, dimensions,
                            log, err, err_cap);
    if (rc) {
        free(e);
        return rc;
    }
    e->kind = KIND_REMOTE; /* its dimension is the remote's, learnt maybe later */
    snprintf(e->identity, sizeof(e->identity), "remote:%s@%s",
             model && *model ? model : "text-embedding-3-small", url);
    *out = e;
    return 0;
}

void sc_embedder_close(sc_embedder_t *e)
{
    if (!e)
        return;
    sc_wordpiece_free(e->tok);
    sc_unigram_free(e->uni);
    sc_bert_close(e->bert);
    sc_remote_close(e->remote);
    free(e->table);
    if (e->map)
        munmap(e->map, e->map_len);
    free(e->words);
    sc_strindex_free(&e->word_index);
    free(e->sif);
    free(e);
}

int sc_embedder_embed(const sc_embedder_t *e, const char *const *texts, const size_t *lens,
                      size_t n, float *out, uint8_t *empty)
{
    if (empty)
        memset(empty, 0, (n + 7) / 8);
    if (e->kind == KIND_BERT) /* a transformer sees the whole text, [CLS]/[SEP] included */
        return sc_bert_embed(e->bert, texts, lens, n, out);
    if (e->kind == KIND_REMOTE)
        return sc_remote_embed(e->remote, texts, lens, n, out);
    for (size_t i = 0; i < n; i++) {
        float *v = out + i * e->dim;
        int used = e->kind == KIND_M2V ? embed_m2v(e, texts[i], lens[i], v)
                                       : embed_glove(e, texts[i], lens[i], v);
        if (used < 0)
            return used;
        if (used == 0 || sc_vec_normalize(v, e->dim)) {
            memset(v, 0, e->dim * sizeof(float));
            if (empty)
                empty[i / 8] |= (uint8_t)(1u << (i % 8));
        }
    }
    return 0;
}
