/* t5.c - the T5 encoder (see t5.h): config, weights, relative-position bias, forward. */
#include "model/t5.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "io/config.h"

typedef struct t5_layer {
    sdc_tensor *ln_attn, *q, *k, *v, *o; /* [C]; [H*D, C] x3; [C, H*D] */
    sdc_tensor *ln_ff, *wi0, *wi1, *wo;  /* [C]; [F, C] x2; [C, F] */
} t5_layer;

struct sdc_t5 {
    sdc_t5_config cfg;
    sdc_backend *be;
    sdc_logger log;
    sdc_weight_set ws;         /* every weight (streamed: all but the layers') */
    sdc_weight_stream *stream; /* streamed: unit l = layer l; else NULL */
    sdc_tensor *embed;         /* [V, C] */
    sdc_tensor *rel_bias;      /* [buckets, H]: layer 0's, shared by all */
    sdc_tensor *ln_final;      /* [C] */
    t5_layer *layers;
    sdc_dtype act_dtype; /* f32, or bf16 where the backend has it (never f16: see t5.h) */
};

sdc_status sdc_t5_config_parse(const cJSON *cfg, const sdc_logger *log, sdc_t5_config *out) {
    const char *what = "text_encoder_2 config";
    memset(out, 0, sizeof *out);
    const char *ff = NULL;
    double eps = 0;
    sdc_status st;
    if ((st = sdc_cfg_int(cfg, "d_model", what, log, &out->d_model)) ||
        (st = sdc_cfg_int(cfg, "d_kv", what, log, &out->d_kv)) ||
        (st = sdc_cfg_int(cfg, "d_ff", what, log, &out->d_ff)) ||
        (st = sdc_cfg_int(cfg, "num_layers", what, log, &out->n_layers)) ||
        (st = sdc_cfg_int(cfg, "num_heads", what, log, &out->n_heads)) ||
        (st = sdc_cfg_int(cfg, "vocab_size", what, log, &out->vocab)) ||
        (st = sdc_cfg_int_or(cfg, "relative_attention_num_buckets", 32, what, log, &out->num_buckets)) ||
        (st = sdc_cfg_int_or(cfg, "relative_attention_max_distance", 128, what, log, &out->max_distance)) ||
        (st = sdc_cfg_float_or(cfg, "layer_norm_epsilon", 1e-6, what, log, &eps)) ||
        (st = sdc_cfg_string_or(cfg, "feed_forward_proj", "relu", what, log, &ff)))
        return st;
    /* transformers: "gated-gelu" means gelu_new; "gated-<act>" otherwise names the activation */
    if (strcmp(ff, "gated-gelu") == 0 || strcmp(ff, "gated-gelu_new") == 0) {
        out->act = SDC_UNARY_GELU_TANH;
    } else if (strcmp(ff, "gated-silu") == 0) {
        out->act = SDC_UNARY_SILU;
    } else {
        SDC_LOGE(log, "%s: feed_forward_proj '%s' is not supported (gated-gelu, gated-silu)", what, ff);
        return SDC_ERR_UNSUPPORTED;
    }
    static const char *const fn = "sdc_t5_config_parse";
    if ((st = sdc_cfg_bound(fn, "d_model", out->d_model, 1, SDC_CFG_MAX_CHANNELS, log)) ||
        (st = sdc_cfg_bound(fn, "num_heads", out->n_heads, 1, SDC_CFG_MAX_HEADS, log)) ||
        (st = sdc_cfg_bound(fn, "d_kv", out->d_kv, 1, SDC_CFG_MAX_CHANNELS / out->n_heads, log)) ||
        (st = sdc_cfg_bound(fn, "d_ff", out->d_ff, 1, SDC_CFG_MAX_WIDTH, log)) ||
        (st = sdc_cfg_bound(fn, "num_layers", out->n_layers, 1, SDC_CFG_MAX_LAYERS, log)) ||
        (st = sdc_cfg_bound(fn, "vocab_size", out->vocab, 1, SDC_CFG_MAX_VOCAB, log)) ||
        (st = sdc_cfg_bound(fn, "relative_attention_num_buckets", out->num_buckets, 4, 4096, log)) ||
        (st = sdc_cfg_bound(fn, "relative_attention_max_distance", out->max_distance, out->num_buckets / 4 + 1,
                            SDC_CFG_MAX_POSITIONS, log)))
        return st;
    if (!(eps > 0 && eps <= 1)) {
        SDC_LOGE(log, "%s: layer_norm_epsilon %g outside (0, 1]", what, eps);
        return SDC_ERR_FORMAT;
    }
    out->eps = (float)eps;
    return SDC_OK;
}

