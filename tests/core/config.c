/* tests/core/config.c -- the options table (core/config.c): defaults, the
 * three ways to set an option (--name value, --name=value, SEMCACHED_NAME)
 * and their precedence, bounds and the messages that reject a value,
 * choices by name, and sc_config_set. The .c is included so the table itself
 * can be walked: every row is checked at its bounds, not a hand-picked few. */
#include "../../core/config.c"

#include <math.h>

#include "testutil.h"

/* Captures what a call writes to its error stream (testutil). */
typedef tu_capture_t capture_t;
#define cap_open tu_cap_open
#define cap_text tu_cap_text
#define cap_free tu_cap_free

/* The environment of the test run must not leak into these tests. */
static void clear_env(void)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char env[96];
        env_name(options[i].name, env, sizeof(env));
        unsetenv(env);
    }
}

/* sc_config_parse on a NULL-terminated argument list (argv[0] added). */
static int parse(sc_config_t *cfg, const char *const *args, capture_t *err)
{
    char *argv[32] = {"semcached"};
    int argc = 1;
    for (; args && args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    capture_t out;
    cap_open(&out);
    int rc = sc_config_parse(cfg, argc, argv, out.f, cap_open(err));
    cap_free(&out);
    cap_text(err);
    return rc;
}

/* Parses 'args' on top of the defaults; asserts the outcome is 'want_rc' and,
 * on a rejection, that the message contains 'want_msg'. */
static void expect_parse(sc_config_t *cfg, const char *const *args, int want_rc,
                         const char *want_msg)
{
    capture_t err;
    sc_config_defaults(cfg);
    int rc = parse(cfg, args, &err);
    ck_assert_msg(rc == want_rc, "%s ...: rc %d, want %d (stderr: %s)", args[0] ? args[0] : "", rc,
                  want_rc, err.text);
    if (want_msg)
        ck_assert_msg(strstr(err.text, want_msg) != NULL, "message '%s' lacks '%s'", err.text,
                      want_msg);
    else
        ck_assert_str_eq(err.text, "");
    cap_free(&err);
}

START_TEST(defaults_are_the_documented_ones)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    ck_assert_str_eq(cfg.host, "127.0.0.1");
    ck_assert_int_eq(cfg.port, 8080);
    ck_assert_int_eq(cfg.threads, 0);
    ck_assert_str_eq(cfg.data_dir, "./data");
    ck_assert_int_eq(cfg.map_size, 4LL << 30);
    ck_assert_int_eq(cfg.sync, SC_SYNC_FULL);
    ck_assert_int_eq(cfg.evict, SC_EVICT_LRU);
    ck_assert_int_eq(cfg.max_entries, 0);
    ck_assert_int_eq(cfg.default_ttl_s, 604800);
    ck_assert_int_eq(cfg.max_header_bytes, 16 * 1024);
    ck_assert_int_eq(cfg.max_body_bytes, 4 * 1024 * 1024);
    ck_assert_int_eq(cfg.semantic, 1);
    ck_assert_int_eq(cfg.allow_lower_threshold, 0);
    ck_assert_double_eq_tol(cfg.threshold, 0.90, 1e-12);
    ck_assert_double_eq_tol(cfg.compact_deleted_ratio, 0.25, 1e-12);
    ck_assert_int_eq(cfg.search_threads, 0);
    ck_assert_str_eq(cfg.model, "");
    ck_assert_str_eq(cfg.embed_remote_model, "text-embedding-3-small");
    ck_assert_str_eq(cfg.upstream_key_env, "SEMCACHED_UPSTREAM_API_KEY");
    ck_assert_str_eq(cfg.auth_token, "");
    ck_assert_int_eq(cfg.metrics_auth, 0);
    ck_assert_int_eq(cfg.log_level, SC_INFO);
    ck_assert_str_eq(cfg.log_file, "");
    /* Every default is inside its own bounds (sc_config_defaults aborts on
     * one that is not) and the table has no duplicate names. */
    for (size_t i = 0; i < N_OPTIONS; i++)
        for (size_t j = i + 1; j < N_OPTIONS; j++)
            ck_assert_msg(strcmp(options[i].name, options[j].name) != 0, "--%s twice",
                          options[i].name);
}
END_TEST

