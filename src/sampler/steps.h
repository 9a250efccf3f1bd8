/* steps.h - what the sampler loops share (internal to src/sampler). Each family file (euler.c,
 * heun.c, lms.c, ddim.c, pndm.c, dpmpp2m.c) runs its whole loop over evaluations begin..n-1 of a
 * schedule; sample.c picks one. Per-element arithmetic is double over float latents; the scalar
 * coefficients are float32, computed as diffusers computes them from its float32 tensors. */
#ifndef SDC_SAMPLER_STEPS_H
#define SDC_SAMPLER_STEPS_H

#include <math.h>
#include <stddef.h>

#include "sampler/sampler.h"

typedef struct sdc_sample_ctx {
    const sdc_schedule *s;
    size_t n; /* latent elements */
    const sdc_sample_callbacks *cb;
    const sdc_logger *log;
    float *x_in; /* [n] scratch: the scaled model input */
    float *out;  /* [n] the model output of the last evaluation */
} sdc_sample_ctx;

/* Evaluation i: hands the model x / sqrt(sigma^2 + 1) (sigma samplers, div_sigma >= 0) or x itself
 * (div_sigma < 0) at timesteps[i], fills ctx->out, then reports progress. */
sdc_status sdc_sample_eval(sdc_sample_ctx *ctx, int i, const float *x, float div_sigma);

/* x0 predicted from a k-diffusion sigma sampler's model output at noise level sigma (float32 scalars). */
static inline double sdc_pred_x0_sigma(sdc_prediction_type p, double x, double m, float sigma) {
    if (p == SDC_PREDICT_EPSILON) return x - (double)sigma * m;
    const float c_out = -sigma / sqrtf(sigma * sigma + 1.0f); /* v: x0 = c_out * v + x / (sigma^2 + 1) */
    const float c_skip_div = sigma * sigma + 1.0f;
    return m * (double)c_out + x / (double)c_skip_div;
}

sdc_status sdc_run_euler(sdc_sample_ctx *ctx, float *x);
sdc_status sdc_run_euler_a(sdc_sample_ctx *ctx, float *x);
sdc_status sdc_run_heun(sdc_sample_ctx *ctx, float *x);
sdc_status sdc_run_lms(sdc_sample_ctx *ctx, float *x);
sdc_status sdc_run_ddim(sdc_sample_ctx *ctx, float *x);
sdc_status sdc_run_pndm(sdc_sample_ctx *ctx, float *x);
sdc_status sdc_run_dpmpp2m(sdc_sample_ctx *ctx, float *x);
sdc_status sdc_run_flow_euler(sdc_sample_ctx *ctx, float *x);

#endif
