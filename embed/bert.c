/* bert.c -- a BERT-family sentence encoder (all-MiniLM-L6-v2, bge-small,
 * e5-small, gte-small) on OpenBLAS. A batch is padded to its longest text and
 * run as whole matrices: one sgemm for the fused Q/K/V projection of every
 * token, one per (text, head) for scores and context, then the output and
 * feed-forward sgemms; the padding mask keeps padded positions out of
 * attention and pooling. A pass can be split over threads (intra-op): each
 * takes a range of token rows for the per-token work and a share of the
 * (text, head) pairs for attention, meeting at two barriers per layer; BLAS
 * runs single-threaded inside each, so no OpenBLAS helper spins. Weights may be F32, F16 or BF16 in
 * the safetensors file; they are widened to float32 once at load. */
#define _GNU_SOURCE
#include "sc_embed_internal.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sc_safetensors.h"
#include "sc_vec.h"

typedef struct {
    float *qkv_w, *qkv_b; /* [H, 3H] (transposed), [3H]: query, key, value stacked */
    float *ao_w, *ao_b;   /* attention output [H, H] (transposed) */
    float *ln1_g, *ln1_b;
    float *in_w, *in_b;   /* intermediate [H, FF] (transposed) */
    float *out_w, *out_b; /* output [FF, H] (transposed) */
    float *ln2_g, *ln2_b;
} layer_t;

struct sc_bert_s {
    int hidden, heads, inter, layers, max_pos, types, vocab;
    float eps;
    int pool_cls;      /* CLS pooling (bge); otherwise mean over tokens */
    size_t max_tokens; /* [CLS] + text + [SEP] */
    float *word, *pos, *type, *emb_ln_g, *emb_ln_b;
    layer_t *layer;
    sc_wordpiece_t *tok;
    int32_t cls, sep;
    int threads; /* threads per forward pass (sc_bert_set_threads) */
};

/* ---- loading ------------------------------------------------------------- */

static float *tensor_copy(const sc_safetensors_t *st, const char *prefix, const char *name,
                          uint64_t want, char *err, size_t err_cap)
{
    char full[300];
    const sc_tensor_t *t = NULL;
    /* Checkpoints of BertModel have bare names; task models prefix "bert.";
     * old ones call LayerNorm parameters gamma and beta. */
    const char *prefixes[] = {prefix, "bert."};
    for (int p = 0; p < 2 && !t; p++) {
        snprintf(full, sizeof(full), "%s%s", prefixes[p], name);
        t = sc_safetensors_get(st, full);
        if (!t && strstr(name, "LayerNorm.weight")) {
            char alt[300];
            snprintf(alt, sizeof(alt), "%s%.*sgamma", prefixes[p],
                     (int)(strstr(name, "weight") - name), name);
            t = sc_safetensors_get(st, alt);
        } else if (!t && strstr(name, "LayerNorm.bias")) {
            char alt[300];
            snprintf(alt, sizeof(alt), "%s%.*sbeta", prefixes[p],
                     (int)(strstr(name, "bias") - name), name);
            t = sc_safetensors_get(st, alt);
        }
    }
    if (!t || t->count != want || t->dtype == SC_DT_I8 || t->dtype == SC_DT_I32 ||
        t->dtype == SC_DT_I64) {
        snprintf(err, err_cap, "model.safetensors: tensor %s is %s (want %llu float values)", name,
                 t ? "the wrong size or type" : "missing", (unsigned long long)want);
        return NULL;
    }
    float *out = malloc(want * sizeof(float));
    for (uint64_t i = 0; out && i < want; i++)
        out[i] = sc_tensor_f32(t, i);
    return out;
}

