/* test_tokenizer.c - the CLIP tokenizer against transformers' ids for every case of
 * tiny-sd1-golden/tokenizer.json, from each way the vocabulary can be stored; then the pad token
 * (set_pad and a tokenizer_config.json), invalid UTF-8, truncation and the error codes. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"
#include "test_util.h"
#include "tokenizer/clip_tokenizer.h"

static cJSON *read_json(const char *path) {
    char *text;
    size_t len;
    if (sdc_read_file(path, test_logger(), &text, &len) != SDC_OK) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    return j;
}

/* The ints of a JSON array into a malloc'd array; *n = its length. */
static int32_t *json_ints(const cJSON *arr, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(arr);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) v[i++] = (int32_t)e->valuedouble;
    return v;
}

/* Index of the first difference of a[0..na) and b[0..nb), or -1 when equal. */
static long first_diff(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return (long)i;
    return na == nb ? -1 : (long)n;
}

/* Every golden case: sdc_clip_tokenize against tokens_no_special and sdc_clip_encode_prompt (with
 * n_ctx = the golden row length) against input_ids, plus the count of cut tokens. */
static void check_golden(const sdc_clip_tokenizer *tok, const cJSON *golden, const char *how) {
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(golden, "cases"), *c;
    int n_ok = 0, n_cases = 0;
    cJSON_ArrayForEach(c, cases) {
        const char *prompt = cJSON_GetObjectItemCaseSensitive(c, "prompt")->valuestring;
        size_t n_ref, n_ctx;
        int32_t *ref = json_ints(cJSON_GetObjectItemCaseSensitive(c, "tokens_no_special"), &n_ref);
        int32_t *ref_ids = json_ints(cJSON_GetObjectItemCaseSensitive(c, "input_ids"), &n_ctx);
        size_t cap = n_ref + 8;
        int32_t *got = malloc(cap * sizeof *got), *ids = malloc(n_ctx * sizeof *ids);
        size_t n_got = sdc_clip_tokenize(tok, prompt, strlen(prompt), got, cap);
        size_t cut = sdc_clip_encode_prompt(tok, prompt, ids, (int)n_ctx);
        size_t want_cut = n_ref > n_ctx - 2 ? n_ref - (n_ctx - 2) : 0;
        long d1 = first_diff(got, n_got, ref, n_ref), d2 = first_diff(ids, n_ctx, ref_ids, n_ctx);
        int ok = d1 < 0 && d2 < 0 && cut == want_cut;
        if (!ok)
            test_check(
                0, "%s: \"%s\": %zu tokens (ref %zu), first difference at %ld (input_ids at %ld), cut %zu (ref %zu)",
                how, prompt, n_got, n_ref, d1, d2, cut, want_cut);
        n_ok += ok;
        n_cases++;
        free(ref);
        free(ref_ids);
        free(got);
        free(ids);
    }
    test_check(n_cases > 0 && n_ok == n_cases, "%s: %d of %d golden prompts give transformers' ids exactly", how, n_ok,
               n_cases);
}

