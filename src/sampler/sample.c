/* sample.c - sampler names, and sdc_sample(): the model-evaluation helper shared by every loop and
 * the dispatch to the loop of the schedule's family. */
#include <stdlib.h>
#include <string.h>

#include "sampler/steps.h"

const char *sdc_sampler_kind_name(sdc_sampler kind) {
    return (unsigned)kind < SDC_SAMPLER_COUNT ? sdc_value_name(SDC_NAMES_SAMPLER, (int)kind) : "unknown";
}

sdc_status sdc_sampler_kind_from_name(const char *name, sdc_sampler *out, const sdc_logger *log) {
    int v;
    if (sdc_name_to_value(SDC_NAMES_SAMPLER, name, &v) == 0) {
        *out = (sdc_sampler)v;
        return SDC_OK;
    }
    SDC_LOGE(log, "sdc_sampler_kind_from_name: unknown sampler '%s' (%s)", name ? name : "(null)",
             sdc_names(SDC_NAMES_SAMPLER));
    return SDC_ERR_INVALID_ARG;
}

static const struct {
    const char *cls;
    sdc_sampler kind;
} classes[] = {
    {"EulerDiscreteScheduler", SDC_SAMPLER_EULER},
    {"EulerAncestralDiscreteScheduler", SDC_SAMPLER_EULER_A},
    {"HeunDiscreteScheduler", SDC_SAMPLER_HEUN},
    {"LMSDiscreteScheduler", SDC_SAMPLER_LMS},
    {"DDIMScheduler", SDC_SAMPLER_DDIM},
    {"PNDMScheduler", SDC_SAMPLER_PNDM},
    {"DPMSolverMultistepScheduler", SDC_SAMPLER_DPMPP_2M},
};

sdc_status sdc_sampler_kind_from_class(const char *cls, sdc_sampler *out, const sdc_logger *log) {
    for (size_t i = 0; cls && i < sizeof(classes) / sizeof(classes[0]); i++)
        if (strcmp(cls, classes[i].cls) == 0) {
            *out = classes[i].kind;
            return SDC_OK;
        }
    *out = SDC_SAMPLER_EULER;
    SDC_LOGW(log,
             "sdc_sampler_kind_from_class: scheduler class '%.100s' is not one sdc implements; using euler "
             "(EulerDiscreteScheduler); choose one with --sampling-method",
             cls ? cls : "(none)");
    return SDC_ERR_UNSUPPORTED;
}

sdc_status sdc_sigma_schedule_from_name(const char *name, int *karras, const sdc_logger *log) {
    if (sdc_name_to_value(SDC_NAMES_SCHEDULER, name, karras) == 0) return SDC_OK;
    SDC_LOGE(log, "sdc_sigma_schedule_from_name: unknown sigma schedule '%s' (%s)", name ? name : "(null)",
             sdc_names(SDC_NAMES_SCHEDULER));
    return SDC_ERR_INVALID_ARG;
}

sdc_status sdc_sample_eval(sdc_sample_ctx *ctx, int i, const float *x, float div_sigma) {
    const float *in = x;
    if (div_sigma >= 0.0f) { /* scale_model_input: x / (sigma^2 + 1) ** 0.5 */
        const float d = sqrtf(div_sigma * div_sigma + 1.0f);
        for (size_t k = 0; k < ctx->n; k++) ctx->x_in[k] = x[k] / d;
        in = ctx->x_in;
    }
    sdc_status st = ctx->cb->model(ctx->cb->model_user, in, ctx->s->timesteps[i], ctx->out);
    if (st != SDC_OK) {
        SDC_LOGE(ctx->log, "sdc_sample: model failed at evaluation %d/%d (t=%g): %s", i + 1, ctx->s->n,
                 (double)ctx->s->timesteps[i], sdc_status_str(st));
        return st;
    }
    if (ctx->cb->progress &&
        ctx->cb->progress(ctx->cb->progress_user, i - ctx->s->begin + 1, ctx->s->n - ctx->s->begin)) {
        SDC_LOGI(ctx->log, "sdc_sample: cancelled after evaluation %d/%d", i + 1, ctx->s->n);
        return SDC_ERR_CANCELLED;
    }
    return SDC_OK;
}

sdc_status sdc_sample(const sdc_schedule *s, float *x, size_t n, const sdc_sample_callbacks *cb,
                      const sdc_logger *log) {
    if (!s || !s->timesteps || !x || !cb || !cb->model || n == 0) {
        SDC_LOGE(log, "sdc_sample: missing schedule, latents or model callback");
        return SDC_ERR_INVALID_ARG;
    }
    if (s->kind == SDC_SAMPLER_EULER_A && !cb->noise) {
        SDC_LOGE(log, "sdc_sample: euler_a needs a noise callback");
        return SDC_ERR_INVALID_ARG;
    }
    sdc_sample_ctx ctx = {.s = s, .n = n, .cb = cb, .log = log};
    ctx.x_in = malloc(sizeof(float) * n);
    ctx.out = malloc(sizeof(float) * n);
    sdc_status st = SDC_ERR_OOM;
    if (ctx.x_in && ctx.out) {
        switch (s->kind) {
        case SDC_SAMPLER_EULER: st = s->flow ? sdc_run_flow_euler(&ctx, x) : sdc_run_euler(&ctx, x); break;
        case SDC_SAMPLER_EULER_A: st = sdc_run_euler_a(&ctx, x); break;
        case SDC_SAMPLER_HEUN: st = sdc_run_heun(&ctx, x); break;
        case SDC_SAMPLER_LMS: st = sdc_run_lms(&ctx, x); break;
        case SDC_SAMPLER_DDIM: st = sdc_run_ddim(&ctx, x); break;
        case SDC_SAMPLER_PNDM: st = sdc_run_pndm(&ctx, x); break;
        case SDC_SAMPLER_DPMPP_2M: st = sdc_run_dpmpp2m(&ctx, x); break;
        default: st = SDC_ERR_INVALID_ARG; break;
        }
    }
    if (st == SDC_ERR_OOM) SDC_LOGE(log, "sdc_sample: out of memory for %zu latent elements", n);
    free(ctx.x_in);
    free(ctx.out);
    return st;
}
