/* tests/embed/static.c -- the WordPiece tokenizer (embed/wordpiece.c), the
 * safetensors reader (embed/safetensors.c) and the static embedders
 * (embed/static.c): Hugging Face tokenization cases, potion-base-2M's
 * published token ids and embeddings, the model2vec-rs fixtures, and GloVe
 * through semcached-convert. */
#define _GNU_SOURCE
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sc_embed.h"
#include "sc_safetensors.h"
#include "testutil.h"

static char path_buf[4096];
static const char *shared_path(const char *rel)
{
    snprintf(path_buf, sizeof(path_buf), "%s/%s", tu_shared(), rel);
    return path_buf;
}

/* Tokenizes and joins the token strings with spaces. */
static char *pieces(sc_wordpiece_t *t, const char *text)
{
    int32_t ids[256];
    int n = sc_wordpiece_encode(t, text, strlen(text), ids, 256);
    ck_assert_int_ge(n, 0);
    static char out[4096];
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, sizeof(out) - o, "%s%s", i ? " " : "",
                              sc_wordpiece_token(t, ids[i]));
    return out;
}

START_TEST(bert_tokenizer_matches_hugging_face)
{
    sc_wordpiece_t *t;
    ck_assert_int_eq(
        sc_wordpiece_load_vocab(&t, shared_path("models/all-MiniLM-L6-v2/vocab.txt"), NULL), 0);
    ck_assert_uint_eq(sc_wordpiece_vocab_size(t), 30522);
    /* Greedy longest-match-first. (The BERT README's "un ##aff ##able" was made
     * with another vocabulary: this one has "una" and "##ffa" but no "##aff".) */
    ck_assert_int_lt(sc_wordpiece_id(t, "##aff"), 0);
    ck_assert_str_eq(pieces(t, "unaffable"), "una ##ffa ##ble");
    ck_assert_str_eq(pieces(t, "embeddings"), "em ##bed ##ding ##s");
    ck_assert_str_eq(pieces(t, "UNwant\xc3\xa9"
                               "d,running"),
                     "unwanted , running");
    ck_assert_str_eq(pieces(t, "H\xc3\xa9llo   W\xc3\xb6rld!"), "hello world !");
    ck_assert_str_eq(pieces(t, "hi"), "hi");
    ck_assert_str_eq(pieces(t, "hi, how are you doing?"), "hi , how are you doing ?");
    /* CJK ideographs become words of their own (this vocabulary lacks U+7231). */
    ck_assert_str_eq(pieces(t, "\xe6\x88\x91\xe7\x88\xb1\xe5\x8c\x97\xe4\xba\xac"),
                     "\xe6\x88\x91 [UNK] \xe5\x8c\x97 \xe4\xba\xac");
    /* Control characters vanish; tabs and newlines separate. */
    ck_assert_str_eq(pieces(t, "a\x01"
                               "b\tc\nd"),
                     "ab c d");
    /* A word no piece can cover is one [UNK]; so is a 101-character word. */
    ck_assert_str_eq(pieces(t, "\xe2\x98\x83"), "[UNK]");
    char longw[120];
    memset(longw, 'a', 101);
    longw[101] = '\0';
    ck_assert_str_eq(pieces(t, longw), "[UNK]");
    /* Truncation: never more ids than room. */
    int32_t ids[3];
    ck_assert_int_eq(sc_wordpiece_encode(t, "one two three four five", 23, ids, 3), 3);
    /* Invalid UTF-8 is skipped, not fatal. */
    ck_assert_str_eq(pieces(t, "ok\xff\xfeyes"), "ok ##yes");
    sc_wordpiece_free(t);
}
END_TEST

static json_t *load_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    ck_assert_msg(j != NULL, "%s: %s", path, e.text);
    return j;
}

