#include "core/dtype.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size; /* bytes per block */
    int block;   /* elements per block (1 for the plain types) */
} dtype_info[] = {
    [SDC_DTYPE_F32] = {"F32", 4, 1},
    [SDC_DTYPE_F16] = {"F16", 2, 1},
    [SDC_DTYPE_BF16] = {"BF16", 2, 1},
    [SDC_DTYPE_I32] = {"I32", 4, 1},
    [SDC_DTYPE_F64] = {"F64", 8, 1},
    [SDC_DTYPE_I64] = {"I64", 8, 1},
    [SDC_DTYPE_I16] = {"I16", 2, 1},
    [SDC_DTYPE_I8] = {"I8", 1, 1},
    [SDC_DTYPE_U8] = {"U8", 1, 1},
    [SDC_DTYPE_BOOL] = {"BOOL", 1, 1},
    [SDC_DTYPE_F8_E4M3] = {"F8_E4M3", 1, 1},
    [SDC_DTYPE_F8_E5M2] = {"F8_E5M2", 1, 1},
    /* ggml's block layouts: Q4_0 = f16 d + 16 nibble bytes, Q8_0 = f16 d + 32 int8, K-quants 256 per block */
    [SDC_DTYPE_Q4_0] = {"Q4_0", 18, 32},
    [SDC_DTYPE_Q4_1] = {"Q4_1", 20, 32},
    [SDC_DTYPE_Q5_0] = {"Q5_0", 22, 32},
    [SDC_DTYPE_Q5_1] = {"Q5_1", 24, 32},
    [SDC_DTYPE_Q8_0] = {"Q8_0", 34, 32},
    [SDC_DTYPE_Q2_K] = {"Q2_K", 84, 256},
    [SDC_DTYPE_Q3_K] = {"Q3_K", 110, 256},
    [SDC_DTYPE_Q4_K] = {"Q4_K", 144, 256},
    [SDC_DTYPE_Q5_K] = {"Q5_K", 176, 256},
    [SDC_DTYPE_Q6_K] = {"Q6_K", 210, 256},
    [SDC_DTYPE_IQ4_NL] = {"IQ4_NL", 18, 32},
    [SDC_DTYPE_IQ4_XS] = {"IQ4_XS", 136, 256},
};
_Static_assert(sizeof(dtype_info) / sizeof(dtype_info[0]) == SDC_DTYPE_COUNT, "dtype table");

size_t sdc_dtype_size(sdc_dtype dt) { return (unsigned)dt < SDC_DTYPE_FIRST_QUANT ? dtype_info[dt].size : 0; }

int sdc_dtype_is_quant(sdc_dtype dt) { return dt >= SDC_DTYPE_FIRST_QUANT && dt < SDC_DTYPE_COUNT; }

int sdc_dtype_block(sdc_dtype dt) { return sdc_dtype_is_quant(dt) ? dtype_info[dt].block : 1; }

size_t sdc_dtype_block_bytes(sdc_dtype dt) { return (unsigned)dt < SDC_DTYPE_COUNT ? dtype_info[dt].size : 0; }

size_t sdc_dtype_row_bytes(sdc_dtype dt, int64_t n) {
    const int b = sdc_dtype_block(dt);
    if (n < 0 || n % b) return 0;
    return (size_t)(n / b) * sdc_dtype_block_bytes(dt);
}

const char *sdc_dtype_name(sdc_dtype dt) { return (unsigned)dt < SDC_DTYPE_COUNT ? dtype_info[dt].name : "?"; }

int sdc_dtype_from_name(const char *name, sdc_dtype *out) {
    for (int i = 0; i < SDC_DTYPE_FIRST_QUANT; i++) {
        if (strcmp(name, dtype_info[i].name) == 0) {
            *out = (sdc_dtype)i;
            return 0;
        }
    }
    return -1;
}

int sdc_dtype_is_compute(sdc_dtype dt) { return dt <= SDC_DTYPE_I32; }

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

