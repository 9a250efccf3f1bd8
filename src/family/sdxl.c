/* sdxl.c - Stable Diffusion XL as a family: the SD family's UNet (text_time), VAE and job code, with two
 * CLIP text encoders whose penultimate hidden states are joined along features, and the second's
 * pooled projection plus the micro-conditioning (original size, crop, target size) as the UNet's
 * added conditioning.
 *
 *   phase        needs            runs
 *   condition    text_encoder     once: te1 hidden_states[-2] [nb, T, C1]
 *   condition_2  text_encoder_2   once: te2 hidden_states[-2] [nb, T, C2] and text_embeds [nb, P];
 *                                 context = concat(te1, te2) [nb, T, C1 + C2]
 *   encode       vae_encoder      once, img2img only
 *   denoise      unet             per image
 *   decode       vae_decoder      per image
 * The encoders are separate phases so that `phased` holds only one of them at a time.
 * With force_zeros_for_empty_prompt (the model index; diffusers' default) and an empty negative prompt,
 * the negative row is zeros, embeds and pooled alike, and only the prompt is encoded. */
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "family/sd1.h"
#include "model/activations.h"
#include "pipeline/pipeline.h"

/* --- condition ------------------------------------------------------------------------------- */

static int progress(sdc_run *r, const char *phase, int step, int total) {
    return r->progress ? r->progress(r, phase, step, total) : 0;
}

/* The hidden state SDXL takes: hidden_states[-2] (the penultimate layer, no final norm), or with
 * --clip-skip k >= 2 (A1111 numbering; diffusers' clip_skip k - 1) hidden_states[-(k + 1)]. */
static int xl_layers(const sdc_clip_config *cc, int clip_skip) {
    int k = clip_skip >= 1 ? clip_skip : 1;
    int n = cc->n_layers - k;
    return n >= 1 ? n : 1;
}

/* Encodes the rows that are not zeros with encoder `comp` and tokenizer tok into hidden [rows, T, C]
 * (a new activation), and text_embeds [rows, P] when asked. */
static sdc_status encode(sdc_run *r, sd1_job *j, int comp, const sdc_clip_tokenizer *tok, float *text_embeds,
                         sdc_tensor **hidden) {
    const sdc_gen_params *p = r->p;
    sdc_clip *clip = sdc_run_component(r, comp);
    const sdc_clip_config *cc = sdc_clip_get_config(clip);
    const int T = cc->max_positions, first = j->zero_negative, rows = j->nb - first;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(rows * T));
    if (!ids) return SDC_ERR_OOM;
    const char *texts[2] = {p->negative_prompt ? p->negative_prompt : "", p->prompt ? p->prompt : ""};
    for (int b = 0; b < rows; b++) {
        const int row = first + b; /* row of the context: 0 the negative when nb == 2 */
        size_t cut = sdc_clip_encode_prompt(tok, texts[2 - j->nb + row], ids + (size_t)b * T, T);
        if (cut && !r->dry && comp == SD1_TEXT_ENCODER)
            SDC_LOGW(r->log, "condition: %s is %zu tokens too long; the end was cut off",
                     j->nb == 2 && row == 0 ? "the negative prompt" : "the prompt", cut);
    }
    *hidden = sdc_act_new(r->be, sdc_clip_act_dtype(clip), 3, (int64_t[]){rows, T, cc->hidden}); /* [rows, T, C] */
    sdc_status st = *hidden ? SDC_OK : SDC_ERR_OOM;
    const sdc_clip_request req = {xl_layers(cc, p->clip_skip), 0, *hidden, NULL, text_embeds};
    if (st == SDC_OK) st = sdc_clip_encode(clip, ids, rows, T, &req, NULL, NULL);
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    free(ids);
    return st;
}

sdc_status sdxl_condition_1(sdc_run *r, int image) {
    (void)image;
    sd1_job *j = r->state;
    if (progress(r, "condition", 0, 1)) return SDC_ERR_CANCELLED;
    sdc_status st = encode(r, j, SD1_TEXT_ENCODER, ((const sd1_fam *)r->fam)->tok, NULL, &j->context1);
    if (st == SDC_OK && progress(r, "condition", 1, 1)) st = SDC_ERR_CANCELLED;
    return st;
}