START_TEST(flag_forms_and_the_last_flag_wins)
{
    clear_env();
    sc_config_t cfg;
    expect_parse(&cfg, (const char *[]){"--port", "9000", "--host=::1", NULL}, 0, NULL);
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_str_eq(cfg.host, "::1");
    expect_parse(&cfg, (const char *[]){"--port=9001", "--port", "9002", NULL}, 0, NULL);
    ck_assert_int_eq(cfg.port, 9002);
    /* Only the first '=' splits: the value keeps the rest. */
    expect_parse(&cfg, (const char *[]){"--models=a=/m/a,b=/m/b", NULL}, 0, NULL);
    ck_assert_str_eq(cfg.models, "a=/m/a,b=/m/b");
    /* The separate form takes the next argument whatever it looks like. */
    expect_parse(&cfg, (const char *[]){"--log-file", "--weird", NULL}, 0, NULL);
    ck_assert_str_eq(cfg.log_file, "--weird");
    /* An empty string option can be set to empty. */
    expect_parse(&cfg, (const char *[]){"--data-dir=", NULL}, 0, NULL);
    ck_assert_str_eq(cfg.data_dir, "");
    /* Sizes take K/M/G/T with an optional B or i. */
    expect_parse(&cfg, (const char *[]){"--map-size", "64M", "--max-body-bytes=2k", NULL}, 0, NULL);
    ck_assert_int_eq(cfg.map_size, 64LL << 20);
    ck_assert_int_eq(cfg.max_body_bytes, 2048);
    expect_parse(&cfg, (const char *[]){"--map-size=1GB", NULL}, 0, NULL);
    ck_assert_int_eq(cfg.map_size, 1LL << 30);
    expect_parse(&cfg, (const char *[]){"--map-size=1Ti", NULL}, 0, NULL);
    ck_assert_int_eq(cfg.map_size, 1LL << 40);
    expect_parse(&cfg, (const char *[]){"--threshold", "0.5", "--sample-rate=0", NULL}, 0, NULL);
    ck_assert_double_eq_tol(cfg.threshold, 0.5, 1e-12);
    ck_assert_double_eq_tol(cfg.sample_rate, 0.0, 1e-12);
}
END_TEST

START_TEST(environment_and_precedence)
{
    clear_env();
    sc_config_t cfg;
    /* Names: SEMCACHED_ + upper case, '-' becomes '_'. */
    setenv("SEMCACHED_PORT", "7000", 1);
    setenv("SEMCACHED_DATA_DIR", "/env/dir", 1);
    setenv("SEMCACHED_MAP_SIZE", "8M", 1);
    setenv("SEMCACHED_SYNC", "periodic", 1);
    setenv("SEMCACHED_THRESHOLD", "0.8", 1);
    expect_parse(&cfg, (const char *[]){NULL}, 0, NULL);
    ck_assert_int_eq(cfg.port, 7000);
    ck_assert_str_eq(cfg.data_dir, "/env/dir");
    ck_assert_int_eq(cfg.map_size, 8LL << 20);
    ck_assert_int_eq(cfg.sync, SC_SYNC_PERIODIC);
    ck_assert_double_eq_tol(cfg.threshold, 0.8, 1e-12);
    /* Flags win over the environment, option by option; what no flag names
     * keeps its environment value, what neither names keeps its default. */
    expect_parse(&cfg, (const char *[]){"--port", "9000", "--sync=none", NULL}, 0, NULL);
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_int_eq(cfg.sync, SC_SYNC_NONE);
    ck_assert_str_eq(cfg.data_dir, "/env/dir");
    ck_assert_int_eq(cfg.map_size, 8LL << 20);
    ck_assert_str_eq(cfg.host, "127.0.0.1");
    ck_assert_int_eq(cfg.evict, SC_EVICT_LRU);
    /* A bad environment value is rejected with the option's name, even when
     * a flag would have replaced it. */
    setenv("SEMCACHED_PORT", "seventy", 1);
    expect_parse(&cfg, (const char *[]){NULL}, SC_EINVAL, "--port: 'seventy' is not an integer");
    expect_parse(&cfg, (const char *[]){"--port", "9000", NULL}, SC_EINVAL, "--port: 'seventy'");
    clear_env();
    /* Every option has its variable: set each to its own default. */
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char env[96];
        env_name(options[i].name, env, sizeof(env));
        ck_assert_msg(strncmp(env, "SEMCACHED_", 10) == 0 && !strchr(env, '-'), "%s", env);
        setenv(env, options[i].def, 1);
    }
    sc_config_t def;
    sc_config_defaults(&def);
    expect_parse(&cfg, (const char *[]){NULL}, 0, NULL);
    ck_assert_int_eq(memcmp(&cfg, &def, sizeof(cfg)), 0);
    clear_env();
}
END_TEST

