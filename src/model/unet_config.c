/* unet_config.c - UNet2DConditionModel config.json -> sdc_unet_config (see unet.h). */
#include <stdio.h>
#include <string.h>

#include "io/checked.h"
#include "io/config.h"
#include "model/unet.h"

#define WHAT "unet config"
#define FN "sdc_unet_config_parse"

static const char *const default_down[] = {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                           "DownBlock2D"};
static const char *const default_up[] = {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"};
static const int default_channels[] = {320, 640, 1280, 1280};

static int absent(const cJSON *json, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, key);
    return !v || cJSON_IsNull(v);
}

/* Keys whose only value sdc implements is null (or absence). */
static sdc_status need_null(const cJSON *json, const char *key, const sdc_logger *log) {
    if (absent(json, key)) return SDC_OK;
    SDC_LOGE(log, "sdc_unet_config_parse: %s is set; sdc supports only null", key);
    return SDC_ERR_UNSUPPORTED;
}

static sdc_status need_false(const cJSON *json, const char *key, const sdc_logger *log) {
    int v = 0;
    sdc_status st = sdc_cfg_bool_or(json, key, 0, WHAT, log, &v);
    if (st != SDC_OK) return st;
    if (!v) return SDC_OK;
    SDC_LOGE(log, "sdc_unet_config_parse: %s is true; sdc supports only false", key);
    return SDC_ERR_UNSUPPORTED;
}

static sdc_status need_string(const cJSON *json, const char *key, const char *only, const sdc_logger *log) {
    const char *s = NULL;
    sdc_status st = sdc_cfg_string_or(json, key, only, WHAT, log, &s);
    if (st != SDC_OK) return st;
    if (strcmp(s, only) == 0) return SDC_OK;
    SDC_LOGE(log, "sdc_unet_config_parse: %s '%s' is not supported (only '%s')", key, s, only);
    return SDC_ERR_UNSUPPORTED;
}

static sdc_status need_int(const cJSON *json, const char *key, int only, const sdc_logger *log) {
    int v = 0;
    sdc_status st = sdc_cfg_int_or(json, key, only, WHAT, log, &v);
    if (st != SDC_OK) return st;
    if (v == only) return SDC_OK;
    SDC_LOGE(log, "sdc_unet_config_parse: %s %d is not supported (only %d)", key, v, only);
    return SDC_ERR_UNSUPPORTED;
}

static sdc_status need_float(const cJSON *json, const char *key, double only, const sdc_logger *log) {
    double v = 0;
    sdc_status st = sdc_cfg_float_or(json, key, only, WHAT, log, &v);
    if (st != SDC_OK) return st;
    if (v == only) return SDC_OK;
    SDC_LOGE(log, "sdc_unet_config_parse: %s %g is not supported (only %g)", key, v, only);
    return SDC_ERR_UNSUPPORTED;
}

/* An int for every block or a list of n ints, each in [1, hi]; absent or null gives def for every block. */
static sdc_status per_block_ints(const cJSON *json, const char *key, int def, int hi, int n, const sdc_logger *log,
                                 int *out) {
    int vals[SDC_UNET_MAX_BLOCKS], m = 0;
    if (absent(json, key)) {
        for (int i = 0; i < n; i++) out[i] = def;
        return SDC_OK;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, key);
    if (cJSON_IsArray(v)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            if (cJSON_IsArray(e)) {
                SDC_LOGE(log, "sdc_unet_config_parse: %s holds nested lists; not supported", key);
                return SDC_ERR_UNSUPPORTED;
            }
        }
        if (cJSON_GetArraySize(v) != n) {
            SDC_LOGE(log, "sdc_unet_config_parse: %s has %d entries for %d blocks", key, cJSON_GetArraySize(v), n);
            return SDC_ERR_FORMAT;
        }
    }
    sdc_status st = sdc_cfg_int_list(json, key, WHAT, log, vals, SDC_UNET_MAX_BLOCKS, &m);
    if (st != SDC_OK) return st;
    for (int i = 0; i < n; i++) out[i] = m == 1 && !cJSON_IsArray(v) ? vals[0] : vals[i];
    for (int i = 0; i < n; i++) {
        char name[96];
        snprintf(name, sizeof name, "%s[%d]", key, i);
        st = sdc_cfg_bound(FN, name, out[i], 1, hi, log);
        if (st != SDC_OK) return st;
    }
    return SDC_OK;
}

