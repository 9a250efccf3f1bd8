/* test_alloc_fail.c - allocation failures anywhere in a job: the Nth host allocation of the backend
 * (tensor records, conversion buffers) failing, and the device running out at a limit, for N and limits
 * spread over the whole run (every component's loader, every phase). Each run must end in SDC_ERR_OOM (or
 * succeed, once N passes the run's last allocation), with the cause logged, no device byte left, no image;
 * the ASan build checks that nothing leaks. Then the model works again and makes the same latents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/model.h"
#include "sdc.h"
#include "test_util.h"

static uint64_t fnv(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* One job (phased, so every component is loaded inside the run): its status and latent hash. */
static sdc_status job(sdc_model *m, uint64_t *hash, int *n_images) {
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "a red kite";
    p.width = p.height = 64;
    p.steps = 2;
    float lat[4 * 8 * 8];
    p.latents_out = lat;
    sdc_job *j = sdc_job_new(m, &p);
    sdc_status st = j ? sdc_job_run(j) : SDC_ERR_INVALID_ARG;
    sdc_image *imgs = j ? sdc_job_take_images(j, n_images) : NULL;
    if (st == SDC_OK) *hash = fnv(lat, sizeof lat);
    sdc_image_free(imgs, *n_images);
    sdc_job_free(j);
    return st;
}

int main(void) {
    sdc_component_path paths[] = {{"model", test_ref_path("tiny-sd1")}};
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    mp.paths = paths;
    mp.n_paths = 1;
    mp.n_threads = 1;
    mp.load_policy = SDC_LOAD_PHASED;
    mp.log_fn = test_capture_logger()->fn;
    sdc_model *m = sdc_model_open(&mp);
    if (!test_check(m != NULL, "open tiny-sd1")) return test_finish();
    uint64_t want = 0, got = 0;
    int n = 0;
    test_check(job(m, &want, &n) == SDC_OK, "a clean run");

    /* the Nth host allocation fails, N growing by ~30% from 1 until the run gets through */
    int failures = 0, passed = 0;
    for (int k = 1; k < 1 << 20 && !passed; k = k + 1 + k * 3 / 10) {
        m->be->fail.host_alloc = k;
        got = 0;
        n = 0;
        sdc_status st = job(m, &got, &n);
        m->be->fail.host_alloc = 0;
        if (st == SDC_OK) {
            passed = 1;
            test_check(got == want, "host allocation %d is past the run's last: the run succeeds, same latents", k);
        } else {
            failures++;
            test_check(st == SDC_ERR_OOM && n == 0 && m->be->stats.cur_total == 0 && *sdc_model_last_error(m),
                       "host allocation %d fails: %s, %d images, %zu device bytes left, \"%s\"", k, sdc_status_str(st),
                       n, m->be->stats.cur_total, sdc_model_last_error(m));
        }
    }
    test_check(failures >= 10 && passed, "%d injected host-allocation failures, then a clean run", failures);

    /* the device runs out at a limit: from below the smallest phase to above the largest */
    size_t peak = 0;
    for (size_t limit = 1 << 16; limit < (size_t)1 << 28; limit = limit * 3 / 2) {
        m->be->mem_limit = limit;
        got = 0;
        n = 0;
        sdc_status st = job(m, &got, &n);
        m->be->mem_limit = 0;
        if (st == SDC_OK) {
            peak = limit;
            test_check(got == want, "device limit %zu bytes: the run fits, same latents", limit);
            break;
        }
        test_check(st == SDC_ERR_OOM && n == 0 && m->be->stats.cur_total == 0,
                   "device limit %zu bytes: %s, %d images, %zu bytes left", limit, sdc_status_str(st), n,
                   m->be->stats.cur_total);
    }
    test_check(peak > 0, "a limit large enough for the run was reached (%zu bytes)", peak);
    test_check(job(m, &got, &n) == SDC_OK && got == want, "after every failure the model makes the same latents");
    sdc_model_free(m);
    return test_finish();
}
