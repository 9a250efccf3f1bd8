/* cuda_attention.cu - multi-head scaled dot-product attention, flash style: each block owns a tile of
 * queries of one (batch, head) and streams the keys and values past it in tiles, keeping a running
 * row maximum m, a running denominator l and the unnormalised output O (the online softmax):
 *   per key tile:  s = q k^T / sqrt(D) (masked: -inf),  m' = max(m, max s),  p = exp(s - m'),
 *                  l = l exp(m - m') + sum p,  O = O exp(m - m') + p v,  m = m'
 *   at the end:    y = O / l
 * so the T x S score matrix never exists and no workspace is needed. Exponentials are base 2 with
 * log2(e) folded into the scale. Heads are interleaved in the channel dim: q[b, t, h*D + d].
 *
 * Two kernels here:
 *   attn_mma_kernel   F16 or BF16 with D % 8 == 0 and D <= 160 (every SD head: 40, 64, 80, 160; Flux's
 *                     128): tensor cores through mma.sync m16n8k16 (f16 or bf16 in, f32 accumulate). 4 or 8
 *                     warps of 16 or 32 query rows each (launch_mma_cfg), 64 or 128 keys per tile
 *                     (key_tile), double-buffered with cp.async. The PTX fragment layouts are documented,
 *                     unlike WMMA's, so the softmax runs on the score accumulators in registers and the
 *                     probabilities feed the second product without a trip through shared memory, rounded
 *                     to the input type. D is zero-padded to DP, a multiple of 16. On compute capability
 *                     9.0 the heads of 128 without a causal mask take sm90/attention_wgmma.cu's kernel
 *                     instead (the same online softmax on warpgroup MMAs).
 *   attn_simt_kernel  everything else (F32, odd head dims, D > 160): plain f32 FMAs on tiles in shared
 *                     memory, 32 queries x 32 keys per step, 8 threads per query row. Output columns
 *                     are split into slices of DV <= 512 across blocks (D > 512 recomputes the scores
 *                     per slice). attention_bias runs here too (any dtype), adding log2(e) bias[h, t, s]
 *                     to each scaled score.
 * and, for heads wider than the mma kernel takes (D > 160: the VAE's single 512-wide head), in any dtype:
 *   attention_gemm    through cuBLAS, a chunk of TQ queries at a time for all heads: scores S = scale q k^T in
 *                     f32 (one strided-batched GEMM per image, f32 output), each row's softmax (f32, with the
 *                     causal mask and the bias where given) written as P in the input dtype, then y = P v (a
 *                     second GEMM, f32 accumulation). Its scratch (S, and P unless F32) is at most
 *                     SDC_CUDA_CONV_WORKSPACE_BYTES, TQ a function of the shapes (sdc_cuda_attention_workspace).
 * All reduce in orders fixed by the shapes: results are bit-identical run to run. */
#include <cublas_v2.h>
#include <math.h>

#include "backend/cuda/cuda_attention.cuh"

/* ----------------------------------------------------------- tensor-core kernel (F16, BF16) --- */

/* Four 8x8 b16 matrices; lane l gives the address of row l % 8 of matrix l / 8 and receives, of
 * matrix i in r[i], the elements (row l / 4, cols 2 (l % 4) and 2 (l % 4) + 1) - or with trans those
 * at (rows 2 (l % 4) and 2 (l % 4) + 1, col l / 4). */
static __device__ __forceinline__ void ldmatrix_x4(unsigned *r, const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}
static __device__ __forceinline__ void ldmatrix_x4_trans(unsigned *r, const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}

/* c[16x8] += a[16x16] b[16x8]. With g = lane / 4, t = lane % 4:
 *   a[0] = A(g, 2t..2t+1)  a[1] = A(g+8, 2t..)  a[2] = A(g, 2t+8..)  a[3] = A(g+8, 2t+8..)
 *   b0 = B(2t..2t+1, g)    b1 = B(2t+8.., g)
 *   c[0..1] = C(g, 2t..2t+1)  c[2..3] = C(g+8, 2t..2t+1)
 * (lower 16 bits hold the lower column / row index). */
