/* t5_gguf_names.c - llama.cpp T5 encoder names to Hugging Face names (t5_gguf_names.h). */
#include "io/t5_gguf_names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sdc_t5_gguf_names(const sdc_sf_facts *f) {
    return sdc_sf_find(f, "token_embd.weight") || sdc_sf_find(f, "enc.blk.0.attn_q.weight");
}

/* What follows "enc.blk.N." -> what follows "encoder.block.N.layer." (".weight" kept). */
static const struct {
    const char *llama, *hf;
} block_names[] = {
    {"attn_q", "0.SelfAttention.q"},
    {"attn_k", "0.SelfAttention.k"},
    {"attn_v", "0.SelfAttention.v"},
    {"attn_o", "0.SelfAttention.o"},
    {"attn_rel_b", "0.SelfAttention.relative_attention_bias"},
    {"attn_norm", "0.layer_norm"},
    {"ffn_gate", "1.DenseReluDense.wi_0"},
    {"ffn_up", "1.DenseReluDense.wi_1"}, /* "wi" without a gate */
    {"ffn_down", "1.DenseReluDense.wo"},
    {"ffn_norm", "1.layer_norm"},
};

/* fmt's text into out, or NULL when it does not fit. */
static const char *out_name(char *out, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const char *out_name(char *out, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int len = vsnprintf(out, size, fmt, ap);
    va_end(ap);
    return len < 0 || (size_t)len >= size ? NULL : out;
}

const char *sdc_t5_gguf_name_map(const char *name, char *out, size_t size, void *user) {
    const int gated = user ? *(const int *)user : 1;
    if (!strcmp(name, "token_embd.weight")) return out_name(out, size, "shared.weight");
    if (!strcmp(name, "enc.output_norm.weight")) return out_name(out, size, "encoder.final_layer_norm.weight");
    if (strncmp(name, "enc.blk.", 8) != 0) return NULL;
    const char *s = name + 8;
    if (*s < '0' || *s > '9') return NULL;
    char *end;
    const long n = strtol(s, &end, 10);
    if (*end != '.' || n > 100000) return NULL;
    const char *rest = end + 1, *dot = strrchr(rest, '.');
    if (!dot || strcmp(dot, ".weight") != 0) return NULL;
    for (size_t i = 0; i < sizeof block_names / sizeof block_names[0]; i++) {
        const size_t l = strlen(block_names[i].llama);
        if ((size_t)(dot - rest) != l || strncmp(rest, block_names[i].llama, l) != 0) continue;
        const char *hf = !gated && !strcmp(block_names[i].llama, "ffn_up") ? "1.DenseReluDense.wi" : block_names[i].hf;
        return out_name(out, size, "encoder.block.%ld.layer.%s.weight", n, hf);
    }
    return NULL;
}

sdc_status sdc_t5_gguf_facts(const char *path, int gated, const sdc_logger *log, sdc_sf_facts **out) {
    *out = NULL;
    sdc_model_index *idx = sdc_index_new(log);
    if (!idx) return SDC_ERR_OOM;
    sdc_status st = sdc_index_add_file(idx, path, NULL, sdc_t5_gguf_name_map, &gated);
    const size_t n = sdc_index_count(idx);
    sdc_tensor_info *t = st == SDC_OK ? malloc(sizeof *t * (n ? n : 1)) : NULL;
    if (st == SDC_OK && !t) st = SDC_ERR_OOM;
    for (size_t i = 0; st == SDC_OK && i < n; i++) t[i] = *sdc_index_at(idx, i);
    if (st == SDC_OK) st = sdc_sf_facts_new(t, n, out);
    free(t);
    sdc_index_free(idx);
    return st;
}
