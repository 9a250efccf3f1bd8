/* linear_wgmma.cu - the linear op on a block-quantized weight on Hopper (sm_90a), the dequantization fused
 * into the GEMM: y[M, N] = x[M, K] w[N, K]^T (+ b[N]), x, y and b F16 or BF16, w of a 32-element block type
 * (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) or Q4_K (cuda_quant.cuh; lq_fetch says what a step reads of each).
 * No dequantized copy of the weight exists but one tile in shared memory; the weight is read as its quantized
 * bytes.
 *
 * A block of 2 BM threads (a warpgroup per 64 tokens) owns BM tokens (rows of x: 128, or 64 where M <= 64) by
 * BN output features (rows of w: 256, or 128 where that fills the GPU's last wave of blocks much better);
 * warpgroup g owns tokens 64 g .. 64 g + 63. K runs in steps of 64:
 *   - cp.async brings x's [BM x 64] tile (128-byte swizzle, sm90/wgmma.cuh) and the raw bytes of w's BN rows
 *     for the step (lq_fetch: 16-byte pieces; a Q8_0 block is 34 bytes, so two of them start at any even
 *     offset) LQ_NS - 1 steps ahead;
 *   - while the tensor cores multiply step s, every thread dequantizes step s + 1's raw bytes into a
 *     [BN x 64] tile of T (swizzled): each value the f32 of sdc_dequant_row rounded to T, as the
 *     dequantize-then-cuBLAS path (cuda_gemm.cu) has it;
 *   - per step and warpgroup: 4 k-steps of 16 x BN / 128 groups of 128 features, wgmma m64n128k16 with
 *     A = x and B = w from shared memory (both K-major), into f32 accumulators (this thread's: acc[h][64]).
 * Shared memory: x [LQ_NS][BM x 128 bytes], dequantized w [2][BN x 128 bytes], raw w [LQ_NS][BN x 16 PIECES
 * bytes] (PIECES: 6 for Q8_0, 3 for Q4_K, 4 for the others), + 1 KiB to align: at most 230400 bytes (Q8_0,
 * 128 x 256), one block per multiprocessor.
 *
 * Each output is one f32 sum over K in a fixed order (the 64-wide steps in order, the tensor cores' k-steps
 * within them), plus the bias, rounded once to T: bit-identical run to run, and a token's result depends
 * neither on M nor on the other tokens of the call (a batch of images gives each image its own bits). */
#include "backend/cuda/cuda_quant.cuh"
#include "backend/cuda/sm90/wgmma.cuh"

#define LQ_BK 64   // K per step: two 32-element blocks
#define LQ_NS 4    // steps of x and raw w in flight

struct lq_geom {
    const void *x, *bias;   // x [M, K]; bias [N] or NULL
    const uint8_t *w;       // [N] rows of K / 32 blocks, w_row bytes each, 16-byte aligned
    void *y;                // [M, N]
    int M, N, K;
    int64_t w_row, w_bytes;   // bytes of a row of w, of all of w
};

/* What one step (64 elements) of a row of w needs, per block type: PIECES 16-byte pieces of the row's bytes
 * (piece p at byte offset at(g, n, k0, p) of w, 16-byte aligned), kept side by side in shared memory, and
 * dq8(raw, g, n, k0, grp, y): elements 8 grp .. 8 grp + 7 of the step from them, as f32.
 *   32-element types: the two blocks, 2 BYTES bytes from any even offset (a Q8_0 block is 34 bytes): the
 *   pieces from the one holding the first byte.
 *   Q4_K (144-byte blocks of 256, 16-byte aligned): the block's 16 header bytes (d, dmin, scales) and the 32
 *   bytes of nibbles that hold the step's 64 elements. */
template <typename Q> struct lq_fetch {
    static_assert(Q::QK == 32, "a 32-element block type");
    static constexpr int PIECES = (2 * Q::BYTES + 15 + 15) / 16;
    static __device__ __forceinline__ int64_t first(const lq_geom &g, int n, int k0) {
        return (int64_t)n * g.w_row + (int64_t)(k0 / 32) * Q::BYTES;
    }
    static __device__ __forceinline__ int64_t at(const lq_geom &g, int n, int k0, int p) {
        return (first(g, n, k0) & ~(int64_t)15) + 16 * p;
    }
    static __device__ __forceinline__ void dq8(const uint8_t *raw, const lq_geom &g, int n, int k0, int grp, float *y) {
        Q::dq8(raw + (first(g, n, k0) & 15) + (grp >> 2) * Q::BYTES, (grp & 3) * 8, y);
    }
};

