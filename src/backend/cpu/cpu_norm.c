/* cpu_norm.c - layer norm (plain, and modulated by per-batch shift and scale), RMS norm and group
 * norm. Each normalises independent segments (a row; a group's channels x positions), one thread per
 * segment: statistics in double over 8 fixed lanes (biased variance, two passes; RMS norm: the mean of
 * squares), then the per-channel affine in f32. Group norm's two halves (group_norm_stats,
 * group_norm_apply) use the same lanes and the same affine. */
#include <math.h>

#include "backend/cpu/cpu_backend.h"

/* Sum of x[n] in double, over 8 lanes added in a fixed order; sq: sum of (x - mean)^2 instead. */
static double lane_sum(const float *x, int64_t n, int sq, double mean) {
    double lane[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const double d = sq ? (double)x[i + j] - mean : (double)x[i + j];
            lane[j] += sq ? d * d : d;
        }
    for (int j = 0; j < 8 && i + j < n; j++) {
        const double d = sq ? (double)x[i + j] - mean : (double)x[i + j];
        lane[j] += sq ? d * d : d;
    }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* y[c, i] = (x[c, i] - meanf) * (rstd * w[c]) + b[c] over a segment x[n_ch, per_ch] (f32 math); then
 * SiLU when silu != 0. */
static void apply_segment(float *y, const float *x, int64_t n_ch, int64_t per_ch, const float *w, const float *b,
                          float meanf, float rstd, int silu) {
    for (int64_t c = 0; c < n_ch; c++) {
        const float a = rstd * w[c], sh = b[c];
        const float *xc = x + c * per_ch;
        float *yc = y + c * per_ch;
        for (int64_t i = 0; i < per_ch; i++) yc[i] = (xc[i] - meanf) * a + sh;
        if (silu)
            for (int64_t i = 0; i < per_ch; i++) yc[i] = sdc_cpu_silu(yc[i]);
    }
}

/* y[c, i] = (x[c, i] - mean) / sqrt(var + eps) * w[c] + b[c] over a segment x[n_ch, per_ch], with
 * mean and var over the whole segment; then SiLU when silu != 0. */
static void normalize_segment(float *y, const float *x, int64_t n_ch, int64_t per_ch, const float *w, const float *b,
                              float eps, int silu) {
    const int64_t n = n_ch * per_ch;
    const double mean = lane_sum(x, n, 0, 0.0) / (double)n;
    const double var = lane_sum(x, n, 1, mean) / (double)n;
    apply_segment(y, x, n_ch, per_ch, w, b, (float)mean, (float)(1.0 / sqrt(var + (double)eps)), silu);
}

void sdc_cpu_layer_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                        float eps) {
    const int64_t C = x->ne[x->ndim - 1], R = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x);   // [R, C]
    const float *wd = sdc_cpu_f32(w);   // [C]
    const float *bd = sdc_cpu_f32(b);   // [C]
    float *yd = sdc_cpu_f32(y);         // [R, C]
    if (C == 0) return;
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (R * C >= SDC_CPU_PAR_MIN)
    for (int64_t r = 0; r < R; r++)   // a row is C channels of one position each
        normalize_segment(yd + r * C, xd + r * C, C, 1, wd, bd, eps, 0);
}

void sdc_cpu_rms_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, float eps) {
    const int64_t C = x->ne[x->ndim - 1], R = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x);   // [R, C]
    const float *wd = sdc_cpu_f32(w);   // [C]
    float *yd = sdc_cpu_f32(y);         // [R, C]
    if (C == 0) return;
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (R * C >= SDC_CPU_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *xr = xd + r * C;
        float *yr = yd + r * C;
        const float rstd = (float)(1.0 / sqrt(lane_sum(xr, C, 1, 0.0) / (double)C + (double)eps));
        for (int64_t c = 0; c < C; c++) yr[c] = xr[c] * rstd * wd[c];
    }
}

