/* flux.c - the Flux transformer: weights, RoPE tables, embeddings and the forward pass (see flux.h);
 * the blocks are in flux_blocks.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/flux_internal.h"
#include "model/unet.h" /* sdc_unet_timestep_embedding: diffusers' get_timestep_embedding */

typedef struct flux_mlp {
    sdc_tensor *w1, *b1, *w2, *b2; /* linear_1 [C, in], [C]; linear_2 [C, C], [C] */
} flux_mlp;

/* The forward's host-computed inputs, uploaded before its device work (upload_inputs). */
enum {
    FLUX_IN_TIME,     /* [B, 256] sinusoidal(1000 t) */
    FLUX_IN_GUIDANCE, /* [B, 256] sinusoidal(1000 g) (guidance_embeds), else NULL */
    FLUX_IN_POOLED,   /* [B, pooled_dim] */
    FLUX_IN_COS,      /* [T + N, head_dim / 2] F32: RoPE of txt_ids then img_ids */
    FLUX_IN_SIN,
    FLUX_N_INPUTS
};

struct sdc_flux {
    sdc_flux_config cfg;
    sdc_backend *be;
    sdc_dtype act_dtype; /* chosen at load time */
    sdc_logger log;
    sdc_weight_set ws;                   /* owns every weight tensor (streamed: the rest's) */
    sdc_weight_stream *stream;           /* streamed: units dbl[i] = i, sgl[i] = n_layers + i; else NULL */
    sdc_tensor *x_w, *x_b;               /* x_embedder [C, in], [C] */
    sdc_tensor *ctx_w, *ctx_b;           /* context_embedder [C, joint], [C] */
    flux_mlp time, guidance, text;       /* time_text_embed.{timestep,guidance,text}_embedder (guidance: dev only) */
    sdc_flux_double *dbl;                /* n_layers */
    sdc_flux_single *sgl;                /* n_single_layers */
    sdc_tensor *norm_out_w, *norm_out_b; /* [2C, C], [2C]: scale, then shift */
    sdc_tensor *proj_w, *proj_b;         /* [out, C], [out] */
    /* The forward's uploaded inputs; kept between its calls after sdc_flux_keep_inputs, until
     * sdc_flux_release_inputs (else freed at the end of each forward). Unlike the
     * UNet's, the forward is not recorded as a CUDA graph: it is GPU-bound (kernels of 0.02-1 ms), so replays
     * saved almost nothing while recording and instantiating a 1024^2 forward took 17 ms on an H100
     * (session 13: a 4-step image 0.845 s recorded, 0.837 s not). */
    sdc_tensor *in[FLUX_N_INPUTS];
    float *rope_ids; /* the ids in[]'s RoPE tables were made from [T + N, n_axes] (they change per job only) */
    int keep_in;
};

static void load_mlp(flux_mlp *m, sdc_weight_set *ws, const char *name, int64_t in, int64_t C) {
    m->w1 = sdc_weights_matrix(ws, 2, (int64_t[]){C, in}, "time_text_embed.%s.linear_1.weight", name);
    m->b1 = sdc_weights_get(ws, 1, (int64_t[]){C}, "time_text_embed.%s.linear_1.bias", name);
    m->w2 = sdc_weights_matrix(ws, 2, (int64_t[]){C, C}, "time_text_embed.%s.linear_2.weight", name);
    m->b2 = sdc_weights_get(ws, 1, (int64_t[]){C}, "time_text_embed.%s.linear_2.bias", name);
}

/* Streaming units, in forward order: double block i = i, single block i = n_layers + i. */
static void unit_load(void *owner, int k, sdc_weight_set *ws) {
    sdc_flux *m = owner;
    const sdc_flux_config *c = &m->cfg;
    const int64_t C = (int64_t)c->n_heads * c->head_dim, D = c->head_dim;
    char pre[64];
    if (k < c->n_layers) {
        snprintf(pre, sizeof pre, "transformer_blocks.%d.", k);
        sdc_flux_double_load(&m->dbl[k], ws, pre, C, D);
    } else {
        snprintf(pre, sizeof pre, "single_transformer_blocks.%d.", k - c->n_layers);
        sdc_flux_single_load(&m->sgl[k - c->n_layers], ws, pre, C, D);
    }
}

