/* numerics.h - the few torch and numpy routines diffusers' schedulers are built from, reproduced to
 * the last bit where that is known (internal to src/sampler). */
#ifndef SDC_SAMPLER_NUMERICS_H
#define SDC_SAMPLER_NUMERICS_H

#include <stddef.h>

/* torch.linspace(start, end, n, dtype=float32) on CPU: start and end are rounded to float, the step is
 * (end - start) / (n - 1) in float, the first half is start + step*i and the second half
 * end - step*(n-1-i), each a fused multiply-add (one rounding): bit-exact with torch 2.x on x86-64. */
void sdc_torch_linspace_f32(double start, double end, int n, float *out);
/* torch.cumprod on CPU for float32: a double accumulator, each output rounded to float. */
void sdc_torch_cumprod_f32(const float *x, int n, float *out);

/* np.linspace(start, stop, num) in double: i*step + start (two roundings), last element = stop. */
void sdc_np_linspace(double start, double stop, int num, double *out);
/* np.arange(start, stop, step) in double: its length, and start + i*delta with
 * delta = (start + step) - start. out may be NULL to ask only for the length. */
int sdc_np_arange(double start, double stop, double step, double *out);
/* np.round: half to even. */
double sdc_np_round(double x);
/* np.interp(x, arange(n), fp) with fp in float32: exact at the knots, else slope*(x - j) + fp[j]. */
double sdc_np_interp_index(double x, const float *fp, int n);

/* diffusers' _sigma_to_t: the fractional training timestep of sigma, by linear interpolation in
 * log-sigma. log_sigmas[n] is the float32 np.log of the training sigmas (ascending in t). The weight's
 * numerator is float64 and its denominator a float32 difference, as numpy computes them. */
double sdc_sigma_to_t(double sigma, const float *log_sigmas, int n);
/* diffusers' _convert_to_karras: n sigmas from sigma_max down to sigma_min with rho = 7, in double. */
void sdc_karras_sigmas(double sigma_min, double sigma_max, int n, double *out);

/* Integral over [a, b] of a polynomial of degree <= 5 given as a callback: 3-point Gauss-Legendre in
 * double, exact for that degree (what scipy.integrate.quad's 21-point Gauss-Kronrod returns for it). */
double sdc_integrate_poly(double (*f)(double x, const void *user), const void *user, double a, double b);

#endif
