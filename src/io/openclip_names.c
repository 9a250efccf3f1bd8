/* openclip_names.c - OpenCLIP text-encoder names to transformers' CLIP names (openclip_names.h). */
#include "io/openclip_names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Renames of what follows "transformer.resblocks.N.", and of the top-level tensors. */
static const struct {
    const char *openclip, *hf;
} layer_renames[] =
    {
        {"ln_1.", "layer_norm1."},
        {"ln_2.", "layer_norm2."},
        {"attn.in_proj_weight", "self_attn.in_proj.weight"}, /* the stand-in, split by sdc_openclip_index_finish */
        {"attn.in_proj_bias", "self_attn.in_proj.bias"},
        {"attn.out_proj.", "self_attn.out_proj."},
        {"mlp.c_fc.", "mlp.fc1."},
        {"mlp.c_proj.", "mlp.fc2."},
},
  top_renames[] = {
      {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
      {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
      {"ln_final.", "text_model.final_layer_norm."},
};

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* out = a + b + c, or NULL when it does not fit. */
static const char *join(char *out, size_t size, const char *a, const char *b, const char *c) {
    int n = snprintf(out, size, "%s%s%s", a, b, c);
    return n >= 0 && (size_t)n < size ? out : NULL;
}

int sdc_openclip_owns(const sdc_openclip_map *m, const char *name) { return starts_with(name, m->from); }

/* rest: what follows "transformer.resblocks." */
static const char *layer_name(const sdc_openclip_map *m, const char *rest, char *out, size_t size) {
    char *end;
    long layer = strtol(rest, &end, 10);
    if (end == rest || *end != '.' || layer < 0 || layer >= m->n_layers) return NULL;
    rest = end + 1;
    for (size_t i = 0; i < sizeof layer_renames / sizeof layer_renames[0]; i++) {
        const char *o = layer_renames[i].openclip;
        if (!starts_with(rest, o)) continue;
        char head[96];
        snprintf(head, sizeof head, "text_model.encoder.layers.%ld.%s", layer, layer_renames[i].hf);
        return join(out, size, m->to, head, rest + strlen(o));
    }
    return NULL;
}

const char *sdc_openclip_to_hf(const sdc_openclip_map *m, const char *name, char *out, size_t size) {
    if (!sdc_openclip_owns(m, name)) return NULL;
    const char *rest = name + strlen(m->from);
    static const char resblocks[] = "transformer.resblocks.";
    if (starts_with(rest, resblocks)) return layer_name(m, rest + sizeof resblocks - 1, out, size);
    if (!strcmp(rest, "text_projection"))
        return m->projection ? join(out, size, m->to, "text_projection.weight", "") : NULL;
    for (size_t i = 0; i < sizeof top_renames / sizeof top_renames[0]; i++) {
        const char *o = top_renames[i].openclip;
        if (starts_with(rest, o)) return join(out, size, m->to, top_renames[i].hf, rest + strlen(o));
    }
    return NULL;
}

sdc_status sdc_openclip_index_finish(sdc_model_index *idx, const sdc_openclip_map *m) {
    static const char *const kinds[] = {"weight", "bias"};
    static const char *const qkv[] = {"q", "k", "v"};
    sdc_status st = SDC_OK;
    for (int l = 0; st == SDC_OK && l < m->n_layers; l++) {
        for (int k = 0; st == SDC_OK && k < 2; k++) {
            char fused[256], parts[3][256];
            const char *names[3] = {parts[0], parts[1], parts[2]};
            snprintf(fused, sizeof fused, "%stext_model.encoder.layers.%d.self_attn.in_proj.%s", m->to, l, kinds[k]);
            if (!sdc_index_find(idx, fused)) continue;
            for (int p = 0; p < 3; p++)
                snprintf(parts[p], sizeof parts[p], "%stext_model.encoder.layers.%d.self_attn.%s_proj.%s", m->to, l,
                         qkv[p], kinds[k]);
            st = sdc_index_split_rows(idx, fused, 3, names);
        }
    }
    char proj[256];
    snprintf(proj, sizeof proj, "%stext_projection.weight", m->to);
    if (st == SDC_OK && m->projection && sdc_index_find(idx, proj)) st = sdc_index_transpose(idx, proj);
    return st;
}