/* Text for v (an integer option value). */
static const char *num(char *buf, size_t cap, int64_t v)
{
    snprintf(buf, cap, "%lld", (long long)v);
    return buf;
}

START_TEST(every_bound_of_the_table)
{
    /* Each integer and size option accepts its min and max and rejects one
     * past either, naming the option and the range; each double option
     * likewise, and rejects NaN and infinities. */
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    char v[64], want[192];
    capture_t err;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_t *o = &options[i];
        int64_t *field = (int64_t *)((char *)&cfg + o->off);
        if (o->type == OPT_INT || o->type == OPT_SIZE) {
            ck_assert_int_eq(sc_config_set(&cfg, o->name, num(v, sizeof(v), o->min), NULL), 0);
            ck_assert_int_eq(*field, o->min);
            ck_assert_int_eq(sc_config_set(&cfg, o->name, num(v, sizeof(v), o->max), NULL), 0);
            ck_assert_int_eq(*field, o->max);
            snprintf(want, sizeof(want),
                     "semcached: --%s: '%lld' is not a%s number in [%lld, %lld]\n", o->name,
                     (long long)o->min - 1, o->type == OPT_SIZE ? " size" : "n integer",
                     (long long)o->min, (long long)o->max);
            ck_assert_int_eq(
                sc_config_set(&cfg, o->name, num(v, sizeof(v), o->min - 1), cap_open(&err)),
                SC_EINVAL);
            ck_assert_str_eq(cap_text(&err), want);
            cap_free(&err);
            ck_assert_int_eq(sc_config_set(&cfg, o->name, num(v, sizeof(v), o->max + 1), NULL),
                             SC_EINVAL);
            ck_assert_int_eq(*field, o->max); /* a rejected value changes nothing */
            ck_assert_int_eq(sc_config_set(&cfg, o->name, "", NULL), SC_EINVAL);
            ck_assert_int_eq(sc_config_set(&cfg, o->name, "12x", NULL), SC_EINVAL);
        } else if (o->type == OPT_DOUBLE) {
            double *d = (double *)field;
            snprintf(v, sizeof(v), "%.17g", o->dmin);
            ck_assert_int_eq(sc_config_set(&cfg, o->name, v, NULL), 0);
            ck_assert_double_eq(*d, o->dmin);
            snprintf(v, sizeof(v), "%.17g", o->dmax);
            ck_assert_int_eq(sc_config_set(&cfg, o->name, v, NULL), 0);
            ck_assert_double_eq(*d, o->dmax);
            snprintf(v, sizeof(v), "%.17g", nextafter(o->dmax, INFINITY));
            snprintf(want, sizeof(want), "semcached: --%s: '%s' is not a number in [%g, %g]\n",
                     o->name, v, o->dmin, o->dmax);
            ck_assert_int_eq(sc_config_set(&cfg, o->name, v, cap_open(&err)), SC_EINVAL);
            ck_assert_str_eq(cap_text(&err), want);
            cap_free(&err);
            snprintf(v, sizeof(v), "%.17g", nextafter(o->dmin, -INFINITY));
            ck_assert_int_eq(sc_config_set(&cfg, o->name, v, NULL), SC_EINVAL);
            const char *bad[] = {"nan", "inf", "-inf", "", "0.5x", "1e999"};
            for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++)
                ck_assert_msg(sc_config_set(&cfg, o->name, bad[b], NULL) == SC_EINVAL,
                              "--%s accepted '%s'", o->name, bad[b]);
            ck_assert_double_eq(*d, o->dmax); /* the last accepted value */
        }
    }
}
END_TEST

START_TEST(numbers_are_parsed_strictly)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    /* Integer options take no suffix; sizes take one, and only one. */
    ck_assert_int_eq(sc_config_set(&cfg, "port", "8K", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "port", "80.5", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "port", "0x50", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "64MM", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "64X", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "64M ", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "M", NULL), SC_EINVAL);
    /* Overflow is rejected, not wrapped: 2^33 G is 2^63. */
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "8589934592G", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "99999999999999999999", NULL), SC_EINVAL);
    ck_assert_int_eq(cfg.map_size, 4LL << 30);
    /* The largest size that fits the bound is accepted. */
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "4194303T", NULL), 0);
    ck_assert_int_eq(cfg.map_size, 4194303LL << 40);
    /* Negative values where the range allows them. */
    ck_assert_int_eq(sc_config_set(&cfg, "search-threads", "-1", NULL), 0);
    ck_assert_int_eq(cfg.search_threads, -1);
    ck_assert_int_eq(sc_config_set(&cfg, "threshold", "-0.25", NULL), 0);
    ck_assert_double_eq_tol(cfg.threshold, -0.25, 1e-12);
    ck_assert_int_eq(sc_config_set(&cfg, "threshold", "1e-1", NULL), 0);
    ck_assert_double_eq_tol(cfg.threshold, 0.1, 1e-12);
}
END_TEST

