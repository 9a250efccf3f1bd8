/* test_batch.c - phase-major jobs over many prompts (sdc_gen_params.prompts): with max_batch 1, 2 and all
 * every image is bit-identical (raw latents and PNG bytes) to the same prompt and seed generated alone,
 * under `all` and `phased`; under `phased` each component is loaded once for the whole list. The kernels
 * are batch-invariant: the CPU linear makes every OpenBLAS call exactly SDC_CPU_GEMM_TILE_M rows (its last
 * tile zero-padded), since OpenBLAS 0.3.21 computes a call of few rows with its small-matrix kernel, chosen
 * by the call's row count, which rounds differently; convolutions and attention compute per image. Measured:
 * 4 jobs (SD 1.x twice, SDXL, Flux schnell), 6 modes each, 17 images per mode, 102 compared with their
 * prompt alone, 0 differ. Before the padding, 42 of the 68 images of max_batch 2 and all differed: every
 * one of all, and Flux's under 2. On CUDA (SDC_TEST_DEVICE=cuda; an H100, models made by `sdc mkmodel
 * --f32` in the bundle's layout): the same 102 images, 0 differ (160 checks pass); these tiny shapes do
 * not show whether cuBLAS picks another algorithm for the larger row counts of a real model's batch.
 * Prints the hash table: prompt, seed, hash per mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/file.h"
#include "pipeline/ctx.h"
#include "sdc.h"
#include "test_pipeline_util.h"
#include "test_util.h"

#define MAX_IMAGES 8

typedef struct family_case {
    const char *model; /* in the reference bundle */
    sdc_sampler sampler;
    float cfg;
    int steps;
    int batch_count; /* images per entry */
    const sdc_prompt *prompts;
    int n_prompts;
} family_case;

/* One job's per-image hashes of the latents and of the PNG file bytes. */
typedef struct job_hashes {
    int n;
    uint64_t lat[MAX_IMAGES], png[MAX_IMAGES];
    cJSON *report;
} job_hashes;

static sdc_ctx *open_ctx(const char *model, sdc_load_policy pol) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path(model);
    cp.device = (sdc_device)test_env_device();
    cp.n_threads = 2;
    cp.load_policy = pol;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    return sdc_ctx_new(&cp);
}

/* Runs prompts[0 .. n) (n_prompts 0: the single-prompt fields from prompts[0]) with max_batch mb. */
static int run_job(sdc_ctx *ctx, const family_case *fc, const sdc_prompt *prompts, int n, int mb, job_hashes *o) {
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.width = p.height = 64;
    p.steps = fc->steps;
    p.cfg_scale = fc->cfg;
    p.sampler = fc->sampler;
    p.batch_count = fc->batch_count;
    p.negative_prompt = "low quality";
    if (n) {
        p.prompts = prompts;
        p.n_prompts = n;
    } else { /* the old fields: a list of one */
        p.prompt = prompts[0].prompt;
        if (prompts[0].negative_prompt) p.negative_prompt = prompts[0].negative_prompt;
        p.seed = prompts[0].seed;
    }
    p.max_batch = mb;
    const int images = (n ? n : 1) * fc->batch_count;
    int64_t ne[4];
    sdc_status st = sdc_model_latent_shape(ctx->m, 64, 64, ne);
    const size_t per = (size_t)(ne[1] * ne[2] * ne[3]);
    float *lat = malloc(sizeof(float) * per * (size_t)images);
    p.latents_out = lat;
    sdc_image *imgs = NULL;
    int got = 0;
    if (st == SDC_OK) st = sdc_generate(ctx, &p, &imgs, &got);
    memset(o, 0, sizeof *o);
    if (st == SDC_OK && got == images && images <= MAX_IMAGES) {
        o->n = got;
        for (int i = 0; i < got; i++) {
            o->lat[i] = test_fnv(lat + (size_t)i * per, sizeof(float) * per, TEST_FNV_INIT);
            o->png[i] = test_png_hash(&imgs[i], 1, TEST_FNV_INIT);
        }
        o->report = cJSON_Parse(sdc_last_report_json(ctx));
    }
    sdc_image_free(imgs, got);
    free(lat);
    return o->n == images;
}

