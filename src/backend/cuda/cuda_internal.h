/* cuda_internal.h - what the CUDA backend's files share. Only files under src/backend/cuda/ include
 * CUDA headers; the rest of sdc sees the backend through backend.h alone.
 *
 * Files: cuda_backend.c (vtable, device, streams, cuBLAS handle), cuda_alloc.c (caching allocator,
 * counters, cudaMemGetInfo sampling, pinned staging), cuda_gemm.cu (linear via cuBLAS), cuda_conv.cu
 * (convolution), cuda_attention.cu (flash-style attention), cuda_norm.cu (layer/group norm),
 * cuda_elementwise.cu (unary, binary, scale, geglu), cuda_data.cu (embedding, upsample, concat, permute,
 * copy, pad2d, slice).
 *
 * Tensors are F16 or F32 (I32 for token ids); an op's tensors share one float dtype unless the op says
 * otherwise (copy converts). f16 compute accumulates in f32. Every kernel runs on the backend's compute
 * stream; ops return without synchronising. */
#ifndef SDC_BACKEND_CUDA_INTERNAL_H
#define SDC_BACKEND_CUDA_INTERNAL_H

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {   /* sdc's headers have no guards of their own: C linkage for the .cu files too */
#endif

#include "backend/backend.h"

/* CUDA_CHECK(call): on failure logs file, line, the call and the error string, then aborts: a failed
 * kernel launch or copy is a bug or a broken device, not a user error. Allocation failures are not
 * checked this way: the allocator returns NULL and the caller reports SDC_ERR_OOM. */
#define CUDA_CHECK(call) sdc_cuda_check((call), #call, __FILE__, __LINE__)
void sdc_cuda_check(cudaError_t err, const char *call, const char *file, int line);

typedef struct sdc_cuda_ctx sdc_cuda_ctx;   /* defined in cuda_backend.c */

cudaStream_t sdc_cuda_stream(sdc_backend *be);
void *sdc_cuda_cublas(sdc_backend *be);                 /* the cublasHandle_t, bound to the stream */
/* Device scratch counted as SDC_MEM_WORKSPACE; NULL when out of memory. Freed with scratch_free
 * after the op's kernels were enqueued (the allocator reuses it only in stream order). */
void *sdc_cuda_scratch_alloc(sdc_backend *be, size_t nbytes);
void sdc_cuda_scratch_free(sdc_backend *be, void *p, size_t nbytes);

/* Fixed sizes, so that no algorithm choice depends on free memory: cuBLAS's workspace (allocated once,
 * counted as SDC_MEM_WORKSPACE while the backend lives) and the largest im2col band a convolution takes. */
#define SDC_CUDA_CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)
#define SDC_CUDA_CONV_WORKSPACE_BYTES ((size_t)64 << 20)

/* Column-major GEMM on the compute stream, cuBLAS's convention: C[m, n] = op(A) op(B) + beta C for each
 * of `batch` matrices stride_* elements apart (stride_b 0: one B for all). dt is F16 (f32 accumulation,
 * tensor cores) or F32 (true f32, no TF32) for A, B and C alike. */
void sdc_cuda_gemm(sdc_backend *be, sdc_dtype dt, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                   const void *A, int64_t lda, int64_t stride_a, const void *B, int64_t ldb, int64_t stride_b,
                   float beta, void *C, int64_t ldc, int64_t stride_c, int64_t batch);
/* y[o, c, i] = bias[c] for o < outer, c < C, i < inner (dt F16 or F32): the start of a GEMM with beta 1. */
void sdc_cuda_fill_bias(sdc_backend *be, sdc_dtype dt, void *y, const void *bias, int64_t outer, int64_t C,
                        int64_t inner);
/* cudaSuccess when this build's kernels can run on the current device (an image for its architecture); also
 * loads the kernels that must run on a full device (cuda_conv.cu). */
cudaError_t sdc_cuda_kernel_probe(void);

/* The op slots of the vtable (semantics in backend.h). */
void sdc_cuda_linear(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b);
void sdc_cuda_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                     int stride, int pad);
void sdc_cuda_attention(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                        const sdc_tensor *v, int n_heads, int causal);
void sdc_cuda_layer_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                         const sdc_tensor *b, float eps);
void sdc_cuda_group_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                         const sdc_tensor *b, int groups, float eps, int silu);
void sdc_cuda_unary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op);
void sdc_cuda_binary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op);
void sdc_cuda_scale(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, float s);
void sdc_cuda_geglu(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
void sdc_cuda_embedding(sdc_backend *be, sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids);
void sdc_cuda_upsample2x(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
void sdc_cuda_concat(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim);
void sdc_cuda_permute(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const int perm[4]);
void sdc_cuda_copy(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
void sdc_cuda_pad2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left, int right);
void sdc_cuda_slice(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start);

#ifdef __cplusplus
}
#endif
#endif