static void unit_drop(void *owner, int k) {
    sdc_flux *m = owner;
    if (k < m->cfg.n_layers)
        memset(&m->dbl[k], 0, sizeof m->dbl[k]);
    else
        memset(&m->sgl[k - m->cfg.n_layers], 0, sizeof m->sgl[0]);
}

static void load_weights(sdc_flux *m) {
    const sdc_flux_config *c = &m->cfg;
    const int64_t C = (int64_t)c->n_heads * c->head_dim;
    sdc_weight_set *ws = &m->ws;
    m->x_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, c->in_channels}, "x_embedder.weight");
    m->x_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "x_embedder.bias");
    m->ctx_w = sdc_weights_matrix(ws, 2, (int64_t[]){C, c->joint_dim}, "context_embedder.weight");
    m->ctx_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "context_embedder.bias");
    load_mlp(&m->time, ws, "timestep_embedder", SDC_FLUX_TIME_DIM, C);
    if (c->guidance_embeds) load_mlp(&m->guidance, ws, "guidance_embedder", SDC_FLUX_TIME_DIM, C);
    load_mlp(&m->text, ws, "text_embedder", c->pooled_dim, C);
    for (int k = 0; k < c->n_layers + c->n_single_layers && !m->stream; k++)
        unit_load(m, k, ws); /* streamed: on acquire */
    m->norm_out_w = sdc_weights_matrix(ws, 2, (int64_t[]){2 * C, C}, "norm_out.linear.weight");
    m->norm_out_b = sdc_weights_get(ws, 1, (int64_t[]){2 * C}, "norm_out.linear.bias");
    m->proj_w = sdc_weights_matrix(ws, 2, (int64_t[]){c->out_channels, C}, "proj_out.weight");
    m->proj_b = sdc_weights_get(ws, 1, (int64_t[]){c->out_channels}, "proj_out.bias");
}

sdc_status sdc_flux_load(const sdc_flux_config *cfg, const sdc_weight_source *src, sdc_flux **out) {
    const sdc_logger *log = src->log;
    *out = NULL;
    sdc_flux *m = calloc(1, sizeof *m);
    if (m) {
        m->dbl = calloc((size_t)cfg->n_layers + 1, sizeof *m->dbl);
        m->sgl = calloc((size_t)cfg->n_single_layers + 1, sizeof *m->sgl);
    }
    if (!m || !m->dbl || !m->sgl) {
        SDC_LOGE(log, "sdc_flux_load: out of host memory");
        sdc_flux_free(m);
        return SDC_ERR_OOM;
    }
    m->cfg = *cfg;
    m->be = src->be;
    m->act_dtype = sdc_weight_source_act_dtype(src);
    if (log) m->log = *log;
    sdc_weight_source ws_src = *src;
    ws_src.log = &m->log;
    sdc_weights_begin(&m->ws, &ws_src, NULL);
    if (src->window > 0 &&
        !(m->stream = sdc_stream_new(&ws_src, cfg->n_layers + cfg->n_single_layers, m, unit_load, unit_drop))) {
        sdc_flux_free(m);
        return SDC_ERR_OOM;
    }
    load_weights(m);
    sdc_status st = sdc_weights_end(&m->ws);
    if (st != SDC_OK) {
        SDC_LOGE(log, "sdc_flux_load: loading the transformer weights failed: %s", sdc_status_str(st));
        sdc_flux_free(m);
        return st;
    }
    if (m->stream)
        SDC_LOGI(log, "sdc_flux_load: streamed, %d resident tensors (%.1f MB) on %s; %d blocks, at most %d resident",
                 m->ws.n, (double)m->ws.bytes_resident / 1e6, sdc_backend_name(src->be), m->stream->n_units,
                 m->stream->window);
    else
        SDC_LOGI(log, "sdc_flux_load: %d tensors, %.1f MB on %s", m->ws.n, (double)m->ws.bytes_resident / 1e6,
                 sdc_backend_name(src->be));
    *out = m;
    return SDC_OK;
}

