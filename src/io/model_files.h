/* model_files.h - a diffusion model on disk, in diffusers folder layout:
 *   model_index.json, scheduler/scheduler_config.json, tokenizer folders, and component folders (text_encoder/,
 *   unet/, vae/, text_encoder_2/, transformer/, ...) with each component's config.json and weights (model.safetensors or
 * diffusion_pytorch_model.safetensors, or their .fp16 variants);
 * or as one single-file .safetensors checkpoint, which opens into facts (single_file.h: its tensors'
 * names and shapes) and, with a config folder, its configs: the family that claims it (src/family/)
 * decides what it is, builds the configs it lacks and indexes it under canonical names.
 * Opening reads the JSON files and (single files) the safetensors header, never tensor data. */
#ifndef SDC_IO_MODEL_FILES_H
#define SDC_IO_MODEL_FILES_H

#include <cjson/cJSON.h>

#include "core/log.h"
#include "io/model_index.h"
#include "io/single_file.h"
#include "sdc.h"

typedef enum sdc_weight_variant {
    SDC_VARIANT_AUTO = 0, /* the f32 files when present, else .fp16 */
    SDC_VARIANT_F32,      /* the plain files only */
    SDC_VARIANT_FP16,     /* the .fp16 files only */
} sdc_weight_variant;

/* One component folder of a diffusers model ("unet", "text_encoder_2", "transformer", ...). */
typedef struct sdc_model_part {
    char *name;         /* the folder's name; its tensors are indexed as "<name>.<tensor>" */
    cJSON *config;      /* its config.json */
    char *weights_path; /* the chosen weights file, once sdc_model_files_use indexed it, else NULL
                           (single files: the file, for every part a family builds) */
} sdc_model_part;

#define SDC_MAX_PARTS 16
#define SDC_MAX_PART_NAME 64 /* bytes of a component folder's name */
#define SDC_MAX_ROLE_FILES 8

/* A component given as its own file (sdc_model_params' roles "diffusion_model", "clip_l", "t5xxl",
 * "vae"): it replaces that component of the folder or single file. The family that claims the model
 * takes it (sdc_model_files_file); a file no family took is refused (sdc_model_files_check_used). */
typedef struct sdc_model_role_file {
    char *role;
    char *path;
    int used;
} sdc_model_role_file;

typedef struct sdc_model_files {
    char *root;                          /* the folder, or the single file */
    int single_file;                     /* 1: root is a single-file checkpoint */
    sdc_weight_variant variant;          /* which weights files sdc_model_files_use picks */
    sdc_sf_facts *single;                /* single files: what the file holds (names, shapes); else NULL */
    char *config_dir;                    /* single files: the config folder given, else NULL */
    cJSON *model_index;                  /* model_index.json (single files: the config folder's, or NULL) */
    int n_parts;                         /* every subfolder with a config.json (single files: the config
                                             folder's; none without one: the family builds its configs) */
    sdc_model_part parts[SDC_MAX_PARTS]; /* sorted by name */
    cJSON *scheduler_config;             /* scheduler/scheduler_config.json, NULL if absent */
    char *tokenizer_dir;                 /* root/tokenizer, NULL if absent; single files: the CLIP
                                             tokenizer sdc ships (sdc_data_path), NULL if not found */
    sdc_model_index *index;              /* the tensors of every part used so far, each name prefixed
                                             "<part>." (e.g. "unet.conv_in.weight"); single files: empty
                                             until the family's open indexes the file */
    char *prediction_type;               /* the caller's override of the scheduler's prediction_type, or
                                             NULL (sdc_model_files_set_prediction) */
    int n_files;                         /* component files given (sdc_model_files_add_file) */
    sdc_model_role_file files[SDC_MAX_ROLE_FILES];
} sdc_model_files;

