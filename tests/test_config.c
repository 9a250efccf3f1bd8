/* test_config.c - the JSON config getters: values of each type, missing keys, wrong types, the
 * int-or-list form, defaults, bad JSON from memory and from files, and the real configs of the
 * reference model. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "io/config.h"
#include "test_util.h"

static const char *const doc = "{ \"i\": 42, \"neg\": -7, \"f\": 0.18215, \"fi\": 3, \"half\": 1.5, \"big\": 3e10,\n"
                               "  \"t\": true, \"no\": false, \"s\": \"silu\", \"nul\": null,\n"
                               "  \"list\": [32, 64, 64, 64], \"one\": 8, \"empty\": [], \"mixed\": [1, \"x\"],\n"
                               "  \"strs\": [\"CrossAttnDownBlock2D\", \"DownBlock2D\"], \"strbad\": [\"a\", 1],\n"
                               "  \"obj\": {\"k\": 1} }";

static cJSON *parse(const char *text) {
    cJSON *j = NULL;
    sdc_status st = sdc_json_parse(text, strlen(text), "doc", test_logger(), &j);
    test_check(st == SDC_OK && j, "parse the test document");
    return j;
}

/* st must be want, and an error must leave a message that names the key. */
static void expect(sdc_status st, sdc_status want, const char *key, const char *what) {
    const char *msg = test_last_error();
    int ok = st == want && (want == SDC_OK || (msg[0] && strstr(msg, key)));
    test_check(ok, "%s: %s (want %s), message \"%s\"", what, sdc_status_str(st), sdc_status_str(want), msg);
}

