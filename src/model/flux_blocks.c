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

/* RMSNorm(x) over each head's D channels, x [B, L, H*D] -> y (NULL: a new tensor); x is dropped. */
static sdc_tensor *norm_heads(sdc_flux_tmps *p, sdc_tensor *x, const sdc_tensor *w, int heads, sdc_tensor *y) {
    if (!y) y = sdc_flux_keep(p, sdc_act_like(x, 3, x->ne));
    if (!y) return NULL;
    const int64_t D = x->ne[2] / heads, rows = sdc_tensor_nelem(x) / D;
    sdc_tensor x2 = sdc_tensor_view(x, 2, (int64_t[]){rows, D}), y2 = sdc_tensor_view(y, 2, (int64_t[]){rows, D});
    sdc_rms_norm(&y2, &x2, w, SDC_FLUX_EPS);
    sdc_flux_drop(p, x);
    return y;
}

/* q, k (RMS-normed per head) and v of n [B, L, C]: into dst[0..2] (views of the joint sequence's rows), or
 * (dst NULL) as new tensors. */
static int project_qkv(sdc_flux_tmps *p, const sdc_tensor *n, const sdc_tensor *const w[8], int heads,
                       sdc_tensor *const *dst, sdc_tensor **q, sdc_tensor **k, sdc_tensor **v) {
    *q = sdc_flux_linear(p, n, w[0], w[1]);
    if (*q) *q = norm_heads(p, *q, w[6], heads, dst ? dst[0] : NULL);
    *k = *q ? sdc_flux_linear(p, n, w[2], w[3]) : NULL;
    if (*k) *k = norm_heads(p, *k, w[7], heads, dst ? dst[1] : NULL);
    if (*k && dst) {
        sdc_linear(dst[2], n, w[4], w[5]);
        *v = dst[2];
    } else {
        *v = *k ? sdc_flux_linear(p, n, w[4], w[5]) : NULL;
    }
    return *v != NULL;
}

