/* tests/integration/lifecycle.c -- connection limits and the process
 * lifecycle through the real binary: --max-connections answers 503 and
 * recovers, --idle-timeout-ms closes idle keep-alive connections only,
 * SIGHUP reopens the log file (for logrotate), SIGTERM in the middle of a
 * pipelined burst of stores answers what the server had received, exits 0 and
 * keeps every acknowledged store, and a client that stops reading cannot hold
 * the shutdown past --drain-timeout-ms. */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sc_common.h"
#include "testutil.h"

static long long mono_ms(void)
{
    return (long long)(sc_mono_ns() / 1000000u);
}

/* Appends what arrives on 'fd' to 'buf' (NUL-terminated, grown as needed)
 * until it holds 'want' occurrences of 'needle' (0: until EOF), EOF, or
 * 'timeout_ms'. Returns 1 on EOF. */
static int read_into(int fd, char **buf, size_t *len, const char *needle, int want, int timeout_ms)
{
    long long deadline = mono_ms() + timeout_ms;
    for (;;) {
        if (want && tu_count(*buf, needle) >= want)
            return 0;
        long long left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            return 0;
        *buf = realloc(*buf, *len + 65536 + 1);
        ssize_t r = recv(fd, *buf + *len, 65536, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return 1;
        *len += (size_t)r;
        (*buf)[*len] = '\0';
    }
}

static const char HEALTHZ[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/* A keep-alive connection that has been answered once (so the server has
 * accepted and counted it). */
static int answered_connection(int port)
{
    int fd = tu_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(tu_send_all(fd, HEALTHZ, strlen(HEALTHZ)), 0);
    char *buf = calloc(1, 1);
    size_t len = 0;
    read_into(fd, &buf, &len, "HTTP/1.1 200", 1, 5000);
    ck_assert_msg(strstr(buf, "HTTP/1.1 200"), "no answer: %s", buf);
    free(buf);
    return fd;
}

START_TEST(connection_limit_answers_503_and_recovers)
{
    tu_server_t s;
    const char *args[] = {"--max-connections", "3", NULL};
    tu_server_start(&s, args);
    usleep(200000); /* the start-up probes' connections are gone */
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = answered_connection(s.port);
    /* The fourth is told why and closed. */
    size_t n;
    char *out = tu_raw(s.port, HEALTHZ, strlen(HEALTHZ), 0, 3000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 503", 12) == 0, "got: %s", out);
    ck_assert(strstr(out, "application/problem+json"));
    ck_assert(strstr(out, "too-many-connections"));
    free(out);
    /* The three it holds still work. */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(tu_send_all(fds[i], HEALTHZ, strlen(HEALTHZ)), 0);
        char *buf = calloc(1, 1);
        size_t len = 0;
        read_into(fds[i], &buf, &len, "HTTP/1.1 200", 1, 5000);
        ck_assert(strstr(buf, "HTTP/1.1 200"));
        free(buf);
    }
    /* One closes: a new connection is served again. */
    close(fds[0]);
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) {
        usleep(20000);
        tu_resp_t r = tu_http(s.port, "GET", "/healthz", NULL);
        ok = r.status == 200;
        tu_resp_free(&r);
    }
    ck_assert(ok);
    close(fds[1]);
    close(fds[2]);
    tu_server_destroy(&s);
}
END_TEST

START_TEST(idle_connections_are_closed_busy_ones_kept)
{
    tu_server_t s;
    const char *args[] = {"--idle-timeout-ms", "400", NULL};
    tu_server_start(&s, args);
    int idle = answered_connection(s.port);
    int busy = answered_connection(s.port);
    long long t0 = mono_ms();
    /* The busy one sends a request every 100 ms for 1.2 s: never 400 ms idle. */
    while (mono_ms() - t0 < 1200) {
        usleep(100000);
        ck_assert_int_eq(tu_send_all(busy, HEALTHZ, strlen(HEALTHZ)), 0);
        char *buf = calloc(1, 1);
        size_t len = 0;
        read_into(busy, &buf, &len, "HTTP/1.1 200", 1, 3000);
        ck_assert_msg(strstr(buf, "HTTP/1.1 200"), "busy connection dropped after %lld ms",
                      mono_ms() - t0);
        free(buf);
    }
    /* The idle one was closed by then (EOF waiting). */
    char *buf = calloc(1, 1);
    size_t len = 0;
    ck_assert_int_eq(read_into(idle, &buf, &len, "", 0, 3000), 1);
    ck_assert_uint_eq(len, 0);
    free(buf);
    close(idle);
    close(busy);
    tu_server_destroy(&s);
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(sighup_reopens_the_log_file)
{
    char dir[] = "/tmp/sc-log-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char log[128], rotated[128];
    snprintf(log, sizeof(log), "%s/semcached.log", dir);
    snprintf(rotated, sizeof(rotated), "%s/semcached.log.1", dir);
    tu_server_t s;
    const char *args[] = {"--log-file", log, "--log-level", "info", NULL};
    tu_server_start(&s, args);
    char *before = slurp(log);
    ck_assert_ptr_nonnull(before);
    ck_assert_msg(strlen(before) > 0, "nothing logged at start-up");
    free(before);
    /* What logrotate does: move the file, then signal. */
    ck_assert_int_eq(rename(log, rotated), 0);
    ck_assert_int_eq(kill(s.pid, SIGHUP), 0);
    char *after = NULL;
    for (int i = 0; i < 150; i++) {
        usleep(20000);
        free(after);
        after = slurp(log);
        if (after && strstr(after, "log reopened"))
            break;
    }
    ck_assert_msg(after && strstr(after, "log reopened"), "no new log file after SIGHUP");
    free(after);
    char *old = slurp(rotated);
    ck_assert_ptr_nonnull(old);
    ck_assert(!strstr(old, "log reopened"));
    free(old);
    /* Still serving. */
    tu_resp_t r = tu_http(s.port, "GET", "/healthz", NULL);
    ck_assert_int_eq(r.status, 200);
    tu_resp_free(&r);
    tu_server_destroy(&s);
    unlink(log);
    unlink(rotated);
    rmdir(dir);
}
END_TEST

#define BURST 400

START_TEST(sigterm_mid_burst_keeps_every_acknowledged_store)
{
    tu_server_t s;
    tu_server_start(&s, NULL);
    /* BURST pipelined stores in one write; SIGTERM once the first is answered. */
    size_t cap = (size_t)BURST * 256, len = 0;
    char *reqs = malloc(cap);
    for (int i = 0; i < BURST; i++) {
        char body[128];
        int bl =
            snprintf(body, sizeof(body),
                     "{\"model\":\"m\",\"prompt\":\"drain %d\",\"response\":\"answer %d\"}", i, i);
        len += (size_t)snprintf(
            reqs + len, cap - len,
            "POST /v1/store HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: %d\r\n\r\n%s",
            bl, body);
    }
    int fd = tu_connect(s.port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(tu_send_all(fd, reqs, len), 0);
    free(reqs);
    char *buf = calloc(1, 1);
    size_t got = 0;
    read_into(fd, &buf, &got, "HTTP/1.1 201", 1, 10000);
    ck_assert_msg(strstr(buf, "HTTP/1.1 201"), "no store was answered");
    ck_assert_int_eq(kill(s.pid, SIGTERM), 0);
    ck_assert_int_eq(read_into(fd, &buf, &got, "", 0, 20000), 1); /* answered, then closed */
    close(fd);
    int st;
    ck_assert_int_eq(waitpid(s.pid, &st, 0), s.pid);
    s.pid = 0;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    /* Answers come in request order: the acknowledged stores are the first
     * 'acked'; anything after them must not be a 201 (a 503 saying the
     * server is stopping is fine). */
    int acked = 0, after_other = 0;
    for (const char *p = buf; (p = strstr(p, "HTTP/1.1 ")); p += 9) {
        int status = atoi(p + 9);
        if (status == 201 && !after_other)
            acked++;
        else if (status == 201)
            ck_abort_msg("a store was acknowledged after one that was not");
        else
            after_other = 1;
    }
    free(buf);
    /* The drain answers the pipelined requests already read, not only the
     * one in progress (closing after that one acknowledged 2 of 400). */
    ck_assert_msg(acked >= BURST / 4, "only %d of %d pipelined stores answered", acked, BURST);
    tu_server_restart(&s);
    for (int i = 0; i < acked; i++) {
        char body[96], want[32];
        snprintf(body, sizeof(body), "{\"model\":\"m\",\"prompt\":\"drain %d\"}", i);
        snprintf(want, sizeof(want), "answer %d", i);
        json_t *j = tu_call(s.port, "POST", "/v1/lookup", body, 200);
        ck_assert_msg(strcmp(tu_str(j, "status"), "hit") == 0, "acknowledged store %d of %d lost",
                      i, acked);
        ck_assert_str_eq(tu_str(j, "response"), want);
        json_decref(j);
    }
    tu_server_destroy(&s);
}
END_TEST

START_TEST(a_client_that_stops_reading_cannot_hold_the_shutdown)
{
    tu_server_t s;
    const char *args[] = {"--drain-timeout-ms", "500", NULL};
    tu_server_start(&s, args);
    /* One entry with a 100-KB answer, then 300 pipelined lookups of it (30 MB
     * of answers) on a connection that never reads. */
    size_t big = 100000;
    char *body = malloc(big + 128);
    int bl = snprintf(body, big + 128, "{\"model\":\"m\",\"prompt\":\"big\",\"response\":\"");
    memset(body + bl, 'a', big);
    strcpy(body + bl + big, "\"}");
    json_decref(tu_call(s.port, "POST", "/v1/store", body, 201));
    free(body);
    const char *lk = "{\"model\":\"m\",\"prompt\":\"big\"}";
    char one[256];
    int ol = snprintf(one, sizeof(one),
                      "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      strlen(lk), lk);
    int fd = tu_connect(s.port);
    ck_assert_int_ge(fd, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    for (int i = 0; i < 300; i++)
        ck_assert_int_eq(tu_send_all(fd, one, (size_t)ol), 0);
    usleep(300000); /* the server is blocked writing answers nobody reads */
    long long t0 = mono_ms();
    ck_assert_int_eq(kill(s.pid, SIGTERM), 0);
    int st = 0, exited = 0;
    while (mono_ms() - t0 < 15000 && !(exited = waitpid(s.pid, &st, WNOHANG) == s.pid))
        usleep(20000);
    if (!exited)
        kill(s.pid, SIGKILL), waitpid(s.pid, &st, 0);
    ck_assert_msg(exited, "still running 15 s after SIGTERM");
    s.pid = 0;
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    close(fd);
    tu_server_destroy(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, connection_limit_answers_503_and_recovers);
    tcase_add_test(tc, idle_connections_are_closed_busy_ones_kept);
    tcase_add_test(tc, sighup_reopens_the_log_file);
    tcase_add_test(tc, sigterm_mid_burst_keeps_every_acknowledged_store);
    tcase_add_test(tc, a_client_that_stops_reading_cannot_hold_the_shutdown);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
