/* test_ops.c - every CPU op against its reference (cpu_ref.c) on fresh random inputs at Stable
 * Diffusion 1.5 sizes.
 *
 * Each case (test_op_cases.h) runs the op on three backends, each with its own tensors whose output
 * starts as NaN: the fast CPU backend on 2 threads (twice: run-to-run), on 1 thread, and the reference
 * backend. It checks
 *   - ||fast - ref|| / ||ref|| and max |fast - ref| against per-case bounds (0 for data movement),
 *     NaN or Inf failing;
 *   - bit-identical output run to run and between 1 and 2 threads (memcmp);
 *   - the backends' memory counters back at their start after the tensors are freed, no workspace
 *     left behind by an op, and a non-zero workspace peak where the fast op needs scratch.
 * Per-op timings of fast vs reference are printed for information. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu_ref.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "test_op_cases.h"
#include "test_util.h"

typedef struct cpu_case {
    op_case op;
    double rel_bound, abs_bound;
    int uses_workspace;   // the fast op must report a workspace peak
} cpu_case;

#define GEMM_REL 1e-5 /* f32 GEMM-based ops vs a double reference */
#define EW_REL 1e-6   /* elementwise f32 math vs double */

static const cpu_case cases[] = {
    /* linear: y[..., N] = x[..., K] . w[N, K]^T + b */
    {{"linear 320->1280 [1024,320]",
      run_linear,
      3,
      {T2(1024, 320), S2(1280, 320, 0.056f), T1(1280)},
      T2(1024, 1280),
      {0},
      0},
     GEMM_REL,
     1e-4,
     0},
    {{"linear 768->3072 [2,77,768]",
      run_linear,
      3,
      {T3(2, 77, 768), S2(3072, 768, 0.036f), T1(3072)},
      T3(2, 77, 3072),
      {0},
      0},
     GEMM_REL,
     1e-4,
     0},
    {{"linear+gelu_tanh 768->3072 [2,77,768]",
      run_linear_act,
      3,
      {T3(2, 77, 768), S2(3072, 768, 0.036f), T1(3072)},
      T3(2, 77, 3072),
      {SDC_UNARY_GELU_TANH},
      0},
     GEMM_REL,
     1e-4,
     0},
    {{"linear 768->320 no bias (to_k)", run_linear, 2, {T3(2, 77, 768), S2(320, 768, 0.036f)}, T3(2, 77, 320), {0}, 0},
     GEMM_REL,
     1e-4,
     0},
    {{"linear 320->1280 [2,320] (time)",
      run_linear,
      3,
      {T2(2, 320), S2(1280, 320, 0.056f), T1(1280)},
      T2(2, 1280),
      {0},
      0},
     GEMM_REL,
     1e-4,
     0},
    /* conv2d: iarg = stride, pad */
    {{"conv 3x3 320->320 64x64",
      run_conv,
      3,
      {T4(1, 320, 64, 64), S4(320, 320, 3, 3, 0.0186f), T1(320)},
      T4(1, 320, 64, 64),
      {1, 1},
      0},
     GEMM_REL,
     1e-4,
     1},
    {{"conv 3x3 s2 320->320 64->32",
      run_conv,
      3,
      {T4(1, 320, 64, 64), S4(320, 320, 3, 3, 0.0186f), T1(320)},
      T4(1, 320, 32, 32),
      {2, 1},
      0},
     GEMM_REL,
     1e-4,
     1},
    {{"conv 1x1 320->640 32x32",
      run_conv,
      3,
      {T4(2, 320, 32, 32), S4(640, 320, 1, 1, 0.056f), T1(640)},
      T4(2, 640, 32, 32),
      {1, 0},
      0},
     GEMM_REL,
     1e-4,
     0},
    {{"conv_in 3x3 4->320 64x64",
      run_conv,
      3,
      {T4(2, 4, 64, 64), S4(320, 4, 3, 3, 0.167f), T1(320)},
      T4(2, 320, 64, 64),
      {1, 1},
      0},
     GEMM_REL,
     1e-4,
     1},
    {{"conv_out 3x3 320->4 64x64",
      run_conv,
      3,
      {T4(1, 320, 64, 64), S4(4, 320, 3, 3, 0.0186f), T1(4)},
      T4(1, 4, 64, 64),
      {1, 1},
      0},
     GEMM_REL,
     1e-4,
     1},
    {{"conv 3x3 s2 pad0 8->16 13x17 nobias",
      run_conv,
      2,
      {T4(2, 8, 13, 17), S4(16, 8, 3, 3, 0.118f)},
      T4(2, 16, 6, 8),
      {2, 0},
      0},
     GEMM_REL,
     1e-5,
     1},
    {{"conv 5x3 pad2 6->5 9x7",
      run_conv,
      3,
      {T4(1, 6, 9, 7), S4(5, 6, 5, 3, 0.105f), T1(5)},
      T4(1, 5, 9, 9),
      {1, 2},
      0},
     GEMM_REL,
     1e-5,
     1},
    /* attention: iarg = heads, causal */
    {{"self-attn 4096 tok 2x40",
      run_attention,
      3,
      {T3(1, 4096, 80), T3(1, 4096, 80), T3(1, 4096, 80)},
      T3(1, 4096, 80),
      {2, 0},
      0},
     GEMM_REL,
     1e-5,
     1},
    {{"self-attn 1024 tok 8x80",
      run_attention,
      3,
      {T3(1, 1024, 640), T3(1, 1024, 640), T3(1, 1024, 640)},
      T3(1, 1024, 640),
      {8, 0},
      0},
     GEMM_REL,
     1e-5,
     1},
    {{"self-attn 256 tok 8x160 B2",
      run_attention,
      3,
      {T3(2, 256, 1280), T3(2, 256, 1280), T3(2, 256, 1280)},
      T3(2, 256, 1280),
      {8, 0},
      0},
     GEMM_REL,
     1e-5,
     1},
    {{"cross-attn 4096x77 8x40 B2",
      run_attention,
      3,
      {T3(2, 4096, 320), T3(2, 77, 320), T3(2, 77, 320)},
      T3(2, 4096, 320),
      {8, 0},
      0},
     GEMM_REL,
     1e-5,
     1},
    {{"causal attn 77 tok 12x64 B2",
      run_attention,
      3,
      {T3(2, 77, 768), T3(2, 77, 768), T3(2, 77, 768)},
      T3(2, 77, 768),
      {12, 1},
      0},
     GEMM_REL,
     1e-5,
     1},
    /* attention with a bias [H, T, S] (T5): iarg[0] = heads, farg = scale (T5: 1) */
    {{"T5 attn+bias 512 tok 16x64",
      run_attention_bias,
      4,
      {S3(1, 512, 1024, 0.3f), S3(1, 512, 1024, 0.3f), T3(1, 512, 1024), S3(16, 512, 512, 2)},
      T3(1, 512, 1024),
      {16},
      1.0f},
     GEMM_REL,
     1e-5,
     1},
    {{"tiny T5 attn+bias 32 tok 4x8 B4",
      run_attention_bias,
      4,
      {T3(4, 32, 32), T3(4, 32, 32), T3(4, 32, 32), S3(4, 32, 32, 2)},
      T3(4, 32, 32),
      {4},
      1.0f},
     GEMM_REL,
     1e-5,
     1},
    {{"odd attn+bias 13x7 tok 3x5 scale 0.3",
      run_attention_bias,
      4,
      {T3(2, 13, 15), T3(2, 7, 15), T3(2, 7, 15), T3(3, 13, 7)},
      T3(2, 13, 15),
      {3},
      0.3f},
     GEMM_REL,
     1e-5,
     1},
    /* layer norm: farg = eps; inputs off-centre to exercise the variance */
    {{"layer_norm [2,4096,320]",
      run_layer_norm,
      3,
      {{3, {2, 4096, 320, 1}, D_ACT, 2, 0.5f}, T1(320), T1(320)},
      T3(2, 4096, 320),
      {0},
      1e-5f},
     EW_REL,
     1e-5,
     0},
    {{"layer_norm [2,77,768]",
      run_layer_norm,
      3,
      {{3, {2, 77, 768, 1}, D_ACT, 3, -1}, T1(768), T1(768)},
      T3(2, 77, 768),
      {0},
      1e-5f},
     EW_REL,
     1e-5,
     0},
    /* RMS norm: farg = eps; inputs off-centre (the mean is not subtracted) and scaled weights */
    {{"rms_norm [2,4096,3072]",
      run_rms_norm,
      2,
      {{3, {2, 4096, 3072, 1}, D_ACT, 2, 0.5f}, {1, {3072, 1, 1, 1}, D_ACT, 0.3f, 1}},
      T3(2, 4096, 3072),
      {0},
      1e-6f},
     EW_REL,
     1e-5,
     0},
    {{"rms_norm [2,512,4096] (T5-XXL)",
      run_rms_norm,
      2,
      {{3, {2, 512, 4096, 1}, D_ACT, 30, -3}, {1, {4096, 1, 1, 1}, D_ACT, 0.3f, 1}},
      T3(2, 512, 4096),
      {0},
      1e-6f},
     EW_REL,
     1e-4,
     0},
    {{"rms_norm heads [1,24,4608,128]",
      run_rms_norm,
      2,
      {T4(1, 24, 4608, 128), {1, {128, 1, 1, 1}, D_ACT, 0.3f, 1}},
      T4(1, 24, 4608, 128),
      {0},
      1e-6f},
     EW_REL,
     1e-5,
     0},
    {{"odd rms_norm [5,13] eps 0.1",
      run_rms_norm,
      2,
      {{2, {5, 13, 1, 1}, D_ACT, 0.2f, 0.1f}, T1(13)},
      T2(5, 13),
      {0},
      0.1f},
     EW_REL,
     1e-5,
     0},
    /* group norm: iarg = groups, silu; farg = eps */
    {{"group_norm+silu [1,320,64,64] G32",
      run_group_norm,
      3,
      {{4, {1, 320, 64, 64}, D_ACT, 2, 0.5f}, T1(320), T1(320)},
      T4(1, 320, 64, 64),
      {32, 1},
      1e-5f},
     EW_REL,
     1e-5,
     0},
    {{"group_norm [2,640,32,32] G32",
      run_group_norm,
      3,
      {{4, {2, 640, 32, 32}, D_ACT, 1, 1}, T1(640), T1(640)},
      T4(2, 640, 32, 32),
      {32, 0},
      1e-6f},
     EW_REL,
     1e-5,
     0},
    {{"group_norm+silu [2,1280,8,8] G32",
      run_group_norm,
      3,
      {T4(2, 1280, 8, 8), T1(1280), T1(1280)},
      T4(2, 1280, 8, 8),
      {32, 1},
      1e-5f},
     EW_REL,
     1e-5,
     0},
    {{"group_norm [2,320,4096] 3-D",
      run_group_norm,
      3,
      {T3(2, 320, 4096), T1(320), T1(320)},
      T3(2, 320, 4096),
      {32, 0},
      1e-6f},
     EW_REL,
     1e-5,
     0},
    /* group norm in halves: stats iarg[0] = groups (y F32 [B, G, 4]); apply iarg = groups, silu */
    {{"group_norm_stats [2,320,64,64] G32",
      run_group_norm_stats,
      1,
      {{4, {2, 320, 64, 64}, D_ACT, 2, 0.5f}},
      {3, {2, 32, 4, 1}, D_F32, 1, 0},
      {32},
      0},
     EW_REL,
     1e-5,
     0},
    {{"group_norm_stats [1,128,37,23] G32",
      run_group_norm_stats,
      1,
      {{4, {1, 128, 37, 23}, D_ACT, 1, -0.25f}},
      {3, {1, 32, 4, 1}, D_F32, 1, 0},
      {32},
      0},
     EW_REL,
     1e-5,
     0},
    {{"group_norm_stats [3,64,101] 3-D G16",
      run_group_norm_stats,
      1,
      {T3(3, 64, 101)},
      {3, {3, 16, 4, 1}, D_F32, 1, 0},
      {16},
      0},
     EW_REL,
     1e-5,
     0},
    {{"group_norm_apply+silu [2,320,64,64] G32",
      run_group_norm_apply,
      4,
      {{4, {2, 320, 64, 64}, D_ACT, 2, 0.5f}, {3, {2, 32, 2, 1}, D_F32, 0.3f, 1}, T1(320), T1(320)},
      T4(2, 320, 64, 64),
      {32, 1},
      0},
     EW_REL,
     1e-5,
     0},
    {{"group_norm_apply [1,64,5,7] G32",
      run_group_norm_apply,
      4,
      {T4(1, 64, 5, 7), {3, {1, 32, 2, 1}, D_F32, 0.3f, 1}, T1(64), T1(64)},
      T4(1, 64, 5, 7),
      {32, 0},
      0},
     EW_REL,
     1e-5,
     0},
    /* unary: iarg = op */
    {{"silu [2,1280,16,16]",
      run_unary,
      1,
      {{4, {2, 1280, 16, 16}, D_ACT, 4, 0}},
      T4(2, 1280, 16, 16),
      {SDC_UNARY_SILU},
      0},
     EW_REL,
     1e-5,
     0},
    {{"gelu [2,77,3072]", run_unary, 1, {{3, {2, 77, 3072, 1}, D_ACT, 4, 0}}, T3(2, 77, 3072), {SDC_UNARY_GELU}, 0},
     EW_REL,
     1e-5,
     0},
    {{"gelu_tanh [2,77,3072]",
      run_unary,
      1,
      {{3, {2, 77, 3072, 1}, D_ACT, 4, 0}},
      T3(2, 77, 3072),
      {SDC_UNARY_GELU_TANH},
      0},
     EW_REL,
     1e-5,
     0},
    {{"quick_gelu [2,77,3072]",
      run_unary,
      1,
      {{3, {2, 77, 3072, 1}, D_ACT, 4, 0}},
      T3(2, 77, 3072),
      {SDC_UNARY_QUICK_GELU},
      0},
     EW_REL,
     1e-5,
     0},
    /* binary: iarg = op; b broadcast */
    {{"add [2,320,64,64]+[2,320,64,64]",
      run_binary,
      2,
      {T4(2, 320, 64, 64), T4(2, 320, 64, 64)},
      T4(2, 320, 64, 64),
      {SDC_BINARY_ADD},
      0},
     0,
     0,
     0},
    {{"add [2,320,64,64]+[2,320,1,1]",
      run_binary,
      2,
      {T4(2, 320, 64, 64), T4(2, 320, 1, 1)},
      T4(2, 320, 64, 64),
      {SDC_BINARY_ADD},
      0},
     0,
     0,
     0},
    {{"sub [2,77,768]-[1,77,768]",
      run_binary,
      2,
      {T3(2, 77, 768), T3(1, 77, 768)},
      T3(2, 77, 768),
      {SDC_BINARY_SUB},
      0},
     0,
     0,
     0},
    {{"mul [2,4096,1280]*[1,1,1280]",
      run_binary,
      2,
      {T3(2, 4096, 1280), T3(1, 1, 1280)},
      T3(2, 4096, 1280),
      {SDC_BINARY_MUL},
      0},
     0,
     0,
     0},
    {{"mul [2,3,5,7]*[1,3,5,1]", run_binary, 2, {T4(2, 3, 5, 7), T4(1, 3, 5, 1)}, T4(2, 3, 5, 7), {SDC_BINARY_MUL}, 0},
     0,
     0,
     0},
    {{"scale [2,4,64,64]*0.18215", run_scale, 1, {T4(2, 4, 64, 64)}, T4(2, 4, 64, 64), {0}, 0.18215f}, 0, 0, 0},
    {{"geglu [64,10240]->[64,5120]", run_geglu, 1, {{2, {64, 10240, 1, 1}, D_ACT, 3, 0}}, T2(64, 5120), {0}, 0},
     EW_REL,
     1e-5,
     0},
    /* Flux: rotary embedding (iarg[0] = heads) on the joint sequence, modulated layer norm (farg = eps) */
    {{"rope [2,4608,3072] 24 heads",
      run_rope,
      3,
      {T3(2, 4608, 3072), F2(4608, 64), F2(4608, 64)},
      T3(2, 4608, 3072),
      {24},
      0},
     EW_REL,
     1e-5,
     0},
    {{"rope [1,7,6] 1 head", run_rope, 3, {T3(1, 7, 6), F2(7, 3), F2(7, 3)}, T3(1, 7, 6), {1}, 0}, EW_REL, 1e-5, 0},
    {{"layer_norm_mod [2,4096,3072]",
      run_layer_norm_mod,
      3,
      {{3, {2, 4096, 3072, 1}, D_ACT, 2, 0.5f}, T2(2, 3072), T2(2, 3072)},
      T3(2, 4096, 3072),
      {0},
      1e-6f},
     EW_REL,
     1e-5,
     0},
    {{"layer_norm_mod [3,5,13]",
      run_layer_norm_mod,
      3,
      {{3, {3, 5, 13, 1}, D_ACT, 3, -1}, T2(3, 13), T2(3, 13)},
      T3(3, 5, 13),
      {0},
      1e-6f},
     EW_REL,
     1e-5,
     0},
    {{"add_gated [2,4096,3072] (Flux's residual)",
      run_add_gated,
      3,
      {T3(2, 4096, 3072), T3(2, 4096, 3072), T2(2, 3072)},
      T3(2, 4096, 3072),
      {0},
      0},
     EW_REL,
     1e-5,
     0},
    {{"add_gated [3,5,13]", run_add_gated, 3, {T3(3, 5, 13), T3(3, 5, 13), T2(3, 13)}, T3(3, 5, 13), {0}, 0},
     EW_REL,
     1e-5,
     0},
    /* data movement: exact */
    {{"embedding 49408x768 [154]", run_embedding, 2, {T2(49408, 768), IDS(154)}, T2(154, 768), {49408}, 0}, 0, 0, 0},
    {{"upsample2x [2,1280,16,16]", run_upsample, 1, {T4(2, 1280, 16, 16)}, T4(2, 1280, 32, 32), {0}, 0}, 0, 0, 0},
    {{"upsample2x [1,4,5,7]", run_upsample, 1, {T4(1, 4, 5, 7)}, T4(1, 4, 10, 14), {0}, 0}, 0, 0, 0},
    {{"concat dim1 [2,1280,16,16]+[2,640,16,16]",
      run_concat,
      2,
      {T4(2, 1280, 16, 16), T4(2, 640, 16, 16)},
      T4(2, 1920, 16, 16),
      {1},
      0},
     0,
     0,
     0},
    {{"concat dim0 [1,4,64,64]x2", run_concat, 2, {T4(1, 4, 64, 64), T4(1, 4, 64, 64)}, T4(2, 4, 64, 64), {0}, 0},
     0,
     0,
     0},
    {{"concat dim1 [2,77,768]+[2,5,768]", run_concat, 2, {T3(2, 77, 768), T3(2, 5, 768)}, T3(2, 82, 768), {1}, 0},
     0,
     0,
     0},
    {{"concat last [3,5,7]+[3,5,2]", run_concat, 2, {T3(3, 5, 7), T3(3, 5, 2)}, T3(3, 5, 9), {2}, 0}, 0, 0, 0},
    {{"permute BCHW->BHWC [2,320,64,64]", run_permute, 1, {T4(2, 320, 64, 64)}, T4(2, 64, 64, 320), {0, 2, 3, 1}, 0},
     0,
     0,
     0},
    {{"permute BHWC->BCHW [2,64,64,320]", run_permute, 1, {T4(2, 64, 64, 320)}, T4(2, 320, 64, 64), {0, 3, 1, 2}, 0},
     0,
     0,
     0},
    {{"permute heads [2,77,12,64]", run_permute, 1, {T4(2, 77, 12, 64)}, T4(2, 12, 77, 64), {0, 2, 1, 3}, 0}, 0, 0, 0},
    {{"permute {3,1,0,2} [3,5,7,11]", run_permute, 1, {T4(3, 5, 7, 11)}, T4(11, 5, 3, 7), {3, 1, 0, 2}, 0}, 0, 0, 0},
    {{"permute {2,0,3,1} [1,6,1,4]", run_permute, 1, {T4(1, 6, 1, 4)}, T4(1, 1, 4, 6), {2, 0, 3, 1}, 0}, 0, 0, 0},
    {{"copy f32->f16 [2,4,64,64]", run_copy, 1, {T4(2, 4, 64, 64)}, {4, {2, 4, 64, 64}, D_F16, 1, 0}, {0}, 0}, 0, 0, 0},
    {{"copy f16->f32 [2,4,64,64]", run_copy, 1, {{4, {2, 4, 64, 64}, D_F16, 1, 0}}, T4(2, 4, 64, 64), {0}, 0}, 0, 0, 0},
    {{"copy f32->bf16 [2,320,64]", run_copy, 1, {T3(2, 320, 64)}, {3, {2, 320, 64, 1}, D_BF16, 1, 0}, {0}, 0}, 0, 0, 0},
    {{"copy f32->f32 [77,768]", run_copy, 1, {T2(77, 768)}, T2(77, 768), {0}, 0}, 0, 0, 0},
    {{"pad2d (0,1,0,1) [1,128,64,64]", run_pad2d, 1, {T4(1, 128, 64, 64)}, T4(1, 128, 65, 65), {0, 1, 0, 1}, 0},
     0,
     0,
     0},
    {{"pad2d (1,2,3,4) [2,3,5,7]", run_pad2d, 1, {T4(2, 3, 5, 7)}, T4(2, 3, 8, 14), {1, 2, 3, 4}, 0}, 0, 0, 0},
    {{"slice dim1 [2,640,32,32][:,320:]", run_slice, 1, {T4(2, 640, 32, 32)}, T4(2, 320, 32, 32), {1, 320}, 0},
     0,
     0,
     0},
    {{"slice last [2,77,2560][...,1280:]", run_slice, 1, {T3(2, 77, 2560)}, T3(2, 77, 1280), {2, 1280}, 0}, 0, 0, 0},
    {{"slice dim0 [2,4,64,64][1:]", run_slice, 1, {T4(2, 4, 64, 64)}, T4(1, 4, 64, 64), {0, 1}, 0}, 0, 0, 0},
};

