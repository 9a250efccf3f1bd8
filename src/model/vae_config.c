/* vae_config.c - AutoencoderKL config.json -> sdc_vae_config. Absent keys take diffusers' defaults,
 * as diffusers itself does when it builds the model from the same file. */
#include <stdio.h>
#include <string.h>

#include "io/checked.h"
#include "io/config.h"
#include "model/vae.h"

#define WHAT "vae config"
#define FN "sdc_vae_config_parse"

#define TRY(x)                         \
    do {                               \
        sdc_status st_ = (x);          \
        if (st_ != SDC_OK) return st_; \
    } while (0)

static int present(const cJSON *json, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(json, key);
    return it && !cJSON_IsNull(it);
}

/* More blocks than sdc has room for is a model sdc does not handle, not a broken file. */
static sdc_status check_count(const cJSON *json, const char *key, const sdc_logger *log) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(json, key);
    if (cJSON_IsArray(it) && cJSON_GetArraySize(it) > SDC_VAE_MAX_BLOCKS) {
        SDC_LOGE(log, WHAT ": %s has %d entries, sdc handles at most %d", key, cJSON_GetArraySize(it),
                 SDC_VAE_MAX_BLOCKS);
        return SDC_ERR_UNSUPPORTED;
    }
    return SDC_OK;
}

/* A list of block type names, each of which must equal `want`; *n receives the count. */
static sdc_status block_types(const cJSON *json, const char *key, const char *want, const sdc_logger *log, int *n) {
    if (!present(json, key)) { /* diffusers' default: one block of the one supported type */
        *n = 1;
        return SDC_OK;
    }
    TRY(check_count(json, key, log));
    const char *types[SDC_VAE_MAX_BLOCKS];
    TRY(sdc_cfg_string_list(json, key, WHAT, log, types, SDC_VAE_MAX_BLOCKS, n));
    for (int i = 0; i < *n; i++) {
        if (strcmp(types[i], want) != 0) {
            SDC_LOGE(log, WHAT ": %s[%d] is '%s', only '%s' is supported", key, i, types[i], want);
            return SDC_ERR_UNSUPPORTED;
        }
    }
    return SDC_OK;
}

static sdc_status parse_channels(const cJSON *json, const sdc_logger *log, sdc_vae_config *cfg) {
    if (!present(json, "block_out_channels")) {
        cfg->n_blocks = 1;
        cfg->block_out_channels[0] = 64;
        return SDC_OK;
    }
    TRY(check_count(json, "block_out_channels", log));
    int ch[SDC_VAE_MAX_BLOCKS], n = 0;
    TRY(sdc_cfg_int_list(json, "block_out_channels", WHAT, log, ch, SDC_VAE_MAX_BLOCKS, &n));
    if (n < 1) {
        SDC_LOGE(log, WHAT ": block_out_channels is empty");
        return SDC_ERR_FORMAT;
    }
    for (int i = 0; i < n; i++) {
        char name[48];
        snprintf(name, sizeof name, "block_out_channels[%d]", i);
        TRY(sdc_cfg_bound(FN, name, ch[i], 1, SDC_CFG_MAX_CHANNELS, log));
    }
    cfg->n_blocks = n;
    for (int i = 0; i < n; i++) cfg->block_out_channels[i] = ch[i];
    return SDC_OK;
}

static sdc_status parse_scaling(const cJSON *json, const sdc_logger *log, sdc_vae_config *cfg) {
    double d;
    TRY(sdc_cfg_float_or(json, "scaling_factor", 0.18215, WHAT, log, &d));
    cfg->scaling_factor = (float)d;
    cfg->has_shift_factor = present(json, "shift_factor");
    TRY(sdc_cfg_float_or(json, "shift_factor", 0.0, WHAT, log, &d));
    cfg->shift_factor = (float)d;
    if (!(cfg->scaling_factor > 0.0f)) {
        SDC_LOGE(log, WHAT ": scaling_factor %g is not positive", (double)cfg->scaling_factor);
        return SDC_ERR_FORMAT;
    }
    /* per-channel latent statistics (Playground-style VAEs) change the pipeline's scaling */
    if (present(json, "latents_mean") || present(json, "latents_std")) {
        SDC_LOGE(log, WHAT ": latents_mean/latents_std are not supported");
        return SDC_ERR_UNSUPPORTED;
    }
    return SDC_OK;
}

