/* fuzz_model_config.c - libFuzzer: a config.json through the semantic parsers that turn it into a model:
 * the first byte picks the UNet, VAE or text-encoder parser, or a sampler (and karras, and the step
 * count) for sdc_schedule_build; the rest is the JSON. A config the parser accepts must have every
 * number within the bounds of io/config.h, and a built schedule finite, non-negative sigmas. */
#include <math.h>
#include <stdlib.h>

#include "io/config.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "sampler/sampler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void unet(const cJSON *j) {
    sdc_unet_config c;
    if (sdc_unet_config_parse(j, NULL, &c) != SDC_OK) return;
    if (c.n_blocks < 1 || c.n_blocks > SDC_UNET_MAX_BLOCKS) abort();
    for (int i = 0; i < c.n_blocks; i++)
        if (c.block_out_channels[i] > SDC_CFG_MAX_CHANNELS ||
            c.transformer_layers[i] > SDC_CFG_MAX_TRANSFORMER_LAYERS || c.heads[i] > SDC_CFG_MAX_HEADS ||
            c.layers_per_block[i] > SDC_UNET_MAX_LAYERS)
            abort();
    /* the planner's estimate walks every block and layer: bounded work after the parse */
    (void)sdc_unet_activation_bytes_estimate(&c, 2, 64, 64, 77, 4);
}

static void vae(const cJSON *j) {
    sdc_vae_config c;
    if (sdc_vae_config_parse(j, NULL, &c) != SDC_OK) return;
    if (c.n_blocks < 1 || c.n_blocks > SDC_VAE_MAX_BLOCKS || c.latent_channels > SDC_CFG_MAX_IO_CHANNELS) abort();
    (void)sdc_vae_downscale(&c);
    (void)sdc_vae_decode_activation_bytes_estimate(&c, 1, 8, 8, 4);
    (void)sdc_vae_encode_activation_bytes_estimate(&c, 1, 8 * sdc_vae_downscale(&c), 8 * sdc_vae_downscale(&c), 4);
}

static void clip(const cJSON *j) {
    sdc_clip_config c;
    if (sdc_clip_config_parse(j, NULL, &c) != SDC_OK) return;
    if (c.n_layers > SDC_CFG_MAX_LAYERS || c.vocab > SDC_CFG_MAX_VOCAB || c.hidden % c.n_heads) abort();
    (void)sdc_clip_activation_bytes_estimate(&c, 2, c.max_positions < 77 ? c.max_positions : 77, 4);
}

static void schedule(const cJSON *j, unsigned sel) {
    sdc_sampler_params p;
    sdc_sampler_params_init(&p);
    p.kind = (sdc_sampler)(sel % SDC_SAMPLER_COUNT);
    p.karras = (sel / SDC_SAMPLER_COUNT) & 1;
    p.steps = 1 + (int)(sel % 37);
    sdc_schedule s;
    if (sdc_schedule_build(j, &p, NULL, &s) != SDC_OK) return;
    for (int i = 0; s.sigmas && i <= s.n; i++)
        if (!(isfinite(s.sigmas[i]) && s.sigmas[i] >= 0)) abort();
    if (s.n > 0 && sdc_schedule_truncate_for_strength(&s, 0.5, NULL) == SDC_OK) {
        float x0[4] = {1, -1, 0.5f, 0}, noise[4] = {0.1f, 0.2f, -0.3f, 1}, out[4];
        sdc_schedule_add_noise(&s, x0, noise, out, 4);
    }
    sdc_schedule_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const unsigned sel = data[0];
    cJSON *j = NULL;
    if (sdc_json_parse((const char *)data + 1, size - 1, "fuzz", NULL, &j) != SDC_OK) return 0;
    switch (sel % 4) {
    case 0: unet(j); break;
    case 1: vae(j); break;
    case 2: clip(j); break;
    default: schedule(j, sel / 4); break;
    }
    cJSON_Delete(j);
    return 0;
}
