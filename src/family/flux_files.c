/* flux_files.c - where a Flux model's parts come from: a diffusers folder's components, a Black Forest
 * Labs transformer single file (-m FILE, with the other parts from a --config folder), or component
 * files given by role ("diffusion_model", "clip_l", "t5xxl", "vae") that replace the folder's.
 *
 * A component file's architecture is its part's config.json in the folder (-m DIR or --config DIR)
 * when there is one, checked against the file's shapes (a missing block or another width is an error
 * here, before any weight is read); else it is inferred from the shapes:
 *   transformer  blocks counted, widths from img_in / txt_in / vector_in, head width from the q norm,
 *                guidance_in -> dev (FLUX.1's rotary axes 16, 56, 56)
 *   T5           d_model, d_ff, layers from the shapes, heads from the relative attention bias
 *   CLIP-L       widths and layers from the shapes, heads = width / 64, CLIP-L's eos and activation
 *   VAE          blocks, channels and layers from the shapes; Flux's scaling 0.3611 and shift 0.1159
 * A component file is safetensors or GGUF, told apart by its magic (io/model_index.h): city96's Flux GGUFs
 * carry BFL names, stable-diffusion.cpp's the same under "model.diffusion_model.", and a llama.cpp T5
 * GGUF (--t5xxl) is seen under Hugging Face names (io/t5_gguf_names.h).
 * Tokenizers are not in any weights file: CLIP's is the folder's tokenizer/ (else the one sdc ships),
 * T5's the folder's tokenizer_2/ (sdc ships none, so a Flux folder is needed for it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "family/flux.h"
#include "io/bfl_names.h"
#include "io/ldm_names.h"
#include "io/model_files.h"
#include "io/name_map.h"
#include "io/single_file.h"
#include "io/t5_gguf_names.h"
#include "pipeline/pipeline.h"

enum {
    PART_CLIP,
    PART_T5,
    PART_DIT,
    PART_VAE,
    N_PARTS
};

static const struct {
    const char *part, *role, *flag;
} parts[N_PARTS] = {
    [PART_CLIP] = {"text_encoder", "clip_l", "--clip_l"},
    [PART_T5] = {"text_encoder_2", "t5xxl", "--t5xxl"},
    [PART_DIT] = {"transformer", "diffusion_model", "--diffusion-model"},
    [PART_VAE] = {"vae", "vae", "--vae"},
};

/* --- naming ------------------------------------------------------------------------------------ */

/* The transformer names of a file: BFL (under "" or "model.diffusion_model.") or diffusers. */
enum {
    NAMES_NONE,
    NAMES_BFL,
    NAMES_DIFFUSERS
};
enum {
    T_IMG_IN,
    T_TXT_IN,
    T_VEC_IN,
    T_GUIDANCE,
    T_QNORM,
    T_QNORM_SINGLE,
    T_FINAL,
    T_DOUBLE,
    T_SINGLE,
    T_N
};
static const char *const dit_names[2][T_N] = {
    {"img_in.weight", "txt_in.weight", "vector_in.in_layer.weight", "guidance_in.in_layer.weight",
     "double_blocks.0.img_attn.norm.query_norm.scale", "single_blocks.0.norm.query_norm.scale",
     "final_layer.linear.weight", "double_blocks.", "single_blocks."},
    {"x_embedder.weight", "context_embedder.weight", "time_text_embed.text_embedder.linear_1.weight",
     "time_text_embed.guidance_embedder.linear_1.weight", "transformer_blocks.0.attn.norm_q.weight",
     "single_transformer_blocks.0.attn.norm_q.weight", "proj_out.weight", "transformer_blocks.",
     "single_transformer_blocks."},
};
/* A tensor every block of a kind has, after "<blocks prefix>N." */
static const char *const block_probe[2][2] = {{"img_attn.qkv.weight", "linear1.weight"},
                                              {"attn.to_q.weight", "attn.to_q.weight"}};

