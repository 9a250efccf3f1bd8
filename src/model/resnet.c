/* resnet.c - ResnetBlock2D forward: see resnet.h. */
#include "model/resnet.h"

#include <assert.h>

#include "backend/ops.h"

static sdc_tensor *get(sdc_weight_set *ws, const char *prefix, const char *name, int ndim, const int64_t *ne) {
    return sdc_weights_get(ws, ndim, ne, "%s%s", prefix, name);
}

static sdc_tensor *mat(sdc_weight_set *ws, const char *prefix, const char *name, int ndim, const int64_t *ne) {
    return sdc_weights_matrix(ws, ndim, ne, "%s%s", prefix, name);
}

void sdc_resnet_load(sdc_resnet *r, sdc_weight_set *ws, const char *prefix, int in_ch, int out_ch, int temb_dim,
                     int groups, float eps) {
    const int64_t ci = in_ch, co = out_ch;
    *r = (sdc_resnet){.in_ch = in_ch, .out_ch = out_ch, .temb_dim = temb_dim, .groups = groups, .eps = eps};
    r->norm1_w = get(ws, prefix, "norm1.weight", 1, (int64_t[]){ci});
    r->norm1_b = get(ws, prefix, "norm1.bias", 1, (int64_t[]){ci});
    r->conv1_w = mat(ws, prefix, "conv1.weight", 4, (int64_t[]){co, ci, 3, 3});
    r->conv1_b = get(ws, prefix, "conv1.bias", 1, (int64_t[]){co});
    if (temb_dim > 0) {
        r->temb_w = mat(ws, prefix, "time_emb_proj.weight", 2, (int64_t[]){co, temb_dim});
        r->temb_b = get(ws, prefix, "time_emb_proj.bias", 1, (int64_t[]){co});
    }
    r->norm2_w = get(ws, prefix, "norm2.weight", 1, (int64_t[]){co});
    r->norm2_b = get(ws, prefix, "norm2.bias", 1, (int64_t[]){co});
    r->conv2_w = mat(ws, prefix, "conv2.weight", 4, (int64_t[]){co, co, 3, 3});
    r->conv2_b = get(ws, prefix, "conv2.bias", 1, (int64_t[]){co});
    if (in_ch != out_ch) {
        r->short_w = mat(ws, prefix, "conv_shortcut.weight", 4, (int64_t[]){co, ci, 1, 1});
        r->short_b = get(ws, prefix, "conv_shortcut.bias", 1, (int64_t[]){co});
    }
}

sdc_tensor *sdc_resnet_forward(const sdc_resnet *r, const sdc_tensor *x, const sdc_tensor *temb_act) {
    const int64_t B = x->ne[0], H = x->ne[2], W = x->ne[3];
    const int64_t xo[4] = {B, r->out_ch, H, W};
    sdc_tensor *a = NULL, *h = NULL, *t = NULL, *y = NULL, *s = NULL;

    // h = conv1(silu(norm1(x)))  [B, Co, H, W]
    if (!(a = sdc_act_like(x, 4, x->ne))) goto oom;
    sdc_group_norm(a, x, r->norm1_w, r->norm1_b, r->groups, r->eps, 1);
    if (!(h = sdc_act_like(x, 4, xo))) goto oom;
    sdc_conv2d(h, a, r->conv1_w, r->conv1_b, 1, 1);
    sdc_tensor_free(a);
    a = NULL;

    assert((r->temb_w != NULL) == (temb_act != NULL));
    if (temb_act) {
        // h += time_emb_proj(temb_act)[:, :, None, None]
        if (!(t = sdc_act_like(x, 2, (int64_t[]){B, r->out_ch}))) goto oom;
        sdc_linear(t, temb_act, r->temb_w, r->temb_b);
        sdc_tensor t4 = sdc_tensor_view(t, 4, (int64_t[]){B, r->out_ch, 1, 1});
        sdc_binary(h, h, &t4, SDC_BINARY_ADD);
        sdc_tensor_free(t);
        t = NULL;
    }

    // y = conv2(silu(norm2(h)))
    if (!(a = sdc_act_like(x, 4, xo))) goto oom;
    sdc_group_norm(a, h, r->norm2_w, r->norm2_b, r->groups, r->eps, 1);
    sdc_tensor_free(h);
    h = NULL;
    if (!(y = sdc_act_like(x, 4, xo))) goto oom;
    sdc_conv2d(y, a, r->conv2_w, r->conv2_b, 1, 1);
    sdc_tensor_free(a);
    a = NULL;

    // y += shortcut(x)
    if (r->short_w) {
        if (!(s = sdc_act_like(x, 4, xo))) goto oom;
        sdc_conv2d(s, x, r->short_w, r->short_b, 1, 0);
        sdc_binary(y, y, s, SDC_BINARY_ADD);
        sdc_tensor_free(s);
    } else {
        sdc_binary(y, y, x, SDC_BINARY_ADD);
    }
    return y;

oom:
    sdc_tensor_free(a);
    sdc_tensor_free(h);
    sdc_tensor_free(t);
    sdc_tensor_free(y);
    return NULL;
}
