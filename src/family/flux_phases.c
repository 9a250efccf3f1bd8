/* flux_phases.c - the Flux phase bodies: CLIP pooled, T5 context, the flow-matching loop on packed
 * latents, decode.
 *
 * Per image (its entry's seed + i), as diffusers' FluxPipeline: latents = randn [16, h, w] (or the caller's
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

/* --- condition: CLIP's pooled output ----------------------------------------------------------- */

/* Entry e's pooled output [pooled_dim], one encoder call as a one-prompt job makes. */
static sdc_status clip_pooled(sdc_run *r, int e, void *user) {
    (void)user;
    flux_job *j = r->state;
    const flux_fam *f = r->fam;
    const int T = f->clip.max_positions;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)T);
    if (!ids) return SDC_ERR_OOM;
    size_t cut = sdc_clip_encode_prompt(f->clip_tok, sdc_job_prompt(r->p, e).prompt, ids, T);
    if (cut && !r->dry)
        SDC_LOGW(r->log, "condition: the prompt%.0d is %zu CLIP tokens too long; the end was cut off",
                 j->n_prompts > 1 ? e + 1 : 0, cut);
    float *pooled = j->pooled + (size_t)e * (size_t)f->dit.pooled_dim;
    const sdc_clip_request req = {0, 1, NULL, pooled, NULL};
    sdc_status st = sdc_clip_encode(sdc_run_component(r, FLUX_CLIP), ids, 1, T, &req, NULL, NULL);
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    free(ids);
    if (st == SDC_OK && !r->dry)
        st = sdc_pipeline_check_finite(r->log, "condition", 0, "CLIP's pooled output", pooled,
                                       (size_t)f->dit.pooled_dim);
    return st;
}

sdc_status flux_condition_clip(sdc_run *r, int image) {
    (void)image;
    return fam_per_prompt(r, "condition", ((flux_job *)r->state)->n_prompts, clip_pooled, NULL);
}

/* --- condition_2: the T5 context --------------------------------------------------------------- */

/* Entry e's context [1, T, C] into its host rows, one encoder call as a one-prompt job makes. */
static sdc_status t5_context(sdc_run *r, int e, void *user) {
    (void)user;
    flux_job *j = r->state;
    const flux_fam *f = r->fam;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)j->T);
    if (!ids) return SDC_ERR_OOM;
    size_t cut = 0;
    sdc_status st = sdc_unigram_encode(f->t5_tok, sdc_job_prompt(r->p, e).prompt, ids, j->T, &cut);
    if (st == SDC_OK && cut && !r->dry)
        SDC_LOGW(r->log, "condition_2: the prompt%.0d is %zu T5 tokens too long for %d; the end was cut off",
                 j->n_prompts > 1 ? e + 1 : 0, cut, j->T);
    sdc_t5 *t5 = sdc_run_component(r, FLUX_T5);
    j->ctx_dtype = sdc_t5_act_dtype(t5);
    sdc_tensor *context = NULL;
    if (st == SDC_OK) {
        context = sdc_act_new(r->be, j->ctx_dtype, 3, (int64_t[]){1, j->T, f->t5.d_model}); /* [1, T, C] */
        if (!context) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK) st = sdc_t5_forward(t5, ids, 1, j->T, context);
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    if (st == SDC_OK) st = sdc_tensor_get_f32(context, j->ctx + (size_t)e * (size_t)(j->T * f->t5.d_model));
    if (st == SDC_OK) st = sdc_backend_status(r->be);
    sdc_tensor_free(context);
    free(ids);
    return st;
}