int flux_transformer_names(const sdc_sf_facts *f, const char **prefix) {
    static const char *const prefixes[] = {"", "model.diffusion_model."};
    for (int p = 0; p < 2; p++) {
        *prefix = prefixes[p];
        if (sdc_sf_find(f, "%s%s", prefixes[p], dit_names[0][T_IMG_IN])) return NAMES_BFL;
    }
    *prefix = "";
    return sdc_sf_find(f, "%s", dit_names[1][T_IMG_IN]) && sdc_sf_find(f, "%s", dit_names[1][T_FINAL]) ? NAMES_DIFFUSERS
                                                                                                       : NAMES_NONE;
}

/* --- inferring configs from shapes ------------------------------------------------------------- */

/* A tensor the inference needs: logged when absent. */
static const sdc_tensor_info *need(const sdc_sf_facts *f, const char *file, const char *what, const char *prefix,
                                   const char *name, int ndim, const sdc_logger *log) {
    const sdc_tensor_info *t = sdc_sf_find(f, "%s%s", prefix, name);
    if (!t || t->ndim < ndim) {
        char groups[256];
        SDC_LOGE(log, "flux_open: the %s file %s has no %s%s%s (it holds %s)", what, file, prefix, name,
                 t ? " of the expected rank" : "", sdc_sf_groups(f, groups, sizeof groups));
        return NULL;
    }
    return t;
}

/* Blocks "<prefix><blocks>N." for N = 0 .. the largest, each with probe; a gap is an error. */
static sdc_status count_blocks(const sdc_sf_facts *f, const char *file, const char *what, const char *prefix,
                               const char *blocks, const char *probe, const sdc_logger *log, int *n) {
    char p[256];
    snprintf(p, sizeof p, "%s%s", prefix, blocks);
    *n = sdc_sf_max_index(f, p) + 1;
    for (int i = 0; i < *n; i++)
        if (!sdc_sf_find(f, "%s%d.%s", p, i, probe)) {
            SDC_LOGE(log, "flux_open: the %s file %s has blocks %s0 .. %s%d but no %s%d.%s: a block is missing", what,
                     file, p, p, *n - 1, p, i, probe);
            return SDC_ERR_FORMAT;
        }
    return SDC_OK;
}

static cJSON *int_list(const int *v, int n) { return cJSON_CreateIntArray(v, n); }

