/* test_flux_pipeline.c - whole FluxPipeline runs against diffusers: the cases of tiny-flux-golden's
 * README.json (schnell_4, schnell_1_wide at 64x96, dev_8 with guidance 3.5) from the bundle's initial
 * latents, on the diffusers folders; the GGUF cases (schnell_4_q8_0, schnell_4_q4_0: the schnell folder
 * with --diffusion-model the bundle's city96-style Q8_0 / Q4_0 GGUF, dequantized to f32 at load); the
 * same PNGs under every load policy; inputs Flux refuses.
 *
 * The reference is tests/data/tiny-flux-pipe/pipeline.safetensors (tools/flux_pipeline_reference.py:
 * diffusers 0.42.1 as users load it, float64): the bundle's own pipeline outputs were made with the T5
 * encoder in training mode (dropout active; see test_t5.c), so they are printed, not bounded. diffusers
 * in eval mode is as far from them as sdc is (schnell_4 4.07e-2, schnell_1_wide 5.96e-2, dev_8 2.73e-2). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/quant.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

/* A folder, or (a GGUF transformer file) the schnell folder with the file as its diffusion model. */
static sdc_ctx *open_on(const char *model, sdc_load_policy pol, sdc_device dev, int f32) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.device = dev;
    cp.precision = f32 ? SDC_PRECISION_F32 : SDC_PRECISION_AUTO;
    const int gguf = strstr(model, ".gguf") != NULL;
    cp.model_path = test_ref_path(gguf ? "tiny-flux-schnell" : model);
    cp.diffusion_model_path = gguf ? test_ref_path(model) : NULL;
    cp.n_threads = 2;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    cp.load_policy = pol;
    return sdc_ctx_new(&cp);
}

static sdc_ctx *open_flux(const char *model, sdc_load_policy pol) { return open_on(model, pol, SDC_DEVICE_CPU, 0); }

/* CUDA builds on a GPU: every case (the GGUF ones with their block weights resident) in f32 (the CPU's bounds x10) and at
 * Flux's default precision there (transformer bf16, T5 f32, CLIP f16), the latter identical under every
 * load policy. */
static void cuda_cases(const cJSON *readme, sdc_model_index *g, sdc_model_index *fix) {
    static const sdc_load_policy policies[] = {SDC_LOAD_ALL, SDC_LOAD_SEQUENTIAL, SDC_LOAD_PHASED};
    const cJSON *c;
    cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
        const char *model = cJSON_GetObjectItemCaseSensitive(c, "model")->valuestring;
        for (int f32 = 1; f32 >= 0; f32--) {
            uint64_t hash0 = 0;
            for (size_t k = 0; k < (f32 ? 1 : sizeof policies / sizeof policies[0]); k++) {
                char label[64];
                snprintf(label, sizeof label, "cuda %s %s", f32 ? "f32" : "bf16", sdc_load_policy_name(policies[k]));
                sdc_ctx *ctx = open_on(model, policies[k], SDC_DEVICE_CUDA, f32);
                test_pipe_run r;
                if (ctx && test_pipe_run_case(ctx, c, g, label, &r)) {
                    char key[128], what[200];
                    snprintf(key, sizeof key, "pipe.%s.latents_final", r.name);
                    float *lat_ref = test_golden_f32(fix, key, NULL);
                    snprintf(key, sizeof key, "pipe.%s.image", r.name);
                    float *img_ref = test_golden_f32(fix, key, NULL);
                    if (k == 0 && lat_ref && img_ref) {
                        snprintf(what, sizeof what, "%s %s latents_final", r.name, label);
                        test_check_err(what, "rel err", test_rel_err(r.latents, lat_ref, r.n_lat), f32 ? 1e-3 : 5e-2);
                        snprintf(what, sizeof what, "%s %s image", r.name, label);
                        test_check_err(what, "max |d|", test_max_abs(r.pixels, img_ref, r.n_pix), f32 ? 1e-2 : 5e-2);
                    }
                    if (k == 0)
                        hash0 = r.png_hash;
                    else
                        test_check(r.png_hash == hash0 && hash0, "%s: PNG %016llx, under all %016llx", label,
                                   (unsigned long long)r.png_hash, (unsigned long long)hash0);
                    free(lat_ref);
                    free(img_ref);
                    test_pipe_run_free(&r);
                } else {
                    test_check(0, "%s: open and run %s", label, model);
                }
                sdc_ctx_free(ctx);
            }
        }
    }
}

/* max |PNG byte / 255 - ref| of the image sdc writes (its pixels rounded as sdc_image's bytes are). */
static double png_err(const float *pix, const float *ref, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        const float v = pix[i] < 0 ? 0 : pix[i] > 1 ? 1 : pix[i];
        const double d = fabs(nearbyintf(v * 255.0f) / 255.0 - ref[i]);
        m = d > m || d != d ? d : m;
    }
    return m;
}