/* BUG (known, not fixed here): "GiB", the way sizes are usually written,
 * is rejected though "Gi" and "GB" are both accepted: parse_int skips one
 * 'B' or one 'i' after the suffix, never "iB". Fix in core/config.c
 * parse_int: after the suffix, skip an 'i' and then a 'B' (each optional). */
START_TEST(size_suffix_gib_is_accepted)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "2Gi", NULL), 0);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "2GB", NULL), 0);
    ck_assert_int_eq(sc_config_set(&cfg, "map-size", "2GiB", NULL), 0);
    ck_assert_int_eq(cfg.map_size, 2LL << 30);
}
END_TEST

START_TEST(choices_by_name)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    /* Each name maps to the enum value the header gives it. */
    struct {
        const char *opt, *value;
        int64_t want;
        size_t off;
    } cases[] = {
        {"sync", "full", SC_SYNC_FULL, F(sync)},
        {"sync", "periodic", SC_SYNC_PERIODIC, F(sync)},
        {"sync", "none", SC_SYNC_NONE, F(sync)},
        {"evict", "none", SC_EVICT_NONE, F(evict)},
        {"evict", "value", SC_EVICT_VALUE, F(evict)},
        {"evict", "lru", SC_EVICT_LRU, F(evict)},
        {"log-level", "debug", SC_DEBUG, F(log_level)},
        {"log-level", "error", SC_ERROR, F(log_level)},
        {"semantic", "off", 0, F(semantic)},
        {"semantic", "on", 1, F(semantic)},
        {"metrics-auth", "on", 1, F(metrics_auth)},
        {"allow-lower-threshold", "on", 1, F(allow_lower_threshold)},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(sc_config_set(&cfg, cases[i].opt, cases[i].value, NULL), 0);
        ck_assert_int_eq(*(int64_t *)((char *)&cfg + cases[i].off), cases[i].want);
    }
    /* Names are exact: no case folding, no numbers, no prefixes. */
    capture_t err;
    ck_assert_int_eq(sc_config_set(&cfg, "sync", "FULL", cap_open(&err)), SC_EINVAL);
    ck_assert_str_eq(cap_text(&err), "semcached: --sync: 'FULL' is not one of the choices\n");
    cap_free(&err);
    ck_assert_int_eq(sc_config_set(&cfg, "sync", "1", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "evict", "lr", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "semantic", "true", NULL), SC_EINVAL);
    ck_assert_int_eq(cfg.sync, SC_SYNC_NONE);
    /* The same through the command line. */
    expect_parse(&cfg, (const char *[]){"--evict", "value", "--sync=periodic", NULL}, 0, NULL);
    ck_assert_int_eq(cfg.evict, SC_EVICT_VALUE);
    ck_assert_int_eq(cfg.sync, SC_SYNC_PERIODIC);
    expect_parse(&cfg, (const char *[]){"--evict=random", NULL}, SC_EINVAL,
                 "--evict: 'random' is not one of the choices");
}
END_TEST

