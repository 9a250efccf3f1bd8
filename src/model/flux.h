/* flux.h - the Flux denoiser (diffusers FluxTransformer2DModel), built from transformer/config.json.
 *
 * Reference path (x [B, N, in] packed latent tokens, context [B, T, joint], pooled [B, P], sigma [B]
 * (+ guidance [B]) -> out [B, N, out]); C = heads x head_dim, LN = LayerNorm without affine, eps 1e-6:
 *   temb  = timestep_embedder(sinusoidal_256(1000 sigma))      linear_1 -> SiLU -> linear_2
 *         (+ guidance_embedder(sinusoidal_256(1000 guidance)))  dev models (guidance_embeds)
 *         + text_embedder(pooled)                               linear_1 -> SiLU -> linear_2      [B, C]
 *   img   = x_embedder(x) [B, N, C];   txt = context_embedder(context) [B, T, C]
 *   RoPE  tables of the joint sequence ids = (txt_ids; img_ids) [T + N, axes]: for axis a of width d_a,
 *         frequencies theta^(-2j / d_a), j < d_a / 2, times the id, in float64, stored as f32 cos/sin
 *         [T + N, head_dim / 2] (each value serves one interleaved pair of a head's channels)
 *   double blocks (transformer_blocks.i), each stream s in (img, txt) with its own weights:
 *         (shift, scale, gate) x (msa, mlp) = norm1[_context].linear(SiLU(temb)) in 6 chunks of C
 *         n_s = LN(s) (1 + scale_msa) + shift_msa;  q, k, v = to_{q,k,v} / add_{q,k,v}_proj (n_s),
 *         q, k RMS-normed per head (norm_q / norm_k / norm_added_q / norm_added_k, eps 1e-6)
 *         joint attention over (txt; img) with RoPE on q and k; outputs split back; to_out.0 / to_add_out
 *         s += gate_msa o_s;  s += gate_mlp ff(LN(s) (1 + scale_mlp) + shift_mlp)
 *         ff / ff_context: net.0.proj -> tanh-GELU -> net.2 (4C wide)
 *   single blocks (single_transformer_blocks.i) on h = (txt; img) [B, T + N, C]:
 *         (shift, scale, gate) = norm.linear(SiLU(temb));  n = LN(h) (1 + scale) + shift
 *         attention of n (to_q/k/v, norm_q/k, RoPE) ‖ tanh-GELU(proj_mlp(n)) -> proj_out (5C -> C)
 *         h += gate proj_out(...)
 *   out   = proj_out(LN(img) (1 + scale) + shift),  (scale, shift) = norm_out.linear(SiLU(temb))
 *
 * Weights by canonical diffusers name under the source's prefix ("transformer."); the BFL single-file
 * names are mapped to them when the file is indexed (io/bfl_names.h).
 *
 * Threading: a model is used with its backend from one thread at a time. */
#ifndef SDC_MODEL_FLUX_H
#define SDC_MODEL_FLUX_H

#include <cjson/cJSON.h>

#include "backend/backend.h"
#include "model/stream.h"
#include "model/weights.h"

#define SDC_FLUX_MAX_AXES 4
#define SDC_FLUX_TIME_DIM 256 /* the sinusoidal embedding of timestep and guidance */
#define SDC_FLUX_MLP_RATIO 4

typedef struct sdc_flux_config {
    int in_channels;                  /* 64: 16 latent channels x 2 x 2 */
    int out_channels;                 /* = in_channels unless configured */
    int n_layers;                     /* num_layers: double-stream blocks (19) */
    int n_single_layers;              /* num_single_layers (38) */
    int n_heads;                      /* num_attention_heads (24) */
    int head_dim;                     /* attention_head_dim (128) */
    int joint_dim;                    /* joint_attention_dim: context width (4096) */
    int pooled_dim;                   /* pooled_projection_dim (768) */
    int guidance_embeds;              /* 1: dev (guidance distilled) */
    int n_axes;                       /* RoPE axes (3) */
    int axes_dims[SDC_FLUX_MAX_AXES]; /* (16, 56, 56): even, sum = head_dim */
    double theta;                     /* RoPE base, 10000 */
} sdc_flux_config;

/* Reads a FluxTransformer2DModel config.json; absent keys take diffusers' defaults. What sdc does not
 * implement (patch_size other than 1, another class) is SDC_ERR_UNSUPPORTED; wrong types, numbers outside
 * their bounds (io/config.h) or inconsistent ones (axes not summing to the head width) SDC_ERR_FORMAT or
 * SDC_ERR_UNSUPPORTED, logged. */