static int write_file(const char *dir, const char *name, const char *text, size_t len) {
    char *path = sdc_path_join(dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(text, 1, len, f) == len;
    if (f) fclose(f);
    free(path);
    return ok;
}

static int copy_file(const char *from, const char *dir, const char *name) {
    char *text;
    size_t len;
    if (sdc_read_file(from, test_logger(), &text, &len) != SDC_OK) return 0;
    int ok = write_file(dir, name, text, len);
    free(text);
    return ok;
}

static void remove_files(const char *dir) {
    const char *names[] = {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                           "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = sdc_path_join(dir, names[i]);
        unlink(p);
        free(p);
    }
}

static size_t count_tokens(const sdc_clip_tokenizer *tok, const char *s) {
    return sdc_clip_tokenize(tok, s, strlen(s), NULL, 0);
}

/* tokens(a) == tokens(b) for byte strings of given lengths. */
static int same_tokens(const sdc_clip_tokenizer *tok, const char *a, size_t na, const char *b, size_t nb) {
    int32_t x[64], y[64];
    size_t n = sdc_clip_tokenize(tok, a, na, x, 64), m = sdc_clip_tokenize(tok, b, nb, y, 64);
    return n == m && n <= 64 && memcmp(x, y, n * sizeof *x) == 0;
}

/* The pad token: set_pad, and an SD 2.x style folder whose tokenizer_config.json names "!". As in
 * transformers, a pad token named by the config is also an added token: each "!" of the prompt is
 * then a token of its own (id of "!", not "!!</w>"). */
static void check_pad(const sdc_clip_tokenizer *tok, const char *tmp, int32_t bang_id) {
    const char *tokdir = test_ref_path("tiny-sd1/tokenizer");
    char *vocab = sdc_path_join(tokdir, "vocab.json"), *merges = sdc_path_join(tokdir, "merges.txt");
    sdc_clip_tokenizer *t2 = NULL;
    sdc_status st = sdc_clip_tokenizer_load_files(vocab, merges, test_capture_logger(), &t2);
    test_check(st == SDC_OK, "load_files: %s", sdc_status_str(st));
    if (!t2) return;
    test_check(sdc_clip_tokenizer_pad(t2) == sdc_clip_tokenizer_eos(t2), "default pad is <|endoftext|> (%d)",
               sdc_clip_tokenizer_pad(t2));
    st = sdc_clip_tokenizer_set_pad(t2, "!");
    int32_t ids[77];
    sdc_clip_encode_prompt(t2, "a horse", ids, 77);
    test_check(st == SDC_OK && sdc_clip_tokenizer_pad(t2) == bang_id && ids[76] == bang_id &&
                   ids[3] == sdc_clip_tokenizer_eos(t2),
               "set_pad(\"!\"): pad id %d (vocab %d), ids[3] %d, ids[76] %d", sdc_clip_tokenizer_pad(t2), bang_id,
               ids[3], ids[76]);
    st = sdc_clip_tokenizer_set_pad(t2, "<no such token>");
    test_check(st == SDC_ERR_NOT_FOUND && sdc_clip_tokenizer_pad(t2) == bang_id, "set_pad of an unknown token: %s",
               sdc_status_str(st));
    sdc_clip_tokenizer_free(t2);

    int ok = copy_file(vocab, tmp, "vocab.json") && copy_file(merges, tmp, "merges.txt");
    const char *configs[] = {
        "{\"pad_token\": \"!\", \"model_max_length\": 77}",
        "{\"pad_token\": {\"content\": \"!\", \"normalized\": false, \"__type\": \"AddedToken\"}}"};
    for (int k = 0; k < 2 && ok; k++) {
        ok = write_file(tmp, "tokenizer_config.json", configs[k], strlen(configs[k]));
        st = sdc_clip_tokenizer_load(tmp, test_logger(), &t2);
        if (st != SDC_OK) {
            test_check(0, "load SD 2.x style folder: %s", sdc_status_str(st));
            break;
        }
        size_t n = sdc_clip_encode_prompt(t2, "a horse!!", ids, 77);
        int32_t plain[8];
        size_t np = sdc_clip_tokenize(t2, "a horse", 7, plain, 8);
        test_check(n == 0 && np == 2 && ids[1] == plain[0] && ids[2] == plain[1] && ids[3] == bang_id &&
                       ids[4] == bang_id && ids[5] == sdc_clip_tokenizer_eos(t2) && ids[6] == bang_id &&
                       ids[76] == bang_id,
                   "pad \"!\" from tokenizer_config.json (%s form): \"a horse!!\" -> %d %d %d %d %d %d %d ... %d",
                   k ? "object" : "string", ids[0], ids[1], ids[2], ids[3], ids[4], ids[5], ids[6], ids[76]);
        sdc_clip_tokenizer_free(t2);
    }
    /* special_tokens_map.json overrides tokenizer_config.json; a "normalized" special matches after
     * lowercasing (both as transformers 5.17 loads them). */
    const char *cfg =
        "{\"pad_token\": \"<|endoftext|>\", \"bos_token\": {\"content\": \"<|startoftext|>\", \"normalized\": true}}";
    const char *map = "{\"pad_token\": \"!\"}";
    ok = ok && write_file(tmp, "tokenizer_config.json", cfg, strlen(cfg)) &&
        write_file(tmp, "special_tokens_map.json", map, strlen(map));
    st = ok ? sdc_clip_tokenizer_load(tmp, test_logger(), &t2) : SDC_ERR_IO;
    if (st == SDC_OK) {
        int32_t x[8];
        size_t n = sdc_clip_tokenize(t2, "<|STARTOFTEXT|>", 15, x, 8);
        test_check(sdc_clip_tokenizer_pad(t2) == bang_id && n == 1 && x[0] == sdc_clip_tokenizer_bos(t2),
                   "special_tokens_map.json pad %d; normalized bos: \"<|STARTOFTEXT|>\" -> %zu token(s), first %d",
                   sdc_clip_tokenizer_pad(t2), n, x[0]);
        n = sdc_clip_tokenize(tok, "<|STARTOFTEXT|>", 15, x, 8);
        test_check(n > 1, "without the flag \"<|STARTOFTEXT|>\" is plain text: %zu tokens", n);
        sdc_clip_tokenizer_free(t2);
    } else {
        test_check(0, "load folder with special_tokens_map.json: %s", sdc_status_str(st));
    }
    remove_files(tmp);
    free(vocab);
    free(merges);
}

/* Invalid UTF-8: each maximal invalid subpart is one U+FFFD (the Unicode standard's own examples),
 * and random bytes never crash and only give ids of the vocabulary. */
static void check_invalid_utf8(const sdc_clip_tokenizer *tok, int32_t vocab_n) {
    /* Unicode 15, section 3.9, table 3-8: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 */
    const char bad[] = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
    const char good[] = "a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                        "b\xEF\xBF\xBD"
                        "c\xEF\xBF\xBD\xEF\xBF\xBD"
                        "d";
    test_check(same_tokens(tok, bad, sizeof bad - 1, good, sizeof good - 1),
               "invalid UTF-8 (Unicode table 3-8) tokenizes as its U+FFFD replacement");
    const char *pairs[][2] = {
        {"x\xFFy", "x\xEF\xBF\xBDy"},                                             /* a byte that never starts UTF-8 */
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* an encoded surrogate: 3 */
        {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},                                 /* overlong: 2 */
        {"ab\xE2\x82", "ab\xEF\xBF\xBD"},                                         /* truncated at the end: 1 */
        {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* above U+10FFFF */
    };
    int n_ok = 0, n = (int)(sizeof pairs / sizeof pairs[0]);
    for (int i = 0; i < n; i++)
        n_ok += same_tokens(tok, pairs[i][0], strlen(pairs[i][0]), pairs[i][1], strlen(pairs[i][1]));
    int32_t fffd[8];
    size_t nf = sdc_clip_tokenize(tok, "\xFF", 1, fffd, 8);
    test_check(n_ok == n && nf >= 1, "%d of %d invalid sequences give the U+FFFD tokens (U+FFFD -> %zu tokens)", n_ok,
               n, nf);

    enum {
        N_STR = 2000,
        MAX_LEN = 300
    };
    float *u = malloc(N_STR * (MAX_LEN + 1) * sizeof *u);
    test_fill_uniform(u, N_STR * (MAX_LEN + 1), 1234, 0.0f, 1.0f);
    char buf[MAX_LEN];
    int32_t ids[4 * MAX_LEN + 8];
    size_t bad_ids = 0, total = 0, too_many = 0, unstable = 0;
    for (int s = 0; s < N_STR; s++) {
        const float *r = u + (size_t)s * (MAX_LEN + 1);
        size_t len = (size_t)(r[0] * MAX_LEN);
        for (size_t i = 0; i < len; i++) buf[i] = (char)(int)(r[i + 1] * 255.999f);
        size_t k = sdc_clip_tokenize(tok, buf, len, ids, sizeof ids / sizeof ids[0]);
        /* every byte gives at most one U+FFFD (3 bytes, at most 3 BPE symbols) */
        if (k > 3 * len) too_many++;
        for (size_t i = 0; i < k && i < sizeof ids / sizeof ids[0]; i++) bad_ids += ids[i] < 0 || ids[i] >= vocab_n;
        unstable += sdc_clip_tokenize(tok, buf, len, NULL, 0) != k;
        total += k;
    }
    free(u);
    test_check(bad_ids == 0 && too_many == 0 && unstable == 0,
               "%d random byte strings: %zu tokens, %zu out of the vocabulary, %zu too long, %zu unstable counts",
               N_STR, total, bad_ids, too_many, unstable);
}

/* Normaliser and split rules that the golden prompts do not reach, as pairs that must tokenize
 * alike (each checked against transformers 5.17 / tokenizers 0.23 when written). */
static void check_equivalences(const sdc_clip_tokenizer *tok) {
    const char *pairs[][3] = {
        {"e\xCC\x81t\xC3\xA9", "\xC3\xA9t\xC3\xA9", "NFC composes e + U+0301"},
        {"a\xC2\xA0"
         "b\xE3\x80\x80"
         "c\xE2\x80\xA8"
         "d\xC2\x85"
         "e\x0B"
         "f",
         "a b c d e f", "Unicode whitespace"},
        {"a\xE2\x80\x8B"
         "b",
         "a \xE2\x80\x8B b", "U+200B is not whitespace"},
        {"\xC4\xB0stanbul", "i \xCC\x87 stanbul", "U+0130 lowercases to i + U+0307"},
        {"\xCE\xA3\xCE\x91\xCE\xA3", "\xCF\x83\xCE\xB1\xCF\x83", "no final-sigma rule"},
        {"<|STARTOFTEXT|>|x", "<| startoftext |> | x", "a lowercased special literal is split again"},
        {"it's they're ''s", "it 's they 're '' s", "contractions"},
        {"x\xC2\xB2y\xD9\xA3\xD9\xA4", "x \xC2\xB2 y \xD9\xA3 \xD9\xA4", "\\p{N} one at a time"},
        {"a.,!?b", "a .,!? b", "runs of other characters"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        test_check(same_tokens(tok, pairs[i][0], strlen(pairs[i][0]), pairs[i][1], strlen(pairs[i][1])), "%s",
                   pairs[i][2]);
    int32_t x[8];
    size_t n = sdc_clip_tokenize(tok, "!<|endoftext|>x", 15, x, 8);
    test_check(n == 3 && x[1] == sdc_clip_tokenizer_eos(tok), "a raw special literal inside punctuation: %zu tokens",
               n);
}

/* A long prompt keeps its first n_ctx - 2 tokens and reports the rest; a 1 MB prompt works. */
static void check_long(const sdc_clip_tokenizer *tok) {
    const char *unit = "a photo of an astronaut riding a horse on mars, ";
    size_t ulen = strlen(unit), reps = 40, n = ulen * reps;
    char *text = malloc(n + 1);
    for (size_t i = 0; i < reps; i++) memcpy(text + i * ulen, unit, ulen);
    text[n] = 0;
    size_t per_unit = count_tokens(tok, unit), total = count_tokens(tok, text);
    int32_t *all = malloc(total * sizeof *all), ids[77], sentinel[4] = {-7, -7, -7, -7};
    int32_t *few = malloc(14 * sizeof *few);
    sdc_clip_tokenize(tok, text, n, all, total);
    memcpy(few + 10, sentinel, sizeof sentinel);
    size_t nfew = sdc_clip_tokenize(tok, text, n, few, 10);
    size_t cut = sdc_clip_encode_prompt(tok, text, ids, 77);
    test_check(total == per_unit * reps && cut == total - 75 && ids[0] == sdc_clip_tokenizer_bos(tok) &&
                   ids[76] == sdc_clip_tokenizer_eos(tok) && memcmp(ids + 1, all, 75 * sizeof *ids) == 0,
               "long prompt: %zu tokens (%zu per unit x %zu), %zu cut (want %zu), ids[76] %d", total, per_unit, reps,
               cut, total - 75, ids[76]);
    test_check(nfew == total && memcmp(few + 10, sentinel, sizeof sentinel) == 0 &&
                   memcmp(few, all, 10 * sizeof *few) == 0,
               "tokenize with max 10 returns the full count %zu and writes only 10 ids", nfew);
    size_t cut8 = sdc_clip_encode_prompt(tok, text, ids, 8);
    test_check(cut8 == total - 6 && ids[7] == sdc_clip_tokenizer_eos(tok), "n_ctx 8: %zu cut", cut8);
    free(all);
    free(few);
    free(text);

    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    for (size_t i = 0; i < big; i++) huge[i] = "ab c\xC3\xA9!"[i % 7];
    huge[big] = 0;
    double t0 = test_now();
    size_t nh = count_tokens(tok, huge);
    double dt = test_now() - t0;
    size_t cuth = sdc_clip_encode_prompt(tok, huge, ids, 77);
    test_check(nh > 75 && cuth == nh - 75, "1 MiB prompt: %zu tokens in %.3f s, %zu cut", nh, dt, cuth);
    free(huge);
}

/* Missing files -> SDC_ERR_NOT_FOUND, malformed JSON or merges -> SDC_ERR_FORMAT. */
static void check_errors(const char *tmp) {
    sdc_clip_tokenizer *t = (sdc_clip_tokenizer *)1;
    sdc_status st = sdc_clip_tokenizer_load(tmp, test_capture_logger(), &t);
    test_check(st == SDC_ERR_NOT_FOUND && t == NULL, "empty folder: %s (%s)", sdc_status_str(st), test_last_error());
    st = sdc_clip_tokenizer_load_json("/nonexistent/tokenizer.json", test_capture_logger(), &t);
    test_check(st == SDC_ERR_NOT_FOUND, "missing tokenizer.json: %s", sdc_status_str(st));
    const char *merges = test_ref_path("tiny-sd1/tokenizer/merges.txt");
    st = sdc_clip_tokenizer_load_files("/nonexistent/vocab.json", merges, test_capture_logger(), &t);
    test_check(st == SDC_ERR_NOT_FOUND, "missing vocab.json: %s", sdc_status_str(st));

    struct {
        const char *vocab, *merges, *what;
    } bad[] = {
        {"{\"a\": 0, \"b\": ", "a b\n", "truncated vocab.json"},
        {"[1, 2, 3]", "", "vocab.json not an object"},
        {"{\"a\": \"zero\"}", "", "a non-numeric id"},
        {"{\"a\": -1}", "", "a negative id"},
        {"{\"a\": 0, \"b\": 1, \"ab\": 2}", "#version: 0.2\na c\n", "a merge of an unknown token"},
        {"{\"a\": 0, \"b\": 1}", "a b\n", "a merge whose result is missing"},
        {"{\"a\": 0, \"b\": 1, \"ab\": 2}", "ab\n", "a merge line without a space"},
        {"{\"a\": 0, \"b\": 1, \"ab\": 2}", "a b\n", "no <|startoftext|>"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(tmp, "vocab.json", bad[i].vocab, strlen(bad[i].vocab));
        write_file(tmp, "merges.txt", bad[i].merges, strlen(bad[i].merges));
        st = sdc_clip_tokenizer_load(tmp, test_capture_logger(), &t);
        test_check(st == SDC_ERR_FORMAT && t == NULL, "%s: %s (%s)", bad[i].what, sdc_status_str(st),
                   test_last_error());
        sdc_clip_tokenizer_free(t);
    }
    const char *json = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}";
    char *path = sdc_path_join(tmp, "tokenizer.json");
    write_file(tmp, "tokenizer.json", json, strlen(json));
    st = sdc_clip_tokenizer_load_json(path, test_capture_logger(), &t);
    test_check(st == SDC_ERR_FORMAT, "tokenizer.json with a one-element merge: %s (%s)", sdc_status_str(st),
               test_last_error());
    free(path);
    remove_files(tmp);
}

static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

/* An empty token in vocab.json, twice (found by fuzz_tokenizer_files: the lookup offset a NULL pool, undefined
 * behaviour that the sanitizer run stops on): loads or is refused, cleanly. */
static void empty_token(void) {
    char dir[] = "/tmp/sdc-tok-empty-XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "mkdtemp")) return;
    const char *vocab = "{\"\": 3, \"\": 4, \"a</w>\": 5, \"<|startoftext|>\": 0, \"<|endoftext|>\": 1}";
    const char *merges = "#version: 0.2\n";
    sdc_clip_tokenizer *tok = NULL;
    sdc_status st = SDC_ERR_IO;
    if (write_file(dir, "vocab.json", vocab, strlen(vocab)) && write_file(dir, "merges.txt", merges, strlen(merges)))
        st = sdc_clip_tokenizer_load(dir, test_capture_logger(), &tok);
    test_check(st == SDC_OK || st == SDC_ERR_FORMAT, "vocab.json with an empty token, twice: %s", sdc_status_str(st));
    sdc_clip_tokenizer_free(tok);
    remove_files(dir);
    rmdir(dir);
}

int main(void) {
    empty_token();
    cJSON *golden = read_json(test_ref_path("tiny-sd1-golden/tokenizer.json"));
    if (!test_check(golden != NULL, "read tiny-sd1-golden/tokenizer.json")) return test_finish();
    cJSON *vocab = read_json(test_ref_path("tiny-sd1/tokenizer/vocab.json"));
    const cJSON *bang = cJSON_GetObjectItemCaseSensitive(vocab, "!");
    const cJSON *pad_name = cJSON_GetObjectItemCaseSensitive(golden, "pad_token");
    const cJSON *pad_ref =
        cJSON_GetObjectItemCaseSensitive(vocab, cJSON_IsString(pad_name) ? pad_name->valuestring : "");
    int32_t vocab_n = cJSON_GetArraySize(vocab), bang_id = cJSON_IsNumber(bang) ? (int32_t)bang->valuedouble : -1;
    test_check(vocab_n > 0 && bang_id >= 0 && cJSON_IsNumber(pad_ref), "vocab.json: %d tokens, \"!\" = %d", vocab_n,
               bang_id);

    sdc_clip_tokenizer *tok = NULL;
    /* CPU seconds, not wall time: a guard against quadratic loading that a busy machine cannot trip */
    double t0 = cpu_seconds();
    sdc_status st = sdc_clip_tokenizer_load(test_ref_path("tiny-sd1/tokenizer"), test_logger(), &tok);
    double t_load = cpu_seconds() - t0;
    if (!test_check(st == SDC_OK, "load tiny-sd1/tokenizer: %s", sdc_status_str(st))) return test_finish();
    test_check_err("load vocab.json + merges.txt", "CPU seconds", t_load, 1.0);
    test_check(cJSON_IsNumber(pad_ref) && sdc_clip_tokenizer_pad(tok) == (int32_t)pad_ref->valuedouble,
               "pad id %d is the golden pad_token's", sdc_clip_tokenizer_pad(tok));
    test_check(sdc_clip_tokenizer_n_vocab(tok) == vocab_n, "n_vocab %d (vocab.json has %d tokens)",
               sdc_clip_tokenizer_n_vocab(tok), vocab_n);
    check_golden(tok, golden, "tiny-sd1/tokenizer");

    sdc_clip_tokenizer *tj = NULL;
    t0 = cpu_seconds();
    st = sdc_clip_tokenizer_load_json(test_ref_path("tiny-sd1/tokenizer/tokenizer.json"), test_logger(), &tj);
    double t_json = cpu_seconds() - t0;
    if (test_check(st == SDC_OK, "load tokenizer.json: %s", sdc_status_str(st))) {
        test_check_err("load tokenizer.json", "CPU seconds", t_json, 1.0);
        check_golden(tj, golden, "tokenizer.json");
        sdc_clip_tokenizer_free(tj);
    }
    sdc_clip_tokenizer *tc = NULL;
    st = sdc_clip_tokenizer_load(test_ref_path("clip-tokenizer"), test_logger(), &tc);
    if (test_check(st == SDC_OK, "load clip-tokenizer: %s", sdc_status_str(st))) {
        check_golden(tc, golden, "clip-tokenizer");
        sdc_clip_tokenizer_free(tc);
    }

    char tmp[] = "/tmp/sdc_test_tokenizer_XXXXXX";
    if (test_check(mkdtemp(tmp) != NULL, "temporary folder %s", tmp)) {
        check_pad(tok, tmp, bang_id);
        check_errors(tmp);
        rmdir(tmp);
    }
    check_equivalences(tok);
    check_invalid_utf8(tok, vocab_n);
    check_long(tok);

    sdc_clip_tokenizer_free(tok);
    sdc_clip_tokenizer_free(NULL);
    cJSON_Delete(vocab);
    cJSON_Delete(golden);
    return test_finish();
}