START_TEST(potion_token_ids_and_embeddings_match_python)
{
    char err[256];
    sc_wordpiece_t *t;
    ck_assert_int_eq(sc_wordpiece_load_json(&t, shared_path("models/potion-base-2M/tokenizer.json"),
                                            err, sizeof(err)),
                     0);
    sc_embedder_t *e;
    ck_assert_int_eq(sc_embedder_open(&e, shared_path("models/potion-base-2M"), err, sizeof(err)),
                     0);
    ck_assert_uint_eq(sc_embedder_dim(e), 64);
    ck_assert(strncmp(sc_embedder_identity(e), "model2vec:potion-base-2M@", 25) == 0);
    json_t *ref = load_json(shared_path("models/potion-base-2M/reference_embeddings.json"));
    ck_assert_uint_eq(json_array_size(ref), 28);
    size_t i;
    json_t *item;
    double worst = 1;
    json_array_foreach(ref, i, item)
    {
        const char *text = json_string_value(json_object_get(item, "text"));
        json_t *want_ids = json_object_get(item, "tokens");
        int32_t ids[1024];
        int n = sc_wordpiece_encode(t, text, strlen(text), ids, 1024);
        int kept = 0;
        for (int k = 0; k < n; k++)
            if (ids[k] != sc_wordpiece_unk(t))
                ids[kept++] = ids[k];
        ck_assert_msg(kept == (int)json_array_size(want_ids), "'%s': %d tokens, want %zu", text,
                      kept, json_array_size(want_ids));
        for (int k = 0; k < kept; k++)
            ck_assert_msg(ids[k] == json_integer_value(json_array_get(want_ids, (size_t)k)),
                          "'%s': token %d is %d, want %lld", text, k, ids[k],
                          (long long)json_integer_value(json_array_get(want_ids, (size_t)k)));
        float v[64];
        size_t len = strlen(text);
        uint8_t empty = 0;
        ck_assert_int_eq(sc_embedder_embed(e, &text, &len, 1, v, &empty), 0);
        json_t *want = json_object_get(item, "embedding");
        double dot = 0, nw = 0;
        for (size_t d = 0; d < 64; d++) {
            double w = json_real_value(json_array_get(want, d));
            dot += w * v[d];
            nw += w * w;
        }
        if (nw == 0) { /* no known token: Python gives zeros, we say "empty" */
            ck_assert_msg(kept == 0 && empty == 1, "'%s' should be empty", text);
            continue;
        }
        double cosine = dot / sqrt(nw);
        if (cosine < worst)
            worst = cosine;
        ck_assert_msg(cosine >= 0.9999, "'%s': cosine %.6f", text, cosine);
    }
    fprintf(stderr, "potion-base-2M: 28 texts, token ids equal, worst cosine %.6f\n", worst);
    json_decref(ref);
    sc_embedder_close(e);
    sc_wordpiece_free(t);
}
END_TEST

static void embed_one(sc_embedder_t *e, const char *text, float *out)
{
    size_t len = strlen(text);
    ck_assert_int_eq(sc_embedder_embed(e, &text, &len, 1, out, NULL), 0);
}

