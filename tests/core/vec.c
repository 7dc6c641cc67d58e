/* tests/core/vec.c -- the vector helpers (core/vec.c): normalization and its
 * refusals, the BLAS dot product against a double-precision loop, and the
 * embedding decoder in both wire forms. The base64 form is checked against
 * vectors this file encodes itself (float32 little-endian, standard alphabet,
 * '=' padding), so decoder and test do not share a bug. */
#include "../../core/vec.c"

#include "testutil.h"

/* Deterministic uniform floats in [-1, 1). */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
}

static double norm2(const float *v, uint32_t dim)
{
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++)
        ss += (double)v[i] * v[i];
    return ss;
}

START_TEST(normalize_gives_unit_length_and_keeps_direction)
{
    const uint32_t dims[] = {1, 2, 3, 100, 384, 1536, 65536};
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        uint32_t dim = dims[d];
        float *v = malloc(dim * sizeof(float)), *orig = malloc(dim * sizeof(float));
        for (uint32_t i = 0; i < dim; i++)
            orig[i] = v[i] = frand() * 50;
        double n = sqrt(norm2(orig, dim));
        ck_assert_int_eq(sc_vec_normalize(v, dim), 0);
        ck_assert_msg(fabs(norm2(v, dim) - 1) < 1e-5, "dim %u: |v|^2 = %.9f", dim, norm2(v, dim));
        for (uint32_t i = 0; i < dim; i++)
            ck_assert(fabs(v[i] - orig[i] / n) <= 1e-6 * fabs(orig[i] / n) + 1e-12);
        /* Normalizing a unit vector leaves it (nearly) as it is. */
        memcpy(orig, v, dim * sizeof(float));
        ck_assert_int_eq(sc_vec_normalize(v, dim), 0);
        for (uint32_t i = 0; i < dim; i++)
            ck_assert(fabsf(v[i] - orig[i]) <= 1e-6f);
        free(v);
        free(orig);
    }
    float neg[1] = {-3};
    ck_assert_int_eq(sc_vec_normalize(neg, 1), 0);
    ck_assert(neg[0] == -1.0f);
}
END_TEST

START_TEST(normalize_rejects_nan_inf_zero_and_leaves_them_alone)
{
    float bad[][4] = {
        {0, 0, 0, 0}, {1, NAN, 0, 0}, {1, 0, 0, INFINITY}, {-INFINITY, 1, 1, 1}, {0, -0.0f, 0, 0},
    };
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        float copy[4];
        memcpy(copy, bad[b], sizeof(copy));
        ck_assert_int_eq(sc_vec_normalize(bad[b], 4), SC_EINVAL);
        ck_assert_int_eq(memcmp(copy, bad[b], sizeof(copy)), 0);
    }
    float any[1] = {1};
    ck_assert_int_eq(sc_vec_normalize(any, 0), SC_EINVAL); /* no components, no norm */
}
END_TEST

START_TEST(normalize_survives_tiny_and_huge_vectors)
{
    /* 1e-40 is subnormal in float; the sum of squares (1e-80) is not even a
     * float, and 1 / sqrt(ss) would overflow one (found by fuzz_model2vec). */
    float tiny[3] = {1e-40f, 0, -1e-40f};
    ck_assert_int_eq(sc_vec_normalize(tiny, 3), 0);
    ck_assert_float_eq_tol(tiny[0], 0.70710678f, 1e-6f);
    ck_assert(tiny[1] == 0);
    ck_assert_float_eq_tol(tiny[2], -0.70710678f, 1e-6f);
    /* The smallest subnormal alone. */
    float least[2] = {0, 1.4e-45f};
    ck_assert_int_eq(sc_vec_normalize(least, 2), 0);
    ck_assert(least[0] == 0 && least[1] == 1.0f);
    /* Components near FLT_MAX: their squares overflow a float, not a double. */
    float huge[2] = {3e38f, -3e38f};
    ck_assert_int_eq(sc_vec_normalize(huge, 2), 0);
    ck_assert_float_eq_tol(huge[0], 0.70710678f, 1e-6f);
    ck_assert_float_eq_tol(huge[1], -0.70710678f, 1e-6f);
    /* Mixed scales: the tiny component underflows to zero, as it should. */
    float mixed[2] = {1e30f, 1e-30f};
    ck_assert_int_eq(sc_vec_normalize(mixed, 2), 0);
    ck_assert(mixed[0] == 1.0f && mixed[1] == 0);
}
END_TEST

