/* test_pipeline.c - whole StableDiffusionPipeline runs against diffusers (tiny-sd1-golden/pipeline +
 * README.json): txt2img from the stored initial latents, and img2img from a seed. */
#include <cjson/cJSON.h>
#include <stdio.h>

#include "sdc.h"
#include "test_golden.h"
#include "test_pipeline_util.h"
#include "test_util.h"

/* Runs one README.json case and checks it against diffusers. */
static void run_case(sdc_ctx *ctx, const cJSON *c, sdc_model_index *g, const char *label) {
    test_pipe_run r;
    if (test_pipe_run_case(ctx, c, g, label, &r)) {
        char what[200];
        if (r.latents_ref) {
            snprintf(what, sizeof what, "%s %s latents_final", label, r.name);
            test_check_err(what, "rel err", test_rel_err(r.latents, r.latents_ref, r.n_lat), 1e-4);
        }
        if (r.image_ref) {
            snprintf(what, sizeof what, "%s %s image", label, r.name);
            test_check_err(what, "max |d|", test_max_abs(r.pixels, r.image_ref, r.n_pix), r.img2img ? 2e-3 : 1e-3);
        }
    }
    test_pipe_run_free(&r);
}

int main(void) {
    cJSON *readme = test_pipe_readme("tiny-sd1-golden");
    sdc_model_index *g = test_golden_open("tiny-sd1-golden/pipeline.safetensors");

    sdc_ctx *ctx = test_pipe_open(test_ref_path("tiny-sd1"), NULL, NULL, 0, 2);
    if (!test_check(ctx != NULL, "open tiny-sd1")) return test_finish();
    const cJSON *c;
    cJSON_ArrayForEach(c, test_pipe_cases(readme)) run_case(ctx, c, g, "f32");
    sdc_ctx_free(ctx);

    cJSON_Delete(readme);
    sdc_index_free(g);
    return test_finish();
}
