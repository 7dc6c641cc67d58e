/* tests/cache/request_fast.c -- the one-pass lookup decoder (cache/request_fast.c)
 * against the jansson path: the shapes semcached-bench and the SDKs send are
 * taken by the fast path, and on every body (hand-written edge cases, the
 * fuzzing corpus, and 200,000 generated bodies, valid ones and mutants) it
 * either declines or agrees with jansson byte for byte (tests/fuzz/request_diff.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/request_diff.h"
#include "sc_common.h"
#include "testutil.h"

/* The body decodes through the fast path and agrees with jansson. */
static void taken(const char *body)
{
    char why[128] = "";
    int rc = request_diff(body, strlen(body), why, sizeof(why));
    ck_assert_msg(rc == 1, "%s: %s", rc ? why : "declined", body);
}

/* The fast path does not take the body, or agrees with jansson on it. */
static int agrees_n(const char *body, size_t len)
{
    char why[128] = "";
    int rc = request_diff(body, len, why, sizeof(why));
    ck_assert_msg(rc >= 0, "%s: %.*s", why, (int)len, body);
    return rc;
}

static int agrees(const char *body)
{
    return agrees_n(body, strlen(body));
}

/* Refused outright by both paths (jansson words the error). */
static void refused(const char *body)
{
    sc_request_t r;
    char err[256];
    ck_assert_int_eq(agrees(body), 0);
    ck_assert_int_eq(sc_request_parse(&r, SC_REQ_LOOKUP, body, strlen(body), err, sizeof(err)),
                     SC_EINVAL);
}

START_TEST(common_shapes_take_the_fast_path)
{
    /* semcached-bench's exact workload */
    taken("{\"namespace\":\"bench\",\"model\":\"bench-model\",\"params\":{\"temperature\":0},"
          "\"prompt\":\"bench question number 1\"}");
    /* Python's json.dumps: spaces, \\u escapes for everything non-ASCII */
    taken("{\"namespace\": \"examples-py\", \"model\": \"gpt-4o-mini\", \"params\": "
          "{\"temperature\": 0.7, \"max_tokens\": 256}, \"messages\": [{\"role\": \"system\", "
          "\"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Caf\\u00e9 "
          "\\ud83d\\ude00 \\\"quoted\\\"\\n\\ttab\"}], \"max_age_s\": 3600}");
    /* content parts, a tenant, a threshold, a lease, an embedder */
    taken("{\"tenant\":\"acme\",\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
          "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
          "\"x\"}},{\"type\":\"text\",\"text\":\"b\"}]}],\"threshold\":0.93,\"lease\":true,"
          "\"embedder\":\"glove\"}");
    /* raw UTF-8, ignored params, nested params, numbers of every form */
    taken("{\"model\":\"m\",\"prompt\":\"naïve — 日本語 😀\",\"params\":{\"user\":\"u1\","
          "\"stream\":true,\"stop\":[\"\\n\",\"END\"],\"temperature\":1.0,\"top_p\":1e0,"
          "\"seed\":-0,\"logit_bias\":{\"50256\":-100,\"13\":2.5e-3},\"n\":null}}");
    /* a conversation ending with the assistant: no semantic text */
    taken("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":"
          "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\"}]"
          "}]}");
    /* a client vector as base64 (two float32: 1.0, 2.0), and one with a
     * PHP-style \/ (2.1102, -1.9594) */
    taken("{\"model\":\"m\",\"prompt\":\"v\",\"embedding\":\"AACAPwAAAEA=\"}");
    taken("{\"model\":\"m\",\"prompt\":\"v\",\"embedding\":\"eA0HQC\\/P+r8=\"}");
    /* blank text is no text, escaped namespace and model strings decode */
    taken("{\"model\":\"m\\u002dx\",\"namespace\":\"a\\u002eb\",\"prompt\":\" \\t\\n\"}");
    taken("  {\"model\":\"m\",\"prompt\":\"\",\"params\":{}}\r\n\t ");
}
END_TEST

