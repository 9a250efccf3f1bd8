/* sd1_detect.c - the layout and architecture of a single-file checkpoint from the io layer's facts
 * (tensor names and shapes), its name maps, and its index under canonical names.
 *
 * Shapes tell the widths and the counts of blocks, layers and transformer layers; the template of
 * the model the widths identify (sd1_detect.h) fills in what they cannot: attention heads,
 * activation, epsilons, group counts, the VAE scaling factor and the scheduler. This file holds the
 * transformers-CLIP, UNet and VAE measurements and SD 1.x's template; sdxl_detect.c OpenCLIP's and
 * the SD 2.x / SDXL templates; sd1_sf_json.c the config.json writers. */
#include "family/sd1_detect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/openclip_names.h"
#include "model/clip.h"

#define U "model.diffusion_model."
#define V "first_stage_model."
#define T "cond_stage_model."
#define E0 "conditioner.embedders.0."
#define E1 "conditioner.embedders.1."

typedef sd1_sf_det det;

static int has_prefix(const det *d, const char *prefix) { return sdc_sf_count_prefix(d->f, prefix) > 0; }

const sdc_tensor_info *sd1_sf_need(det *d, int ndim, const char *fmt, ...) {
    if (d->st != SDC_OK) return NULL;
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    const sdc_tensor_info *t = len >= 0 && (size_t)len < sizeof name ? sdc_sf_find(d->f, "%s", name) : NULL;
    if (!t) {
        SDC_LOGE(d->log, "sd1_sf_detect: missing tensor %s", name);
        d->st = SDC_ERR_NOT_FOUND;
    } else if (t->ndim != ndim) {
        SDC_LOGE(d->log, "sd1_sf_detect: %s has %d dimensions, expected %d", name, t->ndim, ndim);
        d->st = SDC_ERR_FORMAT;
        t = NULL;
    }
    return t;
}
#define need sd1_sf_need

static int dim(const sdc_tensor_info *t, int k) { return t ? (int)t->ne[k] : 0; }

/* ---- which models the file holds, and in which layout ---- */

/* A missing model of the layout: NOT_FOUND naming it. */
static sdc_status missing(const sdc_logger *log, const char *what, const char *prefix) {
    SDC_LOGE(log, "sd1_sf_detect: the file has no %s (%s* tensors)", what, prefix);
    return SDC_ERR_NOT_FOUND;
}

sdc_status sd1_sf_layout_of(const sdc_sf_facts *f, const sdc_logger *log, sd1_sf_layout *out) {
    det dd = {f, log, SDC_OK}, *d = &dd;
    const int unet = has_prefix(d, U), vae = has_prefix(d, V);
    *out = SD1_SF_LDM;
    if (has_prefix(d, "conditioner.embedders.")) {
        *out = SD1_SF_SGM;
        if (has_prefix(d, E0 "model.") && !has_prefix(d, E1)) {
            SDC_LOGE(log,
                     "sd1_sf_detect: conditioner.embedders.0.model.* alone (one OpenCLIP text encoder): an SDXL "
                     "refiner checkpoint, which sdc does not support");
            return SDC_ERR_UNSUPPORTED;
        }
        if (!has_prefix(d, E0 "transformer."))
            return missing(log, "first text encoder (SDXL's CLIP ViT-L)", E0 "transformer.");
        if (!has_prefix(d, E1 "model."))
            return missing(log, "second text encoder (SDXL's OpenCLIP ViT-bigG)", E1 "model.");
    } else if (has_prefix(d, T "model.")) {
        *out = SD1_SF_LDM_OPENCLIP;
    } else if (!unet && !vae && !has_prefix(d, T)) {
        SDC_LOGE(log,
                 "sd1_sf_detect: no " U "*, " V "* or " T "* tensors (%zu tensors, the first '%.100s'): "
                 "not a Stable Diffusion checkpoint in the original (LDM) layout",
                 sdc_sf_count(f), sdc_sf_count(f) ? sdc_sf_at(f, 0)->name : "");
        return SDC_ERR_UNSUPPORTED;
    } else if (!has_prefix(d, T)) {
        return missing(log, "text encoder", T);
    }
    if (!unet) return missing(log, "UNet", U);
    if (!vae) return missing(log, "VAE", V);
    return SDC_OK;
}

