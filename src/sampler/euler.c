/* euler.c - EulerDiscreteScheduler (s_churn = 0) and EulerAncestralDiscreteScheduler.
 *
 *   x0    = x - sigma * eps                 (or the v-prediction form)
 *   d     = (x - x0) / sigma
 *   x     = x + d * (sigma_next - sigma)    euler
 *   x     = x + d * (sigma_down - sigma) + noise * sigma_up      euler_a
 */
#include <stdlib.h>

#include "sampler/steps.h"

sdc_status sdc_run_euler(sdc_sample_ctx *ctx, float *x) {
    const sdc_schedule *s = ctx->s;
    for (int i = s->begin; i < s->n; i++) {
        const float sigma = s->sigmas[i];
        sdc_status st = sdc_sample_eval(ctx, i, x, sigma);
        if (st != SDC_OK) return st;
        const float sigma_hat = sigma; /* gamma = 0 */
        const float dt = s->sigmas[i + 1] - sigma_hat;
        const float *m = ctx->out;
        for (size_t k = 0; k < ctx->n; k++) {
            const double xk = x[k];
            const double x0 = sdc_pred_x0_sigma(s->prediction, xk, m[k], sigma_hat);
            const double d = (xk - x0) / (double)sigma_hat;
            x[k] = (float)(xk + d * (double)dt);
        }
    }
    return SDC_OK;
}

sdc_status sdc_run_euler_a(sdc_sample_ctx *ctx, float *x) {
    const sdc_schedule *s = ctx->s;
    float *noise = malloc(sizeof(float) * ctx->n);
    if (!noise) return SDC_ERR_OOM;
    sdc_status st = SDC_OK;
    for (int i = s->begin; i < s->n && st == SDC_OK; i++) {
        const float sigma = s->sigmas[i];
        st = sdc_sample_eval(ctx, i, x, sigma);
        if (st != SDC_OK) break;
        const float sf = sigma, stt = s->sigmas[i + 1];
        const float sigma_up = sqrtf(stt * stt * (sf * sf - stt * stt) / (sf * sf));
        const float down2 = stt * stt - sigma_up * sigma_up;
        const float sigma_down = sqrtf(down2 > 0.0f ? down2 : 0.0f);
        const float dt = sigma_down - sigma;
        ctx->cb->noise(ctx->cb->noise_user, noise, ctx->n); /* drawn every step, the last one too */
        const float *m = ctx->out;
        for (size_t k = 0; k < ctx->n; k++) {
            const double xk = x[k];
            const double x0 = sdc_pred_x0_sigma(s->prediction, xk, m[k], sigma);
            const double d = (xk - x0) / (double)sigma;
            const double prev = xk + d * (double)dt;
            x[k] = (float)(prev + (double)noise[k] * (double)sigma_up);
        }
    }
    free(noise);
    return st;
}
