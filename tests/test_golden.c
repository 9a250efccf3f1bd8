#include "test_golden.h"

#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

sdc_model_index *test_golden_open(const char *rel_path) {
    sdc_model_index *g = sdc_index_new(test_logger());
    const char *path = test_ref_path(rel_path);
    if (!g || sdc_index_add_file(g, path, NULL, NULL, NULL) != SDC_OK) {
        fprintf(stderr, "FAIL: cannot read reference file %s\n", path);
        printf("0 passed, 1 failed\n");
        exit(1);
    }
    return g;
}

float *test_golden_f32(sdc_model_index *g, const char *name, const sdc_tensor_info **info_out) {
    const sdc_tensor_info *info = sdc_index_find(g, name);
    if (!info) {
        test_check(0, "reference tensor %s present", name);
        return NULL;
    }
    float *x = malloc(sizeof(float) * (size_t)(sdc_tensor_info_nelem(info) ? sdc_tensor_info_nelem(info) : 1));
    if (!x || sdc_index_read_f32(g, info, x) != SDC_OK) {
        test_check(0, "reference tensor %s readable", name);
        free(x);
        return NULL;
    }
    if (info_out) *info_out = info;
    return x;
}
