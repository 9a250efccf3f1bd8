/* mkmodel_config.c - the config files of a generated diffusers folder. Keys and values are those
 * diffusers 0.40 / transformers 5 write for these classes. */
#include <stddef.h>

#include "mkmodel/mkmodel_internal.h"

#define DIFFUSERS_VERSION "0.40.0.dev0" /* the config format written, as the reference bundle's */

static void add_null(cJSON *o, const char *key) { cJSON_AddNullToObject(o, key); }

static void add_pair(cJSON *o, const char *key, const char *lib, const char *cls) {
    cJSON *p = cJSON_AddArrayToObject(o, key);
    if (!p) return;
    cJSON_AddItemToArray(p, lib ? cJSON_CreateString(lib) : cJSON_CreateNull());
    cJSON_AddItemToArray(p, cls ? cJSON_CreateString(cls) : cJSON_CreateNull());
}

static void add_ints(cJSON *o, const char *key, const int *v, int n) {
    cJSON_AddItemToObject(o, key, cJSON_CreateIntArray(v, n));
}

static void add_strings(cJSON *o, const char *key, const char *const *v, int n) {
    cJSON_AddItemToObject(o, key, cJSON_CreateStringArray(v, n));
}

/* cJSON reports allocation failures only by leaving items out: count what should be there. */
static cJSON *checked(cJSON *o, int n_keys) {
    if (o && cJSON_GetArraySize(o) != n_keys) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *sdc_mk_model_index_json(const sdc_mk_arch *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const int xl = sdc_mk_arch_is_xl(a);
    cJSON_AddStringToObject(o, "_class_name", xl ? "StableDiffusionXLPipeline" : "StableDiffusionPipeline");
    cJSON_AddStringToObject(o, "_diffusers_version", DIFFUSERS_VERSION);
    add_pair(o, "feature_extractor", NULL, NULL);
    if (xl) cJSON_AddBoolToObject(o, "force_zeros_for_empty_prompt", 1);
    add_pair(o, "image_encoder", NULL, NULL);
    if (!xl) {
        cJSON_AddBoolToObject(o, "requires_safety_checker", 0);
        add_pair(o, "safety_checker", NULL, NULL);
    }
    add_pair(o, "scheduler", "diffusers", a->scheduler);
    add_pair(o, "text_encoder", "transformers", "CLIPTextModel");
    if (xl) add_pair(o, "text_encoder_2", "transformers", "CLIPTextModelWithProjection");
    add_pair(o, "tokenizer", "transformers", "CLIPTokenizer");
    if (xl) add_pair(o, "tokenizer_2", "transformers", "CLIPTokenizer");
    add_pair(o, "unet", "diffusers", "UNet2DConditionModel");
    add_pair(o, "vae", "diffusers", "AutoencoderKL");
    return checked(o, xl ? 12 : 11);
}

cJSON *sdc_mk_scheduler_json(const sdc_mk_arch *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "_class_name", a->scheduler);
    cJSON_AddStringToObject(o, "_diffusers_version", DIFFUSERS_VERSION);
    cJSON_AddNumberToObject(o, "beta_end", 0.012);
    cJSON_AddStringToObject(o, "beta_schedule", "scaled_linear");
    cJSON_AddNumberToObject(o, "beta_start", 0.00085);
    cJSON_AddBoolToObject(o, "clip_sample", 0);
    cJSON_AddNumberToObject(o, "num_train_timesteps", 1000);
    cJSON_AddStringToObject(o, "prediction_type", "epsilon");
    cJSON_AddBoolToObject(o, "set_alpha_to_one", 0);
    int n = 12;
    if (!sdc_mk_arch_is_xl(a)) { /* SD 1.x configs carry PNDM's option whatever the class; SDXL's saved do not */
        cJSON_AddBoolToObject(o, "skip_prk_steps", 1);
        n++;
    }
    cJSON_AddNumberToObject(o, "steps_offset", 1);
    cJSON_AddStringToObject(o, "timestep_spacing", "leading");
    add_null(o, "trained_betas");
    if (a->scheduler[0] == 'E') { /* EulerDiscreteScheduler's own options, at their defaults */
        cJSON_AddStringToObject(o, "final_sigmas_type", "zero");
        cJSON_AddStringToObject(o, "interpolation_type", "linear");
        cJSON_AddBoolToObject(o, "rescale_betas_zero_snr", 0);
        add_null(o, "sigma_max");
        add_null(o, "sigma_min");
        cJSON_AddStringToObject(o, "timestep_type", "discrete");
        cJSON_AddBoolToObject(o, "use_beta_sigmas", 0);
        cJSON_AddBoolToObject(o, "use_exponential_sigmas", 0);
        cJSON_AddBoolToObject(o, "use_karras_sigmas", 0);
        n += 9;
    }
    return checked(o, n);
}

