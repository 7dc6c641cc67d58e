/* testutil.c -- server process control, a minimal blocking HTTP client and
 * the result line for tests/run.sh. Blocking sockets with timeouts keep the
 * tests simple; nothing here is on a hot path. */
#define _GNU_SOURCE
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int n_skipped;

const char *tu_shared(void)
{
    static char path[1024];
    const char *s = getenv("SHARED");
    if (!s || !*s)
        s = "../shared";
    struct stat st;
    if (stat(s, &st) || !S_ISDIR(st.st_mode))
        return NULL;
    snprintf(path, sizeof(path), "%s", s);
    return path;
}

const char *tu_bin(const char *name)
{
    static char path[1024];
    const char *b = getenv("BUILD");
    snprintf(path, sizeof(path), "%s/%s", b && *b ? b : "build", name);
    return path;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
        getsockname(fd, (struct sockaddr *)&a, &l))
        abort();
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void spawn(tu_server_t *s)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", s->port);
    const char *argv[96];
    int n = 0;
    /* TU_WRAPPER runs the server under a tool (valgrind in `make valgrind`). */
    char wrapper[512] = "";
    const char *wrap = getenv("TU_WRAPPER");
    if (wrap && *wrap) {
        snprintf(wrapper, sizeof(wrapper), "%s", wrap);
        char *save = NULL;
        for (char *t = strtok_r(wrapper, " ", &save); t && n < 20; t = strtok_r(NULL, " ", &save))
            argv[n++] = t;
    }
    argv[n++] = tu_bin("semcached");
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--data-dir";
    argv[n++] = s->data_dir;
    argv[n++] = "--threads";
    argv[n++] = "2";
    argv[n++] = "--log-level";
    argv[n++] = getenv("TU_LOG_LEVEL") ? getenv("TU_LOG_LEVEL") : "warn";
    for (int i = 0; i < s->n_args; i++)
        argv[n++] = s->args[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        execvp(argv[0], (char *const *)argv); /* the wrapper is found on PATH */
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 1500; i++) { /* up to 30 s: sanitizers and valgrind start slowly */
        /* Ready means the indexes are loaded too (semantic lookups find
         * nothing before); behind a token, 401 still says it is serving. */
        tu_resp_t r = tu_http(s->port, "GET", "/readyz", NULL);
        int ok = r.status == 200 || r.status == 401;
        tu_resp_free(&r);
        if (ok)
            return;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "semcached exited during start-up (status %d)\n", st);
            abort();
        }
        usleep(20000);
    }
    fprintf(stderr, "semcached was not ready (/readyz) on port %d\n", s->port);
    kill(pid, SIGKILL);
    abort();
}

void tu_server_start(tu_server_t *s, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->data_dir, sizeof(s->data_dir), "/tmp/semcached-test-XXXXXX");
    if (!mkdtemp(s->data_dir))
        abort();
    for (int i = 0; extra && extra[i] && i < 60; i++)
        s->args[s->n_args++] = strdup(extra[i]);
    s->port = free_port();
    spawn(s);
}

void tu_server_restart(tu_server_t *s)
{
    spawn(s);
}

int tu_server_stop(tu_server_t *s, int sig)
{
    int st = -1;
    if (s->pid > 0) {
        kill(s->pid, sig);
        waitpid(s->pid, &st, 0);
        s->pid = 0;
    }
    return st;
}

void tu_server_destroy(tu_server_t *s)
{
    if (getenv("TU_WRAPPER") && *getenv("TU_WRAPPER") && s->pid > 0) {
        /* A clean stop lets the tool report; its error exit code fails the test. */
        int st = tu_server_stop(s, SIGTERM);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "the server under %s ended with status %d", getenv("TU_WRAPPER"), st);
    }
    tu_server_stop(s, SIGKILL);
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->data_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->data_dir);
    for (int i = 0; i < s->n_args; i++)
        free(s->args[i]);
    s->n_args = 0;
}

int tu_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int tu_send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

long long tu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads until EOF or timeout into a malloc'd buffer. */
static char *read_all(int fd, int timeout_ms, size_t *out_len)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    long long deadline = tu_now_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - tu_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)left);
        if (pr <= 0)
            break;
        if (len + 4096 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    *out_len = len;
    return buf;
}

