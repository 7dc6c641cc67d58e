/* tests/cache/proxy_request.c -- mapping OpenAI chat / responses and Anthropic
 * messages bodies onto keys, scopes and semantic text, and parsing the proxy's
 * header controls (cache/proxy_request.c). Bodies are written with single
 * quotes, turned into double quotes before parsing, to keep them readable. */
#define _GNU_SOURCE /* strdup */
#include "../../cache/proxy_request.c"

#include "proxy_bodies.h"
#include "testutil.h"

#define CHAT SC_API_OPENAI_CHAT
#define RESP SC_API_OPENAI_RESPONSES
#define ANTH SC_API_ANTHROPIC_MESSAGES

static int parse_with(sc_proxy_request_t *r, sc_api_t api, const char *body,
                      const sc_proxy_ctx_t *ctx, char *err, size_t cap)
{
    char *b = dq(body);
    err[0] = '\0';
    int rc = sc_proxy_request_parse(r, api, b, strlen(b), ctx, err, cap);
    free(b);
    return rc;
}

static sc_proxy_request_t parse_ok(sc_api_t api, const char *body)
{
    sc_proxy_request_t r;
    char err[256];
    int rc = parse_with(&r, api, body, &ctx_t1, err, sizeof(err));
    ck_assert_msg(rc == 0, "parse failed (%d) for %s: %s", rc, body, err);
    return r;
}

typedef struct {
    uint8_t key[16];
    uint64_t scope;
} ks_t;

static ks_t ks(sc_api_t api, const char *body)
{
    sc_proxy_request_t r = parse_ok(api, body);
    ks_t k;
    memcpy(k.key, r.req.key, 16);
    k.scope = r.req.scope;
    sc_proxy_request_free(&r);
    return k;
}

static void same_key(sc_api_t api, const char *a, const char *b)
{
    ks_t x = ks(api, a), y = ks(api, b);
    ck_assert_msg(memcmp(x.key, y.key, 16) == 0, "expected the same key:\n  %s\n  %s", a, b);
    ck_assert_msg(x.scope == y.scope, "expected the same scope:\n  %s\n  %s", a, b);
}

/* 'scope_too': whether the scope must differ as well. */
static void diff_key(sc_api_t api, const char *a, const char *b, int scope_too)
{
    ks_t x = ks(api, a), y = ks(api, b);
    ck_assert_msg(memcmp(x.key, y.key, 16) != 0, "expected different keys:\n  %s\n  %s", a, b);
    if (scope_too)
        ck_assert_msg(x.scope != y.scope, "expected different scopes:\n  %s\n  %s", a, b);
    else
        ck_assert_msg(x.scope == y.scope, "expected the same scope:\n  %s\n  %s", a, b);
}

static void assert_rc(sc_api_t api, const char *body, int want, const char *needle)
{
    sc_proxy_request_t r;
    char err[256];
    int rc = parse_with(&r, api, body, &ctx_t1, err, sizeof(err));
    ck_assert_msg(rc == want, "%s: rc %d, want %d (%s)", body, rc, want, err);
    ck_assert_msg(strstr(err, needle), "error for %s is '%s', expected to mention '%s'", body, err,
                  needle);
    ck_assert_ptr_null(r.req.root);
    sc_proxy_request_free(&r); /* harmless after a failure */
}

#define MSGS                                                                                       \
    "'messages':[{'role':'system','content':'Be brief.'},{'role':'user','content':'Capital of "    \
    "France?'}]"
#define CHAT_BASE "{'model':'gpt-4o'," MSGS
#define ANTH_MSGS "'messages':[{'role':'user','content':'Capital of France?'}]"
#define ANTH_BASE "{'model':'claude-x','max_tokens':100,'system':'Be brief.'," ANTH_MSGS
#define RESP_BASE "{'model':'gpt-4o','instructions':'Be brief.','input':'Capital of France?'"