/* Under phased, every component the job used was loaded exactly once. */
static void loads_once(const char *what, const cJSON *report) {
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(report, "components"), *c;
    int n = 0;
    cJSON_ArrayForEach(c, parts) {
        const cJSON *loads = cJSON_GetObjectItemCaseSensitive(c, "loads");
        test_check(cJSON_IsNumber(loads) && loads->valueint == 1, "%s: %s loaded %d time(s) for the whole list (1)",
                   what, c->string, cJSON_IsNumber(loads) ? loads->valueint : -1);
        n++;
    }
    test_check(n >= 3, "%s: the report lists %d components", what, n);
    /* the plan measured the denoiser at the group's size: planned == measured, per kind */
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "phases"), "denoise");
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(ph, "peak_bytes");
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(ph, "planned_bytes");
    const char *kinds[2] = {"activations", "workspace"};
    for (int k = 0; k < 2; k++) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(pk, kinds[k]);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(pl, kinds[k]);
        test_check(cJSON_IsNumber(m) && cJSON_IsNumber(q) && m->valuedouble == q->valuedouble,
                   "%s: denoise %s planned %.0f == measured %.0f", what, kinds[k],
                   cJSON_IsNumber(q) ? q->valuedouble : -1, cJSON_IsNumber(m) ? m->valuedouble : -1);
    }
}

static void check_family(const family_case *fc) {
    const int images = fc->n_prompts * fc->batch_count;
    if (!test_check(images <= MAX_IMAGES, "%s: %d images fit the test's table", fc->model, images)) return;
    /* the reference: each entry alone, through the single-prompt fields, under all */
    uint64_t ref_lat[MAX_IMAGES] = {0}, ref_png[MAX_IMAGES] = {0};
    sdc_ctx *ctx = open_ctx(fc->model, SDC_LOAD_ALL);
    if (!test_check(ctx != NULL, "%s: open", fc->model)) return;
    for (int e = 0; e < fc->n_prompts; e++) {
        job_hashes h;
        if (!test_check(run_job(ctx, fc, &fc->prompts[e], 0, 1, &h), "%s: prompt %d alone", fc->model, e + 1)) continue;
        for (int i = 0; i < fc->batch_count; i++) {
            ref_lat[e * fc->batch_count + i] = h.lat[i];
            ref_png[e * fc->batch_count + i] = h.png[i];
        }
        cJSON_Delete(h.report);
    }
    sdc_ctx_free(ctx);

    const sdc_load_policy pols[2] = {SDC_LOAD_ALL, SDC_LOAD_PHASED};
    const int mbs[3] = {1, 2, 0};
    uint64_t lat[6][MAX_IMAGES] = {{0}}, png[6][MAX_IMAGES] = {{0}};
    for (int pi = 0; pi < 2; pi++) {
        ctx = open_ctx(fc->model, pols[pi]);
        if (!test_check(ctx != NULL, "%s: open under %s", fc->model, sdc_load_policy_name(pols[pi]))) continue;
        for (int mi = 0; mi < 3; mi++) {
            const int mode = pi * 3 + mi;
            char what[128];
            snprintf(what, sizeof what, "%s %s max_batch %d", fc->model, sdc_load_policy_name(pols[pi]), mbs[mi]);
            job_hashes h;
            if (!test_check(run_job(ctx, fc, fc->prompts, fc->n_prompts, mbs[mi], &h), "%s: the list of %d prompts",
                            what, fc->n_prompts))
                continue;
            int same = 0;
            for (int k = 0; k < images; k++) {
                lat[mode][k] = h.lat[k];
                png[mode][k] = h.png[k];
                same += h.lat[k] == ref_lat[k] && h.png[k] == ref_png[k];
            }
            test_check(same == images, "%s: %d of %d images bit-identical (latents and PNG) to their prompt alone",
                       what, same, images);
            if (pols[pi] == SDC_LOAD_PHASED) loads_once(what, h.report);
            cJSON_Delete(h.report);
        }
        sdc_ctx_free(ctx);
    }
    printf("  %s: PNG hash (latent hash) per image; alone = each prompt in its own job under all\n", fc->model);
    printf("  %-28s %6s  %-35s", "prompt", "seed", "alone");
    for (int pi = 0; pi < 2; pi++)
        for (int mi = 0; mi < 3; mi++) {
            char name[32];
            snprintf(name, sizeof name, "%s mb%d", sdc_load_policy_name(pols[pi]), mbs[mi]);
            printf(" %-35s", name);
        }
    printf("\n");
    for (int k = 0; k < images; k++) {
        const sdc_prompt *q = &fc->prompts[k / fc->batch_count];
        printf("  %-28.28s %6lld  %016llx (%016llx)", q->prompt, (long long)(q->seed + k % fc->batch_count),
               (unsigned long long)ref_png[k], (unsigned long long)ref_lat[k]);
        for (int m = 0; m < 6; m++)
            printf(" %016llx (%016llx)%s", (unsigned long long)png[m][k], (unsigned long long)lat[m][k],
                   png[m][k] == ref_png[k] && lat[m][k] == ref_lat[k] ? "" : "!");
        printf("\n");
    }
}

