/* sc_log.h -- leveled, line-oriented logging to a file descriptor (stderr by
 * default). The macro checks the level before evaluating its arguments, and a
 * line is emitted with one write(2) so threads never interleave mid-line. */
#ifndef SC_LOG_H
#define SC_LOG_H

#include <stdatomic.h>

typedef enum { SC_DEBUG = 0, SC_INFO = 1, SC_WARN = 2, SC_ERROR = 3 } sc_log_level_t;

typedef struct sc_log_s {
    _Atomic int level; /* lines below this level are dropped */
    _Atomic int fd;    /* destination; swapped on SIGHUP reopen */
    char path[512];    /* "" means stderr */
} sc_log_t;

/* Initializes 'log' to write to 'path' (NULL or "" = stderr). */
int sc_log_init(sc_log_t *log, const char *path, sc_log_level_t level);
/* Reopens the log file (for logrotate on SIGHUP); stderr is left alone. */
int sc_log_reopen(sc_log_t *log);
void sc_log_close(sc_log_t *log);
/* Parses "debug|info|warn|error"; returns -1 if unknown. */
int sc_log_level_parse(const char *s);

void sc__log_write(sc_log_t *log, sc_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sc_log(lg, lvl, ...)                                                                       \
    do {                                                                                           \
        if ((lg) && (int)(lvl) >= atomic_load_explicit(&(lg)->level, memory_order_relaxed))        \
            sc__log_write((lg), (lvl), __VA_ARGS__);                                               \
    } while (0)

/* Debug traces compiled out unless SC_TRACE_ON is defined at build time. */
#ifdef SC_TRACE_ON
#define SC_TRACE(lg, ...) sc_log(lg, SC_DEBUG, __VA_ARGS__)
#else
#define SC_TRACE(lg, ...) ((void)0)
#endif

#endif
