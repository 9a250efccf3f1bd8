/* quant.h - rows of block-quantized weights (ggml's layouts, as GGUF files store them) to and from f32.
 *
 * A row of n elements stored as dt (n a multiple of sdc_dtype_block(dt)) is n / block blocks laid out
 * one after the other; sdc_dtype_row_bytes gives its size. Dequantization is exactly ggml's (the same
 * f32 bits as gguf.quants.dequantize); quantization of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 rounds as ggml's
 * reference quantizers do, bit for bit; the K-quants use a simpler scale search (any result dequantizes
 * exactly as ggml would read it).
 *
 * The plain float types (F32, F16, BF16) are rows too, with a block of 1, so a kernel that widens a
 * weight tile by tile calls one function whatever the weight's dtype. */
#ifndef SDC_CORE_QUANT_H
#define SDC_CORE_QUANT_H

#include <stdint.h>

#include "core/dtype.h"

/* dst[0..n) = the n elements of the row src stored as dt. Returns 0, or -1 when dt is not a float or
 * block type or n is not a multiple of its block. */
int sdc_dequant_row(sdc_dtype dt, const void *src, float *dst, int64_t n);

/* The inverse: quantizes src[0..n) into a row of dt (F32, F16, BF16 or a block type). Returns 0, or -1
 * for another dtype or an n that is not a multiple of the block. */
int sdc_quant_row(sdc_dtype dt, const float *src, void *dst, int64_t n);

/* ggml's type ids (the GGUF tensor-info field) to and from sdc dtypes: F32 0, F16 1, Q4_0 2, Q4_1 3,
 * Q5_0 6, Q5_1 7, Q8_0 8, Q2_K 10 ... Q6_K 14, IQ4_NL 20, IQ4_XS 23, I8 24, I16 25, I32 26, I64 27,
 * F64 28, BF16 30. Returns 0, or -1 for a type sdc does not read (Q8_1, Q8_K, the other IQ types). */
int sdc_dtype_from_ggml(uint32_t ggml_type, sdc_dtype *out);
int sdc_dtype_to_ggml(sdc_dtype dt, uint32_t *out);

#endif
