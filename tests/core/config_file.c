/* tests/core/config_file.c -- the --config file (core/config_file.c) and the
 * documents generated from the options table (core/config_doc.c): syntax,
 * quoting and escapes, every rejection with its FILE:LINE, precedence across
 * flags > environment > file > defaults, [namespace NAME] presets (checked
 * against the real namespace validator), and the example config file, which
 * once uncommented must give exactly the defaults. */
#include "../../core/config_file.c"

#include <jansson.h>
#include <unistd.h>

#include "sc_log.h"
#include "sc_namespaces.h"
#include "testutil.h"

/* The environment of the test run must not leak into these tests. */
static void clear_env(void)
{
    sc_config_opt_t o;
    for (size_t i = 0; sc_config_option(i, &o) == 0; i++)
        unsetenv(o.env);
}

/* Loads 'text' (named "t.conf") on top of the defaults; returns the code and
 * leaves what was written to the error stream in 'msg' (caller frees). */
static int load(sc_config_t *cfg, const char *text, char **msg)
{
    tu_capture_t err;
    sc_config_defaults(cfg);
    int rc = sc_config_load_text(cfg, "t.conf", text, strlen(text), tu_cap_open(&err));
    tu_cap_text(&err);
    *msg = err.text;
    return rc;
}

/* Asserts 'text' is refused with exactly 'want' as the message. */
static void expect_error(const char *text, const char *want)
{
    sc_config_t cfg;
    char *msg;
    ck_assert_int_eq(load(&cfg, text, &msg), SC_EINVAL);
    ck_assert_str_eq(msg, want);
    free(msg);
    sc_config_release(&cfg);
}

/* sc_config_parse of 'args' (NULL-ended; argv[0] is added) on the defaults.
 * Returns its code; 'out' and 'err' receive what it printed (owned). */
static int parse(sc_config_t *cfg, const char *const *args, char **out, char **err)
{
    char *argv[16] = {"semcached"};
    int argc = 1;
    for (; args[argc - 1]; argc++)
        argv[argc] = (char *)args[argc - 1];
    tu_capture_t o, e;
    sc_config_defaults(cfg);
    int rc = sc_config_parse(cfg, argc, argv, tu_cap_open(&o), tu_cap_open(&e));
    tu_cap_text(&o);
    tu_cap_text(&e);
    *out = o.text;
    *err = e.text;
    return rc;
}

START_TEST(syntax_comments_blanks_and_whitespace)
{
    sc_config_t cfg;
    char *msg;
    const char *text = "# a comment\n"
                       "\n"
                       "   \t\n"
                       "  port   =   9001  \n"
                       "host=10.1.2.3\n"
                       "\t# an indented comment\n"
                       "threads = 3 # a comment after a blank\n"
                       "auth-token = ab#cd\n"         /* '#' not after a blank is kept */
                       "log-file =\n"                 /* empty value */
                       "data-dir = /srv/a b/data\r\n" /* inner blanks kept, CRLF */
                       "map-size = 2GiB\n"
                       "threshold = 0.85\n"
                       "sync = periodic\n"
                       "port = 9002"; /* no final newline; the last value wins */
    ck_assert_int_eq(load(&cfg, text, &msg), 0);
    ck_assert_str_eq(msg, "");
    free(msg);
    ck_assert_int_eq(cfg.port, 9002);
    ck_assert_str_eq(cfg.host, "10.1.2.3");
    ck_assert_int_eq(cfg.threads, 3);
    ck_assert_str_eq(cfg.auth_token, "ab#cd");
    ck_assert_str_eq(cfg.log_file, "");
    ck_assert_str_eq(cfg.data_dir, "/srv/a b/data");
    ck_assert_int_eq(cfg.map_size, 2LL << 30);
    ck_assert_double_eq_tol(cfg.threshold, 0.85, 1e-12);
    ck_assert_int_eq(cfg.sync, SC_SYNC_PERIODIC);
    ck_assert_int_eq(cfg.n_ns_presets, 0);
    /* An empty file and a file of comments are fine and change nothing. */
    ck_assert_int_eq(load(&cfg, "", &msg), 0);
    free(msg);
    ck_assert_int_eq(load(&cfg, "# nothing\n\n", &msg), 0);
    free(msg);
    ck_assert_int_eq(cfg.port, 8080);
}
END_TEST