static sdc_status infer_dit(const sdc_sf_facts *f, const char *file, const sdc_logger *log, cJSON *j) {
    const char *prefix;
    const int names = flux_transformer_names(f, &prefix);
    if (names == NAMES_NONE) {
        char groups[256];
        SDC_LOGE(log,
                 "flux_open: the diffusion model file %s is not a Flux transformer (neither BFL img_in / "
                 "double_blocks names nor diffusers x_embedder / transformer_blocks names; it holds %s)",
                 file, sdc_sf_groups(f, groups, sizeof groups));
        return SDC_ERR_FORMAT;
    }
    const char *const *nm = dit_names[names == NAMES_DIFFUSERS];
    const char *const *bp = block_probe[names == NAMES_DIFFUSERS];
    const char *what = "diffusion model";
    int n_double = 0, n_single = 0;
    sdc_status st = count_blocks(f, file, what, prefix, nm[T_DOUBLE], bp[0], log, &n_double);
    if (st == SDC_OK) st = count_blocks(f, file, what, prefix, nm[T_SINGLE], bp[1], log, &n_single);
    if (st != SDC_OK) return st;
    const sdc_tensor_info *img = need(f, file, what, prefix, nm[T_IMG_IN], 2, log);
    const sdc_tensor_info *txt = img ? need(f, file, what, prefix, nm[T_TXT_IN], 2, log) : NULL;
    const sdc_tensor_info *vec = txt ? need(f, file, what, prefix, nm[T_VEC_IN], 2, log) : NULL;
    const sdc_tensor_info *fin = vec ? need(f, file, what, prefix, nm[T_FINAL], 2, log) : NULL;
    const sdc_tensor_info *qn = sdc_sf_find(f, "%s%s", prefix, nm[n_double ? T_QNORM : T_QNORM_SINGLE]);
    if (fin && !qn) qn = need(f, file, what, prefix, nm[n_double ? T_QNORM : T_QNORM_SINGLE], 1, log);
    if (!fin || !qn) return SDC_ERR_FORMAT;
    const int hidden = (int)img->ne[0], head_dim = (int)qn->ne[0];
    if (head_dim < 1 || hidden % head_dim) {
        SDC_LOGE(log, "flux_open: the diffusion model file %s: width %d is not a multiple of the head width %d", file,
                 hidden, head_dim);
        return SDC_ERR_FORMAT;
    }
    cJSON_AddStringToObject(j, "_class_name", "FluxTransformer2DModel");
    cJSON_AddNumberToObject(j, "in_channels", (double)img->ne[1]);
    cJSON_AddNumberToObject(j, "out_channels", (double)fin->ne[0]);
    cJSON_AddNumberToObject(j, "num_layers", n_double);
    cJSON_AddNumberToObject(j, "num_single_layers", n_single);
    cJSON_AddNumberToObject(j, "attention_head_dim", head_dim);
    cJSON_AddNumberToObject(j, "num_attention_heads", hidden / head_dim);
    cJSON_AddNumberToObject(j, "joint_attention_dim", (double)txt->ne[1]);
    cJSON_AddNumberToObject(j, "pooled_projection_dim", (double)vec->ne[1]);
    cJSON_AddBoolToObject(j, "guidance_embeds", sdc_sf_find(f, "%s%s", prefix, nm[T_GUIDANCE]) != NULL);
    /* the rotary axes are not in the weights: FLUX.1's (16, 56, 56) at its head width 128, else an even
       split in the same spirit (a model of another width needs its config folder) */
    int axes[3] = {16, 56, 56};
    if (head_dim != 128) {
        axes[0] = (head_dim / 8 + 1) / 2 * 2;
        axes[1] = (head_dim - axes[0]) / 4 * 2;
        axes[2] = head_dim - axes[0] - axes[1];
    }
    cJSON_AddItemToObject(j, "axes_dims_rope", int_list(axes, 3));
    return SDC_OK;
}

static sdc_status infer_t5(const sdc_sf_facts *f, const char *file, const sdc_logger *log, cJSON *j) {
    const char *what = "t5xxl";
    const sdc_tensor_info *emb = sdc_sf_find(f, "shared.weight");
    if (!emb) emb = need(f, file, what, "", "encoder.embed_tokens.weight", 2, log);
    int n_layers = 0;
    sdc_status st = emb
        ? count_blocks(f, file, what, "", "encoder.block.", "layer.0.SelfAttention.q.weight", log, &n_layers)
        : SDC_ERR_FORMAT;
    const char *b0 = "encoder.block.0.layer.";
    const sdc_tensor_info *rel =
        st == SDC_OK ? need(f, file, what, b0, "0.SelfAttention.relative_attention_bias.weight", 2, log) : NULL;
    const sdc_tensor_info *q = rel ? need(f, file, what, b0, "0.SelfAttention.q.weight", 2, log) : NULL;
    const sdc_tensor_info *wi = sdc_sf_find(f, "%s1.DenseReluDense.wi_0.weight", b0);
    const int gated = wi != NULL;
    if (q && !wi) wi = need(f, file, what, b0, "1.DenseReluDense.wi.weight", 2, log);
    if (!wi || !q || !rel) return SDC_ERR_FORMAT;
    const int heads = (int)rel->ne[1];
    cJSON_AddNumberToObject(j, "d_model", (double)emb->ne[1]);
    cJSON_AddNumberToObject(j, "vocab_size", (double)emb->ne[0]);
    cJSON_AddNumberToObject(j, "num_layers", n_layers);
    cJSON_AddNumberToObject(j, "num_heads", heads);
    cJSON_AddNumberToObject(j, "d_kv", heads > 0 ? (double)(q->ne[0] / heads) : 0.0);
    cJSON_AddNumberToObject(j, "d_ff", (double)wi->ne[0]);
    cJSON_AddNumberToObject(j, "relative_attention_num_buckets", (double)rel->ne[0]);
    cJSON_AddStringToObject(j, "feed_forward_proj", gated ? "gated-gelu" : "relu");
    return SDC_OK;
}