/* The transformers CLIP's prefix under p ("...text_model." or, saved before transformers wrapped CLIP
 * in text_model, the bare one) in out; NULL and an error when there is none. */
static const char *hf_clip_prefix(det *d, const char *p, char *out, size_t size) {
    snprintf(out, size, "%stransformer.text_model.", p);
    if (sdc_sf_find(d->f, "%sembeddings.token_embedding.weight", out)) return out;
    snprintf(out, size, "%stransformer.", p);
    if (sdc_sf_find(d->f, "%sembeddings.token_embedding.weight", out)) return out;
    SDC_LOGE(d->log,
             "sd1_sf_detect: %s* holds no CLIP text encoder "
             "(no transformer.text_model.embeddings.token_embedding.weight): unknown text encoder",
             p);
    d->st = SDC_ERR_UNSUPPORTED;
    return NULL;
}

/* ---- shapes ---- */

static void detect_text_encoder(det *d, const char *P, sd1_sf_clip *c) {
    const sdc_tensor_info *tok = need(d, 2, "%sembeddings.token_embedding.weight", P);      // [vocab, D]
    const sdc_tensor_info *pos = need(d, 2, "%sembeddings.position_embedding.weight", P);   // [positions, D]
    const sdc_tensor_info *fc1 = need(d, 2, "%sencoder.layers.0.mlp.fc1.weight", P);        // [I, D]
    need(d, 1, "%sfinal_layer_norm.weight", P);
    c->vocab = dim(tok, 0);
    c->hidden = dim(tok, 1);
    c->positions = dim(pos, 0);
    c->intermediate = dim(fc1, 0);
    c->layers = 0;
    while (sdc_sf_find(d->f, "%sencoder.layers.%d.self_attn.q_proj.weight", P, c->layers)) c->layers++;
    c->file_layers = c->layers;
}

/* BasicTransformerBlocks of the attention at prefix (".../input_blocks.4.1."). */
static int depth_of(const det *d, const char *fmt, int b) {
    char p[128];
    snprintf(p, sizeof p, fmt, b);
    int n = 0;
    while (sdc_sf_find(d->f, "%stransformer_blocks.%d.attn1.to_q.weight", p, n)) n++;
    return n;
}

/* LDM numbers the UNet's blocks flat: input_blocks 0 is conv_in, then per down block L resnet(+attention)
 * blocks and a downsampler (not after the last); output_blocks hold L+1 per up block. */
