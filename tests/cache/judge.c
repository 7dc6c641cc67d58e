/* tests/cache/judge.c -- the judge comparison (cache/judge.c): the request
 * bodies it sends to each API carry the fixed prompt, both answers and the
 * sampling settings, and replies are read strictly: one verdict word or no
 * verdict, from real-shaped chat completions, Responses and Messages. */
#include "../../cache/judge.c"

#include "testutil.h"

static json_t *body_of(sc_api_t api, const char *model, const char *req, const char *a,
                       const char *b)
{
    sc_buf_t out = {0};
    ck_assert_int_eq(
        sc_judge_request(&out, api, model, req, req ? strlen(req) : 0, a, strlen(a), b, strlen(b)),
        0);
    json_error_t e;
    json_t *j = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, &e);
    ck_assert_msg(j != NULL, "not JSON: %s", e.text);
    sc_buf_free(&out);
    return j;
}

START_TEST(requests_carry_the_prompt_and_both_answers)
{
    json_t *j = body_of(SC_API_OPENAI_CHAT, "gpt-4o-mini", "Capital of France?", "Paris.",
                        "It is \"Paris\"\n");
    ck_assert_str_eq(json_string_value(json_object_get(j, "model")), "gpt-4o-mini");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "temperature")), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "max_tokens")), 5);
    json_t *msgs = json_object_get(j, "messages");
    ck_assert_int_eq(json_array_size(msgs), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                     sc_judge_system_prompt);
    const char *user = json_string_value(json_object_get(json_array_get(msgs, 1), "content"));
    ck_assert_str_eq(user, "Request:\n<request>\nCapital of France?\n</request>\n\n"
                           "Answer A:\n<answer_a>\nParis.\n</answer_a>\n\n"
                           "Answer B:\n<answer_b>\nIt is \"Paris\"\n\n</answer_b>");
    json_decref(j);
    /* Without a request text, only the answers. */
    j = body_of(SC_API_OPENAI_CHAT, "gpt-4o", NULL, "x", "y");
    user = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "messages"), 1), "content"));
    ck_assert_ptr_null(strstr(user, "<request>"));
    json_decref(j);
    /* Reasoning models get no temperature and no token limit. */
    const char *reasoning[] = {"o3-mini", "o1", "gpt-5-mini", "openai/o4-mini", "GPT-5"};
    for (int i = 0; i < 5; i++) {
        j = body_of(SC_API_OPENAI_CHAT, reasoning[i], "q", "a", "b");
        ck_assert_ptr_null(json_object_get(j, "temperature"));
        ck_assert_ptr_null(json_object_get(j, "max_tokens"));
        json_decref(j);
    }
    j = body_of(SC_API_OPENAI_CHAT, "o3x", "q", "a", "b");
    ck_assert_ptr_nonnull(json_object_get(j, "temperature"));
    json_decref(j);
    /* Anthropic: system apart, max_tokens required. */
    j = body_of(SC_API_ANTHROPIC_MESSAGES, "claude-3-5-haiku-latest", "q", "a", "b");
    ck_assert_str_eq(json_string_value(json_object_get(j, "system")), sc_judge_system_prompt);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "max_tokens")), 5);
    ck_assert_int_eq(json_array_size(json_object_get(j, "messages")), 1);
    json_decref(j);
    j = body_of(SC_API_OPENAI_RESPONSES, "gpt-4.1-mini", "q", "a", "b");
    ck_assert_str_eq(json_string_value(json_object_get(j, "instructions")), sc_judge_system_prompt);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "max_output_tokens")), 16);
    ck_assert_ptr_nonnull(
        strstr(json_string_value(json_object_get(j, "input")), "<answer_b>\nb\n"));
    json_decref(j);
    sc_buf_t out = {0};
    ck_assert_int_eq(sc_judge_request(&out, SC_API_OPENAI_EMBEDDINGS, "m", NULL, 0, "a", 1, "b", 1),
                     SC_EINVAL);
    ck_assert_int_eq(sc_judge_request(&out, SC_API_OPENAI_CHAT, "", NULL, 0, "a", 1, "b", 1),
                     SC_EINVAL);
    sc_buf_free(&out);
}
END_TEST