static void test_case(const cpu_case *cc, uint64_t seed, sdc_backend *fast2, sdc_backend *fast1, sdc_backend *ref) {
    const op_case *c = &cc->op;
    printf("%s\n", c->name);
    op_host host[OP_MAX_IN] = {{0}};
    for (int i = 0; i < c->n_in; i++) host[i] = op_make_input(c, i, seed * 8 + (uint64_t)i);
    const op_host out = op_out_shape(c);
    const size_t n = op_host_n(&out);
    const sdc_dtype f32 = SDC_DTYPE_F32;
    op_result f2 = op_run_on(fast2, c, host, &out, f32), f2b = op_run_on(fast2, c, host, &out, f32);
    op_result f1 = op_run_on(fast1, c, host, &out, f32), rf = op_run_on(ref, c, host, &out, f32);

    test_check(test_max_abs(rf.out, rf.out, n) == 0, "%s: reference output is finite", c->name);   // inf on NaN
    char what[160];
    snprintf(what, sizeof what, "%s fast vs ref", c->name);
    test_check_err(what, "rel", test_rel_err(f2.out, rf.out, n), cc->rel_bound);
    test_check_err(what, "max_abs", test_max_abs(f2.out, rf.out, n), cc->abs_bound);
    test_check(memcmp(f2.out, f2b.out, n * sizeof(float)) == 0, "%s: bit-identical run to run", c->name);
    test_check(memcmp(f2.out, f1.out, n * sizeof(float)) == 0, "%s: bit-identical on 1 and 2 threads", c->name);
    const op_result *all[4] = {&f2, &f2b, &f1, &rf};
    int leaked = 0, ws_left = 0, misaligned = 0;
    sdc_status st = SDC_OK;
    for (int i = 0; i < 4; i++) {
        leaked |= all[i]->leaked;
        ws_left |= all[i]->ws_left;
        misaligned |= all[i]->misaligned;
        if (st == SDC_OK) st = all[i]->status;
    }
    test_check(st == SDC_OK, "%s: backend status after the op: %s (want ok)", c->name, sdc_status_str(st));
    test_check(!leaked && !ws_left, "%s: memory counters back at start, no workspace left", c->name);
    test_check(!misaligned, "%s: tensor data 64-byte aligned", c->name);
    if (cc->uses_workspace)
        test_check(f2.ws_peak > 0 && f1.ws_peak > 0, "%s: workspace counted (peak %.2f MB)", c->name,
                   f2.ws_peak / 1048576.0);
    printf("  time: fast 2 threads %8.2f ms, 1 thread %8.2f ms, reference %9.2f ms\n", f2b.ms, f1.ms, rf.ms);
    for (int i = 0; i < OP_MAX_IN; i++) free(host[i].v);
    for (int i = 0; i < 4; i++) free(all[i]->out);
}

