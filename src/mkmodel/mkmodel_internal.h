/* mkmodel_internal.h - what the parts of sdc_mkmodel share. */
#ifndef SDC_MODEL_MKMODEL_INTERNAL_H
#define SDC_MODEL_MKMODEL_INTERNAL_H

#include <cjson/cJSON.h>

#include "mkmodel/mkmodel.h"

/* The JSON files of a diffusers folder, as diffusers and transformers save them, from the
 * architecture (a text encoder's and a tokenizer's from its CLIP tower, a->te or a->te2). dtype goes
 * into the text encoder's "dtype". NULL on OOM; the caller deletes. */
cJSON *sdc_mk_model_index_json(const sdc_mk_arch *a);
cJSON *sdc_mk_scheduler_json(const sdc_mk_arch *a);
cJSON *sdc_mk_text_encoder_json(const sdc_mk_clip *c, sdc_dtype dtype);
cJSON *sdc_mk_unet_json(const sdc_mk_arch *a);
cJSON *sdc_mk_vae_json(const sdc_mk_arch *a);
cJSON *sdc_mk_tokenizer_json(const sdc_mk_clip *c);

#endif