static void detect_unet(det *d, sd1_sf_arch *a) {
    const sdc_tensor_info *cin = need(d, 4, U "input_blocks.0.0.weight");   // [C0, in, 3, 3]
    const sdc_tensor_info *cout = need(d, 4, U "out.2.weight");             // [out, C0, 3, 3]
    need(d, 4, U "middle_block.0.in_layers.2.weight");
    if (d->st != SDC_OK) return;
    a->unet_in = dim(cin, 1);
    a->unet_out = dim(cout, 0);
    const int n_in = sdc_sf_max_index(d->f, U "input_blocks.") + 1,
              n_out = sdc_sf_max_index(d->f, U "output_blocks.") + 1;
    int first_down = 0;
    for (int k = 1; k < n_in && !first_down; k++)
        if (sdc_sf_find(d->f, U "input_blocks.%d.0.op.weight", k)) first_down = k;
    const int L = first_down ? first_down - 1 : n_in - 1, n = L >= 1 ? n_in / (L + 1) : 0;
    if (L < 1 || n < 1 || n_in != n * (L + 1) || n_out != n * (L + 1) || n > SD1_SF_MAX_BLOCKS ||
        L > SDC_LDM_MAX_LAYERS) {
        SDC_LOGE(d->log,
                 "sd1_sf_detect: UNet layout not recognised: %d input blocks, %d output blocks, "
                 "the first downsampler in input block %d",
                 n_in, n_out, first_down);
        d->st = SDC_ERR_UNSUPPORTED;
        return;
    }
    a->unet_blocks = n;
    a->unet_layers = L;
    for (int i = 0; i < n; i++) {
        const int b = (L + 1) * i + 1;
        a->unet_channels[i] = dim(need(d, 4, U "input_blocks.%d.0.out_layers.3.weight", b), 0);   // [C, C, 3, 3]
        a->unet_attn[i] = sdc_sf_find(d->f, U "input_blocks.%d.1.proj_in.weight", b) != NULL;
        a->unet_depth[i] = a->unet_attn[i] ? depth_of(d, U "input_blocks.%d.1.", b) : 1;
    }
    /* the mid block always has attention: it tells the projection kind, the context width and depth */
    const sdc_tensor_info *proj = sdc_sf_find(d->f, U "middle_block.1.proj_in.weight");   // [C, C, 1, 1] or [C, C]
    const sdc_tensor_info *k = need(d, 2, U "middle_block.1.transformer_blocks.0.attn2.to_k.weight");   // [C, ctx]
    if (!proj) need(d, 4, U "middle_block.1.proj_in.weight"); /* reports it missing */
    a->unet_linear_proj = proj && proj->ndim == 2;
    a->unet_cross_dim = dim(k, 1);
    a->unet_transformer_layers = depth_of(d, U "middle_block.%d.", 1);
    /* SDXL: the text_time add embedding, [E, P + 6 x addition_time_embed_dim] */
    const sdc_tensor_info *add = sdc_sf_find(d->f, U "label_emb.0.0.weight");
    a->unet_add_in_dim = add && add->ndim == 2 ? (int)add->ne[1] : 0;
}

static void detect_vae(det *d, sd1_sf_arch *a) {
    const sdc_tensor_info *ein = need(d, 4, V "encoder.conv_in.weight");     // [C0, in, 3, 3]
    const sdc_tensor_info *dout = need(d, 4, V "decoder.conv_out.weight");   // [out, C0, 3, 3]
    const sdc_tensor_info *din = need(d, 4, V "decoder.conv_in.weight");     // [C_last, latent, 3, 3]
    need(d, 4, V "encoder.mid.attn_1.q.weight");                             // [C, C, 1, 1]
    if (d->st != SDC_OK) return;
    a->vae_in = dim(ein, 1);
    a->vae_out = dim(dout, 0);
    a->vae_latent = dim(din, 1);
    const int n = sdc_sf_max_index(d->f, V "encoder.down.") + 1, n_up = sdc_sf_max_index(d->f, V "decoder.up.") + 1;
    int L = 0;
    while (sdc_sf_find(d->f, V "encoder.down.0.block.%d.conv1.weight", L)) L++;
    /* each decoder block has one resnet more than its encoder block */
    if (n < 1 || n_up != n || L < 1 || n > SD1_SF_MAX_BLOCKS || L > SDC_LDM_MAX_LAYERS ||
        !sdc_sf_find(d->f, V "decoder.up.0.block.%d.conv1.weight", L)) {
        SDC_LOGE(d->log,
                 "sd1_sf_detect: VAE layout not recognised: %d encoder blocks of %d resnets, "
                 "%d decoder blocks",
                 n, L, n_up);
        d->st = SDC_ERR_UNSUPPORTED;
        return;
    }
    a->vae_blocks = n;
    a->vae_layers = L;
    for (int i = 0; i < n; i++)
        a->vae_channels[i] = dim(need(d, 4, V "encoder.down.%d.block.0.conv2.weight", i), 0);   // [C, C, 3, 3]
    a->vae_quant_conv = sdc_sf_find(d->f, V "quant_conv.weight") != NULL;
    a->vae_post_quant_conv = sdc_sf_find(d->f, V "post_quant_conv.weight") != NULL;
}

/* ---- SD 1.x's template ---- */

enum {
    CLIP_L_WIDTH = 768,
    CLIP_L_HEAD_DIM = 64
};

