/* tests/integration/config.c -- the --config file and --version through the
 * real binary: a port read from the file is the one it listens on, the
 * environment beats the file and a flag beats both, an option from the file
 * (auth-token) takes effect, a bad file stops the start with exit status 2 and
 * its FILE:LINE, and --version reports the build. Namespace presets are
 * parsed by core but not applied by the server yet, so they are not tested
 * here (tests/core/config_file.c covers their parsing). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* Starts the binary with 'args' (NULL-ended, argv[0] added) and 'env' set
 * (NAME=VALUE, or NULL); stdout and stderr go to 'out_fd' when >= 0. */
static pid_t spawn(const char *const *args, const char *env, int out_fd)
{
    const char *argv[16] = {tu_bin("semcached")};
    for (int i = 0; args[i] && i < 14; i++)
        argv[i + 1] = args[i];
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (env)
            putenv((char *)env);
        if (out_fd >= 0) {
            dup2(out_fd, 1);
            dup2(out_fd, 2);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Runs the binary to its exit; returns the exit status and its output (owned). */
static int run(const char *const *args, char **output)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = spawn(args, NULL, p[1]);
    close(p[1]);
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(p[0], buf + len, cap - len - 1)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0 && (len += (size_t)r) + 1 >= cap)
            buf = realloc(buf, cap *= 2);
    buf[len] = '\0';
    close(p[0]);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    *output = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Waits until /healthz answers on 'port' (the process must not exit first). */
static void wait_healthy(pid_t pid, int port)
{
    for (int i = 0; i < 1500; i++) {
        tu_resp_t r = tu_http(port, "GET", "/healthz", NULL);
        int st = r.status;
        tu_resp_free(&r);
        if (st == 200)
            return;
        int ws;
        ck_assert_msg(waitpid(pid, &ws, WNOHANG) == 0, "semcached exited during start-up (%d)", ws);
        usleep(20000);
    }
    ck_abort_msg("semcached did not answer on port %d", port);
}

START_TEST(port_from_the_file_and_the_environment_wins)
{
    char data[] = "/tmp/semcached-test-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(data));
    int file_port = tu_free_port(), env_port = tu_free_port();
    ck_assert_int_ne(file_port, env_port);
    char text[512], path[64];
    snprintf(text, sizeof(text),
             "# written by tests/integration/config.c\n"
             "port = %d\ndata-dir = \"%s\"\nthreads = 1\nlog-level = warn\n",
             file_port, data);
    tu_write_temp(path, text);

    /* The file alone: it listens on the file's port. */
    pid_t pid = spawn((const char *[]){"--config", path, NULL}, NULL, -1);
    wait_healthy(pid, file_port);
    kill(pid, SIGTERM);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);

    /* SEMCACHED_PORT beats the file (and SEMCACHED_CONFIG names it). */
    char env[32], conf_env[96];
    snprintf(env, sizeof(env), "SEMCACHED_PORT=%d", env_port);
    snprintf(conf_env, sizeof(conf_env), "SEMCACHED_CONFIG=%s", path);
    pid = spawn((const char *[]){NULL}, conf_env, -1);
    /* The child sets one variable; the port comes from the file. */
    wait_healthy(pid, file_port);
    kill(pid, SIGTERM);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    pid = spawn((const char *[]){"--config", path, NULL}, env, -1);
    wait_healthy(pid, env_port);
    tu_resp_t r = tu_http(file_port, "GET", "/healthz", NULL);
    ck_assert_int_eq(r.status, -1); /* nothing on the file's port */
    tu_resp_free(&r);
    kill(pid, SIGTERM);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d", st);
    unlink(path);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", data);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(options_from_the_file_take_effect_and_flags_win)
{
    char path[64];
    /* tu_server_start passes --port: that flag, not the file's port, must win. */
    tu_write_temp(path, "port = 1\nauth-token = \"from the file\"\n");
    tu_server_t srv;
    tu_server_start(&srv, (const char *[]){"--config", path, NULL});
    tu_resp_t r = tu_http(srv.port, "GET", "/v1/namespaces/x", NULL);
    ck_assert_int_eq(r.status, 401);
    tu_resp_free(&r);
    static const char req[] = "GET /v1/namespaces/x HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer from the file\r\nConnection: close\r\n\r\n";
    size_t n;
    char *out = tu_raw(srv.port, req, strlen(req), 0, 2000, &n);
    ck_assert_msg(strncmp(out, "HTTP/1.1 200 ", 13) == 0, "%.200s", out);
    free(out);
    tu_server_destroy(&srv);
    unlink(path);
}
END_TEST

START_TEST(a_bad_file_stops_the_start_with_its_line)
{
    char path[64], *out;
    tu_write_temp(path, "# ok\nport = 8080\nthreshold = 2\n");
    ck_assert_int_eq(run((const char *[]){"--config", path, NULL}, &out), 2);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: threshold: '2' is not a number in [-1, 1]\n", path);
    ck_assert_str_eq(out, want);
    free(out);
    unlink(path);
    ck_assert_int_eq(run((const char *[]){"--config", "/nonexistent.conf", NULL}, &out), 2);
    ck_assert_ptr_nonnull(strstr(out, "/nonexistent.conf: cannot open the config file"));
    free(out);
}
END_TEST

/* Starts the binary with 'opt' naming a new file of 'text' (its name goes to
 * 'path'; the caller unlinks it) on a free port and a fresh data dir, which
 * must fail; returns what it printed (owned). */
static char *refused_start(const char *opt, const char *text, char path[64])
{
    char data[] = "/tmp/semcached-refused-XXXXXX", port[16], *out, cmd[128];
    ck_assert_ptr_nonnull(mkdtemp(data));
    snprintf(port, sizeof(port), "%d", tu_free_port());
    tu_write_temp(path, text);
    ck_assert_int_ne(
        run((const char *[]){opt, path, "--port", port, "--data-dir", data, NULL}, &out), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", data);
    ck_assert_int_eq(system(cmd), 0);
    return out;
}

/* [namespace NAME] sections are applied at start as PUTs would be: the
 * settings are visible through the API, and a preset the API would refuse
 * stops the start naming its section's line. */
START_TEST(namespace_presets_are_applied_at_start)
{
    char path[64];
    tu_write_temp(path, "# presets\n[namespace support]\nthreshold = 0.93\nsample_rate = 0.25\n");
    tu_server_t srv;
    tu_server_start(&srv, (const char *[]){"--config", path, NULL});
    tu_resp_t r = tu_http(srv.port, "GET", "/v1/namespaces/support", NULL);
    ck_assert_int_eq(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    ck_assert_ptr_nonnull(j);
    json_t *settings = json_object_get(j, "settings") ? json_object_get(j, "settings") : j;
    ck_assert_msg(json_real_value(json_object_get(settings, "threshold")) == 0.93, "%s", r.body);
    ck_assert_msg(json_real_value(json_object_get(settings, "sample_rate")) == 0.25, "%s", r.body);
    json_decref(j);
    tu_resp_free(&r);
    tu_server_destroy(&srv);
    unlink(path);

    char *out = refused_start("--config",
                              "port = 1\n\n[namespace checked]\ndelivery = \"upstream\"\n", path);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: [namespace checked]: delivery \"upstream\" needs", path);
    ck_assert_msg(strstr(out, want) != NULL, "%s", out);
    free(out);
    unlink(path);
}
END_TEST

/* A --prices file the parser refuses stops the start naming the field. */
START_TEST(a_bad_price_table_stops_the_start)
{
    char path[64];
    char *out = refused_start("--prices",
                              "{\"taken\":\"2026-12-01\",\"sources\":[\"x\"],"
                              "\"models\":{\"m\":{\"input\":1}}}",
                              path);
    ck_assert_msg(strstr(out, "models.m.output: missing") && strstr(out, path), "%s", out);
    free(out);
    unlink(path);
}
END_TEST

/* A second semcached on a port another one serves refuses to start (every
 * loop binds with SO_REUSEPORT, which would otherwise let it join the port
 * and split connections between two caches); the first keeps serving. */
START_TEST(a_second_server_on_the_same_port_refuses_to_start)
{
    tu_server_t srv;
    tu_server_start(&srv, (const char *[]){NULL});
    char data[] = "/tmp/semcached-port-XXXXXX", port[16], *out;
    ck_assert_ptr_nonnull(mkdtemp(data));
    snprintf(port, sizeof(port), "%d", srv.port);
    ck_assert_int_ne(run((const char *[]){"--port", port, "--data-dir", data, NULL}, &out), 0);
    ck_assert_msg(strstr(out, "address already in use") != NULL, "%s", out);
    free(out);
    for (int i = 0; i < 20; i++) { /* every new connection still reaches the first */
        tu_resp_t r = tu_http(srv.port, "GET", "/healthz", NULL);
        ck_assert_int_eq(r.status, 200);
        tu_resp_free(&r);
    }
    tu_server_destroy(&srv);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", data);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(version_reports_the_build)
{
    char *out;
    ck_assert_int_eq(run((const char *[]){"--version", NULL}, &out), 0);
    ck_assert_msg(strncmp(out, "semcached ", 10) == 0, "%s", out);
    const char *build = strstr(out, "\nbuild: ");
    ck_assert_ptr_nonnull(build);
    ck_assert_int_gt(strcspn(build + 8, "\n"), 0);
    ck_assert_ptr_nonnull(strstr(out, "\ncompiler: "));
    ck_assert_msg(strstr(out, "\nhnswlib simd: AVX-512\n") ||
                      strstr(out, "\nhnswlib simd: AVX\n") ||
                      strstr(out, "\nhnswlib simd: SSE\n") || strstr(out, "\nhnswlib simd: none\n"),
                  "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "\nblas: OpenBLAS "));
    free(out);
    /* The generated documents come from the same binary. */
    ck_assert_int_eq(run((const char *[]){"--help-man", NULL}, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, ".TH SEMCACHED 1"));
    free(out);
    ck_assert_int_eq(run((const char *[]){"--help-config", NULL}, &out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\n#port = 8080\n"));
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, port_from_the_file_and_the_environment_wins);
    tcase_add_test(tc, options_from_the_file_take_effect_and_flags_win);
    tcase_add_test(tc, a_bad_file_stops_the_start_with_its_line);
    tcase_add_test(tc, namespace_presets_are_applied_at_start);
    tcase_add_test(tc, a_bad_price_table_stops_the_start);
    tcase_add_test(tc, a_second_server_on_the_same_port_refuses_to_start);
    tcase_add_test(tc, version_reports_the_build);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
