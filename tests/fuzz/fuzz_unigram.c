/* fuzz_unigram.c -- libFuzzer harness for the Unigram tokenizer
 * (embed/unigram.c): its normalizer sequence, Metaspace and Viterbi on
 * arbitrary bytes (invalid UTF-8 included), with a small vocabulary of
 * overlapping pieces. Every id returned must be inside the vocabulary and
 * the count within the cap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sc_embed.h"

static sc_unigram_t *uni;

static void unigram_init(void)
{
    static const char json[] =
        "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":["
        "{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
        "\"strip_accents\":null,\"lowercase\":true},"
        "{\"type\":\"Replace\",\"pattern\":{\"String\":\"!\"},\"content\":\" ! \"},"
        "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"},"
        "{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true}]},"
        "\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\","
        "\"prepend_scheme\":\"always\",\"split\":false},"
        "\"model\":{\"type\":\"Unigram\",\"unk_id\":1,\"byte_fallback\":false,\"vocab\":["
        "[\"[PAD]\",0],[\"[UNK]\",0],[\"\\u2581\",-2],[\"\\u2581hello\",-3],[\"hell\",-4],"
        "[\"o\",-2],[\"\\u2581world\",-3],[\"wor\",-5],[\"ld\",-5],[\"\\u2581!\",-4],"
        "[\"\\u6211\",-6],[\"a\",-3],[\"aa\",-5],[\"\\u2581a\",-4]]}}";
    char path[] = "/tmp/sc-fuzz-unigram-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs(json, f);
    fclose(f);
    char err[256];
    if (sc_unigram_load_json(&uni, path, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!uni)
        unigram_init();
    int32_t ids[256];
    int n = sc_unigram_encode(uni, (const char *)data, size, ids, 256);
    if ((n < 0 && n != SC_ENOMEM) || n > 256)
        __builtin_trap();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= sc_unigram_vocab_size(uni))
            __builtin_trap();
    return 0;
}