static int cfg_int(json_t *cfg, const char *k, int def)
{
    json_t *v = json_object_get(cfg, k);
    return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

static json_t *load_json_file(const char *dir, const char *name)
{
    char path[4096];
    json_error_t e;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return json_load_file(path, 0, &e);
}

int sc_bert_is_model_dir(const char *dir)
{
    json_t *cfg = load_json_file(dir, "config.json");
    const char *mt = json_string_value(json_object_get(cfg, "model_type"));
    int is = mt && strcmp(mt, "bert") == 0;
    json_decref(cfg);
    return is;
}

/* Replaces the [rows, cols] matrix '*w' by its transpose. */
static int transpose(float **w, int rows, int cols)
{
    float *t = malloc((size_t)rows * (size_t)cols * sizeof(float));
    if (!t)
        return SC_ENOMEM;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            t[(size_t)c * (size_t)rows + (size_t)r] = (*w)[(size_t)r * (size_t)cols + (size_t)c];
    free(*w);
    *w = t;
    return 0;
}

/* Long for a function (about 150 lines): it is the model's loading sequence
 * (config, tokenizer, each tensor by name with its shape checked, the
 * transposed projections), read top to bottom, with one cleanup path for a
 * failure at any step; split up, each piece would need that cleanup too. */
int sc_bert_open(sc_bert_t **out, const char *dir, uint64_t *hash, char *err, size_t err_cap)
{
    json_t *cfg = load_json_file(dir, "config.json");
    if (!cfg) {
        snprintf(err, err_cap, "%s/config.json: missing or not JSON", dir);
        return SC_EINVAL;
    }
    sc_bert_t *b = calloc(1, sizeof(*b));
    if (!b) {
        json_decref(cfg);
        return SC_ENOMEM;
    }
    int rc = SC_EINVAL;
    sc_safetensors_t *st = NULL;
    b->threads = 1;
    b->hidden = cfg_int(cfg, "hidden_size", 0);
    b->heads = cfg_int(cfg, "num_attention_heads", 0);
    b->inter = cfg_int(cfg, "intermediate_size", 0);
    b->layers = cfg_int(cfg, "num_hidden_layers", 0);
    b->max_pos = cfg_int(cfg, "max_position_embeddings", 512);
    b->types = cfg_int(cfg, "type_vocab_size", 2);
    b->vocab = cfg_int(cfg, "vocab_size", 0);
    json_t *eps = json_object_get(cfg, "layer_norm_eps");
    b->eps = json_is_number(eps) ? (float)json_number_value(eps) : 1e-12f;
    const char *act_s = json_string_value(json_object_get(cfg, "hidden_act"));
    char act[32];
    snprintf(act, sizeof(act), "%s", act_s ? act_s : "gelu"); /* cfg is freed next */
    json_decref(cfg);
    if (b->hidden < 1 || b->heads < 1 || b->hidden % b->heads || b->inter < 1 || b->layers < 1 ||
        b->layers > 128 || b->vocab < 5 || b->max_pos < 3 || b->types < 1 || b->hidden > 8192 ||
        b->inter > 65536 || strcmp(act, "gelu") != 0) {
        snprintf(err, err_cap, "%s/config.json: unsupported BERT shape or activation (%s)", dir,
                 act);
        goto fail;
    }
    /* Pooling: sentence-transformers' 1_Pooling/config.json (mean by default). */
    json_t *pool = load_json_file(dir, "1_Pooling/config.json");
    b->pool_cls = pool && json_is_true(json_object_get(pool, "pooling_mode_cls_token"));
    json_decref(pool);
    json_t *sb = load_json_file(dir, "sentence_bert_config.json");
    int max_seq = sb ? cfg_int(sb, "max_seq_length", b->max_pos) : b->max_pos;
    json_decref(sb);
    b->max_tokens = (size_t)(max_seq < b->max_pos ? max_seq : b->max_pos);
    /* Tokenizer: vocab.txt, else tokenizer.json. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/vocab.txt", dir);
    struct stat sst;
    if (stat(path, &sst) == 0) {
        json_t *tc = load_json_file(dir, "tokenizer_config.json");
        sc_wordpiece_opts_t o = {.lowercase = 1,
                                 .strip_accents = -1,
                                 .chinese_chars = 1,
                                 .clean_text = 1,
                                 .max_word_chars = 100};
        json_t *lc = json_object_get(tc, "do_lower_case");
        if (json_is_boolean(lc))
            o.lowercase = json_is_true(lc);
        json_decref(tc);
        rc = sc_wordpiece_load_vocab(&b->tok, path, &o);
        if (rc)
            snprintf(err, err_cap, "%s: unreadable vocabulary", path);
    } else {
        snprintf(path, sizeof(path), "%s/tokenizer.json", dir);
        rc = sc_wordpiece_load_json(&b->tok, path, err, err_cap);
    }
    if (rc)
        goto fail;
    rc = SC_EINVAL;
    b->cls = sc_wordpiece_id(b->tok, "[CLS]");
    b->sep = sc_wordpiece_id(b->tok, "[SEP]");
    if (b->cls < 0 || b->sep < 0 || (int)sc_wordpiece_vocab_size(b->tok) > b->vocab) {
        snprintf(err, err_cap, "%s: vocabulary lacks [CLS]/[SEP] or is larger than vocab_size",
                 dir);
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/model.safetensors", dir);
    if ((rc = sc_safetensors_open(&st, path, err, err_cap)))
        goto fail;
    rc = SC_EINVAL;
    uint64_t H = (uint64_t)b->hidden, FF = (uint64_t)b->inter;
    if (!(b->word = tensor_copy(st, "", "embeddings.word_embeddings.weight", (uint64_t)b->vocab * H,
                                err, err_cap)) ||
        !(b->pos = tensor_copy(st, "", "embeddings.position_embeddings.weight",
                               (uint64_t)b->max_pos * H, err, err_cap)) ||
        !(b->type = tensor_copy(st, "", "embeddings.token_type_embeddings.weight",
                                (uint64_t)b->types * H, err, err_cap)) ||
        !(b->emb_ln_g = tensor_copy(st, "", "embeddings.LayerNorm.weight", H, err, err_cap)) ||
        !(b->emb_ln_b = tensor_copy(st, "", "embeddings.LayerNorm.bias", H, err, err_cap)))
        goto fail;
    b->layer = calloc((size_t)b->layers, sizeof(layer_t));
    if (!b->layer)
        goto fail;
    for (int l = 0; l < b->layers; l++) {
        layer_t *L = &b->layer[l];
        char pre[64];
        snprintf(pre, sizeof(pre), "encoder.layer.%d.", l);
        const char *qkv[3] = {"attention.self.query.", "attention.self.key.",
                              "attention.self.value."};
        L->qkv_w = malloc(3 * H * H * sizeof(float));
        L->qkv_b = malloc(3 * H * sizeof(float));
        if (!L->qkv_w || !L->qkv_b)
            goto fail;
        for (int k = 0; k < 3; k++) {
            char name[160];
            snprintf(name, sizeof(name), "%sweight", qkv[k]);
            float *w = tensor_copy(st, pre, name, H * H, err, err_cap);
            snprintf(name, sizeof(name), "%sbias", qkv[k]);
            float *bb = w ? tensor_copy(st, pre, name, H, err, err_cap) : NULL;
            if (!w || !bb) {
                free(w);
                goto fail;
            }
            memcpy(L->qkv_w + (uint64_t)k * H * H, w, H * H * sizeof(float));
            memcpy(L->qkv_b + (uint64_t)k * H, bb, H * sizeof(float));
            free(w);
            free(bb);
        }
#define LOAD(field, name, n)                                                                       \
    if (!(L->field = tensor_copy(st, pre, name, n, err, err_cap)))                                 \
    goto fail
        LOAD(ao_w, "attention.output.dense.weight", H * H);
        LOAD(ao_b, "attention.output.dense.bias", H);
        LOAD(ln1_g, "attention.output.LayerNorm.weight", H);
        LOAD(ln1_b, "attention.output.LayerNorm.bias", H);
        LOAD(in_w, "intermediate.dense.weight", FF * H);
        LOAD(in_b, "intermediate.dense.bias", FF);
        LOAD(out_w, "output.dense.weight", H * FF);
        LOAD(out_b, "output.dense.bias", H);
        LOAD(ln2_g, "output.LayerNorm.weight", H);
        LOAD(ln2_b, "output.LayerNorm.bias", H);
#undef LOAD
        /* Stored transposed ([in, out]) so every projection is a plain
         * NoTrans x NoTrans sgemm: OpenBLAS then packs the small activation
         * block rather than repacking the weight matrix on every call. */
        if (transpose(&L->qkv_w, 3 * H, H) || transpose(&L->ao_w, H, H) ||
            transpose(&L->in_w, FF, H) || transpose(&L->out_w, H, FF)) {
            rc = SC_ENOMEM;
            goto fail;
        }
    }
    *hash = sc_safetensors_hash(st);
    sc_safetensors_close(st);
    *out = b;
    return 0;
fail:
    sc_safetensors_close(st);
    sc_bert_close(b);
    return rc ? rc : SC_EINVAL;
}

