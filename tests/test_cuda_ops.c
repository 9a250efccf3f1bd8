/* test_cuda_ops.c - every op of the CUDA backend against the CPU reference ops (cpu_ref.c, double
 * accumulation) on fresh random inputs, at Stable Diffusion 1.5 sizes (320-1280 channels, 32 groups,
 * 64x64 = 4096 tokens, head dims 40/80/160 with 8 heads, cross-attention over 77 tokens, CLIP's causal
 * 77 x 12 x 64, the VAE's 512-wide single head) and at the tiny reference model's odd ones (head dims
 * 4-8, 8x12 latents, 1-2 channels per group), in f32, f16 and bf16.
 *
 * Each case draws f32 inputs once; the reference runs on them once (on every k-th output row, channel or
 * query where the full reference would be slow: those rows are independent). The CUDA op runs twice per
 * precision, each time on fresh tensors whose output starts as NaN, so a element left unwritten fails. It
 * checks
 *   - ||cuda - ref|| / ||ref|| against per-family bounds: 1e-5 in f32, 2e-3 in f16 (which includes the
 *     rounding of the inputs to f16), 1e-2 in bf16; a convolution on a kernel marked conv_tf32 2e-3 in
 *     f32, and above 1e-5 there (the TF32 products did run); data movement exact (in f16 / bf16 against the reference
 *     rounded to it);
 *     NaN or Inf failing;
 *   - bit-identical output between the two runs;
 *   - the memory counters back where they started after the tensors are freed, no workspace left
 *     behind, and workspace counted where the op needs an im2col band.
 * Then: in-place ops, the allocator (reuse, split and merge under a random workload with every block's
 * contents verified, trim visible to cudaMemGetInfo), the pinned staging path, a full device (a tensor
 * allocation fails cleanly; a convolution without room for its workspace makes the sticky status
 * SDC_ERR_OOM), and injected failures of a CUDA call, a cuBLAS call and a workspace (sticky status,
 * logged with its location, later ops no-ops, clearing it gives the same bits as before). It needs a
 * GPU: without one it fails. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_ref.h"
#include "backend/cuda/cuda_internal.h"
#include "backend/ops.h"
#include "test_op_cases.h"
#include "test_util.h"

enum {
    GEMM,
    TF32,   // a convolution on a kernel marked conv_tf32 (an F32_UPCAST component's): TF32 products in f32
    ATTN,
    NORM,
    ARITH,
    EXACT
};

typedef struct cuda_case {
    op_case op;
    int family;
    int sub;       // > 1: the reference computes every sub-th index of the op's independent dimension
    int uses_ws;   // the CUDA op must count workspace
} cuda_case;

/* conv2d with its kernel marked conv_tf32, as the loader marks an F32_UPCAST component's */
static void run_conv_tf32(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    in[1]->conv_tf32 = 1;
    run_conv(c, y, in);
}

/* The dimension of input i (-1: taken whole) and of the output that a subsampled reference cuts:
 * linear: rows of x; conv: output channels (w, b); attention: queries (and the bias's query rows). */
static int sub_dim(const op_case *c, int i) {
    if (c->run == run_linear || c->run == run_linear_act)
        return i == 0 ? c->in[0].ndim - 2 : i < 0 ? c->out.ndim - 2 : -1;
    if (c->run == run_conv || c->run == run_conv_tf32) return i == 1 || i == 2 ? 0 : i < 0 ? 1 : -1;
    if (c->run == run_attention) return i <= 0 ? 1 : -1;
    if (c->run == run_attention_bias) return i <= 0 || i == 3 ? 1 : -1;   // queries, bias[H, T, S] rows
    return -1;
}