template <typename T>
static __device__ __forceinline__ void mma16816(float *c, const unsigned *a, unsigned b0, unsigned b1);
template <> __device__ __forceinline__ void mma16816<__half>(float *c, const unsigned *a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float *c, const unsigned *a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* rows [row0, row0 + rows) of a [*, C] head slice (D columns from src) -> dst [rows][ld], rows at or past
 * `limit` zero-filled. D % 8 == 0; 16-byte pieces, NTH threads. */
template <typename T, int NTH>
static __device__ __forceinline__ void load_rows_async(T *dst, int ld, const T *src, int64_t C, int row0, int rows,
                                                       int limit, int D) {
    const int pieces = D / 8;
    for (int i = threadIdx.x; i < rows * pieces; i += NTH) {
        const int r = i / pieces, c = i % pieces;
        const int ok = row0 + r < limit;
        const T *s = ok ? src + (int64_t)(row0 + r) * C + c * 8 : src;
        cp_async16(dst + r * ld + c * 8, s, ok ? 16 : 0);
    }
}

/* grid (ceil(T / BQ), B * H), NW warps, BQ = 16 MT NW queries per block: each warp owns MT m-tiles of
 * 16 query rows, so every K and V fragment it loads from shared memory feeds MT products, and the NW
 * warps share each K and V tile loaded from global memory. Dynamic shared memory (BQ + 4 * 64) * (DP + 8)
 * elements: Q [BQ][DP+8], K [2][64][DP+8], V [2][64][DP+8] (the 8 extra columns keep ldmatrix rows on
 * distinct banks). The row maximum m is kept unscaled and the scale folded into the exponent,
 * p = 2^(s c - m c) with c = log2(e) / sqrt(D); the mask is applied only on the tiles that hold a
 * masked key (past S, or past a causal row of the block). A query row's arithmetic (key tiles of 64,
 * the order of every sum) is the same for any MT and NW: they change the speed, not the bits. */
template <typename T, int DP, int MT, int NW, int BK>
__global__ void __launch_bounds__(NW * 32) attn_mma_kernel(attn_geom g) {
    constexpr int NTH = NW * 32, LD = DP + 8, NT = BK / 8, DT = DP / 8, BQ = 16 * MT * NW;   // n-tiles
    extern __shared__ __align__(16) unsigned char smem_raw[];
    T *Qs = (T *)smem_raw, *Ks = Qs + BQ * LD, *Vs = Ks + 2 * BK * LD;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gq = lane >> 2, tq = lane & 3;
    const int q0 = blockIdx.x * BQ, b = blockIdx.y / g.H, h = blockIdx.y % g.H, D = g.D;
    const float sc = g.scale_log2;
    const T *qg = (const T *)g.q + (int64_t)b * g.T * g.C + h * D;   // row t at qg + t C
    const T *kg = (const T *)g.k + (int64_t)b * g.S * g.C + h * D;
    const T *vg = (const T *)g.v + (int64_t)b * g.S * g.C + h * D;

    if (D < DP) {   // zero the padding columns [D, DP) of every tile row; the loads never write them
        const int pieces = (DP - D) / 8;
        for (int i = threadIdx.x; i < (BQ + 4 * BK) * pieces; i += NTH)
            *(uint4 *)(Qs + (i / pieces) * LD + D + (i % pieces) * 8) = make_uint4(0, 0, 0, 0);
    }
    const int key_end = g.causal ? min(g.S, q0 + BQ) : g.S;
    const int n_tiles = (key_end + BK - 1) / BK;
    load_rows_async<T, NTH>(Qs, LD, qg, g.C, q0, BQ, g.T, D);
    load_rows_async<T, NTH>(Ks, LD, kg, g.C, 0, BK, g.S, D);
    load_rows_async<T, NTH>(Vs, LD, vg, g.C, 0, BK, g.S, D);
    cp_async_commit();

    const int wrow = warp * 16 * MT;                      // the warp's first row in the block's tile
    int row0[MT], row1[MT];                               // this thread's two query rows of each m-tile
    float o[MT][DT][4], m0[MT], m1[MT], l0[MT], l1[MT];   // m: unscaled; l: this thread's columns only
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        row0[mt] = q0 + wrow + mt * 16 + gq;
        row1[mt] = row0[mt] + 8;
        m0[mt] = m1[mt] = -INFINITY;
        l0[mt] = l1[mt] = 0.0f;
#pragma unroll
        for (int j = 0; j < DT; j++) o[mt][j][0] = o[mt][j][1] = o[mt][j][2] = o[mt][j][3] = 0.0f;
    }

    for (int it = 0; it < n_tiles; it++) {
        const int buf = it & 1;
        if (it + 1 < n_tiles) {
            const int nb = buf ^ 1;
            load_rows_async<T, NTH>(Ks + nb * BK * LD, LD, kg, g.C, (it + 1) * BK, BK, g.S, D);
            load_rows_async<T, NTH>(Vs + nb * BK * LD, LD, vg, g.C, (it + 1) * BK, BK, g.S, D);
        }
        cp_async_commit();   // possibly empty: keeps "all but the newest group" meaning this tile
        cp_async_wait<1>();
        __syncthreads();
        const T *Kb = Ks + buf * BK * LD, *Vb = Vs + buf * BK * LD;

        /* s[mt][16 x 64] = Q_(warp, mt) K^T */
        float s[MT][NT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int j = 0; j < NT; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.0f;
#pragma unroll
        for (int kd = 0; kd < DP / 16; kd++) {
            unsigned a[MT][4];   // matrices: rows 0-7 / 8-15 x d 0-7, then the same x d 8-15
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                ldmatrix_x4(
                    a[mt], Qs + (wrow + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * LD + kd * 16 + (lane >> 4) * 8);
#pragma unroll
            for (int kn = 0; kn < BK / 16; kn++) {
                unsigned bk[4];   // matrices: keys 0-7 x d 0-7, d 8-15, then keys 8-15 x d 0-7, d 8-15
                ldmatrix_x4(bk, Kb + (kn * 16 + (lane & 7) + (lane >> 4) * 8) * LD + kd * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma16816<T>(s[mt][2 * kn], a[mt], bk[0], bk[1]);
                    mma16816<T>(s[mt][2 * kn + 1], a[mt], bk[2], bk[3]);
                }
            }
        }

        const int s0 = it * BK;
        const bool masked = s0 + BK > g.S || (g.causal && s0 + BK - 1 > q0);   // the same for the block
        unsigned ph[MT][NT][2];   // p = 2^(s c - m c) as pairs of T: [0] row0, [1] row1 of score n-tile j
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            if (masked) {
#pragma unroll
                for (int j = 0; j < NT; j++)
#pragma unroll
                    for (int e = 0; e < 2; e++) {
                        const int col = s0 + j * 8 + tq * 2 + e;
                        if (col >= g.S || (g.causal && col > row0[mt])) s[mt][j][e] = -INFINITY;
                        if (col >= g.S || (g.causal && col > row1[mt])) s[mt][j][2 + e] = -INFINITY;
                    }
            }
            /* running maximum over the 4 threads that share a row */
            float mx0 = m0[mt], mx1 = m1[mt];
#pragma unroll
            for (int j = 0; j < NT; j++) {
                mx0 = fmaxf(mx0, fmaxf(s[mt][j][0], s[mt][j][1]));
                mx1 = fmaxf(mx1, fmaxf(s[mt][j][2], s[mt][j][3]));
            }
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
            mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
            mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
            /* the first tile holds key 0, which every row may see, so the maximum is finite from there on */
            const float al0 = ex2((m0[mt] - mx0) * sc), al1 = ex2((m1[mt] - mx1) * sc);
            const float mc0 = mx0 * sc, mc1 = mx1 * sc;
            m0[mt] = mx0;
            m1[mt] = mx1;
            float ls0 = 0.0f, ls1 = 0.0f;
#pragma unroll
            for (int j = 0; j < NT; j++) {
                const float p0 = ex2(fmaf(s[mt][j][0], sc, -mc0)), p1 = ex2(fmaf(s[mt][j][1], sc, -mc0));
                const float p2 = ex2(fmaf(s[mt][j][2], sc, -mc1)), p3 = ex2(fmaf(s[mt][j][3], sc, -mc1));
                ph[mt][j][0] = pack2<T>(p0, p1);
                ph[mt][j][1] = pack2<T>(p2, p3);
                ls0 += p0 + p1;
                ls1 += p2 + p3;
            }
            l0[mt] = l0[mt] * al0 + ls0;
            l1[mt] = l1[mt] * al1 + ls1;
#pragma unroll
            for (int j = 0; j < DT; j++) {
                o[mt][j][0] *= al0;
                o[mt][j][1] *= al0;
                o[mt][j][2] *= al1;
                o[mt][j][3] *= al1;
            }
        }

        /* O[16 x DP] += P[16 x 64] V[64 x DP]: P's A fragments are the score accumulators of n-tiles 2kk, 2kk+1 */
#pragma unroll
        for (int kk = 0; kk < BK / 16; kk++) {
#pragma unroll
            for (int dn = 0; dn < DP / 16; dn++) {
                unsigned bv[4];   // transposed matrices: keys 0-7 / 8-15 x d 0-7, then the same x d 8-15
                const int key = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                ldmatrix_x4_trans(bv, Vb + key * LD + dn * 16 + (lane >> 4) * 8);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    const unsigned a[4] = {ph[mt][2 * kk][0], ph[mt][2 * kk][1], ph[mt][2 * kk + 1][0],
                                           ph[mt][2 * kk + 1][1]};
                    mma16816<T>(o[mt][2 * dn], a, bv[0], bv[1]);
                    mma16816<T>(o[mt][2 * dn + 1], a, bv[2], bv[3]);
                }
            }
        }
        __syncthreads();   // every warp is done with this buffer before it is refilled
    }

    T *yg = (T *)g.y + (int64_t)b * g.T * g.C + h * D;
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
        float s0v = l0[mt], s1v = l1[mt];
        s0v += __shfl_xor_sync(0xffffffffu, s0v, 1);
        s0v += __shfl_xor_sync(0xffffffffu, s0v, 2);
        s1v += __shfl_xor_sync(0xffffffffu, s1v, 1);
        s1v += __shfl_xor_sync(0xffffffffu, s1v, 2);
        const float inv0 = 1.0f / s0v, inv1 = 1.0f / s1v;
#pragma unroll
        for (int j = 0; j < DT; j++) {
            const int d = j * 8 + tq * 2;   // D % 8 == 0: d < D implies d + 1 < D
            if (d >= D) continue;
            if (row0[mt] < g.T)
                *(unsigned *)(yg + (int64_t)row0[mt] * g.C + d) = pack2<T>(o[mt][j][0] * inv0, o[mt][j][1] * inv0);
            if (row1[mt] < g.T)
                *(unsigned *)(yg + (int64_t)row1[mt] * g.C + d) = pack2<T>(o[mt][j][2] * inv1, o[mt][j][3] * inv1);
        }
    }
}

