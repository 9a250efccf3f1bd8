/* cuda_quant.cuh - the layouts of GGUF's block types (core/quant.h) as the CUDA kernels read them: for each
 * type a struct with QK (elements per block), BYTES (bytes per block) and dq8(block, e0, y), which writes
 * elements e0 .. e0 + 7 of the block (e0 a multiple of 8) into y as f32. Every value is the f32 that
 * sdc_dequant_row computes on the host (core/quant_legacy.c, core/quant_k.c: the same products and sums, each
 * rounded on its own); nvcc would fuse `a * b - c` into one FMA (one rounding instead of two), so the
 * products and sums are written with the _rn intrinsics, which it never contracts. A block may be in global
 * or shared memory. Included by cuda_quant.cu (dequantization) and sm90/linear_wgmma.cu (the fused linear). */
#ifndef SDC_BACKEND_CUDA_QUANT_CUH
#define SDC_BACKEND_CUDA_QUANT_CUH

#include "backend/cuda/cuda_common.cuh"

namespace {   // internal to each file that includes it (iq4nl_values is a __constant__ of its own)

/* ggml's kvalues_iq4nl (core/quant_legacy.c's sdc_iq4nl_values) */
__constant__ int8_t iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

__device__ __forceinline__ float rd_f16(const uint8_t *p) {
    return __half2float(__ushort_as_half((unsigned short)(p[0] | p[1] << 8)));
}

__device__ __forceinline__ uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Each block type: QK elements in BYTES bytes; dq8(block, e0, y) writes elements e0 .. e0 + 7 of the block
 * (e0 a multiple of 8) into y. Layouts: core/quant_legacy.c and core/quant_k.c. */

/* --- the 32-element types: nibble byte j holds element j (low) and j + 16 (high); qh bit e: bit 4 of e --- */

/* y[i] = d * level(nibble of element e0 + i) for the 16 nibble bytes at qs (e0 < 32): Q4_0, IQ4_NL and IQ4_XS's
 * sub-blocks */
template <typename L>
__device__ __forceinline__ void dq8_nibbles(float d, const uint8_t *qs, int e0, float *y, L level) {
    qs += e0 & 15;
    const int shift = e0 >= 16 ? 4 : 0;
#pragma unroll
    for (int i = 0; i < 8; i++) y[i] = __fmul_rn(d, level((qs[i] >> shift) & 0xf));
}

__device__ __forceinline__ float iq4nl_level(int q) { return (float)iq4nl_values[q]; }

struct q4_0 {
    static constexpr int QK = 32, BYTES = 18;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        dq8_nibbles(rd_f16(b), b + 2, e0, y, [](int q) { return (float)(q - 8); });
    }
};

struct q4_1 {
    static constexpr int QK = 32, BYTES = 20;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const float d = rd_f16(b), m = rd_f16(b + 2);
        const uint8_t *qs = b + 4 + (e0 & 15);
        const int shift = e0 >= 16 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; i++) y[i] = __fadd_rn(__fmul_rn(d, (float)((qs[i] >> shift) & 0xf)), m);
    }
};

struct q5_0 {
    static constexpr int QK = 32, BYTES = 22;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const float d = rd_f16(b);
        const uint32_t qh = rd_u32(b + 2) >> e0;
        const uint8_t *qs = b + 6 + (e0 & 15);
        const int shift = e0 >= 16 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int q = (int)(((qs[i] >> shift) & 0xf) | ((qh >> i) & 1) << 4);
            y[i] = __fmul_rn(d, (float)(q - 16));
        }
    }
};

struct q5_1 {
    static constexpr int QK = 32, BYTES = 24;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const float d = rd_f16(b), m = rd_f16(b + 2);
        const uint32_t qh = rd_u32(b + 4) >> e0;
        const uint8_t *qs = b + 8 + (e0 & 15);
        const int shift = e0 >= 16 ? 4 : 0;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int q = (int)(((qs[i] >> shift) & 0xf) | ((qh >> i) & 1) << 4);
            y[i] = __fadd_rn(__fmul_rn(d, (float)q), m);
        }
    }
};

