/* flux_phases.c - the Flux phase bodies: CLIP pooled, T5 context, the flow-matching loop on packed
 * latents, decode.
 *
 * Per image i (seed + i), as diffusers' FluxPipeline: latents = randn [16, h, w] (or the caller's
 * latents_in), packed 2x2 into N = (h/2)(w/2) tokens of 64 = (channel, dy, dx); each step hands the
 * transformer timestep t / 1000 (the sigma), the dev guidance, the packed latents, and moves them by
 * (sigma_next - sigma) * v; then latents / scaling + shift through the VAE. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "family/common.h"
#include "family/flux.h"
#include "model/activations.h"
#include "pipeline/pipeline.h"

static int progress(sdc_run *r, const char *phase, int step, int total) {
    return r->progress ? r->progress(r, phase, step, total) : 0;
}

/* --- condition: CLIP's pooled output ----------------------------------------------------------- */

sdc_status flux_condition_clip(sdc_run *r, int image) {
    (void)image;
    const flux_fam *f = r->fam;
    flux_job *j = r->state;
    if (progress(r, "condition", 0, 1)) return SDC_ERR_CANCELLED;
    const int T = f->clip.max_positions;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
    if (!ids) return SDC_ERR_OOM;
    size_t cut = sdc_clip_encode_prompt(f->clip_tok, r->p->prompt ? r->p->prompt : "", ids, T);
    if (cut && !r->dry) SDC_LOGW(r->log, "condition: the prompt is %zu CLIP tokens too long; the end was cut off", cut);
    const sdc_clip_request req = {0, 1, NULL, j->pooled, NULL};
    sdc_status st = sdc_clip_encode(sdc_run_component(r, FLUX_CLIP), ids, 1, T, &req, NULL, NULL);
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    free(ids);
    if (st == SDC_OK && !r->dry)
        st = sdc_pipeline_check_finite(r->log, "condition", 0, "CLIP's pooled output", j->pooled,
                                       (size_t)f->dit.pooled_dim);
    if (st == SDC_OK && progress(r, "condition", 1, 1)) st = SDC_ERR_CANCELLED;
    return st;
}

/* --- condition_2: the T5 context --------------------------------------------------------------- */

sdc_status flux_condition_t5(sdc_run *r, int image) {
    (void)image;
    const flux_fam *f = r->fam;
    flux_job *j = r->state;
    if (progress(r, "condition_2", 0, 1)) return SDC_ERR_CANCELLED;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)j->T);
    if (!ids) return SDC_ERR_OOM;
    size_t cut = 0;
    sdc_status st = sdc_unigram_encode(f->t5_tok, r->p->prompt ? r->p->prompt : "", ids, j->T, &cut);
    if (st == SDC_OK && cut && !r->dry)
        SDC_LOGW(r->log, "condition_2: the prompt is %zu T5 tokens too long for %d; the end was cut off", cut, j->T);
    sdc_t5 *t5 = sdc_run_component(r, FLUX_T5);
    if (st == SDC_OK) {
        j->context = sdc_act_new(r->be, sdc_t5_act_dtype(t5), 3, (int64_t[]){1, j->T, f->t5.d_model}); /* [1, T, C] */
        if (!j->context) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK) st = sdc_t5_forward(t5, ids, 1, j->T, j->context);
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    free(ids);
    if (st == SDC_OK && progress(r, "condition_2", 1, 1)) st = SDC_ERR_CANCELLED;
    return st;
}

/* --- denoise ----------------------------------------------------------------------------------- */

/* lat [C, h, w] <-> tokens [(h/2)(w/2), 4C]: token (y, x), feature (c, dy, dx) */
static void pack(const float *lat, int64_t C, int64_t h, int64_t w, float *tok) {
    const int64_t w2 = w / 2, F = 4 * C;
    for (int64_t c = 0; c < C; c++)
        for (int64_t yy = 0; yy < h; yy++)
            for (int64_t xx = 0; xx < w; xx++)
                tok[((yy / 2) * w2 + xx / 2) * F + c * 4 + (yy % 2) * 2 + xx % 2] = lat[(c * h + yy) * w + xx];
}

