/* cuda_attention.cuh - what the two attention files share: the geometry of one attention call and the
 * base-2 exponential of the tensor-core kernels. cuda_attention.cu holds the mma.sync kernel (any NVIDIA GPU
 * since sm_80), the SIMT kernel and the cuBLAS path; sm90/attention_wgmma.cu the Hopper kernel.
 * Included by those two files only. */
#ifndef SDC_BACKEND_CUDA_ATTENTION_CUH
#define SDC_BACKEND_CUDA_ATTENTION_CUH

#include "backend/cuda/cuda_common.cuh"

struct attn_geom {
    const void *q, *k, *v;
    const void *bias;   // [H, T, S] added to the scores (attention_bias; SIMT kernel only), or NULL
    void *y;
    int B, T, S, H, D, C;
    int causal;
    float scale_log2;   // log2(e) * scale: log2(e) / sqrt(D) for attention
};

/* 2^x by the special-function unit (one instruction, flushes denormal results to 0, 2^-inf = 0). */
static __device__ __forceinline__ float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

/* The Hopper kernel (sm90/attention_wgmma.cu) on g, which qualifies for the mma.sync kernel (F16 or BF16, bf16
 * nonzero; q, k, v, y 16-byte aligned), when it applies: heads of exactly 128, no causal mask, a device of
 * compute capability 9.0. 1 when it was launched, 0 when it does not apply (the caller takes the mma.sync kernel).
 * A function of the shapes and the device only. */
int sdc_cuda_attention_wgmma(sdc_backend *be, cudaStream_t s, const attn_geom &g, int bf16);

#endif
