/* sdxl_detect.c - single files with OpenCLIP text encoders: their measurement, the SD 2.x and SDXL
 * templates (sd1_detect.h), and the check of a config folder against a file's shapes. */
#include <stdio.h>
#include <string.h>

#include "family/sd1_detect.h"
#include "model/clip.h"
#include "model/unet.h"
#include "model/vae.h"

typedef sd1_sf_det det;

static int dim(const sdc_tensor_info *t, int k) { return t ? (int)t->ne[k] : 0; }

/* open_clip's text tower under p: token_embedding [V, C], positional_embedding [T, C],
 * transformer.resblocks.N (mlp.c_fc [I, C]), ln_final, and text_projection [C, P] when it has one. */
void sd1_sf_measure_openclip(det *d, const char *p, sd1_sf_clip *c) {
    const sdc_tensor_info *tok = sd1_sf_need(d, 2, "%stoken_embedding.weight", p);                   // [V, C]
    const sdc_tensor_info *pos = sd1_sf_need(d, 2, "%spositional_embedding", p);                     // [T, C]
    const sdc_tensor_info *fc = sd1_sf_need(d, 2, "%stransformer.resblocks.0.mlp.c_fc.weight", p);   // [I, C]
    sd1_sf_need(d, 2, "%stransformer.resblocks.0.attn.in_proj_weight", p);                           // [3C, C]
    sd1_sf_need(d, 1, "%sln_final.weight", p);
    const sdc_tensor_info *proj = sdc_sf_find(d->f, "%stext_projection", p);   // [C, P]
    c->vocab = dim(tok, 0);
    c->hidden = dim(tok, 1);
    c->positions = dim(pos, 0);
    c->intermediate = dim(fc, 0);
    c->file_layers = 0;
    while (sdc_sf_find(d->f, "%stransformer.resblocks.%d.attn.in_proj_weight", p, c->file_layers)) c->file_layers++;
    c->layers = c->file_layers;
    c->projection_dim = proj && proj->ndim == 2 ? (int)proj->ne[1] : 0;
    c->act = "gelu";
    c->eps = 1e-5;
    c->bos = 49406;
    c->eos = 49407; /* the largest id: the pooled output is taken at the first <|endoftext|> */
}

enum {
    HEAD_DIM = 64,   /* the attention head width of OpenCLIP ViT-H / bigG, CLIP ViT-L and SD 2.x / SDXL's UNets */
    VIT_L = 768,     /* CLIP ViT-L/14 */
    VIT_H = 1024,    /* OpenCLIP ViT-H/14 (SD 2.x) */
    VIT_BIGG = 1280, /* OpenCLIP ViT-bigG/14 (SDXL) */
    SD_PAD_BANG = 0, /* "!": SD 2.x's and SDXL's OpenCLIP tokenizers pad with it */
    CLIP_EOS = 49407
};

static void unet_vae_common(sd1_sf_arch *a) {
    a->unet_head_dim = HEAD_DIM;
    a->unet_groups = 32;
    a->vae_groups = 32;
}

sdc_status sd1_sf_template_sd2(const det *d, sd1_sf_arch *a) {
    if (a->te.hidden != VIT_H || !a->unet_linear_proj || a->unet_cross_dim != VIT_H) {
        SDC_LOGE(d->log,
                 "sd1_sf_detect: an OpenCLIP text encoder %d wide and a UNet with %s proj_in and cross-attention "
                 "width %d are not SD 2.x's (%d, linear, %d): attention heads cannot be told from shapes; give a "
                 "diffusers config folder (--config DIR)",
                 a->te.hidden, a->unet_linear_proj ? "a linear" : "a 1x1-conv", a->unet_cross_dim, VIT_H, VIT_H);
        return SDC_ERR_UNSUPPORTED;
    }
    a->family = "SD 2.x";
    a->te.heads = VIT_H / HEAD_DIM;
    a->te.layers = a->te.file_layers - 1; /* SD 2.x conditions on the penultimate layer: diffusers drops the last */
    a->te.pad = SD_PAD_BANG;
    a->te.projection_dim = 0;
    unet_vae_common(a);
    a->unet_sample_size = 96; /* 768 pixels (SD 2.x v); SD 2.x base is 64 */
    a->vae_sample_size = 768;
    a->vae_scaling = 0.18215;
    return SDC_OK;
}

sdc_status sd1_sf_template_sdxl(const det *d, sd1_sf_arch *a) {
    if (a->te.hidden != VIT_L || a->te2.hidden != VIT_BIGG) {
        SDC_LOGE(d->log,
                 "sd1_sf_detect: text encoders %d + %d wide are not SDXL's CLIP ViT-L (%d) + OpenCLIP ViT-bigG "
                 "(%d): attention heads cannot be told from shapes; give a diffusers config folder (--config DIR)",
                 a->te.hidden, a->te2.hidden, VIT_L, VIT_BIGG);
        return SDC_ERR_UNSUPPORTED;
    }
    if (!a->te2.projection_dim || !a->unet_add_in_dim || a->unet_add_time_dim < 1 ||
        a->te2.projection_dim + 6 * a->unet_add_time_dim != a->unet_add_in_dim) {
        SDC_LOGE(d->log,
                 "sd1_sf_detect: SDXL needs the second text encoder's text_projection (width %d) and the UNet's "
                 "label_emb.0.0 (input width %d = projection + 6 x time embedding width)",
                 a->te2.projection_dim, a->unet_add_in_dim);
        return SDC_ERR_FORMAT;
    }
    a->family = "SDXL";
    a->te.heads = VIT_L / HEAD_DIM;
    a->te.act = "quick_gelu";
    a->te.eps = 1e-5;
    a->te.bos = 49406;
    a->te.eos = a->te.pad = CLIP_EOS;
    a->te2.heads = VIT_BIGG / HEAD_DIM;
    a->te2.pad = SD_PAD_BANG;
    unet_vae_common(a);
    a->unet_sample_size = 128;
    a->vae_sample_size = 1024;
    a->vae_scaling = 0.13025;
    return SDC_OK;
}

