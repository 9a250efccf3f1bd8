/* mkmodel_arch.c - the architectures sdc_mkmodel knows and the tensors of each component, in
 * diffusers / transformers names, as their modules create them. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mkmodel/mkmodel_internal.h"

static const sdc_mk_arch archs[] = {
    {
        /* the toy model of the reference bundle (its tiny-sd1 config.json files) */
        .name = "tiny-sd1",
        .te = {.hidden = 32,
               .intermediate = 37,
               .layers = 3,
               .heads = 4,
               .positions = 77,
               .vocab = 49408,
               .projection_dim = 32,
               .bos = 49406,
               .eos = 49407,
               .pad = 49407,
               .act = "quick_gelu",
               .pad_tok = "<|endoftext|>"},
        .unet_blocks = 4,
        .unet_channels = {32, 64, 64, 64},
        .unet_attn = {1, 1, 1, 0},
        .unet_depth = {1, 1, 1, 1},
        .unet_heads = {8, 8, 8, 8},
        .unet_layers = 2,
        .unet_cross_dim = 32,
        .unet_in = 4,
        .unet_out = 4,
        .unet_groups = 32,
        .unet_sample_size = 8,
        .vae_blocks = 4,
        .vae_channels = {32, 32, 64, 64},
        .vae_layers = 2,
        .vae_in = 3,
        .vae_out = 3,
        .vae_latent = 4,
        .vae_groups = 32,
        .vae_sample_size = 64,
        .vae_scaling = 0.18215,
        .scheduler = "EulerDiscreteScheduler",
    },
    {
        /* Stable Diffusion 1.5: CLIP ViT-L/14 text tower, the 860M UNet, the KL-f8 VAE */
        .name = "sd15",
        .te = SDC_MK_CLIP_L,
        .unet_blocks = 4,
        .unet_channels = {320, 640, 1280, 1280},
        .unet_attn = {1, 1, 1, 0},
        .unet_depth = {1, 1, 1, 1},
        .unet_heads = {8, 8, 8, 8},
        .unet_layers = 2,
        .unet_cross_dim = 768,
        .unet_in = 4,
        .unet_out = 4,
        .unet_groups = 32,
        .unet_sample_size = 64,
        .vae_blocks = 4,
        .vae_channels = {128, 256, 512, 512},
        .vae_layers = 2,
        .vae_in = 3,
        .vae_out = 3,
        .vae_latent = 4,
        .vae_groups = 32,
        .vae_sample_size = 512,
        .vae_scaling = 0.18215,
        .scheduler = "PNDMScheduler",
    },
    {
        /* the toy SDXL of the reference bundle (its tiny-sdxl config.json files) */
        .name = "tiny-sdxl",
        .te = {.hidden = 32,
               .intermediate = 37,
               .layers = 3,
               .heads = 4,
               .positions = 77,
               .vocab = 49408,
               .projection_dim = 32,
               .bos = 49406,
               .eos = 49407,
               .pad = 49407,
               .act = "quick_gelu",
               .pad_tok = "<|endoftext|>"},
        .te2 = {.hidden = 64,
                .intermediate = 96,
                .layers = 3,
                .heads = 4,
                .positions = 77,
                .vocab = 49408,
                .projection_dim = 48,
                .bos = 49406,
                .eos = 49407,
                .pad = 0,
                .act = "gelu",
                .projection = 1,
                .pad_tok = "!"},
        .unet_blocks = 3,
        .unet_channels = {32, 64, 64},
        .unet_attn = {0, 1, 1},
        .unet_depth = {1, 2, 3},
        .unet_heads = {2, 4, 4},
        .unet_per_level = 1,
        .unet_linear_proj = 1,
        .unet_add_time_dim = 8,
        .unet_add_in = 96, /* te2 projection 48 + 6 time ids x 8 */
        .unet_layers = 2,
        .unet_cross_dim = 96, /* te 32 + te2 64 */
        .unet_in = 4,
        .unet_out = 4,
        .unet_groups = 32,
        .unet_sample_size = 8,
        .vae_blocks = 4,
        .vae_channels = {32, 32, 64, 64},
        .vae_layers = 2,
        .vae_in = 3,
        .vae_out = 3,
        .vae_latent = 4,
        .vae_groups = 32,
        .vae_sample_size = 64,
        .vae_scaling = 0.13025,
        .scheduler = "EulerDiscreteScheduler",
    },
    {
        /* SDXL base 1.0: CLIP ViT-L/14 and OpenCLIP ViT-bigG/14 text towers, the 2.6B UNet, the KL-f8 VAE */
        .name = "sdxl",
        .te = SDC_MK_CLIP_L,
        .te2 = {.hidden = 1280,
                .intermediate = 5120,
                .layers = 32,
                .heads = 20,
                .positions = 77,
                .vocab = 49408,
                .projection_dim = 1280,
                .bos = 0,
                .eos = 2,
                .pad = 1,
                .act = "gelu",
                .projection = 1,
                .pad_tok = "!"},
        .unet_blocks = 3,
        .unet_channels = {320, 640, 1280},
        .unet_attn = {0, 1, 1},
        .unet_depth = {1, 2, 10},
        .unet_heads = {5, 10, 20},
        .unet_per_level = 1,
        .unet_linear_proj = 1,
        .unet_add_time_dim = 256,
        .unet_add_in = 2816, /* te2 projection 1280 + 6 time ids x 256 */
        .unet_layers = 2,
        .unet_cross_dim = 2048, /* te 768 + te2 1280 */
        .unet_in = 4,
        .unet_out = 4,
        .unet_groups = 32,
        .unet_sample_size = 128,
        .vae_blocks = 4,
        .vae_channels = {128, 256, 512, 512},
        .vae_layers = 2,
        .vae_in = 3,
        .vae_out = 3,
        .vae_latent = 4,
        .vae_groups = 32,
        .vae_sample_size = 1024,
        .vae_scaling = 0.13025,
        .scheduler = "EulerDiscreteScheduler",
    },
};