static void unpack(const float *tok, int64_t C, int64_t h, int64_t w, float *lat) {
    const int64_t w2 = w / 2, F = 4 * C;
    for (int64_t c = 0; c < C; c++)
        for (int64_t yy = 0; yy < h; yy++)
            for (int64_t xx = 0; xx < w; xx++)
                lat[(c * h + yy) * w + xx] = tok[((yy / 2) * w2 + xx / 2) * F + c * 4 + (yy % 2) * 2 + xx % 2];
}

typedef struct dit_call {
    sdc_run *r;
    flux_job *j;
    sdc_flux *dit;
    sdc_tensor *x, *out; /* [1, N, 4C] */
    float *buf;          /* [n] packed staging */
} dit_call;

static sdc_status dit_eval(void *user, const float *x_in, float t, float *pred) {
    dit_call *c = user;
    const flux_fam *f = c->r->fam;
    flux_job *j = c->j;
    const int64_t C = f->vae.latent_channels;
    pack(x_in, C, j->h, j->w, c->buf);
    sdc_tensor_set_f32(c->x, c->buf);
    const float ts = t / 1000.0f; /* the pipeline hands the transformer timestep / 1000 */
    const float g = c->r->p->guidance;
    const sdc_flux_cond cond = {j->context, j->pooled, &ts, f->dit.guidance_embeds ? &g : NULL, j->img_ids, j->txt_ids};
    sdc_status st = sdc_flux_forward(c->dit, c->x, &cond, c->out, NULL, NULL);
    if (st != SDC_OK) return st;
    sdc_tensor_get_f32(c->out, c->buf);
    if ((st = sdc_backend_status(c->r->be)) != SDC_OK) return st;
    unpack(c->buf, C, j->h, j->w, pred);
    return SDC_OK;
}

static int denoise_progress(void *user, int done, int total) { return progress(user, "denoise", done, total); }

sdc_status flux_denoise(sdc_run *r, int i) {
    flux_job *j = r->state;
    const flux_fam *f = r->fam;
    const sdc_gen_params *p = r->p;
    float *lat = j->lat + (size_t)i * j->n;
    if (p->latents_in) {
        memcpy(lat, p->latents_in + (size_t)i * j->n, sizeof(float) * j->n);
    } else {
        sdc_rng rng;
        sdc_rng_init(&rng, p->rng == SDC_RNG_TYPE_CUDA ? SDC_RNG_CUDA : SDC_RNG_CPU, (uint64_t)(p->seed + i));
        sdc_rng_randn(&rng, lat, j->n);
    }
    dit_call c = {r, j, sdc_run_component(r, FLUX_TRANSFORMER), NULL, NULL, malloc(sizeof(float) * j->n)};
    const sdc_dtype dt = sdc_flux_act_dtype(c.dit);
    c.x = sdc_act_new(r->be, dt, 3, (int64_t[]){1, j->N, f->dit.in_channels}); /* [1, N, 4C] */
    c.out = sdc_act_new(r->be, dt, 3, (int64_t[]){1, j->N, f->dit.out_channels});
    sdc_status st = c.x && c.out && c.buf ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) {
        sdc_sample_callbacks cb = {dit_eval, &c, NULL, NULL, denoise_progress, r};
        st = sdc_sample(&j->sched, lat, j->n, &cb, r->log);
    }
    free(c.buf);
    sdc_tensor_free(c.x);
    sdc_tensor_free(c.out);
    if (st == SDC_OK && !r->dry) st = sdc_pipeline_check_finite(r->log, "denoise", i, "the latents", lat, j->n);
    if (st == SDC_OK && p->latents_out) memcpy(p->latents_out + (size_t)i * j->n, lat, sizeof(float) * j->n);
    if (i == p->batch_count - 1) { /* the context is dead once the last image is denoised */
        sdc_tensor_free(j->context);
        j->context = NULL;
    }
    return st;
}

/* --- decode ------------------------------------------------------------------------------------ */

sdc_status flux_decode(sdc_run *r, int i) {
    flux_job *j = r->state;
    const flux_fam *f = r->fam;
    return fam_decode(r, sdc_run_component(r, FLUX_VAE_DECODER), &f->vae, &j->sched, j->lat + (size_t)i * j->n, j->h,
                      j->w, i);
}
