/* test_hashes.c - output bit-identity across refactors: every reference pipeline case (README.json), on
 * the tiny-sd1 folder (f32 and fp16 variants) and its single file, under each load policy, hashed
 * (final latents, decoded pixels, PNG bytes) and compared with the hashes recorded in
 * tests/hashes/sd1-<blas core>.txt before the change. A refactor that moves one bit fails here.
 *
 * The recorded bits depend on the BLAS kernels the CPU selects, so the file is per OpenBLAS core name;
 * a machine without a recording fails (record one with SDC_RECORD_HASHES=1, on code known to be right). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "sdc.h"
#include "test_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

char *openblas_get_corename(void);

typedef struct model_case {
    const char *label, *path, *config;
    int fp16;
} model_case;

static const model_case models[] = {
    {"folder-f32", "tiny-sd1", NULL, 0},
    {"folder-fp16", "tiny-sd1", NULL, 1},
    {"single-file", "tiny-sd1.safetensors", "tiny-sd1", 0},
};

static const sdc_load_policy policies[] = {SDC_LOAD_ALL, SDC_LOAD_SEQUENTIAL, SDC_LOAD_PHASED};

static sdc_ctx *open_model(const model_case *m, sdc_load_policy pol) {
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = test_ref_path(m->path);
    cp.config_dir = m->config ? test_ref_path(m->config) : NULL;
    cp.prefer_fp16 = m->fp16;
    cp.n_threads = 2;
    cp.load_policy = pol;
    cp.log_fn = sdc_log_stderr;
    cp.log_level = SDC_LOG_WARN;
    return sdc_ctx_new(&cp);
}

/* A batch of 3 (seeds 5, 6, 7) of one prompt, txt2img and img2img: one line of hashes per batch. */
static void run_batch(sdc_ctx *ctx, const sdc_image *init, char *line, size_t size) {
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a lighthouse at dusk";
    p.negative_prompt = "fog";
    p.width = p.height = 64;
    p.steps = 3;
    p.seed = 5;
    p.batch_count = 3;
    p.sampler = SDC_SAMPLER_EULER_A;
    p.init_image = init;
    p.strength = 0.5f;
    const size_t nl = 3 * 4 * 8 * 8, np = 3 * 64 * 64 * 3;
    float *lat = malloc(sizeof(float) * nl), *pix = malloc(sizeof(float) * np);
    p.latents_out = lat;
    p.pixels_out = pix;
    sdc_image *imgs = NULL;
    int n = 0;
    snprintf(line, size, "failed");
    if (lat && pix && sdc_generate(ctx, &p, &imgs, &n) == SDC_OK && n == 3) {
        const uint64_t hp = test_png_hash(imgs, n, TEST_FNV_INIT);
        snprintf(line, size, "%016llx %016llx %016llx",
                 (unsigned long long)test_fnv(lat, sizeof(float) * nl, TEST_FNV_INIT),
                 (unsigned long long)test_fnv(pix, sizeof(float) * np, TEST_FNV_INIT), (unsigned long long)hp);
    }
    sdc_image_free(imgs, n);
    free(lat);
    free(pix);
}

