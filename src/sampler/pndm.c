/* pndm.c - PNDMScheduler's PLMS steps (skip_prk_steps): a 4th-order Adams-Bashforth combination of the
 * last model outputs, moved from t to t - N/steps by the PNDM transfer formula.
 *
 * The schedule repeats the second timestep ([t0, t1, t1, t2, ...]): evaluation 0 steps t0 -> t1 with
 * e0; evaluation 1 (at the result) redoes t0 -> t1 from the saved sample with (e0 + e1) / 2; from then
 * on the combination is (3e - e')/2, (23, -16, 5)/12, then (55, -59, 37, -9)/24.
 *
 *   transfer(x, e, t -> p) = sqrt(a_p / a_t) x - (a_p - a_t) e / (a_t sqrt(1 - a_p) + sqrt(a_t (1 - a_t) a_p))
 *
 * The model input is x itself. */
#include <stdlib.h>

#include "sampler/steps.h"

#define PLMS_KEEP 4

static void transfer(const sdc_schedule *s, float *out, const float *sample, const double *e, size_t n, int t,
                     int prev_t) {
    const float a_t = s->alphas_cumprod[t];
    const float a_prev = prev_t >= 0 ? s->alphas_cumprod[prev_t] : s->final_alpha_cumprod;
    const float b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    const float sample_coeff = sqrtf(a_prev / a_t);
    const float denom = a_t * sqrtf(b_prev) + sqrtf(a_t * b_t * a_prev);
    const float diff = a_prev - a_t;
    const float sqrt_a = sqrtf(a_t), sqrt_b = sqrtf(b_t);
    for (size_t k = 0; k < n; k++) {
        const double xk = sample[k];
        double ek = e[k];
        if (s->prediction == SDC_PREDICT_V) ek = (double)sqrt_a * ek + (double)sqrt_b * xk;
        out[k] = (float)((double)sample_coeff * xk - (double)diff * ek / (double)denom);
    }
}

sdc_status sdc_run_pndm(sdc_sample_ctx *ctx, float *x) {
    const sdc_schedule *s = ctx->s;
    const size_t n = ctx->n;
    double *ets[PLMS_KEEP] = {0};              /* ets[0] newest model output, each [n] */
    double *comb = malloc(sizeof(double) * n); /* [n] the combined model output */
    float *cur_sample = malloc(sizeof(float) * n);
    int ok = comb && cur_sample;
    for (int j = 0; j < PLMS_KEEP && ok; j++) ok = (ets[j] = malloc(sizeof(double) * n)) != NULL;
    sdc_status st = ok ? SDC_OK : SDC_ERR_OOM;
    int kept = 0;
    for (int i = s->begin, counter = 0; i < s->n && st == SDC_OK; i++, counter++) {
        st = sdc_sample_eval(ctx, i, x, -1.0f);
        if (st != SDC_OK) break;
        const float *m = ctx->out;
        int t = (int)s->timesteps[i];
        int prev_t = t - s->timestep_step;
        if (counter != 1) {
            double *e = ets[PLMS_KEEP - 1];
            for (int j = PLMS_KEEP - 1; j > 0; j--) ets[j] = ets[j - 1];
            ets[0] = e;
            for (size_t k = 0; k < n; k++) e[k] = m[k];
            if (kept < PLMS_KEEP) kept++;
        } else {
            prev_t = t;
            t = t + s->timestep_step;
        }
        const float *sample = x;
        if (kept == 1 && counter == 0) {
            for (size_t k = 0; k < n; k++) comb[k] = m[k];
            for (size_t k = 0; k < n; k++) cur_sample[k] = x[k];
        } else if (kept == 1 && counter == 1) {
            for (size_t k = 0; k < n; k++) comb[k] = ((double)m[k] + ets[0][k]) / 2.0;
            sample = cur_sample;
        } else if (kept == 2) {
            for (size_t k = 0; k < n; k++) comb[k] = (3.0 * ets[0][k] - ets[1][k]) / 2.0;
        } else if (kept == 3) {
            for (size_t k = 0; k < n; k++) comb[k] = (23.0 * ets[0][k] - 16.0 * ets[1][k] + 5.0 * ets[2][k]) / 12.0;
        } else {
            for (size_t k = 0; k < n; k++)
                comb[k] = 1.0 / 24.0 * (55.0 * ets[0][k] - 59.0 * ets[1][k] + 37.0 * ets[2][k] - 9.0 * ets[3][k]);
        }
        transfer(s, x, sample, comb, n, t, prev_t);
    }
    for (int j = 0; j < PLMS_KEEP; j++) free(ets[j]);
    free(comb);
    free(cur_sample);
    return st;
}
