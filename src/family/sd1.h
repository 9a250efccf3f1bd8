/* sd1.h - the Stable Diffusion 1.x / 2.x family's private state, shared by its table file (sd1.c) and
 * its phase bodies (sd1_phases.c). Nothing outside src/family/ includes it. */
#ifndef SDC_FAMILY_SD1_H
#define SDC_FAMILY_SD1_H

#include "core/rng.h"
#include "family/sd1_detect.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "pipeline/family.h"
#include "sampler/sampler.h"
#include "tokenizer/clip_tokenizer.h"

/* Component indices into sd1_components[] (the phase table's `needs` bits). */
enum {
    SD1_TEXT_ENCODER = 0,
    SD1_UNET,
    SD1_VAE_DECODER,
    SD1_VAE_ENCODER,
    SD1_N_COMPONENTS
};

/* The opened family: configs and tokenizer (no weights). */
typedef struct sd1_fam {
    sdc_clip_config clip;
    sdc_unet_config unet;
    sdc_vae_config vae;
    sdc_clip_tokenizer *tok;
    const cJSON *scheduler_config; /* the model files', or a single file's default (may be NULL) */
    sd1_sf_configs sf;             /* a single file's configs that the model files lack (sd1_detect.h) */
} sd1_fam;

/* One job: the schedule, the conditioning and every image's latents, carried from phase to phase. */
typedef struct sd1_job {
    sdc_schedule sched;
    int nb;               /* conditioning rows: 2 with classifier-free guidance, else 1 */
    int64_t H, W, h, w;   /* image and latent sizes */
    size_t n;             /* latent elements of one image: C x h x w */
    sdc_tensor *context;  /* the conditioning [nb, T, C]: from condition until the last denoise */
    float *mean, *logvar; /* [n]: the init image's posterior (img2img) */
    float *lat;           /* [batch, n]: each image's latents (initial, then denoised) */
} sd1_job;

sdc_status sd1_condition(sdc_run *r, int image);
sdc_status sd1_encode(sdc_run *r, int image);
sdc_status sd1_denoise(sdc_run *r, int image);
sdc_status sd1_decode(sdc_run *r, int image);

#endif
