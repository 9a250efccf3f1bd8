/* sd1.c - Stable Diffusion 1.x / 2.x as a family: CLIP text encoder, UNet, KL VAE, DDPM schedules; and
 * the opening and job code SDXL (sdxl.c) shares.
 *
 *   phase      needs          runs
 *   condition  text_encoder   once: each prompt (and negative prompt with CFG) -> its context [nb, T, C]
 *   encode     vae_encoder    once, img2img only: the init image's posterior (mean, logvar)
 *   denoise    unet           per group of max_batch images: initial latents (each its own seed), then
 *                             the sampler loop over the group's rows [group x nb]
 *   decode     vae_decoder    per image: latents -> pixels -> the 8-bit image */
#include "family/sd1.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline.h"

/* --- components ------------------------------------------------------------------------------ */

sdc_status sd1_load_text_encoder(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_clip_load(&((const sd1_fam *)fam)->clip, src, (sdc_clip **)out);
}

sdc_status sd1_load_unet(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_unet_load(&((const sd1_fam *)fam)->unet, src, (sdc_unet **)out);
}

sdc_status sd1_load_vae_decoder(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_vae_decoder_load(&((const sd1_fam *)fam)->vae, src, (sdc_vae_decoder **)out);
}

sdc_status sd1_load_vae_encoder(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_vae_encoder_load(&((const sd1_fam *)fam)->vae, src, (sdc_vae_encoder **)out);
}

void sd1_free_text_encoder(void *o) { sdc_clip_free(o); }
void sd1_free_unet(void *o) { sdc_unet_free(o); }
sdc_weight_stream *sd1_unet_stream(void *o) { return sdc_unet_weight_stream(o); }
void sd1_free_vae_decoder(void *o) { sdc_vae_decoder_free(o); }
void sd1_free_vae_encoder(void *o) { sdc_vae_encoder_free(o); }

/* the stock SD VAE is fine in fp16; SDXL's overflows, and its config says force_upcast: f32 as in diffusers,
 * whose upcast decode runs its convolutions in TF32 (torch's default for cuDNN): F32_UPCAST (backend.h) */
sdc_prec sd1_vae_precision(const void *fam) {
    return ((const sd1_fam *)fam)->vae.force_upcast ? SDC_PREC_F32_UPCAST : SDC_PREC_AUTO;
}

const char *const sd1_te_prefixes[] = {"text_encoder.text_model.", NULL};
const char *const sd1_unet_prefixes[] = {"unet.", NULL};
const char *const sd1_dec_prefixes[] = {"vae.decoder.", "vae.post_quant_conv.", NULL};
const char *const sd1_enc_prefixes[] = {"vae.encoder.", "vae.quant_conv.", NULL};

static const sdc_component_def sd1_components[SD1_N_COMPONENTS] = {SD1_COMPONENT_DEFS};

#define NEEDS(c) (1u << (c))
static const sdc_phase_def sd1_phases[] = {
    {"condition", NEEDS(SD1_TEXT_ENCODER), 0, 0, sd1_condition, 0},
    {"encode", NEEDS(SD1_VAE_ENCODER), 0, 1, sd1_encode, 0},
    {"denoise", NEEDS(SD1_UNET), 1, 0, sd1_denoise, 1},
    {"decode", NEEDS(SD1_VAE_DECODER), 1, 0, sd1_decode, 0},
};

/* --- opening ----------------------------------------------------------------------------------- */

int sd1_folder_is_xl(const sdc_model_files *mf) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(sdc_model_files_config(mf, "unet"), "addition_embed_type");
    return sdc_model_files_config(mf, "text_encoder_2") || (cJSON_IsString(t) && !strcmp(t->valuestring, "text_time"));
}

/* Folders: the SD-shaped diffusers layout (text_encoder, unet, vae) opened into configs. Single files:
 * the LDM / SGM key groups (sd1_detect.c); open says what the file is when it is not SD 1.x. */
static int sd1_probe(const sdc_model_files *mf) {
    return mf->single_file ? sd1_sf_probe(mf->single, 0) : sdc_model_files_config(mf, "unet") && !sd1_folder_is_xl(mf);
}