static void test_getters(const cJSON *j) {
    int i = 0, b = -1, n = 0, li[8];
    double f = 0;
    const char *s = NULL, *sl[4];
    test_check(sdc_cfg_int(j, "i", "doc", test_capture_logger(), &i) == SDC_OK && i == 42, "int 42: %d", i);
    test_check(sdc_cfg_int(j, "neg", "doc", test_capture_logger(), &i) == SDC_OK && i == -7, "int -7: %d", i);
    test_check(sdc_cfg_int(j, "fi", "doc", test_capture_logger(), &i) == SDC_OK && i == 3, "int from 3: %d", i);
    test_check(sdc_cfg_float(j, "f", "doc", test_capture_logger(), &f) == SDC_OK && f == 0.18215, "float %.17g", f);
    test_check(sdc_cfg_float(j, "i", "doc", test_capture_logger(), &f) == SDC_OK && f == 42.0, "float from int");
    test_check(sdc_cfg_bool(j, "t", "doc", test_capture_logger(), &b) == SDC_OK && b == 1, "bool true");
    test_check(sdc_cfg_bool(j, "no", "doc", test_capture_logger(), &b) == SDC_OK && b == 0, "bool false");
    test_check(sdc_cfg_string(j, "s", "doc", test_capture_logger(), &s) == SDC_OK && s && strcmp(s, "silu") == 0,
               "string silu");

    expect(sdc_cfg_int(j, "absent", "doc", test_capture_logger(), &i), SDC_ERR_NOT_FOUND, "absent", "int missing");
    test_check(strstr(test_last_error(), "doc: missing key 'absent'") != NULL,
               "message reads \"<what>: missing key 'x'\": \"%s\"", test_last_error());
    expect(sdc_cfg_int(j, "nul", "doc", test_capture_logger(), &i), SDC_ERR_NOT_FOUND, "nul", "int null");
    expect(sdc_cfg_float(j, "absent", "doc", test_capture_logger(), &f), SDC_ERR_NOT_FOUND, "absent", "float missing");
    expect(sdc_cfg_bool(j, "absent", "doc", test_capture_logger(), &b), SDC_ERR_NOT_FOUND, "absent", "bool missing");
    expect(sdc_cfg_string(j, "absent", "doc", test_capture_logger(), &s), SDC_ERR_NOT_FOUND, "absent",
           "string missing");
    expect(sdc_cfg_int_list(j, "absent", "doc", test_capture_logger(), li, 8, &n), SDC_ERR_NOT_FOUND, "absent",
           "int list missing");
    expect(sdc_cfg_string_list(j, "absent", "doc", test_capture_logger(), sl, 4, &n), SDC_ERR_NOT_FOUND, "absent",
           "string list missing");

    expect(sdc_cfg_int(j, "s", "doc", test_capture_logger(), &i), SDC_ERR_FORMAT, "s", "int from a string");
    expect(sdc_cfg_int(j, "half", "doc", test_capture_logger(), &i), SDC_ERR_FORMAT, "half", "int from 1.5");
    expect(sdc_cfg_int(j, "big", "doc", test_capture_logger(), &i), SDC_ERR_FORMAT, "big", "int from 3e10");
    expect(sdc_cfg_int(j, "t", "doc", test_capture_logger(), &i), SDC_ERR_FORMAT, "t", "int from true");
    expect(sdc_cfg_float(j, "s", "doc", test_capture_logger(), &f), SDC_ERR_FORMAT, "s", "float from a string");
    expect(sdc_cfg_bool(j, "i", "doc", test_capture_logger(), &b), SDC_ERR_FORMAT, "i", "bool from a number");
    expect(sdc_cfg_string(j, "list", "doc", test_capture_logger(), &s), SDC_ERR_FORMAT, "list", "string from a list");
    expect(sdc_cfg_string(j, "obj", "doc", test_capture_logger(), &s), SDC_ERR_FORMAT, "obj", "string from an object");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "list");
    expect(sdc_cfg_int(list, "i", "doc", test_capture_logger(), &i), SDC_ERR_FORMAT, "i", "lookup in a non-object");

    /* int or list */
    test_check(sdc_cfg_int_list(j, "list", "doc", test_capture_logger(), li, 8, &n) == SDC_OK && n == 4 &&
                   li[0] == 32 && li[1] == 64 && li[3] == 64,
               "int list [32, 64, 64, 64]: n=%d", n);
    test_check(sdc_cfg_int_list(j, "one", "doc", test_capture_logger(), li, 8, &n) == SDC_OK && n == 1 && li[0] == 8,
               "a single int as a list: n=%d", n);
    test_check(sdc_cfg_int_list(j, "empty", "doc", test_capture_logger(), li, 8, &n) == SDC_OK && n == 0,
               "an empty list: n=%d", n);
    expect(sdc_cfg_int_list(j, "list", "doc", test_capture_logger(), li, 3, &n), SDC_ERR_FORMAT, "list",
           "int list longer than max");
    expect(sdc_cfg_int_list(j, "mixed", "doc", test_capture_logger(), li, 8, &n), SDC_ERR_FORMAT, "mixed",
           "int list with a string");
    expect(sdc_cfg_int_list(j, "s", "doc", test_capture_logger(), li, 8, &n), SDC_ERR_FORMAT, "s",
           "int list from a string");
    expect(sdc_cfg_int_list(j, "half", "doc", test_capture_logger(), li, 8, &n), SDC_ERR_FORMAT, "half",
           "int list from 1.5");
    test_check(sdc_cfg_string_list(j, "strs", "doc", test_capture_logger(), sl, 4, &n) == SDC_OK && n == 2 &&
                   strcmp(sl[1], "DownBlock2D") == 0,
               "string list: n=%d", n);
    expect(sdc_cfg_string_list(j, "strbad", "doc", test_capture_logger(), sl, 4, &n), SDC_ERR_FORMAT, "strbad",
           "string list with a number");
    expect(sdc_cfg_string_list(j, "strs", "doc", test_capture_logger(), sl, 1, &n), SDC_ERR_FORMAT, "strs",
           "string list longer than max");
    expect(sdc_cfg_string_list(j, "s", "doc", test_capture_logger(), sl, 4, &n), SDC_ERR_FORMAT, "s",
           "string list from a string");

    /* defaults */
    test_check(sdc_cfg_int_or(j, "absent", 5, "doc", test_capture_logger(), &i) == SDC_OK && i == 5, "int_or default");
    test_check(sdc_cfg_int_or(j, "nul", 6, "doc", test_capture_logger(), &i) == SDC_OK && i == 6,
               "int_or null -> default");
    test_check(sdc_cfg_int_or(j, "i", 5, "doc", test_capture_logger(), &i) == SDC_OK && i == 42, "int_or present");
    test_check(sdc_cfg_float_or(j, "absent", 0.5, "doc", test_capture_logger(), &f) == SDC_OK && f == 0.5,
               "float_or default");
    test_check(sdc_cfg_float_or(j, "f", 0.5, "doc", test_capture_logger(), &f) == SDC_OK && f == 0.18215,
               "float_or present");
    test_check(sdc_cfg_bool_or(j, "absent", 1, "doc", test_capture_logger(), &b) == SDC_OK && b == 1,
               "bool_or default");
    test_check(sdc_cfg_bool_or(j, "no", 1, "doc", test_capture_logger(), &b) == SDC_OK && b == 0, "bool_or present");
    test_check(sdc_cfg_string_or(j, "absent", "gelu", "doc", test_capture_logger(), &s) == SDC_OK &&
                   strcmp(s, "gelu") == 0,
               "string_or default");
    test_check(sdc_cfg_string_or(j, "s", "gelu", "doc", test_capture_logger(), &s) == SDC_OK && strcmp(s, "silu") == 0,
               "string_or present");
    test_check(sdc_cfg_int_or(NULL, "i", 9, "doc", test_capture_logger(), &i) == SDC_OK && i == 9,
               "int_or on an absent (NULL) config gives the default");
    expect(sdc_cfg_int_or(j, "s", 5, "doc", test_capture_logger(), &i), SDC_ERR_FORMAT, "s", "int_or wrong type");
    expect(sdc_cfg_float_or(j, "s", 5, "doc", test_capture_logger(), &f), SDC_ERR_FORMAT, "s", "float_or wrong type");
    expect(sdc_cfg_bool_or(j, "s", 1, "doc", test_capture_logger(), &b), SDC_ERR_FORMAT, "s", "bool_or wrong type");
    expect(sdc_cfg_string_or(j, "i", "x", "doc", test_capture_logger(), &s), SDC_ERR_FORMAT, "i",
           "string_or wrong type");
}