int main(void) {
    cJSON *readme = test_pipe_readme("tiny-flux-golden");
    sdc_model_index *g = test_golden_open("tiny-flux-golden/pipeline.safetensors");
    sdc_model_index *fix = sdc_index_new(test_logger());
    if (!test_check(sdc_index_add_file(fix, SDC_SOURCE_DIR "/tests/data/tiny-flux-pipe/pipeline.safetensors", "", NULL,
                                       NULL) == SDC_OK,
                    "read tests/data/tiny-flux-pipe/pipeline.safetensors"))
        return test_finish();
    static const sdc_load_policy policies[] = {SDC_LOAD_ALL, SDC_LOAD_SEQUENTIAL, SDC_LOAD_PHASED};
    const cJSON *c;
    int ran = 0;
    /* Until core/quant.c dequantizes block types (the quant branch), the GGUF cases cannot load: they are
       named as not run and the count below expects the three others. Inert once it does. */
    const unsigned char q8_block[34] = {0};
    float q8_out[32];
    const int have_quant = sdc_dequant_row(SDC_DTYPE_Q8_0, q8_block, q8_out, 32) == 0;
    cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
        const char *model = cJSON_GetObjectItemCaseSensitive(c, "model")->valuestring;
        if (strstr(model, ".gguf") && !have_quant) {
            printf("  NOT RUN %s: sdc_dequant_row has no Q8_0/Q4_0 yet (core/quant.c, the quant branch)\n", model);
            continue;
        }
        uint64_t hash0 = 0;
        for (size_t k = 0; k < sizeof policies / sizeof policies[0]; k++) {
            const char *pname = sdc_load_policy_name(policies[k]);
            sdc_ctx *ctx = open_flux(model, policies[k]);
            if (!test_check(ctx != NULL && !strcmp(sdc_ctx_family(ctx), "flux"), "open %s (%s) as flux", model,
                            pname)) {
                sdc_ctx_free(ctx);
                continue;
            }
            test_pipe_run r;
            if (test_pipe_run_case(ctx, c, g, pname, &r)) {
                char what[200];
                if (k == 0) {
                    char key[128];
                    snprintf(key, sizeof key, "pipe.%s.latents_final", r.name);
                    float *lat_ref = test_golden_f32(fix, key, NULL);
                    snprintf(key, sizeof key, "pipe.%s.image", r.name);
                    float *img_ref = test_golden_f32(fix, key, NULL);
                    if (lat_ref && img_ref) {
                        snprintf(what, sizeof what, "%s latents_final", r.name);
                        test_check_err(what, "rel err", test_rel_err(r.latents, lat_ref, r.n_lat), 1e-4);
                        snprintf(what, sizeof what, "%s image", r.name);
                        test_check_err(what, "max |d|", test_max_abs(r.pixels, img_ref, r.n_pix), 1e-3);
                        snprintf(what, sizeof what, "%s PNG (8-bit) vs the float image", r.name);
                        test_check_err(what, "max |d|", png_err(r.pixels, img_ref, r.n_pix), 3.0 / 255);
                    }
                    printf("    %s against the bundle's golden (T5 dropout on; no bound): latents rel %.3e, image "
                           "max |d| %.3e\n",
                           r.name, test_rel_err(r.latents, r.latents_ref, r.n_lat),
                           test_max_abs(r.pixels, r.image_ref, r.n_pix));
                    free(lat_ref);
                    free(img_ref);
                    hash0 = r.png_hash;
                    ran++;
                } else {
                    test_check(r.png_hash == hash0 && hash0, "%s under %s: PNG %016llx, under all %016llx", r.name,
                               pname, (unsigned long long)r.png_hash, (unsigned long long)hash0);
                }
            }
            test_pipe_run_free(&r);
            sdc_ctx_free(ctx);
        }
    }
    test_check(ran == (have_quant ? 5 : 3), "%d golden pipelines ran (want %d)", ran, have_quant ? 5 : 3);
    if (sdc_device_available(SDC_DEVICE_CUDA)) cuda_cases(readme, g, fix);

    /* inputs Flux refuses, before any weight is read */
    sdc_ctx *ctx = open_flux("tiny-flux-schnell", SDC_LOAD_AUTO);
    if (ctx) {
        sdc_gen_params p;
        sdc_gen_params_init(&p);
        p.prompt = "x";
        p.steps = 1;
        p.width = 72; /* a multiple of 8, not of 16 */
        p.height = 64;
        sdc_image *im = NULL;
        int n = 0;
        test_check(sdc_generate(ctx, &p, &im, &n) == SDC_ERR_INVALID_ARG && !im,
                   "a width not a multiple of 16: SDC_ERR_INVALID_ARG");
        p.width = 64;
        p.sampler = SDC_SAMPLER_DDIM;
        test_check(sdc_generate(ctx, &p, &im, &n) == SDC_ERR_UNSUPPORTED && !im, "ddim with Flux: SDC_ERR_UNSUPPORTED");
        p.sampler = SDC_SAMPLER_DEFAULT;
        p.guidance = 0.0f / 0.0f;
        test_check(sdc_generate(ctx, &p, &im, &n) == SDC_ERR_INVALID_ARG && !im, "a NaN guidance: SDC_ERR_INVALID_ARG");
        sdc_ctx_free(ctx);
    }
    cJSON_Delete(readme);
    sdc_index_free(g);
    sdc_index_free(fix);
    return test_finish();
}
