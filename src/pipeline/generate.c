/* generate.c - sdc_generate: prompt -> text encoder -> sampler loop over the UNet -> VAE -> images.
 *
 * Phases, in order, per batch:
 *   condition  tokenize and encode the prompt (and the negative prompt when CFG is on), once per batch
 *   per image i (seed + i):
 *     encode   img2img only: VAE encoder -> posterior sample (first RNG draw) -> * scaling_factor,
 *              then the noise (second draw) added at the start step
 *     denoise  the sampler loop; each evaluation runs the UNet on [uncond, cond] stacked as one batch
 *     decode   latents / scaling_factor -> VAE decoder -> (x / 2 + 0.5).clamp(0, 1) -> 8-bit RGB */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/activations.h"
#include "pipeline/ctx.h"
#include "pipeline/pipeline.h"
#include "pipeline/report.h"

void sdc_gen_params_init(sdc_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->prompt = "";
    p->width = p->height = 512;
    p->steps = 20;
    p->cfg_scale = 7.5f;
    p->seed = 42;
    p->batch_count = 1;
    p->sampler = SDC_SAMPLER_DEFAULT;
    p->rng = SDC_RNG_TYPE_CPU;
    p->strength = 0.75f;
}

static int report(sdc_ctx *ctx, const char *phase, int step, int total) {
    return ctx->progress ? ctx->progress(phase, step, total, ctx->progress_user) : 0;
}

/* --- condition ------------------------------------------------------------------------------- */

/* context [nb, T, C]: row 0 the negative prompt when nb == 2, the last row the prompt. */
static sdc_status condition(sdc_ctx *ctx, const sdc_gen_params *p, int nb, sdc_tensor **context) {
    const sdc_clip_config *cc = &ctx->clip_cfg;
    const int T = cc->max_positions;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(nb * T));
    if (!ids) return SDC_ERR_OOM;
    const char *texts[2] = {p->negative_prompt ? p->negative_prompt : "", p->prompt ? p->prompt : ""};
    for (int b = 0; b < nb; b++) {
        const char *text = texts[2 - nb + b];
        size_t cut = sdc_clip_encode_prompt(ctx->tok, text, ids + (size_t)b * T, T);
        if (cut) SDC_LOGW(&ctx->log, "condition: %s is %zu tokens too long; the end was cut off",
                          nb == 2 && b == 0 ? "the negative prompt" : "the prompt", cut);
    }
    /* clip skip, A1111 numbering: 1 = all layers, 2 = stop one layer early, ... */
    int n_layers = p->clip_skip >= 1 ? cc->n_layers - (p->clip_skip - 1) : 0;
    if (p->clip_skip > cc->n_layers) n_layers = 1;
    sdc_backend *be = ctx->be;
    *context = sdc_act_new(be, sdc_clip_act_dtype(ctx->clip), 3, (int64_t[]){nb, T, cc->hidden});
    sdc_status st = *context ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = sdc_clip_forward(ctx->clip, ids, nb, T, n_layers, *context, NULL, NULL, NULL);
    free(ids);
    if (st != SDC_OK) {
        sdc_tensor_free(*context);
        *context = NULL;
    }
    return st;
}

/* --- denoise: the UNet as the sampler's model function ---------------------------------------- */

typedef struct unet_call {
    sdc_ctx *ctx;
    int nb;                 /* 2 with classifier-free guidance, else 1 */
    float guidance;
    size_t n;               /* latent elements of one image */
    const sdc_tensor *context;
    sdc_tensor *x, *out;    /* [nb, 4, h, w] */
    float *buf;             /* [nb * n] host staging */
} unet_call;

