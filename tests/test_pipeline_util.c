/* test_pipeline_util.c - the README.json pipeline cases, shared by test_pipeline and test_single_file. */
#include "test_pipeline_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "pipeline/ctx.h"
#include "test_golden.h"
#include "test_util.h"

/* The golden folder of the last README read: init images are relative to it. */
static char golden_dir[128] = "tiny-sd1-golden";

cJSON *test_pipe_readme(const char *dir) {
    snprintf(golden_dir, sizeof golden_dir, "%s", dir);
    char rel[256];
    snprintf(rel, sizeof rel, "%s/README.json", dir);
    char *text;
    size_t len;
    if (sdc_read_file(test_ref_path(rel), test_logger(), &text, &len) != SDC_OK) {
        test_check(0, "read %s", rel);
        exit(test_finish());
    }
    cJSON *readme = cJSON_Parse(text);
    free(text);
    if (!test_check(readme != NULL, "parse %s", rel)) exit(test_finish());
    return readme;
}

const cJSON *test_pipe_cases(const cJSON *readme) { return cJSON_GetObjectItemCaseSensitive(readme, "pipelines"); }

sdc_ctx *test_pipe_open(const char *model_path, const char *config_dir, const char *tokenizer_dir, int fp16,
                        int threads) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = model_path;
    cp.config_dir = config_dir;
    cp.tokenizer_dir = tokenizer_dir;
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
        {"euler", SDC_SAMPLER_EULER, 0},
        {"euler_karras", SDC_SAMPLER_EULER, 1},
        {"euler_a", SDC_SAMPLER_EULER_A, 0},
        {"heun", SDC_SAMPLER_HEUN, 0},
        {"lms", SDC_SAMPLER_LMS, 0},
        {"ddim", SDC_SAMPLER_DDIM, 0},
        {"pndm", SDC_SAMPLER_PNDM, 0},
        {"dpmpp_2m", SDC_SAMPLER_DPMPP_2M, 0},
        {"dpmpp_2m_karras", SDC_SAMPLER_DPMPP_2M, 1},
    };
    for (size_t i = 0; name && i < sizeof map / sizeof map[0]; i++)
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

