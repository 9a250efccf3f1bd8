/* rng_cpu.c - torch's CPU generator: mt19937 and the two Box-Muller paths of torch.randn.
 *
 * n >= 16 (torch's normal_fill_16_AVX2): fill out with n uniform floats, then turn every 16-chunk
 * into normals pairwise, element j with element j + 8: u1 = 1 - d[j], u2 = d[j + 8],
 * r = sqrt(-2 log u1), d[j] = r cos(2 pi u2), d[j + 8] = r sin(2 pi u2). When 16 does not divide n,
 * the last 16 elements are redrawn from 16 fresh uniforms and transformed again. log and sincos are
 * the Cephes single-precision polynomials of avx_mathfun.h, evaluated with the fused multiply-adds
 * GCC contracts them into when it builds torch's AVX2 kernels; reproducing the exact result needs
 * the same operations in the same order, so each one is spelled out below (fmaf where torch's
 * binary fuses, a plain statement where it rounds). Where torch's source leaves GCC a choice, the
 * choice was settled against torch 2.11's output (the reference bundle): in the log, y * z fuses
 * into the add of e * q1 (rather than e * q1 into the add of y * z); in the cosine, yc * z fuses
 * into the subtraction of z / 2. Results do not depend on how this file is compiled: every product
 * that torch rounds on its own is a statement of its own, and the contractions a compiler could
 * still make (with -ffp-contract=fast) are exact ones.
 *
 * n < 16 (torch's at::normal_distribution<double>): one normal at a time in double, from two
 * 53-bit uniforms u1, u2: r = sqrt(-2 log1p(-u2)), theta = 2 pi u1, returns r cos(theta) and keeps
 * r sin(theta) in the generator for the next scalar draw, across torch.randn calls. */
#include <math.h>
#include <string.h>

#include "core/rng_internal.h"

/* ---- mt19937 (the standard generator; torch seeds it with the low 32 bits of the seed) ---- */

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu

void sdc_rng_cpu_seed(sdc_rng *r, uint64_t seed) {
    r->mt[0] = (uint32_t)seed;
    for (uint32_t i = 1; i < SDC_MT19937_N; i++) r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + i;
    r->mt_index = SDC_MT19937_N;
    r->has_cached_normal = 0;
    r->cached_normal = 0;
}

