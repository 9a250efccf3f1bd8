/* mkmodel.h - writing a random-weight Stable Diffusion 1.x, SDXL or Flux model: the files of a real
 * model, in diffusers folder layout (or, for SD 1.x, as one LDM single-file checkpoint), with weights
 * drawn at random. For tests and benchmarks without downloads: the full-size "sd15", "sdxl",
 * "flux-schnell" and "flux-dev" exercise exactly the memory and time of Stable Diffusion 1.5, SDXL
 * base and FLUX.1; "tiny-sd1", "tiny-sdxl", "tiny-flux-schnell" and "tiny-flux-dev" match the
 * reference bundle's architectures.
 *
 * Weights follow the reference bundle's recipe, so a whole fp16 run stays finite:
 *   rank >= 2      N(0, 1/fan_in), fan_in = product of all dimensions but the first
 *   embeddings     N(0, 0.5^2)
 *   norm scales    1 + 0.1 N(0, 1)
 *   other vectors  0.05 N(0, 1)
 * Every tensor has its own generator, seeded from (seed, canonical diffusers name), so a tensor holds
 * the same values in a folder and in a single file, whatever else the model contains.
 *
 * The architectures are embedded here (configs are written from them, never read). The tensor
 * enumeration is one function per component, in diffusers names, derived from the architecture as
 * diffusers' modules create them. The UNet models (SD 1.x, SDXL) are described by sdc_mk_arch, Flux by
 * sdc_mk_flux_arch (mkmodel_flux.c); sdc_mkmodel and sdc_mkmodel_plan take either by name. */
#ifndef SDC_MODEL_MKMODEL_H
#define SDC_MODEL_MKMODEL_H

#include <stdint.h>

#include "core/dtype.h"
#include "core/log.h"
#include "io/model_files.h"
#include "sdc.h"

#define SDC_MK_MAX_BLOCKS 4

/* The components mkmodel writes (each a folder of a diffusers model). Values are seeded by name, so the
 * order only sets the index in sdc_mkmodel_info. An SD 1.x architecture has no SDC_MK_TEXT_ENCODER_2,
 * SD 1.x and SDXL have no SDC_MK_TRANSFORMER, Flux has no SDC_MK_UNET (its text_encoder_2 is T5). */
typedef enum sdc_mk_part {
    SDC_MK_TEXT_ENCODER = 0,
    SDC_MK_UNET,
    SDC_MK_VAE,
    SDC_MK_TEXT_ENCODER_2,
    SDC_MK_TRANSFORMER,
    SDC_MK_N_PARTS
} sdc_mk_part;
/* "text_encoder", "unet", "vae", "text_encoder_2", "transformer" */
const char *sdc_mk_part_name(sdc_mk_part p);

/* A transformers CLIP text tower: CLIPTextModel, or CLIPTextModelWithProjection when projection is set
 * (a bias-free text_projection [projection_dim, hidden] on the pooled state). layers = 0: absent. */
typedef struct sdc_mk_clip {
    int hidden, intermediate, layers, heads, positions, vocab, projection_dim;
    int bos, eos, pad;   /* token ids written to config.json */
    const char *act;     /* "quick_gelu" (CLIP ViT-L) or "gelu" (OpenCLIP ViT-bigG) */
    int projection;      /* 1: CLIPTextModelWithProjection */
    const char *pad_tok; /* the tokenizer's pad_token: "<|endoftext|>", or "!" for SDXL's second */
} sdc_mk_clip;

typedef struct sdc_mk_arch {
    const char *name;
    sdc_mk_clip te;  /* text_encoder */
    sdc_mk_clip te2; /* text_encoder_2 (SDXL); layers = 0 for SD 1.x */
    /* denoiser: diffusers UNet2DConditionModel */
    int unet_blocks;
    int unet_channels[SDC_MK_MAX_BLOCKS]; /* block_out_channels */
    int unet_attn[SDC_MK_MAX_BLOCKS];     /* down block i is CrossAttnDownBlock2D (up block n-1-i mirrors it) */
    int unet_depth[SDC_MK_MAX_BLOCKS];    /* transformer_layers_per_block: BasicTransformerBlocks per attention;
                                           * the mid block takes the last level's */
    int unet_heads[SDC_MK_MAX_BLOCKS];    /* attention_head_dim as diffusers configs spell the head count */
    int unet_per_level;                   /* 1: the two above are written as lists (SDXL), 0: one number */
    int unet_linear_proj;                 /* use_linear_projection: proj_in / proj_out are Linear, not 1x1 conv */
    int unet_add_time_dim;                /* addition_time_embed_dim of a text_time add_embedding; 0: none */
    int unet_add_in;                      /* projection_class_embeddings_input_dim */
    int unet_layers;                      /* layers_per_block */
    int unet_cross_dim, unet_in, unet_out, unet_groups, unet_sample_size;
    /* autoencoder: diffusers AutoencoderKL */
    int vae_blocks;
    int vae_channels[SDC_MK_MAX_BLOCKS];
    int vae_layers, vae_in, vae_out, vae_latent, vae_groups, vae_sample_size;
    double vae_scaling;
    /* scheduler/scheduler_config.json: the SD 1.x betas either way */
    const char *scheduler; /* "EulerDiscreteScheduler" or "PNDMScheduler" */
} sdc_mk_arch;

