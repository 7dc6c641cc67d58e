/* tests/redis_helpers.h -- a real redis-server (Debian's) for the fleet tests:
 * started on a free loopback port with its own directory and an
 * append-only file (so a stop and start keeps the stream, as a production
 * Redis with persistence would), stopped and restarted on the same port.
 * Tests that need it report themselves skipped when redis-server is absent.
 * Also WAIT_UNTIL / ASSERT_SOON for what replication makes true later.
 * Header-only (static inline). */
#ifndef SC_TESTS_REDIS_HELPERS_H
#define SC_TESTS_REDIS_HELPERS_H

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sc_common.h"
#include "testutil.h"

typedef struct {
    pid_t pid;
    int port;
    char dir[64];
    const char *password; /* set before start: --requirepass */
} th_redis_t;

/* The redis-server binary, or NULL when it is not installed. */
static inline const char *th_redis_binary(void)
{
    static const char *const paths[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server",
                                        "/usr/sbin/redis-server"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static inline int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static inline void th_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Polls 'cond' every 5 ms for up to 'ms'; 'out' = the ms it took, or -1.
 * Replication is asynchronous: the fleet tests wait for what must happen. */
#define WAIT_UNTIL(out, cond, ms)                                                                  \
    do {                                                                                           \
        uint64_t t0_ = sc_now_ms();                                                                \
        (out) = -1;                                                                                \
        while (sc_now_ms() - t0_ <= (uint64_t)(ms)) {                                              \
            if (cond) {                                                                            \
                (out) = (long)(sc_now_ms() - t0_);                                                 \
                break;                                                                             \
            }                                                                                      \
            th_sleep_ms(5);                                                                        \
        }                                                                                          \
    } while (0)
/* ASSERT_SOON's 'ms' is what the step takes on a quiet machine; it waits up to
 * TH_SOON_SLACK times that, since a loaded or sanitized run (make asan on a
 * 2-core CI machine, load 10-20 here) is several times slower and a wait that
 * succeeds returns as soon as it does. The tcases' timeouts allow for it. */
#define TH_SOON_SLACK 4
#define ASSERT_SOON(cond, ms)                                                                      \
    do {                                                                                           \
        long w_;                                                                                   \
        WAIT_UNTIL(w_, cond, (ms) * TH_SOON_SLACK);                                                \
        ck_assert_msg(w_ >= 0, "not within %d ms: %s", (int)(ms) * TH_SOON_SLACK, #cond);          \
    } while (0)

/* A connection to 'r', or NULL if it does not answer. */
static inline redisContext *th_redis_conn(const th_redis_t *r)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (r->password) {
        redisReply *rep = redisCommand(c, "AUTH %s", r->password);
        freeReplyObject(rep);
    }
    return c;
}

static inline void th_redis_spawn(th_redis_t *r)
{
    char port[16], log[96];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    r->pid = fork();
    ck_assert_int_ge(r->pid, 0);
    if (r->pid == 0) {
        /* Small stream nodes, so that MAXLEN ~ trims after tens of entries. */
        execl(th_redis_binary(), "redis-server", "--port", port, "--bind", "127.0.0.1", "--save",
              "", "--appendonly", "yes", "--appendfsync", "always", "--dir", r->dir, "--logfile",
              log, "--daemonize", "no", "--stream-node-max-entries", "16", "--requirepass",
              r->password ? r->password : "", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 250; i++) {
        redisContext *c = th_redis_conn(r);
        redisReply *rep = c ? redisCommand(c, "PING") : NULL;
        int ok = rep && rep->type == REDIS_REPLY_STATUS;
        freeReplyObject(rep);
        if (c)
            redisFree(c);
        if (ok)
            return;
        th_sleep_ms(20);
    }
    ck_abort_msg("redis-server did not start on port %d", r->port);
}

static inline void th_redis_start(th_redis_t *r)
{
    snprintf(r->dir, sizeof(r->dir), "/tmp/sc-redis-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(r->dir));
    r->port = th_free_port();
    th_redis_spawn(r);
}

/* Stops Redis as an operator would (SIGTERM: it flushes its AOF). */
static inline void th_redis_stop(th_redis_t *r)
{
    if (r->pid <= 0)
        return;
    kill(r->pid, SIGTERM);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

/* Starts it again on the same port and directory. */
static inline void th_redis_restart(th_redis_t *r)
{
    th_redis_spawn(r);
}

static inline void th_redis_destroy(th_redis_t *r)
{
    th_redis_stop(r);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
    ck_assert_int_eq(system(cmd), 0);
}

#endif
