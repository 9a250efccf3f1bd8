/* quant.c - see quant.h. */
#include "core/quant.h"

#include <stddef.h>

#include "core/quant_internal.h"

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

typedef void (*dequant_fn)(const uint8_t *src, float *dst, int64_t nb);
typedef void (*quant_fn)(const float *src, uint8_t *dst, int64_t nb);

static const struct {
    sdc_dtype dt;
    dequant_fn dequant;
    quant_fn quant; /* NULL: sdc reads the type but does not write it */
} block_types[] = {
    {SDC_DTYPE_Q4_0, sdc_dq_q4_0, sdc_qz_q4_0}, {SDC_DTYPE_Q4_1, sdc_dq_q4_1, sdc_qz_q4_1},
    {SDC_DTYPE_Q5_0, sdc_dq_q5_0, sdc_qz_q5_0}, {SDC_DTYPE_Q5_1, sdc_dq_q5_1, sdc_qz_q5_1},
    {SDC_DTYPE_Q8_0, sdc_dq_q8_0, sdc_qz_q8_0}, {SDC_DTYPE_Q2_K, sdc_dq_q2_k, sdc_qz_q2_k},
    {SDC_DTYPE_Q3_K, sdc_dq_q3_k, sdc_qz_q3_k}, {SDC_DTYPE_Q4_K, sdc_dq_q4_k, sdc_qz_q4_k},
    {SDC_DTYPE_Q5_K, sdc_dq_q5_k, sdc_qz_q5_k}, {SDC_DTYPE_Q6_K, sdc_dq_q6_k, sdc_qz_q6_k},
    {SDC_DTYPE_IQ4_NL, sdc_dq_iq4_nl, NULL},    {SDC_DTYPE_IQ4_XS, sdc_dq_iq4_xs, NULL},
};
#define N_BLOCK_TYPES (sizeof block_types / sizeof block_types[0])
_Static_assert(N_BLOCK_TYPES == SDC_DTYPE_COUNT - SDC_DTYPE_FIRST_QUANT, "a kernel pair for every block type");

static int block_type_slot(sdc_dtype dt) {
    for (size_t i = 0; i < N_BLOCK_TYPES; i++)
        if (block_types[i].dt == dt) return (int)i;
    return -1;
}

int sdc_dequant_row(sdc_dtype dt, const void *src, float *dst, int64_t n) {
    if (n < 0 || n % sdc_dtype_block(dt)) return -1;
    switch (dt) {
    case SDC_DTYPE_F32:
    case SDC_DTYPE_F16:
    case SDC_DTYPE_BF16: return sdc_convert_to_f32(dst, src, dt, (size_t)n);
    default: break;
    }
    int k = block_type_slot(dt);
    if (k < 0) return -1;
    block_types[k].dequant(src, dst, n / sdc_dtype_block(dt));
    return 0;
}

int sdc_quant_row(sdc_dtype dt, const float *src, void *dst, int64_t n) {
    if (n < 0 || n % sdc_dtype_block(dt)) return -1;
    switch (dt) {
    case SDC_DTYPE_F32:
    case SDC_DTYPE_F16:
    case SDC_DTYPE_BF16: return sdc_convert_from_f32(dst, dt, src, (size_t)n);
    default: break;
    }
    int k = block_type_slot(dt);
    if (k < 0 || !block_types[k].quant) return -1;
    block_types[k].quant(src, dst, n / sdc_dtype_block(dt));
    return 0;
}

int sdc_quant_can_write(sdc_dtype dt) {
    if (dt == SDC_DTYPE_F32 || dt == SDC_DTYPE_F16 || dt == SDC_DTYPE_BF16) return 1;
    int k = block_type_slot(dt);
    return k >= 0 && block_types[k].quant != NULL;
}