static sdc_status apply_sd1_template(const det *d, sd1_sf_arch *a) {
    const sdc_logger *log = d->log;
    if (a->te.hidden != CLIP_L_WIDTH) {
        SDC_LOGE(log,
                 "sd1_sf_detect: text encoder width %d is not CLIP ViT-L/14's %d (SD 1.x): its "
                 "attention heads cannot be told from shapes; give a diffusers config folder (--config DIR)",
                 a->te.hidden, CLIP_L_WIDTH);
        return SDC_ERR_UNSUPPORTED;
    }
    if (a->unet_linear_proj) {
        SDC_LOGE(log,
                 "sd1_sf_detect: the UNet's proj_in is a linear (SD 2.x style) with a CLIP ViT-L "
                 "text encoder: unknown family; give a diffusers config folder (--config DIR)");
        return SDC_ERR_UNSUPPORTED;
    }
    if (a->unet_cross_dim != a->te.hidden) {
        SDC_LOGE(log, "sd1_sf_detect: the UNet's cross-attention width %d is not the text encoder's %d",
                 a->unet_cross_dim, a->te.hidden);
        return SDC_ERR_UNSUPPORTED;
    }
    a->family = "SD 1.x";
    a->te.heads = CLIP_L_WIDTH / CLIP_L_HEAD_DIM; /* 12 */
    a->te.act = "quick_gelu";
    a->te.eps = 1e-5;
    a->te.bos = 49406; /* <|startoftext|> */
    a->te.eos = 49407; /* <|endoftext|>: the pooled output is taken at its first occurrence */
    a->te.pad = 49407;
    a->unet_heads = 8;
    a->unet_groups = 32;
    a->unet_sample_size = 64;
    a->vae_groups = 32;
    a->vae_sample_size = 512;
    a->vae_scaling = 0.18215;
    return SDC_OK;
}

int sd1_sf_probe(const sdc_sf_facts *f, int xl) {
    if (sdc_sf_count_prefix(f, "conditioner.embedders.")) return xl;
    static const char *const groups[] = {U, V, T};
    for (size_t i = 0; !xl && i < sizeof groups / sizeof groups[0]; i++)
        if (sdc_sf_count_prefix(f, groups[i])) return 1;
    return 0;
}

sdc_status sd1_sf_measure(const sdc_sf_facts *f, const sdc_logger *log, sd1_sf_arch *out) {
    memset(out, 0, sizeof *out);
    det d = {f, log, SDC_OK};
    sd1_sf_arch a;
    memset(&a, 0, sizeof a);
    d.st = sd1_sf_layout_of(f, log, &a.layout);
    if (d.st == SDC_OK && a.layout == SD1_SF_LDM_OPENCLIP) {
        sd1_sf_measure_openclip(&d, T "model.", &a.te);
        a.te.projection_dim = 0; /* SD 2.x conditions on hidden states; its text_projection is unused */
    } else if (d.st == SDC_OK) {
        char buf[96];
        const char *p = hf_clip_prefix(&d, a.layout == SD1_SF_SGM ? E0 : T, buf, sizeof buf);
        if (p) detect_text_encoder(&d, p, &a.te);
    }
    if (d.st == SDC_OK && a.layout == SD1_SF_SGM) sd1_sf_measure_openclip(&d, E1 "model.", &a.te2);
    if (d.st == SDC_OK) detect_unet(&d, &a);
    if (d.st == SDC_OK) detect_vae(&d, &a);
    if (d.st != SDC_OK) return d.st;
    if (a.unet_add_in_dim) a.unet_add_time_dim = (a.unet_add_in_dim - a.te2.projection_dim) / 6;
    /* diffusers' single-file rule: SD 2.x is v_prediction unless the checkpoint's global_step is 875000
     * (SD 2.x base); a safetensors file has no global_step */
    a.prediction = a.layout == SD1_SF_LDM_OPENCLIP ? "v_prediction" : "epsilon";
    *out = a;
    return SDC_OK;
}