static sdc_status infer_clip(const sdc_sf_facts *f, const char *file, const sdc_logger *log, cJSON *j) {
    const char *what = "clip_l";
    const char *p = sdc_sf_count_prefix(f, "text_model.") ? "text_model." : ""; /* transformers 5 drops it */
    const sdc_tensor_info *tok = need(f, file, what, p, "embeddings.token_embedding.weight", 2, log);
    const sdc_tensor_info *pos = tok ? need(f, file, what, p, "embeddings.position_embedding.weight", 2, log) : NULL;
    const sdc_tensor_info *mlp = pos ? need(f, file, what, p, "encoder.layers.0.mlp.fc1.weight", 2, log) : NULL;
    char blocks[64];
    snprintf(blocks, sizeof blocks, "%sencoder.layers.", p);
    int n_layers = 0;
    sdc_status st = mlp ? count_blocks(f, file, what, "", blocks, "mlp.fc1.weight", log, &n_layers) : SDC_ERR_FORMAT;
    if (st != SDC_OK) return st;
    const int hidden = (int)tok->ne[1];
    cJSON_AddItemToObject(j, "architectures", cJSON_CreateStringArray((const char *const[]){"CLIPTextModel"}, 1));
    cJSON_AddStringToObject(j, "model_type", "clip_text_model");
    cJSON_AddNumberToObject(j, "hidden_size", hidden);
    cJSON_AddNumberToObject(j, "intermediate_size", (double)mlp->ne[0]);
    cJSON_AddNumberToObject(j, "num_hidden_layers", n_layers);
    cJSON_AddNumberToObject(j, "num_attention_heads", hidden >= 64 ? hidden / 64 : 1);
    cJSON_AddNumberToObject(j, "max_position_embeddings", (double)pos->ne[0]);
    cJSON_AddNumberToObject(j, "vocab_size", (double)tok->ne[0]);
    cJSON_AddNumberToObject(j, "eos_token_id", 2); /* CLIP-L's config: the pooled token is the largest id */
    cJSON_AddStringToObject(j, "hidden_act", "quick_gelu");
    return SDC_OK;
}

/* BFL ae.safetensors (LDM names: decoder.up.N.block.M) or diffusers (decoder.up_blocks.N.resnets.M). */
static int vae_is_ldm(const sdc_sf_facts *f) { return sdc_sf_count_prefix(f, "decoder.up.") > 0; }

static sdc_status infer_vae(const sdc_sf_facts *f, const char *file, const sdc_logger *log, cJSON *j) {
    const char *what = "vae";
    const int ldm = vae_is_ldm(f);
    const char *ups = ldm ? "decoder.up." : "decoder.up_blocks.";
    const int n = sdc_sf_max_index(f, ups) + 1;
    const sdc_tensor_info *in = need(f, file, what, "", "decoder.conv_in.weight", 4, log);
    if (!in) return SDC_ERR_FORMAT;
    if (n < 1 || n > SDC_LDM_MAX_BLOCKS) {
        SDC_LOGE(log, "flux_open: the vae file %s has %d %s blocks (1 .. %d handled)", file, n, ups,
                 SDC_LDM_MAX_BLOCKS);
        return SDC_ERR_FORMAT;
    }
    int ch[SDC_LDM_MAX_BLOCKS];
    char name[96], res[64];
    snprintf(res, sizeof res, "%s0.%s", ups, ldm ? "block." : "resnets.");
    const int layers = sdc_sf_max_index(f, res); /* up blocks have one resnet more */
    for (int i = 0; i < n; i++) { /* diffusers' up blocks run from the widest: block_out_channels reversed */
        snprintf(name, sizeof name, "%s%d.%s.0.conv2.weight", ups, i, ldm ? "block" : "resnets");
        const sdc_tensor_info *t = need(f, file, what, "", name, 4, log);
        if (!t) return SDC_ERR_FORMAT;
        ch[ldm ? i : n - 1 - i] = (int)t->ne[0];
    }
    static const char *const down[] = {"DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
                                       "DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D",
                                       "DownEncoderBlock2D", "DownEncoderBlock2D"};
    static const char *const up[] = {"UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D",
                                     "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"};
    cJSON_AddStringToObject(j, "_class_name", "AutoencoderKL");
    cJSON_AddItemToObject(j, "block_out_channels", int_list(ch, n));
    cJSON_AddItemToObject(j, "down_block_types", cJSON_CreateStringArray(down, n));
    cJSON_AddItemToObject(j, "up_block_types", cJSON_CreateStringArray(up, n));
    cJSON_AddNumberToObject(j, "layers_per_block", layers);
    cJSON_AddNumberToObject(j, "latent_channels", (double)in->ne[1]);
    cJSON_AddNumberToObject(j, "scaling_factor", 0.3611);
    cJSON_AddNumberToObject(j, "shift_factor", 0.1159);
    cJSON_AddBoolToObject(j, "use_quant_conv", sdc_sf_find(f, "quant_conv.weight") != NULL);
    cJSON_AddBoolToObject(j, "use_post_quant_conv", sdc_sf_find(f, "post_quant_conv.weight") != NULL);
    cJSON_AddBoolToObject(j, "force_upcast", 1);
    return SDC_OK;
}

