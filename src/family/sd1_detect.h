/* sd1_detect.h - the SD families' reading of single-file checkpoints, in three layouts:
 *   SD 1.x (CompVis LDM): cond_stage_model.transformer.*  transformers CLIP text encoder
 *   SD 2.x (Stability):   cond_stage_model.model.*        OpenCLIP text encoder (fused q/k/v)
 *   SDXL (SGM):           conditioner.embedders.0.transformer.*  transformers CLIP, and
 *                         conditioner.embedders.1.model.*        OpenCLIP with a text_projection
 * each with model.diffusion_model.* (the UNet; SDXL's label_emb.0.* is the add embedding) and
 * first_stage_model.* (the VAE, mid-block attention stored as 1x1 convs), usually fp16, with no
 * configs and no tokenizer.
 *
 * From the io layer's facts (io/single_file.h: names and shapes) it tells the layout, measures the
 * architecture, builds the diffusers configs and the name maps (io/ldm_names.h, io/openclip_names.h)
 * and indexes the file under canonical names. Shapes give the widths, block, layer and per-level
 * transformer counts; what they cannot tell comes from the template of the model the widths identify
 * (sd1_detect.c, sdxl_detect.c):
 *   SD 1.x  text encoder 768 wide (CLIP ViT-L/14): CLIP 12 heads, quick_gelu; UNet 8 heads, 1x1-conv
 *           proj_in; VAE scaling 0.18215; PNDMScheduler with SD 1.5's settings.
 *   SD 2.x  text encoder 1024 wide (OpenCLIP ViT-H/14): 16 heads, gelu, the last of its resblocks not
 *           run (diffusers' text encoder has one layer fewer than the file); UNet heads of 64
 *           channels, linear proj_in; DDIMScheduler, v_prediction (as diffusers' single-file loader:
 *           an SD 2.x safetensors file has no global_step, which alone marks SD 2.x base as epsilon;
 *           --prediction-type epsilon overrides).
 *   SDXL    text encoders 768 (CLIP ViT-L) + 1280 (OpenCLIP ViT-bigG) wide: 12 and 20 heads; UNet heads
 *           of 64 channels; VAE scaling 0.13025 (force_upcast); EulerDiscreteScheduler.
 * Other widths (e.g. the tiny test models) need a config folder (--config DIR); its configs are then
 * checked against the file's shapes, and a contradiction is SDC_ERR_FORMAT naming it. A file that
 * lacks one of its models (a text encoder, the UNet, the VAE) is SDC_ERR_NOT_FOUND naming it. */
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

/* The checkpoint layouts (which text encoders, under which names). */
typedef enum sd1_sf_layout {
    SD1_SF_LDM = 0,      /* SD 1.x: cond_stage_model.transformer.* */
    SD1_SF_LDM_OPENCLIP, /* SD 2.x: cond_stage_model.model.* */
    SD1_SF_SGM,          /* SDXL: conditioner.embedders.0.transformer.* + conditioner.embedders.1.model.* */
} sd1_sf_layout;

/* A text encoder: CLIPTextModel, or with projection_dim CLIPTextModelWithProjection. */
typedef struct sd1_sf_clip {
    int hidden, intermediate, layers, heads, positions, vocab;
    int file_layers;    /* layers the file holds (an OpenCLIP encoder in SD 2.x runs one fewer) */
    int projection_dim; /* text_projection's width; 0: none (CLIPTextModel) */
    int bos, eos, pad;
    double eps;
    const char *act; /* "quick_gelu", "gelu" */
} sd1_sf_clip;

/* What detection found: shapes, plus the model template for what shapes cannot tell. */
typedef struct sd1_sf_arch {
    const char *family; /* "SD 1.x", "SD 2.x", "SDXL" */
    sd1_sf_layout layout;
    sd1_sf_clip te, te2; /* te2: SDXL's second encoder (hidden 0 otherwise) */
    /* UNet2DConditionModel */
    int unet_blocks, unet_layers;
    int unet_channels[SD1_SF_MAX_BLOCKS];
    int unet_attn[SD1_SF_MAX_BLOCKS];  /* down block i has cross-attention */
    int unet_depth[SD1_SF_MAX_BLOCKS]; /* BasicTransformerBlocks per attention of down block i (1 without) */
    int unet_transformer_layers;       /* ... of the mid block */
    int unet_heads;                    /* heads of every block, when unet_head_dim is 0 */
    int unet_head_dim;                 /* > 0: block i has channels[i] / unet_head_dim heads */
    int unet_cross_dim, unet_in, unet_out, unet_groups, unet_sample_size;
    int unet_linear_proj;  /* proj_in/proj_out are linears (else 1x1 convs) */
    int unet_add_in_dim;   /* text_time (SDXL): label_emb.0.0's input width, else 0 */
    int unet_add_time_dim; /* text_time: addition_time_embed_dim = (add_in - projection) / 6 */
    /* AutoencoderKL */
    int vae_blocks, vae_layers;
    int vae_channels[SD1_SF_MAX_BLOCKS];
    int vae_in, vae_out, vae_latent, vae_groups, vae_sample_size;
    int vae_quant_conv, vae_post_quant_conv;
    double vae_scaling;
    const char *prediction; /* "epsilon", "v_prediction" */
} sd1_sf_arch;

