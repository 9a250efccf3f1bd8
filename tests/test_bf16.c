/* test_bf16.c - linear and conv2d at --precision bf16 on the CPU (a weight marked matmul_bf16): both
 * operands rounded to bf16, f32 sums (src/backend/cpu/cpu_bf16.c).
 *
 * Each case draws fresh random inputs and a weight kept in BF16 (read in place by oneDNN's kernel), F32
 * or Q8_0 (widened a tile at a time, then rounded). Checked for the kernel the backend picks here (oneDNN
 * where the CPU has native bf16 code: its name is printed) and for the plain one (f32 sgemm on the rounded
 * values):
 *   - against the reference backend's bf16 product (the same rounded operands, sums in double):
 *     ||fast - ref|| / ||ref|| <= 1e-5, the f32 GEMM ops' bound (only the summation order differs);
 *   - bit-identical on 1 and 2 threads;
 *   - the workspace the op counts equals its workspace query (the planner's number); nothing left allocated.
 * Measured and bounded: the bf16 product against the f32 one on the same weight values (the error
 * --precision bf16 adds per op: a relative error near bf16's 2^-9 unit roundoff, bound 1e-2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ref.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "test_op_cases.h"
#include "test_util.h"

#define REF_REL 1e-5  /* the fast kernels against the double reference, on the same bf16 operands */
#define BF16_REL 1e-2 /* a bf16 product against the f32 product */

/* the op with its weight (in[1]) marked for a bf16 product, as the loader marks one at BF16_ALL */
static void run_linear_bf16(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    in[1]->matmul_bf16 = 1;
    run_linear(c, y, in);
}
static void run_conv_bf16(const op_case *c, sdc_tensor *y, sdc_tensor *const *in) {
    in[1]->matmul_bf16 = 1;
    run_conv(c, y, in);
}

static const op_case cases[] = {
    /* many M and N tiles */
    {"linear 320->1280 [1024,320]",
     run_linear,
     3,
     {T2(1024, 320), S2(1280, 320, 0.056f), T1(1280)},
     T2(1024, 1280),
     {0},
     0},
    /* a padded partial M tile, a partial N tile, no bias */
    {"linear 768->320 no bias [2,77,768]",
     run_linear,
     2,
     {T3(2, 77, 768), S2(320, 768, 0.036f)},
     T3(2, 77, 320),
     {0},
     0},
    /* K in chunks (1280 = 448 + 416 + 416) */
    {"linear 1280->320 [1024,1280]",
     run_linear,
     3,
     {T2(1024, 1280), S2(320, 1280, 0.028f), T1(320)},
     T2(1024, 320),
     {0},
     0},
    /* one thread (too small for a team) */
    {"linear 320->1280 [2,320] (time)",
     run_linear,
     3,
     {T2(2, 320), S2(1280, 320, 0.056f), T1(1280)},
     T2(2, 1280),
     {0},
     0},
    /* im2col bands, K in chunks (2880), a partial M tile */
    {"conv 3x3 320->320 32x32",
     run_conv,
     3,
     {T4(1, 320, 32, 32), S4(320, 320, 3, 3, 0.0186f), T1(320)},
     T4(1, 320, 32, 32),
     {1, 1},
     0},
    {"conv 3x3 s2 64->300 24x40 B2",
     run_conv,
     3,
     {T4(2, 64, 24, 40), S4(300, 64, 3, 3, 0.0417f), T1(300)},
     T4(2, 300, 12, 20),
     {2, 1},
     0},
    /* pointwise: the image is the GEMM's right operand */
    {"conv 1x1 320->640 16x16 B2",
     run_conv,
     3,
     {T4(2, 320, 16, 16), S4(640, 320, 1, 1, 0.056f), T1(640)},
     T4(2, 640, 16, 16),
     {1, 0},
     0},
    /* few output channels (conv_out): a deep unchunked K */
    {"conv_out 3x3 320->4 32x32",
     run_conv,
     3,
     {T4(1, 320, 32, 32), S4(4, 320, 3, 3, 0.0186f), T1(4)},
     T4(1, 4, 32, 32),
     {1, 1},
     0},
};

static int clean(const op_result *r) { return r->status == SDC_OK && !r->leaked && !r->ws_left; }

typedef struct kernel {
    const char *label;
    sdc_backend *two, *one; /* 2 threads, 1 thread */
} kernel;