template <typename T, int DP, int MT, int NW, int BK>
static void launch_mma(sdc_backend *be, cudaStream_t s, const attn_geom &g) {
    constexpr int BQ = 16 * MT * NW;
    const size_t smem = (size_t)(BQ + 4 * BK) * (DP + 8) * sizeof(T);
    CUDA_CHECK(be,
               cudaFuncSetAttribute(attn_mma_kernel<T, DP, MT, NW, BK>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)smem));
    const dim3 grid((unsigned)((g.T + BQ - 1) / BQ), (unsigned)(g.B * g.H));
    attn_mma_kernel<T, DP, MT, NW, BK><<<grid, NW * 32, smem, s>>>(g);
}

/* The kernel's shape forced by sdc_cuda_attention_force_config (benchmarks, tests): m-tiles per warp,
 * warps, keys per tile; 0: chosen by the shapes. */
static int forced_mt, forced_nw, forced_bk, forced_mma;

extern "C" void sdc_cuda_attention_force_config(int mt, int nw, int bk) {
    forced_mt = mt;
    forced_nw = nw;
    forced_bk = bk;
}

extern "C" void sdc_cuda_attention_force_mma(int on) { forced_mma = on; }

/* Keys per tile: 128 for padded heads 48-80 (SD 1.x/2.x, SDXL), 64 for the rest (Flux's 128: the same speed
 * with either, bench/results/h100-attention.txt). The tile is part of the arithmetic (the online softmax
 * rescales per tile), so it is a function of the head only; a forced other tile (benchmarks) gives other bits. */
