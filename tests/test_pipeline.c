/* test_pipeline.c - whole StableDiffusionPipeline runs against diffusers (tiny-sd1-golden/pipeline +
 * README.json): txt2img from the stored initial latents, and img2img from a seed. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_util.h"

static sdc_ctx *open_model(const char *path, int fp16, int threads) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = path;
    cp.prefer_fp16 = fp16;
    cp.n_threads = threads;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    return sdc_ctx_new(&cp);
}

/* diffusers scheduler names in README.json -> sampler + karras */
static int scheduler_of(const char *name, sdc_sampler *s, int *karras) {
    static const struct {
        const char *name;
        sdc_sampler s;
        int karras;
    } map[] = {
        {"euler", SDC_SAMPLER_EULER, 0},       {"euler_karras", SDC_SAMPLER_EULER, 1},
        {"euler_a", SDC_SAMPLER_EULER_A, 0},   {"heun", SDC_SAMPLER_HEUN, 0},
        {"lms", SDC_SAMPLER_LMS, 0},           {"ddim", SDC_SAMPLER_DDIM, 0},
        {"pndm", SDC_SAMPLER_PNDM, 0},         {"dpmpp_2m", SDC_SAMPLER_DPMPP_2M, 0},
        {"dpmpp_2m_karras", SDC_SAMPLER_DPMPP_2M, 1},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(name, map[i].name)) {
            *s = map[i].s;
            *karras = map[i].karras;
            return 0;
        }
    return -1;
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Runs one README.json case; returns 0 when it ran. */
static void run_case(sdc_ctx *ctx, const cJSON *c, sdc_model_index *g, const char *label) {
    const char *name = jstr(c, "case");
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = jstr(c, "prompt");
    p.negative_prompt = jstr(c, "negative_prompt");
    p.steps = (int)jnum(c, "steps", 0);
    p.cfg_scale = (float)jnum(c, "guidance_scale", 7.5);
    if (scheduler_of(jstr(c, "scheduler"), &p.sampler, &p.karras)) {
        test_check(0, "%s: unknown scheduler %s in README.json", name, jstr(c, "scheduler"));
        return;
    }
    char key[128];
    float *latents_in = NULL, *latents_ref = NULL, *image_ref = NULL;
    const sdc_tensor_info *info = NULL;
    sdc_image *init = NULL;
    const char *init_rel = jstr(c, "init_image");
    if (init_rel) {
        char rel[256];
        snprintf(rel, sizeof rel, "tiny-sd1-golden/%s", init_rel);
        if (!test_check(sdc_image_load(test_ref_path(rel), &init, sdc_log_stderr, NULL) == SDC_OK, "%s: load %s", name, rel))
            return;
        p.init_image = init;
        p.width = init->width;
        p.height = init->height;
        p.strength = (float)jnum(c, "strength", 0.75);
        /* the generator seed is stated in the case's text: "seed 7" */
        const char *gen = jstr(c, "generator");
        const char *s = gen ? strstr(gen, "seed ") : NULL;
        p.seed = s ? atoll(s + 5) : 0;
    } else {
        p.width = (int)jnum(c, "width", 0);
        p.height = (int)jnum(c, "height", 0);
        snprintf(key, sizeof key, "pipe.%s.latents_in", name);
        latents_in = test_golden_f32(g, key, &info);
        p.latents_in = latents_in;
        snprintf(key, sizeof key, "pipe.%s.latents_final", name);
        latents_ref = test_golden_f32(g, key, NULL);
    }
    snprintf(key, sizeof key, "pipe.%s.image", name);
    image_ref = test_golden_f32(g, key, NULL);
    size_t n_lat = (size_t)(4 * (p.width / 8) * (p.height / 8)), n_pix = (size_t)(p.width * p.height * 3);
    float *lat = malloc(sizeof(float) * n_lat), *pix = malloc(sizeof(float) * n_pix);
    p.latents_out = lat;
    p.pixels_out = pix;
    sdc_image *images = NULL;
    int n = 0;
    double t0 = test_now();
    sdc_status st = sdc_generate(ctx, &p, &images, &n);
    char what[160];
    snprintf(what, sizeof what, "%s %s", label, name);
    if (test_check(st == SDC_OK && n == 1, "%s: generate (%s, %.2f s)", what, sdc_status_str(st), test_now() - t0)) {
        if (latents_ref) {
            char w2[200];
            snprintf(w2, sizeof w2, "%s latents_final", what);
            test_check_err(w2, "rel err", test_rel_err(lat, latents_ref, n_lat), !strcmp(label, "f32") ? 1e-4 : 1e30);
        }
        if (image_ref) {
            char w2[200];
            snprintf(w2, sizeof w2, "%s image", what);
            test_check_err(w2, "max |d|", test_max_abs(pix, image_ref, n_pix),
                           !strcmp(label, "f32") ? (init ? 2e-3 : 1e-3) : 1e30);
        }
    }
    sdc_images_free(images, n);
    sdc_images_free(init, 1);
    free(lat);
    free(pix);
    free(latents_in);
    free(latents_ref);
    free(image_ref);
}

int main(void) {
    char *text;
    size_t len;
    if (sdc_read_file(test_ref_path("tiny-sd1-golden/README.json"), test_logger(), &text, &len) != SDC_OK) return 1;
    cJSON *readme = cJSON_Parse(text);
    free(text);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(readme, "pipelines");
    sdc_model_index *g = test_golden_open("tiny-sd1-golden/pipeline.safetensors");

    sdc_ctx *ctx = open_model(test_ref_path("tiny-sd1"), 0, 2);
    if (!test_check(ctx != NULL, "open tiny-sd1")) return test_finish();
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) run_case(ctx, c, g, "f32");
    sdc_ctx_free(ctx);

    cJSON_Delete(readme);
    sdc_index_free(g);
    return test_finish();
}