/* only_cross_attention: false, or a list of falses. */
static sdc_status check_only_cross(const cJSON *json, const sdc_logger *log) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(json, "only_cross_attention");
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v)) return SDC_OK;
    if (cJSON_IsArray(v)) {
        const cJSON *e;
        int any = 0;
        cJSON_ArrayForEach(e, v) {
            if (!cJSON_IsBool(e)) {
                SDC_LOGE(log, "sdc_unet_config_parse: only_cross_attention holds a non-boolean");
                return SDC_ERR_FORMAT;
            }
            any |= cJSON_IsTrue(e);
        }
        if (!any) return SDC_OK;
    } else if (!cJSON_IsTrue(v)) {
        SDC_LOGE(log, "sdc_unet_config_parse: only_cross_attention is not a boolean");
        return SDC_ERR_FORMAT;
    }
    SDC_LOGE(log, "sdc_unet_config_parse: only_cross_attention is not supported");
    return SDC_ERR_UNSUPPORTED;
}

/* down_block_types / up_block_types -> has-attention flags. */
static sdc_status block_types(const cJSON *json, const char *key, const char *const *deflt, const char *attn,
                              const char *plain, int n, const sdc_logger *log, int *out) {
    const char *names[SDC_UNET_MAX_BLOCKS + 1];
    int m = 4;
    if (absent(json, key)) {
        for (int i = 0; i < 4; i++) names[i] = deflt[i];
    } else {
        sdc_status st = sdc_cfg_string_list(json, key, WHAT, log, names, SDC_UNET_MAX_BLOCKS + 1, &m);
        if (st != SDC_OK) return st;
    }
    if (m != n) {
        SDC_LOGE(log, "sdc_unet_config_parse: %s has %d entries for %d blocks", key, m, n);
        return SDC_ERR_FORMAT;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], attn) == 0) {
            out[i] = 1;
        } else if (strcmp(names[i], plain) == 0) {
            out[i] = 0;
        } else {
            SDC_LOGE(log, "sdc_unet_config_parse: %s[%d] '%s' is not supported (only %s, %s)", key, i, names[i], attn,
                     plain);
            return SDC_ERR_UNSUPPORTED;
        }
    }
    return SDC_OK;
}

/* Settings that select code sdc does not have. */
static sdc_status check_unsupported(const cJSON *json, const sdc_logger *log) {
    static const char *const null_keys[] = {
        "class_embed_type",      "encoder_hid_dim",    "encoder_hid_dim_type",
        "num_class_embeds",      "time_cond_proj_dim", "cross_attention_norm",
        "time_embedding_act_fn", "timestep_post_act",  "reverse_transformer_layers_per_block"};
    static const char *const false_keys[] = {"center_input_sample", "dual_cross_attention", "resnet_skip_time_act",
                                             "class_embeddings_concat"};
    sdc_status st = need_string(json, "_class_name", "UNet2DConditionModel", log);
    for (size_t i = 0; st == SDC_OK && i < sizeof null_keys / sizeof *null_keys; i++)
        st = need_null(json, null_keys[i], log);
    for (size_t i = 0; st == SDC_OK && i < sizeof false_keys / sizeof *false_keys; i++)
        st = need_false(json, false_keys[i], log);
    if (st == SDC_OK) st = check_only_cross(json, log);
    if (st == SDC_OK) st = need_string(json, "act_fn", "silu", log);
    if (st == SDC_OK) st = need_string(json, "time_embedding_type", "positional", log);
    if (st == SDC_OK) st = need_string(json, "resnet_time_scale_shift", "default", log);
    if (st == SDC_OK) st = need_string(json, "attention_type", "default", log);
    if (st == SDC_OK) st = need_string(json, "mid_block_type", "UNetMidBlock2DCrossAttn", log);
    if (st == SDC_OK && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json, "mid_block_type"))) {
        SDC_LOGE(log, "sdc_unet_config_parse: a UNet without mid block is not supported");
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK) st = need_int(json, "conv_in_kernel", 3, log);
    if (st == SDC_OK) st = need_int(json, "conv_out_kernel", 3, log);
    if (st == SDC_OK) st = need_int(json, "downsample_padding", 1, log);
    if (st == SDC_OK) st = need_float(json, "mid_block_scale_factor", 1.0, log);
    if (st == SDC_OK) st = need_float(json, "resnet_out_scale_factor", 1.0, log);
    if (st == SDC_OK && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(json, "norm_num_groups"))) {
        SDC_LOGE(log, "sdc_unet_config_parse: norm_num_groups null (no output norm) is not supported");
        st = SDC_ERR_UNSUPPORTED;
    }
    if (st == SDC_OK && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(json, "cross_attention_dim"))) {
        SDC_LOGE(log, "sdc_unet_config_parse: a cross_attention_dim per block is not supported");
        st = SDC_ERR_UNSUPPORTED;
    }
    return st;
}

