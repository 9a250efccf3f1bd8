/* resnet.h - diffusers ResnetBlock2D (UNet and VAE), output_scale_factor 1:
 *
 *   h = conv1(silu(norm1(x)))                        GroupNorm(groups, eps), conv 3x3 pad 1
 *   h = h + time_emb_proj(temb_act)[:, :, None, None] only with a time embedding
 *   h = conv2(silu(norm2(h)))
 *   y = shortcut(x) + h                              conv_shortcut 1x1 when in != out, else x
 *
 * Weights by diffusers name under a prefix such as "down_blocks.0.resnets.1.": norm1, conv1,
 * time_emb_proj, norm2, conv2, conv_shortcut (each .weight and .bias). */
#ifndef SDC_MODEL_RESNET_H
#define SDC_MODEL_RESNET_H

#include "backend/backend.h"
#include "model/activations.h"
#include "model/weights.h"

typedef struct sdc_resnet {
    int in_ch, out_ch, temb_dim, groups;
    float eps;
    sdc_tensor *norm1_w, *norm1_b; /* [Ci] */
    sdc_tensor *conv1_w, *conv1_b; /* [Co, Ci, 3, 3], [Co] */
    sdc_tensor *temb_w, *temb_b;   /* [Co, Ct], [Co]; NULL when temb_dim == 0 */
    sdc_tensor *norm2_w, *norm2_b; /* [Co] */
    sdc_tensor *conv2_w, *conv2_b; /* [Co, Co, 3, 3], [Co] */
    sdc_tensor *short_w, *short_b; /* [Co, Ci, 1, 1], [Co]; NULL when in == out */
} sdc_resnet;

/* Fills r with tensors from ws (which owns them) named prefix + "norm1.weight" etc. temb_dim 0: no
 * time embedding (VAE). Errors stick in ws->status (see weights.h). */
void sdc_resnet_load(sdc_resnet *r, sdc_weight_set *ws, const char *prefix, int in_ch, int out_ch, int temb_dim,
                     int groups, float eps);

/* x [B, Ci, H, W]; temb_act [B, Ct], the time embedding with SiLU already applied (NULL when
 * temb_dim == 0). Returns a new activation tensor [B, Co, H, W], or NULL when out of memory (then
 * nothing stays allocated). x is not modified or freed. */
sdc_tensor *sdc_resnet_forward(const sdc_resnet *r, const sdc_tensor *x, const sdc_tensor *temb_act);

#endif
