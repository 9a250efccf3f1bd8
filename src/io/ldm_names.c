#include "io/ldm_names.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* What follows a rule's prefix is renamed by the rule's kind. */
enum {
    KIND_SAME = 0,    /* unchanged: transformer blocks, convs, norms named alike on both sides */
    KIND_UNET_RESNET, /* LDM ResBlock <-> diffusers ResnetBlock2D with a time embedding */
    KIND_VAE_RESNET,  /* LDM ResnetBlock <-> diffusers ResnetBlock2D without one */
    KIND_VAE_ATTN,    /* LDM AttnBlock (1x1 convs) <-> diffusers Attention (linears) */
};

typedef struct sub_rule {
    int kind;
    const char *ldm, *diffusers;
    int conv1x1; /* LDM stores this module's weight as a 1x1 conv, diffusers as a linear */
} sub_rule;

static const sub_rule sub_rules[] = {
    {KIND_UNET_RESNET, "in_layers.0.", "norm1.", 0},
    {KIND_UNET_RESNET, "in_layers.2.", "conv1.", 0},
    {KIND_UNET_RESNET, "out_layers.0.", "norm2.", 0},
    {KIND_UNET_RESNET, "out_layers.3.", "conv2.", 0},
    {KIND_UNET_RESNET, "emb_layers.1.", "time_emb_proj.", 0},
    {KIND_UNET_RESNET, "skip_connection.", "conv_shortcut.", 0},
    {KIND_VAE_RESNET, "nin_shortcut.", "conv_shortcut.", 0},
    {KIND_VAE_ATTN, "norm.", "group_norm.", 0},
    {KIND_VAE_ATTN, "q.", "to_q.", 1},
    {KIND_VAE_ATTN, "k.", "to_k.", 1},
    {KIND_VAE_ATTN, "v.", "to_v.", 1},
    {KIND_VAE_ATTN, "proj_out.", "to_out.0.", 1},
};

/* LDM keys that are not weights of the three models. */
static const char *const skip_prefixes[] = {"model_ema.", "first_stage_model.loss."};
static const char skip_suffix[] = ".position_ids";

static void add_rule(sdc_ldm_map *m, int kind, int ldm_only, const char *ldm, const char *diffusers) {
    assert(m->n_rules < SDC_LDM_MAX_RULES);
    assert(strlen(ldm) < SDC_LDM_PREFIX_LEN && strlen(diffusers) < SDC_LDM_PREFIX_LEN);
    sdc_ldm_rule *r = &m->rules[m->n_rules++];
    snprintf(r->ldm, sizeof r->ldm, "%s", ldm);
    snprintf(r->diffusers, sizeof r->diffusers, "%s", diffusers);
    r->kind = kind;
    r->ldm_only = ldm_only;
}

/* Adds a rule from one printf format holding both prefixes, "ldm-prefix|diffusers-prefix". */
__attribute__((format(printf, 3, 4))) static void addf(sdc_ldm_map *m, int kind, const char *fmt, ...) {
    char buf[2 * SDC_LDM_PREFIX_LEN];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *bar = strchr(buf, '|');
    assert(n > 0 && (size_t)n < sizeof buf && bar);
    (void)n;
    *bar = 0;
    add_rule(m, kind, 0, buf, bar + 1);
}

