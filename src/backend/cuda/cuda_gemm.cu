/* cuda_gemm.cu - every GEMM of the CUDA backend goes through cuBLAS here, and the linear op is one of
 * them: y[M, N] = x[M, K] w[N, K]^T + b, seen column-major as y^T[N, M] = w^T x^T. A linear with a bias
 * runs on cuBLASLt with the bias added in the GEMM's epilogue (CUBLASLT_EPILOGUE_BIAS: one rounding, no
 * pass over y before the GEMM and no read of y by it); its plan (descriptors and the heuristic's first
 * algorithm, split-K reductions in f32 only) is made once per shape and alignment and kept. Elsewhere (no
 * cuBLASLt, no algorithm, a convolution's bias) the bias is written into y first and the GEMM adds to it
 * (beta 1), also inside the GEMM's single rounding.
 *
 * Types: F16 or BF16 operands with f32 accumulation (tensor cores), or F32 with true f32 arithmetic
 * (CUBLAS_COMPUTE_32F without the TF32 math mode; TF32 only where a caller asks: the convolutions of an
 * F32_UPCAST component, backend.h).
 *
 * A block-quantized weight (GGUF's types) stays quantized in device memory. On Hopper, with
 * SDC_CUDA_FUSED_QUANT=1, a 32-element block type or Q4_K with F16/BF16 activations goes to the fused kernel
 * (sm90/linear_wgmma.cu), which dequantizes tiles in shared memory and needs no workspace. Elsewhere (and by
 * default) the linear dequantizes a chunk
 * of its rows at a time into a workspace in y's dtype (cuda_quant.cu) and runs the GEMM of that chunk,
 * which writes columns [n0, n0 + rows) of y (ldc N); the next chunk reuses the workspace in stream order.
 * No dequantized copy of the whole weight exists. The chunk size is a function of the shapes only
 * (sdc_cuda_linear_chunk_rows), and each output element's K-reduction is one GEMM's, so results are
 * reproducible; they equal one GEMM on the whole dequantized weight as far as cuBLAS picks the same
 * kernel for both sizes (test_cuda_quant measures it). */
#include <climits>
#include <cstdlib>
#include <cublasLt.h>
#include <cublas_v2.h>

#include "backend/cuda/cuda_common.cuh"

/* y[o, c, i] = bias[c] (planes o * C + c, each `inner` long): a block row per plane (grid-stride), threads
 * along it, V values per 16-byte store where the planes allow */
template <typename T, int V>
__global__ void fill_planes_kernel(T *y, const T *bias, int64_t C, int64_t inner, int64_t planes) {
    for (int64_t pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        uint4 pack;   // V copies of the plane's value (V == 1: the first)
        T *e = reinterpret_cast<T *>(&pack);
#pragma unroll
        for (int j = 0; j < V; j++) e[j] = bias[pl % C];
        T *row = y + pl * inner;
        for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < inner / V;
             i += (int64_t)gridDim.x * blockDim.x)
            if (V == 1)
                row[i] = e[0];
            else
                reinterpret_cast<uint4 *>(row)[i] = pack;
    }
}

template <typename T>
static void fill_planes(cudaStream_t s, T *y, const T *bias, int64_t C, int64_t inner, int64_t planes) {
    constexpr int V = 16 / (int)sizeof(T);
    const int vec = inner % V == 0 && sdc_aligned16(y) ? V : 1;
    const int64_t items = inner / vec;
    const int threads = items >= 256 ? 256 : (int)((items + 31) / 32 * 32);
    const int64_t bx = (items + threads - 1) / threads;
    const dim3 grid((unsigned)(bx < 1024 ? bx : 1024), (unsigned)(planes < 65535 ? planes : 65535));
    if (vec == V)
        fill_planes_kernel<T, V><<<grid, threads, 0, s>>>(y, bias, C, inner, planes);
    else
        fill_planes_kernel<T, 1><<<grid, threads, 0, s>>>(y, bias, C, inner, planes);
}

extern "C" void sdc_cuda_fill_bias(sdc_backend *be, sdc_dtype dt, void *y, const void *bias, int64_t outer, int64_t C,
                                   int64_t inner) {
    if (outer * C * inner == 0) return;
    cudaStream_t s = sdc_cuda_stream(be);
    SDC_FLOAT_DISPATCH(dt, T, fill_planes<T>(s, (T *)y, (const T *)bias, C, inner, outer * C));
    SDC_CUDA_LAUNCHED(be);
}

/* y[m, c] = bias[c] for m < M, c < N: a block row per m (grid-stride), threads along c */
template <typename T> __global__ void fill_bias_rows_kernel(T *y, const T *bias, int64_t M, int N) {
    for (int64_t m = blockIdx.x; m < M; m += gridDim.x)
        for (int c = threadIdx.x; c < N; c += blockDim.x) y[m * N + c] = bias[c];
}

