/* unet.c - UNet2DConditionModel: loading and the forward pass (see unet.h). */
#include "model/unet.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/activations.h"
#include "model/graph.h"
#include "model/resnet.h"
#include "model/stream.h"
#include "model/unet_transformer.h"
#include "model/weights.h"

#define MAX_SKIPS (1 + SDC_UNET_MAX_BLOCKS * (SDC_UNET_MAX_LAYERS + 1))

/* A down or up block: resnets, their Transformer2Ds (CrossAttn blocks), and the down/upsampler conv. */
typedef struct unet_block {
    int n_layers, has_attn;
    sdc_resnet res[SDC_UNET_MAX_LAYERS + 1];
    sdc_unet_transformer attn[SDC_UNET_MAX_LAYERS + 1];
    sdc_tensor *sample_w, *sample_b; /* [C, C, 3, 3], [C]; NULL for the last block */
} unet_block;

struct sdc_unet {
    sdc_unet_config cfg;
    sdc_backend *be;
    sdc_dtype act_dtype; /* chosen at load time */
    sdc_logger log;
    sdc_weight_set ws;                 /* owns every weight tensor (streamed: the rest's) */
    sdc_weight_stream *stream;         /* streamed: units down[i] = i, mid = n, up[i] = n + 1 + i; else NULL */
    sdc_tensor *time_w1, *time_b1;     /* [Td, C0], [Td] */
    sdc_tensor *time_w2, *time_b2;     /* [Td, Td], [Td] */
    sdc_tensor *add_w1, *add_b1;       /* [Td, add_in], [Td]: text_time only */
    sdc_tensor *add_w2, *add_b2;       /* [Td, Td], [Td] */
    sdc_tensor *conv_in_w, *conv_in_b; /* [C0, Cin, 3, 3], [C0] */
    unet_block down[SDC_UNET_MAX_BLOCKS], up[SDC_UNET_MAX_BLOCKS];
    sdc_resnet mid_res[2];
    sdc_unet_transformer mid_attn;
    sdc_tensor *norm_out_w, *norm_out_b; /* [C0] */
    sdc_tensor *conv_out_w, *conv_out_b; /* [Cout, C0, 3, 3], [Cout] */
    /* a recorded forward (model/graph.h) and the inputs it reads, which stay between its calls: the
     * timestep embedding's [B, C0] and (text_time) the add embedding's [B, add_in] */
    sdc_graph graph;
    sdc_tensor *graph_in[2];
    uint64_t graph_replays; /* forwards that ran as a replay, since the load */
};

/* ---- loading ---- */

static void load_transformer(sdc_unet *u, sdc_weight_set *ws, sdc_unet_transformer *t, const char *prefix, int channels,
                             int heads, int layers) {
    const sdc_unet_config *c = &u->cfg;
    sdc_unet_transformer_load(t, ws, prefix, channels, heads, layers, c->cross_attention_dim, c->norm_num_groups,
                              c->upcast_attention);
}

static void load_down(sdc_unet *u, sdc_weight_set *ws, int i, int in_ch) {
    const sdc_unet_config *c = &u->cfg;
    unet_block *b = &u->down[i];
    const int ch = c->block_out_channels[i];
    char p[128];
    b->n_layers = c->layers_per_block[i];
    b->has_attn = c->down_attn[i];
    for (int j = 0; j < b->n_layers; j++) {
        snprintf(p, sizeof p, "down_blocks.%d.resnets.%d.", i, j);
        sdc_resnet_load(&b->res[j], ws, p, j == 0 ? in_ch : ch, ch, c->time_embed_dim, c->norm_num_groups, c->norm_eps);
        if (b->has_attn) {
            snprintf(p, sizeof p, "down_blocks.%d.attentions.%d.", i, j);
            load_transformer(u, ws, &b->attn[j], p, ch, c->heads[i], c->transformer_layers[i]);
        }
    }
    if (i < c->n_blocks - 1) {
        b->sample_w =
            sdc_weights_matrix(ws, 4, (int64_t[]){ch, ch, 3, 3}, "down_blocks.%d.downsamplers.0.conv.weight", i);
        b->sample_b = sdc_weights_get(ws, 1, (int64_t[]){ch}, "down_blocks.%d.downsamplers.0.conv.bias", i);
    }
}