sdc_status sdc_flux_config_parse(const cJSON *json, const sdc_logger *log, sdc_flux_config *cfg);

typedef struct sdc_flux sdc_flux;

/* Loads every tensor the config implies from src (src->prefix + "x_embedder.weight", ...) into src->be
 * in src's precision, checking each shape. cfg is copied. On error nothing stays allocated and *out is
 * NULL (SDC_ERR_NOT_FOUND / SDC_ERR_FORMAT / SDC_ERR_OOM / SDC_ERR_IO). */
sdc_status sdc_flux_load(const sdc_flux_config *cfg, const sdc_weight_source *src, sdc_flux **out);
void sdc_flux_free(sdc_flux *m); /* NULL is harmless */
const sdc_flux_config *sdc_flux_get_config(const sdc_flux *m);
size_t sdc_flux_weight_bytes(const sdc_flux *m);
sdc_dtype sdc_flux_act_dtype(const sdc_flux *m);
sdc_backend *sdc_flux_backend(const sdc_flux *m);
/* Loaded with src->window > 0: its block stream (model/stream.h; units: the double blocks, then the
 * single blocks), else NULL. */
sdc_weight_stream *sdc_flux_weight_stream(sdc_flux *m);

/* Called after each top-level module with its output, named as in diffusers: "time_text_embed" [B, C],
 * "x_embedder" [B, N, C], "context_embedder" [B, T, C], "transformer_blocks.<i>.0" (text stream
 * [B, T, C]) and ".1" (image stream [B, N, C]), likewise "single_transformer_blocks.<i>.0" / ".1",
 * "norm_out" [B, N, C], "proj_out" [B, N, out]. t is valid only during the call. */
typedef void (*sdc_flux_block_cb)(const char *name, const sdc_tensor *t, void *user);

/* What one forward pass is given besides x. Host arrays are read during the call only. */
typedef struct sdc_flux_cond {
    const sdc_tensor *context; /* [B, T, joint_dim] on the model's backend */
    const float *pooled;       /* host [B, pooled_dim] */
    const float *timestep;     /* host [B]: sigma in [0, 1] (scaled by 1000 inside, as diffusers does) */
    const float *guidance;     /* host [B] (guidance scale, e.g. 3.5) for guidance_embeds models, else NULL */
    const float *img_ids;      /* host [N, n_axes] */
    const float *txt_ids;      /* host [T, n_axes] */
} sdc_flux_cond;

/* x [B, N, in_channels] -> out [B, N, out_channels], preallocated by the caller; tensors on the model's
 * backend, converted when not in sdc_flux_act_dtype. cb may be NULL. SDC_ERR_INVALID_ARG for wrong
 * shapes or a guidance that does not fit the model (logged); SDC_ERR_OOM when an intermediate cannot
 * be allocated (everything allocated here is freed again, but for the inputs sdc_flux_keep_inputs keeps);
 * the backend's status otherwise. */
sdc_status sdc_flux_forward(sdc_flux *m, const sdc_tensor *x, const sdc_flux_cond *cond, sdc_tensor *out,
                            sdc_flux_block_cb cb, void *cb_user);

/* From now on the forward keeps the inputs it uploads (timestep, guidance and pooled embeddings, the RoPE
 * tables, made again only when the ids change) between calls, until sdc_flux_release_inputs drops them:
 * a denoise calls it first and releases at its end, so nothing stays on the device between phases. */
void sdc_flux_keep_inputs(sdc_flux *m);
void sdc_flux_release_inputs(sdc_flux *m);

/* The RoPE tables of n positions: for position p, axis a (width d_a, offset o_a = d_0 + ... + d_{a-1})
 * and j < d_a / 2, angle = ids[p, a] * theta^(-2j / d_a) in float64; cos_out / sin_out [n, head_dim / 2]
 * at column o_a / 2 + j get cos / sin(angle) rounded to f32 (diffusers' FluxPosEmbed, whose tables repeat
 * each value for the two channels of a pair). Integral positions are computed once per axis and copied.
 * 0 when out of memory. */
int sdc_flux_rope_tables(const sdc_flux_config *cfg, const float *ids, int64_t n, float *cos_out, float *sin_out);

#endif
