/* ctx.h - what an sdc_ctx holds: the opened model (configs, tokenizer, the retained model index), the
 * backend, and whichever components are resident right now. Internal to libsdc. */
#ifndef SDC_PIPELINE_CTX_H
#define SDC_PIPELINE_CTX_H

#include "backend/backend.h"
#include "core/sysmem.h"
#include "io/model_files.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "sampler/sampler.h"
#include "sdc.h"
#include "tokenizer/clip_tokenizer.h"

/* Components that load and free independently. */
typedef enum sdc_part {
    SDC_PART_TEXT_ENCODER = 0,
    SDC_PART_UNET,
    SDC_PART_VAE_DECODER,
    SDC_PART_VAE_ENCODER,
    SDC_PART_COUNT
} sdc_part;

const char *sdc_part_name(sdc_part p);

struct sdc_ctx {
    sdc_logger log;
    sdc_progress_fn progress;
    void *progress_user;
    sdc_backend *be;
    sdc_model_files *mf;
    sdc_clip_tokenizer *tok;
    char *model_name;                 /* for the PNG parameters text */

    sdc_clip_config clip_cfg;
    sdc_unet_config unet_cfg;
    sdc_vae_config vae_cfg;

    /* resident components; NULL when not loaded */
    sdc_clip *clip;
    sdc_unet *unet;
    sdc_vae_decoder *vae_dec;
    sdc_vae_encoder *vae_enc;
    size_t part_bytes[SDC_PART_COUNT];     /* backend bytes of each component's weights (from the index) */
    int part_tensors[SDC_PART_COUNT];      /* and their tensor counts */
    char *last_report;                     /* JSON of the last sdc_generate */
    sdc_load_policy policy;                /* as asked; AUTO is resolved per job */
    int precision_f32;                     /* the user asked for f32 everywhere */
    size_t budget;                         /* bytes auto plans for */
};

/* Loads part p unless it is resident. */
sdc_status sdc_ctx_load_part(sdc_ctx *ctx, sdc_part p);
void sdc_ctx_free_part(sdc_ctx *ctx, sdc_part p);
int sdc_ctx_part_resident(const sdc_ctx *ctx, sdc_part p);
/* Part p's precision, fixed when it is loaded: f32 when the user asked for it, or for a VAE whose config
 * says force_upcast (as diffusers upcasts it); the backend's own choice otherwise. */
int sdc_ctx_part_f32(const sdc_ctx *ctx, sdc_part p);
/* Where part p's weights come from, loaded onto be (the context's backend, or a counting one). */
void sdc_ctx_part_source(sdc_ctx *ctx, sdc_part p, sdc_backend *be, sdc_weight_source *src);

#endif
