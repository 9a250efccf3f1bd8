/* model_files.h - a Stable Diffusion model on disk, in diffusers folder layout:
 *   model_index.json, scheduler/scheduler_config.json, tokenizer/, text_encoder/, unet/, vae/
 * with each component's config.json and weights (model.safetensors or
 * diffusion_pytorch_model.safetensors, or their .fp16 variants).
 * Opening reads the JSON files and the safetensors headers, never tensor data. */
#ifndef SDC_IO_MODEL_FILES_H
#define SDC_IO_MODEL_FILES_H

#include <cjson/cJSON.h>

#include "core/log.h"
#include "io/model_index.h"
#include "sdc.h"

typedef enum sdc_component {
    SDC_COMP_TEXT_ENCODER = 0,
    SDC_COMP_UNET,
    SDC_COMP_VAE,
    SDC_COMP_COUNT
} sdc_component;

/* Folder name and tensor-name prefix ("text_encoder" / "text_encoder."). */
const char *sdc_component_name(sdc_component c);

typedef enum sdc_weight_variant {
    SDC_VARIANT_AUTO = 0,  /* the f32 files when present, else .fp16 */
    SDC_VARIANT_F32,       /* the plain files only */
    SDC_VARIANT_FP16,      /* the .fp16 files only */
} sdc_weight_variant;

typedef struct sdc_model_files {
    char *root;
    cJSON *model_index;                    /* model_index.json */
    cJSON *config[SDC_COMP_COUNT];         /* each component's config.json */
    cJSON *scheduler_config;               /* scheduler/scheduler_config.json, NULL if absent */
    char *tokenizer_dir;                   /* root/tokenizer, NULL if absent */
    char *weights_path[SDC_COMP_COUNT];    /* the chosen weights file of each component */
    sdc_model_index *index;                /* all components' tensors, each name prefixed
                                              "<component>." (e.g. "unet.conv_in.weight") */
} sdc_model_files;

/* Opens dir. A missing component folder, config.json or weights file is SDC_ERR_NOT_FOUND, with a
 * message naming the path. */
sdc_status sdc_model_files_open(const char *dir, sdc_weight_variant variant, const sdc_logger *log,
                                sdc_model_files **out);
void sdc_model_files_free(sdc_model_files *m);   /* NULL is harmless */

#endif