static const cuda_case cases[] = {
    /* --- linear: y[..., N] = x[..., K] . w[N, K]^T + b --- */
    {{"linear 320->1280 [2,4096,320]",
      run_linear,
      3,
      {T3(2, 4096, 320), S2(1280, 320, 0.056f), T1(1280)},
      T3(2, 4096, 1280),
      {0},
      0},
     GEMM,
     16,
     0},
    {{"linear 640->640 [2,1024,640]",
      run_linear,
      3,
      {T3(2, 1024, 640), S2(640, 640, 0.04f), T1(640)},
      T3(2, 1024, 640),
      {0},
      0},
     GEMM,
     8,
     0},
    {{"linear 1280->10240 [2,64,1280] (geglu proj)",
      run_linear,
      3,
      {T3(2, 64, 1280), S2(10240, 1280, 0.028f), T1(10240)},
      T3(2, 64, 10240),
      {0},
      0},
     GEMM,
     4,
     0},
    {{"linear 768->320 no bias [2,77,768] (to_k)",
      run_linear,
      2,
      {T3(2, 77, 768), S2(320, 768, 0.036f)},
      T3(2, 77, 320),
      {0},
      0},
     GEMM,
     0,
     0},
    {{"linear 320->1280 [2,320] (time)",
      run_linear,
      3,
      {T2(2, 320), S2(1280, 320, 0.056f), T1(1280)},
      T2(2, 1280),
      {0},
      0},
     GEMM,
     0,
     0},
    {{"tiny linear 32->128 [2,96,32]",
      run_linear,
      3,
      {T3(2, 96, 32), S2(128, 32, 0.18f), T1(128)},
      T3(2, 96, 128),
      {0},
      0},
     GEMM,
     0,
     0},
    /* linear_act: iarg = the unary op (GELU_TANH with a bias: cuBLASLt's epilogue; else linear, then unary) */
    {{"linear+gelu_tanh 3072->1024 [2,300,3072] (Flux MLP, in the epilogue)",
      run_linear_act,
      3,
      {T3(2, 300, 3072), S2(1024, 3072, 0.018f), T1(1024)},
      T3(2, 300, 1024),
      {SDC_UNARY_GELU_TANH},
      0},
     GEMM,
     0,
     0},
    {{"linear+gelu_tanh no bias 768->320 [2,77,768] (two ops)",
      run_linear_act,
      2,
      {T3(2, 77, 768), S2(320, 768, 0.036f)},
      T3(2, 77, 320),
      {SDC_UNARY_GELU_TANH},
      0},
     GEMM,
     0,
     0},
    {{"linear+silu 320->1280 [2,320] (two ops)",
      run_linear_act,
      3,
      {T2(2, 320), S2(1280, 320, 0.056f), T1(1280)},
      T2(2, 1280),
      {SDC_UNARY_SILU},
      0},
     GEMM,
     0,
     0},
    {{"tiny linear 13->5 [7,13]", run_linear, 3, {T2(7, 13), S2(5, 13, 0.28f), T1(5)}, T2(7, 5), {0}, 0}, GEMM, 0, 0},
    /* --- conv2d: iarg = stride, pad --- */
    {{"conv 3x3 320->320 64x64 B2",
      run_conv,
      3,
      {T4(2, 320, 64, 64), S4(320, 320, 3, 3, 0.0186f), T1(320)},
      T4(2, 320, 64, 64),
      {1, 1},
      0},
     GEMM,
     16,
     1},
    {{"conv 3x3 640->320 64x64 B2 (banded)",
      run_conv,
      3,
      {T4(2, 640, 64, 64), S4(320, 640, 3, 3, 0.013f), T1(320)},
      T4(2, 320, 64, 64),
      {1, 1},
      0},
     GEMM,
     32,
     1},
    {{"conv 3x3 s2 320->320 64->32 B2",
      run_conv,
      3,
      {T4(2, 320, 64, 64), S4(320, 320, 3, 3, 0.0186f), T1(320)},
      T4(2, 320, 32, 32),
      {2, 1},
      0},
     GEMM,
     16,
     1},
    {{"conv 3x3 1280->1280 8x8 B2",
      run_conv,
      3,
      {T4(2, 1280, 8, 8), S4(1280, 1280, 3, 3, 0.0093f), T1(1280)},
      T4(2, 1280, 8, 8),
      {1, 1},
      0},
     GEMM,
     32,
     1},
    {{"conv 3x3 2560->1280 8x8 B2",
      run_conv,
      3,
      {T4(2, 2560, 8, 8), S4(1280, 2560, 3, 3, 0.0066f), T1(1280)},
      T4(2, 1280, 8, 8),
      {1, 1},
      0},
     GEMM,
     64,
     1},
    {{"conv 1x1 640->320 32x32 B2",
      run_conv,
      3,
      {T4(2, 640, 32, 32), S4(320, 640, 1, 1, 0.04f), T1(320)},
      T4(2, 320, 32, 32),
      {1, 0},
      0},
     GEMM,
     16,
     0},
    {{"conv_in 3x3 4->320 64x64 B2",
      run_conv,
      3,
      {T4(2, 4, 64, 64), S4(320, 4, 3, 3, 0.167f), T1(320)},
      T4(2, 320, 64, 64),
      {1, 1},
      0},
     GEMM,
     8,
     1},
    {{"conv_out 3x3 320->4 64x64 B2",
      run_conv,
      3,
      {T4(2, 320, 64, 64), S4(4, 320, 3, 3, 0.0186f), T1(4)},
      T4(2, 4, 64, 64),
      {1, 1},
      0},
     GEMM,
     0,
     1},
    {{"vae conv 3x3 128->128 256x256 (banded)",
      run_conv,
      3,
      {T4(1, 128, 256, 256), S4(128, 128, 3, 3, 0.029f), T1(128)},
      T4(1, 128, 256, 256),
      {1, 1},
      0},
     GEMM,
     16,
     1},
    {{"vae conv 3x3 512->512 128x128, tf32",
      run_conv_tf32,
      3,
      {T4(1, 512, 128, 128), S4(512, 512, 3, 3, 0.0147f), T1(512)},
      T4(1, 512, 128, 128),
      {1, 1},
      0},
     TF32,
     32,
     1},
    {{"vae conv 3x3 128->128 256x256 (banded), tf32",
      run_conv_tf32,
      3,
      {T4(1, 128, 256, 256), S4(128, 128, 3, 3, 0.029f), T1(128)},
      T4(1, 128, 256, 256),
      {1, 1},
      0},
     TF32,
     16,
     1},
    {{"vae conv 1x1 512->256 64x96, tf32",
      run_conv_tf32,
      3,
      {T4(1, 512, 64, 96), S4(256, 512, 1, 1, 0.044f), T1(256)},
      T4(1, 256, 64, 96),
      {1, 0},
      0},
     TF32,
     0,
     0},
    {{"tiny conv_in 3x3 4->32 8x12 B2",
      run_conv,
      3,
      {T4(2, 4, 8, 12), S4(32, 4, 3, 3, 0.167f), T1(32)},
      T4(2, 32, 8, 12),
      {1, 1},
      0},
     GEMM,
     0,
     1},
    {{"tiny conv 3x3 s2 32->32 8x12",
      run_conv,
      3,
      {T4(1, 32, 8, 12), S4(32, 32, 3, 3, 0.059f), T1(32)},
      T4(1, 32, 4, 6),
      {2, 1},
      0},
     GEMM,
     0,
     1},
    {{"tiny conv 3x3 s2 pad0 8->16 13x17 no bias",
      run_conv,
      2,
      {T4(2, 8, 13, 17), S4(16, 8, 3, 3, 0.118f)},
      T4(2, 16, 6, 8),
      {2, 0},
      0},
     GEMM,
     0,
     1},
    {{"tiny conv 5x3 pad2 6->5 9x7",
      run_conv,
      3,
      {T4(1, 6, 9, 7), S4(5, 6, 5, 3, 0.105f), T1(5)},
      T4(1, 5, 9, 9),
      {1, 2},
      0},
     GEMM,
     0,
     1},
    {{"tiny conv 1x1 64->32 8x12",
      run_conv,
      3,
      {T4(2, 64, 8, 12), S4(32, 64, 1, 1, 0.125f), T1(32)},
      T4(2, 32, 8, 12),
      {1, 0},
      0},
     GEMM,
     0,
     0},
    {{"tiny conv 1x1 s2 6->4 7x9",
      run_conv,
      3,
      {T4(1, 6, 7, 9), S4(4, 6, 1, 1, 0.4f), T1(4)},
      T4(1, 4, 4, 5),
      {2, 0},
      0},
     GEMM,
     0,
     1},
    {{"tiny vae conv_out 3x3 32->3 64x96",
      run_conv,
      3,
      {T4(1, 32, 64, 96), S4(3, 32, 3, 3, 0.059f), T1(3)},
      T4(1, 3, 64, 96),
      {1, 1},
      0},
     GEMM,
     0,
     1},
    /* --- attention: iarg = heads, causal --- */
    {{"self-attn 4096 tok 8x40 B2 (peaky logits)",
      run_attention,
      3,
      {{3, {2, 4096, 320, 1}, D_ACT, 1.25f, 0}, {3, {2, 4096, 320, 1}, D_ACT, 1.25f, 0}, T3(2, 4096, 320)},
      T3(2, 4096, 320),
      {8, 0},
      0},
     ATTN,
     64,
     0},
    {{"self-attn 1024 tok 8x80 B2",
      run_attention,
      3,
      {T3(2, 1024, 640), T3(2, 1024, 640), T3(2, 1024, 640)},
      T3(2, 1024, 640),
      {8, 0},
      0},
     ATTN,
     16,
     0},
    {{"self-attn 256 tok 8x160 B2",
      run_attention,
      3,
      {T3(2, 256, 1280), T3(2, 256, 1280), T3(2, 256, 1280)},
      T3(2, 256, 1280),
      {8, 0},
      0},
     ATTN,
     4,
     0},
    {{"self-attn 64 tok 8x160 B2 (mid)",
      run_attention,
      3,
      {T3(2, 64, 1280), T3(2, 64, 1280), T3(2, 64, 1280)},
      T3(2, 64, 1280),
      {8, 0},
      0},
     ATTN,
     0,
     0},
    {{"cross-attn 4096x77 8x40 B2",
      run_attention,
      3,
      {T3(2, 4096, 320), T3(2, 77, 320), T3(2, 77, 320)},
      T3(2, 4096, 320),
      {8, 0},
      0},
     ATTN,
     16,
     0},
    {{"cross-attn 1024x77 8x80 B2",
      run_attention,
      3,
      {T3(2, 1024, 640), T3(2, 77, 640), T3(2, 77, 640)},
      T3(2, 1024, 640),
      {8, 0},
      0},
     ATTN,
     4,
     0},
    {{"cross-attn 256x77 8x160 B2",
      run_attention,
      3,
      {T3(2, 256, 1280), T3(2, 77, 1280), T3(2, 77, 1280)},
      T3(2, 256, 1280),
      {8, 0},
      0},
     ATTN,
     0,
     0},
    /* 128-query blocks (two m-tiles per warp, heads up to 128 wide): SDXL's 64-wide heads, Flux's 128 with a
     * partial last block, causal across several blocks */
    {{"self-attn 1024 tok 10x64 B2 (SDXL)",
      run_attention,
      3,
      {T3(2, 1024, 640), T3(2, 1024, 640), T3(2, 1024, 640)},
      T3(2, 1024, 640),
      {10, 0},
      0},
     ATTN,
     8,
     0},
    {{"self-attn 1000 tok 3x128 B1 (Flux)",
      run_attention,
      3,
      {T3(1, 1000, 384), T3(1, 1000, 384), T3(1, 1000, 384)},
      T3(1, 1000, 384),
      {3, 0},
      0},
     ATTN,
     7,
     0},
    {{"self-attn 1280 tok 2x128 B2 (Flux 512^2)",
      run_attention,
      3,
      {T3(2, 1280, 256), T3(2, 1280, 256), T3(2, 1280, 256)},
      T3(2, 1280, 256),
      {2, 0},
      0},
     ATTN,
     9,
     0},
    {{"causal attn 300 tok 4x64 B1",
      run_attention,
      3,
      {T3(1, 300, 256), T3(1, 300, 256), T3(1, 300, 256)},
      T3(1, 300, 256),
      {4, 1},
      0},
     ATTN,
     0,
     0},
    {{"causal attn 77 tok 12x64 B2 (CLIP)",
      run_attention,
      3,
      {T3(2, 77, 768), T3(2, 77, 768), T3(2, 77, 768)},
      T3(2, 77, 768),
      {12, 1},
      0},
     ATTN,
     0,
     0},
    {{"vae attn 4096 tok 1x512",
      run_attention,
      3,
      {T3(1, 4096, 512), T3(1, 4096, 512), T3(1, 4096, 512)},
      T3(1, 4096, 512),
      {1, 0},
      0},
     ATTN,
     64,
     1},
    /* heads wider than 160 go through cuBLAS in chunks of queries (cuda_attention.cu): many chunks, several
     * heads and images, the causal mask, a bias */
    {{"vae attn 16384 tok 1x512 (chunked)",
      run_attention,
      3,
      {T3(1, 16384, 512), T3(1, 16384, 512), T3(1, 16384, 512)},
      T3(1, 16384, 512),
      {1, 0},
      0},
     ATTN,
     512,
     1},
    {{"wide causal attn 300 tok 2x192 B2",
      run_attention,
      3,
      {T3(2, 300, 384), T3(2, 300, 384), T3(2, 300, 384)},
      T3(2, 300, 384),
      {2, 1},
      0},
     ATTN,
     0,
     1},
    {{"tiny self-attn 96 tok 8x4 B2",
      run_attention,
      3,
      {T3(2, 96, 32), T3(2, 96, 32), T3(2, 96, 32)},
      T3(2, 96, 32),
      {8, 0},
      0},
     ATTN,
     0,
     0},
    {{"tiny cross-attn 96x77 8x8 B2",
      run_attention,
      3,
      {T3(2, 96, 64), T3(2, 77, 64), T3(2, 77, 64)},
      T3(2, 96, 64),
      {8, 0},
      0},
     ATTN,
     0,
     0},
    {{"tiny causal attn 77 tok 4x8 B4",
      run_attention,
      3,
      {T3(4, 77, 32), T3(4, 77, 32), T3(4, 77, 32)},
      T3(4, 77, 32),
      {4, 1},
      0},
     ATTN,
     0,
     0},
    {{"tiny vae attn 96 tok 1x64",
      run_attention,
      3,
      {T3(1, 96, 64), T3(1, 96, 64), T3(1, 96, 64)},
      T3(1, 96, 64),
      {1, 0},
      0},
     ATTN,
     0,
     0},
    {{"odd attn 13x7 tok 3x5", run_attention, 3, {T3(2, 13, 15), T3(2, 7, 15), T3(2, 7, 15)}, T3(2, 13, 15), {3, 0}, 0},
     ATTN,
     0,
     0},
    {{"odd causal attn 9 tok 2x6",
      run_attention,
      3,
      {T3(1, 9, 12), T3(1, 9, 12), T3(1, 9, 12)},
      T3(1, 9, 12),
      {2, 1},
      0},
     ATTN,
     0,
     0},
    /* --- attention with a bias [H, T, S] (T5): iarg[0] = heads, farg = scale (T5: 1) --- */
    {{"T5-XXL attn+bias 512 tok 64x64",
      run_attention_bias,
      4,
      {S3(1, 512, 4096, 0.3f), S3(1, 512, 4096, 0.3f), T3(1, 512, 4096), T3(64, 512, 512)},
      T3(1, 512, 4096),
      {64},
      1.0f},
     ATTN,
     8,
     0},
    {{"wide attn+bias 64x80 tok 2x176 B2",
      run_attention_bias,
      4,
      {S3(2, 64, 352, 0.3f), S3(2, 80, 352, 0.3f), T3(2, 80, 352), T3(2, 64, 80)},
      T3(2, 64, 352),
      {2},
      1.0f},
     ATTN,
     0,
     1},
    {{"T5 attn+bias 256 tok 16x64 B2",
      run_attention_bias,
      4,
      {S3(2, 256, 1024, 0.3f), S3(2, 256, 1024, 0.3f), T3(2, 256, 1024), T3(16, 256, 256)},
      T3(2, 256, 1024),
      {16},
      1.0f},
     ATTN,
     0,
     0},
    {{"tiny T5 attn+bias 32 tok 4x8 B4",
      run_attention_bias,
      4,
      {T3(4, 32, 32), T3(4, 32, 32), T3(4, 32, 32), T3(4, 32, 32)},
      T3(4, 32, 32),
      {4},
      1.0f},
     ATTN,
     0,
     0},
    {{"odd attn+bias 13x7 tok 3x5 scale 0.3",
      run_attention_bias,
      4,
      {T3(2, 13, 15), T3(2, 7, 15), T3(2, 7, 15), T3(3, 13, 7)},
      T3(2, 13, 15),
      {3},
      0.3f},
     ATTN,
     0,
     0},
    /* --- layer norm: farg = eps; inputs off-centre to exercise the variance --- */
    {{"layer_norm [2,4096,320]",
      run_layer_norm,
      3,
      {{3, {2, 4096, 320, 1}, D_ACT, 2, 0.5f}, T1(320), T1(320)},
      T3(2, 4096, 320),
      {0},
      1e-5f},
     NORM,
     0,
     0},
    {{"layer_norm [2,256,1280]",
      run_layer_norm,
      3,
      {{3, {2, 256, 1280, 1}, D_ACT, 1, -0.5f}, T1(1280), T1(1280)},
      T3(2, 256, 1280),
      {0},
      1e-5f},
     NORM,
     0,
     0},
    {{"layer_norm [2,77,768]",
      run_layer_norm,
      3,
      {{3, {2, 77, 768, 1}, D_ACT, 3, -1}, T1(768), T1(768)},
      T3(2, 77, 768),
      {0},
      1e-5f},
     NORM,
     0,
     0},
    {{"tiny layer_norm [2,77,32]",
      run_layer_norm,
      3,
      {{3, {2, 77, 32, 1}, D_ACT, 2, 1}, T1(32), T1(32)},
      T3(2, 77, 32),
      {0},
      1e-5f},
     NORM,
     0,
     0},
    {{"odd layer_norm [5,13]",
      run_layer_norm,
      3,
      {{2, {5, 13, 1, 1}, D_ACT, 1, 0.25f}, T1(13), T1(13)},
      T2(5, 13),
      {0},
      1e-5f},
     NORM,
     0,
     0},
    /* --- RMS norm: farg = eps; off-centre inputs (no mean subtracted); f32, f16 and bf16 --- */
    {{"rms_norm [2,4096,3072]",
      run_rms_norm,
      2,
      {{3, {2, 4096, 3072, 1}, D_ACT, 2, 0.5f}, {1, {3072, 1, 1, 1}, D_ACT, 0.3f, 1}},
      T3(2, 4096, 3072),
      {0},
      1e-6f},
     NORM,
     0,
     0},
    {{"rms_norm heads [1,24,4608,128]",
      run_rms_norm,
      2,
      {T4(1, 24, 4608, 128), {1, {128, 1, 1, 1}, D_ACT, 0.3f, 1}},
      T4(1, 24, 4608, 128),
      {0},
      1e-6f},
     NORM,
     0,
     0},
    {{"tiny rms_norm [2,32,32]",
      run_rms_norm,
      2,
      {{3, {2, 32, 32, 1}, D_ACT, 3, 1}, T1(32)},
      T3(2, 32, 32),
      {0},
      1e-6f},
     NORM,
     0,
     0},
    {{"odd rms_norm [5,13] eps 0.1",
      run_rms_norm,
      2,
      {{2, {5, 13, 1, 1}, D_ACT, 0.2f, 0.1f}, T1(13)},
      T2(5, 13),
      {0},
      0.1f},
     NORM,
     0,
     0},
    /* --- group norm: iarg = groups, silu; farg = eps --- */
    {{"group_norm+silu [2,320,64,64] G32",
      run_group_norm,
      3,
      {{4, {2, 320, 64, 64}, D_ACT, 2, 0.5f}, T1(320), T1(320)},
      T4(2, 320, 64, 64),
      {32, 1},
      1e-5f},
     NORM,
     0,
     0},
    {{"group_norm [2,640,32,32] G32",
      run_group_norm,
      3,
      {{4, {2, 640, 32, 32}, D_ACT, 1, 1}, T1(640), T1(640)},
      T4(2, 640, 32, 32),
      {32, 0},
      1e-6f},
     NORM,
     0,
     0},
    {{"group_norm+silu [2,1280,8,8] G32",
      run_group_norm,
      3,
      {T4(2, 1280, 8, 8), T1(1280), T1(1280)},
      T4(2, 1280, 8, 8),
      {32, 1},
      1e-5f},
     NORM,
     0,
     0},
    {{"group_norm [2,320,4096] 3-D",
      run_group_norm,
      3,
      {T3(2, 320, 4096), T1(320), T1(320)},
      T3(2, 320, 4096),
      {32, 0},
      1e-6f},
     NORM,
     0,
     0},
    {{"vae group_norm+silu [1,128,256,256] G32",
      run_group_norm,
      3,
      {{4, {1, 128, 256, 256}, D_ACT, 1.5f, -0.5f}, T1(128), T1(128)},
      T4(1, 128, 256, 256),
      {32, 1},
      1e-6f},
     NORM,
     0,
     0},
    {{"tiny group_norm+silu [2,32,8,12] G32 (1 ch/group)",
      run_group_norm,
      3,
      {{4, {2, 32, 8, 12}, D_ACT, 1, 0.5f}, T1(32), T1(32)},
      T4(2, 32, 8, 12),
      {32, 1},
      1e-5f},
     NORM,
     0,
     0},
    {{"tiny group_norm [1,64,4,6] G32 (2 ch/group)",
      run_group_norm,
      3,
      {T4(1, 64, 4, 6), T1(64), T1(64)},
      T4(1, 64, 4, 6),
      {32, 0},
      1e-5f},
     NORM,
     0,
     0},
    {{"tiny vae group_norm+silu [1,32,64,96] G32",
      run_group_norm,
      3,
      {T4(1, 32, 64, 96), T1(32), T1(32)},
      T4(1, 32, 64, 96),
      {32, 1},
      1e-6f},
     NORM,
     0,
     0},
    /* --- group norm in halves: stats iarg[0] = groups (y F32 [B, G, 4]); apply iarg = groups, silu --- */
    {{"group_norm_stats [2,320,64,64] G32",
      run_group_norm_stats,
      1,
      {{4, {2, 320, 64, 64}, D_ACT, 2, 0.5f}},
      {3, {2, 32, 4, 1}, D_F32, 1, 0},
      {32},
      0},
     NORM,
     0,
     0},
    {{"vae group_norm_stats [1,256,258,258] G32",
      run_group_norm_stats,
      1,
      {{4, {1, 256, 258, 258}, D_ACT, 1.5f, -0.5f}},
      {3, {1, 32, 4, 1}, D_F32, 1, 0},
      {32},
      0},
     NORM,
     0,
     0},
    {{"odd group_norm_stats [3,64,101] 3-D G16",
      run_group_norm_stats,
      1,
      {T3(3, 64, 101)},
      {3, {3, 16, 4, 1}, D_F32, 1, 0},
      {16},
      0},
     NORM,
     0,
     0},
    {{"group_norm_apply+silu [2,320,64,64] G32",
      run_group_norm_apply,
      4,
      {{4, {2, 320, 64, 64}, D_ACT, 2, 0.5f}, {3, {2, 32, 2, 1}, D_F32, 0.3f, 1}, T1(320), T1(320)},
      T4(2, 320, 64, 64),
      {32, 1},
      0},
     NORM,
     0,
     0},
    {{"odd group_norm_apply [1,64,5,7] G32",
      run_group_norm_apply,
      4,
      {T4(1, 64, 5, 7), {3, {1, 32, 2, 1}, D_F32, 0.3f, 1}, T1(64), T1(64)},
      T4(1, 64, 5, 7),
      {32, 0},
      0},
     NORM,
     0,
     0},
    /* --- unary: iarg = op --- */
    {{"silu [2,1280,16,16]",
      run_unary,
      1,
      {{4, {2, 1280, 16, 16}, D_ACT, 4, 0}},
      T4(2, 1280, 16, 16),
      {SDC_UNARY_SILU},
      0},
     NORM,
     0,
     0},
    {{"gelu [2,77,3072]", run_unary, 1, {{3, {2, 77, 3072, 1}, D_ACT, 4, 0}}, T3(2, 77, 3072), {SDC_UNARY_GELU}, 0},
     NORM,
     0,
     0},
    {{"gelu_tanh [2,77,3072]",
      run_unary,
      1,
      {{3, {2, 77, 3072, 1}, D_ACT, 4, 0}},
      T3(2, 77, 3072),
      {SDC_UNARY_GELU_TANH},
      0},
     NORM,
     0,
     0},
    {{"quick_gelu [2,77,3072]",
      run_unary,
      1,
      {{3, {2, 77, 3072, 1}, D_ACT, 4, 0}},
      T3(2, 77, 3072),
      {SDC_UNARY_QUICK_GELU},
      0},
     NORM,
     0,
     0},
    {{"odd silu [1001]", run_unary, 1, {{1, {1001, 1, 1, 1}, D_ACT, 4, 0}}, T1(1001), {SDC_UNARY_SILU}, 0}, NORM, 0, 0},
    {{"odd quick_gelu [7,11,13]",
      run_unary,
      1,
      {{3, {7, 11, 13, 1}, D_ACT, 4, 0}},
      T3(7, 11, 13),
      {SDC_UNARY_QUICK_GELU},
      0},
     NORM,
     0,
     0},
    /* --- binary: iarg = op; b broadcast --- */
    {{"add [2,320,64,64]+[2,320,64,64]",
      run_binary,
      2,
      {T4(2, 320, 64, 64), T4(2, 320, 64, 64)},
      T4(2, 320, 64, 64),
      {SDC_BINARY_ADD},
      0},
     ARITH,
     0,
     0},
    {{"add [2,320,64,64]+[2,320,1,1]",
      run_binary,
      2,
      {T4(2, 320, 64, 64), T4(2, 320, 1, 1)},
      T4(2, 320, 64, 64),
      {SDC_BINARY_ADD},
      0},
     ARITH,
     0,
     0},
    {{"sub [2,77,768]-[1,77,768]",
      run_binary,
      2,
      {T3(2, 77, 768), T3(1, 77, 768)},
      T3(2, 77, 768),
      {SDC_BINARY_SUB},
      0},
     ARITH,
     0,
     0},
    {{"mul [2,4096,1280]*[1,1,1280]",
      run_binary,
      2,
      {T3(2, 4096, 1280), T3(1, 1, 1280)},
      T3(2, 4096, 1280),
      {SDC_BINARY_MUL},
      0},
     ARITH,
     0,
     0},
    {{"gate mul [2,1000,3072]*[2,1,3072] (Flux, 2 images)",
      run_binary,
      2,
      {T3(2, 1000, 3072), T3(2, 1, 3072)},
      T3(2, 1000, 3072),
      {SDC_BINARY_MUL},
      0},
     ARITH,
     0,
     0},
    {{"odd mul [2,3,5,7]*[1,3,5,1]",
      run_binary,
      2,
      {T4(2, 3, 5, 7), T4(1, 3, 5, 1)},
      T4(2, 3, 5, 7),
      {SDC_BINARY_MUL},
      0},
     ARITH,
     0,
     0},
    {{"tiny add [2,32,8,12]+[2,32,1,1]",
      run_binary,
      2,
      {T4(2, 32, 8, 12), T4(2, 32, 1, 1)},
      T4(2, 32, 8, 12),
      {SDC_BINARY_ADD},
      0},
     ARITH,
     0,
     0},
    {{"scale [2,4,64,64]*0.18215", run_scale, 1, {T4(2, 4, 64, 64)}, T4(2, 4, 64, 64), {0}, 0.18215f}, ARITH, 0, 0},
    {{"odd scale [3,5,7]*-1.5", run_scale, 1, {T3(3, 5, 7)}, T3(3, 5, 7), {0}, -1.5f}, ARITH, 0, 0},
    /* --- geglu --- */
    {{"geglu [2,4096,2560]->[2,4096,1280]",
      run_geglu,
      1,
      {{3, {2, 4096, 2560, 1}, D_ACT, 3, 0}},
      T3(2, 4096, 1280),
      {0},
      0},
     NORM,
     0,
     0},
    {{"geglu [64,10240]->[64,5120]", run_geglu, 1, {{2, {64, 10240, 1, 1}, D_ACT, 3, 0}}, T2(64, 5120), {0}, 0},
     NORM,
     0,
     0},
    {{"odd geglu [5,14]->[5,7]", run_geglu, 1, {{2, {5, 14, 1, 1}, D_ACT, 3, 0}}, T2(5, 7), {0}, 0}, NORM, 0, 0},
    /* --- Flux: rotary embedding (iarg[0] = heads; tables F32 in both precisions), modulated layer norm --- */
    {{"rope [1,4608,3072] 24 heads",
      run_rope,
      3,
      {T3(1, 4608, 3072), F2(4608, 64), F2(4608, 64)},
      T3(1, 4608, 3072),
      {24},
      0},
     NORM,
     0,
     0},
    {{"rope [2,300,3072] 24 heads",
      run_rope,
      3,
      {T3(2, 300, 3072), F2(300, 64), F2(300, 64)},
      T3(2, 300, 3072),
      {24},
      0},
     NORM,
     0,
     0},
    {{"odd rope [2,7,6] 1 head", run_rope, 3, {T3(2, 7, 6), F2(7, 3), F2(7, 3)}, T3(2, 7, 6), {1}, 0}, NORM, 0, 0},
    {{"layer_norm_mod [1,4608,3072]",
      run_layer_norm_mod,
      3,
      {{3, {1, 4608, 3072, 1}, D_ACT, 2, 0.5f}, T2(1, 3072), T2(1, 3072)},
      T3(1, 4608, 3072),
      {0},
      1e-6f},
     NORM,
     0,
     0},
    {{"layer_norm_mod [2,300,3072]",
      run_layer_norm_mod,
      3,
      {{3, {2, 300, 3072, 1}, D_ACT, 2, 0.5f}, T2(2, 3072), T2(2, 3072)},
      T3(2, 300, 3072),
      {0},
      1e-6f},
     NORM,
     0,
     0},
    {{"layer_norm_mod [1,64,8192] (rows wider than the packed kernel's)",
      run_layer_norm_mod,
      3,
      {{3, {1, 64, 8192, 1}, D_ACT, 2, 0.5f}, T2(1, 8192), T2(1, 8192)},
      T3(1, 64, 8192),
      {0},
      1e-6f},
     NORM,
     0,
     0},
    {{"add_gated [2,1000,3072] (Flux's residual, 2 images)",
      run_add_gated,
      3,
      {T3(2, 1000, 3072), T3(2, 1000, 3072), T2(2, 3072)},
      T3(2, 1000, 3072),
      {0},
      0},
     ARITH,
     0,
     0},
    {{"odd add_gated [3,5,13]", run_add_gated, 3, {T3(3, 5, 13), T3(3, 5, 13), T2(3, 13)}, T3(3, 5, 13), {0}, 0},
     ARITH,
     0,
     0},
    {{"odd layer_norm_mod [3,5,13]",
      run_layer_norm_mod,
      3,
      {{3, {3, 5, 13, 1}, D_ACT, 3, -1}, T2(3, 13), T2(3, 13)},
      T3(3, 5, 13),
      {0},
      1e-6f},
     NORM,
     0,
     0},
    /* --- data movement: exact --- */
    {{"embedding 49408x768 [154]", run_embedding, 2, {T2(49408, 768), IDS(154)}, T2(154, 768), {49408}, 0},
     EXACT,
     0,
     0},
    {{"tiny embedding 49408x32 [77]", run_embedding, 2, {T2(49408, 32), IDS(77)}, T2(77, 32), {49408}, 0}, EXACT, 0, 0},
    {{"upsample2x [2,1280,16,16]", run_upsample, 1, {T4(2, 1280, 16, 16)}, T4(2, 1280, 32, 32), {0}, 0}, EXACT, 0, 0},
    {{"odd upsample2x [1,4,5,7]", run_upsample, 1, {T4(1, 4, 5, 7)}, T4(1, 4, 10, 14), {0}, 0}, EXACT, 0, 0},
    {{"concat dim1 [2,1280,16,16]+[2,640,16,16]",
      run_concat,
      2,
      {T4(2, 1280, 16, 16), T4(2, 640, 16, 16)},
      T4(2, 1920, 16, 16),
      {1},
      0},
     EXACT,
     0,
     0},
    {{"concat dim0 [1,4,64,64]x2", run_concat, 2, {T4(1, 4, 64, 64), T4(1, 4, 64, 64)}, T4(2, 4, 64, 64), {0}, 0},
     EXACT,
     0,
     0},
    {{"concat dim1 [2,77,768]+[2,5,768]", run_concat, 2, {T3(2, 77, 768), T3(2, 5, 768)}, T3(2, 82, 768), {1}, 0},
     EXACT,
     0,
     0},
    {{"concat last [1,1000,3072]+[1,1000,12288] (Flux single block)",
      run_concat,
      2,
      {T3(1, 1000, 3072), T3(1, 1000, 12288)},
      T3(1, 1000, 15360),
      {2},
      0},
     EXACT,
     0,
     0},
    {{"odd concat last [3,5,7]+[3,5,2]", run_concat, 2, {T3(3, 5, 7), T3(3, 5, 2)}, T3(3, 5, 9), {2}, 0}, EXACT, 0, 0},
    {{"permute BCHW->BHWC [2,320,64,64]", run_permute, 1, {T4(2, 320, 64, 64)}, T4(2, 64, 64, 320), {0, 2, 3, 1}, 0},
     EXACT,
     0,
     0},
    {{"permute BHWC->BCHW [2,64,64,320]", run_permute, 1, {T4(2, 64, 64, 320)}, T4(2, 320, 64, 64), {0, 3, 1, 2}, 0},
     EXACT,
     0,
     0},
    {{"permute heads [2,77,12,64]", run_permute, 1, {T4(2, 77, 12, 64)}, T4(2, 12, 77, 64), {0, 2, 1, 3}, 0},
     EXACT,
     0,
     0},
    {{"odd permute {3,1,0,2} [3,5,7,11]", run_permute, 1, {T4(3, 5, 7, 11)}, T4(11, 5, 3, 7), {3, 1, 0, 2}, 0},
     EXACT,
     0,
     0},
    {{"odd permute {2,0,3,1} [1,6,1,4]", run_permute, 1, {T4(1, 6, 1, 4)}, T4(1, 1, 4, 6), {2, 0, 3, 1}, 0},
     EXACT,
     0,
     0},
    {{"copy f32->f16 [2,4,64,64]",
      run_copy,
      1,
      {{4, {2, 4, 64, 64}, D_F32, 1, 0}},
      {4, {2, 4, 64, 64}, D_F16, 1, 0},
      {0},
      0},
     EXACT,
     0,
     0},
    {{"copy f16->f32 [2,4,64,64]",
      run_copy,
      1,
      {{4, {2, 4, 64, 64}, D_F16, 1, 0}},
      {4, {2, 4, 64, 64}, D_F32, 1, 0},
      {0},
      0},
     EXACT,
     0,
     0},
    {{"copy f32->bf16 [2,320,64]",
      run_copy,
      1,
      {{3, {2, 320, 64, 1}, D_F32, 1, 0}},
      {3, {2, 320, 64, 1}, D_BF16, 1, 0},
      {0},
      0},
     EXACT,
     0,
     0},
    {{"copy bf16->f16 [2,320,64]",
      run_copy,
      1,
      {{3, {2, 320, 64, 1}, D_BF16, 1, 0}},
      {3, {2, 320, 64, 1}, D_F16, 1, 0},
      {0},
      0},
     EXACT,
     0,
     0},
    {{"copy i32->i32 [154]", run_copy, 1, {IDS(154)}, {1, {154, 1, 1, 1}, D_I32, 1, 0}, {49408}, 0}, EXACT, 0, 0},
    {{"copy same dtype [77,768]", run_copy, 1, {T2(77, 768)}, T2(77, 768), {0}, 0}, EXACT, 0, 0},
    {{"pad2d (0,1,0,1) [1,128,64,64]", run_pad2d, 1, {T4(1, 128, 64, 64)}, T4(1, 128, 65, 65), {0, 1, 0, 1}, 0},
     EXACT,
     0,
     0},
    {{"odd pad2d (1,2,3,4) [2,3,5,7]", run_pad2d, 1, {T4(2, 3, 5, 7)}, T4(2, 3, 8, 14), {1, 2, 3, 4}, 0}, EXACT, 0, 0},
    {{"slice dim1 [2,640,32,32][:,320:]", run_slice, 1, {T4(2, 640, 32, 32)}, T4(2, 320, 32, 32), {1, 320}, 0},
     EXACT,
     0,
     0},
    {{"slice last [2,77,2560][...,1280:]", run_slice, 1, {T3(2, 77, 2560)}, T3(2, 77, 1280), {2, 1280}, 0},
     EXACT,
     0,
     0},
    {{"slice dim0 [2,4,64,64][1:]", run_slice, 1, {T4(2, 4, 64, 64)}, T4(1, 4, 64, 64), {0, 1}, 0}, EXACT, 0, 0},
    {{"odd slice dim2 [3,5,7][:,:,2:5]", run_slice, 1, {T3(3, 5, 7)}, T3(3, 5, 3), {2, 2}, 0}, EXACT, 0, 0},
};

