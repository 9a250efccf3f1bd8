/* sd1_detect.c - the architecture of an LDM single-file checkpoint from the io layer's facts (tensor
 * names and shapes), the diffusers config.json files that describe it, its LDM name map, and its
 * index under canonical names.
 *
 * Shapes tell the widths and the counts of blocks, layers and transformer layers; the family
 * template (sd1_detect.h) fills in what they cannot: attention heads, activation, epsilons,
 * group counts, the VAE scaling factor and the scheduler. */
#include "family/sd1_detect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"

#define U "model.diffusion_model."
#define V "first_stage_model."
#define T "cond_stage_model."

/* The facts, and the first error met while looking. */
typedef struct det {
    const sdc_sf_facts *f;
    const sdc_logger *log;
    sdc_status st;
} det;

static int has_prefix(const det *d, const char *prefix) { return sdc_sf_count_prefix(d->f, prefix) > 0; }

/* A tensor the layout requires, of rank ndim: NULL and a NOT_FOUND (or FORMAT) status when it is
 * absent (or of another rank). */
__attribute__((format(printf, 3, 4))) static const sdc_tensor_info *need(det *d, int ndim, const char *fmt, ...) {
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

static int dim(const sdc_tensor_info *t, int k) { return t ? (int)t->ne[k] : 0; }

/* ---- which models the file holds, and in which family's names ---- */

static sdc_status check_layout(det *d, const char **te_prefix) {
    const sdc_logger *log = d->log;
    *te_prefix = NULL;
    if (has_prefix(d, "conditioner.embedders.")) {
        SDC_LOGE(log,
                 "sd1_sf_detect: conditioner.embedders.* (two text encoders): an SDXL checkpoint; "
                 "sdc supports SD 1.x single files");
        return SDC_ERR_UNSUPPORTED;
    }
    if (has_prefix(d, T "model.")) {
        SDC_LOGE(log,
                 "sd1_sf_detect: cond_stage_model.model.* (OpenCLIP text encoder): an SD 2.x "
                 "checkpoint; sdc supports SD 1.x single files");
        return SDC_ERR_UNSUPPORTED;
    }
    const int unet = has_prefix(d, U), vae = has_prefix(d, V), te = has_prefix(d, T);
    if (!unet && !vae && !te) {
        SDC_LOGE(log,
                 "sd1_sf_detect: no " U "*, " V "* or " T "* tensors (%zu tensors, the first '%.100s'): "
                 "not a Stable Diffusion checkpoint in the original (LDM) layout",
                 sdc_sf_count(d->f), sdc_sf_count(d->f) ? sdc_sf_at(d->f, 0)->name : "");
        return SDC_ERR_UNSUPPORTED;
    }
    if (!unet || !vae || !te) {
        SDC_LOGE(log, "sd1_sf_detect: the file has no %s (%s* tensors)",
                 !unet      ? "UNet"
                     : !vae ? "VAE"
                            : "text encoder",
                 !unet      ? U
                     : !vae ? V
                            : T);
        return SDC_ERR_NOT_FOUND;
    }
    if (sdc_sf_find(d->f, T "transformer.text_model.embeddings.token_embedding.weight")) {
        *te_prefix = T "transformer.text_model.";
    } else if (sdc_sf_find(d->f, T "transformer.embeddings.token_embedding.weight")) {
        *te_prefix = T "transformer."; /* saved before transformers wrapped CLIP in text_model */
    } else {
        SDC_LOGE(log,
                 "sd1_sf_detect: " T "* holds no CLIP text encoder "
                 "(no transformer.text_model.embeddings.token_embedding.weight): unknown text encoder");
        return SDC_ERR_UNSUPPORTED;
    }
    return SDC_OK;
}

/* ---- shapes ---- */

static void detect_text_encoder(det *d, const char *P, sd1_sf_arch *a) {
    const sdc_tensor_info *tok = need(d, 2, "%sembeddings.token_embedding.weight", P);      // [vocab, D]
    const sdc_tensor_info *pos = need(d, 2, "%sembeddings.position_embedding.weight", P);   // [positions, D]
    const sdc_tensor_info *fc1 = need(d, 2, "%sencoder.layers.0.mlp.fc1.weight", P);        // [I, D]
    need(d, 1, "%sfinal_layer_norm.weight", P);
    a->te_vocab = dim(tok, 0);
    a->te_hidden = dim(tok, 1);
    a->te_positions = dim(pos, 0);
    a->te_intermediate = dim(fc1, 0);
    a->te_layers = 0;
    while (sdc_sf_find(d->f, "%sencoder.layers.%d.self_attn.q_proj.weight", P, a->te_layers)) a->te_layers++;
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
    }
    /* the mid block always has attention: it tells the projection kind, the context width and depth */
    const sdc_tensor_info *proj = sdc_sf_find(d->f, U "middle_block.1.proj_in.weight");   // [C, C, 1, 1] or [C, C]
    const sdc_tensor_info *k = need(d, 2, U "middle_block.1.transformer_blocks.0.attn2.to_k.weight");   // [C, ctx]
    if (!proj) need(d, 4, U "middle_block.1.proj_in.weight"); /* reports it missing */
    a->unet_linear_proj = proj && proj->ndim == 2;
    a->unet_cross_dim = dim(k, 1);
    a->unet_transformer_layers = 0;
    while (sdc_sf_find(d->f, U "middle_block.1.transformer_blocks.%d.attn1.to_q.weight", a->unet_transformer_layers))
        a->unet_transformer_layers++;
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

/* ---- family templates ---- */

enum {
    CLIP_L_WIDTH = 768,
    CLIP_L_HEAD_DIM = 64
};

static sdc_status apply_sd1_template(const det *d, sd1_sf_arch *a) {
    const sdc_logger *log = d->log;
    if (a->te_hidden != CLIP_L_WIDTH) {
        SDC_LOGE(log,
                 "sd1_sf_detect: text encoder width %d is not CLIP ViT-L/14's %d (SD 1.x): its "
                 "attention heads cannot be told from shapes; give a diffusers config folder (--config DIR)",
                 a->te_hidden, CLIP_L_WIDTH);
        return SDC_ERR_UNSUPPORTED;
    }
    if (a->unet_linear_proj) {
        SDC_LOGE(log,
                 "sd1_sf_detect: the UNet's proj_in is a linear (SD 2.x style) with a CLIP ViT-L "
                 "text encoder: unknown family; give a diffusers config folder (--config DIR)");
        return SDC_ERR_UNSUPPORTED;
    }
    if (a->unet_cross_dim != a->te_hidden) {
        SDC_LOGE(log, "sd1_sf_detect: the UNet's cross-attention width %d is not the text encoder's %d",
                 a->unet_cross_dim, a->te_hidden);
        return SDC_ERR_UNSUPPORTED;
    }
    a->family = "SD 1.x";
    a->te_heads = CLIP_L_WIDTH / CLIP_L_HEAD_DIM; /* 12 */
    a->te_act = "quick_gelu";
    a->te_eps = 1e-5;
    a->te_bos = 49406; /* <|startoftext|> */
    a->te_eos = 49407; /* <|endoftext|>: the pooled output is taken at its first occurrence */
    a->unet_heads = 8;
    a->unet_groups = 32;
    a->unet_sample_size = 64;
    a->vae_groups = 32;
    a->vae_sample_size = 512;
    a->vae_scaling = 0.18215;
    return SDC_OK;
}

int sd1_sf_probe(const sdc_sf_facts *f) {
    static const char *const groups[] = {U, V, T, "conditioner.embedders."};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if (sdc_sf_count_prefix(f, groups[i])) return 1;
    return 0;
}

sdc_status sd1_sf_detect(const sdc_sf_facts *f, const sdc_logger *log, sd1_sf_arch *out) {
    memset(out, 0, sizeof *out);
    det d = {f, log, SDC_OK};
    sd1_sf_arch a;
    memset(&a, 0, sizeof a);
    const char *te_prefix = NULL;
    d.st = check_layout(&d, &te_prefix);
    if (d.st == SDC_OK) detect_text_encoder(&d, te_prefix, &a);
    if (d.st == SDC_OK) detect_unet(&d, &a);
    if (d.st == SDC_OK) detect_vae(&d, &a);
    if (d.st == SDC_OK) d.st = apply_sd1_template(&d, &a);
    if (d.st != SDC_OK) return d.st;
    SDC_LOGI(log, "sd1_sf_detect: %s: CLIP %d x %d layers, UNet %d blocks from %d channels, VAE %d blocks", a.family,
             a.te_hidden, a.te_layers, a.unet_blocks, a.unet_channels[0], a.vae_blocks);
    *out = a;
    return SDC_OK;
}

/* ---- the config.json files ---- */

/* Collects a JSON object; cJSON reports allocation failures only through NULL returns. */
typedef struct jb {
    cJSON *o;
    int ok;
} jb;

static jb jb_new(void) {
    jb b = {cJSON_CreateObject(), 1};
    b.ok = b.o != NULL;
    return b;
}
static void add_item(jb *b, const char *k, cJSON *v) {
    if (!v || !b->o || !cJSON_AddItemToObject(b->o, k, v)) {
        cJSON_Delete(v);
        b->ok = 0;
    }
}
static void num(jb *b, const char *k, double v) { add_item(b, k, cJSON_CreateNumber(v)); }
static void str(jb *b, const char *k, const char *v) { add_item(b, k, cJSON_CreateString(v)); }
static void boolean(jb *b, const char *k, int v) { add_item(b, k, cJSON_CreateBool(v)); }
static void null(jb *b, const char *k) { add_item(b, k, cJSON_CreateNull()); }
static void ints(jb *b, const char *k, const int *v, int n) { add_item(b, k, cJSON_CreateIntArray(v, n)); }
static void strs(jb *b, const char *k, const char *const *v, int n) { add_item(b, k, cJSON_CreateStringArray(v, n)); }
static cJSON *jb_done(jb *b) {
    if (b->ok) return b->o;
    cJSON_Delete(b->o);
    return NULL;
}

cJSON *sd1_sf_text_encoder_config(const sd1_sf_arch *a) {
    jb b = jb_new();
    const char *arch[] = {"CLIPTextModel"};
    strs(&b, "architectures", arch, 1);
    num(&b, "attention_dropout", 0.0);
    num(&b, "bos_token_id", a->te_bos);
    num(&b, "eos_token_id", a->te_eos);
    str(&b, "hidden_act", a->te_act);
    num(&b, "hidden_size", a->te_hidden);
    num(&b, "intermediate_size", a->te_intermediate);
    num(&b, "layer_norm_eps", a->te_eps);
    num(&b, "max_position_embeddings", a->te_positions);
    str(&b, "model_type", "clip_text_model");
    num(&b, "num_attention_heads", a->te_heads);
    num(&b, "num_hidden_layers", a->te_layers);
    num(&b, "pad_token_id", a->te_eos);
    num(&b, "projection_dim", a->te_hidden);
    num(&b, "vocab_size", a->te_vocab);
    return jb_done(&b);
}

cJSON *sd1_sf_unet_config(const sd1_sf_arch *a) {
    jb b = jb_new();
    const int n = a->unet_blocks;
    const char *down[SD1_SF_MAX_BLOCKS], *up[SD1_SF_MAX_BLOCKS];
    for (int i = 0; i < n; i++) {
        down[i] = a->unet_attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D";
        up[i] = a->unet_attn[n - 1 - i] ? "CrossAttnUpBlock2D" : "UpBlock2D";
    }
    str(&b, "_class_name", "UNet2DConditionModel");
    str(&b, "act_fn", "silu");
    num(&b, "attention_head_dim", a->unet_heads); /* SD 1.x configs put the head count here */
    ints(&b, "block_out_channels", a->unet_channels, n);
    boolean(&b, "center_input_sample", 0);
    num(&b, "cross_attention_dim", a->unet_cross_dim);
    strs(&b, "down_block_types", down, n);
    num(&b, "downsample_padding", 1);
    boolean(&b, "flip_sin_to_cos", 1);
    num(&b, "freq_shift", 0);
    num(&b, "in_channels", a->unet_in);
    num(&b, "layers_per_block", a->unet_layers);
    num(&b, "mid_block_scale_factor", 1);
    str(&b, "mid_block_type", "UNetMidBlock2DCrossAttn");
    num(&b, "norm_eps", 1e-5);
    num(&b, "norm_num_groups", a->unet_groups);
    null(&b, "num_attention_heads");
    num(&b, "out_channels", a->unet_out);
    str(&b, "resnet_time_scale_shift", "default");
    num(&b, "sample_size", a->unet_sample_size);
    str(&b, "time_embedding_type", "positional");
    num(&b, "transformer_layers_per_block", a->unet_transformer_layers);
    strs(&b, "up_block_types", up, n);
    boolean(&b, "upcast_attention", 0);
    boolean(&b, "use_linear_projection", a->unet_linear_proj);
    return jb_done(&b);
}

cJSON *sd1_sf_vae_config(const sd1_sf_arch *a) {
    jb b = jb_new();
    const int n = a->vae_blocks;
    const char *down[SD1_SF_MAX_BLOCKS], *up[SD1_SF_MAX_BLOCKS];
    for (int i = 0; i < n; i++) down[i] = "DownEncoderBlock2D", up[i] = "UpDecoderBlock2D";
    str(&b, "_class_name", "AutoencoderKL");
    str(&b, "act_fn", "silu");
    ints(&b, "block_out_channels", a->vae_channels, n);
    strs(&b, "down_block_types", down, n);
    boolean(&b, "force_upcast", 1);
    num(&b, "in_channels", a->vae_in);
    num(&b, "latent_channels", a->vae_latent);
    num(&b, "layers_per_block", a->vae_layers);
    boolean(&b, "mid_block_add_attention", 1);
    num(&b, "norm_num_groups", a->vae_groups);
    num(&b, "out_channels", a->vae_out);
    num(&b, "sample_size", a->vae_sample_size);
    num(&b, "scaling_factor", a->vae_scaling);
    null(&b, "shift_factor");
    strs(&b, "up_block_types", up, n);
    boolean(&b, "use_post_quant_conv", a->vae_post_quant_conv);
    boolean(&b, "use_quant_conv", a->vae_quant_conv);
    return jb_done(&b);
}

/* Stable Diffusion 1.5's scheduler_config.json (PNDM / PLMS, as the original release samples). */
cJSON *sd1_sf_scheduler_config(void) {
    jb b = jb_new();
    str(&b, "_class_name", "PNDMScheduler");
    num(&b, "beta_end", 0.012);
    str(&b, "beta_schedule", "scaled_linear");
    num(&b, "beta_start", 0.00085);
    boolean(&b, "clip_sample", 0);
    num(&b, "num_train_timesteps", 1000);
    str(&b, "prediction_type", "epsilon");
    boolean(&b, "set_alpha_to_one", 0);
    boolean(&b, "skip_prk_steps", 1);
    num(&b, "steps_offset", 1);
    str(&b, "timestep_spacing", "leading");
    null(&b, "trained_betas");
    return jb_done(&b);
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
    static const char *const ldm_prefix[SD1_N_PARTS] = {
        [SD1_PART_TEXT_ENCODER] = T "transformer.",
        [SD1_PART_TEXT_ENCODER_2] = "conditioner.embedders.1.model.",
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

/* The configs detected from the file's names and shapes. */
static sdc_status configs_detected(const sdc_model_files *mf, const sdc_logger *log, sd1_sf_configs *out) {
    sd1_sf_arch a;
    sdc_status st = sd1_sf_detect(mf->single, log, &a);
    if (st != SDC_OK) return st;
    out->config[SD1_PART_TEXT_ENCODER] = sd1_sf_text_encoder_config(&a);
    out->config[SD1_PART_UNET] = sd1_sf_unet_config(&a);
    out->config[SD1_PART_VAE] = sd1_sf_vae_config(&a);
    for (int c = 0; c < SD1_N_PARTS; c++)
        if (!out->config[c] && c != SD1_PART_TEXT_ENCODER_2) st = SDC_ERR_OOM;
    return st;
}

sdc_status sd1_sf_open(sdc_model_files *mf, const sdc_logger *log, sd1_sf_configs *out) {
    memset(out, 0, sizeof *out);
    /* a config folder gives all three configs, else all are detected */
    sdc_status st = mf->config_dir ? SDC_OK : configs_detected(mf, log, out);
    static const int required[] = {SD1_PART_TEXT_ENCODER, SD1_PART_UNET, SD1_PART_VAE};
    for (size_t i = 0; mf->config_dir && st == SDC_OK && i < sizeof required / sizeof required[0]; i++) {
        if (!sdc_model_files_config(mf, sd1_part_name(required[i]))) {
            SDC_LOGE(log, "sd1_sf_open: the config folder %s has no %s/config.json", mf->config_dir,
                     sd1_part_name(required[i]));
            st = SDC_ERR_NOT_FOUND;
        }
    }
    if (st == SDC_OK && !mf->scheduler_config && !(out->scheduler_config = sd1_sf_scheduler_config())) st = SDC_ERR_OOM;
    sdc_ldm_map *map = st == SDC_OK ? malloc(sizeof *map) : NULL;
    if (st == SDC_OK && !map) st = SDC_ERR_OOM;
    const cJSON *unet =
        sdc_model_files_config(mf, "unet") ? sdc_model_files_config(mf, "unet") : out->config[SD1_PART_UNET];
    const cJSON *vae =
        sdc_model_files_config(mf, "vae") ? sdc_model_files_config(mf, "vae") : out->config[SD1_PART_VAE];
    if (st == SDC_OK) st = sd1_sf_ldm_map_from_configs(unet, vae, log, map);
    /* the model's index: empty until now, the pipeline reads it once the family is open */
    if (st == SDC_OK) st = sdc_single_file_index(mf->index, mf->root, sdc_ldm_name_map, map);
    free(map);
    if (st == SDC_OK) st = check_components(mf, out, log);
    return st;
}
