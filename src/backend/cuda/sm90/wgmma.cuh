/* wgmma.cuh - Hopper's warpgroup tensor-core instructions (wgmma, sm_90a) as the sm90/ kernels use them:
 * shared-memory matrix descriptors for the 128-byte swizzle, the m64n128k16 instruction with A and B from
 * shared memory or A from registers, and the fences around them. Included by the files under sm90/ only,
 * which CMakeLists.txt builds for sm_90a alone; their kernel bodies exist where SDC_WGMMA is defined.
 *
 * The 128-byte swizzle: a tile of 16-bit values [rows][64] is 128 bytes a row, its 16-byte piece j of row r
 * stored at r * 128 + (j ^ (r % 8)) * 16; a tile starts on a 1024-byte boundary. */
#ifndef SDC_BACKEND_CUDA_SM90_WGMMA_CUH
#define SDC_BACKEND_CUDA_SM90_WGMMA_CUH

#include "backend/cuda/cuda_common.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define SDC_WGMMA 1   // this pass compiles for sm_90a: the kernel's body exists
#endif

/* A shared-memory matrix descriptor for 128-byte swizzle: start address, leading and stride byte offsets
 * (bits 0-13, 16-29, 32-45, each in 16-byte units), layout 1 (128-byte swizzle) in bits 62-63.
 *   K-major (d contiguous; Q and K): sbo = 1024, the step between groups of 8 rows (lbo unused).
 *   MN-major (V as B transposed): lbo = the step between 64-column panels, sbo = 1024 between groups of 8 keys. */
static __device__ __forceinline__ uint64_t wg_desc(unsigned addr, unsigned lbo, unsigned sbo) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | (uint64_t)(lbo >> 4) << 16 | (uint64_t)(sbo >> 4) << 32 |
        (uint64_t)1 << 62;
}

/* d[64] (this thread's share of a 64 x 128 f32 accumulator) (acc ? += : =) A B over k = 16, A and B from
 * shared memory (descriptors da, db), neither transposed. */
template <typename T> static __device__ __forceinline__ void wgmma_ss(float *d, uint64_t da, uint64_t db, int acc);
/* d[64] += A B over k = 16, A from registers (a[0..3]: the m16n8k16 A fragment of this thread's warp's 16 rows),
 * B from shared memory transposed (MN-major). */
template <typename T> static __device__ __forceinline__ void wgmma_rs(float *d, const unsigned *a, uint64_t db);
#ifdef SDC_WGMMA
/* The 64 accumulator operands of one m64n128 instruction (WG_ACC) and their names in its text (WG_REGS) */
#define WG_ACC(d)                                                                                               \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),  \
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), \
        "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), \
        "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), \
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), \
        "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define WG_REGS                                                                                                       \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, " \
    "%24, %25, %26, %27, %28, %29, %30, %31, "                                                                        \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, "  \
    "%54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
/* wgmma with A and B from shared memory (scale-d from acc), and with A from registers and B transposed; TY the
 * input type's PTX name */
#define WG_SS(TY)                                                                     \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                         \
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " " WG_REGS \
                 ", %64, %65, p, 1, 1, 0, 0;\n}\n"                                    \
                 : WG_ACC(d)                                                          \
                 : "l"(da), "l"(db), "r"(acc))
#define WG_RS(TY)                                                                     \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                         \
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY " " WG_REGS \
                 ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"                      \
                 : WG_ACC(d)                                                          \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1))
template <> __device__ __forceinline__ void wgmma_ss<__half>(float *d, uint64_t da, uint64_t db, int acc) {
    WG_SS("f16");
}
template <> __device__ __forceinline__ void wgmma_ss<__nv_bfloat16>(float *d, uint64_t da, uint64_t db, int acc) {
    WG_SS("bf16");
}
template <> __device__ __forceinline__ void wgmma_rs<__half>(float *d, const unsigned *a, uint64_t db) { WG_RS("f16"); }
template <> __device__ __forceinline__ void wgmma_rs<__nv_bfloat16>(float *d, const unsigned *a, uint64_t db) {
    WG_RS("bf16");
}
#endif

static __device__ __forceinline__ void wgmma_fence(void) { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
static __device__ __forceinline__ void wgmma_commit(void) {
    asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N> static __device__ __forceinline__ void wgmma_wait(void) {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/* Registers the tensor cores read or write asynchronously: no access may move across the fence or the wait. */
static __device__ __forceinline__ void reg_fence(float &r) { asm volatile("" : "+f"(r)::"memory"); }
static __device__ __forceinline__ void reg_fence(unsigned &r) { asm volatile("" : "+r"(r)::"memory"); }
/* Shared memory written by cp.async or by stores, read next by the tensor cores (the async proxy). */
static __device__ __forceinline__ void fence_proxy_async(void) {
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
template <int N> static __device__ __forceinline__ void fence_regs(float (&r)[N]) {
#pragma unroll
    for (int i = 0; i < N; i++) reg_fence(r[i]);
}

/* 1 when the current device has compute capability 9.0 (H100, H200): the sm_90a code runs. Asked once per file. */
static int sdc_sm90_device(void) {
    static int known = -1;
    if (known < 0) {
        int dev = 0, major = 0, minor = 0;
        known = cudaGetDevice(&dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && major == 9 &&
            minor == 0;
    }
    return known;
}

#endif
