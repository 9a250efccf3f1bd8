/* t5.h - the T5 text encoder (transformers T5EncoderModel, v1.1: gated-GELU, no biases), Flux's
 * text_encoder_2.
 *
 *   ids [B, T] -> shared embedding -> L layers of
 *       x += o(attention_bias(q, k, v, bias, scale 1)(rms_norm(x)))   (no 1/sqrt(d): T5's q is pre-scaled)
 *       x += wo(gelu_tanh(wi_0 h) * wi_1 h),  h = rms_norm(x)
 *   -> final rms_norm -> last_hidden_state [B, T, d_model]
 * bias [H, T, T] = layer 0's relative_attention_bias (a [buckets, H] table) at the bidirectional bucket
 * of (key - query), shared by every layer. No attention mask: FluxPipeline calls the encoder without
 * one, so pad tokens are attended to (diffusers pipeline_flux.py, _get_t5_prompt_embeds).
 *
 * Precision: never f16: fp16 activations overflow in T5's feed-forward (transformers clamps them for
 * that reason). A source at SDC_PREC_BF16 or _BF16_ALL computes (and keeps its weights) in bf16 where the
 * backend has it (CUDA: f32's range, as diffusers runs Flux's T5), any other precision in f32. */
#ifndef SDC_MODEL_T5_H
#define SDC_MODEL_T5_H

#include <cjson/cJSON.h>

#include "backend/backend.h"
#include "model/stream.h"
#include "model/weights.h"

/* The longest sequence a forward takes (diffusers' max_sequence_length is at most 512). */
#define SDC_T5_MAX_TOKENS 1024

typedef struct sdc_t5_config {
    int d_model; /* C */
    int d_kv;    /* head width D; the attention is H * D wide */
    int d_ff;    /* feed-forward width F */
    int n_layers;
    int n_heads; /* H */
    int vocab;
    int num_buckets;  /* relative_attention_num_buckets: 32 */
    int max_distance; /* relative_attention_max_distance: 128 */
    float eps;        /* layer_norm_epsilon */
    sdc_unary_op act; /* of the gated feed-forward: gelu_new (gated-gelu) or silu (gated-silu) */
} sdc_t5_config;

/* text_encoder_2/config.json; bounded (sdc_cfg_bound); feed_forward_proj must be gated-gelu or
 * gated-silu (SDC_ERR_UNSUPPORTED otherwise). */
sdc_status sdc_t5_config_parse(const cJSON *cfg, const sdc_logger *log, sdc_t5_config *out);

/* The bidirectional relative-position bucket of rel = key - query (transformers' T5Attention
 * _relative_position_bucket): half the buckets for rel > 0; of each half, |rel| < nb/4 exact, larger
 * distances logarithmic up to max_distance (computed in f32, as torch does), the last bucket beyond. */
int sdc_t5_bucket(int rel, int num_buckets, int max_distance);

typedef struct sdc_t5 sdc_t5;

/* Loads src->prefix + "shared.weight" (or "encoder.embed_tokens.weight") and "encoder.*" into src->be
 * in f32, or bf16 when src->prec asks for it and the backend has it (see above). cfg is copied. On error nothing stays allocated and *out
 * is NULL (SDC_ERR_NOT_FOUND / SDC_ERR_FORMAT / SDC_ERR_OOM / SDC_ERR_IO, logged). */
sdc_status sdc_t5_load(const sdc_t5_config *cfg, const sdc_weight_source *src, sdc_t5 **out);
void sdc_t5_free(sdc_t5 *m); /* NULL is harmless */
const sdc_t5_config *sdc_t5_get_config(const sdc_t5 *m);
const sdc_weight_set *sdc_t5_weights(const sdc_t5 *m);
/* The layers' stream when loaded with src->window > 0 (model/stream.h: each layer a unit), else NULL. */
sdc_weight_stream *sdc_t5_weight_stream(sdc_t5 *m);
/* The dtype the encoder computes in: F32. */
sdc_dtype sdc_t5_act_dtype(const sdc_t5 *m);

/* Encodes B sequences of T ids (host, [B, T]) into out [B, T, d_model] on the model's backend (converted
 * when out is not F32). Every id < vocab and 1 <= T <= SDC_T5_MAX_TOKENS, else SDC_ERR_INVALID_ARG;
 * SDC_ERR_OOM when an activation cannot be allocated. */
sdc_status sdc_t5_forward(sdc_t5 *m, const int32_t *ids, int B, int T, sdc_tensor *out);

#endif
