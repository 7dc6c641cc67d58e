/* tests/cache/request.c -- canonicalization, exact keys, scopes, semantic
 * text and request validation (cache/request.c). */
#include "../../cache/request.c"

#include "testutil.h"

static sc_request_t parse_ok(sc_req_kind_t kind, const char *body)
{
    sc_request_t r;
    char err[256] = "";
    int rc = sc_request_parse(&r, kind, body, strlen(body), err, sizeof(err));
    ck_assert_msg(rc == 0, "parse failed for %s: %s", body, err);
    return r;
}

static void key_of(const char *body, uint8_t key[16], uint64_t *scope)
{
    sc_request_t r = parse_ok(SC_REQ_LOOKUP, body);
    memcpy(key, r.key, 16);
    if (scope)
        *scope = r.scope;
    sc_request_free(&r);
}

static void assert_same_key(const char *a, const char *b)
{
    uint8_t ka[16], kb[16];
    key_of(a, ka, NULL);
    key_of(b, kb, NULL);
    ck_assert_msg(memcmp(ka, kb, 16) == 0, "expected the same key:\n  %s\n  %s", a, b);
}

static void assert_diff_key(const char *a, const char *b)
{
    uint8_t ka[16], kb[16];
    key_of(a, ka, NULL);
    key_of(b, kb, NULL);
    ck_assert_msg(memcmp(ka, kb, 16) != 0, "expected different keys:\n  %s\n  %s", a, b);
}

static void canon_is(const char *json, const char *want)
{
    json_error_t e;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &e);
    ck_assert_ptr_nonnull(v);
    sc_buf_t b = {0};
    ck_assert_int_eq(sc_canonical_json(v, &b), 0);
    ck_assert_str_eq(b.data, want);
    sc_buf_free(&b);
    json_decref(v);
}

#define BASE                                                                                       \
    "\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "                    \
    "brief.\"},{\"role\":\"user\",\"content\":\"Capital of France?\"}]"

START_TEST(canonical_sorts_keys_and_strips_space)
{
    canon_is("{ \"b\" : 1 , \"a\" : [ 1 , { \"d\":null, \"c\": true } ] }",
             "{\"a\":[1,{\"c\":true,\"d\":null}],\"b\":1}");
    canon_is("\"caf\\u00e9 \\\"q\\\" \\n\"", "\"caf\xc3\xa9 \\\"q\\\" \\n\"");
}
END_TEST

START_TEST(canonical_numbers_agree)
{
    canon_is("1", "1");
    canon_is("1.0", "1");
    canon_is("1e0", "1");
    canon_is("100.0", "100");
    canon_is("-0.0", "0");
    canon_is("0.1", "0.1");
    canon_is("0.7", "0.7");
    canon_is("1e300", "1e+300");
    canon_is("[2.5, -3.25e-5]", "[2.5,-3.25e-05]");
    canon_is("9007199254740993", "9007199254740993"); /* exact beyond 2^53 as integer */
}
END_TEST

START_TEST(equivalent_requests_share_a_key)
{
    assert_same_key(
        "{" BASE ",\"params\":{\"temperature\":0,\"top_p\":1}}",
        "{ \"params\" : { \"top_p\" : 1.0, \"temperature\" : 0.0 },"
        "\"messages\":[{\"content\":\"Be brief.\",\"role\":\"system\"},"
        "{\"content\":\"Capital of France?\",\"role\":\"user\"}],\"model\":\"gpt-4o\"}");
    /* Default namespace and tenant are the same as spelling them out. */
    assert_same_key("{" BASE "}", "{\"namespace\":\"default\",\"tenant\":\"\"," BASE "}");
    /* Absent params equal empty params. */
    assert_same_key("{" BASE "}", "{" BASE ",\"params\":{}}");
    /* Fields that never change the answer are left out. */
    assert_same_key("{" BASE ",\"params\":{\"temperature\":0}}",
                    "{" BASE ",\"params\":{\"temperature\":0,\"user\":\"u-123\",\"stream\":true,"
                    "\"stream_options\":{\"include_usage\":true},\"metadata\":{\"a\":\"b\"}}}");
    /* Lookup-only fields are not part of the key. */
    assert_same_key("{" BASE "}", "{" BASE ",\"max_age_s\":60}");
}
END_TEST

