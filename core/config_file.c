/* config_file.c -- the --config file, and sc_config_parse, which reads the
 * sources in precedence order (file, environment, flags) on top of the
 * options table in config.c. "name = value" lines set options through the
 * table (sc_config_set), so the file accepts exactly what the flags accept;
 * "[namespace NAME]" sections are collected as presets for the server, which
 * alone knows namespace settings (core must not see cache/). The file is read
 * whole and split into lines in place, so every message names its FILE:LINE. */
#define _GNU_SOURCE
#include "sc_common.h"
#include "sc_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A config file is a few KiB; the cap stops --config pointed at a large file
 * by mistake from being read whole. */
#define MAX_FILE_BYTES (1 << 20)
/* Namespace names as the API accepts them (server/api.c valid_ns_name). */
#define MAX_NS_NAME 128

typedef struct {
    sc_config_t *cfg;
    const char *name; /* the path, for messages */
    int line;         /* current line, 1-based */
    FILE *err;
    int in_ns; /* a [namespace] header was read: lines go to the last preset */
} reader_t;

static int fail(reader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(reader_t *r, const char *fmt, ...)
{
    if (r->err) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(r->err, "%s:%d: ", r->name, r->line);
        vfprintf(r->err, fmt, ap);
        fputc('\n', r->err);
        va_end(ap);
    }
    return SC_EINVAL;
}

static char *skip_blank(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static void trim_end(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}

/* Option names and namespace setting names: letters, digits, '-', '_', '.'. */
static size_t word_len(const char *s)
{
    size_t n = 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '-' || s[n] == '_' || s[n] == '.')
        n++;
    return n;
}

/* The value after "=": a quoted one is unescaped in place; an unquoted one
 * ends at a '#' that starts it or follows a blank, and is trimmed. */