static void fill_bias_rows(sdc_backend *be, sdc_dtype dt, void *y, const void *bias, int64_t M, int64_t N) {
    assert(M > 0 && N > 0 && N <= INT_MAX);
    const unsigned blocks = (unsigned)(M < 65535 ? M : 65535);
    cudaStream_t s = sdc_cuda_stream(be);
    SDC_FLOAT_DISPATCH(dt, T, fill_bias_rows_kernel<<<blocks, 256, 0, s>>>((T *)y, (const T *)bias, M, (int)N));
    SDC_CUDA_LAUNCHED(be);
}

static cudaDataType cuda_type(sdc_dtype dt) {
    return dt == SDC_DTYPE_F16 ? CUDA_R_16F : dt == SDC_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

extern "C" void sdc_cuda_gemm(sdc_backend *be, sdc_dtype dt, int tf32, int trans_a, int trans_b, int64_t m, int64_t n,
                              int64_t k, const void *A, int64_t lda, int64_t stride_a, const void *B, int64_t ldb,
                              int64_t stride_b, float beta, void *C, int64_t ldc, int64_t stride_c, int64_t batch) {
    assert(dt == SDC_DTYPE_F16 || dt == SDC_DTYPE_BF16 || dt == SDC_DTYPE_F32);
    assert(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX &&
           batch <= INT_MAX);
    if (m == 0 || n == 0 || batch == 0) return;
    cublasHandle_t h = (cublasHandle_t)sdc_cuda_cublas(be);
    const cudaDataType t = cuda_type(dt);
    const cublasOperation_t ta = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, tb = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const float alpha = 1.0f;
    const cublasComputeType_t ct = dt == SDC_DTYPE_F32 && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    if (batch == 1)
        CUBLAS_CHECK(be,
                     cublasGemmEx(h, ta, tb, (int)m, (int)n, (int)k, &alpha, A, t, (int)lda, B, t, (int)ldb, &beta, C,
                                  t, (int)ldc, ct, CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_CHECK(be,
                     cublasGemmStridedBatchedEx(h, ta, tb, (int)m, (int)n, (int)k, &alpha, A, t, (int)lda, stride_a, B,
                                                t, (int)ldb, stride_b, &beta, C, t, (int)ldc, stride_c, (int)batch, ct,
                                                CUBLAS_GEMM_DEFAULT));
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

static int forced_dequant;   // sdc_cuda_linear_force_dequant

extern "C" void sdc_cuda_linear_force_dequant(int on) { forced_dequant = on; }

/* The fused kernel is opt-in until it has run on a GPU: SDC_CUDA_FUSED_QUANT=1 in the environment (read
 * once; tests/test_cuda_quant.c sets it). It was written and compiled in a session that got no GPU. */
static int fused_enabled(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("SDC_CUDA_FUSED_QUANT");
        on = e && e[0] == '1';
    }
    return on;
}

/* The fused kernel takes this quantized linear (up to its pointers' alignment, which shapes make). */
static int fused(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w) {
    return !forced_dequant && fused_enabled() &&
        sdc_cuda_linear_wgmma_applies(y->dtype, w->dtype, sdc_tensor_rows(x), w->ne[0], x->ne[x->ndim - 1]);
}

extern "C" size_t sdc_cuda_linear_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x,
                                            const sdc_tensor *w) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    if (!sdc_dtype_is_quant(w->dtype) || M == 0 || N == 0 || fused(y, x, w)) return 0;
    return (size_t)(sdc_cuda_linear_chunk_rows(N, K, y->dtype) * K) * sdc_dtype_size(y->dtype);
}

/* ------------------------------------------------------------------ cuBLASLt biased linears --- */

#define LT_PLANS 128   // kept plans; the least recently used one makes room

struct lt_plan {
    int64_t N, M, K;
    cudaDataType t;
    unsigned align;   // the operands' common alignment in bytes (a function of shapes: see align_of)
    int gelu;         // the epilogue: bias, then GELU (tanh form) when set
    int ok;           // 0: cuBLASLt has no algorithm for it (the fill path runs)
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulAlgo_t algo;
    uint64_t used;
};

struct sdc_cuda_lt {
    cublasLtHandle_t h;
    lt_plan plans[LT_PLANS];
    int n;
    uint64_t tick;
};

extern "C" sdc_cuda_lt *sdc_cuda_lt_new(void) {
    sdc_cuda_lt *lt = (sdc_cuda_lt *)calloc(1, sizeof *lt);
    if (lt && cublasLtCreate(&lt->h) != CUBLAS_STATUS_SUCCESS) {
        free(lt);
        return NULL;
    }
    return lt;
}

static void lt_plan_clear(lt_plan *p) {
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    if (p->a) cublasLtMatrixLayoutDestroy(p->a);
    if (p->b) cublasLtMatrixLayoutDestroy(p->b);
    if (p->d) cublasLtMatrixLayoutDestroy(p->d);
    *p = lt_plan{};
}

extern "C" void sdc_cuda_lt_free(sdc_cuda_lt *lt) {
    if (!lt) return;
    for (int i = 0; i < lt->n; i++) lt_plan_clear(&lt->plans[i]);
    cublasLtDestroy(lt->h);
    free(lt);
}

/* The largest power of two up to 256 dividing p's address. Every allocation starts on a 512-byte boundary
 * (cuda_alloc.h) and views start at offsets made of shapes, so this is a function of the shapes. */
static unsigned align_of(const void *p) {
    unsigned a = 256;
    while (a > 1 && (uintptr_t)p % a) a >>= 1;
    return a;
}

/* y^T[N, M] = (w[N, K] as [K, N])^T . (x[M, K] as [K, M]) + bias[N] over the columns (then GELU) */
static int lt_plan_make(sdc_cuda_lt *lt, lt_plan *p) {
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const cublasLtEpilogue_t ep = p->gelu ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    const uint64_t ws = SDC_CUDA_CUBLAS_WORKSPACE_BYTES;
    const uint32_t align = p->align, reduction = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;   // split-K sums in f32
    cublasLtMatmulPreference_t pref = NULL;
    int ok = cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == 0 &&
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == 0 &&
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep) == 0 &&
        cublasLtMatrixLayoutCreate(&p->a, p->t, (uint64_t)p->K, (uint64_t)p->N, p->K) == 0 &&
        cublasLtMatrixLayoutCreate(&p->b, p->t, (uint64_t)p->K, (uint64_t)p->M, p->K) == 0 &&
        cublasLtMatrixLayoutCreate(&p->d, p->t, (uint64_t)p->N, (uint64_t)p->M, p->N) == 0 &&
        cublasLtMatmulPreferenceCreate(&pref) == 0 &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) == 0 &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reduction,
                                             sizeof reduction) == 0;
    const cublasLtMatmulPreferenceAttributes_t aligns[] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    for (int i = 0; ok && i < 4; i++)
        ok = cublasLtMatmulPreferenceSetAttribute(pref, aligns[i], &align, sizeof align) == 0;
    cublasLtMatmulHeuristicResult_t res = {};
    int found = 0;
    ok = ok && cublasLtMatmulAlgoGetHeuristic(lt->h, p->op, p->a, p->b, p->d, p->d, pref, 1, &res, &found) == 0 &&
        found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (ok) p->algo = res.algo;
    return ok;
}