START_TEST(edge_cases_decline_or_agree)
{
    static const char *const bodies[] = {
        /* numbers jansson reads in its own way */
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":123456789012345678}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":1234567890123456789}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":-9223372036854775808}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":99999999999999999999}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":1e400}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":-1e400}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":1e-400}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":-0.0,\"b\":0.1,\"c\":1.5e300}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":4.9406564584124654e-324}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":0."
        "1000000000000000055511151231257827021181583404541015625}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":01}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":1.}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":.5}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":+1}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":1e}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":-}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"max_age_s\":-0}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"max_age_s\":-0.0}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"max_age_s\":-1e-400}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"threshold\":1.0000000000000001}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"threshold\":-1}",
        /* strings */
        "{\"model\":\"m\",\"prompt\":\"a\\u0000b\"}",
        "{\"model\":\"m\",\"prompt\":\"\\ud800\"}",
        "{\"model\":\"m\",\"prompt\":\"\\udc00\\ud800\"}",
        "{\"model\":\"m\",\"prompt\":\"\\ud800\\u0041\"}",
        "{\"model\":\"m\",\"prompt\":\"\\uD83D\\uDE00\\u00E9\"}",
        "{\"model\":\"m\",\"prompt\":\"\\x\"}",
        "{\"model\":\"m\",\"prompt\":\"\\u12\"}",
        "{\"model\":\"m\",\"prompt\":\"tab\there\"}",
        "{\"model\":\"m\",\"prompt\":\"\xc0\x80\"}",
        "{\"model\":\"m\",\"prompt\":\"\xed\xa0\x80\"}",
        "{\"model\":\"m\",\"prompt\":\"\xf4\x90\x80\x80\"}",
        "{\"model\":\"m\",\"prompt\":\"\xe2\x82\"}",
        "{\"model\":\"m\",\"prompt\":\"\xff\"}",
        "{\"model\":\"m\",\"prompt\":\"\x7f\"}",
        /* keys */
        "{\"model\":\"m\",\"prompt\":\"p\",\"model\":\"m\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":1,\"a\":1}}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"role\":\"user\"}]}",
        "{\"m\\u006fdel\":\"m\",\"prompt\":\"p\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"\\u0061\":1,\"a\":2}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"b\":1,\"a\":2,\"\":3,\"ab\":4,\"\xc3\xa9\":5}}",
        /* structure */
        "{\"model\":\"m\",\"prompt\":\"p\",}",
        "{\"model\":\"m\",\"prompt\":\"p\"} x",
        "{\"model\":\"m\",\"prompt\":\"p\"}{}",
        "{\"model\":\"m\",\"prompt\":\"p\"",
        "{\"model\":\"m\" \"prompt\":\"p\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":[1,,2]}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":[1 2]}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":tru}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":truex}}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":nul}}",
        "\xef\xbb\xbf{\"model\":\"m\",\"prompt\":\"p\"}",
        "[{\"model\":\"m\",\"prompt\":\"p\"}]",
        "\"x\"",
        "",
        " ",
        "{\"model\":\"m\",\"prompt\":\"p\"}\f",
        /* fields */
        "{\"model\":\"m\",\"prompt\":\"p\",\"temperature\":0}",
        "{\"model\":\"\",\"prompt\":\"p\"}",
        "{\"prompt\":\"p\"}",
        "{\"model\":\"m\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"messages\":[{\"role\":\"user\"}]}",
        "{\"model\":\"m\",\"prompt\":1}",
        "{\"model\":\"m\",\"messages\":[]}",
        "{\"model\":\"m\",\"messages\":{}}",
        "{\"model\":\"m\",\"messages\":[1]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":1}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":1}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":{}}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"u\\u0073er\",\"content\":\"t\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[1,{\"type\":"
        "\"\\u0074\\u0065\\u0078\\u0074\",\"text\":\"x\"},{\"type\":\"text\",\"text\":2},"
        "{\"type\":\"text\"},{\"text\":\"y\"}]}]}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"params\":[]}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"namespace\":\"\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"namespace\":\"a b\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"namespace\":\"\\u0041\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"namespace\":1}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"tenant\":null}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"max_age_s\":\"1\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"max_age_s\":-1}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"threshold\":1.5}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"lease\":1}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"lease\":false}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"embedder\":\"\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"embedding\":[1,2]}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"embedding\":\"!!\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"embedding\":\"AAAAAAAAAAA=\"}",
        "{\"model\":\"m\",\"prompt\":\"p\",\"embedding\":1}",
    };
    int n_taken = 0, n_valid = 0;
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        sc_request_t r;
        char err[256];
        n_taken += agrees(bodies[i]);
        if (sc_request_parse(&r, SC_REQ_LOOKUP, bodies[i], strlen(bodies[i]), err, sizeof(err)) ==
            0) {
            n_valid++;
            sc_request_free(&r);
        }
    }
    /* Of the valid ones, the fast path leaves only 19-digit integers (two),
     * the escaped key and the embedding as an array to jansson. */
    ck_assert_int_eq(n_valid, 21);
    ck_assert_int_eq(n_taken, n_valid - 4);
    refused("{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":1,\"a\":1}}");
    refused("{\"model\":\"m\",\"prompt\":\"\\ud800\"}");
    refused("{\"model\":\"m\",\"prompt\":\"p\",\"temperature\":0}");
}
END_TEST