sdc_status sd1_sf_detect(const sdc_sf_facts *f, const sdc_logger *log, sd1_sf_arch *out) {
    sd1_sf_arch a;
    sdc_status st = sd1_sf_measure(f, log, &a);
    const det d = {f, log, SDC_OK};
    if (st == SDC_OK)
        st = a.layout == SD1_SF_LDM  ? apply_sd1_template(&d, &a)
            : a.layout == SD1_SF_SGM ? sd1_sf_template_sdxl(&d, &a)
                                     : sd1_sf_template_sd2(&d, &a);
    if (st != SDC_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    SDC_LOGI(log, "sd1_sf_detect: %s: CLIP %d x %d layers%s, UNet %d blocks from %d channels, VAE %d blocks", a.family,
             a.te.hidden, a.te.layers, a.te2.hidden ? " + OpenCLIP" : "", a.unet_blocks, a.unet_channels[0],
             a.vae_blocks);
    *out = a;
    return SDC_OK;
}

/* ---- the LDM name map of a configured layout ---- */

/* layers_per_block: one int, or a list whose entries must agree (LDM numbering assumes one). */
static sdc_status layers_of(const cJSON *cfg, const char *what, int def, const sdc_logger *log, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, "layers_per_block");
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return SDC_OK;
    }
    int vals[SD1_SF_MAX_BLOCKS], n = 0;
    sdc_status st = sdc_cfg_int_list(cfg, "layers_per_block", what, log, vals, SD1_SF_MAX_BLOCKS, &n);
    if (st != SDC_OK) return st;
    for (int i = 1; i < n; i++)
        if (vals[i] != vals[0]) {
            SDC_LOGE(log, "sd1_sf_open: %s: layers_per_block differs between blocks; an LDM layout has one", what);
            return SDC_ERR_UNSUPPORTED;
        }
    *out = n ? vals[0] : def;
    return SDC_OK;
}

sdc_status sd1_sf_ldm_map_from_configs(const cJSON *unet, const cJSON *vae, const sdc_logger *log, sdc_ldm_map *out) {
    /* diffusers' defaults for absent keys: UNet SD 1.x blocks x 2 layers, VAE 1 block x 1 layer */
    int attn[SD1_SF_MAX_BLOCKS + 1] = {1, 1, 1, 0}, n_unet = 4, L = 2, n_vae = 1, vae_L = 1;
    const char *types[SD1_SF_MAX_BLOCKS + 1];
    sdc_status st = SDC_OK;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(unet, "down_block_types");
    if (dt && !cJSON_IsNull(dt)) {
        st = sdc_cfg_string_list(unet, "down_block_types", "unet config", log, types, SD1_SF_MAX_BLOCKS + 1, &n_unet);
        for (int i = 0; st == SDC_OK && i < n_unet && i < SD1_SF_MAX_BLOCKS; i++)
            attn[i] = strncmp(types[i], "CrossAttn", 9) == 0;
    }
    if (st == SDC_OK) st = layers_of(unet, "unet config", 2, log, &L);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(vae, "block_out_channels");
    if (st == SDC_OK && ch && !cJSON_IsNull(ch)) {
        int vals[SD1_SF_MAX_BLOCKS + 1];
        st = sdc_cfg_int_list(vae, "block_out_channels", "vae config", log, vals, SD1_SF_MAX_BLOCKS + 1, &n_vae);
    }
    if (st == SDC_OK) st = layers_of(vae, "vae config", 1, log, &vae_L);
    if (st != SDC_OK) return st;
    if (sdc_ldm_map_init(out, n_unet, L, attn, n_vae, vae_L) != SDC_OK) {
        SDC_LOGE(log,
                 "sd1_sf_open: no LDM layout for a UNet of %d blocks x %d layers and a VAE of %d x %d "
                 "(at most %d blocks, %d layers)",
                 n_unet, L, n_vae, vae_L, SDC_LDM_MAX_BLOCKS, SDC_LDM_MAX_LAYERS);
        return SDC_ERR_UNSUPPORTED;
    }
    return SDC_OK;
}

/* ---- the file's configs and index ---- */

