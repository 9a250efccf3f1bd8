/* vae.h - the Stable Diffusion VAE (diffusers AutoencoderKL): an encoder from images to the latent
 * posterior and a decoder from latents to images, built from vae/config.json.
 *
 * Reference path, decoder (z [B, L, h, w] -> image [B, 3, 8h, 8w] for 4 blocks):
 *   post_quant_conv 1x1 -> conv_in 3x3 -> mid block (resnet, attention, resnet)
 *   -> up blocks (reversed channels, layers_per_block + 1 resnets, nearest 2x + conv 3x3 but the last)
 *   -> GroupNorm + SiLU -> conv_out 3x3
 * Encoder (image [B, 3, H, W] -> mean, logvar [B, L, H/8, W/8]):
 *   conv_in -> down blocks (layers_per_block resnets, pad (0,1,0,1) + conv 3x3 stride 2 but the last)
 *   -> mid block -> GroupNorm + SiLU -> conv_out to 2L -> quant_conv 1x1 -> moments,
 *   mean = moments[:, :L], logvar = clamp(moments[:, L:], -30, 20).
 *
 * The encoder and the decoder load and free independently (a residency planner keeps only the one it
 * needs). Both read weights by canonical diffusers names under a prefix ("vae.") from a model index.
 * No scaling happens here: the caller divides latents by scaling_factor (and adds shift_factor when
 * the config has one) before decoding, and maps the raw image to [0, 1] after.
 *
 * Threading: an encoder or decoder is used with its backend from one thread at a time. */
#ifndef SDC_MODEL_VAE_H
#define SDC_MODEL_VAE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "backend/backend.h"
#include "io/model_index.h"
#include "model/weights.h"

#define SDC_VAE_MAX_BLOCKS 8
#define SDC_VAE_MAX_LAYERS 8 /* resnets per block: layers_per_block + 1 at most this */

typedef struct sdc_vae_config {
    int in_channels;                            /* image channels the encoder takes (3) */
    int out_channels;                           /* image channels the decoder makes (3) */
    int latent_channels;                        /* L (4) */
    int n_blocks;                               /* down blocks = up blocks */
    int block_out_channels[SDC_VAE_MAX_BLOCKS]; /* per down block; the decoder walks them reversed */
    int layers_per_block;                       /* resnets per down block (up blocks have one more) */
    int norm_num_groups;
    float norm_eps;       /* 1e-6, fixed by diffusers */
    float scaling_factor; /* latents = posterior sample * scaling_factor */
    float shift_factor;   /* 0 when the config has null */
    int has_shift_factor;
    int use_quant_conv;
    int use_post_quant_conv;
    int mid_block_add_attention;
    int force_upcast; /* the model overflows in fp16: run it in f32 */
    int sample_size;  /* nominal image size, informational */
} sdc_vae_config;

/* Reads an AutoencoderKL config.json; absent keys take diffusers' defaults. Architecture options
 * sdc does not implement (another class, block type or activation, latents_mean/latents_std, more
 * than SDC_VAE_MAX_BLOCKS blocks or SDC_VAE_MAX_LAYERS - 1 layers per block, channels the groups do
 * not divide) are SDC_ERR_UNSUPPORTED; wrong types or nonsensical values SDC_ERR_FORMAT. The reason
 * is logged. */
sdc_status sdc_vae_config_parse(const cJSON *json, const sdc_logger *log, sdc_vae_config *cfg);

/* Spatial downscale factor between image and latent: 2^(n_blocks - 1) (8). */
int sdc_vae_downscale(const sdc_vae_config *cfg);

/* Called after each top-level decoder block with its output; name as in diffusers
 * ("decoder.conv_in", "decoder.mid_block", "decoder.up_blocks.<i>", "decoder.conv_out").
 * t is valid only during the call. */
typedef void (*sdc_vae_block_cb)(const char *name, const sdc_tensor *t, void *user);

typedef struct sdc_vae_encoder sdc_vae_encoder;
typedef struct sdc_vae_decoder sdc_vae_decoder;

/* Loads src->prefix + "encoder.*" (and + "quant_conv.*"; prefix "vae." in a diffusers model) into
 * src->be, in src's precision. cfg is copied; the index must stay open only during the call. On error
 * nothing stays allocated and *out is NULL. */