START_TEST(model2vec_fixtures)
{
    char err[256];
    sc_embedder_t *e32, *e16, *e8, *est;
    ck_assert_int_eq(sc_embedder_open(&e32,
                                      shared_path("models/model2vec-fixtures/test-model-float32"),
                                      err, sizeof(err)),
                     0);
    ck_assert_int_eq(sc_embedder_open(&e16,
                                      shared_path("models/model2vec-fixtures/test-model-float16"),
                                      err, sizeof(err)),
                     0);
    ck_assert_int_eq(sc_embedder_open(&e8, shared_path("models/model2vec-fixtures/test-model-int8"),
                                      err, sizeof(err)),
                     0);
    ck_assert_int_eq(
        sc_embedder_open(&est,
                         shared_path("models/model2vec-fixtures/test-model-sentence-transformers"),
                         err, sizeof(err)),
        0);
    float v[2], w[2];
    embed_one(e32, "hello world", v);
    ck_assert(fabs(v[0] - -0.3934547007083893) <= 1e-5 * 0.3934547);
    ck_assert(fabs(v[1] - -0.9193440079689026) <= 1e-5 * 0.9193440);
    char *long_text = malloc(6 * 1000);
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)sprintf(long_text + n, "%shello", i ? " " : "");
    embed_one(e32, long_text, v);
    ck_assert(fabs(v[0] - -0.7980846762657166) <= 1e-5 * 0.798);
    ck_assert(fabs(v[1] - -0.6025453805923462) <= 1e-5 * 0.603);
    /* Same weights in the sentence-transformers layout give the same vectors;
     * float16 and int8 copies are close. */
    embed_one(e32, "world test sentence", v);
    embed_one(est, "world test sentence", w);
    ck_assert(fabsf(v[0] - w[0]) < 1e-6f && fabsf(v[1] - w[1]) < 1e-6f);
    embed_one(e16, "world test sentence", w);
    ck_assert(v[0] * w[0] + v[1] * w[1] > 0.999f);
    embed_one(e8, "world test sentence", w);
    ck_assert(v[0] * w[0] + v[1] * w[1] > 0.99f);
    /* Text with no known token is reported empty, not embedded as noise. */
    const char *blank[] = {"", "\xe2\x98\x83\xe2\x98\x83"};
    size_t lens[] = {0, 6};
    float out[4];
    uint8_t empty = 0;
    ck_assert_int_eq(sc_embedder_embed(e32, blank, lens, 2, out, &empty), 0);
    ck_assert_uint_eq(empty, 3);
    /* The vocab-quantized fixture (Unigram tokenizer, a mapping into fewer
     * rows): model2vec-rs's Python ground truth for the long text. */
    sc_embedder_t *eq;
    ck_assert_int_eq(
        sc_embedder_open(&eq, shared_path("models/model2vec-fixtures/test-model-vocab-quantized"),
                         err, sizeof(err)),
        0);
    ck_assert_uint_eq(sc_embedder_dim(eq), 64);
    float q[64];
    embed_one(eq, long_text, q);
    json_error_t je;
    json_t *want = json_load_file(
        shared_path("models/model2vec-fixtures/embeddings_vocab_quantized.json"), 0, &je);
    ck_assert_ptr_nonnull(want);
    ck_assert_uint_eq(json_array_size(json_array_get(want, 0)), 64);
    for (size_t i = 0; i < 64; i++) {
        double w = json_number_value(json_array_get(json_array_get(want, 0), i));
        ck_assert_msg(fabs(q[i] - w) <= 1e-5, "dim %zu: %g vs %g", i, q[i], w);
    }
    json_decref(want);
    sc_embedder_close(eq);
    free(long_text);
    sc_embedder_close(e32);
    sc_embedder_close(e16);
    sc_embedder_close(e8);
    sc_embedder_close(est);
}
END_TEST

/* Unigram segmentation of the vocab-quantized fixture's tokenizer.json. The
 * expected ids are the maximum-score segmentations, computed for this test by
 * a separate brute-force Python DP over the same vocabulary (normalization
 * done by hand: BERT lowercasing and accents, punctuation spaced out, runs of
 * spaces collapsed, "▁" for spaces and in front). */
