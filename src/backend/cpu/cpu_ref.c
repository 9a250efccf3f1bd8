/* cpu_ref.c - reference compute ops (see cpu_ref.h): the definitions from backend.h as plain loops,
 * single-threaded, every sum and every activation in double, rounded to f32 once at the end. A matrix
 * weight kept in a storage dtype is widened one row at a time; a product with a weight marked matmul_bf16
 * rounds both operands to bf16 first (the values the bf16 kernels multiply).
 * Data-movement references are in cpu_ref_data.c. */
#include <math.h>
#include <stdlib.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ref.h"
#include "core/quant.h"

/* NULL with sticky SDC_ERR_OOM (the caller returns) */
#define SCRATCH_DOUBLES(be, n, what) ((double *)SDC_CPU_SCRATCH((be), (size_t)(n) * sizeof(double), (what)))

/* v rounded to bf16 (a product with a weight marked matmul_bf16 takes both operands so) */
static float bf16_value(float v) { return sdc_bf16_to_f32(sdc_f32_to_bf16(v)); }

/* Row r of the matrix weight w (rows of K) widened to f32 into dst[K], rounded to bf16 for a bf16 product. */
static void weight_row(const sdc_tensor *w, int64_t r, int64_t K, float *dst) {
    const size_t row_bytes = sdc_dtype_row_bytes(w->dtype, K);
    int rc = sdc_dequant_row(w->dtype, (const char *)w->data + (size_t)r * row_bytes, dst, K);
    assert(rc == 0 && row_bytes > 0); /* a dtype the CPU's weight_dtype keeps */
    (void)rc;
    for (int64_t k = 0; w->matmul_bf16 && k < K; k++) dst[k] = bf16_value(dst[k]);
}

/* The activation operand of a product with w: x's data, or for a bf16 product a copy rounded to bf16
 * (scratch of n floats: free it with sdc_cpu_scratch_free when it is not x's). NULL on no memory. */
static const float *x_operand(sdc_backend *be, const sdc_tensor *w, const sdc_tensor *x, size_t n) {
    const float *xd = sdc_cpu_f32(x);
    if (!w->matmul_bf16) return xd;
    float *r = SDC_CPU_SCRATCH(be, n * sizeof(float), "reference bf16 operand");
    for (size_t i = 0; r && i < n; i++) r[i] = bf16_value(xd[i]);
    return r;
}
static void x_operand_free(sdc_backend *be, const sdc_tensor *x, const float *xd, size_t n) {
    if (xd != x->data) sdc_cpu_scratch_free(be, (void *)xd, n * sizeof(float));
}

void sdc_cpu_ref_linear(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b) {
    const int64_t K = x->ne[x->ndim - 1], N = w->ne[0], M = sdc_tensor_rows(x);
    const float *bd = b ? sdc_cpu_f32(b) : NULL;                                                               // [N]
    float *yd = sdc_cpu_f32(y);                                                                                // [M, N]
    const float *xd = x_operand(be, w, x, (size_t)(M * K));                                                    // [M, K]
    float *wr = xd ? SDC_CPU_SCRATCH(be, (size_t)K * sizeof(float), "sdc_cpu_ref_linear weight row") : NULL;   // [K]
    if (!wr) {
        if (xd) x_operand_free(be, x, xd, (size_t)(M * K));
        return;
    }
    for (int64_t n = 0; n < N; n++) {
        weight_row(w, n, K, wr);   // w[n, :]
        for (int64_t m = 0; m < M; m++) {
            double acc = 0;
            for (int64_t k = 0; k < K; k++) acc += (double)xd[m * K + k] * wr[k];
            yd[m * N + n] = (float)(acc + (bd ? bd[n] : 0.0));
        }
    }
    sdc_cpu_scratch_free(be, wr, (size_t)K * sizeof(float));
    x_operand_free(be, x, xd, (size_t)(M * K));
}

void sdc_cpu_ref_linear_act(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                            const sdc_tensor *b, sdc_unary_op act) {
    sdc_cpu_ref_linear(be, y, x, w, b);
    sdc_cpu_ref_unary(be, y, y, act);
}