START_TEST(any_change_changes_the_key)
{
    const char *base = "{" BASE ",\"params\":{\"temperature\":0}}";
    const char *variants[] = {
        /* messages */
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief!\"},{\"role\":\"user\",\"content\":\"Capital of "
        "France?\"}],\"params\":{\"temperature\":0}}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"content\":\"Capital of "
        "Spain?\"}],\"params\":{\"temperature\":0}}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"developer\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"content\":\"Capital of "
        "France?\"}],\"params\":{\"temperature\":0}}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"name\":\"bob\",\"content\":\"Capital of "
        "France?\"}],\"params\":{\"temperature\":0}}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Capital of "
        "France?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:x\"}}]}],\"params\":{"
        "\"temperature\":0}}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Capital of "
        "France?\"}],\"params\":{\"temperature\":0}}",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":"
        "\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"},{\"role\":\"user\",\"content\":"
        "\"Capital of France?\"}],\"params\":{\"temperature\":0}}",
        /* model, namespace, tenant */
        "{\"model\":\"gpt-4o-mini\","
        "\"messages\":[{\"role\":\"system\",\"content\":\"Be "
        "brief.\"},{\"role\":\"user\",\"content\":\"Capital of "
        "France?\"}],\"params\":{\"temperature\":0}}",
        "{\"namespace\":\"other\"," BASE ",\"params\":{\"temperature\":0}}",
        "{\"tenant\":\"acme\"," BASE ",\"params\":{\"temperature\":0}}",
        /* every parameter */
        "{" BASE ",\"params\":{\"temperature\":0.2}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"top_p\":0.9}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"max_tokens\":10}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"seed\":7}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"stop\":[\"\\n\"]}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"n\":2}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"tools\":[{\"type\":\"function\",\"function\":{"
                 "\"name\":\"f\"}}]}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"tool_choice\":\"auto\"}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"response_format\":{\"type\":\"json_object\"}}}",
        "{" BASE ",\"params\":{\"temperature\":0,\"some_future_param\":true}}",
        "{" BASE ",\"params\":{}}",
    };
    for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++)
        assert_diff_key(base, variants[i]);
    /* prompt form differs from the chat form of the same text */
    assert_diff_key("{\"model\":\"m\",\"prompt\":\"hi\"}",
                    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
}
END_TEST

START_TEST(scope_excludes_only_the_final_user_text)
{
    uint8_t k1[16], k2[16];
    uint64_t s1, s2, s3, s4, s5;
    key_of("{" BASE "}", k1, &s1);
    key_of("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
           "{\"role\":\"user\",\"content\":\"What is France's capital?\"}]}",
           k2, &s2);
    ck_assert_uint_eq(s1, s2);
    ck_assert(memcmp(k1, k2, 16) != 0);
    key_of("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\",\"content\":\"Be verbose.\"},"
           "{\"role\":\"user\",\"content\":\"Capital of France?\"}]}",
           k2, &s3);
    ck_assert_uint_ne(s1, s3);
    key_of("{\"tenant\":\"t2\"," BASE "}", k2, &s4);
    ck_assert_uint_ne(s1, s4);
    key_of("{" BASE ",\"params\":{\"temperature\":1}}", k2, &s5);
    ck_assert_uint_ne(s1, s5);
}
END_TEST

START_TEST(semantic_text_is_the_final_user_message)
{
    sc_request_t r = parse_ok(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"hello there\"}");
    ck_assert_str_eq(r.text.data, "hello there");
    sc_request_free(&r);
    r = parse_ok(SC_REQ_LOOKUP, "{" BASE "}");
    ck_assert_str_eq(r.text.data, "Capital of France?");
    sc_request_free(&r);
    r = parse_ok(SC_REQ_LOOKUP,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
                 "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{}},"
                 "{\"type\":\"text\",\"text\":\"b\"}]}]}");
    ck_assert_str_eq(r.text.data, "a\nb");
    sc_request_free(&r);
    /* A tool-result turn has no semantic text. */
    r = parse_ok(SC_REQ_LOOKUP,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":\"42\"}]}");
    ck_assert_uint_eq(r.text.len, 0);
    sc_request_free(&r);
    r = parse_ok(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"  \\n\\t \"}");
    ck_assert_uint_eq(r.text.len, 0);
    sc_request_free(&r);
}
END_TEST

START_TEST(store_fields_are_decoded)
{
    sc_request_t r = parse_ok(
        SC_REQ_STORE, "{\"model\":\"m\",\"prompt\":\"p\",\"response\":{\"a\":1},"
                      "\"ttl_s\":60,\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34}}");
    ck_assert_int_eq(r.has_ttl, 1);
    ck_assert_int_eq(r.ttl_s, 60);
    ck_assert_uint_eq(r.prompt_tokens, 12);
    ck_assert_uint_eq(r.completion_tokens, 34);
    ck_assert(json_is_object(r.response));
    sc_request_free(&r);
}
END_TEST

static void assert_invalid(sc_req_kind_t kind, const char *body, const char *needle)
{
    sc_request_t r;
    char err[256] = "";
    int rc = sc_request_parse(&r, kind, body, strlen(body), err, sizeof(err));
    ck_assert_msg(rc == SC_EINVAL, "accepted invalid request %s", body);
    ck_assert_msg(strstr(err, needle), "error for %s is '%s', expected to mention '%s'", body, err,
                  needle);
}

