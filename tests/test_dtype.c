/* test_dtype.c - element type conversions: f16 and bf16 both ways (exhaustive where the domain is
 * 16 bits, hand-picked ties, and nearest-value checks against a double-precision search on random
 * inputs), and sdc_convert_to_f32 / _from_f32 for every dtype. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "test_util.h"

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }
static int bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x7f); }

/* Every 16-bit pattern: to f32 and back gives the same bits; NaNs stay NaN (payload may change). */
static void test_round_trips(void) {
    int bad16 = 0, badbf = 0, nan16 = 0, nanbf = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = sdc_f16_to_f32(h);
        uint16_t back = sdc_f32_to_f16(f);
        if (f16_is_nan(h)) {
            nan16++;
            bad16 += !(isnan(f) && f16_is_nan(back));
        } else {
            bad16 += back != h;
        }
        float g = sdc_bf16_to_f32(h);
        uint16_t backb = sdc_f32_to_bf16(g);
        if (bf16_is_nan(h)) {
            nanbf++;
            badbf += !(isnan(g) && bf16_is_nan(backb));
        } else {
            badbf += backb != h;
        }
    }
    test_check(bad16 == 0, "f16 -> f32 -> f16 over all 65536 patterns (%d NaNs): %d mismatches", nan16, bad16);
    /* the bulk conversion (F16C where the CPU has it) gives sdc_f16_to_f32's bits for every pattern, NaN
     * payloads included, at every offset of its 8-wide blocks */
    uint16_t *all = malloc(65536 * sizeof *all);
    float *bulk = malloc((65536 + 7) * sizeof *bulk);
    int badbulk = 0;
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)(i * 40503u); /* a permutation: NaNs spread out */
    for (int off = 0; off < 8; off++) {
        sdc_convert_to_f32(bulk, all + off, SDC_DTYPE_F16, 65536 - (size_t)off);
        for (uint32_t i = 0; i + (uint32_t)off < 65536; i++) {
            float want = sdc_f16_to_f32(all[i + (uint32_t)off]);
            badbulk += memcmp(&bulk[i], &want, sizeof want) != 0;
        }
    }
    test_check(badbulk == 0, "bulk f16 -> f32 equals sdc_f16_to_f32 bit for bit over all patterns: %d mismatches",
               badbulk);
    free(all);
    free(bulk);
    test_check(badbf == 0, "bf16 -> f32 -> bf16 over all 65536 patterns (%d NaNs): %d mismatches", nanbf, badbf);
    /* f16 -> f32 values of known patterns */
    test_check(sdc_f16_to_f32(0x3c00) == 1.0f && sdc_f16_to_f32(0xc000) == -2.0f &&
                   sdc_f16_to_f32(0x7bff) == 65504.0f && sdc_f16_to_f32(0x0001) == 0x1p-24f &&
                   sdc_f16_to_f32(0x0400) == 0x1p-14f && isinf(sdc_f16_to_f32(0xfc00)) &&
                   signbit(sdc_f16_to_f32(0x8000)),
               "f16 -> f32 of 1, -2, 65504, 2^-24, 2^-14, -inf, -0");
}

static void check_f16(float f, uint16_t want, const char *what) {
    uint16_t got = sdc_f32_to_f16(f);
    test_check(got == want, "f32 -> f16 %s (%.9g): 0x%04x (want 0x%04x)", what, (double)f, got, want);
}

static void check_bf16(float f, uint16_t want, const char *what) {
    uint16_t got = sdc_f32_to_bf16(f);
    test_check(got == want, "f32 -> bf16 %s (%.9g): 0x%04x (want 0x%04x)", what, (double)f, got, want);
}