static lt_plan *lt_plan_for(sdc_cuda_lt *lt, int64_t N, int64_t M, int64_t K, cudaDataType t, unsigned align,
                            int gelu) {
    lt->tick++;
    for (int i = 0; i < lt->n; i++) {
        lt_plan *p = &lt->plans[i];
        if (p->N == N && p->M == M && p->K == K && p->t == t && p->align == align && p->gelu == gelu) {
            p->used = lt->tick;
            return p;
        }
    }
    lt_plan *p = &lt->plans[lt->n < LT_PLANS ? lt->n++ : 0];
    if (p->used) {   // full: the least recently used plan makes room
        for (int i = 1; i < LT_PLANS; i++)
            if (lt->plans[i].used < p->used) p = &lt->plans[i];
        lt_plan_clear(p);
    }
    p->N = N, p->M = M, p->K = K, p->t = t, p->align = align, p->gelu = gelu, p->used = lt->tick;
    p->ok = lt_plan_make(lt, p);
    return p;
}

/* y^T[N, M] = (w[N, K] as [K, N])^T . (x[M, K] as [K, M]) + bias[N], the bias (and GELU's tanh form when
 * gelu) in the epilogue (dt's operands, f32 accumulation); 0 when cuBLASLt has no plan for it (nothing was
 * enqueued) */
static int gemm_bias_lt(sdc_backend *be, sdc_dtype dt, int64_t N, int64_t M, int64_t K, const void *w, const void *x,
                        const void *bias, void *y, int gelu) {
    sdc_cuda_lt *lt = sdc_cuda_lt_of(be);
    if (!lt || N > INT_MAX || M > INT_MAX || K > INT_MAX) return 0;
    unsigned align = align_of(y);
    const void *ptrs[] = {x, w, bias};
    for (int i = 0; i < 3; i++) align = align_of(ptrs[i]) < align ? align_of(ptrs[i]) : align;
    const lt_plan *p = lt_plan_for(lt, N, M, K, cuda_type(dt), align, gelu);
    if (!p->ok) return 0;
    const float alpha = 1.0f, beta = 0.0f;
    if (CUBLAS_CHECK(be, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias)))
        return 1;
    CUBLAS_CHECK(be,
                 cublasLtMatmul(lt->h, p->op, &alpha, w, p->a, x, p->b, &beta, y, p->d, y, p->d, &p->algo,
                                sdc_cuda_cublas_ws(be), SDC_CUDA_CUBLAS_WORKSPACE_BYTES, sdc_cuda_stream(be)));
    return 1;
}