/* Every step-th index along dim (values copied as 4-byte words). */
static op_host select_dim(const op_host *src, int dim, int step) {
    op_host h = *src;
    int64_t outer = 1, inner = 1, n = src->ne[dim];
    for (int i = 0; i < dim; i++) outer *= src->ne[i];
    for (int i = dim + 1; i < src->ndim; i++) inner *= src->ne[i];
    h.ne[dim] = (n + step - 1) / step;
    h.v = malloc(op_host_n(&h) * sizeof(float));
    float *d = h.v;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t k = 0; k < n; k += step, d += inner)
            memcpy(d, src->v + (o * n + k) * inner, (size_t)inner * sizeof(float));
    return h;
}

/* x rounded to act's precision */
static float round_to(sdc_dtype act, float x) {
    return act == SDC_DTYPE_F16 ? sdc_f16_to_f32(sdc_f32_to_f16(x))
        : act == SDC_DTYPE_BF16 ? sdc_bf16_to_f32(sdc_f32_to_bf16(x))
                                : x;
}

/* precisions a case runs in */
enum {
    P_F32,
    P_F16,
    P_BF16
};

static double bound_for(int family, int prec) {
    if (family == EXACT) return 0;
    if (prec == P_BF16) return 1e-2;                    // 8-bit mantissas: the inputs' rounding alone is 2e-3 each
    if (prec == P_F16 || family == TF32) return 2e-3;   // 11-bit mantissas (TF32's as f16's)
    return family == ARITH ? 0 : 1e-5;
}