cJSON *sdc_mk_text_encoder_json(const sdc_mk_clip *c, sdc_dtype dtype) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const char *arch[] = {c->projection ? "CLIPTextModelWithProjection" : "CLIPTextModel"};
    add_strings(o, "architectures", arch, 1);
    /* floats transformers type-checks as floats: written with a decimal point (cJSON prints 1.0 as "1") */
    cJSON_AddRawToObject(o, "attention_dropout", "0.0");
    cJSON_AddNumberToObject(o, "bos_token_id", c->bos);
    cJSON_AddStringToObject(o, "dtype", dtype == SDC_DTYPE_F16 ? "float16" : "float32");
    cJSON_AddNumberToObject(o, "eos_token_id", c->eos);
    cJSON_AddStringToObject(o, "hidden_act", c->act);
    cJSON_AddNumberToObject(o, "hidden_size", c->hidden);
    cJSON_AddRawToObject(o, "initializer_factor", "1.0");
    cJSON_AddNumberToObject(o, "initializer_range", 0.02);
    cJSON_AddNumberToObject(o, "intermediate_size", c->intermediate);
    cJSON_AddNumberToObject(o, "layer_norm_eps", 1e-5);
    cJSON_AddNumberToObject(o, "max_position_embeddings", c->positions);
    cJSON_AddStringToObject(o, "model_type", "clip_text_model");
    cJSON_AddNumberToObject(o, "num_attention_heads", c->heads);
    cJSON_AddNumberToObject(o, "num_hidden_layers", c->layers);
    cJSON_AddNumberToObject(o, "pad_token_id", c->pad);
    cJSON_AddNumberToObject(o, "projection_dim", c->projection_dim);
    cJSON_AddStringToObject(o, "transformers_version", "5.17.0");
    cJSON_AddNumberToObject(o, "vocab_size", c->vocab);
    return checked(o, 19);
}

cJSON *sdc_mk_unet_json(const sdc_mk_arch *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const int n = a->unet_blocks;
    const char *down[SDC_MK_MAX_BLOCKS], *up[SDC_MK_MAX_BLOCKS];
    for (int i = 0; i < n; i++) {
        down[i] = a->unet_attn[i] ? "CrossAttnDownBlock2D" : "DownBlock2D";
        up[i] = a->unet_attn[n - 1 - i] ? "CrossAttnUpBlock2D" : "UpBlock2D";
    }
    cJSON_AddStringToObject(o, "_class_name", "UNet2DConditionModel");
    cJSON_AddStringToObject(o, "_diffusers_version", DIFFUSERS_VERSION);
    cJSON_AddStringToObject(o, "act_fn", "silu");
    if (a->unet_add_time_dim) {
        cJSON_AddStringToObject(o, "addition_embed_type", "text_time");
        cJSON_AddNumberToObject(o, "addition_embed_type_num_heads", 64);
        cJSON_AddNumberToObject(o, "addition_time_embed_dim", a->unet_add_time_dim);
    } else {
        add_null(o, "addition_embed_type");
        cJSON_AddNumberToObject(o, "addition_embed_type_num_heads", 64);
        add_null(o, "addition_time_embed_dim");
    }
    if (a->unet_per_level)
        add_ints(o, "attention_head_dim", a->unet_heads, n);
    else
        cJSON_AddNumberToObject(o, "attention_head_dim", a->unet_heads[0]);
    cJSON_AddStringToObject(o, "attention_type", "default");
    add_ints(o, "block_out_channels", a->unet_channels, n);
    cJSON_AddBoolToObject(o, "center_input_sample", 0);
    add_null(o, "class_embed_type");
    cJSON_AddBoolToObject(o, "class_embeddings_concat", 0);
    cJSON_AddNumberToObject(o, "conv_in_kernel", 3);
    cJSON_AddNumberToObject(o, "conv_out_kernel", 3);
    cJSON_AddNumberToObject(o, "cross_attention_dim", a->unet_cross_dim);
    add_null(o, "cross_attention_norm");
    add_strings(o, "down_block_types", down, n);
    cJSON_AddNumberToObject(o, "downsample_padding", 1);
    cJSON_AddNumberToObject(o, "dropout", 0.0);
    cJSON_AddBoolToObject(o, "dual_cross_attention", 0);
    add_null(o, "encoder_hid_dim");
    add_null(o, "encoder_hid_dim_type");
    cJSON_AddBoolToObject(o, "flip_sin_to_cos", 1);
    cJSON_AddNumberToObject(o, "freq_shift", 0);
    cJSON_AddNumberToObject(o, "in_channels", a->unet_in);
    cJSON_AddNumberToObject(o, "layers_per_block", a->unet_layers);
    add_null(o, "mid_block_only_cross_attention");
    cJSON_AddNumberToObject(o, "mid_block_scale_factor", 1);
    cJSON_AddStringToObject(o, "mid_block_type", "UNetMidBlock2DCrossAttn");
    cJSON_AddNumberToObject(o, "norm_eps", 1e-5);
    cJSON_AddNumberToObject(o, "norm_num_groups", a->unet_groups);
    add_null(o, "num_attention_heads");
    add_null(o, "num_class_embeds");
    cJSON_AddBoolToObject(o, "only_cross_attention", 0);
    cJSON_AddNumberToObject(o, "out_channels", a->unet_out);
    if (a->unet_add_time_dim)
        cJSON_AddNumberToObject(o, "projection_class_embeddings_input_dim", a->unet_add_in);
    else
        add_null(o, "projection_class_embeddings_input_dim");
    cJSON_AddNumberToObject(o, "resnet_out_scale_factor", 1.0);
    cJSON_AddBoolToObject(o, "resnet_skip_time_act", 0);
    cJSON_AddStringToObject(o, "resnet_time_scale_shift", "default");
    add_null(o, "reverse_transformer_layers_per_block");
    cJSON_AddNumberToObject(o, "sample_size", a->unet_sample_size);
    add_null(o, "time_cond_proj_dim");
    add_null(o, "time_embedding_act_fn");
    add_null(o, "time_embedding_dim");
    cJSON_AddStringToObject(o, "time_embedding_type", "positional");
    add_null(o, "timestep_post_act");
    if (a->unet_per_level)
        add_ints(o, "transformer_layers_per_block", a->unet_depth, n);
    else
        cJSON_AddNumberToObject(o, "transformer_layers_per_block", a->unet_depth[0]);
    add_strings(o, "up_block_types", up, n);
    cJSON_AddBoolToObject(o, "upcast_attention", 0);
    cJSON_AddBoolToObject(o, "use_linear_projection", a->unet_linear_proj);
    return checked(o, 50);
}