void sd1_close(void *fam) {
    sd1_fam *f = fam;
    if (!f) return;
    sdc_clip_tokenizer_free(f->tok);
    sdc_clip_tokenizer_free(f->tok2);
    sd1_sf_configs_free(&f->sf);
    free(f);
}

/* Part c's config: the model files', else the one built for a single file. */
static const cJSON *config_of(const sd1_fam *f, const sdc_model_files *mf, int c) {
    const cJSON *cfg = sdc_model_files_config(mf, sd1_part_name(c));
    return cfg ? cfg : f->sf.config[c];
}

/* The tokenizers: the caller's folder (or the model's tokenizer/) for the first encoder; SDXL's second
 * and SD 2.x's pad with "!" (SDXL's tokenizer_2/ says so; the caller's or sdc's own folder gets that pad
 * set). */
static sdc_status open_tokenizers(sd1_fam *f, const sdc_model_files *mf, const char *tokenizer_dir,
                                  const sdc_logger *log) {
    const char *dir = tokenizer_dir ? tokenizer_dir : mf->tokenizer_dir;
    if (!dir) {
        SDC_LOGE(log, "sd1_open: %s has no %s; pass a tokenizer directory", mf->root,
                 mf->single_file ? "tokenizer, nor was sdc's own found" : "tokenizer/ folder");
        return SDC_ERR_NOT_FOUND;
    }
    sdc_status st = sdc_clip_tokenizer_load(dir, log, &f->tok);
    /* SD 2.x's OpenCLIP tokenizer pads with "!" too: a single file's (sdc's own CLIP files) gets that pad */
    if (st == SDC_OK && mf->single_file && f->sf.layout == SD1_SF_LDM_OPENCLIP)
        st = sdc_clip_tokenizer_set_pad(f->tok, "!");
    if (st != SDC_OK || !f->xl) return st;
    char *dir2 = tokenizer_dir ? NULL : sdc_model_files_subdir(mf, "tokenizer_2");
    st = sdc_clip_tokenizer_load(dir2 ? dir2 : dir, log, &f->tok2);
    if (st == SDC_OK && !dir2) st = sdc_clip_tokenizer_set_pad(f->tok2, "!");
    free(dir2);
    return st;
}