template <int DP> static constexpr int key_tile(void) { return DP >= 48 && DP <= 80 ? 128 : 64; }

/* Block shapes by tile: two m-tiles per warp (128 queries per block of 4 warps) where the queries fill
 * them, for the padded heads 48-128; one otherwise. Measured with bench_attention on an H100 (session 13,
 * bench/results/h100-attention.txt), (2 m-tiles, 4 warps, 128 keys) against the earlier choice: SD 1.5
 * level 0 0.242 vs 0.331 ms, SDXL level 1 0.422 vs 0.465 ms, level 2 0.068 vs 0.070 ms; Flux (64 keys)
 * 1.04 ms at 1024^2 with 2 m-tiles vs 1.39 with one. A function of the shapes only; the bits are the same for
 * every block shape of one tile. Forced shapes apply to the padded heads 48, 64, 80 and 128 (the others
 * are instantiated once); 64-key tiles to 48, 64 and 80, 32-key tiles to 128. */
template <typename T, int DP, int BK>
static void launch_mma_shape(sdc_backend *be, cudaStream_t s, const attn_geom &g) {
    if constexpr (DP == 48 || DP == 64 || DP == 80 || DP == 128) {
        if (forced_mt == 2 && forced_nw == 8) return launch_mma<T, DP, 2, 8, BK>(be, s, g);
        if (forced_mt == 1 && forced_nw == 8) return launch_mma<T, DP, 1, 8, BK>(be, s, g);
        if (forced_mt == 2 && forced_nw == 4) return launch_mma<T, DP, 2, 4, BK>(be, s, g);
        if (forced_mt == 1 && forced_nw == 4) return launch_mma<T, DP, 1, 4, BK>(be, s, g);
        if (g.T >= 128) return launch_mma<T, DP, 2, 4, BK>(be, s, g);
    }
    launch_mma<T, DP, 1, 4, BK>(be, s, g);
}