/* Channel arithmetic of diffusers' up blocks: resnet j takes (j == 0 ? prev_out : out) channels plus a
 * skip of (j == last ? the next block's down channels : out). */
static void load_up(sdc_unet *u, sdc_weight_set *ws, int i) {
    const sdc_unet_config *c = &u->cfg;
    const int n = c->n_blocks, r = n - 1 - i;   // the down block this one mirrors
    unet_block *b = &u->up[i];
    const int out = c->block_out_channels[r];
    const int prev = c->block_out_channels[i == 0 ? n - 1 : r + 1];
    const int skip_last = c->block_out_channels[r > 0 ? r - 1 : 0];
    char p[128];
    b->n_layers = c->layers_per_block[r] + 1;
    b->has_attn = c->up_attn[i];
    for (int j = 0; j < b->n_layers; j++) {
        const int in = (j == 0 ? prev : out) + (j == b->n_layers - 1 ? skip_last : out);
        snprintf(p, sizeof p, "up_blocks.%d.resnets.%d.", i, j);
        sdc_resnet_load(&b->res[j], ws, p, in, out, c->time_embed_dim, c->norm_num_groups, c->norm_eps);
        if (b->has_attn) {
            snprintf(p, sizeof p, "up_blocks.%d.attentions.%d.", i, j);
            load_transformer(u, ws, &b->attn[j], p, out, c->heads[r], c->transformer_layers[r]);
        }
    }
    if (i < n - 1) {
        b->sample_w =
            sdc_weights_matrix(ws, 4, (int64_t[]){out, out, 3, 3}, "up_blocks.%d.upsamplers.0.conv.weight", i);
        b->sample_b = sdc_weights_get(ws, 1, (int64_t[]){out}, "up_blocks.%d.upsamplers.0.conv.bias", i);
    }
}

static void load_mid(sdc_unet *u, sdc_weight_set *ws) {
    const sdc_unet_config *c = &u->cfg;
    const int n = c->n_blocks, cl = c->block_out_channels[n - 1];
    sdc_resnet_load(&u->mid_res[0], ws, "mid_block.resnets.0.", cl, cl, c->time_embed_dim, c->norm_num_groups,
                    c->norm_eps);
    load_transformer(u, ws, &u->mid_attn, "mid_block.attentions.0.", cl, c->heads[n - 1], c->transformer_layers[n - 1]);
    sdc_resnet_load(&u->mid_res[1], ws, "mid_block.resnets.1.", cl, cl, c->time_embed_dim, c->norm_num_groups,
                    c->norm_eps);
}

/* Streaming units, in forward order: down block i = i, the mid block = n, up block i = n + 1 + i. */
static void unit_load(void *owner, int k, sdc_weight_set *ws) {
    sdc_unet *u = owner;
    const int n = u->cfg.n_blocks;
    if (k < n)
        load_down(u, ws, k, k == 0 ? u->cfg.block_out_channels[0] : u->cfg.block_out_channels[k - 1]);
    else if (k == n)
        load_mid(u, ws);
    else
        load_up(u, ws, k - n - 1);
}

static void block_drop(unet_block *b) {
    for (int j = 0; j <= SDC_UNET_MAX_LAYERS; j++) sdc_unet_transformer_release(&b->attn[j]);
    memset(b, 0, sizeof *b);
}

static void unit_drop(void *owner, int k) {
    sdc_unet *u = owner;
    const int n = u->cfg.n_blocks;
    if (k < n) {
        block_drop(&u->down[k]);
    } else if (k == n) {
        sdc_unet_transformer_release(&u->mid_attn);
        memset(&u->mid_attn, 0, sizeof u->mid_attn);
        memset(u->mid_res, 0, sizeof u->mid_res);
    } else {
        block_drop(&u->up[k - n - 1]);
    }
}

static void release_transformers(sdc_unet *u) {
    for (int i = 0; i < SDC_UNET_MAX_BLOCKS; i++) {
        for (int j = 0; j <= SDC_UNET_MAX_LAYERS; j++) {
            sdc_unet_transformer_release(&u->down[i].attn[j]);
            sdc_unet_transformer_release(&u->up[i].attn[j]);
        }
    }
    sdc_unet_transformer_release(&u->mid_attn);
}

