#include "model/clip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "io/config.h"

typedef struct clip_layer {
    sdc_tensor *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    sdc_tensor *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    sdc_tensor *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} clip_layer;

struct sdc_clip {
    sdc_clip_config cfg;
    sdc_backend *be;
    sdc_dtype act_dtype; /* chosen at load time */
    sdc_logger log;
    sdc_weight_set ws;
    sdc_tensor *tok_emb; /* [V, C] */
    sdc_tensor *pos_emb; /* [P, C] */
    sdc_tensor *lnf_w, *lnf_b;
    sdc_tensor *proj_w; /* [P, C]: text_projection (CLIPTextModelWithProjection), else NULL */
    clip_layer *layers;
};

sdc_status sdc_clip_config_parse(const cJSON *cfg, const sdc_logger *log, sdc_clip_config *out) {
    const char *what = "text_encoder config";
    memset(out, 0, sizeof *out);
    const char *act = NULL;
    double eps = 0;
    sdc_status st;
    if ((st = sdc_cfg_int(cfg, "hidden_size", what, log, &out->hidden)) ||
        (st = sdc_cfg_int(cfg, "intermediate_size", what, log, &out->intermediate)) ||
        (st = sdc_cfg_int(cfg, "num_hidden_layers", what, log, &out->n_layers)) ||
        (st = sdc_cfg_int(cfg, "num_attention_heads", what, log, &out->n_heads)) ||
        (st = sdc_cfg_int_or(cfg, "max_position_embeddings", 77, what, log, &out->max_positions)) ||
        (st = sdc_cfg_int(cfg, "vocab_size", what, log, &out->vocab)) ||
        (st = sdc_cfg_int_or(cfg, "eos_token_id", 2, what, log, &out->eos_token_id)) ||
        (st = sdc_cfg_float_or(cfg, "layer_norm_eps", 1e-5, what, log, &eps)) ||
        (st = sdc_cfg_string_or(cfg, "hidden_act", "quick_gelu", what, log, &act)))
        return st;
    /* CLIPTextModelWithProjection (SDXL's second encoder): the architectures list names it */
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(cfg, "architectures");
    const cJSON *a0 = cJSON_IsArray(arch) ? cJSON_GetArrayItem(arch, 0) : NULL;
    if (cJSON_IsString(a0) && strcmp(a0->valuestring, "CLIPTextModelWithProjection") == 0 &&
        (st = sdc_cfg_int_or(cfg, "projection_dim", 512, what, log, &out->projection_dim)))
        return st;
    out->eps = (float)eps;
    if (strcmp(act, "quick_gelu") == 0) {
        out->act = SDC_UNARY_QUICK_GELU;
    } else if (strcmp(act, "gelu") == 0) {
        out->act = SDC_UNARY_GELU;
    } else if (strcmp(act, "gelu_new") == 0 || strcmp(act, "gelu_pytorch_tanh") == 0) {
        out->act = SDC_UNARY_GELU_TANH;
    } else {
        SDC_LOGE(log, "%s: unsupported hidden_act '%s'", what, act);
        return SDC_ERR_UNSUPPORTED;
    }
    /* bounds before the divisibility checks, and before anything allocates per layer or per token */
    static const char *const fn = "sdc_clip_config_parse";
    if ((st = sdc_cfg_bound(fn, "hidden_size", out->hidden, 1, SDC_CFG_MAX_CHANNELS, log)) ||
        (st = sdc_cfg_bound(fn, "intermediate_size", out->intermediate, 1, SDC_CFG_MAX_WIDTH, log)) ||
        (st = sdc_cfg_bound(fn, "num_hidden_layers", out->n_layers, 1, SDC_CFG_MAX_LAYERS, log)) ||
        (st = sdc_cfg_bound(fn, "num_attention_heads", out->n_heads, 1, SDC_CFG_MAX_HEADS, log)) ||
        (st = sdc_cfg_bound(fn, "max_position_embeddings", out->max_positions, 1, SDC_CFG_MAX_POSITIONS, log)) ||
        (st = sdc_cfg_bound(fn, "vocab_size", out->vocab, 1, SDC_CFG_MAX_VOCAB, log)) ||
        (st = sdc_cfg_bound(fn, "projection_dim", out->projection_dim, 0, SDC_CFG_MAX_CHANNELS, log)))
        return st;
    if (out->hidden <= 0 || out->n_heads <= 0 || out->hidden % out->n_heads || out->n_layers <= 0 ||
        out->intermediate <= 0 || out->vocab <= 0 || out->max_positions <= 0) {
        SDC_LOGE(log, "%s: inconsistent sizes (hidden %d, heads %d, layers %d, intermediate %d, vocab %d)", what,
                 out->hidden, out->n_heads, out->n_layers, out->intermediate, out->vocab);
        return SDC_ERR_FORMAT;
    }
    return SDC_OK;
}