void sc_bert_close(sc_bert_t *b)
{
    if (!b)
        return;
    for (int l = 0; b->layer && l < b->layers; l++) {
        layer_t *L = &b->layer[l];
        float *p[] = {L->qkv_w, L->qkv_b, L->ao_w,  L->ao_b,  L->ln1_g, L->ln1_b,
                      L->in_w,  L->in_b,  L->out_w, L->out_b, L->ln2_g, L->ln2_b};
        for (size_t i = 0; i < sizeof(p) / sizeof(p[0]); i++)
            free(p[i]);
    }
    free(b->layer);
    free(b->word);
    free(b->pos);
    free(b->type);
    free(b->emb_ln_g);
    free(b->emb_ln_b);
    sc_wordpiece_free(b->tok);
    free(b);
}

void sc_bert_set_threads(sc_bert_t *b, int threads)
{
    b->threads = threads < 1 ? 1 : threads > SC_BERT_MAX_THREADS ? SC_BERT_MAX_THREADS : threads;
}

uint32_t sc_bert_dim(const sc_bert_t *b)
{
    return (uint32_t)b->hidden;
}

/* ---- forward -------------------------------------------------------------- */

static void layer_norm(float *x, size_t rows, int h, const float *g, const float *bias, float eps)
{
    for (size_t r = 0; r < rows; r++) {
        float *v = x + r * (size_t)h;
        double mean = 0, var = 0;
        for (int i = 0; i < h; i++)
            mean += v[i];
        mean /= h;
        for (int i = 0; i < h; i++)
            var += (v[i] - mean) * (v[i] - mean);
        var /= h;
        float inv = (float)(1.0 / sqrt(var + eps));
        for (int i = 0; i < h; i++)
            v[i] = ((float)(v[i] - mean)) * inv * g[i] + bias[i];
    }
}