void sdc_unet_graph_release(sdc_unet *u) {
    if (!u) return;
    sdc_graph_drop(&u->graph, u->be);
    for (int i = 0; i < 2; i++) {
        sdc_tensor_free(u->graph_in[i]);
        u->graph_in[i] = NULL;
    }
}

uint64_t sdc_unet_graph_replays(const sdc_unet *u) { return u->graph_replays; }

void sdc_unet_free(sdc_unet *u) {
    if (!u) return;
    sdc_unet_graph_release(u);
    sdc_stream_free(u->stream); /* the resident units */
    release_transformers(u);
    sdc_weights_free(&u->ws);
    free(u);
}

sdc_status sdc_unet_load(const sdc_unet_config *cfg, const sdc_weight_source *src, sdc_unet **out) {
    const sdc_logger *log = src->log;
    *out = NULL;
    sdc_unet *u = calloc(1, sizeof *u);
    if (!u) {
        SDC_LOGE(log, "sdc_unet_load: out of host memory");
        return SDC_ERR_OOM;
    }
    u->cfg = *cfg;
    u->be = src->be;
    u->act_dtype = sdc_weight_source_act_dtype(src);
    if (log) u->log = *log;
    const sdc_unet_config *c = &u->cfg;
    const int n = c->n_blocks, c0 = c->block_out_channels[0];
    const int64_t td = c->time_embed_dim;
    sdc_weight_set *ws = &u->ws;
    sdc_weight_source ws_src = *src;
    ws_src.log = &u->log;
    sdc_weights_begin(ws, &ws_src, NULL);
    if (src->window > 0 && !(u->stream = sdc_stream_new(&ws_src, 2 * n + 1, u, unit_load, unit_drop))) {
        sdc_unet_free(u);
        return SDC_ERR_OOM;
    }

    u->time_w1 = sdc_weights_matrix(ws, 2, (int64_t[]){td, c0}, "time_embedding.linear_1.weight");
    u->time_b1 = sdc_weights_get(ws, 1, (int64_t[]){td}, "time_embedding.linear_1.bias");
    u->time_w2 = sdc_weights_matrix(ws, 2, (int64_t[]){td, td}, "time_embedding.linear_2.weight");
    u->time_b2 = sdc_weights_get(ws, 1, (int64_t[]){td}, "time_embedding.linear_2.bias");
    if (c->text_time) {
        u->add_w1 = sdc_weights_matrix(ws, 2, (int64_t[]){td, c->add_in_dim}, "add_embedding.linear_1.weight");
        u->add_b1 = sdc_weights_get(ws, 1, (int64_t[]){td}, "add_embedding.linear_1.bias");
        u->add_w2 = sdc_weights_matrix(ws, 2, (int64_t[]){td, td}, "add_embedding.linear_2.weight");
        u->add_b2 = sdc_weights_get(ws, 1, (int64_t[]){td}, "add_embedding.linear_2.bias");
    }
    u->conv_in_w = sdc_weights_matrix(ws, 4, (int64_t[]){c0, c->in_channels, 3, 3}, "conv_in.weight");
    u->conv_in_b = sdc_weights_get(ws, 1, (int64_t[]){c0}, "conv_in.bias");
    for (int k = 0; k < 2 * n + 1 && !u->stream; k++) unit_load(u, k, ws); /* streamed: on acquire */
    u->norm_out_w = sdc_weights_get(ws, 1, (int64_t[]){c0}, "conv_norm_out.weight");
    u->norm_out_b = sdc_weights_get(ws, 1, (int64_t[]){c0}, "conv_norm_out.bias");
    u->conv_out_w = sdc_weights_matrix(ws, 4, (int64_t[]){c->out_channels, c0, 3, 3}, "conv_out.weight");
    u->conv_out_b = sdc_weights_get(ws, 1, (int64_t[]){c->out_channels}, "conv_out.bias");

    sdc_status st = sdc_weights_end(ws);
    if (st != SDC_OK) {
        SDC_LOGE(log, "sdc_unet_load: loading the UNet weights failed: %s", sdc_status_str(st));
        sdc_unet_free(u);
        return st;
    }
    if (u->stream)
        SDC_LOGI(log, "sdc_unet_load: streamed, %d resident tensors (%.1f MB) on %s; %d blocks, at most %d resident",
                 ws->n, (double)ws->bytes_resident / 1e6, sdc_backend_name(src->be), 2 * n + 1, u->stream->window);
    else
        SDC_LOGI(log, "sdc_unet_load: %d tensors, %.1f MB on %s", ws->n, (double)ws->bytes_resident / 1e6,
                 sdc_backend_name(src->be));
    *out = u;
    return SDC_OK;
}

