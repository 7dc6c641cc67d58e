/* tests/cache/guards.c -- the semantic-hit guards (cache/guards.c): the
 * tokenizer (case folding, accents, contractions, numbers), each check on
 * pairs it must refuse and pairs it must let through, the built-in word
 * list, and word-vector counterparts with the real GloVe model when present. */
#include "../../cache/guards.c"

#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

static sc_guard_words_t *words;

static void setup(void)
{
    ck_assert_int_eq(sc_guard_words_default(&words), 0);
}

static void teardown(void)
{
    sc_guard_words_free(words);
}

/* The tokens of 's' as "w:word n:number ..." and a trailing "NEG" when negated. */
static void tokens_of(const char *s, char *out, size_t cap)
{
    text_t *t = calloc(1, sizeof(text_t));
    ck_assert_int_eq(tokenize(t, s, strlen(s)), 0);
    size_t o = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < t->n && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s:%s", i ? " " : "",
                              t->tok[i].kind == TOK_WORD ? "w" : "n", tok_str(t, i));
    if (t->negated && o < cap)
        snprintf(out + o, cap - o, " NEG");
    sc_buf_free(&t->bytes);
    free(t);
}

#define TOKENS(s, want)                                                                            \
    do {                                                                                           \
        char got[512];                                                                             \
        tokens_of(s, got, sizeof(got));                                                            \
        ck_assert_str_eq(got, want);                                                               \
    } while (0)

START_TEST(tokens_are_folded_words_and_normalized_numbers)
{
    TOKENS("Café au LAIT", "w:cafe w:au w:lait");
    TOKENS("Why don't I sleep?", "w:why w:do w:i w:sleep NEG");
    TOKENS("Why can’t I sleep", "w:why w:ca w:i w:sleep NEG");
    TOKENS("It's Mary's", "w:it w:mary");
    TOKENS("₹2,000 or 2000.50 or 007", "n:2000 w:or n:2000.5 w:or n:7");
    TOKENS("version 1.5.2 on 3/4/2019", "w:version n:1.5.2 w:on n:3 n:4 n:2019");
    TOKENS("ps4 vs iPhone7, 1st", "w:ps n:4 w:vs w:iphone n:7 n:1 w:st");
    TOKENS("Twelve apples in March, not May", "n:12 w:apples w:in n:month:2 w:may NEG");
    TOKENS("one or two", "w:one w:or n:2");
    TOKENS("the end.", "w:the w:end");
    TOKENS("", "");
    TOKENS("\xff\xfe bad bytes", "w:bad w:bytes");
}
END_TEST

static unsigned refusal(const char *a, const char *b, unsigned checks)
{
    sc_guard_opts_t o = {.checks = checks, .words = words};
    sc_guard_result_t r;
    int rc = sc_guard_check(a, strlen(a), b, strlen(b), &o, &r);
    ck_assert_int_ge(rc, 0);
    ck_assert_int_eq(rc, r.refused != 0);
    ck_assert_int_eq(rc, r.detail[0] != '\0');
    return r.refused;
}

START_TEST(negation_in_one_text_only_is_refused)
{
    ck_assert_uint_eq(refusal("Why do I sleep so much?", "Why don't I sleep much?", SC_GUARD_ALL),
                      SC_GUARD_NEGATION);
    ck_assert_uint_eq(
        refusal("Is coffee bad for you", "Is coffee not bad for you", SC_GUARD_NEGATION),
        SC_GUARD_NEGATION);
    ck_assert_uint_eq(refusal("a meal without meat", "a meal with meat", SC_GUARD_NEGATION),
                      SC_GUARD_NEGATION);
    /* Both negate (in different words): served. */
    ck_assert_uint_eq(
        refusal("Why can't I sleep?", "Why am I not able to sleep?", SC_GUARD_NEGATION), 0);
    ck_assert_uint_eq(refusal("Why cant I sleep", "why can't i sleep", SC_GUARD_ALL), 0);
    /* The check is off unless asked for. */
    ck_assert_uint_eq(refusal("Is it good", "Is it not good", SC_GUARD_NUMBERS), 0);
}
END_TEST

START_TEST(numbers_and_dates_must_match)
{
    ck_assert_uint_eq(refusal("Best laptop of 2019", "Best laptop of 2020", SC_GUARD_NUMBERS),
                      SC_GUARD_NUMBERS);
    ck_assert_uint_eq(refusal("How to lose 10 kg", "How to lose weight", SC_GUARD_NUMBERS),
                      SC_GUARD_NUMBERS);
    ck_assert_uint_eq(refusal("flights in March", "flights in April", SC_GUARD_NUMBERS),
                      SC_GUARD_NUMBERS);
    ck_assert_uint_eq(refusal("iPhone 6 or iPhone 7", "iPhone 7 or iPhone 8", SC_GUARD_NUMBERS),
                      SC_GUARD_NUMBERS);
    /* The same numbers written differently: served. */
    ck_assert_uint_eq(refusal("How to lose 10 kg in 2 months", "how to lose ten kg in two months",
                              SC_GUARD_NUMBERS),
                      0);
    ck_assert_uint_eq(refusal("a ₹2,000 note", "a Rs 2000 note", SC_GUARD_NUMBERS), 0);
    ck_assert_uint_eq(refusal("Which one is better?", "Which is better?", SC_GUARD_NUMBERS), 0);
    ck_assert_uint_eq(refusal("the 2 and the 2", "the 2", SC_GUARD_NUMBERS), 0);
}
END_TEST

