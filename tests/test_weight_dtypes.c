/* test_weight_dtypes.c - linear and conv2d with matrix weights kept in F16, BF16 or a block type (Q8_0,
 * Q4_0, Q4_K; the CPU backend widens them a GEMM tile and a chunk of K at a time) against the same ops on
 * the weights dequantized to F32 up front.
 *
 * Widening is exact and the tiles are those of the F32 path, so the outputs must be bit-identical
 * (max |diff| against bound 0), on the fast backend (2 threads and 1) and on the reference backend.
 * Each case draws fresh random inputs; the weight is rounded to the storage dtype first, so its F32
 * copy holds the same values. A block type runs on the linears (rows of whole blocks). Deep
 * weights (K >= 896) are cut in chunks of K whose starts fall inside a weight row, and for the block
 * types inside a block (the whole blocks around a chunk are widened): the test checks that each dtype
 * ran such a case. Also checked: the workspace the op counts equals its workspace query (the planner's
 * number), and nothing is left allocated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ref.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "test_op_cases.h"
#include "test_util.h"

typedef struct wcase {
    op_case op;
    int with_ref; /* small enough for the double-precision reference */
} wcase;

/* in[1] is the weight; its dtype is set per run */
static const wcase cases[] = {
    /* linear: many M and N tiles (weight-major order, a thread reusing its widened tile) */
    {{"linear 320->1280 [1024,320]",
      run_linear,
      3,
      {T2(1024, 320), S2(1280, 320, 0.056f), T1(1280)},
      T2(1024, 1280),
      {0},
      0},
     0},
    /* a partial N tile (320 = 256 + 64), no bias */
    {{"linear 768->320 no bias [2,77,768]",
      run_linear,
      2,
      {T3(2, 77, 768), S2(320, 768, 0.036f)},
      T3(2, 77, 320),
      {0},
      0},
     1},
    /* one thread (too small for a team) */
    {{"linear 320->1280 [2,320] (time)",
      run_linear,
      3,
      {T2(2, 320), S2(1280, 320, 0.056f), T1(1280)},
      T2(2, 1280),
      {0},
      0},
     1},
    /* several im2col bands, a partial M tile (320 rows) */
    {{"conv 3x3 320->320 64x64",
      run_conv,
      3,
      {T4(1, 320, 64, 64), S4(320, 320, 3, 3, 0.0186f), T1(320)},
      T4(1, 320, 64, 64),
      {1, 1},
      0},
     0},
    {{"conv 3x3 s2 64->300 24x40 B2",
      run_conv,
      3,
      {T4(2, 64, 24, 40), S4(300, 64, 3, 3, 0.0417f), T1(300)},
      T4(2, 300, 12, 20),
      {2, 1},
      0},
     1},
    /* pointwise: no im2col, the image is the GEMM's right operand */
    {{"conv 1x1 320->640 16x16 B2",
      run_conv,
      3,
      {T4(2, 320, 16, 16), S4(640, 320, 1, 1, 0.056f), T1(640)},
      T4(2, 640, 16, 16),
      {1, 0},
      0},
     1},
    /* K >= 896: widened in chunks of K, 1280 = 448 + 416 + 416 (a Q4_K row's 256-blocks cut at 448 and
     * 864); many M and N tiles, as the UNet's ff.net.2 at 32x32 */
    {{"linear 1280->320 [1024,1280]",
      run_linear,
      3,
      {T2(1024, 1280), S2(320, 1280, 0.028f), T1(320)},
      T2(1024, 320),
      {0},
      0},
     0},
    /* the same depth with a padded partial M tile, no bias */
    {{"linear 1280->320 no bias [2,77,1280]",
      run_linear,
      2,
      {T3(2, 77, 1280), S2(320, 1280, 0.028f)},
      T3(2, 77, 320),
      {0},
      0},
     1},
    /* 992 = 448 + 272 + 272: the last chunk starts inside a 32-block (720 = 22.5 x 32); partial N tile */
    {{"linear 992->300 [2,77,992]",
      run_linear,
      3,
      {T3(2, 77, 992), S2(300, 992, 0.032f), T1(300)},
      T3(2, 77, 300),
      {0},
      0},
     1},
    {{"conv_in 3x3 4->320 32x32 no bias",
      run_conv,
      2,
      {T4(1, 4, 32, 32), S4(320, 4, 3, 3, 0.167f)},
      T4(1, 320, 32, 32),
      {1, 1},
      0},
     1},
};

static int clean(const op_result *r) { return r->status == SDC_OK && !r->leaked && !r->ws_left; }

/* The weight's rows: R rows of K (the dims after the first). */
static int64_t weight_rows(const op_case *c) { return c->in[1].ne[0]; }
static int64_t weight_k(const op_case *c) {
    int64_t K = 1;
    for (int i = 1; i < c->in[1].ndim; i++) K *= c->in[1].ne[i];
    return K;
}

/* Chunks of K after the first that start inside a block of `block` elements (block 1: all of them, each
 * starts inside the row); the starts go to what (for the log). */
static int mid_block_starts(const op_case *c, int64_t block, char *what, size_t size) {
    const int64_t R = weight_rows(c), K = weight_k(c);
    int n = 0;
    size_t len = (size_t)snprintf(what, size, "K %lld, chunks start at 0", (long long)K);
    for (int64_t k = sdc_cpu_k_chunk(R, K, 0); k < K; k += sdc_cpu_k_chunk(R, K, k)) {
        n += block == 1 || k % block != 0;
        if (len < size) len += (size_t)snprintf(what + len, size - len, ", %lld", (long long)k);
    }
    return n;
}

