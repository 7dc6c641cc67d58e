/* fuzz_wordpiece.c -- libFuzzer harness for the BERT normalizer and WordPiece
 * tokenizer (embed/wordpiece.c) on arbitrary bytes (invalid UTF-8 included),
 * with a small vocabulary of whole words, pieces and CJK characters. Every id
 * returned must be inside the vocabulary. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sc_embed.h"

static sc_wordpiece_t *tok;

static void init(void)
{
    static const char *vocab[] = {
        "[PAD]",        "[UNK]",  "[CLS]", "[SEP]",      "hello", "world", "un",
        "##aff",        "##able", "a",     "##b",        "##c",   "!",     ",",
        "\xe6\x88\x91", "caf",    "##e",   "##\xc3\xa9", "the",   "##s",   "s"};
    char path[] = "/tmp/sc-fuzz-vocab-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    for (size_t i = 0; i < sizeof(vocab) / sizeof(vocab[0]); i++)
        fprintf(f, "%s\n", vocab[i]);
    fclose(f);
    if (sc_wordpiece_load_vocab(&tok, path, NULL))
        abort();
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!tok)
        init();
    int32_t ids[512];
    int n = sc_wordpiece_encode(tok, (const char *)data, size, ids, 512);
    if (n < 0 && n != SC_ENOMEM)
        __builtin_trap();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= sc_wordpiece_vocab_size(tok))
            __builtin_trap();
    return 0;
}
