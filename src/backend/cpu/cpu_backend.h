/* cpu_backend.h - what the CPU backend's files share: the fast op entry points the vtable points
 * at, counted scratch memory, the GEMM calls, and the threading rule.
 *
 * Threading: one OpenMP team of be->n_threads per op; BLAS itself runs on 1 thread inside it
 * (sdc_cpu_blas_enter).
 * Determinism: the work is cut into items that do not depend on the thread count (rows, planes,
 * groups, GEMM tiles, query blocks); each output element is computed by exactly one item, and any
 * reduction runs in a fixed order inside it. So results are bit-identical run to run and for any
 * thread count. */
#ifndef SDC_BACKEND_CPU_CPU_BACKEND_H
#define SDC_BACKEND_CPU_CPU_BACKEND_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Loops with fewer elements than this run on one thread (a team costs more than the work). */
#define SDC_CPU_PAR_MIN 16384

/* Upper bounds on the scratch of one op: a convolution's im2col band, and one thread's block of
 * attention scores. The planner's workspace bound is derived from them. */
#define SDC_CPU_CONV_WORKSPACE_BYTES ((size_t)16 << 20)
#define SDC_CPU_SCORE_BLOCK_BYTES ((size_t)1 << 20)

/* The f32 data of a tensor, asserting its dtype: every CPU compute tensor is F32. */
static inline float *sdc_cpu_f32(const sdc_tensor *t) {
    assert(t->dtype == SDC_DTYPE_F32);
    return (float *)t->data;
}

/* --- memory --- */
/* 64-byte aligned host memory, uncounted (sdc_tensor_new counts tensors). NULL when out of memory. */
void *sdc_cpu_aligned_alloc(size_t nbytes);
/* Scratch for an op: 64-byte aligned and counted in be->stats as SDC_MEM_WORKSPACE; free it with the
 * same nbytes. Its size depends on shapes only, never on free memory (so neither does any output
 * bit). NULL when out of memory (or be->fail.workspace says so): that is then the sticky status,
 * SDC_ERR_OOM, logged with the caller's location and `what`, and the op returns at once. */
#define SDC_CPU_SCRATCH(be, nbytes, what) sdc_cpu_scratch_alloc((be), (nbytes), (what), __FILE__, __LINE__)
void *sdc_cpu_scratch_alloc(sdc_backend *be, size_t nbytes, const char *what, const char *file, int line);
void sdc_cpu_scratch_free(sdc_backend *be, void *ptr, size_t nbytes);

/* --- GEMM (cpu_gemm.c): the only place that calls BLAS --- */
/* Brackets every op that calls BLAS (the OpenMP region of its GEMMs). OpenBLAS 0.3.21's thread count
 * is process-wide, with no per-thread or per-call setting: while at least one sdc op is inside, it is
 * 1 (the backend splits GEMMs over its own team, so one pool of threads runs); when the last one
 * leaves, the count the caller had is restored. A caller at 1 already (OPENBLAS_NUM_THREADS=1) sees
 * no call at all. A caller's own BLAS calls on other threads while an sdc op runs get 1 thread. */
void sdc_cpu_blas_enter(void);
/* The scratch of a linear of M rows, N outputs, K inputs: its last partial tile of rows, padded. */
size_t sdc_cpu_linear_workspace_bytes(int64_t M, int64_t N, int64_t K, int n_threads);
void sdc_cpu_blas_leave(void);
/* Address space OpenBLAS maps per thread that calls a GEMM at the same time as others: its buffer
 * (BUFFER_SIZE, 32 << 22 in the x86-64 build of 0.3.21) plus a page. It is taken at the first
 * concurrent call and kept; if it cannot be had, OpenBLAS retries forever, so the backend leaves room
 * for one per thread under RLIMIT_AS (test_addrspace measures it). */
#define SDC_CPU_BLAS_BUFFER_BYTES (((size_t)128 << 20) + 4096)
/* C[M, N] = alpha * A[M, K] . op(B) + beta * C on the calling thread, row-major with leading
 * dimensions; op(B) is B[K, N], or B[N, K] transposed when trans_b. */
void sdc_cpu_gemm(int trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
/* C[M, N] = A[M, K] . op(B) (+ bias) cut into fixed tiles of C shared out over the enclosing OpenMP
 * team (an orphaned `omp for`; outside a parallel region the calling thread does every tile). The
 * tiles do not depend on the thread count, so neither does any bit of C. bias (may be NULL) is
 * indexed by C's row when bias_per_row, else by its column. Call it between sdc_cpu_blas_enter/leave. */
void sdc_cpu_gemm_tiles(int trans_b, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                        int64_t ldb, const float *bias, int bias_per_row, float *C, int64_t ldc);
/* OpenBLAS's build description, for the backend's start-up log line. */
const char *sdc_cpu_blas_config(void);

/* --- conv geometry shared with the reference --- */
/* Output positions o in [*lo, *hi) whose input position o*stride - pad + k lies in [0, n_in). */
static inline void sdc_cpu_conv_range(int64_t n_out, int64_t n_in, int stride, int pad, int64_t k, int64_t *lo,
                                      int64_t *hi) {
    int64_t off = k - pad; /* input position of output 0 */
    int64_t a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t b = n_in - off <= 0 ? 0 : (n_in - off + stride - 1) / stride;
    *lo = a < n_out ? a : n_out;
    *hi = b < n_out ? b : n_out;
    if (*hi < *lo) *hi = *lo;
}

/* --- the fast ops: sdc_cpu_<name> for each op of SDC_BACKEND_OPS (semantics in backend.h) --- */
#define SDC_CPU_OP_DECLARE_(name, family, params, args) SDC_OP_DECLARE(sdc_cpu_, name, params)
SDC_BACKEND_OPS(SDC_CPU_OP_DECLARE_)
#undef SDC_CPU_OP_DECLARE_

/* Scalar activations in float, the forms backend.h names (shared by the elementwise and norm ops). */
float sdc_cpu_silu(float x);
float sdc_cpu_gelu(float x);

#endif
