/* sc_common.h -- error codes, byte slices, growable buffers and clocks shared
 * by every semcached module. Errors are negative ints: SC_E* for our own
 * conditions, -errno for system errors, so one sc_strerror() covers both. */
#ifndef SC_COMMON_H
#define SC_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Our error range sits far below any errno value so the two never collide. */
enum {
    SC_OK = 0,
    SC_EINVAL = -10001,        /* bad argument or malformed input */
    SC_ENOMEM = -10002,        /* allocation failed */
    SC_ENOTFOUND = -10003,     /* no such entry */
    SC_EFULL = -10004,         /* store or index is full and cannot evict */
    SC_ECORRUPT = -10005,      /* stored data failed a consistency check */
    SC_ETOOBIG = -10006,       /* value exceeds a configured limit */
    SC_ESTORE = -10007,        /* LMDB failed for a reason not listed above */
    SC_ECLOSED = -10008,       /* the component is shutting down */
    SC_EBUSY = -10009,         /* a bounded queue is full */
    SC_EEXPIRED = -10010,      /* entry exists but is past its expiry */
    SC_ECONFLICT = -10011,     /* request conflicts with stored state */
    SC_EINDEX = -10012,        /* the vector index failed (exception caught) */
    SC_EDIM = -10013,          /* vector dimension does not match */
    SC_EREMOTE = -10014,       /* a remote endpoint failed or refused the call */
    SC_ETIMEDOUT = -10015,     /* a deadline passed before the work finished */
    SC_ECANCELED = -10016,     /* the caller withdrew the work */
    SC_ENOTCACHEABLE = -10017, /* a valid request the cache must not answer (passed through) */
};

/* Returns a static, human-readable description of 'err' (an SC_E* code or a
 * negative errno). Never NULL. */
const char *sc_strerror(int err);

/* A non-owning view of bytes; whoever hands one out says how long it lives. */
typedef struct {
    const char *ptr;
    size_t len;
} sc_slice_t;

/* A growable byte buffer. 'data' is owned by the buffer and is always
 * NUL-terminated when non-NULL, so it can be passed to C string APIs. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} sc_buf_t;

/* Ensures room for 'extra' more bytes (plus the terminator). */
int sc_buf_reserve(sc_buf_t *b, size_t extra);
int sc_buf_append(sc_buf_t *b, const void *p, size_t n);
int sc_buf_puts(sc_buf_t *b, const char *s);
/* sc_buf_puts for a string literal: its length is known at compile time. */
#define SC_BUF_LIT(b, lit) sc_buf_append((b), lit, sizeof(lit) - 1)
int sc_buf_printf(sc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the decimal digits of 'v' (no printf on hot paths). */
int sc_buf_u64(sc_buf_t *b, uint64_t v);
/* Appends 's' as a JSON string literal, quotes included. */
int sc_buf_json_str(sc_buf_t *b, const char *s, size_t n);
void sc_buf_reset(sc_buf_t *b);
void sc_buf_free(sc_buf_t *b);

/* Writes 'd' in its shortest round-trip decimal form ("0.9", not
 * "0.90000000000000002"); integral values within int64 print as integers. */
int sc_buf_double(sc_buf_t *b, double d);

/* Appends the whole file at 'path' to 'out' (NUL-terminated as every
 * sc_buf_t). 0; -errno when it cannot be opened or read; SC_ETOOBIG past
 * 'max' bytes; SC_ENOMEM. On failure 'out' may hold part of the file. */
int sc_read_file(const char *path, size_t max, sc_buf_t *out);

/* Wall-clock milliseconds since the epoch (entry timestamps survive restarts)
 * and monotonic nanoseconds (for durations). */
uint64_t sc_now_ms(void);
uint64_t sc_mono_ns(void);

/* Lower-case hex of 'n' bytes into 'out' (2n+1 bytes, NUL-terminated). */
void sc_hex_encode(const uint8_t *in, size_t n, char *out);
/* Parses exactly 2n hex digits; SC_EINVAL on any other input. */
int sc_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t n);

#endif
