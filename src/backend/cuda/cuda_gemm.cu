/* cuda_gemm.cu - every GEMM of the CUDA backend goes through cuBLAS here, and the linear op is one of
 * them: y[M, N] = x[M, K] w[N, K]^T + b, seen column-major as y^T[N, M] = w^T x^T. A bias is written
 * into y first and the GEMM adds to it (beta 1), so it is fused into the GEMM's single rounding.
 *
 * Types: F16 or BF16 operands with f32 accumulation (tensor cores), or F32 with true f32 arithmetic
 * (CUBLAS_COMPUTE_32F without the TF32 math mode).
 *
 * A block-quantized weight (GGUF's types) stays quantized in device memory. The linear dequantizes a chunk
 * of its rows at a time into a workspace in y's dtype (cuda_quant.cu) and runs the GEMM of that chunk,
 * which writes columns [n0, n0 + rows) of y (ldc N); the next chunk reuses the workspace in stream order.
 * No dequantized copy of the whole weight exists. The chunk size is a function of the shapes only
 * (sdc_cuda_linear_chunk_rows), and each output element's K-reduction is one GEMM's, so results are
 * reproducible; they equal one GEMM on the whole dequantized weight as far as cuBLAS picks the same
 * kernel for both sizes (test_cuda_quant measures it). */
#include <climits>
#include <cublas_v2.h>

#include "backend/cuda/cuda_common.cuh"

template <typename T> __global__ void fill_bias_kernel(T *y, const T *bias, int64_t C, int64_t inner, int64_t total) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = bias[inner == 1 ? i % C : i / inner % C];
}

extern "C" void sdc_cuda_fill_bias(sdc_backend *be, sdc_dtype dt, void *y, const void *bias, int64_t outer, int64_t C,
                                   int64_t inner) {
    const int64_t total = outer * C * inner;
    if (total == 0) return;
    cudaStream_t s = sdc_cuda_stream(be);
    SDC_FLOAT_DISPATCH(
        dt, T, fill_bias_kernel<<<sdc_grid_1d(total, 256), 256, 0, s>>>((T *)y, (const T *)bias, C, inner, total));
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_gemm(sdc_backend *be, sdc_dtype dt, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                              const void *A, int64_t lda, int64_t stride_a, const void *B, int64_t ldb,
                              int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, int64_t batch) {
    assert(dt == SDC_DTYPE_F16 || dt == SDC_DTYPE_BF16 || dt == SDC_DTYPE_F32);
    assert(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX &&
           batch <= INT_MAX);
    if (m == 0 || n == 0 || batch == 0) return;
    cublasHandle_t h = (cublasHandle_t)sdc_cuda_cublas(be);
    const cudaDataType t = dt == SDC_DTYPE_F16 ? CUDA_R_16F : dt == SDC_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float alpha = 1.0f;
    if (batch == 1)
        CUBLAS_CHECK(be,
                     cublasGemmEx(h, ta, tb, (int)m, (int)n, (int)k, &alpha, A, t, (int)lda, B, t, (int)ldb, &beta, C,
                                  t, (int)ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_CHECK(be,
                     cublasGemmStridedBatchedEx(h, ta, tb, (int)m, (int)n, (int)k, &alpha, A, t, (int)lda, stride_a, B,
                                                t, (int)ldb, stride_b, &beta, C, t, (int)ldc, stride_c, (int)batch,
                                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* Rows that fit SDC_CUDA_LINEAR_WORKSPACE_BYTES, a multiple of 128 when at least 128 fit (whole GEMM
 * tiles); N split into equal chunks of at most that (rounded up to the multiple), so that the last chunk
 * is not a sliver. */
extern "C" int64_t sdc_cuda_linear_chunk_rows(int64_t N, int64_t K, sdc_dtype dt) {
    const int64_t row_bytes = K * (int64_t)sdc_dtype_size(dt);
    int64_t cap = row_bytes > 0 ? (int64_t)SDC_CUDA_LINEAR_WORKSPACE_BYTES / row_bytes : N;
    cap = cap >= 128 ? cap - cap % 128 : cap < 1 ? 1 : cap;
    if (N <= cap) return N;
    const int64_t n_chunks = (N + cap - 1) / cap;
    int64_t rows = (N + n_chunks - 1) / n_chunks;
    if (cap >= 128) rows = (rows + 127) / 128 * 128;   // still <= cap, a multiple of 128
    return rows;
}

extern "C" size_t sdc_cuda_linear_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x,
                                            const sdc_tensor *w) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    if (!sdc_dtype_is_quant(w->dtype) || M == 0 || N == 0) return 0;
    return (size_t)(sdc_cuda_linear_chunk_rows(N, K, y->dtype) * K) * sdc_dtype_size(y->dtype);
}

/* y[M, N] = x[M, K] w[N, K]^T (+ beta y) for a block-quantized w, a chunk of w's rows at a time. */
static void linear_quant(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, float beta) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    const sdc_dtype dt = y->dtype;
    const size_t es = sdc_dtype_size(dt), w_row = sdc_dtype_row_bytes(w->dtype, K);
    const int64_t chunk = sdc_cuda_linear_chunk_rows(N, K, dt);
    const size_t ws_bytes = sdc_cuda_linear_workspace(be, y, x, w);
    void *wd = SDC_CUDA_SCRATCH(be, ws_bytes, "sdc_cuda_linear dequantized weight rows");   // [chunk, K]
    if (!wd) return;
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t rows = N - n0 < chunk ? N - n0 : chunk;
        sdc_cuda_dequant_rows(be, w->dtype, (const char *)w->data + (size_t)n0 * w_row, dt, wd, rows, K);
        // y^T[n0 : n0 + rows, M] (ldc N) = (wd[rows, K] as [K, rows])^T . (x[M, K] as [K, M]) + beta y^T
        sdc_cuda_gemm(be, dt, 1, 0, rows, M, K, wd, K, 0, x->data, K, 0, beta, (char *)y->data + (size_t)n0 * es, N, 0,
                      1);
    }
    sdc_cuda_scratch_free(be, wd, ws_bytes);
}

extern "C" void sdc_cuda_linear(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                const sdc_tensor *b) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    const sdc_dtype dt = y->dtype;
    const int quant = sdc_dtype_is_quant(w->dtype);
    assert(x->dtype == dt && (w->dtype == dt || quant) && (!b || b->dtype == dt));
    if (M == 0 || N == 0) return;
    float beta = 0.0f;
    if (b) {   // y[M, N] = b[N] broadcast over rows
        sdc_cuda_fill_bias(be, dt, y->data, b->data, M, N, 1);
        beta = 1.0f;
    }
    if (quant) {
        linear_quant(be, y, x, w, beta);
        return;
    }
    // column-major: y^T[N, M] = (w[N, K] as [K, N])^T . (x[M, K] as [K, M]) + beta y^T
    sdc_cuda_gemm(be, dt, 1, 0, N, M, K, w->data, K, 0, x->data, K, 0, beta, y->data, N, 0, 1);
}
