/* test_model_api.c - the model/job API: a phased batch loads each component once and makes the same
 * images as one-image runs; two models in two threads give the serial results; cancellation from
 * another thread; component paths by role; the latent shape query; the last-error text. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "pipeline/model.h"
#include "sdc.h"
#include "test_util.h"

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static sdc_model *open_model(sdc_load_policy pol, int threads) {
    sdc_component_path paths[] = {{"model", test_ref_path("tiny-sd1")}};
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    mp.paths = paths;
    mp.n_paths = 1;
    mp.n_threads = threads;
    mp.load_policy = pol;
    mp.log_fn = sdc_log_stderr;
    mp.log_level = SDC_LOG_WARN;
    return sdc_model_open(&mp);
}

static void params(sdc_gen_params *p, int64_t seed, int batch) {
    sdc_gen_params_init(p);
    p->prompt = "a small boat on a lake";
    p->negative_prompt = "blurry";
    p->width = 96;
    p->height = 64;
    p->steps = 3;
    p->seed = seed;
    p->batch_count = batch;
    p->sampler = SDC_SAMPLER_EULER_A; /* draws noise every step: the generator state matters */
}

/* Runs p on m: hashes of each image's latents; returns the job's report (caller deletes) or NULL. */
static cJSON *run(sdc_model *m, const sdc_gen_params *p0, uint64_t *lat_hash) {
    sdc_gen_params p = *p0;
    int64_t ne[4];
    if (sdc_model_latent_shape(m, p.width, p.height, ne) != SDC_OK) return NULL;
    const size_t n = (size_t)(ne[0] * ne[1] * ne[2] * ne[3]);
    float *lat = malloc(sizeof(float) * n * (size_t)p.batch_count);
    p.latents_out = lat;
    sdc_job *j = sdc_job_new(m, &p);
    cJSON *rep = NULL;
    if (j && sdc_job_run(j) == SDC_OK) {
        for (int i = 0; i < p.batch_count; i++)
            lat_hash[i] = fnv(lat + (size_t)i * n, sizeof(float) * n, 0xcbf29ce484222325ull);
        rep = cJSON_Parse(sdc_job_report_json(j));
        int nimg = 0;
        sdc_image *imgs = sdc_job_take_images(j, &nimg);
        test_check(nimg == p.batch_count && imgs && imgs[0].seed == p.seed, "job made %d image(s), first seed %lld",
                   nimg, imgs ? (long long)imgs[0].seed : -1LL);
        sdc_image_free(imgs, nimg);
    }
    sdc_job_free(j);
    free(lat);
    return rep;
}

static int loads_of(const cJSON *rep, const char *component) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(rep, "components"), component);
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "loads");
    return cJSON_IsNumber(l) ? l->valueint : -1;
}

/* Phases outer: under phased, a batch of 3 loads every component once, and image i is the image a
 * one-image job with seed + i makes. */
static void phased_batch(void) {
    sdc_model *m = open_model(SDC_LOAD_PHASED, 2);
    if (!test_check(m != NULL, "open tiny-sd1 (phased)")) return;
    test_check(!strcmp(sdc_model_family(m), "sd1"), "family %s", sdc_model_family(m));
    int64_t ne[4] = {0};
    sdc_status st = sdc_model_latent_shape(m, 96, 64, ne);
    test_check(st == SDC_OK && ne[0] == 1 && ne[1] == 4 && ne[2] == 8 && ne[3] == 12,
               "latent shape of 96x64: {%lld, %lld, %lld, %lld}", (long long)ne[0], (long long)ne[1], (long long)ne[2],
               (long long)ne[3]);
    sdc_gen_params p;
    params(&p, 100, 3);
    uint64_t batch[3] = {0}, single[3] = {0};
    cJSON *rep = run(m, &p, batch);
    const char *comps[] = {"text_encoder", "unet", "vae_decoder"};
    for (int c = 0; c < 3; c++)
        test_check(loads_of(rep, comps[c]) == 1, "phased batch of 3: %s loaded %d time(s) (want 1)", comps[c],
                   loads_of(rep, comps[c]));
    cJSON_Delete(rep);
    for (int i = 0; i < 3; i++) {
        params(&p, 100 + i, 1);
        cJSON_Delete(run(m, &p, &single[i]));
        test_check(batch[i] && batch[i] == single[i],
                   "batch image %d (%016llx) == one-image job with seed %d (%016llx)", i, (unsigned long long)batch[i],
                   100 + i, (unsigned long long)single[i]);
    }
    sdc_model_free(m);
}

