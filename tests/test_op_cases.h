/* test_op_cases.h - the op-case machinery of the op tests (test_ops.c: the fast CPU backend against the
 * reference; test_cuda_ops.c: the CUDA backend against the reference): how a case describes one op call,
 * how each op is called, fresh random host inputs, one run of a case on a backend with its memory counters
 * watched, and the in-place check. Each test wraps op_case with its own bounds. */
#ifndef SDC_TEST_OP_CASES_H
#define SDC_TEST_OP_CASES_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* A case's tensor dtypes; D_ACT: the precision under test (the activation dtype given to op_run_on).
 * A block type (a weight) is given as its blocks (op_host.raw). */
enum {
    D_ACT,
    D_F32,
    D_F16,
    D_BF16,
    D_I32,
    D_Q4_0,
    D_Q8_0,
    D_Q4_K
};

typedef struct tspec {
    int ndim;
    int64_t ne[4];
    int dt;               // D_*
    float scale, shift;   // inputs: N(0, 1) * scale + shift; I32: uniform ids in [0, iarg[0])
} tspec;

/* the most inputs an op takes (attention_bias: q, k, v, bias) */
#define OP_MAX_IN 4

typedef struct op_case op_case;
struct op_case {
    const char *name;
    void (*run)(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);   // one of the run_* below
    int n_in;
    tspec in[OP_MAX_IN];
    tspec out;
    int iarg[4];
    float farg;
};

#define T1(a) \
    { 1, {a, 1, 1, 1}, D_ACT, 1, 0 }
#define T2(a, b) \
    { 2, {a, b, 1, 1}, D_ACT, 1, 0 }
#define T3(a, b, c) \
    { 3, {a, b, c, 1}, D_ACT, 1, 0 }
#define T4(a, b, c, d) \
    { 4, {a, b, c, d}, D_ACT, 1, 0 }
/* an input of the given shape scaled by s (weights: 1 / sqrt(fan_in)) */
#define S2(a, b, s) \
    { 2, {a, b, 1, 1}, D_ACT, s, 0 }
#define S3(a, b, c, s) \
    { 3, {a, b, c, 1}, D_ACT, s, 0 }
#define S4(a, b, c, d, s) \
    { 4, {a, b, c, d}, D_ACT, s, 0 }
/* an F32 input whatever the precision under test (rope's cos/sin tables) */
#define F2(a, b) \
    { 2, {a, b, 1, 1}, D_F32, 1, 0 }
/* n token ids into a table of iarg[0] rows */
#define IDS(n) \
    { 1, {n, 1, 1, 1}, D_I32, 1, 0 }

/* --- how each op is called: in[0..n_in), and what iarg / farg mean --- */
void run_linear(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);       // x, w[, b when n_in > 2]
void run_linear_act(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);   // as run_linear; iarg[0] = unary op
void run_conv(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);         // iarg = stride, pad
void run_attention(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);    // iarg = heads, causal
void run_layer_norm(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);   // farg = eps
void run_group_norm(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);   // iarg = groups, silu; farg = eps
void run_unary(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);        // iarg[0] = sdc_unary_op
void run_binary(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);       // iarg[0] = sdc_binary_op
void run_scale(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);        // farg = factor
void run_geglu(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);
void run_embedding(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);   // table, ids; iarg[0] = rows
void run_upsample(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);
void run_concat(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);    // iarg[0] = dim
void run_permute(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);   // iarg = perm
void run_copy(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);
void run_pad2d(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);              // iarg = top, bottom, left, right
void run_slice(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);              // iarg = dim, start
void run_rms_norm(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);           // x, w; farg = eps
void run_rope(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);               // x, cos, sin; iarg[0] = heads
void run_add_gated(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);          // x, a, g
void run_layer_norm_mod(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);     // x, shift, scale; farg = eps
void run_attention_bias(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);     // q, k, v, bias; iarg[0] = heads;
                                                                                     // farg = scale
void run_group_norm_stats(const op_case *c, sdc_tensor *y, sdc_tensor *const *in);   // iarg[0] = groups
void run_group_norm_apply(const op_case *c, sdc_tensor *y,
                          sdc_tensor *const *in);   // x, stats, w, b; iarg = groups, silu

/* A host tensor: f32 values (I32 ids: their int bit patterns). */
typedef struct op_host {
    int ndim;
    int64_t ne[4];
    float *v;
    const void *raw;   // where the tensor is a block type: its blocks (v: their values); else unused
} op_host;

size_t op_host_n(const op_host *h);
/* Input i of c, fresh from seed (v malloc'd): N(0, 1) * scale + shift, or ids uniform in [0, iarg[0]) with
 * both ends of the table among them. */
op_host op_make_input(const op_case *c, int i, uint64_t seed);
/* The output's shape, v NULL. */
op_host op_out_shape(const op_case *c);
/* The sdc dtype of D_* dt when D_ACT tensors are in act. */
sdc_dtype op_dtype(int dt, sdc_dtype act);

typedef struct op_result {
    float *out;   // the output as f32 (malloc'd)
    double ms;
    size_t ws_peak;      // workspace above its start during the op
    int ws_left;         // workspace not back at its start after the op
    int leaked;          // memory counters not back at their start after the tensors are freed
    int misaligned;      // an input's data not 64-byte aligned
    sdc_status status;   // the backend's sticky status after the op (sdc_backend_sync)
} op_result;

/* One run of c on be with fresh tensors of the shapes of in[] and out (the shapes may differ from c's:
 * a subsampled reference), D_ACT tensors in act; the output starts as NaN, so an element the op leaves
 * unwritten shows. */
op_result op_run_on(sdc_backend *be, const op_case *c, const op_host *in, const op_host *out, sdc_dtype act);

/* The workspace be's query names for a linear or conv2d case c (its run) with f32 activations and the
 * weight in[1] in wdt, marked for a bf16 product when bf16 (the tensors hold no data). */
size_t op_weight_workspace(sdc_backend *be, const op_case *c, const op_host *in, const op_host *out, sdc_dtype wdt,
                           int bf16);

/* y aliasing x (unary, scale) or a (binary) gives the out-of-place result, in be's activation dtype:
 * three checks, their messages ending in tag. */
void op_check_in_place(sdc_backend *be, sdc_dtype dt, const char *tag);

#endif
