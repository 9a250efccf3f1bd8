/* single_file.h - original (CompVis / LDM) single-file Stable Diffusion checkpoints:
 *   model.diffusion_model.*           the UNet
 *   first_stage_model.*               the VAE (mid-block attention stored as 1x1 convs)
 *   cond_stage_model.transformer.*    the CLIP text encoder (transformers names)
 * in one .safetensors file, usually fp16, with no configs and no tokenizer.
 *
 * The architecture comes from a diffusers folder whose config.json files describe it (config_dir),
 * or is detected from the tensor names and shapes. Shapes give the widths, block and layer counts;
 * what they cannot tell comes from the template of the family the shapes identify:
 *   SD 1.x (CLIP ViT-L/14 text encoder of width 768, UNet with 1x1-conv proj_in and cross-attention
 *   width 768): CLIP 12 heads (64 wide), quick_gelu, layer-norm eps 1e-5, EOS 49407; UNet 8 heads,
 *   32 groups; VAE 32 groups, scaling 0.18215; PNDMScheduler with SD 1.5's settings.
 * Other layouts (SD 2.x's OpenCLIP text encoder, SDXL's conditioner) are SDC_ERR_UNSUPPORTED, with a
 * message naming what was found; a file that lacks one of the three models is SDC_ERR_NOT_FOUND. */
#ifndef SDC_IO_SINGLE_FILE_H
#define SDC_IO_SINGLE_FILE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/log.h"
#include "io/ldm_names.h"
#include "io/model_files.h"
#include "io/model_index.h"
#include "sdc.h"

#define SDC_SF_MAX_BLOCKS SDC_LDM_MAX_BLOCKS

/* What detection found: shapes, plus the family template for what shapes cannot tell. */
typedef struct sdc_sf_arch {
    const char *family; /* "SD 1.x" */
    /* text encoder: CLIPTextModel */
    int te_hidden, te_intermediate, te_layers, te_heads, te_positions, te_vocab;
    int te_bos, te_eos;
    double te_eps;
    const char *te_act; /* "quick_gelu" */
    /* UNet2DConditionModel */
    int unet_blocks, unet_layers;
    int unet_channels[SDC_SF_MAX_BLOCKS];
    int unet_attn[SDC_SF_MAX_BLOCKS]; /* down block i has cross-attention */
    int unet_transformer_layers;      /* BasicTransformerBlocks per attention */
    int unet_heads, unet_cross_dim, unet_in, unet_out, unet_groups, unet_sample_size;
    int unet_linear_proj; /* proj_in/proj_out are linears (else 1x1 convs) */
    /* AutoencoderKL */
    int vae_blocks, vae_layers;
    int vae_channels[SDC_SF_MAX_BLOCKS];
    int vae_in, vae_out, vae_latent, vae_groups, vae_sample_size;
    int vae_quant_conv, vae_post_quant_conv;
    double vae_scaling;
} sdc_sf_arch;

/* Detects the architecture of a single file from its tensors' names (as in the file, unmapped) and
 * shapes only; data, offsets and dtypes are not looked at. n tensors at tensors[0..n). */
sdc_status sdc_single_file_detect(const sdc_tensor_info *tensors, size_t n, const sdc_logger *log, sdc_sf_arch *out);

/* The JSON files a diffusers folder of architecture a holds. NULL on OOM; the caller deletes. */
cJSON *sdc_sf_text_encoder_config(const sdc_sf_arch *a);
cJSON *sdc_sf_unet_config(const sdc_sf_arch *a);
cJSON *sdc_sf_vae_config(const sdc_sf_arch *a);
/* SD 1.5's scheduler_config.json: PNDMScheduler, scaled_linear betas 0.00085..0.012 over 1000 steps,
 * steps_offset 1, leading spacing, skip_prk_steps. */
cJSON *sdc_sf_scheduler_config(void);
/* A StableDiffusionPipeline model_index.json naming the scheduler class of scheduler_config. */
cJSON *sdc_sf_model_index(const cJSON *scheduler_config);

/* Builds the LDM name map from a UNet and a VAE config.json (block types and layers_per_block). */
sdc_status sdc_sf_ldm_map_from_configs(const cJSON *unet, const cJSON *vae, const sdc_logger *log, sdc_ldm_map *out);

/* Fills m (zeroed, m->index empty) from the single file at path: the configs from config_dir (NULL:
 * detected), the index of the file's tensors under their canonical "<component>.<diffusers name>",
 * weights_path[] = path for every component. Leaves m->tokenizer_dir alone. */
sdc_status sdc_single_file_open(const char *path, const char *config_dir, const sdc_logger *log, sdc_model_files *m);

#endif
