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

static int progress(sdc_run *r, const char *phase, int step, int total) {
    return r->progress ? r->progress(r, phase, step, total) : 0;
}

/* --- condition ------------------------------------------------------------------------------- */

/* context [nb, T, C]: row 0 the negative prompt when nb == 2, the last row the prompt. */
static sdc_status encode_prompts(sdc_run *r, sd1_job *j) {
    const sd1_fam *f = r->fam;
    const sdc_gen_params *p = r->p;
    const sdc_clip_config *cc = &f->clip;
    const int T = cc->max_positions, nb = j->nb;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(nb * T));
    if (!ids) return SDC_ERR_OOM;
    const char *texts[2] = {p->negative_prompt ? p->negative_prompt : "", p->prompt ? p->prompt : ""};
    for (int b = 0; b < nb; b++) {
        const char *text = texts[2 - nb + b];
        size_t cut = sdc_clip_encode_prompt(f->tok, text, ids + (size_t)b * T, T);
        if (cut && !r->dry)
            SDC_LOGW(r->log, "condition: %s is %zu tokens too long; the end was cut off",
                     nb == 2 && b == 0 ? "the negative prompt" : "the prompt", cut);
    }
    /* clip skip, A1111 numbering: 1 = all layers, 2 = stop one layer early, ... */
    int n_layers = p->clip_skip >= 1 ? cc->n_layers - (p->clip_skip - 1) : 0;
    if (p->clip_skip > cc->n_layers) n_layers = 1;
    sdc_clip *clip = sdc_run_component(r, SD1_TEXT_ENCODER);
    j->context = sdc_act_new(r->be, sdc_clip_act_dtype(clip), 3, (int64_t[]){nb, T, cc->hidden}); /* [nb, T, C] */
    sdc_status st = j->context ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_clip_forward(clip, ids, nb, T, n_layers, j->context, NULL, NULL, NULL);
    st = backend_ok(r->be, st);
    free(ids);
    return st;
}

sdc_status sd1_condition(sdc_run *r, int image) {
    (void)image;
    if (progress(r, "condition", 0, 1)) return SDC_ERR_CANCELLED;
    sdc_status st = encode_prompts(r, r->state);
    if (st == SDC_OK && progress(r, "condition", 1, 1)) st = SDC_ERR_CANCELLED;
    return st;
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
    if (progress(r, "encode", 0, 1)) return SDC_ERR_CANCELLED;
    sdc_status st = encode_posterior(r, r->state);
    if (st == SDC_OK && progress(r, "encode", 1, 1)) st = SDC_ERR_CANCELLED;
    return st;
}

/* --- denoise: the UNet as the sampler's model function ---------------------------------------- */

typedef struct unet_call {
    sdc_unet *unet;
    int nb; /* 2 with classifier-free guidance, else 1 */
    float guidance;
    size_t n; /* latent elements of one image */
    sdc_unet_cond cond;
    sdc_tensor *x, *out; /* [nb, C, h, w] */
    float *buf;          /* [nb * n] host staging */
} unet_call;

static sdc_status unet_eval(void *user, const float *x_in, float t, float *pred) {
    unet_call *c = user;
    for (int b = 0; b < c->nb; b++) memcpy(c->buf + (size_t)b * c->n, x_in, sizeof(float) * c->n);
    sdc_tensor_set_f32(c->x, c->buf);
    float ts[2] = {t, t};
    sdc_status st = sdc_unet_forward(c->unet, c->x, ts, &c->cond, c->out, NULL, NULL);
    if (st != SDC_OK) return st;
    sdc_tensor_get_f32(c->out, c->buf);
    if ((st = backend_ok(c->out->backend, SDC_OK)) != SDC_OK) return st;
    if (c->nb == 1) {
        memcpy(pred, c->buf, sizeof(float) * c->n);
    } else {
        const float *u = c->buf, *k = c->buf + c->n;
        for (size_t i = 0; i < c->n; i++) {
            float d = k[i] - u[i]; /* float32 in diffusers' order: uncond + g * (cond - uncond) */
            float gd = c->guidance * d;
            pred[i] = u[i] + gd;
        }
    }
    return SDC_OK;
}

static void rng_noise(void *user, float *out, size_t n) { sdc_rng_randn(user, out, n); }

typedef struct denoise_progress_ctx {
    sdc_run *r;
} denoise_progress_ctx;

static int denoise_progress(void *user, int done, int total) {
    return progress(((denoise_progress_ctx *)user)->r, "denoise", done, total);
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

/* Image i's starting latents, drawn from its own generator (seed + i), which the sampler then goes on
 * drawing from. */
static sdc_status initial_latents(sdc_run *r, sd1_job *j, int i, float *lat, sdc_rng *rng) {
    const sdc_gen_params *p = r->p;
    sdc_rng_init(rng, p->rng == SDC_RNG_TYPE_CUDA ? SDC_RNG_CUDA : SDC_RNG_CPU, (uint64_t)(p->seed + i));
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

sdc_status sd1_denoise(sdc_run *r, int i) {
    sd1_job *j = r->state;
    const sd1_fam *f = r->fam;
    float *lat = j->lat + (size_t)i * j->n;
    sdc_rng rng;
    sdc_status st = initial_latents(r, j, i, lat, &rng);
    const int64_t shape[4] = {j->nb, f->unet.in_channels, j->h, j->w};
    unet_call c = {
        sdc_run_component(r, SD1_UNET), j->nb, r->p->cfg_scale, j->n, {j->context, NULL, 0, NULL, 0}, NULL, NULL, NULL};
    if (f->xl) { /* SDXL: the pooled text embeds and the micro-conditioning, one row per context row */
        c.cond.text_embeds = j->text_embeds;
        c.cond.text_embeds_dim = f->clip2.projection_dim;
        c.cond.time_ids = j->time_ids;
        c.cond.n_time_ids = SDXL_N_TIME_IDS;
    }
    const sdc_dtype dt = sdc_unet_act_dtype(c.unet);
    c.x = sdc_act_new(r->be, dt, 4, shape); /* [nb, C, h, w] */
    c.out = sdc_act_new(r->be, dt, 4, shape);
    c.buf = malloc(sizeof(float) * j->n * (size_t)j->nb);
    if (st == SDC_OK && !(c.x && c.out && c.buf)) st = SDC_ERR_OOM;
    if (st == SDC_OK) {
        denoise_progress_ctx pc = {r};
        sdc_sample_callbacks cb = {unet_eval, &c, rng_noise, &rng, denoise_progress, &pc};
        st = sdc_sample(&j->sched, lat, j->n, &cb, r->log);
    }
    free(c.buf);
    sdc_tensor_free(c.x);
    sdc_tensor_free(c.out);
    if (st == SDC_OK && !r->dry) st = sdc_pipeline_check_finite(r->log, "denoise", i, "the latents", lat, j->n);
    if (st == SDC_OK && r->p->latents_out) memcpy(r->p->latents_out + (size_t)i * j->n, lat, sizeof(float) * j->n);
    if (i == r->p->batch_count - 1) { /* the conditioning is dead once the last image is denoised */
        sdc_tensor_free(j->context);
        j->context = NULL;
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
