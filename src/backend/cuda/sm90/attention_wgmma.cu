/* attention_wgmma.cu - the attention of 128-wide heads (Flux) on Hopper's warpgroup tensor-core
 * instructions (wgmma, sm_90a), the same online softmax as cuda_attention.cu's mma.sync kernel:
 *   per key tile:  s = q k^T (f32),  m' = max(m, max s),  p = 2^(s c - m' c),  l = l 2^(m c - m' c) + sum p,
 *                  O = O 2^(m c - m' c) + p v,  m = m'          (c = log2(e) / sqrt(D))
 *   at the end:    y = O / l
 * Built for sm_90a only (CMakeLists.txt: its own object library); elsewhere the mma.sync kernel runs.
 *
 * A block of 256 threads (two warpgroups) owns 128 queries of one (batch, head); warpgroup w their rows
 * 64 w .. 64 w + 63. Key tiles of 128, double-buffered: while one tile is multiplied, cp.async brings the next.
 * Shared memory (bytes; each tile [rows][128] of 16-bit values stored as two panels of 64 columns, a panel's row
 * 128 bytes with its 16-byte pieces swizzled by the row: piece j of row r at (j ^ (r % 8)) * 16, the layout the
 * wgmma descriptors call 128-byte swizzle):
 *   Q [128 x 128] 32 KiB,  K [2][128 x 128] 64 KiB,  V [2][128 x 128] 64 KiB   (+ 1 KiB to align to 1024)
 * Per tile, each warpgroup:
 *   S[64 x 128] = Q_w K^T   8 wgmma m64n128k16, A = Q and B = K from shared memory (both K-major: d contiguous)
 *   softmax on S in registers (the accumulator layout: thread (warp, lane) holds rows 16 warp + lane / 4 and
 *     + 8, columns 8 i + 2 (lane % 4) + {0, 1} of each i < 16 - the mma.sync m16n8 layout, four times over)
 *   O[64 x 128] += P V      8 wgmma m64n128k16, A = P from registers (S's layout is the A-fragment layout, so
 *     P is S rounded to 16 bits in place), B = V from shared memory, transposed (MN-major: d contiguous)
 * Scores and O accumulate in f32; P is rounded to the input type, as in the mma.sync kernel. The order of every
 * sum is fixed by the shapes (the key tile of 128, the tensor cores' k-steps): bit-identical run to run, and a
 * query row's result does not depend on the other rows, heads or images of the call. */
#include "backend/cuda/cuda_attention.cuh"
#include "backend/cuda/sm90/wgmma.cuh"

#define WG_BQ 128        // queries per block
#define WG_BK 128        // keys per tile
#define WG_THREADS 256   // two warpgroups
#define WG_TILE 32768    // bytes of one [128 x 128] tile
#define WG_SMEM (5 * WG_TILE + 1024)

/* rows [row0, row0 + 128) of a head slice (128 columns at src, rows C apart) -> the tile at dst (shared, 1024-byte
 * aligned) in the swizzled two-panel layout; rows at or past `limit` zero-filled. */
template <typename T>
static __device__ __forceinline__ void wg_load_tile(unsigned char *dst, const T *src, int64_t C, int row0, int limit) {
#pragma unroll
    for (int k = 0; k < WG_BK * 16 / WG_THREADS; k++) {
        const int i = threadIdx.x + k * WG_THREADS, r = i >> 4, j = i & 15;   // 16 pieces of 16 bytes per row
        const int ok = row0 + r < limit;
        const T *s = ok ? src + (int64_t)(row0 + r) * C + j * 8 : src;
        cp_async16(dst + (j >> 3) * (WG_BK * 128) + r * 128 + (((j & 7) ^ (r & 7)) << 4), s, ok ? 16 : 0);
    }
}

/* The tile pieces both kernels run, per warpgroup (wg: its index; row0/row1: this thread's two query rows). */

/* s = Q_w K^T for the tile at ka: d in 8 steps of 16, panel kd / 4, 32 bytes per step within a panel's row.
 * Issued, not waited for. */
template <typename T> static __device__ __forceinline__ void issue_scores(float *s, unsigned qa, unsigned ka) {
#pragma unroll
    for (int kd = 0; kd < 8; kd++) {
        const unsigned off = (kd >> 2) * (WG_BK * 128) + (kd & 3) * 32;
        wgmma_ss<T>(s, wg_desc(qa + off, 16, 1024), wg_desc(ka + off, 16, 1024), kd > 0);
    }
}

