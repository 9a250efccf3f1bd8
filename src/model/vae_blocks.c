/* vae_blocks.c - the pieces the VAE encoder and decoder share: convs, the mid-block attention and
 * the mid block, each with the replay of its allocations for the activation estimates. */
#include <assert.h>
#include <stdio.h>

#include "backend/ops.h"
#include "model/vae_internal.h"

void sdc_vae_conv_load(sdc_vae_conv *c, sdc_weight_set *ws, int co, int ci, int k, const char *name) {
    c->w = sdc_weights_matrix(ws, 4, (int64_t[]){co, ci, k, k}, "%s.weight", name);
    c->b = sdc_weights_get(ws, 1, (int64_t[]){co}, "%s.bias", name);
}

sdc_tensor *sdc_vae_conv_forward(const sdc_vae_conv *c, const sdc_tensor *x, int stride, int pad) {
    const int64_t kh = c->w->ne[2], kw = c->w->ne[3];
    const int64_t ne[4] = {x->ne[0], c->w->ne[0], (x->ne[2] + 2 * pad - kh) / stride + 1,
                           (x->ne[3] + 2 * pad - kw) / stride + 1};
    sdc_tensor *y = sdc_act_like(x, 4, ne);   // [B, Co, Ho, Wo]
    if (y) sdc_conv2d(y, x, c->w, c->b, stride, pad);
    return y;
}

/* --- mid-block attention --- */

void sdc_vae_attn_load(sdc_vae_attn *a, sdc_weight_set *ws, const char *prefix, int channels, int groups, float eps) {
    const int64_t C = channels;
    const int64_t cc[2] = {C, C}, c1[1] = {C};
    *a = (sdc_vae_attn){.channels = channels, .groups = groups, .eps = eps};
    a->norm_w = sdc_weights_get(ws, 1, c1, "%sattentions.0.group_norm.weight", prefix);
    a->norm_b = sdc_weights_get(ws, 1, c1, "%sattentions.0.group_norm.bias", prefix);
    a->q_w = sdc_weights_matrix(ws, 2, cc, "%sattentions.0.to_q.weight", prefix);
    a->q_b = sdc_weights_get(ws, 1, c1, "%sattentions.0.to_q.bias", prefix);
    a->k_w = sdc_weights_matrix(ws, 2, cc, "%sattentions.0.to_k.weight", prefix);
    a->k_b = sdc_weights_get(ws, 1, c1, "%sattentions.0.to_k.bias", prefix);
    a->v_w = sdc_weights_matrix(ws, 2, cc, "%sattentions.0.to_v.weight", prefix);
    a->v_b = sdc_weights_get(ws, 1, c1, "%sattentions.0.to_v.bias", prefix);
    a->o_w = sdc_weights_matrix(ws, 2, cc, "%sattentions.0.to_out.0.weight", prefix);
    a->o_b = sdc_weights_get(ws, 1, c1, "%sattentions.0.to_out.0.bias", prefix);
}

/* The order tensors are allocated in; each is freed as soon as it is dead. */
enum {
    AT_NORM,
    AT_TOK,
    AT_Q,
    AT_K,
    AT_V,
    AT_ATT,
    AT_O,
    AT_OUT,
    AT_COUNT
};