/* SDXL: the encoders' widths fill the UNet's context and add_embedding. */
static sdc_status check_xl(const sd1_fam *f, const sdc_logger *log) {
    const int P = f->clip2.projection_dim;
    if (!f->unet.text_time || !P) {
        SDC_LOGE(log, "sd1_open: an SDXL model needs a text_time UNet and a text_encoder_2 with a text_projection%s%s",
                 f->unet.text_time ? "" : " (the UNet has no addition_embed_type \"text_time\")",
                 P ? "" : " (text_encoder_2 is not CLIPTextModelWithProjection)");
        return SDC_ERR_UNSUPPORTED;
    }
    if (f->clip.hidden + f->clip2.hidden != f->unet.cross_attention_dim ||
        (int64_t)P + (int64_t)SDXL_N_TIME_IDS * f->unet.addition_time_embed_dim != f->unet.add_in_dim) {
        SDC_LOGE(log,
                 "sd1_open: the text encoders (widths %d + %d, projection %d) do not fit the UNet "
                 "(cross_attention_dim %d; add_embedding takes %d = projection + 6 x %d)",
                 f->clip.hidden, f->clip2.hidden, P, f->unet.cross_attention_dim, f->unet.add_in_dim,
                 f->unet.addition_time_embed_dim);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

sdc_status sd1_open_as(sdc_model_files *mf, const char *tokenizer_dir, const sdc_logger *log, int xl, void **out) {
    sd1_fam *f = calloc(1, sizeof *f);
    if (!f) return SDC_ERR_OOM;
    f->xl = xl;
    sdc_status st = mf->single_file ? sd1_sf_open(mf, xl, log, &f->sf) : SDC_OK;
    for (int c = 0; c < SD1_N_PARTS && st == SDC_OK; c++)
        if (c != SD1_PART_TEXT_ENCODER_2 || xl) st = sdc_model_files_use(mf, sd1_part_name(c), log);
    f->scheduler_config = mf->scheduler_config ? mf->scheduler_config : f->sf.scheduler_config;
    if (st == SDC_OK) st = sdc_clip_config_parse(config_of(f, mf, SD1_PART_TEXT_ENCODER), log, &f->clip);
    if (st == SDC_OK && xl) st = sdc_clip_config_parse(config_of(f, mf, SD1_PART_TEXT_ENCODER_2), log, &f->clip2);
    if (st == SDC_OK) st = sdc_unet_config_parse(config_of(f, mf, SD1_PART_UNET), log, &f->unet);
    if (st == SDC_OK) st = sdc_vae_config_parse(config_of(f, mf, SD1_PART_VAE), log, &f->vae);
    if (st == SDC_OK) st = open_tokenizers(f, mf, tokenizer_dir, log);
    if (st == SDC_OK && xl) {
        st = check_xl(f, log);
        const cJSON *fz = cJSON_GetObjectItemCaseSensitive(mf->model_index, "force_zeros_for_empty_prompt");
        f->force_zeros_for_empty_prompt = !cJSON_IsFalse(fz); /* diffusers' SDXL pipeline default: true */
    } else if (st == SDC_OK && f->clip.hidden != f->unet.cross_attention_dim) {
        SDC_LOGE(log, "sd1_open: text encoder width %d does not match the UNet's cross_attention_dim %d",
                 f->clip.hidden, f->unet.cross_attention_dim);
        st = SDC_ERR_UNSUPPORTED;
    } else if (st == SDC_OK && f->unet.text_time) {
        SDC_LOGE(log, "sd1_open: the UNet has addition_embed_type \"text_time\" (SDXL) but there is no text_encoder_2");
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st != SDC_OK) {
        sd1_close(f);
        return st;
    }
    *out = f;
    return SDC_OK;
}

static sdc_status sd1_open(sdc_model_files *mf, const char *tokenizer_dir, const sdc_logger *log, void **out) {
    return sd1_open_as(mf, tokenizer_dir, log, 0, out);
}

void sd1_latent_shape(const void *fam, int width, int height, int64_t ne[4]) {
    const sd1_fam *f = fam;
    const int vs = sdc_vae_downscale(&f->vae);
    ne[0] = 1;
    ne[1] = f->unet.in_channels;
    ne[2] = height / vs;
    ne[3] = width / vs;
}

/* --- a job ------------------------------------------------------------------------------------- */

/* The sampler a scheduler_config.json names (diffusers class; an unknown one warns and gives euler),
 * and whether it asks for Karras sigmas. */
static sdc_sampler config_sampler(const cJSON *cfg, int *karras, const sdc_logger *log) {
    const cJSON *cls = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "_class_name") : NULL;
    const cJSON *k = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "use_karras_sigmas") : NULL;
    sdc_sampler s = SDC_SAMPLER_EULER; /* no scheduler config: diffusers' SD default */
    if (cJSON_IsString(cls)) sdc_sampler_kind_from_class(cls->valuestring, &s, log);
    *karras = cJSON_IsTrue(k) && s != SDC_SAMPLER_DDIM && s != SDC_SAMPLER_PNDM;
    return s;
}

/* The schedule for p (truncated for img2img). */
static sdc_status build_schedule(const sd1_fam *f, const sdc_gen_params *p, const sdc_logger *log, sdc_schedule *s) {
    sdc_sampler_params sp;
    sdc_sampler_params_init(&sp);
    int karras = p->karras;
    sdc_sampler kind = p->sampler;
    if (kind == SDC_SAMPLER_DEFAULT) {
        int cfg_karras;
        kind = config_sampler(f->scheduler_config, &cfg_karras, log);
        karras = karras || cfg_karras;
    }
    sp.kind = kind;
    sp.karras = karras;
    sp.steps = p->steps;
    sdc_status st = sdc_schedule_build(f->scheduler_config, &sp, log, s);
    if (st == SDC_OK && p->init_image) st = sdc_schedule_truncate_for_strength(s, p->strength, log);
    return st;
}