START_TEST(long_answers_are_cut_on_a_character_boundary)
{
    size_t n = SC_JUDGE_MAX_TEXT + 100;
    char *a = malloc(n + 1);
    a[0] = 'x'; /* then é (2 bytes) from offset 1: the limit falls inside one */
    for (size_t i = 1; i + 1 < n; i += 2)
        memcpy(a + i, "\xc3\xa9", 2);
    a[n - 1] = '\0';
    json_t *j = body_of(SC_API_OPENAI_CHAT, "m", NULL, a, "b");
    const char *user = json_string_value(
        json_object_get(json_array_get(json_object_get(j, "messages"), 1), "content"));
    ck_assert_ptr_nonnull(strstr(user, "\xc3\xa9 [...]\n</answer_a>"));
    ck_assert_uint_lt(strlen(user), SC_JUDGE_MAX_TEXT + 200);
    json_decref(j);
    free(a);
}
END_TEST

#define TEXT(s, v) sc_judge_parse_text(s, strlen(s), v)

START_TEST(verdict_text_is_read_strictly)
{
    sc_verdict_t v = SC_VERDICT_WRONG;
    ck_assert_int_eq(TEXT("SAME", &v), 0);
    ck_assert_int_eq(v, SC_VERDICT_CORRECT);
    ck_assert_int_eq(TEXT("  different\n", &v), 0);
    ck_assert_int_eq(v, SC_VERDICT_WRONG);
    ck_assert_int_eq(TEXT("Same", &v), 0);
    const char *bad[] = {"",
                         "   ",
                         "SAME.",
                         "SAME DIFFERENT",
                         "DIFFERENT or SAME",
                         "They are the SAME",
                         "\"SAME\"",
                         "SAMENESS",
                         "NOT SAME",
                         "DIFFERENT!",
                         "**SAME**",
                         "S A M E"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(TEXT(bad[i], &v) == SC_EINVAL, "accepted '%s'", bad[i]);
    ck_assert_int_eq(sc_judge_parse_text(NULL, 0, &v), SC_EINVAL);
}
END_TEST

static int parse(sc_api_t api, const char *body, sc_verdict_t *v, sc_usage_t *u)
{
    return sc_judge_parse(api, body, strlen(body), v, u);
}

#define CHAT(content, extra)                                                                       \
    "{\"id\":\"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT\",\"object\":\"chat.completion\","           \
    "\"created\":1741569952,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,"       \
    "\"message\":{\"role\":\"assistant\",\"content\":" content ",\"refusal\":null" extra           \
    ",\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{"              \
    "\"prompt_tokens\":212,\"completion_tokens\":1,\"total_tokens\":213,"                          \
    "\"prompt_tokens_details\":{\"cached_tokens\":128,\"audio_tokens\":0},"                        \
    "\"completion_tokens_details\":{\"reasoning_tokens\":0}},\"service_tier\":\"default\","        \
    "\"system_fingerprint\":\"fp_06737a9306\"}"

START_TEST(chat_completions_are_read_strictly)
{
    sc_verdict_t v = SC_VERDICT_CORRECT;
    sc_usage_t u;
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, CHAT("\"DIFFERENT\"", ""), &v, &u), 0);
    ck_assert_int_eq(v, SC_VERDICT_WRONG);
    ck_assert_uint_eq(u.input, 84);
    ck_assert_uint_eq(u.cached_input, 128);
    ck_assert_uint_eq(u.output, 1);
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, CHAT("\"SAME\"", ""), &v, NULL), 0);
    ck_assert_int_eq(v, SC_VERDICT_CORRECT);
    /* No verdict: extra words, both words, empty, null content, a refusal,
     * a tool call; the usage is still reported for the cost. */
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, CHAT("\"SAME, mostly\"", ""), &v, &u), SC_EINVAL);
    ck_assert_uint_eq(u.output, 1);
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, CHAT("\"SAME DIFFERENT\"", ""), &v, &u), SC_EINVAL);
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, CHAT("\"\"", ""), &v, &u), SC_EINVAL);
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, CHAT("null", ""), &v, &u), SC_EINVAL);
    const char *refusal =
        "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"SAME\","
        "\"refusal\":\"I can't help with that.\"},\"finish_reason\":\"stop\"}]}";
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, refusal, &v, &u), SC_EINVAL);
    ck_assert_uint_eq(u.input + u.output, 0);
    ck_assert_int_eq(
        parse(SC_API_OPENAI_CHAT,
              CHAT("\"SAME\"", ",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                               "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]"),
              &v, &u),
        SC_EINVAL);
    const char *filtered = "{\"choices\":[{\"message\":{\"content\":\"SAME\"},\"finish_reason\":"
                           "\"content_filter\"}]}";
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, filtered, &v, &u), SC_EINVAL);
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, "{\"choices\":[]}", &v, &u), SC_EINVAL);
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT,
                           "{\"error\":{\"message\":\"Rate limit\",\"type\":"
                           "\"requests\",\"code\":\"rate_limit_exceeded\"}}",
                           &v, &u),
                     SC_EINVAL);
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, "SAME", &v, &u), SC_EINVAL);
    ck_assert_int_eq(parse(SC_API_OPENAI_CHAT, "", &v, &u), SC_EINVAL);
}
END_TEST