static void test_ties(void) {
    check_f16(1.0f + 0x1p-11f, 0x3c00, "tie 1+2^-11 to even (down)");
    check_f16(1.0f + 3 * 0x1p-11f, 0x3c02, "tie 1+3*2^-11 to even (up)");
    check_f16(1.0f + 0x1p-11f + 0x1p-20f, 0x3c01, "just above a tie");
    check_f16(1.0f + 0x1p-11f - 0x1p-20f, 0x3c00, "just below a tie");
    check_f16(-(1.0f + 3 * 0x1p-11f), 0xbc02, "negative tie up");
    check_f16(2047.0f + 0.5f, 0x6800, "tie 2047.5 -> 2048 (carry into exponent)");
    check_f16(65504.0f, 0x7bff, "largest finite");
    check_f16(65519.0f, 0x7bff, "below the overflow tie");
    check_f16(65520.0f, 0x7c00, "overflow tie -> inf");
    check_f16(1e10f, 0x7c00, "overflow");
    check_f16(-1e10f, 0xfc00, "negative overflow");
    check_f16(INFINITY, 0x7c00, "inf");
    check_f16(-0.0f, 0x8000, "-0");
    check_f16(0x1p-24f, 0x0001, "smallest subnormal");
    check_f16(0x1p-25f, 0x0000, "half the smallest subnormal ties to 0");
    check_f16(3 * 0x1p-25f, 0x0002, "1.5 x smallest subnormal ties to 2");
    check_f16(0x1p-25f + 0x1p-40f, 0x0001, "just above half the smallest subnormal");
    check_f16(0x1p-14f - 0x1p-25f, 0x0400, "tie between largest subnormal and smallest normal");
    check_f16(0x1p-30f, 0x0000, "underflow to 0");
    test_check(f16_is_nan(sdc_f32_to_f16(NAN)) && f16_is_nan(sdc_f32_to_f16(bits_f32(0x7f800001u))),
               "f32 -> f16 NaN (quiet and signalling) stays NaN");

    check_bf16(1.0f + 0x1p-8f, 0x3f80, "tie 1+2^-8 to even (down)");
    check_bf16(1.0f + 3 * 0x1p-8f, 0x3f82, "tie 1+3*2^-8 to even (up)");
    check_bf16(1.0f + 0x1p-8f + 0x1p-20f, 0x3f81, "just above a tie");
    check_bf16(-(1.0f + 3 * 0x1p-8f), 0xbf82, "negative tie up");
    check_bf16(bits_f32(0x7f7fffffu), 0x7f80, "FLT_MAX rounds to inf");
    check_bf16(bits_f32(0x007fffffu), 0x0080, "largest f32 subnormal rounds up to the smallest normal");
    check_bf16(bits_f32(0x00008000u), 0x0000, "subnormal tie to even (down)");
    check_bf16(INFINITY, 0x7f80, "inf");
    check_bf16(-0.0f, 0x8000, "-0");
    test_check(bf16_is_nan(sdc_f32_to_bf16(NAN)) && bf16_is_nan(sdc_f32_to_bf16(bits_f32(0x7f800001u))) &&
                   bf16_is_nan(sdc_f32_to_bf16(bits_f32(0xff800001u))),
               "f32 -> bf16 NaN (incl. payload only in the low bits) stays NaN");
}

/* Nearest-even by search in double: h is right when no neighbour is closer and ties pick even. */
static int nearest_ok(float f, uint16_t h, float (*to_f32)(uint16_t), uint16_t max_finite) {
    uint16_t mag = h & 0x7fff;
    double x = fabs((double)f), v = fabs((double)to_f32(h));
    if (signbit(to_f32(h)) != signbit(f)) return 0;
    if (mag > max_finite) { /* inf: x must be at or beyond the tie above max_finite */
        double top = to_f32(max_finite), step = top - to_f32((uint16_t)(max_finite - 1));
        return x >= top + step / 2;
    }
    double d = fabs(x - v);
    for (int k = -1; k <= 1; k += 2) {
        int nm = (int)mag + k;
        if (nm < 0) continue;
        double w = nm > max_finite ? to_f32(max_finite) + (to_f32(max_finite) - to_f32((uint16_t)(max_finite - 1)))
                                   : fabs((double)to_f32((uint16_t)nm));
        double dn = fabs(x - w);
        if (dn < d) return 0;
        if (dn == d && (mag & 1)) return 0; /* tie: the even one wins */
    }
    return 1;
}

