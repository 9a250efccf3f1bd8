/* cuda_quant.cu - block-quantized weight rows (GGUF's block types, core/quant.h; their layouts in
 * cuda_quant.cuh) dequantized on the device into F32, F16 or BF16: what the linear op does with a quantized
 * weight where the fused kernel does not run, a bounded chunk of rows at a time (cuda_gemm.cu), what a
 * convolution does with one, and what copy does to a block-type tensor. Each element is the f32 of
 * sdc_dequant_row, rounded once to the output type.
 *
 * Work split: one thread per 8 consecutive output elements (one or two 16-byte stores, adjacent threads
 * writing adjacent bytes), so 4 threads share a 32-element block and a warp a 256-element super-block,
 * whose scale bytes it reads once per lane from L1. Rows of whole blocks are contiguous, so a run of rows
 * is one flat array of blocks. No atomics, no choice that depends on anything but the shapes. */
#include "backend/cuda/cuda_quant.cuh"

namespace {

/* dst[g * 8 .. + 8) = elements of group g for g < n_groups, groups running through src's blocks in order */
template <typename Q, typename T> __global__ void dequant_kernel(T *dst, const uint8_t *src, int64_t n_groups) {
    constexpr int G = Q::QK / 8;   // groups per block
    for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < n_groups;
         g += (int64_t)gridDim.x * blockDim.x) {
        float v[8];
        Q::dq8(src + g / G * Q::BYTES, (int)(g % G) * 8, v);
#pragma unroll
        for (int i = 0; i < 8; i += sdc_pack<T>::N) sdc_store_pack(dst + g * 8 + i, v + i);
    }
}

template <typename Q, typename T>
void launch(sdc_backend *be, sdc_dtype dtype, const void *src, T *dst, int64_t n_groups, cudaStream_t s) {
    assert(sdc_dtype_block(dtype) == Q::QK && sdc_dtype_block_bytes(dtype) == (size_t)Q::BYTES);
    dequant_kernel<Q, T><<<sdc_grid_1d(n_groups, 256), 256, 0, s>>>(dst, (const uint8_t *)src, n_groups);
}

template <typename T>
void dequant_to(sdc_backend *be, sdc_dtype dtype, const void *src, T *dst, int64_t n_groups, cudaStream_t s) {
    switch (dtype) {
#define CASE_(dt, q) \
    case dt: launch<q, T>(be, dtype, src, dst, n_groups, s); break;
        SDC_CUDA_BLOCK_TYPES(CASE_)
#undef CASE_
    default: assert(!"sdc_cuda_dequant_rows: not a block type");
    }
}

}   // namespace

extern "C" void sdc_cuda_dequant_rows(sdc_backend *be, sdc_dtype dtype, const void *src, sdc_dtype dst_dtype, void *dst,
                                      int64_t rows, int64_t K) {
    assert(sdc_dtype_is_quant(dtype) && K % sdc_dtype_block(dtype) == 0 && rows >= 0);
    assert(sdc_aligned16(dst));
    const int64_t n_groups = rows * (K / 8);
    if (n_groups == 0) return;
    cudaStream_t s = sdc_cuda_stream(be);
    SDC_FLOAT_DISPATCH(dst_dtype, T, dequant_to<T>(be, dtype, src, (T *)dst, n_groups, s));
    SDC_CUDA_LAUNCHED(be);
}
