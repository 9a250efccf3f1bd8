/* quant_internal.h - the per-type block kernels behind core/quant.h (one function per type and direction,
 * nb whole blocks at a time). Little-endian byte layouts exactly as ggml's block structs. */
#ifndef SDC_CORE_QUANT_INTERNAL_H
#define SDC_CORE_QUANT_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "core/dtype.h"

#define SDC_QK 32    /* elements per block of the legacy types (Q4_0 ... Q8_0, IQ4_NL) */
#define SDC_QK_K 256 /* elements per super-block of the K-quants and IQ4_XS */

/* The 16 non-uniform levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl). */
extern const int8_t sdc_iq4nl_values[16];

static inline float sdc_q_rd_f16(const uint8_t *p) { return sdc_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }
static inline void sdc_q_wr_f16(uint8_t *p, float v) {
    uint16_t h = sdc_f32_to_f16(v);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

/* dequantization: src holds nb blocks, dst nb * block floats */
void sdc_dq_q4_0(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q4_1(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q5_0(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q5_1(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q8_0(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_iq4_nl(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q2_k(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q3_k(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q4_k(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q5_k(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_q6_k(const uint8_t *src, float *dst, int64_t nb);
void sdc_dq_iq4_xs(const uint8_t *src, float *dst, int64_t nb);

/* quantization: src holds nb * block floats, dst nb blocks */
void sdc_qz_q4_0(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q4_1(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q5_0(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q5_1(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q8_0(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q2_k(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q3_k(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q4_k(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q5_k(const float *src, uint8_t *dst, int64_t nb);
void sdc_qz_q6_k(const float *src, uint8_t *dst, int64_t nb);

#endif
