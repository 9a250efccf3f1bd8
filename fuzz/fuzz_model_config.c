/* fuzz_model_config.c - libFuzzer: a config.json through the semantic parsers that turn it into a model:
 * the first byte picks the UNet, VAE or text-encoder parser, or a sampler (and karras, and the step
 * count) for sdc_schedule_build; the rest is the JSON. A config the parser accepts must have every
 * number within the bounds of io/config.h, and a built schedule finite, non-negative sigmas. */
#include <math.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "io/config.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"
#include "sampler/sampler.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The planner loads a component through its normal loader onto a counting backend: the loader walks
 * every block and layer the config implies, asking for each tensor. Here the index is empty, so every
 * tensor is missing (a clean SDC_ERR_NOT_FOUND), but the walk is the planner's: bounded work after the
 * parse. */
static sdc_backend *counting(void) {
    static sdc_backend *cpu, *cb;
    if (!cb) {
        cpu = sdc_backend_cpu_new(1, NULL);
        cb = cpu ? sdc_backend_count_new(cpu) : NULL;
    }
    return cb;
}

static sdc_weight_source empty_source(sdc_model_index *idx, const char *prefix) {
    return (sdc_weight_source){idx, prefix, counting(), NULL, 0, 0, NULL, 0};
}

static void unet(const cJSON *j) {
    sdc_unet_config c;
    if (sdc_unet_config_parse(j, NULL, &c) != SDC_OK) return;
    if (c.n_blocks < 1 || c.n_blocks > SDC_UNET_MAX_BLOCKS) abort();
    for (int i = 0; i < c.n_blocks; i++)
        if (c.block_out_channels[i] > SDC_CFG_MAX_CHANNELS ||
            c.transformer_layers[i] > SDC_CFG_MAX_TRANSFORMER_LAYERS || c.heads[i] > SDC_CFG_MAX_HEADS ||
            c.layers_per_block[i] > SDC_UNET_MAX_LAYERS)
            abort();
    sdc_model_index *idx = sdc_index_new(NULL);
    sdc_weight_source src = empty_source(idx, "unet.");
    sdc_unet *u = NULL;
    if (idx && src.be && sdc_unet_load(&c, &src, &u) == SDC_OK) abort(); /* nothing to load from */
    sdc_unet_free(u);
    sdc_index_free(idx);
}

static void vae(const cJSON *j) {
    sdc_vae_config c;
    if (sdc_vae_config_parse(j, NULL, &c) != SDC_OK) return;
    if (c.n_blocks < 1 || c.n_blocks > SDC_VAE_MAX_BLOCKS || c.latent_channels > SDC_CFG_MAX_IO_CHANNELS) abort();
    int64_t h, w;
    sdc_vae_encode_latent_size(&c, 8 * (int64_t)sdc_vae_downscale(&c), 8 * (int64_t)sdc_vae_downscale(&c), &h, &w);
    sdc_model_index *idx = sdc_index_new(NULL);
    sdc_weight_source src = empty_source(idx, "vae.");
    sdc_vae_decoder *d = NULL;
    sdc_vae_encoder *e = NULL;
    if (idx && src.be && (sdc_vae_decoder_load(&c, &src, &d) == SDC_OK || sdc_vae_encoder_load(&c, &src, &e) == SDC_OK))
        abort();
    sdc_vae_decoder_free(d);
    sdc_vae_encoder_free(e);
    sdc_index_free(idx);
}

static void clip(const cJSON *j) {
    sdc_clip_config c;
    if (sdc_clip_config_parse(j, NULL, &c) != SDC_OK) return;
    if (c.n_layers > SDC_CFG_MAX_LAYERS || c.vocab > SDC_CFG_MAX_VOCAB || c.hidden % c.n_heads) abort();
    sdc_model_index *idx = sdc_index_new(NULL);
    sdc_weight_source src = empty_source(idx, "text_encoder.");
    sdc_clip *m = NULL;
    if (idx && src.be && sdc_clip_load(&c, &src, &m) == SDC_OK) abort();
    sdc_clip_free(m);
    sdc_index_free(idx);
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