/* o += P V for the tile at va: keys in 8 steps of 16 (16 rows of 128 bytes = 2048 bytes), both panels of d.
 * Issued, not waited for. */
template <typename T> static __device__ __forceinline__ void issue_pv(float *o, unsigned (&p)[8][4], unsigned va) {
#pragma unroll
    for (int kk = 0; kk < 8; kk++) wgmma_rs<T>(o, p[kk], wg_desc(va + kk * 2048, WG_BK * 128, 1024));
}

/* The online softmax of the tile of keys s0 .. s0 + 127 on its scores s (keys at or past S masked): the running
 * maxima m and this thread's sums l updated, al = 2^(m_old c - m_new c) the factor for o, p = P rounded to T
 * in the A-fragment layout (keys 16 kk .. 16 kk + 15 in p[kk]). */
template <typename T>
static __device__ __forceinline__ void softmax_tile(float (&s)[64], unsigned (&p)[8][4], float &m0, float &m1,
                                                    float &l0, float &l1, float &al0, float &al1, float sc, int s0,
                                                    int S, int cq) {
    if (s0 + WG_BK > S) {   // keys past S (the last tile only; it holds at least one key)
#pragma unroll
        for (int i = 0; i < 16; i++)
#pragma unroll
            for (int e = 0; e < 2; e++)
                if (s0 + 8 * i + cq + e >= S) s[4 * i + e] = s[4 * i + 2 + e] = -INFINITY;
    }
    float mx0 = m0, mx1 = m1;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        mx0 = fmaxf(mx0, fmaxf(s[4 * i], s[4 * i + 1]));
        mx1 = fmaxf(mx1, fmaxf(s[4 * i + 2], s[4 * i + 3]));
    }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    /* the first tile holds key 0, so the maximum is finite from there on */
    al0 = ex2((m0 - mx0) * sc);
    al1 = ex2((m1 - mx1) * sc);
    const float mc0 = mx0 * sc, mc1 = mx1 * sc;
    m0 = mx0;
    m1 = mx1;
    float ls0 = 0.0f, ls1 = 0.0f;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        const float p0 = ex2(fmaf(s[4 * i], sc, -mc0)), p1 = ex2(fmaf(s[4 * i + 1], sc, -mc0));
        const float p2 = ex2(fmaf(s[4 * i + 2], sc, -mc1)), p3 = ex2(fmaf(s[4 * i + 3], sc, -mc1));
        p[i >> 1][(i & 1) * 2] = pack2<T>(p0, p1);       // row0: a0 (keys 2t..), a2 (keys 2t + 8..)
        p[i >> 1][(i & 1) * 2 + 1] = pack2<T>(p2, p3);   // row1: a1, a3
        ls0 += p0 + p1;
        ls1 += p2 + p3;
    }
    l0 = l0 * al0 + ls0;
    l1 = l1 * al1 + ls1;
}

static __device__ __forceinline__ void rescale(float (&o)[64], float al0, float al1) {
#pragma unroll
    for (int i = 0; i < 16; i++) {
        o[4 * i] *= al0;
        o[4 * i + 1] *= al0;
        o[4 * i + 2] *= al1;
        o[4 * i + 3] *= al1;
    }
}

template <typename T>
static __device__ __forceinline__ void store_rows(const attn_geom &g, float (&o)[64], float l0, float l1, int b, int h,
                                                  int row0, int cq) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
    const int row1 = row0 + 8;
    T *yg = (T *)g.y + (int64_t)b * g.T * g.C + h * 128;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        if (row0 < g.T)
            *(unsigned *)(yg + (int64_t)row0 * g.C + 8 * i + cq) = pack2<T>(o[4 * i] * inv0, o[4 * i + 1] * inv0);
        if (row1 < g.T)
            *(unsigned *)(yg + (int64_t)row1 * g.C + 8 * i + cq) = pack2<T>(o[4 * i + 2] * inv1, o[4 * i + 3] * inv1);
    }
}

static __device__ __forceinline__ void fence_regs(unsigned (&p)[8][4]) {
#pragma unroll
    for (int kk = 0; kk < 8; kk++)
#pragma unroll
        for (int e = 0; e < 4; e++) reg_fence(p[kk][e]);
}

