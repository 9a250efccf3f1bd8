/* test_profile.c - the op profile (sdc_model_params.profile, `--profile`): its work counts and the
 * per-phase split of the report.
 *   - ops on a profiled CPU backend add 2 FLOPs per multiply-add to their family: linear 2 M N K,
 *     conv 2 B Co Ho Wo Ci KH KW (strided and padded), attention 4 B T S H D (2 when causal),
 *     attention with a bias the same; the other ops count calls and time but no FLOPs;
 *   - a profiled generation of the demo model: the report's per-phase op seconds and FLOPs add up to
 *     the run's totals (relative difference printed, bound 1e-9), and the denoise phase did linear,
 *     conv and attention work while the decode phase did conv work. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "sdc.h"
#include "test_util.h"

static sdc_tensor *tensor(sdc_backend *be, int nd, const int64_t *ne, uint64_t seed) {
    sdc_tensor *t = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, nd, ne);
    if (!t) return NULL;
    size_t n = (size_t)sdc_tensor_nelem(t);
    float *h = malloc(n * sizeof *h);
    if (h) {
        test_fill_normal(h, n, seed, 1.0f);
        (void)sdc_tensor_set_f32(t, h);
    }
    free(h);
    return t;
}

/* The FLOPs and calls family f gained since *before, checked against want. */
static void expect(sdc_backend *be, sdc_op_profile *before, sdc_op_family f, double want, const char *what) {
    const double got = be->profile->flops[f] - before->flops[f];
    const uint64_t calls = be->profile->calls[f] - before->calls[f];
    test_check(got == want && calls == 1, "%s: %.0f FLOPs in %s (want %.0f), %llu call", what, got,
               sdc_op_family_name(f), want, (unsigned long long)calls);
    *before = *be->profile;
}

static void op_counts(void) {
    sdc_backend *be = sdc_backend_cpu_new(2, test_logger());
    if (!test_check(be != NULL, "cpu backend")) return;
    be->profile = calloc(1, sizeof *be->profile);
    sdc_op_profile mark = {0};

    /* linear: x [3, 5, 24] . w [40, 24]^T */
    sdc_tensor *x = tensor(be, 3, (int64_t[]){3, 5, 24}, 1), *w = tensor(be, 2, (int64_t[]){40, 24}, 2);
    sdc_tensor *b = tensor(be, 1, (int64_t[]){40}, 3), *y = tensor(be, 3, (int64_t[]){3, 5, 40}, 0);
    sdc_linear(y, x, w, b);
    expect(be, &mark, SDC_OPF_LINEAR, 2.0 * 15 * 40 * 24, "linear [15 x 24] . [40 x 24]^T");
    sdc_tensor *ys[] = {x, w, b, y};
    for (int i = 0; i < 4; i++) sdc_tensor_free(ys[i]);

    /* conv: x [2, 6, 9, 11], w [8, 6, 3, 3], stride 2, pad 1 -> y [2, 8, 5, 6] */
    x = tensor(be, 4, (int64_t[]){2, 6, 9, 11}, 4);
    w = tensor(be, 4, (int64_t[]){8, 6, 3, 3}, 5);
    y = tensor(be, 4, (int64_t[]){2, 8, 5, 6}, 0);
    sdc_conv2d(y, x, w, NULL, 2, 1);
    expect(be, &mark, SDC_OPF_CONV, 2.0 * (2 * 8 * 5 * 6) * (6 * 3 * 3), "conv 6->8 3x3 stride 2 pad 1");
    sdc_tensor_free(x);
    sdc_tensor_free(w);
    sdc_tensor_free(y);

    /* attention: q [2, 7, 4*8], k, v [2, 9, 4*8]; causal: q, k, v [2, 7, 32] */
    sdc_tensor *q = tensor(be, 3, (int64_t[]){2, 7, 32}, 6), *k = tensor(be, 3, (int64_t[]){2, 9, 32}, 7);
    sdc_tensor *v = tensor(be, 3, (int64_t[]){2, 9, 32}, 8);
    y = tensor(be, 3, (int64_t[]){2, 7, 32}, 0);
    sdc_attention(y, q, k, v, 4, 0);
    expect(be, &mark, SDC_OPF_ATTENTION, 4.0 * 2 * 7 * 9 * 32, "attention T 7, S 9, 4 heads of 8");
    sdc_tensor *bias = tensor(be, 3, (int64_t[]){4, 7, 9}, 9);
    sdc_attention_bias(y, q, k, v, bias, 4, 1.0f);
    expect(be, &mark, SDC_OPF_ATTENTION, 4.0 * 2 * 7 * 9 * 32, "attention with a bias");
    sdc_tensor *kc = tensor(be, 3, (int64_t[]){2, 7, 32}, 10), *vc = tensor(be, 3, (int64_t[]){2, 7, 32}, 11);
    sdc_attention(y, q, kc, vc, 4, 1);
    expect(be, &mark, SDC_OPF_ATTENTION, 2.0 * 2 * 7 * 7 * 32, "causal attention T = S = 7");
    sdc_scale(y, y, 0.5f);
    expect(be, &mark, SDC_OPF_ELEMENTWISE, 0.0, "scale");
    test_check(sdc_backend_sync(be) == SDC_OK, "ops ran: %s", sdc_status_str(sdc_backend_status(be)));
    sdc_tensor *rest[] = {q, k, v, y, bias, kc, vc};
    for (int i = 0; i < 7; i++) sdc_tensor_free(rest[i]);
    free(be->profile);
    be->profile = NULL;
    sdc_backend_free(be);
}

