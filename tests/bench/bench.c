/* tests/bench/bench.c -- the load tool (bench/bench.c) run as a user runs it,
 * against the real server: it counts hits by kind, keeps non-2xx answers out
 * of the latencies, follows each miss with its store, and in open loop sends
 * exactly the scheduled number of requests. Its --json output is the
 * interface bench/run.sh reads. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Runs the shell command 'cmd', which must exit 0; its stdout (up to
 * 'cap' - 1 bytes) goes to 'out', NUL-terminated. */
static void run_cmd(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    ck_assert_int_eq(pclose(p), 0);
}

/* Runs semcached-bench with 'args' against 'port'; returns its --json. */
static json_t *run_bench(int port, const char *args)
{
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof(cmd), "%s --port %d --json %s 2>/dev/null", tu_bin("semcached-bench"),
             port, args);
    run_cmd(cmd, out, sizeof(out));
    json_error_t err;
    json_t *j = json_loads(out, 0, &err);
    ck_assert_msg(j != NULL, "not JSON (%s): %s", err.text, out);
    return j;
}

static long long num(json_t *j, const char *a, const char *b)
{
    json_t *v = json_object_get(j, a);
    if (b)
        v = json_object_get(v, b);
    ck_assert_msg(v != NULL, "no %s%s%s", a, b ? "." : "", b ? b : "");
    return json_is_integer(v) ? json_integer_value(v) : (long long)json_real_value(v);
}

static double lat(json_t *j, const char *q)
{
    return json_number_value(json_object_get(json_object_get(j, "latency_us"), q));
}

static tu_server_t srv;
static void up(void)
{
    tu_server_start(&srv, NULL);
}
static void down(void)
{
    tu_server_destroy(&srv);
}

START_TEST(exact_workload_counts_every_request_as_an_exact_hit)
{
    /* Populates 200 keys, then 2,000 lookups of them. */
    json_t *j = run_bench(srv.port, "-c 4 -n 2000 --warmup 0 -w exact --keys 200");
    ck_assert_int_eq(num(j, "requests", NULL), 2000);
    ck_assert_int_eq(num(j, "lookups", "exact_hit"), 2000);
    ck_assert_int_eq(num(j, "lookups", "miss"), 0);
    ck_assert_int_eq(num(j, "errors", "non2xx") + num(j, "errors", "transport"), 0);
    ck_assert(lat(j, "p50") > 0 && lat(j, "p50") <= lat(j, "p99") &&
              lat(j, "p99") <= lat(j, "max"));
    json_decref(j);
}
END_TEST

START_TEST(non_2xx_answers_are_counted_apart_from_latency)
{
    json_t *j =
        run_bench(srv.port, "-c 2 -n 300 --warmup 0 -w raw --path /no/such/page --no-populate");
    ck_assert_int_eq(num(j, "errors", "non2xx"), 300);
    ck_assert_int_eq(num(j, "requests", NULL), 0);
    ck_assert(lat(j, "p50") == 0 && lat(j, "max") == 0);
    json_decref(j);
}
END_TEST

START_TEST(each_miss_is_followed_by_its_store)
{
    json_t *j = run_bench(srv.port, "-c 4 -n 500 --warmup 0 -w miss-store --no-populate");
    json_t *kinds = json_object_get(j, "by_kind");
    ck_assert_int_eq(num(kinds, "lookup", "requests"), 500);
    ck_assert_int_eq(num(j, "lookups", "miss"), 500);
    ck_assert_int_eq(num(kinds, "store", "requests"), 500);
    ck_assert_int_eq(num(j, "errors", "non2xx") + num(j, "errors", "transport"), 0);
    json_decref(j);
    /* What was stored is there: the server counts 500 more entries. */
    json_t *st = tu_call(srv.port, "GET", "/v1/stats", NULL, 200);
    ck_assert_int_ge(json_integer_value(json_object_get(st, "entries")), 500);
    json_decref(st);
}
END_TEST