START_TEST(quoted_values_and_escapes)
{
    sc_config_t cfg;
    char *msg;
    ck_assert_int_eq(load(&cfg,
                          "auth-token = \"a \\\"b\\\" \\\\ c\\n\\t\\r\"  # comment\n"
                          "log-file = \"/var/log/x # y.log\"\n"
                          "host = \"\"\n"
                          "model = \"  padded  \"\n",
                          &msg),
                     0);
    ck_assert_str_eq(msg, "");
    free(msg);
    ck_assert_str_eq(cfg.auth_token, "a \"b\" \\ c\n\t\r");
    ck_assert_str_eq(cfg.log_file, "/var/log/x # y.log"); /* '#' inside quotes is text */
    ck_assert_str_eq(cfg.host, "");
    ck_assert_str_eq(cfg.model, "  padded  "); /* quotes keep blanks */
    /* A quote inside an unquoted value is just a character. */
    ck_assert_int_eq(load(&cfg, "auth-token = it\"s\n", &msg), 0);
    free(msg);
    ck_assert_str_eq(cfg.auth_token, "it\"s");
    expect_error("\n\nhost = \"open\n",
                 "t.conf:3: unterminated quoted value (a closing \" is missing)\n");
    expect_error("host = \"a\\qb\"\n",
                 "t.conf:1: unknown escape '\\q' in a quoted value (use \\\\ \\\" \\n \\t \\r)\n");
    expect_error("host = \"a\" b\n", "t.conf:1: unexpected text after the closing quote: 'b'\n");
    expect_error("host = \"a\\", "t.conf:1: unterminated quoted value (a closing \" is missing)\n");
}
END_TEST

START_TEST(errors_name_the_file_and_line)
{
    expect_error("port = 9000\n# two\n\nport = x\n",
                 "t.conf:4: port: 'x' is not an integer number in [1, 65535]\n");
    expect_error("\nsync = sometimes\n", "t.conf:2: sync: 'sometimes' is not one of the choices\n");
    expect_error("threshold = 1.5\n", "t.conf:1: threshold: '1.5' is not a number in [-1, 1]\n");
    expect_error(
        "map-size = 4X\n",
        "t.conf:1: map-size: '4X' is not a size number in [1048576, 4611686018427387903]\n");
    expect_error("# c\nno-such-option = 1\n",
                 "t.conf:2: unknown option 'no-such-option' (see semcached --help)\n");
    expect_error("data_dir = /x\n",
                 "t.conf:1: unknown option 'data_dir' (did you mean 'data-dir'?)\n");
    expect_error("--port = 1\n", "t.conf:1: unknown option '--port' (see semcached --help)\n");
    expect_error(
        "port 9000\n",
        "t.conf:1: expected 'name = value', a '# comment' or a '[namespace NAME]' header\n");
    expect_error(
        "= 9000\n",
        "t.conf:1: expected 'name = value', a '# comment' or a '[namespace NAME]' header\n");
    expect_error("config = /etc/other.conf\n",
                 "t.conf:1: config cannot be set inside a config file\n");
    expect_error("[server]\n",
                 "t.conf:1: unknown section [server] (the only kind is [namespace NAME])\n");
    expect_error("[namespace]\n",
                 "t.conf:1: unknown section [namespace] (the only kind is [namespace NAME])\n");
    expect_error("[namespace a\n", "t.conf:1: a section header needs a closing ']'\n");
    expect_error("[namespace a] x\n", "t.conf:1: unexpected text after ']': 'x'\n");
    expect_error(
        "[namespace a b]\n",
        "t.conf:1: a namespace name is 1 to 128 characters from [A-Za-z0-9_.-], not 'a b'\n");
    expect_error(
        "[namespace a/b]\n",
        "t.conf:1: a namespace name is 1 to 128 characters from [A-Za-z0-9_.-], not 'a/b'\n");
    expect_error("[namespace a]\nx = 1\n[namespace b]\n[namespace a]\n",
                 "t.conf:4: namespace a already has a section on line 1\n");
    /* A 129-character name is one too many. */
    char text[200];
    snprintf(text, sizeof(text), "[namespace %0129d]\n", 0);
    sc_config_t cfg;
    char *msg;
    ck_assert_int_eq(load(&cfg, text, &msg), SC_EINVAL);
    ck_assert_ptr_nonnull(strstr(msg, "t.conf:1: a namespace name is 1 to 128"));
    free(msg);
    sc_config_release(&cfg);
    text[11 + 128] = ']'; /* 128 zeros after "[namespace " */
    text[11 + 129] = '\n';
    ck_assert_int_eq(load(&cfg, text, &msg), 0);
    ck_assert_int_eq(strlen(cfg.ns_presets[0].name), 128);
    free(msg);
    sc_config_release(&cfg);
    /* A NUL byte is found wherever it is. */
    tu_capture_t err;
    sc_config_defaults(&cfg);
    static const char with_nul[] = "a = 1\n\nport =\0 1\n";
    ck_assert_int_eq(
        sc_config_load_text(&cfg, "t.conf", with_nul, sizeof(with_nul) - 1, tu_cap_open(&err)),
        SC_EINVAL);
    ck_assert_str_eq(tu_cap_text(&err), "t.conf:3: a NUL byte (is this a text file?)\n");
    tu_cap_free(&err);
    /* A file that cannot be opened says so and returns -errno. */
    ck_assert_int_eq(sc_config_load_file(&cfg, "/nonexistent/semcached.conf", tu_cap_open(&err)),
                     -ENOENT);
    ck_assert_str_eq(tu_cap_text(&err), "/nonexistent/semcached.conf: cannot open the config file: "
                                        "No such file or directory\n");
    tu_cap_free(&err);
}
END_TEST

