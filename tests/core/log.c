/* tests/core/log.c -- the logger (core/log.c): level names, the line format
 * "<UTC ISO-8601 with ms> LEVEL message\n", filtering before the arguments
 * are evaluated, truncation that keeps the newline, reopen after a rename
 * (logrotate), and whole lines from threads writing at once. Every test
 * logs into its own file in a fresh temporary directory. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sc_common.h"
#include "sc_log.h"
#include "testutil.h"

static char dir[64], path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/sc-log-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/semcached.log", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The whole file at 'p' (caller frees). */
static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = NULL;
    size_t cap = 0;
    FILE *m = open_memstream(&buf, &cap);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(f);
    fclose(m);
    if (len)
        *len = cap;
    return buf;
}

START_TEST(level_names_parse)
{
    ck_assert_int_eq(sc_log_level_parse("debug"), SC_DEBUG);
    ck_assert_int_eq(sc_log_level_parse("info"), SC_INFO);
    ck_assert_int_eq(sc_log_level_parse("WARN"), SC_WARN);
    ck_assert_int_eq(sc_log_level_parse("Error"), SC_ERROR);
    ck_assert_int_eq(sc_log_level_parse("warning"), -1);
    ck_assert_int_eq(sc_log_level_parse(""), -1);
    ck_assert_int_eq(sc_log_level_parse("info "), -1);
}
END_TEST

static int evaluated;
static int count_evaluation(void)
{
    return ++evaluated;
}

