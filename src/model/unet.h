/* unet.h - the Stable Diffusion 1.x / 2.x denoiser (diffusers UNet2DConditionModel), built from
 * unet/config.json.
 *
 * Reference path (x [B, 4, H, W], timesteps [B], context [B, T, Cctx] -> eps [B, 4, H, W]):
 *   time:  sinusoidal embedding of t (host, float32) -> linear_1 -> SiLU -> linear_2 = temb
 *          (+ add_embedding(text_embeds, sinusoidal(time_ids)) for SDXL's text_time)
 *   conv_in 3x3                                                          -> skip
 *   down blocks i: layers_per_block x (resnet [+ Transformer2D]) -> skip each,
 *                  then conv 3x3 stride 2 (not the last block)             -> skip
 *   mid block: resnet, Transformer2D, resnet
 *   up blocks i: (layers_per_block + 1) x (concat skip on channels, resnet [+ Transformer2D]),
 *                then nearest 2x (cut to the skip's size) + conv 3x3 (not the last block)
 *   GroupNorm + SiLU -> conv_out 3x3
 * Transformer2D and its blocks are described in unet_transformer.h; the resnets in resnet.h.
 *
 * Weights by canonical diffusers name under a prefix ("unet."). Intermediates are activations of the
 * UNet's compute dtype (chosen at load time), freed as soon as they are dead; every skip stays alive from its down
 * block to its up block.
 *
 * Threading: a UNet is used with its backend from one thread at a time. */
#ifndef SDC_MODEL_UNET_H
#define SDC_MODEL_UNET_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "backend/backend.h"
#include "io/model_index.h"
#include "model/stream.h"
#include "model/weights.h"

#define SDC_UNET_MAX_BLOCKS 8
#define SDC_UNET_MAX_LAYERS 8 /* resnets per down block */

typedef struct sdc_unet_config {
    int in_channels, out_channels;               /* 4, 4 */
    int n_blocks;                                /* down blocks = up blocks */
    int block_out_channels[SDC_UNET_MAX_BLOCKS]; /* per down block; up blocks walk them reversed */
    int layers_per_block[SDC_UNET_MAX_BLOCKS];   /* resnets per down block i (up block i has
                                                      layers_per_block[n-1-i] + 1) */
    int down_attn[SDC_UNET_MAX_BLOCKS];          /* 1: CrossAttnDownBlock2D, 0: DownBlock2D */
    int up_attn[SDC_UNET_MAX_BLOCKS];            /* 1: CrossAttnUpBlock2D, 0: UpBlock2D */
    int heads[SDC_UNET_MAX_BLOCKS];              /* attention heads of down block i (the up block
                                                      i uses heads[n-1-i], the mid block heads[n-1]);
                                                      head dim = channels / heads */
    int transformer_layers[SDC_UNET_MAX_BLOCKS]; /* BasicTransformerBlocks per Transformer2D, per
                                                      down block (up blocks reversed, mid the last) */
    int cross_attention_dim;                     /* Cctx: 768 (SD 1.x), 1024 (SD 2.x) */
    int norm_num_groups;                         /* 32 */
    float norm_eps;                              /* resnets and the output norm: 1e-5 */
    int flip_sin_to_cos;                         /* time embedding: cos first */
    int freq_shift;
    int time_embed_dim;        /* 4 x block_out_channels[0] unless configured */
    int use_linear_projection; /* proj_in/out Linear (SD 2.x) or 1x1 conv */
    int upcast_attention;      /* f32 softmax; recorded (the CPU backend is f32) */
    int sample_size;           /* nominal latent size, informational (0: absent) */
    /* addition_embed_type "text_time" (SDXL): emb = time_embedding(t) + add_embedding(concat(text_embeds,
     * sinusoidal(time_ids) each addition_time_embed_dim wide)) */
    int text_time;
    int addition_time_embed_dim; /* 256 */
    int add_in_dim;              /* projection_class_embeddings_input_dim: P + n_time_ids * that (2816) */
} sdc_unet_config;

/* Reads a UNet2DConditionModel config.json; absent keys take diffusers' defaults. Options sdc does not
 * implement (another block type, class / addition embeddings, other kernels, activations or time
 * embeddings, more than SDC_UNET_MAX_BLOCKS blocks or SDC_UNET_MAX_LAYERS layers, ...) are SDC_ERR_UNSUPPORTED; wrong types or
 * nonsensical values SDC_ERR_FORMAT. The reason is logged. */
