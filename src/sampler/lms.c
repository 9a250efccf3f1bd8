/* lms.c - LMSDiscreteScheduler: linear multistep in sigma, order 4 (k-diffusion's sample_lms).
 *
 *   d_i = (x - x0) / sigma_i
 *   x   = x + sum_k c_k * d_{i-k},   c_k = integral from sigma_i to sigma_{i+1} of the Lagrange basis
 *         polynomial through sigma_i, ..., sigma_{i-order+1} that is 1 at sigma_{i-k}
 *
 * order = min(i + 1, 4) with i the index in the schedule (not counted from begin), and the sum runs over
 * the derivatives kept so far: what diffusers does when an img2img run starts part-way. The basis
 * polynomial has degree <= 3, so a 3-point Gauss-Legendre rule integrates it exactly (diffusers calls
 * scipy.integrate.quad, whose first Gauss-Kronrod pass already is exact for it). */
#include <stdlib.h>

#include "sampler/numerics.h"
#include "sampler/steps.h"

#define LMS_ORDER 4

typedef struct lagrange {
    const float *sigmas;
    int i, order, k;
} lagrange;

static double lagrange_basis(double tau, const void *user) {
    const lagrange *L = user;
    double prod = 1.0;
    for (int j = 0; j < L->order; j++) {
        if (j == L->k) continue;
        prod *= (tau - (double)L->sigmas[L->i - j]) / ((double)L->sigmas[L->i - L->k] - (double)L->sigmas[L->i - j]);
    }
    return prod;
}

sdc_status sdc_run_lms(sdc_sample_ctx *ctx, float *x) {
    const sdc_schedule *s = ctx->s;
    const size_t n = ctx->n;
    double *derivs[LMS_ORDER] = {0}; /* derivs[0] newest, each [n] */
    for (int j = 0; j < LMS_ORDER; j++) {
        derivs[j] = malloc(sizeof(double) * n);
        if (!derivs[j]) {
            for (int q = 0; q < j; q++) free(derivs[q]);
            return SDC_ERR_OOM;
        }
    }
    sdc_status st = SDC_OK;
    int kept = 0;
    for (int i = s->begin; i < s->n; i++) {
        const float sigma = s->sigmas[i];
        st = sdc_sample_eval(ctx, i, x, sigma);
        if (st != SDC_OK) break;
        double *d = derivs[LMS_ORDER - 1]; /* recycle the oldest buffer as the newest */
        for (int j = LMS_ORDER - 1; j > 0; j--) derivs[j] = derivs[j - 1];
        derivs[0] = d;
        if (kept < LMS_ORDER) kept++;
        const float *m = ctx->out;
        for (size_t k = 0; k < n; k++) {
            const double xk = x[k];
            d[k] = (xk - sdc_pred_x0_sigma(s->prediction, xk, m[k], sigma)) / (double)sigma;
        }
        const int order = i + 1 < LMS_ORDER ? i + 1 : LMS_ORDER;
        const int terms = order < kept ? order : kept;
        double coeff[LMS_ORDER];
        for (int c = 0; c < terms; c++) {
            lagrange L = {.sigmas = s->sigmas, .i = i, .order = order, .k = c};
            coeff[c] = sdc_integrate_poly(lagrange_basis, &L, s->sigmas[i], s->sigmas[i + 1]);
        }
        for (size_t k = 0; k < n; k++) {
            double sum = 0.0;
            for (int c = 0; c < terms; c++) sum += coeff[c] * derivs[c][k];
            x[k] = (float)((double)x[k] + sum);
        }
    }
    for (int j = 0; j < LMS_ORDER; j++) free(derivs[j]);
    return st;
}
