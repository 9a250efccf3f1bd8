/* bfl_names.c - BFL Flux transformer names to diffusers names (bfl_names.h). */
#include "io/bfl_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "io/single_file.h"

typedef struct bfl_rename {
    const char *bfl, *diffusers;
} bfl_rename;

/* Whole names or name heads (a trailing '.': the rest, "weight" / "bias", is kept). */
static const bfl_rename top[] = {
    {"img_in.", "x_embedder."},
    {"txt_in.", "context_embedder."},
    {"time_in.in_layer.", "time_text_embed.timestep_embedder.linear_1."},
    {"time_in.out_layer.", "time_text_embed.timestep_embedder.linear_2."},
    {"vector_in.in_layer.", "time_text_embed.text_embedder.linear_1."},
    {"vector_in.out_layer.", "time_text_embed.text_embedder.linear_2."},
    {"guidance_in.in_layer.", "time_text_embed.guidance_embedder.linear_1."},
    {"guidance_in.out_layer.", "time_text_embed.guidance_embedder.linear_2."},
    {"final_layer.linear.", "proj_out."},
    {"final_layer.adaLN_modulation.1.", "norm_out.linear."}, /* rolled by sdc_bfl_flux_index_finish */
};

/* What follows "double_blocks.N." -> what follows "transformer_blocks.N." */
static const bfl_rename double_block[] = {
    {"img_mod.lin.", "norm1.linear."},
    {"txt_mod.lin.", "norm1_context.linear."},
    {"img_attn.qkv.", "attn.qkv."}, /* stand-ins, split by sdc_bfl_flux_index_finish */
    {"txt_attn.qkv.", "attn.add_qkv."},
    {"img_attn.norm.query_norm.scale", "attn.norm_q.weight"},
    {"img_attn.norm.key_norm.scale", "attn.norm_k.weight"},
    {"txt_attn.norm.query_norm.scale", "attn.norm_added_q.weight"},
    {"txt_attn.norm.key_norm.scale", "attn.norm_added_k.weight"},
    {"img_attn.proj.", "attn.to_out.0."},
    {"txt_attn.proj.", "attn.to_add_out."},
    {"img_mlp.0.", "ff.net.0.proj."},
    {"img_mlp.2.", "ff.net.2."},
    {"txt_mlp.0.", "ff_context.net.0.proj."},
    {"txt_mlp.2.", "ff_context.net.2."},
};

/* What follows "single_blocks.N." -> what follows "single_transformer_blocks.N." */
static const bfl_rename single_block[] = {
    {"linear1.", "linear1."}, /* the stand-in, split by sdc_bfl_flux_index_finish */
    {"linear2.", "proj_out."},
    {"modulation.lin.", "norm.linear."},
    {"norm.query_norm.scale", "attn.norm_q.weight"},
    {"norm.key_norm.scale", "attn.norm_k.weight"},
};

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* rest renamed by the first entry of t that heads it (whole-name entries must match whole), written
 * as prefix + head + renamed rest; NULL when none does or out is too small. */
static const char *apply(const bfl_rename *t, size_t n, const char *prefix, const char *head, const char *rest,
                         char *out, size_t size) {
    for (size_t i = 0; i < n; i++) {
        const size_t l = strlen(t[i].bfl);
        const int whole = t[i].bfl[l - 1] != '.';
        if (whole ? strcmp(rest, t[i].bfl) != 0 : !starts_with(rest, t[i].bfl)) continue;
        const int w = snprintf(out, size, "%s%s%s%s", prefix, head, t[i].diffusers, rest + l);
        return w >= 0 && (size_t)w < size ? out : NULL;
    }
    return NULL;
}

/* "<block>N." at the start of name: N in *n, the rest in *rest. */
static int block_index(const char *name, const char *block, long *n, const char **rest) {
    if (!starts_with(name, block)) return 0;
    char *end;
    *n = strtol(name + strlen(block), &end, 10);
    if (end == name + strlen(block) || *end != '.' || *n < 0 || *n >= SDC_CFG_MAX_LAYERS) return 0;
    *rest = end + 1;
    return 1;
}

const char *sdc_bfl_flux_name_map(const char *name, char *out, size_t size, void *user) {
    const char *prefix = user ? (const char *)user : "transformer.", *rest;
    if (starts_with(name, "model.diffusion_model.")) name += strlen("model.diffusion_model.");
    long n;
    char head[64];
    if (block_index(name, "double_blocks.", &n, &rest)) {
        snprintf(head, sizeof head, "transformer_blocks.%ld.", n);
        return apply(double_block, sizeof double_block / sizeof double_block[0], prefix, head, rest, out, size);
    }
    if (block_index(name, "single_blocks.", &n, &rest)) {
        snprintf(head, sizeof head, "single_transformer_blocks.%ld.", n);
        return apply(single_block, sizeof single_block / sizeof single_block[0], prefix, head, rest, out, size);
    }
    return apply(top, sizeof top / sizeof top[0], prefix, "", name, out, size);
}

