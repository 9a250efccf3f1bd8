/* test_unigram.c - the T5 Unigram tokenizer (tiny-flux-schnell/tokenizer_2/tokenizer.json) against
 * transformers' ids for the 4 prompts of tiny-flux-golden/tokenizers.json (max_length 32), then edge
 * cases whose ids the `tokenizers` Python package (0.23.3) gave for the same file at max_length 12
 * (spaces, added tokens in the text, Nmt and NFKC, unknown characters, invalid UTF-8, truncation), a
 * variant of the file (Strip, Lowercase, Replace of a literal, WhitespaceSplit + Metaspace "first";
 * ids from the same package), and the refusals of files sdc cannot run. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "test_util.h"
#include "tokenizer/unigram.h"

#define EDGE_LEN 12

typedef struct edge_case {
    const char *text, *what;
    int32_t ids[EDGE_LEN];
} edge_case;

/* tokenizer.encode(text.decode("utf-8", errors="replace")) with truncation and padding to 12 */
static const edge_case edges[] = {
    {" lead", "leading space", {482, 12, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"trail ", "trailing space", {210, 49, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"a  b", "double space", {28, 61, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"x</s>y", "</s> inside", {286, 1, 273, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"</s>", "</s> alone", {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"<pad>a", "<pad> text", {0, 28, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"\x09 tab\x0anl", "tab, newline", {105, 26, 81, 21, 1, 0, 0, 0, 0, 0, 0, 0}},
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88",
     "CJK",
     {4, 1994, 1935, 1887, 4, 1950, 1982, 1927, 1, 0, 0, 0}},
    {"\xe2\x96\x81"
     "a",
     "U+2581 in the text",
     {28, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"\xef\xbd\x88\xef\xbd\x85\xef\xbd\x8c\xef\xbd\x8c\xef\xbd\x8f",
     "fullwidth (NFKC)",
     {1294, 14, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"\xef\xac\x81", "ligature (NFKC)", {225, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"\x01\x7f z", "control chars (Nmt)", {197, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"e\xcc\x81", "combining accent (NFKC composes)", {4, 1591, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80 ok",
     "unknown chars fuse into one <unk>",
     {4, 2, 1108, 1, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"\xef\xbc\x9cpad\xef\xbc\x9e", "fullwidth <pad> (NFKC, then the piece)", {4, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {" ", "one space", {4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"x\xe2\x80\x8by", "zero-width space (Nmt)", {286, 273, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"\xff\xfe a\xc3", "invalid UTF-8", {28, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {"a b c d e f g h i j k l m n", "truncation", {28, 61, 45, 55, 83, 64, 60, 116, 150, 233, 72, 1}},
    {"Stra\xc3\x9f"
     "e caf\xc3\xa9 na\xc3\xafve",
     "accents",
     {4, 1811, 491, 1823, 5, 209, 30, 1591, 134, 1818, 94, 1}},
};

/* The variant: normalizer Strip, Lowercase, NFKC, Replace "o" -> "0"; pre-tokenizer WhitespaceSplit +
 * Metaspace(prepend_scheme "first"). */
static const edge_case variant_cases[] = {
    {"  Hello World  ", "strip, lowercase, replace", {33, 170, 1821, 31, 1821, 19, 21, 12, 1, 0, 0, 0}},
    {"x</s>Foo bar", "first: only at offset 0", {286, 1, 30, 1821, 1821, 26, 44, 1, 0, 0, 0, 0}},
    {"A  PHOTO of", "whitespace split", {28, 15, 33, 1821, 6, 1821, 1821, 30, 1, 0, 0, 0}},
};

static cJSON *read_json(const char *path) {
    char *text;
    size_t len;
    if (sdc_read_file(path, test_logger(), &text, &len) != SDC_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    return j;
}

/* Encodes text to n ids and compares with want; prints the first difference. */
static void check_ids(const sdc_unigram *tok, const char *text, const int32_t *want, int n, const char *what) {
    int32_t got[64];
    size_t cut = 0;
    sdc_status st = sdc_unigram_encode(tok, text, got, n, &cut);
    int diff = -1;
    for (int i = 0; i < n && diff < 0; i++)
        if (got[i] != want[i]) diff = i;
    if (diff < 0)
        test_check(st == SDC_OK, "%s: %d ids equal the reference", what, n);
    else
        test_check(0, "%s: ids differ from the reference at %d: %d vs %d", what, diff, got[diff], want[diff]);
}

static void test_golden(const sdc_unigram *tok) {
    cJSON *g = read_json(test_ref_path("tiny-flux-golden/tokenizers.json"));
    test_check(g != NULL, "tiny-flux-golden/tokenizers.json read");
    if (!g) return;
    const int max_len = (int)cJSON_GetObjectItemCaseSensitive(g, "t5_max_length")->valuedouble;
    int n_cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(g, "cases")) {
        const char *prompt = cJSON_GetObjectItemCaseSensitive(c, "prompt")->valuestring;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(c, "t5_input_ids");
        int32_t want[64];
        int n = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ids) if (n < 64) want[n++] = (int32_t)e->valuedouble;
        char what[160];
        snprintf(what, sizeof what, "golden \"%.60s\"", prompt);
        test_check(n == max_len, "%s: reference row of %d ids (max_length %d)", what, n, max_len);
        check_ids(tok, prompt, want, n, what);
        n_cases++;
    }
    test_check(n_cases == 4, "golden cases checked: %d (want 4)", n_cases);
    cJSON_Delete(g);
}

static void test_edges(const sdc_unigram *tok) {
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        check_ids(tok, edges[i].text, edges[i].ids, EDGE_LEN, edges[i].what);
    /* tokenize: the text's ids without </s>; the count does not depend on max */
    size_t n = 0, n0 = 0;
    int32_t ids[32];
    sdc_unigram_tokenize(tok, "a b c d e f g h i j k l m n", 27, ids, 32, &n);
    sdc_unigram_tokenize(tok, "a b c d e f g h i j k l m n", 27, NULL, 0, &n0);
    test_check(n == 14 && n0 == 14 && ids[13] == 81, "tokenize: 14 ids without </s> (%zu, %zu with max 0)", n, n0);
    size_t cut = 0;
    sdc_unigram_encode(tok, "a b c d e f g h i j k l m n", ids, 12, &cut);
    test_check(cut == 3, "encode at max_length 12 cuts 3 of 14 ids: %zu", cut);
    sdc_unigram_encode(tok, "", ids, 1, &cut);
    test_check(ids[0] == 1 && cut == 0, "max_length 1: only </s> (%d)", ids[0]);
    test_check(sdc_unigram_encode(tok, "a", ids, 0, &cut) == SDC_ERR_INVALID_ARG, "max_length 0 refused");
    /* a long prompt: linear work, bounded memory, every id in the vocabulary */
    const size_t big = 200000;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++) text[i] = "ab cde\xc3\xa9"[i % 8];
    text[big] = 0;
    double t0 = test_now();
    int32_t *all = malloc(big * sizeof *all);
    sdc_status st = sdc_unigram_tokenize(tok, text, big, all, big, &n);
    int in_range = st == SDC_OK;
    for (size_t i = 0; i < n && i < big; i++) in_range &= all[i] >= 0 && all[i] < sdc_unigram_n_vocab(tok);
    test_check(in_range && n > 0 && n <= big, "200 kB prompt: %zu ids, all in the vocabulary, %.3f s", n,
               test_now() - t0);
    free(all);
    free(text);
}

/* The tiny file with another normalizer / pre-tokenizer, or broken, through sdc_unigram_parse. */
static sdc_status parse_variant(const char *normalizer, const char *pre, const char *model_patch, sdc_unigram **out) {
    cJSON *j = read_json(test_ref_path("tiny-flux-schnell/tokenizer_2/tokenizer.json"));
    if (normalizer) cJSON_ReplaceItemInObjectCaseSensitive(j, "normalizer", cJSON_Parse(normalizer));
    if (pre) cJSON_ReplaceItemInObjectCaseSensitive(j, "pre_tokenizer", cJSON_Parse(pre));
    if (model_patch) {
        cJSON *patch = cJSON_Parse(model_patch), *model = cJSON_GetObjectItemCaseSensitive(j, "model");
        for (cJSON *e = patch->child; e; e = e->next)
            cJSON_ReplaceItemInObjectCaseSensitive(model, e->string, cJSON_Duplicate(e, 1));
        cJSON_Delete(patch);
    }
    char *text = cJSON_PrintUnformatted(j);
    sdc_status st = sdc_unigram_parse(text, strlen(text), test_capture_logger(), out);
    free(text);
    cJSON_Delete(j);
    return st;
}

static void test_variants(void) {
    sdc_unigram *v = NULL;
    sdc_status st = parse_variant(
        "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true},"
        "{\"type\":\"Lowercase\"},{\"type\":\"NFKC\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\"o\"},"
        "\"content\":\"0\"}]}",
        "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"WhitespaceSplit\"},{\"type\":\"Metaspace\","
        "\"replacement\":\"\xe2\x96\x81\",\"prepend_scheme\":\"first\",\"split\":true}]}",
        NULL, &v);
    test_check(st == SDC_OK, "variant file loads: %s", sdc_status_str(st));
    for (size_t i = 0; v && i < sizeof variant_cases / sizeof variant_cases[0]; i++)
        check_ids(v, variant_cases[i].text, variant_cases[i].ids, EDGE_LEN, variant_cases[i].what);
    sdc_unigram_free(v);

    struct {
        const char *norm, *pre, *model, *what;
        sdc_status want;
    } bad[] = {
        {NULL, NULL, "{\"type\":\"BPE\"}", "a BPE model", SDC_ERR_UNSUPPORTED},
        {NULL, NULL, "{\"byte_fallback\":true}", "byte_fallback", SDC_ERR_UNSUPPORTED},
        {NULL, NULL, "{\"unk_id\":5000}", "unk_id outside the vocab", SDC_ERR_UNSUPPORTED},
        {NULL, NULL, "{\"vocab\":[[\"a\",\"x\"]],\"unk_id\":0}", "a score that is not a number", SDC_ERR_FORMAT},
        {NULL, NULL, "{\"vocab\":[]}", "an empty vocab", SDC_ERR_FORMAT},
        {"{\"type\":\"BertNormalizer\"}", NULL, NULL, "an unknown normalizer", SDC_ERR_UNSUPPORTED},
        {"{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"\\\\s+\"},\"content\":\" \"}", NULL, NULL, "a general regex",
         SDC_ERR_UNSUPPORTED},
        {NULL, "{\"type\":\"ByteLevel\"}", NULL, "a ByteLevel pre-tokenizer", SDC_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st = parse_variant(bad[i].norm, bad[i].pre, bad[i].model, &v);
        test_check(st == bad[i].want && v == NULL, "%s refused: %s (want %s)", bad[i].what, sdc_status_str(st),
                   sdc_status_str(bad[i].want));
        sdc_unigram_free(v);
    }
    st = sdc_unigram_parse("{\"model\":", 9, test_capture_logger(), &v);
    test_check(st == SDC_ERR_FORMAT && v == NULL, "truncated JSON refused: %s", sdc_status_str(st));
    st = sdc_unigram_load("/nonexistent", test_capture_logger(), &v);
    test_check(st == SDC_ERR_NOT_FOUND && v == NULL, "missing folder: %s", sdc_status_str(st));
}

int main(void) {
    sdc_unigram *tok = NULL;
    sdc_status st = sdc_unigram_load(test_ref_path("tiny-flux-schnell/tokenizer_2"), test_logger(), &tok);
    test_check(st == SDC_OK, "tokenizer_2 loads: %s", sdc_status_str(st));
    if (!tok) return test_finish();
    test_check(sdc_unigram_pad(tok) == 0 && sdc_unigram_unk(tok) == 2 && sdc_unigram_n_vocab(tok) == 2000,
               "pad 0, unk 2, 2000 ids: %d, %d, %d", sdc_unigram_pad(tok), sdc_unigram_unk(tok),
               sdc_unigram_n_vocab(tok));
    test_golden(tok);
    test_edges(tok);
    test_variants();
    sdc_unigram_free(tok);
    return test_finish();
}
