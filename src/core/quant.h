/* quant.h - rows of block-quantized weights (ggml's layouts, as GGUF files store them) to and from f32.
 *
 * A row of n elements stored as dt (n a multiple of sdc_dtype_block(dt)) is n / block blocks laid out
 * one after the other; sdc_dtype_row_bytes gives its size. Dequantization is exactly ggml's (the same
 * f32 bits as gguf.quants.dequantize, for every block type); quantization of Q4_0, Q4_1, Q5_0, Q5_1 and
 * Q8_0 rounds as ggml's reference quantizers do, bit for bit (the same bytes as gguf.quants.quantize);
 * the K-quants (Q2_K ... Q6_K) use a simpler scale search of sdc's own (core/quant_k_search.c: ideal
 * sub-block steps, f16 super-scales, each sub-scale code the best of three neighbours), not ggml's
 * iterative one, so their bytes differ from llama-quantize's; what they decode to is exactly what ggml
 * reads from them. IQ4_NL and IQ4_XS are read only. Measured on N(0, 1) rows (tests/test_quant.c), the
 * round trip's relative RMS error ||dequant(quant(x)) - x|| / ||x|| is: Q8_0 5.4e-3, Q6_K 1.8e-2,
 * Q5_1 3.8e-2, Q5_K 3.6e-2, Q5_0 4.3e-2, Q4_K 7.5e-2, Q4_1 7.8e-2, Q4_0 8.6e-2, Q3_K 1.5e-1, Q2_K 3.0e-1.
 *
 * Dequantization has no allocation and no per-element call or branch: kernels widening a weight tile
 * by tile call it on row pieces (any whole number of blocks).
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

/* 1 when sdc_quant_row writes dt (F32, F16, BF16, Q4_0 ... Q6_K), else 0. */
int sdc_quant_can_write(sdc_dtype dt);

/* ggml's type ids (the GGUF tensor-info field) to and from sdc dtypes: F32 0, F16 1, Q4_0 2, Q4_1 3,
 * Q5_0 6, Q5_1 7, Q8_0 8, Q2_K 10 ... Q6_K 14, IQ4_NL 20, IQ4_XS 23, I8 24, I16 25, I32 26, I64 27,
 * F64 28, BF16 30. Returns 0, or -1 for a type sdc does not read (Q8_1, Q8_K, the other IQ types). */
int sdc_dtype_from_ggml(uint32_t ggml_type, sdc_dtype *out);
int sdc_dtype_to_ggml(sdc_dtype dt, uint32_t *out);

#endif
