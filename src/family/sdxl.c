/* sdxl.c - Stable Diffusion XL as a family: the SD family's UNet (text_time), VAE and job code, with two
 * CLIP text encoders whose penultimate hidden states are joined along features, and the second's
 * pooled projection plus the micro-conditioning (original size, crop, target size) as the UNet's
 * added conditioning.
 *
 *   phase        needs            runs
 *   condition    text_encoder     once, every prompt: te1 hidden_states[-2] [nb, T, C1]
 *   condition_2  text_encoder_2   once, every prompt: te2 hidden_states[-2] [nb, T, C2] and text_embeds
 *                                 [nb, P]; context = concat(te1, te2) [nb, T, C1 + C2] (on the host)
 *   encode       vae_encoder      once, img2img only
 *   denoise      unet             per group of max_batch images
 *   decode       vae_decoder      per image
 * The encoders are separate phases so that `phased` holds only one of them at a time.
 * With force_zeros_for_empty_prompt (the model index; diffusers' default) and an empty negative prompt,
 * the negative row is zeros, embeds and pooled alike, and only the prompt is encoded. */
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "family/common.h"
#include "family/sd1.h"
#include "model/activations.h"
#include "pipeline/pipeline.h"

/* --- condition ------------------------------------------------------------------------------- */

/* The hidden state SDXL takes: hidden_states[-2] (the penultimate layer, no final norm), or with
 * --clip-skip k >= 2 (A1111 numbering; diffusers' clip_skip k - 1) hidden_states[-(k + 1)]. */
static int xl_layers(const sdc_clip_config *cc, int clip_skip) {
    int k = clip_skip >= 1 ? clip_skip : 1;
    int n = cc->n_layers - k;
    return n >= 1 ? n : 1;
}

/* Encodes entry e's rows that are not zeros with encoder `comp` and tokenizer tok (one call, as a
 * one-prompt job makes) into columns [c0, c0 + C) of the entry's host context rows [nb, T, C1 + C2],
 * and its text_embeds [rows, P] when asked. */
static sdc_status encode(sdc_run *r, sd1_job *j, int e, int comp, const sdc_clip_tokenizer *tok, float *text_embeds,
                         int64_t c0) {
    const sdc_gen_params *p = r->p;
    sdc_clip *clip = sdc_run_component(r, comp);
    const sdc_clip_config *cc = sdc_clip_get_config(clip);
    const int T = cc->max_positions, first = j->zero_negative[e], rows = j->nb - first;
    const int64_t C = cc->hidden;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(rows * T));
    float *h = malloc(sizeof(float) * (size_t)(rows * T * C));
    const sdc_prompt q = sdc_job_prompt(p, e);
    const char *texts[2] = {q.negative_prompt, q.prompt};
    for (int b = 0; ids && b < rows; b++) {
        const int row = first + b; /* row of the context: 0 the negative when nb == 2 */
        size_t cut = sdc_clip_encode_prompt(tok, texts[2 - j->nb + row], ids + (size_t)b * T, T);
        if (cut && !r->dry && comp == SD1_TEXT_ENCODER)
            SDC_LOGW(r->log, "condition: %s%.0d is %zu tokens too long; the end was cut off",
                     j->nb == 2 && row == 0 ? "the negative prompt" : "the prompt", j->n_prompts > 1 ? e + 1 : 0, cut);
    }
    sdc_tensor *hidden = sdc_act_new(r->be, sdc_clip_act_dtype(clip), 3, (int64_t[]){rows, T, C}); /* [rows, T, C] */
    sdc_status st = ids && h && hidden ? SDC_OK : SDC_ERR_OOM;
    const sdc_clip_request req = {xl_layers(cc, p->clip_skip), 0, hidden, NULL, text_embeds};
    if (st == SDC_OK) st = sdc_clip_encode(clip, ids, rows, T, &req, NULL, NULL);
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    if (st == SDC_OK) st = sdc_tensor_get_f32(hidden, h);
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    if (st == SDC_OK) {
        float *dst = j->ctx + (size_t)(e * j->nb + first) * (size_t)(j->T * j->C); /* [rows, T, C1 + C2] */
        for (int64_t t = 0; t < (int64_t)rows * T; t++)
            memcpy(dst + t * j->C + c0, h + t * C, sizeof(float) * (size_t)C);
    }
    sdc_tensor_free(hidden);
    free(ids);
    free(h);
    return st;
}

