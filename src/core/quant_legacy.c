/* quant_legacy.c - the 32-element block types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (both directions) and IQ4_NL
 * (dequantization only).
 *
 * Layouts (bytes): Q4_0 = f16 d, 16 nibble bytes (18); Q4_1 = f16 d, f16 m, 16 (20); Q5_0 = f16 d, u32 qh,
 * 16 (22); Q5_1 = f16 d, f16 m, u32 qh, 16 (24); Q8_0 = f16 d, 32 int8 (34); IQ4_NL = f16 d, 16 (18).
 * Nibble byte j holds element j (low nibble) and element j + 16 (high nibble); qh bit j is bit 4 of
 * element j.
 *
 * Quantization follows ggml's reference quantizers (quantize_row_*_ref) step for step in f32, which
 * gguf.quants.quantize reproduces: the same scale, the same reciprocal, truncation after adding
 * 0.5 (+ the offset) for the 4/5-bit types, roundf (half away from zero) for Q8_0. Products and sums are
 * separate statements so that no compiler contracts them into an FMA (which would round once, not twice). */
#include <math.h>

#include "core/quant_internal.h"

const int8_t sdc_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

static uint32_t rd_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* The CPU's linear and conv widen Q4_0 and Q8_0 weights a GEMM tile at a time through these, so their
 * speed is the quantized path's: with AVX2 (checked at run time) 8 values at a time. Each value is
 * d * (float)q, one product: the same bits as the plain loop. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

__attribute__((target("avx2"))) static void dq_q4_0_avx2(const uint8_t *src, float *dst, int64_t nb) {
    const __m128i low = _mm_set1_epi8(0xf), eight = _mm_set1_epi8(8);
    for (int64_t b = 0; b < nb; b++, src += 18, dst += SDC_QK) {
        const __m256 d = _mm256_set1_ps(sdc_q_rd_f16(src));
        const __m128i qs = _mm_loadu_si128((const __m128i *)(const void *)(src + 2));
        const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, low), eight);                      // elements 0..15, in -8..7
        const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), low), eight);   // 16..31
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int k = 0; k < 4; k++)
            _mm256_storeu_ps(dst + 8 * k, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[k]))));
    }
}

__attribute__((target("avx2"))) static void dq_q8_0_avx2(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 34, dst += SDC_QK) {
        const __m256 d = _mm256_set1_ps(sdc_q_rd_f16(src));
        for (int k = 0; k < 4; k++) {
            const __m128i q = _mm_loadl_epi64((const __m128i *)(const void *)(src + 2 + 8 * k));
            _mm256_storeu_ps(dst + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), d));
        }
    }
}

/* fn's result and a return where the CPU has AVX2 (libgcc's CPU model, read once: __builtin_cpu_init only
 * makes sure of it before constructors have run); nothing elsewhere */
#define RETURN_AVX2_IF_ANY(fn, src, dst, nb)  \
    do {                                      \
        __builtin_cpu_init();                 \
        if (__builtin_cpu_supports("avx2")) { \
            fn(src, dst, nb);                 \
            return;                           \
        }                                     \
    } while (0)
#else
#define RETURN_AVX2_IF_ANY(fn, src, dst, nb) ((void)0)
#endif

void sdc_dq_q4_0(const uint8_t *src, float *dst, int64_t nb) {
    RETURN_AVX2_IF_ANY(dq_q4_0_avx2, src, dst, nb);
    for (int64_t b = 0; b < nb; b++, src += 18, dst += SDC_QK) {
        const float d = sdc_q_rd_f16(src);
        const uint8_t *qs = src + 2;
        for (int j = 0; j < 16; j++) dst[j] = d * (float)((qs[j] & 0xf) - 8);
        for (int j = 0; j < 16; j++) dst[j + 16] = d * (float)((qs[j] >> 4) - 8);
    }
}

void sdc_dq_q4_1(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 20, dst += SDC_QK) {
        const float d = sdc_q_rd_f16(src), m = sdc_q_rd_f16(src + 2);
        const uint8_t *qs = src + 4;
        for (int j = 0; j < 16; j++) {
            float lo = d * (float)(qs[j] & 0xf), hi = d * (float)(qs[j] >> 4);
            dst[j] = lo + m;
            dst[j + 16] = hi + m;
        }
    }
}

/* hb[j] = 16 when bit j of qh is set, else 0 (qh's bits spread one per byte, 8 at a time: a byte
 * replicated into 8 lanes, lane i masked to its bit i, then any nonzero lane turned into 0x10). */
static void high_bits(uint32_t qh, uint8_t hb[SDC_QK]) {
    for (int k = 0; k < 4; k++) {
        uint64_t x = ((qh >> (8 * k)) & 0xff) * 0x0101010101010101ull & 0x8040201008040201ull;
        x = ((x + 0x7f7f7f7f7f7f7f7full) & 0x8080808080808080ull) >> 3;
        for (int i = 0; i < 8; i++) hb[8 * k + i] = (uint8_t)(x >> (8 * i));
    }
}

void sdc_dq_q5_0(const uint8_t *src, float *dst, int64_t nb) {
    uint8_t hb[SDC_QK];
    for (int64_t b = 0; b < nb; b++, src += 22, dst += SDC_QK) {
        const float d = sdc_q_rd_f16(src);
        const uint8_t *qs = src + 6;
        high_bits(rd_u32(src + 2), hb);
        for (int j = 0; j < 16; j++) dst[j] = d * (float)(((qs[j] & 0xf) | hb[j]) - 16);
        for (int j = 0; j < 16; j++) dst[j + 16] = d * (float)(((qs[j] >> 4) | hb[j + 16]) - 16);
    }
}