template <typename T, int DP> static void launch_mma_cfg(sdc_backend *be, cudaStream_t s, const attn_geom &g) {
    if constexpr (DP >= 48 && DP <= 80) {
        if (forced_bk == 64) return launch_mma_shape<T, DP, 64>(be, s, g);
    } else if constexpr (DP == 128) {
        if (forced_bk == 32) return launch_mma_shape<T, DP, 32>(be, s, g);
    }
    launch_mma_shape<T, DP, key_tile<DP>()>(be, s, g);
}

template <typename T> static void attention_mma(sdc_backend *be, cudaStream_t s, const attn_geom &g) {
    switch ((g.D + 15) / 16) {
    case 1: launch_mma_cfg<T, 16>(be, s, g); break;
    case 2: launch_mma_cfg<T, 32>(be, s, g); break;
    case 3: launch_mma_cfg<T, 48>(be, s, g); break;
    case 4: launch_mma_cfg<T, 64>(be, s, g); break;
    case 5: launch_mma_cfg<T, 80>(be, s, g); break;
    case 6: launch_mma_cfg<T, 96>(be, s, g); break;
    case 7: launch_mma_cfg<T, 112>(be, s, g); break;
    case 8: launch_mma_cfg<T, 128>(be, s, g); break;
    case 9: launch_mma_cfg<T, 144>(be, s, g); break;
    case 10: launch_mma_cfg<T, 160>(be, s, g); break;
    default: assert(!"attention_mma: head dim over 160");
    }
}

/* ---------------------------------------------------------------------- SIMT kernel (any) --- */

#define SIMT_BQ 32   // queries per block
#define SIMT_BK 32   // keys per step
#define SIMT_DK 32   // head-dim chunk of the score product
#define SIMT_THREADS 256

/* grid (ceil(T / 32), B * H, ceil(D / DV)), SIMT_THREADS threads, dynamic shared memory 32 * DV floats (V).
 * Thread (r = tid / 8, c = tid % 8) owns query row r: the scores of keys c, c+8, c+16, c+24 of each
 * step, and the outputs of columns dv0 + c + 8i, i < DV / 8. */
