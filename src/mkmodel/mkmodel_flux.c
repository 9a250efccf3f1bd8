/* mkmodel_flux.c - the Flux architectures sdc_mkmodel knows, the tensors of their T5 encoder,
 * transformer and autoencoder (diffusers / transformers names, as their modules create them), and the
 * config files of a Flux folder. The CLIP text tower is SD's (sdc_mk_enum_text_encoder).
 *
 * Flux folders carry no real T5 vocabulary: tokenizer_2/ is sdc's own small Unigram tokenizer
 * (mkmodel_t5tok.c: a few hundred pieces), for the tiny and the full-size architectures alike. The
 * T5 embedding keeps its rows (32128 for T5-XXL); the tokenizer uses the first few hundred. */
#include <stdio.h>
#include <string.h>

#include "mkmodel/mkmodel_internal.h"

/* the toy CLIP tower of the reference bundle (as tiny-sd1's) */
#define TINY_CLIP                                                                                   \
    {                                                                                               \
        .hidden = 32, .intermediate = 37, .layers = 3, .heads = 4, .positions = 77, .vocab = 49408, \
        .projection_dim = 32, .bos = 49406, .eos = 49407, .pad = 49407, .act = "quick_gelu",        \
        .pad_tok = "<|endoftext|>"                                                                  \
    }

/* the reference bundle's T5 (tiny-flux-schnell/text_encoder_2/config.json) */
#define TINY_T5                                                                                            \
    {                                                                                                      \
        .d_model = 32, .d_kv = 8, .d_ff = 40, .layers = 2, .heads = 4, .buckets = 32, .max_distance = 128, \
        .vocab = 2000, .tie_embeddings = 1                                                                 \
    }

/* T5 v1.1 XXL's encoder (google/t5-v1_1-xxl, as FLUX.1 ships it) */
#define T5_XXL                                                                                                     \
    {                                                                                                              \
        .d_model = 4096, .d_kv = 64, .d_ff = 10240, .layers = 24, .heads = 64, .buckets = 32, .max_distance = 128, \
        .vocab = 32128, .tie_embeddings = 0                                                                        \
    }

/* the reference bundle's transformer and VAE (tiny-flux-schnell/transformer/ and vae/config.json) */
#define TINY_FLUX_MODEL                                                                                               \
    .te = TINY_CLIP, .t5 = TINY_T5, .layers = 2, .single_layers = 2, .heads = 2, .head_dim = 16, .in_channels = 64,   \
    .joint_dim = 32, .pooled_dim = 32, .patch_size = 1, .axes = {4, 6, 6}, .vae_blocks = 4,                           \
    .vae_channels = {32, 32, 64, 64}, .vae_layers = 2, .vae_in = 3, .vae_out = 3, .vae_latent = 16, .vae_groups = 32, \
    .vae_sample_size = 64, .vae_scaling = 0.3611, .vae_shift = 0.1159

/* FLUX.1: CLIP ViT-L/14 text tower, T5-XXL encoder, the 12B transformer (19 double-stream and 38
 * single-stream blocks, 24 heads x 128), the 16-channel VAE */
#define FLUX1_MODEL                                                                                                  \
    .te = SDC_MK_CLIP_L, .t5 = T5_XXL, .layers = 19, .single_layers = 38, .heads = 24, .head_dim = 128,              \
    .in_channels = 64, .joint_dim = 4096, .pooled_dim = 768, .patch_size = 1, .axes = {16, 56, 56}, .vae_blocks = 4, \
    .vae_channels = {128, 256, 512, 512}, .vae_layers = 2, .vae_in = 3, .vae_out = 3, .vae_latent = 16,              \
    .vae_groups = 32, .vae_sample_size = 1024, .vae_scaling = 0.3611, .vae_shift = 0.1159

/* schnell: static shift 1; dev: guidance embedding, shift 3 and resolution-dependent shifting */
static const sdc_mk_flux_arch archs[] = {
    {.name = "tiny-flux-schnell", TINY_FLUX_MODEL, .guidance = 0, .shift = 1.0, .dynamic_shift = 0},
    {.name = "tiny-flux-dev", TINY_FLUX_MODEL, .guidance = 1, .shift = 3.0, .dynamic_shift = 1},
    {.name = "flux-schnell", FLUX1_MODEL, .guidance = 0, .shift = 1.0, .dynamic_shift = 0},
    {.name = "flux-dev", FLUX1_MODEL, .guidance = 1, .shift = 3.0, .dynamic_shift = 1},
};