sdc_status sdc_vae_encoder_load(const sdc_vae_config *cfg, const sdc_weight_source *src, sdc_vae_encoder **out);
void sdc_vae_encoder_free(sdc_vae_encoder *enc); /* NULL is harmless */
/* Backend bytes the encoder's weights take. */
size_t sdc_vae_encoder_weight_bytes(const sdc_vae_encoder *enc);

/* Loads src->prefix + "decoder.*" (and + "post_quant_conv.*"). Same rules as the encoder. */
sdc_status sdc_vae_decoder_load(const sdc_vae_config *cfg, const sdc_weight_source *src, sdc_vae_decoder **out);
void sdc_vae_decoder_free(sdc_vae_decoder *dec); /* NULL is harmless */
size_t sdc_vae_decoder_weight_bytes(const sdc_vae_decoder *dec);
/* The dtype each computes in, chosen at load time: inputs in it need no conversion, outputs in it no
 * conversion copy (inputs and outputs in another dtype are converted). */
sdc_dtype sdc_vae_encoder_act_dtype(const sdc_vae_encoder *enc);
sdc_dtype sdc_vae_decoder_act_dtype(const sdc_vae_decoder *dec);

/* image [B, in_channels, H, W] -> mean, logvar [B, L, h, w] (h, w from sdc_vae_encode_latent_size;
 * H/8, W/8 for sizes divisible by 8). All three tensors belong to the caller and live on the
 * encoder's backend. Intermediates are activations, freed as soon as they are dead.
 * SDC_ERR_INVALID_ARG for wrong shapes, SDC_ERR_OOM when an intermediate cannot be allocated
 * (everything allocated is freed). */
sdc_status sdc_vae_encode(sdc_vae_encoder *enc, const sdc_tensor *image, sdc_tensor *mean, sdc_tensor *logvar);
/* Latent size for an H x W image: each downsample (zero pad right/bottom by 1, 3x3 conv, stride 2)
 * maps n >= 2 to (n - 2) / 2 + 1, so n / 2 for even n. A size that shrinks below 2 before a
 * downsample gives 0 (the image is too small). */
void sdc_vae_encode_latent_size(const sdc_vae_config *cfg, int64_t H, int64_t W, int64_t *h, int64_t *w);

/* z [B, L, h, w] (unscaled: already divided by scaling_factor) -> image [B, out_channels, h*f, w*f]
 * with f = sdc_vae_downscale(), the raw decoder output (no clamp). Both tensors belong to the
 * caller. block_cb may be NULL. Errors as for sdc_vae_encode. */
sdc_status sdc_vae_decode(sdc_vae_decoder *dec, const sdc_tensor *z, sdc_tensor *image, sdc_vae_block_cb block_cb,
                          void *user);

/* sdc_vae_decode in tiles, with backend memory bounded by the tile instead of the image: z [B, L, h, w]
 * on the decoder's backend (any compute dtype) -> image, a host buffer of B * out_channels * h*f * w*f
 * floats ([B, out_channels, H, W], the raw decoder output, as sdc_vae_decode gives it, in f32).
 * Every full intermediate activation lives in host memory, in the decoder's compute dtype (about two of
 * the largest at once: a resnet's input and hidden activation); the backend holds at a time one tile of
 * tile_latent x tile_latent latent pixels (tile_latent * 2^k after k upsamples) with a 1-pixel halo and
 * the tile after it being uploaded, or the mid-block attention at latent resolution (untiled). Each conv
 * moves its input up once and its output down once: group norm + SiLU run on the input tile with the
 * whole image's statistics, gathered as per-tile sums while the previous conv's tiles were on the backend.
 * tile_latent 0: 32. Not an approximation: exact halos, the untiled op sequence per element and group
 * norm statistics of the whole image, so one tile matches sdc_vae_decode bit for bit on the CPU; with
 * several, results differ where the GEMM library rounds a dot product of the same length differently for
 * a narrower matrix (OpenBLAS's small and edge kernels, cuBLAS's kernel choice) and where the statistics
 * from sums round a mean or rstd to a neighbouring float: on the tiny reference VAE in f32,
 * ||tiled - untiled|| / ||untiled|| ~1.5e-6, max |diff| < 1e-5 (tests/test_vae_tiling.c).
 * SDC_ERR_INVALID_ARG for a wrong z or a negative tile, SDC_ERR_OOM when a host buffer or a tile
 * cannot be had (nothing stays allocated), or the backend's sticky error. */
sdc_status sdc_vae_decode_tiled(sdc_vae_decoder *dec, const sdc_tensor *z, float *image, int tile_latent);

#endif