const sdc_mk_arch *sdc_mk_arch_find(const char *name) {
    for (size_t i = 0; name && i < sizeof archs / sizeof archs[0]; i++)
        if (strcmp(archs[i].name, name) == 0) return &archs[i];
    return NULL;
}

/* ---- building blocks: each emits its parameters under a printf-formatted module path ---- */

static void emit(const sdc_mk_emitter *e, const char *module, const char *param, sdc_mk_init init, int ndim, int64_t d0,
                 int64_t d1, int64_t d2, int64_t d3) {
    char name[256];
    snprintf(name, sizeof name, "%s.%s", module, param);
    const int64_t ne[4] = {d0, d1, d2, d3};
    e->fn(e->user, name, ndim, ne, init);
}

__attribute__((format(printf, 2, 0))) static void vformat(char *buf, const char *fmt, va_list ap) {
    vsnprintf(buf, 200, fmt, ap);
}

/* Declares char buf[200] holding the module path a builder's printf arguments give. */
#define FORMAT_MODULE(buf, fmt) \
    char buf[200];              \
    do {                        \
        va_list ap;             \
        va_start(ap, fmt);      \
        vformat(buf, fmt, ap);  \
        va_end(ap);             \
    } while (0)

/* nn.Linear(in, out[, bias]) */
void sdc_mk_linear(const sdc_mk_emitter *e, int64_t out, int64_t in, int bias, const char *fmt, ...) {
    FORMAT_MODULE(m, fmt);
    emit(e, m, "weight", SDC_MK_INIT_FAN_IN, 2, out, in, 1, 1);
    if (bias) emit(e, m, "bias", SDC_MK_INIT_VECTOR, 1, out, 1, 1, 1);
}

/* nn.Conv2d(in, out, k) with bias */
void sdc_mk_conv(const sdc_mk_emitter *e, int64_t out, int64_t in, int64_t k, const char *fmt, ...) {
    FORMAT_MODULE(m, fmt);
    emit(e, m, "weight", SDC_MK_INIT_FAN_IN, 4, out, in, k, k);
    emit(e, m, "bias", SDC_MK_INIT_VECTOR, 1, out, 1, 1, 1);
}

/* nn.LayerNorm / nn.GroupNorm(C) with affine parameters */
void sdc_mk_norm(const sdc_mk_emitter *e, int64_t c, const char *fmt, ...) {
    FORMAT_MODULE(m, fmt);
    emit(e, m, "weight", SDC_MK_INIT_NORM_SCALE, 1, c, 1, 1, 1);
    emit(e, m, "bias", SDC_MK_INIT_VECTOR, 1, c, 1, 1, 1);
}

