/* ops.c - shape checks, then dispatch to the backend that owns the output. */
#include "backend/ops.h"

#include "core/sysmem.h"

#include <assert.h>

#define BE(t) ((t)->backend)
#define SAME_BACKEND(a, b) assert((a)->backend == (b)->backend)

static int64_t last(const sdc_tensor *t) { return t->ne[t->ndim - 1]; }

/* Calls the backend's slot; with profiling on, synchronises around it and adds the time to the op's
 * family (which slows the run: profile to see where time goes, not to time the whole). */
#define DISPATCH(y, family, slot, ...)                                                                      \
    do {                                                                                                     \
        sdc_backend *be_ = BE(y);                                                                            \
        if (!be_->profile) {                                                                                 \
            be_->iface->slot(be_, __VA_ARGS__);                                                              \
            break;                                                                                           \
        }                                                                                                    \
        if (be_->iface->synchronize) be_->iface->synchronize(be_);                                           \
        double t0_ = sdc_now();                                                                      \
        be_->iface->slot(be_, __VA_ARGS__);                                                                  \
        if (be_->iface->synchronize) be_->iface->synchronize(be_);                                           \
        be_->profile->seconds[family] += sdc_now() - t0_;                                            \
        be_->profile->calls[family]++;                                                                       \
    } while (0)

const char *sdc_op_family_name(sdc_op_family f) {
    static const char *const names[] = {"linear", "conv", "attention", "norm", "elementwise", "data"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == SDC_OPF_COUNT, "op family names");
    return (unsigned)f < SDC_OPF_COUNT ? names[f] : "?";
}

void sdc_linear(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b) {
    assert(w->ndim == 2 && last(x) == w->ne[1] && last(y) == w->ne[0]);
    assert(sdc_tensor_rows(x) == sdc_tensor_rows(y));
    assert(!b || sdc_tensor_nelem(b) == w->ne[0]);
    SAME_BACKEND(y, x);
    SAME_BACKEND(y, w);
    DISPATCH(y, SDC_OPF_LINEAR, linear, y, x, w, b);
}

void sdc_conv2d(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                int stride, int pad) {
    assert(x->ndim == 4 && w->ndim == 4 && y->ndim == 4 && stride >= 1 && pad >= 0);
    assert(w->ne[1] == x->ne[1] && y->ne[1] == w->ne[0] && y->ne[0] == x->ne[0]);
    assert(y->ne[2] == (x->ne[2] + 2 * pad - w->ne[2]) / stride + 1);
    assert(y->ne[3] == (x->ne[3] + 2 * pad - w->ne[3]) / stride + 1);
    assert(!b || sdc_tensor_nelem(b) == w->ne[0]);
    DISPATCH(y, SDC_OPF_CONV, conv2d, y, x, w, b, stride, pad);
}

void sdc_attention(sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v,
                   int n_heads, int causal) {
    assert(q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && sdc_tensor_same_shape(y, q));
    assert(sdc_tensor_same_shape(k, v) && k->ne[0] == q->ne[0] && k->ne[2] == q->ne[2]);
    assert(n_heads >= 1 && q->ne[2] % n_heads == 0);
    assert(!causal || k->ne[1] == q->ne[1]);
    DISPATCH(y, SDC_OPF_ATTENTION, attention, y, q, k, v, n_heads, causal);
}

void sdc_layer_norm(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                    float eps) {
    assert(sdc_tensor_same_shape(y, x) && sdc_tensor_nelem(w) == last(x) && sdc_tensor_nelem(b) == last(x));
    DISPATCH(y, SDC_OPF_NORM, layer_norm, y, x, w, b, eps);
}

void sdc_group_norm(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                    int groups, float eps, int silu) {
    assert(sdc_tensor_same_shape(y, x) && x->ndim >= 2 && groups >= 1 && x->ne[1] % groups == 0);
    assert(sdc_tensor_nelem(w) == x->ne[1] && sdc_tensor_nelem(b) == x->ne[1]);
    DISPATCH(y, SDC_OPF_NORM, group_norm, y, x, w, b, groups, eps, silu);
}