sdc_status flux_condition_t5(sdc_run *r, int image) {
    (void)image;
    return fam_per_prompt(r, "condition_2", ((flux_job *)r->state)->n_prompts, t5_context, NULL);
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

/* A group of G images runs as one sampler over their latents side by side ([G, n]: the flow step is per
 * element) and one transformer call over their rows [G, N, 4C]. */
typedef struct dit_call {
    sdc_run *r;
    flux_job *j;
    sdc_flux *dit;
    int G;
    sdc_tensor *context; /* [G, T, joint_dim]: each image's prompt */
    float *pooled;       /* [G, pooled_dim] */
    float *ts, *g;       /* [G]: the sigma, the dev guidance */
    sdc_tensor *x, *out; /* [G, N, 4C] */
    float *buf;          /* [G, n] packed staging */
} dit_call;

static sdc_status dit_eval(void *user, const float *x_in, float t, float *pred) {
    dit_call *c = user;
    const flux_fam *f = c->r->fam;
    flux_job *j = c->j;
    const int64_t C = f->vae.latent_channels;
    for (int g = 0; g < c->G; g++) pack(x_in + (size_t)g * j->n, C, j->h, j->w, c->buf + (size_t)g * j->n);
    sdc_tensor_set_f32(c->x, c->buf);
    for (int g = 0; g < c->G; g++) {
        c->ts[g] = t / 1000.0f; /* the pipeline hands the transformer timestep / 1000 */
        c->g[g] = c->r->p->guidance;
    }
    const sdc_flux_cond cond = {c->context, c->pooled, c->ts, f->dit.guidance_embeds ? c->g : NULL,
                                j->img_ids, j->txt_ids};
    sdc_status st = sdc_flux_forward(c->dit, c->x, &cond, c->out, NULL, NULL);
    if (st != SDC_OK) return st;
    sdc_tensor_get_f32(c->out, c->buf);
    if ((st = sdc_backend_status(c->r->be)) != SDC_OK) return st;
    for (int g = 0; g < c->G; g++) unpack(c->buf + (size_t)g * j->n, C, j->h, j->w, pred + (size_t)g * j->n);
    return SDC_OK;
}

static int denoise_progress(void *user, int done, int total) { return fam_progress(user, "denoise", done, total); }

/* The group's conditioning: context [G, T, C] in T5's dtype, pooled [G, P] on the host. */
static sdc_status group_cond(sdc_run *r, flux_job *j, int i0, dit_call *c) {
    const flux_fam *f = r->fam;
    const size_t per = (size_t)j->T * (size_t)f->t5.d_model, P = (size_t)f->dit.pooled_dim;
    float *ctx = malloc(sizeof(float) * per * (size_t)c->G);
    c->pooled = malloc(sizeof(float) * P * (size_t)c->G);
    c->context = sdc_act_new(r->be, j->ctx_dtype, 3, (int64_t[]){c->G, j->T, f->t5.d_model}); /* [G, T, C] */
    sdc_status st = ctx && c->pooled && c->context ? SDC_OK : SDC_ERR_OOM;
    for (int g = 0; g < c->G && st == SDC_OK; g++) {
        const int e = sdc_job_image_prompt(r->p, i0 + g);
        memcpy(ctx + (size_t)g * per, j->ctx + (size_t)e * per, sizeof(float) * per);
        memcpy(c->pooled + (size_t)g * P, j->pooled + (size_t)e * P, sizeof(float) * P);
    }
    if (st == SDC_OK) st = sdc_tensor_set_f32(c->context, ctx);
    free(ctx);
    return st;
}

sdc_status flux_denoise(sdc_run *r, int i0) {
    flux_job *j = r->state;
    const flux_fam *f = r->fam;
    const sdc_gen_params *p = r->p;
    const int G = r->group > 0 ? r->group : 1;
    float *lat = j->lat + (size_t)i0 * j->n; /* [G, n] */
    for (int g = 0; g < G; g++) {
        float *lg = lat + (size_t)g * j->n;
        if (p->latents_in) {
            memcpy(lg, p->latents_in + (size_t)(i0 + g) * j->n, sizeof(float) * j->n);
        } else {
            sdc_rng rng;
            sdc_rng_init(&rng, p->rng == SDC_RNG_TYPE_CUDA ? SDC_RNG_CUDA : SDC_RNG_CPU,
                         (uint64_t)sdc_job_image_seed(p, i0 + g));
            sdc_rng_randn(&rng, lg, j->n);
        }
    }
    dit_call c = {r, j, sdc_run_component(r, FLUX_TRANSFORMER), G, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    c.buf = malloc(sizeof(float) * j->n * (size_t)G);
    c.ts = malloc(sizeof(float) * (size_t)G);
    c.g = malloc(sizeof(float) * (size_t)G);
    sdc_status st = c.buf && c.ts && c.g ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = group_cond(r, j, i0, &c);
    const sdc_dtype dt = sdc_flux_act_dtype(c.dit);
    if (st == SDC_OK) {
        c.x = sdc_act_new(r->be, dt, 3, (int64_t[]){G, j->N, f->dit.in_channels}); /* [G, N, 4C] */
        c.out = sdc_act_new(r->be, dt, 3, (int64_t[]){G, j->N, f->dit.out_channels});
        if (!c.x || !c.out) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK) {
        sdc_sample_callbacks cb = {dit_eval, &c, NULL, NULL, denoise_progress, r};
        sdc_flux_keep_inputs(c.dit); /* the RoPE tables made once for the whole loop */
        st = sdc_sample(&j->sched, lat, j->n * (size_t)G, &cb, r->log);
    }
    free(c.buf);
    free(c.ts);
    free(c.g);
    free(c.pooled);
    sdc_flux_release_inputs(c.dit);
    sdc_tensor_free(c.context);
    sdc_tensor_free(c.x);
    sdc_tensor_free(c.out);
    for (int g = 0; g < G && st == SDC_OK; g++) {
        const float *lg = lat + (size_t)g * j->n;
        if (!r->dry) st = sdc_pipeline_check_finite(r->log, "denoise", i0 + g, "the latents", lg, j->n);
        if (st == SDC_OK && p->latents_out) memcpy(p->latents_out + (size_t)(i0 + g) * j->n, lg, sizeof(float) * j->n);
    }
    if (i0 + G == sdc_job_n_images(p)) { /* the context is dead once the last image is denoised */
        free(j->ctx);
        j->ctx = NULL;
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
