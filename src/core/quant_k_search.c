/* quant_k_search.c - quantization to the K-quants (Q2_K ... Q6_K) with a simple scale search of sdc's own
 * (not ggml's iterative make_qkx2/qx_quants search; core/quant.h states the error it reaches).
 *
 * Per super-block of 256: every sub-block (16 or 32 elements) gets its ideal step (range / levels) and,
 * for the asymmetric types, its offset -min(0, min x); the super-block scales d (and dmin) map the largest
 * step (offset) to the top sub-scale code and are rounded to f16; each sub-scale code is then the best of
 * round(step / d) and its two neighbours, judged by the squared error of the values exactly as
 * dequantization computes them; levels are round-to-nearest, clamped. Byte layouts: quant_k.c. */
#include <math.h>

#include "core/quant_internal.h"

/* Levels q[0..n) = clamp(round((x + ml) / dl), lo, hi) (0 when dl is 0); returns the squared error of
 * dl * q - ml against x. */
static float fit_levels(const float *x, int n, float dl, float ml, int lo, int hi, int *q) {
    const float inv = dl != 0.0f ? 1.0f / dl : 0.0f;
    float err = 0.0f;
    for (int i = 0; i < n; i++) {
        float t = x[i] + ml;
        long r = lroundf(t * inv);
        int v = r < lo ? lo : r > hi ? hi : (int)r;
        float p = dl * (float)v;
        float e = p - ml - x[i];
        q[i] = v;
        err += e * e;
    }
    return err;
}

/* The sub-scale code in [cmin, cmax] near step / d with the least error; writes its levels into q. */
static int pick_code(const float *x, int n, float step, float d, int cmin, int cmax, float ml, int lo, int hi, int *q) {
    long base = d != 0.0f ? lroundf(step / d) : 0;
    int best = 0;
    float best_err = INFINITY;
    for (long c = base - 1; c <= base + 1; c++) {
        if (c < cmin || c > cmax) continue;
        float err = fit_levels(x, n, d * (float)c, ml, lo, hi, q);
        if (err < best_err) {
            best_err = err;
            best = (int)c;
        }
    }
    fit_levels(x, n, d * (float)best, ml, lo, hi, q);
    return best;
}

static int clamp_code(long c, int hi) { return c < 0 ? 0 : c > hi ? hi : (int)c; }

/* The element of largest magnitude, with its sign (first on ties). */
static float signed_absmax(const float *x, int n) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (amax < fabsf(x[i])) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    return max;
}

/* Asymmetric super-block (Q2_K, Q4_K, Q5_K): ng groups of gs elements, levels [0, top], codes [0, cmax]
 * for both scales and mins. Writes sc[], m[], q[256]; returns d and *dmin as stored (f16-rounded). */
static float asym_block(const float *x, int ng, int gs, int top, int cmax, int *sc, int *m, int *q, float *dmin_out) {
    float step[16], off[16], max_step = 0.0f, max_off = 0.0f;
    for (int g = 0; g < ng; g++) {
        const float *xg = x + g * gs;
        float mn = 0.0f, mx = xg[0];
        for (int i = 0; i < gs; i++) {
            mn = xg[i] < mn ? xg[i] : mn;
            mx = xg[i] > mx ? xg[i] : mx;
        }
        off[g] = -mn;
        step[g] = mx + off[g] > 0.0f ? (mx + off[g]) / (float)top : 0.0f;
        max_step = step[g] > max_step ? step[g] : max_step;
        max_off = off[g] > max_off ? off[g] : max_off;
    }
    const float d = sdc_f16_to_f32(sdc_f32_to_f16(max_step / (float)cmax));
    const float dmin = sdc_f16_to_f32(sdc_f32_to_f16(max_off / (float)cmax));
    for (int g = 0; g < ng; g++) {
        m[g] = dmin != 0.0f ? clamp_code(lroundf(off[g] / dmin), cmax) : 0;
        sc[g] = pick_code(x + g * gs, gs, step[g], d, 0, cmax, dmin * (float)m[g], 0, top, q + g * gs);
    }
    *dmin_out = dmin;
    return d;
}

/* Symmetric super-block (Q3_K, Q6_K): 16 groups of 16, levels [lo, hi] (lo = -hi - 1), signed codes
 * [-cmax - 1, cmax]. Writes sc[] and q[256]; returns d as stored. */
static float sym_block(const float *x, int lo, int hi, int cmax, int *sc, int *q) {
    float step[16], max_step = 0.0f;
    for (int g = 0; g < 16; g++) {
        step[g] = signed_absmax(x + g * 16, 16) / (float)lo; /* the largest magnitude maps to lo */
        max_step = fabsf(step[g]) > max_step ? fabsf(step[g]) : max_step;
    }
    const float d = sdc_f16_to_f32(sdc_f32_to_f16(max_step / (float)cmax));
    for (int g = 0; g < 16; g++)
        sc[g] = pick_code(x + g * 16, 16, step[g], d, -cmax - 1, cmax, 0.0f, lo, hi, q + g * 16);
    return d;
}