/* y[rows, n] = x[rows, k] * Wt[k, n] + b (the weight stored transposed). */
static void linear(const float *x, size_t rows, int k, const float *wt, const float *b, int n,
                   float *y)
{
    for (size_t r = 0; r < rows; r++)
        memcpy(y + r * (size_t)n, b, (size_t)n * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)rows, n, k, 1.0f, x, k, wt, n,
                1.0f, y, n);
}

/* The elementwise loops (GELU, softmax) are written branch-free so GCC can
 * vectorize them; -O2 alone does not, so these few functions ask for O3
 * (the helpers carry the same attribute, or GCC refuses to inline them). */
#if defined(__GNUC__) && !defined(__clang__)
#define VECTORIZE __attribute__((optimize("O3", "no-trapping-math")))
#else
#define VECTORIZE
#endif

/* erf for float: a rational minimax approximation on [-4, 4] (beyond it
 * erf is +-1 in float), the one Eigen and XLA use; max abs error 4e-7
 * against the true erf (checked over [-8, 8]), where glibc's erff is a
 * library call per element. Branch-free, so the loop below vectorizes. */
VECTORIZE static inline float erf_fast(float x)
{
    x = x < -4.0f ? -4.0f : x > 4.0f ? 4.0f : x;
    float x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
}