START_TEST(precedence_flags_env_file_defaults)
{
    clear_env();
    char path[64], other[64], *out, *err;
    tu_write_temp(path, "port = 1111\nthreads = 3\nhost = 10.0.0.1\nlog-level = debug\n");
    tu_write_temp(other, "port = 2222\n");
    setenv("SEMCACHED_THREADS", "4", 1);
    setenv("SEMCACHED_HOST", "10.0.0.2", 1);
    setenv("SEMCACHED_LOG_LEVEL", "warn", 1);
    sc_config_t cfg;
    ck_assert_int_eq(
        parse(&cfg, (const char *[]){"--config", path, "--host", "10.0.0.3", NULL}, &out, &err), 0);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(cfg.port, 1111);         /* file over default */
    ck_assert_int_eq(cfg.threads, 4);         /* environment over file */
    ck_assert_int_eq(cfg.log_level, SC_WARN); /* environment over file */
    ck_assert_str_eq(cfg.host, "10.0.0.3");   /* flag over environment and file */
    ck_assert_int_eq(cfg.sync, SC_SYNC_FULL); /* nobody set it: the default */
    ck_assert_str_eq(cfg.config_file, path);
    free(out);
    free(err);

    /* SEMCACHED_CONFIG names the file when no flag does; --config=FILE wins
     * over it. */
    setenv("SEMCACHED_CONFIG", other, 1);
    ck_assert_int_eq(parse(&cfg, (const char *[]){NULL}, &out, &err), 0);
    ck_assert_int_eq(cfg.port, 2222);
    ck_assert_str_eq(cfg.config_file, other);
    free(out);
    free(err);
    char flag[80];
    snprintf(flag, sizeof(flag), "--config=%s", path);
    ck_assert_int_eq(parse(&cfg, (const char *[]){flag, NULL}, &out, &err), 0);
    ck_assert_int_eq(cfg.port, 1111);
    ck_assert_str_eq(cfg.config_file, path);
    free(out);
    free(err);

    /* A bad file stops the parse with its position; --help does not read it. */
    FILE *f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    fputs("port = 1\nport = 0\n", f);
    fclose(f);
    ck_assert_int_eq(parse(&cfg, (const char *[]){NULL}, &out, &err), SC_EINVAL);
    char want[160];
    snprintf(want, sizeof(want), "%s:2: port: '0' is not an integer number in [1, 65535]\n", other);
    ck_assert_str_eq(err, want);
    free(out);
    free(err);
    ck_assert_int_eq(parse(&cfg, (const char *[]){"--help", NULL}, &out, &err), SC_CONFIG_DONE);
    ck_assert_str_eq(err, "");
    ck_assert_ptr_nonnull(strstr(out, "  --config TEXT\n"));
    free(out);
    free(err);
    /* A value that looks like a flag is a value, not a request for help. */
    unsetenv("SEMCACHED_CONFIG");
    ck_assert_int_eq(parse(&cfg, (const char *[]){"--auth-token", "--help", NULL}, &out, &err), 0);
    ck_assert_str_eq(cfg.auth_token, "--help");
    free(out);
    free(err);
    unlink(path);
    unlink(other);
    clear_env();
}
END_TEST