static void test_random_rounding(void) {
    enum {
        N = 200000
    };
    static float u[N];
    int bad16 = 0, badbf = 0;
    /* random magnitudes over the whole f16 range and beyond, and random bit patterns for bf16 */
    test_fill_uniform(u, N, 11, -30.0f, 18.0f);
    for (int i = 0; i < N; i++) {
        float f = exp2f(u[i]) * (i & 1 ? -1.0f : 1.0f);
        bad16 += !nearest_ok(f, sdc_f32_to_f16(f), sdc_f16_to_f32, 0x7bff);
    }
    test_fill_uniform(u, N, 12, 0.0f, 1.0f);
    for (int i = 0; i < N; i++) {
        uint32_t bits = (uint32_t)(u[i] * 4294967040.0f) ^ (uint32_t)i * 2654435761u;
        float f = bits_f32(bits);
        if (!isfinite(f)) continue;
        badbf += !nearest_ok(f, sdc_f32_to_bf16(f), sdc_bf16_to_f32, 0x7f7f);
    }
    test_check(bad16 == 0, "f32 -> f16 is nearest-even on %d random values: %d wrong", N, bad16);
    test_check(badbf == 0, "f32 -> bf16 is nearest-even on %d random values: %d wrong", N, badbf);
}

static void test_convert(void) {
    const float want[5] = {-3.0f, 0.0f, 1.0f, 2.0f, 100.0f};
    float out[5];
    const float f32[5] = {-3, 0, 1, 2, 100};
    const uint16_t f16[5] = {0xc200, 0x0000, 0x3c00, 0x4000, 0x5640};
    const uint16_t bf16[5] = {0xc040, 0x0000, 0x3f80, 0x4000, 0x42c8};
    const double f64[5] = {-3, 0, 1, 2, 100};
    const int64_t i64[5] = {-3, 0, 1, 2, 100};
    const int32_t i32[5] = {-3, 0, 1, 2, 100};
    const int16_t i16[5] = {-3, 0, 1, 2, 100};
    const int8_t i8[5] = {-3, 0, 1, 2, 100};
    const struct {
        sdc_dtype dt;
        const void *src;
    } cases[] = {{SDC_DTYPE_F32, f32}, {SDC_DTYPE_F16, f16}, {SDC_DTYPE_BF16, bf16}, {SDC_DTYPE_F64, f64},
                 {SDC_DTYPE_I64, i64}, {SDC_DTYPE_I32, i32}, {SDC_DTYPE_I16, i16},   {SDC_DTYPE_I8, i8}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        memset(out, 0xff, sizeof out);
        int rc = sdc_convert_to_f32(out, cases[c].src, cases[c].dt, 5);
        test_check(rc == 0 && memcmp(out, want, sizeof out) == 0, "convert_to_f32 from %s",
                   sdc_dtype_name(cases[c].dt));
    }
    const uint8_t u8[4] = {0, 1, 200, 255}, bools[4] = {0, 1, 1, 0};
    int rc = sdc_convert_to_f32(out, u8, SDC_DTYPE_U8, 4);
    test_check(rc == 0 && out[0] == 0 && out[1] == 1 && out[2] == 200 && out[3] == 255, "convert_to_f32 from U8");
    rc = sdc_convert_to_f32(out, bools, SDC_DTYPE_BOOL, 4);
    test_check(rc == 0 && out[0] == 0 && out[1] == 1 && out[2] == 1 && out[3] == 0, "convert_to_f32 from BOOL");
    const uint8_t f8[2] = {0x38, 0x3c};
    test_check(sdc_convert_to_f32(out, f8, SDC_DTYPE_F8_E4M3, 2) == -1 &&
                   sdc_convert_to_f32(out, f8, SDC_DTYPE_F8_E5M2, 2) == -1,
               "convert_to_f32 refuses F8 types");

    /* from f32 and back, on fresh random values */
    enum {
        M = 4096
    };
    static float x[M], y[M];
    static uint16_t h[M];
    test_fill_normal(x, M, 5, 3.0f);
    int ok = sdc_convert_from_f32(h, SDC_DTYPE_F16, x, M) == 0, bad = 0;
    for (int i = 0; i < M; i++) bad += h[i] != sdc_f32_to_f16(x[i]);
    ok = ok && sdc_convert_to_f32(y, h, SDC_DTYPE_F16, M) == 0;
    test_check(ok && bad == 0, "convert_from_f32 F16 matches sdc_f32_to_f16 element-wise (%d differ)", bad);
    test_check_err("f32 -> f16 -> f32 of N(0,9) values", "rel err", test_rel_err(y, x, M), 0x1p-11);
    ok = sdc_convert_from_f32(h, SDC_DTYPE_BF16, x, M) == 0;
    bad = 0;
    for (int i = 0; i < M; i++) bad += h[i] != sdc_f32_to_bf16(x[i]);
    ok = ok && sdc_convert_to_f32(y, h, SDC_DTYPE_BF16, M) == 0;
    test_check(ok && bad == 0, "convert_from_f32 BF16 matches sdc_f32_to_bf16 element-wise (%d differ)", bad);
    test_check_err("f32 -> bf16 -> f32 of N(0,9) values", "rel err", test_rel_err(y, x, M), 0x1p-8);
    ok = sdc_convert_from_f32(y, SDC_DTYPE_F32, x, M) == 0 && memcmp(x, y, sizeof x) == 0;
    test_check(ok, "convert_from_f32 F32 copies");
    test_check(sdc_convert_from_f32(h, SDC_DTYPE_I32, x, 1) == -1, "convert_from_f32 refuses I32");
}

