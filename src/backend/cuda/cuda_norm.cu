/* cuda_norm.cu - layer norm (plain, and modulated by per-batch shift and scale: layer_norm_mod), RMS
 * norm and group norm (with optional fused SiLU), statistics in f32.
 *
 * Layer and group norm normalise with the biased variance, eps inside the square root, as PyTorch does:
 *   y = (x - mean) / sqrt(var + eps) * w + b   (then y * sigmoid(y) for group norm with silu).
 * RMS norm (T5LayerNorm): y = x / sqrt(mean(x^2) + eps) * w, the mean of squares in f32.
 * Every reduction runs in an order fixed by the shape alone (per-thread sequential sums, then shuffle
 * trees), so results are bit-identical run to run.
 *
 * Layer norm and RMS norm: one warp per row of C. Every op takes f32, f16 and bf16 tensors.
 * Group norm of x[B, C, HW] in G groups: the group (b, g) is the contiguous run of n = C/G * HW elements
 * at (b*G + g) * n. It is cut into chunks of GN_CHUNK elements, and three kernels run:
 *   gn_stats_kernel     one block per (chunk, group): the chunk's mean and M2 (sum of squared deviations
 *                       from the chunk mean), two passes over values held in registers;
 *   gn_finalize_kernel  one warp per group: Chan's parallel combination of the chunk statistics, lane l
 *                       taking chunks l, l+32, ... in order, then a shuffle tree; writes mean and rstd;
 *   gn_apply_kernel     one block per (chunk, group): normalise, affine, SiLU.
 * The partial statistics live in a small workspace (8 bytes per chunk). Without room for it the op does
 * nothing and the backend's status becomes SDC_ERR_OOM (backend.h). */
#include "backend/cuda/cuda_common.cuh"

#define NORM_THREADS 256
#define GN_PER_THREAD 16
#define GN_CHUNK (NORM_THREADS * GN_PER_THREAD)

static __device__ __forceinline__ float warp_sum_xor(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;   // the same value in every lane
}

/* Sum over the block of NORM_THREADS threads, returned to every thread. sh: 33 floats. */
static __device__ float block_sum(float v, float *sh) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < NORM_THREADS / 32 ? sh[lane] : 0.0f;
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
        if (lane == 0) sh[32] = v;
    }
    __syncthreads();
    return sh[32];
}

/* --- layer norm --- */

/* y[r, :] = layer_norm(x[r, :]) for r < R, one warp per row; packs along C when vec. */
template <typename T>
__global__ void layer_norm_kernel(T *y, const T *x, const T *w, const T *b, int64_t R, int C, float eps, int vec) {
    constexpr int P = sdc_pack<T>::N;
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (NORM_THREADS / 32);
    for (int64_t r = blockIdx.x * (int64_t)(NORM_THREADS / 32) + (threadIdx.x >> 5); r < R; r += warps) {
        const T *xr = x + r * C;
        T *yr = y + r * C;
        float s = 0.0f;
        if (vec) {
            for (int p = lane; p < C / P; p += 32) {
                float v[P];
                sdc_load_pack(xr + p * P, v);
#pragma unroll
                for (int i = 0; i < P; i++) s += v[i];
            }
        } else {
            for (int c = lane; c < C; c += 32) s += sdc_to_f(xr[c]);
        }
        const float mean = warp_sum_xor(s) / (float)C;
        float q = 0.0f;
        if (vec) {
            for (int p = lane; p < C / P; p += 32) {
                float v[P];
                sdc_load_pack(xr + p * P, v);
#pragma unroll
                for (int i = 0; i < P; i++) q += (v[i] - mean) * (v[i] - mean);
            }
        } else {
            for (int c = lane; c < C; c += 32) {
                const float d = sdc_to_f(xr[c]) - mean;
                q += d * d;
            }
        }
        const float rstd = 1.0f / sqrtf(warp_sum_xor(q) / (float)C + eps);
        if (vec) {
            for (int p = lane; p < C / P; p += 32) {
                float v[P], wv[P], bv[P];
                sdc_load_pack(xr + p * P, v);
                sdc_load_pack(w + p * P, wv);
                sdc_load_pack(b + p * P, bv);
#pragma unroll
                for (int i = 0; i < P; i++) v[i] = (v[i] - mean) * rstd * wv[i] + bv[i];
                sdc_store_pack(yr + p * P, v);
            }
        } else {
            for (int c = lane; c < C; c += 32)
                yr[c] = sdc_from_f<T>((sdc_to_f(xr[c]) - mean) * rstd * sdc_to_f(w[c]) + sdc_to_f(b[c]));
        }
    }
}