/* an RMS norm's scale (no bias) */
void sdc_mk_scale(const sdc_mk_emitter *e, int64_t c, const char *fmt, ...) {
    FORMAT_MODULE(m, fmt);
    emit(e, m, "weight", SDC_MK_INIT_NORM_SCALE, 1, c, 1, 1, 1);
}

void sdc_mk_embedding(const sdc_mk_emitter *e, int64_t n, int64_t dim, const char *fmt, ...) {
    FORMAT_MODULE(m, fmt);
    emit(e, m, "weight", SDC_MK_INIT_EMBEDDING, 2, n, dim, 1, 1);
}

/* ---- text encoder: CLIPTextModel / CLIPTextModelWithProjection ---- */

void sdc_mk_enum_text_encoder(const sdc_mk_clip *c, sdc_mk_tensor_fn fn, void *user) {
    const sdc_mk_emitter e = {fn, user};
    const int D = c->hidden, I = c->intermediate;
    sdc_mk_embedding(&e, c->vocab, D, "text_model.embeddings.token_embedding");
    sdc_mk_embedding(&e, c->positions, D, "text_model.embeddings.position_embedding");
    for (int l = 0; l < c->layers; l++) {
        static const char *const proj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
        for (int p = 0; p < 4; p++) sdc_mk_linear(&e, D, D, 1, "text_model.encoder.layers.%d.self_attn.%s", l, proj[p]);
        sdc_mk_norm(&e, D, "text_model.encoder.layers.%d.layer_norm1", l);
        sdc_mk_linear(&e, I, D, 1, "text_model.encoder.layers.%d.mlp.fc1", l);
        sdc_mk_linear(&e, D, I, 1, "text_model.encoder.layers.%d.mlp.fc2", l);
        sdc_mk_norm(&e, D, "text_model.encoder.layers.%d.layer_norm2", l);
    }
    sdc_mk_norm(&e, D, "text_model.final_layer_norm");
    if (c->projection) sdc_mk_linear(&e, c->projection_dim, D, 0, "text_projection"); /* [P, C] */
}

/* ---- UNet2DConditionModel ---- */

/* ResnetBlock2D with a time embedding projection */
static void unet_resnet(const sdc_mk_emitter *e, const char *m, int in, int out, int temb) {
    sdc_mk_norm(e, in, "%s.norm1", m);
    sdc_mk_conv(e, out, in, 3, "%s.conv1", m);
    sdc_mk_linear(e, out, temb, 1, "%s.time_emb_proj", m);
    sdc_mk_norm(e, out, "%s.norm2", m);
    sdc_mk_conv(e, out, out, 3, "%s.conv2", m);
    if (in != out) sdc_mk_conv(e, out, in, 1, "%s.conv_shortcut", m);
}

/* Transformer2DModel: GroupNorm, proj_in (1x1 conv, or Linear in SDXL), depth BasicTransformerBlocks
 * (self-attention, cross-attention, GEGLU feed-forward), proj_out. Inner width = channels. */
static void unet_transformer(const sdc_mk_emitter *e, const sdc_mk_arch *a, const char *m, int c, int depth) {
    const int ctx = a->unet_cross_dim;
    sdc_mk_norm(e, c, "%s.norm", m);
    if (a->unet_linear_proj)
        sdc_mk_linear(e, c, c, 1, "%s.proj_in", m);
    else
        sdc_mk_conv(e, c, c, 1, "%s.proj_in", m);
    for (int k = 0; k < depth; k++) {
        char b[32];
        snprintf(b, sizeof b, "transformer_blocks.%d", k);
        sdc_mk_norm(e, c, "%s.%s.norm1", m, b);
        sdc_mk_linear(e, c, c, 0, "%s.%s.attn1.to_q", m, b);
        sdc_mk_linear(e, c, c, 0, "%s.%s.attn1.to_k", m, b);
        sdc_mk_linear(e, c, c, 0, "%s.%s.attn1.to_v", m, b);
        sdc_mk_linear(e, c, c, 1, "%s.%s.attn1.to_out.0", m, b);
        sdc_mk_norm(e, c, "%s.%s.norm2", m, b);
        sdc_mk_linear(e, c, c, 0, "%s.%s.attn2.to_q", m, b);
        sdc_mk_linear(e, c, ctx, 0, "%s.%s.attn2.to_k", m, b);
        sdc_mk_linear(e, c, ctx, 0, "%s.%s.attn2.to_v", m, b);
        sdc_mk_linear(e, c, c, 1, "%s.%s.attn2.to_out.0", m, b);
        sdc_mk_norm(e, c, "%s.%s.norm3", m, b);
        sdc_mk_linear(e, 2 * 4 * c, c, 1, "%s.%s.ff.net.0.proj", m, b); /* GEGLU: value and gate */
        sdc_mk_linear(e, c, 4 * c, 1, "%s.%s.ff.net.2", m, b);
    }
    if (a->unet_linear_proj)
        sdc_mk_linear(e, c, c, 1, "%s.proj_out", m);
    else
        sdc_mk_conv(e, c, c, 1, "%s.proj_out", m);
}

