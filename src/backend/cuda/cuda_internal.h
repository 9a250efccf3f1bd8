/* cuda_internal.h - what the CUDA backend's files share. Only files under src/backend/cuda/ include
 * CUDA headers; the rest of sdc sees the backend through backend.h alone.
 *
 * Files: cuda_backend.c (vtable, device, streams, cuBLAS handle), cuda_alloc.c (caching allocator,
 * counters, cudaMemGetInfo sampling, pinned staging), cuda_gemm.cu (linear via cuBLAS), cuda_conv.cu
 * (convolution), cuda_attention.cu (flash-style attention; its Hopper kernel in sm90/attention_wgmma.cu),
 * cuda_norm.cu (layer/RMS/group norm), cuda_elementwise.cu (unary, binary, scale, geglu), cuda_data.cu
 * (embedding, upsample, concat, permute, copy, pad2d, slice), cuda_quant.cu (block-quantized weight rows to
 * floats; the block layouts in cuda_quant.cuh), sm90/linear_wgmma.cu (Hopper: the linear on a quantized
 * weight with the dequantization fused into the GEMM). Headers of device code: cuda_common.cuh (conversions,
 * packs, cp.async, launch sizes), cuda_attention.cuh, cuda_quant.cuh, sm90/wgmma.cuh.
 *
 * Tensors are F16, BF16 or F32 (I32 for token ids; a weight may be block-quantized); an op's tensors share
 * one float dtype unless the op says otherwise (copy converts; linear takes a block-quantized weight).
 * f16 compute accumulates in f32. Every kernel runs on the backend's compute
 * stream; ops return without synchronising. */
#ifndef SDC_BACKEND_CUDA_INTERNAL_H
#define SDC_BACKEND_CUDA_INTERNAL_H

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" { /* sdc's headers have no guards of their own: C linkage for the .cu files too */
#endif

#include "backend/backend.h"

/* CUDA_CHECK(be, call) / CUBLAS_CHECK(be, call): 0 when the call succeeded. On failure (or when
 * be->fail.device_call says so) the error becomes be's sticky status, SDC_ERR_OOM for an allocation
 * failure and SDC_ERR_BACKEND otherwise, logged once with file, line, the call and the error string
 * (backend.h); the error is cleared from the runtime so that later calls report their own. Device
 * memory from the pool is not checked this way: the pool returns NULL and the caller reports it. */
#define CUDA_CHECK(be, call) sdc_cuda_check((be), (call), #call, __FILE__, __LINE__)
int sdc_cuda_check(sdc_backend *be, cudaError_t err, const char *call, const char *file, int line);
/* status: a cublasStatus_t (this header does not include cuBLAS's) */
#define CUBLAS_CHECK(be, call) sdc_cublas_check((be), (int)(call), #call, __FILE__, __LINE__)
int sdc_cublas_check(sdc_backend *be, int status, const char *call, const char *file, int line);

typedef struct sdc_cuda_ctx sdc_cuda_ctx; /* defined in cuda_backend.c */

cudaStream_t sdc_cuda_stream(sdc_backend *be);
void *sdc_cuda_cublas(sdc_backend *be);    /* the cublasHandle_t, bound to the stream */
void *sdc_cuda_cublas_ws(sdc_backend *be); /* its workspace, SDC_CUDA_CUBLAS_WORKSPACE_BYTES (cuBLASLt's too) */
/* The scratch of attention (and attention_bias) on these operands: the cuBLAS path's scores for heads wider than
 * 160 (cuda_attention.cu), else 0. */
size_t sdc_cuda_attention_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                                    int n_heads);
/* Benchmarks and tests: run the tensor-core attention kernel with mt m-tiles of 16 rows per warp and nw warps per
 * block (1 or 2, 4 or 8; padded heads 48, 64, 80, 128) and bk keys per tile (heads 48 to 80: 128 or 64; 128: 64 or 32),
 * whatever the shapes; 0: chosen by the shapes. Every block shape gives the same bits; another key tile other bits. */
void sdc_cuda_attention_force_config(int mt, int nw, int bk);
/* on: the mma.sync kernel even where the Hopper kernel (sm90/attention_wgmma.cu) would run (benchmarks, tests);
 * a forced shape above implies it. sdc_cuda_attention_wgmma_here: 1 when this build and device run the Hopper
 * kernel for heads of 128. */
void sdc_cuda_attention_force_mma(int on);
int sdc_cuda_attention_wgmma_here(void);
/* cuBLASLt for the linears with a bias (cuda_gemm.cu): a handle and the plans made so far */
typedef struct sdc_cuda_lt sdc_cuda_lt;
sdc_cuda_lt *sdc_cuda_lt_new(void); /* NULL: no cuBLASLt (the linears then fill the bias first) */
void sdc_cuda_lt_free(sdc_cuda_lt *lt);
sdc_cuda_lt *sdc_cuda_lt_of(sdc_backend *be);
/* Device scratch for an op, counted as SDC_MEM_WORKSPACE; its size depends on shapes only. NULL when
 * the device has no room (or be->fail.workspace says so): that is then the sticky status, SDC_ERR_OOM,
 * logged with the caller's location and `what`, and the op returns at once. Freed with scratch_free
 * after the op's kernels were enqueued (the allocator reuses it only in stream order). */