/* Rows [r0, r0 + n) of t [1, S, C] as a view [1, n, C]. */
static sdc_tensor seq_rows(const sdc_tensor *t, int64_t r0, int64_t n) {
    const sdc_tensor v = sdc_tensor_rows_view(t, r0, n);
    return sdc_tensor_view(&v, 3, (int64_t[]){1, n, t->ne[2]});
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

/* The modulation chunks of s's stream (mod[6], each [B, C]), and its q, k, v [B, L, C] (into dst as
 * project_qkv). */
static int stream_in(sdc_flux_tmps *p, const sdc_flux_stream *w, const sdc_flux_ctx *c, const sdc_tensor *s,
                     sdc_tensor *const *dst, sdc_tensor *mod[6], sdc_tensor **q, sdc_tensor **k, sdc_tensor **v) {
    const int64_t C = s->ne[2];
    sdc_tensor *m = sdc_flux_linear(p, c->silu_temb, w->mod_w, w->mod_b);   // [B, 6C]
    if (!m) return 0;
    for (int i = 0; i < 6; i++)
        if (!(mod[i] = sdc_flux_chunk(p, m, i, C))) return 0;
    sdc_flux_drop(p, m);
    sdc_tensor *n = modulate(p, s, mod[0], mod[1]);   // [B, L, C]
    const sdc_tensor *const qkv[8] = {w->q_w, w->q_b, w->k_w, w->k_b, w->v_w, w->v_b, w->norm_q, w->norm_k};
    if (!n || !project_qkv(p, n, qkv, c->heads, dst, q, k, v)) return 0;
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

/* Joint attention of q, k, v [B, S, C] with RoPE on q and k, into o [B, S, C] (kept). q, k, v are dropped. */
static sdc_tensor *joint_attention(sdc_flux_tmps *p, const sdc_flux_ctx *c, sdc_tensor *q, sdc_tensor *k,
                                   sdc_tensor *v) {
    sdc_rope(q, q, c->cs, c->sn, c->heads);
    sdc_rope(k, k, c->cs, c->sn, c->heads);
    sdc_tensor *o = sdc_flux_keep(p, sdc_act_like(q, 3, q->ne));
    if (o) sdc_attention(o, q, k, v, c->heads, 0);
    sdc_flux_drop(p, q);
    sdc_flux_drop(p, k);
    sdc_flux_drop(p, v);
    return o;
}

/* The joint sequence (text rows, then image rows) of one image whose text part ends on a 256-byte boundary
 * (the alignment a new tensor has, as far as the CPU's kernels and cuBLASLt's plans look: the same kernels):
 * q, k, v [1, S, C] made first, each stream's projections written into its rows, the attention's output
 * rows read in place. No copies. */
static int double_direct(sdc_flux_tmps *p, const sdc_flux_double *b, const sdc_flux_ctx *c, sdc_tensor *img,
                         sdc_tensor *txt) {
    const int64_t T = txt->ne[1], N = img->ne[1], S = T + N;
    sdc_tensor *seq[3], rows[2][3], *mi[6], *mt[6], *q, *k, *v;
    for (int i = 0; i < 3; i++) {
        if (!(seq[i] = sdc_flux_keep(p, sdc_act_like(img, 3, (int64_t[]){1, S, img->ne[2]})))) return 0;
        rows[0][i] = seq_rows(seq[i], 0, T);
        rows[1][i] = seq_rows(seq[i], T, N);
    }
    sdc_tensor *const dt[3] = {&rows[0][0], &rows[0][1], &rows[0][2]},
                      *const di[3] = {&rows[1][0], &rows[1][1], &rows[1][2]};
    if (!stream_in(p, &b->img, c, img, di, mi, &q, &k, &v) || !stream_in(p, &b->txt, c, txt, dt, mt, &q, &k, &v))
        return 0;
    sdc_tensor *o = joint_attention(p, c, seq[0], seq[1], seq[2]);
    if (!o) return 0;
    sdc_tensor ot = seq_rows(o, 0, T), oi = seq_rows(o, T, N);
    return stream_out(p, &b->img, img, &oi, mi) && stream_out(p, &b->txt, txt, &ot, mt);
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

/* Several images (each one's rows of the joint sequence are apart): each stream's q, k, v made on their own,
 * joined, and the output split back by copies. */
static int double_joined(sdc_flux_tmps *p, const sdc_flux_double *b, const sdc_flux_ctx *c, sdc_tensor *img,
                         sdc_tensor *txt) {
    const int64_t B = img->ne[0], T = txt->ne[1], N = img->ne[1], C = img->ne[2];
    sdc_tensor *mi[6], *mt[6], *qi, *ki, *vi, *qt, *kt, *vt;
    if (!stream_in(p, &b->img, c, img, NULL, mi, &qi, &ki, &vi) ||
        !stream_in(p, &b->txt, c, txt, NULL, mt, &qt, &kt, &vt))
        return 0;
    sdc_tensor *q = join(p, qt, qi), *k = q ? join(p, kt, ki) : NULL, *v = k ? join(p, vt, vi) : NULL;   // [B, S, C]
    sdc_tensor *o = v ? joint_attention(p, c, q, k, v) : NULL;
    if (!o) return 0;
    sdc_tensor *ot = sdc_flux_keep(p, sdc_act_like(o, 3, (int64_t[]){B, T, C}));
    sdc_tensor *oi = ot ? sdc_flux_keep(p, sdc_act_like(o, 3, (int64_t[]){B, N, C})) : NULL;
    if (!oi) return 0;
    sdc_slice(ot, o, 1, 0);
    sdc_slice(oi, o, 1, T);
    sdc_flux_drop(p, o);
    return stream_out(p, &b->img, img, oi, mi) && stream_out(p, &b->txt, txt, ot, mt);
}

int sdc_flux_double_forward(const sdc_flux_double *b, const sdc_flux_ctx *c, sdc_tensor *img, sdc_tensor *txt) {
    sdc_flux_tmps p = {0};
    const size_t text_bytes = (size_t)(txt->ne[1] * txt->ne[2]) * sdc_dtype_size(txt->dtype);
    const int ok = img->ne[0] == 1 && text_bytes % 256 == 0 ? double_direct(&p, b, c, img, txt)
                                                            : double_joined(&p, b, c, img, txt);
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
    if (!project_qkv(p, n, qkv, c->heads, NULL, &q, &k, &v)) return 0;
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