struct q8_0 {
    static constexpr int QK = 32, BYTES = 34;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const float d = rd_f16(b);
        const int8_t *qs = (const int8_t *)(b + 2 + e0);
#pragma unroll
        for (int i = 0; i < 8; i++) y[i] = __fmul_rn((float)qs[i], d);
    }
};

struct iq4_nl {
    static constexpr int QK = 32, BYTES = 18;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        dq8_nibbles(rd_f16(b), b + 2, e0, y, iq4nl_level);
    }
};

/* --- the 256-element super-block types --- */

/* Q2_K (84): scales[16], qs[64], f16 d, f16 dmin; group g of 16 elements: scale byte g, 2-bit field of
 * half g / 8, shift (g / 2) % 4, bytes (g % 2) * 16 ... */
struct q2_k {
    static constexpr int QK = 256, BYTES = 84;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const int g = e0 / 16;
        const float d = rd_f16(b + 80), dmin = rd_f16(b + 82);
        const float dl = __fmul_rn(d, (float)(b[g] & 0xf)), ml = __fmul_rn(dmin, (float)(b[g] >> 4));
        const uint8_t *q = b + 16 + (g / 8) * 32 + (g % 2) * 16 + e0 % 16;
        const int shift = ((g / 2) % 4) * 2;
#pragma unroll
        for (int i = 0; i < 8; i++) y[i] = __fsub_rn(__fmul_rn(dl, (float)((q[i] >> shift) & 3)), ml);
    }
};

/* Q3_K (110): hmask[32], qs[64], scales[12] (16 6-bit scales, offset 32), f16 d */
struct q3_k {
    static constexpr int QK = 256, BYTES = 110;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const uint8_t *hmask = b, *sc = b + 96;
        const int g = e0 / 16;
        const int lo = g < 8 ? sc[g] & 0xf : sc[g - 8] >> 4, hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
        const float dl = __fmul_rn(rd_f16(b + 108), (float)((lo | hi << 4) - 32));
        const int half = g / 8, s = (g / 2) % 4, l0 = (g % 2) * 16 + e0 % 16;
        const uint8_t *q = b + 32 + half * 32;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int l = l0 + i, level = (q[l] >> (2 * s)) & 3, h = (hmask[l] >> (half * 4 + s)) & 1;
            y[i] = __fmul_rn(dl, (float)(level - (h ? 0 : 4)));
        }
    }
};

/* Q4_K / Q5_K's 12 scale bytes: the 6-bit scale and min of sub-block j < 8 */
__device__ __forceinline__ void k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

/* Q4_K (144): f16 d, f16 dmin, scales[12], qs[128]; sub-block j of 32: nibbles (j % 2) of bytes (j / 2) * 32 */
struct q4_k {
    static constexpr int QK = 256, BYTES = 144;
    /* elements e0 .. e0 + 7 from the block's first 16 bytes at h and the 32 bytes of qs holding elements
     * (e0 / 64) * 64 .. + 63 at q (the fused linear keeps only those) */
    static __device__ __forceinline__ void dq8_parts(const uint8_t *h, const uint8_t *q, int e0, float *y) {
        const int j = e0 / 32;
        int sc, m;
        k_scale_min(h + 4, j, &sc, &m);
        const float dl = __fmul_rn(rd_f16(h), (float)sc), ml = __fmul_rn(rd_f16(h + 2), (float)m);
        q += e0 % 32;
        const int shift = (j % 2) * 4;
#pragma unroll
        for (int i = 0; i < 8; i++) y[i] = __fsub_rn(__fmul_rn(dl, (float)((q[i] >> shift) & 0xf)), ml);
    }
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        dq8_parts(b, b + 16 + (e0 / 64) * 32, e0, y);
    }
};