/* --- two models, two threads --------------------------------------------------------------- */

typedef struct thread_job {
    int64_t seed;
    uint64_t hash[2];
    int ok;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *t = arg;
    sdc_model *m = open_model(SDC_LOAD_ALL, 1);
    sdc_gen_params p;
    params(&p, t->seed, 2);
    cJSON *rep = m ? run(m, &p, t->hash) : NULL;
    t->ok = rep != NULL;
    cJSON_Delete(rep);
    sdc_model_free(m);
    return NULL;
}

static void two_threads(void) {
    thread_job serial[2] = {{7, {0}, 0}, {8, {0}, 0}}, par[2] = {{7, {0}, 0}, {8, {0}, 0}};
    for (int i = 0; i < 2; i++) thread_main(&serial[i]);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) pthread_create(&th[i], NULL, thread_main, &par[i]);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        test_check(par[i].ok && serial[i].ok && !memcmp(par[i].hash, serial[i].hash, sizeof par[i].hash),
                   "two models in two threads: job %d latents %016llx %016llx == serial %016llx %016llx", i,
                   (unsigned long long)par[i].hash[0], (unsigned long long)par[i].hash[1],
                   (unsigned long long)serial[i].hash[0], (unsigned long long)serial[i].hash[1]);
}

/* --- cancellation from another thread ------------------------------------------------------- */

typedef struct cancel_ctx {
    sdc_job *job;
    atomic_int denoise_started;
} cancel_ctx;

static int on_progress(const char *phase, int step, int total, void *user) {
    (void)step;
    (void)total;
    cancel_ctx *c = user;
    if (!strcmp(phase, "denoise")) atomic_store(&c->denoise_started, 1);
    return 0;
}

