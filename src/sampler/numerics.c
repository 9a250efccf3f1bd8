#include "sampler/numerics.h"

#include <math.h>

void sdc_torch_linspace_f32(double start, double end, int n, float *out) {
    const float s = (float)start, e = (float)end;
    if (n == 1) {
        out[0] = s;
        return;
    }
    const float step = (e - s) / (float)(n - 1);
    const int half = n / 2;
    for (int i = 0; i < n; i++) out[i] = i < half ? fmaf(step, (float)i, s) : fmaf(-step, (float)(n - 1 - i), e);
}

void sdc_torch_cumprod_f32(const float *x, int n, float *out) {
    double acc = 1.0;
    for (int i = 0; i < n; i++) {
        acc *= (double)x[i];
        out[i] = (float)acc;
    }
}

void sdc_np_linspace(double start, double stop, int num, double *out) {
    if (num <= 0) return;
    if (num == 1) {
        out[0] = start;
        return;
    }
    const double step = (stop - start) / (double)(num - 1);
    for (int i = 0; i < num; i++) {
        double v = (double)i * step;
        out[i] = v + start;
    }
    out[num - 1] = stop;
}

int sdc_np_arange(double start, double stop, double step, double *out) {
    double len_d = ceil((stop - start) / step);
    if (!(len_d > 0)) return 0;
    int len = (int)len_d;
    if (out) {
        out[0] = start;
        if (len > 1) {
            out[1] = start + step;
            const double delta = out[1] - start;
            for (int i = 2; i < len; i++) {
                double v = (double)i * delta;
                out[i] = start + v;
            }
        }
    }
    return len;
}

double sdc_np_round(double x) { return nearbyint(x); }

double sdc_np_interp_index(double x, const float *fp, int n) {
    if (x < 0.0) return fp[0];
    if (x >= (double)(n - 1)) return fp[n - 1];
    const int j = (int)floor(x);
    if ((double)j == x) return fp[j];
    const double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    double v = slope * (x - (double)j);
    return v + (double)fp[j];
}

double sdc_sigma_to_t(double sigma, const float *log_sigmas, int n) {
    const double log_sigma = log(sigma > 1e-10 ? sigma : 1e-10);
    /* the last index with log_sigmas[i] <= log_sigma (0 if none), at most n - 2 */
    int low = 0;
    for (int i = 0; i < n; i++)
        if (log_sigma - (double)log_sigmas[i] >= 0.0) low = i;
    if (low > n - 2) low = n - 2;
    const int high = low + 1;
    const float lo = log_sigmas[low], hi = log_sigmas[high];
    const float den = lo - hi;
    double w = ((double)lo - log_sigma) / (double)den;
    if (w < 0.0) w = 0.0;
    if (w > 1.0) w = 1.0;
    double a = (1.0 - w) * (double)low;
    double b = w * (double)high;
    return a + b;
}

void sdc_karras_sigmas(double sigma_min, double sigma_max, int n, double *out) {
    const double rho = 7.0;
    sdc_np_linspace(0.0, 1.0, n, out); /* the ramp */
    const double min_inv_rho = pow(sigma_min, 1.0 / rho);
    const double max_inv_rho = pow(sigma_max, 1.0 / rho);
    const double diff = min_inv_rho - max_inv_rho;
    for (int i = 0; i < n; i++) {
        double v = out[i] * diff;
        v = max_inv_rho + v;
        out[i] = pow(v, rho);
    }
}

double sdc_integrate_poly(double (*f)(double x, const void *user), const void *user, double a, double b) {
    /* nodes 0, +-sqrt(3/5); weights 8/9, 5/9 on [-1, 1] */
    const double half = 0.5 * (b - a), mid = 0.5 * (a + b);
    const double r = sqrt(0.6);
    const double sum = 8.0 / 9.0 * f(mid, user) + 5.0 / 9.0 * (f(mid - half * r, user) + f(mid + half * r, user));
    return half * sum;
}