START_TEST(vectors_workload_hits_semantically)
{
    json_t *j = run_bench(srv.port,
                          "-c 4 -n 400 --warmup 0 -w vectors --keys 100 --dim 16 --namespace vec");
    ck_assert_int_eq(num(j, "requests", NULL), 400);
    ck_assert_int_eq(num(j, "lookups", "exact_hit"), 0);
    ck_assert_int_ge(num(j, "lookups", "semantic_hit"), 360); /* noisy copies of stored vectors */
    /* Each hit served the entry its query rewords (the nearest by far here). */
    ck_assert_int_eq(num(j, "semantic_on_source", NULL), num(j, "lookups", "semantic_hit"));
    ck_assert(json_is_null(json_object_get(j, "semantic_precision"))); /* no labels here */
    json_decref(j);
}
END_TEST

/* --dump-vectors writes the base, the query pool a run sends and each
 * query's source key, as texmex files the in-process peers read. */
START_TEST(dump_vectors_writes_the_query_pool_and_its_sources)
{
    char prefix[64], cmd[256], path[96];
    snprintf(prefix, sizeof(prefix), "/tmp/sc-bench-dump-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd), "%s --dump-vectors %s --keys 100 --dim 16",
             tu_bin("semcached-bench"), prefix);
    ck_assert_int_eq(system(cmd), 0);
    static const char *const files[] = {"base.fvecs", "query.fvecs", "source.ivecs"};
    static const long sizes[] = {100 * (4 + 16 * 4), 4096 * (4 + 16 * 4), 4096 * 8};
    for (int f = 0; f < 3; f++) {
        snprintf(path, sizeof(path), "%s_%s", prefix, files[f]);
        FILE *in = fopen(path, "rb");
        ck_assert_ptr_nonnull(in);
        fseek(in, 0, SEEK_END);
        ck_assert_int_eq(ftell(in), sizes[f]);
        if (f == 2) { /* (1, key) records, every key stored */
            int32_t rec[2];
            rewind(in);
            while (fread(rec, 4, 2, in) == 2) {
                ck_assert_int_eq(rec[0], 1);
                ck_assert(rec[1] >= 0 && rec[1] < 100);
            }
        }
        fclose(in);
        unlink(path);
    }
}
END_TEST

START_TEST(open_loop_sends_the_scheduled_number_of_requests)
{
    /* 300 starts/s for 2 s: the schedule has 600 (one either way at the window's edges). */
    json_t *j =
        run_bench(srv.port, "-c 8 -d 2 --warmup 0 --rate 300 -w exact --keys 200 --no-populate");
    long long n = num(j, "requests", NULL);
    ck_assert_msg(n >= 598 && n <= 602, "%lld requests for a schedule of 600", n);
    ck_assert_str_eq(json_string_value(json_object_get(j, "mode")), "open");
    /* The clock starts once the connections are up; how long that took is
     * reported apart (loopback: well under the run). */
    json_t *cm = json_object_get(j, "connect_ms");
    ck_assert_msg(json_is_number(cm), "no connect_ms");
    ck_assert(json_number_value(cm) >= 0 && json_number_value(cm) < 2000);
    json_decref(j);
}
END_TEST

/* Reads the JSON rows of a .jsonl file (at most 'max'); returns how many. */
static int read_rows(const char *path, json_t **rows, int max)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[65536];
    int n = 0;
    while (n < max && fgets(line, sizeof(line), f)) {
        json_error_t err;
        rows[n] = json_loads(line, 0, &err);
        ck_assert_msg(rows[n] != NULL, "not JSON (%s): %.200s", err.text, line);
        n++;
    }
    fclose(f);
    return n;
}

