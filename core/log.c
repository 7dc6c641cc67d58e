/* log.c -- one line per event: "<iso8601> <LEVEL> message". Formatting goes
 * into a stack buffer and leaves with a single write(2), so concurrent
 * threads produce whole lines without a lock. */
#define _GNU_SOURCE
#include "sc_common.h"
#include "sc_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int sc_log_level_parse(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    return -1;
}

int sc_log_init(sc_log_t *log, const char *path, sc_log_level_t level)
{
    atomic_store(&log->level, (int)level);
    atomic_store(&log->fd, STDERR_FILENO);
    log->path[0] = '\0';
    if (path && *path) {
        if (strlen(path) >= sizeof(log->path))
            return SC_EINVAL;
        strcpy(log->path, path);
        return sc_log_reopen(log);
    }
    return 0;
}

int sc_log_reopen(sc_log_t *log)
{
    if (!log->path[0])
        return 0;
    int fd = open(log->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int old = atomic_exchange(&log->fd, fd);
    if (old != STDERR_FILENO)
        close(old);
    return 0;
}

void sc_log_close(sc_log_t *log)
{
    int old = atomic_exchange(&log->fd, STDERR_FILENO);
    if (old != STDERR_FILENO)
        close(old);
}

void sc__log_write(sc_log_t *log, sc_log_level_t level, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, level_names[level & 3]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2; /* truncated lines still end in a newline */
    line[len++] = '\n';
    ssize_t w = write(atomic_load(&log->fd), line, len);
    (void)w; /* nowhere better to report a failed log write */
}