template <typename T>
static void layer_norm_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                             const sdc_tensor *b, float eps) {
    const int64_t C = x->ne[x->ndim - 1], R = sdc_tensor_rows(x);
    if (C == 0 || R == 0) return;
    assert(C <= INT32_MAX);
    const int vec = C % sdc_pack<T>::N == 0 && sdc_aligned16(y->data) && sdc_aligned16(x->data) &&
        sdc_aligned16(w->data) && sdc_aligned16(b->data);
    layer_norm_kernel<T><<<sdc_grid_1d(R, NORM_THREADS / 32), NORM_THREADS, 0, sdc_cuda_stream(be)>>>(
        (T *)y->data, (const T *)x->data, (const T *)w->data, (const T *)b->data, R, (int)C, eps, vec);
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_layer_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                    const sdc_tensor *b, float eps) {
    assert(x->dtype == y->dtype && w->dtype == y->dtype && b->dtype == y->dtype);
    SDC_FLOAT_DISPATCH(y->dtype, T, layer_norm_typed<T>(be, y, x, w, b, eps));
}

/* --- RMS norm --- */

/* y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * w for r < R, one warp per row; packs along C when vec. */
template <typename T>
__global__ void rms_norm_kernel(T *y, const T *x, const T *w, int64_t R, int C, float eps, int vec) {
    constexpr int P = sdc_pack<T>::N;
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (NORM_THREADS / 32);
    for (int64_t r = blockIdx.x * (int64_t)(NORM_THREADS / 32) + (threadIdx.x >> 5); r < R; r += warps) {
        const T *xr = x + r * C;
        T *yr = y + r * C;
        float q = 0.0f;
        if (vec) {
            for (int p = lane; p < C / P; p += 32) {
                float v[P];
                sdc_load_pack(xr + p * P, v);
#pragma unroll
                for (int i = 0; i < P; i++) q += v[i] * v[i];
            }
        } else {
            for (int c = lane; c < C; c += 32) {
                const float v = sdc_to_f(xr[c]);
                q += v * v;
            }
        }
        const float rstd = 1.0f / sqrtf(warp_sum_xor(q) / (float)C + eps);
        if (vec) {
            for (int p = lane; p < C / P; p += 32) {
                float v[P], wv[P];
                sdc_load_pack(xr + p * P, v);
                sdc_load_pack(w + p * P, wv);
#pragma unroll
                for (int i = 0; i < P; i++) v[i] = v[i] * rstd * wv[i];
                sdc_store_pack(yr + p * P, v);
            }
        } else {
            for (int c = lane; c < C; c += 32) yr[c] = sdc_from_f<T>(sdc_to_f(xr[c]) * rstd * sdc_to_f(w[c]));
        }
    }
}

template <typename T>
static void rms_norm_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, float eps) {
    const int64_t C = x->ne[x->ndim - 1], R = sdc_tensor_rows(x);
    if (C == 0 || R == 0) return;
    assert(C <= INT32_MAX);
    const int vec =
        C % sdc_pack<T>::N == 0 && sdc_aligned16(y->data) && sdc_aligned16(x->data) && sdc_aligned16(w->data);
    rms_norm_kernel<T><<<sdc_grid_1d(R, NORM_THREADS / 32), NORM_THREADS, 0, sdc_cuda_stream(be)>>>(
        (T *)y->data, (const T *)x->data, (const T *)w->data, R, (int)C, eps, vec);
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_rms_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, float eps) {
    assert(x->dtype == y->dtype && w->dtype == y->dtype);
    SDC_FLOAT_DISPATCH(y->dtype, T, rms_norm_typed<T>(be, y, x, w, eps));
}

/* --- modulated layer norm: as layer norm, one warp per row, with (1 + scale[b]) and shift[b] of the row's
 * batch row b in place of w and b --- */

