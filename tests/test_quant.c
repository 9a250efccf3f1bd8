/* test_quant.c - core/quant.h against ggml's own Python package (fixtures made by
 * tools/make_quant_fixtures.py with gguf.quants):
 *   - dequantization of random blocks of every block type: the same f32 bits (bound: 0 mismatches);
 *   - quantization of Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 on rows with zeros, tiny, huge and tied values: the same
 *     bytes (bound: 0 mismatches);
 *   - every writable type's round trip on fresh N(0, 1) rows: relative RMS error within its bound;
 *   - the ggml type-id table and the refusals (bad n, read-only types);
 *   - Q4_0 and Q8_0's widening (vectorised with AVX2 where the CPU has it) against d * q on fresh random
 *     blocks: the same bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "io/model_index.h"
#include "test_util.h"

static const sdc_dtype block_types[] = {SDC_DTYPE_Q4_0, SDC_DTYPE_Q4_1, SDC_DTYPE_Q5_0,   SDC_DTYPE_Q5_1,
                                        SDC_DTYPE_Q8_0, SDC_DTYPE_Q2_K, SDC_DTYPE_Q3_K,   SDC_DTYPE_Q4_K,
                                        SDC_DTYPE_Q5_K, SDC_DTYPE_Q6_K, SDC_DTYPE_IQ4_NL, SDC_DTYPE_IQ4_XS};
#define N_TYPES (sizeof block_types / sizeof block_types[0])

/* The named fixture tensor's raw bytes (malloc'd), *n its byte count; NULL (and a failure) if absent. */
static void *fixture(sdc_model_index *idx, const char *name, size_t *n) {
    const sdc_tensor_info *t = sdc_index_find(idx, name);
    if (!test_check(t != NULL, "fixture %s present", name)) return NULL;
    void *p = malloc(t->nbytes ? t->nbytes : 1);
    if (!p || sdc_index_read_raw(idx, t, p) != SDC_OK) {
        test_check(0, "fixture %s readable", name);
        free(p);
        return NULL;
    }
    *n = t->nbytes;
    return p;
}

static void check_dequant(sdc_model_index *idx, sdc_dtype dt) {
    char name[64];
    size_t nb = 0, nv = 0;
    snprintf(name, sizeof name, "dequant.%s.blocks", sdc_dtype_name(dt));
    uint8_t *blocks = fixture(idx, name, &nb);
    snprintf(name, sizeof name, "dequant.%s.values", sdc_dtype_name(dt));
    float *want = fixture(idx, name, &nv);
    if (blocks && want) {
        int64_t n = (int64_t)(nv / 4);
        test_check(sdc_dtype_row_bytes(dt, n) == nb, "%s fixture: %zu bytes hold %lld values", sdc_dtype_name(dt), nb,
                   (long long)n);
        float *got = malloc(nv);
        int rc = sdc_dequant_row(dt, blocks, got, n);
        long bad = 0;
        for (int64_t i = 0; i < n; i++) bad += memcmp(&got[i], &want[i], 4) != 0;
        snprintf(name, sizeof name, "dequant %s (%lld values) vs gguf.quants", sdc_dtype_name(dt), (long long)n);
        test_check_err(name, "mismatching values", rc == 0 ? (double)bad : INFINITY, 0);
        free(got);
    }
    free(blocks);
    free(want);
}

static void check_quant_bytes(sdc_model_index *idx, sdc_dtype dt, const float *rows, int64_t n) {
    char name[64];
    size_t nb = 0;
    snprintf(name, sizeof name, "quant.%s.bytes", sdc_dtype_name(dt));
    uint8_t *want = fixture(idx, name, &nb);
    if (!want) return;
    size_t bytes = sdc_dtype_row_bytes(dt, n);
    test_check(bytes == nb, "%s: %zu bytes expected, fixture has %zu", sdc_dtype_name(dt), bytes, nb);
    uint8_t *got = malloc(bytes);
    int rc = sdc_quant_row(dt, rows, got, n);
    long bad = 0;
    for (size_t i = 0; i < bytes && i < nb; i++) bad += got[i] != want[i];
    snprintf(name, sizeof name, "quantize %s (%lld values) vs gguf.quants", sdc_dtype_name(dt), (long long)n);
    test_check_err(name, "mismatching bytes", rc == 0 ? (double)bad : INFINITY, 0);
    free(got);
    free(want);
}

/* Round trip on fresh N(0, 1) rows; bounds are the measured errors with ~10% headroom (quant.h's table). */
static void check_round_trip(sdc_dtype dt, double bound) {
    const int64_t n = 256 * 64;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    uint8_t *q = malloc(sdc_dtype_row_bytes(dt, n));
    test_fill_normal(x, (size_t)n, 1234 + (uint64_t)dt, 1.0f);
    int rc = sdc_quant_row(dt, x, q, n);
    rc |= sdc_dequant_row(dt, q, y, n);
    char what[64];
    snprintf(what, sizeof what, "round trip %s on N(0,1)", sdc_dtype_name(dt));
    test_check_err(what, "rel err", rc == 0 ? test_rel_err(y, x, (size_t)n) : INFINITY, bound);
    free(x);
    free(y);
    free(q);
}