template <> struct lq_fetch<q4_k> {
    static constexpr int PIECES = 3;
    static __device__ __forceinline__ int64_t at(const lq_geom &g, int n, int k0, int p) {
        const int64_t block = (int64_t)n * g.w_row + (int64_t)(k0 / 256) * q4_k::BYTES;
        return p == 0 ? block : block + 16 + (k0 % 256 / 64) * 32 + (p - 1) * 16;
    }
    static __device__ __forceinline__ void dq8(const uint8_t *raw, const lq_geom &, int, int k0, int grp, float *y) {
        q4_k::dq8_parts(raw, raw + 16, k0 % 256 + grp * 8, y);
    }
};

/* A block's BM tokens (128 or 64), BN output features (256 or 128), threads and shared memory (STRIDE bytes of
 * raw w per row and step). */
template <typename Q, int BM, int BN> struct lq_tile {
    static constexpr int THREADS = 2 * BM;   // a warpgroup per 64 tokens
    static constexpr int XTILE = BM * 128;   // one step of x
    static constexpr int STRIDE = lq_fetch<Q>::PIECES * 16;
    static constexpr int RAW = BN * STRIDE;   // one step's raw rows
    static constexpr int WTILE = BN * 128;    // one step's dequantized rows
    static constexpr size_t SMEM = 1024 + LQ_NS * (size_t)(XTILE + RAW) + 2 * (size_t)WTILE;
};

/* x[m0 .. m0 + BM - 1][k0 .. k0 + 63] -> dst (swizzled); rows at or past M zero-filled. 4 pieces a thread. */
template <typename T, int BM>
static __device__ __forceinline__ void lq_load_x(unsigned char *dst, const lq_geom &g, int m0, int k0) {
    const T *x = (const T *)g.x;
#pragma unroll
    for (int j = 0; j < 4; j++) {   // BM * 8 pieces, 2 BM threads
        const int i = threadIdx.x + j * 2 * BM, r = i >> 3, p = i & 7;
        const int ok = m0 + r < g.M;
        const T *src = ok ? x + (int64_t)(m0 + r) * g.K + k0 + p * 8 : x;
        cp_async16(dst + r * 128 + ((p ^ (r & 7)) << 4), src, ok ? 16 : 0);
    }
}

/* The raw bytes of rows n0 .. n0 + BN - 1 of w for the step at k0 -> dst (row r at r STRIDE); rows at or past
 * N and bytes past the end of w zero-filled. */
template <typename Q, int BM, int BN>
static __device__ __forceinline__ void lq_load_w(unsigned char *dst, const lq_geom &g, int n0, int k0) {
    constexpr int P = lq_fetch<Q>::PIECES, TH = lq_tile<Q, BM, BN>::THREADS;
#pragma unroll
    for (int j = 0; j < (P * BN + TH - 1) / TH; j++) {
        const int i = threadIdx.x + j * TH, r = i / P, p = i % P;
        if (i >= P * BN) break;
        const int64_t a = lq_fetch<Q>::at(g, n0 + r, k0, p);
        const int64_t left = g.w_bytes - a;
        const int bytes = n0 + r >= g.N ? 0 : left >= 16 ? 16 : left > 0 ? (int)left : 0;
        cp_async16(dst + r * lq_tile<Q, BM, BN>::STRIDE + p * 16, bytes ? g.w + a : g.w, bytes);
    }
}

/* The raw step at raw (rows n0 ..) -> the [BN x 64] tile of T at wd (swizzled): a thread dequantizes 4 BN / BM
 * groups of 8 elements, each one 16-byte store. */
template <typename Q, typename T, int BM, int BN>
static __device__ __forceinline__ void lq_dequant(unsigned char *wd, const unsigned char *raw, const lq_geom &g, int n0,
                                                  int k0) {
#pragma unroll
    for (int j = 0; j < BN * 8 / (2 * BM); j++) {
        const int i = threadIdx.x + j * 2 * BM, r = i >> 3, grp = i & 7;   // elements 8 grp .. 8 grp + 7
        float v[8];
        lq_fetch<Q>::dq8(raw + r * lq_tile<Q, BM, BN>::STRIDE, g, n0 + r, k0, grp, v);
        sdc_store_pack<T>((T *)(wd + r * 128 + ((grp ^ (r & 7)) << 4)), v);
    }
}

/* grid (ceil(M / BM), ceil(N / BN)): consecutive blocks share a tile of w (read from L2 after the first),
 * 2 BM threads, lq_tile<Q, BM, BN>::SMEM bytes of dynamic shared memory. */