START_TEST(delivery_fields_do_not_change_the_key)
{
    same_key(CHAT, CHAT_BASE "}",
             CHAT_BASE
             ",'stream':true,'stream_options':{'include_usage':true},'user':'u1',"
             "'metadata':{'a':'b'},'store':true,'service_tier':'flex','request_id':'r1',"
             "'safety_identifier':'s','prompt_cache_key':'k','prompt_cache_retention':'24h'}");
    same_key(CHAT, CHAT_BASE ",'stream':false}", CHAT_BASE ",'stream':true}");
    same_key(ANTH, ANTH_BASE "}",
             ANTH_BASE ",'stream':true,'metadata':{'user_id':'end-user-7'},'service_tier':'auto'}");
    same_key(RESP, RESP_BASE "}",
             RESP_BASE ",'stream':true,'store':false,'metadata':{'x':'y'},'user':'u',"
                       "'service_tier':'default'}");
}
END_TEST

START_TEST(answer_fields_change_key_and_scope)
{
    const char *chat[] = {
        CHAT_BASE ",'temperature':0.2}",
        CHAT_BASE ",'n':2}",
        CHAT_BASE ",'seed':7}",
        CHAT_BASE ",'max_tokens':10}",
        CHAT_BASE ",'logprobs':true}",
        CHAT_BASE ",'tool_choice':'auto'}",
        CHAT_BASE ",'response_format':{'type':'json_object'}}",
        CHAT_BASE ",'tools':[{'type':'function','function':{'name':'f'}}]}",
        CHAT_BASE ",'some_future_param':1}",
        "{'model':'gpt-4o-mini'," MSGS "}",
        "{'model':'gpt-4o','messages':[{'role':'system','content':'Be verbose.'},"
        "{'role':'user','content':'Capital of France?'}]}",
    };
    for (size_t i = 0; i < sizeof(chat) / sizeof(chat[0]); i++)
        diff_key(CHAT, CHAT_BASE "}", chat[i], 1);
    /* Anthropic's system and tools are parameters: key and scope. */
    diff_key(ANTH, ANTH_BASE "}",
             "{'model':'claude-x','max_tokens':100,'system':'Be verbose.'," ANTH_MSGS "}", 1);
    diff_key(ANTH, ANTH_BASE "}", ANTH_BASE ",'tools':[{'name':'f','input_schema':{}}]}", 1);
    diff_key(ANTH, ANTH_BASE "}", "{'model':'claude-x','max_tokens':100," ANTH_MSGS "}", 1);
    diff_key(ANTH, ANTH_BASE "}", ANTH_BASE ",'temperature':0}", 1);
    diff_key(RESP, RESP_BASE "}",
             "{'model':'gpt-4o','instructions':'Be verbose.','input':'Capital of France?'}", 1);
    diff_key(RESP, RESP_BASE "}", RESP_BASE ",'tools':[{'type':'web_search'}]}", 1);
}
END_TEST

START_TEST(final_user_text_changes_the_key_not_the_scope)
{
    diff_key(CHAT, CHAT_BASE "}",
             "{'model':'gpt-4o','messages':[{'role':'system','content':'Be brief.'},"
             "{'role':'user','content':'What is the capital of France?'}]}",
             0);
    diff_key(ANTH, ANTH_BASE "}",
             "{'model':'claude-x','max_tokens':100,'system':'Be brief.',"
             "'messages':[{'role':'user','content':'France: capital?'}]}",
             0);
    diff_key(RESP, RESP_BASE "}",
             "{'model':'gpt-4o','instructions':'Be brief.','input':'France capital'}", 0);
    /* Earlier turns are history: they change the scope. */
    diff_key(
        CHAT,
        "{'model':'m','messages':[{'role':'user','content':'a'},{'role':'assistant','content':'b'},"
        "{'role':'user','content':'c'}]}",
        "{'model':'m','messages':[{'role':'user','content':'x'},{'role':'assistant','content':'b'},"
        "{'role':'user','content':'c'}]}",
        1);
}
END_TEST

/* Beside the text, the final message's images stay in the scope: a question
 * about another picture is never a semantic match. */
START_TEST(scope_keeps_non_text_parts)
{
#define IMG(q, url)                                                                                \
    "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'" q "'},"           \
    "{'type':'image_url','image_url':{'url':'" url "'}}]}]}"
    diff_key(CHAT, IMG("What is this?", "data:a"), IMG("What is in this picture?", "data:a"), 0);
    diff_key(CHAT, IMG("What is this?", "data:a"), IMG("What is this?", "data:b"), 1);
#define AIMG(q, data)                                                                              \
    "{'model':'c','max_tokens':9,'messages':[{'role':'user','content':[{'type':'image',"           \
    "'source':{'type':'base64','media_type':'image/png','data':'" data                             \
    "'}},{'type':'text','text':'" q "'}]}]}"
    diff_key(ANTH, AIMG("Describe it", "AAAA"), AIMG("Describe this", "AAAA"), 0);
    diff_key(ANTH, AIMG("Describe it", "AAAA"), AIMG("Describe it", "BBBB"), 1);
}
END_TEST