START_TEST(limits_decline_to_jansson)
{
    /* 40 levels of nesting: past the fast path's depth, within jansson's */
    sc_buf_t b = {0};
    sc_buf_puts(&b, "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{\"a\":");
    for (int i = 0; i < 40; i++)
        sc_buf_puts(&b, "[");
    for (int i = 0; i < 40; i++)
        sc_buf_puts(&b, "]");
    sc_buf_puts(&b, "}}");
    ck_assert_int_eq(agrees(b.data), 0);
    /* an object of 70 members: sorted by jansson */
    sc_buf_reset(&b);
    sc_buf_puts(&b, "{\"model\":\"m\",\"prompt\":\"p\",\"params\":{");
    for (int i = 0; i < 70; i++)
        sc_buf_printf(&b, "%s\"k%d\":%d", i ? "," : "", 70 - i, i);
    sc_buf_puts(&b, "}}");
    ck_assert_int_eq(agrees(b.data), 0);
    /* a long conversation: past the tape's stack nodes, still fast */
    sc_buf_reset(&b);
    sc_buf_puts(&b, "{\"model\":\"m\",\"messages\":[");
    for (int i = 0; i < 300; i++)
        sc_buf_printf(&b, "%s{\"role\":\"%s\",\"content\":\"turn %d\"}", i ? "," : "",
                      i % 2 ? "assistant" : "user", i);
    sc_buf_puts(&b, "]}");
    ck_assert_int_eq(agrees(b.data), 1);
    sc_buf_free(&b);
}
END_TEST

START_TEST(fuzzing_corpus_agrees)
{
    const char *dirs[] = {"tests/fuzz/corpus/request", "tests/fuzz/regress/request"};
    int files = 0;
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        struct dirent *de;
        while (dir && (de = readdir(dir))) {
            char path[512];
            sc_buf_t body = {0};
            if (de->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", dirs[d], de->d_name);
            if (sc_read_file(path, 1 << 20, &body) == 0) {
                agrees_n(body.data ? body.data : "", body.len);
                files++;
            }
            sc_buf_free(&body);
        }
        if (dir)
            closedir(dir);
    }
    ck_assert_int_ge(files, 3);
}
END_TEST