/* Splits stand-in <pre><fused>.<kind> into <pre><parts[i]>.<kind> of rows[i] rows, if it is there. */
static sdc_status split(sdc_model_index *idx, const char *pre, const char *fused, const char *kind, int n,
                        const char *const *parts, const int64_t *rows) {
    char name[256], names[4][256];
    const char *ptrs[4];
    snprintf(name, sizeof name, "%s%s.%s", pre, fused, kind);
    if (!sdc_index_find(idx, name)) return SDC_OK;
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s%s.%s", pre, parts[i], kind);
        ptrs[i] = names[i];
    }
    return sdc_index_split_rows_sized(idx, name, n, rows, ptrs);
}

/* Block N's stand-ins, if any. q, k, v are C rows each, C the fused weight's input width. */
static sdc_status finish_block(sdc_model_index *idx, const char *prefix, int single, long n, const sdc_logger *log) {
    static const char *const img[] = {"attn.to_q", "attn.to_k", "attn.to_v"};
    static const char *const txt[] = {"attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"};
    static const char *const lin1[] = {"attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"};
    static const char *const kinds[] = {"bias", "weight"}; /* the bias first: its split needs the weight's C */
    char pre[128], name[256];
    snprintf(pre, sizeof pre, "%s%s.%ld.", prefix, single ? "single_transformer_blocks" : "transformer_blocks", n);
    sdc_status st = SDC_OK;
    for (int f = 0; f < (single ? 1 : 2); f++) {
        const char *fused = single ? "linear1" : f ? "attn.add_qkv" : "attn.qkv";
        snprintf(name, sizeof name, "%s%s.weight", pre, fused);
        const sdc_tensor_info *w = sdc_index_find(idx, name);
        if (!w) continue;
        const int64_t C = w->ndim == 2 ? w->ne[1] : 0, R = w->ne[0];
        const int64_t rows[4] = {C, C, C, R - 3 * C};
        if (C < 1 || R < 3 * C + (single ? 1 : 0) || (!single && R != 3 * C)) {
            SDC_LOGE(log, "sdc_bfl_flux_index_finish: %s has shape [%lld, %lld]; q, k, v%s do not fit", name,
                     (long long)R, (long long)C, single ? " and an MLP" : "");
            return SDC_ERR_FORMAT;
        }
        for (int k = 0; st == SDC_OK && k < 2; k++)
            st = split(idx, pre, fused, kinds[k], single ? 4 : 3, single ? lin1 : f ? txt : img, rows);
    }
    return st;
}

sdc_status sdc_bfl_flux_index_finish(sdc_model_index *idx, const char *prefix, const sdc_logger *log) {
    if (!prefix) prefix = "transformer.";
    sdc_status st = SDC_OK;
    for (long n = 0; st == SDC_OK && n < SDC_CFG_MAX_LAYERS; n++) {
        st = finish_block(idx, prefix, 0, n, log);
        if (st == SDC_OK) st = finish_block(idx, prefix, 1, n, log);
    }
    static const char *const kinds[] = {"weight", "bias"};
    for (int k = 0; st == SDC_OK && k < 2; k++) {
        char name[256];
        snprintf(name, sizeof name, "%snorm_out.linear.%s", prefix, kinds[k]);
        const sdc_tensor_info *t = sdc_index_find(idx, name);
        if (t && (t->ndim < 1 || t->ne[0] % 2)) {
            SDC_LOGE(log, "sdc_bfl_flux_index_finish: %s has an odd number of rows; (shift, scale) halves needed",
                     name);
            return SDC_ERR_FORMAT;
        }
        if (t) st = sdc_index_roll_rows(idx, name, t->ne[0] / 2); /* (shift, scale) read as (scale, shift) */
    }
    return st;
}

sdc_status sdc_bfl_flux_index(sdc_model_index *idx, const char *path, const char *prefix, const sdc_logger *log) {
    sdc_status st = sdc_single_file_index(idx, path, sdc_bfl_flux_name_map, (void *)(prefix ? prefix : "transformer."));
    return st == SDC_OK ? sdc_bfl_flux_index_finish(idx, prefix, log) : st;
}