template <typename T, int DV> __global__ void __launch_bounds__(SIMT_THREADS) attn_simt_kernel(attn_geom g) {
    __shared__ float Qs[SIMT_BQ][SIMT_DK + 1], Ks[SIMT_BK][SIMT_DK + 1], Ps[SIMT_BQ][SIMT_BK + 1];
    extern __shared__ __align__(16) unsigned char smem_raw[];
    float *Vs = (float *)smem_raw;   // [SIMT_BK][DV]
    const int tid = threadIdx.x, r = tid >> 3, c = tid & 7;
    const int q0 = blockIdx.x * SIMT_BQ, b = blockIdx.y / g.H, h = blockIdx.y % g.H, dv0 = blockIdx.z * DV;
    const int D = g.D, t = q0 + r;
    const T *qg = (const T *)g.q + (int64_t)b * g.T * g.C + h * D;   // row t at qg + t C
    const T *kg = (const T *)g.k + (int64_t)b * g.S * g.C + h * D;
    const T *vg = (const T *)g.v + (int64_t)b * g.S * g.C + h * D;
    const T *bias = g.bias ? (const T *)g.bias + (int64_t)h * g.T * g.S : NULL;   // this head's [T, S]
    const int key_end = g.causal ? min(g.S, q0 + SIMT_BQ) : g.S;

    float o[DV / 8];
#pragma unroll
    for (int i = 0; i < DV / 8; i++) o[i] = 0.0f;
    float m = -INFINITY, l = 0.0f;   // l: this thread's columns only

    for (int s0 = 0; s0 < key_end; s0 += SIMT_BK) {
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int d0 = 0; d0 < D; d0 += SIMT_DK) {
            __syncthreads();   // the previous chunk (and the previous step's P and V) are consumed
            for (int i = tid; i < SIMT_BQ * SIMT_DK; i += SIMT_THREADS) {
                const int rr = i / SIMT_DK, cc = i % SIMT_DK, d = d0 + cc, tq = q0 + rr, sk = s0 + rr;
                Qs[rr][cc] = tq < g.T && d < D ? sdc_to_f(qg[(int64_t)tq * g.C + d]) : 0.0f;
                Ks[rr][cc] = sk < g.S && d < D ? sdc_to_f(kg[(int64_t)sk * g.C + d]) : 0.0f;
            }
            __syncthreads();
#pragma unroll 8
            for (int dd = 0; dd < SIMT_DK; dd++) {
                const float qv = Qs[r][dd];
#pragma unroll
                for (int j = 0; j < 4; j++) acc[j] += qv * Ks[c + 8 * j][dd];
            }
        }

        /* scale, bias, mask, running max over the 8 threads of the row (lanes 8k .. 8k+7) */
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const int col = s0 + c + 8 * j;
            float v = acc[j] * g.scale_log2;
            if (bias && t < g.T && col < g.S) v += 1.4426950408889634f * sdc_to_f(bias[(int64_t)t * g.S + col]);
            if (col >= g.S || (g.causal && col > t)) v = -INFINITY;
            acc[j] = v;
            mx = fmaxf(mx, v);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
        const float mn = fmaxf(m, mx), alpha = exp2f(m - mn);   // finite from the first step (key 0)
        m = mn;
        float ls = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const float p = exp2f(acc[j] - m);
            Ps[r][c + 8 * j] = p;
            ls += p;
        }
        l = l * alpha + ls;

        for (int i = tid; i < SIMT_BK * DV; i += SIMT_THREADS) {
            const int rr = i / DV, cc = i % DV, d = dv0 + cc, sk = s0 + rr;
            Vs[i] = sk < g.S && d < D ? sdc_to_f(vg[(int64_t)sk * g.C + d]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < DV / 8; i++) o[i] *= alpha;
        for (int sk = 0; sk < SIMT_BK; sk++) {
            const float p = Ps[r][sk];
            const float *vr = Vs + sk * DV + c;
#pragma unroll
            for (int i = 0; i < DV / 8; i++) o[i] += p * vr[8 * i];
        }
    }

    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    l += __shfl_xor_sync(0xffffffffu, l, 4);
    if (t >= g.T) return;
    const float inv = 1.0f / l;
    T *yr = (T *)g.y + ((int64_t)b * g.T + t) * g.C + h * D;
#pragma unroll
    for (int i = 0; i < DV / 8; i++) {
        const int d = dv0 + c + 8 * i;
        if (d < D) yr[d] = sdc_from_f<T>(o[i] * inv);
    }
}