START_TEST(rare_words_need_a_counterpart)
{
    /* "bitcoin" is rare and "gold" is not its spelling: refused. */
    ck_assert_uint_eq(
        refusal("Should I invest in bitcoin?", "Should I invest in gold?", SC_GUARD_RARE_WORD),
        SC_GUARD_RARE_WORD);
    ck_assert_uint_eq(
        refusal("How do I learn Kotlin?", "How do I learn Swift?", SC_GUARD_RARE_WORD),
        SC_GUARD_RARE_WORD);
    /* Common words may differ freely; rare ones may be inflected, joined,
     * extended or mistyped. */
    ck_assert_uint_eq(refusal("What is the best way to learn a language",
                              "How can I learn a new language quickly", SC_GUARD_RARE_WORD),
                      0);
    ck_assert_uint_eq(refusal("How do I learn Kotlin?", "how to learn kotlin", SC_GUARD_RARE_WORD),
                      0);
    ck_assert_uint_eq(
        refusal("best smartphone camera", "best smart phone camera", SC_GUARD_RARE_WORD), 0);
    ck_assert_uint_eq(refusal("kotlin programmers", "kotlin programming", SC_GUARD_RARE_WORD), 0);
    ck_assert_uint_eq(refusal("How do I learn Kotlin", "How do I learn Kotlni", SC_GUARD_RARE_WORD),
                      0);
    /* Other scripts are not judged by an English list. */
    ck_assert_uint_eq(refusal("Как выучить язык", "Как быстро выучить язык", SC_GUARD_RARE_WORD),
                      0);
    /* No word list: the check cannot run and refuses nothing. */
    sc_guard_opts_t o = {.checks = SC_GUARD_RARE_WORD, .words = NULL};
    sc_guard_result_t r;
    ck_assert_int_eq(sc_guard_check("bitcoin", 7, "gold", 4, &o, &r), 0);
}
END_TEST

START_TEST(word_list_ranks)
{
    ck_assert_int_eq(sc_guard_words_rank(words, "the", 3), 0);
    ck_assert_int_lt(sc_guard_words_rank(words, "language", 8), 2000);
    ck_assert_int_eq(sc_guard_words_rank(words, "kotlin", 6), -1);
    ck_assert_int_eq(sc_guard_words_rank(words, "", 0), -1);
    /* A file list: the first occurrence of a word keeps its rank. */
    char path[64];
    tu_write_temp(path, "alpha\nbeta\nalpha\n\ngamma\n");
    sc_guard_words_t *w;
    ck_assert_int_eq(sc_guard_words_load(&w, path, 0), 0);
    ck_assert_int_eq(sc_guard_words_rank(w, "gamma", 5), 2);
    ck_assert_int_eq(sc_guard_words_rank(w, "alpha", 5), 0);
    sc_guard_words_free(w);
    ck_assert_int_eq(sc_guard_words_load(&w, path, 2), 0);
    ck_assert_int_eq(sc_guard_words_rank(w, "gamma", 5), -1);
    sc_guard_words_free(w);
    unlink(path);
    ck_assert_int_eq(sc_guard_words_load(&w, path, 0), SC_ENOTFOUND);
}
END_TEST

START_TEST(stems_and_edits)
{
    char a[WORD_MAX + 8], b[WORD_MAX + 8];
    ck_assert_str_eq((stem("cities", 6, a), a), "city");
    ck_assert_str_eq((stem("programming", 11, a), a), "program");
    ck_assert_str_eq((stem("programmers", 11, b), b), "program");
    ck_assert_str_eq((stem("boxes", 5, a), a), "box");
    ck_assert_str_eq((stem("glass", 5, a), a), "glass");
    ck_assert_int_eq(one_edit("kotlin", 6, "kotlni", 6), 1);
    ck_assert_int_eq(one_edit("kotlin", 6, "kotin", 5), 1);
    ck_assert_int_eq(one_edit("kotlin", 6, "kotlins", 7), 1);
    ck_assert_int_eq(one_edit("kotlin", 6, "koltni", 6), 0);
    ck_assert_int_eq(one_edit("kotlin", 6, "kotlinxx", 8), 0);
}
END_TEST

START_TEST(word_vectors_give_counterparts)
{
    char model[512];
    const char *cache = getenv("SEMCACHED_MODEL_CACHE");
    snprintf(model, sizeof(model), "%s/glove-100d.scglove", cache ? cache : "");
    if (!cache || access(model, R_OK) != 0) {
        tu_skip("no GloVe model (make model)");
        return;
    }
    char err[256];
    sc_embedder_t *e;
    ck_assert_int_eq(sc_embedder_open(&e, model, err, sizeof(err)), 0);
    /* "automobiles" is rare; "cars" is its neighbour in GloVe. */
    sc_guard_opts_t o = {.checks = SC_GUARD_RARE_WORD, .words = words, .rare_rank = 5000};
    sc_guard_result_t r;
    const char *a = "cheap automobiles", *b = "cheap cars";
    ck_assert_int_eq(sc_guard_check(a, strlen(a), b, strlen(b), &o, &r), 1);
    o.embedder = e;
    o.counterpart_sim = 0.6;
    ck_assert_int_eq(sc_guard_check(a, strlen(a), b, strlen(b), &o, &r), 0);
    const char *c = "cheap bananas";
    ck_assert_int_eq(sc_guard_check(a, strlen(a), c, strlen(c), &o, &r), 1);
    ck_assert_uint_eq(r.refused, SC_GUARD_RARE_WORD);
    sc_embedder_close(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("guards");
    TCase *tc = tcase_create("guards");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tokens_are_folded_words_and_normalized_numbers);
    tcase_add_test(tc, negation_in_one_text_only_is_refused);
    tcase_add_test(tc, numbers_and_dates_must_match);
    tcase_add_test(tc, rare_words_need_a_counterpart);
    tcase_add_test(tc, word_list_ranks);
    tcase_add_test(tc, stems_and_edits);
    tcase_add_test(tc, word_vectors_give_counterparts);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
