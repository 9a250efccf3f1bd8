/* txt2img.c - the smallest program on libsdc: open a model, make one image, save it.
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
    sdc_ctx_params cp;
    sdc_ctx_params_init(&cp);
    cp.model_path = argv[1];
    cp.log_fn = on_log;
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    if (!ctx) return 1;

    sdc_gen_params gp;
    sdc_gen_params_init(&gp);
    gp.prompt = argc > 3 ? argv[3] : "a lighthouse at dusk";
    gp.width = gp.height = 64;
    gp.steps = 4;
    sdc_image *images = NULL;
    int n = 0;
    sdc_status st = sdc_generate(ctx, &gp, &images, &n);
    if (st == SDC_OK) st = sdc_image_save(&images[0], argv[2], on_log, NULL);
    if (st == SDC_OK)
        printf("txt2img: wrote %s (%dx%d, seed %lld)\n", argv[2], images[0].width, images[0].height,
               (long long)images[0].seed);
    else
        fprintf(stderr, "txt2img: %s\n", sdc_status_str(st));
    sdc_image_free(images, n);
    sdc_ctx_free(ctx);
    return st == SDC_OK ? 0 : 1;
}