int sdc_t5_bucket(int rel, int num_buckets, int max_distance) {
    const int half = num_buckets / 2, exact = half / 2;
    const int base = rel > 0 ? half : 0;
    const int d = rel < 0 ? -rel : rel;
    if (d < exact) return base + d;
    /* exact + log(d / exact) / log(max_distance / exact) * (half - exact), each step rounded to f32 */
    const float ratio = (float)d / (float)exact;
    const float scale = (float)log((double)max_distance / (double)exact);
    const float big = logf(ratio) / scale * (float)(half - exact);
    const int b = exact + (int)big;
    return base + (b < half - 1 ? b : half - 1);
}

/* Layer l's weights (a streaming unit, or one step of the whole load). */
static void unit_load(void *owner, int l, sdc_weight_set *ws) {
    sdc_t5 *m = owner;
    const sdc_t5_config *cfg = &m->cfg;
    const int64_t C = cfg->d_model, A = (int64_t)cfg->n_heads * cfg->d_kv, F = cfg->d_ff;
    t5_layer *L = &m->layers[l];
#define VEC(n, fmt) sdc_weights_get(ws, 1, (int64_t[]){n}, "encoder.block.%d.layer." fmt, l)
#define MAT(r, c, fmt) sdc_weights_matrix(ws, 2, (int64_t[]){r, c}, "encoder.block.%d.layer." fmt, l)
    L->ln_attn = VEC(C, "0.layer_norm.weight");
    L->q = MAT(A, C, "0.SelfAttention.q.weight");
    L->k = MAT(A, C, "0.SelfAttention.k.weight");
    L->v = MAT(A, C, "0.SelfAttention.v.weight");
    L->o = MAT(C, A, "0.SelfAttention.o.weight");
    L->ln_ff = VEC(C, "1.layer_norm.weight");
    L->wi0 = MAT(F, C, "1.DenseReluDense.wi_0.weight");
    L->wi1 = MAT(F, C, "1.DenseReluDense.wi_1.weight");
    L->wo = MAT(C, F, "1.DenseReluDense.wo.weight");
#undef VEC
#undef MAT
}

static void unit_drop(void *owner, int l) { memset(&((sdc_t5 *)owner)->layers[l], 0, sizeof(t5_layer)); }

