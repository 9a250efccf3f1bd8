/* cpu_bf16.c - matrix products at --precision bf16 on the CPU (a weight marked matmul_bf16): both
 * operands rounded to bf16 (round to nearest even), the products summed in f32.
 *
 * The kernel is chosen once per backend, at the first such product, from what the CPU and the build
 * have (never from memory or timing):
 *   onednn  oneDNN's matmul on bf16 operands: its AMX or AVX-512 BF16 code (the name of what it picked
 *           is logged), one single-threaded call per tile of C, as the f32 path calls sgemm
 *   plain   the operands rounded to bf16 but kept as f32 values, and the f32 sgemm: the same operands
 *           summed in OpenBLAS's order (a CPU without bf16 instructions, or a build without oneDNN)
 * Either way a tile's bits depend on its shape and values only: identical for any thread count, load
 * policy or batch. The two kernels differ from each other by their summation order (test_bf16). */
#include <omp.h>
#include <stdio.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/dnnl/cpu_dnnl.h"

struct sdc_cpu_bf16 {
    sdc_cpu_dnnl *dnnl; /* NULL: the plain kernel */
    int cvt;            /* the CPU converts f32 to bf16 in hardware (AVX-512 BF16) */
    char name[96];
};

/* AVX-512 BF16 (CPUID leaf 7 subleaf 1, EAX bit 5) with AVX-512 usable by the OS */
static int has_avx512_bf16(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    unsigned a, b, c, d;
    if (!__builtin_cpu_supports("avx512f") || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1u;
#else
    return 0;
#endif
}

sdc_cpu_bf16 *sdc_cpu_bf16_new(int n_threads, int plain, const sdc_logger *log) {
    sdc_cpu_bf16 *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    char why[128] = "forced";
    if (!plain) k->dnnl = sdc_cpu_dnnl_new(n_threads, why, sizeof why);
    k->cvt = k->dnnl && has_avx512_bf16();
    if (k->dnnl)
        snprintf(k->name, sizeof k->name, "oneDNN %s", sdc_cpu_dnnl_impl(k->dnnl));
    else
        snprintf(k->name, sizeof k->name, "plain (bf16-rounded f32 operands, sgemm; oneDNN: %s)", why);
    SDC_LOGI(log, "cpu backend: bf16 products: %s", k->name);
    return k;
}

void sdc_cpu_bf16_free(sdc_cpu_bf16 *k) {
    if (!k) return;
    sdc_cpu_dnnl_free(k->dnnl);
    free(k);
}

const char *sdc_cpu_bf16_name(const sdc_cpu_bf16 *k) { return k->name; }

size_t sdc_cpu_bf16_elem(const sdc_cpu_bf16 *k) { return k->dnnl ? sizeof(uint16_t) : sizeof(float); }

/* a row rounded to bf16 (sdc_f32_to_bf16: round to nearest even, NaN quiet) */
static void round_row(const float *s, int64_t n, uint16_t *d) {
    for (int64_t c = 0; c < n; c++) d[c] = sdc_f32_to_bf16(s[c]);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* round_row with VCVTNEPS2BF16 (the same rounding; it also flushes denormal inputs to zero, values below
 * 1.2e-38 that no product here can tell from zero) */
__attribute__((target("avx512f,avx512bf16,avx512vl,avx512bw"))) static void round_row_cvt(const float *s, int64_t n,
                                                                                          uint16_t *d) {
    int64_t c = 0;
    for (; c + 16 <= n; c += 16) {
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(s + c));
        _mm256_storeu_si256((__m256i *)(d + c), (__m256i)h);
    }
    if (c < n) {
        const __mmask16 m = (__mmask16)((1u << (n - c)) - 1u);
        const __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + c));
        _mm256_mask_storeu_epi16(d + c, m, (__m256i)h);
    }
}
#else
static void round_row_cvt(const float *s, int64_t n, uint16_t *d) { round_row(s, n, d); } /* k->cvt is 0 here */
#endif

void sdc_cpu_bf16_round(const sdc_cpu_bf16 *k, const float *src, int64_t rows, int64_t cols, int64_t ld, void *dst) {
    for (int64_t r = 0; r < rows; r++) {
        const float *s = src + r * ld;
        if (k->dnnl) {
            (k->cvt ? round_row_cvt : round_row)(s, cols, (uint16_t *)dst + r * cols);
            continue;
        }
        float *d = (float *)dst + r * cols; /* plain: the bf16 value as an f32 */
        for (int64_t c = 0; c < cols; c++) {
            const uint32_t u = (uint32_t)sdc_f32_to_bf16(s[c]) << 16;
            memcpy(&d[c], &u, sizeof u);
        }
    }
}

int sdc_cpu_bf16_gemm(const sdc_cpu_bf16 *k, int trans_b, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                      const void *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    assert(beta == 0.0f || beta == 1.0f);
    if (M == 0 || N == 0) return 0;
    if (!k->dnnl) {
        sdc_cpu_gemm(trans_b, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
        return 0;
    }
    return sdc_cpu_dnnl_gemm(k->dnnl, omp_get_thread_num(), trans_b, M, N, K, A, lda, B, ldb, beta != 0.0f, C, ldc);
}
