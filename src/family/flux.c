/* flux.c - Flux (schnell and dev) as a family: CLIP-L pooled + T5 context, the MMDiT transformer on 2x2
 * packed 16-channel latents, flow-matching Euler, the 16-channel VAE.
 *
 *   phase        needs            runs
 *   condition    text_encoder     once, every prompt: CLIP's pooled output [pooled_dim]
 *   condition_2  text_encoder_2   once, every prompt: the T5 encoder's states [1, T, joint_dim]
 *                                 (T = t5_max_length)
 *   denoise      transformer      per group of max_batch images: latents (each its seed), the
 *                                 flow-matching loop over the group's rows [group, N, 4C]
 *   decode       vae_decoder      per image: latents / scaling + shift -> pixels
 * Each text encoder is its own component, so `phased` frees T5 before the transformer loads. There is
 * no classifier-free guidance: dev embeds `guidance`; cfg_scale and the negative prompt are ignored. */
#include "family/flux.h"

#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "pipeline/pipeline.h"

/* --- components ------------------------------------------------------------------------------ */

static sdc_status load_clip(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_clip_load(&((const flux_fam *)fam)->clip, src, (sdc_clip **)out);
}
static sdc_status load_t5(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_t5_load(&((const flux_fam *)fam)->t5, src, (sdc_t5 **)out);
}
static sdc_status load_dit(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_flux_load(&((const flux_fam *)fam)->dit, src, (sdc_flux **)out);
}
static sdc_status load_vae_decoder(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_vae_decoder_load(&((const flux_fam *)fam)->vae, src, (sdc_vae_decoder **)out);
}
static void free_clip(void *o) { sdc_clip_free(o); }
static void free_t5(void *o) { sdc_t5_free(o); }
static sdc_weight_stream *t5_stream(void *o) { return sdc_t5_weight_stream(o); }
static void free_dit(void *o) { sdc_flux_free(o); }
static sdc_weight_stream *dit_stream(void *o) { return sdc_flux_weight_stream(o); }
static void free_vae_decoder(void *o) { sdc_vae_decoder_free(o); }

/* T5 overflows in fp16: bf16 where the backend has it (as diffusers runs FluxPipeline's T5), else f32 */
static sdc_prec t5_precision(const void *fam) {
    (void)fam;
    return SDC_PREC_BF16;
}
/* Flux's activations overflow fp16 in real checkpoints: bf16 where the backend has it */
static sdc_prec dit_precision(const void *fam) {
    (void)fam;
    return SDC_PREC_BF16;
}
/* The VAE decodes in bf16 where the backend has it, whatever its config's force_upcast says: diffusers'
 * FluxPipeline decodes in the pipeline's dtype too (only the SD pipelines upcast), and Flux's 16-channel
 * VAE stays in range in bf16 (8 exponent bits, as f32). */
static sdc_prec vae_precision(const void *fam) {
    (void)fam;
    return SDC_PREC_BF16;
}

static const char *const clip_prefixes[] = {"text_encoder.text_model.", NULL};
static const char *const t5_prefixes[] = {"text_encoder_2.", NULL};
static const char *const dit_prefixes[] = {"transformer.", NULL};
static const char *const dec_prefixes[] = {"vae.decoder.", "vae.post_quant_conv.", NULL};

static const sdc_component_def flux_components[FLUX_N_COMPONENTS] = {
    [FLUX_CLIP] = {"text_encoder", clip_prefixes, "text_encoder.", load_clip, free_clip, NULL, NULL},
    [FLUX_T5] = {"text_encoder_2", t5_prefixes, "text_encoder_2.", load_t5, free_t5, t5_precision, t5_stream},
    [FLUX_TRANSFORMER] = {"transformer", dit_prefixes, "transformer.", load_dit, free_dit, dit_precision, dit_stream},
    [FLUX_VAE_DECODER] = {"vae_decoder", dec_prefixes, "vae.", load_vae_decoder, free_vae_decoder, vae_precision, NULL},
};

#define NEEDS(c) (1u << (c))
static const sdc_phase_def flux_phases[] = {
    {"condition", NEEDS(FLUX_CLIP), 0, 0, flux_condition_clip, 0},
    {"condition_2", NEEDS(FLUX_T5), 0, 0, flux_condition_t5, 0},
    {"denoise", NEEDS(FLUX_TRANSFORMER), 1, 0, flux_denoise, 1},
    {"decode", NEEDS(FLUX_VAE_DECODER), 1, 0, flux_decode, 0},
};