static void check_api(void) {
    float x[256] = {0}, y[256];
    uint8_t q[512];
    for (size_t i = 0; i < N_TYPES; i++) {
        sdc_dtype dt = block_types[i], back;
        uint32_t id;
        int ok = sdc_dtype_to_ggml(dt, &id) == 0 && sdc_dtype_from_ggml(id, &back) == 0 && back == dt;
        test_check(ok, "%s: ggml type id %u maps back", sdc_dtype_name(dt), id);
        int blk = sdc_dtype_block(dt);
        test_check(sdc_dequant_row(dt, q, y, blk + 1) == -1 && sdc_quant_row(dt, x, q, blk / 2) == -1,
                   "%s: a row that is not whole blocks is refused", sdc_dtype_name(dt));
    }
    test_check(!sdc_quant_can_write(SDC_DTYPE_IQ4_NL) && sdc_quant_row(SDC_DTYPE_IQ4_XS, x, q, 256) == -1,
               "IQ4_NL/IQ4_XS are read only");
    test_check(sdc_quant_row(SDC_DTYPE_I32, x, q, 4) == -1 && sdc_dequant_row(SDC_DTYPE_I8, q, y, 4) == -1,
               "integer dtypes are refused");
    sdc_dtype dt;
    test_check(sdc_dtype_from_ggml(9, &dt) == -1 && sdc_dtype_from_ggml(1000, &dt) == -1,
               "Q8_1 and unknown ggml ids are refused");
}

/* The widening of Q4_0 and Q8_0 (vectorised where the CPU has AVX2) against this plain definition, on fresh
 * random blocks (any byte, a random finite f16 scale) in runs of 1, 3 and 257 blocks: the same bits. */
static void check_fast_dequant(void) {
    static const sdc_dtype types[] = {SDC_DTYPE_Q4_0, SDC_DTYPE_Q8_0};
    static const int64_t runs[] = {1, 3, 257};
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (size_t t = 0; t < 2; t++)
        for (size_t r = 0; r < 3; r++) {
            const sdc_dtype dt = types[t];
            const int64_t nb = runs[r], n = nb * 32;
            const size_t bb = sdc_dtype_block_bytes(dt);
            uint8_t *q = malloc(nb * bb);
            float *got = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
            for (int64_t i = 0; i < nb * (int64_t)bb; i++) {
                s ^= s << 13, s ^= s >> 7, s ^= s << 17;
                q[i] = (uint8_t)(s >> 24);
            }
            for (int64_t b = 0; b < nb; b++) q[b * bb + 1] &= 0x7b; /* exponent < 31: a finite scale */
            const int rc = sdc_dequant_row(dt, q, got, n);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk = q + b * bb;
                const float d = sdc_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
                for (int j = 0; j < 32; j++) {
                    const int v = dt == SDC_DTYPE_Q8_0 ? (int8_t)blk[2 + j]
                                                       : (j < 16 ? blk[2 + j] & 0xf : blk[2 + j - 16] >> 4) - 8;
                    want[b * 32 + j] = d * (float)v;
                }
            }
            int64_t differ = 0;
            for (int64_t i = 0; i < n; i++) differ += memcmp(&got[i], &want[i], sizeof(float)) != 0;
            char what[64];
            snprintf(what, sizeof what, "%s, %lld blocks", sdc_dtype_name(dt), (long long)nb);
            test_check(rc == 0, "%s: widened", what);
            test_check_err(what, "values whose bits differ from d * q", (double)differ, 0);
            free(q);
            free(got);
            free(want);
        }
}

int main(void) {
    check_fast_dequant();
    sdc_model_index *idx = sdc_index_new(test_logger());
    const char *path = SDC_SOURCE_DIR "/tests/data/quant/quant.safetensors";
    if (!test_check(idx && sdc_index_add_file(idx, path, NULL, NULL, NULL) == SDC_OK, "open %s", path))
        return test_finish();

    for (size_t i = 0; i < N_TYPES; i++) check_dequant(idx, block_types[i]);

    size_t nin = 0;
    float *rows = fixture(idx, "quant.input", &nin);
    if (rows) {
        const sdc_dtype exact[] = {SDC_DTYPE_Q4_0, SDC_DTYPE_Q4_1, SDC_DTYPE_Q5_0, SDC_DTYPE_Q5_1, SDC_DTYPE_Q8_0};
        for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
            check_quant_bytes(idx, exact[i], rows, (int64_t)(nin / 4));
    }
    free(rows);

    static const struct {
        sdc_dtype dt;
        double bound;
    } trips[] = {
        {SDC_DTYPE_Q8_0, 6e-3},    {SDC_DTYPE_Q5_0, 4.8e-2}, {SDC_DTYPE_Q5_1, 4.2e-2}, {SDC_DTYPE_Q4_0, 9.5e-2},
        {SDC_DTYPE_Q4_1, 8.6e-2},  {SDC_DTYPE_Q6_K, 2e-2},   {SDC_DTYPE_Q5_K, 4e-2},   {SDC_DTYPE_Q4_K, 8.2e-2},
        {SDC_DTYPE_Q3_K, 1.65e-1}, {SDC_DTYPE_Q2_K, 3.3e-1}, {SDC_DTYPE_F16, 2.3e-4},  {SDC_DTYPE_BF16, 1.9e-3},
    };
    for (size_t i = 0; i < sizeof trips / sizeof trips[0]; i++) check_round_trip(trips[i].dt, trips[i].bound);

    check_api();
    sdc_index_free(idx);
    return test_finish();
}