template <typename T, int DV> static void launch_simt(sdc_backend *be, cudaStream_t s, const attn_geom &g) {
    const size_t smem = (size_t)SIMT_BK * DV * sizeof(float);
    CUDA_CHECK(be,
               cudaFuncSetAttribute(attn_simt_kernel<T, DV>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    const dim3 grid((unsigned)((g.T + SIMT_BQ - 1) / SIMT_BQ), (unsigned)(g.B * g.H), (unsigned)((g.D + DV - 1) / DV));
    attn_simt_kernel<T, DV><<<grid, SIMT_THREADS, smem, s>>>(g);
}

/* DV: the smallest of 32, 64, ..., 512 that covers D (512 slices beyond). */
template <typename T> static void attention_simt(sdc_backend *be, cudaStream_t s, const attn_geom &g) {
    if (g.D <= 32)
        launch_simt<T, 32>(be, s, g);
    else if (g.D <= 64)
        launch_simt<T, 64>(be, s, g);
    else if (g.D <= 128)
        launch_simt<T, 128>(be, s, g);
    else if (g.D <= 256)
        launch_simt<T, 256>(be, s, g);
    else
        launch_simt<T, 512>(be, s, g);
}

/* ------------------------------------------------------------- cuBLAS path (heads wider than 160) --- */

#define GEMM_MIN_D 161   // narrower heads take the mma (16-bit) or SIMT (f32) kernel

/* Queries per chunk of attention_gemm: as many as fit the scratch (S in f32 and P in the input dtype, for all
 * heads), at most T; 0 when the path does not apply or not even one query fits. */
static int64_t gemm_chunk(int64_t T, int64_t S, int64_t H, int64_t D, sdc_dtype dt) {
    if (D < GEMM_MIN_D || T == 0) return 0;
    const int64_t per_query = H * S * (int64_t)(4 + (dt == SDC_DTYPE_F32 ? 0 : sdc_dtype_size(dt)));
    const int64_t tq = (int64_t)SDC_CUDA_CONV_WORKSPACE_BYTES / per_query;
    return tq < 1 ? 0 : tq < T ? tq : T;
}

extern "C" size_t sdc_cuda_attention_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *q,
                                               const sdc_tensor *k, int n_heads) {
    (void)be;
    const int64_t T = q->ne[1], S = k->ne[1], H = n_heads, D = q->ne[2] / n_heads;
    const int64_t tq = q->ne[0] ? gemm_chunk(T, S, H, D, y->dtype) : 0;
    const size_t es = y->dtype == SDC_DTYPE_F32 ? 0 : sdc_dtype_size(y->dtype);
    return (size_t)(H * tq * S) * (4 + es);
}

/* One block per score row (head h's query t0 + i): p = softmax(s + bias) with the causal mask, in f32, the
 * block's reductions in a fixed tree; p's row written in T (where T is float, over s itself). */
template <typename T>
__global__ void softmax_rows_kernel(float *s, T *p, const T *bias, int T_all, int S, int TQ, int t0, int n,
                                    int causal) {
    __shared__ float red[256];
    const int row = blockIdx.x, h = row / TQ, i = row % TQ, t = t0 + i;
    if (i >= n) return;   // the last chunk's rows beyond its n queries (the whole block leaves)
    float *sr = s + (int64_t)row * S;
    T *pr = p + (int64_t)row * S;
    const T *br = bias ? bias + ((int64_t)h * T_all + t) * S : NULL;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        float v = sr[j] + (br ? sdc_to_f(br[j]) : 0.0f);
        if (causal && j > t) v = -INFINITY;
        sr[j] = v;
        mx = fmaxf(mx, v);
    }
    red[threadIdx.x] = mx;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + w]);
        __syncthreads();
    }
    mx = red[0];
    __syncthreads();
    float sum = 0.0f;
    for (int j = threadIdx.x; j < S; j += blockDim.x) {
        const float e = expf(sr[j] - mx);
        sr[j] = e;
        sum += e;
    }
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    const float inv = 1.0f / red[0];
    for (int j = threadIdx.x; j < S; j += blockDim.x) pr[j] = sdc_from_f<T>(sr[j] * inv);
}

/* y = softmax(scale q k^T + bias) v by chunks of tq queries (see the top of the file); g.scale_log2 is
 * log2(e) * scale. */
template <typename T>
static void attention_gemm(sdc_backend *be, cudaStream_t st, const attn_geom &g, int64_t tq, sdc_dtype dt) {
    const cudaDataType t = dt == SDC_DTYPE_F32 ? CUDA_R_32F : dt == SDC_DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    const int64_t H = g.H, S = g.S, D = g.D, C = g.C;
    const size_t s_bytes = (size_t)(H * tq * S) * 4,
                 p_bytes = dt == SDC_DTYPE_F32 ? 0 : (size_t)(H * tq * S) * sizeof(T);
    char *ws = (char *)SDC_CUDA_SCRATCH(be, s_bytes + p_bytes, "sdc_cuda_attention scores");
    if (!ws) return;
    float *sb = (float *)ws;                                   // [H, tq, S] f32
    T *pb = p_bytes ? (T *)(ws + s_bytes) : (T *)(void *)sb;   // [H, tq, S]
    cublasHandle_t h = (cublasHandle_t)sdc_cuda_cublas(be);
    const float scale = g.scale_log2 / 1.4426950408889634f, one = 1.0f, zero = 0.0f;
    for (int b = 0; b < g.B && be->status == SDC_OK; b++) {
        const T *qb = (const T *)g.q + (int64_t)b * g.T * C, *kb = (const T *)g.k + (int64_t)b * S * C;
        const T *vb = (const T *)g.v + (int64_t)b * S * C;
        T *yb = (T *)g.y + (int64_t)b * g.T * C;
        for (int64_t t0 = 0; t0 < g.T && be->status == SDC_OK; t0 += tq) {
            const int64_t n = g.T - t0 < tq ? g.T - t0 : tq;
            // per head: S^T[S, n] (ld S) = (k_h as [D, S])^T . (q_h rows t0.. as [D, n])   (col-major views, ld C)
            if (CUBLAS_CHECK(be,
                             cublasGemmStridedBatchedEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)S, (int)n, (int)D, &scale, kb,
                                                        t, (int)C, D, qb + t0 * C, t, (int)C, D, &zero, sb, CUDA_R_32F,
                                                        (int)S, tq * S, (int)H, CUBLAS_COMPUTE_32F,
                                                        CUBLAS_GEMM_DEFAULT)))
                break;
            softmax_rows_kernel<T><<<(unsigned)(H * tq), 256, 0, st>>>(sb, pb, (const T *)g.bias, g.T, (int)S, (int)tq,
                                                                       (int)t0, (int)n, g.causal);
            SDC_CUDA_LAUNCHED(be);
            // per head: y_h rows t0.. as [D, n] (ld C) = (v_h as [D, S]) . (P^T as [S, n], ld S)
            CUBLAS_CHECK(be,
                         cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, (int)D, (int)n, (int)S, &one, vb, t,
                                                    (int)C, D, pb, t, (int)S, tq * S, &zero, yb + t0 * C, t, (int)C, D,
                                                    (int)H, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        }
    }
    sdc_cuda_scratch_free(be, ws, s_bytes + p_bytes);
}

