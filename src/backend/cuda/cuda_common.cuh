/* cuda_common.cuh - device helpers the op kernels share: element conversion to and from f32, 16-byte
 * packed loads and stores, asynchronous copies into shared memory, and launch sizing. Included by the .cu
 * files only.
 *
 * Compute is f32 whatever the storage: a kernel loads T (__half, __nv_bfloat16 or float), converts to
 * float, computes, and rounds once on the store. */
#ifndef SDC_BACKEND_CUDA_COMMON_CUH
#define SDC_BACKEND_CUDA_COMMON_CUH

#include <assert.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "backend/cuda/cuda_internal.h"

/* --- conversions --- */

static __device__ __forceinline__ float sdc_to_f(float v) { return v; }
static __device__ __forceinline__ float sdc_to_f(__half v) { return __half2float(v); }
static __device__ __forceinline__ float sdc_to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> static __device__ __forceinline__ T sdc_from_f(float v);
template <> __device__ __forceinline__ float sdc_from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half sdc_from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 sdc_from_f<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

/* --- 16-byte packs: sdc_pack<T>::N elements of T in one uint4 --- */

template <typename T> struct sdc_pack { static constexpr int N = 16 / (int)sizeof(T); };

/* f[0..N) = the N elements of T held in u, as floats. */
template <typename T> static __device__ __forceinline__ void sdc_unpack(uint4 u, float *f) {
    union {
        uint4 u;
        T e[sdc_pack<T>::N];
    } v;
    v.u = u;
#pragma unroll
    for (int i = 0; i < sdc_pack<T>::N; i++) f[i] = sdc_to_f(v.e[i]);
}

/* f[0..N) = p[0..N) as floats; p 16-byte aligned. */
template <typename T> static __device__ __forceinline__ void sdc_load_pack(const T *p, float *f) {
    sdc_unpack<T>(*(const uint4 *)p, f);
}

/* p[0..N) = f[0..N) rounded to T; p 16-byte aligned. */
template <typename T> static __device__ __forceinline__ void sdc_store_pack(T *p, const float *f) {
    union {
        uint4 u;
        T e[sdc_pack<T>::N];
    } v;
#pragma unroll
    for (int i = 0; i < sdc_pack<T>::N; i++) v.e[i] = sdc_from_f<T>(f[i]);
    *(uint4 *)p = v.u;
}

/* Two floats rounded to T, packed in 32 bits (lo in the lower half). */
template <typename T> static __device__ __forceinline__ unsigned pack2(float lo, float hi);
template <> __device__ __forceinline__ unsigned pack2<__half>(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *(unsigned *)&h;
}
template <> __device__ __forceinline__ unsigned pack2<__nv_bfloat16>(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *(unsigned *)&h;
}

/* Runs `body` with T the storage type of the float dtype dt (F16: __half, BF16: __nv_bfloat16, else float):
 *   SDC_FLOAT_DISPATCH(y->dtype, T, map1<T>(be, y->data, x->data, n, f)); */
#define SDC_FLOAT_DISPATCH(dt, T, ...)     \
    do {                                   \
        switch (dt) {                      \
        case SDC_DTYPE_F16: {              \
            typedef __half T;              \
            __VA_ARGS__;                   \
        } break;                           \
        case SDC_DTYPE_BF16: {             \
            typedef __nv_bfloat16 T;       \
            __VA_ARGS__;                   \
        } break;                           \
        default: {                         \
            assert((dt) == SDC_DTYPE_F32); \
            typedef float T;               \
            __VA_ARGS__;                   \
        } break;                           \
        }                                  \
    } while (0)

static inline int sdc_aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* --- shared memory: addresses, asynchronous copies (sm_80 and later) --- */

static __device__ __forceinline__ unsigned smem_addr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

/* 16 bytes global -> shared, asynchronously: the first src_bytes (0 to 16) read from src, the rest zeros (src
 * must still be a valid address when src_bytes is 0).
 * The asm statements touching shared memory clobber "memory" so that none moves across a barrier. */
static __device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes)
                 : "memory");
}
static __device__ __forceinline__ void cp_async_commit(void) { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/* Waits until at most N of this thread's committed groups are still in flight. */
template <int N> static __device__ __forceinline__ void cp_async_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/* --- launch sizing --- */

/* Blocks of `threads` covering n items, at most 65536 (kernels grid-stride beyond); at least 1. */
static inline unsigned sdc_grid_1d(int64_t n, int threads) {
    int64_t blocks = (n + threads - 1) / threads;
    return (unsigned)(blocks < 1 ? 1 : blocks > 65536 ? 65536 : blocks);
}

/* A 2-D launch over [rows, cols]: blocks of (tx, 256 / tx) threads with tx = cols rounded up to a whole
 * warp, at most 256, so that short rows share a block. Kernels loop
 *   for (r = blockIdx.y * blockDim.y + threadIdx.y; r < rows; r += gridDim.y * blockDim.y)
 *     for (c = blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += gridDim.x * blockDim.x) */
typedef struct sdc_launch2d {
    dim3 grid, block;
} sdc_launch2d;

static inline sdc_launch2d sdc_plan_rows(int64_t rows, int64_t cols) {
    const int tx = cols >= 256 ? 256 : cols <= 32 ? 32 : (int)((cols + 31) / 32 * 32), ty = 256 / tx;
    int64_t gx = (cols + tx - 1) / tx, gy = (rows + ty - 1) / ty;
    if (gx > 65536) gx = 65536;
    if (gy > 65535) gy = 65535;
    sdc_launch2d l;
    l.block = dim3((unsigned)tx, (unsigned)ty, 1);
    l.grid = dim3((unsigned)(gx < 1 ? 1 : gx), (unsigned)(gy < 1 ? 1 : gy), 1);
    return l;
}

#define SDC_ROWS_LOOP(r, rows) \
    for (int64_t r = blockIdx.y * (int64_t)blockDim.y + threadIdx.y; r < (rows); r += (int64_t)gridDim.y * blockDim.y)
#define SDC_COLS_LOOP(c, cols) \
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < (cols); c += (int64_t)gridDim.x * blockDim.x)

/* After every launch: a failed launch becomes be's sticky status. Does not synchronise. */
#define SDC_CUDA_LAUNCHED(be) CUDA_CHECK((be), cudaGetLastError())

#endif
