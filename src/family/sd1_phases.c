/* sd1_phases.c - the SD 1.x / 2.x phase bodies: condition, encode, denoise, decode.
 *
 * Per image i (seed + i), in diffusers' order of generator draws:
 *   txt2img  latents = randn (or the caller's latents_in) * init_noise_sigma
 *   img2img  latents = add_noise(scaling * (mean + std * randn), randn)   (two draws: posterior, noise)
 * then the sampler loop (euler_a draws further noise from the same generator), then
 *   pixels = (decode(latents / scaling (+ shift)) / 2 + 0.5).clamp(0, 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "family/common.h"
#include "family/sd1.h"
#include "model/activations.h"
#include "pipeline/pipeline.h"

/* st, or the backend's sticky error (a failed device call, a missing workspace) once st is SDC_OK: after
 * a failure the ops did nothing, so no value computed since may be used (not even to check it). */
static sdc_status backend_ok(sdc_backend *be, sdc_status st) { return st == SDC_OK ? sdc_backend_status(be) : st; }

/* --- condition ------------------------------------------------------------------------------- */

/* Entry e's context [nb, T, C] (row 0 the negative prompt when nb == 2, the last row the prompt), one
 * encoder call per entry as a one-prompt job makes, into the job's host rows. */
static sdc_status encode_prompts(sdc_run *r, int e, void *user) {
    (void)user;
    sd1_job *j = r->state;
    const sd1_fam *f = r->fam;
    const sdc_gen_params *p = r->p;
    const sdc_clip_config *cc = &f->clip;
    const int T = cc->max_positions, nb = j->nb;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(nb * T));
    if (!ids) return SDC_ERR_OOM;
    const sdc_prompt q = sdc_job_prompt(p, e);
    const char *texts[2] = {q.negative_prompt, q.prompt};
    for (int b = 0; b < nb; b++) {
        const char *text = texts[2 - nb + b];
        size_t cut = sdc_clip_encode_prompt(f->tok, text, ids + (size_t)b * T, T);
        if (cut && !r->dry)
            SDC_LOGW(r->log, "condition: %s%.0d is %zu tokens too long; the end was cut off",
                     nb == 2 && b == 0 ? "the negative prompt" : "the prompt", j->n_prompts > 1 ? e + 1 : 0, cut);
    }
    /* clip skip, A1111 numbering: 1 = all layers, 2 = stop one layer early, ... */
    int n_layers = p->clip_skip >= 1 ? cc->n_layers - (p->clip_skip - 1) : 0;
    if (p->clip_skip > cc->n_layers) n_layers = 1;
    sdc_clip *clip = sdc_run_component(r, SD1_TEXT_ENCODER);
    j->ctx_dtype = sdc_clip_act_dtype(clip);
    sdc_tensor *context = sdc_act_new(r->be, j->ctx_dtype, 3, (int64_t[]){nb, T, cc->hidden}); /* [nb, T, C] */
    sdc_status st = context ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_clip_forward(clip, ids, nb, T, n_layers, context, NULL, NULL, NULL);
    st = backend_ok(r->be, st);
    if (st == SDC_OK) st = sdc_tensor_get_f32(context, j->ctx + (size_t)e * (size_t)(nb * T * cc->hidden));
    st = backend_ok(r->be, st);
    sdc_tensor_free(context);
    free(ids);
    return st;
}

sdc_status sd1_condition(sdc_run *r, int image) {
    (void)image;
    return fam_per_prompt(r, "condition", ((sd1_job *)r->state)->n_prompts, encode_prompts, NULL);
}

/* --- encode (img2img) ------------------------------------------------------------------------ */