sdc_tensor *sdc_vae_attn_forward(const sdc_vae_attn *a, const sdc_tensor *x) {
    const int64_t B = x->ne[0], C = x->ne[1], H = x->ne[2], W = x->ne[3], T = H * W;
    assert(x->ndim == 4 && C == a->channels);
    const int perm[4] = {0, 2, 1, 3};   // swap the channel and position dimensions
    const int64_t btc[3] = {B, T, C};
    sdc_tensor *t[AT_COUNT] = {0};

    // norm = GroupNorm(x)  [B, C, H, W]
    if (!(t[AT_NORM] = sdc_act_like(x, 4, x->ne))) goto oom;
    sdc_group_norm(t[AT_NORM], x, a->norm_w, a->norm_b, a->groups, a->eps, 0);

    // tokens: [B, C, T, 1] -> [B, T, C, 1]
    if (!(t[AT_TOK] = sdc_act_like(x, 4, (int64_t[]){B, T, C, 1}))) goto oom;
    sdc_tensor nv = sdc_tensor_view(t[AT_NORM], 4, (int64_t[]){B, C, T, 1});
    sdc_permute(t[AT_TOK], &nv, perm);
    sdc_tensor_free(t[AT_NORM]);
    t[AT_NORM] = NULL;
    sdc_tensor tok = sdc_tensor_view(t[AT_TOK], 3, btc);   // [B, T, C]

    // q, k, v  [B, T, C]
    for (int i = AT_Q; i <= AT_V; i++)
        if (!(t[i] = sdc_act_like(x, 3, btc))) goto oom;
    sdc_linear(t[AT_Q], &tok, a->q_w, a->q_b);
    sdc_linear(t[AT_K], &tok, a->k_w, a->k_b);
    sdc_linear(t[AT_V], &tok, a->v_w, a->v_b);
    sdc_tensor_free(t[AT_TOK]);
    t[AT_TOK] = NULL;

    // one head over all positions: softmax(q k^T / sqrt(C)) v  [B, T, C]
    if (!(t[AT_ATT] = sdc_act_like(x, 3, btc))) goto oom;
    sdc_attention(t[AT_ATT], t[AT_Q], t[AT_K], t[AT_V], 1, 0);
    for (int i = AT_Q; i <= AT_V; i++) {
        sdc_tensor_free(t[i]);
        t[i] = NULL;
    }

    // to_out.0  [B, T, C]
    if (!(t[AT_O] = sdc_act_like(x, 3, btc))) goto oom;
    sdc_linear(t[AT_O], t[AT_ATT], a->o_w, a->o_b);
    sdc_tensor_free(t[AT_ATT]);
    t[AT_ATT] = NULL;

    // back to [B, C, H, W], + x
    if (!(t[AT_OUT] = sdc_act_like(x, 4, x->ne))) goto oom;
    sdc_tensor ov = sdc_tensor_view(t[AT_O], 4, (int64_t[]){B, T, C, 1});
    sdc_tensor outv = sdc_tensor_view(t[AT_OUT], 4, (int64_t[]){B, C, T, 1});
    sdc_permute(&outv, &ov, perm);
    sdc_tensor_free(t[AT_O]);
    t[AT_O] = NULL;
    sdc_binary(t[AT_OUT], t[AT_OUT], x, SDC_BINARY_ADD);
    return t[AT_OUT];

oom:
    for (int i = 0; i < AT_COUNT; i++) sdc_tensor_free(t[i]);
    return NULL;
}
/* --- resnets and the mid block --- */

sdc_tensor *sdc_vae_resnet_step(const sdc_resnet *r, sdc_tensor *x) {
    sdc_tensor *y = sdc_resnet_forward(r, x, NULL);
    sdc_tensor_free(x);
    return y;
}
void sdc_vae_mid_load(sdc_vae_mid *m, sdc_weight_set *ws, const char *prefix, const sdc_vae_config *cfg, int channels) {
    char name[128];
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%sresnets.%d.", prefix, i);
        sdc_resnet_load(&m->res[i], ws, name, channels, channels, 0, cfg->norm_num_groups, cfg->norm_eps);
    }
    m->has_attn = cfg->mid_block_add_attention;
    if (m->has_attn) sdc_vae_attn_load(&m->attn, ws, prefix, channels, cfg->norm_num_groups, cfg->norm_eps);
}

sdc_tensor *sdc_vae_mid_step(const sdc_vae_mid *m, sdc_tensor *x) {
    x = sdc_vae_resnet_step(&m->res[0], x);
    if (x && m->has_attn) {
        sdc_tensor *y = sdc_vae_attn_forward(&m->attn, x);
        sdc_tensor_free(x);
        x = y;
    }
    return x ? sdc_vae_resnet_step(&m->res[1], x) : NULL;
}