START_TEST(unigram_segments_by_highest_score)
{
    char err[256];
    sc_unigram_t *u;
    ck_assert_int_eq(
        sc_unigram_load_json(
            &u, shared_path("models/model2vec-fixtures/test-model-vocab-quantized/tokenizer.json"),
            err, sizeof(err)),
        0);
    static const struct {
        const char *text;
        int32_t ids[12];
        int n;
    } cases[] = {
        {"Unaffable tokenizers, naïve café!",
         {13479, 19963, 2470, 18206, 9995, 1547, 13, 14745, 6670, 2},
         10},
        {"Hello,   WORLD... it's 2026", {6594, 13, 1091, 15, 15, 15, 1012, 8, 58, 1324, 22835}, 11},
        {"日本語 text", {867, 879, 953, 2795}, 4},
        /* two unknown characters in a row fuse into one [UNK] (id 1) */
        {"zzzq\xe2\x98\x83\xe2\x98\x83 ok", {65, 12215, 3162, 1, 6931}, 5},
        {"", {0}, 0},
        {"   ", {0}, 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int32_t ids[64];
        int n = sc_unigram_encode(u, cases[c].text, strlen(cases[c].text), ids, 64);
        ck_assert_msg(n == cases[c].n, "%s: %d tokens, want %d", cases[c].text, n, cases[c].n);
        for (int i = 0; i < n; i++)
            ck_assert_msg(ids[i] == cases[c].ids[i], "%s: token %d is %d (%s), want %d",
                          cases[c].text, i, ids[i], sc_unigram_token(u, ids[i]), cases[c].ids[i]);
    }
    /* Truncated at 'cap'; invalid UTF-8 bytes are dropped, not fatal. */
    int32_t two[2];
    ck_assert_int_eq(sc_unigram_encode(u, "hello world again", 17, two, 2), 2);
    ck_assert_int_eq(two[0], 6594);
    int32_t ids[8];
    ck_assert_int_eq(sc_unigram_encode(u, "hello\xff\xfe world", 13, ids, 8), 2);
    ck_assert_int_eq(ids[1], 1091);
    ck_assert_int_eq(sc_unigram_unk(u), 1);
    sc_unigram_free(u);
    /* A WordPiece file is not a Unigram one. */
    ck_assert_int_ne(sc_unigram_load_json(&u, shared_path("models/potion-base-2M/tokenizer.json"),
                                          err, sizeof(err)),
                     0);
    ck_assert_msg(strstr(err, "Unigram"), "error: %s", err);
}
END_TEST

START_TEST(safetensors_rejects_malformed_files)
{
    char err[256];
    sc_safetensors_t *s;
    /* header length past the end */
    uint8_t a[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0};
    ck_assert_int_eq(sc_safetensors_parse(&s, a, sizeof(a), err, sizeof(err)), SC_ECORRUPT);
    /* offsets that do not match the shape, out of range, bad dtype, not JSON */
    const char *headers[] = {
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,400]}}",
        "{\"x\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
        "{\"x\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}",
        "[1,2]",
        "{\"x\":",
    };
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        size_t hl = strlen(headers[i]);
        uint8_t *buf = calloc(1, 8 + hl + 16);
        buf[0] = (uint8_t)hl;
        memcpy(buf + 8, headers[i], hl);
        ck_assert_msg(sc_safetensors_parse(&s, buf, 8 + hl + 16, err, sizeof(err)) == SC_ECORRUPT,
                      "accepted %s", headers[i]);
        free(buf);
    }
    /* A good one: F16 and BF16 values convert. */
    const char *good = "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                       "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[4,6]},"
                       "\"__metadata__\":{\"format\":\"pt\"}}";
    size_t hl = strlen(good);
    uint8_t *buf = calloc(1, 8 + hl + 6);
    buf[0] = (uint8_t)hl;
    memcpy(buf + 8, good, hl);
    uint8_t *d = buf + 8 + hl;
    d[0] = 0x00;
    d[1] = 0x3c; /* 1.0 */
    d[2] = 0x00;
    d[3] = 0xc0; /* -2.0 */
    d[4] = 0x40;
    d[5] = 0x40; /* bf16 3.0 */
    ck_assert_int_eq(sc_safetensors_parse(&s, buf, 8 + hl + 6, err, sizeof(err)), 0);
    ck_assert_uint_eq(sc_safetensors_count(s), 2);
    ck_assert(sc_tensor_f32(sc_safetensors_get(s, "h"), 0) == 1.0f);
    ck_assert(sc_tensor_f32(sc_safetensors_get(s, "h"), 1) == -2.0f);
    ck_assert(sc_tensor_f32(sc_safetensors_get(s, "b"), 0) == 3.0f);
    sc_safetensors_close(s);
    free(buf);
}
END_TEST

