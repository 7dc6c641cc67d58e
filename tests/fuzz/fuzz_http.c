/* fuzz_http.c -- libFuzzer harness for the whole HTTP request path: a real
 * server runs inside the fuzzer's process (so its code is instrumented and
 * coverage-guided), and each input is sent as raw bytes on a fresh loopback
 * connection, then the write side is shut and the answer read to the end.
 * Whatever the bytes (broken request lines, smuggling attempts, bad chunked
 * encoding, pipelined floods, hostile JSON for every endpoint), the server
 * must not crash, must answer or close, and /healthz must answer 200
 * afterwards; ASan and UBSan watch every step. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sc_config.h"
#include "sc_log.h"
#include "sc_server.h"

static int http_port;
static char http_dir[] = "/tmp/sc-fuzz-http-XXXXXX";

static void remove_dir(void)
{
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", http_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_http: could not remove %s\n", http_dir);
}

static void *serve(void *arg)
{
    sc_server_run(arg);
    return NULL;
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Reads until the peer closes or 'ms' pass without data; returns bytes read
 * into 'buf' (at most cap - 1, NUL-terminated). */
static size_t drain(int fd, char *buf, size_t cap, int ms)
{
    size_t got = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (poll(&p, 1, ms) > 0) {
        char tmp[4096];
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n <= 0)
            break;
        size_t keep = (size_t)n < cap - 1 - got ? (size_t)n : cap - 1 - got;
        memcpy(buf + got, tmp, keep);
        got += keep;
    }
    buf[got] = '\0';
    return got;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    static sc_log_t log;
    static sc_config_t cfg;
    if (!mkdtemp(http_dir) || sc_log_init(&log, NULL, (sc_log_level_t)(SC_ERROR + 1)))
        abort();
    atexit(remove_dir);
    sc_config_defaults(&cfg);
    http_port = free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", http_port);
    const char *set[][2] = {{"port", port},
                            {"data-dir", http_dir},
                            {"threads", "1"},
                            {"sync", "none"},
                            {"map-size", "64M"},
                            {"request-timeout-ms", "200"},
                            {"idle-timeout-ms", "200"},
                            {"max-body-bytes", "64K"},
                            {"max-header-bytes", "4K"},
                            {"index-flat-max", "64"},
                            {"index-scan-max", "0"},
                            {"sample-rate", "0.5"}};
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        if (sc_config_set(&cfg, set[i][0], set[i][1], stderr))
            abort();
    static sc_server_t *srv;
    static pthread_t thread;
    if (sc_server_create(&srv, &cfg, &log) || pthread_create(&thread, NULL, serve, srv))
        abort();
    for (int i = 0; i < 500; i++) { /* until it accepts */
        int fd = connect_port(http_port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        usleep(10000);
    }
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = connect_port(http_port);
    if (fd < 0)
        __builtin_trap(); /* the server stopped accepting */
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            break; /* it may close early on a bad request: fine */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    static char buf[1 << 16];
    drain(fd, buf, sizeof(buf), 2000);
    close(fd);
    /* Still serving. */
    fd = connect_port(http_port);
    if (fd < 0)
        __builtin_trap();
    const char *health = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (write(fd, health, strlen(health)) != (ssize_t)strlen(health))
        __builtin_trap();
    drain(fd, buf, sizeof(buf), 5000);
    close(fd);
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
        __builtin_trap();
    return 0;
}
