/* params.c - checking generation parameters, choosing the sampler, and the output image. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "pipeline/pipeline.h"

/* A1111's display names of each sampler (the PNG parameters text) */
static const char *const a1111_names[] = {
    [SDC_SAMPLER_EULER] = "Euler", [SDC_SAMPLER_EULER_A] = "Euler a", [SDC_SAMPLER_HEUN] = "Heun",
    [SDC_SAMPLER_LMS] = "LMS",     [SDC_SAMPLER_DDIM] = "DDIM",       [SDC_SAMPLER_PNDM] = "PLMS",
    [SDC_SAMPLER_DPMPP_2M] = "DPM++ 2M",
};
_Static_assert(sizeof(a1111_names) / sizeof(a1111_names[0]) == SDC_SAMPLER_COUNT, "sampler table");

int sdc_sampler_from_name(const char *name, sdc_sampler *out) {
    return sdc_sampler_kind_from_name(name, out, NULL) == SDC_OK ? 0 : -1;
}

const char *sdc_sampler_name(sdc_sampler s) {
    return s == SDC_SAMPLER_DEFAULT ? "default" : sdc_sampler_kind_name(s);
}

/* The sampler a scheduler_config.json names (diffusers class), and whether it asks for Karras sigmas. */
static sdc_sampler config_sampler(const cJSON *cfg, int *karras) {
    static const struct {
        const char *cls;
        sdc_sampler s;
    } classes[] = {
        {"EulerDiscreteScheduler", SDC_SAMPLER_EULER}, {"EulerAncestralDiscreteScheduler", SDC_SAMPLER_EULER_A},
        {"HeunDiscreteScheduler", SDC_SAMPLER_HEUN},   {"LMSDiscreteScheduler", SDC_SAMPLER_LMS},
        {"DDIMScheduler", SDC_SAMPLER_DDIM},           {"PNDMScheduler", SDC_SAMPLER_PNDM},
        {"DPMSolverMultistepScheduler", SDC_SAMPLER_DPMPP_2M},
    };
    *karras = 0;
    const cJSON *cls = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "_class_name") : NULL;
    const cJSON *k = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "use_karras_sigmas") : NULL;
    for (size_t i = 0; cJSON_IsString(cls) && i < sizeof classes / sizeof classes[0]; i++)
        if (strcmp(cls->valuestring, classes[i].cls) == 0) {
            *karras = cJSON_IsTrue(k) && classes[i].s != SDC_SAMPLER_DDIM && classes[i].s != SDC_SAMPLER_PNDM;
            return classes[i].s;
        }
    return SDC_SAMPLER_EULER;
}

sdc_status sdc_pipeline_check_params(sdc_ctx *ctx, const sdc_gen_params *p, sdc_schedule *sched) {
    const sdc_logger *log = &ctx->log;
    const char *fn = "sdc_generate";
    if (p->width < 8 || p->height < 8 || p->width % 8 || p->height % 8 || p->width > 16384 || p->height > 16384) {
        SDC_LOGE(log, "%s: width and height must be positive multiples of 8 (got %dx%d)", fn, p->width, p->height);
        return SDC_ERR_INVALID_ARG;
    }
    int vs = sdc_vae_downscale(&ctx->vae_cfg);
    if (p->width % vs || p->height % vs) {
        SDC_LOGE(log, "%s: width and height must be multiples of %d for this VAE (got %dx%d)", fn, vs, p->width,
                 p->height);
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
    if (!isfinite(p->cfg_scale)) {
        SDC_LOGE(log, "%s: cfg scale must be a finite number", fn);
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
    sdc_sampler_params sp;
    sdc_sampler_params_init(&sp);
    int karras = p->karras;
    sdc_sampler s = p->sampler;
    if (s == SDC_SAMPLER_DEFAULT) {
        int cfg_karras;
        s = config_sampler(ctx->mf->scheduler_config, &cfg_karras);
        karras = karras || cfg_karras;
    } else if ((unsigned)s >= SDC_SAMPLER_COUNT) {
        SDC_LOGE(log, "%s: unknown sampler %d", fn, (int)s);
        return SDC_ERR_INVALID_ARG;
    }
    sp.kind = s;
    sp.karras = karras;
    sp.steps = p->steps;
    sdc_status st = sdc_schedule_build(ctx->mf->scheduler_config, &sp, log, sched);
    if (st == SDC_OK && p->init_image) st = sdc_schedule_truncate_for_strength(sched, p->strength, log);
    if (st != SDC_OK) sdc_schedule_free(sched);
    return st;
}

/* --- output images ----------------------------------------------------------------------------- */

static char *params_text(sdc_ctx *ctx, const sdc_gen_params *p, const sdc_schedule *sched, int64_t seed) {
    const char *prompt = p->prompt ? p->prompt : "";
    const char *neg = p->negative_prompt ? p->negative_prompt : "";
    sdc_sampler s = sched->kind;
    char tail[512];
    int len = snprintf(tail, sizeof tail, "Steps: %d, Sampler: %s%s, CFG scale: %g, Seed: %lld, Size: %dx%d, Model: %s",
                       p->steps, a1111_names[s], sched->karras ? " Karras" : "", (double)p->cfg_scale,
                       (long long)seed, p->width, p->height, ctx->model_name);
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

sdc_status sdc_pipeline_make_image(sdc_ctx *ctx, const sdc_gen_params *p, const sdc_schedule *sched, int64_t seed,
                                   const float *pixels, int W, int H, sdc_image *img) {
    size_t n = (size_t)W * (size_t)H * 3;
    img->data = malloc(n);
    img->parameters = params_text(ctx, p, sched, seed);
    if (!img->data || !img->parameters) return SDC_ERR_OOM;
    for (size_t i = 0; i < n; i++) img->data[i] = (uint8_t)nearbyintf(pixels[i] * 255.0f); /* numpy round: half to even */
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