/* grid (ceil(T / 128), B * H), WG_THREADS threads, WG_SMEM bytes of dynamic shared memory. Per tile: S = Q K^T,
 * wait, softmax, O = O al + P V, wait. (A variant that issued tile j's scores together with tile j - 1's P V, so
 * that the softmax ran while P V multiplied, gave the same bits and was slower: 0.658 against 0.647 ms for
 * Flux 1024^2 on an H100, bench/results/h100-attention.txt.) */
template <typename T> __global__ void __launch_bounds__(WG_THREADS, 1) attn_wgmma_kernel(attn_geom g) {
#ifdef SDC_WGMMA
    extern __shared__ __align__(16) unsigned char wg_smem[];
    unsigned char *Qs = wg_smem + ((1024 - (smem_addr(wg_smem) & 1023)) & 1023);   // 1024-byte aligned
    unsigned char *Ks = Qs + WG_TILE, *Vs = Ks + 2 * WG_TILE;
    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int q0 = blockIdx.x * WG_BQ, b = blockIdx.y / g.H, h = blockIdx.y % g.H;
    const float sc = g.scale_log2;
    const T *qg = (const T *)g.q + (int64_t)b * g.T * g.C + h * 128;   // row t at qg + t C
    const T *kg = (const T *)g.k + (int64_t)b * g.S * g.C + h * 128;
    const T *vg = (const T *)g.v + (int64_t)b * g.S * g.C + h * 128;
    const int row0 = q0 + wg * 64 + warp * 16 + (lane >> 2);   // this thread's query rows: row0, row0 + 8
    const int cq = 2 * (lane & 3);                             // its first column of each 8
    const unsigned qa = smem_addr(Qs) + wg * 64 * 128;         // this warpgroup's rows of panel 0
    const int n_tiles = (g.S + WG_BK - 1) / WG_BK;
    float o[64], s[64], m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f, al0, al1;   // m unscaled
#pragma unroll
    for (int i = 0; i < 64; i++) o[i] = s[i] = 0.0f;

    wg_load_tile<T>(Qs, qg, g.C, q0, g.T);
    wg_load_tile<T>(Ks, kg, g.C, 0, g.S);
    wg_load_tile<T>(Vs, vg, g.C, 0, g.S);
    cp_async_commit();

    unsigned p[8][4];
    for (int it = 0; it < n_tiles; it++) {
        const int buf = it & 1;
        cp_async_wait<0>();   // tile it (and Q) landed
        fence_proxy_async();
        __syncthreads();   // ... for every thread; and the other buffer's tile it - 1 is consumed
        if (it + 1 < n_tiles) {
            wg_load_tile<T>(Ks + (buf ^ 1) * WG_TILE, kg, g.C, (it + 1) * WG_BK, g.S);
            wg_load_tile<T>(Vs + (buf ^ 1) * WG_TILE, vg, g.C, (it + 1) * WG_BK, g.S);
        }
        cp_async_commit();
        wgmma_fence();
        issue_scores<T>(s, qa, smem_addr(Ks + buf * WG_TILE));
        wgmma_commit();
        wgmma_wait<0>();
        fence_regs(s);
        softmax_tile<T>(s, p, m0, m1, l0, l1, al0, al1, sc, it * WG_BK, g.S, cq);
        rescale(o, al0, al1);
        fence_regs(o);
        fence_regs(p);
        wgmma_fence();
        issue_pv<T>(o, p, smem_addr(Vs + buf * WG_TILE));
        wgmma_commit();
        wgmma_wait<0>();
        fence_regs(o);
    }
    store_rows<T>(g, o, l0, l1, b, h, row0, cq);
#endif
}

template <typename T> static void launch(sdc_backend *be, cudaStream_t s, const attn_geom &g) {
    CUDA_CHECK(be, cudaFuncSetAttribute(attn_wgmma_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, WG_SMEM));
    const dim3 grid((unsigned)((g.T + WG_BQ - 1) / WG_BQ), (unsigned)(g.B * g.H));
    attn_wgmma_kernel<T><<<grid, WG_THREADS, WG_SMEM, s>>>(g);
}

extern "C" int sdc_cuda_attention_wgmma_here(void) { return sdc_sm90_device(); }

int sdc_cuda_attention_wgmma(sdc_backend *be, cudaStream_t s, const attn_geom &g, int bf16) {
    if (g.D != 128 || g.causal || !sdc_sm90_device()) return 0;
    if (bf16)
        launch<__nv_bfloat16>(be, s, g);
    else
        launch<__half>(be, s, g);
    return 1;
}