static void drop_inputs(sdc_flux *m) {
    for (int i = 0; i < FLUX_N_INPUTS; i++) {
        sdc_tensor_free(m->in[i]);
        m->in[i] = NULL;
    }
    free(m->rope_ids);
    m->rope_ids = NULL;
}

void sdc_flux_keep_inputs(sdc_flux *m) { m->keep_in = 1; }

void sdc_flux_release_inputs(sdc_flux *m) {
    if (!m) return;
    drop_inputs(m);
    m->keep_in = 0;
}

void sdc_flux_free(sdc_flux *m) {
    if (!m) return;
    sdc_flux_release_inputs(m);
    sdc_stream_free(m->stream); /* the resident units */
    sdc_weights_free(&m->ws);
    free(m->dbl);
    free(m->sgl);
    free(m);
}

const sdc_flux_config *sdc_flux_get_config(const sdc_flux *m) { return &m->cfg; }

sdc_weight_stream *sdc_flux_weight_stream(sdc_flux *m) { return m->stream; }
size_t sdc_flux_weight_bytes(const sdc_flux *m) { return (size_t)m->ws.bytes_resident; }
sdc_dtype sdc_flux_act_dtype(const sdc_flux *m) { return m->act_dtype; }
sdc_backend *sdc_flux_backend(const sdc_flux *m) { return m->be; }

/* Axis a's pairs of one position (columns col0 .. col0 + d/2 of a table row): cos / sin of pos * inv[col]. */
static void rope_axis(double pos, const double *inv, int64_t col0, int pairs, float *c, float *s) {
    for (int j = 0; j < pairs; j++) {
        const double angle = pos * inv[col0 + j];
        c[col0 + j] = (float)cos(angle);
        s[col0 + j] = (float)sin(angle);
    }
}

/* Integral positions below ROPE_CACHE (Flux's: text 0, image rows and columns) are computed once per axis
 * and copied to every row that has them: a 1024^2 image's 4352 x 64 pairs take 3 x 64 position rows. */
#define ROPE_CACHE 1024

int sdc_flux_rope_tables(const sdc_flux_config *cfg, const float *ids, int64_t n, float *cos_out, float *sin_out) {
    const int64_t half = cfg->head_dim / 2, A = cfg->n_axes;
    double *inv = malloc(sizeof(double) * (size_t)half);                    // [half]: theta^(-2j / d_a) per column
    float *cache = malloc(sizeof(float) * 2 * ROPE_CACHE * (size_t)half);   // [ROPE_CACHE, half]: cos, then sin
    unsigned char *have = calloc((size_t)A * ROPE_CACHE, 1);                // [A, ROPE_CACHE]
    for (int64_t a = 0, col = 0; inv && a < A; a++)
        for (int j = 0; j < cfg->axes_dims[a] / 2; j++)
            inv[col++] = 1.0 / pow(cfg->theta, (double)(2 * j) / cfg->axes_dims[a]);
    for (int64_t p = 0; inv && p < n; p++) {
        float *c = cos_out + p * half, *s = sin_out + p * half;
        for (int64_t a = 0, col = 0; a < A; col += cfg->axes_dims[a] / 2, a++) {
            const int pairs = cfg->axes_dims[a] / 2;
            const double pos = ids[p * A + a];
            const int64_t k = (int64_t)pos;
            if (!cache || !have || pos != (double)k || k < 0 || k >= ROPE_CACHE) {
                rope_axis(pos, inv, col, pairs, c, s);
                continue;
            }
            float *cc = cache + k * half, *cs = cache + (ROPE_CACHE + k) * half;
            if (!have[a * ROPE_CACHE + k]) {
                rope_axis(pos, inv, col, pairs, cc, cs);
                have[a * ROPE_CACHE + k] = 1;
            }
            memcpy(c + col, cc + col, sizeof(float) * (size_t)pairs);
            memcpy(s + col, cs + col, sizeof(float) * (size_t)pairs);
        }
    }
    const int ok = inv != NULL;
    free(inv);
    free(cache);
    free(have);
    return ok;
}

