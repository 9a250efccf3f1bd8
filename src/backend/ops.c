/* ops.c - the wrappers of ops.h: a shape check per op (check_<name>), then one dispatch for all of
 * them, generated from SDC_BACKEND_OPS. */
#include "backend/ops.h"

#include "core/sysmem.h"

#include <assert.h>

#define SAME_BACKEND(a, b) assert((a)->backend == (b)->backend)

static int64_t last(const sdc_tensor *t) { return t->ne[t->ndim - 1]; }

const char *sdc_op_family_name(sdc_op_family f) {
    static const char *const names[] = {"linear", "conv", "attention", "norm", "elementwise", "data"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == SDC_OPF_COUNT, "op family names");
    return (unsigned)f < SDC_OPF_COUNT ? names[f] : "?";
}

/* w may be block-quantized (rows of whole blocks, as sdc_tensor_new makes them) where the backend's
 * weight_dtype keeps it so; the backend's linear checks the dtypes it takes */
static double check_linear(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b) {
    assert(w->ndim == 2 && last(x) == w->ne[1] && last(y) == w->ne[0]);
    assert(sdc_tensor_rows(x) == sdc_tensor_rows(y));
    assert(!b || sdc_tensor_nelem(b) == w->ne[0]);
    SAME_BACKEND(y, x);
    SAME_BACKEND(y, w);
    return 2.0 * (double)sdc_tensor_nelem(y) * (double)last(x);
}

static double check_linear_act(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                               sdc_unary_op act) {
    assert((unsigned)act < SDC_UNARY_COUNT);
    return check_linear(y, x, w, b);
}

static double check_conv2d(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                           int stride, int pad) {
    assert(x->ndim == 4 && w->ndim == 4 && y->ndim == 4 && stride >= 1 && pad >= 0);
    assert(w->ne[1] == x->ne[1] && y->ne[1] == w->ne[0] && y->ne[0] == x->ne[0]);
    assert(y->ne[2] == (x->ne[2] + 2 * pad - w->ne[2]) / stride + 1);
    assert(y->ne[3] == (x->ne[3] + 2 * pad - w->ne[3]) / stride + 1);
    assert(!b || sdc_tensor_nelem(b) == w->ne[0]);
    return 2.0 * (double)sdc_tensor_nelem(y) * (double)(w->ne[1] * w->ne[2] * w->ne[3]);
}

static double check_attention(const sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v,
                              int n_heads, int causal) {
    assert(q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && sdc_tensor_same_shape(y, q));
    assert(sdc_tensor_same_shape(k, v) && k->ne[0] == q->ne[0] && k->ne[2] == q->ne[2]);
    assert(n_heads >= 1 && q->ne[2] % n_heads == 0);
    assert(!causal || k->ne[1] == q->ne[1]);
    /* q k^T and p v: 2 T S D multiply-adds per head; a causal mask skips about half */
    return (causal ? 2.0 : 4.0) * (double)sdc_tensor_nelem(q) * (double)k->ne[1];
}

static double check_layer_norm(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                               float eps) {
    assert(sdc_tensor_same_shape(y, x) && sdc_tensor_nelem(w) == last(x) && sdc_tensor_nelem(b) == last(x));
    return 0;
}

static double check_group_norm(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                               int groups, float eps, int silu) {
    assert(sdc_tensor_same_shape(y, x) && x->ndim >= 2 && groups >= 1 && x->ne[1] % groups == 0);
    assert(sdc_tensor_nelem(w) == x->ne[1] && sdc_tensor_nelem(b) == x->ne[1]);
    return 0;
}

static double check_unary(const sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x) && (unsigned)op < SDC_UNARY_COUNT);
    return 0;
}

static double check_binary(const sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op) {
    assert(sdc_tensor_same_shape(y, a) && a->ndim == b->ndim && (unsigned)op < SDC_BINARY_COUNT);
    for (int i = 0; i < a->ndim; i++) assert(b->ne[i] == a->ne[i] || b->ne[i] == 1);
    return 0;
}

