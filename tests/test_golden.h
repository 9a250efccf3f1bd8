/* test_golden.h - reading reference tensors from the bundle with the project's own reader. */
#ifndef SDC_TEST_GOLDEN_H
#define SDC_TEST_GOLDEN_H

#include <stddef.h>

#include "io/model_index.h"

/* Opens a safetensors file of the bundle (path relative to the bundle root); exits the test with a
 * failure when it cannot be read. */
sdc_model_index *test_golden_open(const char *rel_path);
/* The named tensor as malloc'd f32 (caller frees); NULL (and a recorded failure) when absent.
 * *info_out, if given, receives its shape. */
float *test_golden_f32(sdc_model_index *g, const char *name, const sdc_tensor_info **info_out);

#endif