void sdc_cpu_group_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                        int groups, float eps, int silu) {
    const int64_t B = x->ne[0], C = x->ne[1], Cg = C / groups;
    const int64_t HW = B * C != 0 ? sdc_tensor_nelem(x) / (B * C) : 0;
    const float *xd = sdc_cpu_f32(x);   // [B, G, C/G, HW]: each group is contiguous
    const float *wd = sdc_cpu_f32(w);   // [C]
    const float *bd = sdc_cpu_f32(b);   // [C]
    float *yd = sdc_cpu_f32(y);
    if (Cg * HW == 0) return;
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (B * C * HW >= SDC_CPU_PAR_MIN)
    for (int64_t bg = 0; bg < B * groups; bg++) {
        const int64_t g = bg % groups, off = bg * Cg * HW;
        normalize_segment(yd + off, xd + off, Cg, HW, wd + g * Cg, bd + g * Cg, eps, silu);
    }
}

void sdc_cpu_layer_norm_mod(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *shift,
                            const sdc_tensor *scale, float eps) {
    const int64_t T = x->ne[1], C = x->ne[2], R = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x);        // [B, T, C]
    const float *shd = sdc_cpu_f32(shift);   // [B, C]
    const float *scd = sdc_cpu_f32(scale);   // [B, C]
    float *yd = sdc_cpu_f32(y);              // [B, T, C]
    if (C == 0) return;
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (R * C >= SDC_CPU_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {   // row r is token r % T of batch row r / T
        const float *xr = xd + r * C, *sh = shd + r / T * C, *sc = scd + r / T * C;
        float *yr = yd + r * C;
        const double mean = lane_sum(xr, C, 0, 0.0) / (double)C;
        const double var = lane_sum(xr, C, 1, mean) / (double)C;
        const float meanf = (float)mean, rstd = (float)(1.0 / sqrt(var + (double)eps));
        for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - meanf) * rstd * (1.0f + sc[c]) + sh[c];
    }
}

/* Sum and sum of squares of x[n] in double, over 8 lanes added in a fixed order. */
static void lane_sums(const float *x, int64_t n, double *sum, double *sumsq) {
    double ls[8] = {0}, lq[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) {
            const double v = x[i + j];
            ls[j] += v;
            lq[j] += v * v;
        }
    for (int j = 0; j < 8 && i + j < n; j++) {
        const double v = x[i + j];
        ls[j] += v;
        lq[j] += v * v;
    }
    *sum = ((ls[0] + ls[1]) + (ls[2] + ls[3])) + ((ls[4] + ls[5]) + (ls[6] + ls[7]));
    *sumsq = ((lq[0] + lq[1]) + (lq[2] + lq[3])) + ((lq[4] + lq[5]) + (lq[6] + lq[7]));
}

void sdc_cpu_group_norm_stats(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int groups) {
    const int64_t B = x->ne[0], C = x->ne[1], Cg = C / groups;
    const int64_t HW = B * C != 0 ? sdc_tensor_nelem(x) / (B * C) : 0;
    const float *xd = sdc_cpu_f32(x);   // [B, G, C/G, HW]: each group is contiguous
    float *yd = sdc_cpu_f32(y);         // [B, G, 4]
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (B * C * HW >= SDC_CPU_PAR_MIN)
    for (int64_t bg = 0; bg < B * groups; bg++) {
        double s, q;
        lane_sums(xd + bg * Cg * HW, Cg * HW, &s, &q);
        float *o = yd + bg * 4;
        o[0] = (float)s;
        o[1] = (float)(s - (double)o[0]);
        o[2] = (float)q;
        o[3] = (float)(q - (double)o[2]);
    }
}

void sdc_cpu_group_norm_apply(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *stats,
                              const sdc_tensor *w, const sdc_tensor *b, int groups, int silu) {
    const int64_t B = x->ne[0], C = x->ne[1], Cg = C / groups;
    const int64_t HW = B * C != 0 ? sdc_tensor_nelem(x) / (B * C) : 0;
    const float *xd = sdc_cpu_f32(x);                         // [B, G, C/G, HW]
    const float *sd = sdc_cpu_f32(stats);                     // [B, G, 2]: mean, rstd
    const float *wd = sdc_cpu_f32(w), *bd = sdc_cpu_f32(b);   // [C]
    float *yd = sdc_cpu_f32(y);
    if (Cg * HW == 0) return;
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (B * C * HW >= SDC_CPU_PAR_MIN)
    for (int64_t bg = 0; bg < B * groups; bg++) {
        const int64_t g = bg % groups, off = bg * Cg * HW;
        apply_segment(yd + off, xd + off, Cg, HW, wd + g * Cg, bd + g * Cg, sd[bg * 2], sd[bg * 2 + 1], silu);
    }
}