/* 1 for an SDXL architecture (a second text encoder): StableDiffusionXLPipeline. */
int sdc_mk_arch_is_xl(const sdc_mk_arch *a);
/* 1 when the architecture has that component. */
int sdc_mk_has_part(const sdc_mk_arch *a, sdc_mk_part p);

/* "tiny-sd1", "sd15", "tiny-sdxl" or "sdxl"; NULL for another name (a Flux name included). */
const sdc_mk_arch *sdc_mk_arch_find(const char *name);

/* A transformers T5EncoderModel (T5 v1.1: gated-GELU feed-forward, RMS norms without bias, relative
 * position buckets in the first block's attention, no biases). */
typedef struct sdc_mk_t5 {
    int d_model, d_kv, d_ff, layers, heads, buckets, max_distance, vocab;
    int tie_embeddings; /* tie_word_embeddings in config.json; the file holds shared.weight either way */
} sdc_mk_t5;

/* A FluxPipeline: CLIP text tower, T5 encoder, FluxTransformer2DModel, the 16-channel AutoencoderKL
 * without quant convs, FlowMatchEulerDiscreteScheduler. */
typedef struct sdc_mk_flux_arch {
    const char *name;
    sdc_mk_clip te; /* text_encoder (only its pooled output is used) */
    sdc_mk_t5 t5;   /* text_encoder_2 */
    /* transformer: diffusers FluxTransformer2DModel */
    int layers, single_layers; /* double-stream (transformer_blocks), single-stream blocks */
    int heads, head_dim;       /* inner width heads x head_dim */
    int in_channels;           /* packed latent channels (16 x 2 x 2); out_channels the same */
    int joint_dim;             /* joint_attention_dim: the T5 width */
    int pooled_dim;            /* pooled_projection_dim: the CLIP width */
    int patch_size;
    int axes[3];  /* axes_dims_rope */
    int guidance; /* guidance_embeds (FLUX.1-dev) */
    /* autoencoder: AutoencoderKL, use_quant_conv = use_post_quant_conv = false */
    int vae_blocks;
    int vae_channels[SDC_MK_MAX_BLOCKS];
    int vae_layers, vae_in, vae_out, vae_latent, vae_groups, vae_sample_size;
    double vae_scaling, vae_shift;
    /* scheduler: FlowMatchEulerDiscreteScheduler */
    double shift;
    int dynamic_shift; /* use_dynamic_shifting (resolution-dependent mu) */
} sdc_mk_flux_arch;

/* "tiny-flux-schnell", "tiny-flux-dev", "flux-schnell" or "flux-dev"; NULL for another name. */
const sdc_mk_flux_arch *sdc_mk_flux_arch_find(const char *name);
/* 1 when the Flux architecture has that component. */
int sdc_mk_flux_has_part(const sdc_mk_flux_arch *a, sdc_mk_part p);

typedef enum sdc_mk_init {
    SDC_MK_INIT_FAN_IN = 0, /* N(0, 1/fan_in) */
    SDC_MK_INIT_EMBEDDING,  /* N(0, 0.25) */
    SDC_MK_INIT_NORM_SCALE, /* 1 + 0.1 N(0, 1) */
    SDC_MK_INIT_VECTOR,     /* 0.05 N(0, 1) */
    SDC_MK_INIT_COUNT
} sdc_mk_init;

/* Receives one tensor: its diffusers name inside the component (no "unet." prefix), shape in torch
 * order, and how its values are drawn. name and ne are valid only during the call. */
typedef void (*sdc_mk_tensor_fn)(void *user, const char *name, int ndim, const int64_t *ne, sdc_mk_init init);

/* A CLIP text tower (a->te or a->te2). */
void sdc_mk_enum_text_encoder(const sdc_mk_clip *c, sdc_mk_tensor_fn fn, void *user);
void sdc_mk_enum_unet(const sdc_mk_arch *a, sdc_mk_tensor_fn fn, void *user);
void sdc_mk_enum_vae(const sdc_mk_arch *a, sdc_mk_tensor_fn fn, void *user);
/* One of the above by component (nothing for a component the architecture lacks). */
void sdc_mk_enum_component(const sdc_mk_arch *a, sdc_mk_part c, sdc_mk_tensor_fn fn, void *user);