/* The init image's posterior: mean and logvar [n]. Once per job: every image starts from the same picture. */
static sdc_status encode_posterior(sdc_run *r, sd1_job *j) {
    const sd1_fam *f = r->fam;
    const sdc_image *img = r->p->init_image;
    sdc_backend *be = r->be;
    const int64_t H = img->height, W = img->width;
    const size_t npix = (size_t)(H * W);
    float *x = malloc(sizeof(float) * npix * 3);
    sdc_vae_encoder *enc = sdc_run_component(r, SD1_VAE_ENCODER);
    const sdc_dtype dt = sdc_vae_encoder_act_dtype(enc);
    sdc_tensor *ti = sdc_act_new(be, dt, 4, (int64_t[]){1, 3, H, W}); /* [1, 3, H, W] */
    const int64_t ls[4] = {1, f->vae.latent_channels, j->h, j->w};
    sdc_tensor *tm = sdc_act_new(be, dt, 4, ls); /* [1, L, h, w] */
    sdc_tensor *tl = sdc_act_new(be, dt, 4, ls);
    sdc_status st = x && ti && tm && tl ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) {
        /* [H, W, C] bytes -> [1, 3, H, W] in [-1, 1]: float32(v) / 255 * 2 - 1, as diffusers */
        for (size_t i = 0; i < npix; i++)
            for (int ch = 0; ch < 3; ch++) {
                float v = (float)img->data[i * (size_t)img->channels + (size_t)ch] / 255.0f;
                x[(size_t)ch * npix + i] = 2.0f * v - 1.0f;
            }
        sdc_tensor_set_f32(ti, x);
        st = sdc_vae_encode(enc, ti, tm, tl);
    }
    if (st == SDC_OK) {
        sdc_tensor_get_f32(tm, j->mean);
        sdc_tensor_get_f32(tl, j->logvar);
        st = backend_ok(be, st);
        if (st == SDC_OK && !r->dry)
            st = sdc_pipeline_check_finite(r->log, "encode", 0, "the posterior mean", j->mean, j->n);
        if (st == SDC_OK && !r->dry)
            st = sdc_pipeline_check_finite(r->log, "encode", 0, "the posterior logvar", j->logvar, j->n);
    }
    free(x);
    sdc_tensor_free(ti);
    sdc_tensor_free(tm);
    sdc_tensor_free(tl);
    return st;
}

sdc_status sd1_encode(sdc_run *r, int image) {
    (void)image;
    if (fam_progress(r, "encode", 0, 1)) return SDC_ERR_CANCELLED;
    sdc_status st = encode_posterior(r, r->state);
    if (st == SDC_OK && fam_progress(r, "encode", 1, 1)) st = SDC_ERR_CANCELLED;
    return st;
}

/* --- denoise: the UNet as the sampler's model function ---------------------------------------- */

/* A group of G images runs as one sampler over their latents side by side ([G, n]: every sampler's
 * update is per element, with per-step scalars) and one UNet call over their rows [G x nb]: image g's
 * rows are g * nb + (negative, prompt). */
typedef struct unet_call {
    sdc_unet *unet;
    int G, nb; /* images, rows per image (2 with classifier-free guidance, else 1) */
    float guidance;
    size_t n; /* latent elements of one image */
    sdc_unet_cond cond;
    sdc_tensor *context; /* [G * nb, T, C]: cond's */
    sdc_tensor *x, *out; /* [G * nb, C, h, w] */
    float *buf;          /* [G * nb * n] host staging */
    float *ts;           /* [G * nb] */
    sdc_rng *rng;        /* [G]: each image's generator */
} unet_call;

static sdc_status unet_eval(void *user, const float *x_in, float t, float *pred) {
    unet_call *c = user;
    const int rows = c->G * c->nb;
    for (int b = 0; b < rows; b++)
        memcpy(c->buf + (size_t)b * c->n, x_in + (size_t)(b / c->nb) * c->n, sizeof(float) * c->n);
    sdc_tensor_set_f32(c->x, c->buf);
    for (int b = 0; b < rows; b++) c->ts[b] = t;
    sdc_status st = sdc_unet_forward(c->unet, c->x, c->ts, &c->cond, c->out, NULL, NULL);
    if (st != SDC_OK) return st;
    sdc_tensor_get_f32(c->out, c->buf);
    if ((st = backend_ok(c->out->backend, SDC_OK)) != SDC_OK) return st;
    for (int g = 0; g < c->G; g++) {
        float *pg = pred + (size_t)g * c->n;
        const float *rg = c->buf + (size_t)(g * c->nb) * c->n;
        if (c->nb == 1) {
            memcpy(pg, rg, sizeof(float) * c->n);
            continue;
        }
        const float *u = rg, *k = rg + c->n;
        for (size_t i = 0; i < c->n; i++) {
            float d = k[i] - u[i]; /* float32 in diffusers' order: uncond + g * (cond - uncond) */
            float gd = c->guidance * d;
            pg[i] = u[i] + gd;
        }
    }
    return SDC_OK;
}