/* --- indexing a component file ----------------------------------------------------------------- */

/* The file under prefix through map, every tensor checked to be a float. */
static sdc_status add_checked(sdc_model_index *idx, const char *path, const char *prefix, sdc_name_map_fn map,
                              void *user) {
    const size_t first = sdc_index_count(idx);
    sdc_status st = sdc_index_add_file(idx, path, prefix, map, user);
    for (size_t i = first; st == SDC_OK && i < sdc_index_count(idx); i++)
        st = sdc_index_check_float(idx, sdc_index_at(idx, i));
    return st;
}

/* BFL ae.safetensors names are the LDM VAE's without "first_stage_model.". */
static const char *ae_name_map(const char *name, char *out, size_t size, void *user) {
    char ldm[320];
    if ((size_t)snprintf(ldm, sizeof ldm, "first_stage_model.%s", name) >= sizeof ldm) return NULL;
    return sdc_ldm_to_diffusers(user, ldm, out, size);
}

/* t5_gated: -1 for a T5 file with Hugging Face names, else whether its llama.cpp names have ffn_gate. */
static sdc_status index_file(int part, sdc_model_index *idx, const char *file, const sdc_sf_facts *f,
                             const cJSON *inferred, int t5_gated, const sdc_logger *log) {
    const char *prefix;
    switch (part) {
    case PART_DIT:
        if (flux_transformer_names(f, &prefix) == NAMES_BFL) return sdc_bfl_flux_index(idx, file, "transformer.", log);
        return add_checked(idx, file, "transformer.", NULL, NULL);
    case PART_T5:
        if (t5_gated >= 0) return add_checked(idx, file, "text_encoder_2.", sdc_t5_gguf_name_map, &t5_gated);
        return add_checked(idx, file, "text_encoder_2.", NULL, NULL);
    case PART_CLIP: return add_checked(idx, file, "text_encoder.", sdc_name_map_text_encoder, NULL);
    default: break;
    }
    if (!vae_is_ldm(f)) return add_checked(idx, file, "vae.", sdc_name_map_vae, NULL);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(inferred, "block_out_channels");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(inferred, "layers_per_block");
    sdc_ldm_map *map = malloc(sizeof *map);
    if (!map) return SDC_ERR_OOM;
    static const int unet_attn[4] = {1, 1, 1, 0}; /* the UNet rules are not used here */
    sdc_status st = sdc_ldm_map_init(map, 4, 2, unet_attn, cJSON_GetArraySize(ch), layers->valueint);
    if (st != SDC_OK)
        SDC_LOGE(log, "flux_open: the vae file %s: %d blocks of %d layers are more than sdc maps", file,
                 cJSON_GetArraySize(ch), layers->valueint);
    if (st == SDC_OK) st = add_checked(idx, file, "", ae_name_map, map);
    free(map);
    return st;
}