static void add_unet_rules(sdc_ldm_map *m, int n, int L, const int *has_attn) {
    const char *U = "model.diffusion_model.";
    addf(m, KIND_SAME, "%stime_embed.0.|unet.time_embedding.linear_1.", U);
    addf(m, KIND_SAME, "%stime_embed.2.|unet.time_embedding.linear_2.", U);
    /* SDXL (SGM): the text_time add embedding */
    addf(m, KIND_SAME, "%slabel_emb.0.0.|unet.add_embedding.linear_1.", U);
    addf(m, KIND_SAME, "%slabel_emb.0.2.|unet.add_embedding.linear_2.", U);
    addf(m, KIND_SAME, "%sinput_blocks.0.0.|unet.conv_in.", U);
    addf(m, KIND_SAME, "%sout.0.|unet.conv_norm_out.", U);
    addf(m, KIND_SAME, "%sout.2.|unet.conv_out.", U);
    /* down block i: input_blocks (L+1)i+1 .. (L+1)i+L hold resnet j (.0) and attention j (.1);
     * input_blocks (L+1)(i+1) holds the downsampler of all but the last block */
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) {
            int b = (L + 1) * i + j + 1;
            addf(m, KIND_UNET_RESNET, "%sinput_blocks.%d.0.|unet.down_blocks.%d.resnets.%d.", U, b, i, j);
            if (has_attn[i]) addf(m, KIND_SAME, "%sinput_blocks.%d.1.|unet.down_blocks.%d.attentions.%d.", U, b, i, j);
        }
        if (i < n - 1)
            addf(m, KIND_SAME, "%sinput_blocks.%d.0.op.|unet.down_blocks.%d.downsamplers.0.conv.", U, (L + 1) * (i + 1),
                 i);
    }
    addf(m, KIND_UNET_RESNET, "%smiddle_block.0.|unet.mid_block.resnets.0.", U);
    addf(m, KIND_SAME, "%smiddle_block.1.|unet.mid_block.attentions.0.", U);
    addf(m, KIND_UNET_RESNET, "%smiddle_block.2.|unet.mid_block.resnets.1.", U);
    /* up block i: output_blocks (L+1)i .. (L+1)i+L hold resnet j (.0) and attention j (.1); the last of
     * them also the upsampler, after the attention when there is one */
    for (int i = 0; i < n; i++) {
        int attn = has_attn[n - 1 - i];
        for (int j = 0; j <= L; j++) {
            int b = (L + 1) * i + j;
            addf(m, KIND_UNET_RESNET, "%soutput_blocks.%d.0.|unet.up_blocks.%d.resnets.%d.", U, b, i, j);
            if (attn) addf(m, KIND_SAME, "%soutput_blocks.%d.1.|unet.up_blocks.%d.attentions.%d.", U, b, i, j);
        }
        if (i < n - 1)
            addf(m, KIND_SAME, "%soutput_blocks.%d.%d.|unet.up_blocks.%d.upsamplers.0.", U, (L + 1) * i + L,
                 attn ? 2 : 1, i);
    }
    addf(m, KIND_SAME, "%s|unet.", U);
}

static void add_vae_rules(sdc_ldm_map *m, int n, int L) {
    const char *V = "first_stage_model.";
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++)
            addf(m, KIND_VAE_RESNET, "%sencoder.down.%d.block.%d.|vae.encoder.down_blocks.%d.resnets.%d.", V, i, j, i,
                 j);
        if (i < n - 1)
            addf(m, KIND_SAME, "%sencoder.down.%d.downsample.|vae.encoder.down_blocks.%d.downsamplers.0.", V, i, i);
        /* the decoder's up.N counts from the lowest resolution in LDM, from the highest in diffusers */
        for (int j = 0; j <= L; j++)
            addf(m, KIND_VAE_RESNET, "%sdecoder.up.%d.block.%d.|vae.decoder.up_blocks.%d.resnets.%d.", V, n - 1 - i, j,
                 i, j);
        if (i < n - 1)
            addf(m, KIND_SAME, "%sdecoder.up.%d.upsample.|vae.decoder.up_blocks.%d.upsamplers.0.", V, n - 1 - i, i);
    }
    static const char *const parts[] = {"encoder", "decoder"};
    for (int p = 0; p < 2; p++) {
        const char *P = parts[p];
        addf(m, KIND_VAE_RESNET, "%s%s.mid.block_1.|vae.%s.mid_block.resnets.0.", V, P, P);
        addf(m, KIND_VAE_RESNET, "%s%s.mid.block_2.|vae.%s.mid_block.resnets.1.", V, P, P);
        addf(m, KIND_VAE_ATTN, "%s%s.mid.attn_1.|vae.%s.mid_block.attentions.0.", V, P, P);
        addf(m, KIND_SAME, "%s%s.norm_out.|vae.%s.conv_norm_out.", V, P, P);
    }
    addf(m, KIND_SAME, "%s|vae.", V);
}

