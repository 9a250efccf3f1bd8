/* ops.c - shape checks, then dispatch to the backend that owns the output. */
#include "backend/ops.h"

#include <assert.h>

#define BE(t) ((t)->backend)
#define SAME_BACKEND(a, b) assert((a)->backend == (b)->backend)

static int64_t last(const sdc_tensor *t) { return t->ne[t->ndim - 1]; }

void sdc_linear(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b) {
    assert(w->ndim == 2 && last(x) == w->ne[1] && last(y) == w->ne[0]);
    assert(sdc_tensor_rows(x) == sdc_tensor_rows(y));
    assert(!b || sdc_tensor_nelem(b) == w->ne[0]);
    SAME_BACKEND(y, x);
    SAME_BACKEND(y, w);
    BE(y)->iface->linear(BE(y), y, x, w, b);
}

void sdc_conv2d(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                int stride, int pad) {
    assert(x->ndim == 4 && w->ndim == 4 && y->ndim == 4 && stride >= 1 && pad >= 0);
    assert(w->ne[1] == x->ne[1] && y->ne[1] == w->ne[0] && y->ne[0] == x->ne[0]);
    assert(y->ne[2] == (x->ne[2] + 2 * pad - w->ne[2]) / stride + 1);
    assert(y->ne[3] == (x->ne[3] + 2 * pad - w->ne[3]) / stride + 1);
    assert(!b || sdc_tensor_nelem(b) == w->ne[0]);
    BE(y)->iface->conv2d(BE(y), y, x, w, b, stride, pad);
}

void sdc_attention(sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v,
                   int n_heads, int causal) {
    assert(q->ndim == 3 && k->ndim == 3 && v->ndim == 3 && sdc_tensor_same_shape(y, q));
    assert(sdc_tensor_same_shape(k, v) && k->ne[0] == q->ne[0] && k->ne[2] == q->ne[2]);
    assert(n_heads >= 1 && q->ne[2] % n_heads == 0);
    assert(!causal || k->ne[1] == q->ne[1]);
    BE(y)->iface->attention(BE(y), y, q, k, v, n_heads, causal);
}

void sdc_layer_norm(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                    float eps) {
    assert(sdc_tensor_same_shape(y, x) && sdc_tensor_nelem(w) == last(x) && sdc_tensor_nelem(b) == last(x));
    BE(y)->iface->layer_norm(BE(y), y, x, w, b, eps);
}

void sdc_group_norm(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                    int groups, float eps, int silu) {
    assert(sdc_tensor_same_shape(y, x) && x->ndim >= 2 && groups >= 1 && x->ne[1] % groups == 0);
    assert(sdc_tensor_nelem(w) == x->ne[1] && sdc_tensor_nelem(b) == x->ne[1]);
    BE(y)->iface->group_norm(BE(y), y, x, w, b, groups, eps, silu);
}

void sdc_unary(sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x) && (unsigned)op < SDC_UNARY_COUNT);
    BE(y)->iface->unary(BE(y), y, x, op);
}

void sdc_binary(sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op) {
    assert(sdc_tensor_same_shape(y, a) && a->ndim == b->ndim && (unsigned)op < SDC_BINARY_COUNT);
    for (int i = 0; i < a->ndim; i++) assert(b->ne[i] == a->ne[i] || b->ne[i] == 1);
    BE(y)->iface->binary(BE(y), y, a, b, op);
}

void sdc_scale(sdc_tensor *y, const sdc_tensor *x, float s) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x));
    BE(y)->iface->scale(BE(y), y, x, s);
}

void sdc_geglu(sdc_tensor *y, const sdc_tensor *x) {
    assert(sdc_tensor_rows(y) == sdc_tensor_rows(x) && 2 * last(y) == last(x));
    BE(y)->iface->geglu(BE(y), y, x);
}

void sdc_embedding(sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids) {
    assert(ids->dtype == SDC_DTYPE_I32 && table->ndim == 2 && last(y) == table->ne[1]);
    assert(sdc_tensor_rows(y) == sdc_tensor_nelem(ids));
    BE(y)->iface->embedding(BE(y), y, table, ids);
}

void sdc_upsample2x(sdc_tensor *y, const sdc_tensor *x) {
    assert(x->ndim == 4 && y->ndim == 4 && y->ne[0] == x->ne[0] && y->ne[1] == x->ne[1]);
    assert(y->ne[2] == 2 * x->ne[2] && y->ne[3] == 2 * x->ne[3]);
    BE(y)->iface->upsample2x(BE(y), y, x);
}

void sdc_concat(sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim) {
    assert(a->ndim == b->ndim && y->ndim == a->ndim && dim >= 0 && dim < a->ndim);
    for (int i = 0; i < a->ndim; i++)
        assert(i == dim ? y->ne[i] == a->ne[i] + b->ne[i] : (a->ne[i] == b->ne[i] && y->ne[i] == a->ne[i]));
    BE(y)->iface->concat(BE(y), y, a, b, dim);
}

void sdc_permute(sdc_tensor *y, const sdc_tensor *x, const int perm[4]) {
    assert(y->ndim == 4 && x->ndim == 4);
    for (int i = 0; i < 4; i++) assert(y->ne[i] == x->ne[perm[i]]);
    BE(y)->iface->permute(BE(y), y, x, perm);
}

void sdc_copy(sdc_tensor *y, const sdc_tensor *x) {
    assert(sdc_tensor_nelem(y) == sdc_tensor_nelem(x));
    BE(y)->iface->copy(BE(y), y, x);
}

void sdc_pad2d(sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left, int right) {
    assert(x->ndim == 4 && y->ndim == 4 && top >= 0 && bottom >= 0 && left >= 0 && right >= 0);
    assert(y->ne[0] == x->ne[0] && y->ne[1] == x->ne[1]);
    assert(y->ne[2] == x->ne[2] + top + bottom && y->ne[3] == x->ne[3] + left + right);
    BE(y)->iface->pad2d(BE(y), y, x, top, bottom, left, right);
}

void sdc_slice(sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start) {
    assert(y->ndim == x->ndim && dim >= 0 && dim < x->ndim && start >= 0);
    for (int i = 0; i < x->ndim; i++)
        assert(i == dim ? start + y->ne[i] <= x->ne[i] : y->ne[i] == x->ne[i]);
    BE(y)->iface->slice(BE(y), y, x, dim, start);
}