sdc_status sdc_clip_load(const sdc_clip_config *cfg, const sdc_weight_source *src, sdc_clip **out) {
    *out = NULL;
    sdc_clip *m = calloc(1, sizeof *m);
    clip_layer *layers = calloc((size_t)cfg->n_layers, sizeof *layers);
    if (!m || !layers) {
        free(m);
        free(layers);
        SDC_LOGE(src->log, "sdc_clip_load: out of host memory");
        return SDC_ERR_OOM;
    }
    m->cfg = *cfg;
    m->be = src->be;
    m->act_dtype = sdc_weight_source_act_dtype(src);
    if (src->log) m->log = *src->log;
    m->layers = layers;
    const int64_t C = cfg->hidden, I = cfg->intermediate;
    sdc_weight_source s = *src;
    s.log = &m->log;
    sdc_weight_set *ws = &m->ws;
    sdc_weights_begin(ws, &s, "");
    m->tok_emb = sdc_weights_get(ws, 2, (int64_t[]){cfg->vocab, C}, "text_model.embeddings.token_embedding.weight");
    m->pos_emb =
        sdc_weights_get(ws, 2, (int64_t[]){cfg->max_positions, C}, "text_model.embeddings.position_embedding.weight");
    for (int l = 0; l < cfg->n_layers; l++) {
        clip_layer *L = &layers[l];
#define VEC(n, fmt) sdc_weights_get(ws, 1, (int64_t[]){n}, "text_model.encoder.layers.%d." fmt, l)
#define MAT(r, c, fmt) sdc_weights_matrix(ws, 2, (int64_t[]){r, c}, "text_model.encoder.layers.%d." fmt, l)
        L->ln1_w = VEC(C, "layer_norm1.weight");
        L->ln1_b = VEC(C, "layer_norm1.bias");
        L->q_w = MAT(C, C, "self_attn.q_proj.weight");
        L->q_b = VEC(C, "self_attn.q_proj.bias");
        L->k_w = MAT(C, C, "self_attn.k_proj.weight");
        L->k_b = VEC(C, "self_attn.k_proj.bias");
        L->v_w = MAT(C, C, "self_attn.v_proj.weight");
        L->v_b = VEC(C, "self_attn.v_proj.bias");
        L->o_w = MAT(C, C, "self_attn.out_proj.weight");
        L->o_b = VEC(C, "self_attn.out_proj.bias");
        L->ln2_w = VEC(C, "layer_norm2.weight");
        L->ln2_b = VEC(C, "layer_norm2.bias");
        L->fc1_w = MAT(I, C, "mlp.fc1.weight");
        L->fc1_b = VEC(I, "mlp.fc1.bias");
        L->fc2_w = MAT(C, I, "mlp.fc2.weight");
        L->fc2_b = VEC(C, "mlp.fc2.bias");
#undef VEC
#undef MAT
    }
    m->lnf_w = sdc_weights_get(ws, 1, (int64_t[]){C}, "text_model.final_layer_norm.weight");
    m->lnf_b = sdc_weights_get(ws, 1, (int64_t[]){C}, "text_model.final_layer_norm.bias");
    if (cfg->projection_dim)
        m->proj_w = sdc_weights_matrix(ws, 2, (int64_t[]){cfg->projection_dim, C}, "text_projection.weight");
    sdc_status st = sdc_weights_end(ws);
    if (st != SDC_OK) {
        SDC_LOGE(&m->log, "sdc_clip_load: %s", sdc_status_str(st));
        free(m->layers);
        free(m);
        return st;
    }
    *out = m;
    return SDC_OK;
}

void sdc_clip_free(sdc_clip *m) {
    if (!m) return;
    sdc_weights_free(&m->ws);
    free(m->layers);
    free(m);
}

