/* testutil.h -- helpers for semcached's Check tests: start the real server
 * binary on a free loopback port, speak HTTP to it over plain sockets, find
 * ../shared data (skipping, not passing, when it is absent), and print the
 * per-binary result line that tests/run.sh adds up. */
#ifndef SC_TESTUTIL_H
#define SC_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int port;
    char data_dir[256];
    char *args[64]; /* extra arguments, owned */
    int n_args;
} tu_server_t;

typedef struct {
    int status;    /* HTTP status, or -1 on transport failure */
    char *headers; /* raw header block, owned */
    char *body;    /* NUL-terminated, owned */
    size_t body_len;
} tu_resp_t;

/* Directory of shared test data, or NULL when it is absent. */
const char *tu_shared(void);
/* Path of a built binary ("semcached", "semcached-bench"). Static buffer. */
const char *tu_bin(const char *name);

/* Starts semcached with a fresh data dir and 'extra' arguments (NULL-ended).
 * Waits until /healthz answers. Aborts the test process on failure. */
void tu_server_start(tu_server_t *s, const char *const *extra);
/* Restarts on the same port and data dir. */
void tu_server_restart(tu_server_t *s);
/* Sends 'sig' and waits for the exit; returns the exit status word. */
int tu_server_stop(tu_server_t *s, int sig);
/* Stops and removes the data dir. */
void tu_server_destroy(tu_server_t *s);

/* One request on a new connection (Connection: close). 'body' may be NULL. */
tu_resp_t tu_http(int port, const char *method, const char *path, const char *body);
/* Same with a Content-Type header of the caller's choice (NULL = none). */
tu_resp_t tu_http_ct(int port, const char *method, const char *path, const char *body,
                     const char *content_type);
void tu_resp_free(tu_resp_t *r);
/* The status of one request without a body (-1 on transport failure). */
int tu_status(int port, const char *method, const char *path);

/* A blocking TCP connection to 127.0.0.1:'port' (TCP_NODELAY), or -1. */
int tu_connect(int port);
/* Sends all 'n' bytes; 0, or -1 when the peer is gone. */
int tu_send_all(int fd, const char *p, size_t n);
/* Sends raw bytes (optionally one byte per write), then reads until the peer
 * closes or 'timeout_ms' passes. Returns the bytes read (owned). */
char *tu_raw(int port, const char *bytes, size_t len, int byte_at_a_time, int timeout_ms,
             size_t *out_len);
/* One request; asserts the status is 'want' and returns the body as JSON
 * (caller json_decref's). */
struct json_t;
struct json_t *tu_call(int port, const char *method, const char *path, const char *body, int want);
/* The string member 'key' of object 'j', or "" if absent or not a string. */
const char *tu_str(struct json_t *j, const char *key);

/* Milliseconds on the monotonic clock (for deadlines and durations). */
long long tu_now_ms(void);

/* How long a test waits for what the server makes true later (a writer-thread
 * commit, a sweep, an upstream call, replication): 30 s. A wait ends as soon
 * as its condition holds, so a passing test pays nothing for the margin; under
 * ASan on a loaded 2-core machine a commit has taken over a second. */
#define TU_PATIENCE_MS 30000
/* Evaluates 'cond' every 10 ms until it holds ('ok' = 1) or 'ms' milliseconds
 * have passed ('ok' = 0). */
#define TU_WAIT_UNTIL(ok, cond, ms)                                                                \
    do {                                                                                           \
        long long tu_t0_ = tu_now_ms();                                                            \
        while (!((ok) = !!(cond)) && tu_now_ms() - tu_t0_ <= (ms))                                 \
            usleep(10000);                                                                         \
    } while (0)

/* A free TCP port on 127.0.0.1 (bound, read and released). */
int tu_free_port(void);

/* What a function writes to a FILE *, kept in memory (open_memstream). */
typedef struct {
    char *text; /* owned; valid after tu_cap_text until tu_cap_free */
    size_t len;
    FILE *f;
} tu_capture_t;
FILE *tu_cap_open(tu_capture_t *c);
/* Closes the stream (once) and returns the text written to it. */
const char *tu_cap_text(tu_capture_t *c);
void tu_cap_free(tu_capture_t *c);
/* Writes 'text' to a new file /tmp/semcached-test-XXXXXX; its name goes to
 * 'path'. The caller unlinks it. */
void tu_write_temp(char path[64], const char *text);

/* strstr that stays linear when called in a loop over a large text under
 * ASan (whose strstr scans the whole haystack each call). */
const char *tu_find(const char *hay, const char *needle);
/* Counts occurrences of 'needle' in 'hay' (linear, also under ASan). */
int tu_count(const char *hay, const char *needle);

/* The value of one series of the server's /metrics ('series' as printed,
 * labels included, e.g. "x_total{reason=\"a\"}"), or -1 when absent. */
double tu_metric(int port, const char *series);

/* Tests skipped in this binary (because shared data is missing). */
void tu_skip(const char *why);
/* Runs the suite, prints "SC-RESULT passed=N failed=N skipped=N", returns
 * the exit code for main. */
int tu_run(Suite *s);

/* Starts tests/mock_upstream.py with 'args' (see its header); returns its pid
 * and sets '*port'. */
pid_t tu_mock_start(const char *args, int *port);
void tu_mock_stop(pid_t pid);

#endif