static sdc_status unet_eval(void *user, const float *x_in, float t, float *pred) {
    unet_call *c = user;
    for (int b = 0; b < c->nb; b++) memcpy(c->buf + (size_t)b * c->n, x_in, sizeof(float) * c->n);
    sdc_tensor_set_f32(c->x, c->buf);
    float ts[2] = {t, t};
    sdc_status st = sdc_unet_forward(c->ctx->unet, c->x, ts, c->context, c->out, NULL, NULL);
    if (st != SDC_OK) return st;
    sdc_tensor_get_f32(c->out, c->buf);
    if (c->nb == 1) {
        memcpy(pred, c->buf, sizeof(float) * c->n);
    } else {
        const float *u = c->buf, *k = c->buf + c->n;
        for (size_t i = 0; i < c->n; i++) {
            float d = k[i] - u[i];   /* float32 in diffusers' order: uncond + g * (cond - uncond) */
            float gd = c->guidance * d;
            pred[i] = u[i] + gd;
        }
    }
    return SDC_OK;
}

static void rng_noise(void *user, float *out, size_t n) { sdc_rng_randn(user, out, n); }

static int denoise_progress(void *user, int done, int total) { return report(user, "denoise", done, total); }

static sdc_status denoise(sdc_ctx *ctx, const sdc_gen_params *p, const sdc_schedule *sched, const sdc_tensor *context,
                          int nb, float *lat, size_t n, int64_t h, int64_t w, sdc_rng *rng) {
    sdc_backend *be = ctx->be;
    const int64_t shape[4] = {nb, ctx->unet_cfg.in_channels, h, w};
    unet_call c = {ctx, nb, p->cfg_scale, n, context, NULL, NULL, NULL};
    const sdc_dtype dt = sdc_unet_act_dtype(ctx->unet);
    c.x = sdc_act_new(be, dt, 4, shape);
    c.out = sdc_act_new(be, dt, 4, shape);
    c.buf = malloc(sizeof(float) * n * (size_t)nb);
    sdc_status st = c.x && c.out && c.buf ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) {
        sdc_sample_callbacks cb = {unet_eval, &c, rng_noise, rng, denoise_progress, ctx};
        st = sdc_sample(sched, lat, n, &cb, &ctx->log);
    }
    free(c.buf);
    sdc_tensor_free(c.x);
    sdc_tensor_free(c.out);
    return st;
}

/* --- encode (img2img) ------------------------------------------------------------------------ */

/* The init image's posterior: mean and logvar [n] (latent_channels x h x w). Once per batch: every image
 * of the batch starts from the same picture. */
static sdc_status encode_posterior(sdc_ctx *ctx, const sdc_image *img, float *mean, float *logvar, int64_t h,
                                   int64_t w) {
    sdc_backend *be = ctx->be;
    const sdc_vae_config *vc = &ctx->vae_cfg;
    const int64_t H = img->height, W = img->width;
    const size_t npix = (size_t)(H * W);
    float *x = malloc(sizeof(float) * npix * 3);
    const sdc_dtype dt = sdc_vae_encoder_act_dtype(ctx->vae_enc);
    sdc_tensor *ti = sdc_act_new(be, dt, 4, (int64_t[]){1, 3, H, W});
    const int64_t ls[4] = {1, vc->latent_channels, h, w};
    sdc_tensor *tm = sdc_act_new(be, dt, 4, ls);
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
        st = sdc_vae_encode(ctx->vae_enc, ti, tm, tl);
    }
    if (st == SDC_OK) {
        sdc_tensor_get_f32(tm, mean);
        sdc_tensor_get_f32(tl, logvar);
    }
    free(x);
    sdc_tensor_free(ti);
    sdc_tensor_free(tm);
    sdc_tensor_free(tl);
    return st;
}

/* lat = scaling_factor * (mean + std * randn): the posterior sample, the generator's first draw */
static void sample_posterior(const sdc_ctx *ctx, const float *mean, const float *logvar, float *lat, float *eps,
                             size_t n, sdc_rng *rng) {
    sdc_rng_randn(rng, eps, n);
    for (size_t i = 0; i < n; i++) {
        float sd = expf(0.5f * logvar[i]);
        float s = mean[i] + sd * eps[i];
        lat[i] = ctx->vae_cfg.scaling_factor * s;
    }
}