/* One line per model x case: "<model> <case> <latents> <pixels> <png>" (hex). */
static char *run_all(void) {
    cJSON *readme = test_pipe_readme("tiny-sd1-golden");
    sdc_model_index *g = test_golden_open("tiny-sd1-golden/pipeline.safetensors");
    size_t cap = 1 << 16, len = 0;
    sdc_image *init = NULL;
    test_make_tmp_dir("hashes");
    test_check(sdc_image_load(test_ref_path("tiny-sd1-golden/inputs/gradient64.png"), &init, sdc_log_stderr, NULL) ==
                   SDC_OK,
               "load gradient64.png");
    char *out = calloc(1, cap);
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        const model_case *m = &models[mi];
        char first[64][96];
        int n_case = 0;
        for (size_t pi = 0; pi < sizeof policies / sizeof policies[0]; pi++) {
            sdc_ctx *ctx = open_model(m, policies[pi]);
            if (!test_check(ctx != NULL, "open %s", m->label)) continue;
            const cJSON *c;
            int ci = 0;
            cJSON_ArrayForEach(c, test_pipe_cases(readme)) {
                test_pipe_run r;
                char line[96] = "failed";
                if (test_pipe_run_case(ctx, c, g, m->label, &r))
                    snprintf(line, sizeof line, "%016llx %016llx %016llx",
                             (unsigned long long)test_fnv(r.latents, sizeof(float) * r.n_lat, TEST_FNV_INIT),
                             (unsigned long long)test_fnv(r.pixels, sizeof(float) * r.n_pix, TEST_FNV_INIT),
                             (unsigned long long)r.png_hash);
                if (pi == 0 && ci < 64) {
                    snprintf(first[ci], sizeof first[ci], "%s", line);
                    len += (size_t)snprintf(out + len, cap - len, "%s %s %s\n", m->label, r.name ? r.name : "?", line);
                } else if (ci < n_case) {
                    test_check(!strcmp(line, first[ci]), "%s %s under %s: %s same as under all (%s)", m->label,
                               r.name ? r.name : "?", sdc_load_policy_name(policies[pi]), line, first[ci]);
                }
                test_pipe_run_free(&r);
                ci++;
            }
            for (int b = 0; b < 2 && ci < 64; b++, ci++) { /* batches: txt2img, img2img */
                char line[96];
                const char *name = b ? "batch3_img2img" : "batch3_txt2img";
                run_batch(ctx, b ? init : NULL, line, sizeof line);
                if (pi == 0) {
                    snprintf(first[ci], sizeof first[ci], "%s", line);
                    len += (size_t)snprintf(out + len, cap - len, "%s %s %s\n", m->label, name, line);
                } else if (ci < n_case) {
                    test_check(!strcmp(line, first[ci]), "%s %s under %s: %s same as under all (%s)", m->label, name,
                               sdc_load_policy_name(policies[pi]), line, first[ci]);
                }
            }
            if (pi == 0) n_case = ci < 64 ? ci : 64;
            sdc_ctx_free(ctx);
        }
    }
    sdc_image_free(init, 1);
    cJSON_Delete(readme);
    sdc_index_free(g);
    return out;
}

int main(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/hashes/sd1-%s.txt", SDC_SOURCE_DIR, openblas_get_corename());
    char *got = run_all();
    if (getenv("SDC_RECORD_HASHES")) {
        FILE *f = fopen(path, "w");
        test_check(f && fputs(got, f) >= 0 && fclose(f) == 0, "record %s", path);
        printf("recorded %s:\n%s", path, got);
        free(got);
        return test_finish();
    }
    char *want = NULL;
    size_t want_len = 0;
    FILE *f = fopen(path, "rb");
    if (f) {
        fseek(f, 0, SEEK_END);
        want_len = (size_t)ftell(f);
        rewind(f);
        want = calloc(1, want_len + 1);
        if (fread(want, 1, want_len, f) != want_len) want_len = 0;
        fclose(f);
    }
    if (test_check(want != NULL, "recorded hashes %s exist (SDC_RECORD_HASHES=1 records them)", path)) {
        /* line by line, so a failure names the case */
        char *save_g = NULL, *save_w = NULL;
        char *lg = strtok_r(got, "\n", &save_g), *lw = strtok_r(want, "\n", &save_w);
        int n = 0;
        for (; lg || lw; lg = strtok_r(NULL, "\n", &save_g), lw = strtok_r(NULL, "\n", &save_w), n++)
            test_check(lg && lw && !strcmp(lg, lw), "hashes now [%s] recorded [%s]", lg ? lg : "(none)",
                       lw ? lw : "(none)");
        test_check(n >= 24, "%d cases compared (at least 3 models x 8 cases)", n);
    }
    free(want);
    free(got);
    return test_finish();
}
