/* vec.c -- vector helpers every layer uses: L2 normalization, the dot product
 * (OpenBLAS sdot) and decoding a client's embedding from JSON (an array of
 * numbers or OpenAI's base64 float32). They live in the foundation so that the
 * embedders, the index and the cache engine share one definition. */
#include "sc_vec.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sc_vec_normalize(float *v, uint32_t dim)
{
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(v[i]))
            return SC_EINVAL;
        ss += (double)v[i] * v[i];
    }
    if (!(ss > 0) || !isfinite(ss))
        return SC_EINVAL;
    /* Divide in double: for a tiny vector (ss ~ 1e-80) 1 / sqrt(ss) does
     * not fit a float, and v * inf would turn into inf or NaN (found by
     * fuzz_model2vec). The quotients are at most 1 in magnitude. */
    double norm = sqrt(ss);
    for (uint32_t i = 0; i < dim; i++)
        v[i] = (float)((double)v[i] / norm);
    return 0;
}

float sc_vec_dot(const float *a, const float *b, uint32_t dim)
{
    return cblas_sdot((blasint)dim, a, 1, b, 1);
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Standard base64 with padding, as OpenAI's encoding_format "base64". */
static int b64_decode(const char *in, size_t n, uint8_t **out, size_t *out_len)
{
    if (n % 4)
        return SC_EINVAL;
    size_t pad = n >= 1 && in[n - 1] == '=' ? (n >= 2 && in[n - 2] == '=' ? 2 : 1) : 0;
    uint8_t *o = malloc(n / 4 * 3 + 1);
    if (!o)
        return SC_ENOMEM;
    size_t w = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)in[i + j];
            v[j] = (c == '=' && i + j >= n - pad) ? 0 : b64val(c);
            if (v[j] < 0) {
                free(o);
                return SC_EINVAL;
            }
        }
        uint32_t triple =
            (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        o[w++] = (uint8_t)(triple >> 16);
        o[w++] = (uint8_t)(triple >> 8);
        o[w++] = (uint8_t)triple;
    }
    *out = o;
    *out_len = w - pad;
    return 0;
}

int sc_embedding_decode(const json_t *v, float **out, uint32_t *dim, char *err, size_t err_cap)
{
    float *vec = NULL;
    size_t n = 0;
    if (json_is_array(v)) {
        n = json_array_size(v);
        if (n == 0 || n > 65536) {
            snprintf(err, err_cap, "\"embedding\" must have 1 to 65536 numbers");
            return SC_EINVAL;
        }
        if (!(vec = malloc(n * sizeof(float))))
            return SC_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(v, i);
            if (!json_is_number(x)) {
                free(vec);
                snprintf(err, err_cap, "\"embedding\"[%zu] is not a number", i);
                return SC_EINVAL;
            }
            vec[i] = (float)json_number_value(x);
        }
    } else if (json_is_string(v)) {
        uint8_t *bytes;
        size_t len;
        int rc = b64_decode(json_string_value(v), json_string_length(v), &bytes, &len);
        if (rc == SC_ENOMEM)
            return rc;
        if (rc || len == 0 || len % 4 || len / 4 > 65536) {
            if (!rc)
                free(bytes);
            snprintf(err, err_cap,
                     "\"embedding\" as a string must be base64 of 1 to 65536 "
                     "little-endian float32 values");
            return SC_EINVAL;
        }
        n = len / 4;
        vec = (float *)(void *)bytes; /* malloc'd, so suitably aligned */
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)bytes[4 * i] | (uint32_t)bytes[4 * i + 1] << 8 |
                         (uint32_t)bytes[4 * i + 2] << 16 | (uint32_t)bytes[4 * i + 3] << 24;
            memcpy(&vec[i], &u, 4);
        }
    } else {
        snprintf(err, err_cap, "\"embedding\" must be an array of numbers or a base64 string");
        return SC_EINVAL;
    }
    if (sc_vec_normalize(vec, (uint32_t)n)) {
        free(vec);
        snprintf(err, err_cap, "\"embedding\" must be finite and not all zeros");
        return SC_EINVAL;
    }
    *out = vec;
    *dim = (uint32_t)n;
    return 0;
}
