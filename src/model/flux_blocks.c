/* flux_blocks.c - the Flux transformer's double-stream (FluxTransformerBlock) and single-stream
 * (FluxSingleTransformerBlock) blocks: weights and forward (see flux.h). */
#include <assert.h>
#include <stdio.h>

#include "backend/ops.h"
#include "model/flux_internal.h"

/* --- temporaries --- */

sdc_tensor *sdc_flux_keep(sdc_flux_tmps *p, sdc_tensor *t) {
    if (!t) return NULL;
    for (int i = 0; i < SDC_FLUX_TMPS; i++)
        if (!p->t[i]) return p->t[i] = t;
    assert(!"sdc_flux_tmps: no free slot");
    sdc_tensor_free(t);
    return NULL;
}

void sdc_flux_drop(sdc_flux_tmps *p, sdc_tensor *t) {
    for (int i = 0; t && i < SDC_FLUX_TMPS; i++)
        if (p->t[i] == t) {
            sdc_tensor_free(t);
            p->t[i] = NULL;
            return;
        }
}

void sdc_flux_drop_all(sdc_flux_tmps *p) {
    for (int i = 0; i < SDC_FLUX_TMPS; i++) sdc_tensor_free(p->t[i]);
    *p = (sdc_flux_tmps){0};
}

/* A new tensor for x w^T: x's shape with w's rows as the last dim. */
static sdc_tensor *linear_out(sdc_flux_tmps *p, const sdc_tensor *x, const sdc_tensor *w) {
    int64_t ne[4];
    for (int i = 0; i < x->ndim; i++) ne[i] = x->ne[i];
    ne[x->ndim - 1] = w->ne[0];
    return sdc_flux_keep(p, sdc_act_like(x, x->ndim, ne));
}

sdc_tensor *sdc_flux_linear(sdc_flux_tmps *p, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b) {
    sdc_tensor *y = linear_out(p, x, w);
    if (y) sdc_linear(y, x, w, b);
    return y;
}

/* gelu_tanh(x w^T + b) as a new tensor (one op: CUDA applies the GELU in the GEMM's epilogue). */
static sdc_tensor *linear_gelu(sdc_flux_tmps *p, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b) {
    sdc_tensor *y = linear_out(p, x, w);
    if (y) sdc_linear_act(y, x, w, b, SDC_UNARY_GELU_TANH);
    return y;
}

sdc_tensor *sdc_flux_chunk(sdc_flux_tmps *p, const sdc_tensor *m, int k, int64_t C) {
    sdc_tensor *y = sdc_flux_keep(p, sdc_act_like(m, 2, (int64_t[]){m->ne[0], C}));   // [B, C]
    if (y) sdc_slice(y, m, 1, k * C);
    return y;
}

/* LN(s) (1 + scale) + shift as a new tensor like s [B, L, C]. */
static sdc_tensor *modulate(sdc_flux_tmps *p, const sdc_tensor *s, const sdc_tensor *shift, const sdc_tensor *scale) {
    sdc_tensor *n = sdc_flux_keep(p, sdc_act_like(s, 3, s->ne));
    if (n) sdc_layer_norm_mod(n, s, shift, scale, SDC_FLUX_EPS);
    return n;
}

/* RMSNorm(x) over each head's D channels, x [B, L, H*D] -> a new tensor; x is dropped. */
static sdc_tensor *norm_heads(sdc_flux_tmps *p, sdc_tensor *x, const sdc_tensor *w, int heads) {
    sdc_tensor *y = sdc_flux_keep(p, sdc_act_like(x, 3, x->ne));
    if (!y) return NULL;
    const int64_t D = x->ne[2] / heads, rows = sdc_tensor_nelem(x) / D;
    sdc_tensor x2 = sdc_tensor_view(x, 2, (int64_t[]){rows, D}), y2 = sdc_tensor_view(y, 2, (int64_t[]){rows, D});
    sdc_rms_norm(&y2, &x2, w, SDC_FLUX_EPS);
    sdc_flux_drop(p, x);
    return y;
}