const sdc_unet_config *sdc_unet_get_config(const sdc_unet *u) { return &u->cfg; }

size_t sdc_unet_weight_bytes(const sdc_unet *u) { return (size_t)u->ws.bytes_resident; }

sdc_dtype sdc_unet_act_dtype(const sdc_unet *u) { return u->act_dtype; }

sdc_backend *sdc_unet_backend(const sdc_unet *u) { return u->be; }

sdc_weight_stream *sdc_unet_weight_stream(sdc_unet *u) { return u->stream; }

/* ---- time embedding ---- */

void sdc_unet_timestep_embedding(const float *timesteps, int B, int dim, int flip_sin_to_cos, int freq_shift,
                                 float *out) {
    const int half = dim / 2;
    /* As torch computes it, all in float32: the float32 arange times the float32-rounded -ln(10000),
     * divided by (half - shift), exponentiated, multiplied by t. */
    const float neg_log = (float)-log(10000.0);
    const float denom = (float)(half - freq_shift);
    for (int b = 0; b < B; b++) {
        float *row = out + (size_t)b * (size_t)dim;
        for (int j = 0; j < half; j++) {
            const float freq = expf(((float)j * neg_log) / denom);
            const float arg = timesteps[b] * freq;
            row[flip_sin_to_cos ? half + j : j] = sinf(arg);
            row[flip_sin_to_cos ? j : half + j] = cosf(arg);
        }
        if (dim % 2) row[dim - 1] = 0.0f;
    }
}

/* ---- forward ---- */

/* What the forward holds: the skip stack (each alive from its down block to its up block), the
 * running hidden states when they are not the top skip, and the activated time embedding. */
typedef struct fwd_state {
    sdc_backend *be;
    sdc_dtype dt;   // the UNet's activation dtype
    const sdc_tensor *context;
    sdc_tensor *skips[MAX_SKIPS];
    int n_skips;
    sdc_tensor *h;   // [B, C, H, W], owned unless h_is_skip
    int h_is_skip;
    sdc_tensor *temb;                     // [B, Td], SiLU applied
    const sdc_tensor *temb_in, *add_in;   // [B, C0] sinusoidal timesteps; [B, add_in] (text_time), else NULL
} fwd_state;

static void set_h(fwd_state *s, sdc_tensor *h) {
    if (!s->h_is_skip) sdc_tensor_free(s->h);
    s->h = h;
    s->h_is_skip = 0;
}

static void push_skip(fwd_state *s, sdc_tensor *t) {
    assert(s->n_skips < MAX_SKIPS);
    set_h(s, t);
    s->skips[s->n_skips++] = t;
    s->h_is_skip = 1;
}

/* h = transformer(resnet(h)) (or just the resnet). NULL when out of memory. */
static sdc_tensor *layer(fwd_state *s, const sdc_resnet *r, const sdc_unet_transformer *t, const sdc_tensor *x) {
    sdc_tensor *y = sdc_resnet_forward(r, x, s->temb);
    if (!y || !t) return y;
    sdc_tensor *a = sdc_unet_transformer_forward(t, y, s->context);
    sdc_tensor_free(y);
    return a;
}