START_TEST(glove_text_through_the_converter)
{
    char dir[] = "/tmp/sc-glove-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char txt[256], bin[256], cmd[1024];
    snprintf(txt, sizeof(txt), "%s/vectors.txt", dir);
    snprintf(bin, sizeof(bin), "%s/vectors.scglove", dir);
    FILE *f = fopen(txt, "w");
    /* Most frequent first: "the" gets a small SIF weight. */
    fprintf(f, "the 1 0 0\ndo 0 1 0\nn't 0 0 1\ncats 0 1 1\n\xc3\xa9t\xc3\xa9 1 1 0\n");
    fclose(f);
    snprintf(cmd, sizeof(cmd), "%s glove-text %s %s 2>/dev/null", tu_bin("semcached-convert"), txt,
             bin);
    ck_assert_int_eq(system(cmd), 0);
    char err[256];
    sc_embedder_t *e;
    ck_assert_int_eq(sc_embedder_open(&e, bin, err, sizeof(err)), 0);
    ck_assert_uint_eq(sc_embedder_dim(e), 3);
    ck_assert(strncmp(sc_embedder_identity(e), "glove:3d@", 9) == 0);
    float v[3];
    embed_one(e, "Cats", v);
    ck_assert(fabsf(v[0]) < 1e-6f && fabsf(v[1] - v[2]) < 1e-6f && v[1] > 0.7f);
    /* "don't" is "do" + "n't" (ranks 2 and 3, so nearly equal SIF weights);
     * unknown words and punctuation add nothing. */
    embed_one(e, "Don't!! zzz", v);
    ck_assert(v[0] == 0.0f && v[1] > 0.5f && v[2] > 0.5f);
    float w[3];
    embed_one(e, "do n't", w);
    ck_assert(fabsf(v[1] - w[1]) < 1e-6f && fabsf(v[2] - w[2]) < 1e-6f);
    /* Lower-casing is Unicode-aware. */
    embed_one(e, "\xc3\x89T\xc3\x89", v);
    ck_assert(fabsf(v[0] - v[1]) < 1e-3f && v[2] == 0.0f);
    /* SIF: the most frequent word weighs a quarter of the fourth here (with
     * 5 words; on 340k-word GloVe, "the" weighs 1 % of a mid-rank word). */
    embed_one(e, "the cats", v);
    ck_assert(v[0] > 0 && v[0] < 0.3f * v[1]);
    sc_embedder_close(e);
    /* A truncated or foreign file is refused. */
    snprintf(cmd, sizeof(cmd), "head -c 30 %s > %s.bad", bin, bin);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "%s.bad", bin);
    ck_assert_int_eq(sc_embedder_open(&e, cmd, err, sizeof(err)), SC_ECORRUPT);
    ck_assert_int_eq(sc_embedder_open(&e, txt, err, sizeof(err)), SC_ECORRUPT);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("embed");
    TCase *tc = tcase_create("static");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, safetensors_rejects_malformed_files);
    tcase_add_test(tc, glove_text_through_the_converter);
    if (tu_shared()) {
        tcase_add_test(tc, bert_tokenizer_matches_hugging_face);
        tcase_add_test(tc, potion_token_ids_and_embeddings_match_python);
        tcase_add_test(tc, model2vec_fixtures);
        tcase_add_test(tc, unigram_segments_by_highest_score);
    } else {
        tu_skip("bert_tokenizer_matches_hugging_face: ../shared is absent");
        tu_skip("potion_token_ids_and_embeddings_match_python: ../shared is absent");
        tu_skip("model2vec_fixtures: ../shared is absent");
        tu_skip("unigram_segments_by_highest_score: ../shared is absent");
    }
    suite_add_tcase(s, tc);
    return tu_run(s);
}