void sdc_mk_enum_unet(const sdc_mk_arch *a, sdc_mk_tensor_fn fn, void *user) {
    const sdc_mk_emitter e = {fn, user};
    const int n = a->unet_blocks, L = a->unet_layers, *ch = a->unet_channels, *depth = a->unet_depth;
    const int temb = 4 * ch[0];
    char m[128];
    sdc_mk_linear(&e, temb, ch[0], 1, "time_embedding.linear_1");
    sdc_mk_linear(&e, temb, temb, 1, "time_embedding.linear_2");
    if (a->unet_add_time_dim) { /* text_time: [pooled text, 6 time ids x addition_time_embed_dim] -> temb */
        sdc_mk_linear(&e, temb, a->unet_add_in, 1, "add_embedding.linear_1");
        sdc_mk_linear(&e, temb, temb, 1, "add_embedding.linear_2");
    }
    sdc_mk_conv(&e, ch[0], a->unet_in, 3, "conv_in");
    for (int i = 0; i < n; i++) {
        int in = i ? ch[i - 1] : ch[0], out = ch[i];
        for (int j = 0; j < L; j++) {
            snprintf(m, sizeof m, "down_blocks.%d.resnets.%d", i, j);
            unet_resnet(&e, m, j ? out : in, out, temb);
            if (a->unet_attn[i]) {
                snprintf(m, sizeof m, "down_blocks.%d.attentions.%d", i, j);
                unet_transformer(&e, a, m, out, depth[i]);
            }
        }
        if (i < n - 1) sdc_mk_conv(&e, out, out, 3, "down_blocks.%d.downsamplers.0.conv", i);
    }
    const int mid = ch[n - 1];
    unet_resnet(&e, "mid_block.resnets.0", mid, mid, temb);
    unet_transformer(&e, a, "mid_block.attentions.0", mid, depth[n - 1]);
    unet_resnet(&e, "mid_block.resnets.1", mid, mid, temb);
    /* up block i walks the channels reversed; resnet j takes the previous output concatenated with the
     * skip of the mirrored down block (its input channels for the last resnet) */
    for (int i = 0; i < n; i++) {
        int out = ch[n - 1 - i], prev = ch[n - 1 - (i ? i - 1 : 0)], skip_in = ch[n - 1 - (i + 1 < n ? i + 1 : i)];
        for (int j = 0; j <= L; j++) {
            int res_in = j ? out : prev, skip = j == L ? skip_in : out;
            snprintf(m, sizeof m, "up_blocks.%d.resnets.%d", i, j);
            unet_resnet(&e, m, res_in + skip, out, temb);
            if (a->unet_attn[n - 1 - i]) {
                snprintf(m, sizeof m, "up_blocks.%d.attentions.%d", i, j);
                unet_transformer(&e, a, m, out, depth[n - 1 - i]);
            }
        }
        if (i < n - 1) sdc_mk_conv(&e, out, out, 3, "up_blocks.%d.upsamplers.0.conv", i);
    }
    sdc_mk_norm(&e, ch[0], "conv_norm_out");
    sdc_mk_conv(&e, a->unet_out, ch[0], 3, "conv_out");
}

/* ---- AutoencoderKL ---- */

static void vae_resnet(const sdc_mk_emitter *e, const char *m, int in, int out) {
    sdc_mk_norm(e, in, "%s.norm1", m);
    sdc_mk_conv(e, out, in, 3, "%s.conv1", m);
    sdc_mk_norm(e, out, "%s.norm2", m);
    sdc_mk_conv(e, out, out, 3, "%s.conv2", m);
    if (in != out) sdc_mk_conv(e, out, in, 1, "%s.conv_shortcut", m);
}