/* copy from a block-quantized weight (every block type) to F32, F16 and BF16 on both CPU backends: the
 * rows sdc_dequant_row gives, rounded to the target, bit for bit. Weights quantized from N(0, 1) where
 * sdc_quant_row writes the type; random nibbles under a finite f16 scale for the read-only IQ4 types. */
static void test_copy_quant(sdc_backend *fast, sdc_backend *ref) {
    const int64_t rows = 5, K = 512, n = rows * K;
    float *src = malloc((size_t)n * sizeof(float)), *want = malloc((size_t)n * sizeof(float));
    float *got = malloc((size_t)n * sizeof(float));
    test_fill_normal(src, (size_t)n, 4242, 1.0f);
    for (int d = SDC_DTYPE_FIRST_QUANT; d < SDC_DTYPE_COUNT; d++) {
        const sdc_dtype dt = (sdc_dtype)d;
        const size_t rb = sdc_dtype_row_bytes(dt, K), bb = sdc_dtype_block_bytes(dt);
        uint8_t *blocks = malloc(rb * (size_t)rows);
        if (sdc_quant_can_write(dt)) {
            for (int64_t r = 0; r < rows; r++) sdc_quant_row(dt, src + r * K, blocks + (size_t)r * rb, K);
        } else {   // IQ4_NL / IQ4_XS: f16 d first in the block
            for (size_t i = 0; i < rb * (size_t)rows; i++) blocks[i] = (uint8_t)(i * 2654435761u >> 13);
            for (size_t b = 0; b < rb * (size_t)rows; b += bb) {
                blocks[b] = 0x00;
                blocks[b + 1] = 0x20;   // 2^-7
            }
        }
        for (int64_t r = 0; r < rows; r++) sdc_dequant_row(dt, blocks + (size_t)r * rb, want + r * K, K);
        for (int b = 0; b < 2; b++) {
            sdc_backend *be = b ? ref : fast;
            const int64_t ne[2] = {rows, K};
            sdc_tensor *w = sdc_tensor_new(be, SDC_MEM_WEIGHTS, dt, 2, ne);
            sdc_tensor_set_raw(w, blocks);
            static const sdc_dtype outs[] = {SDC_DTYPE_F32, SDC_DTYPE_F16, SDC_DTYPE_BF16};
            for (size_t o = 0; o < 3; o++) {
                sdc_tensor *y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, outs[o], 2, ne);
                sdc_copy(y, w);
                sdc_tensor_get_f32(y, got);
                size_t bad = 0;
                for (int64_t i = 0; i < n; i++) {
                    const float r = outs[o] == SDC_DTYPE_F16 ? sdc_f16_to_f32(sdc_f32_to_f16(want[i]))
                        : outs[o] == SDC_DTYPE_BF16          ? sdc_bf16_to_f32(sdc_f32_to_bf16(want[i]))
                                                             : want[i];
                    bad += memcmp(&r, &got[i], sizeof r) != 0;
                }
                test_check(bad == 0 && sdc_backend_status(be) == SDC_OK, "%s copy %s -> %s: %zu of %lld values differ",
                           sdc_backend_name(be), sdc_dtype_name(dt), sdc_dtype_name(outs[o]), bad, (long long)n);
                sdc_tensor_free(y);
            }
            sdc_tensor_free(w);
        }
        free(blocks);
    }
    free(src);
    free(want);
    free(got);
}