void sdc_mk_enum_t5(const sdc_mk_t5 *t, sdc_mk_tensor_fn fn, void *user);
void sdc_mk_enum_flux_transformer(const sdc_mk_flux_arch *a, sdc_mk_tensor_fn fn, void *user);
/* The Flux autoencoder: sdc_mk_enum_vae's tensors without quant_conv and post_quant_conv. */
void sdc_mk_enum_flux_vae(const sdc_mk_flux_arch *a, sdc_mk_tensor_fn fn, void *user);
/* One of the Flux components (nothing for a component the architecture lacks). */
void sdc_mk_enum_flux_component(const sdc_mk_flux_arch *a, sdc_mk_part c, sdc_mk_tensor_fn fn, void *user);

/* What sdc_mkmodel writes, counted without writing. */
typedef struct sdc_mkmodel_info {
    uint64_t n_tensors[SDC_MK_N_PARTS];
    uint64_t n_params[SDC_MK_N_PARTS];
    uint64_t weight_file_bytes; /* the safetensors files together (headers included), configs excluded */
} sdc_mkmodel_info;

/* Writes a random-weight model of architecture arch (sdc_mk_arch_find's or sdc_mk_flux_arch_find's
 * names) to out_path:
 *   single_file = 0: a diffusers folder (created if absent; its parent must exist): model_index.json,
 *     scheduler/scheduler_config.json, text_encoder/, unet/, vae/ (and text_encoder_2/ for SDXL) with
 *     config.json and the weights (model.safetensors / diffusion_pytorch_model.safetensors, with
 *     ".fp16" before the extension for F16), and tokenizer/ (and tokenizer_2/ for SDXL) with
 *     tokenizer_config.json and vocab.json + merges.txt copied from tokenizer_dir (NULL: no tokenizer
 *     folders, with a warning);
 *   a Flux architecture writes transformer/, text_encoder_2/ (T5) and tokenizer_2/ instead of unet/:
 *     see sdc_mkmodel_flux_folder; its tokenizer_2/ is sdc's own small T5 (Unigram) tokenizer;
 *   single_file = 1: one LDM checkpoint file (model.diffusion_model.*, first_stage_model.*,
 *     cond_stage_model.transformer.text_model.*) at out_path; tokenizer_dir is unused. SD 1.x only:
 *     SDC_ERR_UNSUPPORTED for SDXL (its SGM single-file layout is not written yet) and for Flux.
 * dtype: SDC_DTYPE_F32 or SDC_DTYPE_F16. The same arguments give byte-identical files. Every file
 * is written atomically (never half-written). Tensor data is streamed: memory stays at a few MiB
 * whatever the model's size. SDC_ERR_INVALID_ARG for an unknown arch or dtype, SDC_ERR_IO /
 * SDC_ERR_NOT_FOUND for files, SDC_ERR_OOM. */
sdc_status sdc_mkmodel(const char *arch, const char *out_path, int single_file, sdc_dtype dtype, uint64_t seed,
                       const char *tokenizer_dir, const sdc_logger *log);

/* The diffusers folder of an architecture given field by field (tests: variants of the presets). */
sdc_status sdc_mkmodel_folder(const sdc_mk_arch *a, const char *root, sdc_dtype dtype, uint64_t seed,
                              const char *tokenizer_dir, const sdc_logger *log);

/* The diffusers folder of a Flux architecture: model_index.json (FluxPipeline), scheduler/,
 * text_encoder/ (CLIP), text_encoder_2/ (T5), transformer/, vae/ with config.json and weights as
 * sdc_mkmodel_folder names them, tokenizer/ as sdc_mkmodel_folder writes it from clip_tokenizer_dir,
 * and tokenizer_2/ with tokenizer.json and tokenizer_config.json copied from t5_tokenizer_dir (NULL: sdc's
 * own small Unigram tokenizer, mkmodel_t5tok.c). A NULL clip_tokenizer_dir leaves tokenizer/ out, with a
 * warning. */
sdc_status sdc_mkmodel_flux_folder(const sdc_mk_flux_arch *a, const char *root, sdc_dtype dtype, uint64_t seed,
                                   const char *clip_tokenizer_dir, const char *t5_tokenizer_dir, const sdc_logger *log);

/* The tensor and parameter counts and the weight-file bytes sdc_mkmodel would write. */
sdc_status sdc_mkmodel_plan(const char *arch, int single_file, sdc_dtype dtype, sdc_mkmodel_info *info,
                            const sdc_logger *log);

/* The CLI's entry point (`sdc mkmodel`): sdc_mkmodel with a log callback, fp16 as a flag, and the CLIP
 * tokenizer sdc ships when tokenizer_dir is NULL. */
sdc_status sdc_make_model(const char *arch, const char *out_path, int single_file, int fp16, uint64_t seed,
                          const char *tokenizer_dir, sdc_log_fn log_fn, void *log_user);

#endif