/* noise for the group [G, n]: each image's n from its own generator */
static void rng_noise(void *user, float *out, size_t n) {
    unet_call *c = user;
    const size_t per = n / (size_t)c->G;
    for (int g = 0; g < c->G; g++) sdc_rng_randn(&c->rng[g], out + (size_t)g * per, per);
}

typedef struct denoise_progress_ctx {
    sdc_run *r;
} denoise_progress_ctx;

static int denoise_progress(void *user, int done, int total) {
    return fam_progress(((denoise_progress_ctx *)user)->r, "denoise", done, total);
}

/* lat = scaling_factor * (mean + std * randn): the posterior sample, the generator's first draw */
static void sample_posterior(const sd1_fam *f, const sd1_job *j, float *lat, float *eps, sdc_rng *rng) {
    sdc_rng_randn(rng, eps, j->n);
    for (size_t i = 0; i < j->n; i++) {
        float sd = expf(0.5f * j->logvar[i]);
        float s = j->mean[i] + sd * eps[i];
        lat[i] = f->vae.scaling_factor * s;
    }
}

/* Image i's starting latents, drawn from its own generator (its seed), which the sampler then goes on
 * drawing from. */
static sdc_status initial_latents(sdc_run *r, sd1_job *j, int i, float *lat, sdc_rng *rng) {
    const sdc_gen_params *p = r->p;
    sdc_rng_init(rng, p->rng == SDC_RNG_TYPE_CUDA ? SDC_RNG_CUDA : SDC_RNG_CPU, (uint64_t)sdc_job_image_seed(p, i));
    if (p->init_image) { /* draw order as diffusers: the posterior sample, then the noise */
        float *noise = malloc(sizeof(float) * j->n);
        if (!noise) return SDC_ERR_OOM;
        sample_posterior(r->fam, j, lat, noise, rng);
        sdc_rng_randn(rng, noise, j->n);
        sdc_schedule_add_noise(&j->sched, lat, noise, lat, j->n);
        free(noise);
    } else {
        if (p->latents_in)
            memcpy(lat, p->latents_in + (size_t)i * j->n, sizeof(float) * j->n);
        else
            sdc_rng_randn(rng, lat, j->n);
        sdc_schedule_scale_noise(&j->sched, lat, j->n);
    }
    return SDC_OK;
}

/* The group's conditioning on the UNet's side: context [G * nb, T, C] in the encoders' dtype, and
 * (SDXL) the pooled embeds and time ids [G * nb, ...] on the host. */
static sdc_status group_cond(sdc_run *r, sd1_job *j, int i0, unet_call *c, float **embeds, float **time_ids) {
    const sd1_fam *f = r->fam;
    const int rows = c->G * j->nb;
    const size_t per = (size_t)(j->nb * j->T * j->C), P = (size_t)f->clip2.projection_dim;
    float *ctx = malloc(sizeof(float) * per * (size_t)c->G);
    sdc_tensor *t = sdc_act_new(r->be, j->ctx_dtype, 3, (int64_t[]){rows, j->T, j->C}); /* [G * nb, T, C] */
    if (f->xl) {
        *embeds = malloc(sizeof(float) * P * (size_t)rows);
        *time_ids = malloc(sizeof(float) * SDXL_N_TIME_IDS * (size_t)rows);
    }
    sdc_status st = ctx && t && (!f->xl || (*embeds && *time_ids)) ? SDC_OK : SDC_ERR_OOM;
    for (int g = 0; g < c->G && st == SDC_OK; g++) {
        const int e = sdc_job_image_prompt(r->p, i0 + g);
        memcpy(ctx + (size_t)g * per, j->ctx + (size_t)e * per, sizeof(float) * per);
        if (!f->xl) continue;
        memcpy(*embeds + (size_t)(g * j->nb) * P, j->text_embeds + (size_t)(e * j->nb) * P,
               sizeof(float) * P * (size_t)j->nb);
        for (int b = 0; b < j->nb; b++)
            memcpy(*time_ids + (size_t)(g * j->nb + b) * SDXL_N_TIME_IDS, j->time_ids, sizeof j->time_ids);
    }
    if (st == SDC_OK) st = sdc_tensor_set_f32(t, ctx);
    free(ctx);
    if (st != SDC_OK) {
        sdc_tensor_free(t);
        return st;
    }
    c->context = t;
    c->cond.context = t;
    if (f->xl) { /* SDXL: the pooled text embeds and the micro-conditioning, one row per context row */
        c->cond.text_embeds = *embeds;
        c->cond.text_embeds_dim = f->clip2.projection_dim;
        c->cond.time_ids = *time_ids;
        c->cond.n_time_ids = SDXL_N_TIME_IDS;
    }
    return SDC_OK;
}

