/* test_cuda_sd15.c - fp16 against f32 on the GPU at real size: the sd15-shaped random model
 * ($SDC_SD15_MODEL, made by `sdc mkmodel --arch sd15`) at 512x512, on the CUDA backend.
 *
 *   one UNet evaluation  x [2, 4, 64, 64] ~ N(0, 1), t = 500, context [2, 77, 768] ~ N(0, 1):
 *                        relative error of the output, fp16 (f16 weights and activations, f32
 *                        accumulation) against f32, bound 5e-3;
 *   a whole pipeline     euler, 4 steps, CFG 7.5, the same stored initial latents: relative error of the
 *                        final latents, bound 5e-3.
 * The same two at --precision bf16 against f32, bound 4e-2 (bf16 keeps 8 significant bits: unit roundoff
 * 3.9e-3, the same ~10x budget).
 * Why 5e-3: f16 keeps 11 significant bits (unit roundoff 4.9e-4); activations are rounded at every op
 * boundary of a ~100-op-deep network with f32 accumulation inside each op, which keeps the error to a
 * few roundoffs per layer on normalised activations: ~10x the unit roundoff is the budget we defend.
 * The model path must be given: without it the test fails (it never skips). It needs a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/activations.h"
#include "model/unet.h"
#include "pipeline/model.h"
#include "sdc.h"
#include "test_util.h"

static sdc_model *open_model(const char *path, sdc_precision prec) {
    sdc_component_path paths[] = {{"model", path}};
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    mp.paths = paths;
    mp.n_paths = 1;
    mp.device = SDC_DEVICE_CUDA;
    mp.precision = prec;
    mp.load_policy = SDC_LOAD_ALL;
    mp.log_fn = sdc_log_stderr;
    mp.log_level = SDC_LOG_WARN;
    return sdc_model_open(&mp);
}

static int component_index(const sdc_model *m, const char *name) {
    for (int c = 0; c < m->n_components; c++)
        if (!strcmp(sdc_model_component_name(m, c), name)) return c;
    return -1;
}

/* out [2, 4, 64, 64] of one UNet evaluation on m's GPU backend. */
static int unet_once(sdc_model *m, const float *x, const float *ctx, float *out) {
    const int c = component_index(m, "unet");
    if (c < 0 || sdc_model_load_component(m, c) != SDC_OK) return 0;
    sdc_unet *u = m->comp[c];
    const sdc_dtype dt = sdc_unet_act_dtype(u);
    sdc_tensor *tx = sdc_act_new(m->be, dt, 4, (int64_t[]){2, 4, 64, 64});
    sdc_tensor *tc = sdc_act_new(m->be, dt, 3, (int64_t[]){2, 77, 768});
    sdc_tensor *to = sdc_act_new(m->be, dt, 4, (int64_t[]){2, 4, 64, 64});
    int ok = tx && tc && to;
    if (ok) {
        sdc_tensor_set_f32(tx, x);
        sdc_tensor_set_f32(tc, ctx);
        const float t[2] = {500.0f, 500.0f};
        ok = sdc_unet_forward(u, tx, t, &(sdc_unet_cond){.context = tc}, to, NULL, NULL) == SDC_OK;
    }
    if (ok) sdc_tensor_get_f32(to, out);
    sdc_tensor_free(tx);
    sdc_tensor_free(tc);
    sdc_tensor_free(to);
    sdc_model_unload_all(m);
    return ok;
}

static int pipeline(sdc_model *m, const float *lat_in, float *lat_out) {
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a photo of an astronaut riding a horse";
    p.negative_prompt = "blurry";
    p.steps = 4;
    p.sampler = SDC_SAMPLER_EULER;
    p.latents_in = lat_in;
    p.latents_out = lat_out;
    sdc_job *j = sdc_job_new(m, &p);
    int ok = j && sdc_job_run(j) == SDC_OK;
    sdc_job_free(j);
    return ok;
}