static void mt_regenerate(uint32_t *mt) {
    for (int i = 0; i < SDC_MT19937_N; i++) {
        uint32_t y = (mt[i] & 0x80000000u) | (mt[(i + 1) % SDC_MT19937_N] & 0x7fffffffu);
        mt[i] = mt[(i + MT_M) % SDC_MT19937_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
    }
}

uint32_t sdc_rng_cpu_u32(sdc_rng *r) {
    if (r->mt_index >= SDC_MT19937_N) {
        mt_regenerate(r->mt);
        r->mt_index = 0;
    }
    uint32_t y = r->mt[r->mt_index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* at::uniform_real_distribution<float>(0, 1): the low 24 bits of one draw, times 2^-24. */
static float uniform_f32(sdc_rng *r) { return (float)(sdc_rng_cpu_u32(r) & 0xffffffu) * 0x1p-24f; }

/* at::uniform_real_distribution<double>(0, 1): two draws make a 64-bit word (first draw high),
 * whose low 53 bits times 2^-53 are the uniform. */
static double uniform_f64(sdc_rng *r) {
    uint64_t hi = sdc_rng_cpu_u32(r);
    uint64_t lo = sdc_rng_cpu_u32(r);
    return (double)(((hi << 32) | lo) & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;
}

/* ---- the vectorised path's log and sincos (Cephes logf / sinf / cosf, as in avx_mathfun.h) ---- */

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Always inlined, so that box_muller16's FMA build (below) runs their fmaf as instructions. */
#define RNG_INLINE static inline __attribute__((always_inline))

/* Natural log of a normal float x > 0 (the only inputs here: 1 - u with u a multiple of 2^-24). */
RNG_INLINE float cephes_logf(float x) {
    uint32_t bits = f2u(x);
    /* x = m * 2^e with m in [0.5, 1) */
    float e = (float)((int32_t)(bits >> 23) - 0x7f) + 1.0f;
    float m = u2f((bits & ~0x7f800000u) | 0x3f000000u);
    /* m < sqrt(1/2): x = 2m - 1, e - 1; else x = m - 1 (all exact) */
    float t;
    if (m < 0.707106781186547524f) {
        e = e - 1.0f;
        t = (m - 1.0f) + m;
    } else {
        t = m - 1.0f;
    }
    float z = t * t;
    float y = 7.0376836292E-2f;
    y = fmaf(y, t, -1.1514610310E-1f);
    y = fmaf(y, t, 1.1676998740E-1f);
    y = fmaf(y, t, -1.2420140846E-1f);
    y = fmaf(y, t, 1.4249322787E-1f);
    y = fmaf(y, t, -1.6668057665E-1f);
    y = fmaf(y, t, 2.0000714765E-1f);
    y = fmaf(y, t, -2.4999993993E-1f);
    y = fmaf(y, t, 3.3333331174E-1f);
    y = y * t;
    /* torch's binary fuses y * z into the add of e * q1 (q1 = log 2 - q2, the low part of log 2) */
    float eq1 = e * -2.12194440e-4f;
    y = fmaf(y, z, eq1);
    float hz = z * 0.5f; /* exact */
    y = y - hz;
    float r = t + y;
    float eq2 = e * 0.693359375f; /* exact: e is a small integer, the constant has 9 bits */
    return r + eq2;
}

/* sin and cos of x in [0, 2 pi). */
RNG_INLINE void cephes_sincosf(float x, float *s, float *c) {
    const uint32_t sign = 0x80000000u;
    uint32_t sign_sin = f2u(x) & sign;
    float ax = fabsf(x);
    /* octant j = (trunc(|x| 4/pi) + 1) & ~1 */
    float scaled = ax * 1.27323954473516f;
    int32_t j = (int32_t)scaled;
    j = (j + 1) & ~1;
    float yj = (float)j;
    uint32_t swap_sin = (uint32_t)(j & 4) << 29;
    int use_sin_poly_for_sin = (j & 2) == 0;
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    sign_sin ^= swap_sin;
    /* extended-precision reduction x - j pi/4 */
    float xr = fmaf(yj, -0.78515625f, ax);
    xr = fmaf(yj, -2.4187564849853515625e-4f, xr);
    xr = fmaf(yj, -3.77489497744594108e-8f, xr);
    float z = xr * xr;
    /* cos polynomial */
    float yc = fmaf(2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = fmaf(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    float hz = z * 0.5f;   /* exact */
    yc = fmaf(yc, z, -hz); /* fused: yc z^2 - z / 2 with one rounding */
    yc = yc + 1.0f;
    /* sin polynomial */
    float ys = fmaf(-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = fmaf(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = fmaf(ys, xr, xr);
    /* select: with j = 0 mod 4 the sine is ys and the cosine yc, with j = 2 mod 4 the reverse */
    float sin_v = use_sin_poly_for_sin ? 0.0f + ys : 0.0f + yc;
    float cos_v = use_sin_poly_for_sin ? yc + 0.0f : ys + 0.0f;
    *s = u2f(f2u(sin_v) ^ sign_sin);
    *c = u2f(f2u(cos_v) ^ sign_cos);
}

/* Box-Muller on one chunk of 16 uniforms, in place. */
RNG_INLINE void box_muller16(float *d) {
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j]; /* (0, 1] */
        float u2 = d[j + 8];
        float lg = cephes_logf(u1);
        float radius = sqrtf(-2.0f * lg);
        float theta = two_pi * u2;
        float sn, cs;
        cephes_sincosf(theta, &sn, &cs);
        float n1 = radius * cs;
        float n2 = radius * sn;
        /* torch writes fma(n, std = 1, mean = 0): the same value, with -0 turned into +0 */
        d[j] = n1 + 0.0f;
        d[j + 8] = n2 + 0.0f;
    }
}

/* Box-Muller over whole chunks, compiled twice and picked at load time: with the FMA instructions where the CPU
 * has them (fmaf is one exactly rounded fused multiply-add either way, so the same bits; without them each fmaf
 * is a libm call: 16.7 ms for a Flux 1024^2 noise of 262144 values on this machine), else plain. */
__attribute__((target_clones("fma", "default"))) static void box_muller_chunks(float *d, size_t n) {
    for (size_t i = 0; i + 16 <= n; i += 16) box_muller16(d + i);
}

static void randn_vector(sdc_rng *r, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = uniform_f32(r);
    box_muller_chunks(out, n);
    if (n % 16 != 0) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform_f32(r);
        box_muller16(tail);
    }
}

/* ---- the scalar double path ---- */

static double normal_f64(sdc_rng *r) {
    if (r->has_cached_normal) {
        r->has_cached_normal = 0;
        return r->cached_normal;
    }
    double u1 = uniform_f64(r);
    double u2 = uniform_f64(r);
    double radius = sqrt(-2.0 * log1p(-u2));
    double theta = (2.0 * 3.14159265358979323846) * u1;
    r->cached_normal = radius * sin(theta);
    r->has_cached_normal = 1;
    return radius * cos(theta);
}

void sdc_rng_cpu_randn(sdc_rng *r, float *out, size_t n) {
    if (n >= 16) {
        randn_vector(r, out, n);
        return;
    }
    /* torch returns normal * std + mean with std = 1, mean = 0: -0 becomes +0 */
    for (size_t i = 0; i < n; i++) out[i] = (float)(normal_f64(r) + 0.0);
}