START_TEST(namespace_sections_become_presets)
{
    sc_config_t cfg;
    char *msg;
    const char *text = "port = 9000\n"
                       "[namespace support]   # the help desk\n"
                       "threshold = 0.92\n"
                       "semantic = on\n"
                       "model = bge\n"
                       "embedder = \"123\"\n" /* quoted: a string, not a number */
                       "ttl_s = 86400\n"
                       "max_entries = null\n"
                       "threshold = 0.93\n" /* again: the last value, first place */
                       "\n"
                       "[ namespace  code.v2 ]\n"
                       "compare = \"exact\"\n"
                       "invalidate_on_wrong = false\n"
                       "[namespace empty]\n";
    ck_assert_int_eq(load(&cfg, text, &msg), 0);
    ck_assert_str_eq(msg, "");
    free(msg);
    ck_assert_int_eq(cfg.port, 9000);
    ck_assert_int_eq(cfg.n_ns_presets, 3);
    const sc_config_ns_t *ns = &cfg.ns_presets[0];
    ck_assert_str_eq(ns->name, "support");
    ck_assert_int_eq(ns->line, 2);
    ck_assert_int_eq(ns->n_kv, 6);
    ck_assert_str_eq(ns->kv[0].key, "threshold");
    ck_assert_str_eq(ns->kv[0].value, "0.93");
    ck_assert_int_eq(ns->kv[0].line, 9);
    ck_assert_int_eq(ns->kv[3].quoted, 1);
    ck_assert_int_eq(ns->kv[2].quoted, 0);
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_config_ns_json(ns, &b), 0);
    ck_assert_str_eq(b.data, "{\"threshold\":0.93,\"semantic\":true,\"model\":\"bge\","
                             "\"embedder\":\"123\",\"ttl_s\":86400,\"max_entries\":null}");
    sc_buf_reset(&b);
    ck_assert_int_eq(sc_config_kv_json(&ns->kv[1], &b), 0);
    ck_assert_str_eq(b.data, "{\"semantic\":true}");
    sc_buf_reset(&b);
    ck_assert_str_eq(cfg.ns_presets[1].name, "code.v2");
    ck_assert_int_eq(sc_config_ns_json(&cfg.ns_presets[1], &b), 0);
    ck_assert_str_eq(b.data, "{\"compare\":\"exact\",\"invalidate_on_wrong\":false}");
    sc_buf_reset(&b);
    ck_assert_int_eq(cfg.ns_presets[2].n_kv, 0);
    ck_assert_int_eq(sc_config_ns_json(&cfg.ns_presets[2], &b), 0);
    ck_assert_str_eq(b.data, "{}");
    sc_buf_reset(&b);

    /* The server's own validator takes the presets as they are (model
     * excepted: it names a model this test has not loaded, which the server
     * checks separately), and refuses a bad value. */
    for (size_t i = 0; i < cfg.n_ns_presets; i++) {
        ck_assert_int_eq(sc_config_ns_json(&cfg.ns_presets[i], &b), 0);
        json_error_t je;
        json_t *j = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &je);
        ck_assert_ptr_nonnull(j);
        sc_ns_config_t c;
        char err[256];
        sc_ns_config_defaults(&cfg, &c);
        ck_assert_msg(sc_ns_config_apply_json(&c, j, err, sizeof(err)) == 0, "%s: %s", b.data, err);
        if (i == 0) {
            ck_assert_double_eq_tol(c.threshold, 0.93, 1e-12);
            ck_assert_int_eq(c.ttl_s, 86400);
            ck_assert_str_eq(c.embedder, "123");
        }
        json_decref(j);
        sc_buf_reset(&b);
    }
    sc_config_release(&cfg);
    sc_config_release(&cfg); /* idempotent */
    ck_assert_int_eq(load(&cfg, "[namespace x]\nthreshold = 2\nsample_rate = often\n", &msg), 0);
    free(msg);
    json_t *j = NULL;
    for (size_t k = 0; k < cfg.ns_presets[0].n_kv; k++) {
        /* One setting at a time, as the server applies them to name a line. */
        ck_assert_int_eq(sc_config_kv_json(&cfg.ns_presets[0].kv[k], &b), 0);
        j = json_loadb(b.data, b.len, 0, NULL);
        sc_ns_config_t c;
        char err[256];
        sc_ns_config_defaults(&cfg, &c);
        ck_assert_int_eq(sc_ns_config_apply_json(&c, j, err, sizeof(err)), SC_EINVAL);
        json_decref(j);
        sc_buf_reset(&b);
    }
    ck_assert_int_eq(cfg.ns_presets[0].kv[1].line, 3);
    sc_buf_free(&b);
    sc_config_release(&cfg);
}
END_TEST

