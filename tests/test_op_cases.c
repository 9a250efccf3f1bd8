/* test_op_cases.c - the op-case machinery shared by test_ops.c and test_cuda_ops.c. */
#include "test_op_cases.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "test_util.h"

/* --- how each op is called --- */
void run_linear(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_linear(y, in[0], in[1], c->n_in > 2 ? in[2] : NULL);
}
void run_linear_act(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_linear_act(y, in[0], in[1], c->n_in > 2 ? in[2] : NULL, (sdc_unary_op)c->iarg[0]);
}
void run_conv(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_conv2d(y, in[0], in[1], c->n_in > 2 ? in[2] : NULL, c->iarg[0], c->iarg[1]);
}
void run_attention(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_attention(y, in[0], in[1], in[2], c->iarg[0], c->iarg[1]);
}
void run_layer_norm(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_layer_norm(y, in[0], in[1], in[2], c->farg);
}
void run_group_norm(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_group_norm(y, in[0], in[1], in[2], c->iarg[0], c->farg, c->iarg[1]);
}
void run_group_norm_stats(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_group_norm_stats(y, in[0], c->iarg[0]);
}
void run_group_norm_apply(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_group_norm_apply(y, in[0], in[1], in[2], in[3], c->iarg[0], c->iarg[1]);
}
void run_unary(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_unary(y, in[0], (sdc_unary_op)c->iarg[0]);
}
void run_binary(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_binary(y, in[0], in[1], (sdc_binary_op)c->iarg[0]);
}
void run_scale(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_scale(y, in[0], c->farg); }
void run_geglu(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_geglu(y, in[0]); }
void run_embedding(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_embedding(y, in[0], in[1]); }
void run_upsample(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_upsample2x(y, in[0]); }
void run_concat(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_concat(y, in[0], in[1], c->iarg[0]); }
void run_permute(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_permute(y, in[0], c->iarg); }
void run_copy(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_copy(y, in[0]); }
void run_pad2d(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_pad2d(y, in[0], c->iarg[0], c->iarg[1], c->iarg[2], c->iarg[3]);
}
void run_slice(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_slice(y, in[0], c->iarg[0], c->iarg[1]); }
void run_rms_norm(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_rms_norm(y, in[0], in[1], c->farg); }
void run_rope(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_rope(y, in[0], in[1], in[2], c->iarg[0]); }
void run_add_gated(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) { sdc_add_gated(y, in[0], in[1], in[2]); }
void run_layer_norm_mod(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_layer_norm_mod(y, in[0], in[1], in[2], c->farg);
}
void run_attention_bias(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    sdc_attention_bias(y, in[0], in[1], in[2], in[3], c->iarg[0], c->farg);
}

/* --- host tensors --- */

size_t op_host_n(const op_host *h) {
    size_t n = 1;
    for (int i = 0; i < h->ndim; i++) n *= (size_t)h->ne[i];
    return n;
}

op_host op_make_input(const op_case *c, int i, uint64_t seed) {
    const tspec *s = &c->in[i];
    op_host h = {s->ndim, {s->ne[0], s->ne[1], s->ne[2], s->ne[3]}, NULL, NULL};
    const size_t n = op_host_n(&h);
    h.v = malloc(n * sizeof(float));
    if (s->dt == D_I32) {
        int32_t *id = (int32_t *)h.v;
        float *u = malloc(n * sizeof(float));
        test_fill_uniform(u, n, seed, 0.0f, (float)c->iarg[0]);
        for (size_t k = 0; k < n; k++) id[k] = (int32_t)u[k] >= c->iarg[0] ? c->iarg[0] - 1 : (int32_t)u[k];
        id[0] = 0;   // both ends of the table
        if (n > 1) id[1] = c->iarg[0] - 1;
        free(u);
        return h;
    }
    test_fill_normal(h.v, n, seed, s->scale);
    for (size_t k = 0; k < n; k++) h.v[k] += s->shift;
    return h;
}

op_host op_out_shape(const op_case *c) {
    return (op_host){c->out.ndim, {c->out.ne[0], c->out.ne[1], c->out.ne[2], c->out.ne[3]}, NULL, NULL};
}

sdc_dtype op_dtype(int dt, sdc_dtype act) {
    return dt == D_ACT ? act
        : dt == D_F32  ? SDC_DTYPE_F32
        : dt == D_F16  ? SDC_DTYPE_F16
        : dt == D_BF16 ? SDC_DTYPE_BF16
        : dt == D_Q4_0 ? SDC_DTYPE_Q4_0
        : dt == D_Q8_0 ? SDC_DTYPE_Q8_0
        : dt == D_Q4_K ? SDC_DTYPE_Q4_K
                       : SDC_DTYPE_I32;
}

/* t = h's values (I32: their bit patterns; a block type: h's blocks) */
static void set_input(sdc_tensor *t, int dt, const op_host *h) {
    if (sdc_dtype_is_quant(t->dtype)) {
        assert(h->raw);
        sdc_tensor_set_raw(t, h->raw);
    } else if (dt == D_I32) {
        sdc_tensor_set_raw(t, h->v);
    } else {
        sdc_tensor_set_f32(t, h->v);
    }
}

/* --- one run --- */

