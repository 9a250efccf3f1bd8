/* unet_transformer.c - Transformer2DModel / BasicTransformerBlock forward: see unet_transformer.h. */
#include "model/unet_transformer.h"

#include <stdio.h>
#include <stdlib.h>

#include "backend/ops.h"

static void load_attention(sdc_unet_attention *a, sdc_weight_set *ws, const char *prefix, int C, int kv_dim) {
    a->q = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sto_q.weight", prefix);
    a->k = sdc_weights_matrix(ws, 2, (int64_t[]){C, kv_dim}, "%sto_k.weight", prefix);
    a->v = sdc_weights_matrix(ws, 2, (int64_t[]){C, kv_dim}, "%sto_v.weight", prefix);
    a->out_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sto_out.0.weight", prefix);
    a->out_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sto_out.0.bias", prefix);
}

void sdc_unet_transformer_load(sdc_unet_transformer *t, sdc_weight_set *ws, const char *prefix, int channels, int heads,
                               int n_layers, int ctx_dim, int groups, int upcast_attention) {
    const int64_t C = channels;
    char p[256];
    *t = (sdc_unet_transformer){.channels = channels,
                                .heads = heads,
                                .n_layers = n_layers,
                                .groups = groups,
                                .upcast_attention = upcast_attention};
    t->norm_w = sdc_weights_get(ws, 1, (int64_t[]){C}, "%snorm.weight", prefix);
    t->norm_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%snorm.bias", prefix);
    t->proj_in_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sproj_in.weight", prefix);
    t->proj_in_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sproj_in.bias", prefix);
    t->proj_out_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sproj_out.weight", prefix);
    t->proj_out_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sproj_out.bias", prefix);
    t->blocks = calloc((size_t)n_layers, sizeof *t->blocks);
    if (!t->blocks) {
        if (ws->status == SDC_OK) ws->status = SDC_ERR_OOM;
        return;
    }
    for (int i = 0; i < n_layers; i++) {
        sdc_unet_tblock *b = &t->blocks[i];
        snprintf(p, sizeof p, "%stransformer_blocks.%d.", prefix, i);
        b->norm1_w = sdc_weights_get(ws, 1, (int64_t[]){C}, "%snorm1.weight", p);
        b->norm1_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%snorm1.bias", p);
        b->norm2_w = sdc_weights_get(ws, 1, (int64_t[]){C}, "%snorm2.weight", p);
        b->norm2_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%snorm2.bias", p);
        b->norm3_w = sdc_weights_get(ws, 1, (int64_t[]){C}, "%snorm3.weight", p);
        b->norm3_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%snorm3.bias", p);
        char a[300];
        snprintf(a, sizeof a, "%sattn1.", p);
        load_attention(&b->attn1, ws, a, channels, channels);
        snprintf(a, sizeof a, "%sattn2.", p);
        load_attention(&b->attn2, ws, a, channels, ctx_dim);
        b->ff_in_w = sdc_weights_matrix(ws, 2, (int64_t[]){8 * C, C}, "%sff.net.0.proj.weight", p);
        b->ff_in_b = sdc_weights_get(ws, 1, (int64_t[]){8 * C}, "%sff.net.0.proj.bias", p);
        b->ff_out_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, 4 * C}, "%sff.net.2.weight", p);
        b->ff_out_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sff.net.2.bias", p);
    }
}

void sdc_unet_transformer_release(sdc_unet_transformer *t) {
    free(t->blocks);
    t->blocks = NULL;
}

/* The temporaries of one block; every slot is NULL when dead, so cleanup frees them all. */
enum {
    T_A,
    T_Q,
    T_K,
    T_V,
    T_O,
    T_R,
    T_F,
    T_G,
    T_COUNT
};

static sdc_tensor *tnew(sdc_tensor **t, int slot, const sdc_tensor *like, int64_t B, int64_t N, int64_t C) {
    t[slot] = sdc_act_like(like, 3, (int64_t[]){B, N, C});
    return t[slot];
}

static void tdrop(sdc_tensor **t, int slot) {
    sdc_tensor_free(t[slot]);
    t[slot] = NULL;
}

/* h [B, N, C] += attention(norm(h), kv) with kv = context, or norm(h) itself when context is NULL.
 * Returns 0 when out of memory (temporaries stay in t for the caller to free). */
static int attend(sdc_tensor **t, const sdc_unet_attention *w, const sdc_tensor *nw, const sdc_tensor *nb,
                  sdc_tensor *h, const sdc_tensor *context, int heads) {
    const int64_t B = h->ne[0], N = h->ne[1], C = h->ne[2];
    if (!tnew(t, T_A, h, B, N, C)) return 0;
    sdc_layer_norm(t[T_A], h, nw, nb, 1e-5f);
    const sdc_tensor *kv = context ? context : t[T_A];
    const int64_t S = kv->ne[1];
    if (!tnew(t, T_Q, h, B, N, C)) return 0;
    sdc_linear(t[T_Q], t[T_A], w->q, NULL);
    if (!tnew(t, T_K, h, B, S, C)) return 0;
    sdc_linear(t[T_K], kv, w->k, NULL);
    if (!tnew(t, T_V, h, B, S, C)) return 0;
    sdc_linear(t[T_V], kv, w->v, NULL);
    tdrop(t, T_A);
    if (!tnew(t, T_O, h, B, N, C)) return 0;
    sdc_attention(t[T_O], t[T_Q], t[T_K], t[T_V], heads, 0);
    tdrop(t, T_Q);
    tdrop(t, T_K);
    tdrop(t, T_V);
    if (!tnew(t, T_R, h, B, N, C)) return 0;
    sdc_linear(t[T_R], t[T_O], w->out_w, w->out_b);
    tdrop(t, T_O);
    sdc_binary(h, h, t[T_R], SDC_BINARY_ADD);
    tdrop(t, T_R);
    return 1;
}