/* linear_2(silu(linear_1(t0))) for t0 [B, k]: a TimestepEmbedding; NULL when out of memory */
static sdc_tensor *embed_mlp(fwd_state *s, const sdc_tensor *t0, const sdc_tensor *w1, const sdc_tensor *b1,
                             const sdc_tensor *w2, const sdc_tensor *b2) {
    const int64_t B = t0->ne[0], td = w1->ne[0];
    sdc_tensor *t1 = sdc_act_new(s->be, s->dt, 2, (int64_t[]){B, td});
    if (!t1) return NULL;
    sdc_linear(t1, t0, w1, b1);   // [B, Td]
    sdc_unary(t1, t1, SDC_UNARY_SILU);
    sdc_tensor *t2 = sdc_act_new(s->be, s->dt, 2, (int64_t[]){B, td});
    if (t2) sdc_linear(t2, t1, w2, b2);
    sdc_tensor_free(t1);
    return t2;
}

/* The embeddings' host-computed inputs, uploaded: tin [B, C0] = sinusoidal(timesteps) and (text_time)
 * ain [B, add_in] = concat(text_embeds, sinusoidal(time_ids)), as diffusers' add_time_proj computes them
 * (the same float32 embedding as the timestep's). 0 when out of host memory. */
static int upload_inputs(const sdc_unet *u, const float *timesteps, const sdc_unet_cond *cond, int64_t B,
                         sdc_tensor *tin, sdc_tensor *ain) {
    const sdc_unet_config *c = &u->cfg;
    const int64_t c0 = c->block_out_channels[0];
    const int64_t P = cond->text_embeds_dim, nt = cond->n_time_ids, d = c->addition_time_embed_dim;
    const int64_t k = ain ? c->add_in_dim : 0;
    float *host = malloc(sizeof(float) * (size_t)(B * (c0 > k ? c0 : k)));
    float *te = ain ? malloc(sizeof(float) * (size_t)(nt * d)) : NULL;
    const int ok = host && (!ain || te);
    if (ok) {
        sdc_unet_timestep_embedding(timesteps, (int)B, (int)c0, c->flip_sin_to_cos, c->freq_shift, host);
        sdc_tensor_set_f32(tin, host);
    }
    if (ok && ain) {
        for (int64_t b = 0; b < B; b++) {
            float *row = host + b * k;
            memcpy(row, cond->text_embeds + b * P, sizeof(float) * (size_t)P);
            sdc_unet_timestep_embedding(cond->time_ids + b * nt, (int)nt, (int)d, c->flip_sin_to_cos, c->freq_shift,
                                        te);
            memcpy(row + P, te, sizeof(float) * (size_t)(nt * d));
        }
        sdc_tensor_set_f32(ain, host);
    }
    free(host);
    free(te);
    return ok;
}

/* SDXL's add_embedding(s->add_in) [B, Td], added to s->temb */
static int add_embedding(sdc_unet *u, fwd_state *s, sdc_unet_block_cb cb, void *user) {
    sdc_tensor *a = embed_mlp(s, s->add_in, u->add_w1, u->add_b1, u->add_w2, u->add_b2);
    if (!a) return 0;
    if (cb) cb("add_embedding", a, user);
    sdc_binary(s->temb, s->temb, a, SDC_BINARY_ADD);
    sdc_tensor_free(a);
    return 1;
}

static int time_embedding(sdc_unet *u, fwd_state *s, sdc_unet_block_cb cb, void *user) {
    s->temb = embed_mlp(s, s->temb_in, u->time_w1, u->time_b1, u->time_w2, u->time_b2);
    if (!s->temb) return 0;
    if (cb) cb("time_embedding", s->temb, user);
    if (s->add_in && !add_embedding(u, s, cb, user)) return 0;
    sdc_unary(s->temb, s->temb, SDC_UNARY_SILU);   // every resnet takes silu(temb)
    return 1;
}

static int down_block(sdc_unet *u, fwd_state *s, int i) {
    const unet_block *b = &u->down[i];
    for (int j = 0; j < b->n_layers; j++) {
        sdc_tensor *y = layer(s, &b->res[j], b->has_attn ? &b->attn[j] : NULL, s->h);
        if (!y) return 0;
        push_skip(s, y);
    }
    if (b->sample_w) {
        // conv 3x3, stride 2, pad 1: [B, C, H, W] -> [B, C, (H + 1) / 2, (W + 1) / 2]
        const int64_t *ne = s->h->ne;
        sdc_tensor *d =
            sdc_act_new(s->be, s->dt, 4, (int64_t[]){ne[0], ne[1], (ne[2] - 1) / 2 + 1, (ne[3] - 1) / 2 + 1});
        if (!d) return 0;
        sdc_conv2d(d, s->h, b->sample_w, b->sample_b, 2, 1);
        push_skip(s, d);
    }
    return 1;
}