/* Runs one case with the weight in D_* dtype dt; returns 1 when a chunk of K started inside a block. */
static int run_case(const wcase *wc, int dt, uint64_t seed, sdc_backend *fast2, sdc_backend *fast1, sdc_backend *ref) {
    const sdc_dtype wdt = op_dtype(dt, SDC_DTYPE_F32);
    op_case c = wc->op, cw = wc->op;   // weight F32 / in wdt
    cw.in[1].dt = dt;
    char what[160], chunks[160];
    snprintf(what, sizeof what, "%s, %s weight", c.name, sdc_dtype_name(wdt));
    const int mid = mid_block_starts(&c, sdc_dtype_block(wdt), chunks, sizeof chunks);
    printf("%s (%s; %d inside a %s)\n", what, chunks, mid, sdc_dtype_block(wdt) > 1 ? "block" : "row");
    op_host host[OP_MAX_IN] = {{0}};
    for (int i = 0; i < c.n_in; i++) host[i] = op_make_input(&c, i, seed * 8 + (uint64_t)i);
    const op_host out = op_out_shape(&c);
    const size_t n = op_host_n(&out), nw = op_host_n(&host[1]);
    /* the weight stored as wdt, and its values: the F32 weight is then the dequantized one (rows of
     * whole blocks are one long row) */
    void *stored = malloc(sdc_dtype_row_bytes(wdt, (int64_t)nw));
    test_check(stored && sdc_quant_row(wdt, host[1].v, stored, (int64_t)nw) == 0 &&
                   sdc_dequant_row(wdt, stored, host[1].v, (int64_t)nw) == 0,
               "%s: weight stored as %s", what, sdc_dtype_name(wdt));
    host[1].raw = stored;

    const sdc_dtype f32 = SDC_DTYPE_F32;
    op_result want = op_run_on(fast2, &c, host, &out, f32), got2 = op_run_on(fast2, &cw, host, &out, f32);
    op_result got1 = op_run_on(fast1, &cw, host, &out, f32);
    test_check(test_max_abs(want.out, want.out, n) == 0, "%s: f32-weight output is finite", what);
    test_check_err(what, "max |diff| vs the f32-widened weight, 2 threads", test_max_abs(got2.out, want.out, n), 0);
    test_check(memcmp(got2.out, want.out, n * sizeof(float)) == 0, "%s: bit-identical to the f32 weight's output",
               what);
    test_check(memcmp(got2.out, got1.out, n * sizeof(float)) == 0, "%s: bit-identical on 1 and 2 threads", what);
    test_check(clean(&want) && clean(&got2) && clean(&got1), "%s: status ok, counters back, no workspace left", what);
    const size_t q2 = op_weight_workspace(fast2, &cw, host, &out, wdt, 0),
                 q1 = op_weight_workspace(fast1, &cw, host, &out, wdt, 0);
    test_check(got2.ws_peak == q2 && got1.ws_peak == q1 && q2 > op_weight_workspace(fast2, &c, host, &out, f32, 0),
               "%s: workspace counted = queried (2 threads %zu = %zu, 1 thread %zu = %zu), above the f32 weight's",
               what, got2.ws_peak, q2, got1.ws_peak, q1);
    printf("  time: f32 weight %8.2f ms, %s weight %8.2f ms (2 threads)\n", want.ms, sdc_dtype_name(wdt), got2.ms);
    if (wc->with_ref) {
        op_result r32 = op_run_on(ref, &c, host, &out, f32), rw = op_run_on(ref, &cw, host, &out, f32);
        test_check_err(what, "reference: max |diff| vs the f32-widened weight", test_max_abs(rw.out, r32.out, n), 0);
        test_check(clean(&r32) && clean(&rw), "%s: reference status ok, counters back", what);
        free(r32.out);
        free(rw.out);
    }
    free(want.out);
    free(got2.out);
    free(got1.out);
    for (int i = 0; i < OP_MAX_IN; i++) free(host[i].v);
    free(stored);
    return mid > 0;
}

int main(void) {
    sdc_backend *fast2 = sdc_backend_cpu_new(2, test_logger());
    sdc_backend *fast1 = sdc_backend_cpu_new(1, test_logger());
    sdc_backend *ref = sdc_backend_cpu_ref_new(test_logger());
    if (!test_check(fast2 && fast1 && ref, "backends created")) return test_finish();
    double t0 = test_now();
    static const int dtypes[] = {D_F16, D_BF16, D_Q8_0, D_Q4_0, D_Q4_K};
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
        const sdc_dtype wdt = op_dtype(dtypes[d], SDC_DTYPE_F32);
        int ran = 0, mid = 0;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const tspec *w = &cases[i].op.in[1];   // a block type's tensor: innermost rows of whole blocks
            if (w->ne[w->ndim - 1] % sdc_dtype_block(wdt) != 0) continue;
            mid += run_case(&cases[i], dtypes[d], 3000 + 1000 * d + i, fast2, fast1, ref);
            ran++;
        }
        test_check(ran > 0 && mid > 0, "%s weight: %d cases, %d with a chunk of K starting inside a row%s",
                   sdc_dtype_name(wdt), ran, mid, sdc_dtype_block(wdt) > 1 ? "'s block" : "");
    }
    test_check(fast2->stats.cur_total == 0 && fast1->stats.cur_total == 0 && ref->stats.cur_total == 0,
               "all backend memory freed");
    printf("total %.1f s\n", test_now() - t0);
    sdc_backend_free(fast2);
    sdc_backend_free(fast1);
    sdc_backend_free(ref);
    return test_finish();
}