#define SDC_CUDA_SCRATCH(be, nbytes, what) sdc_cuda_scratch_alloc((be), (nbytes), (what), __FILE__, __LINE__)
void *sdc_cuda_scratch_alloc(sdc_backend *be, size_t nbytes, const char *what, const char *file, int line);
void sdc_cuda_scratch_free(sdc_backend *be, void *p, size_t nbytes);

/* Fixed sizes, so that no algorithm choice depends on free memory: cuBLAS's workspace (allocated once,
 * counted as SDC_MEM_WORKSPACE while the backend lives) and the largest im2col band a convolution takes. */
#define SDC_CUDA_CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)
#define SDC_CUDA_CONV_WORKSPACE_BYTES ((size_t)64 << 20)
/* The most bytes of dequantized weight rows a linear on a block-quantized weight holds (a chunk of rows
 * of one weight, cuda_gemm.cu); a row longer than that is still one chunk of its own. */
#define SDC_CUDA_LINEAR_WORKSPACE_BYTES ((size_t)32 << 20)

/* Column-major GEMM on the compute stream, cuBLAS's convention: C[m, n] = op(A) op(B) + beta C for each
 * of `batch` matrices stride_* elements apart (stride_b 0: one B for all). dt is F16 or BF16 (f32
 * accumulation, tensor cores) or F32 (true f32; with tf32, operands rounded to TF32 on tensor cores, f32
 * sums) for A, B and C alike. */
void sdc_cuda_gemm(sdc_backend *be, sdc_dtype dt, int tf32, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                   const void *A, int64_t lda, int64_t stride_a, const void *B, int64_t ldb, int64_t stride_b,
                   float beta, void *C, int64_t ldc, int64_t stride_c, int64_t batch);
/* y[o, c, i] = bias[c] for o < outer, c < C, i < inner (dt F16 or F32): the start of a GEMM with beta 1. */
void sdc_cuda_fill_bias(sdc_backend *be, sdc_dtype dt, void *y, const void *bias, int64_t outer, int64_t C,
                        int64_t inner);
/* dst[rows, K] (dst_dtype F32, F16 or BF16; 16-byte aligned) = the rows src[rows, K] of block type dtype
 * (K a multiple of its block) dequantized: each element exactly the f32 of sdc_dequant_row, rounded once
 * to dst_dtype. Enqueued on the compute stream (cuda_quant.cu). */
void sdc_cuda_dequant_rows(sdc_backend *be, sdc_dtype dtype, const void *src, sdc_dtype dst_dtype, void *dst,
                           int64_t rows, int64_t K);
/* How many weight rows of length K a linear on a block-quantized weight w[N, K] dequantizes at once into
 * its workspace of y's dtype dt: a function of N, K and dt only (cuda_gemm.cu). */
int64_t sdc_cuda_linear_chunk_rows(int64_t N, int64_t K, sdc_dtype dt);
/* The backend's linear_workspace query (backend.h): the chunk's bytes for a block-quantized w, else 0. */
size_t sdc_cuda_linear_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w);
/* The linear on a block-quantized weight with its dequantization fused into the GEMM (sm90/linear_wgmma.cu):
 * applies (a function of the dtypes, the shapes and the device) to F16 or BF16 activations, a weight of a
 * 32-element block type (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL) or Q4_K, K a multiple of 64, N even, on a
 * device of compute capability 9.0. sdc_cuda_linear_wgmma, called where it applies, launches it (1) when x, w are
 * 16-byte and y 4-byte aligned, else returns 0 having done nothing. It holds no workspace. The linear takes it only when
 * SDC_CUDA_FUSED_QUANT=1 is set (opt-in until it has run on a GPU; cuda_gemm.cu). */
int sdc_cuda_linear_wgmma_applies(sdc_dtype act, sdc_dtype wt, int64_t M, int64_t N, int64_t K);
int sdc_cuda_linear_wgmma(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                          const sdc_tensor *b);
/* Tests and benchmarks: on, a quantized linear takes the dequantize-then-cuBLAS path even where the fused
 * kernel applies (its workspace query follows). */
void sdc_cuda_linear_force_dequant(int on);
/* cudaSuccess when this build's kernels can run on the current device (an image for its architecture). */
cudaError_t sdc_cuda_kernel_probe(void);

/* The op slots of the vtable: sdc_cuda_<name> for each op of SDC_BACKEND_OPS (semantics in backend.h). */
#define SDC_CUDA_OP_DECLARE_(name, family, params, args) SDC_OP_DECLARE(sdc_cuda_, name, params)
SDC_BACKEND_OPS(SDC_CUDA_OP_DECLARE_)
#undef SDC_CUDA_OP_DECLARE_

#ifdef __cplusplus
}
#endif
#endif