/* --- forward --- */

/* The state of one forward pass: every tensor in tmps (freed at the end); in[] its uploaded inputs. */
typedef struct flux_fwd {
    sdc_flux *m;
    sdc_flux_tmps p;
    sdc_tensor *const *in;
    sdc_flux_block_cb cb;
    void *user;
} flux_fwd;

/* Uploads the forward's host-computed inputs into m->in[] (FLUX_IN_*), allocating those that are NULL: the
 * timestep (and guidance) embedders' sinusoidal(1000 v) of host v [B], the pooled text embedding, and the RoPE
 * tables of the joint sequence (txt_ids; img_ids), made again only when the ids differ from those they were
 * made from. 0 when out of memory. */
static int upload_inputs(sdc_flux *m, const sdc_flux_cond *cond, int64_t B, int64_t T, int64_t N) {
    const sdc_flux_config *c = &m->cfg;
    sdc_tensor **in = m->in;
    const int64_t S = T + N, half = c->head_dim / 2, A = c->n_axes, P = c->pooled_dim, D = SDC_FLUX_TIME_DIM;
    if (!in[FLUX_IN_TIME]) in[FLUX_IN_TIME] = sdc_act_new(m->be, m->act_dtype, 2, (int64_t[]){B, D});
    if (c->guidance_embeds && !in[FLUX_IN_GUIDANCE])
        in[FLUX_IN_GUIDANCE] = sdc_act_new(m->be, m->act_dtype, 2, (int64_t[]){B, D});
    if (!in[FLUX_IN_POOLED]) in[FLUX_IN_POOLED] = sdc_act_new(m->be, m->act_dtype, 2, (int64_t[]){B, P});
    for (int k = FLUX_IN_COS; k <= FLUX_IN_SIN; k++)
        if (!in[k]) in[k] = sdc_tensor_new(m->be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 2, (int64_t[]){S, half});
    const int64_t nh = B * D > S * half * 2 ? B * D : S * half * 2;
    float *host = malloc(sizeof(float) * (size_t)nh), *t = malloc(sizeof(float) * (size_t)B);
    float *ids = malloc(sizeof(float) * (size_t)(S * A));
    int ok = host && t && ids && in[FLUX_IN_TIME] && (!c->guidance_embeds || in[FLUX_IN_GUIDANCE]) &&
        in[FLUX_IN_POOLED] && in[FLUX_IN_COS] && in[FLUX_IN_SIN];
    for (int k = FLUX_IN_TIME; k <= FLUX_IN_GUIDANCE && ok; k++) {
        const float *v = k == FLUX_IN_TIME ? cond->timestep : cond->guidance;
        if (!v) continue;
        for (int64_t b = 0; b < B; b++) t[b] = (float)((double)v[b] * 1000.0);   // exact product, rounded once
        sdc_unet_timestep_embedding(t, (int)B, (int)D, 1, 0, host);
        ok = sdc_tensor_set_f32(in[k], host) == SDC_OK;
    }
    ok = ok && sdc_tensor_set_f32(in[FLUX_IN_POOLED], cond->pooled) == SDC_OK;
    if (ok) {
        memcpy(ids, cond->txt_ids, sizeof(float) * (size_t)(T * A));
        memcpy(ids + T * A, cond->img_ids, sizeof(float) * (size_t)(N * A));
    }
    const int same = ok && m->rope_ids && !memcmp(m->rope_ids, ids, sizeof(float) * (size_t)(S * A));
    if (ok && !same) {
        ok = sdc_flux_rope_tables(c, ids, S, host, host + S * half) &&
            sdc_tensor_set_f32(in[FLUX_IN_COS], host) == SDC_OK &&
            sdc_tensor_set_f32(in[FLUX_IN_SIN], host + S * half) == SDC_OK;
        /* the tables now hold these ids' values (ids are handed over; NULL: made again next time) */
        free(m->rope_ids);
        m->rope_ids = ok ? ids : NULL;
        if (ok) ids = NULL;
    }
    free(host);
    free(t);
    free(ids);
    return ok;
}