sdc_status sdc_t5_load(const sdc_t5_config *cfg, const sdc_weight_source *src, sdc_t5 **out) {
    *out = NULL;
    sdc_t5 *m = calloc(1, sizeof *m);
    t5_layer *layers = calloc((size_t)cfg->n_layers, sizeof *layers);
    if (!m || !layers) {
        free(m);
        free(layers);
        SDC_LOGE(src->log, "sdc_t5_load: out of host memory");
        return SDC_ERR_OOM;
    }
    m->cfg = *cfg;
    m->be = src->be;
    if (src->log) m->log = *src->log;
    m->layers = layers;
    const int64_t C = cfg->d_model;
    sdc_weight_source s = *src;
    s.log = &m->log;
    s.prec = sdc_prec_bf16(src->prec) ? src->prec : SDC_PREC_F32; /* never f16: see t5.h */
    m->act_dtype = sdc_weight_source_act_dtype(&s);
    if (src->window > 0 && !(m->stream = sdc_stream_new(&s, cfg->n_layers, m, unit_load, unit_drop))) {
        sdc_t5_free(m);
        return SDC_ERR_OOM;
    }
    sdc_weight_set *ws = &m->ws;
    sdc_weights_begin(ws, &s, "");
    const char *embed = sdc_weights_has(ws, "shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
    m->embed = sdc_weights_get(ws, 2, (int64_t[]){cfg->vocab, C}, "%s", embed);
    m->rel_bias = sdc_weights_get(ws, 2, (int64_t[]){cfg->num_buckets, cfg->n_heads},
                                  "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    for (int l = 0; l < cfg->n_layers && !m->stream; l++) unit_load(m, l, ws); /* streamed: on acquire */
    m->ln_final = sdc_weights_get(ws, 1, (int64_t[]){C}, "encoder.final_layer_norm.weight");
    sdc_status st = sdc_weights_end(ws);
    if (st != SDC_OK) {
        SDC_LOGE(&m->log, "sdc_t5_load: %s", sdc_status_str(st));
        sdc_t5_free(m);
        return st;
    }
    *out = m;
    return SDC_OK;
}

void sdc_t5_free(sdc_t5 *m) {
    if (!m) return;
    sdc_stream_free(m->stream); /* the resident layers */
    sdc_weights_free(&m->ws);
    free(m->layers);
    free(m);
}

const sdc_t5_config *sdc_t5_get_config(const sdc_t5 *m) { return &m->cfg; }
const sdc_weight_set *sdc_t5_weights(const sdc_t5 *m) { return &m->ws; }
sdc_weight_stream *sdc_t5_weight_stream(sdc_t5 *m) { return m->stream; }
sdc_dtype sdc_t5_act_dtype(const sdc_t5 *m) { return m->act_dtype; }

/* Activations of one forward pass; freed together at the end. */
enum {
    A_X,      /* [B, T, C] the residual stream */
    A_H,      /* [B, T, C] */
    A_Q,      /* [B, T, H*D] */
    A_K,      /* [B, T, H*D] */
    A_V,      /* [B, T, H*D] */
    A_ATT,    /* [B, T, H*D] */
    A_G,      /* [B, T, F] */
    A_U,      /* [B, T, F] */
    A_IDS,    /* [B*T] I32 */
    A_BUCKET, /* [T*T] I32 */
    A_PE,     /* [1, T, T, H] */
    A_BIAS,   /* [1, H, T, T] */
    A_COUNT
};

/* bias [H, T, T]: the table at the bucket of each (query t, key s). */
static sdc_status position_bias(const sdc_t5 *m, int T, sdc_tensor **a) {
    int32_t *bucket = malloc(sizeof(int32_t) * (size_t)T * (size_t)T);
    if (!bucket) return SDC_ERR_OOM;
    for (int t = 0; t < T; t++)
        for (int s = 0; s < T; s++)
            bucket[(size_t)t * T + s] = sdc_t5_bucket(s - t, m->cfg.num_buckets, m->cfg.max_distance);
    sdc_tensor_set_raw(a[A_BUCKET], bucket);
    free(bucket);
    sdc_tensor pe = sdc_tensor_view(a[A_PE], 2, (int64_t[]){(int64_t)T * T, m->cfg.n_heads});
    sdc_embedding(&pe, m->rel_bias, a[A_BUCKET]);                  // [T*T, H]
    sdc_permute(a[A_BIAS], a[A_PE], (const int[4]){0, 3, 1, 2});   // [1, T, T, H] -> [1, H, T, T]
    return SDC_OK;
}

static void layer_forward(const sdc_t5 *m, const t5_layer *L, const sdc_tensor *bias, sdc_tensor **a) {
    sdc_tensor *x = a[A_X], *h = a[A_H];   // [B, T, C]
    sdc_rms_norm(h, x, L->ln_attn, m->cfg.eps);
    sdc_linear(a[A_Q], h, L->q, NULL);
    sdc_linear(a[A_K], h, L->k, NULL);
    sdc_linear(a[A_V], h, L->v, NULL);
    sdc_attention_bias(a[A_ATT], a[A_Q], a[A_K], a[A_V], bias, m->cfg.n_heads, 1.0f);
    sdc_linear(h, a[A_ATT], L->o, NULL);
    sdc_binary(x, x, h, SDC_BINARY_ADD);
    sdc_rms_norm(h, x, L->ln_ff, m->cfg.eps);
    sdc_linear(a[A_G], h, L->wi0, NULL);   // [B, T, F]
    sdc_linear(a[A_U], h, L->wi1, NULL);
    sdc_unary(a[A_G], a[A_G], m->cfg.act);
    sdc_binary(a[A_G], a[A_G], a[A_U], SDC_BINARY_MUL);
    sdc_linear(h, a[A_G], L->wo, NULL);   // [B, T, C]
    sdc_binary(x, x, h, SDC_BINARY_ADD);
}

sdc_status sdc_t5_forward(sdc_t5 *m, const int32_t *ids, int B, int T, sdc_tensor *out) {
    const sdc_t5_config *cfg = &m->cfg;
    if (B < 1 || T < 1 || T > SDC_T5_MAX_TOKENS || (int64_t)B * T > INT32_MAX / 2) {
        SDC_LOGE(&m->log, "sdc_t5_forward: %d sequences of %d tokens (1..%d tokens)", B, T, SDC_T5_MAX_TOKENS);
        return SDC_ERR_INVALID_ARG;
    }
    if (out->backend != m->be || out->ndim != 3 || out->ne[0] != B || out->ne[1] != T || out->ne[2] != cfg->d_model) {
        SDC_LOGE(&m->log, "sdc_t5_forward: out is not [%d, %d, %d] on the model's backend", B, T, cfg->d_model);
        return SDC_ERR_INVALID_ARG;
    }
    for (int64_t i = 0; i < (int64_t)B * T; i++) {
        if (ids[i] < 0 || ids[i] >= cfg->vocab) {
            SDC_LOGE(&m->log, "sdc_t5_forward: token id %d outside the vocabulary of %d", ids[i], cfg->vocab);
            return SDC_ERR_INVALID_ARG;
        }
    }
    const int64_t C = cfg->d_model, A = (int64_t)cfg->n_heads * cfg->d_kv, F = cfg->d_ff, H = cfg->n_heads;
    sdc_backend *be = m->be;
    const sdc_dtype adt = m->act_dtype;
    sdc_tensor *a[A_COUNT] = {0};
    for (int i = A_X; i <= A_H; i++) a[i] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, adt, 3, (int64_t[]){B, T, C});
    for (int i = A_Q; i <= A_ATT; i++) a[i] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, adt, 3, (int64_t[]){B, T, A});
    for (int i = A_G; i <= A_U; i++) a[i] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, adt, 3, (int64_t[]){B, T, F});
    a[A_IDS] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_I32, 1, (int64_t[]){(int64_t)B * T});
    a[A_BUCKET] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_I32, 1, (int64_t[]){(int64_t)T * T});
    a[A_PE] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, adt, 4, (int64_t[]){1, T, T, H});
    a[A_BIAS] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, adt, 4, (int64_t[]){1, H, T, T});
    sdc_status st = SDC_OK;
    for (int i = 0; i < A_COUNT; i++)
        if (!a[i]) st = SDC_ERR_OOM;
    if (st == SDC_OK) st = position_bias(m, T, a);
    if (st == SDC_OK) {
        const sdc_tensor bias = sdc_tensor_view(a[A_BIAS], 3, (int64_t[]){H, T, T});
        sdc_tensor_set_raw(a[A_IDS], ids);
        sdc_embedding(a[A_X], m->embed, a[A_IDS]);   // [B, T, C]
        sdc_stream_begin(m->stream);
        for (int l = 0; l < cfg->n_layers && st == SDC_OK; l++) {
            if (!sdc_stream_acquire(m->stream, l)) {
                st = sdc_stream_status(m->stream);
                SDC_LOGE(&m->log, "sdc_t5_forward: layer %d could not be loaded: %s", l, sdc_status_str(st));
                break;
            }
            layer_forward(m, &m->layers[l], &bias, a);
            sdc_stream_release(m->stream, l);
        }
    }
    if (st == SDC_OK) {
        if (out->dtype == adt) {
            sdc_rms_norm(out, a[A_X], m->ln_final, cfg->eps);
        } else {   // into the caller's dtype through the free [B, T, C] of h
            sdc_rms_norm(a[A_H], a[A_X], m->ln_final, cfg->eps);
            sdc_copy(out, a[A_H]);
        }
    }
    if (st == SDC_ERR_OOM) SDC_LOGE(&m->log, "sdc_t5_forward: out of %s memory", sdc_backend_name(be));
    for (int i = 0; i < A_COUNT; i++) sdc_tensor_free(a[i]);
    return st;
}
