/* ldm_names.h - tensor names of original (CompVis / LDM) single-file Stable Diffusion 1.x
 * checkpoints, to and from the canonical diffusers names sdc loads by.
 *
 *   model.diffusion_model.*               <-> unet.*          (input_blocks/middle_block/output_blocks)
 *   first_stage_model.*                   <-> vae.*           (encoder.down.N.block.M, decoder.up.N reversed)
 *   cond_stage_model.transformer.text_model.* <-> text_encoder.text_model.*
 * and from SDXL's (SGM) single files also
 *   conditioner.embedders.0.transformer.text_model.* -> text_encoder.text_model.*
 *   model.diffusion_model.label_emb.0.{0,2}.*         <-> unet.add_embedding.linear_{1,2}.*
 * (the second text encoder, OpenCLIP, is io/openclip_names.h's). UNet transformer blocks keep their
 * names, so the per-level transformer depth does not enter the map.
 *
 * The block numbering depends on the architecture (blocks, layers per block, which blocks have
 * attention), so a map is built from the layout as a table of prefix rules, each with a kind that
 * renames the module's own parameters (an LDM resnet's in_layers.0 is diffusers' norm1, a VAE
 * attention's q is to_q, ...). A name maps through the rule with the longest matching prefix.
 *
 * Keys that are not model weights map to NULL: EMA copies (model_ema.*), the scheduler buffers
 * (betas, alphas_cumprod, ...), CLIP's position_ids buffer, the VAE training loss (first_stage_model.loss.*).
 *
 * Shapes: LDM stores the VAE mid-block attention projections as 1x1 convolutions ([C, C, 1, 1]);
 * diffusers as linears ([C, C]). The loaders accept both (trailing 1s); sdc_diffusers_to_ldm tells
 * a writer which tensors take the conv shape. Everything else has the same shape in both. */
#ifndef SDC_IO_LDM_NAMES_H
#define SDC_IO_LDM_NAMES_H

#include <stddef.h>

#include "sdc.h"

#define SDC_LDM_MAX_RULES 320
#define SDC_LDM_MAX_BLOCKS 8
#define SDC_LDM_MAX_LAYERS 4
#define SDC_LDM_PREFIX_LEN 56

typedef struct sdc_ldm_rule {
    char ldm[SDC_LDM_PREFIX_LEN];       /* "model.diffusion_model.input_blocks.1.0." */
    char diffusers[SDC_LDM_PREFIX_LEN]; /* "unet.down_blocks.0.resnets.0." */
    int kind;                           /* how the rest of the name is renamed (ldm_names.c) */
    int ldm_only;                       /* an old LDM spelling: used only from LDM to diffusers */
} sdc_ldm_rule;

typedef struct sdc_ldm_map {
    sdc_ldm_rule rules[SDC_LDM_MAX_RULES];
    int n_rules;
} sdc_ldm_map;

/* Builds the map for a UNet of n_unet_blocks down blocks (and as many up blocks) with
 * layers_per_block resnets each (up blocks one more), where down block i has cross-attention iff
 * unet_block_has_attn[i] (up block i mirrors down block n-1-i; the mid block always has it), and a
 * VAE of n_vae_blocks blocks with vae_layers_per_block resnets each. Block counts 1..SDC_LDM_MAX_BLOCKS, layers
 * 1..SDC_LDM_MAX_LAYERS (the rule table is sized for those);
 * SDC_ERR_INVALID_ARG otherwise. */
sdc_status sdc_ldm_map_init(sdc_ldm_map *m, int n_unet_blocks, int layers_per_block, const int *unet_block_has_attn,
                            int n_vae_blocks, int vae_layers_per_block);
/* The Stable Diffusion 1.x layout: UNet 4 blocks x 2 layers, attention in the first three; VAE 4 x 2.
 * Widths do not enter names, so this fits every SD 1.x checkpoint (and the tiny test model). */
void sdc_ldm_map_init_sd1(sdc_ldm_map *m);

/* Maps an LDM key to "unet.*", "vae.*" or "text_encoder.*" in out (size bytes) and returns out,
 * or returns NULL for a key to skip (see above, or when out is too small). */
const char *sdc_ldm_to_diffusers(const sdc_ldm_map *m, const char *ldm_name, char *out, size_t size);
/* The inverse, for writers: a canonical prefixed diffusers name to its LDM key. *conv1x1 (may be
 * NULL) is set to 1 for tensors LDM stores as 1x1 convolutions while diffusers has linears (append
 * two dimensions of 1 to the shape), else 0. NULL for a name no rule covers. */
const char *sdc_diffusers_to_ldm(const sdc_ldm_map *m, const char *name, char *out, size_t size, int *conv1x1);

/* sdc_ldm_to_diffusers as an sdc_name_map_fn for sdc_index_add_file (user: the const sdc_ldm_map *,
 * prefix: NULL). */
const char *sdc_ldm_name_map(const char *name, char *out, size_t size, void *user);

#endif
