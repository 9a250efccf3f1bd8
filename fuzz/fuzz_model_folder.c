/* fuzz_model_folder.c - libFuzzer: a diffusers folder written from one input and opened with
 * sdc_model_files_open. The input's parts (separated by FUZZ_SEP) are model_index.json, the text
 * encoder, UNet and VAE config.json, scheduler_config.json, then one safetensors header used for all
 * three components' weights (data: 64 KiB of zeros). A missing part leaves its file out. */
#include "fuzz_util.h"
#include "io/model_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const files[] = {"model_index.json", "text_encoder/config.json", "unet/config.json",
                                        "vae/config.json", "scheduler/scheduler_config.json"};
    static const char *const weights[] = {"text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                                          "vae/diffusion_pytorch_model.fp16.safetensors"};
    static int made;
    if (!made) {
        const char *const dirs[] = {"m", "m/text_encoder", "m/unet", "m/vae", "m/scheduler"};
        for (int i = 0; i < 5; i++) mkdir(fuzz_path(dirs[i]), 0755);
        made = 1;
    }
    const uint8_t *part[6];
    size_t len[6];
    const int n = fuzz_split(data, size, part, len, 6);
    char rel[256];
    for (int i = 0; i < 5; i++) {
        snprintf(rel, sizeof rel, "m/%s", files[i]);
        unlink(fuzz_path(rel));
        if (i < n) fuzz_write(fuzz_path(rel), part[i], len[i]);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "m/%s", weights[i]);
        unlink(fuzz_path(rel));
        if (n == 6) fuzz_write_st(fuzz_path(rel), part[5], len[5], 1u << 16);
    }
    sdc_model_files *m = NULL;
    if (sdc_model_files_open(fuzz_path("m"), SDC_VARIANT_AUTO, NULL, &m) == SDC_OK) {
        if (!m || m->single_file) abort();
        (void)sdc_model_files_use_all(m, NULL); /* every component's weights header */
    }
    sdc_model_files_free(m);
    return 0;
}