template <typename Q, typename T, int BM, int BN>
__global__ void __launch_bounds__(2 * BM, 1) linear_q_kernel(lq_geom g) {
#ifdef SDC_WGMMA
    extern __shared__ __align__(16) unsigned char lq_smem[];
    unsigned char *xs = lq_smem + ((1024 - (smem_addr(lq_smem) & 1023)) & 1023);   // [LQ_NS] x tiles
    typedef lq_tile<Q, BM, BN> L;
    constexpr int H = BN / 128;                  // halves of 128 features
    unsigned char *wd = xs + LQ_NS * L::XTILE;   // [2] dequantized w
    unsigned char *raw = wd + 2 * L::WTILE;      // [LQ_NS] raw w steps
    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN, nk = g.K / LQ_BK;
    float acc[H][64];
#pragma unroll
    for (int h = 0; h < H; h++)
#pragma unroll
        for (int i = 0; i < 64; i++) acc[h][i] = 0.0f;

    for (int s = 0; s < LQ_NS - 1; s++) {
        if (s < nk) {
            lq_load_x<T, BM>(xs + s * L::XTILE, g, m0, s * LQ_BK);
            lq_load_w<Q, BM, BN>(raw + s * L::RAW, g, n0, s * LQ_BK);
        }
        cp_async_commit();
    }
    cp_async_wait<LQ_NS - 2>();   // step 0 landed
    __syncthreads();
    lq_dequant<Q, T, BM, BN>(wd, raw, g, n0, 0);
    fence_proxy_async();
    __syncthreads();

    for (int s = 0; s < nk; s++) {
        /* every warpgroup multiplies, whatever M: a branch around wgmma makes ptxas serialise them */
        const unsigned xa = smem_addr(xs + (s % LQ_NS) * L::XTILE) + wg * 64 * 128;
        const unsigned wa = smem_addr(wd + (s & 1) * L::WTILE);
#pragma unroll
        for (int h = 0; h < H; h++) fence_regs(acc[h]);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < 4; kk++)
#pragma unroll
            for (int h = 0; h < H; h++)
                wgmma_ss<T>(acc[h], wg_desc(xa + kk * 32, 16, 1024), wg_desc(wa + h * 128 * 128 + kk * 32, 16, 1024),
                            1);
        wgmma_commit();
        const int sn = s + LQ_NS - 1;   // into the slots step s - 1 used: its multiply and dequantization are done
        if (sn < nk) {
            lq_load_x<T, BM>(xs + (sn % LQ_NS) * L::XTILE, g, m0, sn * LQ_BK);
            lq_load_w<Q, BM, BN>(raw + (sn % LQ_NS) * L::RAW, g, n0, sn * LQ_BK);
        }
        cp_async_commit();   // possibly empty: keeps "all but the newest LQ_NS - 2" meaning step s + 1
        cp_async_wait<LQ_NS - 2>();
        __syncthreads();
        if (s + 1 < nk)
            lq_dequant<Q, T, BM, BN>(wd + ((s + 1) & 1) * L::WTILE, raw + ((s + 1) % LQ_NS) * L::RAW, g, n0,
                                     (s + 1) * LQ_BK);
        fence_proxy_async();
        wgmma_wait<0>();
#pragma unroll
        for (int h = 0; h < H; h++) fence_regs(acc[h]);
        __syncthreads();   // step s's tiles are free; step s + 1's dequantized tile is complete
    }

    T *y = (T *)g.y;
    const T *bias = (const T *)g.bias;
    const int row0 = m0 + wg * 64 + warp * 16 + (lane >> 2), row1 = row0 + 8, cq = 2 * (lane & 3);
#pragma unroll
    for (int h = 0; h < H; h++)
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const int n = n0 + h * 128 + 8 * i + cq;   // and n + 1 (N is even)
            if (n >= g.N) continue;
            const float b0 = bias ? sdc_to_f(bias[n]) : 0.0f, b1 = bias ? sdc_to_f(bias[n + 1]) : 0.0f;
            if (row0 < g.M)
                *(unsigned *)(y + (int64_t)row0 * g.N + n) = pack2<T>(acc[h][4 * i] + b0, acc[h][4 * i + 1] + b1);
            if (row1 < g.M)
                *(unsigned *)(y + (int64_t)row1 * g.N + n) = pack2<T>(acc[h][4 * i + 2] + b0, acc[h][4 * i + 3] + b1);
        }
#endif
}