static void test_names(void) {
    int ok = 1;
    for (int i = 0; i < SDC_DTYPE_FIRST_QUANT; i++) {
        sdc_dtype d;
        ok = ok && sdc_dtype_from_name(sdc_dtype_name((sdc_dtype)i), &d) == 0 && d == (sdc_dtype)i &&
            sdc_dtype_size((sdc_dtype)i) > 0 && sdc_dtype_block((sdc_dtype)i) == 1 &&
            sdc_dtype_row_bytes((sdc_dtype)i, 3) == 3 * sdc_dtype_size((sdc_dtype)i);
    }
    sdc_dtype d;
    test_check(ok, "every plain dtype name parses back to itself and has a size");
    ok = 1;
    for (int i = SDC_DTYPE_FIRST_QUANT; i < SDC_DTYPE_COUNT; i++) {
        const int b = sdc_dtype_block((sdc_dtype)i);
        ok = ok && sdc_dtype_is_quant((sdc_dtype)i) && sdc_dtype_from_name(sdc_dtype_name((sdc_dtype)i), &d) == -1 &&
            sdc_dtype_size((sdc_dtype)i) == 0 && (b == 32 || b == 256) &&
            sdc_dtype_row_bytes((sdc_dtype)i, 2 * b) == 2 * sdc_dtype_block_bytes((sdc_dtype)i) &&
            sdc_dtype_row_bytes((sdc_dtype)i, b + 1) == 0;
    }
    test_check(ok, "block types: no safetensors name, blocks of 32 or 256, row bytes only for whole blocks");
    test_check(sdc_dtype_row_bytes(SDC_DTYPE_Q8_0, 64) == 68 && sdc_dtype_row_bytes(SDC_DTYPE_Q4_K, 512) == 288,
               "Q8_0 and Q4_K row bytes");
    test_check(sdc_dtype_from_name("F33", &d) == -1 && sdc_dtype_from_name("f32", &d) == -1 &&
                   sdc_dtype_from_name("", &d) == -1,
               "unknown dtype names are refused");
    test_check(sdc_dtype_size(SDC_DTYPE_F32) == 4 && sdc_dtype_size(SDC_DTYPE_F16) == 2 &&
                   sdc_dtype_size(SDC_DTYPE_BF16) == 2 && sdc_dtype_size(SDC_DTYPE_F64) == 8 &&
                   sdc_dtype_size(SDC_DTYPE_I64) == 8 && sdc_dtype_size(SDC_DTYPE_BOOL) == 1,
               "dtype sizes");
}

int main(void) {
    printf("test_dtype\n");
    test_round_trips();
    test_ties();
    test_random_rounding();
    test_convert();
    test_names();
    return test_finish();
}