START_TEST(lines_have_the_format_and_levels_filter)
{
    sc_log_t log_s, *log = &log_s; /* sc_log(&x, ...) trips -Waddress */
    ck_assert_int_eq(sc_log_init(log, path, SC_INFO), 0);
    evaluated = 0;
    sc_log(log, SC_DEBUG, "dropped %d", count_evaluation());
    ck_assert_int_eq(evaluated, 0); /* arguments of a dropped line are not evaluated */
    sc_log(log, SC_INFO, "hello %s %d", "world", 42);
    sc_log(log, SC_WARN, "careful");
    sc_log(log, SC_ERROR, "broken: %s", sc_strerror(SC_ENOMEM));
    sc_log((sc_log_t *)NULL, SC_ERROR, "a NULL logger drops lines");
    sc_log_close(log);
    char *text = slurp(path, NULL);
    regex_t re;
    ck_assert_int_eq(regcomp(&re,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                             "INFO hello world 42\n"
                             "[0-9-]{10}T[0-9:.]{12}Z WARN careful\n"
                             "[0-9-]{10}T[0-9:.]{12}Z ERROR broken: [^\n]+\n$",
                             REG_EXTENDED),
                     0);
    ck_assert_msg(regexec(&re, text, 0, NULL, 0) == 0, "log was:\n%s", text);
    regfree(&re);
    /* The timestamp is now, in UTC. */
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(text, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t logged = timegm(&tm), now = time(NULL);
    ck_assert_msg(logged <= now && now - logged < 60, "logged at %lld, now %lld", (long long)logged,
                  (long long)now);
    free(text);
}
END_TEST

START_TEST(long_lines_are_truncated_with_their_newline)
{
    sc_log_t log_s, *log = &log_s;
    ck_assert_int_eq(sc_log_init(log, path, SC_DEBUG), 0);
    char *big = malloc(10000);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    sc_log(log, SC_DEBUG, "%s", big);
    sc_log(log, SC_INFO, "after");
    sc_log_close(log);
    size_t len;
    char *text = slurp(path, &len);
    char *nl = strchr(text, '\n');
    ck_assert_ptr_nonnull(nl);
    /* The first line fills the 2048-byte buffer but for its terminator. */
    ck_assert_uint_eq((size_t)(nl - text) + 1, 2047);
    ck_assert(nl[-1] == 'x');
    ck_assert_ptr_nonnull(strstr(nl + 1, " INFO after\n"));
    free(text);
    free(big);
}
END_TEST

START_TEST(reopen_follows_a_rotated_file)
{
    sc_log_t log_s, *log = &log_s;
    ck_assert_int_eq(sc_log_init(log, path, SC_INFO), 0);
    sc_log(log, SC_INFO, "before rotation");
    char rotated[160];
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    ck_assert_int_eq(rename(path, rotated), 0);
    sc_log(log, SC_INFO, "still to the old file");
    ck_assert_int_eq(sc_log_reopen(log), 0);
    sc_log(log, SC_INFO, "after rotation");
    sc_log_close(log);
    char *old = slurp(rotated, NULL), *cur = slurp(path, NULL);
    ck_assert_ptr_nonnull(strstr(old, "before rotation\n"));
    ck_assert_ptr_nonnull(strstr(old, "still to the old file\n"));
    ck_assert_ptr_null(strstr(old, "after rotation"));
    ck_assert_ptr_nonnull(strstr(cur, "after rotation\n"));
    ck_assert_int_eq(tu_count(cur, "\n"), 1);
    free(old);
    free(cur);
    /* Appends, never truncates: a second logger on the same file adds. */
    ck_assert_int_eq(sc_log_init(log, path, SC_INFO), 0);
    sc_log(log, SC_INFO, "second run");
    sc_log_close(log);
    cur = slurp(path, NULL);
    ck_assert_int_eq(tu_count(cur, "\n"), 2);
    ck_assert_ptr_nonnull(strstr(cur, " INFO after rotation\n"));
    ck_assert_ptr_nonnull(strstr(cur, " INFO second run\n"));
    free(cur);
}
END_TEST

START_TEST(bad_paths_are_reported)
{
    sc_log_t log_s, *log = &log_s;
    char missing[160];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/x.log", dir);
    ck_assert_int_eq(sc_log_init(log, missing, SC_INFO), -ENOENT);
    char longp[600];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    ck_assert_int_eq(sc_log_init(log, longp, SC_INFO), SC_EINVAL);
    /* No path is stderr, and reopening it is a no-op. */
    ck_assert_int_eq(sc_log_init(log, NULL, SC_WARN), 0);
    ck_assert_int_eq(atomic_load(&log->fd), STDERR_FILENO);
    ck_assert_int_eq(sc_log_reopen(log), 0);
    ck_assert_int_eq(atomic_load(&log->fd), STDERR_FILENO);
    ck_assert_int_eq(sc_log_init(log, "", SC_WARN), 0);
    ck_assert_int_eq(atomic_load(&log->fd), STDERR_FILENO);
    sc_log_close(log);
}
END_TEST

enum { THREADS = 4, LINES = 2000 };

typedef struct {
    sc_log_t *log;
    int id;
} writer_t;

static void *writer(void *arg)
{
    const writer_t *w = arg;
    char pad[300];
    memset(pad, 'a' + w->id, sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int i = 0; i < LINES; i++)
        sc_log(w->log, SC_INFO, "t%d %05d %s", w->id, i, pad);
    return NULL;
}

START_TEST(threads_write_whole_lines)
{
    sc_log_t log;
    ck_assert_int_eq(sc_log_init(&log, path, SC_INFO), 0);
    pthread_t t[THREADS];
    writer_t w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (writer_t){&log, i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, writer, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    sc_log_close(&log);
    char *text = slurp(path, NULL);
    int next[THREADS] = {0};
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        int id, seq;
        char *msg = strstr(line, " INFO t");
        if (!msg || sscanf(msg, " INFO t%d %d", &id, &seq) != 2 || id < 0 || id >= THREADS)
            ck_abort_msg("line %d is not whole: %.80s", lines, line);
        /* Each thread's lines arrive in order, each with its full padding. */
        if (seq != next[id]++ ||
            strlen(line) != (size_t)(msg - line) + strlen(" INFO t0 00000 ") + 299 ||
            line[strlen(line) - 1] != 'a' + id)
            ck_abort_msg("line %d of thread %d is torn: %.80s", lines, id, line);
    }
    ck_assert_int_eq(lines, THREADS * LINES);
    free(text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, level_names_parse);
    tcase_add_test(tc, lines_have_the_format_and_levels_filter);
    tcase_add_test(tc, long_lines_are_truncated_with_their_newline);
    tcase_add_test(tc, reopen_follows_a_rotated_file);
    tcase_add_test(tc, bad_paths_are_reported);
    tcase_add_test(tc, threads_write_whole_lines);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