/* linear_2(SiLU(linear_1(x))) [B, C] of an uploaded input x [B, in], kept */
static sdc_tensor *embed(flux_fwd *f, const flux_mlp *w, const sdc_tensor *x) {
    sdc_tensor *h = sdc_flux_linear(&f->p, x, w->w1, w->b1);
    if (!h) return NULL;
    sdc_unary(h, h, SDC_UNARY_SILU);
    sdc_tensor *y = sdc_flux_linear(&f->p, h, w->w2, w->b2);
    sdc_flux_drop(&f->p, h);
    return y;
}

/* temb = time (+ guidance) + text embedding [B, C]; returns SiLU(temb), kept */
static sdc_tensor *conditioning(flux_fwd *f) {
    const sdc_flux *m = f->m;
    sdc_tensor *temb = embed(f, &m->time, f->in[FLUX_IN_TIME]);
    if (temb && m->cfg.guidance_embeds) {
        sdc_tensor *g = embed(f, &m->guidance, f->in[FLUX_IN_GUIDANCE]);
        if (!g) return NULL;
        sdc_binary(temb, temb, g, SDC_BINARY_ADD);
        sdc_flux_drop(&f->p, g);
    }
    sdc_tensor *txt = temb ? embed(f, &m->text, f->in[FLUX_IN_POOLED]) : NULL;
    if (!txt) return NULL;
    sdc_binary(temb, temb, txt, SDC_BINARY_ADD);
    sdc_flux_drop(&f->p, txt);
    if (f->cb) f->cb("time_text_embed", temb, f->user);
    sdc_unary(temb, temb, SDC_UNARY_SILU);
    return temb;
}

/* Shows the text and image parts of h [B, T + N, C] to the callback as "<name>.0" and "<name>.1". */
static int show_split(flux_fwd *f, const char *name, const sdc_tensor *h, int64_t T) {
    const int64_t B = h->ne[0], N = h->ne[1] - T, C = h->ne[2];
    sdc_tensor *t = sdc_flux_keep(&f->p, sdc_act_like(h, 3, (int64_t[]){B, T, C}));
    sdc_tensor *i = t ? sdc_flux_keep(&f->p, sdc_act_like(h, 3, (int64_t[]){B, N, C})) : NULL;
    if (!i) return 0;
    sdc_slice(t, h, 1, 0);
    sdc_slice(i, h, 1, T);
    char full[96];
    snprintf(full, sizeof full, "%s.0", name);
    f->cb(full, t, f->user);
    snprintf(full, sizeof full, "%s.1", name);
    f->cb(full, i, f->user);
    sdc_flux_drop(&f->p, t);
    sdc_flux_drop(&f->p, i);
    return 1;
}

static void show(flux_fwd *f, const char *fmt, int i, const sdc_tensor *t) {
    char name[96];
    snprintf(name, sizeof name, fmt, i);
    if (f->cb) f->cb(name, t, f->user);
}