/* The JSON type an unquoted value gets: numbers by the JSON grammar only. */
START_TEST(unquoted_values_keep_json_types)
{
    static const struct {
        const char *value, *json;
    } cases[] = {
        {"0", "0"},
        {"-1", "-1"},
        {"0.5", "0.5"},
        {"1e3", "1e3"},
        {"-2.5E-3", "-2.5E-3"},
        {"01", "\"01\""},
        {".5", "\".5\""},
        {"1.", "\"1.\""},
        {"0x10", "\"0x10\""},
        {"1e", "\"1e\""},
        {"+1", "\"+1\""},
        {"-", "\"-\""},
        {"true", "true"},
        {"on", "true"},
        {"false", "false"},
        {"off", "false"},
        {"null", "null"},
        {"True", "\"True\""},
        {"upstream", "\"upstream\""},
        {"", "\"\""},
        {"a\"b", "\"a\\\"b\""},
    };
    sc_buf_t b = {0};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sc_config_kv_t kv = {"k", (char *)cases[i].value, 0, 1};
        ck_assert_int_eq(kv_value_json(&kv, &b), 0);
        ck_assert_msg(strcmp(b.data, cases[i].json) == 0, "'%s' -> %s, want %s", cases[i].value,
                      b.data, cases[i].json);
        sc_buf_reset(&b);
        kv.quoted = 1; /* quoted, everything is a string */
        ck_assert_int_eq(kv_value_json(&kv, &b), 0);
        ck_assert_int_eq(b.data[0], '"');
        sc_buf_reset(&b);
    }
    sc_buf_free(&b);
}
END_TEST

/* Removes the '#' before every "#name = value" and "#[namespace" line. */
static char *uncomment(const char *text)
{
    char *out = malloc(strlen(text) + 1), *w = out;
    for (const char *p = text; *p;) {
        if (*p == '#' && (p == text || p[-1] == '\n') &&
            (isalpha((unsigned char)p[1]) || p[1] == '['))
            p++;
        *w++ = *p++;
    }
    *w = '\0';
    return out;
}