/* q, k (RMS-normed per head) and v of n [B, L, C]. */
static int project_qkv(sdc_flux_tmps *p, const sdc_tensor *n, const sdc_tensor *const w[8], int heads, sdc_tensor **q,
                       sdc_tensor **k, sdc_tensor **v) {
    *q = sdc_flux_linear(p, n, w[0], w[1]);
    if (*q) *q = norm_heads(p, *q, w[6], heads);
    *k = *q ? sdc_flux_linear(p, n, w[2], w[3]) : NULL;
    if (*k) *k = norm_heads(p, *k, w[7], heads);
    *v = *k ? sdc_flux_linear(p, n, w[4], w[5]) : NULL;
    return *v != NULL;
}

/* a and b [B, La, C], [B, Lb, C] -> a new [B, La + Lb, C]; a and b are dropped. */
static sdc_tensor *join(sdc_flux_tmps *p, sdc_tensor *a, sdc_tensor *b) {
    sdc_tensor *y = sdc_flux_keep(p, sdc_act_like(a, 3, (int64_t[]){a->ne[0], a->ne[1] + b->ne[1], a->ne[2]}));
    if (!y) return NULL;
    sdc_concat(y, a, b, 1);
    sdc_flux_drop(p, a);
    sdc_flux_drop(p, b);
    return y;
}

/* --- double-stream block --- */

static void load_stream(sdc_flux_stream *s, sdc_weight_set *ws, const char *pre, int img, int64_t C, int64_t D) {
    const char *mod = img ? "norm1" : "norm1_context", *ff = img ? "ff" : "ff_context";
    const char *q = img ? "to_q" : "add_q_proj", *k = img ? "to_k" : "add_k_proj", *v = img ? "to_v" : "add_v_proj";
    const char *nq = img ? "norm_q" : "norm_added_q", *nk = img ? "norm_k" : "norm_added_k";
    const char *out = img ? "to_out.0" : "to_add_out";
    s->mod_w = sdc_weights_matrix(ws, 2, (int64_t[]){6 * C, C}, "%s%s.linear.weight", pre, mod);
    s->mod_b = sdc_weights_get(ws, 1, (int64_t[]){6 * C}, "%s%s.linear.bias", pre, mod);
    s->q_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sattn.%s.weight", pre, q);
    s->q_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sattn.%s.bias", pre, q);
    s->k_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sattn.%s.weight", pre, k);
    s->k_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sattn.%s.bias", pre, k);
    s->v_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sattn.%s.weight", pre, v);
    s->v_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sattn.%s.bias", pre, v);
    s->norm_q = sdc_weights_get(ws, 1, (int64_t[]){D}, "%sattn.%s.weight", pre, nq);
    s->norm_k = sdc_weights_get(ws, 1, (int64_t[]){D}, "%sattn.%s.weight", pre, nk);
    s->out_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sattn.%s.weight", pre, out);
    s->out_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sattn.%s.bias", pre, out);
    const int64_t F = SDC_FLUX_MLP_RATIO * C;
    s->ff_in_w = sdc_weights_matrix(ws, 2, (int64_t[]){F, C}, "%s%s.net.0.proj.weight", pre, ff);
    s->ff_in_b = sdc_weights_get(ws, 1, (int64_t[]){F}, "%s%s.net.0.proj.bias", pre, ff);
    s->ff_out_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, F}, "%s%s.net.2.weight", pre, ff);
    s->ff_out_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%s%s.net.2.bias", pre, ff);
}

void sdc_flux_double_load(sdc_flux_double *b, sdc_weight_set *ws, const char *prefix, int64_t C, int64_t D) {
    load_stream(&b->img, ws, prefix, 1, C, D);
    load_stream(&b->txt, ws, prefix, 0, C, D);
}

/* The modulation chunks of s's stream (mod[6], each [B, C]), and its q, k, v [B, L, C]. */
static int stream_in(sdc_flux_tmps *p, const sdc_flux_stream *w, const sdc_flux_ctx *c, const sdc_tensor *s,
                     sdc_tensor *mod[6], sdc_tensor **q, sdc_tensor **k, sdc_tensor **v) {
    const int64_t C = s->ne[2];
    sdc_tensor *m = sdc_flux_linear(p, c->silu_temb, w->mod_w, w->mod_b);   // [B, 6C]
    if (!m) return 0;
    for (int i = 0; i < 6; i++)
        if (!(mod[i] = sdc_flux_chunk(p, m, i, C))) return 0;
    sdc_flux_drop(p, m);
    sdc_tensor *n = modulate(p, s, mod[0], mod[1]);   // [B, L, C]
    const sdc_tensor *const qkv[8] = {w->q_w, w->q_b, w->k_w, w->k_b, w->v_w, w->v_b, w->norm_q, w->norm_k};
    if (!n || !project_qkv(p, n, qkv, c->heads, q, k, v)) return 0;
    sdc_flux_drop(p, n);
    return 1;
}