const sdc_clip_config *sdc_clip_get_config(const sdc_clip *m) { return &m->cfg; }
const sdc_weight_set *sdc_clip_weights(const sdc_clip *m) { return &m->ws; }
sdc_dtype sdc_clip_act_dtype(const sdc_clip *m) { return m->act_dtype; }

/* Activations of one forward pass; freed together at the end. */
enum {
    A_X,
    A_H,
    A_Q,
    A_K,
    A_V,
    A_ATT,
    A_MLP,
    A_IDS,
    A_POS,
    A_PE,
    A_COUNT
};

static void layer_forward(const sdc_clip *m, const clip_layer *L, sdc_tensor **a) {
    sdc_tensor *x = a[A_X], *h = a[A_H];   // [B, T, C]
    sdc_layer_norm(h, x, L->ln1_w, L->ln1_b, m->cfg.eps);
    sdc_linear(a[A_Q], h, L->q_w, L->q_b);
    sdc_linear(a[A_K], h, L->k_w, L->k_b);
    sdc_linear(a[A_V], h, L->v_w, L->v_b);
    sdc_attention(a[A_ATT], a[A_Q], a[A_K], a[A_V], m->cfg.n_heads, 1);
    sdc_linear(h, a[A_ATT], L->o_w, L->o_b);
    sdc_binary(x, x, h, SDC_BINARY_ADD);
    sdc_layer_norm(h, x, L->ln2_w, L->ln2_b, m->cfg.eps);
    sdc_linear(a[A_MLP], h, L->fc1_w, L->fc1_b);   // [B, T, I]
    sdc_unary(a[A_MLP], a[A_MLP], m->cfg.act);
    sdc_linear(h, a[A_MLP], L->fc2_w, L->fc2_b);   // [B, T, C]
    sdc_binary(x, x, h, SDC_BINARY_ADD);
}
static int eos_position(const sdc_clip_config *cfg, const int32_t *ids, int T) {
    int best = 0;
    for (int t = 0; t < T; t++) {
        if (cfg->eos_token_id == 2) {
            if (ids[t] > ids[best]) best = t; /* legacy configs: argmax of the ids */
        } else if (ids[t] == cfg->eos_token_id) {
            return t;
        }
    }
    return cfg->eos_token_id == 2 ? best : T - 1;
}

/* pooled [B, C] -> text_embeds [B, P] = pooled . text_projection^T, in the encoder's dtype */
static sdc_status project(sdc_clip *m, const float *pooled, int B, float *text_embeds) {
    const int64_t C = m->cfg.hidden, P = m->cfg.projection_dim;
    sdc_tensor *x = sdc_tensor_new(m->be, SDC_MEM_ACTIVATIONS, m->act_dtype, 2, (int64_t[]){B, C});
    sdc_tensor *y = sdc_tensor_new(m->be, SDC_MEM_ACTIVATIONS, m->act_dtype, 2, (int64_t[]){B, P});
    sdc_status st = x && y ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) {
        sdc_tensor_set_f32(x, pooled);
        sdc_linear(y, x, m->proj_w, NULL);
        sdc_tensor_get_f32(y, text_embeds);
    }
    sdc_tensor_free(x);
    sdc_tensor_free(y);
    return st;
}

/* r->pooled (and r->text_embeds) from the final hidden state x [B, T, C], normed through h. */
static sdc_status pool(sdc_clip *m, const int32_t *ids, int B, int T, sdc_tensor **a, const sdc_clip_request *r) {
    const int64_t C = m->cfg.hidden;
    float *row = malloc(sizeof(float) * (size_t)(B * T * C));
    float *pooled = r->pooled ? r->pooled : malloc(sizeof(float) * (size_t)(B * C));
    sdc_status st = row && pooled ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) {
        sdc_layer_norm(a[A_H], a[A_X], m->lnf_w, m->lnf_b, m->cfg.eps);
        sdc_tensor_get_f32(a[A_H], row);
        for (int b = 0; b < B; b++) {
            int p = eos_position(&m->cfg, ids + (size_t)b * T, T);
            memcpy(pooled + (size_t)b * C, row + ((size_t)b * T + p) * C, sizeof(float) * (size_t)C);
        }
        if (r->text_embeds) st = project(m, pooled, B, r->text_embeds);
    }
    free(row);
    if (pooled != r->pooled) free(pooled);
    return st;
}