template <typename T>
__global__ void layer_norm_mod_kernel(T *y, const T *x, const T *shift, const T *scale, int64_t R, int64_t T_len, int C,
                                      float eps) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (NORM_THREADS / 32);
    for (int64_t r = blockIdx.x * (int64_t)(NORM_THREADS / 32) + (threadIdx.x >> 5); r < R; r += warps) {
        const T *xr = x + r * C, *sh = shift + r / T_len * C, *sc = scale + r / T_len * C;
        T *yr = y + r * C;
        float s = 0.0f;
        for (int c = lane; c < C; c += 32) s += sdc_to_f(xr[c]);
        const float mean = warp_sum_xor(s) / (float)C;
        float q = 0.0f;
        for (int c = lane; c < C; c += 32) {
            const float d = sdc_to_f(xr[c]) - mean;
            q += d * d;
        }
        const float rstd = 1.0f / sqrtf(warp_sum_xor(q) / (float)C + eps);
        for (int c = lane; c < C; c += 32)
            yr[c] = sdc_from_f<T>((sdc_to_f(xr[c]) - mean) * rstd * (1.0f + sdc_to_f(sc[c])) + sdc_to_f(sh[c]));
    }
}

/* The same for rows of whole 16-byte packs, at most 32 x LNM_PACKS of them (C <= 4096 in f16/bf16, the widths
 * of Flux and SD3): each lane keeps its packs of the row in registers, so x is read from memory once, in
 * 16-byte loads (the plain kernel reads it three times, an element at a time). */
#define LNM_PACKS 16
template <typename T>
__global__ void layer_norm_mod_packed_kernel(T *y, const T *x, const T *shift, const T *scale, int64_t R, int64_t T_len,
                                             int C, float eps) {
    constexpr int P = sdc_pack<T>::N;
    const int lane = threadIdx.x & 31, np = C / P;
    const int64_t warps = (int64_t)gridDim.x * (NORM_THREADS / 32);
    for (int64_t r = blockIdx.x * (int64_t)(NORM_THREADS / 32) + (threadIdx.x >> 5); r < R; r += warps) {
        const T *xr = x + r * C, *sh = shift + r / T_len * C, *sc = scale + r / T_len * C;
        T *yr = y + r * C;
        uint4 raw[LNM_PACKS];
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < LNM_PACKS; k++) {
            if (lane + 32 * k >= np) break;
            raw[k] = *(const uint4 *)(xr + (lane + 32 * k) * P);
            float v[P];
            sdc_unpack<T>(raw[k], v);
#pragma unroll
            for (int i = 0; i < P; i++) s += v[i];
        }
        const float mean = warp_sum_xor(s) / (float)C;
        float q = 0.0f;
#pragma unroll
        for (int k = 0; k < LNM_PACKS; k++) {
            if (lane + 32 * k >= np) break;
            float v[P];
            sdc_unpack<T>(raw[k], v);
#pragma unroll
            for (int i = 0; i < P; i++) q += (v[i] - mean) * (v[i] - mean);
        }
        const float rstd = 1.0f / sqrtf(warp_sum_xor(q) / (float)C + eps);
#pragma unroll
        for (int k = 0; k < LNM_PACKS; k++) {
            const int p = lane + 32 * k;
            if (p >= np) break;
            float v[P], a[P], b[P];
            sdc_unpack<T>(raw[k], v);
            sdc_load_pack(sc + p * P, a);
            sdc_load_pack(sh + p * P, b);
#pragma unroll
            for (int i = 0; i < P; i++) v[i] = (v[i] - mean) * rstd * (1.0f + a[i]) + b[i];
            sdc_store_pack(yr + p * P, v);
        }
    }
}