void sdc_unary(sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x) && (unsigned)op < SDC_UNARY_COUNT);
    DISPATCH(y, SDC_OPF_ELEMENTWISE, unary, y, x, op);
}

void sdc_binary(sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op) {
    assert(sdc_tensor_same_shape(y, a) && a->ndim == b->ndim && (unsigned)op < SDC_BINARY_COUNT);
    for (int i = 0; i < a->ndim; i++) assert(b->ne[i] == a->ne[i] || b->ne[i] == 1);
    DISPATCH(y, SDC_OPF_ELEMENTWISE, binary, y, a, b, op);
}

void sdc_scale(sdc_tensor *y, const sdc_tensor *x, float s) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x));
    DISPATCH(y, SDC_OPF_ELEMENTWISE, scale, y, x, s);
}

void sdc_geglu(sdc_tensor *y, const sdc_tensor *x) {
    assert(sdc_tensor_rows(y) == sdc_tensor_rows(x) && 2 * last(y) == last(x));
    DISPATCH(y, SDC_OPF_ELEMENTWISE, geglu, y, x);
}

void sdc_embedding(sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids) {
    assert(ids->dtype == SDC_DTYPE_I32 && table->ndim == 2 && last(y) == table->ne[1]);
    assert(sdc_tensor_rows(y) == sdc_tensor_nelem(ids));
    DISPATCH(y, SDC_OPF_DATA, embedding, y, table, ids);
}

void sdc_upsample2x(sdc_tensor *y, const sdc_tensor *x) {
    assert(x->ndim == 4 && y->ndim == 4 && y->ne[0] == x->ne[0] && y->ne[1] == x->ne[1]);
    assert(y->ne[2] == 2 * x->ne[2] && y->ne[3] == 2 * x->ne[3]);
    DISPATCH(y, SDC_OPF_DATA, upsample2x, y, x);
}

void sdc_concat(sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim) {
    assert(a->ndim == b->ndim && y->ndim == a->ndim && dim >= 0 && dim < a->ndim);
    for (int i = 0; i < a->ndim; i++)
        assert(i == dim ? y->ne[i] == a->ne[i] + b->ne[i] : (a->ne[i] == b->ne[i] && y->ne[i] == a->ne[i]));
    DISPATCH(y, SDC_OPF_DATA, concat, y, a, b, dim);
}

void sdc_permute(sdc_tensor *y, const sdc_tensor *x, const int perm[4]) {
    assert(y->ndim == 4 && x->ndim == 4);
    for (int i = 0; i < 4; i++) assert(y->ne[i] == x->ne[perm[i]]);
    DISPATCH(y, SDC_OPF_DATA, permute, y, x, perm);
}

void sdc_copy(sdc_tensor *y, const sdc_tensor *x) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x));
    DISPATCH(y, SDC_OPF_DATA, copy, y, x);
}

void sdc_pad2d(sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left, int right) {
    assert(x->ndim == 4 && y->ndim == 4 && top >= 0 && bottom >= 0 && left >= 0 && right >= 0);
    assert(y->ne[0] == x->ne[0] && y->ne[1] == x->ne[1]);
    assert(y->ne[2] == x->ne[2] + top + bottom && y->ne[3] == x->ne[3] + left + right);
    DISPATCH(y, SDC_OPF_DATA, pad2d, y, x, top, bottom, left, right);
}

void sdc_slice(sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start) {
    assert(y->ndim == x->ndim && dim >= 0 && dim < x->ndim && start >= 0);
    for (int i = 0; i < x->ndim; i++)
        assert(i == dim ? start + y->ne[i] <= x->ne[i] : y->ne[i] == x->ne[i]);
    DISPATCH(y, SDC_OPF_DATA, slice, y, x, dim, start);
}