START_TEST(dot_matches_a_double_loop)
{
    const uint32_t dims[] = {1, 3, 7, 16, 100, 384, 1000, 4096};
    for (size_t d = 0; d < sizeof(dims) / sizeof(dims[0]); d++) {
        uint32_t dim = dims[d];
        float *a = malloc(dim * sizeof(float)), *b = malloc(dim * sizeof(float));
        double want = 0, scale = 0;
        for (uint32_t i = 0; i < dim; i++) {
            a[i] = frand();
            b[i] = frand();
            want += (double)a[i] * b[i];
            scale += fabs((double)a[i] * b[i]);
        }
        float got = sc_vec_dot(a, b, dim);
        ck_assert_msg(fabs(got - want) <= 1e-5 * scale + 1e-7, "dim %u: %.9g vs %.9g", dim,
                      (double)got, want);
        /* A unit vector with itself is 1. */
        ck_assert_int_eq(sc_vec_normalize(a, dim), 0);
        ck_assert_float_eq_tol(sc_vec_dot(a, a, dim), 1.0f, 1e-5f);
        free(a);
        free(b);
    }
    float x[2] = {1, 0}, y[2] = {0, 1}, z[2] = {-1, 0};
    ck_assert(sc_vec_dot(x, y, 2) == 0);
    ck_assert(sc_vec_dot(x, z, 2) == -1);
    ck_assert(sc_vec_dot(x, y, 0) == 0);
}
END_TEST

/* ---- sc_embedding_decode ------------------------------------------------ */

