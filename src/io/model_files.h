/* model_files.h - a Stable Diffusion model on disk, in diffusers folder layout:
 *   model_index.json, scheduler/scheduler_config.json, tokenizer/, text_encoder/, unet/, vae/
 * with each component's config.json and weights (model.safetensors or
 * diffusion_pytorch_model.safetensors, or their .fp16 variants);
 * or as one single-file .safetensors checkpoint, which opens into facts (single_file.h: its tensors'
 * names and shapes) and, with a config folder, its configs: the family that claims it (src/family/)
 * decides what it is, builds the configs it lacks and indexes it under canonical names.
 * Opening reads the JSON files and the safetensors headers, never tensor data. */
#ifndef SDC_IO_MODEL_FILES_H
#define SDC_IO_MODEL_FILES_H

#include <cjson/cJSON.h>

#include "core/log.h"
#include "io/model_index.h"
#include "io/single_file.h"
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
    SDC_VARIANT_AUTO = 0, /* the f32 files when present, else .fp16 */
    SDC_VARIANT_F32,      /* the plain files only */
    SDC_VARIANT_FP16,     /* the .fp16 files only */
} sdc_weight_variant;

typedef struct sdc_model_files {
    char *root;                         /* the folder, or the single file */
    int single_file;                    /* 1: root is a single-file checkpoint */
    sdc_sf_facts *single;               /* single files: what the file holds (names, shapes); else NULL */
    cJSON *model_index;                 /* model_index.json (single files: the config folder's, or NULL) */
    cJSON *config[SDC_COMP_COUNT];      /* each component's config.json (single files: the config
                                              folder's, else NULL: the family builds them) */
    cJSON *scheduler_config;            /* scheduler/scheduler_config.json, NULL if absent */
    char *tokenizer_dir;                /* root/tokenizer, NULL if absent; single files: the CLIP
                                              tokenizer sdc ships (sdc_data_path), NULL if not found */
    char *weights_path[SDC_COMP_COUNT]; /* the chosen weights file of each component (single files:
                                              the file, for all three) */
    sdc_model_index *index;             /* all components' tensors, each name prefixed
                                              "<component>." (e.g. "unet.conv_in.weight"); single
                                              files: empty until the family's open indexes the file */
} sdc_model_files;

/* Opens path: a diffusers folder, or a single-file checkpoint (any regular file: its facts, m->single).
 * A missing component folder, config.json or weights file is SDC_ERR_NOT_FOUND, with a message naming
 * the path. config_dir (single files only, else SDC_ERR_INVALID_ARG; NULL: the family detects the
 * architecture) is a diffusers folder whose text_encoder/, unet/ and vae/ config.json (and optional
 * scheduler/scheduler_config.json, model_index.json) describe the file's architecture. variant applies
 * to folders; a single file's weights are what it holds. PyTorch pickles (.ckpt) are
 * SDC_ERR_UNSUPPORTED. */
sdc_status sdc_model_files_open_ex(const char *path, const char *config_dir, sdc_weight_variant variant,
                                   const sdc_logger *log, sdc_model_files **out);
/* sdc_model_files_open_ex(dir, NULL, variant, log, out) */
sdc_status sdc_model_files_open(const char *dir, sdc_weight_variant variant, const sdc_logger *log,
                                sdc_model_files **out);
void sdc_model_files_free(sdc_model_files *m); /* NULL is harmless */

/* The path of rel inside the data files sdc ships (e.g. "clip-tokenizer"), malloc'd: the first that
 * exists of $SDC_DATA_DIR/rel, the installed <datadir>/sdc/rel, and the source tree's data/rel (for
 * runs from a build tree). NULL if none exists. */
char *sdc_data_path(const char *rel);

#endif