/* One case with the weight in D_* dtype dt on each kernel; returns the largest bf16-vs-f32 error seen. */
static double run_case(const op_case *base, int dt, uint64_t seed, const kernel *ks, int n_k, sdc_backend *ref) {
    const sdc_dtype wdt = op_dtype(dt, SDC_DTYPE_F32);
    op_case c = *base, cb = *base;   // f32 product / bf16 product, the weight in wdt
    c.in[1].dt = cb.in[1].dt = dt;
    cb.run = base->run == run_linear ? run_linear_bf16 : run_conv_bf16;
    char what[160];
    snprintf(what, sizeof what, "%s, %s weight", base->name, sdc_dtype_name(wdt));
    op_host host[OP_MAX_IN] = {{0}};
    for (int i = 0; i < c.n_in; i++) host[i] = op_make_input(&c, i, seed * 8 + (uint64_t)i);
    const op_host out = op_out_shape(&c);
    const size_t n = op_host_n(&out), nw = op_host_n(&host[1]);
    void *stored = NULL; /* a block type's blocks; host[1].v then holds their values */
    if (sdc_dtype_is_quant(wdt)) {
        stored = malloc(sdc_dtype_row_bytes(wdt, (int64_t)nw));
        test_check(stored && sdc_quant_row(wdt, host[1].v, stored, (int64_t)nw) == 0 &&
                       sdc_dequant_row(wdt, stored, host[1].v, (int64_t)nw) == 0,
                   "%s: weight stored as %s", what, sdc_dtype_name(wdt));
        host[1].raw = stored;
    } else if (wdt == SDC_DTYPE_BF16) { /* the values the BF16 tensor holds */
        for (size_t i = 0; i < nw; i++) host[1].v[i] = sdc_bf16_to_f32(sdc_f32_to_bf16(host[1].v[i]));
    }
    const sdc_dtype f32 = SDC_DTYPE_F32;
    op_result want = op_run_on(ref, &cb, host, &out, f32);
    op_result exact = op_run_on(ks[0].two, &c, host, &out, f32); /* the f32 product */
    test_check(clean(&want) && clean(&exact), "%s: reference and f32 product ran", what);
    double bf16_err = 0;
    for (int k = 0; k < n_k; k++) {
        char tag[200];
        snprintf(tag, sizeof tag, "%s, %s kernel", what, ks[k].label);
        op_result got2 = op_run_on(ks[k].two, &cb, host, &out, f32), got1 = op_run_on(ks[k].one, &cb, host, &out, f32);
        test_check_err(tag, "rel vs the bf16 reference", test_rel_err(got2.out, want.out, n), REF_REL);
        test_check(memcmp(got2.out, got1.out, n * sizeof(float)) == 0, "%s: bit-identical on 1 and 2 threads", tag);
        test_check(clean(&got2) && clean(&got1), "%s: status ok, counters back, no workspace left", tag);
        const size_t q2 = op_weight_workspace(ks[k].two, &c, host, &out, wdt, 1),
                     q1 = op_weight_workspace(ks[k].one, &c, host, &out, wdt, 1);
        test_check(got2.ws_peak == q2 && got1.ws_peak == q1,
                   "%s: workspace counted = queried (2 threads %zu = %zu, 1 thread %zu = %zu)", tag, got2.ws_peak, q2,
                   got1.ws_peak, q1);
        const double e = test_rel_err(got2.out, exact.out, n);
        test_check_err(tag, "rel vs the f32 product", e, BF16_REL);
        if (e > bf16_err) bf16_err = e;
        printf("  %s: f32 %8.2f ms, bf16 %8.2f ms (2 threads)\n", tag, exact.ms, got2.ms);
        free(got2.out);
        free(got1.out);
    }
    free(want.out);
    free(exact.out);
    for (int i = 0; i < OP_MAX_IN; i++) free(host[i].v);
    free(stored);
    return bf16_err;
}

int main(void) {
    kernel ks[2] = {{"picked", sdc_backend_cpu_new(2, test_logger()), sdc_backend_cpu_new(1, test_logger())},
                    {"plain", sdc_backend_cpu_new(2, test_logger()), sdc_backend_cpu_new(1, test_logger())}};
    sdc_backend *ref = sdc_backend_cpu_ref_new(test_logger());
    if (!test_check(ks[0].two && ks[0].one && ks[1].two && ks[1].one && ref, "backends created")) return test_finish();
    sdc_cpu_bf16_use_plain(ks[1].two);
    sdc_cpu_bf16_use_plain(ks[1].one);
    const sdc_cpu_bf16 *picked = sdc_cpu_bf16_of(ks[0].two), *plain = sdc_cpu_bf16_of(ks[1].two);
    test_check(picked && plain, "kernels made: picked '%s'; plain '%s'", picked ? sdc_cpu_bf16_name(picked) : "-",
               plain ? sdc_cpu_bf16_name(plain) : "-");
    test_check(sdc_cpu_bf16_elem(plain) == sizeof(float), "the plain kernel takes f32 values");
    /* the same kernel on both backends of a pair, so "1 and 2 threads" compares like with like */
    test_check(!strcmp(sdc_cpu_bf16_name(sdc_cpu_bf16_of(ks[0].one)), sdc_cpu_bf16_name(picked)),
               "1- and 2-thread backends pick the same kernel");
    const int n_k = sdc_cpu_bf16_elem(picked) == sizeof(float) ? 1 : 2; /* picked plain: run it once */
    double t0 = test_now(), worst = 0;
    static const int dtypes[] = {D_BF16, D_F32, D_Q8_0};
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const sdc_dtype wdt = op_dtype(dtypes[d], SDC_DTYPE_F32);
            const tspec *w = &cases[i].in[1];
            if (w->ne[w->ndim - 1] % sdc_dtype_block(wdt) != 0) continue;   // a block type's rows: whole blocks
            const double e = run_case(&cases[i], dtypes[d], 7000 + 100 * d + i, ks, n_k, ref);
            if (e > worst) worst = e;
        }
    printf("largest bf16 vs f32 relative error over the cases: %.3g\n", worst);
    for (int k = 0; k < 2; k++)
        test_check(ks[k].two->stats.cur_total == 0 && ks[k].one->stats.cur_total == 0, "%s: all memory freed",
                   ks[k].label);
    printf("total %.1f s\n", test_now() - t0);
    for (int k = 0; k < 2; k++) {
        sdc_backend_free(ks[k].two);
        sdc_backend_free(ks[k].one);
    }
    sdc_backend_free(ref);
    return test_finish();
}