cJSON *sdc_mk_vae_json(const sdc_mk_arch *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    const int n = a->vae_blocks;
    const char *down[SDC_MK_MAX_BLOCKS], *up[SDC_MK_MAX_BLOCKS];
    for (int i = 0; i < n; i++) down[i] = "DownEncoderBlock2D", up[i] = "UpDecoderBlock2D";
    cJSON_AddStringToObject(o, "_class_name", "AutoencoderKL");
    cJSON_AddStringToObject(o, "_diffusers_version", DIFFUSERS_VERSION);
    cJSON_AddStringToObject(o, "act_fn", "silu");
    add_ints(o, "block_out_channels", a->vae_channels, n);
    add_strings(o, "down_block_types", down, n);
    cJSON_AddBoolToObject(o, "force_upcast", 1);
    cJSON_AddNumberToObject(o, "in_channels", a->vae_in);
    cJSON_AddNumberToObject(o, "latent_channels", a->vae_latent);
    add_null(o, "latents_mean");
    add_null(o, "latents_std");
    cJSON_AddNumberToObject(o, "layers_per_block", a->vae_layers);
    cJSON_AddBoolToObject(o, "mid_block_add_attention", 1);
    cJSON_AddNumberToObject(o, "norm_num_groups", a->vae_groups);
    cJSON_AddNumberToObject(o, "out_channels", a->vae_out);
    cJSON_AddNumberToObject(o, "sample_size", a->vae_sample_size);
    cJSON_AddNumberToObject(o, "scaling_factor", a->vae_scaling);
    add_null(o, "shift_factor");
    add_strings(o, "up_block_types", up, n);
    cJSON_AddBoolToObject(o, "use_post_quant_conv", 1);
    cJSON_AddBoolToObject(o, "use_quant_conv", 1);
    return checked(o, 20);
}

cJSON *sdc_mk_tokenizer_json(const sdc_mk_clip *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "backend", "tokenizers");
    cJSON_AddStringToObject(o, "bos_token", "<|startoftext|>");
    cJSON_AddStringToObject(o, "eos_token", "<|endoftext|>");
    cJSON_AddNumberToObject(o, "model_max_length", c->positions);
    cJSON_AddStringToObject(o, "pad_token", c->pad_tok);
    cJSON_AddStringToObject(o, "tokenizer_class", "CLIPTokenizer");
    cJSON_AddStringToObject(o, "unk_token", "<|endoftext|>");
    return checked(o, 7);
}