void sdc_cpu_ref_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                        int stride, int pad) {
    const int64_t B = x->ne[0], Ci = x->ne[1], H = x->ne[2], W = x->ne[3];
    const int64_t Co = w->ne[0], KH = w->ne[2], KW = w->ne[3], Ho = y->ne[2], Wo = y->ne[3], K = Ci * KH * KW;
    const size_t nx = (size_t)(B * Ci * H * W);
    const float *bd = b ? sdc_cpu_f32(b) : NULL;                                                 // [Co]
    float *yd = sdc_cpu_f32(y);                                                                  // [B, Co, Ho, Wo]
    const float *xd = x_operand(be, w, x, nx);                                                   // [B, Ci, H, W]
    double *acc = xd ? SCRATCH_DOUBLES(be, Ho * Wo, "sdc_cpu_ref_conv2d accumulators") : NULL;   // [Ho, Wo]
    float *wd = acc ? SDC_CPU_SCRATCH(be, (size_t)K * sizeof(float), "sdc_cpu_ref_conv2d weight row") : NULL;
    if (!wd) {   // [Ci, KH, KW] of one output channel
        sdc_cpu_scratch_free(be, acc, (size_t)(Ho * Wo) * sizeof(double));
        if (xd) x_operand_free(be, x, xd, nx);
        return;
    }
    for (int64_t co = 0; co < Co; co++) {
        weight_row(w, co, K, wd);   // w[co, :, :, :]
        for (int64_t n = 0; n < B; n++) {
            for (int64_t i = 0; i < Ho * Wo; i++) acc[i] = 0;
            /* acc[oh, ow] += w[co, ci, kh, kw] * x[n, ci, oh*stride - pad + kh, ow*stride - pad + kw]
             * over the (oh, ow) whose input position is inside the image (zero padding) */
            for (int64_t ci = 0; ci < Ci; ci++)
                for (int64_t kh = 0; kh < KH; kh++)
                    for (int64_t kw = 0; kw < KW; kw++) {
                        const double wv = wd[(ci * KH + kh) * KW + kw];
                        const float *xp = xd + (n * Ci + ci) * H * W;
                        int64_t oh0, oh1, ow0, ow1;
                        sdc_cpu_conv_range(Ho, H, stride, pad, kh, &oh0, &oh1);
                        sdc_cpu_conv_range(Wo, W, stride, pad, kw, &ow0, &ow1);
                        for (int64_t oh = oh0; oh < oh1; oh++) {
                            const float *xrow = xp + (oh * stride - pad + kh) * W;
                            for (int64_t ow = ow0; ow < ow1; ow++)
                                acc[oh * Wo + ow] += wv * xrow[ow * stride - pad + kw];
                        }
                    }
            for (int64_t i = 0; i < Ho * Wo; i++)
                yd[(n * Co + co) * Ho * Wo + i] = (float)(acc[i] + (bd ? bd[co] : 0.0));
        }
    }
    sdc_cpu_scratch_free(be, wd, (size_t)K * sizeof(float));
    sdc_cpu_scratch_free(be, acc, (size_t)(Ho * Wo) * sizeof(double));
    x_operand_free(be, x, xd, nx);
}

