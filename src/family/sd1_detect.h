/* sd1_detect.h - the SD family's reading of single-file checkpoints (original CompVis / LDM layout):
 *   model.diffusion_model.*           the UNet
 *   first_stage_model.*               the VAE (mid-block attention stored as 1x1 convs)
 *   cond_stage_model.transformer.*    the CLIP text encoder (transformers names)
 * usually fp16, with no configs and no tokenizer.
 *
 * From the io layer's facts (io/single_file.h: names and shapes) it decides whether the file is
 * SD 1.x, infers the architecture, builds the diffusers configs and the LDM name map, and indexes the
 * file under canonical names. Shapes give the widths, block and layer counts; what they cannot tell
 * comes from the template of the family the shapes identify:
 *   SD 1.x (CLIP ViT-L/14 text encoder of width 768, UNet with 1x1-conv proj_in and cross-attention
 *   width 768): CLIP 12 heads (64 wide), quick_gelu, layer-norm eps 1e-5, EOS 49407; UNet 8 heads,
 *   32 groups; VAE 32 groups, scaling 0.18215; PNDMScheduler with SD 1.5's settings.
 * Other layouts (SD 2.x's OpenCLIP text encoder, SDXL's conditioner) are SDC_ERR_UNSUPPORTED, with a
 * message naming what was found; a file that lacks one of the three models is SDC_ERR_NOT_FOUND. */
#ifndef SDC_FAMILY_SD1_DETECT_H
#define SDC_FAMILY_SD1_DETECT_H

#include <cjson/cJSON.h>

#include "io/ldm_names.h"
#include "io/model_files.h"
#include "io/single_file.h"

#define SD1_SF_MAX_BLOCKS SDC_LDM_MAX_BLOCKS

/* The SD family's component folders (model_files parts), by index. */
enum {
    SD1_PART_TEXT_ENCODER = 0,
    SD1_PART_TEXT_ENCODER_2, /* SDXL only */
    SD1_PART_UNET,
    SD1_PART_VAE,
    SD1_N_PARTS
};
/* "text_encoder", "text_encoder_2", "unet", "vae" */
const char *sd1_part_name(int part);

/* What detection found: shapes, plus the family template for what shapes cannot tell. */
typedef struct sd1_sf_arch {
    const char *family; /* "SD 1.x" */
    /* text encoder: CLIPTextModel */
    int te_hidden, te_intermediate, te_layers, te_heads, te_positions, te_vocab;
    int te_bos, te_eos;
    double te_eps;
    const char *te_act; /* "quick_gelu" */
    /* UNet2DConditionModel */
    int unet_blocks, unet_layers;
    int unet_channels[SD1_SF_MAX_BLOCKS];
    int unet_attn[SD1_SF_MAX_BLOCKS]; /* down block i has cross-attention */
    int unet_transformer_layers;      /* BasicTransformerBlocks per attention */
    int unet_heads, unet_cross_dim, unet_in, unet_out, unet_groups, unet_sample_size;
    int unet_linear_proj; /* proj_in/proj_out are linears (else 1x1 convs) */
    /* AutoencoderKL */
    int vae_blocks, vae_layers;
    int vae_channels[SD1_SF_MAX_BLOCKS];
    int vae_in, vae_out, vae_latent, vae_groups, vae_sample_size;
    int vae_quant_conv, vae_post_quant_conv;
    double vae_scaling;
} sd1_sf_arch;

/* 1: the facts hold a group of the LDM / SGM checkpoint layouts (model.diffusion_model.,
 * first_stage_model., cond_stage_model., conditioner.embedders.): the family opens the file and
 * says, if it cannot, what it found instead. */
int sd1_sf_probe(const sdc_sf_facts *f);

/* Detects the architecture from the facts (names as in the file, and shapes). */
sdc_status sd1_sf_detect(const sdc_sf_facts *f, const sdc_logger *log, sd1_sf_arch *out);

/* The JSON files a diffusers folder of architecture a holds. NULL on OOM; the caller deletes. */
cJSON *sd1_sf_text_encoder_config(const sd1_sf_arch *a);
cJSON *sd1_sf_unet_config(const sd1_sf_arch *a);
cJSON *sd1_sf_vae_config(const sd1_sf_arch *a);
/* SD 1.5's scheduler_config.json: PNDMScheduler, scaled_linear betas 0.00085..0.012 over 1000 steps,
 * steps_offset 1, leading spacing, skip_prk_steps. */
cJSON *sd1_sf_scheduler_config(void);

/* Builds the LDM name map from a UNet and a VAE config.json (block types and layers_per_block). */
sdc_status sd1_sf_ldm_map_from_configs(const cJSON *unet, const cJSON *vae, const sdc_logger *log, sdc_ldm_map *out);

/* What the family builds for a single file: the configs mf lacks (NULL where mf has one). */
typedef struct sd1_sf_configs {
    cJSON *config[SD1_N_PARTS]; /* NULL where the model files have one, or the part is absent */
    cJSON *scheduler_config;
} sd1_sf_configs;

/* For the single file mf (mf->single_file): the configs it lacks (detected from its facts when the
 * model files have none), the LDM name map of those configs, and mf->index filled with the file's
 * tensors under their canonical "<component>.<diffusers name>"; every component must have tensors.
 * out is zeroed first; free it with sd1_sf_configs_free, also on failure. */
sdc_status sd1_sf_open(sdc_model_files *mf, const sdc_logger *log, sd1_sf_configs *out);
void sd1_sf_configs_free(sd1_sf_configs *c);

#endif