/* Every width and count read as a single number, before anything uses them. */
static sdc_status check_bounds(const sdc_unet_config *c, const sdc_logger *log) {
    sdc_status st = sdc_cfg_bound(FN, "in_channels", c->in_channels, 1, SDC_CFG_MAX_IO_CHANNELS, log);
    if (st == SDC_OK) st = sdc_cfg_bound(FN, "out_channels", c->out_channels, 1, SDC_CFG_MAX_IO_CHANNELS, log);
    if (st == SDC_OK)
        st = sdc_cfg_bound(FN, "cross_attention_dim", c->cross_attention_dim, 1, SDC_CFG_MAX_CHANNELS, log);
    if (st == SDC_OK) st = sdc_cfg_bound(FN, "norm_num_groups", c->norm_num_groups, 1, SDC_CFG_MAX_GROUPS, log);
    if (st == SDC_OK) st = sdc_cfg_bound(FN, "freq_shift", c->freq_shift, -SDC_CFG_MAX_WIDTH, SDC_CFG_MAX_WIDTH, log);
    if (st == SDC_OK) st = sdc_cfg_bound(FN, "time_embedding_dim", c->time_embed_dim, 1, SDC_CFG_MAX_WIDTH, log);
    return st;
}

static sdc_status read_channels(const cJSON *json, const sdc_logger *log, sdc_unet_config *c) {
    if (absent(json, "block_out_channels")) {
        c->n_blocks = 4;
        memcpy(c->block_out_channels, default_channels, sizeof default_channels);
        return SDC_OK;
    }
    int vals[SDC_UNET_MAX_BLOCKS + 1], n = 0;
    sdc_status st = sdc_cfg_int_list(json, "block_out_channels", WHAT, log, vals, SDC_UNET_MAX_BLOCKS + 1, &n);
    if (st != SDC_OK) return st;
    if (n > SDC_UNET_MAX_BLOCKS) {
        SDC_LOGE(log, "sdc_unet_config_parse: more than %d blocks are not supported", SDC_UNET_MAX_BLOCKS);
        return SDC_ERR_UNSUPPORTED;
    }
    if (n < 1) {
        SDC_LOGE(log, "sdc_unet_config_parse: block_out_channels is empty");
        return SDC_ERR_FORMAT;
    }
    for (int i = 0; i < n; i++) {
        char name[48];
        snprintf(name, sizeof name, "block_out_channels[%d]", i);
        st = sdc_cfg_bound(FN, name, vals[i], 1, SDC_CFG_MAX_CHANNELS, log);
        if (st != SDC_OK) return st;
    }
    c->n_blocks = n;
    for (int i = 0; i < n; i++) c->block_out_channels[i] = vals[i];
    return SDC_OK;
}