/* --- decode ---------------------------------------------------------------------------------- */

/* pixels [H, W, 3] in [0, 1] from latents [4, h, w] */
static sdc_status decode(sdc_ctx *ctx, const float *lat, size_t n, int64_t h, int64_t w, int64_t H, int64_t W,
                         float *pixels) {
    sdc_backend *be = ctx->be;
    const sdc_vae_config *vc = &ctx->vae_cfg;
    float *z = malloc(sizeof(float) * n), *img = malloc(sizeof(float) * (size_t)(3 * H * W));
    const sdc_dtype dt = sdc_vae_decoder_act_dtype(ctx->vae_dec);
    sdc_tensor *tz = sdc_act_new(be, dt, 4, (int64_t[]){1, vc->latent_channels, h, w});
    sdc_tensor *ti = sdc_act_new(be, dt, 4, (int64_t[]){1, vc->out_channels, H, W});
    sdc_status st = z && img && tz && ti ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) {
        for (size_t i = 0; i < n; i++) {
            z[i] = lat[i] / vc->scaling_factor;
            if (vc->has_shift_factor) z[i] += vc->shift_factor;
        }
        sdc_tensor_set_f32(tz, z);
        st = sdc_vae_decode(ctx->vae_dec, tz, ti, NULL, NULL);
    }
    if (st == SDC_OK) {
        sdc_tensor_get_f32(ti, img);
        const size_t npix = (size_t)(H * W);
        for (size_t i = 0; i < npix; i++)
            for (int ch = 0; ch < 3; ch++) {
                float v = img[(size_t)ch * npix + i] / 2.0f + 0.5f;
                pixels[i * 3 + (size_t)ch] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            }
    }
    free(z);
    free(img);
    sdc_tensor_free(tz);
    sdc_tensor_free(ti);
    return st;
}

/* --- the whole run --------------------------------------------------------------------------- */

/* The plan for this job: the context's policy, or auto's choice under its budget. */
static sdc_status choose_plan(sdc_ctx *ctx, const sdc_gen_params *p, sdc_report *r) {
    sdc_job_shape job;
    sdc_job_shape_from_params(p, &job);
    r->budget = ctx->budget;
    if (ctx->policy != SDC_LOAD_AUTO) {
        sdc_plan_make(ctx, &job, ctx->policy, &r->plan);
        snprintf(r->why, sizeof r->why, "asked for %s", sdc_load_policy_name(ctx->policy));
        return SDC_OK;
    }
    sdc_status st = sdc_plan_choose(ctx, &job, ctx->budget, &r->plan, r->why, sizeof r->why);
    if (st != SDC_OK) {
        SDC_LOGE(&ctx->log, "sdc_generate: %s; nothing was loaded", r->why);
        char *table = sdc_plan_table(ctx, &job);
        for (char *line = table ? strtok(table, "\n") : NULL; line; line = strtok(NULL, "\n"))
            SDC_LOGE(&ctx->log, "plan: %s", line);
        free(table);
    }
    return st;
}

sdc_status sdc_plan_memory(sdc_ctx *ctx, const sdc_gen_params *p, char **text) {
    sdc_job_shape job;
    sdc_job_shape_from_params(p, &job);
    char *table = sdc_plan_table(ctx, &job);
    sdc_plan plan;
    char why[256];
    sdc_plan_choose(ctx, &job, ctx->budget, &plan, why, sizeof why);
    size_t n = table ? strlen(table) + strlen(why) + 2 : 0;
    *text = table ? malloc(n) : NULL;
    if (*text) snprintf(*text, n, "%s%s\n", table, why);
    free(table);
    return *text ? SDC_OK : SDC_ERR_OOM;
}

