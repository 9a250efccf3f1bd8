/* clip.h - the CLIP text encoder (transformers CLIPTextModel), as Stable Diffusion uses it.
 *
 *   ids [B, T] -> token + position embeddings -> L pre-norm transformer layers (causal self-attention,
 *   MLP with quick_gelu or gelu) -> final layer norm -> last_hidden_state [B, T, C]
 *   pooler_output [B, C] = last_hidden_state at each sequence's EOS position;
 *   text_embeds [B, P] = pooler_output . text_projection^T (CLIPTextModelWithProjection, SDXL's second).
 *
 * hidden_states[0] is the embedding output, hidden_states[i] layer i's output (before the final norm).
 * "Clip skip" runs fewer layers and applies the final norm to that output, as diffusers does. */
#ifndef SDC_MODEL_CLIP_H
#define SDC_MODEL_CLIP_H

#include <cjson/cJSON.h>

#include "backend/backend.h"
#include "io/model_index.h"
#include "model/weights.h"

typedef struct sdc_clip_config {
    int hidden;       /* C */
    int intermediate; /* MLP width */
    int n_layers;
    int n_heads;
    int max_positions; /* 77 */
    int vocab;
    int eos_token_id; /* pooling position: first EOS (or argmax of ids when this is 2, as transformers) */
    float eps;
    sdc_unary_op act;   /* quick_gelu or gelu */
    int projection_dim; /* CLIPTextModelWithProjection: text_embeds width P; 0: no projection */
} sdc_clip_config;

sdc_status sdc_clip_config_parse(const cJSON *cfg, const sdc_logger *log, sdc_clip_config *out);

typedef struct sdc_clip sdc_clip;

/* Loads src->prefix + "text_model.*" (+ "text_projection.weight" with a projection; prefix "text_encoder." in a diffusers model) into src->be, in src's
 * precision. cfg is copied; the index must stay open only during the call. On error nothing stays
 * allocated and *out is NULL (SDC_ERR_NOT_FOUND / SDC_ERR_FORMAT / SDC_ERR_OOM / SDC_ERR_IO, logged). */
sdc_status sdc_clip_load(const sdc_clip_config *cfg, const sdc_weight_source *src, sdc_clip **out);
void sdc_clip_free(sdc_clip *m);
const sdc_clip_config *sdc_clip_get_config(const sdc_clip *m);
const sdc_weight_set *sdc_clip_weights(const sdc_clip *m);
/* The dtype the encoder computes in, chosen at load time. */
sdc_dtype sdc_clip_act_dtype(const sdc_clip *m);

/* Called with hidden_states[i] ([B, T, C], valid only during the call) for i = 0..layers run. */
typedef void (*sdc_clip_hidden_cb)(int i, const sdc_tensor *h, void *user);

/* What one encoding computes. */
typedef struct sdc_clip_request {
    int n_layers;       /* the hidden state `out` takes: after this many layers (<= 0 or > L: all) */
    int final_norm;     /* 1: out = final_layer_norm(that state) (SD 1.x, clip skip as diffusers);
                          0: the state itself (SDXL's penultimate hidden_states[-2]) */
    sdc_tensor *out;    /* [B, T, C] on the model's backend (converted when not in sdc_clip_act_dtype), or NULL */
    float *pooled;      /* host [B, C] or NULL: pooler_output, the last layer's normed state at each EOS
                          (always all L layers, whatever n_layers) */
    float *text_embeds; /* host [B, projection_dim] or NULL: text_projection(pooled); the encoder must have
                           a projection (SDC_ERR_INVALID_ARG otherwise) */
} sdc_clip_request;

/* Encodes B sequences of T ids (host, [B, T]; every id < vocab, T <= max_positions, else
 * SDC_ERR_INVALID_ARG) as r asks. SDC_ERR_OOM when an activation cannot be allocated. */
sdc_status sdc_clip_encode(sdc_clip *m, const int32_t *ids, int B, int T, const sdc_clip_request *r,
                           sdc_clip_hidden_cb cb, void *cb_user);

/* sdc_clip_encode with final_norm = 1 and no text_embeds. Encodes B sequences of T ids (host, [B, T]; every id < vocab, T <= max_positions, else
 * SDC_ERR_INVALID_ARG). Runs the first n_layers layers (<= 0 or > L: all), applies the final norm and
 * writes out [B, T, C] (preallocated on the model's backend; converted when out is not in
 * sdc_clip_act_dtype). pooled (host [B, C], from all layers) may be NULL.
 * Returns SDC_ERR_OOM when an activation cannot be allocated. */
sdc_status sdc_clip_forward(sdc_clip *m, const int32_t *ids, int B, int T, int n_layers, sdc_tensor *out, float *pooled,
                            sdc_clip_hidden_cb cb, void *cb_user);

#endif