/* --- opening ----------------------------------------------------------------------------------- */

/* A diffusers folder with a Flux transformer, or a single file holding a Flux transformer (BFL or
 * diffusers names). */
static int flux_probe(const sdc_model_files *mf) {
    const char *prefix;
    if (mf->single_file) return mf->single && flux_transformer_names(mf->single, &prefix) != 0;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(sdc_model_files_config(mf, "transformer"), "_class_name");
    return cJSON_IsString(cls) && strcmp(cls->valuestring, "FluxTransformer2DModel") == 0;
}

static void flux_close(void *fam) {
    flux_fam *f = fam;
    if (!f) return;
    sdc_clip_tokenizer_free(f->clip_tok);
    sdc_unigram_free(f->t5_tok);
    free(f);
}

/* CLIP's tokenizer: the one given, else the folder's (-m DIR or --config DIR) tokenizer/, else the
 * model's default (the one sdc ships, for single files); T5's: the folder's tokenizer_2/. */
static sdc_status open_tokenizers(flux_fam *f, const sdc_model_files *mf, const char *tokenizer_dir,
                                  const sdc_logger *log) {
    const char *cdir = sdc_model_files_config_dir(mf);
    char *own = cdir ? sdc_path_join(cdir, "tokenizer") : NULL;
    char *dir2 = cdir ? sdc_path_join(cdir, "tokenizer_2") : NULL;
    const char *dir = tokenizer_dir ? tokenizer_dir : own && sdc_dir_exists(own) ? own : mf->tokenizer_dir;
    sdc_status st = SDC_OK;
    if (!dir) {
        SDC_LOGE(log, "flux_open: %s has no tokenizer/ folder; pass a tokenizer directory", mf->root);
        st = SDC_ERR_NOT_FOUND;
    }
    if (st == SDC_OK) st = sdc_clip_tokenizer_load(dir, log, &f->clip_tok);
    if (st == SDC_OK && (!dir2 || !sdc_dir_exists(dir2))) {
        if (cdir)
            SDC_LOGE(log, "flux_open: %s has no tokenizer_2/ folder (the T5 tokenizer)", cdir);
        else
            SDC_LOGE(log,
                     "flux_open: no T5 tokenizer: sdc ships none; give a diffusers Flux folder with --config DIR "
                     "(its tokenizer_2/ and configs), e.g. -m %s --config FLUX-FOLDER",
                     mf->root);
        st = SDC_ERR_NOT_FOUND;
    }
    if (st == SDC_OK) st = sdc_unigram_load(dir2, log, &f->t5_tok);
    free(own);
    free(dir2);
    return st;
}

/* The parts must fit one another: CLIP's width is the pooled projection's, T5's the context's, and the
 * VAE's latent channels x 2 x 2 the transformer's input. */