static void test_case(const cuda_case *cc, uint64_t seed, sdc_backend *cuda, sdc_backend *ref) {
    const op_case *c = &cc->op;
    printf("%s\n", c->name);
    op_host in[OP_MAX_IN] = {{0}}, rin[OP_MAX_IN] = {{0}};
    for (int i = 0; i < c->n_in; i++) in[i] = op_make_input(c, i, seed * 8 + (uint64_t)i);
    const op_host out = op_out_shape(c);
    op_host rout = out;
    const int sub = cc->sub > 1 ? cc->sub : 0;
    for (int i = 0; i < c->n_in; i++)
        rin[i] = sub && sub_dim(c, i) >= 0 ? select_dim(&in[i], sub_dim(c, i), sub) : in[i];
    if (sub) rout.ne[sub_dim(c, -1)] = (out.ne[sub_dim(c, -1)] + sub - 1) / sub;

    double t0 = test_now();
    op_result rf = op_run_on(ref, c, rin, &rout, SDC_DTYPE_F32);
    const double ref_ms = (test_now() - t0) * 1e3;
    const size_t n = op_host_n(&rout);
    test_check(test_max_abs(rf.out, rf.out, n) == 0, "%s: reference output is finite", c->name);

    for (int prec = P_F32; prec <= P_BF16; prec++) {
        const sdc_dtype act = prec == P_BF16 ? SDC_DTYPE_BF16 : prec == P_F16 ? SDC_DTYPE_F16 : SDC_DTYPE_F32;
        op_result a = op_run_on(cuda, c, in, &out, act), b = op_run_on(cuda, c, in, &out, act);
        op_host got = {out.ndim, {out.ne[0], out.ne[1], out.ne[2], out.ne[3]}, a.out, NULL};
        if (sub) got = select_dim(&got, sub_dim(c, -1), sub);
        float *want = rf.out;
        if (prec != P_F32 && cc->family == EXACT &&
            c->out.dt == D_ACT) {   // moved 16-bit values: the reference, rounded
            want = malloc(n * sizeof(float));
            for (size_t k = 0; k < n; k++) want[k] = round_to(act, rf.out[k]);
        }
        char what[200];
        snprintf(what, sizeof what, "%s [%s]", c->name, sdc_dtype_name(act));
        if (cc->family == EXACT)
            test_check_err(what, "max |cuda - ref|", test_max_abs(got.v, want, n), 0);
        else
            test_check_err(what, "rel err", test_rel_err(got.v, want, n), bound_for(cc->family, prec));
        if (cc->family == TF32 && prec == P_F32)   // TF32 did round: true f32 is ~1e-7 here
            test_check(test_rel_err(got.v, want, n) > 1e-5, "%s: TF32 products engaged (rel err %.2e > 1e-5)", what,
                       test_rel_err(got.v, want, n));
        test_check(memcmp(a.out, b.out, op_host_n(&out) * sizeof(float)) == 0, "%s: bit-identical run to run", what);
        test_check(!a.leaked && !b.leaked && !a.ws_left && !b.ws_left,
                   "%s: memory counters back at start, no workspace left", what);
        test_check(a.status == SDC_OK && b.status == SDC_OK, "%s: backend status after the op: %s, %s (want ok)", what,
                   sdc_status_str(a.status), sdc_status_str(b.status));
        if (cc->uses_ws)
            test_check(a.ws_peak > 0, "%s: workspace counted (peak %.2f MiB)", what, a.ws_peak / 1048576.0);
        printf("    time: cuda %8.3f ms (second run), reference %9.1f ms%s\n", b.ms, ref_ms,
               sub ? " (subsampled)" : "");
        if (want != rf.out) free(want);
        if (got.v != a.out) free(got.v);
        free(a.out);
        free(b.out);
    }
    free(rf.out);
    for (int i = 0; i < c->n_in; i++) {
        if (rin[i].v != in[i].v) free(rin[i].v);
        free(in[i].v);
    }
}

