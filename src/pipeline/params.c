/* params.c - checking generation parameters, choosing the sampler, and the output image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "pipeline/pipeline.h"

/* A1111's display names of each sampler (the PNG parameters text) */
static const char *const a1111_names[] = {
    [SDC_SAMPLER_EULER] = "Euler",       [SDC_SAMPLER_EULER_A] = "Euler a", [SDC_SAMPLER_HEUN] = "Heun",
    [SDC_SAMPLER_LMS] = "LMS",           [SDC_SAMPLER_DDIM] = "DDIM",       [SDC_SAMPLER_PNDM] = "PLMS",
    [SDC_SAMPLER_DPMPP_2M] = "DPM++ 2M",
};
_Static_assert(sizeof(a1111_names) / sizeof(a1111_names[0]) == SDC_SAMPLER_COUNT, "sampler table");

int sdc_sampler_from_name(const char *name, sdc_sampler *out) {
    int v;
    if (sdc_name_to_value(SDC_NAMES_SAMPLER, name, &v)) return -1;
    *out = (sdc_sampler)v;
    return 0;
}

const char *sdc_sampler_name(sdc_sampler s) {
    return s == SDC_SAMPLER_DEFAULT ? "default" : sdc_value_name(SDC_NAMES_SAMPLER, (int)s);
}

sdc_status sdc_pipeline_check_params(const sdc_gen_params *p, const sdc_logger *log) {
    const char *fn = "sdc_generate";
    if (p->width < 8 || p->height < 8 || p->width % 8 || p->height % 8 || p->width > 16384 || p->height > 16384) {
        SDC_LOGE(log, "%s: width and height must be positive multiples of 8 (got %dx%d)", fn, p->width, p->height);
        return SDC_ERR_INVALID_ARG;
    }
    if (p->steps < 1) {
        SDC_LOGE(log, "%s: steps must be at least 1 (got %d)", fn, p->steps);
        return SDC_ERR_INVALID_ARG;
    }
    if (p->batch_count < 1) {
        SDC_LOGE(log, "%s: batch count must be at least 1 (got %d)", fn, p->batch_count);
        return SDC_ERR_INVALID_ARG;
    }
    if (p->n_prompts < 0 || (p->n_prompts > 0 && !p->prompts) ||
        (int64_t)sdc_job_n_prompts(p) * p->batch_count > 65536) {
        SDC_LOGE(log, "%s: %d prompts%s with a batch of %d: at most 65536 images a job", fn, p->n_prompts,
                 p->n_prompts > 0 && !p->prompts ? " (but no list)" : "", p->batch_count);
        return SDC_ERR_INVALID_ARG;
    }
    for (int e = 0; e < sdc_job_n_prompts(p); e++) {
        const int64_t seed = sdc_job_prompt(p, e).seed;
        if (seed > INT64_MAX - (p->batch_count - 1)) { /* image i uses seed + i */
            SDC_LOGE(log, "%s: prompt %d: seed %lld with a batch of %d: the last seed would pass 2^63 - 1", fn, e + 1,
                     (long long)seed, p->batch_count);
            return SDC_ERR_INVALID_ARG;
        }
    }
    if (!isfinite(p->cfg_scale)) {
        SDC_LOGE(log, "%s: cfg scale must be a finite number", fn);
        return SDC_ERR_INVALID_ARG;
    }
    if (!isfinite(p->guidance) || p->guidance < 0.0f || p->guidance > 1000.0f) {
        SDC_LOGE(log, "%s: guidance must be a finite number in 0..1000 (got %g)", fn, (double)p->guidance);
        return SDC_ERR_INVALID_ARG;
    }
    if (p->t5_max_length < 0 || p->t5_max_length > 1024) {
        SDC_LOGE(log, "%s: the T5 length must be in 1..1024 (0: the model's default; got %d)", fn, p->t5_max_length);
        return SDC_ERR_INVALID_ARG;
    }
    if ((unsigned)p->rng >= SDC_RNG_TYPE_COUNT) {
        SDC_LOGE(log, "%s: unknown rng type %d", fn, (int)p->rng);
        return SDC_ERR_INVALID_ARG;
    }
    if (p->init_image) {
        const sdc_image *im = p->init_image;
        if (!im->data || im->channels < 3 || im->width != p->width || im->height != p->height) {
            SDC_LOGE(log, "%s: the init image is %dx%d with %d channels; it must be RGB and %dx%d", fn, im->width,
                     im->height, im->channels, p->width, p->height);
            return SDC_ERR_INVALID_ARG;
        }
        if (!(p->strength > 0.0f && p->strength <= 1.0f)) {
            SDC_LOGE(log, "%s: strength must be in (0, 1] (got %g)", fn, (double)p->strength);
            return SDC_ERR_INVALID_ARG;
        }
    }
    if (p->latents_in && p->init_image) {
        SDC_LOGE(log, "%s: latents_in and an init image exclude each other", fn);
        return SDC_ERR_INVALID_ARG;
    }
    if (p->sampler != SDC_SAMPLER_DEFAULT && (unsigned)p->sampler >= SDC_SAMPLER_COUNT) {
        SDC_LOGE(log, "%s: unknown sampler %d", fn, (int)p->sampler);
        return SDC_ERR_INVALID_ARG;
    }
    const int micro[6] = {p->original_width, p->original_height, p->target_width,
                          p->target_height,  p->crop_top,        p->crop_left};
    static const char *const micro_name[6] = {"original width", "original height", "target width",
                                              "target height",  "crop top",        "crop left"};
    for (int i = 0; i < 6; i++) {
        if (micro[i] < 0 || micro[i] > 1 << 20) {
            SDC_LOGE(log, "%s: %s must be in 0..%d (0: the default; got %d)", fn, micro_name[i], 1 << 20, micro[i]);
            return SDC_ERR_INVALID_ARG;
        }
    }
    return SDC_OK;
}

