/* sd1.h - the Stable Diffusion families' private state (SD 1.x / 2.x, and SDXL: the same UNet / VAE
 * code with a second text encoder and micro-conditioning), shared by the table files (sd1.c, sdxl.c)
 * and the phase bodies (sd1_phases.c, sdxl_condition.c). Nothing outside src/family/ includes it. */
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

/* Component indices into the component tables (the phase tables' `needs` bits). SD 1.x uses the
 * first four, SDXL all five. */
enum {
    SD1_TEXT_ENCODER = 0,
    SD1_UNET,
    SD1_VAE_DECODER,
    SD1_VAE_ENCODER,
    SD1_N_COMPONENTS,
    SDXL_TEXT_ENCODER_2 = SD1_N_COMPONENTS,
    SDXL_N_COMPONENTS
};

/* The opened family: configs and tokenizers (no weights). */
typedef struct sd1_fam {
    int xl; /* SDXL: text_encoder_2, tokenizer_2, a text_time UNet */
    sdc_clip_config clip, clip2;
    sdc_unet_config unet;
    sdc_vae_config vae;
    sdc_clip_tokenizer *tok, *tok2;
    int force_zeros_for_empty_prompt; /* SDXL: an empty negative prompt is zero embeds, zero pooled */
    const cJSON *scheduler_config;    /* the model files', or a single file's default (may be NULL) */
    sd1_sf_configs sf;                /* a single file's configs that the model files lack (sd1_detect.h) */
} sd1_fam;

/* The number of SDXL time ids: original (h, w), crop (top, left), target (h, w). */
#define SDXL_N_TIME_IDS 6

/* One job: the schedule, the conditioning of every prompt and every image's latents, carried from phase
 * to phase. The conditioning waits on the host between the encoders and the UNet (exactly: the values
 * go back in the encoders' dtype), so any group of images can take its rows. */
typedef struct sd1_job {
    sdc_schedule sched;
    int nb;                          /* conditioning rows per image: 2 with classifier-free guidance, else 1 */
    int n_prompts;                   /* the job's entries */
    int64_t H, W, h, w;              /* image and latent sizes */
    size_t n;                        /* latent elements of one image: C x h x w */
    int64_t T, C;                    /* context tokens and width (SDXL: C1 + C2) */
    sdc_dtype ctx_dtype;             /* the (first) text encoder's output dtype */
    float *ctx;                      /* [n_prompts, nb, T, C]: each entry's rows, 0 the negative when nb == 2 */
    unsigned char *zero_negative;    /* SDXL, [n_prompts]: the negative row is zeros (force_zeros_for_empty_prompt) */
    float *text_embeds;              /* SDXL: [n_prompts, nb, P] the second encoder's pooled projection */
    float time_ids[SDXL_N_TIME_IDS]; /* SDXL: the same for every row */
    float *mean, *logvar;            /* [n]: the init image's posterior (img2img) */
    float *lat;                      /* [images, n]: each image's latents (initial, then denoised) */
} sd1_job;

/* Shared by both families' tables. */
extern const char *const sd1_te_prefixes[], *const sd1_unet_prefixes[], *const sd1_dec_prefixes[],
                                                                            *const sd1_enc_prefixes[];
sdc_status sd1_open_as(sdc_model_files *mf, const char *tokenizer_dir, const sdc_logger *log, int xl, void **out);
void sd1_close(void *fam);
void sd1_latent_shape(const void *fam, int width, int height, int64_t ne[4]);
sdc_status sd1_job_new(sdc_run *r, void **state);
void sd1_job_free(void *state);
sdc_status sd1_load_text_encoder(const void *fam, const sdc_weight_source *src, void **out);
sdc_status sd1_load_unet(const void *fam, const sdc_weight_source *src, void **out);
sdc_status sd1_load_vae_decoder(const void *fam, const sdc_weight_source *src, void **out);
sdc_status sd1_load_vae_encoder(const void *fam, const sdc_weight_source *src, void **out);
void sd1_free_text_encoder(void *o);
/* The four components SD 1.x and SDXL share, as component-table initialisers. */
#define SD1_COMPONENT_DEFS                                                                                            \
    [SD1_TEXT_ENCODER] =                                                                                              \
        {"text_encoder", sd1_te_prefixes, "text_encoder.", sd1_load_text_encoder, sd1_free_text_encoder, NULL, NULL}, \
    [SD1_UNET] = {"unet", sd1_unet_prefixes, "unet.", sd1_load_unet, sd1_free_unet, NULL, sd1_unet_stream},           \
    [SD1_VAE_DECODER] = {"vae_decoder",        sd1_dec_prefixes,  "vae.", sd1_load_vae_decoder,                       \
                         sd1_free_vae_decoder, sd1_vae_precision, NULL},                                              \
    [SD1_VAE_ENCODER] = {"vae_encoder",        sd1_enc_prefixes,  "vae.", sd1_load_vae_encoder,                       \
                         sd1_free_vae_encoder, sd1_vae_precision, NULL},
void sd1_free_unet(void *o);
sdc_weight_stream *sd1_unet_stream(void *o);
void sd1_free_vae_decoder(void *o);
void sd1_free_vae_encoder(void *o);
sdc_prec sd1_vae_precision(const void *fam);
/* 1: a folder whose UNet config has addition_embed_type "text_time" (or a text_encoder_2/) */
int sd1_folder_is_xl(const sdc_model_files *mf);

/* Phase bodies. */
sdc_status sd1_condition(sdc_run *r, int image);
sdc_status sdxl_condition_1(sdc_run *r, int image);
sdc_status sdxl_condition_2(sdc_run *r, int image);
sdc_status sd1_encode(sdc_run *r, int image);
sdc_status sd1_denoise(sdc_run *r, int image);
sdc_status sd1_decode(sdc_run *r, int image);

#endif
