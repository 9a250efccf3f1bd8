/* sd1_sf_json.c - the diffusers config.json files that describe a detected single-file architecture
 * (sd1_detect.h): text encoders, UNet, VAE and each family's scheduler. */
#include <stdlib.h>
#include <string.h>

#include "family/sd1_detect.h"

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

cJSON *sd1_sf_clip_config(const sd1_sf_clip *c) {
    jb b = jb_new();
    const char *arch[] = {c->projection_dim ? "CLIPTextModelWithProjection" : "CLIPTextModel"};
    strs(&b, "architectures", arch, 1);
    num(&b, "attention_dropout", 0.0);
    num(&b, "bos_token_id", c->bos);
    num(&b, "eos_token_id", c->eos);
    str(&b, "hidden_act", c->act);
    num(&b, "hidden_size", c->hidden);
    num(&b, "intermediate_size", c->intermediate);
    num(&b, "layer_norm_eps", c->eps);
    num(&b, "max_position_embeddings", c->positions);
    str(&b, "model_type", "clip_text_model");
    num(&b, "num_attention_heads", c->heads);
    num(&b, "num_hidden_layers", c->layers);
    num(&b, "pad_token_id", c->pad);
    num(&b, "projection_dim", c->projection_dim ? c->projection_dim : c->hidden);
    num(&b, "vocab_size", c->vocab);
    return jb_done(&b);
}

cJSON *sd1_sf_text_encoder_config(const sd1_sf_arch *a) { return sd1_sf_clip_config(&a->te); }

cJSON *sd1_sf_unet_config(const sd1_sf_arch *a) {
    jb b = jb_new();
    const int n = a->unet_blocks;
    const char *down[SD1_SF_MAX_BLOCKS], *up[SD1_SF_MAX_BLOCKS];
    int heads[SD1_SF_MAX_BLOCKS];
    for (int i = 0; i < n; i++) {
        down[i] = a->unet_attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D";
        up[i] = a->unet_attn[n - 1 - i] ? "CrossAttnUpBlock2D" : "UpBlock2D";
        heads[i] = a->unet_head_dim ? a->unet_channels[i] / a->unet_head_dim : a->unet_heads;
    }
    str(&b, "_class_name", "UNet2DConditionModel");
    str(&b, "act_fn", "silu");
    if (a->unet_add_in_dim) {
        str(&b, "addition_embed_type", "text_time");
        num(&b, "addition_time_embed_dim", a->unet_add_time_dim);
    }
    /* diffusers' SD configs put the head count here (a historical misnomer) */
    if (a->unet_head_dim)
        ints(&b, "attention_head_dim", heads, n);
    else
        num(&b, "attention_head_dim", a->unet_heads);
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
    if (a->unet_add_in_dim) num(&b, "projection_class_embeddings_input_dim", a->unet_add_in_dim);
    str(&b, "resnet_time_scale_shift", "default");
    num(&b, "sample_size", a->unet_sample_size);
    str(&b, "time_embedding_type", "positional");
    int same = 1;
    for (int i = 1; i < n; i++) same = same && a->unet_depth[i] == a->unet_depth[0];
    if (same && a->unet_depth[0] == a->unet_transformer_layers)
        num(&b, "transformer_layers_per_block", a->unet_transformer_layers);
    else
        ints(&b, "transformer_layers_per_block", a->unet_depth, n);
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

/* Every Stable Diffusion release trains on the same 1000 scaled_linear betas; the released
 * scheduler_config.json files differ in the class they name and its options. */
cJSON *sd1_sf_scheduler_config(const sd1_sf_arch *a) {
    static const char *const cls[] = {
        [SD1_SF_LDM] = "PNDMScheduler",          /* SD 1.5 (PLMS, as the original release samples) */
        [SD1_SF_LDM_OPENCLIP] = "DDIMScheduler", /* SD 2.1 */
        [SD1_SF_SGM] = "EulerDiscreteScheduler", /* SDXL base 1.0 */
    };
    jb b = jb_new();
    str(&b, "_class_name", cls[a->layout]);
    num(&b, "beta_end", 0.012);
    str(&b, "beta_schedule", "scaled_linear");
    num(&b, "beta_start", 0.00085);
    boolean(&b, "clip_sample", 0);
    if (a->layout == SD1_SF_SGM) {
        str(&b, "interpolation_type", "linear");
        boolean(&b, "use_karras_sigmas", 0);
    }
    num(&b, "num_train_timesteps", 1000);
    str(&b, "prediction_type", a->prediction ? a->prediction : "epsilon");
    boolean(&b, "set_alpha_to_one", 0);
    boolean(&b, "skip_prk_steps", 1);
    num(&b, "steps_offset", 1);
    str(&b, "timestep_spacing", "leading");
    null(&b, "trained_betas");
    return jb_done(&b);
}