START_TEST(apis_never_share_keys)
{
    ks_t chat = ks(CHAT, "{'model':'m','messages':[{'role':'user','content':'hi'}]}");
    ks_t anth = ks(ANTH, "{'model':'m','messages':[{'role':'user','content':'hi'}]}");
    ks_t resp = ks(RESP, "{'model':'m','input':[{'role':'user','content':'hi'}]}");
    ck_assert(memcmp(chat.key, anth.key, 16) != 0 && memcmp(chat.key, resp.key, 16) != 0 &&
              memcmp(anth.key, resp.key, 16) != 0);
    ck_assert(chat.scope != anth.scope && chat.scope != resp.scope && anth.scope != resp.scope);
    /* Nor with the native API's encoding of the same request. */
    sc_request_t n;
    char err[128];
    const char *native = "{\"model\":\"m\",\"namespace\":\"default\",\"tenant\":\"t1\","
                         "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    ck_assert_int_eq(sc_request_parse(&n, SC_REQ_LOOKUP, native, strlen(native), err, sizeof(err)),
                     0);
    ck_assert(memcmp(chat.key, n.key, 16) != 0);
    sc_request_free(&n);
    /* A client's own "api" field is an ordinary parameter. */
    ks_t forged =
        ks(CHAT,
           "{'model':'m','api':'anthropic.messages','messages':[{'role':'user','content':'hi'}]}");
    ck_assert(memcmp(forged.key, anth.key, 16) != 0 && memcmp(forged.key, chat.key, 16) != 0);
}
END_TEST

START_TEST(namespace_and_tenant_come_from_the_context)
{
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    sc_proxy_ctx_t ctxs[] = {
        {.ns = "default", .ns_len = 7, .tenant = "t1", .tenant_len = 2},
        {.ns = "other", .ns_len = 5, .tenant = "t1", .tenant_len = 2},
        {.ns = "default", .ns_len = 7, .tenant = "t2", .tenant_len = 2},
    };
    uint8_t keys[3][16];
    char err[256];
    for (int i = 0; i < 3; i++) {
        sc_proxy_request_t r;
        ck_assert_int_eq(
            sc_proxy_request_parse(&r, CHAT, body, strlen(body), &ctxs[i], err, sizeof(err)), 0);
        memcpy(keys[i], r.req.key, 16);
        ck_assert_int_eq((int)r.req.ns_len, (int)ctxs[i].ns_len);
        ck_assert(memcmp(r.req.ns, ctxs[i].ns, r.req.ns_len) == 0);
        ck_assert(memcmp(r.req.tenant, ctxs[i].tenant, 2) == 0);
        ck_assert_str_eq(r.req.model, "m");
        sc_proxy_request_free(&r);
    }
    ck_assert(memcmp(keys[0], keys[1], 16) != 0 && memcmp(keys[0], keys[2], 16) != 0);
    /* No context: the default namespace, no tenant. */
    sc_proxy_request_t r;
    ck_assert_int_eq(sc_proxy_request_parse(&r, CHAT, body, strlen(body), NULL, err, sizeof(err)),
                     0);
    ck_assert_str_eq(r.req.ns, "default");
    ck_assert_uint_eq(r.req.tenant_len, 0);
    sc_proxy_request_free(&r);
    sc_proxy_ctx_t bad = {.ns = "a b", .ns_len = 3};
    ck_assert_int_eq(sc_proxy_request_parse(&r, CHAT, body, strlen(body), &bad, err, sizeof(err)),
                     SC_EINVAL);
    ck_assert(strstr(err, "namespace"));
}
END_TEST

static void text_is(sc_api_t api, const char *body, const char *want)
{
    sc_proxy_request_t r = parse_ok(api, body);
    ck_assert_msg(strcmp(r.req.text.data ? r.req.text.data : "", want) == 0,
                  "text of %s is '%s', want '%s'", body, r.req.text.data ? r.req.text.data : "",
                  want);
    sc_proxy_request_free(&r);
}