static int mid_block(sdc_unet *u, fwd_state *s) {
    sdc_tensor *y = layer(s, &u->mid_res[0], &u->mid_attn, s->h);
    if (!y) return 0;
    set_h(s, y);
    if (!(y = layer(s, &u->mid_res[1], NULL, s->h))) return 0;
    set_h(s, y);
    return 1;
}

/* Nearest 2x, then cut to the size of the skip it meets next (diffusers passes that size to
 * F.interpolate when the input is not a multiple of 2^upsamplers; cutting the 2x result gives the same
 * rows), then conv 3x3. */
static int upsample(fwd_state *s, const unet_block *b) {
    const int64_t *ne = s->h->ne;
    const sdc_tensor *next = s->skips[s->n_skips - 1];
    const int64_t B = ne[0], C = ne[1], th = next->ne[2], tw = next->ne[3];
    sdc_tensor *t = sdc_act_new(s->be, s->dt, 4, (int64_t[]){B, C, 2 * ne[2], 2 * ne[3]});
    if (!t) return 0;
    sdc_upsample2x(t, s->h);
    set_h(s, t);
    for (int dim = 2; dim <= 3; dim++) {
        const int64_t want = dim == 2 ? th : tw;
        if (s->h->ne[dim] == want) continue;
        int64_t cut[4] = {B, C, s->h->ne[2], s->h->ne[3]};
        cut[dim] = want;
        if (!(t = sdc_act_new(s->be, s->dt, 4, cut))) return 0;
        sdc_slice(t, s->h, dim, 0);
        set_h(s, t);
    }
    if (!(t = sdc_act_new(s->be, s->dt, 4, s->h->ne))) return 0;
    sdc_conv2d(t, s->h, b->sample_w, b->sample_b, 1, 1);
    set_h(s, t);
    return 1;
}

static int up_block(sdc_unet *u, fwd_state *s, int i) {
    const unet_block *b = &u->up[i];
    for (int j = 0; j < b->n_layers; j++) {
        sdc_tensor *skip = s->skips[s->n_skips - 1];
        const int64_t *ne = s->h->ne;
        sdc_tensor *cat = sdc_act_new(s->be, s->dt, 4, (int64_t[]){ne[0], ne[1] + skip->ne[1], ne[2], ne[3]});
        if (!cat) return 0;
        sdc_concat(cat, s->h, skip, 1);   // [B, C + Cs, H, W]
        set_h(s, cat);
        s->n_skips--;
        sdc_tensor_free(skip);
        sdc_tensor *y = layer(s, &b->res[j], b->has_attn ? &b->attn[j] : NULL, s->h);
        if (!y) return 0;
        set_h(s, y);
    }
    return b->sample_w ? upsample(s, b) : 1;
}

static sdc_status check_args(const sdc_unet *u, const sdc_tensor *x, const sdc_unet_cond *cond, const sdc_tensor *out) {
    const sdc_unet_config *c = &u->cfg;
    const sdc_tensor *context = cond->context;
    char a[64], b[64], d[64];
    const int added_ok = c->text_time
        ? cond->text_embeds && cond->time_ids && cond->text_embeds_dim > 0 && cond->n_time_ids > 0 &&
            (int64_t)cond->text_embeds_dim + (int64_t)cond->n_time_ids * c->addition_time_embed_dim == c->add_in_dim
        : !cond->text_embeds && !cond->time_ids;
    if (!added_ok) {
        SDC_LOGE(&u->log, "sdc_unet_forward: %s (text_embeds %d wide, %d time ids of %d; add_embedding takes %d)",
                 c->text_time ? "this UNet needs text_embeds and time_ids that fill its add_embedding"
                              : "this UNet takes no text_embeds or time_ids",
                 cond->text_embeds_dim, cond->n_time_ids, c->addition_time_embed_dim, c->add_in_dim);
        return SDC_ERR_INVALID_ARG;
    }
    if (context && x->ndim == 4 && x->ne[1] == c->in_channels && x->ne[2] >= 1 && x->ne[3] >= 1 && context->ndim == 3 &&
        context->ne[0] == x->ne[0] && context->ne[2] == c->cross_attention_dim && out->ndim == 4 &&
        out->ne[0] == x->ne[0] && out->ne[1] == c->out_channels && out->ne[2] == x->ne[2] && out->ne[3] == x->ne[3] &&
        x->backend == u->be && context->backend == u->be && out->backend == u->be)
        return SDC_OK;
    SDC_LOGE(&u->log,
             "sdc_unet_forward: shapes x %s, context %s, out %s do not fit the UNet (x [B, %d, H, W], "
             "context [B, T, %d], out [B, %d, H, W] on its backend)",
             sdc_tensor_shape_str(x, a, sizeof a), context ? sdc_tensor_shape_str(context, b, sizeof b) : "(none)",
             sdc_tensor_shape_str(out, d, sizeof d), c->in_channels, c->cross_attention_dim, c->out_channels);
    return SDC_ERR_INVALID_ARG;
}