/* UNetMidBlock2D: resnet, single-head self-attention with linear projections, resnet */
static void vae_mid(const sdc_mk_emitter *e, const char *part, int c) {
    char m[128];
    snprintf(m, sizeof m, "%s.mid_block.resnets.0", part);
    vae_resnet(e, m, c, c);
    sdc_mk_norm(e, c, "%s.mid_block.attentions.0.group_norm", part);
    static const char *const proj[] = {"to_q", "to_k", "to_v", "to_out.0"};
    for (int p = 0; p < 4; p++) sdc_mk_linear(e, c, c, 1, "%s.mid_block.attentions.0.%s", part, proj[p]);
    snprintf(m, sizeof m, "%s.mid_block.resnets.1", part);
    vae_resnet(e, m, c, c);
}

void sdc_mk_enum_vae(const sdc_mk_arch *a, sdc_mk_tensor_fn fn, void *user) {
    const sdc_mk_emitter e = {fn, user};
    const int n = a->vae_blocks, L = a->vae_layers, *ch = a->vae_channels, Z = a->vae_latent;
    char m[128];
    sdc_mk_conv(&e, ch[0], a->vae_in, 3, "encoder.conv_in");
    for (int i = 0; i < n; i++) {
        int in = i ? ch[i - 1] : ch[0], out = ch[i];
        for (int j = 0; j < L; j++) {
            snprintf(m, sizeof m, "encoder.down_blocks.%d.resnets.%d", i, j);
            vae_resnet(&e, m, j ? out : in, out);
        }
        if (i < n - 1) sdc_mk_conv(&e, out, out, 3, "encoder.down_blocks.%d.downsamplers.0.conv", i);
    }
    vae_mid(&e, "encoder", ch[n - 1]);
    sdc_mk_norm(&e, ch[n - 1], "encoder.conv_norm_out");
    sdc_mk_conv(&e, 2 * Z, ch[n - 1], 3, "encoder.conv_out"); /* mean and logvar */
    sdc_mk_conv(&e, 2 * Z, 2 * Z, 1, "quant_conv");
    sdc_mk_conv(&e, Z, Z, 1, "post_quant_conv");
    sdc_mk_conv(&e, ch[n - 1], Z, 3, "decoder.conv_in");
    vae_mid(&e, "decoder", ch[n - 1]);
    for (int i = 0; i < n; i++) {
        int out = ch[n - 1 - i], prev = ch[n - 1 - (i ? i - 1 : 0)];
        for (int j = 0; j <= L; j++) {
            snprintf(m, sizeof m, "decoder.up_blocks.%d.resnets.%d", i, j);
            vae_resnet(&e, m, j ? out : prev, out);
        }
        if (i < n - 1) sdc_mk_conv(&e, out, out, 3, "decoder.up_blocks.%d.upsamplers.0.conv", i);
    }
    sdc_mk_norm(&e, ch[0], "decoder.conv_norm_out");
    sdc_mk_conv(&e, a->vae_out, ch[0], 3, "decoder.conv_out");
}

const char *sdc_mk_part_name(sdc_mk_part p) {
    static const char *const names[] = {"text_encoder", "unet", "vae", "text_encoder_2", "transformer"};
    _Static_assert(sizeof names / sizeof names[0] == SDC_MK_N_PARTS, "one name per part");
    return (unsigned)p < SDC_MK_N_PARTS ? names[p] : "?";
}

int sdc_mk_arch_is_xl(const sdc_mk_arch *a) { return a->te2.layers > 0; }

int sdc_mk_has_part(const sdc_mk_arch *a, sdc_mk_part p) {
    return (unsigned)p < SDC_MK_N_PARTS && p != SDC_MK_TRANSFORMER &&
        (p != SDC_MK_TEXT_ENCODER_2 || sdc_mk_arch_is_xl(a));
}

void sdc_mk_enum_component(const sdc_mk_arch *a, sdc_mk_part c, sdc_mk_tensor_fn fn, void *user) {
    if (!sdc_mk_has_part(a, c)) return;
    switch (c) {
    case SDC_MK_TEXT_ENCODER: sdc_mk_enum_text_encoder(&a->te, fn, user); break;
    case SDC_MK_TEXT_ENCODER_2: sdc_mk_enum_text_encoder(&a->te2, fn, user); break;
    case SDC_MK_UNET: sdc_mk_enum_unet(a, fn, user); break;
    case SDC_MK_VAE: sdc_mk_enum_vae(a, fn, user); break;
    default: break;
    }
}