/* Bad lists are refused before anything runs. */
static void bad_lists(void) {
    sdc_ctx *ctx = open_ctx("tiny-sd1", SDC_LOAD_ALL);
    if (!test_check(ctx != NULL, "tiny-sd1: open")) return;
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.n_prompts = 2; /* no list */
    sdc_image *imgs = NULL;
    int n = 0;
    test_check(sdc_generate(ctx, &p, &imgs, &n) == SDC_ERR_INVALID_ARG && !imgs, "n_prompts without a list refused");
    const sdc_prompt q[2] = {{"a", NULL, 1}, {"b", NULL, INT64_MAX}};
    p.prompts = q;
    p.batch_count = 2;
    test_check(sdc_generate(ctx, &p, &imgs, &n) == SDC_ERR_INVALID_ARG && !imgs,
               "an entry whose last seed would pass 2^63 - 1 refused");
    p.n_prompts = -1;
    test_check(sdc_generate(ctx, &p, &imgs, &n) == SDC_ERR_INVALID_ARG && !imgs, "negative n_prompts refused");
    sdc_ctx_free(ctx);
}

int main(void) {
    test_make_tmp_dir("batch");
    /* SD 1.x with classifier-free guidance (negative + prompt rows per image) and euler_a, which draws
     * fresh noise at every step from each image's own generator; two images per entry */
    const sdc_prompt sd1_prompts[] = {
        {"a red fox in the snow", NULL, 11},
        {"a lighthouse at dusk", "blurry, dark", 7},
        {"", "", 1234},
        {"a bowl of ramen, studio light", NULL, 11},
    };
    const family_case sd1 = {"tiny-sd1", SDC_SAMPLER_EULER_A, 7.5f, 3, 2, sd1_prompts, 3};
    check_family(&sd1);
    const family_case sd1_four = {"tiny-sd1", SDC_SAMPLER_DPMPP_2M, 5.0f, 3, 1, sd1_prompts, 4};
    check_family(&sd1_four);
    /* SDXL: an empty negative prompt is a zero row (force_zeros_for_empty_prompt) in some entries only */
    const sdc_prompt xl_prompts[] = {
        {"a castle on a hill", "", 3},
        {"a castle on a hill", "fog", 3},
        {"two cats", NULL, 99},
    };
    const family_case xl = {"tiny-sdxl", SDC_SAMPLER_EULER, 6.0f, 2, 1, xl_prompts, 3};
    check_family(&xl);
    /* Flux schnell: no CFG, one row per image */
    const sdc_prompt flux_prompts[] = {
        {"a red fox in the snow", NULL, 5},
        {"a lighthouse at dusk", NULL, 6},
        {"a bowl of ramen", NULL, 5},
        {"", NULL, 77},
    };
    const family_case flux = {"tiny-flux-schnell", SDC_SAMPLER_DEFAULT, 1.0f, 2, 1, flux_prompts, 4};
    check_family(&flux);
    bad_lists();
    return test_finish();
}