START_TEST(unknown_and_malformed_arguments)
{
    clear_env();
    sc_config_t cfg;
    expect_parse(&cfg, (const char *[]){"--nope", "1", NULL}, SC_EINVAL,
                 "semcached: unknown option --nope (see --help)");
    expect_parse(&cfg, (const char *[]){"--nope=1", NULL}, SC_EINVAL, "unknown option --nope ");
    /* A prefix of a name is not the name. */
    expect_parse(&cfg, (const char *[]){"--por", "1", NULL}, SC_EINVAL, "unknown option --por ");
    expect_parse(&cfg, (const char *[]){"--ports=1", NULL}, SC_EINVAL, "unknown option --ports ");
    expect_parse(&cfg, (const char *[]){"-p", "1", NULL}, SC_EINVAL, "unexpected argument '-p'");
    expect_parse(&cfg, (const char *[]){"port", NULL}, SC_EINVAL, "unexpected argument 'port'");
    expect_parse(&cfg, (const char *[]){"--port", NULL}, SC_EINVAL, "--port needs a value");
    expect_parse(&cfg, (const char *[]){"--", NULL}, SC_EINVAL, "unknown option -- ");
    /* An error stops the parse at the bad argument. */
    expect_parse(&cfg, (const char *[]){"--port", "9000", "--port", "0", NULL}, SC_EINVAL,
                 "--port: '0' is not an integer number in [1, 65535]");
    /* sc_config_set: unknown names too, and a NULL stream is allowed. */
    capture_t err;
    sc_config_defaults(&cfg);
    ck_assert_int_eq(sc_config_set(&cfg, "nope", "1", cap_open(&err)), SC_EINVAL);
    ck_assert_str_eq(cap_text(&err), "semcached: unknown option --nope (see --help)\n");
    cap_free(&err);
    ck_assert_int_eq(sc_config_set(&cfg, "nope", "1", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "port", "0", NULL), SC_EINVAL);
    ck_assert_int_eq(sc_config_set(&cfg, "port", "1", NULL), 0);
    ck_assert_int_eq(cfg.port, 1);
}
END_TEST

START_TEST(strings_are_bounded_by_their_field)
{
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    char v[sizeof(cfg.host) + 1];
    memset(v, 'h', sizeof(v));
    v[sizeof(cfg.host) - 1] = '\0'; /* 255 bytes: fits with its terminator */
    ck_assert_int_eq(sc_config_set(&cfg, "host", v, NULL), 0);
    ck_assert_uint_eq(strlen(cfg.host), sizeof(cfg.host) - 1);
    v[sizeof(cfg.host) - 1] = 'h';
    v[sizeof(cfg.host)] = '\0'; /* 256 bytes: one too many */
    capture_t err;
    ck_assert_int_eq(sc_config_set(&cfg, "host", v, cap_open(&err)), SC_EINVAL);
    ck_assert_str_eq(cap_text(&err), "semcached: --host: value longer than 255 bytes\n");
    cap_free(&err);
    ck_assert_uint_eq(strlen(cfg.host), sizeof(cfg.host) - 1);
}
END_TEST

START_TEST(help_and_version)
{
    clear_env();
    sc_config_t cfg;
    sc_config_defaults(&cfg);
    char *argv[] = {"semcached", "--port", "9000", "--help", "--port", "0"};
    capture_t out, err;
    cap_open(&out);
    ck_assert_int_eq(sc_config_parse(&cfg, 6, argv, out.f, cap_open(&err)), 1);
    const char *help = cap_text(&out);
    ck_assert_str_eq(cap_text(&err), "");
    /* Every option is listed with its variable and default. */
    for (size_t i = 0; i < N_OPTIONS; i++) {
        char line[160], env[96];
        snprintf(line, sizeof(line), "\n  --%s ", options[i].name);
        ck_assert_msg(strstr(help, line) != NULL, "--help lacks --%s", options[i].name);
        env_name(options[i].name, env, sizeof(env));
        ck_assert_msg(strstr(help, env) != NULL, "--help lacks %s", env);
    }
    ck_assert_ptr_nonnull(strstr(help, "  --sync full|periodic|none\n"));
    ck_assert_ptr_nonnull(strstr(help, "default: 4G   env: SEMCACHED_MAP_SIZE\n"));
    ck_assert_int_eq(tu_count(help, "\n  --"), (int)N_OPTIONS + 2);
    cap_free(&out);
    cap_free(&err);
    char *argv2[] = {"semcached", "--version"};
    cap_open(&out);
    ck_assert_int_eq(sc_config_parse(&cfg, 2, argv2, out.f, cap_open(&err)), SC_CONFIG_VERSION);
    ck_assert_str_eq(cap_text(&out), ""); /* main prints it: it knows the SIMD level */
    cap_free(&out);
    cap_free(&err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, defaults_are_the_documented_ones);
    tcase_add_test(tc, flag_forms_and_the_last_flag_wins);
    tcase_add_test(tc, environment_and_precedence);
    tcase_add_test(tc, every_bound_of_the_table);
    tcase_add_test(tc, numbers_are_parsed_strictly);
    tcase_add_test(tc, choices_by_name);
    tcase_add_test(tc, unknown_and_malformed_arguments);
    tcase_add_test(tc, strings_are_bounded_by_their_field);
    tcase_add_test(tc, help_and_version);
    tcase_add_test(tc, size_suffix_gib_is_accepted);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
