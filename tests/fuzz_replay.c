/* tests/fuzz_replay.c -- replays the fuzzing seed corpora and every saved
 * crash input (tests/fuzz/corpus, tests/fuzz/regress) through the libFuzzer
 * harnesses, built here as ordinary code, so `make test` and `make asan`
 * keep every input that ever broke something from breaking it again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define LLVMFuzzerTestOneInput fuzz_request
#include "fuzz/fuzz_request.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_proxy_request
#include "fuzz/fuzz_proxy_request.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_wordpiece
#define init wordpiece_init
#define tok wordpiece_tok
#include "fuzz/fuzz_wordpiece.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_safetensors
#include "fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_glove
#include "fuzz/fuzz_glove.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_http
#define LLVMFuzzerInitialize fuzz_http_init
#include "fuzz/fuzz_http.c"
#undef LLVMFuzzerTestOneInput
#undef LLVMFuzzerInitialize
#define LLVMFuzzerTestOneInput fuzz_unigram
#include "fuzz/fuzz_unigram.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_model2vec
#define put_file model2vec_put_file
#include "fuzz/fuzz_model2vec.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_sse
#include "fuzz/fuzz_sse.c"
#undef LLVMFuzzerTestOneInput

static int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t))
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        uint8_t *buf = malloc(1 << 20);
        size_t len = fread(buf, 1, 1 << 20, f);
        fclose(f);
        fn(buf, len); /* traps (and fails the test process) on a violated property */
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static void replay(const char *name, int (*fn)(const uint8_t *, size_t))
{
    char dir[256];
    snprintf(dir, sizeof(dir), "tests/fuzz/corpus/%s", name);
    int n = replay_dir(dir, fn);
    snprintf(dir, sizeof(dir), "tests/fuzz/regress/%s", name);
    n += replay_dir(dir, fn);
    ck_assert_msg(n > 0, "no inputs for %s", name);
}

START_TEST(request_inputs)
{
    replay("request", fuzz_request);
}
END_TEST

START_TEST(proxy_request_inputs)
{
    replay("proxy_request", fuzz_proxy_request);
}
END_TEST

START_TEST(wordpiece_inputs)
{
    replay("wordpiece", fuzz_wordpiece);
}
END_TEST

START_TEST(safetensors_inputs)
{
    replay("safetensors", fuzz_safetensors);
}
END_TEST

START_TEST(glove_inputs)
{
    replay("glove", fuzz_glove);
}
END_TEST

START_TEST(http_inputs)
{
    fuzz_http_init(NULL, NULL); /* a server in this process, as under libFuzzer */
    replay("http", fuzz_http);
}
END_TEST

START_TEST(unigram_inputs)
{
    replay("unigram", fuzz_unigram);
}
END_TEST

START_TEST(sse_inputs)
{
    replay("sse", fuzz_sse);
}
END_TEST

START_TEST(model2vec_inputs)
{
    replay("model2vec", fuzz_model2vec);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fuzz-replay");
    TCase *tc = tcase_create("replay");
    tcase_add_test(tc, request_inputs);
    tcase_add_test(tc, proxy_request_inputs);
    tcase_add_test(tc, wordpiece_inputs);
    tcase_add_test(tc, safetensors_inputs);
    tcase_add_test(tc, glove_inputs);
    tcase_add_test(tc, model2vec_inputs);
    tcase_add_test(tc, unigram_inputs);
    tcase_add_test(tc, http_inputs);
    tcase_add_test(tc, sse_inputs);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
