/* quant_k.c - dequantization of the 256-element super-block types: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS.
 *
 * Layouts (bytes, in order):
 *   Q2_K (84):  scales[16] (low nibble: scale, high: min, per 16 elements), qs[64] (2 bits), f16 d, f16 dmin
 *   Q3_K (110): hmask[32] (bit 3 of each level, set = no -4 offset), qs[64] (2 bits), scales[12] (16 6-bit
 *               signed scales, offset 32), f16 d
 *   Q4_K (144): f16 d, f16 dmin, scales[12] (8 6-bit scales and 8 6-bit mins), qs[128] (nibbles)
 *   Q5_K (176): f16 d, f16 dmin, scales[12], qh[32] (bit 4 of each level), qs[128]
 *   Q6_K (210): ql[128] (low nibbles), qh[64] (2 high bits), scales[16] (int8), f16 d
 *   IQ4_XS (136): f16 d, u16 scales_h, scales_l[4], qs[128] (indices into sdc_iq4nl_values)
 * The 2-bit fields of a 128-element half run over 32 bytes, shift 0, 2, 4, 6 giving elements 0-31, 32-63,
 * ...; nibble fields give 32 (or 64 for Q6_K) elements from the low nibbles, then as many from the high.
 * Each value is computed as gguf.quants.dequantize does: scale = d * sub-scale in f32, then
 * scale * level (minus dmin * sub-min), each product rounded on its own. */
#include "core/quant_internal.h"

void sdc_dq_q2_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 84, dst += SDC_QK_K) {
        const uint8_t *scales = src, *qs = src + 16;
        const float d = sdc_q_rd_f16(src + 80), dmin = sdc_q_rd_f16(src + 82);
        for (int g = 0; g < 16; g++) { /* group of 16: half g / 8, shift (g / 2) % 4, bytes (g % 2) * 16 */
            const float dl = d * (float)(scales[g] & 0xf), ml = dmin * (float)(scales[g] >> 4);
            const uint8_t *q = qs + (g / 8) * 32 + (g % 2) * 16;
            const int shift = ((g / 2) % 4) * 2;
            float *y = dst + g * 16;
            for (int l = 0; l < 16; l++) {
                float v = dl * (float)((q[l] >> shift) & 3);
                y[l] = v - ml;
            }
        }
    }
}

void sdc_dq_q3_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 110, dst += SDC_QK_K) {
        const uint8_t *hmask = src, *qs = src + 32, *sc = src + 96;
        const float d = sdc_q_rd_f16(src + 108);
        for (int g = 0; g < 16; g++) {
            int lo = g < 8 ? sc[g] & 0xf : sc[g - 8] >> 4;
            int hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
            const float dl = d * (float)((lo | hi << 4) - 32);
            const int half = g / 8, s = (g / 2) % 4, l0 = (g % 2) * 16;
            const uint8_t *q = qs + half * 32;
            float *y = dst + g * 16;
            for (int l = l0; l < l0 + 16; l++) {
                int level = (q[l] >> (2 * s)) & 3;
                int h = (hmask[l] >> (half * 4 + s)) & 1;
                y[l - l0] = dl * (float)(level - (h ? 0 : 4));
            }
        }
    }
}

/* Q4_K/Q5_K's 12 scale bytes: 8 sub-block scales and mins of 6 bits each. */
static void k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xf) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

void sdc_dq_q4_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 144, dst += SDC_QK_K) {
        const float d = sdc_q_rd_f16(src), dmin = sdc_q_rd_f16(src + 2);
        const uint8_t *qs = src + 16;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            k_scale_min(src + 4, j, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = qs + (j / 2) * 32;
            const int shift = (j % 2) * 4;
            float *y = dst + j * 32;
            for (int l = 0; l < 32; l++) {
                float v = dl * (float)((q[l] >> shift) & 0xf);
                y[l] = v - ml;
            }
        }
    }
}

void sdc_dq_q5_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 176, dst += SDC_QK_K) {
        const float d = sdc_q_rd_f16(src), dmin = sdc_q_rd_f16(src + 2);
        const uint8_t *qh = src + 16, *qs = src + 48;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            k_scale_min(src + 4, j, &sc, &m);
            const float dl = d * (float)sc, ml = dmin * (float)m;
            const uint8_t *q = qs + (j / 2) * 32;
            const int shift = (j % 2) * 4;
            float *y = dst + j * 32;
            for (int l = 0; l < 32; l++) {
                int level = ((q[l] >> shift) & 0xf) | ((qh[l] >> j) & 1) << 4;
                float v = dl * (float)level;
                y[l] = v - ml;
            }
        }
    }
}

void sdc_dq_q6_k(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 210, dst += SDC_QK_K) {
        const uint8_t *ql = src, *qh = src + 128;
        const int8_t *scales = (const int8_t *)(src + 192);
        const float d = sdc_q_rd_f16(src + 208);
        for (int g = 0; g < 16; g++) { /* element e = half * 128 + r, r in [g % 8 * 16, +16) */
            const float dl = d * (float)scales[g];
            const int half = g / 8, r0 = (g % 8) * 16;
            float *y = dst + g * 16;
            const uint8_t *pl = ql + half * 64 + r0 % 64, *ph = qh + half * 32 + r0 % 32;
            const int sl = 4 * (r0 / 64), sh = 2 * (r0 / 32);
            for (int i = 0; i < 16; i++) {
                int lo = (pl[i] >> sl) & 0xf, hi = (ph[i] >> sh) & 3;
                y[i] = dl * (float)((lo | hi << 4) - 32);
            }
        }
    }
}

void sdc_dq_iq4_xs(const uint8_t *src, float *dst, int64_t nb) {
    for (int64_t b = 0; b < nb; b++, src += 136, dst += SDC_QK_K) {
        const float d = sdc_q_rd_f16(src);
        const unsigned scales_h = (unsigned)(src[2] | src[3] << 8);
        const uint8_t *scales_l = src + 4, *qs = src + 8;
        for (int ib = 0; ib < 8; ib++) {
            int ls = ((scales_l[ib / 2] >> (4 * (ib % 2))) & 0xf) | (int)((scales_h >> (2 * ib)) & 3) << 4;
            const float dl = d * (float)(ls - 32);
            const uint8_t *q = qs + ib * 16;
            float *y = dst + ib * 32;
            for (int l = 0; l < 16; l++) {
                y[l] = dl * (float)sdc_iq4nl_values[q[l] & 0xf];
                y[l + 16] = dl * (float)sdc_iq4nl_values[q[l] >> 4];
            }
        }
    }
}