/* softmax(scale * q_h k_h^T (+ bias[h]) (+ causal mask)) v_h; bias [H, T, S] or NULL */
static void ref_attention(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v,
                          const sdc_tensor *bias, int n_heads, int causal, double scale) {
    const int64_t B = q->ne[0], T = q->ne[1], C = q->ne[2], S = k->ne[1], D = C / n_heads;
    const float *qd = sdc_cpu_f32(q);                                     // [B, T, H*D]
    const float *kd = sdc_cpu_f32(k);                                     // [B, S, H*D]
    const float *vd = sdc_cpu_f32(v);                                     // [B, S, H*D]
    const float *bd = bias ? sdc_cpu_f32(bias) : NULL;                    // [H, T, S]
    float *yd = sdc_cpu_f32(y);                                           // [B, T, H*D]
    double *p = SCRATCH_DOUBLES(be, S, "sdc_cpu_ref_attention scores");   // [S] of one query
    double *o = SCRATCH_DOUBLES(be, D, "sdc_cpu_ref_attention output");   // [D] of one query and head
    if (!p || !o) {
        sdc_cpu_scratch_free(be, o, (size_t)D * sizeof(double));
        sdc_cpu_scratch_free(be, p, (size_t)S * sizeof(double));
        return;
    }
    for (int64_t n = 0; n < B; n++)
        for (int64_t h = 0; h < n_heads; h++)
            for (int64_t t = 0; t < T; t++) {
                const float *qt = qd + (n * T + t) * C + h * D;
                const float *bt = bd ? bd + (h * T + t) * S : NULL;
                const int64_t n_keys = causal ? t + 1 : S;
                double mx = -INFINITY, sum = 0;
                for (int64_t s = 0; s < n_keys; s++) {
                    const float *ks = kd + (n * S + s) * C + h * D;
                    double dot = 0;
                    for (int64_t d = 0; d < D; d++) dot += (double)qt[d] * ks[d];
                    p[s] = dot * scale + (bt ? bt[s] : 0.0);
                    if (p[s] > mx) mx = p[s];
                }
                for (int64_t s = 0; s < n_keys; s++) {
                    p[s] = exp(p[s] - mx);
                    sum += p[s];
                }
                for (int64_t d = 0; d < D; d++) o[d] = 0;
                for (int64_t s = 0; s < n_keys; s++) {
                    const float *vs = vd + (n * S + s) * C + h * D;
                    for (int64_t d = 0; d < D; d++) o[d] += p[s] * vs[d];
                }
                for (int64_t d = 0; d < D; d++) yd[(n * T + t) * C + h * D + d] = (float)(o[d] / sum);
            }
    sdc_cpu_scratch_free(be, o, (size_t)D * sizeof(double));
    sdc_cpu_scratch_free(be, p, (size_t)S * sizeof(double));
}

void sdc_cpu_ref_attention(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                           const sdc_tensor *v, int n_heads, int causal) {
    ref_attention(be, y, q, k, v, NULL, n_heads, causal, 1.0 / sqrt((double)(q->ne[2] / n_heads)));
}

void sdc_cpu_ref_attention_bias(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                                const sdc_tensor *v, const sdc_tensor *bias, int n_heads, float scale) {
    ref_attention(be, y, q, k, v, bias, n_heads, 0, scale);
}

/* Normalises n values of x (stride 1) with their biased mean and variance into y, as doubles
 * through the per-element affine (w_of(i), b_of(i)) given by channel index i / per_channel. */
static void ref_normalize(float *y, const float *x, int64_t n, int64_t per_channel, const float *w, const float *b,
                          double eps, int silu) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= (double)n;
    const double rstd = 1.0 / sqrt(var + eps);
    for (int64_t i = 0; i < n; i++) {
        const int64_t c = i / per_channel;
        double v = ((double)x[i] - mean) * rstd * w[c] + b[c];
        if (silu) v = v / (1.0 + exp(-v));
        y[i] = (float)v;
    }
}

void sdc_cpu_ref_layer_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                            const sdc_tensor *b, float eps) {
    const int64_t C = x->ne[x->ndim - 1], R = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x);   // [R, C]
    float *yd = sdc_cpu_f32(y);         // [R, C]
    for (int64_t r = 0; r < R; r++) ref_normalize(yd + r * C, xd + r * C, C, 1, sdc_cpu_f32(w), sdc_cpu_f32(b), eps, 0);
}

void sdc_cpu_ref_rms_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, float eps) {
    const int64_t C = x->ne[x->ndim - 1], R = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x);   // [R, C]
    const float *wd = sdc_cpu_f32(w);   // [C]
    float *yd = sdc_cpu_f32(y);         // [R, C]
    for (int64_t r = 0; r < R; r++) {
        const float *xr = xd + r * C;
        double sq = 0;
        for (int64_t c = 0; c < C; c++) sq += (double)xr[c] * xr[c];
        const double rstd = 1.0 / sqrt(sq / (double)C + eps);
        for (int64_t c = 0; c < C; c++) yd[r * C + c] = (float)(xr[c] * rstd * wd[c]);
    }
}

