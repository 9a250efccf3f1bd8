/* test_family.c - adding a family touches no library file: a dummy family, declared here, that is
 * SD 1.x renamed and running 8 latent channels instead of 4, opens a model made for it, plans, and
 * generates bit-identically under every load policy, through the generic planner and pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mkmodel/mkmodel.h"
#include "pipeline/model.h"
#include "pipeline/plan.h"
#include "sdc.h"
#include "test_util.h"

static int probe_8ch(const sdc_model_files *mf) {
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(sdc_model_files_config(mf, "unet"), "in_channels");
    return cJSON_IsNumber(in) && in->valueint == 8;
}

static sdc_family dummy; /* sdc_family_sd1's tables and hooks under another name and probe */

static uint64_t fnv(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static int run(const char *path, sdc_load_policy pol, uint64_t *hash, size_t *planned, size_t *measured) {
    sdc_component_path paths[] = {{"model", path}};
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    mp.paths = paths;
    mp.n_paths = 1;
    mp.load_policy = pol;
    mp.n_threads = 2;
    mp.log_fn = sdc_log_stderr;
    mp.log_level = SDC_LOG_WARN;
    sdc_model *m = sdc_model_open_as(&mp, &dummy);
    if (!test_check(m && !strcmp(sdc_model_family(m), "dummy-8ch"), "open the 8-channel model as %s",
                    m ? sdc_model_family(m) : "nothing"))
        return 0;
    int64_t ne[4] = {0};
    sdc_status st = sdc_model_latent_shape(m, 64, 64, ne);
    test_check(st == SDC_OK && ne[1] == 8 && ne[2] == 8 && ne[3] == 8, "latent shape {%lld, %lld, %lld, %lld}",
               (long long)ne[0], (long long)ne[1], (long long)ne[2], (long long)ne[3]);
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.prompt = "eight channels";
    p.width = p.height = 64;
    p.steps = 3;
    p.batch_count = 2;
    float lat[2 * 8 * 8 * 8];
    p.latents_out = lat;
    sdc_job *j = sdc_job_new(m, &p);
    st = j ? sdc_job_run(j) : SDC_ERR_INVALID_ARG;
    int ok = test_check(st == SDC_OK, "generate under %s: %s", sdc_load_policy_name(pol), sdc_status_str(st));
    if (ok) {
        *hash = fnv(lat, sizeof lat);
        *measured = m->be->stats.peak_total;
        sdc_job_shape js;
        sdc_job_shape_from_params(&p, &js);
        sdc_plan plan;
        sdc_plan_make(m, &js, pol, &plan);
        *planned = plan.peak;
    }
    sdc_job_free(j);
    sdc_model_free(m);
    return ok;
}

int main(void) {
    dummy = sdc_family_sd1;
    dummy.name = "dummy-8ch";
    dummy.probe = probe_8ch;
    sdc_mk_arch a = *sdc_mk_arch_find("tiny-sd1");
    a.name = "tiny-sd1-8ch";
    a.unet_in = a.unet_out = a.vae_latent = 8;
    const char *dir = test_make_tmp_dir("family");
    char path[512];
    snprintf(path, sizeof path, "%s/m", dir);
    if (!test_check(sdc_mkmodel_folder(&a, path, SDC_DTYPE_F32, 5, test_ref_path("clip-tokenizer"), test_logger()) ==
                        SDC_OK,
                    "make an 8-latent-channel SD model"))
        return test_finish();
    uint64_t h[3] = {0};
    const sdc_load_policy pols[3] = {SDC_LOAD_ALL, SDC_LOAD_SEQUENTIAL, SDC_LOAD_PHASED};
    for (int i = 0; i < 3; i++) {
        size_t planned = 0, measured = 0;
        if (!run(path, pols[i], &h[i], &planned, &measured)) continue;
        test_check(planned >= measured, "%s: planned peak %zu >= measured %zu", sdc_load_policy_name(pols[i]), planned,
                   measured);
        if (i)
            test_check(h[i] == h[0], "%s latents %016llx == all's %016llx", sdc_load_policy_name(pols[i]),
                       (unsigned long long)h[i], (unsigned long long)h[0]);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/m'", dir);
    test_check(system(cmd) == 0, "clean up");
    return test_finish();
}