/* The tensor-core attention kernel's block shapes (m-tiles per warp, warps per block) change its speed, not
 * its bits: every attention case in f16 and bf16 under each forced shape equals the shape-chosen result
 * (all of it on the mma.sync kernel, forced where the Hopper kernel would take heads of 128).
 * Every key tile a head allows (32, 64 or 128 keys; other tiles, other bits) against the reference, as test_case. */
static void test_attention_block_shapes(sdc_backend *cuda, sdc_backend *ref) {
    static const int shapes[][2] = {{1, 4}, {2, 4}, {1, 8}, {2, 8}};
    printf("heads of 128 take the Hopper (wgmma) kernel here: %s; the cases above ran it, those below force mma.sync\n",
           sdc_cuda_attention_wgmma_here() ? "yes" : "no");
    sdc_cuda_attention_force_mma(1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const op_case *c = &cases[i].op;
        if (c->run != run_attention) continue;
        const int64_t head = c->in[0].ne[2] / c->iarg[0];   // heads 33-128 (padded 48-128): the mma kernel
        if (cases[i].sub <= 1 && head > 32 && head <= 128) {
            op_host rin[OP_MAX_IN] = {{0}};
            for (int j = 0; j < c->n_in; j++) rin[j] = op_make_input(c, j, 9000 + i * 8 + (uint64_t)j);
            const op_host rout = op_out_shape(c);
            op_result rf = op_run_on(ref, c, rin, &rout, SDC_DTYPE_F32);
            for (int bk = 32; bk <= 128; bk *= 2)
                for (int prec = P_F16; prec <= P_BF16; prec++) {
                    const sdc_dtype act = prec == P_BF16 ? SDC_DTYPE_BF16 : SDC_DTYPE_F16;
                    sdc_cuda_attention_force_config(0, 0, bk);
                    op_result got = op_run_on(cuda, c, rin, &rout, act);
                    sdc_cuda_attention_force_config(0, 0, 0);
                    char what[200];
                    snprintf(what, sizeof what, "%s [%s, %d-key tiles where the head allows]", c->name,
                             sdc_dtype_name(act), bk);
                    test_check_err(what, "rel err", test_rel_err(got.out, rf.out, op_host_n(&rout)),
                                   bound_for(cases[i].family, prec));
                    free(got.out);
                }
            free(rf.out);
            for (int j = 0; j < c->n_in; j++) free(rin[j].v);
        }
        op_host in[OP_MAX_IN] = {{0}};
        for (int j = 0; j < c->n_in; j++) in[j] = op_make_input(c, j, 7000 + i * 8 + (uint64_t)j);
        const op_host out = op_out_shape(c);
        for (int prec = P_F16; prec <= P_BF16; prec++) {
            const sdc_dtype act = prec == P_BF16 ? SDC_DTYPE_BF16 : SDC_DTYPE_F16;
            sdc_cuda_attention_force_config(0, 0, 0);
            op_result want = op_run_on(cuda, c, in, &out, act);
            int same = 0;
            for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
                sdc_cuda_attention_force_config(shapes[k][0], shapes[k][1], 0);
                op_result got = op_run_on(cuda, c, in, &out, act);
                same += got.status == SDC_OK && memcmp(got.out, want.out, op_host_n(&out) * sizeof(float)) == 0;
                free(got.out);
            }
            sdc_cuda_attention_force_config(0, 0, 0);
            test_check(want.status == SDC_OK && same == (int)(sizeof shapes / sizeof shapes[0]),
                       "%s [%s]: %d of 4 forced block shapes give the shape-chosen bits", c->name, sdc_dtype_name(act),
                       same);
            free(want.out);
        }
        for (int j = 0; j < c->n_in; j++) free(in[j].v);
    }
    sdc_cuda_attention_force_mma(0);
}

