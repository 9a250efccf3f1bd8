/* fuzz_tokenizer.c - libFuzzer: arbitrary bytes through the CLIP tokenizer.
 *
 * The vocabulary comes from $SDC_TOKENIZER_DIR, else $SDC_REFERENCE_DIR/tiny-sd1/tokenizer, else
 * <source>/../shared/reference/tiny-sd1/tokenizer. Two tokenizers are loaded once: the plain one and
 * an SD 2.x style one (pad "!" and a bos matched after normalisation, via a temporary
 * tokenizer_config.json) so that both added-token paths run. The first input byte picks one.
 * Invariants: ids are in the vocabulary, the count is stable, at most 3 ids per input byte, and the
 * model input is BOS ... EOS pad.. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "tokenizer/clip_tokenizer.h"

#ifndef SDC_SOURCE_DIR
#define SDC_SOURCE_DIR "."
#endif

static sdc_clip_tokenizer *tok[2];

static const char *tokenizer_dir(void) {
    static char dir[4096];
    const char *env = getenv("SDC_TOKENIZER_DIR"), *ref = getenv("SDC_REFERENCE_DIR");
    if (env && *env)
        snprintf(dir, sizeof dir, "%s", env);
    else if (ref && *ref)
        snprintf(dir, sizeof dir, "%s/tiny-sd1/tokenizer", ref);
    else
        snprintf(dir, sizeof dir, "%s/../shared/reference/tiny-sd1/tokenizer", SDC_SOURCE_DIR);
    return dir;
}

/* A temporary folder linking dir's vocab.json and merges.txt, with an SD 2.x style config. */
static sdc_clip_tokenizer *load_sd2_style(const char *dir) {
    char tmp[] = "/tmp/sdc_fuzz_tokenizer_XXXXXX", path[8192], target[8192];
    if (!mkdtemp(tmp)) return NULL;
    const char *names[] = {"vocab.json", "merges.txt"};
    for (int i = 0; i < 2; i++) {
        snprintf(target, sizeof target, "%s/%s", dir, names[i]);
        snprintf(path, sizeof path, "%s/%s", tmp, names[i]);
        if (symlink(target, path) != 0) return NULL;
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tmp);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("{\"pad_token\": \"!\", \"bos_token\": {\"content\": \"<|startoftext|>\", \"normalized\": true}}", f);
        fclose(f);
    }
    sdc_clip_tokenizer *t = NULL;
    sdc_clip_tokenizer_load(tmp, NULL, &t);
    const char *all[] = {"vocab.json", "merges.txt", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, all[i]);
        unlink(path);
    }
    rmdir(tmp);
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = tokenizer_dir();
    sdc_logger log = {sdc_log_stderr, NULL, SDC_LOG_WARN};
    sdc_status st = sdc_clip_tokenizer_load(dir, &log, &tok[0]);
    tok[1] = st == SDC_OK ? load_sd2_style(dir) : NULL;
    if (!tok[0] || !tok[1]) {
        fprintf(stderr, "fuzz_tokenizer: cannot load the tokenizer from %s (set SDC_TOKENIZER_DIR)\n", dir);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const sdc_clip_tokenizer *t = tok[data[0] & 1];
    const char *text = (const char *)data + 1;
    size_t len = size - 1, cap = 3 * len + 1;
    int32_t *ids = malloc(cap * sizeof *ids);
    size_t n = sdc_clip_tokenize(t, text, len, ids, cap);
    if (n > 3 * len) __builtin_trap();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= sdc_clip_tokenizer_n_vocab(t)) __builtin_trap();
    if (sdc_clip_tokenize(t, text, len, NULL, 0) != n) __builtin_trap();
    /* The prompt API takes a C string: the input up to its first NUL. */
    char *str = malloc(len + 1);
    memcpy(str, text, len);
    str[len] = 0;
    int32_t in[77];
    size_t total = sdc_clip_tokenize(t, str, strlen(str), NULL, 0);
    size_t cut = sdc_clip_encode_prompt(t, str, in, 77), kept = total - cut;
    if (in[0] != sdc_clip_tokenizer_bos(t) || kept > 75 || in[kept + 1] != sdc_clip_tokenizer_eos(t)) __builtin_trap();
    for (size_t i = kept + 2; i < 77; i++)
        if (in[i] != sdc_clip_tokenizer_pad(t)) __builtin_trap();
    free(str);
    free(ids);
    return 0;
}