/* ---- generated bodies ----------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void ws(sc_buf_t *b)
{
    static const char *const w[] = {"", "", "", " ", "\n  ", "\t", "\r\n"};
    sc_buf_puts(b, w[rnd(7)]);
}

/* One code point, encoded raw or escaped; now and then something invalid. */
static void gen_char(sc_buf_t *b)
{
    static const uint32_t picks[] = {'a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', 0x01,
                                     0x1f, 0x7f, 0xe9, 0x3b1, 0x65e5, 0xfffd, 0x1f600, 0x10ffff};
    uint32_t u = rnd(4) ? 'a' + rnd(26) : picks[rnd(sizeof(picks) / sizeof(picks[0]))];
    int how = (int)rnd(8);
    if (rnd(200) == 0) { /* invalid: \u0000, a lone surrogate, a bad byte, a bad escape */
        static const char *const bad[] = {"\\u0000", "\\ud800", "\\udfff", "\xff", "\xc0\xaf",
                                          "\\q",     "\x02",    "\\u00g0", "\xe2\x82"};
        sc_buf_puts(b, bad[rnd(9)]);
        return;
    }
    if (how == 0 && u >= 0x10000) {
        sc_buf_printf(b, "\\u%04x\\u%04X", 0xd800 + ((u - 0x10000) >> 10),
                      0xdc00 + ((u - 0x10000) & 0x3ff));
    } else if (how <= 1 || u < 0x20 || u == '"' || u == '\\') {
        const char *s = u == '"' ? "\\\"" : u == '\\' ? "\\\\" : u == '\n' ? "\\n" : NULL;
        if (s && how)
            sc_buf_puts(b, s);
        else if (u < 0x10000)
            sc_buf_printf(b, how & 1 ? "\\u%04x" : "\\u%04X", u);
        else
            sc_buf_printf(b, "\\u%04x\\u%04x", 0xd800 + ((u - 0x10000) >> 10),
                          0xdc00 + ((u - 0x10000) & 0x3ff));
    } else if (u == '/' && how == 2) {
        sc_buf_puts(b, "\\/");
    } else {
        char o[4];
        int n = u < 0x80 ? 1 : u < 0x800 ? 2 : u < 0x10000 ? 3 : 4;
        if (n == 1)
            o[0] = (char)u;
        else if (n == 2)
            o[0] = (char)(0xc0 | u >> 6), o[1] = (char)(0x80 | (u & 0x3f));
        else if (n == 3)
            o[0] = (char)(0xe0 | u >> 12), o[1] = (char)(0x80 | (u >> 6 & 0x3f)),
            o[2] = (char)(0x80 | (u & 0x3f));
        else
            o[0] = (char)(0xf0 | u >> 18), o[1] = (char)(0x80 | (u >> 12 & 0x3f)),
            o[2] = (char)(0x80 | (u >> 6 & 0x3f)), o[3] = (char)(0x80 | (u & 0x3f));
        sc_buf_append(b, o, (size_t)n);
    }
}

static void gen_string(sc_buf_t *b, int max)
{
    int n = (int)rnd((uint32_t)max + 1);
    sc_buf_puts(b, "\"");
    for (int i = 0; i < n; i++)
        gen_char(b);
    sc_buf_puts(b, "\"");
}

static void gen_number(sc_buf_t *b)
{
    static const char *const forms[] = {
        "0",     "-0",     "1",     "-7",      "42",    "0.5",    "-0.0",  "1.0",
        "1e0",   "1E+2",   "2.5e-3", "100.00", "1e400", "-1e400", "1e-400", "0.1",
        "0.7",   "3.14159", "123456789012345678", "1234567890123456789", "99999999999999999999",
        "9007199254740993", "1.7976931348623157e308", "4.9e-324", "01", "1.", "-", "+1"};
    if (rnd(3))
        sc_buf_printf(b, "%s%u", rnd(4) ? "" : "-", rnd(1000));
    else
        sc_buf_puts(b, forms[rnd(sizeof(forms) / sizeof(forms[0]))]);
}

static void gen_key(sc_buf_t *b)
{
    static const char *const keys[] = {"\"a\"", "\"b\"", "\"ab\"", "\"\"", "\"user\"",
                                       "\"stream\"", "\"temperature\"", "\"content\"",
                                       "\"\\u0061\"", "\"\xc3\xa9\"", "\"type\"", "\"text\""};
    sc_buf_puts(b, keys[rnd(sizeof(keys) / sizeof(keys[0]))]);
}

