/* cpu_elementwise.c - unary activations, broadcast binary ops, scale, GEGLU and rotary embedding.
 * Every output element (a rotary pair) is computed on its own (no reductions), split over threads in
 * fixed static chunks. */
#include <math.h>

#include "backend/cpu/cpu_backend.h"

float sdc_cpu_silu(float x) { return x / (1.0f + expf(-x)); }

float sdc_cpu_gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

static float gelu_tanh(float x) {
    const float k = 0.79788456080286536f;   // sqrt(2 / pi)
    return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

static float quick_gelu(float x) { return x / (1.0f + expf(-1.702f * x)); }

void sdc_cpu_unary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op) {
    const int64_t n = sdc_tensor_nelem(x);
    const float *xd = sdc_cpu_f32(x);
    float *yd = sdc_cpu_f32(y);   // may be xd
    float (*f)(float) = op == SDC_UNARY_SILU ? sdc_cpu_silu
        : op == SDC_UNARY_GELU               ? sdc_cpu_gelu
        : op == SDC_UNARY_GELU_TANH          ? gelu_tanh
                                             : quick_gelu;
    assert((unsigned)op < SDC_UNARY_COUNT);
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (n >= SDC_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) yd[i] = f(xd[i]);
}

static void binary_row(float *y, const float *a, const float *b, int64_t n, int b_scalar, sdc_binary_op op) {
    const float s = b[0];
    switch (op) {
    case SDC_BINARY_ADD:
        if (b_scalar)
            for (int64_t i = 0; i < n; i++) y[i] = a[i] + s;
        else
            for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
        break;
    case SDC_BINARY_SUB:
        if (b_scalar)
            for (int64_t i = 0; i < n; i++) y[i] = a[i] - s;
        else
            for (int64_t i = 0; i < n; i++) y[i] = a[i] - b[i];
        break;
    case SDC_BINARY_MUL:
        if (b_scalar)
            for (int64_t i = 0; i < n; i++) y[i] = a[i] * s;
        else
            for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
        break;
    default: assert(!"unknown binary op");
    }
}

/* Rows of a (its innermost dimension) are paired with rows of b through b's broadcast strides. A
 * same-shape b is one long row, cut into fixed chunks for the threads. */
void sdc_cpu_binary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op) {
    const float *ad = sdc_cpu_f32(a), *bd = sdc_cpu_f32(b);
    float *yd = sdc_cpu_f32(y);               // may be ad
    const int64_t *an = a->ne, *bn = b->ne;   // 4-D: unused trailing dims are 1
    if (sdc_tensor_same_shape(a, b)) {
        const int64_t n = sdc_tensor_nelem(a), chunk = 4096, n_chunks = (n + chunk - 1) / chunk;
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (n >= SDC_CPU_PAR_MIN)
        for (int64_t c = 0; c < n_chunks; c++) {
            const int64_t i0 = c * chunk, len = n - i0 < chunk ? n - i0 : chunk;
            binary_row(yd + i0, ad + i0, bd + i0, len, 0, op);
        }
        return;
    }
    /* strides of b in elements, 0 along broadcast dims */
    const int64_t bs2 = bn[2] == 1 ? 0 : bn[3], bs1 = bn[1] == 1 ? 0 : bn[2] * bn[3];
    const int64_t bs0 = bn[0] == 1 ? 0 : bn[1] * bn[2] * bn[3];
    const int64_t rows = an[0] * an[1] * an[2], L = an[3];
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (rows * L >= SDC_CPU_PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t i2 = r % an[2], i1 = r / an[2] % an[1], i0 = r / (an[2] * an[1]);
        binary_row(yd + r * L, ad + r * L, bd + i0 * bs0 + i1 * bs1 + i2 * bs2, L, bn[3] == 1, op);
    }
}

void sdc_cpu_scale(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, float s) {
    const int64_t n = sdc_tensor_nelem(x);
    const float *xd = sdc_cpu_f32(x);
    float *yd = sdc_cpu_f32(y);   // may be xd
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (n >= SDC_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) yd[i] = xd[i] * s;
}

void sdc_cpu_geglu(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    const int64_t N = y->ne[y->ndim - 1], R = sdc_tensor_rows(y);
    const float *xd = sdc_cpu_f32(x);   // [R, 2N]: value half, then gate half
    float *yd = sdc_cpu_f32(y);         // [R, N]
#pragma omp parallel for num_threads(be->n_threads) schedule(static) collapse(2) if (R * N >= SDC_CPU_PAR_MIN)
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < N; i++) yd[r * N + i] = xd[r * 2 * N + i] * sdc_cpu_gelu(xd[r * 2 * N + N + i]);
}

void sdc_cpu_rope(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *cs, const sdc_tensor *sn,
                  int n_heads) {
    const int64_t T = x->ne[1], C = x->ne[2], R = sdc_tensor_rows(x), half = C / n_heads / 2;
    const float *xd = sdc_cpu_f32(x);    // [B*T, H, D/2, 2]
    const float *cd = sdc_cpu_f32(cs);   // [T, D/2]
    const float *sd = sdc_cpu_f32(sn);   // [T, D/2]
    float *yd = sdc_cpu_f32(y);          // [B*T, H, D/2, 2], may be xd
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (R * C >= SDC_CPU_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {   // row r is position r % T
        const float *c = cd + r % T * half, *s = sd + r % T * half;
        for (int64_t h = 0; h < n_heads; h++) {
            const float *xp = xd + r * C + h * 2 * half;
            float *yp = yd + r * C + h * 2 * half;
            for (int64_t i = 0; i < half; i++) {
                const float x0 = xp[2 * i], x1 = xp[2 * i + 1];
                yp[2 * i] = x0 * c[i] - x1 * s[i];
                yp[2 * i + 1] = x1 * c[i] + x0 * s[i];
            }
        }
    }
}

/* y = x + a g per element, g broadcast over the rows of each batch (f32: the bits of a multiply, then an add). */
void sdc_cpu_add_gated(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *a, const sdc_tensor *g) {
    const int64_t T = x->ne[1], C = x->ne[2], R = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x), *ad = sdc_cpu_f32(a), *gd = sdc_cpu_f32(g);   // [B*T, C], [B*T, C], [B, C]
    float *yd = sdc_cpu_f32(y);                                                     // [B*T, C], may be xd
#pragma omp parallel for num_threads(be->n_threads) schedule(static) if (R * C >= SDC_CPU_PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *gr = gd + r / T * C;
        for (int64_t i = 0; i < C; i++) {
            const float t = ad[r * C + i] * gr[i];
            yd[r * C + i] = xd[r * C + i] + t;
        }
    }
}
