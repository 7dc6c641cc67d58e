/* safetensors.c -- mapped, validated safetensors reader. The header is at
 * most 100 MB of JSON; each tensor's dtype, shape and data_offsets are checked
 * against each other and against the file size (with overflow checks) before
 * a pointer into the mapping is handed out. */
#define _GNU_SOURCE
#include "sc_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sc_common.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define MAX_HEADER (100u << 20)

struct sc_safetensors_s {
    void *map; /* NULL when parsing a caller's buffer */
    size_t map_len;
    const uint8_t *buf;
    size_t len;
    sc_tensor_t *tensors;
    size_t n;
};

static const struct {
    const char *name;
    sc_dtype_t dt;
    size_t size;
} dtypes[] = {{"F32", SC_DT_F32, 4}, {"F16", SC_DT_F16, 2}, {"BF16", SC_DT_BF16, 2},
              {"F64", SC_DT_F64, 8}, {"I8", SC_DT_I8, 1},   {"I32", SC_DT_I32, 4},
              {"I64", SC_DT_I64, 8}};

int sc_safetensors_parse(sc_safetensors_t **out, const void *buf, size_t len, char *err,
                         size_t err_cap)
{
    const uint8_t *b = buf;
    if (len < 8) {
        snprintf(err, err_cap, "safetensors: file shorter than its header length");
        return SC_ECORRUPT;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    if (hlen > MAX_HEADER || hlen > len - 8) {
        snprintf(err, err_cap, "safetensors: header length %llu is out of bounds",
                 (unsigned long long)hlen);
        return SC_ECORRUPT;
    }
    json_error_t je;
    json_t *h = json_loadb((const char *)b + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(h)) {
        snprintf(err, err_cap, "safetensors: header is not a JSON object (%s)", h ? "" : je.text);
        json_decref(h);
        return SC_ECORRUPT;
    }
    sc_safetensors_t *s = calloc(1, sizeof(*s));
    size_t n = json_object_size(h);
    if (!s || !(s->tensors = calloc(n ? n : 1, sizeof(sc_tensor_t)))) {
        free(s);
        json_decref(h);
        return SC_ENOMEM;
    }
    s->buf = b;
    s->len = len;
    const uint8_t *data = b + 8 + hlen;
    uint64_t data_len = len - 8 - hlen;
    const char *k;
    json_t *v;
    int rc = 0;
    json_object_foreach(h, k, v)
    {
        if (strcmp(k, "__metadata__") == 0)
            continue;
        sc_tensor_t *t = &s->tensors[s->n];
        const char *dt = json_string_value(json_object_get(v, "dtype"));
        json_t *shape = json_object_get(v, "shape"), *offs = json_object_get(v, "data_offsets");
        size_t esize = 0;
        for (size_t i = 0; dt && i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
            if (strcmp(dt, dtypes[i].name) == 0) {
                t->dtype = dtypes[i].dt;
                esize = dtypes[i].size;
            }
        if (strlen(k) >= sizeof(t->name) || !esize || !json_is_array(shape) ||
            json_array_size(shape) > SC_TENSOR_MAX_DIMS || !json_is_array(offs) ||
            json_array_size(offs) != 2) {
            snprintf(err, err_cap,
                     "safetensors: tensor '%.64s' has a bad or unsupported "
                     "dtype, shape or data_offsets",
                     k);
            rc = SC_ECORRUPT;
            break;
        }
        strcpy(t->name, k);
        t->ndim = (int)json_array_size(shape);
        uint64_t count = 1;
        for (int d = 0; d < t->ndim && !rc; d++) {
            json_t *dim = json_array_get(shape, (size_t)d);
            json_int_t x = json_integer_value(dim);
            if (!json_is_integer(dim) || x < 0 || (x && count > UINT64_MAX / (uint64_t)x / esize)) {
                rc = SC_ECORRUPT;
                break;
            }
            t->shape[d] = x;
            count *= (uint64_t)x;
        }
        json_int_t begin = json_integer_value(json_array_get(offs, 0));
        json_int_t end = json_integer_value(json_array_get(offs, 1));
        if (rc || begin < 0 || end < begin || (uint64_t)end > data_len ||
            (uint64_t)(end - begin) != count * esize) {
            snprintf(err, err_cap,
                     "safetensors: tensor '%.64s' data_offsets [%lld, %lld] do not "
                     "match its shape or the file size",
                     k, (long long)begin, (long long)end);
            rc = SC_ECORRUPT;
            break;
        }
        t->count = count;
        t->data = data + begin;
        t->nbytes = (size_t)(end - begin);
        s->n++;
    }
    json_decref(h);
    if (rc) {
        free(s->tensors);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int sc_safetensors_open(sc_safetensors_t **out, const char *path, char *err, size_t err_cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_cap, "%s: %s", path, strerror(errno));
        return -errno;
    }
    struct stat st;
    if (fstat(fd, &st) || st.st_size < 8) {
        close(fd);
        snprintf(err, err_cap, "%s: too short to be safetensors", path);
        return SC_ECORRUPT;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, err_cap, "%s: mmap: %s", path, strerror(errno));
        return -errno;
    }
    int rc = sc_safetensors_parse(out, map, (size_t)st.st_size, err, err_cap);
    if (rc) {
        munmap(map, (size_t)st.st_size);
        return rc;
    }
    (*out)->map = map;
    (*out)->map_len = (size_t)st.st_size;
    return 0;
}

void sc_safetensors_close(sc_safetensors_t *s)
{
    if (!s)
        return;
    if (s->map)
        munmap(s->map, s->map_len);
    free(s->tensors);
    free(s);
}

const sc_tensor_t *sc_safetensors_get(const sc_safetensors_t *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->tensors[i].name, name) == 0)
            return &s->tensors[i];
    return NULL;
}

size_t sc_safetensors_count(const sc_safetensors_t *s)
{
    return s->n;
}

const sc_tensor_t *sc_safetensors_at(const sc_safetensors_t *s, size_t i)
{
    return i < s->n ? &s->tensors[i] : NULL;
}

float sc_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, f;
    if (exp == 0) {
        if (!man) {
            f = sign;
        } else { /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            f = sign | exp << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) {
        f = sign | 0x7f800000u | man << 13;
    } else {
        f = sign | (exp + 127 - 15) << 23 | man << 13;
    }
    float out;
    memcpy(&out, &f, 4);
    return out;
}

float sc_tensor_f32(const sc_tensor_t *t, uint64_t i)
{
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case SC_DT_F32: {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    case SC_DT_F16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        return sc_half_to_float(h);
    }
    case SC_DT_BF16: {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case SC_DT_F64: {
        double d;
        memcpy(&d, p + 8 * i, 8);
        return (float)d;
    }
    case SC_DT_I8:
        return (float)(int8_t)p[i];
    case SC_DT_I32: {
        int32_t x;
        memcpy(&x, p + 4 * i, 4);
        return (float)x;
    }
    case SC_DT_I64: {
        int64_t x;
        memcpy(&x, p + 8 * i, 8);
        return (float)x;
    }
    }
    return 0;
}

uint64_t sc_safetensors_hash(const sc_safetensors_t *s)
{
    return XXH3_64bits(s->buf, s->len);
}
