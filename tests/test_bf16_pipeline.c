/* test_bf16_pipeline.c - whole pipelines at --precision bf16 on the CPU against diffusers' f32 outputs:
 * tiny-sd1 (every case of tiny-sd1-golden's README.json) and tiny-flux-schnell / -dev (tiny-flux-golden's
 * cases, against tests/data/tiny-flux-pipe, as test_flux_pipeline).
 *
 * Measured and bounded: the latents' relative error against the f32 reference, with the CUDA bf16 pipelines'
 * bound (5e-2; test_flux_pipeline), and the image's max |d| (bound 1e-1: measured 5.04e-2 on tiny-sd1's
 * txt2img_euler_4, whose random weights and CFG 7.5 amplify a bf16 rounding to 13/255 in one pixel;
 * 1.3e-2 on Flux; the f32 path's is 1e-3). On a CUDA build with a GPU the same cases run there too.
 * Identity: every case gives
 * the same PNG bytes and latents under `all` with 2 threads, `phased` with 2 threads and `all` with 1
 * thread. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

#define LAT_REL 5e-2
#define IMG_MAX 1e-1

static sdc_ctx *open_bf16(const char *model, sdc_device dev, sdc_load_policy pol, int threads) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.device = dev;
    cp.model_path = test_ref_path(model);
    cp.precision = SDC_PRECISION_BF16;
    cp.n_threads = threads;
    cp.load_policy = pol;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    return sdc_ctx_new(&cp);
}

/* The family's cases: the first run of each measured against the f32 reference (refs: where its
 * latents_final and image are; NULL: the golden's own), then the others compared bit for bit. */
static int run_family(const char *golden, const char *fixed_model, sdc_model_index *refs, sdc_device dev) {
    static const struct {
        sdc_load_policy pol;
        int threads;
    } runs[] = {{SDC_LOAD_ALL, 2}, {SDC_LOAD_PHASED, 2}, {SDC_LOAD_ALL, 1}};
    const char *dev_name = dev == SDC_DEVICE_CUDA ? "cuda" : "cpu";
    char path[256];
    snprintf(path, sizeof path, "%s/pipeline.safetensors", golden);
    cJSON *readme = test_pipe_readme(golden);
    sdc_model_index *g = test_golden_open(path);
    int ran = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "model");
        const char *model = fixed_model ? fixed_model : cJSON_IsString(m) ? m->valuestring : NULL;
        if (!model || strstr(model, ".gguf")) continue; /* GGUF transformers: test_flux_pipeline */
        uint64_t hash0 = 0;
        float *lat0 = NULL;
        size_t n_lat = 0;
        for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
            char label[96];
            snprintf(label, sizeof label, "%s %s bf16 %s %d threads", model, dev_name,
                     sdc_load_policy_name(runs[k].pol), runs[k].threads);
            sdc_ctx *ctx = open_bf16(model, dev, runs[k].pol, runs[k].threads);
            test_pipe_run r;
            if (!ctx || !test_pipe_run_case(ctx, c, g, label, &r)) {
                test_check(0, "%s: open and run", label);
                sdc_ctx_free(ctx);
                continue;
            }
            char what[200], key[128];
            if (k == 0) {
                float *lat_ref = r.latents_ref, *img_ref = r.image_ref;
                float *own_lat = NULL, *own_img = NULL;
                if (refs) {
                    snprintf(key, sizeof key, "pipe.%s.latents_final", r.name);
                    lat_ref = own_lat = test_golden_f32(refs, key, NULL);
                    snprintf(key, sizeof key, "pipe.%s.image", r.name);
                    img_ref = own_img = test_golden_f32(refs, key, NULL);
                }
                if (lat_ref) {
                    snprintf(what, sizeof what, "%s %s latents_final", r.name, label);
                    test_check_err(what, "rel err vs f32", test_rel_err(r.latents, lat_ref, r.n_lat), LAT_REL);
                }
                if (img_ref) {
                    snprintf(what, sizeof what, "%s %s image", r.name, label);
                    test_check_err(what, "max |d| vs f32", test_max_abs(r.pixels, img_ref, r.n_pix), IMG_MAX);
                }
                test_check(lat_ref || img_ref, "%s %s: a reference to measure against", r.name, label);
                free(own_lat);
                free(own_img);
                hash0 = r.png_hash;
                n_lat = r.n_lat;
                lat0 = malloc(n_lat * sizeof(float));
                if (lat0 && r.latents) memcpy(lat0, r.latents, n_lat * sizeof(float));
                ran++;
            } else {
                test_check(r.png_hash == hash0 && hash0 && lat0 && r.latents && r.n_lat == n_lat &&
                               !memcmp(r.latents, lat0, n_lat * sizeof(float)),
                           "%s %s: PNG %016llx and latents as the first run's (%016llx)", r.name, label,
                           (unsigned long long)r.png_hash, (unsigned long long)hash0);
            }
            test_pipe_run_free(&r);
            sdc_ctx_free(ctx);
        }
        free(lat0);
    }
    cJSON_Delete(readme);
    sdc_index_free(g);
    return ran;
}

int main(void) {
    sdc_model_index *fix = sdc_index_new(test_logger());
    const int fix_ok =
        test_check(sdc_index_add_file(fix, SDC_SOURCE_DIR "/tests/data/tiny-flux-pipe/pipeline.safetensors", "", NULL,
                                      NULL) == SDC_OK,
                   "read tests/data/tiny-flux-pipe/pipeline.safetensors");
    /* CUDA builds on a GPU: the same cases there (bf16 activations everywhere; the thread count does not
     * apply, so the third run repeats the first) */
    for (int d = 0; d < 2; d++) {
        const sdc_device dev = d ? SDC_DEVICE_CUDA : SDC_DEVICE_CPU;
        if (dev == SDC_DEVICE_CUDA && !sdc_device_available(SDC_DEVICE_CUDA)) break;
        const int sd = run_family("tiny-sd1-golden", "tiny-sd1", NULL, dev);
        test_check(sd >= 2, "tiny-sd1: %d cases ran", sd);
        if (fix_ok) {
            const int fl = run_family("tiny-flux-golden", NULL, fix, dev);
            test_check(fl >= 3, "tiny-flux: %d cases ran", fl);
        }
    }
    sdc_index_free(fix);
    return test_finish();
}