/* The blocks, from the embedded streams to h [B, T + N, C] (text first), kept. */
static sdc_tensor *blocks(flux_fwd *f, const sdc_flux_ctx *ctx, sdc_tensor *img, sdc_tensor *txt) {
    const sdc_flux_config *c = &f->m->cfg;
    sdc_weight_stream *st = f->m->stream;
    for (int i = 0; i < c->n_layers; i++) {
        if (!sdc_stream_acquire(st, i) || !sdc_flux_double_forward(&f->m->dbl[i], ctx, img, txt)) return NULL;
        sdc_stream_release(st, i);
        show(f, "transformer_blocks.%d.0", i, txt);
        show(f, "transformer_blocks.%d.1", i, img);
    }
    const int64_t B = img->ne[0], T = txt->ne[1], N = img->ne[1], C = img->ne[2];
    sdc_tensor *h = sdc_flux_keep(&f->p, sdc_act_like(img, 3, (int64_t[]){B, T + N, C}));
    if (!h) return NULL;
    sdc_concat(h, txt, img, 1);
    sdc_flux_drop(&f->p, txt);
    sdc_flux_drop(&f->p, img);
    for (int i = 0; i < c->n_single_layers; i++) {
        if (!sdc_stream_acquire(st, c->n_layers + i) || !sdc_flux_single_forward(&f->m->sgl[i], ctx, h)) return NULL;
        sdc_stream_release(st, c->n_layers + i);
        char name[64];
        snprintf(name, sizeof name, "single_transformer_blocks.%d", i);
        if (f->cb && !show_split(f, name, h, T)) return NULL;
    }
    return h;
}

/* norm_out and proj_out of the image tokens of h [B, T + N, C] into out [B, N, out] (act dtype). */
static int final_layer(flux_fwd *f, const sdc_tensor *silu_temb, const sdc_tensor *h, int64_t T, sdc_tensor *out) {
    const sdc_flux *m = f->m;
    const int64_t B = h->ne[0], N = h->ne[1] - T, C = h->ne[2];
    sdc_tensor *img = sdc_flux_keep(&f->p, sdc_act_like(h, 3, (int64_t[]){B, N, C}));
    sdc_tensor *mod = img ? sdc_flux_linear(&f->p, silu_temb, m->norm_out_w, m->norm_out_b) : NULL;   // [B, 2C]
    sdc_tensor *scale = mod ? sdc_flux_chunk(&f->p, mod, 0, C) : NULL;
    sdc_tensor *shift = scale ? sdc_flux_chunk(&f->p, mod, 1, C) : NULL;
    sdc_tensor *n = shift ? sdc_flux_keep(&f->p, sdc_act_like(img, 3, img->ne)) : NULL;
    if (!n) return 0;
    sdc_slice(img, h, 1, T);
    sdc_layer_norm_mod(n, img, shift, scale, SDC_FLUX_EPS);
    if (f->cb) f->cb("norm_out", n, f->user);
    sdc_linear(out, n, m->proj_w, m->proj_b);
    if (f->cb) f->cb("proj_out", out, f->user);
    return 1;
}

static int run(flux_fwd *f, const sdc_tensor *x, const sdc_tensor *context, sdc_tensor *out) {
    const sdc_flux *m = f->m;
    const int64_t T = context->ne[1];
    sdc_flux_ctx ctx = {.heads = m->cfg.n_heads};
    sdc_tensor *silu_temb = conditioning(f);
    if (!silu_temb) return 0;
    ctx.silu_temb = silu_temb, ctx.cs = f->in[FLUX_IN_COS], ctx.sn = f->in[FLUX_IN_SIN];
    sdc_tensor *img = sdc_flux_linear(&f->p, x, m->x_w, m->x_b);   // [B, N, C]
    if (!img) return 0;
    if (f->cb) f->cb("x_embedder", img, f->user);
    sdc_tensor *txt = sdc_flux_linear(&f->p, context, m->ctx_w, m->ctx_b);   // [B, T, C]
    if (!txt) return 0;
    if (f->cb) f->cb("context_embedder", txt, f->user);
    sdc_tensor *h = blocks(f, &ctx, img, txt);
    return h && final_layer(f, silu_temb, h, T, out);
}

