/* test_weight_dtypes.c - linear and conv2d with matrix weights kept in F16 or BF16 (the CPU backend
 * widens them a GEMM tile at a time) against the same ops on the weights widened to F32 up front.
 *
 * Widening is exact and the tiles are those of the F32 path, so the outputs must be bit-identical
 * (max |diff| against bound 0), on the fast backend (2 threads and 1) and on the reference backend.
 * Each case draws fresh random inputs; the weight is rounded to the storage dtype first, so its F32
 * copy holds the same values. Also checked: the workspace the op counts equals its workspace query
 * (the planner's number), and nothing is left allocated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ref.h"
#include "backend/ops.h"
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
    {{"conv_in 3x3 4->320 32x32 no bias",
      run_conv,
      2,
      {T4(1, 4, 32, 32), S4(320, 4, 3, 3, 0.167f)},
      T4(1, 320, 32, 32),
      {1, 1},
      0},
     1},
};

/* The workspace the fast backend's query names for c with weight dtype wdt. */
static size_t query(sdc_backend *be, const op_case *c, const op_host *in, const op_host *out, sdc_dtype wdt) {
    sdc_tensor x = {.dtype = SDC_DTYPE_F32, .ndim = in[0].ndim}, w = {.dtype = wdt, .ndim = in[1].ndim};
    sdc_tensor y = {.dtype = SDC_DTYPE_F32, .ndim = out->ndim};
    for (int i = 0; i < 4; i++) {
        x.ne[i] = in[0].ne[i];
        w.ne[i] = in[1].ne[i];
        y.ne[i] = out->ne[i];
    }
    return c->run == run_linear ? be->iface->linear_workspace(be, &y, &x, &w)
                                : be->iface->conv2d_workspace(be, &y, &x, &w, c->iarg[0], c->iarg[1]);
}

static int clean(const op_result *r) { return r->status == SDC_OK && !r->leaked && !r->ws_left; }

static void run_case(const wcase *wc, int dt, uint64_t seed, sdc_backend *fast2, sdc_backend *fast1, sdc_backend *ref) {
    const sdc_dtype wdt = op_dtype(dt, SDC_DTYPE_F32);
    op_case c = wc->op, cw = wc->op;   // weight F32 / in wdt
    cw.in[1].dt = dt;
    char what[160];
    snprintf(what, sizeof what, "%s, %s weight", c.name, sdc_dtype_name(wdt));
    printf("%s\n", what);
    op_host host[OP_MAX_IN] = {{0}};
    for (int i = 0; i < c.n_in; i++) host[i] = op_make_input(&c, i, seed * 8 + (uint64_t)i);
    const op_host out = op_out_shape(&c);
    const size_t n = op_host_n(&out), nw = op_host_n(&host[1]);
    void *tmp = malloc(nw * 2);   // the weight rounded to wdt: its F32 copy is then the widened weight
    sdc_convert_from_f32(tmp, wdt, host[1].v, nw);
    sdc_convert_to_f32(host[1].v, tmp, wdt, nw);
    free(tmp);

    const sdc_dtype f32 = SDC_DTYPE_F32;
    op_result want = op_run_on(fast2, &c, host, &out, f32), got2 = op_run_on(fast2, &cw, host, &out, f32);
    op_result got1 = op_run_on(fast1, &cw, host, &out, f32);
    test_check(test_max_abs(want.out, want.out, n) == 0, "%s: f32-weight output is finite", what);
    test_check_err(what, "max |diff| vs the f32-widened weight, 2 threads", test_max_abs(got2.out, want.out, n), 0);
    test_check(memcmp(got2.out, want.out, n * sizeof(float)) == 0, "%s: bit-identical to the f32 weight's output",
               what);
    test_check(memcmp(got2.out, got1.out, n * sizeof(float)) == 0, "%s: bit-identical on 1 and 2 threads", what);
    test_check(clean(&want) && clean(&got2) && clean(&got1), "%s: status ok, counters back, no workspace left", what);
    const size_t q2 = query(fast2, &cw, host, &out, wdt), q1 = query(fast1, &cw, host, &out, wdt);
    test_check(got2.ws_peak == q2 && got1.ws_peak == q1 && q2 > query(fast2, &c, host, &out, f32),
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
}

int main(void) {
    sdc_backend *fast2 = sdc_backend_cpu_new(2, test_logger());
    sdc_backend *fast1 = sdc_backend_cpu_new(1, test_logger());
    sdc_backend *ref = sdc_backend_cpu_ref_new(test_logger());
    if (!test_check(fast2 && fast1 && ref, "backends created")) return test_finish();
    double t0 = test_now();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_case(&cases[i], D_F16, 3000 + i, fast2, fast1, ref);
        run_case(&cases[i], D_BF16, 4000 + i, fast2, fast1, ref);
    }
    test_check(fast2->stats.cur_total == 0 && fast1->stats.cur_total == 0 && ref->stats.cur_total == 0,
               "all backend memory freed");
    printf("total %.1f s\n", test_now() - t0);
    sdc_backend_free(fast2);
    sdc_backend_free(fast1);
    sdc_backend_free(ref);
    return test_finish();
}