sdc_status sdc_unet_config_parse(const cJSON *json, const sdc_logger *log, sdc_unet_config *cfg);

typedef struct sdc_unet sdc_unet;

/* Loads src->prefix + every tensor the config implies ("unet." + "conv_in.weight", ...) from src->index
 * into src->be in src's precision, checking each shape. cfg is copied; the index must stay open only
 * during the call. On error nothing stays allocated and *out is NULL (SDC_ERR_NOT_FOUND / SDC_ERR_FORMAT /
 * SDC_ERR_OOM / SDC_ERR_IO). */
sdc_status sdc_unet_load(const sdc_unet_config *cfg, const sdc_weight_source *src, sdc_unet **out);
void sdc_unet_free(sdc_unet *u); /* NULL is harmless */
const sdc_unet_config *sdc_unet_get_config(const sdc_unet *u);
/* Backend bytes the weights take. */
size_t sdc_unet_weight_bytes(const sdc_unet *u);
/* The dtype the UNet computes in, chosen at load time: x, context and out in it need no conversion. */
sdc_dtype sdc_unet_act_dtype(const sdc_unet *u);
/* The backend the UNet was loaded onto. */
sdc_backend *sdc_unet_backend(const sdc_unet *u);
/* Loaded with src->window > 0: its block stream (model/stream.h; units: down blocks, mid block, up
 * blocks in forward order), else NULL. */
sdc_weight_stream *sdc_unet_weight_stream(sdc_unet *u);

/* Called after each top-level block with its output, named as in diffusers: "time_embedding" [B, Ct],
 * "add_embedding" [B, Ct] (text_time UNets),
 * "conv_in", "down_blocks.<i>" (the hidden states after the block, not the skips), "mid_block",
 * "up_blocks.<i>", "conv_out". t is valid only during the call. */
typedef void (*sdc_unet_block_cb)(const char *name, const sdc_tensor *t, void *user);

/* What the UNet is conditioned on besides the timestep. */
typedef struct sdc_unet_cond {
    const sdc_tensor *context; /* [B, T, cross_attention_dim] on the UNet's backend */
    /* text_time UNets only (else NULL, 0): host [B, text_embeds_dim] and [B, n_time_ids], with
     * text_embeds_dim + n_time_ids * addition_time_embed_dim == add_in_dim */
    const float *text_embeds;
    int text_embeds_dim;
    const float *time_ids;
    int n_time_ids;
} sdc_unet_cond;

/* x [B, in_channels, H, W], timesteps [B] on the host, cond (context [B, T, cross_attention_dim]) ->
 * out [B, out_channels, H, W], preallocated by the caller. All tensors live on the UNet's backend and
 * stay the caller's; x, context and out in another dtype than sdc_unet_act_dtype are converted. Any H, W >= 1 works (odd sizes are cut back after each upsample, as diffusers
 * does). cb may be NULL. SDC_ERR_INVALID_ARG for wrong shapes; SDC_ERR_OOM when an intermediate
 * cannot be allocated (everything allocated here is freed again). */
sdc_status sdc_unet_forward(sdc_unet *u, const sdc_tensor *x, const float *timesteps, const sdc_unet_cond *cond,
                            sdc_tensor *out, sdc_unet_block_cb cb, void *cb_user);

/* Drops the forward's recording (model/graph.h) and the inputs it kept: call when the operands the last
 * forwards were given go away (the end of a denoise), so nothing stays on the device between phases. */
void sdc_unet_graph_release(sdc_unet *u);
/* How many forwards since the load ran as a replay of a recording (tests, logs). */
uint64_t sdc_unet_graph_replays(const sdc_unet *u);

/* The float32 sinusoidal timestep embedding exactly as diffusers' get_timestep_embedding computes it:
 * emb[b] = [cos(t_b f), sin(t_b f)] (flip_sin_to_cos) or [sin, cos], f_j = exp(-ln(10000) j / (half -
 * freq_shift)), j < half = dim / 2 (a zero column last for odd dim). out holds B * dim floats. */
void sdc_unet_timestep_embedding(const float *timesteps, int B, int dim, int flip_sin_to_cos, int freq_shift,
                                 float *out);

#endif
