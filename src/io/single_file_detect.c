/* single_file_detect.c - the architecture of an LDM single-file checkpoint from its tensor names and
 * shapes, and the diffusers config.json files that describe it.
 *
 * Shapes tell the widths and the counts of blocks, layers and transformer layers; the family
 * template (single_file.h) fills in what they cannot: attention heads, activation, epsilons,
 * group counts, the VAE scaling factor and the scheduler. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/single_file.h"

#define U "model.diffusion_model."
#define V "first_stage_model."
#define T "cond_stage_model."

/* The file's tensors sorted by name, and the first error met while looking. */
typedef struct det {
    const sdc_tensor_info **sorted;
    size_t n;
    const sdc_logger *log;
    sdc_status st;
} det;

static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const sdc_tensor_info *const *)a)->name, (*(const sdc_tensor_info *const *)b)->name);
}

/* Index of the first name >= key. */
static size_t lower_bound(const det *d, const char *key) {
    size_t lo = 0, hi = d->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(d->sorted[mid]->name, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int has_prefix(const det *d, const char *prefix) {
    size_t i = lower_bound(d, prefix);
    return i < d->n && strncmp(d->sorted[i]->name, prefix, strlen(prefix)) == 0;
}

/* The largest N of names "<prefix>N..." (-1 if none). */
static int max_index(const det *d, const char *prefix) {
    size_t len = strlen(prefix);
    int best = -1;
    for (size_t i = lower_bound(d, prefix); i < d->n && strncmp(d->sorted[i]->name, prefix, len) == 0; i++) {
        const char *s = d->sorted[i]->name + len;
        if (*s < '0' || *s > '9') continue;
        long v = strtol(s, NULL, 10);
        if (v > best && v < 100000) best = (int)v;
    }
    return best;
}

__attribute__((format(printf, 2, 0))) static const sdc_tensor_info *vfind(const det *d, const char *fmt, va_list ap) {
    char name[256];
    int len = vsnprintf(name, sizeof name, fmt, ap);
    if (len < 0 || (size_t)len >= sizeof name) return NULL;
    size_t i = lower_bound(d, name);
    return i < d->n && strcmp(d->sorted[i]->name, name) == 0 ? d->sorted[i] : NULL;
}

/* The tensor of that name, or NULL. */
__attribute__((format(printf, 2, 3))) static const sdc_tensor_info *findf(const det *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const sdc_tensor_info *t = vfind(d, fmt, ap);
    va_end(ap);
    return t;
}

/* A tensor the layout requires, of rank ndim: NULL and a NOT_FOUND (or FORMAT) status when it is
 * absent (or of another rank). */
__attribute__((format(printf, 3, 4))) static const sdc_tensor_info *need(det *d, int ndim, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const sdc_tensor_info *t = vfind(d, fmt, ap);
    va_end(ap);
    if (d->st != SDC_OK) return NULL;
    char name[256];
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    if (!t) {
        SDC_LOGE(d->log, "sdc_single_file_detect: missing tensor %s", name);
        d->st = SDC_ERR_NOT_FOUND;
    } else if (t->ndim != ndim) {
        SDC_LOGE(d->log, "sdc_single_file_detect: %s has %d dimensions, expected %d", name, t->ndim, ndim);
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
                 "sdc_single_file_detect: conditioner.embedders.* (two text encoders): an SDXL checkpoint; "
                 "sdc supports SD 1.x single files");
        return SDC_ERR_UNSUPPORTED;
    }
    if (has_prefix(d, T "model.")) {
        SDC_LOGE(log,
                 "sdc_single_file_detect: cond_stage_model.model.* (OpenCLIP text encoder): an SD 2.x "
                 "checkpoint; sdc supports SD 1.x single files");
        return SDC_ERR_UNSUPPORTED;
    }
    const int unet = has_prefix(d, U), vae = has_prefix(d, V), te = has_prefix(d, T);
    if (!unet && !vae && !te) {
        SDC_LOGE(log,
                 "sdc_single_file_detect: no " U "*, " V "* or " T "* tensors (%zu tensors, the first '%.100s'): "
                 "not a Stable Diffusion checkpoint in the original (LDM) layout",
                 d->n, d->n ? d->sorted[0]->name : "");
        return SDC_ERR_UNSUPPORTED;
    }
    if (!unet || !vae || !te) {
        SDC_LOGE(log, "sdc_single_file_detect: the file has no %s (%s* tensors)",
                 !unet      ? "UNet"
                     : !vae ? "VAE"
                            : "text encoder",
                 !unet      ? U
                     : !vae ? V
                            : T);
        return SDC_ERR_NOT_FOUND;
    }
    if (findf(d, T "transformer.text_model.embeddings.token_embedding.weight")) {
        *te_prefix = T "transformer.text_model.";
    } else if (findf(d, T "transformer.embeddings.token_embedding.weight")) {
        *te_prefix = T "transformer."; /* saved before transformers wrapped CLIP in text_model */
    } else {
        SDC_LOGE(log,
                 "sdc_single_file_detect: " T "* holds no CLIP text encoder "
                 "(no transformer.text_model.embeddings.token_embedding.weight): unknown text encoder");
        return SDC_ERR_UNSUPPORTED;
    }
    return SDC_OK;
}

/* ---- shapes ---- */

static void detect_text_encoder(det *d, const char *P, sdc_sf_arch *a) {
    const sdc_tensor_info *tok = need(d, 2, "%sembeddings.token_embedding.weight", P);      // [vocab, D]
    const sdc_tensor_info *pos = need(d, 2, "%sembeddings.position_embedding.weight", P);   // [positions, D]
    const sdc_tensor_info *fc1 = need(d, 2, "%sencoder.layers.0.mlp.fc1.weight", P);        // [I, D]
    need(d, 1, "%sfinal_layer_norm.weight", P);
    a->te_vocab = dim(tok, 0);
    a->te_hidden = dim(tok, 1);
    a->te_positions = dim(pos, 0);
    a->te_intermediate = dim(fc1, 0);
    a->te_layers = 0;
    while (findf(d, "%sencoder.layers.%d.self_attn.q_proj.weight", P, a->te_layers)) a->te_layers++;
}

/* LDM numbers the UNet's blocks flat: input_blocks 0 is conv_in, then per down block L resnet(+attention)
 * blocks and a downsampler (not after the last); output_blocks hold L+1 per up block. */
static void detect_unet(det *d, sdc_sf_arch *a) {
    const sdc_tensor_info *cin = need(d, 4, U "input_blocks.0.0.weight");   // [C0, in, 3, 3]
    const sdc_tensor_info *cout = need(d, 4, U "out.2.weight");             // [out, C0, 3, 3]
    need(d, 4, U "middle_block.0.in_layers.2.weight");
    if (d->st != SDC_OK) return;
    a->unet_in = dim(cin, 1);
    a->unet_out = dim(cout, 0);
    const int n_in = max_index(d, U "input_blocks.") + 1, n_out = max_index(d, U "output_blocks.") + 1;
    int first_down = 0;
    for (int k = 1; k < n_in && !first_down; k++)
        if (findf(d, U "input_blocks.%d.0.op.weight", k)) first_down = k;
    const int L = first_down ? first_down - 1 : n_in - 1, n = L >= 1 ? n_in / (L + 1) : 0;
    if (L < 1 || n < 1 || n_in != n * (L + 1) || n_out != n * (L + 1) || n > SDC_SF_MAX_BLOCKS ||
        L > SDC_LDM_MAX_LAYERS) {
        SDC_LOGE(d->log,
                 "sdc_single_file_detect: UNet layout not recognised: %d input blocks, %d output blocks, "
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
        a->unet_attn[i] = findf(d, U "input_blocks.%d.1.proj_in.weight", b) != NULL;
    }
    /* the mid block always has attention: it tells the projection kind, the context width and depth */
    const sdc_tensor_info *proj = findf(d, U "middle_block.1.proj_in.weight");   // [C, C, 1, 1] or [C, C]
    const sdc_tensor_info *k = need(d, 2, U "middle_block.1.transformer_blocks.0.attn2.to_k.weight");   // [C, ctx]
    if (!proj) need(d, 4, U "middle_block.1.proj_in.weight"); /* reports it missing */
    a->unet_linear_proj = proj && proj->ndim == 2;
    a->unet_cross_dim = dim(k, 1);
    a->unet_transformer_layers = 0;
    while (findf(d, U "middle_block.1.transformer_blocks.%d.attn1.to_q.weight", a->unet_transformer_layers))
        a->unet_transformer_layers++;
}

static void detect_vae(det *d, sdc_sf_arch *a) {
    const sdc_tensor_info *ein = need(d, 4, V "encoder.conv_in.weight");     // [C0, in, 3, 3]
    const sdc_tensor_info *dout = need(d, 4, V "decoder.conv_out.weight");   // [out, C0, 3, 3]
    const sdc_tensor_info *din = need(d, 4, V "decoder.conv_in.weight");     // [C_last, latent, 3, 3]
    need(d, 4, V "encoder.mid.attn_1.q.weight");                             // [C, C, 1, 1]
    if (d->st != SDC_OK) return;
    a->vae_in = dim(ein, 1);
    a->vae_out = dim(dout, 0);
    a->vae_latent = dim(din, 1);
    const int n = max_index(d, V "encoder.down.") + 1, n_up = max_index(d, V "decoder.up.") + 1;
    int L = 0;
    while (findf(d, V "encoder.down.0.block.%d.conv1.weight", L)) L++;
    /* each decoder block has one resnet more than its encoder block */
    if (n < 1 || n_up != n || L < 1 || n > SDC_SF_MAX_BLOCKS || L > SDC_LDM_MAX_LAYERS ||
        !findf(d, V "decoder.up.0.block.%d.conv1.weight", L)) {
        SDC_LOGE(d->log,
                 "sdc_single_file_detect: VAE layout not recognised: %d encoder blocks of %d resnets, "
                 "%d decoder blocks",
                 n, L, n_up);
        d->st = SDC_ERR_UNSUPPORTED;
        return;
    }
    a->vae_blocks = n;
    a->vae_layers = L;
    for (int i = 0; i < n; i++)
        a->vae_channels[i] = dim(need(d, 4, V "encoder.down.%d.block.0.conv2.weight", i), 0);   // [C, C, 3, 3]
    a->vae_quant_conv = findf(d, V "quant_conv.weight") != NULL;
    a->vae_post_quant_conv = findf(d, V "post_quant_conv.weight") != NULL;
}

/* ---- family templates ---- */

enum {
    CLIP_L_WIDTH = 768,
    CLIP_L_HEAD_DIM = 64
};

static sdc_status apply_sd1_template(const det *d, sdc_sf_arch *a) {
    const sdc_logger *log = d->log;
    if (a->te_hidden != CLIP_L_WIDTH) {
        SDC_LOGE(log,
                 "sdc_single_file_detect: text encoder width %d is not CLIP ViT-L/14's %d (SD 1.x): its "
                 "attention heads cannot be told from shapes; give a diffusers config folder (--config DIR)",
                 a->te_hidden, CLIP_L_WIDTH);
        return SDC_ERR_UNSUPPORTED;
    }
    if (a->unet_linear_proj) {
        SDC_LOGE(log,
                 "sdc_single_file_detect: the UNet's proj_in is a linear (SD 2.x style) with a CLIP ViT-L "
                 "text encoder: unknown family; give a diffusers config folder (--config DIR)");
        return SDC_ERR_UNSUPPORTED;
    }
    if (a->unet_cross_dim != a->te_hidden) {
        SDC_LOGE(log, "sdc_single_file_detect: the UNet's cross-attention width %d is not the text encoder's %d",
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

sdc_status sdc_single_file_detect(const sdc_tensor_info *tensors, size_t n, const sdc_logger *log, sdc_sf_arch *out) {
    memset(out, 0, sizeof *out);
    det d = {calloc(n ? n : 1, sizeof *d.sorted), n, log, SDC_OK};
    if (!d.sorted) return SDC_ERR_OOM;
    for (size_t i = 0; i < n; i++) d.sorted[i] = &tensors[i];
    qsort(d.sorted, n, sizeof *d.sorted, cmp_name);

    sdc_sf_arch a;
    memset(&a, 0, sizeof a);
    const char *te_prefix = NULL;
    d.st = check_layout(&d, &te_prefix);
    if (d.st == SDC_OK) detect_text_encoder(&d, te_prefix, &a);
    if (d.st == SDC_OK) detect_unet(&d, &a);
    if (d.st == SDC_OK) detect_vae(&d, &a);
    if (d.st == SDC_OK) d.st = apply_sd1_template(&d, &a);
    free(d.sorted);
    if (d.st != SDC_OK) return d.st;
    SDC_LOGI(log, "sdc_single_file_detect: %s: CLIP %d x %d layers, UNet %d blocks from %d channels, VAE %d blocks",
             a.family, a.te_hidden, a.te_layers, a.unet_blocks, a.unet_channels[0], a.vae_blocks);
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
static void pair(jb *b, const char *k, const char *lib, const char *cls) {
    const char *v[2] = {lib, cls};
    strs(b, k, v, 2);
}
static cJSON *jb_done(jb *b) {
    if (b->ok) return b->o;
    cJSON_Delete(b->o);
    return NULL;
}

cJSON *sdc_sf_text_encoder_config(const sdc_sf_arch *a) {
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

cJSON *sdc_sf_unet_config(const sdc_sf_arch *a) {
    jb b = jb_new();
    const int n = a->unet_blocks;
    const char *down[SDC_SF_MAX_BLOCKS], *up[SDC_SF_MAX_BLOCKS];
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

cJSON *sdc_sf_vae_config(const sdc_sf_arch *a) {
    jb b = jb_new();
    const int n = a->vae_blocks;
    const char *down[SDC_SF_MAX_BLOCKS], *up[SDC_SF_MAX_BLOCKS];
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
cJSON *sdc_sf_scheduler_config(void) {
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

cJSON *sdc_sf_model_index(const cJSON *scheduler_config) {
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(scheduler_config, "_class_name");
    jb b = jb_new();
    str(&b, "_class_name", "StableDiffusionPipeline");
    pair(&b, "scheduler", "diffusers", cJSON_IsString(cls) ? cls->valuestring : "PNDMScheduler");
    pair(&b, "text_encoder", "transformers", "CLIPTextModel");
    pair(&b, "tokenizer", "transformers", "CLIPTokenizer");
    pair(&b, "unet", "diffusers", "UNet2DConditionModel");
    pair(&b, "vae", "diffusers", "AutoencoderKL");
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
    int vals[SDC_SF_MAX_BLOCKS], n = 0;
    sdc_status st = sdc_cfg_int_list(cfg, "layers_per_block", what, log, vals, SDC_SF_MAX_BLOCKS, &n);
    if (st != SDC_OK) return st;
    for (int i = 1; i < n; i++)
        if (vals[i] != vals[0]) {
            SDC_LOGE(log, "sdc_single_file: %s: layers_per_block differs between blocks; an LDM layout has one", what);
            return SDC_ERR_UNSUPPORTED;
        }
    *out = n ? vals[0] : def;
    return SDC_OK;
}

sdc_status sdc_sf_ldm_map_from_configs(const cJSON *unet, const cJSON *vae, const sdc_logger *log, sdc_ldm_map *out) {
    /* diffusers' defaults for absent keys: UNet SD 1.x blocks x 2 layers, VAE 1 block x 1 layer */
    int attn[SDC_SF_MAX_BLOCKS + 1] = {1, 1, 1, 0}, n_unet = 4, L = 2, n_vae = 1, vae_L = 1;
    const char *types[SDC_SF_MAX_BLOCKS + 1];
    sdc_status st = SDC_OK;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(unet, "down_block_types");
    if (dt && !cJSON_IsNull(dt)) {
        st = sdc_cfg_string_list(unet, "down_block_types", "unet config", log, types, SDC_SF_MAX_BLOCKS + 1, &n_unet);
        for (int i = 0; st == SDC_OK && i < n_unet && i < SDC_SF_MAX_BLOCKS; i++)
            attn[i] = strncmp(types[i], "CrossAttn", 9) == 0;
    }
    if (st == SDC_OK) st = layers_of(unet, "unet config", 2, log, &L);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(vae, "block_out_channels");
    if (st == SDC_OK && ch && !cJSON_IsNull(ch)) {
        int vals[SDC_SF_MAX_BLOCKS + 1];
        st = sdc_cfg_int_list(vae, "block_out_channels", "vae config", log, vals, SDC_SF_MAX_BLOCKS + 1, &n_vae);
    }
    if (st == SDC_OK) st = layers_of(vae, "vae config", 1, log, &vae_L);
    if (st != SDC_OK) return st;
    if (sdc_ldm_map_init(out, n_unet, L, attn, n_vae, vae_L) != SDC_OK) {
        SDC_LOGE(log,
                 "sdc_single_file: no LDM layout for a UNet of %d blocks x %d layers and a VAE of %d x %d "
                 "(at most %d blocks, %d layers)",
                 n_unet, L, n_vae, vae_L, SDC_LDM_MAX_BLOCKS, SDC_LDM_MAX_LAYERS);
        return SDC_ERR_UNSUPPORTED;
    }
    return SDC_OK;
}