static void test_bad_json(void) {
    static const char *const bad[] = {
        "",
        "{",
        "{\"a\": }",
        "{\"a\": 1,}",
        "[1, 2",
        "{\"a\": 1} trailing",
        "nul",
        "{\"a\": \"unterminated}",
        "{\n  \"a\": 1\n  \"b\": 2\n}",
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cJSON *j = NULL;
        sdc_status st = sdc_json_parse(bad[k], strlen(bad[k]), "bad.json", test_capture_logger(), &j);
        const char *msg = test_last_error();
        test_check(st == SDC_ERR_FORMAT && !j && strstr(msg, "bad.json") && strstr(msg, "line"),
                   "bad JSON %zu is SDC_ERR_FORMAT with a position: %s, \"%s\"", k, sdc_status_str(st), msg);
        cJSON_Delete(j);
    }
    /* the position points at the line of the error */
    cJSON *j = NULL;
    const char *text = bad[sizeof bad / sizeof bad[0] - 1];
    sdc_json_parse(text, strlen(text), "bad.json", test_capture_logger(), &j);
    test_check(strstr(test_last_error(), "line 3") != NULL, "error position is line 3: \"%s\"", test_last_error());
    /* length is honoured: the text after len is not parsed */
    const char *two = "{\"a\": 1}garbage";
    test_check(sdc_json_parse(two, 8, "len", test_capture_logger(), &j) == SDC_OK && j, "parse only len bytes");
    cJSON_Delete(j);
}

static void test_files(void) {
    char dir[] = "/tmp/sdc_test_config_XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "mkdtemp")) return;
    char *good = sdc_path_join(dir, "good.json"), *bad = sdc_path_join(dir, "bad.json");
    char *absent = sdc_path_join(dir, "absent.json");
    FILE *f = fopen(good, "wb");
    fputs("{\"hidden_size\": 32}\n", f);
    fclose(f);
    f = fopen(bad, "wb");
    fputs("{\"hidden_size\": 32,\n", f);
    fclose(f);
    cJSON *j = NULL;
    int v = 0;
    test_check(sdc_json_load(good, test_capture_logger(), &j) == SDC_OK &&
                   sdc_cfg_int(j, "hidden_size", good, test_capture_logger(), &v) == SDC_OK && v == 32,
               "json_load a good file");
    cJSON_Delete(j);
    j = NULL;
    expect(sdc_json_load(bad, test_capture_logger(), &j), SDC_ERR_FORMAT, "bad.json", "json_load bad JSON");
    expect(sdc_json_load(absent, test_capture_logger(), &j), SDC_ERR_NOT_FOUND, "absent.json", "json_load absent file");
    expect(sdc_json_load(dir, test_capture_logger(), &j), SDC_ERR_IO, dir, "json_load a folder");
    test_check(j == NULL, "failed loads leave *out NULL");
    unlink(good);
    unlink(bad);
    rmdir(dir);
    free(good);
    free(bad);
    free(absent);
}

/* The reference model's configs read with the getters, cross-checked against their own text. */
static void test_reference_configs(void) {
    cJSON *unet = NULL, *te = NULL;
    sdc_status st = sdc_json_load(test_ref_path("tiny-sd1/unet/config.json"), test_logger(), &unet);
    st = st == SDC_OK ? sdc_json_load(test_ref_path("tiny-sd1/text_encoder/config.json"), test_logger(), &te) : st;
    if (!test_check(st == SDC_OK, "load the reference unet and text_encoder configs")) return;
    int ch[8], n = 0, lpb = 0, hidden = 0;
    const char *types[8];
    int ntypes = 0;
    st = sdc_cfg_int_list(unet, "block_out_channels", "unet", test_logger(), ch, 8, &n);
    if (st == SDC_OK) st = sdc_cfg_int_list(unet, "layers_per_block", "unet", test_logger(), &lpb, 1, &(int){0});
    if (st == SDC_OK) st = sdc_cfg_string_list(unet, "down_block_types", "unet", test_logger(), types, 8, &ntypes);
    if (st == SDC_OK) st = sdc_cfg_int(te, "hidden_size", "text_encoder", test_logger(), &hidden);
    const cJSON *boc = cJSON_GetObjectItemCaseSensitive(unet, "block_out_channels");
    int same = st == SDC_OK && n == cJSON_GetArraySize(boc) && ntypes == n;
    for (int k = 0; same && k < n; k++) same = ch[k] == cJSON_GetArrayItem(boc, k)->valueint;
    test_check(same && lpb > 0 && hidden > 0, "reference configs: %d blocks, %d layers per block, hidden %d", n, lpb,
               hidden);
    cJSON_Delete(unet);
    cJSON_Delete(te);
}

int main(void) {
    printf("test_config\n");
    cJSON *j = parse(doc);
    if (j) test_getters(j);
    cJSON_Delete(j);
    test_bad_json();
    test_files();
    test_reference_configs();
    return test_finish();
}