uint64_t test_fnv(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Each image written as a PNG in a folder of its own (not the test's: test_tmp_path keeps naming that one),
 * removed after. */
uint64_t test_png_hash(const sdc_image *imgs, int n, uint64_t h) {
    char dir[] = "/tmp/sdc-pipe-XXXXXX", path[64];
    if (!mkdtemp(dir)) return 0;
    snprintf(path, sizeof path, "%s/hash.png", dir);
    for (int i = 0; i < n && h; i++) {
        char *buf = NULL;
        size_t len = 0;
        if (sdc_image_save(&imgs[i], path, NULL, NULL) == SDC_OK && sdc_read_file(path, NULL, &buf, &len) == SDC_OK)
            h = test_fnv(buf, len, h);
        else
            h = 0;
        free(buf);
    }
    remove(path);
    rmdir(dir);
    return h;
}

int test_pipe_run_case(sdc_ctx *ctx, const cJSON *c, sdc_model_index *g, const char *label, test_pipe_run *r) {
    memset(r, 0, sizeof *r);
    r->name = jstr(c, "case");
    r->status = SDC_ERR_INVALID_ARG;
    const char *name = r->name ? r->name : "?";
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = jstr(c, "prompt");
    p.negative_prompt = jstr(c, "negative_prompt");
    p.steps = (int)jnum(c, "steps", 0);
    p.cfg_scale = (float)jnum(c, "guidance_scale", 7.5);
    p.guidance = p.cfg_scale;                                 /* Flux dev: the embedded guidance */
    p.t5_max_length = (int)jnum(c, "max_sequence_length", 0); /* Flux: T5 tokens */
    if (jstr(c, "scheduler") && scheduler_of(jstr(c, "scheduler"), &p.sampler, &p.karras)) {
        test_check(0, "%s: unknown scheduler %s in README.json", name, jstr(c, "scheduler"));
        return 0;
    }
    /* SDXL micro-conditioning: diffusers' (height, width) and (top, left) pairs */
    const cJSON *orig = cJSON_GetObjectItemCaseSensitive(c, "original_size");
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(c, "crops_coords_top_left");
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(c, "target_size");
    if (cJSON_GetArraySize(orig) == 2) {
        p.original_height = cJSON_GetArrayItem(orig, 0)->valueint;
        p.original_width = cJSON_GetArrayItem(orig, 1)->valueint;
    }
    if (cJSON_GetArraySize(crop) == 2) {
        p.crop_top = cJSON_GetArrayItem(crop, 0)->valueint;
        p.crop_left = cJSON_GetArrayItem(crop, 1)->valueint;
    }
    if (cJSON_GetArraySize(target) == 2) {
        p.target_height = cJSON_GetArrayItem(target, 0)->valueint;
        p.target_width = cJSON_GetArrayItem(target, 1)->valueint;
    }
    char key[128];
    float *latents_in = NULL;
    sdc_image *init = NULL;
    const char *init_rel = jstr(c, "init_image");
    if (init_rel) {
        char rel[256];
        snprintf(rel, sizeof rel, "%s/%s", golden_dir, init_rel);
        if (!test_check(sdc_image_load(test_ref_path(rel), &init, sdc_log_stderr, NULL) == SDC_OK, "%s: load %s", name,
                        rel))
            return 0;
        r->img2img = 1;
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
        const sdc_tensor_info *li = NULL;
        latents_in = test_golden_f32(g, key, &li);
        if (li) r->n_lat = (size_t)sdc_tensor_info_nelem(li); /* [1, C, h, w]: 4 channels, Flux 16 */
        p.latents_in = latents_in;
        snprintf(key, sizeof key, "pipe.%s.latents_final", name);
        r->latents_ref = test_golden_f32(g, key, NULL);
    }
    snprintf(key, sizeof key, "pipe.%s.image", name);
    r->image_ref = test_golden_f32(g, key, NULL);
    if (!r->n_lat) r->n_lat = (size_t)(4 * (p.width / 8) * (p.height / 8));
    r->n_pix = (size_t)(p.width * p.height * 3);
    r->latents = malloc(sizeof(float) * (r->n_lat ? r->n_lat : 1));
    r->pixels = malloc(sizeof(float) * (r->n_pix ? r->n_pix : 1));
    p.latents_out = r->latents;
    p.pixels_out = r->pixels;
    sdc_image *images = NULL;
    int n = 0;
    double t0 = test_now();
    r->status = sdc_generate(ctx, &p, &images, &n);
    r->seconds = test_now() - t0;
    int ok = test_check(r->status == SDC_OK && n == 1, "%s %s: generate (%s, %.2f s)", label, name,
                        sdc_status_str(r->status), r->seconds);
    if (ok) r->png_hash = test_png_hash(images, 1, TEST_FNV_INIT);
    sdc_image_free(images, n);
    sdc_image_free(init, 1);
    free(latents_in);
    return ok;
}

void test_pipe_run_free(test_pipe_run *r) {
    free(r->latents_ref);
    free(r->image_ref);
    free(r->latents);
    free(r->pixels);
    memset(r, 0, sizeof *r);
}

sdc_status test_generate_hashed(sdc_ctx *ctx, sdc_gen_params *p, const char *label, uint64_t *lat, uint64_t *png) {
    int64_t ne[4];
    sdc_model_latent_shape(ctx->m, p->width, p->height, ne);
    const size_t nl = (size_t)p->batch_count * (size_t)(ne[1] * ne[2] * ne[3]);
    float *l = malloc(sizeof(float) * nl);
    p->latents_out = l;
    sdc_image *imgs = NULL;
    int n = 0;
    sdc_status st = l ? sdc_generate(ctx, p, &imgs, &n) : SDC_ERR_OOM;
    if (st == SDC_OK) {
        *lat = test_fnv(l, sizeof(float) * nl, TEST_FNV_INIT);
        *png = test_png_hash(imgs, n, TEST_FNV_INIT);
    }
    test_check(st == SDC_OK || (!imgs && n == 0), "%s: a failed generation returns no image", label);
    p->latents_out = NULL;
    sdc_image_free(imgs, n);
    free(l);
    return st;
}
