/* ddim.c - DDIMScheduler with eta = 0 (deterministic), on alphas_cumprod at integer timesteps.
 *
 *   a_t = ac[t], a_prev = ac[t - N/steps] (final_alpha_cumprod below 0), b_t = 1 - a_t
 *   x0  = (x - sqrt(b_t) * eps) / sqrt(a_t)               (v: x0 = sqrt(a_t) x - sqrt(b_t) v,
 *   eps = model output                                         eps = sqrt(a_t) v + sqrt(b_t) x)
 *   x   = sqrt(a_prev) * x0 + sqrt(1 - a_prev) * eps
 *
 * The model input is x itself (scale_model_input is the identity). */
#include "sampler/steps.h"

sdc_status sdc_run_ddim(sdc_sample_ctx *ctx, float *x) {
    const sdc_schedule *s = ctx->s;
    for (int i = s->begin; i < s->n; i++) {
        sdc_status st = sdc_sample_eval(ctx, i, x, -1.0f);
        if (st != SDC_OK) return st;
        const int t = (int)s->timesteps[i];
        const int prev_t = t - s->timestep_step;
        const float a_t = s->alphas_cumprod[t];
        const float a_prev = prev_t >= 0 ? s->alphas_cumprod[prev_t] : s->final_alpha_cumprod;
        const float b_t = 1.0f - a_t;
        const float sqrt_a = sqrtf(a_t), sqrt_b = sqrtf(b_t);
        const float std_dev_t = 0.0f; /* eta = 0 */
        const float dir_coef = sqrtf(1.0f - a_prev - std_dev_t * std_dev_t);
        const float sqrt_a_prev = sqrtf(a_prev);
        const double r = s->clip_sample_range;
        const float *m = ctx->out;
        for (size_t k = 0; k < ctx->n; k++) {
            const double xk = x[k], mk = m[k];
            double x0, eps;
            if (s->prediction == SDC_PREDICT_EPSILON) {
                x0 = (xk - (double)sqrt_b * mk) / (double)sqrt_a;
                eps = mk;
            } else {
                x0 = (double)sqrt_a * xk - (double)sqrt_b * mk;
                eps = (double)sqrt_a * mk + (double)sqrt_b * xk;
            }
            if (s->clip_sample) x0 = x0 < -r ? -r : x0 > r ? r : x0;
            x[k] = (float)((double)sqrt_a_prev * x0 + (double)dir_coef * eps);
        }
    }
    return SDC_OK;
}
