/* unet_transformer.h - diffusers Transformer2DModel with BasicTransformerBlocks, as the SD UNet uses:
 *
 *   h = GroupNorm(groups, eps 1e-6)(x)                          x [B, C, H, W]
 *   h = proj_in(h) -> [B, HW, C]    1x1 conv (SD 1.x) or Linear after the permute (SD 2.x): the same
 *                                   map, so both run as a Linear on [B, HW, C]
 *   per block: h += attn1(norm1(h))                  self-attention
 *              h += attn2(norm2(h), context)         cross-attention, context [B, T, Cctx]
 *              h += ff.net.2(GEGLU(ff.net.0.proj(norm3(h))))   GEGLU: a * gelu(gate), gate the 2nd half
 *   y = proj_out(h) -> [B, C, H, W] + x
 * LayerNorms eps 1e-5; to_q/k/v without bias, to_out.0 with; heads of C / heads channels.
 * Weights by diffusers name under a prefix such as "down_blocks.0.attentions.1.". */
#ifndef SDC_MODEL_UNET_TRANSFORMER_H
#define SDC_MODEL_UNET_TRANSFORMER_H

#include "backend/backend.h"
#include "model/activations.h"
#include "model/weights.h"

typedef struct sdc_unet_attention {
    sdc_tensor *q, *k, *v;     /* [C, C] or [C, Cctx] (k, v of cross-attention) */
    sdc_tensor *out_w, *out_b; /* [C, C], [C] */
} sdc_unet_attention;

typedef struct sdc_unet_tblock {
    sdc_tensor *norm1_w, *norm1_b, *norm2_w, *norm2_b, *norm3_w, *norm3_b; /* [C] */
    sdc_unet_attention attn1, attn2;
    sdc_tensor *ff_in_w, *ff_in_b;   /* [8C, C], [8C] */
    sdc_tensor *ff_out_w, *ff_out_b; /* [C, 4C], [C] */
} sdc_unet_tblock;

typedef struct sdc_unet_transformer {
    int channels, heads, n_layers, groups, upcast_attention;
    sdc_tensor *norm_w, *norm_b;       /* [C] */
    sdc_tensor *proj_in_w, *proj_in_b; /* [C, C] (a conv's [C, C, 1, 1] viewed so), [C] */
    sdc_tensor *proj_out_w, *proj_out_b;
    sdc_unet_tblock *blocks; /* n_layers, owned (the tensors belong to the weight set) */
} sdc_unet_transformer;

/* Fills t from ws (errors stick in ws->status, SDC_ERR_OOM when the block array cannot be allocated).
 * Call sdc_unet_transformer_release() afterwards in every case. */
void sdc_unet_transformer_load(sdc_unet_transformer *t, sdc_weight_set *ws, const char *prefix, int channels, int heads,
                               int n_layers, int ctx_dim, int groups, int upcast_attention);
void sdc_unet_transformer_release(sdc_unet_transformer *t);

/* x [B, C, H, W], context [B, T, Cctx] -> a new activation tensor [B, C, H, W], or NULL when out of
 * memory (nothing stays allocated). x is not modified or freed. */
sdc_tensor *sdc_unet_transformer_forward(const sdc_unet_transformer *t, const sdc_tensor *x, const sdc_tensor *context);

#endif