/* y[M, N] = x[M, K] w[N, K]^T (+ bias[N]) for w in dt: the bias in cuBLASLt's epilogue, else (no plan, or
 * no cuBLASLt) written into y first and added by the GEMM (beta 1) */
static void linear_dense(sdc_backend *be, sdc_dtype dt, int64_t N, int64_t M, int64_t K, const void *w, const void *x,
                         const void *bias, void *y) {
    if (bias && gemm_bias_lt(be, dt, N, M, K, w, x, bias, y, 0)) return;
    if (bias) fill_bias_rows(be, dt, y, bias, M, N);
    // column-major: y^T[N, M] = (w[N, K] as [K, N])^T . (x[M, K] as [K, M]) + beta y^T
    sdc_cuda_gemm(be, dt, 0, 1, 0, N, M, K, w, K, 0, x, K, 0, bias ? 1.0f : 0.0f, y, N, 0, 1);
}

/* y[M, N] = x[M, K] w[N, K]^T + b for a block-quantized w, a chunk of w's rows at a time. A weight that is
 * one chunk takes its bias in the GEMM's epilogue, as a float weight does (so that the two agree bit for bit);
 * with several chunks the bias is written into y first and each chunk's GEMM adds to it (beta 1). (A first
 * version ran each chunk's epilogue GEMM on a column slice of y and failed test_cuda_quant on the H100: its
 * plans made D's layout with ld = rows, not N. Slices would need D's ld as a plan key; not done.) */
static void linear_quant(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                         const sdc_tensor *b) {
    if (fused(y, x, w) && sdc_cuda_linear_wgmma(be, y, x, w, b)) return;
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    const sdc_dtype dt = y->dtype;
    const size_t es = sdc_dtype_size(dt), w_row = sdc_dtype_row_bytes(w->dtype, K);
    const int64_t chunk = sdc_cuda_linear_chunk_rows(N, K, dt);
    const size_t ws_bytes = sdc_cuda_linear_workspace(be, y, x, w);
    void *wd = SDC_CUDA_SCRATCH(be, ws_bytes, "sdc_cuda_linear dequantized weight rows");   // [chunk, K]
    if (!wd) return;
    if (chunk >= N) {   // one chunk: wd[N, K]
        sdc_cuda_dequant_rows(be, w->dtype, w->data, dt, wd, N, K);
        linear_dense(be, dt, N, M, K, wd, x->data, b ? b->data : NULL, y->data);
        sdc_cuda_scratch_free(be, wd, ws_bytes);
        return;
    }
    if (b) fill_bias_rows(be, dt, y->data, b->data, M, N);   // y[M, N] = b[N] broadcast over rows
    for (int64_t n0 = 0; n0 < N; n0 += chunk) {
        const int64_t rows = N - n0 < chunk ? N - n0 : chunk;
        sdc_cuda_dequant_rows(be, w->dtype, (const char *)w->data + (size_t)n0 * w_row, dt, wd, rows, K);
        // y^T[n0 : n0 + rows, M] (ldc N) = (wd[rows, K] as [K, rows])^T . (x[M, K] as [K, M]) + beta y^T
        sdc_cuda_gemm(be, dt, 0, 1, 0, rows, M, K, wd, K, 0, x->data, K, 0, b ? 1.0f : 0.0f,
                      (char *)y->data + (size_t)n0 * es, N, 0, 1);
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
    if (quant) {
        linear_quant(be, y, x, w, b);
        return;
    }
    linear_dense(be, dt, N, M, K, w->data, x->data, b ? b->data : NULL, y->data);
}

/* GELU's tanh form with a bias and a dense weight in cuBLASLt's epilogue (applied in f32 before the single
 * rounding to y's dtype, so not the bits of linear then unary); every other case is the two ops. */
extern "C" void sdc_cuda_linear_act(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                    const sdc_tensor *b, sdc_unary_op act) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    if (M == 0 || N == 0) return;
    if (act == SDC_UNARY_GELU_TANH && b && !sdc_dtype_is_quant(w->dtype)) {
        assert(x->dtype == y->dtype && w->dtype == y->dtype && b->dtype == y->dtype);
        if (gemm_bias_lt(be, y->dtype, N, M, K, w->data, x->data, b->data, y->data, 1)) return;
    }
    sdc_cuda_linear(be, y, x, w, b);
    sdc_cuda_unary(be, y, y, act);
}