template <typename T>
static void layer_norm_mod_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *shift,
                                 const sdc_tensor *scale, float eps) {
    constexpr int P = sdc_pack<T>::N;
    const int64_t C = x->ne[2], R = sdc_tensor_rows(x);
    if (C == 0 || R == 0) return;
    assert(C <= INT32_MAX);
    const unsigned grid = sdc_grid_1d(R, NORM_THREADS / 32);
    cudaStream_t s = sdc_cuda_stream(be);
    if (C % P == 0 && C / P <= 32 * LNM_PACKS && sdc_aligned16(y->data) && sdc_aligned16(x->data) &&
        sdc_aligned16(shift->data) && sdc_aligned16(scale->data))
        layer_norm_mod_packed_kernel<T><<<grid, NORM_THREADS, 0, s>>>(
            (T *)y->data, (const T *)x->data, (const T *)shift->data, (const T *)scale->data, R, x->ne[1], (int)C, eps);
    else
        layer_norm_mod_kernel<T><<<grid, NORM_THREADS, 0, s>>>((T *)y->data, (const T *)x->data, (const T *)shift->data,
                                                               (const T *)scale->data, R, x->ne[1], (int)C, eps);
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_layer_norm_mod(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *shift,
                                        const sdc_tensor *scale, float eps) {
    assert(x->dtype == y->dtype && shift->dtype == y->dtype && scale->dtype == y->dtype);
    SDC_FLOAT_DISPATCH(y->dtype, T, layer_norm_mod_typed<T>(be, y, x, shift, scale, eps));
}

/* --- group norm --- */

struct gn_geom {
    const void *x, *w, *b;
    void *y;
    float2 *part;           // [groups_total, n_chunks] chunk (mean, M2)
    float2 *stats;          // [groups_total] (mean, rstd)
    int64_t groups_total;   // B * G
    int G, Cg, n_chunks;
    unsigned HW, n;   // spatial size, elements per group
    float eps;
    int silu, vec;
};

/* Index within its group of this thread's k-th element (k < GN_PER_THREAD) of chunk `chunk`: packs of
 * P consecutive elements, consecutive threads on consecutive packs; single elements without vec. */
template <typename T> static __device__ __forceinline__ unsigned gn_index(unsigned chunk, int k, int vec) {
    constexpr int P = sdc_pack<T>::N;
    const unsigned base = chunk * GN_CHUNK;
    return vec ? base + ((unsigned)(k / P) * NORM_THREADS + threadIdx.x) * P + k % P
               : base + (unsigned)k * NORM_THREADS + threadIdx.x;
}

/* This thread's elements of the chunk (0 beyond the group's end). */
template <typename T>
static __device__ __forceinline__ void gn_load(const T *xg, unsigned n, unsigned chunk, int vec, float *v) {
    constexpr int P = sdc_pack<T>::N;
    if (vec) {
#pragma unroll
        for (int k = 0; k < GN_PER_THREAD; k += P) {
            const unsigned i = gn_index<T>(chunk, k, 1);
            if (i < n) {
                sdc_load_pack(xg + i, v + k);
            } else {
#pragma unroll
                for (int e = 0; e < P; e++) v[k + e] = 0.0f;
            }
        }
    } else {
#pragma unroll
        for (int k = 0; k < GN_PER_THREAD; k++) {
            const unsigned i = gn_index<T>(chunk, k, 0);
            v[k] = i < n ? sdc_to_f(xg[i]) : 0.0f;
        }
    }
}

/* (mean, M2) of chunk `chunk` of a group; the whole block calls it. sh: 33 floats. */
template <typename T>
static __device__ float2 gn_chunk_stats(const T *xg, unsigned n, unsigned chunk, int vec, float *sh) {
    float v[GN_PER_THREAD];
    gn_load(xg, n, chunk, vec, v);
    const unsigned base = chunk * GN_CHUNK, cnt = n - base < GN_CHUNK ? n - base : GN_CHUNK;
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < GN_PER_THREAD; k++) s += v[k];   // out-of-range slots hold 0
    const float mean = block_sum(s, sh) / (float)cnt;
    float q = 0.0f;
#pragma unroll
    for (int k = 0; k < GN_PER_THREAD; k++) {
        const float d = v[k] - mean;
        if (gn_index<T>(chunk, k, vec) < n) q += d * d;
    }
    return make_float2(mean, block_sum(q, sh));
}

/* Running statistics of a set of elements: count, mean, sum of squared deviations. */
struct gn_acc {
    float cnt, mean, m2;
};

/* Chan et al.'s combination of two disjoint sets. */
static __device__ __forceinline__ gn_acc gn_combine(gn_acc a, gn_acc b) {
    if (b.cnt == 0.0f) return a;
    if (a.cnt == 0.0f) return b;
    const float cnt = a.cnt + b.cnt, d = b.mean - a.mean, fb = b.cnt / cnt;
    gn_acc r = {cnt, a.mean + d * fb, a.m2 + b.m2 + d * d * a.cnt * fb};
    return r;
}