/* --- agreement of a file with its config ------------------------------------------------------- */

#define AGREE(field, name)                                                                                      \
    do {                                                                                                        \
        if (st == SDC_OK && (long long)(file_cfg.field) != (long long)(cfg.field)) {                            \
            SDC_LOGE(log, "flux_open: the %s file %s does not fit %s: %s %lld in the file, %lld in the config", \
                     parts[part].role, file, from, name, (long long)(file_cfg.field), (long long)(cfg.field));  \
            st = SDC_ERR_FORMAT;                                                                                \
        }                                                                                                       \
    } while (0)

static sdc_status check_agree(int part, const flux_fam *fa, const cJSON *inferred, const char *file, const char *from,
                              const sdc_logger *log) {
    sdc_status st = SDC_OK;
    if (part == PART_DIT) {
        sdc_flux_config file_cfg, cfg = fa->dit;
        if ((st = sdc_flux_config_parse(inferred, log, &file_cfg)) != SDC_OK) return st;
        AGREE(n_layers, "double blocks (num_layers)");
        AGREE(n_single_layers, "single blocks (num_single_layers)");
        AGREE(n_heads * file_cfg.head_dim, "width");
        AGREE(head_dim, "head width (attention_head_dim)");
        AGREE(in_channels, "in_channels");
        AGREE(out_channels, "out_channels");
        AGREE(joint_dim, "joint_attention_dim");
        AGREE(pooled_dim, "pooled_projection_dim");
        AGREE(guidance_embeds, "guidance_embeds");
    } else if (part == PART_T5) {
        sdc_t5_config file_cfg, cfg = fa->t5;
        if ((st = sdc_t5_config_parse(inferred, log, &file_cfg)) != SDC_OK) return st;
        AGREE(d_model, "d_model");
        AGREE(d_ff, "d_ff");
        AGREE(n_layers, "num_layers");
        AGREE(n_heads, "num_heads");
        AGREE(d_kv, "d_kv");
        AGREE(vocab, "vocab_size");
        AGREE(num_buckets, "relative_attention_num_buckets");
    } else if (part == PART_CLIP) {
        sdc_clip_config file_cfg, cfg = fa->clip;
        if ((st = sdc_clip_config_parse(inferred, log, &file_cfg)) != SDC_OK) return st;
        AGREE(hidden, "hidden_size");
        AGREE(intermediate, "intermediate_size");
        AGREE(n_layers, "num_hidden_layers");
        AGREE(vocab, "vocab_size");
        AGREE(max_positions, "max_position_embeddings");
    } else {
        sdc_vae_config file_cfg, cfg = fa->vae;
        if ((st = sdc_vae_config_parse(inferred, log, &file_cfg)) != SDC_OK) return st;
        AGREE(latent_channels, "latent_channels");
        AGREE(n_blocks, "blocks");
        AGREE(layers_per_block, "layers_per_block");
        for (int i = 0; i < cfg.n_blocks && i < file_cfg.n_blocks; i++) AGREE(block_out_channels[i], "block width");
    }
    return st;
}

/* --- opening the parts ------------------------------------------------------------------------- */

static sdc_status parse_part(int part, flux_fam *fa, const cJSON *cfg, const sdc_logger *log) {
    switch (part) {
    case PART_CLIP: return sdc_clip_config_parse(cfg, log, &fa->clip);
    case PART_T5: return sdc_t5_config_parse(cfg, log, &fa->t5);
    case PART_DIT: return sdc_flux_config_parse(cfg, log, &fa->dit);
    default: return sdc_vae_config_parse(cfg, log, &fa->vae);
    }
}

static sdc_status infer_part(int part, const sdc_sf_facts *f, const char *file, const sdc_logger *log, cJSON *j) {
    switch (part) {
    case PART_CLIP: return infer_clip(f, file, log, j);
    case PART_T5: return infer_t5(f, file, log, j);
    case PART_DIT: return infer_dit(f, file, log, j);
    default: return infer_vae(f, file, log, j);
    }
}