/* Standard base64 with '=' padding of 'n' bytes; caller frees. */
static char *b64(const uint8_t *p, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t t = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *o++ = alphabet[t >> 18 & 63];
        *o++ = alphabet[t >> 12 & 63];
        *o++ = i + 1 < n ? alphabet[t >> 6 & 63] : '=';
        *o++ = i + 2 < n ? alphabet[t & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* 'v' as base64 of float32 little-endian, whatever the host byte order. */
static json_t *b64_floats(const float *v, size_t n)
{
    uint8_t *bytes = malloc(n * 4 + 1);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        for (int b = 0; b < 4; b++)
            bytes[4 * i + (size_t)b] = (uint8_t)(u >> (8 * b));
    }
    char *s = b64(bytes, n * 4);
    json_t *j = json_string(s);
    free(s);
    free(bytes);
    return j;
}

/* Decodes 'j' (stolen) and checks the result equals 'want' normalized. */
static void expect_decoded(json_t *j, const float *want, uint32_t n)
{
    float *copy = malloc(n * sizeof(float)), *out = NULL;
    memcpy(copy, want, n * sizeof(float));
    ck_assert_int_eq(sc_vec_normalize(copy, n), 0);
    uint32_t dim = 0;
    char err[256] = "";
    ck_assert_msg(sc_embedding_decode(j, &out, &dim, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(dim, n);
    for (uint32_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(out[i] - copy[i]) <= 1e-6f, "[%u] %g vs %g", i, (double)out[i],
                      (double)copy[i]);
    free(out);
    free(copy);
    json_decref(j);
}

/* Decodes 'j' (stolen), expecting SC_EINVAL with exactly 'msg'. */
static void expect_rejected(json_t *j, const char *msg)
{
    float *out = NULL;
    uint32_t dim = 0;
    char err[256] = "";
    ck_assert_int_eq(sc_embedding_decode(j, &out, &dim, err, sizeof(err)), SC_EINVAL);
    ck_assert_str_eq(err, msg);
    ck_assert_ptr_null(out);
    json_decref(j);
}

static const char *const MSG_RANGE = "\"embedding\" must have 1 to 65536 numbers";
static const char *const MSG_B64 = "\"embedding\" as a string must be base64 of 1 to 65536 "
                                   "little-endian float32 values";
static const char *const MSG_BADNUM = "\"embedding\" must be finite and not all zeros";
static const char *const MSG_TYPE = "\"embedding\" must be an array of numbers or a base64 string";

START_TEST(decode_array_form)
{
    json_t *a = json_pack("[i, f]", 3, 4.0);
    float want[2] = {3, 4};
    expect_decoded(a, want, 2);
    /* The result is normalized: [3, 4] is [0.6, 0.8]. */
    float *out;
    uint32_t dim;
    char err[128];
    json_t *b = json_pack("[i, i]", 3, 4);
    ck_assert_int_eq(sc_embedding_decode(b, &out, &dim, err, sizeof(err)), 0);
    ck_assert_float_eq_tol(out[0], 0.6f, 1e-7f);
    ck_assert_float_eq_tol(out[1], 0.8f, 1e-7f);
    free(out);
    json_decref(b);
    /* 384 random numbers, and the largest length. */
    for (uint32_t n = 384; n <= 65536; n += 65536 - 384) {
        float *v = malloc(n * sizeof(float));
        json_t *arr = json_array();
        for (uint32_t i = 0; i < n; i++) {
            v[i] = frand();
            json_array_append_new(arr, json_real(v[i]));
        }
        expect_decoded(arr, v, n);
        free(v);
    }
}
END_TEST

START_TEST(decode_array_rejections)
{
    expect_rejected(json_array(), MSG_RANGE);
    json_t *big = json_array();
    for (int i = 0; i < 65537; i++)
        json_array_append_new(big, json_integer(1));
    expect_rejected(big, MSG_RANGE);
    expect_rejected(json_pack("[i, s]", 1, "2"), "\"embedding\"[1] is not a number");
    expect_rejected(json_pack("[n]"), "\"embedding\"[0] is not a number");
    expect_rejected(json_pack("[f, f, b]", 1.0, 2.0, 1), "\"embedding\"[2] is not a number");
    expect_rejected(json_pack("[i, [i]]", 1, 2), "\"embedding\"[1] is not a number");
    expect_rejected(json_pack("[i, i, i]", 0, 0, 0), MSG_BADNUM);
    /* A double past FLT_MAX becomes an infinite float: rejected, not kept. */
    expect_rejected(json_pack("[f, f]", 1e300, 1.0), MSG_BADNUM);
    expect_rejected(json_pack("{s:i}", "a", 1), MSG_TYPE);
    expect_rejected(json_integer(1), MSG_TYPE);
    expect_rejected(json_null(), MSG_TYPE);
    expect_rejected(json_true(), MSG_TYPE);
}
END_TEST

START_TEST(decode_base64_form)
{
    /* 3, 4 and 5 floats: 12, 16 and 20 bytes, i.e. no, two and one '='. */
    const float v[5] = {1.0f, -2.0f, 0.5f, 3.25f, -1e-3f};
    for (uint32_t n = 3; n <= 5; n++) {
        json_t *j = b64_floats(v, n);
        size_t len = strlen(json_string_value(j));
        int pad = (int)(len - strcspn(json_string_value(j), "="));
        ck_assert_int_eq(pad, (int)(n * 4 % 3 == 0 ? 0 : 3 - n * 4 % 3));
        expect_decoded(j, v, n);
    }
    /* The byte order is little-endian on the wire: 1.0f is 00 00 80 3f. */
    float *out;
    uint32_t dim;
    char err[128];
    json_t *one = json_string("AACAPw==");
    ck_assert_int_eq(sc_embedding_decode(one, &out, &dim, err, sizeof(err)), 0);
    ck_assert_uint_eq(dim, 1);
    ck_assert(out[0] == 1.0f);
    free(out);
    json_decref(one);
    /* 384 random values, and the largest length. */
    for (uint32_t n = 384; n <= 65536; n += 65536 - 384) {
        float *r = malloc(n * sizeof(float));
        for (uint32_t i = 0; i < n; i++)
            r[i] = frand();
        expect_decoded(b64_floats(r, n), r, n);
        free(r);
    }
}
END_TEST

START_TEST(decode_base64_rejections)
{
    expect_rejected(json_string(""), MSG_B64);
    expect_rejected(json_string("AAA"), MSG_B64);          /* length not a multiple of 4 */
    expect_rejected(json_string("AACAPw"), MSG_B64);       /* unpadded */
    expect_rejected(json_string("AACA Pw="), MSG_B64);     /* whitespace */
    expect_rejected(json_string("AACAPw!="), MSG_B64);     /* not in the alphabet */
    expect_rejected(json_string("AACA-w=="), MSG_B64);     /* URL-safe alphabet */
    expect_rejected(json_string("AA==AACAPw=="), MSG_B64); /* padding inside */
    expect_rejected(json_string("===="), MSG_B64);
    expect_rejected(json_string("AAA="), MSG_B64);        /* 2 bytes: not a float */
    expect_rejected(json_string("AAAAAA=="), MSG_BADNUM); /* 4 bytes: one float, zero */
    uint8_t five[5] = {0, 0, 0x80, 0x3f, 0};
    char *s = b64(five, 5); /* 5 bytes: 1.25 floats */
    expect_rejected(json_string(s), MSG_B64);
    free(s);
    /* One float too many. */
    float *r = malloc(65537 * sizeof(float));
    for (int i = 0; i < 65537; i++)
        r[i] = 1;
    expect_rejected(b64_floats(r, 65537), MSG_B64);
    free(r);
    /* Well-formed but not a usable vector. */
    const float zeros[4] = {0, 0, 0, 0}, nan_v[2] = {1, NAN}, inf_v[2] = {INFINITY, 0};
    expect_rejected(b64_floats(zeros, 4), MSG_BADNUM);
    expect_rejected(b64_floats(nan_v, 2), MSG_BADNUM);
    expect_rejected(b64_floats(inf_v, 2), MSG_BADNUM);
}
END_TEST

START_TEST(decode_message_fits_any_buffer)
{
    /* A short error buffer gets a truncated, terminated message. */
    float *out = NULL;
    uint32_t dim = 0;
    char err[8];
    memset(err, 'x', sizeof(err));
    json_t *j = json_null();
    ck_assert_int_eq(sc_embedding_decode(j, &out, &dim, err, sizeof(err)), SC_EINVAL);
    ck_assert_str_eq(err, "\"embedd");
    json_decref(j);
}
END_TEST

START_TEST(b64_decoder_lengths_and_padding)
{
    /* The decoder under the embedding: output length minus padding. */
    const char *in[] = {"", "QQ==", "QUI=", "QUJD", "QUJDRA=="};
    const char *want[] = {"", "A", "AB", "ABC", "ABCD"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        uint8_t *o = NULL;
        size_t n = 99;
        ck_assert_int_eq(b64_decode(in[i], strlen(in[i]), &o, &n), 0);
        ck_assert_uint_eq(n, strlen(want[i]));
        ck_assert_int_eq(memcmp(o, want[i], n), 0);
        free(o);
    }
    uint8_t *o = NULL;
    size_t n;
    ck_assert_int_eq(b64_decode("Q===", 4, &o, &n), SC_EINVAL);
    ck_assert_int_eq(b64_decode("QQ=A", 4, &o, &n), SC_EINVAL);
    ck_assert_ptr_null(o);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("vec");
    TCase *tc = tcase_create("vec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, normalize_gives_unit_length_and_keeps_direction);
    tcase_add_test(tc, normalize_rejects_nan_inf_zero_and_leaves_them_alone);
    tcase_add_test(tc, normalize_survives_tiny_and_huge_vectors);
    tcase_add_test(tc, dot_matches_a_double_loop);
    tcase_add_test(tc, decode_array_form);
    tcase_add_test(tc, decode_array_rejections);
    tcase_add_test(tc, decode_base64_form);
    tcase_add_test(tc, decode_base64_rejections);
    tcase_add_test(tc, decode_message_fits_any_buffer);
    tcase_add_test(tc, b64_decoder_lengths_and_padding);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