/* y aliasing x (unary, scale) or a (binary) gives the out-of-place result, in every precision. */
static void test_in_place(sdc_backend *be) {
    printf("in place\n");
    op_check_in_place(be, SDC_DTYPE_F32, " [f32]");
    op_check_in_place(be, SDC_DTYPE_F16, " [f16]");
    op_check_in_place(be, SDC_DTYPE_BF16, " [bf16]");
}

static void test_basics(sdc_backend *be) {
    printf("backend basics\n");
    test_check(sdc_device_available(SDC_DEVICE_CUDA), "the registry lists cuda as available");
    test_check(be->stats.cur[SDC_MEM_WORKSPACE] > 0 && be->stats.cur_total == be->stats.cur[SDC_MEM_WORKSPACE],
               "only cuBLAS's fixed workspace is allocated at start, counted as workspace (%.1f MiB)",
               be->stats.cur[SDC_MEM_WORKSPACE] / 1048576.0);
    int ok = be->iface->act_dtype(be, 0) == SDC_DTYPE_F16 && be->iface->act_dtype(be, 1) == SDC_DTYPE_F32 &&
        be->iface->act_dtype(be, SDC_PREC_BF16) == SDC_DTYPE_BF16;
    for (int matrix = 0; matrix < 2; matrix++)
        ok &= be->iface->weight_dtype(be, SDC_DTYPE_F32, 0, matrix) == SDC_DTYPE_F16 &&
            be->iface->weight_dtype(be, SDC_DTYPE_BF16, 0, matrix) == SDC_DTYPE_F16 &&
            be->iface->weight_dtype(be, SDC_DTYPE_F16, 1, matrix) == SDC_DTYPE_F32 &&
            be->iface->weight_dtype(be, SDC_DTYPE_BF16, SDC_PREC_BF16, matrix) == SDC_DTYPE_BF16 &&
            be->iface->weight_dtype(be, SDC_DTYPE_F32, SDC_PREC_BF16, matrix) == SDC_DTYPE_BF16;
    test_check(ok,
               "f16 weights (matrix or not) and activations by default, f32 or bf16 for a component that asks "
               "for it");
    const size_t w0 = be->iface->workspace_bound(be, 0, 0), w1 = be->iface->workspace_bound(be, 1 << 20, 0);
    const size_t w2 = be->iface->workspace_bound(be, (size_t)1 << 34, 0);
    const size_t w3 = be->iface->workspace_bound(be, (size_t)1 << 36, 0);
    const size_t wa = be->iface->workspace_bound(be, 0, 77);
    test_check(w0 >= be->stats.cur[SDC_MEM_WORKSPACE] && w1 > w0 && w2 > w1 && w3 == w2 && wa == w2,
               "workspace bound covers cuBLAS's workspace, grows with im2col and is capped, and covers attention's "
               "cuBLAS path (the cap): %.1f, %.1f, %.1f, %.1f MiB",
               w0 / 1048576.0, w1 / 1048576.0, w2 / 1048576.0, wa / 1048576.0);
    const int64_t budget = be->iface->default_budget(be);
    test_check(budget > 0, "default budget: free device memory less a margin: %.2f GiB", budget / 1073741824.0);
    test_check(be->iface->driver_peak_bytes(be) >= be->stats.cur_total,
               "driver-seen peak (%.1f MiB) covers what the allocator counts (%.1f MiB)",
               be->iface->driver_peak_bytes(be) / 1048576.0, be->stats.cur_total / 1048576.0);
}

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Reuse, split and merge under a random workload: every live block keeps its own contents. */
static void test_allocator(sdc_backend *be) {
    printf("allocator\n");
    be->iface->trim(be);
    const sdc_mem_stats start = be->stats;
    const int64_t big[1] = {16 << 20};   // 64 MiB of f32
    sdc_tensor *a = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 1, big);
    void *pa = a->data;
    sdc_tensor_free(a);
    a = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 1, big);
    test_check(a->data == pa, "a freed 64 MiB block is handed out again");
    sdc_tensor_free(a);

    enum {
        SLOTS = 96,
        STEPS = 4000
    };
    sdc_tensor *live[SLOTS] = {0};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    int corrupt = 0, misaligned = 0, allocs = 0;
    int32_t *host = malloc((size_t)(2 << 20) * sizeof(int32_t)), *back = malloc((size_t)(2 << 20) * sizeof(int32_t));
    for (int step = 0; step < STEPS + SLOTS; step++) {
        const int s = step < STEPS ? (int)(xorshift(&rng) % SLOTS) : step - STEPS;   // then free the rest
        if (live[s]) {
            const int64_t n = live[s]->ne[0];
            be->iface->download(be, back, live[s]->data, live[s]->nbytes);
            for (int64_t k = 0; k < n; k++) corrupt |= back[k] != (int32_t)(s * 1000003 + k);
            sdc_tensor_free(live[s]);
            live[s] = NULL;
        } else if (step < STEPS) {
            const int64_t n = (int64_t)1 << (xorshift(&rng) % 21);                 // 4 B .. 4 MiB, log-uniform,
            const int64_t ne[1] = {n + (int64_t)(xorshift(&rng) % (uint64_t)n)};   // at odd sizes up to 8 MiB
            live[s] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_I32, 1, ne);
            misaligned |= (uintptr_t)live[s]->data % 256 != 0;
            for (int64_t k = 0; k < ne[0]; k++) host[k] = (int32_t)(s * 1000003 + k);
            sdc_tensor_set_raw(live[s], host);
            allocs++;
        }
    }
    free(host);
    free(back);
    test_check(!corrupt, "%d random allocations of 4 B..8 MiB, freed at random: every block kept its contents", allocs);
    test_check(!misaligned, "every block is 256-byte aligned");
    int back_at_start = 1;
    for (int k = 0; k < SDC_MEM_KIND_COUNT; k++) back_at_start &= be->stats.cur[k] == start.cur[k];
    test_check(back_at_start, "counters back at their start values");

    /* a cached block is device memory until trimmed; growth is what the driver-peak sampling sees */
    a = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 1, (int64_t[]){128 << 20});   // 512 MiB
    be->iface->driver_peak_reset(be);
    const size_t grown = be->iface->driver_peak_bytes(be);
    sdc_tensor_free(a);
    be->iface->driver_peak_reset(be);
    const size_t cached = be->iface->driver_peak_bytes(be);
    be->iface->trim(be);
    be->iface->driver_peak_reset(be);
    const size_t trimmed = be->iface->driver_peak_bytes(be);
    test_check(
        cached >= trimmed + ((size_t)512 << 20),
        "a freed 512 MiB block stays cached (%.0f MiB in use with it, %.0f after freeing it) until trim (%.0f MiB)",
        grown / 1048576.0, cached / 1048576.0, trimmed / 1048576.0);
    a = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 1, (int64_t[]){256 << 20});   // 1 GiB
    const size_t peak = be->iface->driver_peak_bytes(be);
    sdc_tensor_free(a);
    be->iface->trim(be);
    test_check(peak >= trimmed + ((size_t)1 << 30), "the driver-seen peak follows a 1 GiB growth: %.0f -> %.0f MiB",
               trimmed / 1048576.0, peak / 1048576.0);
}