const sdc_mk_flux_arch *sdc_mk_flux_arch_find(const char *name) {
    for (size_t i = 0; name && i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

int sdc_mk_flux_has_part(const sdc_mk_flux_arch *a, sdc_mk_part p) {
    (void)a;
    return p == SDC_MK_TEXT_ENCODER || p == SDC_MK_TEXT_ENCODER_2 || p == SDC_MK_TRANSFORMER || p == SDC_MK_VAE;
}

/* ---- T5EncoderModel ---- */

void sdc_mk_enum_t5(const sdc_mk_t5 *t, sdc_mk_tensor_fn fn, void *user) {
    const sdc_mk_emitter e = {fn, user};
    const int D = t->d_model, I = t->heads * t->d_kv, F = t->d_ff;
    /* the token embedding [vocab, D], drawn as the reference bundle draws it: N(0, 1/D). transformers
     * ties encoder.embed_tokens to it and saves shared.weight only. */
    sdc_mk_linear(&e, t->vocab, D, 0, "shared");
    for (int l = 0; l < t->layers; l++) {
        static const char *const proj[] = {"q", "k", "v"};
        for (int p = 0; p < 3; p++) sdc_mk_linear(&e, I, D, 0, "encoder.block.%d.layer.0.SelfAttention.%s", l, proj[p]);
        sdc_mk_linear(&e, D, I, 0, "encoder.block.%d.layer.0.SelfAttention.o", l);
        if (l == 0) /* one bias per (bucket, head), shared by every layer */
            sdc_mk_embedding(&e, t->buckets, t->heads, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias");
        sdc_mk_scale(&e, D, "encoder.block.%d.layer.0.layer_norm", l);
        sdc_mk_linear(&e, F, D, 0, "encoder.block.%d.layer.1.DenseReluDense.wi_0", l); /* GELU gate */
        sdc_mk_linear(&e, F, D, 0, "encoder.block.%d.layer.1.DenseReluDense.wi_1", l); /* linear */
        sdc_mk_linear(&e, D, F, 0, "encoder.block.%d.layer.1.DenseReluDense.wo", l);
        sdc_mk_scale(&e, D, "encoder.block.%d.layer.1.layer_norm", l);
    }
    sdc_mk_scale(&e, D, "encoder.final_layer_norm");
}

/* ---- FluxTransformer2DModel ---- */

#define FLUX_TIME_DIM 256 /* the sinusoidal embedding of timestep and guidance */
#define FLUX_MLP_RATIO 4

/* TimestepEmbedding: linear_1 [D, in], SiLU, linear_2 [D, D] */
static void flux_embedder(const sdc_mk_emitter *e, int D, int in, const char *name) {
    sdc_mk_linear(e, D, in, 1, "time_text_embed.%s.linear_1", name);
    sdc_mk_linear(e, D, D, 1, "time_text_embed.%s.linear_2", name);
}

/* the per-head RMS norms of q and k */
static void qk_norms(const sdc_mk_emitter *e, int head_dim, const char *m, const char *q, const char *k) {
    sdc_mk_scale(e, head_dim, "%s.attn.%s", m, q);
    sdc_mk_scale(e, head_dim, "%s.attn.%s", m, k);
}

/* FluxTransformerBlock: image and text streams, each with its AdaLayerNormZero (6 modulation vectors),
 * projections and GELU feed-forward, meeting in one joint attention */
static void flux_double_block(const sdc_mk_emitter *e, int D, int head_dim, int l) {
    char m[64];
    snprintf(m, sizeof m, "transformer_blocks.%d", l);
    sdc_mk_linear(e, 6 * D, D, 1, "%s.norm1.linear", m);
    sdc_mk_linear(e, 6 * D, D, 1, "%s.norm1_context.linear", m);
    static const char *const proj[] = {"to_q",       "to_k",       "to_v",       "to_out.0",
                                       "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out"};
    for (int p = 0; p < 8; p++) sdc_mk_linear(e, D, D, 1, "%s.attn.%s", m, proj[p]);
    qk_norms(e, head_dim, m, "norm_q", "norm_k");
    qk_norms(e, head_dim, m, "norm_added_q", "norm_added_k");
    static const char *const ff[] = {"ff", "ff_context"};
    for (int f = 0; f < 2; f++) {
        sdc_mk_linear(e, FLUX_MLP_RATIO * D, D, 1, "%s.%s.net.0.proj", m, ff[f]);
        sdc_mk_linear(e, D, FLUX_MLP_RATIO * D, 1, "%s.%s.net.2", m, ff[f]);
    }
}

/* FluxSingleTransformerBlock: one stream; AdaLayerNormZeroSingle (3 vectors), attention and MLP side by
 * side, proj_out over their concatenation [D + 4D] */
static void flux_single_block(const sdc_mk_emitter *e, int D, int head_dim, int l) {
    char m[64];
    snprintf(m, sizeof m, "single_transformer_blocks.%d", l);
    sdc_mk_linear(e, 3 * D, D, 1, "%s.norm.linear", m);
    sdc_mk_linear(e, FLUX_MLP_RATIO * D, D, 1, "%s.proj_mlp", m);
    sdc_mk_linear(e, D, (1 + FLUX_MLP_RATIO) * D, 1, "%s.proj_out", m);
    static const char *const proj[] = {"to_q", "to_k", "to_v"};
    for (int p = 0; p < 3; p++) sdc_mk_linear(e, D, D, 1, "%s.attn.%s", m, proj[p]);
    qk_norms(e, head_dim, m, "norm_q", "norm_k");
}

void sdc_mk_enum_flux_transformer(const sdc_mk_flux_arch *a, sdc_mk_tensor_fn fn, void *user) {
    const sdc_mk_emitter e = {fn, user};
    const int D = a->heads * a->head_dim, P = a->patch_size;
    flux_embedder(&e, D, FLUX_TIME_DIM, "timestep_embedder");
    if (a->guidance) flux_embedder(&e, D, FLUX_TIME_DIM, "guidance_embedder");
    flux_embedder(&e, D, a->pooled_dim, "text_embedder"); /* PixArtAlphaTextProjection of the pooled CLIP */
    sdc_mk_linear(&e, D, a->joint_dim, 1, "context_embedder");
    sdc_mk_linear(&e, D, a->in_channels, 1, "x_embedder");
    for (int l = 0; l < a->layers; l++) flux_double_block(&e, D, a->head_dim, l);
    for (int l = 0; l < a->single_layers; l++) flux_single_block(&e, D, a->head_dim, l);
    sdc_mk_linear(&e, 2 * D, D, 1, "norm_out.linear");           /* AdaLayerNormContinuous: scale, shift */
    sdc_mk_linear(&e, P * P * a->in_channels, D, 1, "proj_out"); /* out_channels = in_channels */
}

/* ---- the autoencoder: SD's AutoencoderKL with 16 latent channels and no quant convs ---- */

/* The VAE fields of a as the SD description that sdc_mk_enum_vae and sdc_mk_vae_json read. */
static sdc_mk_arch vae_as_sd(const sdc_mk_flux_arch *a) {
    sdc_mk_arch v = {.name = a->name,
                     .vae_blocks = a->vae_blocks,
                     .vae_layers = a->vae_layers,
                     .vae_in = a->vae_in,
                     .vae_out = a->vae_out,
                     .vae_latent = a->vae_latent,
                     .vae_groups = a->vae_groups,
                     .vae_sample_size = a->vae_sample_size,
                     .vae_scaling = a->vae_scaling};
    memcpy(v.vae_channels, a->vae_channels, sizeof v.vae_channels);
    return v;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Passes every tensor on but the quant convs. */
static void without_quant_convs(void *user, const char *name, int ndim, const int64_t *ne, sdc_mk_init init) {
    const sdc_mk_emitter *e = user;
    if (!starts_with(name, "quant_conv.") && !starts_with(name, "post_quant_conv."))
        e->fn(e->user, name, ndim, ne, init);
}

void sdc_mk_enum_flux_vae(const sdc_mk_flux_arch *a, sdc_mk_tensor_fn fn, void *user) {
    const sdc_mk_arch v = vae_as_sd(a);
    sdc_mk_emitter e = {fn, user};
    sdc_mk_enum_vae(&v, without_quant_convs, &e);
}

void sdc_mk_enum_flux_component(const sdc_mk_flux_arch *a, sdc_mk_part c, sdc_mk_tensor_fn fn, void *user) {
    switch (c) {
    case SDC_MK_TEXT_ENCODER: sdc_mk_enum_text_encoder(&a->te, fn, user); break;
    case SDC_MK_TEXT_ENCODER_2: sdc_mk_enum_t5(&a->t5, fn, user); break;
    case SDC_MK_TRANSFORMER: sdc_mk_enum_flux_transformer(a, fn, user); break;
    case SDC_MK_VAE: sdc_mk_enum_flux_vae(a, fn, user); break;
    default: break;
    }
}

/* ---- config files ---- */

#define DIFFUSERS_VERSION "0.40.0.dev0" /* the config format written, as the reference bundle's */

static void add_pair(cJSON *o, const char *key, const char *lib, const char *cls) {
    cJSON *p = cJSON_AddArrayToObject(o, key);
    if (!p) return;
    cJSON_AddItemToArray(p, lib ? cJSON_CreateString(lib) : cJSON_CreateNull());
    cJSON_AddItemToArray(p, cls ? cJSON_CreateString(cls) : cJSON_CreateNull());
}

/* A float as Python writes it: with a decimal point even when whole (cJSON prints 3.0 as "3"). */
static void add_float(cJSON *o, const char *key, double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (!strpbrk(buf, ".eEn")) strcat(buf, ".0");
    cJSON_AddRawToObject(o, key, buf);
}

/* cJSON reports allocation failures only by leaving items out: count what should be there. */
static cJSON *checked(cJSON *o, int n_keys) {
    if (o && cJSON_GetArraySize(o) != n_keys) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *sdc_mk_flux_model_index_json(const sdc_mk_flux_arch *a) {
    (void)a;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "_class_name", "FluxPipeline");
    cJSON_AddStringToObject(o, "_diffusers_version", DIFFUSERS_VERSION);
    add_pair(o, "feature_extractor", NULL, NULL);
    add_pair(o, "image_encoder", NULL, NULL);
    add_pair(o, "scheduler", "diffusers", "FlowMatchEulerDiscreteScheduler");
    add_pair(o, "text_encoder", "transformers", "CLIPTextModel");
    add_pair(o, "text_encoder_2", "transformers", "T5EncoderModel");
    add_pair(o, "tokenizer", "transformers", "CLIPTokenizer");
    /* the class FLUX.1's own folders name (transformers 5 saves "TokenizersBackend", which 4.x lacks) */
    add_pair(o, "tokenizer_2", "transformers", "T5TokenizerFast");
    add_pair(o, "transformer", "diffusers", "FluxTransformer2DModel");
    add_pair(o, "vae", "diffusers", "AutoencoderKL");
    return checked(o, 11);
}

cJSON *sdc_mk_flux_scheduler_json(const sdc_mk_flux_arch *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "_class_name", "FlowMatchEulerDiscreteScheduler");
    cJSON_AddStringToObject(o, "_diffusers_version", DIFFUSERS_VERSION);
    cJSON_AddNumberToObject(o, "base_image_seq_len", 256);
    add_float(o, "base_shift", 0.5);
    cJSON_AddBoolToObject(o, "invert_sigmas", 0);
    cJSON_AddNumberToObject(o, "max_image_seq_len", 4096);
    add_float(o, "max_shift", 1.15);
    cJSON_AddNumberToObject(o, "num_train_timesteps", 1000);
    add_float(o, "shift", a->shift);
    cJSON_AddNullToObject(o, "shift_terminal");
    cJSON_AddBoolToObject(o, "stochastic_sampling", 0);
    cJSON_AddStringToObject(o, "time_shift_type", "exponential");
    cJSON_AddBoolToObject(o, "use_beta_sigmas", 0);
    cJSON_AddBoolToObject(o, "use_dynamic_shifting", a->dynamic_shift);
    cJSON_AddBoolToObject(o, "use_exponential_sigmas", 0);
    cJSON_AddBoolToObject(o, "use_karras_sigmas", 0);
    return checked(o, 16);
}

cJSON *sdc_mk_t5_json(const sdc_mk_t5 *t, sdc_dtype dtype) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const char *arch[] = {"T5EncoderModel"};
    cJSON_AddItemToObject(o, "architectures", cJSON_CreateStringArray(arch, 1));
    add_float(o, "classifier_dropout", 0.0);
    cJSON_AddNumberToObject(o, "d_ff", t->d_ff);
    cJSON_AddNumberToObject(o, "d_kv", t->d_kv);
    cJSON_AddNumberToObject(o, "d_model", t->d_model);
    cJSON_AddStringToObject(o, "dense_act_fn", "gelu_new");
    add_float(o, "dropout_rate", 0.1);
    cJSON_AddStringToObject(o, "dtype", dtype == SDC_DTYPE_F16 ? "float16" : "float32");
    cJSON_AddNumberToObject(o, "eos_token_id", 1);
    cJSON_AddStringToObject(o, "feed_forward_proj", "gated-gelu");
    add_float(o, "initializer_factor", 1.0);
    cJSON_AddBoolToObject(o, "is_decoder", 0);
    cJSON_AddBoolToObject(o, "is_encoder_decoder", 0);
    cJSON_AddBoolToObject(o, "is_gated_act", 1);
    cJSON_AddNumberToObject(o, "layer_norm_epsilon", 1e-6);
    cJSON_AddStringToObject(o, "model_type", "t5");
    cJSON_AddNumberToObject(o, "num_decoder_layers", t->layers);
    cJSON_AddNumberToObject(o, "num_heads", t->heads);
    cJSON_AddNumberToObject(o, "num_layers", t->layers);
    cJSON_AddNumberToObject(o, "pad_token_id", 0);
    cJSON_AddNumberToObject(o, "relative_attention_max_distance", t->max_distance);
    cJSON_AddNumberToObject(o, "relative_attention_num_buckets", t->buckets);
    cJSON_AddBoolToObject(o, "scale_decoder_outputs", 1);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", t->tie_embeddings);
    cJSON_AddStringToObject(o, "transformers_version", "5.25.0");
    cJSON_AddBoolToObject(o, "use_cache", 0);
    cJSON_AddNumberToObject(o, "vocab_size", t->vocab);
    return checked(o, 27);
}

cJSON *sdc_mk_flux_transformer_json(const sdc_mk_flux_arch *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "_class_name", "FluxTransformer2DModel");
    cJSON_AddStringToObject(o, "_diffusers_version", DIFFUSERS_VERSION);
    cJSON_AddNumberToObject(o, "attention_head_dim", a->head_dim);
    cJSON_AddItemToObject(o, "axes_dims_rope", cJSON_CreateIntArray(a->axes, 3));
    cJSON_AddBoolToObject(o, "guidance_embeds", a->guidance);
    cJSON_AddNumberToObject(o, "in_channels", a->in_channels);
    cJSON_AddNumberToObject(o, "joint_attention_dim", a->joint_dim);
    cJSON_AddNumberToObject(o, "num_attention_heads", a->heads);
    cJSON_AddNumberToObject(o, "num_layers", a->layers);
    cJSON_AddNumberToObject(o, "num_single_layers", a->single_layers);
    cJSON_AddNullToObject(o, "out_channels");
    cJSON_AddNumberToObject(o, "patch_size", a->patch_size);
    cJSON_AddNumberToObject(o, "pooled_projection_dim", a->pooled_dim);
    return checked(o, 13);
}

/* SD's AutoencoderKL config with the shift factor set and the quant convs off. */
cJSON *sdc_mk_flux_vae_json(const sdc_mk_flux_arch *a) {
    const sdc_mk_arch v = vae_as_sd(a);
    cJSON *o = sdc_mk_vae_json(&v);
    if (!o) return NULL;
    int ok = cJSON_ReplaceItemInObjectCaseSensitive(o, "shift_factor", cJSON_CreateNumber(a->vae_shift)) &&
        cJSON_ReplaceItemInObjectCaseSensitive(o, "use_post_quant_conv", cJSON_CreateFalse()) &&
        cJSON_ReplaceItemInObjectCaseSensitive(o, "use_quant_conv", cJSON_CreateFalse());
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