START_TEST(example_config_is_the_defaults)
{
    tu_capture_t t;
    sc_config_template(tu_cap_open(&t));
    const char *text = tu_cap_text(&t);
    sc_config_opt_t o;
    int n = 0;
    for (size_t i = 0; sc_config_option(i, &o) == 0; i++, n++) {
        char line[160];
        snprintf(line, sizeof(line), "\n#%s = ", o.name);
        ck_assert_msg((strstr(text, line) != NULL) == (strcmp(o.name, "config") != 0),
                      "example config and %s", o.name);
    }
    ck_assert_int_ge(n, 70);
    /* Nothing is set while everything is commented out... */
    sc_config_t cfg, defaults;
    char *msg;
    sc_config_defaults(&defaults);
    ck_assert_int_eq(load(&cfg, text, &msg), 0);
    free(msg);
    ck_assert_int_eq(memcmp(&cfg, &defaults, sizeof(cfg)), 0);
    /* ...and uncommenting every line changes nothing either: each line is
     * the default, written so the parser reads it back. */
    char *on = uncomment(text);
    ck_assert_int_eq(load(&cfg, on, &msg), 0);
    ck_assert_str_eq(msg, "");
    free(msg);
    ck_assert_int_eq(cfg.n_ns_presets, 1);
    ck_assert_str_eq(cfg.ns_presets[0].name, "support");
    ck_assert_int_eq(cfg.ns_presets[0].n_kv, 3);
    sc_config_release(&cfg);
    ck_assert_int_eq(memcmp(&cfg, &defaults, sizeof(cfg)), 0);
    ck_assert_int_eq(tu_count(on, "\n#"), tu_count(on, "\n# ") + tu_count(on, "\n#\n"));
    free(on);
    /* Comment lines fit 80 columns. */
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        ck_assert_msg(len <= 80, "long line: %.*s", (int)len, p);
        p += len + (p[len] == '\n');
    }
    tu_cap_free(&t);
}
END_TEST

START_TEST(man_page_lists_every_option)
{
    tu_capture_t m;
    sc_config_man(tu_cap_open(&m));
    const char *man = tu_cap_text(&m);
    ck_assert_ptr_nonnull(strstr(man, ".TH SEMCACHED 1 "));
    sc_config_opt_t o;
    for (size_t i = 0; sc_config_option(i, &o) == 0; i++) {
        char want[160], name[96], *w = name;
        for (const char *p = o.name; *p; p++)
            w += sprintf(w, *p == '-' ? "\\-" : "%c", *p);
        snprintf(want, sizeof(want), ".TP\n\\fB\\-\\-%s\\fR \\fI", name);
        ck_assert_msg(strstr(man, want) != NULL, "man page lacks %s", o.name);
        ck_assert_ptr_nonnull(strstr(man, o.env));
    }
    /* No line starts with a character roff would take for a request. */
    for (const char *p = man; (p = strchr(p, '\n')) != NULL; p++)
        ck_assert_msg(p[1] != '\'', "line starts with ': %.40s", p + 1);
    ck_assert_ptr_null(strstr(man, "\n.\n"));
    tu_cap_free(&m);
}
END_TEST

START_TEST(version_names_the_build)
{
    tu_capture_t v;
    sc_config_version(tu_cap_open(&v), "v1-2-gabc", "AVX");
    const char *text = tu_cap_text(&v);
    ck_assert_ptr_nonnull(strstr(text, "semcached " SC_VERSION "\nbuild: v1-2-gabc\ncompiler: "));
    ck_assert_ptr_nonnull(strstr(text, "\nhnswlib simd: AVX\nblas: OpenBLAS "));
    tu_cap_free(&v);
    sc_config_version(tu_cap_open(&v), NULL, "");
    ck_assert_ptr_nonnull(strstr(tu_cap_text(&v), "build: unknown\n"));
    ck_assert_ptr_nonnull(strstr(tu_cap_text(&v), "simd: unknown\n"));
    tu_cap_free(&v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config_file");
    TCase *tc = tcase_create("config_file");
    tcase_add_test(tc, syntax_comments_blanks_and_whitespace);
    tcase_add_test(tc, quoted_values_and_escapes);
    tcase_add_test(tc, errors_name_the_file_and_line);
    tcase_add_test(tc, precedence_flags_env_file_defaults);
    tcase_add_test(tc, namespace_sections_become_presets);
    tcase_add_test(tc, unquoted_values_keep_json_types);
    tcase_add_test(tc, example_config_is_the_defaults);
    tcase_add_test(tc, man_page_lists_every_option);
    tcase_add_test(tc, version_names_the_build);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