int main(void) {
    const char *path = getenv("SDC_SD15_MODEL");
    if (!test_check(path && *path, "SDC_SD15_MODEL names the sd15-shaped model (sdc mkmodel --arch sd15)"))
        return test_finish();
    const size_t nx = 2 * 4 * 64 * 64, nc = 2 * 77 * 768, nl = 4 * 64 * 64;
    float *x = malloc(sizeof(float) * nx), *ctx = malloc(sizeof(float) * nc), *lat = malloc(sizeof(float) * nl);
    float *o16 = malloc(sizeof(float) * nx), *o32 = malloc(sizeof(float) * nx);
    float *l16 = malloc(sizeof(float) * nl), *l32 = malloc(sizeof(float) * nl);
    test_fill_normal(x, nx, 1, 1.0f);
    test_fill_normal(ctx, nc, 2, 1.0f);
    test_fill_normal(lat, nl, 3, 1.0f);
    static const struct {
        const char *name;
        sdc_precision prec;
        double bound;
    } precs[] = {{"fp16", SDC_PRECISION_AUTO, 5e-3}, {"bf16", SDC_PRECISION_BF16, 4e-2}};
    sdc_model *m32 = open_model(path, SDC_PRECISION_F32);
    const int ok32 = test_check(m32 && unet_once(m32, x, ctx, o32) && pipeline(m32, lat, l32),
                                "open %s on CUDA in f32: one UNet evaluation, a 4-step pipeline", path);
    for (size_t i = 0; ok32 && i < sizeof precs / sizeof precs[0]; i++) {
        sdc_model *m16 = open_model(path, precs[i].prec);
        char what[160];
        if (test_check(m16 && unet_once(m16, x, ctx, o16), "%s: open, one UNet evaluation", precs[i].name)) {
            snprintf(what, sizeof what, "UNet 512x512 %s vs f32", precs[i].name);
            test_check_err(what, "rel err", test_rel_err(o16, o32, nx), precs[i].bound);
        }
        if (test_check(m16 && pipeline(m16, lat, l16), "%s: a 4-step pipeline", precs[i].name)) {
            snprintf(what, sizeof what, "pipeline 512x512 euler 4 steps CFG 7.5, final latents %s vs f32",
                     precs[i].name);
            test_check_err(what, "rel err", test_rel_err(l16, l32, nl), precs[i].bound);
        }
        sdc_model_free(m16);
    }
    /* recorded forwards (CUDA graphs, model/graph.h): from the third UNet call of the pipeline on, the same
     * latents bit for bit as with recording turned off (SDC_CUDA_GRAPHS=0, read when a backend is made) */
    sdc_model *mg = open_model(path, SDC_PRECISION_AUTO);
    const int cu = mg ? component_index(mg, "unet") : -1;
    if (test_check(mg && cu >= 0 && pipeline(mg, lat, l16), "fp16: a 4-step pipeline, forwards recorded")) {
        const uint64_t replays = mg->comp[cu] ? sdc_unet_graph_replays(mg->comp[cu]) : 0;
        test_check(replays == 2,
                   "the UNet's forwards 3 and 4 of 4 were replays of the second's recording: %llu (want 2)",
                   (unsigned long long)replays);
        setenv("SDC_CUDA_GRAPHS", "0", 1);
        sdc_model *mn = open_model(path, SDC_PRECISION_AUTO);
        if (test_check(mn && pipeline(mn, lat, l32), "fp16: a 4-step pipeline, SDC_CUDA_GRAPHS=0"))
            test_check(memcmp(l16, l32, sizeof(float) * nl) == 0 && mn->comp[cu] &&
                           sdc_unet_graph_replays(mn->comp[cu]) == 0,
                       "recorded and unrecorded forwards give the same latents bit for bit (max |diff| %g)",
                       test_max_abs(l16, l32, nl));
        unsetenv("SDC_CUDA_GRAPHS");
        sdc_model_free(mn);
    }
    sdc_model_free(mg);
    sdc_model_free(m32);
    free(x);
    free(ctx);
    free(lat);
    free(o16);
    free(o32);
    free(l16);
    free(l32);
    return test_finish();
}