START_TEST(messages_and_responses_are_read_strictly)
{
    sc_verdict_t v = SC_VERDICT_CORRECT;
    sc_usage_t u;
    const char *msg =
        "{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\",\"type\":\"message\",\"role\":\"assistant\","
        "\"model\":\"claude-3-5-haiku-20241022\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"DIFFERENT\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{"
        "\"input_tokens\":250,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
        "\"output_tokens\":4}}";
    ck_assert_int_eq(parse(SC_API_ANTHROPIC_MESSAGES, msg, &v, &u), 0);
    ck_assert_int_eq(v, SC_VERDICT_WRONG);
    ck_assert_uint_eq(u.input, 250);
    ck_assert_uint_eq(u.output, 4);
    const char *two = "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"SAME\"},"
                      "{\"type\":\"text\",\"text\":\" DIFFERENT\"}],\"stop_reason\":\"end_turn\"}";
    ck_assert_int_eq(parse(SC_API_ANTHROPIC_MESSAGES, two, &v, &u), SC_EINVAL);
    const char *tool =
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_1\","
        "\"name\":\"f\",\"input\":{}}],\"stop_reason\":\"tool_use\"}";
    ck_assert_int_eq(parse(SC_API_ANTHROPIC_MESSAGES, tool, &v, &u), SC_EINVAL);
    ck_assert_int_eq(
        parse(SC_API_ANTHROPIC_MESSAGES, "{\"type\":\"message\",\"content\":[]}", &v, &u),
        SC_EINVAL);
    /* A chat completion is not a message. */
    ck_assert_int_eq(parse(SC_API_ANTHROPIC_MESSAGES, CHAT("\"SAME\"", ""), &v, &u), SC_EINVAL);
    const char *resp =
        "{\"id\":\"resp_67ccd2bed1ec8190b14f964abc054267\",\"object\":\"response\","
        "\"status\":\"completed\",\"model\":\"o4-mini-2025-04-16\",\"output\":[{\"type\":"
        "\"reasoning\",\"id\":\"rs_1\",\"summary\":[]},{\"type\":\"message\",\"id\":\"msg_1\","
        "\"status\":\"completed\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\","
        "\"text\":\"SAME\",\"annotations\":[]}]}],\"usage\":{\"input_tokens\":300,"
        "\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":70,"
        "\"output_tokens_details\":{\"reasoning_tokens\":64},\"total_tokens\":370}}";
    ck_assert_int_eq(parse(SC_API_OPENAI_RESPONSES, resp, &v, &u), 0);
    ck_assert_int_eq(v, SC_VERDICT_CORRECT);
    ck_assert_uint_eq(u.output, 70);
    const char *refused =
        "{\"object\":\"response\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":"
        "\"refusal\",\"refusal\":\"no\"}]}]}";
    ck_assert_int_eq(parse(SC_API_OPENAI_RESPONSES, refused, &v, &u), SC_EINVAL);
    ck_assert_int_eq(parse(SC_API_OPENAI_RESPONSES, "{\"output\":[]}", &v, &u), SC_EINVAL);
    ck_assert_int_eq(parse(SC_API_OPENAI_EMBEDDINGS, resp, &v, &u), SC_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("judge");
    TCase *tc = tcase_create("judge");
    tcase_add_test(tc, requests_carry_the_prompt_and_both_answers);
    tcase_add_test(tc, long_answers_are_cut_on_a_character_boundary);
    tcase_add_test(tc, verdict_text_is_read_strictly);
    tcase_add_test(tc, chat_completions_are_read_strictly);
    tcase_add_test(tc, messages_and_responses_are_read_strictly);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