static sdc_status validate(const sdc_vae_config *cfg, const sdc_logger *log) {
    /* bounds first: the checks below compute layers_per_block + 1 and the encoder 2 * latent_channels */
    TRY(sdc_cfg_bound(FN, "in_channels", cfg->in_channels, 1, SDC_CFG_MAX_IO_CHANNELS, log));
    TRY(sdc_cfg_bound(FN, "out_channels", cfg->out_channels, 1, SDC_CFG_MAX_IO_CHANNELS, log));
    TRY(sdc_cfg_bound(FN, "latent_channels", cfg->latent_channels, 1, SDC_CFG_MAX_IO_CHANNELS, log));
    TRY(sdc_cfg_bound(FN, "layers_per_block", cfg->layers_per_block, 1, SDC_VAE_MAX_LAYERS - 1, log));
    TRY(sdc_cfg_bound(FN, "norm_num_groups", cfg->norm_num_groups, 1, SDC_CFG_MAX_GROUPS, log));
    TRY(sdc_cfg_bound(FN, "sample_size", cfg->sample_size, 0, SDC_CFG_MAX_SAMPLE_SIZE, log));
    int resnets = 0, moments = 0;
    if (sdc_ckd_add_int(cfg->layers_per_block, 1, &resnets) != 0 ||
        sdc_ckd_mul_int(2, cfg->latent_channels, &moments) != 0)
        return SDC_ERR_UNSUPPORTED; /* unreachable after the bounds; kept as the arithmetic's guard */
    if (cfg->in_channels < 1 || cfg->out_channels < 1 || cfg->latent_channels < 1 || cfg->layers_per_block < 1 ||
        cfg->norm_num_groups < 1) {
        SDC_LOGE(log,
                 WHAT ": in/out/latent channels, layers_per_block and norm_num_groups must be >= 1 "
                      "(got %d/%d/%d, %d, %d)",
                 cfg->in_channels, cfg->out_channels, cfg->latent_channels, cfg->layers_per_block,
                 cfg->norm_num_groups);
        return SDC_ERR_FORMAT;
    }
    if (resnets > SDC_VAE_MAX_LAYERS) {
        SDC_LOGE(log, WHAT ": layers_per_block %d is more than sdc handles (%d)", cfg->layers_per_block,
                 SDC_VAE_MAX_LAYERS - 1);
        return SDC_ERR_UNSUPPORTED;
    }
    for (int i = 0; i < cfg->n_blocks; i++) {
        int c = cfg->block_out_channels[i];
        if (c < 1) {
            SDC_LOGE(log, WHAT ": block_out_channels[%d] = %d", i, c);
            return SDC_ERR_FORMAT;
        }
        if (c % cfg->norm_num_groups != 0) {
            SDC_LOGE(log, WHAT ": block_out_channels[%d] = %d is not divisible by norm_num_groups %d", i, c,
                     cfg->norm_num_groups);
            return SDC_ERR_UNSUPPORTED;
        }
    }
    return SDC_OK;
}

sdc_status sdc_vae_config_parse(const cJSON *json, const sdc_logger *log, sdc_vae_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(json)) {
        SDC_LOGE(log, WHAT ": not a JSON object");
        return SDC_ERR_FORMAT;
    }
    const char *s;
    TRY(sdc_cfg_string_or(json, "_class_name", "AutoencoderKL", WHAT, log, &s));
    if (strcmp(s, "AutoencoderKL") != 0) {
        SDC_LOGE(log, WHAT ": _class_name '%s' is not supported (AutoencoderKL only)", s);
        return SDC_ERR_UNSUPPORTED;
    }
    TRY(sdc_cfg_string_or(json, "act_fn", "silu", WHAT, log, &s));
    if (strcmp(s, "silu") != 0 && strcmp(s, "swish") != 0) {
        SDC_LOGE(log, WHAT ": act_fn '%s' is not supported (silu only)", s);
        return SDC_ERR_UNSUPPORTED;
    }
    TRY(sdc_cfg_int_or(json, "in_channels", 3, WHAT, log, &cfg->in_channels));
    TRY(sdc_cfg_int_or(json, "out_channels", 3, WHAT, log, &cfg->out_channels));
    TRY(sdc_cfg_int_or(json, "latent_channels", 4, WHAT, log, &cfg->latent_channels));
    TRY(sdc_cfg_int_or(json, "layers_per_block", 1, WHAT, log, &cfg->layers_per_block));
    TRY(sdc_cfg_int_or(json, "norm_num_groups", 32, WHAT, log, &cfg->norm_num_groups));
    TRY(sdc_cfg_int_or(json, "sample_size", 32, WHAT, log, &cfg->sample_size));
    TRY(sdc_cfg_bool_or(json, "use_quant_conv", 1, WHAT, log, &cfg->use_quant_conv));
    TRY(sdc_cfg_bool_or(json, "use_post_quant_conv", 1, WHAT, log, &cfg->use_post_quant_conv));
    TRY(sdc_cfg_bool_or(json, "mid_block_add_attention", 1, WHAT, log, &cfg->mid_block_add_attention));
    TRY(sdc_cfg_bool_or(json, "force_upcast", 1, WHAT, log, &cfg->force_upcast));
    cfg->norm_eps = 1e-6f;
    TRY(parse_channels(json, log, cfg));
    TRY(parse_scaling(json, log, cfg));

    int n_down, n_up;
    TRY(block_types(json, "down_block_types", "DownEncoderBlock2D", log, &n_down));
    TRY(block_types(json, "up_block_types", "UpDecoderBlock2D", log, &n_up));
    if (n_down != cfg->n_blocks || n_up != cfg->n_blocks) {
        SDC_LOGE(log, WHAT ": %d down and %d up block types for %d block_out_channels", n_down, n_up, cfg->n_blocks);
        return SDC_ERR_FORMAT;
    }
    return validate(cfg, log);
}

int sdc_vae_downscale(const sdc_vae_config *cfg) { return 1 << (cfg->n_blocks - 1); }