/* Uploads through the pinned staging buffers, several rounds through all of them, pieces at offsets. */
static void test_staging(sdc_backend *be) {
    printf("staging\n");
    const size_t chunk = be->iface->staging_size(be);
    test_check(chunk >= ((size_t)1 << 20), "staging buffers of %.0f MiB", chunk / 1048576.0);
    test_check(be->iface->staging_acquire(be, chunk + 1) == NULL, "a request above the staging size gets NULL");
    const int64_t n = (int64_t)((9 * chunk + 12344) / 4);
    sdc_tensor *t = sdc_tensor_new(be, SDC_MEM_WEIGHTS, SDC_DTYPE_I32, 1, &n);
    const size_t nbytes = t->nbytes;
    unsigned char *src = malloc(nbytes), *back = malloc(nbytes);
    uint64_t rng = 12345;
    for (size_t i = 0; i < nbytes; i++) src[i] = (unsigned char)(xorshift(&rng) >> 24);
    for (size_t off = 0; off < nbytes; off += chunk) {
        const size_t len = nbytes - off < chunk ? nbytes - off : chunk, half = len / 3;
        unsigned char *buf = be->iface->staging_acquire(be, len);
        memcpy(buf, src + off, len);
        be->iface->staging_upload(be, (char *)t->data + off, buf, half);
        be->iface->staging_upload(be, (char *)t->data + off + half, buf + half, len - half);
    }
    be->iface->staging_flush(be);
    be->iface->download(be, back, t->data, nbytes);
    test_check(memcmp(src, back, nbytes) == 0, "%.1f MiB through the staging buffers arrive intact",
               nbytes / 1048576.0);

    /* throughput, for information: 1 GiB of uploads, buffers refilled as they free up */
    const int rounds = (int)(((size_t)1 << 30) / chunk);
    double t0 = test_now();
    for (int r = 0; r < rounds; r++) {
        const size_t off = (size_t)r * chunk % (nbytes - chunk);
        void *buf = be->iface->staging_acquire(be, chunk);
        be->iface->staging_upload(be, (char *)t->data + off, buf, chunk);
    }
    be->iface->staging_flush(be);
    const double dt = test_now() - t0;
    printf("    staged uploads: %.1f GB/s (%d x %.0f MiB)\n", rounds * (double)chunk / dt / 1e9, rounds,
           chunk / 1048576.0);
    sdc_tensor_free(t);
    free(src);
    free(back);
}

/* A full device: a tensor allocation fails cleanly (NULL, logged), and a convolution without room for
 * its im2col workspace does nothing and makes the status SDC_ERR_OOM (logged); once memory is back and
 * the status cleared, the very same bits as before. */