/* group_norm_stats, then mean and rstd in double from the sums (as the tiled VAE decode makes them),
 * then group_norm_apply: group_norm's output, bit for bit but where the sums' variance rounds rstd to
 * another float than group_norm's two-pass variance (counted, and bounded). */
static void test_split_group_norm(sdc_backend *be) {
    printf("group_norm_stats + group_norm_apply = group_norm\n");
    const int64_t ne[4] = {2, 128, 24, 40}, C = ne[1], G = 32, n = C / G * ne[2] * ne[3];
    const size_t N = (size_t)(ne[0] * C * ne[2] * ne[3]);
    const float eps = 1e-6f;
    float *xh = malloc(N * sizeof(float)), *wh = malloc(2 * C * sizeof(float)), *want = malloc(N * sizeof(float));
    float *got = malloc(N * sizeof(float)), sums[2 * 32 * 4], mr[2 * 32 * 2];
    test_fill_normal(xh, N, 77, 1.5f);
    for (size_t i = 0; i < N; i++) xh[i] += 0.75f;
    test_fill_normal(wh, (size_t)(2 * C), 78, 1.0f);
    sdc_tensor *x = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, ne);
    sdc_tensor *y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4, ne);
    sdc_tensor *w = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 1, &C);
    sdc_tensor *b = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 1, &C);
    sdc_tensor *st = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, (int64_t[]){2, G, 4});
    sdc_tensor *sm = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 3, (int64_t[]){2, G, 2});
    sdc_tensor_set_f32(x, xh);
    sdc_tensor_set_f32(w, wh);
    sdc_tensor_set_f32(b, wh + C);
    for (int silu = 0; silu <= 1; silu++) {
        sdc_group_norm(y, x, w, b, (int)G, eps, silu);
        sdc_tensor_get_f32(y, want);
        sdc_group_norm_stats(st, x, (int)G);
        sdc_tensor_get_f32(st, sums);
        for (int g = 0; g < 2 * G; g++) {
            const double s = (double)sums[4 * g] + sums[4 * g + 1], q = (double)sums[4 * g + 2] + sums[4 * g + 3];
            const double mean = s / (double)n, var = q / (double)n - mean * mean;
            mr[2 * g] = (float)mean;
            mr[2 * g + 1] = (float)(1.0 / sqrt((var > 0 ? var : 0) + (double)eps));
        }
        sdc_tensor_set_f32(sm, mr);
        sdc_group_norm_apply(y, x, sm, w, b, (int)G, silu);
        sdc_tensor_get_f32(y, got);
        size_t differ = 0;
        for (size_t i = 0; i < N; i++) differ += memcmp(&got[i], &want[i], sizeof(float)) != 0;
        char what[64];
        snprintf(what, sizeof what, "split group norm%s [2,128,24,40] G32", silu ? "+silu" : "");
        test_check_err(what, "rel vs group_norm", test_rel_err(got, want, N), 1e-6);
        test_check_err(what, "max_abs vs group_norm", test_max_abs(got, want, N), 1e-5);
        printf("  %s: %zu of %zu values with other bits\n", what, differ, N);
    }
    test_check(sdc_backend_sync(be) == SDC_OK, "split group norm: backend status ok");
    sdc_tensor_free(x);
    sdc_tensor_free(y);
    sdc_tensor_free(w);
    sdc_tensor_free(b);
    sdc_tensor_free(st);
    sdc_tensor_free(sm);
    free(xh);
    free(wh);
    free(want);
    free(got);
}