/* The config.json of part (a subfolder's name), NULL when the model has none. */
const cJSON *sdc_model_files_config(const sdc_model_files *m, const char *part);
/* Folders: indexes part's weights (chosen by m->variant) under "<part>.", once; a family's open calls it
 * for each part it needs. A missing folder, config.json or weights file is SDC_ERR_NOT_FOUND naming the
 * path; a weight that is not a float SDC_ERR_FORMAT. Single files: SDC_OK, nothing done (the family
 * indexes the file under its own names). */
sdc_status sdc_model_files_use(sdc_model_files *m, const char *part, const sdc_logger *log);
/* sdc_model_files_use for every part (tests and tools; a family uses only the parts it needs). */
sdc_status sdc_model_files_use_all(sdc_model_files *m, const sdc_logger *log);
/* Single files with a config folder: indexes part's weights from the config folder's part (as
 * sdc_model_files_use does for a folder), once. No config folder, or no such part there:
 * SDC_ERR_NOT_FOUND naming what is missing. */
sdc_status sdc_model_files_use_config(sdc_model_files *m, const char *part, const sdc_logger *log);
/* The folder the model's configs and tokenizers come from: the folder itself, or a single file's config
 * folder (NULL without one). */
const char *sdc_model_files_config_dir(const sdc_model_files *m);

/* Records the file given for a component role. A path that is not a regular file is SDC_ERR_NOT_FOUND,
 * a role given twice SDC_ERR_INVALID_ARG (both logged). */
sdc_status sdc_model_files_add_file(sdc_model_files *m, const char *role, const char *path, const sdc_logger *log);
/* The file given for role, or NULL; the family calling it takes the file. */
const char *sdc_model_files_file(sdc_model_files *m, const char *role);
/* SDC_ERR_UNSUPPORTED (logged) when a file was given for a role the family (named) did not take. */
sdc_status sdc_model_files_check_used(const sdc_model_files *m, const char *family, const sdc_logger *log);
/* root/name when the model is a folder holding that subfolder (e.g. "tokenizer_2"), malloc'd; else NULL. */
char *sdc_model_files_subdir(const sdc_model_files *m, const char *name);

/* Opens path: a diffusers folder (model_index.json and every component's config.json; weights are
 * indexed when a family uses a component), or a single-file checkpoint (any regular file: its facts,
 * m->single). A missing model_index.json is SDC_ERR_NOT_FOUND, with a message naming the path. config_dir (single files only, else SDC_ERR_INVALID_ARG; NULL: the family detects the
 * architecture) is a diffusers folder whose components' config.json (and optional
 * scheduler/scheduler_config.json, model_index.json) describe the file's architecture. variant applies
 * to folders; a single file's weights are what it holds. PyTorch pickles (.ckpt) are
 * SDC_ERR_UNSUPPORTED. */
sdc_status sdc_model_files_open_ex(const char *path, const char *config_dir, sdc_weight_variant variant,
                                   const sdc_logger *log, sdc_model_files **out);
/* Overrides the scheduler's prediction_type ("epsilon" or "v_prediction"; anything else is
 * SDC_ERR_INVALID_ARG; NULL: nothing): m->scheduler_config's when it has one, and the one a family
 * builds for a single file (it reads m->prediction_type). */
sdc_status sdc_model_files_set_prediction(sdc_model_files *m, const char *prediction_type, const sdc_logger *log);
/* sdc_model_files_open_ex(dir, NULL, variant, log, out) */
sdc_status sdc_model_files_open(const char *dir, sdc_weight_variant variant, const sdc_logger *log,
                                sdc_model_files **out);
void sdc_model_files_free(sdc_model_files *m); /* NULL is harmless */

/* The path of rel inside the data files sdc ships (e.g. "clip-tokenizer"), malloc'd: the first that
 * exists of $SDC_DATA_DIR/rel, the installed <datadir>/sdc/rel, and the source tree's data/rel (for
 * runs from a build tree). NULL if none exists. */
char *sdc_data_path(const char *rel);

#endif