static void test_full_device(sdc_backend *be) {
    printf("full device\n");
    be->iface->trim(be);
    const int64_t xs[4] = {1, 1280, 4, 512}, ws[4] = {8, 1280, 3, 3}, bs[1] = {8}, ys[4] = {1, 8, 4, 512};
    sdc_tensor *x = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, xs);
    sdc_tensor *w = sdc_tensor_new(be, SDC_MEM_WEIGHTS, SDC_DTYPE_F32, 4, ws);
    sdc_tensor *b = sdc_tensor_new(be, SDC_MEM_WEIGHTS, SDC_DTYPE_F32, 1, bs);
    sdc_tensor *y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, ys);
    const size_t nx = (size_t)sdc_tensor_nelem(x), nw = (size_t)sdc_tensor_nelem(w), ny = (size_t)sdc_tensor_nelem(y);
    float *h = malloc(nx * sizeof(float)), *y1 = malloc(ny * sizeof(float)), *y3 = malloc(ny * sizeof(float));
    test_fill_normal(h, nx, 77, 1.0f);
    sdc_tensor_set_f32(x, h);
    test_fill_normal(h, nw, 78, 0.01f);
    sdc_tensor_set_f32(w, h);
    test_fill_normal(h, 8, 79, 0.1f);
    sdc_tensor_set_f32(b, h);
    sdc_conv2d(y, x, w, b, 1, 1);
    sdc_tensor_get_f32(y, y1);
    test_check(sdc_backend_sync(be) == SDC_OK, "conv with memory: status %s", sdc_status_str(be->status));

    const sdc_logger saved = be->log;
    be->log = *test_capture_logger();
    enum {
        MAX_FILL = 8192
    };
    sdc_tensor **fill = calloc(MAX_FILL, sizeof *fill);
    int n_fill = 0;
    double filled = 0;
    const int64_t sizes[2] = {256 << 20, 10 << 18};   // 1 GiB, then 10 MiB of f32
    for (int k = 0; k < 2; k++)
        while (n_fill < MAX_FILL &&
               (fill[n_fill] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 1, &sizes[k])))
            filled += (double)fill[n_fill++]->nbytes;
    test_check(n_fill < MAX_FILL && strstr(test_last_error(), "out of memory") != NULL,
               "filling the device (%.1f GiB) ends in a logged out-of-memory failure: %.120s", filled / 1073741824.0,
               test_last_error());
    test_check(sdc_backend_status(be) == SDC_OK, "a failed tensor allocation leaves the status alone: %s",
               sdc_status_str(sdc_backend_status(be)));
    sdc_mem_stats_reset_peak(&be->stats);
    const size_t ws0 = be->stats.cur[SDC_MEM_WORKSPACE];
    be->log = *test_capture_logger();
    sdc_conv2d(y, x, w, b, 1, 1);
    const sdc_status st = sdc_backend_sync(be);
    test_check(st == SDC_ERR_OOM, "conv without room for im2col: status %s (want %s)", sdc_status_str(st),
               sdc_status_str(SDC_ERR_OOM));
    test_check(strstr(test_last_error(), "cuda_conv.cu:") && strstr(test_last_error(), "im2col"),
               "the failure is logged with its location: %.160s", test_last_error());
    test_check(be->stats.peak[SDC_MEM_WORKSPACE] == ws0, "no im2col workspace could be had on the full device");
    for (int i = 0; i < n_fill; i++) sdc_tensor_free(fill[i]);
    free(fill);
    be->iface->trim(be);
    be->log = saved;
    sdc_backend_clear_status(be);
    sdc_conv2d(y, x, w, b, 1, 1);
    sdc_tensor_get_f32(y, y3);
    test_check(sdc_backend_sync(be) == SDC_OK && memcmp(y1, y3, ny * sizeof(float)) == 0,
               "with memory back and the status cleared: status %s, the same bits as before",
               sdc_status_str(be->status));
    sdc_tensor_free(x);
    sdc_tensor_free(w);
    sdc_tensor_free(b);
    sdc_tensor_free(y);
    free(h), free(y1), free(y3);
}

/* Injected failures (be->fail): the Nth checked CUDA call, the Nth checked cuBLAS call, the Nth op
 * workspace. Each makes the status sticky with the right code, logs once with its file, every later op
 * is a no-op (y keeps its bits), and after clearing the status the op gives the bits of a clean run. */
static void test_injected(sdc_backend *be) {
    printf("injected failures\n");
    const int64_t xs[4] = {2, 64, 16, 16}, ws[4] = {32, 64, 3, 3}, ys[4] = {2, 32, 16, 16};
    const int64_t ls[2] = {64, 1024}, lw[2] = {96, 1024}, lo[2] = {64, 96};
    sdc_tensor *x = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, xs);
    sdc_tensor *w = sdc_tensor_new(be, SDC_MEM_WEIGHTS, SDC_DTYPE_F32, 4, ws);
    sdc_tensor *y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, ys);
    sdc_tensor *lx = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, ls);
    sdc_tensor *lwt = sdc_tensor_new(be, SDC_MEM_WEIGHTS, SDC_DTYPE_F32, 2, lw);
    sdc_tensor *ly = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, lo);
    const size_t nx = (size_t)sdc_tensor_nelem(x), nw = (size_t)sdc_tensor_nelem(w), ny = (size_t)sdc_tensor_nelem(y);
    const size_t nl = (size_t)sdc_tensor_nelem(ly);
    float *h = malloc(65536 * sizeof(float)), *clean = malloc(ny * sizeof(float)), *got = malloc(ny * sizeof(float));
    float *lclean = malloc(nl * sizeof(float)), *lgot = malloc(nl * sizeof(float));
    test_fill_normal(h, nx, 81, 1.0f);
    sdc_tensor_set_f32(x, h);
    test_fill_normal(h, nw, 82, 0.04f);
    sdc_tensor_set_f32(w, h);
    test_fill_normal(h, 65536, 83, 1.0f);
    sdc_tensor_set_f32(lx, h);
    sdc_tensor_set_f32(lwt, h);
    sdc_conv2d(y, x, w, NULL, 1, 1);
    sdc_tensor_get_f32(y, clean);
    sdc_linear(ly, lx, lwt, NULL);
    sdc_tensor_get_f32(ly, lclean);
    test_check(sdc_backend_sync(be) == SDC_OK, "clean runs: status %s", sdc_status_str(be->status));

    static const struct {
        const char *what, *file;
        int kind;     // 0: device_call, 1: workspace
        int linear;   // run the linear (no bias: its first checked call is the cuBLAS GEMM) instead of the conv
        sdc_status want;
    } inj[] = {
        {"the conv's first checked CUDA call (the im2col launch)", "cuda_conv.cu:", 0, 0, SDC_ERR_BACKEND},
        {"the linear's cuBLAS GEMM", "cuda_gemm.cu:", 0, 1, SDC_ERR_BACKEND},
        {"the conv's im2col workspace", "cuda_conv.cu:", 1, 0, SDC_ERR_OOM},
    };
    for (size_t i = 0; i < sizeof inj / sizeof inj[0]; i++) {
        const sdc_logger saved = be->log;
        be->log = *test_capture_logger();
        sdc_tensor *out = inj[i].linear ? ly : y;
        float *want = inj[i].linear ? lclean : clean, *have = inj[i].linear ? lgot : got;
        const size_t n = inj[i].linear ? nl : ny;
        if (inj[i].kind == 0)
            be->fail.device_call = 1;
        else
            be->fail.workspace = 1;
        if (inj[i].linear)
            sdc_linear(ly, lx, lwt, NULL);
        else
            sdc_conv2d(y, x, w, NULL, 1, 1);
        const sdc_status st = sdc_backend_sync(be);
        test_check(st == inj[i].want, "injected failure of %s: status %s (want %s)", inj[i].what, sdc_status_str(st),
                   sdc_status_str(inj[i].want));
        const char *log = test_last_error();
        test_check(strstr(log, inj[i].file) && !strstr(log, " | "), "logged once, at %s: %.200s", inj[i].file, log);
        sdc_tensor_set_f32(out, h);
        sdc_scale(out, out, 3.0f);   // a no-op while the status is set
        sdc_tensor_get_f32(out, have);
        test_check(memcmp(have, h, n * sizeof(float)) == 0 && sdc_backend_sync(be) == inj[i].want,
                   "while the status is set, ops are no-ops and the status stays %s", sdc_status_str(be->status));
        sdc_backend_clear_status(be);
        be->log = saved;
        if (inj[i].linear)
            sdc_linear(ly, lx, lwt, NULL);
        else
            sdc_conv2d(y, x, w, NULL, 1, 1);
        sdc_tensor_get_f32(out, have);
        test_check(sdc_backend_sync(be) == SDC_OK && memcmp(have, want, n * sizeof(float)) == 0,
                   "after clearing: status %s, the bits of the clean run", sdc_status_str(be->status));
        test_check(be->fail.device_call == 0 && be->fail.workspace == 0, "the countdowns ran out: %d, %d",
                   be->fail.device_call, be->fail.workspace);
    }
    sdc_tensor_free(x);
    sdc_tensor_free(w);
    sdc_tensor_free(y);
    sdc_tensor_free(lx);
    sdc_tensor_free(lwt);
    sdc_tensor_free(ly);
    free(h), free(clean), free(got), free(lclean), free(lgot);
}

int main(void) {
    sdc_backend *cuda = sdc_backend_new(SDC_DEVICE_CUDA, 0, test_logger());
    if (!test_check(cuda != NULL, "CUDA backend created (this test needs an NVIDIA GPU and driver)"))
        return test_finish();
    sdc_backend *ref = sdc_backend_cpu_ref_new(test_logger());
    const size_t start = cuda->stats.cur_total;
    double t0 = test_now();
    test_basics(cuda);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_case(&cases[i], 1000 + i, cuda, ref);
    test_attention_block_shapes(cuda, ref);
    test_in_place(cuda);
    test_allocator(cuda);
    test_staging(cuda);
    test_full_device(cuda);
    test_injected(cuda);
    test_check(cuda->stats.cur_total == start && ref->stats.cur_total == 0,
               "all tensors freed (cuda: %zu bytes beyond cuBLAS's workspace)", cuda->stats.cur_total - start);
    printf("total %.1f s\n", test_now() - t0);
    sdc_backend_free(cuda);
    sdc_backend_free(ref);
    return test_finish();
}