/* GELU as BERT's "gelu" defines it, with erf (not the tanh approximation):
 * 0.5 x (1 + erf(x / sqrt 2)). */
VECTORIZE static void gelu(float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = 0.5f * v[i] * (1.0f + erf_fast(v[i] * 0.70710678118654752f));
}

/* exp for float on (-inf, 88]: Cephes' expf without branches (2^k from
 * the exponent bits, a degree-6 polynomial on [-ln2/2, ln2/2]); within 2
 * ulp, and unlike a libm call per element the loops below vectorize.
 * Softmax only ever passes x <= 0; below -87 the result is 2^-126-ish
 * instead of a denormal, which a softmax cannot tell from 0. */
VECTORIZE static inline float exp_fast(float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    /* k = round(x / ln 2) by the 1.5 * 2^23 trick (round to nearest). */
    float k = x * 1.44269504088896341f + 12582912.0f;
    k -= 12582912.0f;
    float r = x - k * 0.693359375f + k * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)k + 127) << 23};
    return e * scale.f;
}

/* Softmax of each row of 'scores' (rows x cols) in place. */
VECTORIZE static void softmax_rows(float *scores, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++) {
        float *row = scores + r * cols, mx = row[0];
        for (size_t c = 1; c < cols; c++)
            mx = row[c] > mx ? row[c] : mx;
        for (size_t c = 0; c < cols; c++)
            row[c] = exp_fast(row[c] - mx);
        double sum = 0;
        for (size_t c = 0; c < cols; c++)
            sum += row[c];
        float inv = (float)(1.0 / sum);
        for (size_t c = 0; c < cols; c++)
            row[c] *= inv;
    }
}

/* One forward pass, shared by its threads. Rows (token positions of the
 * padded batch) are split into one contiguous range per thread for
 * everything that is per token (embeddings, projections, LayerNorm,
 * feed-forward); attention is split by (text, head). Two barriers per
 * layer: after the Q/K/V projection (attention reads every row of a text)
 * and after attention. */
typedef struct {
    const sc_bert_t *b;
    const int32_t *const *ids;
    const size_t *lens;
    size_t n, L, rows;
    float *x, *qkv, *ctx, *tmp, *out;
    int threads; /* set before the gate opens */
    pthread_mutex_t gate_mu;
    pthread_cond_t gate_cv;
    int open;
    pthread_barrier_t barrier;
    _Atomic int rc;
} forward_t;

typedef struct {
    forward_t *f;
    int t;
    float *scores; /* L x L */
} forward_part_t;

static void sync_parts(forward_t *f)
{
    if (f->threads > 1)
        pthread_barrier_wait(&f->barrier);
}

