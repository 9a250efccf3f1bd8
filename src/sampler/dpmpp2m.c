/* dpmpp2m.c - DPMSolverMultistepScheduler, algorithm dpmsolver++, solver_order 2 (DPM-Solver++(2M)),
 * in the data-prediction form on half-log-SNR lambda = log(alpha_t) - log(sigma_t), with
 * alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t.
 *
 *   m_i = x0 predicted at step i
 *   first order:  x = (sigma_t / sigma_s) x - alpha_t (e^-h - 1) m_i,        h = lambda_t - lambda_s
 *   second order: D1 = (m_i - m_{i-1}) / r0,  r0 = h_0 / h
 *       midpoint: x = (sigma_t / sigma_s0) x - alpha_t (e^-h - 1) m_i - 0.5 alpha_t (e^-h - 1) D1
 *       heun:     x = (sigma_t / sigma_s0) x - alpha_t (e^-h - 1) m_i + alpha_t ((e^-h - 1) / h + 1) D1
 *
 * The first step is first order, and so is the last where diffusers' lower_order_final condition holds
 * (always with a final sigma of 0, where the last step returns m_i). The model input is x itself. */
#include <stdlib.h>

#include "sampler/steps.h"

typedef struct alpha_sigma {
    float alpha, sigma, lambda;
} alpha_sigma;

static alpha_sigma at_sigma(float sigma) {
    alpha_sigma r;
    r.alpha = 1.0f / sqrtf(sigma * sigma + 1.0f);
    r.sigma = sigma * r.alpha;
    r.lambda = logf(r.alpha) - logf(r.sigma);
    return r;
}

sdc_status sdc_run_dpmpp2m(sdc_sample_ctx *ctx, float *x) {
    const sdc_schedule *s = ctx->s;
    const size_t n = ctx->n;
    double *m0 = malloc(sizeof(double) * n), *m1 = malloc(sizeof(double) * n); /* [n] x0 now, before */
    if (!m0 || !m1) {
        free(m0);
        free(m1);
        return SDC_ERR_OOM;
    }
    sdc_status st = SDC_OK;
    int lower_order_nums = 0;
    for (int i = s->begin; i < s->n; i++) {
        st = sdc_sample_eval(ctx, i, x, -1.0f);
        if (st != SDC_OK) break;
        double *tmp = m1; /* shift the history: m1 <- m0, m0 <- x0 of this step */
        m1 = m0;
        m0 = tmp;
        const alpha_sigma cur = at_sigma(s->sigmas[i]);
        const float *m = ctx->out;
        for (size_t k = 0; k < n; k++) {
            const double xk = x[k];
            m0[k] = s->prediction == SDC_PREDICT_EPSILON ? (xk - (double)cur.sigma * m[k]) / (double)cur.alpha
                                                         : (double)cur.alpha * xk - (double)cur.sigma * m[k];
        }
        const int final_step = i == s->n - 1 && s->dpm_lower_order_final;
        const alpha_sigma t = at_sigma(s->sigmas[i + 1]);
        const float h = t.lambda - cur.lambda;
        const float em1 = expf(-h) - 1.0f;
        const float c_x = t.sigma / cur.sigma;
        const float c_d0 = t.alpha * em1;
        if (lower_order_nums < 1 || final_step) {
            for (size_t k = 0; k < n; k++) x[k] = (float)((double)c_x * x[k] - (double)c_d0 * m0[k]);
        } else {
            const alpha_sigma prev = at_sigma(s->sigmas[i - 1]);
            const float h_0 = cur.lambda - prev.lambda;
            const float r0 = h_0 / h;
            const float inv_r0 = 1.0f / r0;
            const float c_d1 = s->dpm_solver_heun ? -(t.alpha * (em1 / h + 1.0f)) : 0.5f * c_d0;
            for (size_t k = 0; k < n; k++) {
                const double d1 = (double)inv_r0 * (m0[k] - m1[k]);
                x[k] = (float)((double)c_x * x[k] - (double)c_d0 * m0[k] - (double)c_d1 * d1);
            }
        }
        if (lower_order_nums < 2) lower_order_nums++;
    }
    free(m0);
    free(m1);
    return st;
}