START_TEST(invalid_requests_are_refused_with_a_reason)
{
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":", "not valid JSON");
    assert_invalid(SC_REQ_LOOKUP, "[1,2]", "JSON object");
    assert_invalid(SC_REQ_LOOKUP, "{\"prompt\":\"x\"}", "\"model\" is required");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":5,\"prompt\":\"x\"}", "\"model\" must be");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"\",\"prompt\":\"x\"}", "\"model\" must be");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\"}", "\"prompt\" or \"messages\" is required");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"x\",\"messages\":[]}", "not both");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"messages\":[]}", "non-empty array");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "role");
    assert_invalid(SC_REQ_LOOKUP,
                   "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", "content");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"x\",\"temperature\":0}",
                   "unknown field 'temperature'");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"x\",\"params\":[]}",
                   "\"params\" must be");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"model\":\"n\",\"prompt\":\"x\"}",
                   "duplicate");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"x\",\"namespace\":\"a b\"}",
                   "namespace");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"x\",\"max_age_s\":-1}",
                   "max_age_s");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1}",
                   "unknown field 'response'");
    assert_invalid(SC_REQ_STORE, "{\"model\":\"m\",\"prompt\":\"x\"}", "\"response\" is required");
    assert_invalid(SC_REQ_STORE, "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1,\"ttl_s\":-5}",
                   "ttl_s");
    assert_invalid(SC_REQ_STORE, "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1,\"ttl_s\":1.5}",
                   "ttl_s");
    assert_invalid(
        SC_REQ_STORE,
        "{\"model\":\"m\",\"prompt\":\"x\",\"response\":1,\"usage\":{\"prompt_tokens\":-1}}",
        "usage");
    assert_invalid(SC_REQ_LOOKUP, "{\"model\":\"m\",\"prompt\":\"\xff\xfe\"}", "not valid JSON");
}
END_TEST

