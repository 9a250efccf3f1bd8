/* vae_internal.h - what the VAE's source files share: the module structs and the building blocks. */
#ifndef SDC_MODEL_VAE_INTERNAL_H
#define SDC_MODEL_VAE_INTERNAL_H

#include "model/activations.h"
#include "model/resnet.h"
#include "model/vae.h"
#include "model/weights.h"

/* A conv's weight [Co, Ci, KH, KW] and bias [Co]. */
typedef struct sdc_vae_conv {
    sdc_tensor *w, *b;
} sdc_vae_conv;

/* Mid-block self-attention: GroupNorm, one head over the H*W positions, residual. */
typedef struct sdc_vae_attn {
    int channels, groups;
    float eps;
    sdc_tensor *norm_w, *norm_b;       /* [C] */
    sdc_tensor *q_w, *q_b, *k_w, *k_b; /* [C, C], [C] */
    sdc_tensor *v_w, *v_b, *o_w, *o_b;
} sdc_vae_attn;

/* UNetMidBlock2D without time embedding: resnet, attention (optional), resnet. */
typedef struct sdc_vae_mid {
    sdc_resnet res[2];
    sdc_vae_attn attn;
    int has_attn;
} sdc_vae_mid;

typedef struct sdc_vae_block {
    int n_res;
    sdc_resnet res[SDC_VAE_MAX_LAYERS];
    int has_resample;      /* downsample (encoder) or upsample (decoder) */
    sdc_vae_conv resample; /* its conv, 3x3 */
} sdc_vae_block;

struct sdc_vae_encoder {
    sdc_vae_config cfg;
    sdc_backend *be;
    sdc_dtype act_dtype; /* chosen at load time */
    sdc_logger log;
    sdc_weight_set ws;
    sdc_vae_conv conv_in;
    sdc_vae_block down[SDC_VAE_MAX_BLOCKS];
    sdc_vae_mid mid;
    sdc_tensor *norm_out_w, *norm_out_b;
    sdc_vae_conv conv_out;
    sdc_vae_conv quant_conv; /* 1x1, when cfg.use_quant_conv */
};

struct sdc_vae_decoder {
    sdc_vae_config cfg;
    sdc_backend *be;
    sdc_dtype act_dtype; /* chosen at load time */
    sdc_logger log;
    sdc_weight_set ws;
    sdc_vae_conv post_quant_conv; /* 1x1, when cfg.use_post_quant_conv */
    sdc_vae_conv conv_in;
    sdc_vae_mid mid;
    sdc_vae_block up[SDC_VAE_MAX_BLOCKS];
    sdc_tensor *norm_out_w, *norm_out_b;
    sdc_vae_conv conv_out;
};

/* --- building blocks (vae_blocks.c). Forward functions allocate their output on x's backend and
 * return NULL when out of memory, with nothing of theirs left allocated. --- */

/* Loads "<name>.weight" [co, ci, k, k] and "<name>.bias" [co]. */
void sdc_vae_conv_load(sdc_vae_conv *c, sdc_weight_set *ws, int co, int ci, int k, const char *name);
/* x [B, Ci, H, W] -> new [B, Co, Ho, Wo]. */
sdc_tensor *sdc_vae_conv_forward(const sdc_vae_conv *c, const sdc_tensor *x, int stride, int pad);

/* Loads "<prefix>attentions.0.*" for C channels. */
void sdc_vae_attn_load(sdc_vae_attn *a, sdc_weight_set *ws, const char *prefix, int channels, int groups, float eps);
/* x [B, C, H, W] -> new x + attention(norm(x)); x is left alone. */
sdc_tensor *sdc_vae_attn_forward(const sdc_vae_attn *a, const sdc_tensor *x);

/* Loads a mid block of C channels under prefix ("encoder.mid_block."). */
void sdc_vae_mid_load(sdc_vae_mid *m, sdc_weight_set *ws, const char *prefix, const sdc_vae_config *cfg, int channels);

/* The *_step functions consume x: they free it whether they succeed or not. */
sdc_tensor *sdc_vae_resnet_step(const sdc_resnet *r, sdc_tensor *x);
sdc_tensor *sdc_vae_mid_step(const sdc_vae_mid *m, sdc_tensor *x);

/* What one sdc_vae_decode_tiled moved and held (vae_tiled.c): bytes copied host -> backend and back, and the
 * most host bytes its activations held at once (tests and benchmarks print it). */
typedef struct sdc_vae_tile_report {
    uint64_t bytes_up, bytes_down;
    size_t host_peak;
} sdc_vae_tile_report;

/* sdc_vae_decode_tiled, filling *rep (may be NULL). */
sdc_status sdc_vae_decode_tiled_report(sdc_vae_decoder *dec, const sdc_tensor *z, float *image, int tile_latent,
                                       sdc_vae_tile_report *rep);

#endif