float sdc_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t sdc_f32_to_f16(float f) {
    uint32_t u = f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) return sign | (a > 0x7f800000u ? 0x7e00 : 0x7c00); /* nan / inf */
    if (a >= 0x477ff000u) return sign | 0x7c00;                              /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {
        /* result is subnormal or zero: round a * 2^24 to an integer, nearest even */
        float v = bits_to_f32(a) * 0x1p24f;
        float r = nearbyintf(v); /* default rounding mode: nearest even */
        return sign | (uint16_t)r;
    }
    uint32_t e = (a >> 23) - 112;
    uint32_t m = a & 0x7fffffu;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* carry into exponent is correct */
    return sign | (uint16_t)h;
}

/* All 65536 f16 values as f32: bulk conversion (loading fp16 weights) becomes one lookup each. */
static float f16_table[65536];
static pthread_once_t f16_table_once = PTHREAD_ONCE_INIT;

static void f16_table_init(void) {
    for (uint32_t h = 0; h < 65536; h++) f16_table[h] = sdc_f16_to_f32((uint16_t)h);
}

static void f16_to_f32_table(float *dst, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = f16_table[h];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

/* F16C's VCVTPH2PS, 8 values at a time: exact, as the table (the CPU linear and conv widen fp16 weights
 * per GEMM tile through here, so its speed is theirs). Eight values holding an Inf or NaN go through the
 * table, which keeps a NaN's payload where VCVTPH2PS would quiet a signalling one. */
__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(float *dst, const unsigned char *s, size_t n) {
    const __m128i exp_mask = _mm_set1_epi16(0x7c00);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, exp_mask), exp_mask)))
            f16_to_f32_table(dst + i, s + 2 * i, 8);
        else
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    f16_to_f32_table(dst + i, s + 2 * i, n - i);
}

static int f16c_ok;
static pthread_once_t f16c_once = PTHREAD_ONCE_INIT;
/* CPUID leaf 1: ECX bit 27 OSXSAVE, 28 AVX, 29 F16C; and the OS saves the YMM state (XCR0 bits 1-2).
 * (Not __builtin_cpu_supports: clang 14 does not know "f16c".) */
static void f16c_init(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || ((c >> 27) & 7) != 7) return;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    f16c_ok = (lo & 6) == 6;
}

static void f16_to_f32(float *dst, const unsigned char *s, size_t n) {
    pthread_once(&f16_table_once, f16_table_init); /* for either path: F16C's Inf / NaN blocks use it */
    pthread_once(&f16c_once, f16c_init);
    if (f16c_ok)
        f16_to_f32_f16c(dst, s, n);
    else
        f16_to_f32_table(dst, s, n);
}
#else
static void f16_to_f32(float *dst, const unsigned char *s, size_t n) {
    pthread_once(&f16_table_once, f16_table_init);
    f16_to_f32_table(dst, s, n);
}
#endif

int sdc_convert_to_f32(float *dst, const void *src, sdc_dtype src_dtype, size_t n) {
    const unsigned char *s = src;
    switch (src_dtype) {
    case SDC_DTYPE_F32: memcpy(dst, src, n * 4); return 0;
    case SDC_DTYPE_F16: f16_to_f32(dst, s, n); return 0;
    case SDC_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sdc_bf16_to_f32(h);
        }
        return 0;
    case SDC_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    case SDC_DTYPE_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, s + 8 * i, 8);
            dst[i] = (float)v;
        }
        return 0;
    case SDC_DTYPE_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, s + 4 * i, 4);
            dst[i] = (float)v;
        }
        return 0;
    case SDC_DTYPE_I16:
        for (size_t i = 0; i < n; i++) {
            int16_t v;
            memcpy(&v, s + 2 * i, 2);
            dst[i] = (float)v;
        }
        return 0;
    case SDC_DTYPE_I8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)s[i];
        return 0;
    case SDC_DTYPE_U8:
    case SDC_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return 0;
    default: return -1;
    }
}

int sdc_convert_from_f32(void *dst, sdc_dtype dst_dtype, const float *src, size_t n) {
    unsigned char *d = dst;
    switch (dst_dtype) {
    case SDC_DTYPE_F32: memcpy(dst, src, n * 4); return 0;
    case SDC_DTYPE_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = sdc_f32_to_f16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    case SDC_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = sdc_f32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    default: return -1;
    }
}