static double check_scale(const sdc_tensor *y, const sdc_tensor *x, float s) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x));
    return 0;
}

static double check_geglu(const sdc_tensor *y, const sdc_tensor *x) {
    assert(sdc_tensor_rows(y) == sdc_tensor_rows(x) && 2 * last(y) == last(x));
    return 0;
}

static double check_embedding(const sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids) {
    assert(ids->dtype == SDC_DTYPE_I32 && table->ndim == 2 && last(y) == table->ne[1]);
    assert(sdc_tensor_rows(y) == sdc_tensor_nelem(ids));
    return 0;
}

static double check_upsample2x(const sdc_tensor *y, const sdc_tensor *x) {
    assert(x->ndim == 4 && y->ndim == 4 && y->ne[0] == x->ne[0] && y->ne[1] == x->ne[1]);
    assert(y->ne[2] == 2 * x->ne[2] && y->ne[3] == 2 * x->ne[3]);
    return 0;
}

static double check_concat(const sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim) {
    assert(a->ndim == b->ndim && y->ndim == a->ndim && dim >= 0 && dim < a->ndim);
    for (int i = 0; i < a->ndim; i++)
        assert(i == dim ? y->ne[i] == a->ne[i] + b->ne[i] : (a->ne[i] == b->ne[i] && y->ne[i] == a->ne[i]));
    return 0;
}

static double check_permute(const sdc_tensor *y, const sdc_tensor *x, const int perm[4]) {
    assert(y->ndim == 4 && x->ndim == 4);
    for (int i = 0; i < 4; i++) assert(y->ne[i] == x->ne[perm[i]]);
    return 0;
}

/* a block-type x (rows of whole blocks: a quantized weight) is dequantized into a float y */
static double check_copy(const sdc_tensor *y, const sdc_tensor *x) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x));
    assert(!sdc_dtype_is_quant(x->dtype) || y->dtype == SDC_DTYPE_F32 || y->dtype == SDC_DTYPE_F16 ||
           y->dtype == SDC_DTYPE_BF16);
    return 0;
}

static double check_pad2d(const sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left, int right) {
    assert(x->ndim == 4 && y->ndim == 4 && top >= 0 && bottom >= 0 && left >= 0 && right >= 0);
    assert(y->ne[0] == x->ne[0] && y->ne[1] == x->ne[1]);
    assert(y->ne[2] == x->ne[2] + top + bottom && y->ne[3] == x->ne[3] + left + right);
    return 0;
}

static double check_slice(const sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start) {
    assert(y->ndim == x->ndim && dim >= 0 && dim < x->ndim && start >= 0);
    for (int i = 0; i < x->ndim; i++) assert(i == dim ? start + y->ne[i] <= x->ne[i] : y->ne[i] == x->ne[i]);
    return 0;
}

static double check_rms_norm(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, float eps) {
    assert(sdc_tensor_same_shape(y, x) && x->ndim >= 1 && sdc_tensor_nelem(w) == last(x) && eps >= 0.0f);
    SAME_BACKEND(y, x);
    SAME_BACKEND(y, w);
    return 0;
}

static double check_rope(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *cs, const sdc_tensor *sn,
                         int n_heads) {
    assert(x->ndim == 3 && sdc_tensor_same_shape(y, x) && n_heads >= 1 && x->ne[2] % (2 * n_heads) == 0);
    assert(cs->dtype == SDC_DTYPE_F32 && sn->dtype == SDC_DTYPE_F32);
    assert(cs->ndim == 2 && sdc_tensor_same_shape(cs, sn));
    assert(cs->ne[0] == x->ne[1] && cs->ne[1] == x->ne[2] / n_heads / 2);
    SAME_BACKEND(y, cs);
    SAME_BACKEND(y, sn);
    return 0;
}