static sdc_status check_fit(const flux_fam *f, const sdc_logger *log) {
    if (f->clip.hidden != f->dit.pooled_dim || f->t5.d_model != f->dit.joint_dim ||
        f->vae.latent_channels * 4 != f->dit.in_channels || f->dit.out_channels != f->dit.in_channels) {
        SDC_LOGE(log,
                 "flux_open: the parts do not fit: CLIP width %d (transformer pooled_projection_dim %d), T5 "
                 "d_model %d (joint_attention_dim %d), VAE latent channels %d x 4 (in_channels %d, "
                 "out_channels %d)",
                 f->clip.hidden, f->dit.pooled_dim, f->t5.d_model, f->dit.joint_dim, f->vae.latent_channels,
                 f->dit.in_channels, f->dit.out_channels);
        return SDC_ERR_FORMAT;
    }
    if (sdc_unigram_n_vocab(f->t5_tok) > f->t5.vocab) {
        SDC_LOGE(log, "flux_open: the T5 tokenizer has %d ids, the encoder's embedding only %d rows",
                 sdc_unigram_n_vocab(f->t5_tok), f->t5.vocab);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

static sdc_status flux_open(sdc_model_files *mf, const char *tokenizer_dir, const sdc_logger *log, void **out) {
    flux_fam *f = calloc(1, sizeof *f);
    if (!f) return SDC_ERR_OOM;
    sdc_status st = flux_open_parts(f, mf, log);
    if (st == SDC_OK) st = open_tokenizers(f, mf, tokenizer_dir, log);
    if (st == SDC_OK) st = check_fit(f, log);
    if (st != SDC_OK) {
        flux_close(f);
        return st;
    }
    *out = f;
    return SDC_OK;
}

static void flux_latent_shape(const void *fam, int width, int height, int64_t ne[4]) {
    const flux_fam *f = fam;
    const int vs = sdc_vae_downscale(&f->vae);
    ne[0] = 1;
    ne[1] = f->vae.latent_channels;
    ne[2] = height / vs;
    ne[3] = width / vs;
}

/* --- a job ------------------------------------------------------------------------------------- */

static void flux_job_free(void *state) {
    flux_job *j = state;
    if (!j) return;
    sdc_schedule_free(&j->sched);
    free(j->ctx);
    free(j->pooled);
    free(j->img_ids);
    free(j->txt_ids);
    free(j->lat);
    free(j);
}

/* What Flux cannot do with p: a clear error. */
static sdc_status check_job(const flux_fam *f, const sdc_gen_params *p, const sdc_logger *log) {
    const int m = 2 * sdc_vae_downscale(&f->vae); /* 2x2 packing of the latents */
    if (p->width % m || p->height % m) {
        SDC_LOGE(log, "sdc_generate: Flux packs 2x2 latents: width and height must be multiples of %d (got %dx%d)", m,
                 p->width, p->height);
        return SDC_ERR_INVALID_ARG;
    }
    if (p->init_image) {
        SDC_LOGE(log, "sdc_generate: img2img is not supported for Flux yet");
        return SDC_ERR_UNSUPPORTED;
    }
    if ((p->sampler != SDC_SAMPLER_DEFAULT && p->sampler != SDC_SAMPLER_EULER) || p->karras) {
        SDC_LOGE(log, "sdc_generate: Flux samples with flow-matching Euler only (sampling method euler, discrete)");
        return SDC_ERR_UNSUPPORTED;
    }
    return SDC_OK;
}

static sdc_status flux_job_new(sdc_run *r, void **state) {
    const flux_fam *f = r->fam;
    const sdc_gen_params *p = r->p;
    sdc_status st = check_job(f, p, r->log);
    if (st != SDC_OK) return st;
    flux_job *j = calloc(1, sizeof *j);
    if (!j) return SDC_ERR_OOM;
    const int vs = sdc_vae_downscale(&f->vae);
    j->H = p->height;
    j->W = p->width;
    j->h = j->H / vs;
    j->w = j->W / vs;
    j->n = (size_t)(f->vae.latent_channels * j->h * j->w);
    j->N = (j->h / 2) * (j->w / 2);
    j->T = p->t5_max_length ? p->t5_max_length : f->dit.guidance_embeds ? 512 : 256;
    st = sdc_flow_schedule_build(&f->flow, p->steps, (int)j->N, r->log, &j->sched);
    if (st == SDC_OK) {
        j->n_prompts = sdc_job_n_prompts(p);
        j->pooled = calloc((size_t)j->n_prompts * (size_t)f->dit.pooled_dim, sizeof(float));
        j->ctx = calloc((size_t)j->n_prompts * (size_t)j->T * (size_t)f->t5.d_model, sizeof(float));
        j->img_ids = calloc((size_t)j->N * 3, sizeof(float));
        j->txt_ids = calloc((size_t)j->T * 3, sizeof(float));
        j->lat = malloc(sizeof(float) * j->n * (size_t)sdc_job_n_images(p));
        if (!j->pooled || !j->ctx || !j->img_ids || !j->txt_ids || !j->lat) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK) /* diffusers' latent image ids: (0, row, column) of each packed token */
        for (int64_t y = 0; y < j->h / 2; y++)
            for (int64_t x = 0; x < j->w / 2; x++) {
                float *id = j->img_ids + (size_t)(y * (j->w / 2) + x) * 3;
                id[1] = (float)y;
                id[2] = (float)x;
            }
    if (st != SDC_OK) {
        flux_job_free(j);
        return st;
    }
    *state = j;
    return SDC_OK;
}

const sdc_family sdc_family_flux = {
    .name = "flux",
    .probe = flux_probe,
    .open = flux_open,
    .close = flux_close,
    .components = flux_components,
    .n_components = FLUX_N_COMPONENTS,
    .phases = flux_phases,
    .n_phases = (int)(sizeof flux_phases / sizeof flux_phases[0]),
    .latent_shape = flux_latent_shape,
    .job_new = flux_job_new,
    .job_free = flux_job_free,
};