/* 1: the facts hold a group of the LDM / SGM checkpoint layouts (model.diffusion_model.,
 * first_stage_model., cond_stage_model., conditioner.embedders.): the family opens the file and
 * says, if it cannot, what it found instead. */
int sd1_sf_probe(const sdc_sf_facts *f, int xl); /* xl: SGM files (conditioner.embedders.), else LDM ones */

/* The layout of the facts' key groups. A file without one of the layout's models is SDC_ERR_NOT_FOUND,
 * one of no known layout SDC_ERR_UNSUPPORTED (logged, naming what was found). */
sdc_status sd1_sf_layout_of(const sdc_sf_facts *f, const sdc_logger *log, sd1_sf_layout *out);
/* Measures the architecture from the facts' shapes (everything but the template's part). */
sdc_status sd1_sf_measure(const sdc_sf_facts *f, const sdc_logger *log, sd1_sf_arch *out);
/* Detects the architecture: sd1_sf_measure, then the template its widths identify. Unknown widths are
 * SDC_ERR_UNSUPPORTED with a message asking for a config folder (--config DIR). */
sdc_status sd1_sf_detect(const sdc_sf_facts *f, const sdc_logger *log, sd1_sf_arch *out);

/* The JSON files a diffusers folder of architecture a holds. NULL on OOM; the caller deletes. */
cJSON *sd1_sf_clip_config(const sd1_sf_clip *c);
cJSON *sd1_sf_text_encoder_config(const sd1_sf_arch *a); /* sd1_sf_clip_config(&a->te) */
cJSON *sd1_sf_unet_config(const sd1_sf_arch *a);
cJSON *sd1_sf_vae_config(const sd1_sf_arch *a);
/* The scheduler_config.json of a's family: SD 1.5's (PNDMScheduler, scaled_linear betas
 * 0.00085..0.012 over 1000 steps, steps_offset 1, leading spacing, skip_prk_steps), SD 2.1's
 * (DDIMScheduler, the same betas, a->prediction) or SDXL's (EulerDiscreteScheduler, the same betas). */
cJSON *sd1_sf_scheduler_config(const sd1_sf_arch *a);

/* Builds the LDM name map from a UNet and a VAE config.json (block types and layers_per_block). */
sdc_status sd1_sf_ldm_map_from_configs(const cJSON *unet, const cJSON *vae, const sdc_logger *log, sdc_ldm_map *out);

/* What the family builds for a single file: the configs mf lacks (NULL where mf has one). */
typedef struct sd1_sf_configs {
    cJSON *config[SD1_N_PARTS]; /* NULL where the model files have one, or the part is absent */
    cJSON *scheduler_config;
    sd1_sf_layout layout;
} sd1_sf_configs;

/* For the single file mf (mf->single_file): the configs it lacks (detected from its facts when the
 * model files have none; else the model files' are checked against the facts' shapes), the name maps of
 * those configs, and mf->index filled with the file's tensors under their canonical
 * "<component>.<diffusers name>"; every component must have tensors. xl: the caller is the SDXL family
 * (an SGM file), else the SD family (LDM files); the other kind is SDC_ERR_UNSUPPORTED. The scheduler
 * config built takes mf->prediction_type when set. out is zeroed first; free it with
 * sd1_sf_configs_free, also on failure. */
sdc_status sd1_sf_open(sdc_model_files *mf, int xl, const sdc_logger *log, sd1_sf_configs *out);

/* sdxl_detect.c: the OpenCLIP encoders and the SD 2.x / SDXL templates. */
typedef struct sd1_sf_det {
    const sdc_sf_facts *f;
    const sdc_logger *log;
    sdc_status st; /* the first error met while looking */
} sd1_sf_det;
/* A tensor the layout requires, of rank ndim: NULL and a NOT_FOUND (or FORMAT) status, logged, when
 * it is absent (or of another rank). */
const sdc_tensor_info *sd1_sf_need(sd1_sf_det *d, int ndim, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void sd1_sf_measure_openclip(sd1_sf_det *d, const char *prefix, sd1_sf_clip *c);
sdc_status sd1_sf_template_sd2(const sd1_sf_det *d, sd1_sf_arch *a);
sdc_status sd1_sf_template_sdxl(const sd1_sf_det *d, sd1_sf_arch *a);
/* The configs (those of mf, else cfg's) against a's measured shapes: SDC_ERR_FORMAT naming the first
 * contradiction. */
sdc_status sd1_sf_check_configs(const sdc_model_files *mf, const sd1_sf_configs *cfg, const sd1_sf_arch *a,
                                const sdc_logger *log);
void sd1_sf_configs_free(sd1_sf_configs *c);

#endif
