/* flux.h - the Flux family's private state, shared by its table file (flux.c) and its phase bodies
 * (flux_phases.c). Nothing outside src/family/ includes it. */
#ifndef SDC_FAMILY_FLUX_H
#define SDC_FAMILY_FLUX_H

#include "model/clip.h"
#include "model/flux.h"
#include "model/t5.h"
#include "model/vae.h"
#include "pipeline/family.h"
#include "sampler/sampler.h"
#include "tokenizer/clip_tokenizer.h"
#include "tokenizer/unigram.h"

/* Component indices into flux_components[] (the phase table's `needs` bits). */
enum {
    FLUX_CLIP = 0,    /* text_encoder: CLIP-L, its pooled output only */
    FLUX_T5,          /* text_encoder_2: T5 encoder, the context */
    FLUX_TRANSFORMER, /* transformer */
    FLUX_VAE_DECODER,
    FLUX_N_COMPONENTS
};

/* The opened family: configs and tokenizers (no weights). */
typedef struct flux_fam {
    sdc_clip_config clip;
    sdc_t5_config t5;
    sdc_flux_config dit;
    sdc_vae_config vae;
    sdc_flow_config flow;
    sdc_clip_tokenizer *clip_tok;
    sdc_unigram *t5_tok;
} flux_fam;

/* One job: the schedule, every prompt's conditioning (on the host between the encoders and the
 * transformer, exactly: the values go back in the encoder's dtype), every image's latents. */
typedef struct flux_job {
    sdc_schedule sched;
    int64_t H, W, h, w;  /* image and (unpacked) latent sizes */
    size_t n;            /* latent elements of one image: 16 x h x w */
    int64_t N;           /* packed image tokens: (h / 2) x (w / 2) */
    int T;               /* T5 tokens */
    int n_prompts;       /* the job's entries */
    float *pooled;       /* [n_prompts, pooled_dim]: CLIP's pooled output of each prompt */
    float *ctx;          /* [n_prompts, T, joint_dim]: T5's output, from condition_2 until the last denoise */
    sdc_dtype ctx_dtype; /* T5's output dtype */
    float *img_ids;      /* [N, 3]: (0, row, column) of each packed token */
    float *txt_ids;      /* [T, 3]: zeros */
    float *lat;          /* [images, n]: each image's latents (initial, then denoised) */
} flux_job;

/* flux_files.c: indexes every part (folder components, a BFL single file, component files by role) and
 * parses their configs and the scheduler's into f (tokenizers not included). */
sdc_status flux_open_parts(flux_fam *f, sdc_model_files *mf, const sdc_logger *log);
/* The transformer naming of a single file: 0 none, 1 BFL (*prefix "" or "model.diffusion_model."),
 * 2 diffusers. */
int flux_transformer_names(const sdc_sf_facts *f, const char **prefix);

sdc_status flux_condition_clip(sdc_run *r, int image);
sdc_status flux_condition_t5(sdc_run *r, int image);
sdc_status flux_denoise(sdc_run *r, int image);
sdc_status flux_decode(sdc_run *r, int image);

#endif
