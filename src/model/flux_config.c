/* flux_config.c - FluxTransformer2DModel config.json -> sdc_flux_config (see flux.h). */
#include <stdio.h>
#include <string.h>

#include "io/config.h"
#include "model/flux.h"

#define WHAT "flux transformer config"
#define FN "sdc_flux_config_parse"

static sdc_status check_class(const cJSON *json, const sdc_logger *log) {
    const char *cls = NULL;
    sdc_status st = sdc_cfg_string_or(json, "_class_name", "FluxTransformer2DModel", WHAT, log, &cls);
    if (st != SDC_OK || strcmp(cls, "FluxTransformer2DModel") == 0) return st;
    SDC_LOGE(log, "%s: _class_name '%s' is not FluxTransformer2DModel", FN, cls);
    return SDC_ERR_UNSUPPORTED;
}

/* axes_dims_rope: 1..SDC_FLUX_MAX_AXES even widths summing to the head width. */
static sdc_status parse_axes(const cJSON *json, const sdc_logger *log, sdc_flux_config *cfg) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "axes_dims_rope");
    if (!v || cJSON_IsNull(v)) {
        cfg->n_axes = 3;
        cfg->axes_dims[0] = 16, cfg->axes_dims[1] = 56, cfg->axes_dims[2] = 56;
    } else {
        if (!cJSON_IsArray(v)) {
            SDC_LOGE(log, "%s: axes_dims_rope is not a list", FN);
            return SDC_ERR_FORMAT;
        }
        const int n = cJSON_GetArraySize(v);
        sdc_status st = sdc_cfg_bound(FN, "len(axes_dims_rope)", n, 1, SDC_FLUX_MAX_AXES, log);
        if (st == SDC_OK)
            st = sdc_cfg_int_list(json, "axes_dims_rope", WHAT, log, cfg->axes_dims, SDC_FLUX_MAX_AXES, &cfg->n_axes);
        if (st != SDC_OK) return st;
    }
    long long sum = 0;
    for (int a = 0; a < cfg->n_axes; a++) {
        char key[32];
        snprintf(key, sizeof key, "axes_dims_rope[%d]", a);
        sdc_status st = sdc_cfg_bound(FN, key, cfg->axes_dims[a], 2, SDC_CFG_MAX_CHANNELS, log);
        if (st != SDC_OK) return st;
        if (cfg->axes_dims[a] % 2) {
            SDC_LOGE(log, "%s: %s = %d is odd; rotary pairs need an even width", FN, key, cfg->axes_dims[a]);
            return SDC_ERR_FORMAT;
        }
        sum += cfg->axes_dims[a];
    }
    if (sum != cfg->head_dim) {
        SDC_LOGE(log, "%s: axes_dims_rope sum to %lld, attention_head_dim is %d; they must agree", FN, sum,
                 cfg->head_dim);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

/* The ints of the config with their defaults and bounds. */
static sdc_status parse_ints(const cJSON *json, const sdc_logger *log, sdc_flux_config *c) {
    const struct {
        const char *key;
        int def, lo, hi;
        int *out;
    } ints[] = {
        {"in_channels", 64, 1, SDC_CFG_MAX_IO_CHANNELS, &c->in_channels},
        {"num_layers", 19, 0, SDC_CFG_MAX_LAYERS, &c->n_layers},
        {"num_single_layers", 38, 0, SDC_CFG_MAX_LAYERS, &c->n_single_layers},
        {"num_attention_heads", 24, 1, SDC_CFG_MAX_HEADS, &c->n_heads},
        {"attention_head_dim", 128, 2, SDC_CFG_MAX_CHANNELS, &c->head_dim},
        {"joint_attention_dim", 4096, 1, SDC_CFG_MAX_WIDTH, &c->joint_dim},
        {"pooled_projection_dim", 768, 1, SDC_CFG_MAX_WIDTH, &c->pooled_dim},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        sdc_status st = sdc_cfg_int_or(json, ints[i].key, ints[i].def, WHAT, log, ints[i].out);
        if (st == SDC_OK) st = sdc_cfg_bound(FN, ints[i].key, *ints[i].out, ints[i].lo, ints[i].hi, log);
        if (st != SDC_OK) return st;
    }
    sdc_status st = sdc_cfg_int_or(json, "out_channels", c->in_channels, WHAT, log, &c->out_channels);
    if (st == SDC_OK) st = sdc_cfg_bound(FN, "out_channels", c->out_channels, 1, SDC_CFG_MAX_IO_CHANNELS, log);
    if (st == SDC_OK)
        st = sdc_cfg_bound(FN, "num_attention_heads * attention_head_dim", (long long)c->n_heads * c->head_dim, 1,
                           SDC_CFG_MAX_CHANNELS, log);
    if (st == SDC_OK && c->head_dim % 2) {
        SDC_LOGE(log, "%s: attention_head_dim = %d is odd; rotary pairs need an even width", FN, c->head_dim);
        st = SDC_ERR_FORMAT;
    }
    return st;
}

sdc_status sdc_flux_config_parse(const cJSON *json, const sdc_logger *log, sdc_flux_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->theta = 10000.0;
    if (!cJSON_IsObject(json)) {
        SDC_LOGE(log, "%s: the config is not a JSON object", FN);
        return SDC_ERR_FORMAT;
    }
    int patch = 1;
    sdc_status st = check_class(json, log);
    if (st == SDC_OK) st = sdc_cfg_int_or(json, "patch_size", 1, WHAT, log, &patch);
    if (st == SDC_OK && patch != 1) {
        SDC_LOGE(log, "%s: patch_size %d is not supported (only 1: latents come packed 2x2)", FN, patch);
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK) st = parse_ints(json, log, cfg);
    if (st == SDC_OK) st = sdc_cfg_bool_or(json, "guidance_embeds", 0, WHAT, log, &cfg->guidance_embeds);
    if (st == SDC_OK) st = parse_axes(json, log, cfg);
    return st;
}