/* s += gate_msa out(o); s += gate_mlp ff(LN(s) (1 + scale_mlp) + shift_mlp). o is dropped. */
static int stream_out(sdc_flux_tmps *p, const sdc_flux_stream *w, sdc_tensor *s, sdc_tensor *o,
                      sdc_tensor *const mod[6]) {
    sdc_tensor *a = sdc_flux_linear(p, o, w->out_w, w->out_b);   // [B, L, C]
    if (!a) return 0;
    sdc_flux_drop(p, o);
    sdc_add_gated(s, s, a, mod[2]);
    sdc_flux_drop(p, a);
    sdc_tensor *n = modulate(p, s, mod[3], mod[4]);
    sdc_tensor *f = n ? linear_gelu(p, n, w->ff_in_w, w->ff_in_b) : NULL;   // [B, L, 4C]
    if (!f) return 0;
    sdc_flux_drop(p, n);
    sdc_tensor *g = sdc_flux_linear(p, f, w->ff_out_w, w->ff_out_b);   // [B, L, C]
    if (!g) return 0;
    sdc_flux_drop(p, f);
    sdc_add_gated(s, s, g, mod[5]);
    sdc_flux_drop(p, g);
    return 1;
}

/* Joint attention of (q_t; q_i) over (k_t; k_i), (v_t; v_i) with RoPE on q and k; the output split
 * back into o_t [B, T, C] and o_i [B, N, C]. The inputs are dropped. */
static int joint_attention(sdc_flux_tmps *p, const sdc_flux_ctx *c, sdc_tensor *qt, sdc_tensor *kt, sdc_tensor *vt,
                           sdc_tensor *qi, sdc_tensor *ki, sdc_tensor *vi, sdc_tensor **ot, sdc_tensor **oi) {
    const int64_t B = qt->ne[0], T = qt->ne[1], N = qi->ne[1], C = qt->ne[2];
    sdc_tensor *q = join(p, qt, qi), *k = q ? join(p, kt, ki) : NULL, *v = k ? join(p, vt, vi) : NULL;   // [B, S, C]
    if (!v) return 0;
    sdc_rope(q, q, c->cs, c->sn, c->heads);
    sdc_rope(k, k, c->cs, c->sn, c->heads);
    sdc_tensor *o = sdc_flux_keep(p, sdc_act_like(q, 3, q->ne));
    if (!o) return 0;
    sdc_attention(o, q, k, v, c->heads, 0);
    sdc_flux_drop(p, q);
    sdc_flux_drop(p, k);
    sdc_flux_drop(p, v);
    *ot = sdc_flux_keep(p, sdc_act_like(o, 3, (int64_t[]){B, T, C}));
    *oi = *ot ? sdc_flux_keep(p, sdc_act_like(o, 3, (int64_t[]){B, N, C})) : NULL;
    if (!*oi) return 0;
    sdc_slice(*ot, o, 1, 0);
    sdc_slice(*oi, o, 1, T);
    sdc_flux_drop(p, o);
    return 1;
}

int sdc_flux_double_forward(const sdc_flux_double *b, const sdc_flux_ctx *c, sdc_tensor *img, sdc_tensor *txt) {
    sdc_flux_tmps p = {0};
    sdc_tensor *mi[6], *mt[6], *qi, *ki, *vi, *qt, *kt, *vt, *oi, *ot;
    const int ok = stream_in(&p, &b->img, c, img, mi, &qi, &ki, &vi) &&
        stream_in(&p, &b->txt, c, txt, mt, &qt, &kt, &vt) && joint_attention(&p, c, qt, kt, vt, qi, ki, vi, &ot, &oi) &&
        stream_out(&p, &b->img, img, oi, mi) && stream_out(&p, &b->txt, txt, ot, mt);
    sdc_flux_drop_all(&p);
    return ok;
}