/* One run of the whole job under r->plan; the images go to out[batch_count]. */
static sdc_status run_job(sdc_ctx *ctx, const sdc_gen_params *p, const sdc_schedule *sched, sdc_report *r,
                          sdc_image *out) {
    sdc_status st = SDC_OK;
    const int vs = sdc_vae_downscale(&ctx->vae_cfg);
    const int64_t H = p->height, W = p->width, h = H / vs, w = W / vs;
    const size_t n = (size_t)(ctx->unet_cfg.in_channels * h * w), npix = (size_t)(H * W * 3);
    const int nb = p->cfg_scale > 1.0f ? 2 : 1;
    const int img2img = p->init_image != NULL;

    float *lat = malloc(sizeof(float) * n), *noise = malloc(sizeof(float) * n);
    float *mean = malloc(sizeof(float) * n), *logvar = malloc(sizeof(float) * n);
    float *pixels = malloc(sizeof(float) * npix);
    sdc_tensor *context = NULL;
    if (!lat || !noise || !mean || !logvar || !pixels) st = SDC_ERR_OOM;

    const double t_start = sdc_now();
    double t0;
    if (st == SDC_OK && (st = sdc_phase_begin(ctx, r, SDC_PHASE_CONDITION, &t0)) == SDC_OK) {
        if (report(ctx, "condition", 0, 1)) st = SDC_ERR_CANCELLED;
        if (st == SDC_OK) st = condition(ctx, p, nb, &context);
        if (st == SDC_OK && report(ctx, "condition", 1, 1)) st = SDC_ERR_CANCELLED;
        sdc_phase_end(ctx, r, SDC_PHASE_CONDITION, t0);
    }
    if (st == SDC_OK && img2img && (st = sdc_phase_begin(ctx, r, SDC_PHASE_ENCODE, &t0)) == SDC_OK) {
        if (report(ctx, "encode", 0, 1)) st = SDC_ERR_CANCELLED;
        if (st == SDC_OK) st = encode_posterior(ctx, p->init_image, mean, logvar, h, w);
        if (st == SDC_OK && report(ctx, "encode", 1, 1)) st = SDC_ERR_CANCELLED;
        sdc_phase_end(ctx, r, SDC_PHASE_ENCODE, t0);
    }
    for (int i = 0; i < p->batch_count && st == SDC_OK; i++) {
        const int64_t seed = p->seed + i;
        sdc_rng rng;
        sdc_rng_init(&rng, p->rng == SDC_RNG_TYPE_CUDA ? SDC_RNG_CUDA : SDC_RNG_CPU, (uint64_t)seed);
        if (img2img) {   /* draw order as diffusers: the posterior sample, then the noise */
            sample_posterior(ctx, mean, logvar, lat, noise, n, &rng);
            sdc_rng_randn(&rng, noise, n);
            sdc_schedule_add_noise(sched, lat, noise, lat, n);
        } else {
            if (p->latents_in) memcpy(lat, p->latents_in + (size_t)i * n, sizeof(float) * n);
            else sdc_rng_randn(&rng, lat, n);
            sdc_schedule_scale_noise(sched, lat, n);
        }
        if ((st = sdc_phase_begin(ctx, r, SDC_PHASE_DENOISE, &t0)) != SDC_OK) break;
        st = denoise(ctx, p, sched, context, nb, lat, n, h, w, &rng);
        sdc_phase_end(ctx, r, SDC_PHASE_DENOISE, t0);
        if (st != SDC_OK) break;
        if (p->latents_out) memcpy(p->latents_out + (size_t)i * n, lat, sizeof(float) * n);
        if (i == p->batch_count - 1) {   /* the conditioning is dead once the last image is denoised */
            sdc_tensor_free(context);
            context = NULL;
        }
        if ((st = sdc_phase_begin(ctx, r, SDC_PHASE_DECODE, &t0)) != SDC_OK) break;
        if (report(ctx, "decode", 0, 1)) st = SDC_ERR_CANCELLED;
        if (st == SDC_OK) st = decode(ctx, lat, n, h, w, H, W, pixels);
        if (st == SDC_OK && report(ctx, "decode", 1, 1)) st = SDC_ERR_CANCELLED;
        sdc_phase_end(ctx, r, SDC_PHASE_DECODE, t0);
        if (st == SDC_OK) {
            if (p->pixels_out) memcpy(p->pixels_out + (size_t)i * npix, pixels, sizeof(float) * npix);
            st = sdc_pipeline_make_image(ctx, p, sched, seed, pixels, (int)W, (int)H, &out[i]);
        }
    }
    r->images = st == SDC_OK ? p->batch_count : 0;
    r->seconds = sdc_now() - t_start;
    sdc_tensor_free(context);
    free(lat);
    free(noise);
    free(mean);
    free(logvar);
    free(pixels);
    return st;
}