/* x [rows, T, C] with a zero row before it when the negative is zeros: [nb, T, C] */
static sdc_status with_zero_row(sdc_run *r, sd1_job *j, sdc_tensor **x) {
    if (!j->zero_negative) return SDC_OK;
    const sdc_tensor *t = *x;
    const int64_t T = t->ne[1], C = t->ne[2];
    float *zeros = calloc((size_t)(T * C), sizeof(float));
    sdc_tensor *z = sdc_act_new(r->be, t->dtype, 3, (int64_t[]){1, T, C});
    sdc_tensor *y = z ? sdc_act_new(r->be, t->dtype, 3, (int64_t[]){2, T, C}) : NULL;
    sdc_status st = zeros && y ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) {
        sdc_tensor_set_f32(z, zeros);
        sdc_concat(y, z, t, 0);
        sdc_tensor_free(*x);
        *x = y;
        y = NULL;
    }
    free(zeros);
    sdc_tensor_free(z);
    sdc_tensor_free(y);
    return st;
}

sdc_status sdxl_condition_2(sdc_run *r, int image) {
    (void)image;
    sd1_job *j = r->state;
    const sd1_fam *f = r->fam;
    if (progress(r, "condition_2", 0, 1)) return SDC_ERR_CANCELLED;
    const size_t P = (size_t)f->clip2.projection_dim;
    /* the zero negative row of text_embeds stays as job_new left it (calloc) */
    sdc_tensor *h2 = NULL;
    sdc_status st = encode(r, j, SDXL_TEXT_ENCODER_2, f->tok2, j->text_embeds + (size_t)j->zero_negative * P, &h2);
    if (st == SDC_OK) st = with_zero_row(r, j, &j->context1);
    if (st == SDC_OK) st = with_zero_row(r, j, &h2);
    if (st == SDC_OK) {
        const sdc_tensor *a = j->context1;
        j->context = sdc_act_new(r->be, a->dtype, 3, (int64_t[]){a->ne[0], a->ne[1], a->ne[2] + h2->ne[2]});
        if (!j->context) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK && j->context1->dtype != h2->dtype) {
        sdc_tensor *c = sdc_act_new(r->be, j->context1->dtype, 3, h2->ne);
        if (c) sdc_copy(c, h2);
        sdc_tensor_free(h2);
        h2 = c;
        if (!h2) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK) sdc_concat(j->context, j->context1, h2, 2); /* [nb, T, C1 + C2] */
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    sdc_tensor_free(h2);
    sdc_tensor_free(j->context1);
    j->context1 = NULL;
    if (st == SDC_OK && !r->dry)
        st = sdc_pipeline_check_finite(r->log, "condition_2", 0, "the pooled text embeds", j->text_embeds,
                                       (size_t)j->nb * P);
    if (st == SDC_OK && progress(r, "condition_2", 1, 1)) st = SDC_ERR_CANCELLED;
    return st;
}

/* --- the family ------------------------------------------------------------------------------ */

static const char *const te2_prefixes[] = {"text_encoder_2.", NULL};

static sdc_status load_text_encoder_2(const void *fam, const sdc_weight_source *src, void **out) {
    return sdc_clip_load(&((const sd1_fam *)fam)->clip2, src, (sdc_clip **)out);
}

static const sdc_component_def sdxl_components[SDXL_N_COMPONENTS] = {
    SD1_COMPONENT_DEFS[SDXL_TEXT_ENCODER_2] = {"text_encoder_2", te2_prefixes, "text_encoder_2.", load_text_encoder_2,
                                               sd1_free_text_encoder, NULL},
};

#define NEEDS(c) (1u << (c))
static const sdc_phase_def sdxl_phases[] = {
    {"condition", NEEDS(SD1_TEXT_ENCODER), 0, 0, sdxl_condition_1},
    {"condition_2", NEEDS(SDXL_TEXT_ENCODER_2), 0, 0, sdxl_condition_2},
    {"encode", NEEDS(SD1_VAE_ENCODER), 0, 1, sd1_encode},
    {"denoise", NEEDS(SD1_UNET), 1, 0, sd1_denoise},
    {"decode", NEEDS(SD1_VAE_DECODER), 1, 0, sd1_decode},
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