void sdc_cpu_ref_group_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                            const sdc_tensor *b, int groups, float eps, int silu) {
    const int64_t B = x->ne[0], C = x->ne[1], HW = sdc_tensor_nelem(x) / (B * C), Cg = C / groups;
    const float *xd = sdc_cpu_f32(x);   // [B, G, C/G, HW]: a group is contiguous
    float *yd = sdc_cpu_f32(y);
    for (int64_t n = 0; n < B; n++)
        for (int64_t g = 0; g < groups; g++) {
            const int64_t off = (n * C + g * Cg) * HW;
            ref_normalize(yd + off, xd + off, Cg * HW, HW, sdc_cpu_f32(w) + g * Cg, sdc_cpu_f32(b) + g * Cg, eps, silu);
        }
}

static double ref_unary1(double x, sdc_unary_op op) {
    switch (op) {
    case SDC_UNARY_SILU: return x / (1.0 + exp(-x));
    case SDC_UNARY_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case SDC_UNARY_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(sqrt(2.0 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
    case SDC_UNARY_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
    default: assert(!"unknown unary op"); return 0;
    }
}

void sdc_cpu_ref_unary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op) {
    const int64_t n = sdc_tensor_nelem(x);
    const float *xd = sdc_cpu_f32(x);
    float *yd = sdc_cpu_f32(y);
    for (int64_t i = 0; i < n; i++) yd[i] = (float)ref_unary1(xd[i], op);
}

void sdc_cpu_ref_binary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op) {
    const int64_t *an = a->ne, *bn = b->ne;   // 4-D (unused trailing dims are 1)
    const float *ad = sdc_cpu_f32(a), *bd = sdc_cpu_f32(b);
    float *yd = sdc_cpu_f32(y);
    for (int64_t i0 = 0; i0 < an[0]; i0++)
        for (int64_t i1 = 0; i1 < an[1]; i1++)
            for (int64_t i2 = 0; i2 < an[2]; i2++)
                for (int64_t i3 = 0; i3 < an[3]; i3++) {
                    const int64_t ia = ((i0 * an[1] + i1) * an[2] + i2) * an[3] + i3;
                    const int64_t j0 = bn[0] == 1 ? 0 : i0, j1 = bn[1] == 1 ? 0 : i1;
                    const int64_t j2 = bn[2] == 1 ? 0 : i2, j3 = bn[3] == 1 ? 0 : i3;
                    const float av = ad[ia], bv = bd[((j0 * bn[1] + j1) * bn[2] + j2) * bn[3] + j3];
                    yd[ia] = op == SDC_BINARY_ADD ? av + bv : op == SDC_BINARY_SUB ? av - bv : av * bv;
                }
}

void sdc_cpu_ref_scale(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, float s) {
    const int64_t n = sdc_tensor_nelem(x);
    const float *xd = sdc_cpu_f32(x);
    float *yd = sdc_cpu_f32(y);
    for (int64_t i = 0; i < n; i++) yd[i] = xd[i] * s;
}

void sdc_cpu_ref_geglu(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    const int64_t N = y->ne[y->ndim - 1], R = sdc_tensor_rows(y);
    const float *xd = sdc_cpu_f32(x);   // [R, 2N]: value half, then gate half
    float *yd = sdc_cpu_f32(y);         // [R, N]
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < N; i++)
            yd[r * N + i] = (float)(xd[r * 2 * N + i] * ref_unary1(xd[r * 2 * N + N + i], SDC_UNARY_GELU));
}

void sdc_cpu_ref_rope(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *cs, const sdc_tensor *sn,
                      int n_heads) {
    const int64_t B = x->ne[0], T = x->ne[1], C = x->ne[2], half = C / n_heads / 2;
    const float *xd = sdc_cpu_f32(x);    // [B, T, H, D/2, 2]
    const float *cd = sdc_cpu_f32(cs);   // [T, D/2]
    const float *sd = sdc_cpu_f32(sn);   // [T, D/2]
    float *yd = sdc_cpu_f32(y);          // [B, T, H, D/2, 2], may be xd
    for (int64_t n = 0; n < B; n++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < n_heads; h++)
                for (int64_t i = 0; i < half; i++) {
                    const int64_t e = (n * T + t) * C + (h * half + i) * 2;
                    const double x0 = xd[e], x1 = xd[e + 1], c = cd[t * half + i], s = sd[t * half + i];
                    yd[e] = (float)(x0 * c - x1 * s);
                    yd[e + 1] = (float)(x1 * c + x0 * s);
                }
}