START_TEST(deep_nesting_is_refused_not_crashed)
{
    size_t depth = 10000;
    char *body = malloc(depth * 2 + 64);
    size_t n = (size_t)sprintf(body, "{\"model\":\"m\",\"prompt\":\"x\",\"params\":{\"a\":");
    for (size_t i = 0; i < depth; i++)
        body[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        body[n++] = ']';
    n += (size_t)sprintf(body + n, "}}");
    sc_request_t r;
    char err[256];
    ck_assert_int_eq(sc_request_parse(&r, SC_REQ_LOOKUP, body, n, err, sizeof(err)), SC_EINVAL);
    free(body);
}
END_TEST

/* Keys and scopes are what stored entries are found by: if a change to the
 * canonical form altered them, every cache would silently empty on upgrade.
 * These values were produced by the release before the canonicalizer was
 * last optimized (f0bf81c). */
START_TEST(keys_and_scopes_are_stable_across_releases)
{
    static const struct {
        const char *body, *key;
        uint64_t scope;
    } cases[] = {
        {"{\"namespace\":\"bench\",\"model\":\"bench-model\",\"params\":{\"temperature\":0},"
         "\"prompt\":\"bench question number 1\"}",
         "88e21391b5832ba67d8d35efcdc1c7c2", 0xa00d30d04545eb34ull},
        {"{\"namespace\":\"ns\",\"tenant\":\"t1\",\"model\":\"gpt-x\",\"params\":{\"max_tokens\":-"
         "42,"
         "\"seed\":9223372036854775807,\"stop\":[\"a\",\"b\"],\"z\":{\"b\":1,\"a\":[true,null,1.5]}"
         "},"
         "\"messages\":[{\"role\":\"system\",\"content\":\"Be "
         "brief.\"},{\"role\":\"user\",\"content\":\"hi\"},"
         "{\"role\":\"assistant\",\"content\":\"hello\"},"
         "{\"role\":\"user\",\"content\":\"What is 2+2?\",\"name\":\"bob\"}]}",
         "290a829b7b8d024b6caa97457c7a1936", 0xa3bb30cc54421ccbull},
        {"{\"model\":\"m\",\"params\":{\"n\":-9223372036854775808},"
         "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]}",
         "e5bb17df97be7115fcbbce23598533ae", 0xadca023720f96633ull},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t key[16];
        uint64_t scope;
        char hex[33];
        key_of(cases[i].body, key, &scope);
        for (int j = 0; j < 16; j++)
            snprintf(hex + 2 * j, 3, "%02x", key[j]);
        ck_assert_str_eq(hex, cases[i].key);
        ck_assert_msg(scope == cases[i].scope, "case %zu: scope %016llx", i,
                      (unsigned long long)scope);
    }
}
END_TEST

START_TEST(from_json_equals_parse_and_takes_ownership)
{
    const char *body = "{" BASE ",\"params\":{\"temperature\":0}}";
    sc_request_t a = parse_ok(SC_REQ_LOOKUP, body), b;
    char err[256] = "";
    json_t *root = json_loads(body, 0, NULL);
    ck_assert_int_eq(sc_request_from_json(&b, SC_REQ_LOOKUP, root, err, sizeof(err)), 0);
    ck_assert_ptr_eq(b.root, root);
    ck_assert(memcmp(a.key, b.key, 16) == 0);
    ck_assert_uint_eq(a.scope, b.scope);
    ck_assert_str_eq(b.text.data, "Capital of France?");
    sc_request_free(&a);
    sc_request_free(&b);
    /* On failure the object is released too (the leak checkers see it). */
    ck_assert_int_eq(
        sc_request_from_json(&b, SC_REQ_LOOKUP, json_loads("[1]", 0, NULL), err, sizeof(err)),
        SC_EINVAL);
    ck_assert_ptr_null(b.root);
    ck_assert_int_eq(sc_request_from_json(&b, SC_REQ_LOOKUP, NULL, err, sizeof(err)), SC_EINVAL);
}
END_TEST

/* The proxy's API name is hashed beside "params": a native request (or a
 * parameter) spelling the same name cannot reach a proxy key. */
START_TEST(api_member_is_outside_params)
{
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"hi\"}]", 0, NULL);
    json_t *forged = json_loads("{\"api\":\"openai.chat\"}", 0, NULL);
    sc_canon_req_t c = {.ns = "default",
                        .ns_len = 7,
                        .tenant = "",
                        .model = "m",
                        .model_len = 1,
                        .body_name = "messages",
                        .body = msgs};
    uint8_t native[16], proxy[16], forged_key[16], again[16];
    uint64_t s_native, s_proxy, s_forged;
    ck_assert_int_eq(sc_canon_hash(&c, native, &s_native), 0);
    c.api = "openai.chat";
    ck_assert_int_eq(sc_canon_hash(&c, proxy, &s_proxy), 0);
    ck_assert_int_eq(sc_canon_hash(&c, again, NULL), 0);
    ck_assert(memcmp(proxy, again, 16) == 0);
    c.api = NULL;
    c.params = forged;
    ck_assert_int_eq(sc_canon_hash(&c, forged_key, &s_forged), 0);
    ck_assert(memcmp(native, proxy, 16) != 0);
    ck_assert(memcmp(forged_key, proxy, 16) != 0);
    ck_assert_uint_ne(s_native, s_proxy);
    ck_assert_uint_ne(s_forged, s_proxy);
    /* The native path is sc_canon_hash with no api. */
    sc_request_t r = parse_ok(SC_REQ_LOOKUP, "{\"model\":\"m\",\"messages\":"
                                             "[{\"role\":\"user\",\"content\":\"hi\"}]}");
    ck_assert(memcmp(r.key, native, 16) == 0);
    ck_assert_uint_eq(r.scope, s_native);
    sc_request_free(&r);
    json_decref(msgs);
    json_decref(forged);
}
END_TEST

START_TEST(namespace_names_are_checked)
{
    ck_assert(sc_request_namespace_valid("a-b_c.9", 7));
    ck_assert(!sc_request_namespace_valid("", 0));
    ck_assert(!sc_request_namespace_valid("a b", 3));
    ck_assert(!sc_request_namespace_valid("a/b", 3));
    char big[SC_MAX_NAMESPACE + 1];
    memset(big, 'x', sizeof(big));
    ck_assert(sc_request_namespace_valid(big, SC_MAX_NAMESPACE));
    ck_assert(!sc_request_namespace_valid(big, SC_MAX_NAMESPACE + 1));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("request");
    TCase *tc = tcase_create("canonical");
    tcase_add_test(tc, canonical_sorts_keys_and_strips_space);
    tcase_add_test(tc, canonical_numbers_agree);
    tcase_add_test(tc, equivalent_requests_share_a_key);
    tcase_add_test(tc, any_change_changes_the_key);
    tcase_add_test(tc, scope_excludes_only_the_final_user_text);
    tcase_add_test(tc, semantic_text_is_the_final_user_message);
    tcase_add_test(tc, store_fields_are_decoded);
    tcase_add_test(tc, invalid_requests_are_refused_with_a_reason);
    tcase_add_test(tc, deep_nesting_is_refused_not_crashed);
    tcase_add_test(tc, keys_and_scopes_are_stable_across_releases);
    tcase_add_test(tc, from_json_equals_parse_and_takes_ownership);
    tcase_add_test(tc, api_member_is_outside_params);
    tcase_add_test(tc, namespace_names_are_checked);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