static double check_layer_norm_mod(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *shift,
                                   const sdc_tensor *scale, float eps) {
    assert(x->ndim == 3 && sdc_tensor_same_shape(y, x));
    assert(shift->ndim == 2 && sdc_tensor_same_shape(shift, scale));
    assert(shift->ne[0] == x->ne[0] && shift->ne[1] == x->ne[2]);
    assert(shift->dtype == x->dtype && scale->dtype == x->dtype);
    return 0;
}

static double check_add_gated(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *a, const sdc_tensor *g) {
    assert(x->ndim == 3 && sdc_tensor_same_shape(y, x) && sdc_tensor_same_shape(a, x));
    assert(g->ndim == 2 && g->ne[0] == x->ne[0] && g->ne[1] == x->ne[2]);
    assert(a->dtype == x->dtype && g->dtype == x->dtype);
    SAME_BACKEND(y, a);
    SAME_BACKEND(y, g);
    return 0;
}

static double check_attention_bias(const sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v,
                                   const sdc_tensor *bias, int n_heads, float scale) {
    (void)check_attention(y, q, k, v, n_heads, 0);
    assert(bias->ndim == 3 && bias->ne[0] == n_heads && bias->ne[1] == q->ne[1] && bias->ne[2] == k->ne[1]);
    assert(q->dtype == k->dtype && q->dtype == v->dtype && q->dtype == bias->dtype && q->dtype == y->dtype);
    SAME_BACKEND(y, q);
    SAME_BACKEND(y, bias);
    return 4.0 * (double)sdc_tensor_nelem(q) * (double)k->ne[1];
}

static double check_group_norm_stats(const sdc_tensor *y, const sdc_tensor *x, int groups) {
    assert(x->ndim >= 2 && groups >= 1 && x->ne[1] % groups == 0 && y->dtype == SDC_DTYPE_F32);
    assert(y->ndim == 3 && y->ne[0] == x->ne[0] && y->ne[1] == groups && y->ne[2] == 4);
    SAME_BACKEND(y, x);
    return 0;
}

static double check_group_norm_apply(const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *stats,
                                     const sdc_tensor *w, const sdc_tensor *b, int groups, int silu) {
    assert(sdc_tensor_same_shape(y, x) && x->ndim >= 2 && groups >= 1 && x->ne[1] % groups == 0);
    assert(y->dtype == x->dtype && w->dtype == x->dtype && b->dtype == x->dtype);
    assert(sdc_tensor_nelem(w) == x->ne[1] && sdc_tensor_nelem(b) == x->ne[1]);
    assert(stats->dtype == SDC_DTYPE_F32 && stats->ndim == 3 && stats->ne[0] == x->ne[0]);
    assert(stats->ne[1] == groups && stats->ne[2] == 2);
    SAME_BACKEND(y, x);
    SAME_BACKEND(y, stats);
    return 0;
}

/* sdc_<name>: the check, then the backend's slot unless its status is set. With profiling on, the op
 * is synchronised before and after and its time and work (the check's FLOP count: 2 per multiply-add of
 * the linear, convolution and attention products, 0 for the other ops) added to its family (which slows
 * the run: profile to see where time goes, not to time the whole). */
#define SDC_OP_WRAPPER_(name, family, params, args)             \
    void sdc_##name(sdc_tensor *y, SDC_UNPAREN params) {        \
        const double flops = check_##name(y, SDC_UNPAREN args); \
        sdc_backend *be = y->backend;                           \
        if (be->status != SDC_OK) return;                       \
        if (!be->profile) {                                     \
            be->iface->name(be, y, SDC_UNPAREN args);           \
            return;                                             \
        }                                                       \
        if (be->iface->synchronize) be->iface->synchronize(be); \
        const double t0 = sdc_now();                            \
        be->iface->name(be, y, SDC_UNPAREN args);               \
        if (be->iface->synchronize) be->iface->synchronize(be); \
        be->profile->seconds[family] += sdc_now() - t0;         \
        be->profile->calls[family]++;                           \
        be->profile->flops[family] += flops;                    \
    }
SDC_BACKEND_OPS(SDC_OP_WRAPPER_)