static int run(sdc_unet *u, fwd_state *s, const sdc_tensor *x, sdc_tensor *out, sdc_unet_block_cb cb, void *user) {
    const sdc_unet_config *c = &u->cfg;
    const int64_t B = x->ne[0];
    char name[32];
    if (!time_embedding(u, s, cb, user)) return 0;

    sdc_tensor *h = sdc_act_new(s->be, s->dt, 4, (int64_t[]){B, c->block_out_channels[0], x->ne[2], x->ne[3]});
    if (!h) return 0;
    sdc_conv2d(h, x, u->conv_in_w, u->conv_in_b, 1, 1);
    push_skip(s, h);
    if (cb) cb("conv_in", s->h, user);

    const int n = c->n_blocks;
    for (int i = 0; i < n; i++) {
        if (!sdc_stream_acquire(u->stream, i) || !down_block(u, s, i)) return 0;
        sdc_stream_release(u->stream, i);
        snprintf(name, sizeof name, "down_blocks.%d", i);
        if (cb) cb(name, s->h, user);
    }
    if (!sdc_stream_acquire(u->stream, n) || !mid_block(u, s)) return 0;
    sdc_stream_release(u->stream, n);
    if (cb) cb("mid_block", s->h, user);
    for (int i = 0; i < c->n_blocks; i++) {
        if (!sdc_stream_acquire(u->stream, n + 1 + i) || !up_block(u, s, i)) return 0;
        sdc_stream_release(u->stream, n + 1 + i);
        snprintf(name, sizeof name, "up_blocks.%d", i);
        if (cb) cb(name, s->h, user);
    }
    assert(s->n_skips == 0);

    // out = conv_out(silu(norm(h)))
    sdc_tensor *g = sdc_act_new(s->be, s->dt, 4, s->h->ne);
    if (!g) return 0;
    sdc_group_norm(g, s->h, u->norm_out_w, u->norm_out_b, c->norm_num_groups, c->norm_eps, 1);
    set_h(s, g);
    if (out->dtype == s->dt) {
        sdc_conv2d(out, s->h, u->conv_out_w, u->conv_out_b, 1, 1);
    } else {   // into the caller's dtype
        sdc_tensor *o = sdc_act_new(s->be, s->dt, 4, out->ne);
        if (!o) return 0;
        sdc_conv2d(o, s->h, u->conv_out_w, u->conv_out_b, 1, 1);
        sdc_copy(out, o);
        sdc_tensor_free(o);
    }
    set_h(s, NULL);
    if (cb) cb("conv_out", out, user);
    return 1;
}

/* The forward's device work once its inputs are uploaded (what a recording holds): the conversions at the
 * boundary, the UNet, every temporary freed again. 0 when out of memory. */