static void *canceller(void *arg) {
    cancel_ctx *c = arg;
    while (!atomic_load(&c->denoise_started)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    sdc_job_cancel(c->job);
    return NULL;
}

static void cancel_from_thread(void) {
    sdc_model *m = open_model(SDC_LOAD_ALL, 1);
    if (!m) return;
    sdc_gen_params p;
    params(&p, 3, 1);
    p.steps = 200; /* long enough that the cancel lands mid-loop */
    cancel_ctx c;
    c.job = sdc_job_new(m, &p);
    atomic_init(&c.denoise_started, 0);
    sdc_job_set_progress(c.job, on_progress, &c);
    pthread_t th;
    pthread_create(&th, NULL, canceller, &c);
    double t0 = test_now();
    sdc_status st = sdc_job_run(c.job);
    double dt = test_now() - t0;
    pthread_join(th, NULL);
    int n = 0;
    sdc_image *imgs = sdc_job_take_images(c.job, &n);
    test_check(st == SDC_ERR_CANCELLED && !imgs && n == 0, "cancel from another thread: %s after %.2f s, no images",
               sdc_status_str(st), dt);
    test_check(sdc_job_run(c.job) == SDC_ERR_INVALID_ARG, "a job runs once");
    sdc_job_free(c.job);
    sdc_model_free(m);
}

/* --- paths and errors ------------------------------------------------------------------------ */

static void paths_and_errors(void) {
    sdc_component_path bad[] = {{"model", test_ref_path("tiny-sd1")}, {"controlnet", "/nonexistent"}};
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    mp.paths = bad;
    mp.n_paths = 2;
    mp.log_fn = test_capture_logger()->fn;
    sdc_model *m = sdc_model_open(&mp);
    test_check(!m && strstr(test_last_error(), "unknown role 'controlnet'"), "an unknown role is refused (\"%s\")",
               test_last_error());
    /* a component file role SD 1.x does not take: refused, not ignored */
    sdc_component_path vae[] = {{"model", test_ref_path("tiny-sd1")},
                                {"vae", test_ref_path("tiny-flux-ae.safetensors")}};
    mp.paths = vae;
    m = sdc_model_open(&mp);
    test_check(!m && strstr(test_last_error(), "takes no separate vae file"), "a vae file for sd1 is refused (\"%s\")",
               test_last_error());
    sdc_model_free(m);
    mp.paths = bad;
    mp.n_paths = 0;
    test_check(!sdc_model_open(&mp), "no model path: NULL");
    /* a single file with its config folder by role gives the same images as the fp16 folder */
    sdc_component_path sf[] = {{"model", test_ref_path("tiny-sd1.safetensors")}, {"config", test_ref_path("tiny-sd1")}};
    mp.paths = sf;
    mp.n_paths = 2;
    mp.log_fn = sdc_log_stderr;
    mp.log_level = SDC_LOG_WARN;
    m = sdc_model_open(&mp);
    test_check(m != NULL, "single file + config folder by role");
    if (m) {
        sdc_gen_params p;
        params(&p, 1, 1);
        p.seed = INT64_MAX;
        p.batch_count = 2;
        test_check(sdc_job_new(m, &p) == NULL && strstr(sdc_model_last_error(m), "2^63"),
                   "seed INT64_MAX with a batch of 2 refused (\"%s\")", sdc_model_last_error(m));
        params(&p, 1, 1);
        p.width = 7; /* not a multiple of 8 */
        test_check(sdc_job_new(m, &p) == NULL && strstr(sdc_model_last_error(m), "multiples of 8"),
                   "bad size refused at sdc_job_new, last error \"%s\"", sdc_model_last_error(m));
    }
    sdc_model_free(m);
}

/* --- non-finite values stop the job, naming the phase ----------------------------------------- */

static void nonfinite(void) {
    sdc_model *m = open_model(SDC_LOAD_ALL, 2);
    if (!m) return;
    sdc_gen_params p;
    params(&p, 1, 1);
    p.cfg_scale = 3e38f; /* finite, but uncond + g * (cond - uncond) overflows */
    sdc_job *j = sdc_job_new(m, &p);
    sdc_status st = j ? sdc_job_run(j) : SDC_ERR_INVALID_ARG;
    int n = 0;
    sdc_image *imgs = j ? sdc_job_take_images(j, &n) : NULL;
    test_check(st == SDC_ERR_NONFINITE && !imgs && strstr(sdc_model_last_error(m), "denoise: image 0"),
               "guidance 3e38: %s, no image (\"%s\")", sdc_status_str(st), sdc_model_last_error(m));
    sdc_job_free(j);
    sdc_model_free(m);

    /* a VAE scaling factor that sends the latents to Inf before the decoder */
    const char *dir = test_make_tmp_dir("model-api");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s' '%s/m' && sed -i 's/\"scaling_factor\": *[0-9.e-]*/\"scaling_factor\": 1e-45/' "
             "'%s/m/vae/config.json'",
             test_ref_path("tiny-sd1"), dir, dir);
    if (!test_check(system(cmd) == 0, "copy tiny-sd1 with scaling_factor 1e-45")) return;
    sdc_component_path paths[] = {{"model", test_tmp_path("m")}};
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    mp.paths = paths;
    mp.n_paths = 1;
    mp.log_fn = sdc_log_stderr;
    mp.log_level = SDC_LOG_WARN;
    m = sdc_model_open(&mp);
    params(&p, 1, 1);
    j = m ? sdc_job_new(m, &p) : NULL;
    st = j ? sdc_job_run(j) : SDC_ERR_INVALID_ARG;
    test_check(st == SDC_ERR_NONFINITE && strstr(sdc_model_last_error(m), "decode: image 0"),
               "VAE scaling 1e-45: %s (\"%s\")", sdc_status_str(st), m ? sdc_model_last_error(m) : "");
    sdc_job_free(j);
    sdc_model_free(m);
    snprintf(cmd, sizeof cmd, "rm -rf '%s/m'", dir);
    test_check(system(cmd) == 0, "clean up");
}