/* ---- a config folder against the file's shapes ---- */

/* Logs the first contradiction: "<what>: the config says <cfg>, the file's tensors <file>". */
static int differs(const sdc_logger *log, const char *part, const char *what, int cfg, int file) {
    if (cfg == file) return 0;
    SDC_LOGE(log, "sd1_sf_open: %s/config.json contradicts the file: %s is %d in the config, %d in the weights' shapes",
             part, what, cfg, file);
    return 1;
}

static sdc_status check_clip(const cJSON *json, const char *part, const sd1_sf_clip *c, const sdc_logger *log) {
    sdc_clip_config cc;
    sdc_status st = sdc_clip_config_parse(json, log, &cc);
    if (st != SDC_OK) return st;
    if (differs(log, part, "hidden_size", cc.hidden, c->hidden) ||
        differs(log, part, "intermediate_size", cc.intermediate, c->intermediate) ||
        differs(log, part, "vocab_size", cc.vocab, c->vocab) ||
        differs(log, part, "max_position_embeddings", cc.max_positions, c->positions) ||
        differs(log, part, "projection_dim (text_projection's width)", cc.projection_dim, c->projection_dim))
        return SDC_ERR_FORMAT;
    if (cc.n_layers > c->file_layers) {
        SDC_LOGE(log, "sd1_sf_open: %s/config.json contradicts the file: num_hidden_layers %d, the file holds %d", part,
                 cc.n_layers, c->file_layers);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

static sdc_status check_unet(const cJSON *json, const sd1_sf_arch *a, const sdc_logger *log) {
    sdc_unet_config u;
    sdc_status st = sdc_unet_config_parse(json, log, &u);
    if (st != SDC_OK) return st;
    const char *p = "unet";
    if (differs(log, p, "the number of down blocks", u.n_blocks, a->unet_blocks) ||
        differs(log, p, "layers_per_block", u.layers_per_block[0], a->unet_layers) ||
        differs(log, p, "in_channels", u.in_channels, a->unet_in) ||
        differs(log, p, "out_channels", u.out_channels, a->unet_out) ||
        differs(log, p, "cross_attention_dim", u.cross_attention_dim, a->unet_cross_dim) ||
        differs(log, p, "use_linear_projection", u.use_linear_projection, a->unet_linear_proj) ||
        differs(log, p, "projection_class_embeddings_input_dim (text_time)", u.text_time ? u.add_in_dim : 0,
                a->unet_add_in_dim))
        return SDC_ERR_FORMAT;
    for (int i = 0; i < u.n_blocks; i++) {
        char what[96];
        snprintf(what, sizeof what, "block_out_channels[%d]", i);
        if (differs(log, p, what, u.block_out_channels[i], a->unet_channels[i])) return SDC_ERR_FORMAT;
        snprintf(what, sizeof what, "down block %d's cross-attention (1: CrossAttnDownBlock2D)", i);
        if (differs(log, p, what, u.down_attn[i], a->unet_attn[i])) return SDC_ERR_FORMAT;
        snprintf(what, sizeof what, "transformer_layers_per_block[%d]", i);
        if (a->unet_attn[i] && differs(log, p, what, u.transformer_layers[i], a->unet_depth[i])) return SDC_ERR_FORMAT;
    }
    if (differs(log, p, "the mid block's transformer_layers_per_block", u.transformer_layers[u.n_blocks - 1],
                a->unet_transformer_layers))
        return SDC_ERR_FORMAT;
    return SDC_OK;
}

static sdc_status check_vae(const cJSON *json, const sd1_sf_arch *a, const sdc_logger *log) {
    sdc_vae_config v;
    sdc_status st = sdc_vae_config_parse(json, log, &v);
    if (st != SDC_OK) return st;
    if (differs(log, "vae", "the number of down blocks", v.n_blocks, a->vae_blocks) ||
        differs(log, "vae", "layers_per_block", v.layers_per_block, a->vae_layers) ||
        differs(log, "vae", "latent_channels", v.latent_channels, a->vae_latent))
        return SDC_ERR_FORMAT;
    for (int i = 0; i < v.n_blocks; i++) {
        char what[64];
        snprintf(what, sizeof what, "block_out_channels[%d]", i);
        if (differs(log, "vae", what, v.block_out_channels[i], a->vae_channels[i])) return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

sdc_status sd1_sf_check_configs(const sdc_model_files *mf, const sd1_sf_configs *cfg, const sd1_sf_arch *a,
                                const sdc_logger *log) {
    const cJSON *j[SD1_N_PARTS];
    for (int c = 0; c < SD1_N_PARTS; c++) {
        j[c] = sdc_model_files_config(mf, sd1_part_name(c));
        if (!j[c]) j[c] = cfg->config[c];
    }
    sdc_status st = check_clip(j[SD1_PART_TEXT_ENCODER], "text_encoder", &a->te, log);
    if (st == SDC_OK && a->layout == SD1_SF_SGM)
        st = check_clip(j[SD1_PART_TEXT_ENCODER_2], "text_encoder_2", &a->te2, log);
    if (st == SDC_OK) st = check_unet(j[SD1_PART_UNET], a, log);
    if (st == SDC_OK) st = check_vae(j[SD1_PART_VAE], a, log);
    return st;
}