static __device__ __forceinline__ gn_acc gn_chunk_acc(float2 ms, unsigned n, unsigned chunk) {
    const unsigned base = chunk * GN_CHUNK;
    gn_acc r = {(float)(n - base < GN_CHUNK ? n - base : GN_CHUNK), ms.x, ms.y};
    return r;
}

/* Lane 0 of the warp returns the combination of the 32 lanes' accumulators, lane i + off folding
 * lane i + 2 off, ... into lane i. */
static __device__ gn_acc gn_warp_combine(gn_acc a) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        gn_acc o;
        o.cnt = __shfl_down_sync(0xffffffffu, a.cnt, off);
        o.mean = __shfl_down_sync(0xffffffffu, a.mean, off);
        o.m2 = __shfl_down_sync(0xffffffffu, a.m2, off);
        if ((threadIdx.x & 31) + off < 32) a = gn_combine(a, o);
    }
    return a;
}

static __device__ __forceinline__ float2 gn_mean_rstd(gn_acc a, float eps) {
    return make_float2(a.mean, 1.0f / sqrtf(a.m2 / a.cnt + eps));
}

/* Normalises this thread's elements of a chunk of group gidx with (mean, rstd). */
template <typename T> static __device__ void gn_apply_chunk(const gn_geom &g, int64_t gidx, unsigned chunk, float2 mr) {
    const T *xg = (const T *)g.x + gidx * g.n;
    T *yg = (T *)g.y + gidx * g.n;
    const T *w = (const T *)g.w + (int64_t)(gidx % g.G) * g.Cg, *b = (const T *)g.b + (int64_t)(gidx % g.G) * g.Cg;
    float v[GN_PER_THREAD];
    gn_load(xg, g.n, chunk, g.vec, v);
#pragma unroll
    for (int k = 0; k < GN_PER_THREAD; k++) {
        const unsigned i = gn_index<T>(chunk, k, g.vec), c = i / g.HW;   // channel within the group
        if (i >= g.n) continue;
        float r = (v[k] - mr.x) * mr.y * sdc_to_f(w[c]) + sdc_to_f(b[c]);
        if (g.silu) r = r / (1.0f + expf(-r));
        v[k] = r;
    }
    constexpr int P = sdc_pack<T>::N;
    if (g.vec) {
#pragma unroll
        for (int k = 0; k < GN_PER_THREAD; k += P) {
            const unsigned i = gn_index<T>(chunk, k, 1);
            if (i < g.n) sdc_store_pack(yg + i, v + k);
        }
    } else {
#pragma unroll
        for (int k = 0; k < GN_PER_THREAD; k++) {
            const unsigned i = gn_index<T>(chunk, k, 0);
            if (i < g.n) yg[i] = sdc_from_f<T>(v[k]);
        }
    }
}

/* grid (n_chunks, min(groups_total, 65535)), NORM_THREADS threads. */
template <typename T> __global__ void gn_stats_kernel(gn_geom g) {
    __shared__ float sh[33];
    for (int64_t gidx = blockIdx.y; gidx < g.groups_total; gidx += gridDim.y) {
        const float2 ms = gn_chunk_stats((const T *)g.x + gidx * g.n, g.n, blockIdx.x, g.vec, sh);
        if (threadIdx.x == 0) g.part[gidx * g.n_chunks + blockIdx.x] = ms;
    }
}

/* One warp per group. */
__global__ void gn_finalize_kernel(gn_geom g) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x / 32);
    for (int64_t gidx = blockIdx.x * (int64_t)(blockDim.x / 32) + (threadIdx.x >> 5); gidx < g.groups_total;
         gidx += warps) {
        gn_acc a = {0.0f, 0.0f, 0.0f};
        for (int c = lane; c < g.n_chunks; c += 32)
            a = gn_combine(a, gn_chunk_acc(g.part[gidx * g.n_chunks + c], g.n, (unsigned)c));
        a = gn_warp_combine(a);
        if (lane == 0) g.stats[gidx] = gn_mean_rstd(a, g.eps);
    }
}

/* grid (n_chunks, min(groups_total, 65535)), NORM_THREADS threads. */
template <typename T> __global__ void gn_apply_kernel(gn_geom g) {
    for (int64_t gidx = blockIdx.y; gidx < g.groups_total; gidx += gridDim.y)
        gn_apply_chunk<T>(g, gidx, blockIdx.x, g.stats[gidx]);
}

