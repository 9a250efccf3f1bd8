/* mkmodel_internal.h - what the parts of sdc_mkmodel share. */
#ifndef SDC_MODEL_MKMODEL_INTERNAL_H
#define SDC_MODEL_MKMODEL_INTERNAL_H

#include <cjson/cJSON.h>

#include "mkmodel/mkmodel.h"

/* CLIP ViT-L/14's text tower as SD 1.5, SDXL and FLUX.1 configs describe it (their token ids included) */
#define SDC_MK_CLIP_L                                                                                        \
    {                                                                                                        \
        .hidden = 768, .intermediate = 3072, .layers = 12, .heads = 12, .positions = 77, .vocab = 49408,     \
        .projection_dim = 768, .bos = 0, .eos = 2, .pad = 1, .act = "quick_gelu", .pad_tok = "<|endoftext|>" \
    }

/* ---- building blocks of the tensor enumeration: each emits its parameters under a printf-formatted
 * module path, in torch order, drawn as mkmodel.h says ---- */

typedef struct sdc_mk_emitter {
    sdc_mk_tensor_fn fn;
    void *user;
} sdc_mk_emitter;

/* nn.Linear(in, out[, bias]): weight [out, in] */
__attribute__((format(printf, 5, 6))) void sdc_mk_linear(const sdc_mk_emitter *e, int64_t out, int64_t in, int bias,
                                                         const char *fmt, ...);
/* nn.Conv2d(in, out, k) with bias: weight [out, in, k, k] */
__attribute__((format(printf, 5, 6))) void sdc_mk_conv(const sdc_mk_emitter *e, int64_t out, int64_t in, int64_t k,
                                                       const char *fmt, ...);
/* nn.LayerNorm / nn.GroupNorm(C) with affine parameters: weight, bias [C] */
__attribute__((format(printf, 3, 4))) void sdc_mk_norm(const sdc_mk_emitter *e, int64_t c, const char *fmt, ...);
/* an RMS norm's scale: weight [C], no bias */
__attribute__((format(printf, 3, 4))) void sdc_mk_scale(const sdc_mk_emitter *e, int64_t c, const char *fmt, ...);
/* nn.Embedding(n, dim): weight [n, dim] */
__attribute__((format(printf, 4, 5))) void sdc_mk_embedding(const sdc_mk_emitter *e, int64_t n, int64_t dim,
                                                            const char *fmt, ...);

/* The JSON files of a diffusers folder, as diffusers and transformers save them, from the
 * architecture (a text encoder's and a tokenizer's from its CLIP tower, a->te or a->te2). dtype goes
 * into the text encoder's "dtype". NULL on OOM; the caller deletes. */
cJSON *sdc_mk_model_index_json(const sdc_mk_arch *a);
cJSON *sdc_mk_scheduler_json(const sdc_mk_arch *a);
cJSON *sdc_mk_text_encoder_json(const sdc_mk_clip *c, sdc_dtype dtype);
cJSON *sdc_mk_unet_json(const sdc_mk_arch *a);
cJSON *sdc_mk_vae_json(const sdc_mk_arch *a);
cJSON *sdc_mk_tokenizer_json(const sdc_mk_clip *c);

/* Writes json (and deletes it) to dir/name, atomically. */
sdc_status sdc_mk_write_json(const char *dir, const char *name, cJSON *json, const sdc_logger *log);
/* dir/tokenizer.json and tokenizer_config.json: sdc's own small T5 (Unigram) tokenizer. */
sdc_status sdc_mk_write_t5_tokenizer(const char *dir, const sdc_logger *log);

/* The JSON files of a Flux folder (mkmodel_flux.c), with the keys the reference bundle's have. */
cJSON *sdc_mk_flux_model_index_json(const sdc_mk_flux_arch *a);
cJSON *sdc_mk_flux_scheduler_json(const sdc_mk_flux_arch *a);
cJSON *sdc_mk_t5_json(const sdc_mk_t5 *t, sdc_dtype dtype);
cJSON *sdc_mk_flux_transformer_json(const sdc_mk_flux_arch *a);
cJSON *sdc_mk_flux_vae_json(const sdc_mk_flux_arch *a);

#endif
