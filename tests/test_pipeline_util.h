/* test_pipeline_util.h - running the whole-pipeline cases of a golden folder's README.json
 * (tiny-sd1-golden, tiny-sdxl-golden): txt2img from the stored initial latents (with SDXL's
 * micro-conditioning when a case states it), img2img from the stated seed. */
#ifndef SDC_TEST_PIPELINE_UTIL_H
#define SDC_TEST_PIPELINE_UTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "io/model_index.h"
#include "sdc.h"

/* README.json parsed (the caller deletes it); its "pipelines" array is test_pipe_cases(readme). Exits
 * the test with a failure when it cannot be read. */
cJSON *test_pipe_readme(const char *golden_dir); /* "tiny-sd1-golden" */
const cJSON *test_pipe_cases(const cJSON *readme);

/* A context on model_path, logging warnings to stderr. config_dir / tokenizer_dir may be NULL. */
sdc_ctx *test_pipe_open(const char *model_path, const char *config_dir, const char *tokenizer_dir, int fp16,
                        int threads);

/* One case run: the golden tensors it has and what sdc produced. */
typedef struct test_pipe_run {
    const char *name; /* the case (points into README.json) */
    int img2img;
    size_t n_lat, n_pix;     /* latents [C, h/8, w/8] (C from latents_in: 4, Flux 16); pixels [h, w, 3] */
    float *latents_ref;      /* pipe.<case>.latents_final (txt2img only, else NULL) */
    float *image_ref;        /* pipe.<case>.image */
    float *latents, *pixels; /* sdc's final latents and decoded image in [0, 1] */
    uint64_t png_hash;       /* FNV-1a of the PNG file sdc_image_save writes of the image */
    sdc_status status;
    double seconds;
} test_pipe_run;

/* Runs README.json case c on ctx (g: the opened pipeline.safetensors). Records a failed check and
 * returns 0 when the case cannot be set up or generation fails (label names the run); else 1. */
int test_pipe_run_case(sdc_ctx *ctx, const cJSON *c, sdc_model_index *g, const char *label, test_pipe_run *r);
void test_pipe_run_free(test_pipe_run *r);

/* 64-bit FNV-1a of n bytes, continuing from h (start with TEST_FNV_INIT). */
#define TEST_FNV_INIT 0xcbf29ce484222325ull
uint64_t test_fnv(const void *p, size_t n, uint64_t h);
/* Runs p on ctx (p->latents_out is set here, for p->batch_count images) and hashes the raw latents and the
 * PNG bytes into *lat and *png; the run's report is then sdc_last_report_json(ctx). Checks that a failed
 * run returns no image (label names it). */
sdc_status test_generate_hashed(sdc_ctx *ctx, sdc_gen_params *p, const char *label, uint64_t *lat, uint64_t *png);
/* test_fnv over the PNG files sdc_image_save writes of imgs[0 .. n), continuing from h; 0 when one cannot
 * be written or read back. */
uint64_t test_png_hash(const sdc_image *imgs, int n, uint64_t h);

#endif
