/* common.c -- error strings, growable buffers, clocks and hex helpers.
 * Buffers grow geometrically so appending a response costs amortized O(1). */
#define _GNU_SOURCE
#include "sc_common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *sc_strerror(int err)
{
    switch (err) {
    case SC_OK:
        return "ok";
    case SC_EINVAL:
        return "invalid argument";
    case SC_ENOMEM:
        return "out of memory";
    case SC_ENOTFOUND:
        return "not found";
    case SC_EFULL:
        return "storage full";
    case SC_ECORRUPT:
        return "stored data is corrupt";
    case SC_ETOOBIG:
        return "value too large";
    case SC_ESTORE:
        return "storage error";
    case SC_ECLOSED:
        return "shutting down";
    case SC_EBUSY:
        return "queue full";
    case SC_EEXPIRED:
        return "expired";
    case SC_ECONFLICT:
        return "conflict";
    case SC_EINDEX:
        return "vector index error";
    case SC_EDIM:
        return "dimension mismatch";
    case SC_EREMOTE:
        return "remote endpoint failed";
    case SC_ETIMEDOUT:
        return "timed out";
    case SC_ECANCELED:
        return "canceled";
    case SC_ENOTCACHEABLE:
        return "not cacheable";
    default:
        break;
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}

int sc_buf_reserve(sc_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return SC_ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return SC_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int sc_buf_append(sc_buf_t *b, const void *p, size_t n)
{
    if (sc_buf_reserve(b, n))
        return SC_ENOMEM;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sc_buf_puts(sc_buf_t *b, const char *s)
{
    return sc_buf_append(b, s, strlen(s));
}

int sc_buf_printf(sc_buf_t *b, const char *fmt, ...)
{
    /* Format straight into the free space; only when it does not fit, grow
     * and format again (formatting twice every time cost a lot on the hit
     * path). */
    if (sc_buf_reserve(b, 128))
        return SC_ENOMEM;
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SC_ENOMEM;
    if ((size_t)n >= room) {
        if (sc_buf_reserve(b, (size_t)n))
            return SC_ENOMEM;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

int sc_buf_u64(sc_buf_t *b, uint64_t v)
{
    char tmp[24], *p = tmp + sizeof(tmp);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return sc_buf_append(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

int sc_buf_json_str(sc_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* Worst case every byte becomes \u00XX: reserve once, not per byte. */
    if (n > (SIZE_MAX - 2) / 6 || sc_buf_reserve(b, n * 6 + 2))
        return SC_ENOMEM;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            *o++ = '\\';
            switch (c) {
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

void sc_buf_reset(sc_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void sc_buf_free(sc_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int sc_buf_double(sc_buf_t *b, double d)
{
    if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308)
        return sc_buf_puts(b, "null"); /* JSON has no NaN or Infinity */
    if (d == (double)(long long)d && d > -9.2e18 && d < 9.2e18)
        return sc_buf_printf(b, "%lld", (long long)d);
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    return sc_buf_puts(b, tmp);
}

uint64_t sc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sc_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sc_hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int sc_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t n)
{
    if (in_len != 2 * n)
        return SC_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return SC_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int sc_read_file(const char *path, size_t max, sc_buf_t *out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    char chunk[65536];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        rc = out->len + n > max ? SC_ETOOBIG : sc_buf_append(out, chunk, n);
    if (!rc && ferror(f))
        rc = -EIO;
    fclose(f);
    return rc;
}