static void *forward_part(void *arg)
{
    forward_part_t *part = arg;
    forward_t *f = part->f;
    pthread_mutex_lock(&f->gate_mu);
    while (!f->open)
        pthread_cond_wait(&f->gate_cv, &f->gate_mu);
    pthread_mutex_unlock(&f->gate_mu);
    const sc_bert_t *b = f->b;
    const int H = b->hidden, NH = b->heads, D = H / NH, FF = b->inter, T = f->threads;
    const size_t L = f->L, per = (f->rows + (size_t)T - 1) / (size_t)T;
    const size_t r0 = per * (size_t)part->t < f->rows ? per * (size_t)part->t : f->rows;
    const size_t r1 = r0 + per < f->rows ? r0 + per : f->rows, nr = r1 - r0;
    float *x = f->x + r0 * (size_t)H, *ctx = f->ctx + r0 * (size_t)H;
    float *tmp = f->tmp + r0 * (size_t)(FF > H ? FF : H);
    /* Embeddings: word + position + token type 0, then LayerNorm. Padded
     * rows are computed too (they never reach a real token or the pool). */
    for (size_t r = r0; r < r1; r++) {
        size_t s = r / L, t = r % L;
        float *v = f->x + r * (size_t)H;
        int32_t id = t < f->lens[s] ? f->ids[s][t] : 0;
        if (id < 0 || id >= b->vocab) {
            atomic_store(&f->rc, SC_EINVAL);
            id = 0; /* finish the pass (the barriers need every thread) */
        }
        const float *we = b->word + (size_t)id * (size_t)H, *pe = b->pos + t * (size_t)H;
        for (int i = 0; i < H; i++)
            v[i] = we[i] + pe[i] + b->type[i];
    }
    layer_norm(x, nr, H, b->emb_ln_g, b->emb_ln_b, b->eps);
    memset(ctx, 0, nr * (size_t)H * sizeof(float)); /* padded rows stay finite */
    const float scale = 1.0f / sqrtf((float)D);
    for (int l = 0; l < b->layers; l++) {
        const layer_t *Ly = &b->layer[l];
        if (nr)
            linear(x, nr, H, Ly->qkv_w, Ly->qkv_b, 3 * H, f->qkv + r0 * 3 * (size_t)H);
        sync_parts(f);
        for (size_t p = (size_t)part->t; p < f->n * (size_t)NH; p += (size_t)T) {
            size_t s = p / (size_t)NH, len = f->lens[s];
            int h = (int)(p % (size_t)NH);
            const float *q = f->qkv + s * L * 3 * (size_t)H + (size_t)h * D;
            const float *k = q + H, *v = q + 2 * H;
            /* Padded keys are left out entirely: softmax over the real
             * tokens equals HF's additive -inf mask. */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)len, (blasint)len, D,
                        scale, q, 3 * H, k, 3 * H, 0.0f, part->scores, (blasint)len);
            softmax_rows(part->scores, len, len);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)len, D, (blasint)len,
                        1.0f, part->scores, (blasint)len, v, 3 * H, 0.0f,
                        f->ctx + s * L * (size_t)H + (size_t)h * D, H);
        }
        sync_parts(f);
        if (!nr)
            continue;
        linear(ctx, nr, H, Ly->ao_w, Ly->ao_b, H, tmp);
        for (size_t i = 0; i < nr * (size_t)H; i++)
            x[i] += tmp[i];
        layer_norm(x, nr, H, Ly->ln1_g, Ly->ln1_b, b->eps);
        linear(x, nr, H, Ly->in_w, Ly->in_b, FF, tmp);
        gelu(tmp, nr * (size_t)FF);
        linear(tmp, nr, FF, Ly->out_w, Ly->out_b, H, ctx);
        for (size_t i = 0; i < nr * (size_t)H; i++)
            x[i] += ctx[i];
        layer_norm(x, nr, H, Ly->ln2_g, Ly->ln2_b, b->eps);
    }
    sync_parts(f);
    for (size_t s = (size_t)part->t; s < f->n; s += (size_t)T) {
        float *o = f->out + s * (size_t)H;
        if (b->pool_cls) {
            memcpy(o, f->x + s * L * (size_t)H, (size_t)H * sizeof(float));
        } else {
            memset(o, 0, (size_t)H * sizeof(float));
            for (size_t t = 0; t < f->lens[s]; t++)
                for (int i = 0; i < H; i++)
                    o[i] += f->x[(s * L + t) * (size_t)H + i];
            for (int i = 0; i < H; i++)
                o[i] /= (float)f->lens[s];
        }
        if (sc_vec_normalize(o, (uint32_t)H))
            memset(o, 0, (size_t)H * sizeof(float));
    }
    return NULL;
}

