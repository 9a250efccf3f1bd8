/* flow_match.c - FlowMatchEulerDiscreteScheduler as diffusers' FluxPipeline drives it (rectified flow:
 * the model predicts the velocity v = noise - x0, and x moves along it from sigma 1 to 0).
 *
 *   sigmas  = linspace(1, 1/steps, steps)                 (float64, then float32)
 *   static  sigma = shift * s / (1 + (shift - 1) * s)     (float32)
 *   dynamic sigma = e^mu / (e^mu + (1/s - 1))             (float32; exponential time shift, sigma 1)
 *           mu = image_seq_len * m + b, the line through (base_image_seq_len, base_shift) and
 *                (max_image_seq_len, max_shift)           (float64)
 *   timesteps = sigmas * num_train_timesteps (float32), then a final sigma 0
 *   step    x = x + (sigma_next - sigma) * v              (float32)
 * The model is handed timesteps[i] (the pipeline divides it by 1000 for the transformer). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "sampler/steps.h"

#define WHAT "scheduler config"

static sdc_status need_false(const cJSON *cfg, const char *key, const sdc_logger *log) {
    int v = 0;
    sdc_status st = sdc_cfg_bool_or(cfg, key, 0, WHAT, log, &v);
    if (st == SDC_OK && v) {
        SDC_LOGE(log, "sdc_flow_config_parse: %s is not supported", key);
        st = SDC_ERR_UNSUPPORTED;
    }
    return st;
}

sdc_status sdc_flow_config_parse(const cJSON *cfg, const sdc_logger *log, sdc_flow_config *out) {
    memset(out, 0, sizeof *out);
    double shift = 1.0, base_shift = 0.5, max_shift = 1.15;
    const char *tst = "exponential";
    sdc_status st = sdc_cfg_int_or(cfg, "num_train_timesteps", 1000, WHAT, log, &out->num_train_timesteps);
    if (st == SDC_OK) st = sdc_cfg_float_or(cfg, "shift", 1.0, WHAT, log, &shift);
    if (st == SDC_OK) st = sdc_cfg_bool_or(cfg, "use_dynamic_shifting", 0, WHAT, log, &out->dynamic);
    if (st == SDC_OK) st = sdc_cfg_float_or(cfg, "base_shift", 0.5, WHAT, log, &base_shift);
    if (st == SDC_OK) st = sdc_cfg_float_or(cfg, "max_shift", 1.15, WHAT, log, &max_shift);
    if (st == SDC_OK) st = sdc_cfg_int_or(cfg, "base_image_seq_len", 256, WHAT, log, &out->base_seq_len);
    if (st == SDC_OK) st = sdc_cfg_int_or(cfg, "max_image_seq_len", 4096, WHAT, log, &out->max_seq_len);
    if (st == SDC_OK) st = sdc_cfg_string_or(cfg, "time_shift_type", "exponential", WHAT, log, &tst);
    static const char *const unsupported[] = {"invert_sigmas", "stochastic_sampling", "use_karras_sigmas",
                                              "use_exponential_sigmas", "use_beta_sigmas"};
    for (size_t i = 0; st == SDC_OK && i < sizeof unsupported / sizeof unsupported[0]; i++)
        st = need_false(cfg, unsupported[i], log);
    const cJSON *term = cJSON_GetObjectItemCaseSensitive(cfg, "shift_terminal");
    if (st == SDC_OK && term && !cJSON_IsNull(term)) {
        SDC_LOGE(log, "sdc_flow_config_parse: shift_terminal is not supported");
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK && strcmp(tst, "exponential") != 0) {
        SDC_LOGE(log, "sdc_flow_config_parse: time_shift_type '%s' is not supported (only exponential)", tst);
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st != SDC_OK) return st;
    if (out->num_train_timesteps < 1 || out->num_train_timesteps > 100000 || !(shift > 0 && shift < 1e3) ||
        !isfinite(base_shift) || !isfinite(max_shift) || fabs(base_shift) > 100 || fabs(max_shift) > 100 ||
        out->base_seq_len < 1 || out->max_seq_len <= out->base_seq_len || out->max_seq_len > (1 << 24)) {
        SDC_LOGE(log,
                 "sdc_flow_config_parse: out of range: num_train_timesteps %d, shift %g, base_shift %g, max_shift "
                 "%g, base_image_seq_len %d, max_image_seq_len %d",
                 out->num_train_timesteps, shift, base_shift, max_shift, out->base_seq_len, out->max_seq_len);
        return SDC_ERR_FORMAT;
    }
    out->shift = shift;
    out->base_shift = base_shift;
    out->max_shift = max_shift;
    return SDC_OK;
}

double sdc_flow_mu(const sdc_flow_config *c, int image_seq_len) {
    const double m = (c->max_shift - c->base_shift) / (double)(c->max_seq_len - c->base_seq_len);
    const double b = c->base_shift - m * (double)c->base_seq_len;
    return (double)image_seq_len * m + b;
}

sdc_status sdc_flow_schedule_build(const sdc_flow_config *c, int steps, int image_seq_len, const sdc_logger *log,
                                   sdc_schedule *out) {
    memset(out, 0, sizeof *out);
    if (steps < 1 || steps > 10000 || image_seq_len < 1) {
        SDC_LOGE(log, "sdc_flow_schedule_build: %d steps for %d image tokens", steps, image_seq_len);
        return SDC_ERR_INVALID_ARG;
    }
    out->kind = SDC_SAMPLER_EULER;
    out->flow = 1;
    out->steps = out->n = steps;
    out->init_noise_sigma = 1.0f;
    out->num_train_timesteps = c->num_train_timesteps;
    out->timesteps = malloc(sizeof(float) * (size_t)steps);
    out->sigmas = malloc(sizeof(float) * (size_t)(steps + 1));
    if (!out->timesteps || !out->sigmas) {
        sdc_schedule_free(out);
        SDC_LOGE(log, "sdc_flow_schedule_build: out of memory");
        return SDC_ERR_OOM;
    }
    const float emu = (float)exp(sdc_flow_mu(c, image_seq_len)), shift = (float)c->shift;
    for (int i = 0; i < steps; i++) {
        /* numpy's linspace(1, 1/steps, steps): start + i * step, the last one exactly the stop */
        const double stop = 1.0 / steps, step = steps > 1 ? (stop - 1.0) / (steps - 1) : 0.0;
        const float s = (float)(i == steps - 1 && steps > 1 ? stop : 1.0 + i * step);
        float sigma;
        if (c->dynamic) {
            const float r = 1.0f / s - 1.0f; /* (1/t - 1) ** 1.0 */
            sigma = emu / (emu + r);
        } else {
            sigma = shift * s / (1.0f + (shift - 1.0f) * s);
        }
        out->sigmas[i] = sigma;
        out->timesteps[i] = sigma * (float)c->num_train_timesteps;
    }
    out->sigmas[steps] = 0.0f;
    SDC_LOGD(log, "sdc_flow_schedule_build: %d steps, %s shift (mu %.6g)", steps, c->dynamic ? "dynamic" : "static",
             c->dynamic ? sdc_flow_mu(c, image_seq_len) : 0.0);
    return SDC_OK;
}

sdc_status sdc_run_flow_euler(sdc_sample_ctx *ctx, float *x) {
    const sdc_schedule *s = ctx->s;
    for (int i = s->begin; i < s->n; i++) {
        sdc_status st = sdc_sample_eval(ctx, i, x, -1.0f); /* the model takes x itself */
        if (st != SDC_OK) return st;
        const float dt = s->sigmas[i + 1] - s->sigmas[i];
        const float *v = ctx->out;
        for (size_t k = 0; k < ctx->n; k++) {
            const float d = dt * v[k]; /* float32, as torch: sample + dt * model_output */
            x[k] = x[k] + d;
        }
    }
    return SDC_OK;
}