/* Entry e's rows from the first encoder (context columns [0, C1)) / the second (columns [C1, C1 + C2)
 * and its pooled text_embeds row), for fam_per_prompt. */
static sdc_status encode_te1(sdc_run *r, int e, void *user) {
    (void)user;
    return encode(r, r->state, e, SD1_TEXT_ENCODER, ((const sd1_fam *)r->fam)->tok, NULL, 0);
}
static sdc_status encode_te2(sdc_run *r, int e, void *user) {
    (void)user;
    sd1_job *j = r->state;
    const sd1_fam *f = r->fam;
    float *embeds = j->text_embeds + (size_t)(e * j->nb + j->zero_negative[e]) * (size_t)f->clip2.projection_dim;
    return encode(r, j, e, SDXL_TEXT_ENCODER_2, f->tok2, embeds, f->clip.hidden);
}

sdc_status sdxl_condition_1(sdc_run *r, int image) {
    (void)image;
    sd1_job *j = r->state;
    j->ctx_dtype = sdc_clip_act_dtype(sdc_run_component(r, SD1_TEXT_ENCODER));
    return fam_per_prompt(r, "condition", j->n_prompts, encode_te1, NULL);
}

sdc_status sdxl_condition_2(sdc_run *r, int image) {
    (void)image;
    sd1_job *j = r->state;
    const sd1_fam *f = r->fam;
    const size_t P = (size_t)f->clip2.projection_dim;
    /* the zero negative rows of text_embeds and the context stay as job_new left them (calloc) */
    sdc_status st = fam_per_prompt(r, "condition_2", j->n_prompts, encode_te2, NULL);
    if (st == SDC_OK && !r->dry)
        st = sdc_pipeline_check_finite(r->log, "condition_2", 0, "the pooled text embeds", j->text_embeds,
                                       (size_t)(j->n_prompts * j->nb) * P);
    return st;
}

/* --- the family ------------------------------------------------------------------------------ */

static const char *const te2_prefixes[] = {"text_encoder_2.", NULL};

static sdc_status load_text_encoder_2(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_clip_load(&((const sd1_fam *)fam)->clip2, src, (sdc_clip **)out);
}

static const sdc_component_def sdxl_components[SDXL_N_COMPONENTS] = {
    SD1_COMPONENT_DEFS[SDXL_TEXT_ENCODER_2] = {"text_encoder_2", te2_prefixes, "text_encoder_2.", load_text_encoder_2,
                                               sd1_free_text_encoder, NULL, NULL},
};

#define NEEDS(c) (1u << (c))
static const sdc_phase_def sdxl_phases[] = {
    {"condition", NEEDS(SD1_TEXT_ENCODER), 0, 0, sdxl_condition_1, 0},
    {"condition_2", NEEDS(SDXL_TEXT_ENCODER_2), 0, 0, sdxl_condition_2, 0},
    {"encode", NEEDS(SD1_VAE_ENCODER), 0, 1, sd1_encode, 0},
    {"denoise", NEEDS(SD1_UNET), 1, 0, sd1_denoise, 1},
    {"decode", NEEDS(SD1_VAE_DECODER), 1, 0, sd1_decode, 0},
};

static int sdxl_probe(const sdc_model_files *mf) {
    return mf->single_file ? sd1_sf_probe(mf->single, 1) : sd1_folder_is_xl(mf);
}

static sdc_status sdxl_open(sdc_model_files *mf, const char *tokenizer_dir, const sdc_logger *log, void **out) {
    return sd1_open_as(mf, tokenizer_dir, log, 1, out);
}

const sdc_family sdc_family_sdxl = {
    .name = "sdxl",
    .probe = sdxl_probe,
    .open = sdxl_open,
    .close = sd1_close,
    .components = sdxl_components,
    .n_components = SDXL_N_COMPONENTS,
    .phases = sdxl_phases,
    .n_phases = (int)(sizeof sdxl_phases / sizeof sdxl_phases[0]),
    .latent_shape = sd1_latent_shape,
    .job_new = sd1_job_new,
    .job_free = sd1_job_free,
};