op_result op_run_on(sdc_backend *be, const op_case *c, const op_host *in, const op_host *out, sdc_dtype act) {
    op_result r = {0};
    const sdc_mem_stats before = be->stats;
    sdc_tensor *t[OP_MAX_IN] = {0};
    for (int i = 0; i < c->n_in; i++) {
        const sdc_dtype dt = op_dtype(c->in[i].dt, act);   // a block type is only ever a weight
        t[i] = sdc_tensor_new(be, sdc_dtype_is_quant(dt) ? SDC_MEM_WEIGHTS : SDC_MEM_ACTIVATIONS, dt, in[i].ndim,
                              in[i].ne);
        set_input(t[i], c->in[i].dt, &in[i]);
        r.misaligned |= (uintptr_t)t[i]->data % 64 != 0;
    }
    sdc_tensor *y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, op_dtype(c->out.dt, act), out->ndim, out->ne);
    void *nan = malloc(y->nbytes);
    memset(nan, 0xFF, y->nbytes);   // NaN in f16 and f32
    sdc_tensor_set_raw(y, nan);
    free(nan);
    be->iface->synchronize(be);
    sdc_mem_stats_reset_peak(&be->stats);
    const size_t ws0 = be->stats.cur[SDC_MEM_WORKSPACE];
    double t0 = test_now();
    c->run(c, y, t);
    r.status = sdc_backend_sync(be);
    r.ms = (test_now() - t0) * 1e3;
    r.ws_peak = be->stats.peak[SDC_MEM_WORKSPACE] - ws0;
    r.ws_left = be->stats.cur[SDC_MEM_WORKSPACE] != ws0;
    r.out = malloc(op_host_n(out) * sizeof(float));
    sdc_tensor_get_f32(y, r.out);
    sdc_tensor_free(y);
    for (int i = 0; i < c->n_in; i++) sdc_tensor_free(t[i]);
    r.leaked = be->stats.cur_total != before.cur_total;
    for (int k = 0; k < SDC_MEM_KIND_COUNT; k++) r.leaked |= be->stats.cur[k] != before.cur[k];
    return r;
}

size_t op_weight_workspace(sdc_backend *be, const op_case *c, const op_host *in, const op_host *out, sdc_dtype wdt,
                           int bf16) {
    sdc_tensor x = {.dtype = SDC_DTYPE_F32, .ndim = in[0].ndim}, y = {.dtype = SDC_DTYPE_F32, .ndim = out->ndim};
    sdc_tensor w = {.dtype = wdt, .ndim = in[1].ndim, .matmul_bf16 = bf16};
    for (int i = 0; i < 4; i++) {
        x.ne[i] = in[0].ne[i];
        w.ne[i] = in[1].ne[i];
        y.ne[i] = out->ne[i];
    }
    return c->run == run_linear ? be->iface->linear_workspace(be, &y, &x, &w)
                                : be->iface->conv2d_workspace(be, &y, &x, &w, c->iarg[0], c->iarg[1]);
}

void op_check_in_place(sdc_backend *be, sdc_dtype dt, const char *tag) {
    const int64_t ne[4] = {2, 320, 8, 8}, ne_b[4] = {2, 320, 1, 1};
    const size_t n = 2 * 320 * 8 * 8;
    /* hb: b's 640 values, then (from 0) the rope tables' 2 x 2560 */
    float *h = malloc(n * sizeof(float)), *hb = malloc(2 * 2560 * sizeof(float));
    float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
    test_fill_normal(h, n, 901, 2.0f);
    test_fill_normal(hb, 2 * 2560, 902, 1.0f);
    sdc_tensor *x = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, ne);
    sdc_tensor *y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, ne);
    sdc_tensor *b = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 4, ne_b);
    /* rope: x and y seen as [2, 320, 64] in 4 heads of 16, tables [320, 8] (b's values, in f32) */
    sdc_tensor *tc = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, (int64_t[]){320, 8});
    sdc_tensor *ts = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, (int64_t[]){320, 8});
    sdc_tensor_set_f32(b, hb);
    sdc_tensor_set_f32(tc, hb);
    sdc_tensor_set_f32(ts, hb + 2560);
    sdc_tensor x3 = sdc_tensor_view(x, 3, (int64_t[]){2, 320, 64}), y3 = sdc_tensor_view(y, 3, (int64_t[]){2, 320, 64});
    static const char *const names[] = {"unary", "binary", "scale", "rope"};
    for (int k = 0; k < 4; k++) {
        sdc_tensor_set_f32(x, h);
        if (k == 0) sdc_unary(y, x, SDC_UNARY_SILU), sdc_unary(x, x, SDC_UNARY_SILU);
        if (k == 1) sdc_binary(y, x, b, SDC_BINARY_MUL), sdc_binary(x, x, b, SDC_BINARY_MUL);
        if (k == 2) sdc_scale(y, x, -0.5f), sdc_scale(x, x, -0.5f);
        if (k == 3) sdc_rope(&y3, &x3, tc, ts, 4), sdc_rope(&x3, &x3, tc, ts, 4);
        sdc_tensor_get_f32(y, want);
        sdc_tensor_get_f32(x, got);
        test_check(memcmp(want, got, n * sizeof(float)) == 0, "in place %s equals out of place%s", names[k], tag);
    }
    sdc_tensor_free(x);
    sdc_tensor_free(y);
    sdc_tensor_free(b);
    sdc_tensor_free(tc);
    sdc_tensor_free(ts);
    free(h), free(hb), free(want), free(got);
}
