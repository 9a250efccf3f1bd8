/* cpu_dnnl.h - oneDNN's bf16 matmul, the fast kernel of cpu_bf16.c. CMake builds cpu_dnnl.c when it finds
 * oneDNN (Debian's libdnnl-dev), else cpu_dnnl_none.c, whose sdc_cpu_dnnl_new says so and returns NULL. */
#ifndef SDC_BACKEND_CPU_DNNL_CPU_DNNL_H
#define SDC_BACKEND_CPU_DNNL_CPU_DNNL_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdc_cpu_dnnl sdc_cpu_dnnl;

/* The kernel for teams of up to n_threads, or NULL with the reason in why: no oneDNN in the build, or its
 * bf16 matmul on this CPU is not native bf16 code (its emulation or reference loops would be slower than
 * the f32 sgemm). */
sdc_cpu_dnnl *sdc_cpu_dnnl_new(int n_threads, char *why, size_t why_size);
void sdc_cpu_dnnl_free(sdc_cpu_dnnl *d);
/* The implementation oneDNN picked for a 256 x 256 x 448 tile, e.g. "brg:avx512_core_bf16". */
const char *sdc_cpu_dnnl_impl(const sdc_cpu_dnnl *d);
/* C[M, N] = A[M, K] . op(B) (accumulate: C += it), row-major with leading dimensions, A and B bf16, C f32;
 * op(B) = B[K, N], or B[N, K] transposed when trans_b. A and B dense (lda K; ldb N, or K when trans_b).
 * Runs on the calling thread, thread (< n_threads) of the op's team, alone (sdc_cpu_blas_one_thread was
 * called). 0, or -1 when oneDNN failed (no memory). */
int sdc_cpu_dnnl_gemm(sdc_cpu_dnnl *d, int thread, int trans_b, int64_t M, int64_t N, int64_t K, const void *A,
                      int64_t lda, const void *B, int64_t ldb, int accumulate, float *C, int64_t ldc);

#endif