void sdc_cpu_ref_add_gated(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *a,
                           const sdc_tensor *g) {
    const int64_t T = x->ne[1], C = x->ne[2], R = sdc_tensor_rows(x);
    const float *xd = sdc_cpu_f32(x), *ad = sdc_cpu_f32(a), *gd = sdc_cpu_f32(g);
    float *yd = sdc_cpu_f32(y);   // may be xd
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < C; i++)
            yd[r * C + i] = (float)((double)xd[r * C + i] + (double)ad[r * C + i] * gd[r / T * C + i]);
}

void sdc_cpu_ref_layer_norm_mod(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *shift,
                                const sdc_tensor *scale, float eps) {
    const int64_t B = x->ne[0], T = x->ne[1], C = x->ne[2];
    const float *xd = sdc_cpu_f32(x);        // [B, T, C]
    const float *shd = sdc_cpu_f32(shift);   // [B, C]
    const float *scd = sdc_cpu_f32(scale);   // [B, C]
    float *yd = sdc_cpu_f32(y);              // [B, T, C]
    for (int64_t n = 0; n < B; n++)
        for (int64_t t = 0; t < T; t++) {
            const float *xr = xd + (n * T + t) * C;
            double mean = 0, var = 0;
            for (int64_t c = 0; c < C; c++) mean += xr[c];
            mean /= (double)C;
            for (int64_t c = 0; c < C; c++) var += ((double)xr[c] - mean) * ((double)xr[c] - mean);
            var /= (double)C;
            const double rstd = 1.0 / sqrt(var + eps);
            for (int64_t c = 0; c < C; c++)
                yd[(n * T + t) * C + c] =
                    (float)(((double)xr[c] - mean) * rstd * (1.0 + scd[n * C + c]) + shd[n * C + c]);
        }
}

void sdc_cpu_ref_group_norm_stats(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int groups) {
    const int64_t B = x->ne[0], C = x->ne[1], HW = sdc_tensor_nelem(x) / (B * C), n = C / groups * HW;
    const float *xd = sdc_cpu_f32(x);   // [B, G, C/G, HW]: a group is contiguous
    float *yd = sdc_cpu_f32(y);         // [B, G, 4]
    for (int64_t bg = 0; bg < B * groups; bg++) {
        double s = 0, q = 0;
        for (int64_t i = 0; i < n; i++) {
            s += xd[bg * n + i];
            q += (double)xd[bg * n + i] * xd[bg * n + i];
        }
        yd[bg * 4 + 0] = (float)s;
        yd[bg * 4 + 1] = (float)(s - (double)(float)s);
        yd[bg * 4 + 2] = (float)q;
        yd[bg * 4 + 3] = (float)(q - (double)(float)q);
    }
}

void sdc_cpu_ref_group_norm_apply(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *stats,
                                  const sdc_tensor *w, const sdc_tensor *b, int groups, int silu) {
    const int64_t B = x->ne[0], C = x->ne[1], HW = sdc_tensor_nelem(x) / (B * C), Cg = C / groups;
    const float *xd = sdc_cpu_f32(x), *sd = sdc_cpu_f32(stats);   // [B, C, HW], [B, G, 2]
    const float *wd = sdc_cpu_f32(w), *bd = sdc_cpu_f32(b);       // [C]
    float *yd = sdc_cpu_f32(y);
    for (int64_t n = 0; n < B; n++)
        for (int64_t c = 0; c < C; c++) {
            const double mean = sd[(n * groups + c / Cg) * 2], rstd = sd[(n * groups + c / Cg) * 2 + 1];
            for (int64_t i = 0; i < HW; i++) {
                double v = ((double)xd[(n * C + c) * HW + i] - mean) * rstd * wd[c] + bd[c];
                if (silu) v = v / (1.0 + exp(-v));
                yd[(n * C + c) * HW + i] = (float)v;
            }
        }
}