static int read_value(reader_t *r, char *s, char **out, int *quoted)
{
    *out = s;
    *quoted = *s == '"';
    if (!*quoted) {
        char *p = s;
        while (*p && !(*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')))
            p++;
        *p = '\0';
        trim_end(s);
        return 0;
    }
    char *w = s, *p = s + 1;
    for (; *p != '"'; p++) {
        if (!*p || (*p == '\\' && !p[1]))
            return fail(r, "unterminated quoted value (a closing \" is missing)");
        if (*p != '\\') {
            *w++ = *p;
            continue;
        }
        switch (*++p) {
        case '\\':
        case '"':
            *w++ = *p;
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'r':
            *w++ = '\r';
            break;
        default:
            return fail(r, "unknown escape '\\%c' in a quoted value (use \\\\ \\\" \\n \\t \\r)",
                        *p ? *p : ' ');
        }
    }
    *w = '\0';
    p = skip_blank(p + 1);
    if (*p && *p != '#')
        return fail(r, "unexpected text after the closing quote: '%s'", p);
    return 0;
}

/* Is 'name' a row of the options table? */
static int known_option(const char *name)
{
    sc_config_opt_t o;
    for (size_t i = 0; sc_config_option(i, &o) == 0; i++)
        if (strcmp(o.name, name) == 0)
            return 1;
    return 0;
}

static int set_option(reader_t *r, char *key, const char *value)
{
    if (strcmp(key, "config") == 0)
        return fail(r, "config cannot be set inside a config file");
    if (!known_option(key)) {
        char *u = strdup(key);
        for (char *p = u; p && *p; p++)
            *p = *p == '_' ? '-' : *p;
        int alias = u && known_option(u);
        int rc = fail(r, "unknown option '%s'%s%s%s", key, alias ? " (did you mean '" : "",
                      alias ? u : "", alias ? "'?)" : " (see semcached --help)");
        free(u);
        return rc;
    }
    /* The table's message ("semcached: --port: 'x' is not ...") is captured
     * and given the file's position instead of the program's name. */
    char *msg = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&msg, &len);
    if (!m)
        return fail(r, "out of memory");
    int rc = sc_config_set(r->cfg, key, value, m);
    fclose(m);
    if (rc) {
        const char *text = msg;
        if (strncmp(text, "semcached: --", 13) == 0)
            text += 13;
        while (len && msg[len - 1] == '\n')
            msg[--len] = '\0';
        rc = fail(r, "%s", text);
    }
    free(msg);
    return rc;
}

static int add_section(reader_t *r, char *s)
{
    char *close = strchr(s, ']');
    if (!close)
        return fail(r, "a section header needs a closing ']'");
    char *rest = skip_blank(close + 1);
    if (*rest && *rest != '#')
        return fail(r, "unexpected text after ']': '%s'", rest);
    *close = '\0';
    char *kind = skip_blank(s + 1);
    size_t klen = word_len(kind);
    char *name = skip_blank(kind + klen);
    size_t nlen = word_len(name);
    if (klen != 9 || strncmp(kind, "namespace", 9) != 0 || name == kind + klen)
        return fail(r, "unknown section [%s] (the only kind is [namespace NAME])", kind);
    trim_end(name);
    if (nlen == 0 || nlen > MAX_NS_NAME || name[nlen])
        return fail(r, "a namespace name is 1 to %d characters from [A-Za-z0-9_.-], not '%s'",
                    MAX_NS_NAME, name);
    sc_config_t *cfg = r->cfg;
    for (size_t i = 0; i < cfg->n_ns_presets; i++)
        if (strcmp(cfg->ns_presets[i].name, name) == 0)
            return fail(r, "namespace %s already has a section on line %d", name,
                        cfg->ns_presets[i].line);
    sc_config_ns_t *grown = realloc(cfg->ns_presets, (cfg->n_ns_presets + 1) * sizeof(*grown));
    if (!grown)
        return fail(r, "out of memory");
    cfg->ns_presets = grown;
    sc_config_ns_t *ns = &grown[cfg->n_ns_presets];
    memset(ns, 0, sizeof(*ns));
    if (!(ns->name = strdup(name)))
        return fail(r, "out of memory");
    ns->line = r->line;
    cfg->n_ns_presets++;
    r->in_ns = 1;
    return 0;
}

/* A namespace setting; a key given twice keeps its last value, like options. */
static int add_setting(reader_t *r, const char *key, const char *value, int quoted)
{
    sc_config_ns_t *ns = &r->cfg->ns_presets[r->cfg->n_ns_presets - 1];
    sc_config_kv_t *kv = NULL;
    for (size_t i = 0; i < ns->n_kv && !kv; i++)
        if (strcmp(ns->kv[i].key, key) == 0)
            kv = &ns->kv[i];
    if (!kv) {
        sc_config_kv_t *grown = realloc(ns->kv, (ns->n_kv + 1) * sizeof(*grown));
        if (!grown)
            return fail(r, "out of memory");
        ns->kv = grown;
        kv = &grown[ns->n_kv];
        memset(kv, 0, sizeof(*kv));
        if (!(kv->key = strdup(key)))
            return fail(r, "out of memory");
        ns->n_kv++;
    }
    char *v = strdup(value);
    if (!v)
        return fail(r, "out of memory");
    free(kv->value);
    kv->value = v;
    kv->quoted = quoted;
    kv->line = r->line;
    return 0;
}

static int read_line(reader_t *r, char *s)
{
    s = skip_blank(s);
    if (!*s || *s == '#')
        return 0;
    if (*s == '[')
        return add_section(r, s);
    size_t klen = word_len(s);
    char *eq = skip_blank(s + klen);
    if (klen == 0 || *eq != '=')
        return fail(r, "expected 'name = value', a '# comment' or a '[namespace NAME]' header");
    s[klen] = '\0';
    char *value;
    int quoted, rc = read_value(r, skip_blank(eq + 1), &value, &quoted);
    if (rc)
        return rc;
    return r->in_ns ? add_setting(r, s, value, quoted) : set_option(r, s, value);
}

int sc_config_load_text(sc_config_t *cfg, const char *name, const char *text, size_t len, FILE *err)
{
    reader_t r = {cfg, name, 1, err, 0};
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        for (const char *p = text; p < nul; p++)
            r.line += *p == '\n';
        return fail(&r, "a NUL byte (is this a text file?)");
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return fail(&r, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    int rc = 0;
    for (char *line = copy; !rc && line < copy + len; r.line++) {
        char *end = memchr(line, '\n', (size_t)(copy + len - line));
        if (!end)
            end = copy + len;
        *end = '\0';
        if (end > line && end[-1] == '\r') /* CRLF files */
            end[-1] = '\0';
        rc = read_line(&r, line);
        line = end + 1;
    }
    free(copy);
    return rc;
}

int sc_config_load_file(sc_config_t *cfg, const char *path, FILE *err)
{
    sc_buf_t text = {0};
    int rc = sc_read_file(path, MAX_FILE_BYTES, &text);
    if (rc < 0 && rc > -4096 && err)
        fprintf(err, "%s: cannot open the config file: %s\n", path, strerror(-rc));
    else if (rc && err)
        fprintf(err, "%s: cannot read the config file: %s\n", path,
                rc == SC_ETOOBIG ? "larger than 1 MiB" : sc_strerror(rc));
    if (!rc)
        rc = sc_config_load_text(cfg, path, text.data ? text.data : "", text.len, err);
    sc_buf_free(&text);
    return rc;
}

void sc_config_release(sc_config_t *cfg)
{
    for (size_t i = 0; i < cfg->n_ns_presets; i++) {
        sc_config_ns_t *ns = &cfg->ns_presets[i];
        for (size_t k = 0; k < ns->n_kv; k++) {
            free(ns->kv[k].key);
            free(ns->kv[k].value);
        }
        free(ns->kv);
        free(ns->name);
    }
    free(cfg->ns_presets);
    cfg->ns_presets = NULL;
    cfg->n_ns_presets = 0;
}

/* The JSON grammar's number: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? */
static int is_json_number(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (*s >= '1' && *s <= '9')
        while (isdigit((unsigned char)*s))
            s++;
    else
        return 0;
    if (*s == '.') {
        if (!isdigit((unsigned char)*++s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

static int kv_value_json(const sc_config_kv_t *kv, sc_buf_t *out)
{
    const char *v = kv->value;
    if (kv->quoted)
        return sc_buf_json_str(out, v, strlen(v));
    if (is_json_number(v) || strcmp(v, "null") == 0)
        return sc_buf_puts(out, v);
    if (strcmp(v, "true") == 0 || strcmp(v, "on") == 0)
        return sc_buf_puts(out, "true");
    if (strcmp(v, "false") == 0 || strcmp(v, "off") == 0)
        return sc_buf_puts(out, "false");
    return sc_buf_json_str(out, v, strlen(v));
}

static int kv_member_json(const sc_config_kv_t *kv, sc_buf_t *out)
{
    int rc = sc_buf_json_str(out, kv->key, strlen(kv->key));
    if (!rc)
        rc = sc_buf_puts(out, ":");
    return rc ? rc : kv_value_json(kv, out);
}

int sc_config_kv_json(const sc_config_kv_t *kv, sc_buf_t *out)
{
    int rc = sc_buf_puts(out, "{");
    if (!rc)
        rc = kv_member_json(kv, out);
    return rc ? rc : sc_buf_puts(out, "}");
}

int sc_config_ns_json(const sc_config_ns_t *ns, sc_buf_t *out)
{
    int rc = sc_buf_puts(out, "{");
    for (size_t i = 0; i < ns->n_kv && !rc; i++) {
        if (i)
            rc = sc_buf_puts(out, ",");
        if (!rc)
            rc = kv_member_json(&ns->kv[i], out);
    }
    return rc ? rc : sc_buf_puts(out, "}");
}

/* The flags that print and exit (handled before anything is read, so a bad
 * file or variable cannot hide --help), and the --config path (the last one
 * given). Option values are skipped so "--auth-token --help" is a token. */
static int scan_argv(int argc, char **argv, const char **file, FILE *out)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sc_config_usage(out);
            return SC_CONFIG_DONE;
        }
        if (strcmp(a, "--help-man") == 0) { /* hidden: `make` builds semcached.1 from it */
            sc_config_man(out);
            return SC_CONFIG_DONE;
        }
        if (strcmp(a, "--help-config") == 0) { /* hidden: the example semcached.conf */
            sc_config_template(out);
            return SC_CONFIG_DONE;
        }
        if (strcmp(a, "--version") == 0)
            return SC_CONFIG_VERSION;
        if (strncmp(a, "--config=", 9) == 0)
            *file = a + 9;
        else if (strncmp(a, "--", 2) == 0 && !strchr(a, '=') && known_option(a + 2) &&
                 i + 1 < argc) {
            if (strcmp(a, "--config") == 0)
                *file = argv[i + 1];
            i++;
        }
    }
    return 0;
}

int sc_config_parse(sc_config_t *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    const char *file = getenv("SEMCACHED_CONFIG");
    int rc = scan_argv(argc, argv, &file, out);
    if (rc)
        return rc;
    if (file && *file && sc_config_load_file(cfg, file, err))
        return SC_EINVAL;
    if (sc_config_apply_env(cfg, err) || sc_config_apply_args(cfg, argc, argv, err))
        return SC_EINVAL;
    return 0;
}