template <typename Q, typename T, int BM, int BN> static void launch_tile(sdc_backend *be, const lq_geom &g) {
    typedef lq_tile<Q, BM, BN> L;
    CUDA_CHECK(
        be,
        cudaFuncSetAttribute(linear_q_kernel<Q, T, BM, BN>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)L::SMEM));
    const dim3 grid((unsigned)((g.M + BM - 1) / BM), (unsigned)((g.N + BN - 1) / BN));
    linear_q_kernel<Q, T, BM, BN><<<grid, L::THREADS, L::SMEM, sdc_cuda_stream(be)>>>(g);
    SDC_CUDA_LAUNCHED(be);
}

/* The device's multiprocessors, asked once. */
static int sm_count(void) {
    static int n = 0;
    int dev = 0;
    if (n == 0 &&
        (cudaGetDevice(&dev) != cudaSuccess ||
         cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || n < 1))
        n = 1;
    return n;
}

/* The share of the multiprocessors' block slots (one block each) that `tiles` blocks keep busy over their waves. */
static double wave_use(int64_t tiles) {
    const int64_t sms = sm_count(), waves = (tiles + sms - 1) / sms;
    return (double)tiles / (double)(waves * sms);
}

/* The tile: 64 tokens a block for at most 64 tokens (one warpgroup: half the tensor-core work of 128 on
 * padding rows), else 128; 128 features a block where that fills the last wave much better than 256 (a
 * 256-wide block does the same work with half the x traffic per feature). A function of the shapes and the
 * device; a token's outputs have the same bits whatever the tile (the same k-steps in the same order, each
 * row and feature on its own). */
template <typename Q, typename T> static void launch(sdc_backend *be, const lq_geom &g) {
    if (g.M <= 64) {
        launch_tile<Q, T, 64, 256>(be, g);
        return;
    }
    const int64_t mt = (g.M + 127) / 128;
    if (wave_use(mt * ((g.N + 127) / 128)) > 1.15 * wave_use(mt * ((g.N + 255) / 256)))
        launch_tile<Q, T, 128, 128>(be, g);
    else
        launch_tile<Q, T, 128, 256>(be, g);
}

/* X(dtype, layout struct) for every type the kernel takes (lq_fetch has a step for each) */
#define LQ_TYPES(X)             \
    X(SDC_DTYPE_Q4_0, q4_0)     \
    X(SDC_DTYPE_Q4_1, q4_1)     \
    X(SDC_DTYPE_Q5_0, q5_0)     \
    X(SDC_DTYPE_Q5_1, q5_1)     \
    X(SDC_DTYPE_Q8_0, q8_0)     \
    X(SDC_DTYPE_IQ4_NL, iq4_nl) \
    X(SDC_DTYPE_Q4_K, q4_k)

/* 1 when the kernel takes weights of type wt */
static int lq_type(sdc_dtype wt) {
    switch (wt) {
#define LQ_CASE_(dt, q) case dt:
        LQ_TYPES(LQ_CASE_)
#undef LQ_CASE_
        return 1;
    default: return 0;
    }
}

template <typename T> static void launch_type(sdc_backend *be, sdc_dtype wt, const lq_geom &g) {
    switch (wt) {
#define LQ_LAUNCH_(dt, q) \
    case dt: launch<q, T>(be, g); break;
        LQ_TYPES(LQ_LAUNCH_)
#undef LQ_LAUNCH_
    default: assert(!"sdc_cuda_linear_wgmma: no fused kernel for this type");
    }
}

extern "C" int sdc_cuda_linear_wgmma_applies(sdc_dtype act, sdc_dtype wt, int64_t M, int64_t N, int64_t K) {
    return lq_type(wt) && (act == SDC_DTYPE_F16 || act == SDC_DTYPE_BF16) && K > 0 && K % LQ_BK == 0 && N % 2 == 0 &&
        M <= INT32_MAX && N <= INT32_MAX && K <= INT32_MAX && (N + 127) / 128 <= 65535 && sdc_sm90_device();
}

extern "C" int sdc_cuda_linear_wgmma(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                     const sdc_tensor *b) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    assert(sdc_cuda_linear_wgmma_applies(y->dtype, w->dtype, M, N, K));
    if (!sdc_aligned16(x->data) || !sdc_aligned16(w->data) || ((uintptr_t)y->data & 3)) return 0;
    lq_geom g;
    g.x = x->data;
    g.bias = b ? b->data : NULL;
    g.w = (const uint8_t *)w->data;
    g.y = y->data;
    g.M = (int)M, g.N = (int)N, g.K = (int)K;
    g.w_row = (int64_t)sdc_dtype_row_bytes(w->dtype, K);
    g.w_bytes = g.w_row * N;
    if (y->dtype == SDC_DTYPE_BF16)
        launch_type<__nv_bfloat16>(be, w->dtype, g);
    else
        launch_type<__half>(be, w->dtype, g);
    return 1;
}