/* Every component unloaded and cached device memory returned: the state before the first phase. */
static void unload_all(sdc_ctx *ctx) {
    for (int part = 0; part < SDC_PART_COUNT; part++) sdc_ctx_free_part(ctx, (sdc_part)part);
    if (ctx->be->iface->trim) ctx->be->iface->trim(ctx->be);
}

sdc_status sdc_generate(sdc_ctx *ctx, const sdc_gen_params *p, sdc_image **images, int *n_images) {
    *images = NULL;
    *n_images = 0;
    const sdc_logger *log = &ctx->log;
    sdc_schedule sched;
    memset(&sched, 0, sizeof sched);
    sdc_status st = sdc_pipeline_check_params(ctx, p, &sched);
    if (st != SDC_OK) return st;
    sdc_report *r = calloc(1, sizeof *r);
    sdc_image *out = calloc((size_t)p->batch_count, sizeof *out);
    if (!r || !out) st = SDC_ERR_OOM;
    if (st == SDC_OK) st = choose_plan(ctx, p, r);
    if (ctx->be->profile) memset(ctx->be->profile, 0, sizeof *ctx->be->profile);
    if (st == SDC_OK) {
        SDC_LOGI(log, "sdc_generate: load policy %s (%s), planned peak %.1f MiB", sdc_load_policy_name(r->plan.policy),
                 r->why, (double)r->plan.peak / 1048576.0);
        st = run_job(ctx, p, &sched, r, out);
    }
    /* auto: a device that ran out of memory after all (another process took some, or the plan was
     * short) gets one more try under the next lower policy, from a clean state */
    if (st == SDC_ERR_OOM && ctx->policy == SDC_LOAD_AUTO && r->plan.policy < SDC_LOAD_PHASED) {
        sdc_load_policy lower = (sdc_load_policy)(r->plan.policy + 1);
        SDC_LOGW(log, "sdc_generate: out of device memory under %s; freeing everything and retrying once under %s",
                 sdc_load_policy_name(r->plan.policy), sdc_load_policy_name(lower));
        unload_all(ctx);
        sdc_image_free(out, p->batch_count);
        out = calloc((size_t)p->batch_count, sizeof *out);
        size_t budget = r->budget;
        memset(r, 0, sizeof *r);
        sdc_job_shape job;
        sdc_job_shape_from_params(p, &job);
        sdc_plan_make(ctx, &job, lower, &r->plan);
        r->budget = budget;
        snprintf(r->why, sizeof r->why, "auto: replanned to %s after running out of device memory",
                 sdc_load_policy_name(lower));
        st = out ? run_job(ctx, p, &sched, r, out) : SDC_ERR_OOM;
    }
    sdc_schedule_free(&sched);
    if (st == SDC_OK) {
        sdc_report_log(ctx, r);
        free(ctx->last_report);
        ctx->last_report = sdc_report_json(ctx, r);
    } else if (st == SDC_ERR_OOM) {
        unload_all(ctx);   /* nothing half-loaded stays behind */
    }
    free(r);
    if (st != SDC_OK) {
        SDC_LOGE(log, "sdc_generate: %s", sdc_status_str(st));
        sdc_image_free(out, p->batch_count);
        return st;
    }
    *images = out;
    *n_images = p->batch_count;
    return SDC_OK;
}