/* Heads and channels must divide: groups every block's channels, heads its attention's. */
static sdc_status check_shapes(const sdc_unet_config *c, const sdc_logger *log) {
    const int n = c->n_blocks, g = c->norm_num_groups;
    if (c->in_channels < 1 || c->out_channels < 1 || g < 1 || c->cross_attention_dim < 1 || c->time_embed_dim < 1 ||
        !(c->norm_eps > 0)) {
        SDC_LOGE(log, "sdc_unet_config_parse: channels, groups, norm_eps and embedding sizes must be positive");
        return SDC_ERR_FORMAT;
    }
    for (int i = 0; i < n; i++) {
        const int ch = c->block_out_channels[i];
        if (ch < 1 || ch % g != 0) {
            SDC_LOGE(log,
                     "sdc_unet_config_parse: block_out_channels[%d] = %d is not a positive multiple of "
                     "norm_num_groups %d",
                     i, ch, g);
            return ch < 1 ? SDC_ERR_FORMAT : SDC_ERR_UNSUPPORTED;
        }
        if (c->heads[i] < 1) {
            SDC_LOGE(log, "sdc_unet_config_parse: attention heads of block %d = %d", i, c->heads[i]);
            return SDC_ERR_FORMAT;
        }
    }
    /* Up block i's resnet j takes the running channels plus a popped skip's; diffusers derives the
     * weight shapes from a formula, which must agree with the skips the down path leaves. */
    int skip_ch[1 + SDC_UNET_MAX_BLOCKS * (SDC_UNET_MAX_LAYERS + 1)], n_skips = 0;
    skip_ch[n_skips++] = c->block_out_channels[0];
    for (int i = 0; i < n; i++) {
        if (c->layers_per_block[i] > SDC_UNET_MAX_LAYERS) {
            SDC_LOGE(log, "sdc_unet_config_parse: layers_per_block %d is more than %d; not supported",
                     c->layers_per_block[i], SDC_UNET_MAX_LAYERS);
            return SDC_ERR_UNSUPPORTED;
        }
        for (int j = 0; j < c->layers_per_block[i]; j++) skip_ch[n_skips++] = c->block_out_channels[i];
        if (i < n - 1) skip_ch[n_skips++] = c->block_out_channels[i];
    }
    int ch = c->block_out_channels[n - 1];
    for (int i = 0; i < n; i++) {
        const int out = c->block_out_channels[n - 1 - i], in = c->block_out_channels[n - 1 - (i + 1 < n ? i + 1 : i)];
        const int layers = c->layers_per_block[n - 1 - i] + 1;
        for (int j = 0; j < layers; j++) {
            const int formula = (j == 0 ? ch : out) + (j == layers - 1 ? in : out);
            if (n_skips == 0 || formula != (j == 0 ? ch : out) + skip_ch[n_skips - 1]) {
                SDC_LOGE(log, "sdc_unet_config_parse: layers_per_block leaves skips that up block %d cannot take", i);
                return SDC_ERR_UNSUPPORTED;
            }
            n_skips--;
        }
        ch = out;
    }
    for (int i = 0; i < n; i++) {
        const int up_ch = c->block_out_channels[n - 1 - i], up_heads = c->heads[n - 1 - i];
        if ((c->down_attn[i] && c->block_out_channels[i] % c->heads[i] != 0) ||
            (c->up_attn[i] && up_ch % up_heads != 0) || c->block_out_channels[n - 1] % c->heads[n - 1] != 0) {
            SDC_LOGE(log, "sdc_unet_config_parse: the attention heads do not divide the channels of block %d", i);
            return SDC_ERR_UNSUPPORTED;
        }
    }
    return SDC_OK;
}

/* addition_embed_type: null, or "text_time" (SDXL: pooled text embeds + embedded micro-conditioning
 * through add_embedding). */
static sdc_status addition_embed(const cJSON *json, const sdc_logger *log, sdc_unet_config *c) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(json, "addition_embed_type");
    if (!t || cJSON_IsNull(t)) return SDC_OK;
    if (!cJSON_IsString(t) || strcmp(t->valuestring, "text_time") != 0) {
        SDC_LOGE(log, "sdc_unet_config_parse: addition_embed_type %s is not supported (only null and \"text_time\")",
                 cJSON_IsString(t) ? t->valuestring : "(not a string)");
        return SDC_ERR_UNSUPPORTED;
    }
    c->text_time = 1;
    sdc_status st = sdc_cfg_int(json, "addition_time_embed_dim", WHAT, log, &c->addition_time_embed_dim);
    if (st == SDC_OK) st = sdc_cfg_int(json, "projection_class_embeddings_input_dim", WHAT, log, &c->add_in_dim);
    if (st == SDC_OK)
        st = sdc_cfg_bound(FN, "addition_time_embed_dim", c->addition_time_embed_dim, 2, SDC_CFG_MAX_CHANNELS, log);
    if (st == SDC_OK)
        st = sdc_cfg_bound(FN, "projection_class_embeddings_input_dim", c->add_in_dim, 1, SDC_CFG_MAX_WIDTH, log);
    if (st == SDC_OK && c->addition_time_embed_dim % 2) {
        SDC_LOGE(log, "sdc_unet_config_parse: addition_time_embed_dim %d is odd", c->addition_time_embed_dim);
        st = SDC_ERR_UNSUPPORTED;
    }
    return st;
}