template <typename T> static void group_norm_launch(sdc_backend *be, gn_geom *g) {
    cudaStream_t s = sdc_cuda_stream(be);
    const size_t part_bytes = (size_t)g->groups_total * (size_t)g->n_chunks * sizeof(float2);
    const size_t bytes = part_bytes + (size_t)g->groups_total * sizeof(float2);
    char *ws = (char *)SDC_CUDA_SCRATCH(be, bytes, "sdc_cuda_group_norm statistics workspace");
    if (!ws) return;
    g->part = (float2 *)ws;
    g->stats = (float2 *)(ws + part_bytes);
    const dim3 grid((unsigned)g->n_chunks, (unsigned)(g->groups_total < 65535 ? g->groups_total : 65535));
    gn_stats_kernel<T><<<grid, NORM_THREADS, 0, s>>>(*g);
    SDC_CUDA_LAUNCHED(be);
    gn_finalize_kernel<<<sdc_grid_1d(g->groups_total, NORM_THREADS / 32), NORM_THREADS, 0, s>>>(*g);
    SDC_CUDA_LAUNCHED(be);
    gn_apply_kernel<T><<<grid, NORM_THREADS, 0, s>>>(*g);
    SDC_CUDA_LAUNCHED(be);
    sdc_cuda_scratch_free(be, ws, bytes);
}

extern "C" void sdc_cuda_group_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                    const sdc_tensor *b, int groups, float eps, int silu) {
    assert(x->dtype == y->dtype && w->dtype == y->dtype && b->dtype == y->dtype);
    const int64_t B = x->ne[0], C = x->ne[1], nelem = sdc_tensor_nelem(x);
    if (nelem == 0) return;
    const int64_t HW = nelem / (B * C), Cg = C / groups, n = Cg * HW;
    assert(n <= (int64_t)INT32_MAX);   // 32-bit indices within a group
    gn_geom g;
    g.x = x->data;
    g.w = w->data;
    g.b = b->data;
    g.y = y->data;
    g.part = g.stats = NULL;
    g.groups_total = B * groups;
    g.G = groups;
    g.Cg = (int)Cg;
    g.n_chunks = (int)((n + GN_CHUNK - 1) / GN_CHUNK);
    g.HW = (unsigned)HW;
    g.n = (unsigned)n;
    g.eps = eps;
    g.silu = silu;
    SDC_FLOAT_DISPATCH(y->dtype, T, {
        g.vec = n % sdc_pack<T>::N == 0 && sdc_aligned16(x->data) && sdc_aligned16(y->data);
        group_norm_launch<T>(be, &g);
    });
}

/* --- group norm in two halves (group_norm_stats, group_norm_apply) ---
 * Sums: one block per (image, group), each thread summing its elements (packs, consecutive threads on
 * consecutive packs) in double, then a shuffle tree per warp and warp 0's thread 0 adding the warps in
 * order: a fixed order, so bit-identical run to run. No workspace.
 * Apply: a 2-D launch over [B * C planes, HW] with group_norm's own affine and SiLU. */

#define GNS_THREADS 512

template <typename T> __global__ void gn_sums_kernel(float *y, const T *x, int64_t groups_total, int64_t n, int vec) {
    constexpr int P = sdc_pack<T>::N;
    __shared__ double sh[2][GNS_THREADS / 32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int64_t gidx = blockIdx.x; gidx < groups_total; gidx += gridDim.x) {
        const T *xg = x + gidx * n;
        double s = 0.0, q = 0.0;
        if (vec) {
            for (int64_t p = threadIdx.x; p < n / P; p += GNS_THREADS) {
                float v[P];
                sdc_load_pack(xg + p * P, v);
#pragma unroll
                for (int i = 0; i < P; i++) {
                    const double d = v[i];
                    s += d;
                    q += d * d;
                }
            }
        } else {
            for (int64_t i = threadIdx.x; i < n; i += GNS_THREADS) {
                const double d = sdc_to_f(xg[i]);
                s += d;
                q += d * d;
            }
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) {
            s += __shfl_down_sync(0xffffffffu, s, off);
            q += __shfl_down_sync(0xffffffffu, q, off);
        }
        if (lane == 0) {
            sh[0][warp] = s;
            sh[1][warp] = q;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            double S = 0.0, Q = 0.0;
            for (int w = 0; w < GNS_THREADS / 32; w++) {
                S += sh[0][w];
                Q += sh[1][w];
            }
            const float sh_ = (float)S, qh = (float)Q;
            y[gidx * 4 + 0] = sh_;
            y[gidx * 4 + 1] = (float)(S - (double)sh_);
            y[gidx * 4 + 2] = qh;
            y[gidx * 4 + 3] = (float)(Q - (double)qh);
        }
        __syncthreads();   // sh is reused by the next group
    }
}