int sc_bert_encode_ids(const sc_bert_t *b, const int32_t *const *ids, const size_t *lens, size_t n,
                       float *out)
{
    const int H = b->hidden, FF = b->inter;
    size_t L = 1;
    for (size_t i = 0; i < n; i++) {
        if (!lens[i] || lens[i] > b->max_tokens)
            return SC_EINVAL;
        if (lens[i] > L)
            L = lens[i];
    }
    forward_t f = {.b = b, .ids = ids, .lens = lens, .n = n, .L = L, .rows = n * L, .out = out};
    /* A thread needs a few rows of its own to be worth starting. */
    f.threads = b->threads > 1 ? b->threads : 1;
    if ((size_t)f.threads > f.rows / 4)
        f.threads = f.rows / 4 > 1 ? (int)(f.rows / 4) : 1;
    f.x = malloc(f.rows * (size_t)H * sizeof(float));
    f.qkv = malloc(f.rows * 3 * (size_t)H * sizeof(float));
    f.ctx = malloc(f.rows * (size_t)H * sizeof(float));
    f.tmp = malloc(f.rows * (size_t)(FF > H ? FF : H) * sizeof(float));
    forward_part_t parts[SC_BERT_MAX_THREADS];
    pthread_t tids[SC_BERT_MAX_THREADS];
    int allocated = 0, rc = f.x && f.qkv && f.ctx && f.tmp ? 0 : SC_ENOMEM;
    for (int t = 0; t < f.threads && !rc; t++) {
        parts[t] = (forward_part_t){.f = &f, .t = t, .scores = malloc(L * L * sizeof(float))};
        if (!parts[t].scores)
            rc = SC_ENOMEM;
        allocated = t + 1;
    }
    if (!rc) {
        /* Parts wait at the gate until the number of threads that could be
         * started is known: it sizes the barrier and the row ranges. */
        int wanted = f.threads, spawned = 1;
        pthread_mutex_init(&f.gate_mu, NULL);
        pthread_cond_init(&f.gate_cv, NULL);
        for (; spawned < wanted; spawned++)
            if (pthread_create(&tids[spawned], NULL, forward_part, &parts[spawned]))
                break;
        pthread_mutex_lock(&f.gate_mu);
        f.threads = spawned;
        if (spawned > 1)
            pthread_barrier_init(&f.barrier, NULL, (unsigned)spawned);
        f.open = 1;
        pthread_cond_broadcast(&f.gate_cv);
        pthread_mutex_unlock(&f.gate_mu);
        atomic_init(&f.rc, 0);
        forward_part(&parts[0]);
        for (int t = 1; t < spawned; t++)
            pthread_join(tids[t], NULL);
        rc = atomic_load(&f.rc);
        if (spawned > 1)
            pthread_barrier_destroy(&f.barrier);
        pthread_mutex_destroy(&f.gate_mu);
        pthread_cond_destroy(&f.gate_cv);
    }
    for (int t = 0; t < allocated; t++)
        free(parts[t].scores);
    free(f.x);
    free(f.qkv);
    free(f.ctx);
    free(f.tmp);
    return rc;
}

int sc_bert_embed(const sc_bert_t *b, const char *const *texts, const size_t *lens, size_t n,
                  float *out)
{
    int32_t **ids = calloc(n, sizeof(int32_t *));
    size_t *nt = calloc(n, sizeof(size_t));
    int rc = ids && nt ? 0 : SC_ENOMEM;
    for (size_t i = 0; i < n && !rc; i++) {
        ids[i] = malloc(b->max_tokens * sizeof(int32_t));
        if (!ids[i]) {
            rc = SC_ENOMEM;
            break;
        }
        ids[i][0] = b->cls;
        int k = sc_wordpiece_encode(b->tok, texts[i], lens[i], ids[i] + 1, b->max_tokens - 2);
        if (k < 0) {
            rc = k;
            break;
        }
        ids[i][k + 1] = b->sep;
        nt[i] = (size_t)k + 2; /* truncated to the model's length, [SEP] kept */
    }
    if (!rc)
        rc = sc_bert_encode_ids(b, (const int32_t *const *)ids, nt, n, out);
    for (size_t i = 0; ids && i < n; i++)
        free(ids[i]);
    free(ids);
    free(nt);
    return rc;
}