/* The geometry of y = attention(q, k, v) over n_heads; bias NULL, scale_log2 still to be set. */
static attn_geom geom_of(sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v, int n_heads,
                         int causal) {
    const int64_t B = q->ne[0], T = q->ne[1], C = q->ne[2], S = k->ne[1];
    assert(S > 0 && "attention over no keys");
    assert(T <= INT32_MAX && S <= INT32_MAX && C <= INT32_MAX && B * n_heads <= 65535);
    attn_geom g;
    g.q = q->data;
    g.k = k->data;
    g.v = v->data;
    g.bias = NULL;
    g.y = y->data;
    g.B = (int)B;
    g.T = (int)T;
    g.S = (int)S;
    g.H = n_heads;
    g.D = (int)(C / n_heads);
    g.C = (int)C;
    g.causal = causal;
    g.scale_log2 = 0.0f;
    return g;
}

extern "C" void sdc_cuda_attention(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                                   const sdc_tensor *v, int n_heads, int causal) {
    assert(q->dtype == y->dtype && k->dtype == y->dtype && v->dtype == y->dtype);
    if (q->ne[0] == 0 || q->ne[1] == 0 || q->ne[2] == 0) return;
    attn_geom g = geom_of(y, q, k, v, n_heads, causal);
    g.scale_log2 = (float)(1.4426950408889634 / sqrt((double)g.D));
    cudaStream_t s = sdc_cuda_stream(be);
    const int64_t tq = gemm_chunk(g.T, g.S, g.H, g.D, y->dtype);
    if (tq > 0) {
        SDC_FLOAT_DISPATCH(y->dtype, T, attention_gemm<T>(be, s, g, tq, y->dtype));
        return;
    }
    const int mma = y->dtype != SDC_DTYPE_F32 && g.D % 8 == 0 && g.D <= 160 && sdc_aligned16(q->data) &&
        sdc_aligned16(k->data) && sdc_aligned16(v->data) && sdc_aligned16(y->data);
    const int bf16 = y->dtype == SDC_DTYPE_BF16, mma_forced = forced_mma || forced_mt || forced_nw || forced_bk;
    if (!mma)
        SDC_FLOAT_DISPATCH(y->dtype, T, attention_simt<T>(be, s, g));
    else if (mma_forced || !sdc_cuda_attention_wgmma(be, s, g, bf16))
        bf16 ? attention_mma<__nv_bfloat16>(be, s, g) : attention_mma<__half>(be, s, g);
    SDC_CUDA_LAUNCHED(be);
}

/* The SIMT kernel with the bias added to each score (T5's encoder: short sequences, f32); heads wider than
 * 160 through cuBLAS. */
extern "C" void sdc_cuda_attention_bias(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                                        const sdc_tensor *v, const sdc_tensor *bias, int n_heads, float scale) {
    assert(q->dtype == y->dtype && k->dtype == y->dtype && v->dtype == y->dtype && bias->dtype == y->dtype);
    if (q->ne[0] == 0 || q->ne[1] == 0 || q->ne[2] == 0) return;
    attn_geom g = geom_of(y, q, k, v, n_heads, 0);
    g.bias = bias->data;
    g.scale_log2 = (float)(1.4426950408889634 * (double)scale);
    cudaStream_t s = sdc_cuda_stream(be);
    const int64_t tq = gemm_chunk(g.T, g.S, g.H, g.D, y->dtype);
    if (tq > 0)
        SDC_FLOAT_DISPATCH(y->dtype, T, attention_gemm<T>(be, s, g, tq, y->dtype));
    else
        SDC_FLOAT_DISPATCH(y->dtype, T, attention_simt<T>(be, s, g));
    SDC_CUDA_LAUNCHED(be);
}