sdc_status sdc_ldm_map_init(sdc_ldm_map *m, int n_unet_blocks, int layers_per_block, const int *unet_block_has_attn,
                            int n_vae_blocks, int vae_layers_per_block) {
    m->n_rules = 0;
    if (n_unet_blocks < 1 || n_unet_blocks > SDC_LDM_MAX_BLOCKS || layers_per_block < 1 ||
        layers_per_block > SDC_LDM_MAX_LAYERS || !unet_block_has_attn || n_vae_blocks < 1 ||
        n_vae_blocks > SDC_LDM_MAX_BLOCKS || vae_layers_per_block < 1 || vae_layers_per_block > SDC_LDM_MAX_LAYERS)
        return SDC_ERR_INVALID_ARG;
    add_unet_rules(m, n_unet_blocks, layers_per_block, unet_block_has_attn);
    add_vae_rules(m, n_vae_blocks, vae_layers_per_block);
    add_rule(m, KIND_SAME, 0, "cond_stage_model.transformer.text_model.", "text_encoder.text_model.");
    /* checkpoints saved with transformers before the text_model wrapper existed */
    add_rule(m, KIND_SAME, 1, "cond_stage_model.transformer.", "text_encoder.text_model.");
    /* SDXL (SGM): the first of the conditioner's embedders is a transformers CLIP */
    add_rule(m, KIND_SAME, 1, "conditioner.embedders.0.transformer.text_model.", "text_encoder.text_model.");
    return SDC_OK;
}

void sdc_ldm_map_init_sd1(sdc_ldm_map *m) {
    static const int attn[4] = {1, 1, 1, 0};
    sdc_status st = sdc_ldm_map_init(m, 4, 2, attn, 4, 2);
    assert(st == SDC_OK);
    (void)st;
}

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Rewrites name: the rule prefix from[] becomes to[], then the kind's sub-rule renames the module. */
static const char *apply(const sdc_ldm_rule *best, int to_diffusers, const char *name, char *out, size_t size,
                         int *conv1x1) {
    const char *from = to_diffusers ? best->ldm : best->diffusers;
    const char *to = to_diffusers ? best->diffusers : best->ldm;
    const char *rest = name + strlen(from);
    const char *sub_to = "";
    if (conv1x1) *conv1x1 = 0;
    for (size_t i = 0; i < sizeof sub_rules / sizeof sub_rules[0]; i++) {
        const sub_rule *s = &sub_rules[i];
        const char *sf = to_diffusers ? s->ldm : s->diffusers;
        if (s->kind == best->kind && starts_with(rest, sf)) {
            sub_to = to_diffusers ? s->diffusers : s->ldm;
            rest += strlen(sf);
            if (conv1x1) *conv1x1 = s->conv1x1 && strcmp(rest, "weight") == 0;
            break;
        }
    }
    int n = snprintf(out, size, "%s%s%s", to, sub_to, rest);
    return n >= 0 && (size_t)n < size ? out : NULL;
}

static const sdc_ldm_rule *longest_match(const sdc_ldm_map *m, const char *name, int from_ldm) {
    const sdc_ldm_rule *best = NULL;
    size_t best_len = 0;
    for (int i = 0; i < m->n_rules; i++) {
        const sdc_ldm_rule *r = &m->rules[i];
        if (!from_ldm && r->ldm_only) continue;
        const char *p = from_ldm ? r->ldm : r->diffusers;
        size_t len = strlen(p);
        if (len > best_len && strncmp(name, p, len) == 0) {
            best = r;
            best_len = len;
        }
    }
    return best;
}

const char *sdc_ldm_to_diffusers(const sdc_ldm_map *m, const char *ldm_name, char *out, size_t size) {
    for (size_t i = 0; i < sizeof skip_prefixes / sizeof skip_prefixes[0]; i++)
        if (starts_with(ldm_name, skip_prefixes[i])) return NULL;
    size_t n = strlen(ldm_name), ns = sizeof skip_suffix - 1;
    if (n >= ns && strcmp(ldm_name + n - ns, skip_suffix) == 0) return NULL;
    const sdc_ldm_rule *best = longest_match(m, ldm_name, 1);
    return best ? apply(best, 1, ldm_name, out, size, NULL) : NULL;
}

const char *sdc_diffusers_to_ldm(const sdc_ldm_map *m, const char *name, char *out, size_t size, int *conv1x1) {
    if (conv1x1) *conv1x1 = 0;
    const sdc_ldm_rule *best = longest_match(m, name, 0);
    return best ? apply(best, 0, name, out, size, conv1x1) : NULL;
}

const char *sdc_ldm_name_map(const char *name, char *out, size_t size, void *user) {
    return sdc_ldm_to_diffusers((const sdc_ldm_map *)user, name, out, size);
}