sdc_status sdc_clip_encode(sdc_clip *m, const int32_t *ids, int B, int T, const sdc_clip_request *r,
                           sdc_clip_hidden_cb cb, void *cb_user) {
    const sdc_clip_config *cfg = &m->cfg;
    if (B < 1 || T < 1 || T > cfg->max_positions) {
        SDC_LOGE(&m->log, "clip_forward: %d sequences of %d tokens (at most %d positions)", B, T, cfg->max_positions);
        return SDC_ERR_INVALID_ARG;
    }
    for (int i = 0; i < B * T; i++) {
        if (ids[i] < 0 || ids[i] >= cfg->vocab) {
            SDC_LOGE(&m->log, "clip_forward: token id %d outside the vocabulary of %d", ids[i], cfg->vocab);
            return SDC_ERR_INVALID_ARG;
        }
    }
    if (r->text_embeds && !m->proj_w) {
        SDC_LOGE(&m->log, "clip_forward: text_embeds asked of an encoder without text_projection");
        return SDC_ERR_INVALID_ARG;
    }
    int n_layers = r->n_layers;
    if (n_layers <= 0 || n_layers > cfg->n_layers) n_layers = cfg->n_layers;
    /* the pooled output is the last layer's, whatever the layer `out` takes */
    const int run_layers = r->pooled || r->text_embeds ? cfg->n_layers : n_layers;
    const int64_t C = cfg->hidden, I = cfg->intermediate, BT = (int64_t)B * T;
    sdc_backend *be = m->be;
    const sdc_dtype adt = m->act_dtype;
    sdc_tensor *a[A_COUNT] = {0};
    const int64_t btc[3] = {B, T, C}, bti[3] = {B, T, I}, bt[1] = {BT};
    for (int i = A_X; i <= A_ATT; i++) a[i] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, adt, 3, btc);
    a[A_MLP] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, adt, 3, bti);
    a[A_IDS] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_I32, 1, bt);
    a[A_POS] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_I32, 1, bt);
    a[A_PE] = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, adt, 3, btc);
    int32_t *pos = malloc(sizeof(int32_t) * (size_t)BT);
    sdc_status st = SDC_OK;
    for (int i = 0; i < A_COUNT; i++)
        if (!a[i]) st = SDC_ERR_OOM;
    if (!pos) st = SDC_ERR_OOM;
    if (st == SDC_OK) {
        for (int64_t i = 0; i < BT; i++) pos[i] = (int32_t)(i % T);
        sdc_tensor_set_raw(a[A_IDS], ids);
        sdc_tensor_set_raw(a[A_POS], pos);
        sdc_embedding(a[A_X], m->tok_emb, a[A_IDS]);   // [B, T, C]
        sdc_embedding(a[A_PE], m->pos_emb, a[A_POS]);
        sdc_binary(a[A_X], a[A_X], a[A_PE], SDC_BINARY_ADD);
        if (cb) cb(0, a[A_X], cb_user);
        for (int l = 0; l < run_layers; l++) {
            layer_forward(m, &m->layers[l], a);
            if (cb) cb(l + 1, a[A_X], cb_user);
            if (l + 1 != n_layers || !r->out) continue;
            if (!r->final_norm) {   // SDXL: the hidden state itself
                sdc_copy(r->out, a[A_X]);
            } else if (r->out->dtype != adt) {   // into the caller's dtype through the free [B, T, C] of h
                sdc_layer_norm(a[A_H], a[A_X], m->lnf_w, m->lnf_b, cfg->eps);
                sdc_copy(r->out, a[A_H]);
            } else {
                sdc_layer_norm(r->out, a[A_X], m->lnf_w, m->lnf_b, cfg->eps);
            }
        }
        if (r->pooled || r->text_embeds) st = pool(m, ids, B, T, a, r);
    }
    if (st != SDC_OK) SDC_LOGE(&m->log, "clip_forward: out of %s memory for activations", sdc_backend_name(be));
    free(pos);
    for (int i = 0; i < A_COUNT; i++) sdc_tensor_free(a[i]);
    return st;
}

sdc_status sdc_clip_forward(sdc_clip *m, const int32_t *ids, int B, int T, int n_layers, sdc_tensor *out, float *pooled,
                            sdc_clip_hidden_cb cb, void *cb_user) {
    const sdc_clip_request r = {n_layers, 1, out, pooled, NULL};
    return sdc_clip_encode(m, ids, B, T, &r, cb, cb_user);
}
