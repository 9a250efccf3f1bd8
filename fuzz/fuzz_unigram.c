/* fuzz_unigram.c - libFuzzer: arbitrary bytes through the T5 Unigram tokenizer, and through its
 * tokenizer.json reader.
 *
 * The tokenizer comes from $SDC_TOKENIZER_DIR, else $SDC_REFERENCE_DIR/tiny-flux-schnell/tokenizer_2,
 * else <source>/../shared/reference/tiny-flux-schnell/tokenizer_2. The first input byte picks the mode:
 *   odd:  the rest is a tokenizer.json, parsed (and, when it loads, used on a fixed prompt);
 *   even: the rest is a prompt. Invariants: every id is in the vocabulary, the count does not depend
 *         on how many ids are asked for, no more ids are written than asked for (a canary after them:
 *         NFKC may expand a character, "\xc2\xbc" is "1\xe2\x81\x844", so a text can have more ids than
 *         bytes), and the model input (max_length from the first byte's upper bits, 1..64) is the text's
 *         ids, </s>, then pads. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/unigram.h"

#ifndef SDC_SOURCE_DIR
#define SDC_SOURCE_DIR "."
#endif

static sdc_unigram *tok;

static const char *tokenizer_dir(void) {
    static char dir[4096];
    const char *env = getenv("SDC_TOKENIZER_DIR"), *ref = getenv("SDC_REFERENCE_DIR");
    if (env && *env)
        snprintf(dir, sizeof dir, "%s", env);
    else if (ref && *ref)
        snprintf(dir, sizeof dir, "%s/tiny-flux-schnell/tokenizer_2", ref);
    else
        snprintf(dir, sizeof dir, "%s/../shared/reference/tiny-flux-schnell/tokenizer_2", SDC_SOURCE_DIR);
    return dir;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    sdc_logger log = {sdc_log_stderr, NULL, SDC_LOG_WARN};
    if (sdc_unigram_load(tokenizer_dir(), &log, &tok) != SDC_OK) {
        fprintf(stderr, "fuzz_unigram: cannot load the tokenizer from %s (set SDC_TOKENIZER_DIR)\n", tokenizer_dir());
        abort();
    }
    return 0;
}

static void check_ids(const sdc_unigram *t, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= sdc_unigram_n_vocab(t)) __builtin_trap();
}

static void fuzz_json(const char *json, size_t len) {
    sdc_logger quiet = {NULL, NULL, SDC_LOG_ERROR}; /* drops every message */
    sdc_unigram *t = NULL;
    if (sdc_unigram_parse(json, len, &quiet, &t) != SDC_OK) {
        if (t) __builtin_trap();
        return;
    }
    int32_t ids[16];
    if (sdc_unigram_encode(t, "a photo \xe2\x96\x81 of </s>\x01 x", ids, 16, NULL) != SDC_OK) __builtin_trap();
    check_ids(t, ids, 16);
    sdc_unigram_free(t);
}

static void fuzz_text(const char *text, size_t len, int max_length) {
    const size_t max = len + 1;
    int32_t *ids = malloc((max + 1) * sizeof *ids);
    ids[max] = -7; /* the canary */
    size_t n = 0, n0 = 0;
    if (sdc_unigram_tokenize(tok, text, len, ids, max, &n) != SDC_OK) __builtin_trap();
    if (ids[max] != -7) __builtin_trap();
    check_ids(tok, ids, n < max ? n : max);
    if (sdc_unigram_tokenize(tok, text, len, NULL, 0, &n0) != SDC_OK || n0 != n) __builtin_trap();
    /* The prompt API takes a C string: the input up to its first NUL. */
    char *str = malloc(len + 1);
    memcpy(str, text, len);
    str[len] = 0;
    size_t total = 0, cut = 0;
    sdc_unigram_tokenize(tok, str, strlen(str), NULL, 0, &total);
    int32_t in[64];
    if (sdc_unigram_encode(tok, str, in, max_length, &cut) != SDC_OK) __builtin_trap();
    const size_t kept = total - cut;
    if (kept > (size_t)max_length - 1) __builtin_trap();
    check_ids(tok, in, (size_t)max_length);
    if (in[kept] != 1) __builtin_trap(); /* </s> */
    for (size_t i = kept + 1; i < (size_t)max_length; i++)
        if (in[i] != sdc_unigram_pad(tok)) __builtin_trap();
    free(str);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] & 1)
        fuzz_json((const char *)data + 1, size - 1);
    else
        fuzz_text((const char *)data + 1, size - 1, 1 + (data[0] >> 2));
    return 0;
}