START_TEST(tail_script_measures_after_and_rested_alike)
{
    /* bench/tail.sh at a "peak" of 800.7/s (so 400/s), 2 s after and 1 s
     * rested: two rows, the same command but for -d, no warm-up, one
     * series window per second; report.py's section reads them. */
    char res[64], cmd[1024];
    tu_write_temp(res, "");
    const char *build = getenv("BUILD");
    snprintf(cmd, sizeof(cmd),
             "BUILD='%s' TAIL_AFTER_S=2 TAIL_RESTED_S=1 bench/tail.sh %d 800.7 %s 2>/dev/null",
             build && *build ? build : "build", srv.port, res);
    ck_assert_int_eq(system(cmd), 0);
    json_t *rows[3];
    ck_assert_int_eq(read_rows(res, rows, 3), 2);
    ck_assert_str_eq(tu_str(rows[0], "name"), "tail_after");
    ck_assert_str_eq(tu_str(rows[1], "name"), "tail_rested");
    const char *ca = tu_str(rows[0], "command"), *cr = tu_str(rows[1], "command");
    ck_assert_ptr_nonnull(strstr(ca, " -d 2 --warmup 0 "));
    ck_assert_ptr_nonnull(strstr(cr, " -d 1 --warmup 0 "));
    ck_assert_str_eq(strstr(ca, "--warmup"), strstr(cr, "--warmup")); /* the rest is the same */
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(num(rows[i], "target_rate", NULL), 400);
        ck_assert(num(rows[i], "entries", NULL) >= 0);
        ck_assert(json_is_number(json_object_get(rows[i], "connect_ms")));
        json_t *series = json_object_get(rows[i], "series");
        ck_assert_int_eq(json_array_size(series), (size_t)(2 - i));
        long long n = num(json_array_get(series, 0), "requests", NULL);
        ck_assert_msg(n >= 398 && n <= 402, "row %d: %lld requests in its first second", i, n);
        json_decref(rows[i]);
    }
    snprintf(
        cmd, sizeof(cmd),
        "python3 -c 'import json,sys; sys.path.insert(0, \"bench\"); import report\n"
        "by = {}\n"
        "for l in open(sys.argv[1]): r = json.loads(l); by.setdefault(r[\"name\"], []).append(r)\n"
        "report.tail_section(by, print)' %s",
        res);
    char out[8192];
    run_cmd(cmd, out, sizeof(out));
    ck_assert_msg(tu_find(out, "then the same command for 1 s on the rested server") &&
                      tu_find(out, "First second: ") && tu_find(out, "Settled within 1.5x: "),
                  "report: %s", out);
    unlink(res);
}
END_TEST

START_TEST(series_cuts_the_window_into_seconds)
{
    /* 400 starts/s for 3 s: three 1-s windows of ~400 each, adding up to the total. */
    json_t *j = run_bench(
        srv.port, "-c 8 -d 3 --warmup 0 --rate 400 --series -w exact --keys 200 --no-populate");
    json_t *series = json_object_get(j, "series");
    ck_assert_int_eq(json_array_size(series), 3);
    long long sum = 0;
    for (size_t i = 0; i < 3; i++) {
        json_t *w = json_array_get(series, i);
        long long n = num(w, "requests", NULL);
        ck_assert_int_eq(num(w, "s", NULL), (long long)i);
        ck_assert_msg(n >= 398 && n <= 402, "window %zu: %lld requests", i, n);
        ck_assert(num(w, "p50_us", NULL) <= num(w, "p99_us", NULL) &&
                  num(w, "p99_us", NULL) <= num(w, "max_us", NULL));
        sum += n;
    }
    ck_assert_int_eq(sum, num(j, "requests", NULL));
    json_decref(j);
    /* Without --series there is no "series". */
    j = run_bench(srv.port, "-c 2 -n 50 --warmup 0 -w exact --keys 200 --no-populate");
    ck_assert_ptr_null(json_object_get(j, "series"));
    json_decref(j);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("bench");
    tcase_add_unchecked_fixture(tc, up, down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, exact_workload_counts_every_request_as_an_exact_hit);
    tcase_add_test(tc, non_2xx_answers_are_counted_apart_from_latency);
    tcase_add_test(tc, each_miss_is_followed_by_its_store);
    tcase_add_test(tc, vectors_workload_hits_semantically);
    tcase_add_test(tc, dump_vectors_writes_the_query_pool_and_its_sources);
    tcase_add_test(tc, open_loop_sends_the_scheduled_number_of_requests);
    tcase_add_test(tc, series_cuts_the_window_into_seconds);
    tcase_add_test(tc, tail_script_measures_after_and_rested_alike);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