const char *sd1_part_name(int part) {
    static const char *const names[SD1_N_PARTS] = {"text_encoder", "text_encoder_2", "unet", "vae"};
    return part >= 0 && part < SD1_N_PARTS ? names[part] : "?";
}

/* Every component with a config must have tensors in the index. */
static sdc_status check_components(const sdc_model_files *mf, const sd1_sf_configs *cfg, const sdc_logger *log) {
    size_t count[SD1_N_PARTS] = {0};
    for (size_t i = 0; i < sdc_index_count(mf->index); i++) {
        const char *name = sdc_index_at(mf->index, i)->name;
        for (int c = 0; c < SD1_N_PARTS; c++) {
            const char *cn = sd1_part_name(c);
            size_t l = strlen(cn);
            if (strncmp(name, cn, l) == 0 && name[l] == '.') count[c]++;
        }
    }
    const char *ldm_prefix[SD1_N_PARTS] = {
        [SD1_PART_TEXT_ENCODER] = cfg->layout == SD1_SF_SGM ? E0 "transformer."
            : cfg->layout == SD1_SF_LDM_OPENCLIP            ? T "model."
                                                            : T "transformer.",
        [SD1_PART_TEXT_ENCODER_2] = E1 "model.",
        [SD1_PART_UNET] = U,
        [SD1_PART_VAE] = V,
    };
    for (int c = 0; c < SD1_N_PARTS; c++) {
        if (count[c] == 0 && (cfg->config[c] || sdc_model_files_config(mf, sd1_part_name(c)))) {
            SDC_LOGE(log, "sd1_sf_open: %s has no %s (no %s* tensors)", mf->root, sd1_part_name(c), ldm_prefix[c]);
            return SDC_ERR_NOT_FOUND;
        }
    }
    return SDC_OK;
}

void sd1_sf_configs_free(sd1_sf_configs *c) {
    for (int i = 0; i < SD1_N_PARTS; i++) cJSON_Delete(c->config[i]);
    cJSON_Delete(c->scheduler_config);
    memset(c, 0, sizeof *c);
}

/* The parts a layout has. */
static int has_part(sd1_sf_layout layout, int part) { return part != SD1_PART_TEXT_ENCODER_2 || layout == SD1_SF_SGM; }

/* Part c's config: the model files', else the one built. */
static const cJSON *config_of(const sdc_model_files *mf, const sd1_sf_configs *cfg, int c) {
    const cJSON *j = sdc_model_files_config(mf, sd1_part_name(c));
    return j ? j : cfg->config[c];
}

/* The configs: detected from the file's names and shapes, or the config folder's checked against them. */
static sdc_status configs_of(const sdc_model_files *mf, const sdc_logger *log, sd1_sf_arch *a, sd1_sf_configs *out) {
    sdc_status st = mf->config_dir ? sd1_sf_measure(mf->single, log, a) : sd1_sf_detect(mf->single, log, a);
    for (int c = 0; st == SDC_OK && mf->config_dir && c < SD1_N_PARTS; c++) {
        if (has_part(a->layout, c) && !sdc_model_files_config(mf, sd1_part_name(c))) {
            SDC_LOGE(log, "sd1_sf_open: the config folder %s has no %s/config.json", mf->config_dir, sd1_part_name(c));
            st = SDC_ERR_NOT_FOUND;
        }
    }
    if (st == SDC_OK && mf->config_dir) return sd1_sf_check_configs(mf, out, a, log);
    if (st != SDC_OK) return st;
    out->config[SD1_PART_TEXT_ENCODER] = sd1_sf_text_encoder_config(a);
    if (a->layout == SD1_SF_SGM) out->config[SD1_PART_TEXT_ENCODER_2] = sd1_sf_clip_config(&a->te2);
    out->config[SD1_PART_UNET] = sd1_sf_unet_config(a);
    out->config[SD1_PART_VAE] = sd1_sf_vae_config(a);
    for (int c = 0; c < SD1_N_PARTS; c++)
        if (!out->config[c] && has_part(a->layout, c)) st = SDC_ERR_OOM;
    return st;
}