/* Q5_K (176): as Q4_K with qh[32] (bit j of byte l: bit 4 of element j * 32 + l) before qs[128] */
struct q5_k {
    static constexpr int QK = 256, BYTES = 176;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const int j = e0 / 32, l0 = e0 % 32;
        int sc, m;
        k_scale_min(b + 4, j, &sc, &m);
        const float dl = __fmul_rn(rd_f16(b), (float)sc), ml = __fmul_rn(rd_f16(b + 2), (float)m);
        const uint8_t *qh = b + 16 + l0, *q = b + 48 + (j / 2) * 32 + l0;
        const int shift = (j % 2) * 4;
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int level = ((q[i] >> shift) & 0xf) | ((qh[i] >> j) & 1) << 4;
            y[i] = __fsub_rn(__fmul_rn(dl, (float)level), ml);
        }
    }
};

/* Q6_K (210): ql[128], qh[64], int8 scales[16], f16 d; element r of half h (128 each): low nibble
 * (r / 64) of ql[h * 64 + r % 64], 2 high bits (r / 32) of qh[h * 32 + r % 32]; scale per 16 */
struct q6_k {
    static constexpr int QK = 256, BYTES = 210;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const int g = e0 / 16, half = g / 8, r = e0 % 128;
        const float dl = __fmul_rn(rd_f16(b + 208), (float)(int8_t)b[192 + g]);
        const uint8_t *pl = b + half * 64 + r % 64, *ph = b + 128 + half * 32 + r % 32;
        const int sl = 4 * (r / 64), sh = 2 * (r / 32);
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int lo = (pl[i] >> sl) & 0xf, hi = (ph[i] >> sh) & 3;
            y[i] = __fmul_rn(dl, (float)((lo | hi << 4) - 32));
        }
    }
};

/* IQ4_XS (136): f16 d, u16 scales_h, scales_l[4], qs[128]; sub-block ib of 32 as an IQ4_NL block */
struct iq4_xs {
    static constexpr int QK = 256, BYTES = 136;
    static __device__ __forceinline__ void dq8(const uint8_t *b, int e0, float *y) {
        const int ib = e0 / 32, l0 = e0 % 32;
        const unsigned scales_h = (unsigned)(b[2] | b[3] << 8);
        const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0xf) | (int)((scales_h >> (2 * ib)) & 3) << 4;
        dq8_nibbles(__fmul_rn(rd_f16(b), (float)(ls - 32)), b + 8 + ib * 16, l0, y, iq4nl_level);
    }
};

/* X(dtype, layout struct) for every block type */
#define SDC_CUDA_BLOCK_TYPES(X) \
    X(SDC_DTYPE_Q4_0, q4_0)     \
    X(SDC_DTYPE_Q4_1, q4_1)     \
    X(SDC_DTYPE_Q5_0, q5_0)     \
    X(SDC_DTYPE_Q5_1, q5_1)     \
    X(SDC_DTYPE_Q8_0, q8_0)     \
    X(SDC_DTYPE_Q2_K, q2_k)     \
    X(SDC_DTYPE_Q3_K, q3_k)     \
    X(SDC_DTYPE_Q4_K, q4_k)     \
    X(SDC_DTYPE_Q5_K, q5_k)     \
    X(SDC_DTYPE_Q6_K, q6_k)     \
    X(SDC_DTYPE_IQ4_NL, iq4_nl) \
    X(SDC_DTYPE_IQ4_XS, iq4_xs)

#define SDC_COUNT_TYPE_(dt, q) +1
static_assert(0 SDC_CUDA_BLOCK_TYPES(SDC_COUNT_TYPE_) == SDC_DTYPE_COUNT - SDC_DTYPE_FIRST_QUANT,
              "a dequantization kernel for every block type");
#undef SDC_COUNT_TYPE_

}   // namespace

#endif