/* --- the one name table ------------------------------------------------------------------- */

static void names(void) {
    int checked = 0, ok = 1;
    for (int l = 0; l < SDC_NAMES_COUNT; l++) {
        char list[256];
        snprintf(list, sizeof list, "%s", sdc_names((sdc_name_list)l));
        for (char *save = NULL, *tok = strtok_r(list, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
            int v = -99;
            ok &=
                sdc_name_to_value((sdc_name_list)l, tok, &v) == 0 && !strcmp(sdc_value_name((sdc_name_list)l, v), tok);
            checked++;
        }
        int v;
        ok &= sdc_name_to_value((sdc_name_list)l, "no-such-name", &v) == -1;
    }
    test_check(ok && checked == 22, "every listed name round-trips through its value (%d names), unknown ones fail",
               checked);
    sdc_sampler s;
    sdc_load_policy pol;
    test_check(sdc_sampler_from_name("dpm++2m", &s) == 0 && s == SDC_SAMPLER_DPMPP_2M &&
                   !strcmp(sdc_sampler_name(SDC_SAMPLER_EULER_A), "euler_a") &&
                   sdc_load_policy_from_name("phased", &pol) == 0 && pol == SDC_LOAD_PHASED,
               "sampler and policy names come from the table");
}

/* --- injected failures: each returns its status, logs it, leaves nothing behind ----------------- */

static void injected(void) {
    sdc_gen_params p;
    params(&p, 9, 2);
    uint64_t want[2] = {0}, got[2] = {0};
    sdc_model *m = open_model(SDC_LOAD_ALL, 2);
    if (!m) return;
    cJSON_Delete(run(m, &p, want));
    const struct {
        const char *what;
        int *countdown;
        int n;
        sdc_status want;
    } cases[] = {
        {"a missing workspace (the 40th)", &m->be->fail.workspace, 40, SDC_ERR_OOM},
        {"a failing host allocation (the 500th)", &m->be->fail.host_alloc, 500, SDC_ERR_OOM},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        *cases[i].countdown = cases[i].n;
        sdc_job *j = sdc_job_new(m, &p);
        sdc_status st = j ? sdc_job_run(j) : SDC_ERR_INVALID_ARG;
        int n = 0;
        sdc_image *imgs = j ? sdc_job_take_images(j, &n) : NULL;
        test_check(st == cases[i].want && !imgs && *sdc_model_last_error(m) && m->be->stats.cur_total == 0,
                   "%s: %s (want %s), no image, %zu device bytes left, logged \"%s\"", cases[i].what,
                   sdc_status_str(st), sdc_status_str(cases[i].want), m->be->stats.cur_total, sdc_model_last_error(m));
        sdc_job_free(j);
        *cases[i].countdown = 0;
        cJSON_Delete(run(m, &p, got)); /* the status was cleared: the model works again, same bits */
        test_check(!memcmp(got, want, sizeof got), "after %s the next job on the model makes the same latents",
                   cases[i].what);
    }
    sdc_model_free(m);
    /* auto: a workspace failure under all is out of memory: one replan (sequential), the same image */
    m = open_model(SDC_LOAD_AUTO, 2);
    if (!m) return;
    m->be->fail.workspace = 40;
    cJSON *rep = run(m, &p, got);
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(rep, "policy");
    test_check(rep && cJSON_IsString(pol) && strcmp(pol->valuestring, "all") && !memcmp(got, want, sizeof got),
               "auto: a missing workspace replans once (to %s) and makes the same latents",
               cJSON_IsString(pol) ? pol->valuestring : "nothing");
    cJSON_Delete(rep);
    sdc_model_free(m);
}

int main(void) {
    names();
    injected();
    nonfinite();
    phased_batch();
    two_threads();
    cancel_from_thread();
    paths_and_errors();
    return test_finish();
}