void sdc_qz_q2_k(const float *src, uint8_t *dst, int64_t nb) {
    int sc[16], m[16], q[SDC_QK_K];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK_K, dst += 84) {
        float dmin, d = asym_block(src, 16, 16, 3, 15, sc, m, q, &dmin);
        memset(dst, 0, 84);
        for (int g = 0; g < 16; g++) {
            dst[g] = (uint8_t)(sc[g] | m[g] << 4);
            uint8_t *qs = dst + 16 + (g / 8) * 32 + (g % 2) * 16;
            const int shift = ((g / 2) % 4) * 2;
            for (int l = 0; l < 16; l++) qs[l] |= (uint8_t)(q[g * 16 + l] << shift);
        }
        sdc_q_wr_f16(dst + 80, d);
        sdc_q_wr_f16(dst + 82, dmin);
    }
}

void sdc_qz_q3_k(const float *src, uint8_t *dst, int64_t nb) {
    int sc[16], q[SDC_QK_K];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK_K, dst += 110) {
        float d = sym_block(src, -4, 3, 31, sc, q);
        memset(dst, 0, 110);
        uint8_t *hmask = dst, *qs = dst + 32, *scales = dst + 96;
        for (int g = 0; g < 16; g++) {
            int u = sc[g] + 32;
            scales[g % 8] |= (uint8_t)((u & 0xf) << (g < 8 ? 0 : 4));
            scales[8 + g % 4] |= (uint8_t)((u >> 4) << (2 * (g / 4)));
        }
        for (int e = 0; e < SDC_QK_K; e++) {
            int u = q[e] + 4, half = e / 128, s = (e / 32) % 4, l = e % 32;
            qs[half * 32 + l] |= (uint8_t)((u & 3) << (2 * s));
            hmask[l] |= (uint8_t)((u >> 2) << (half * 4 + s));
        }
        sdc_q_wr_f16(dst + 108, d);
    }
}

/* Q4_K/Q5_K's 12 scale bytes from 8 six-bit scales and mins (the inverse of quant_k.c's k_scale_min). */
static void pack_k_scales(const int *sc, const int *m, uint8_t *s) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)((m[j] & 63) | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 0xf) | (m[j + 4] & 0xf) << 4);
    }
}

void sdc_qz_q4_k(const float *src, uint8_t *dst, int64_t nb) {
    int sc[8], m[8], q[SDC_QK_K];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK_K, dst += 144) {
        float dmin, d = asym_block(src, 8, 32, 15, 63, sc, m, q, &dmin);
        memset(dst, 0, 144);
        sdc_q_wr_f16(dst, d);
        sdc_q_wr_f16(dst + 2, dmin);
        pack_k_scales(sc, m, dst + 4);
        for (int j = 0; j < 8; j++) {
            uint8_t *qs = dst + 16 + (j / 2) * 32;
            for (int l = 0; l < 32; l++) qs[l] |= (uint8_t)(q[j * 32 + l] << (4 * (j % 2)));
        }
    }
}

void sdc_qz_q5_k(const float *src, uint8_t *dst, int64_t nb) {
    int sc[8], m[8], q[SDC_QK_K];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK_K, dst += 176) {
        float dmin, d = asym_block(src, 8, 32, 31, 63, sc, m, q, &dmin);
        memset(dst, 0, 176);
        sdc_q_wr_f16(dst, d);
        sdc_q_wr_f16(dst + 2, dmin);
        pack_k_scales(sc, m, dst + 4);
        uint8_t *qh = dst + 16;
        for (int j = 0; j < 8; j++) {
            uint8_t *qs = dst + 48 + (j / 2) * 32;
            for (int l = 0; l < 32; l++) {
                int v = q[j * 32 + l];
                qs[l] |= (uint8_t)((v & 0xf) << (4 * (j % 2)));
                qh[l] |= (uint8_t)((v >> 4) << j);
            }
        }
    }
}

void sdc_qz_q6_k(const float *src, uint8_t *dst, int64_t nb) {
    int sc[16], q[SDC_QK_K];
    for (int64_t b = 0; b < nb; b++, src += SDC_QK_K, dst += 210) {
        float d = sym_block(src, -32, 31, 127, sc, q);
        memset(dst, 0, 210);
        uint8_t *ql = dst, *qh = dst + 128;
        for (int e = 0; e < SDC_QK_K; e++) {
            int u = q[e] + 32, half = e / 128, r = e % 128;
            ql[half * 64 + r % 64] |= (uint8_t)((u & 0xf) << (4 * (r / 64)));
            qh[half * 32 + r % 32] |= (uint8_t)((u >> 4) << (2 * (r / 32)));
        }
        for (int g = 0; g < 16; g++) dst[192 + g] = (uint8_t)(int8_t)sc[g];
        sdc_q_wr_f16(dst + 208, d);
    }
}
