/* fuzz_config.c - libFuzzer target for JSON parsing and the config getters: parses the input and
 * asks the root and every nested object for every key it holds (and a few common ones) with every
 * getter, as a model loader would. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void probe(const cJSON *obj, const char *key) {
    int i, n, list[8];
    double f;
    const char *s, *strs[8];
    sdc_cfg_int(obj, key, "fuzz", NULL, &i);
    sdc_cfg_float(obj, key, "fuzz", NULL, &f);
    sdc_cfg_bool(obj, key, "fuzz", NULL, &i);
    if (sdc_cfg_string(obj, key, "fuzz", NULL, &s) == SDC_OK && !s) abort();
    if (sdc_cfg_int_list(obj, key, "fuzz", NULL, list, 8, &n) == SDC_OK && (n < 0 || n > 8)) abort();
    if (sdc_cfg_string_list(obj, key, "fuzz", NULL, strs, 8, &n) == SDC_OK) {
        if (n < 0 || n > 8) abort();
        for (int k = 0; k < n; k++)
            if (!strs[k]) abort();
    }
    sdc_cfg_int_or(obj, key, 1, "fuzz", NULL, &i);
    sdc_cfg_float_or(obj, key, 1.0, "fuzz", NULL, &f);
    sdc_cfg_bool_or(obj, key, 0, "fuzz", NULL, &i);
    sdc_cfg_string_or(obj, key, "d", "fuzz", NULL, &s);
}

static void walk(const cJSON *obj, int depth) {
    static const char *const common[] = {"hidden_size",      "block_out_channels", "down_block_types",
                                         "layers_per_block", "scaling_factor",     "attention_head_dim"};
    for (size_t k = 0; k < sizeof common / sizeof common[0]; k++) probe(obj, common[k]);
    const cJSON *c;
    cJSON_ArrayForEach(c, obj) {
        if (c->string) probe(obj, c->string);
        if (depth < 4 && (cJSON_IsObject(c) || cJSON_IsArray(c))) walk(c, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *root = NULL;
    if (sdc_json_parse((const char *)data, size, "fuzz", NULL, &root) == SDC_OK) {
        walk(root, 0);
        cJSON_Delete(root);
    }
    return 0;
}
