/* heun.c - HeunDiscreteScheduler: Heun's 2nd-order method in sigma. The schedule alternates a first-order
 * (Euler) evaluation at sigma_i and a corrector evaluation at sigma_{i+1}; sigmas[] holds each
 * evaluation's noise level twice ([s0, s1, s1, ..., s_{n-1}, s_{n-1}, 0]). The last step has no corrector:
 * it ends on the Euler step to sigma = 0.
 *
 *   first:     d1 = (x - x0(x, sigma)) / sigma;   x' = x + d1 * dt,   dt = sigma_next - sigma
 *   corrector: d2 = (x' - x0(x', sigma_next)) / sigma_next;   x = x + (d1 + d2) / 2 * dt
 */
#include <stdlib.h>

#include "sampler/steps.h"

static double clip(double v, int on, float range) {
    if (!on) return v;
    return v < -(double)range ? -(double)range : v > (double)range ? (double)range : v;
}

sdc_status sdc_run_heun(sdc_sample_ctx *ctx, float *x) {
    const sdc_schedule *s = ctx->s;
    const size_t n = ctx->n;
    double *d1 = malloc(sizeof(double) * n);    /* [n] the first-order derivative */
    float *x_first = malloc(sizeof(float) * n); /* [n] the sample the pending step started from */
    if (!d1 || !x_first) {
        free(d1);
        free(x_first);
        return SDC_ERR_OOM;
    }
    sdc_status st = SDC_OK;
    int first_order = 1;
    float dt = 0.0f;
    for (int i = s->begin; i < s->n; i++) {
        st = sdc_sample_eval(ctx, i, x, s->sigmas[i]);
        if (st != SDC_OK) break;
        const float *m = ctx->out;
        if (first_order) {
            const float sigma_hat = s->sigmas[i], sigma_next = s->sigmas[i + 1];
            dt = sigma_next - sigma_hat;
            for (size_t k = 0; k < n; k++) {
                const double xk = x[k];
                const double x0 =
                    clip(sdc_pred_x0_sigma(s->prediction, xk, m[k], sigma_hat), s->clip_sample, s->clip_sample_range);
                d1[k] = (xk - x0) / (double)sigma_hat;
                x_first[k] = x[k];
                x[k] = (float)(xk + d1[k] * (double)dt);
            }
            first_order = 0;
        } else {
            const float sigma_next = s->sigmas[i];
            for (size_t k = 0; k < n; k++) {
                const double xk = x[k];
                const double x0 =
                    clip(sdc_pred_x0_sigma(s->prediction, xk, m[k], sigma_next), s->clip_sample, s->clip_sample_range);
                const double d2 = (xk - x0) / (double)sigma_next;
                const double d = (d1[k] + d2) / 2.0;
                x[k] = (float)((double)x_first[k] + d * (double)dt);
            }
            first_order = 1;
        }
    }
    free(d1);
    free(x_first);
    return st;
}