extern "C" void sdc_cuda_group_norm_stats(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int groups) {
    const int64_t nelem = sdc_tensor_nelem(x), groups_total = x->ne[0] * groups;
    if (groups_total == 0) return;
    const int64_t n = nelem / groups_total;   // a group is contiguous: C/G channels x HW
    const int64_t blocks = groups_total < 65535 ? groups_total : 65535;
    cudaStream_t s = sdc_cuda_stream(be);
    SDC_FLOAT_DISPATCH(x->dtype, T, {
        const int vec = n % sdc_pack<T>::N == 0 && sdc_aligned16(x->data);
        gn_sums_kernel<T>
            <<<(unsigned)blocks, GNS_THREADS, 0, s>>>((float *)y->data, (const T *)x->data, groups_total, n, vec);
    });
    SDC_CUDA_LAUNCHED(be);
}

/* group_norm's affine and SiLU, as gn_apply_chunk computes them. */
static __device__ __forceinline__ float gn_affine(float v, float2 mr, float w, float b, int silu) {
    float r = (v - mr.x) * mr.y * w + b;
    if (silu) r = r / (1.0f + expf(-r));
    return r;
}

/* rows = B * C planes of HW elements; cols = HW, or HW / P packs when vec. */
template <typename T>
__global__ void gn_apply_stats_kernel(T *y, const T *x, const float2 *stats, const T *w, const T *b, int64_t rows,
                                      int64_t cols, int64_t C, int64_t Cg, int64_t G, int64_t HW, int silu, int vec) {
    constexpr int P = sdc_pack<T>::N;
    SDC_ROWS_LOOP(r, rows) {
        const int64_t c = r % C;
        const float2 mr = stats[(r / C) * G + c / Cg];
        const float wc = sdc_to_f(w[c]), bc = sdc_to_f(b[c]);
        const T *xr = x + r * HW;
        T *yr = y + r * HW;
        SDC_COLS_LOOP(j, cols) {
            if (vec) {
                float v[P];
                sdc_load_pack(xr + j * P, v);
#pragma unroll
                for (int i = 0; i < P; i++) v[i] = gn_affine(v[i], mr, wc, bc, silu);
                sdc_store_pack(yr + j * P, v);
            } else {
                yr[j] = sdc_from_f<T>(gn_affine(sdc_to_f(xr[j]), mr, wc, bc, silu));
            }
        }
    }
}

template <typename T>
static void group_norm_apply_typed(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *stats,
                                   const sdc_tensor *w, const sdc_tensor *b, int groups, int silu) {
    const int64_t B = x->ne[0], C = x->ne[1], nelem = sdc_tensor_nelem(x);
    if (nelem == 0) return;
    const int64_t HW = nelem / (B * C), rows = B * C;
    const int vec = HW % sdc_pack<T>::N == 0 && sdc_aligned16(x->data) && sdc_aligned16(y->data);
    const int64_t cols = vec ? HW / sdc_pack<T>::N : HW;
    const sdc_launch2d l = sdc_plan_rows(rows, cols);
    gn_apply_stats_kernel<T><<<l.grid, l.block, 0, sdc_cuda_stream(be)>>>(
        (T *)y->data, (const T *)x->data, (const float2 *)stats->data, (const T *)w->data, (const T *)b->data, rows,
        cols, C, C / groups, groups, HW, silu, vec);
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_group_norm_apply(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *stats,
                                          const sdc_tensor *w, const sdc_tensor *b, int groups, int silu) {
    assert(x->dtype == y->dtype && w->dtype == y->dtype && b->dtype == y->dtype && stats->dtype == SDC_DTYPE_F32);
    SDC_FLOAT_DISPATCH(y->dtype, T, group_norm_apply_typed<T>(be, y, x, stats, w, b, groups, silu));
}
