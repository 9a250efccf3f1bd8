/* txt2img.c - the smallest program on libsdc: open a model, run one job, save its image.
 * Uses only the public header.   usage: txt2img MODEL_DIR OUT.png [PROMPT] */
#include <stdio.h>

#include <sdc.h>

static void on_log(sdc_log_level level, const char *msg, void *user) {
    (void)user;
    if (level >= SDC_LOG_WARN) fprintf(stderr, "txt2img: %s\n", msg);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR OUT.png [PROMPT]\n", argv[0]);
        return 2;
    }
    sdc_component_path paths[] = {{"model", argv[1]}};
    sdc_model_params mp;
    sdc_model_params_init(&mp);
    mp.paths = paths;
    mp.n_paths = 1;
    mp.log_fn = on_log;
    sdc_model *model = sdc_model_open(&mp); /* configs and tokenizer; no weights yet */
    if (!model) return 1;

    sdc_gen_params gp;
    sdc_gen_params_init(&gp);
    gp.prompt = argc > 3 ? argv[3] : "a lighthouse at dusk";
    gp.width = gp.height = 64;
    gp.steps = 4;
    sdc_job *job = sdc_job_new(model, &gp);
    sdc_status st = job ? sdc_job_run(job) : SDC_ERR_INVALID_ARG;
    int n = 0;
    sdc_image *images = st == SDC_OK ? sdc_job_take_images(job, &n) : NULL;
    if (st == SDC_OK) st = sdc_image_save(&images[0], argv[2], on_log, NULL);
    if (st == SDC_OK)
        printf("txt2img: wrote %s (%dx%d, seed %lld)\n", argv[2], images[0].width, images[0].height,
               (long long)images[0].seed);
    else
        fprintf(stderr, "txt2img: %s (%s)\n", sdc_status_str(st), sdc_model_last_error(model));
    sdc_image_free(images, n);
    sdc_job_free(job);
    sdc_model_free(model);
    return st == SDC_OK ? 0 : 1;
}