/* One part from its file: inferred config, index, and the config (the folder's, checked, or inferred). */
static sdc_status open_file_part(int part, flux_fam *fa, sdc_model_files *mf, const char *file, const sdc_logger *log) {
    sdc_sf_facts *facts = NULL;
    cJSON *inferred = cJSON_CreateObject();
    sdc_status st = inferred ? sdc_sf_facts_read(file, log, &facts) : SDC_ERR_OOM;
    int t5_gated = -1;
    if (st == SDC_OK && part == PART_T5 && sdc_t5_gguf_names(facts)) { /* a llama.cpp T5 GGUF: seen as HF names */
        t5_gated = sdc_sf_find(facts, "enc.blk.0.ffn_gate.weight") != NULL;
        sdc_sf_facts_free(facts);
        st = sdc_t5_gguf_facts(file, t5_gated, log, &facts);
    }
    if (st == SDC_OK) st = infer_part(part, facts, file, log, inferred);
    const cJSON *cfg = sdc_model_files_config(mf, parts[part].part);
    if (st == SDC_OK) st = parse_part(part, fa, cfg ? cfg : inferred, log);
    if (st == SDC_OK && cfg) {
        char from[1024];
        snprintf(from, sizeof from, "the config %s/%s/config.json", sdc_model_files_config_dir(mf), parts[part].part);
        st = check_agree(part, fa, inferred, file, from, log);
    }
    if (st == SDC_OK) st = index_file(part, mf->index, file, facts, inferred, t5_gated, log);
    if (st == SDC_OK)
        SDC_LOGI(log, "flux_open: %s from %s (%s)", parts[part].part, file,
                 cfg ? "the folder's config" : "config inferred from its shapes");
    sdc_sf_facts_free(facts);
    cJSON_Delete(inferred);
    return st;
}

/* The scheduler a transformer file implies without a config folder: schnell static shift 1, dev
 * dynamic shifting (FLUX.1's scheduler configs). */
static cJSON *default_scheduler(int dev) {
    cJSON *j = cJSON_CreateObject();
    if (!j) return NULL;
    cJSON_AddNumberToObject(j, "shift", dev ? 3.0 : 1.0);
    cJSON_AddBoolToObject(j, "use_dynamic_shifting", dev);
    if (dev) {
        cJSON_AddNumberToObject(j, "base_shift", 0.5);
        cJSON_AddNumberToObject(j, "max_shift", 1.15);
        cJSON_AddNumberToObject(j, "base_image_seq_len", 256);
        cJSON_AddNumberToObject(j, "max_image_seq_len", 4096);
    }
    return j;
}

sdc_status flux_open_parts(flux_fam *fa, sdc_model_files *mf, const sdc_logger *log) {
    sdc_status st = SDC_OK;
    for (int part = 0; part < N_PARTS && st == SDC_OK; part++) {
        const char *file = sdc_model_files_file(mf, parts[part].role);
        if (!file && part == PART_DIT && mf->single_file) file = mf->root;
        if (file) {
            st = open_file_part(part, fa, mf, file, log);
            continue;
        }
        if (mf->single_file && !sdc_model_files_config_dir(mf)) {
            SDC_LOGE(log,
                     "flux_open: %s holds only the transformer: give the %s with %s FILE, or a diffusers Flux "
                     "folder with --config DIR",
                     mf->root, parts[part].part, parts[part].flag);
            return SDC_ERR_NOT_FOUND;
        }
        st = sdc_model_files_use_config(mf, parts[part].part, log);
        if (st == SDC_OK) st = parse_part(part, fa, sdc_model_files_config(mf, parts[part].part), log);
    }
    if (st != SDC_OK) return st;
    if (mf->scheduler_config) return sdc_flow_config_parse(mf->scheduler_config, log, &fa->flow);
    cJSON *sched = default_scheduler(fa->dit.guidance_embeds);
    st = sched ? sdc_flow_config_parse(sched, log, &fa->flow) : SDC_ERR_OOM;
    cJSON_Delete(sched);
    return st;
}
