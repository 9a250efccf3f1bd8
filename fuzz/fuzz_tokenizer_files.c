/* fuzz_tokenizer_files.c - libFuzzer: the tokenizer's files. The input's parts (separated by FUZZ_SEP)
 * are vocab.json and merges.txt (loaded together), then tokenizer.json; each tokenizer that loads
 * encodes a fixed prompt, and every id it gives must be in its vocabulary. */
#include "fuzz_util.h"
#include "tokenizer/clip_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use(sdc_clip_tokenizer *tok) {
    if (!tok) return;
    static const char text[] = "a photo of an astronaut, riding a horse!! 123 \xc3\xa9t\xc3\xa9 <|endoftext|>";
    int32_t ids[77];
    const int32_t vocab = sdc_clip_tokenizer_n_vocab(tok);
    size_t n = sdc_clip_tokenize(tok, text, sizeof text - 1, ids, 77);
    for (size_t i = 0; i < n && i < 77; i++)
        if (ids[i] < 0 || ids[i] >= vocab) abort();
    sdc_clip_encode_prompt(tok, text, ids, 77);
    for (int i = 0; i < 77; i++)
        if (ids[i] < 0 || ids[i] >= vocab) abort();
    sdc_clip_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *part[3];
    size_t len[3];
    const int n = fuzz_split(data, size, part, len, 3);
    const char *vocab = fuzz_path("vocab.json"), *merges = fuzz_path("merges.txt"), *tj = fuzz_path("tokenizer.json");
    fuzz_write(vocab, part[0], len[0]);
    fuzz_write(merges, n > 1 ? part[1] : NULL, n > 1 ? len[1] : 0);
    sdc_clip_tokenizer *tok = NULL;
    if (sdc_clip_tokenizer_load_files(vocab, merges, NULL, &tok) == SDC_OK) use(tok);
    if (n > 2) {
        fuzz_write(tj, part[2], len[2]);
        tok = NULL;
        if (sdc_clip_tokenizer_load_json(tj, NULL, &tok) == SDC_OK) use(tok);
    }
    return 0;
}