static double num(const cJSON *o, const char *a, const char *b) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b);
    return cJSON_IsNumber(n) ? n->valuedouble : NAN;
}

static void phase_split(void) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = SDC_SOURCE_DIR "/data/demo-model";
    cp.n_threads = 1;
    cp.profile = 1;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    if (!test_check(ctx != NULL, "open data/demo-model with profiling")) return;
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a red circle on a blue background";
    p.width = p.height = 32;
    p.steps = 3;
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status st = sdc_generate(ctx, &p, &imgs, &n);
    cJSON *rep = st == SDC_OK ? cJSON_Parse(sdc_last_report_json(ctx)) : NULL;
    if (test_check(rep != NULL, "generate and parse the report: %s", sdc_status_str(st))) {
        const cJSON *phases = cJSON_GetObjectItemCaseSensitive(rep, "phases");
        const char *fam[] = {"linear", "conv", "attention", "norm", "elementwise", "data"};
        for (int f = 0; f < 6; f++) {
            double sec = 0, fl = 0;
            const cJSON *ph;
            cJSON_ArrayForEach(ph, phases) {
                sec += num(ph, "op_seconds", fam[f]);
                fl += num(ph, "op_flops", fam[f]);
            }
            const double tsec = num(rep, "op_seconds", fam[f]), tfl = num(rep, "op_flops", fam[f]);
            test_check_err(fam[f], "phases' op seconds vs the run's (relative)",
                           fabs(sec - tsec) / (tsec > 0 ? tsec : 1), 1e-9);
            test_check_err(fam[f], "phases' op FLOPs vs the run's (relative)", fabs(fl - tfl) / (tfl > 0 ? tfl : 1),
                           1e-9);
        }
        const cJSON *den = cJSON_GetObjectItemCaseSensitive(phases, "denoise");
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(phases, "decode");
        test_check(num(den, "op_flops", "linear") > 0 && num(den, "op_flops", "conv") > 0 &&
                       num(den, "op_flops", "attention") > 0 && num(dec, "op_flops", "conv") > 0,
                   "denoise: linear %.3g, conv %.3g, attention %.3g FLOPs; decode: conv %.3g FLOPs",
                   num(den, "op_flops", "linear"), num(den, "op_flops", "conv"), num(den, "op_flops", "attention"),
                   num(dec, "op_flops", "conv"));
    }
    cJSON_Delete(rep);
    sdc_image_free(imgs, n);
    sdc_ctx_free(ctx);
}

int main(void) {
    op_counts();
    phase_split();
    return test_finish();
}