static int forward_device(sdc_unet *u, fwd_state *s, const sdc_tensor *x, sdc_tensor *out, sdc_unet_block_cb cb,
                          void *cb_user) {
    const sdc_tensor *context = s->context;
    /* inputs from another component in another dtype: converted here, at the boundary */
    sdc_tensor *xc = x->dtype != s->dt ? sdc_act_new(u->be, s->dt, 4, x->ne) : NULL;
    sdc_tensor *cc = context->dtype != s->dt ? sdc_act_new(u->be, s->dt, 3, context->ne) : NULL;
    int ok = (x->dtype == s->dt || xc) && (context->dtype == s->dt || cc);
    if (ok && xc) sdc_copy(xc, x);
    if (ok && cc) sdc_copy(cc, context);
    if (cc) s->context = cc;
    ok = ok && run(u, s, xc ? xc : x, out, cb, cb_user);
    set_h(s, NULL);
    sdc_tensor_free(xc);
    sdc_tensor_free(cc);
    for (int i = 0; i < s->n_skips; i++) sdc_tensor_free(s->skips[i]);
    s->n_skips = 0;
    sdc_tensor_free(s->temb);
    s->temb = NULL;
    s->context = context;
    return ok;
}

sdc_status sdc_unet_forward(sdc_unet *u, const sdc_tensor *x, const float *timesteps, const sdc_unet_cond *cond,
                            sdc_tensor *out, sdc_unet_block_cb cb, void *cb_user) {
    const sdc_unet_config *c = &u->cfg;
    const sdc_tensor *context = cond->context;
    sdc_status st = check_args(u, x, cond, out);
    if (st != SDC_OK) return st;
    const int64_t B = x->ne[0];
    fwd_state s = {.be = u->be, .dt = u->act_dtype, .context = context};
    /* recorded and replayed (model/graph.h) where the backend can: the whole UNet resident, no per-block
     * callback, ops not timed one by one; its inputs then stay between calls in u->graph_in */
    const int graph = sdc_backend_has_graphs(u->be) && !u->stream && !cb && !u->be->profile;
    sdc_tensor *call_in[2] = {NULL, NULL}, **in = graph ? u->graph_in : call_in;
    if (graph && in[0] && in[0]->ne[0] != B) sdc_unet_graph_release(u);   // another batch size
    if (!in[0]) in[0] = sdc_act_new(u->be, s.dt, 2, (int64_t[]){B, c->block_out_channels[0]});
    if (c->text_time && !in[1]) in[1] = sdc_act_new(u->be, s.dt, 2, (int64_t[]){B, c->add_in_dim});
    s.temb_in = in[0];
    s.add_in = c->text_time ? in[1] : NULL;
    int ok = in[0] && (!c->text_time || in[1]) && upload_inputs(u, timesteps, cond, B, in[0], in[1]);
    sdc_stream_begin(u->stream);
    if (ok && graph) {
        const uint64_t key[] = {(uintptr_t)x->data,
                                (uintptr_t)out->data,
                                (uintptr_t)context->data,
                                (uintptr_t)in[0]->data,
                                in[1] ? (uintptr_t)in[1]->data : 0,
                                (uint64_t)x->dtype,
                                (uint64_t)out->dtype,
                                (uint64_t)context->dtype,
                                (uint64_t)B,
                                (uint64_t)x->ne[2],
                                (uint64_t)x->ne[3],
                                (uint64_t)context->ne[1]};
        if (sdc_graph_replay(&u->graph, u->be, key, (int)(sizeof key / sizeof key[0]))) {
            u->graph_replays++;
            return SDC_OK;
        }
        const int rec = sdc_graph_record_begin(&u->graph, u->be);
        ok = forward_device(u, &s, x, out, NULL, NULL);
        if (rec && !sdc_graph_record_end(&u->graph, u->be, ok) && ok) ok = forward_device(u, &s, x, out, NULL, NULL);
    } else if (ok) {
        ok = forward_device(u, &s, x, out, cb, cb_user);
    }
    for (int i = 0; i < 2; i++) sdc_tensor_free(call_in[i]);
    if (!ok && sdc_stream_status(u->stream) != SDC_OK) {
        SDC_LOGE(&u->log, "sdc_unet_forward: a streamed block could not be loaded: %s",
                 sdc_status_str(sdc_stream_status(u->stream)));
        return sdc_stream_status(u->stream);
    }
    if (!ok) {
        SDC_LOGE(&u->log, "sdc_unet_forward: out of %s memory for activations", sdc_backend_name(u->be));
        return SDC_ERR_OOM;
    }
    return SDC_OK;
}