/* The scheduler config the model files lack, with the caller's prediction type. */
static sdc_status scheduler_of(const sdc_model_files *mf, const sd1_sf_arch *a, sd1_sf_configs *out) {
    if (mf->scheduler_config) return SDC_OK;
    out->scheduler_config = sd1_sf_scheduler_config(a);
    if (!out->scheduler_config) return SDC_ERR_OOM;
    if (!mf->prediction_type) return SDC_OK;
    cJSON *v = cJSON_CreateString(mf->prediction_type);
    if (!v || !cJSON_ReplaceItemInObjectCaseSensitive(out->scheduler_config, "prediction_type", v)) {
        cJSON_Delete(v);
        return SDC_ERR_OOM;
    }
    return SDC_OK;
}

/* The file's names: an OpenCLIP encoder's through its map, the rest through the LDM map. */
typedef struct sf_names {
    sdc_ldm_map ldm;
    sdc_openclip_map openclip;
    int has_openclip;
} sf_names;

static const char *sf_name_map(const char *name, char *out, size_t size, void *user) {
    const sf_names *n = user;
    if (n->has_openclip && sdc_openclip_owns(&n->openclip, name))
        return sdc_openclip_to_hf(&n->openclip, name, out, size);
    return sdc_ldm_to_diffusers(&n->ldm, name, out, size);
}

/* The name maps of the configs (blocks and layers of the UNet and VAE, the OpenCLIP encoder's layers). */
static sdc_status names_of(const sdc_model_files *mf, const sd1_sf_configs *cfg, sd1_sf_layout layout,
                           const sdc_logger *log, sf_names *n) {
    sdc_status st =
        sd1_sf_ldm_map_from_configs(config_of(mf, cfg, SD1_PART_UNET), config_of(mf, cfg, SD1_PART_VAE), log, &n->ldm);
    if (st != SDC_OK || layout == SD1_SF_LDM) return st;
    const int te = layout == SD1_SF_SGM ? SD1_PART_TEXT_ENCODER_2 : SD1_PART_TEXT_ENCODER;
    sdc_clip_config cc;
    st = sdc_clip_config_parse(config_of(mf, cfg, te), log, &cc);
    n->has_openclip = 1;
    n->openclip = layout == SD1_SF_SGM ? (sdc_openclip_map){E1 "model.", "text_encoder_2.", cc.n_layers, 1}
                                       : (sdc_openclip_map){T "model.", "text_encoder.", cc.n_layers, 0};
    return st;
}

sdc_status sd1_sf_open(sdc_model_files *mf, int xl, const sdc_logger *log, sd1_sf_configs *out) {
    memset(out, 0, sizeof *out);
    sdc_status st = sd1_sf_layout_of(mf->single, log, &out->layout);
    if (st == SDC_OK && xl != (out->layout == SD1_SF_SGM)) {
        SDC_LOGE(log, "sd1_sf_open: %s is %s checkpoint; the %s family does not open it", mf->root,
                 out->layout == SD1_SF_SGM ? "an SDXL (conditioner.embedders.*)" : "an SD 1.x / 2.x",
                 xl ? "sdxl" : "sd1");
        st = SDC_ERR_UNSUPPORTED;
    }
    sd1_sf_arch a;
    if (st == SDC_OK) st = configs_of(mf, log, &a, out);
    if (st == SDC_OK) st = scheduler_of(mf, &a, out);
    sf_names *names = st == SDC_OK ? calloc(1, sizeof *names) : NULL;
    if (st == SDC_OK && !names) st = SDC_ERR_OOM;
    if (st == SDC_OK) st = names_of(mf, out, out->layout, log, names);
    /* the model's index: empty until now, the pipeline reads it once the family is open */
    if (st == SDC_OK) st = sdc_single_file_index(mf->index, mf->root, sf_name_map, names);
    if (st == SDC_OK && names->has_openclip) st = sdc_openclip_index_finish(mf->index, &names->openclip);
    free(names);
    if (st == SDC_OK) st = check_components(mf, out, log);
    return st;
}