static void test_backend_basics(void) {
    sdc_backend *be = sdc_backend_cpu_new(0, test_logger());
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    test_check(be && be->n_threads == (int)cores, "n_threads 0 means all cores: %d of %ld", be ? be->n_threads : -1,
               cores);
    /* file dtype -> the dtype a matrix weight is kept in (any other weight: F32) */
    static const sdc_dtype files[][2] = {{SDC_DTYPE_F32, SDC_DTYPE_F32},   {SDC_DTYPE_F16, SDC_DTYPE_F16},
                                         {SDC_DTYPE_BF16, SDC_DTYPE_BF16}, {SDC_DTYPE_F64, SDC_DTYPE_F32},
                                         {SDC_DTYPE_I64, SDC_DTYPE_F32},   {SDC_DTYPE_Q8_0, SDC_DTYPE_Q8_0},
                                         {SDC_DTYPE_Q4_K, SDC_DTYPE_Q4_K}};
    int ok = be->iface->act_dtype(be, 0) == SDC_DTYPE_F32 && be->iface->act_dtype(be, 1) == SDC_DTYPE_F32;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        for (sdc_prec p = SDC_PREC_AUTO; p <= SDC_PREC_BF16; p++)
            ok &= be->iface->weight_dtype(be, files[i][0], p, 0) == SDC_DTYPE_F32 &&
                be->iface->weight_dtype(be, files[i][0], p, 1) == files[i][1];
    test_check(ok,
               "activations and non-matrix weights are f32 on the cpu backend; matrix weights keep f16, bf16 "
               "and block types");
    sdc_backend_free(be);
}

int main(void) {
    sdc_backend *fast2 = sdc_backend_cpu_new(2, test_logger());
    sdc_backend *fast1 = sdc_backend_cpu_new(1, test_logger());
    sdc_backend *ref = sdc_backend_cpu_ref_new(test_logger());
    test_check(fast2 && fast1 && ref, "backends created");
    double t0 = test_now();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_case(&cases[i], 1000 + i, fast2, fast1, ref);
    op_check_in_place(fast2, SDC_DTYPE_F32, "");
    test_split_group_norm(fast2);
    test_copy_quant(fast2, ref);
    test_backend_basics();
    test_check(fast2->stats.cur_total == 0 && fast1->stats.cur_total == 0 && ref->stats.cur_total == 0,
               "all backend memory freed");
    printf("total %.1f s\n", test_now() - t0);
    sdc_backend_free(fast2);
    sdc_backend_free(fast1);
    sdc_backend_free(ref);
    return test_finish();
}
