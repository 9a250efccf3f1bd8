/* quant.c - see quant.h. */
#include "core/quant.h"

#include <stddef.h>

static const struct {
    uint32_t ggml;
    sdc_dtype dt;
} ggml_types[] = {
    {0, SDC_DTYPE_F32},   {1, SDC_DTYPE_F16},   {2, SDC_DTYPE_Q4_0},    {3, SDC_DTYPE_Q4_1},    {6, SDC_DTYPE_Q5_0},
    {7, SDC_DTYPE_Q5_1},  {8, SDC_DTYPE_Q8_0},  {10, SDC_DTYPE_Q2_K},   {11, SDC_DTYPE_Q3_K},   {12, SDC_DTYPE_Q4_K},
    {13, SDC_DTYPE_Q5_K}, {14, SDC_DTYPE_Q6_K}, {20, SDC_DTYPE_IQ4_NL}, {23, SDC_DTYPE_IQ4_XS}, {24, SDC_DTYPE_I8},
    {25, SDC_DTYPE_I16},  {26, SDC_DTYPE_I32},  {27, SDC_DTYPE_I64},    {28, SDC_DTYPE_F64},    {30, SDC_DTYPE_BF16},
};

int sdc_dtype_from_ggml(uint32_t ggml_type, sdc_dtype *out) {
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++) {
        if (ggml_types[i].ggml == ggml_type) {
            *out = ggml_types[i].dt;
            return 0;
        }
    }
    return -1;
}

int sdc_dtype_to_ggml(sdc_dtype dt, uint32_t *out) {
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++) {
        if (ggml_types[i].dt == dt) {
            *out = ggml_types[i].ggml;
            return 0;
        }
    }
    return -1;
}

int sdc_dequant_row(sdc_dtype dt, const void *src, float *dst, int64_t n) {
    if (n < 0 || n % sdc_dtype_block(dt)) return -1;
    switch (dt) {
    case SDC_DTYPE_F32:
    case SDC_DTYPE_F16:
    case SDC_DTYPE_BF16: return sdc_convert_to_f32(dst, src, dt, (size_t)n);
    default: return -1; /* the block types: to be written (issue 11) */
    }
}

int sdc_quant_row(sdc_dtype dt, const float *src, void *dst, int64_t n) {
    if (n < 0 || n % sdc_dtype_block(dt)) return -1;
    switch (dt) {
    case SDC_DTYPE_F32:
    case SDC_DTYPE_F16:
    case SDC_DTYPE_BF16: return sdc_convert_from_f32(dst, dt, src, (size_t)n);
    default: return -1; /* the block types: to be written (issue 11) */
    }
}