START_TEST(semantic_text_is_the_final_user_text)
{
    text_is(CHAT, CHAT_BASE "}", "Capital of France?");
    text_is(CHAT,
            "{'model':'m','messages':[{'role':'user','content':[{'type':'text','text':'a'},"
            "{'type':'image_url','image_url':{'url':'x'}},{'type':'text','text':'b'}]}]}",
            "a\nb");
    text_is(
        CHAT,
        "{'model':'m','messages':[{'role':'user','content':'q'},{'role':'assistant','content':null,"
        "'tool_calls':[{'id':'1','type':'function','function':{'name':'f','arguments':'{}'}}]},"
        "{'role':'tool','tool_call_id':'1','content':'42'}]}",
        "");
    text_is(CHAT, "{'model':'m','messages':[{'role':'user','content':'  \\n '}]}", "");
    text_is(ANTH, ANTH_BASE "}", "Capital of France?");
    text_is(ANTH,
            "{'model':'c','messages':[{'role':'user','content':[{'type':'text','text':'Hello'},"
            "{'type':'text','text':'there','cache_control':{'type':'ephemeral'}}]}]}",
            "Hello\nthere");
    /* A final turn of tool results only: exact-only. */
    text_is(ANTH,
            "{'model':'c','messages':[{'role':'user','content':'weather?'},{'role':'assistant','"
            "content':"
            "[{'type':'tool_use','id':'t1','name':'w','input':{}}]},{'role':'user','content':"
            "[{'type':'tool_result','tool_use_id':'t1','content':'sunny'}]}]}",
            "");
    /* An assistant prefill has no text either. */
    text_is(ANTH,
            "{'model':'c','messages':[{'role':'user','content':'hi'},{'role':'assistant','content':"
            "'Sure'}]}",
            "");
    text_is(RESP, RESP_BASE "}", "Capital of France?");
    text_is(RESP,
            "{'model':'m','input':[{'type':'message','role':'user','content':[{'type':'input_text',"
            "'text':'a'},"
            "{'type':'input_image','image_url':'data:x'}]}]}",
            "a");
    text_is(
        RESP,
        "{'model':'m','input':[{'role':'user','content':'q'},{'type':'function_call','call_id':'c',"
        "'name':'f','arguments':'{}'},{'type':'function_call_output','call_id':'c','output':'42'}]"
        "}",
        "");
}
END_TEST

START_TEST(tool_result_turns_keep_their_results_in_the_key)
{
#define TOOL(res)                                                                                  \
    "{'model':'c','messages':[{'role':'user','content':'weather?'},{'role':'assistant','content':" \
    "[{'type':'tool_use','id':'t1','name':'w','input':{}}]},{'role':'user','content':"             \
    "[{'type':'tool_result','tool_use_id':'t1','content':'" res "'}]}]}"
    diff_key(ANTH, TOOL("sunny"), TOOL("rain"), 1);
}
END_TEST

START_TEST(responses_input_forms)
{
    /* A string is one user message, however it is spelled. */
    same_key(RESP, "{'model':'m','input':'hi'}",
             "{'model':'m','input':[{'role':'user','content':'hi'}]}");
    same_key(RESP, "{'model':'m','input':'hi'}",
             "{'model':'m','input':[{'type':'message','role':'user','content':'hi'}]}");
    /* Other items are history, as sent. */
    diff_key(
        RESP,
        "{'model':'m','input':[{'role':'user','content':'q'},{'type':'function_call','call_id':'c',"
        "'name':'f','arguments':'{}'},{'type':'function_call_output','call_id':'c','output':'42'}]"
        "}",
        "{'model':'m','input':[{'role':'user','content':'q'},{'type':'function_call','call_id':'c',"
        "'name':'f','arguments':'{}'},{'type':'function_call_output','call_id':'c','output':'43'}]"
        "}",
        1);
    /* A version-pinned prompt template needs no input. */
    sc_proxy_request_t r = parse_ok(RESP, "{'model':'m','prompt':{'id':'pmpt_1','version':'2'}}");
    ck_assert_uint_eq(r.req.text.len, 0);
    sc_proxy_request_free(&r);
}
END_TEST

