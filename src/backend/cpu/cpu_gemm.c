/* cpu_gemm.c - the CPU backend's single BLAS entry point, and the linear op built on it. */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

void sdc_cpu_gemm_threads(int n_threads) { openblas_set_num_threads(n_threads); }

void sdc_cpu_gemm(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    assert(M >= 0 && N >= 0 && K >= 0);
    assert(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
           ldc <= INT_MAX);
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N,
                (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

const char *sdc_cpu_blas_config(void) { return openblas_get_config(); }

void sdc_cpu_linear(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                    const sdc_tensor *b) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x);   // [M, K]
    const float *wd = sdc_cpu_f32(w);   // [N, K]
    float *yd = sdc_cpu_f32(y);         // [M, N]
    if (b) {                            // start from the bias rows: y = x . w^T + y
        const float *bd = sdc_cpu_f32(b);   // [N]
        for (int64_t m = 0; m < M; m++) memcpy(yd + m * N, bd, (size_t)N * sizeof(float));
    }
    sdc_cpu_gemm_threads(be->n_threads);
    sdc_cpu_gemm(1, M, N, K, 1.0f, xd, K, wd, K, b ? 1.0f : 0.0f, yd, N);
}