/* --- a job's prompts and images ------------------------------------------------------------------ */

int sdc_job_n_prompts(const sdc_gen_params *p) { return p->n_prompts > 0 && p->prompts ? p->n_prompts : 1; }

int sdc_job_n_images(const sdc_gen_params *p) { return sdc_job_n_prompts(p) * p->batch_count; }

sdc_prompt sdc_job_prompt(const sdc_gen_params *p, int e) {
    sdc_prompt q = {p->prompt, p->negative_prompt, p->seed};
    if (p->n_prompts > 0 && p->prompts) {
        q = p->prompts[e];
        if (!q.negative_prompt) q.negative_prompt = p->negative_prompt;
    }
    if (!q.prompt) q.prompt = "";
    if (!q.negative_prompt) q.negative_prompt = "";
    return q;
}

int sdc_job_image_prompt(const sdc_gen_params *p, int k) { return k / p->batch_count; }

int64_t sdc_job_image_seed(const sdc_gen_params *p, int k) {
    return sdc_job_prompt(p, k / p->batch_count).seed + k % p->batch_count;
}

/* --- output images ----------------------------------------------------------------------------- */

static char *params_text(const sdc_run *r, const sdc_schedule *sched, int k) {
    const sdc_gen_params *p = r->p;
    const sdc_prompt q = sdc_job_prompt(p, sdc_job_image_prompt(p, k));
    const char *prompt = q.prompt, *neg = q.negative_prompt;
    const int64_t seed = sdc_job_image_seed(p, k);
    sdc_sampler s = sched->kind;
    char tail[512];
    int len = snprintf(tail, sizeof tail, "Steps: %d, Sampler: %s%s, CFG scale: %g, Seed: %lld, Size: %dx%d, Model: %s",
                       p->steps, a1111_names[s], sched->karras ? " Karras" : "", (double)p->cfg_scale, (long long)seed,
                       p->width, p->height, r->model_name);
    if (p->init_image && len > 0 && (size_t)len < sizeof tail)
        snprintf(tail + len, sizeof tail - (size_t)len, ", Denoising strength: %g", (double)p->strength);
    if (p->clip_skip > 1) {
        size_t l = strlen(tail);
        snprintf(tail + l, sizeof tail - l, ", Clip skip: %d", p->clip_skip);
    }
    size_t size = strlen(prompt) + strlen(neg) + strlen(tail) + 32;
    char *text = malloc(size);
    if (!text) return NULL;
    if (*neg)
        snprintf(text, size, "%s\nNegative prompt: %s\n%s", prompt, neg, tail);
    else
        snprintf(text, size, "%s\n%s", prompt, tail);
    return text;
}

sdc_status sdc_pipeline_check_finite(const sdc_logger *log, const char *phase, int image, const char *what,
                                     const float *x, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(x[i]);
    if (!bad) return SDC_OK;
    SDC_LOGE(log,
             "%s: image %d: %s has %zu NaN/Inf values of %zu (broken weights, an absurd config value, or fp16 "
             "overflow); stopping rather than writing a black image",
             phase, image, what, bad, n);
    return SDC_ERR_NONFINITE;
}

/* x rounded to the nearest integer, halves to even, for 0 <= x < 2^22: adding and taking away 1.5 * 2^23 leaves
 * no fraction bits, in the default rounding mode (the one nearbyintf uses; its value for every float v in [0, 1]
 * at x = v * 255 is this one: all 1065353217 checked). Inline: nearbyintf is a libm call per value (10 ms of host
 * time per 1024^2 image on the GPU machine's kind of CPU, between two images). */
static inline float round_half_even(float x) {
    const float magic = 12582912.0f;
    return (x + magic) - magic;
}

sdc_status sdc_pipeline_make_image(const sdc_run *r, const sdc_schedule *sched, int k, const float *pixels, int W,
                                   int H, sdc_image *img) {
    size_t n = (size_t)W * (size_t)H * 3;
    const int64_t seed = sdc_job_image_seed(r->p, k);
    img->data = malloc(n);
    img->parameters = params_text(r, sched, k);
    if (!img->data || !img->parameters) return SDC_ERR_OOM;
    for (size_t i = 0; i < n; i++) { /* NaN-safe clamp, then numpy's round (half to even) */
        float v = !(pixels[i] > 0.0f) ? 0.0f : pixels[i] > 1.0f ? 1.0f : pixels[i];
        img->data[i] = (uint8_t)round_half_even(v * 255.0f);
    }
    img->width = W;
    img->height = H;
    img->channels = 3;
    img->seed = seed;
    return SDC_OK;
}

void sdc_image_free(sdc_image *images, int n_images) {
    if (!images) return;
    for (int i = 0; i < n_images; i++) {
        free(images[i].data);
        free(images[i].parameters);
    }
    free(images);
}