/* h += ff.net.2(geglu(ff.net.0.proj(norm3(h)))), over the backend's row chunk (sdc_backend_row_chunk; the
 * CPU's bounds its RSS) of h's rows (the tokens of all images, one after the other) at a time, or all at
 * once: only a chunk's temporaries live ([rows, 8C] and [rows, 4C]). */
static int feed_forward(sdc_tensor **t, const sdc_unet_tblock *b, sdc_tensor *h) {
    const int64_t R = sdc_tensor_rows(h), C = h->ne[2], chunk = sdc_backend_row_chunk(h->backend);
    const int64_t step = chunk > 0 ? chunk : R;
    for (int64_t r0 = 0; r0 < R; r0 += step) {
        const int64_t n = R - r0 < step ? R - r0 : step;
        const sdc_tensor rows = sdc_tensor_rows_view(h, r0, n);
        sdc_tensor hc = sdc_tensor_view(&rows, 3, (int64_t[]){1, n, C});   // [1, n, C], h's rows r0 ..
        if (!tnew(t, T_A, h, 1, n, C)) return 0;
        sdc_layer_norm(t[T_A], &hc, b->norm3_w, b->norm3_b, 1e-5f);
        if (!tnew(t, T_F, h, 1, n, 8 * C)) return 0;
        sdc_linear(t[T_F], t[T_A], b->ff_in_w, b->ff_in_b);
        tdrop(t, T_A);
        if (!tnew(t, T_G, h, 1, n, 4 * C)) return 0;
        sdc_geglu(t[T_G], t[T_F]);
        tdrop(t, T_F);
        if (!tnew(t, T_R, h, 1, n, C)) return 0;
        sdc_linear(t[T_R], t[T_G], b->ff_out_w, b->ff_out_b);
        tdrop(t, T_G);
        sdc_binary(&hc, &hc, t[T_R], SDC_BINARY_ADD);
        tdrop(t, T_R);
    }
    return 1;
}

static int block_forward(const sdc_unet_tblock *b, sdc_tensor *h, const sdc_tensor *context, int heads) {
    sdc_tensor *t[T_COUNT] = {0};
    int ok = attend(t, &b->attn1, b->norm1_w, b->norm1_b, h, NULL, heads) &&
        attend(t, &b->attn2, b->norm2_w, b->norm2_b, h, context, heads) && feed_forward(t, b, h);
    for (int i = 0; i < T_COUNT; i++) sdc_tensor_free(t[i]);
    return ok;
}

static const int to_bhwc[4] = {0, 2, 3, 1};   // [B, C, H, W] -> [B, H, W, C]
static const int to_bchw[4] = {0, 3, 1, 2};   // [B, H, W, C] -> [B, C, H, W]

sdc_tensor *sdc_unet_transformer_forward(const sdc_unet_transformer *t, const sdc_tensor *x,
                                         const sdc_tensor *context) {
    const int64_t B = x->ne[0], C = x->ne[1], H = x->ne[2], W = x->ne[3];
    sdc_tensor *n = NULL, *p = NULL, *h = NULL, *y = NULL;

    // h = proj_in(permute(norm(x)))  [B, HW, C]
    if (!(n = sdc_act_like(x, 4, x->ne))) goto oom;
    sdc_group_norm(n, x, t->norm_w, t->norm_b, t->groups, 1e-6f, 0);
    if (!(p = sdc_act_like(x, 4, (int64_t[]){B, H, W, C}))) goto oom;
    sdc_permute(p, n, to_bhwc);
    sdc_tensor_free(n);
    n = NULL;
    if (!(h = sdc_act_like(x, 3, (int64_t[]){B, H * W, C}))) goto oom;
    sdc_linear(h, p, t->proj_in_w, t->proj_in_b);
    sdc_tensor_free(p);
    p = NULL;

    for (int i = 0; i < t->n_layers; i++)
        if (!block_forward(&t->blocks[i], h, context, t->heads)) goto oom;

    // y = permute(proj_out(h)) + x  [B, C, H, W]
    if (!(p = sdc_act_like(x, 4, (int64_t[]){B, H, W, C}))) goto oom;
    sdc_tensor h4 = sdc_tensor_view(h, 4, (int64_t[]){B, H, W, C});
    sdc_linear(p, &h4, t->proj_out_w, t->proj_out_b);
    sdc_tensor_free(h);
    h = NULL;
    if (!(y = sdc_act_like(x, 4, x->ne))) goto oom;
    sdc_permute(y, p, to_bchw);
    sdc_tensor_free(p);
    sdc_binary(y, y, x, SDC_BINARY_ADD);
    return y;

oom:
    sdc_tensor_free(n);
    sdc_tensor_free(p);
    sdc_tensor_free(h);
    return NULL;
}