void sdc_dq_q5_1(const uint8_t *src, float *dst, int64_t nb) {
    uint8_t hb[SDC_QK];
    for (int64_t b = 0; b < nb; b++, src += 24, dst += SDC_QK) {
        const float d = sdc_q_rd_f16(src), m = sdc_q_rd_f16(src + 2);
        const uint8_t *qs = src + 8;
        high_bits(rd_u32(src + 4), hb);
        for (int j = 0; j < 16; j++) {
            float v = d * (float)((qs[j] & 0xf) | hb[j]);
            dst[j] = v + m;
        }
        for (int j = 0; j < 16; j++) {
            float v = d * (float)((qs[j] >> 4) | hb[j + 16]);
            dst[j + 16] = v + m;
        }
    }
}

void sdc_dq_q8_0(const uint8_t *src, float *dst, int64_t nb) {
    RETURN_AVX2_IF_ANY(dq_q8_0_avx2, src, dst, nb);
    for (int64_t b = 0; b < nb; b++, src += 34, dst += SDC_QK) {
        const float d = sdc_q_rd_f16(src);
        const int8_t *qs = (const int8_t *)(src + 2);
        for (int j = 0; j < SDC_QK; j++) dst[j] = (float)qs[j] * d;
    }
}

void sdc_dq_iq4_nl(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 18, dst += SDC_QK) {
        const float d = sdc_q_rd_f16(src);
        const uint8_t *qs = src + 2;
        for (int j = 0; j < 16; j++) {
            dst[j] = d * (float)sdc_iq4nl_values[qs[j] & 0xf];
            dst[j + 16] = d * (float)sdc_iq4nl_values[qs[j] >> 4];
        }
    }
}

/* The element of largest magnitude, with its sign (the first one on ties). */
static float signed_absmax(const float *x) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < SDC_QK; j++) {
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

static void min_max(const float *x, float *mn, float *mx) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < SDC_QK; j++) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
    }
    *mn = lo;
    *mx = hi;
}

/* trunc(v + add) as the reference quantizers compute it, clamped to [0, top] */
static int trunc_level(float v, float add, int top) {
    float t = v + add;
    int q = (int)t;
    return q < 0 ? 0 : q > top ? top : q;
}

/* Symmetric 4/5-bit: d = max / -half, q = trunc(x / d + half + 0.5). Writes 32 levels into q. */
static float sym_levels(const float *x, int half, int top, int *q) {
    const float d = signed_absmax(x) / (float)-half;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < SDC_QK; j++) {
        float v = x[j] * id;
        q[j] = trunc_level(v, (float)half + 0.5f, top);
    }
    return d;
}

/* Asymmetric 4/5-bit: d = (max - min) / top, q = trunc((x - min) / d + 0.5). */
static float asym_levels(const float *x, int top, int *q, float *min_out) {
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / (float)top;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < SDC_QK; j++) {
        float v = (x[j] - mn) * id;
        q[j] = trunc_level(v, 0.5f, top);
    }
    *min_out = mn;
    return d;
}

static void pack_nibbles(const int *q, uint8_t *qs) {
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0xf) | (q[j + 16] & 0xf) << 4);
}

static uint32_t pack_high_bits(const int *q) {
    uint32_t qh = 0;
    for (int j = 0; j < SDC_QK; j++) qh |= (uint32_t)((q[j] >> 4) & 1) << j;
    return qh;
}

void sdc_qz_q4_0(const float *src, uint8_t *dst, int64_t nb) {
    int q[SDC_QK];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK, dst += 18) {
        sdc_q_wr_f16(dst, sym_levels(src, 8, 15, q));
        pack_nibbles(q, dst + 2);
    }
}

void sdc_qz_q4_1(const float *src, uint8_t *dst, int64_t nb) {
    int q[SDC_QK];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK, dst += 20) {
        float mn, d = asym_levels(src, 15, q, &mn);
        sdc_q_wr_f16(dst, d);
        sdc_q_wr_f16(dst + 2, mn);
        pack_nibbles(q, dst + 4);
    }
}

void sdc_qz_q5_0(const float *src, uint8_t *dst, int64_t nb) {
    int q[SDC_QK];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK, dst += 22) {
        sdc_q_wr_f16(dst, sym_levels(src, 16, 31, q));
        wr_u32(dst + 2, pack_high_bits(q));
        pack_nibbles(q, dst + 6);
    }
}

void sdc_qz_q5_1(const float *src, uint8_t *dst, int64_t nb) {
    int q[SDC_QK];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK, dst += 24) {
        float mn, d = asym_levels(src, 31, q, &mn);
        sdc_q_wr_f16(dst, d);
        sdc_q_wr_f16(dst + 2, mn);
        wr_u32(dst + 4, pack_high_bits(q));
        pack_nibbles(q, dst + 8);
    }
}

void sdc_qz_q8_0(const float *src, uint8_t *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += SDC_QK, dst += 34) {
        float amax = 0.0f;
        for (int j = 0; j < SDC_QK; j++) amax = fabsf(src[j]) > amax ? fabsf(src[j]) : amax;
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        sdc_q_wr_f16(dst, d);
        for (int j = 0; j < SDC_QK; j++) dst[2 + j] = (uint8_t)(int8_t)roundf(src[j] * id);
    }
}