static sdc_status check_args(const sdc_flux *m, const sdc_tensor *x, const sdc_flux_cond *cond, const sdc_tensor *out) {
    const sdc_flux_config *c = &m->cfg;
    const sdc_tensor *ctx = cond->context;
    if (x->ndim != 3 || x->ne[2] != c->in_channels || !ctx || ctx->ndim != 3 || ctx->ne[0] != x->ne[0] ||
        ctx->ne[2] != c->joint_dim || out->ndim != 3 || out->ne[0] != x->ne[0] || out->ne[1] != x->ne[1] ||
        out->ne[2] != c->out_channels || x->ne[0] < 1 || x->ne[1] < 1 || ctx->ne[1] < 1) {
        SDC_LOGE(&m->log,
                 "sdc_flux_forward: shapes do not fit the model: x needs [B, N, %d], context [B, T, %d], out "
                 "[B, N, %d]",
                 c->in_channels, c->joint_dim, c->out_channels);
        return SDC_ERR_INVALID_ARG;
    }
    if (!cond->pooled || !cond->timestep || !cond->img_ids || !cond->txt_ids) {
        SDC_LOGE(&m->log, "sdc_flux_forward: pooled, timestep, img_ids and txt_ids are all needed");
        return SDC_ERR_INVALID_ARG;
    }
    if (!cond->guidance != !c->guidance_embeds) {
        SDC_LOGE(&m->log, "sdc_flux_forward: %s",
                 c->guidance_embeds ? "this model (guidance_embeds) needs a guidance"
                                    : "this model has no guidance embedding");
        return SDC_ERR_INVALID_ARG;
    }
    return SDC_OK;
}

/* t, or a copy of it in dtype dt kept in p (NULL when out of memory). */
static const sdc_tensor *in_dtype(sdc_flux_tmps *p, const sdc_tensor *t, sdc_dtype dt) {
    if (t->dtype == dt) return t;
    sdc_tensor *c = sdc_flux_keep(p, sdc_act_new(t->backend, dt, t->ndim, t->ne));
    if (c) sdc_copy(c, t);
    return c;
}

/* The forward's device work once its inputs are uploaded (what a recording holds): the conversions at the
 * boundary, the transformer, every temporary freed again. 0 when out of memory. */
static int forward_device(flux_fwd *f, const sdc_tensor *x, const sdc_tensor *context, sdc_tensor *out) {
    sdc_flux *m = f->m;
    /* inputs and output in another dtype: converted here, at the boundary */
    const sdc_tensor *xa = in_dtype(&f->p, x, m->act_dtype);
    const sdc_tensor *ca = xa ? in_dtype(&f->p, context, m->act_dtype) : NULL;
    sdc_tensor *oa = out->dtype == m->act_dtype ? out : sdc_act_new(m->be, m->act_dtype, 3, out->ne);
    int ok = ca && oa && run(f, xa, ca, oa);
    sdc_flux_drop_all(&f->p);
    if (ok && oa != out) sdc_copy(out, oa);
    if (oa != out) sdc_tensor_free(oa);
    return ok;
}

sdc_status sdc_flux_forward(sdc_flux *m, const sdc_tensor *x, const sdc_flux_cond *cond, sdc_tensor *out,
                            sdc_flux_block_cb cb, void *cb_user) {
    sdc_status st = check_args(m, x, cond, out);
    if (st != SDC_OK) return st;
    const sdc_tensor *context = cond->context;
    const int64_t B = x->ne[0], N = x->ne[1], T = context->ne[1];
    if (m->in[FLUX_IN_TIME] && (m->in[FLUX_IN_TIME]->ne[0] != B || m->in[FLUX_IN_COS]->ne[0] != T + N))
        drop_inputs(m);   // another batch or sequence
    int ok = upload_inputs(m, cond, B, T, N);
    flux_fwd f = {.m = m, .in = m->in, .cb = cb, .user = cb_user};
    sdc_stream_begin(m->stream);
    ok = ok && forward_device(&f, x, context, out);
    if (!m->keep_in) drop_inputs(m);
    if (!ok && sdc_stream_status(m->stream) != SDC_OK) {
        SDC_LOGE(&m->log, "sdc_flux_forward: a streamed block could not be loaded: %s",
                 sdc_status_str(sdc_stream_status(m->stream)));
        return sdc_stream_status(m->stream);
    }
    if (!ok) {
        SDC_LOGE(&m->log, "sdc_flux_forward: out of %s memory for activations", sdc_backend_name(m->be));
        return SDC_ERR_OOM;
    }
    return sdc_backend_status(m->be);
}