sdc_status sd1_denoise(sdc_run *r, int i0) {
    sd1_job *j = r->state;
    const sd1_fam *f = r->fam;
    const int G = r->group > 0 ? r->group : 1, rows = G * j->nb;
    float *lat = j->lat + (size_t)i0 * j->n; /* [G, n] */
    unet_call c = {
        sdc_run_component(r, SD1_UNET), G, j->nb, r->p->cfg_scale, j->n, {0}, NULL, NULL, NULL, NULL, NULL, NULL};
    c.rng = calloc((size_t)G, sizeof *c.rng);
    c.ts = malloc(sizeof(float) * (size_t)rows);
    c.buf = malloc(sizeof(float) * j->n * (size_t)rows);
    sdc_status st = c.rng && c.ts && c.buf ? SDC_OK : SDC_ERR_OOM;
    for (int g = 0; g < G && st == SDC_OK; g++) st = initial_latents(r, j, i0 + g, lat + (size_t)g * j->n, &c.rng[g]);
    float *embeds = NULL, *time_ids = NULL;
    if (st == SDC_OK) st = group_cond(r, j, i0, &c, &embeds, &time_ids);
    const int64_t shape[4] = {rows, f->unet.in_channels, j->h, j->w};
    const sdc_dtype dt = sdc_unet_act_dtype(c.unet);
    if (st == SDC_OK) {
        c.x = sdc_act_new(r->be, dt, 4, shape); /* [G * nb, C, h, w] */
        c.out = sdc_act_new(r->be, dt, 4, shape);
        if (!(c.x && c.out)) st = SDC_ERR_OOM;
    }
    if (st == SDC_OK) {
        denoise_progress_ctx pc = {r};
        sdc_sample_callbacks cb = {unet_eval, &c, rng_noise, &c, denoise_progress, &pc};
        st = sdc_sample(&j->sched, lat, j->n * (size_t)G, &cb, r->log);
    }
    free(c.buf);
    free(c.ts);
    free(c.rng);
    free(embeds);
    free(time_ids);
    sdc_unet_graph_release(c.unet); /* the recorded forward read c's tensors */
    sdc_tensor_free(c.context);
    sdc_tensor_free(c.x);
    sdc_tensor_free(c.out);
    for (int g = 0; g < G && st == SDC_OK; g++) {
        const float *lg = lat + (size_t)g * j->n;
        if (!r->dry) st = sdc_pipeline_check_finite(r->log, "denoise", i0 + g, "the latents", lg, j->n);
        if (st == SDC_OK && r->p->latents_out)
            memcpy(r->p->latents_out + (size_t)(i0 + g) * j->n, lg, sizeof(float) * j->n);
    }
    if (i0 + G == sdc_job_n_images(r->p)) { /* the conditioning is dead once the last image is denoised */
        free(j->ctx);
        j->ctx = NULL;
    }
    return st;
}

/* --- decode ---------------------------------------------------------------------------------- */

sdc_status sd1_decode(sdc_run *r, int i) {
    sd1_job *j = r->state;
    const sdc_vae_config *vc = &((const sd1_fam *)r->fam)->vae;
    return fam_decode(r, sdc_run_component(r, SD1_VAE_DECODER), vc, &j->sched, j->lat + (size_t)i * j->n, j->h, j->w,
                      i);
}