tu_resp_t tu_http_ct(int port, const char *method, const char *path, const char *body,
                     const char *content_type)
{
    tu_resp_t r = {.status = -1};
    int fd = tu_connect(port);
    if (fd < 0)
        return r;
    size_t blen = body ? strlen(body) : 0;
    char *req = NULL;
    char ct[128] = "";
    if (content_type)
        snprintf(ct, sizeof(ct), "Content-Type: %s\r\n", content_type);
    int n =
        asprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n%s%s%zu\r\n\r\n",
                 method, path, ct, body ? "Content-Length: " : "X-No-Body: ", blen);
    if (n < 0 || tu_send_all(fd, req, (size_t)n) || (blen && tu_send_all(fd, body, blen))) {
        free(req);
        close(fd);
        return r;
    }
    free(req);
    size_t len;
    char *all = read_all(fd, 10000, &len);
    close(fd);
    char *sep = strstr(all, "\r\n\r\n");
    if (!sep || sscanf(all, "HTTP/1.1 %d", &r.status) != 1) {
        free(all);
        r.status = -1;
        return r;
    }
    r.headers = strndup(all, (size_t)(sep - all));
    r.body_len = len - (size_t)(sep + 4 - all);
    r.body = malloc(r.body_len + 1);
    memcpy(r.body, sep + 4, r.body_len);
    r.body[r.body_len] = '\0';
    free(all);
    return r;
}

tu_resp_t tu_http(int port, const char *method, const char *path, const char *body)
{
    return tu_http_ct(port, method, path, body, body ? "application/json" : NULL);
}

int tu_status(int port, const char *method, const char *path)
{
    tu_resp_t r = tu_http(port, method, path, NULL);
    tu_resp_free(&r);
    return r.status;
}

void tu_resp_free(tu_resp_t *r)
{
    free(r->headers);
    free(r->body);
    r->headers = r->body = NULL;
}

char *tu_raw(int port, const char *bytes, size_t len, int byte_at_a_time, int timeout_ms,
             size_t *out_len)
{
    int fd = tu_connect(port);
    if (fd < 0) {
        *out_len = 0;
        return strdup("");
    }
    if (byte_at_a_time) {
        for (size_t i = 0; i < len; i++) {
            if (tu_send_all(fd, bytes + i, 1))
                break;
            usleep(200);
        }
    } else {
        tu_send_all(fd, bytes, len);
    }
    char *out = read_all(fd, timeout_ms, out_len);
    close(fd);
    return out;
}

json_t *tu_call(int port, const char *method, const char *path, const char *body, int want)
{
    tu_resp_t r = tu_http(port, method, path, body);
    ck_assert_msg(r.status == want, "%s %s %.300s -> %d (want %d): %s", method, path,
                  body ? body : "", r.status, want, r.body ? r.body : "");
    json_error_t e;
    json_t *j = json_loads(r.body ? r.body : "", 0, &e);
    ck_assert_msg(j != NULL, "not JSON: %s", r.body ? r.body : "");
    tu_resp_free(&r);
    return j;
}

const char *tu_str(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

/* strstr in a loop is quadratic under ASan, whose strstr measures the whole
 * rest of the haystack on every call (20,000 events in a 5.8-MB stream took
 * minutes); strchr and strncmp read only as far as they look. */
const char *tu_find(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    if (!nl)
        return hay;
    for (const char *p = hay; (p = strchr(p, needle[0])); p++)
        if (strncmp(p, needle, nl) == 0)
            return p;
    return NULL;
}

int tu_count(const char *hay, const char *needle)
{
    int n = 0;
    size_t nl = strlen(needle);
    for (const char *p = hay; (p = tu_find(p, needle)); p += nl ? nl : 1)
        n++;
    return n;
}

double tu_metric(int port, const char *series)
{
    tu_resp_t r = tu_http(port, "GET", "/metrics", NULL);
    char pat[512];
    snprintf(pat, sizeof(pat), "\n%s ", series);
    const char *at = r.body ? strstr(r.body, pat) : NULL;
    double v = at ? atof(at + strlen(pat)) : -1;
    tu_resp_free(&r);
    return v;
}

void tu_skip(const char *why)
{
    fprintf(stderr, "SKIP: %s\n", why);
    n_skipped++;
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int run = srunner_ntests_run(sr), failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("SC-RESULT passed=%d failed=%d skipped=%d\n", run - failed, failed, n_skipped);
    return failed ? 1 : 0;
}

/* Starts tests/mock_upstream.py with 'args'; returns its pid and port. */
pid_t tu_mock_start(const char *args, int *port)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "exec /usr/bin/python3 tests/mock_upstream.py %s", args);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[64] = "";
    FILE *f = fdopen(fds[0], "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    ck_assert_int_eq(sscanf(line, "READY %d", port), 1);
    return pid;
}

void tu_mock_stop(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int tu_free_port(void)
{
    return free_port();
}

FILE *tu_cap_open(tu_capture_t *c)
{
    c->text = NULL;
    c->len = 0;
    c->f = open_memstream(&c->text, &c->len);
    ck_assert_ptr_nonnull(c->f);
    return c->f;
}

const char *tu_cap_text(tu_capture_t *c)
{
    if (c->f) {
        fclose(c->f);
        c->f = NULL;
    }
    return c->text;
}

void tu_cap_free(tu_capture_t *c)
{
    tu_cap_text(c);
    free(c->text);
    c->text = NULL;
}

void tu_write_temp(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/semcached-test-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}
