/* dtype.h - element types, as stored in files and as computed. Conversions are exact where the
 * target can hold the value (f16/bf16 -> f32 always is), round-to-nearest-even otherwise. */
#ifndef SDC_CORE_DTYPE_H
#define SDC_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum sdc_dtype {
    /* compute types: tensors in backend memory have one of these */
    SDC_DTYPE_F32 = 0,
    SDC_DTYPE_F16,
    SDC_DTYPE_BF16,
    SDC_DTYPE_I32,
    /* storage-only types a safetensors file may hold; indexed, converted on load where it makes sense */
    SDC_DTYPE_F64,
    SDC_DTYPE_I64,
    SDC_DTYPE_I16,
    SDC_DTYPE_I8,
    SDC_DTYPE_U8,
    SDC_DTYPE_BOOL,
    SDC_DTYPE_F8_E4M3,
    SDC_DTYPE_F8_E5M2,
    /* block-quantized storage types (GGUF files; ggml's block layouts, core/quant.h): a row of n elements
     * (n a multiple of sdc_dtype_block) is n / block blocks of sdc_dtype_block_bytes each. Weights may stay
     * in these types in backend memory where a backend's linear takes them. */
    SDC_DTYPE_Q4_0,
    SDC_DTYPE_Q4_1,
    SDC_DTYPE_Q5_0,
    SDC_DTYPE_Q5_1,
    SDC_DTYPE_Q8_0,
    SDC_DTYPE_Q2_K,
    SDC_DTYPE_Q3_K,
    SDC_DTYPE_Q4_K,
    SDC_DTYPE_Q5_K,
    SDC_DTYPE_Q6_K,
    SDC_DTYPE_IQ4_NL,
    SDC_DTYPE_IQ4_XS,
    SDC_DTYPE_COUNT
} sdc_dtype;

#define SDC_DTYPE_FIRST_QUANT SDC_DTYPE_Q4_0

size_t sdc_dtype_size(sdc_dtype dt);      /* bytes per element; 0 for the block types (use row_bytes) */
const char *sdc_dtype_name(sdc_dtype dt); /* safetensors spelling: "F32", "F16", "BF16", ...; ggml's: "Q4_0" */
/* Parses a safetensors dtype string (never a block type's name); returns 0 and sets *out, or -1 for an
 * unknown name. */
int sdc_dtype_from_name(const char *name, sdc_dtype *out);
int sdc_dtype_is_compute(sdc_dtype dt);
int sdc_dtype_is_quant(sdc_dtype dt);       /* one of the block types */
int sdc_dtype_block(sdc_dtype dt);          /* elements per block: 32 or 256 for block types, else 1 */
size_t sdc_dtype_block_bytes(sdc_dtype dt); /* bytes per block (= sdc_dtype_size for plain types) */
/* Bytes of n elements stored as dt; n must be a multiple of sdc_dtype_block(dt) (else 0). */
size_t sdc_dtype_row_bytes(sdc_dtype dt, int64_t n);

float sdc_f16_to_f32(uint16_t h);
uint16_t sdc_f32_to_f16(float f); /* round to nearest even; overflow -> inf; NaN stays NaN */
/* exact (bf16 is f32's top half); inline so that bulk loops of it vectorise */
static inline float sdc_bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
/* round to nearest even; a NaN stays a (quiet) NaN. Inline and without a branch, so that bulk loops of it
 * vectorise. */
static inline uint16_t sdc_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    const uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
}

/* Converts n elements of src (any float or integer dtype except F8) to f32. Returns 0, or -1 when the
 * dtype cannot be converted. */
int sdc_convert_to_f32(float *dst, const void *src, sdc_dtype src_dtype, size_t n);
/* Converts n f32 values to dst_dtype (F32, F16 or BF16). Returns 0, or -1 for another dtype. */
int sdc_convert_from_f32(void *dst, sdc_dtype dst_dtype, const float *src, size_t n);

#endif
