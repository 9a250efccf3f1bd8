/* cpu_gemm.c - the CPU backend's single BLAS entry point, GEMMs split in fixed tiles over the
 * backend's OpenMP team, and the linear op built on them. */
#include <cblas.h>
#include <limits.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"

/* Tile of C one thread computes with one single-threaded sgemm call. Fixed sizes: the split of the
 * work, and so every output bit, is the same for any thread count. (Measured on 16 cores: one
 * OpenMP team with 1-thread BLAS tiles matches OpenBLAS's own threading up to 8 threads and avoids
 * its collapse at 16, where OpenBLAS's spinning workers and the OpenMP team oversubscribe.) */
#define GEMM_TILE_M 256
#define GEMM_TILE_N 256

/* OpenBLAS 0.3.21 has one process-wide thread count and no per-thread or per-call setting. While any
 * sdc op runs it is 1 (our own team splits the work); when the last one ends, the caller's count is
 * put back, and a caller already at 1 (OPENBLAS_NUM_THREADS=1, the CLI) never sees a change. */
static pthread_mutex_t blas_mutex = PTHREAD_MUTEX_INITIALIZER;
static int blas_users, blas_saved_threads;

void sdc_cpu_blas_enter(void) {
    pthread_mutex_lock(&blas_mutex);
    if (blas_users++ == 0) {
        blas_saved_threads = openblas_get_num_threads();
        if (blas_saved_threads != 1) openblas_set_num_threads(1);
    }
    pthread_mutex_unlock(&blas_mutex);
}

void sdc_cpu_blas_leave(void) {
    pthread_mutex_lock(&blas_mutex);
    assert(blas_users > 0);
    if (--blas_users == 0 && blas_saved_threads != 1) openblas_set_num_threads(blas_saved_threads);
    pthread_mutex_unlock(&blas_mutex);
}

const char *sdc_cpu_blas_config(void) { return openblas_get_config(); }

void sdc_cpu_gemm(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    assert(M >= 0 && N >= 0 && K >= 1);
    assert(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    if (M == 0 || N == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K, alpha, A,
                (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void sdc_cpu_gemm_tiles(int trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                        int64_t ldb, const float *bias, int bias_per_row, float *C, int64_t ldc) {
    const int64_t n_tm = (M + GEMM_TILE_M - 1) / GEMM_TILE_M, n_tn = (N + GEMM_TILE_N - 1) / GEMM_TILE_N;
#pragma omp for schedule(dynamic)
    for (int64_t t = 0; t < n_tm * n_tn; t++) {
        const int64_t i0 = t / n_tn * GEMM_TILE_M, j0 = t % n_tn * GEMM_TILE_N;
        const int64_t m = M - i0 < GEMM_TILE_M ? M - i0 : GEMM_TILE_M;
        const int64_t n = N - j0 < GEMM_TILE_N ? N - j0 : GEMM_TILE_N;
        float *c = C + i0 * ldc + j0;   // [m, n], rows ldc apart
        if (bias)                       // start from the bias: c = a . b + c
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) c[i * ldc + j] = bias_per_row ? bias[i0 + i] : bias[j0 + j];
        const float *b = trans_b ? B + j0 * ldb : B + j0;   // op(B)[:, j0 : j0+n]
        sdc_cpu_gemm(trans_b, m, n, K, 1.0f, A + i0 * lda, lda, b, ldb, bias ? 1.0f : 0.0f, c, ldc);
    }
}

/* Rows of every GEMM call a linear makes: exactly GEMM_TILE_M, the last tile padded with zero rows. So
 * a row's bits never depend on how many rows share the op: OpenBLAS 0.3.21 (SkylakeX) computes a call
 * of few rows with its small-matrix kernel, which rounds differently, and chooses it by the call's M, so
 * an image's bits would change with the images batched beside it (test_batch). Within calls of one
 * shape a row's bits do not depend on its place (measured: 0 of 11115 row blocks differ; 4808 of 11500
 * differed with calls of the rows' own count). 256 rows, not fewer: 64-row calls were 1.2-1.3x slower
 * on SD 1.5's K = 320 linears. */
#define LINEAR_TILE_M GEMM_TILE_M

size_t sdc_cpu_linear_workspace_bytes(int64_t M, int64_t N, int64_t K, int n_threads) {
    if (M % LINEAR_TILE_M == 0 || N == 0) return 0;
    const int64_t tn = N < GEMM_TILE_N ? N : GEMM_TILE_N;
    return sizeof(float) * (size_t)(LINEAR_TILE_M * K + (int64_t)n_threads * LINEAR_TILE_M * tn);
}

void sdc_cpu_linear(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x);              // [M, K]
    const float *wd = sdc_cpu_f32(w);              // [N, K]
    const float *bd = b ? sdc_cpu_f32(b) : NULL;   // [N]
    float *yd = sdc_cpu_f32(y);                    // [M, N]
    if (M == 0 || N == 0) return;
    const int64_t F = LINEAR_TILE_M, rem = M % F, tn = N < GEMM_TILE_N ? N : GEMM_TILE_N;
    const int64_t n_tm = (M + F - 1) / F, n_tn = (N + GEMM_TILE_N - 1) / GEMM_TILE_N;
    const size_t ws = sdc_cpu_linear_workspace_bytes(M, N, K, be->n_threads);
    float *scratch = ws ? SDC_CPU_SCRATCH(be, ws, "sdc_cpu_linear padded rows") : NULL;   // [F, K] + [nt][F, tn]
    if (ws && !scratch) return;
    if (rem) {   // the last rem rows, then zero rows: [F, K]
        memcpy(scratch, xd + (M - rem) * K, sizeof(float) * (size_t)(rem * K));
        memset(scratch + rem * K, 0, sizeof(float) * (size_t)((F - rem) * K));
    }
    sdc_cpu_blas_enter();
    // y = x . w^T + b in tiles [F, GEMM_TILE_N] over the team; a partial row tile goes through scratch
#pragma omp parallel num_threads(be->n_threads) if (M * N * K >= 64 * SDC_CPU_PAR_MIN)
    {
        float *c_pad = rem ? scratch + F * K + (int64_t)omp_get_thread_num() * F * tn : NULL;   // [F, tn]
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < n_tm * n_tn; t++) {
            const int64_t i0 = t / n_tn * F, j0 = t % n_tn * GEMM_TILE_N;
            const int64_t m = M - i0 < F ? M - i0 : F, n = N - j0 < GEMM_TILE_N ? N - j0 : GEMM_TILE_N;
            const float *a = m == F ? xd + i0 * K : scratch;
            float *c = m == F ? yd + i0 * N + j0 : c_pad;   // [F, n]
            const int64_t ldc = m == F ? N : tn;
            if (bd)   // start from the bias: c = a . w^T + c
                for (int64_t i = 0; i < F; i++)
                    for (int64_t j = 0; j < n; j++) c[i * ldc + j] = bd[j0 + j];
            sdc_cpu_gemm(1, F, n, K, 1.0f, a, K, wd + j0 * K, K, bd ? 1.0f : 0.0f, c, ldc);
            if (m < F)
                for (int64_t i = 0; i < m; i++) memcpy(yd + (i0 + i) * N + j0, c + i * ldc, sizeof(float) * (size_t)n);
        }
    }
    sdc_cpu_blas_leave();
    if (scratch) sdc_cpu_scratch_free(be, scratch, ws);
}