static void gen_value(sc_buf_t *b, int depth)
{
    uint32_t kind = rnd(depth > 3 ? 5 : 7);
    ws(b);
    if (kind == 0) {
        static const char *const lit[] = {"null", "true", "false"};
        sc_buf_puts(b, lit[rnd(3)]);
    } else if (kind <= 2) {
        gen_number(b);
    } else if (kind <= 4) {
        gen_string(b, 6);
    } else if (kind == 5) {
        int n = (int)rnd(4);
        sc_buf_puts(b, "[");
        for (int i = 0; i < n; i++) {
            if (i)
                sc_buf_puts(b, ",");
            gen_value(b, depth + 1);
        }
        ws(b);
        sc_buf_puts(b, "]");
    } else {
        int n = (int)rnd(4);
        sc_buf_puts(b, "{");
        for (int i = 0; i < n; i++) {
            if (i)
                sc_buf_puts(b, ",");
            ws(b);
            gen_key(b);
            ws(b);
            sc_buf_puts(b, ":");
            gen_value(b, depth + 1);
        }
        ws(b);
        sc_buf_puts(b, "}");
    }
    ws(b);
}

static void gen_messages(sc_buf_t *b)
{
    static const char *const roles[] = {"\"user\"", "\"assistant\"", "\"system\"", "\"tool\"",
                                        "\"\"", "\"u\\u0073er\""};
    int n = (int)rnd(4) + (rnd(20) != 0);
    sc_buf_puts(b, "[");
    for (int i = 0; i < n; i++) {
        sc_buf_puts(b, i ? "," : "");
        ws(b);
        sc_buf_puts(b, "{\"role\":");
        sc_buf_puts(b, roles[rnd(10) ? rnd(2) : rnd(6)]);
        uint32_t c = rnd(6);
        if (c <= 2) {
            sc_buf_puts(b, ",\"content\":");
            gen_string(b, 12);
        } else if (c == 3) {
            sc_buf_puts(b, ",\"content\":[{\"type\":\"text\",\"text\":");
            gen_string(b, 5);
            sc_buf_puts(b, "},");
            gen_value(b, 2);
            sc_buf_puts(b, rnd(2) ? ",{\"type\":\"text\",\"text\":\"two\"}]" : "]");
        } else if (c == 4) {
            sc_buf_puts(b, ",\"content\":null,\"name\":");
            gen_value(b, 2);
        }
        sc_buf_puts(b, "}");
    }
    sc_buf_puts(b, "]");
}

/* A lookup body: the usual fields in a random order with random values,
 * now and then a wrong type, an unknown field or a duplicate. */