/* --- single-stream block --- */

void sdc_flux_single_load(sdc_flux_single *b, sdc_weight_set *ws, const char *pre, int64_t C, int64_t D) {
    const int64_t F = SDC_FLUX_MLP_RATIO * C;
    b->mod_w = sdc_weights_matrix(ws, 2, (int64_t[]){3 * C, C}, "%snorm.linear.weight", pre);
    b->mod_b = sdc_weights_get(ws, 1, (int64_t[]){3 * C}, "%snorm.linear.bias", pre);
    b->q_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sattn.to_q.weight", pre);
    b->q_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sattn.to_q.bias", pre);
    b->k_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sattn.to_k.weight", pre);
    b->k_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sattn.to_k.bias", pre);
    b->v_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "%sattn.to_v.weight", pre);
    b->v_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sattn.to_v.bias", pre);
    b->norm_q = sdc_weights_get(ws, 1, (int64_t[]){D}, "%sattn.norm_q.weight", pre);
    b->norm_k = sdc_weights_get(ws, 1, (int64_t[]){D}, "%sattn.norm_k.weight", pre);
    b->mlp_w = sdc_weights_matrix(ws, 2, (int64_t[]){F, C}, "%sproj_mlp.weight", pre);
    b->mlp_b = sdc_weights_get(ws, 1, (int64_t[]){F}, "%sproj_mlp.bias", pre);
    b->out_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, C + F}, "%sproj_out.weight", pre);
    b->out_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "%sproj_out.bias", pre);
}

static int single_steps(sdc_flux_tmps *p, const sdc_flux_single *b, const sdc_flux_ctx *c, sdc_tensor *h) {
    const int64_t C = h->ne[2];
    sdc_tensor *m = sdc_flux_linear(p, c->silu_temb, b->mod_w, b->mod_b);   // [B, 3C]: shift, scale, gate
    sdc_tensor *shift = m ? sdc_flux_chunk(p, m, 0, C) : NULL, *scale = shift ? sdc_flux_chunk(p, m, 1, C) : NULL;
    sdc_tensor *gate = scale ? sdc_flux_chunk(p, m, 2, C) : NULL;
    if (!gate) return 0;
    sdc_flux_drop(p, m);
    sdc_tensor *n = modulate(p, h, shift, scale);                         // [B, S, C]
    sdc_tensor *mlp = n ? linear_gelu(p, n, b->mlp_w, b->mlp_b) : NULL;   // [B, S, 4C]
    if (!mlp) return 0;
    sdc_tensor *q, *k, *v;
    const sdc_tensor *const qkv[8] = {b->q_w, b->q_b, b->k_w, b->k_b, b->v_w, b->v_b, b->norm_q, b->norm_k};
    if (!project_qkv(p, n, qkv, c->heads, &q, &k, &v)) return 0;
    sdc_flux_drop(p, n);
    sdc_rope(q, q, c->cs, c->sn, c->heads);
    sdc_rope(k, k, c->cs, c->sn, c->heads);
    sdc_tensor *o = sdc_flux_keep(p, sdc_act_like(q, 3, q->ne));   // [B, S, C]
    if (!o) return 0;
    sdc_attention(o, q, k, v, c->heads, 0);
    sdc_flux_drop(p, q);
    sdc_flux_drop(p, k);
    sdc_flux_drop(p, v);
    sdc_tensor *cat = sdc_flux_keep(p, sdc_act_like(o, 3, (int64_t[]){o->ne[0], o->ne[1], C + mlp->ne[2]}));
    if (!cat) return 0;
    sdc_concat(cat, o, mlp, 2);   // [B, S, 5C]: attention, then MLP
    sdc_flux_drop(p, o);
    sdc_flux_drop(p, mlp);
    sdc_tensor *r = sdc_flux_linear(p, cat, b->out_w, b->out_b);   // [B, S, C]
    if (!r) return 0;
    sdc_flux_drop(p, cat);
    sdc_add_gated(h, h, r, gate);
    return 1;
}

int sdc_flux_single_forward(const sdc_flux_single *b, const sdc_flux_ctx *c, sdc_tensor *h) {
    sdc_flux_tmps p = {0};
    const int ok = single_steps(&p, b, c, h);
    sdc_flux_drop_all(&p);
    return ok;
}