sdc_status sdc_unet_config_parse(const cJSON *json, const sdc_logger *log, sdc_unet_config *cfg) {
    sdc_unet_config c;
    memset(&c, 0, sizeof c);
    memset(cfg, 0, sizeof *cfg);
    if (!cJSON_IsObject(json)) {
        SDC_LOGE(log, "sdc_unet_config_parse: the config is not a JSON object");
        return SDC_ERR_FORMAT;
    }
    double eps = 1e-5;
    int heads_from_num = !absent(json, "num_attention_heads");
    sdc_status st = check_unsupported(json, log);
    if (st == SDC_OK) st = read_channels(json, log, &c);
    const int n = c.n_blocks;
    if (st == SDC_OK)
        st = block_types(json, "down_block_types", default_down, "CrossAttnDownBlock2D", "DownBlock2D", n, log,
                         c.down_attn);
    if (st == SDC_OK)
        st = block_types(json, "up_block_types", default_up, "CrossAttnUpBlock2D", "UpBlock2D", n, log, c.up_attn);
    if (st == SDC_OK) st = per_block_ints(json, "layers_per_block", 2, SDC_UNET_MAX_LAYERS, n, log, c.layers_per_block);
    if (st == SDC_OK)
        st = per_block_ints(json, "transformer_layers_per_block", 1, SDC_CFG_MAX_TRANSFORMER_LAYERS, n, log,
                            c.transformer_layers);
    /* diffusers' SD configs put the number of heads in attention_head_dim (a historical misnomer);
     * num_attention_heads, when given, takes precedence. */
    if (st == SDC_OK)
        st = per_block_ints(json, heads_from_num ? "num_attention_heads" : "attention_head_dim", 8, SDC_CFG_MAX_HEADS,
                            n, log, c.heads);
    if (st == SDC_OK) st = sdc_cfg_int_or(json, "in_channels", 4, WHAT, log, &c.in_channels);
    if (st == SDC_OK) st = sdc_cfg_int_or(json, "out_channels", 4, WHAT, log, &c.out_channels);
    if (st == SDC_OK) st = sdc_cfg_int_or(json, "cross_attention_dim", 1280, WHAT, log, &c.cross_attention_dim);
    if (st == SDC_OK) st = sdc_cfg_int_or(json, "norm_num_groups", 32, WHAT, log, &c.norm_num_groups);
    if (st == SDC_OK) st = sdc_cfg_float_or(json, "norm_eps", 1e-5, WHAT, log, &eps);
    if (st == SDC_OK) st = sdc_cfg_bool_or(json, "flip_sin_to_cos", 1, WHAT, log, &c.flip_sin_to_cos);
    if (st == SDC_OK) st = sdc_cfg_int_or(json, "freq_shift", 0, WHAT, log, &c.freq_shift);
    int time_dim = 0; /* diffusers' default: 4 * block_out_channels[0] (bounded above, so it fits) */
    if (st == SDC_OK && sdc_ckd_mul_int(4, c.block_out_channels[0], &time_dim) != 0) st = SDC_ERR_UNSUPPORTED;
    if (st == SDC_OK) st = sdc_cfg_int_or(json, "time_embedding_dim", time_dim, WHAT, log, &c.time_embed_dim);
    if (st == SDC_OK) st = check_bounds(&c, log);
    if (st == SDC_OK) st = addition_embed(json, log, &c);
    if (st == SDC_OK) st = sdc_cfg_bool_or(json, "use_linear_projection", 0, WHAT, log, &c.use_linear_projection);
    if (st == SDC_OK) st = sdc_cfg_bool_or(json, "upcast_attention", 0, WHAT, log, &c.upcast_attention);
    if (st == SDC_OK) {
        const cJSON *ss = cJSON_GetObjectItemCaseSensitive(json, "sample_size");
        c.sample_size = cJSON_IsNumber(ss) ? ss->valueint : 0;
        st = sdc_cfg_bound(FN, "sample_size", c.sample_size, 0, SDC_CFG_MAX_SAMPLE_SIZE, log);
    }
    if (st == SDC_OK) {
        c.norm_eps = (float)eps;
        int n_freq = 0; /* half_dim - freq_shift, the time embedding's divisor; both bounded, so it fits */
        if (sdc_ckd_sub_int(c.block_out_channels[0] / 2, c.freq_shift, &n_freq) != 0 || c.block_out_channels[0] < 2 ||
            n_freq == 0) {
            SDC_LOGE(log,
                     "sdc_unet_config_parse: block_out_channels[0] %d with freq_shift %d gives no time "
                     "frequencies",
                     c.block_out_channels[0], c.freq_shift);
            st = SDC_ERR_FORMAT;
        }
    }
    if (st == SDC_OK) st = check_shapes(&c, log);
    if (st == SDC_OK) *cfg = c;
    return st;
}