static void gen_body(sc_buf_t *b)
{
    int order[12], n = 0;
    for (int i = 0; i < 12; i++)
        if (i == 2 || rnd(3) == 0)
            order[n++] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rnd((uint32_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    int prompt = (int)rnd(2);
    sc_buf_puts(b, "{");
    for (int k = 0; k < n; k++) {
        sc_buf_puts(b, k ? "," : "");
        ws(b);
        switch (rnd(40) ? order[k] : (int)rnd(12)) { /* now and then a duplicate */
        case 0:
            sc_buf_puts(b, "\"namespace\":");
            sc_buf_puts(b, rnd(5) ? "\"ns-1.a_b\"" : rnd(2) ? "\"bad ns\"" : "\"\\u0041z\"");
            break;
        case 1:
            sc_buf_puts(b, "\"tenant\":");
            gen_string(b, 8);
            break;
        case 2:
            sc_buf_puts(b, "\"model\":");
            if (rnd(10))
                gen_string(b, 6);
            else
                gen_value(b, 2);
            break;
        case 3:
        case 4:
            if (prompt) {
                sc_buf_puts(b, "\"prompt\":");
                gen_string(b, 16);
            } else {
                sc_buf_puts(b, "\"messages\":");
                gen_messages(b);
            }
            prompt = rnd(8) ? -1 : !prompt; /* sometimes both, or neither */
            break;
        case 5:
            sc_buf_puts(b, "\"params\":");
            if (rnd(8))
                sc_buf_puts(b, "{\"temperature\":0,");
            else
                sc_buf_puts(b, "{");
            gen_key(b);
            sc_buf_puts(b, ":");
            gen_value(b, 1);
            sc_buf_puts(b, "}");
            break;
        case 6:
            sc_buf_puts(b, "\"max_age_s\":");
            gen_number(b);
            break;
        case 7:
            sc_buf_puts(b, "\"threshold\":");
            sc_buf_puts(b, rnd(3) ? "0.9" : rnd(2) ? "-1" : "1.0000001");
            break;
        case 8:
            sc_buf_puts(b, rnd(2) ? "\"lease\":true" : "\"lease\":0");
            break;
        case 9:
            sc_buf_puts(b, "\"embedder\":");
            gen_string(b, 4);
            break;
        case 10:
            sc_buf_puts(b, rnd(3) ? "\"embedding\":\"AACAPwAAAEA=\""
                                  : "\"embedding\":\"AAAAAAAAAAA=\"");
            break;
        default:
            sc_buf_puts(b, rnd(2) ? "\"temperature\":0" : "\"prompt\":\"dup\"");
        }
        ws(b);
    }
    if (prompt >= 0 && rnd(4)) { /* the semantic body when the shuffle left it out */
        sc_buf_puts(b, n ? "," : "");
        sc_buf_puts(b, "\"prompt\":");
        gen_string(b, 10);
    }
    sc_buf_puts(b, "}");
}

/* Breaks a valid body: a byte dropped, changed, inserted or cut off. */
static void mutate(sc_buf_t *b)
{
    static const char bytes[] = "{}[]\",:\\ 0-.eE\x00\x80\xc3";
    if (!b->len)
        return;
    size_t at = rnd((uint32_t)b->len);
    switch (rnd(4)) {
    case 0:
        memmove(b->data + at, b->data + at + 1, b->len - at - 1);
        b->len--;
        break;
    case 1:
        b->data[at] = bytes[rnd(sizeof(bytes) - 1)];
        break;
    case 2:
        sc_buf_reserve(b, 1);
        memmove(b->data + at + 1, b->data + at, b->len - at);
        b->data[at] = bytes[rnd(sizeof(bytes) - 1)];
        b->len++;
        break;
    default:
        b->len = at;
    }
}

START_TEST(generated_bodies_agree)
{
    int total = 200000, taken_n = 0, jansson_valid = 0;
    sc_buf_t b = {0};
    for (int i = 0; i < total; i++) {
        sc_buf_reset(&b);
        gen_body(&b);
        if (i % 4 == 3)
            mutate(&b);
        taken_n += agrees_n(b.data, b.len);
        sc_request_t r;
        char err[256];
        if (sc_request_parse(&r, SC_REQ_LOOKUP, b.data, b.len, err, sizeof(err)) == 0) {
            jansson_valid++;
            sc_request_free(&r);
        }
    }
    sc_buf_free(&b);
    printf("generated: %d bodies, %d valid, %d taken by the fast path\n", total, jansson_valid,
           taken_n);
    /* the generator makes both kinds, and the fast path takes most valid ones */
    ck_assert_int_gt(jansson_valid, total / 10);
    ck_assert_int_lt(jansson_valid, total * 9 / 10);
    ck_assert_int_gt(taken_n, jansson_valid * 7 / 10);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("request_fast");
    TCase *tc = tcase_create("differential");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, common_shapes_take_the_fast_path);
    tcase_add_test(tc, edge_cases_decline_or_agree);
    tcase_add_test(tc, limits_decline_to_jansson);
    tcase_add_test(tc, fuzzing_corpus_agrees);
    tcase_add_test(tc, generated_bodies_agree);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