void sd1_job_free(void *state) {
    sd1_job *j = state;
    if (!j) return;
    sdc_schedule_free(&j->sched);
    free(j->ctx);
    free(j->zero_negative);
    free(j->text_embeds);
    free(j->mean);
    free(j->logvar);
    free(j->lat);
    free(j);
}

/* SDXL's time ids (diffusers' order, (height, width) pairs): original size, crop top-left, target size;
 * each size 0 is the image's, as diffusers' defaults. The same for every row. */
static void sdxl_time_ids(const sdc_gen_params *p, float ids[SDXL_N_TIME_IDS]) {
    const int v[SDXL_N_TIME_IDS] = {p->original_height ? p->original_height : p->height,
                                    p->original_width ? p->original_width : p->width,
                                    p->crop_top,
                                    p->crop_left,
                                    p->target_height ? p->target_height : p->height,
                                    p->target_width ? p->target_width : p->width};
    for (int i = 0; i < SDXL_N_TIME_IDS; i++) ids[i] = (float)v[i];
}

sdc_status sd1_job_new(sdc_run *r, void **state) {
    const sd1_fam *f = r->fam;
    const sdc_gen_params *p = r->p;
    const int vs = sdc_vae_downscale(&f->vae);
    if (p->width % vs || p->height % vs) {
        SDC_LOGE(r->log, "sdc_generate: width and height must be multiples of %d for this VAE (got %dx%d)", vs,
                 p->width, p->height);
        return SDC_ERR_INVALID_ARG;
    }
    sd1_job *j = calloc(1, sizeof *j);
    if (!j) return SDC_ERR_OOM;
    sdc_status st = build_schedule(f, p, r->log, &j->sched);
    j->nb = p->cfg_scale > 1.0f ? 2 : 1;
    j->n_prompts = sdc_job_n_prompts(p);
    j->H = p->height;
    j->W = p->width;
    j->h = j->H / vs;
    j->w = j->W / vs;
    j->n = (size_t)(f->unet.in_channels * j->h * j->w);
    j->T = f->clip.max_positions;
    j->C = f->unet.cross_attention_dim;
    const size_t P = (size_t)j->n_prompts, rows = P * (size_t)j->nb;
    j->ctx = calloc(rows * (size_t)(j->T * j->C), sizeof(float));
    if (!j->ctx) st = SDC_ERR_OOM;
    if (f->xl) {
        sdxl_time_ids(p, j->time_ids);
        j->zero_negative = calloc(P, 1);
        /* the zero negative rows stay as calloc left them */
        j->text_embeds = calloc(rows * (size_t)f->clip2.projection_dim, sizeof(float));
        if (!j->zero_negative || !j->text_embeds) st = SDC_ERR_OOM;
        for (int e = 0; e < j->n_prompts && st == SDC_OK; e++)
            j->zero_negative[e] =
                j->nb == 2 && f->force_zeros_for_empty_prompt && !*sdc_job_prompt(p, e).negative_prompt;
    }
    if (st == SDC_OK) {
        j->lat = malloc(sizeof(float) * j->n * (size_t)sdc_job_n_images(p));
        j->mean = malloc(sizeof(float) * j->n);
        j->logvar = malloc(sizeof(float) * j->n);
        if (!j->lat || !j->mean || !j->logvar) st = SDC_ERR_OOM;
    }
    if (st != SDC_OK) {
        sd1_job_free(j);
        return st;
    }
    *state = j;
    return SDC_OK;
}

const sdc_family sdc_family_sd1 = {
    .name = "sd1",
    .probe = sd1_probe,
    .open = sd1_open,
    .close = sd1_close,
    .components = sd1_components,
    .n_components = SD1_N_COMPONENTS,
    .phases = sd1_phases,
    .n_phases = (int)(sizeof sd1_phases / sizeof sd1_phases[0]),
    .latent_shape = sd1_latent_shape,
    .job_new = sd1_job_new,
    .job_free = sd1_job_free,
};