START_TEST(responses_with_upstream_state_pass_through)
{
    const char *bodies[] = {
        RESP_BASE ",'previous_response_id':'resp_1'}",
        RESP_BASE ",'conversation':'conv_1'}",
        RESP_BASE ",'store':true}",
        RESP_BASE ",'background':true}",
        RESP_BASE ",'prompt':{'id':'pmpt_1'}}",
    };
    const char *why[] = {"previous_response_id", "conversation", "store", "background", "version"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        assert_rc(RESP, bodies[i], SC_ENOTCACHEABLE, why[i]);
    /* "store" false or absent is self-contained (as the task defines it). */
    ks(RESP, RESP_BASE ",'store':false}");
    ks(RESP, RESP_BASE ",'previous_response_id':null}");
    /* A pass-through still knows it is streamed. */
    sc_proxy_request_t r;
    char err[256];
    ck_assert_int_eq(
        parse_with(&r, RESP, RESP_BASE ",'stream':true,'store':true}", &ctx_t1, err, sizeof(err)),
        SC_ENOTCACHEABLE);
    ck_assert_int_eq(r.stream, 1);
    ck_assert_int_eq(r.api, RESP);
}
END_TEST

START_TEST(not_json_passes_through_malformed_is_refused)
{
    assert_rc(CHAT, "not json", SC_ENOTCACHEABLE, "not JSON");
    assert_rc(CHAT, "{'model':", SC_ENOTCACHEABLE, "not JSON");
    assert_rc(CHAT, "", SC_ENOTCACHEABLE, "not JSON");
    assert_rc(CHAT, "{'model':'a','model':'b','messages':[]}", SC_ENOTCACHEABLE, "duplicate");
    assert_rc(ANTH, "[1,2]", SC_EINVAL, "JSON object");
    assert_rc(CHAT, "'just a string'", SC_EINVAL, "JSON object");
    assert_rc(RESP, "42", SC_EINVAL, "JSON object");
    assert_rc(CHAT, "{'messages':[{'role':'user','content':'x'}]}", SC_EINVAL,
              "\"model\" is required");
    assert_rc(ANTH, "{'model':5,'messages':[{'role':'user','content':'x'}]}", SC_EINVAL,
              "\"model\" must be");
    assert_rc(CHAT, "{'model':'m'}", SC_EINVAL, "messages");
    assert_rc(CHAT, "{'model':'m','messages':{}}", SC_EINVAL, "non-empty array");
    assert_rc(ANTH, "{'model':'m','messages':[]}", SC_EINVAL, "non-empty array");
    assert_rc(CHAT, "{'model':'m','messages':[{'content':'x'}]}", SC_EINVAL, "role");
    assert_rc(CHAT, "{'model':'m','messages':[{'role':'user','content':5}]}", SC_EINVAL, "content");
    assert_rc(CHAT, "{'model':'m','stream':'yes','messages':[{'role':'user','content':'x'}]}",
              SC_EINVAL, "stream");
    assert_rc(CHAT, "{'model':'m','stream_options':1,'messages':[{'role':'user','content':'x'}]}",
              SC_EINVAL, "stream_options");
    assert_rc(CHAT,
              "{'model':'m','stream_options':{'include_usage':1},'messages':[{'role':'user','"
              "content':'x'}]}",
              SC_EINVAL, "include_usage");
    assert_rc(RESP, "{'model':'m'}", SC_EINVAL, "\"input\" is required");
    assert_rc(RESP, "{'model':'m','input':5}", SC_EINVAL, "\"input\" must be");
    assert_rc(RESP, "{'model':'m','input':[1]}", SC_EINVAL, "input[0]");
    assert_rc(RESP, "{'model':'m','input':[{'type':'message','content':'x'}]}", SC_EINVAL,
              "input[0].role");
    assert_rc(RESP, "{'model':'m','input':[{'role':'user','content':null}]}", SC_EINVAL,
              "input[0].content");
    assert_rc(RESP, "{'model':'m','input':[{'type':7}]}", SC_EINVAL, "input[0].type");
    assert_rc(SC_API_OPENAI_EMBEDDINGS, "{'model':'m','input':'x'}", SC_EINVAL, "embeddings");
}
END_TEST

START_TEST(stream_flags_and_controls_are_carried)
{
    sc_proxy_controls_t ctl = {.has_max_age = 1,
                               .max_age_s = 60,
                               .has_threshold = 1,
                               .threshold = 0.95,
                               .has_ttl = 1,
                               .ttl_s = 3600};
    sc_proxy_ctx_t ctx = ctx_t1;
    ctx.controls = &ctl;
    sc_proxy_request_t r;
    char err[256];
    ck_assert_int_eq(parse_with(&r, CHAT,
                                CHAT_BASE
                                ",'stream':true,'stream_options':{'include_usage':true},'n':3}",
                                &ctx, err, sizeof(err)),
                     0);
    ck_assert_int_eq(r.stream, 1);
    ck_assert_int_eq(r.include_usage, 1);
    ck_assert_int_eq(r.api, CHAT);
    ck_assert_int_eq(r.req.has_max_age, 1);
    ck_assert(r.req.max_age_s == 60);
    ck_assert_int_eq(r.req.has_threshold, 1);
    ck_assert(r.req.threshold == 0.95);
    ck_assert_int_eq(r.req.has_ttl, 1);
    ck_assert_int_eq(r.req.ttl_s, 3600);
    /* The request may leave the proxy struct: everything lives in req.root. */
    sc_request_t moved = r.req;
    memset(&r, 0, sizeof(r));
    json_t *params = json_object_get(moved.root, "params");
    ck_assert_int_eq(json_integer_value(json_object_get(params, "n")), 3);
    ck_assert_ptr_null(json_object_get(params, "stream"));
    ck_assert_str_eq(json_string_value(json_object_get(moved.root, "api")), "openai.chat");
    ck_assert_str_eq(moved.model, "gpt-4o");
    sc_request_free(&moved);
    r = parse_ok(ANTH, ANTH_BASE "}");
    ck_assert_int_eq(r.stream, 0);
    ck_assert_int_eq(r.include_usage, 0);
    ck_assert_int_eq(r.req.has_max_age, 0);
    sc_proxy_request_free(&r);
}
END_TEST

/* ---- header controls ---------------------------------------------------- */

static sc_slice_t sl(const char *s)
{
    return (sc_slice_t){s, s ? strlen(s) : 0};
}

static sc_proxy_controls_t cc_ok(const char *cache_control)
{
    sc_proxy_headers_t h = {.cache_control = sl(cache_control)};
    sc_proxy_controls_t c;
    char err[256] = "";
    ck_assert_msg(sc_proxy_controls_parse(&h, &c, err, sizeof(err)) == 0, "'%s': %s", cache_control,
                  err);
    return c;
}

static void hdr_bad(sc_proxy_headers_t h, const char *needle)
{
    sc_proxy_controls_t c;
    char err[256] = "";
    ck_assert_int_eq(sc_proxy_controls_parse(&h, &c, err, sizeof(err)), SC_EINVAL);
    ck_assert_msg(strstr(err, needle), "error '%s' should mention '%s'", err, needle);
}

START_TEST(cache_control_directives)
{
    sc_proxy_controls_t c = cc_ok("no-cache");
    ck_assert(c.no_cache && !c.no_store && !c.has_max_age);
    c = cc_ok("NO-STORE");
    ck_assert(c.no_store && !c.no_cache);
    c = cc_ok("max-age=60");
    ck_assert(c.has_max_age && c.max_age_s == 60);
    c = cc_ok("  No-Cache ,\tmax-age=5  ");
    ck_assert(c.no_cache && c.has_max_age && c.max_age_s == 5);
    c = cc_ok("max-age=\"30\"");
    ck_assert(c.max_age_s == 30);
    c = cc_ok("max-age=10, max-age=5, max-age=7");
    ck_assert(c.max_age_s == 5);
    c = cc_ok("max-age=0");
    ck_assert(c.has_max_age && c.max_age_s == 0);
    c = cc_ok("max-age=99999999999999999999");
    ck_assert(c.max_age_s == 2147483648LL);
    c = cc_ok(",, no-store ,,");
    ck_assert(c.no_store);
    c = cc_ok(
        "private, community=\"UCI, x\", max-stale, min-fresh=5, no-transform, only-if-cached");
    ck_assert(c.only_if_cached && !c.no_cache && !c.no_store && !c.has_max_age);
    c = cc_ok("");
    ck_assert(!c.no_cache && !c.no_store && !c.has_max_age && !c.has_ttl && !c.ns);
    sc_proxy_headers_t none = {{0}};
    char err[64];
    ck_assert_int_eq(sc_proxy_controls_parse(&none, &c, err, sizeof(err)), 0);
    ck_assert(!c.no_cache && !c.has_threshold && !c.has_ttl && !c.ns);

    const char *bad[] = {"max-age=abc", "max-age=",    "max-age",     "max-age=-1",
                         "max-age=1.5", "max-age=\"5", "no cache",    "no-cache;",
                         "max-age = 5", "=5",          "max-age=\"\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        hdr_bad((sc_proxy_headers_t){.cache_control = sl(bad[i])}, "Cache-Control");
}
END_TEST

START_TEST(semcached_headers)
{
    sc_proxy_headers_t h = {.ttl = sl(" 3600 "), .threshold = sl("0.95"), .ns = sl(" team-a ")};
    sc_proxy_controls_t c;
    char err[256];
    ck_assert_int_eq(sc_proxy_controls_parse(&h, &c, err, sizeof(err)), 0);
    ck_assert(c.has_ttl && c.ttl_s == 3600);
    ck_assert(c.has_threshold && c.threshold == 0.95);
    ck_assert_uint_eq(c.ns_len, 6);
    ck_assert(memcmp(c.ns, "team-a", 6) == 0);
    const char *good_t[] = {"-1", "1", "1.0", "0", "-0.5", "1e0", "9.5E-1"};
    for (size_t i = 0; i < sizeof(good_t) / sizeof(good_t[0]); i++) {
        h = (sc_proxy_headers_t){.threshold = sl(good_t[i])};
        ck_assert_msg(sc_proxy_controls_parse(&h, &c, err, sizeof(err)) == 0, "%s", good_t[i]);
        ck_assert(c.threshold == strtod(good_t[i], NULL));
    }
    h = (sc_proxy_headers_t){.ttl = sl("0")};
    ck_assert_int_eq(sc_proxy_controls_parse(&h, &c, err, sizeof(err)), 0);
    ck_assert(c.has_ttl && c.ttl_s == 0);

    const char *bad_ttl[] = {"", "  ", "-1", "1.5", "abc", "10s", "9999999999999999", "+5"};
    for (size_t i = 0; i < sizeof(bad_ttl) / sizeof(bad_ttl[0]); i++)
        hdr_bad((sc_proxy_headers_t){.ttl = sl(bad_ttl[i])}, "X-Semcached-TTL");
    const char *bad_t[] = {"1.01",
                           "-1.5",
                           "nan",
                           "inf",
                           "0x1p-1",
                           ".5",
                           "",
                           "0.9x",
                           "1e",
                           "1.",
                           "+0.5",
                           "2e-0",
                           "0.99999999999999999999999999999999999999999999999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_t) / sizeof(bad_t[0]); i++)
        hdr_bad((sc_proxy_headers_t){.threshold = sl(bad_t[i])}, "X-Semcached-Threshold");
    const char *bad_ns[] = {"", "a b", "a/b", "ns\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad_ns) / sizeof(bad_ns[0]); i++)
        hdr_bad((sc_proxy_headers_t){.ns = sl(bad_ns[i])}, "X-Semcached-Namespace");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("proxy_request");
    TCase *tc = tcase_create("mapping");
    tcase_add_test(tc, delivery_fields_do_not_change_the_key);
    tcase_add_test(tc, answer_fields_change_key_and_scope);
    tcase_add_test(tc, final_user_text_changes_the_key_not_the_scope);
    tcase_add_test(tc, scope_keeps_non_text_parts);
    tcase_add_test(tc, apis_never_share_keys);
    tcase_add_test(tc, namespace_and_tenant_come_from_the_context);
    tcase_add_test(tc, semantic_text_is_the_final_user_text);
    tcase_add_test(tc, tool_result_turns_keep_their_results_in_the_key);
    tcase_add_test(tc, responses_input_forms);
    tcase_add_test(tc, responses_with_upstream_state_pass_through);
    tcase_add_test(tc, not_json_passes_through_malformed_is_refused);
    tcase_add_test(tc, stream_flags_and_controls_are_carried);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("headers");
    tcase_add_test(th, cache_control_directives);
    tcase_add_test(th, semcached_headers);
    suite_add_tcase(s, th);
    return tu_run(s);
}
