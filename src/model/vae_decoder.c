/* vae_decoder.c - AutoencoderKL decoder: latents [B, L, h, w] -> image [B, 3, h*f, w*f].
 *
 *   post_quant_conv 1x1 -> conv_in 3x3 -> mid block
 *   -> up block i (channels block_out_channels reversed): layers_per_block + 1 resnets,
 *      then nearest 2x + conv 3x3 except after the last
 *   -> GroupNorm + SiLU -> conv_out 3x3 */
#include <stdio.h>
#include <stdlib.h>

#include "backend/ops.h"
#include "model/vae_internal.h"

/* Output channels of up block i: block_out_channels walked backwards. */
static int up_channels(const sdc_vae_config *cfg, int i) { return cfg->block_out_channels[cfg->n_blocks - 1 - i]; }

static void load_all(sdc_vae_decoder *d) {
    const sdc_vae_config *cfg = &d->cfg;
    sdc_weight_set *ws = &d->ws;
    const int L = cfg->latent_channels, top = up_channels(cfg, 0);
    char name[128];

    if (cfg->use_post_quant_conv) sdc_vae_conv_load(&d->post_quant_conv, ws, L, L, 1, "post_quant_conv");
    sdc_vae_conv_load(&d->conv_in, ws, top, L, 3, "decoder.conv_in");
    sdc_vae_mid_load(&d->mid, ws, "decoder.mid_block.", cfg, top);
    int prev = top;
    for (int i = 0; i < cfg->n_blocks; i++) {
        sdc_vae_block *b = &d->up[i];
        const int out = up_channels(cfg, i);
        b->n_res = cfg->layers_per_block + 1;
        for (int j = 0; j < b->n_res; j++) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.resnets.%d.", i, j);
            sdc_resnet_load(&b->res[j], ws, name, j == 0 ? prev : out, out, 0, cfg->norm_num_groups, cfg->norm_eps);
        }
        b->has_resample = i < cfg->n_blocks - 1;
        if (b->has_resample) {
            snprintf(name, sizeof name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            sdc_vae_conv_load(&b->resample, ws, out, out, 3, name);
        }
        prev = out;
    }
    const int64_t c0[1] = {cfg->block_out_channels[0]};
    d->norm_out_w = sdc_weights_get(ws, 1, c0, "decoder.conv_norm_out.weight");
    d->norm_out_b = sdc_weights_get(ws, 1, c0, "decoder.conv_norm_out.bias");
    sdc_vae_conv_load(&d->conv_out, ws, cfg->out_channels, cfg->block_out_channels[0], 3, "decoder.conv_out");
}

sdc_status sdc_vae_decoder_load(const sdc_vae_config *cfg, const sdc_weight_source *src, sdc_vae_decoder **out) {
    *out = NULL;
    sdc_vae_decoder *d = calloc(1, sizeof *d);
    if (!d) return SDC_ERR_OOM;
    d->cfg = *cfg;
    d->be = src->be;
    d->act_dtype = sdc_weight_source_act_dtype(src);
    if (src->log) d->log = *src->log;
    sdc_weight_source s = *src;
    s.log = &d->log;
    sdc_weights_begin(&d->ws, &s, NULL);
    load_all(d);
    sdc_status st = sdc_weights_end(&d->ws);
    if (st != SDC_OK) {
        SDC_LOGE(&d->log, "sdc_vae_decoder_load: %s", sdc_status_str(st));
        free(d);
        return st;
    }
    SDC_LOGI(&d->log, "sdc_vae_decoder_load: %d tensors, %.1f MB on %s", d->ws.n, (double)d->ws.bytes_resident / 1e6,
             sdc_backend_name(src->be));
    *out = d;
    return SDC_OK;
}

void sdc_vae_decoder_free(sdc_vae_decoder *dec) {
    if (!dec) return;
    sdc_weights_free(&dec->ws);
    free(dec);
}

size_t sdc_vae_decoder_weight_bytes(const sdc_vae_decoder *dec) { return (size_t)dec->ws.bytes_resident; }

sdc_dtype sdc_vae_decoder_act_dtype(const sdc_vae_decoder *dec) { return dec->act_dtype; }

static sdc_status check_shapes(const sdc_vae_decoder *d, const sdc_tensor *z, const sdc_tensor *image) {
    const sdc_vae_config *cfg = &d->cfg;
    const int64_t f = sdc_vae_downscale(cfg);
    char zs[64], is[64];
    if (z->backend != d->be || image->backend != d->be) {
        SDC_LOGE(&d->log, "sdc_vae_decode: tensors are not on the decoder's backend");
        return SDC_ERR_INVALID_ARG;
    }
    if (z->ndim != 4 || z->ne[1] != cfg->latent_channels || z->ne[0] < 1 || z->ne[2] < 1 || z->ne[3] < 1 ||
        image->ndim != 4 || image->ne[0] != z->ne[0] || image->ne[1] != cfg->out_channels ||
        image->ne[2] != z->ne[2] * f || image->ne[3] != z->ne[3] * f) {
        SDC_LOGE(&d->log, "sdc_vae_decode: z %s and image %s do not fit [B, %d, h, w] -> [B, %d, %lldh, %lldw]",
                 sdc_tensor_shape_str(z, zs, sizeof zs), sdc_tensor_shape_str(image, is, sizeof is),
                 cfg->latent_channels, cfg->out_channels, (long long)f, (long long)f);
        return SDC_ERR_INVALID_ARG;
    }
    return SDC_OK;
}

/* Runs conv_in through the last up block on x (consumed); returns the last up block's output. */
static sdc_tensor *body(const sdc_vae_decoder *d, sdc_tensor *x, sdc_vae_block_cb cb, void *user) {
    sdc_tensor *t = sdc_vae_conv_forward(&d->conv_in, x, 1, 1);   // [B, C, h, w]
    sdc_tensor_free(x);
    if (!(x = t)) return NULL;
    if (cb) cb("decoder.conv_in", x, user);

    if (!(x = sdc_vae_mid_step(&d->mid, x))) return NULL;
    if (cb) cb("decoder.mid_block", x, user);

    for (int i = 0; i < d->cfg.n_blocks; i++) {
        const sdc_vae_block *b = &d->up[i];
        for (int j = 0; j < b->n_res; j++)
            if (!(x = sdc_vae_resnet_step(&b->res[j], x))) return NULL;
        if (b->has_resample) {
            // nearest 2x, conv 3x3  [B, C, 2H, 2W]
            const int64_t ne[4] = {x->ne[0], x->ne[1], 2 * x->ne[2], 2 * x->ne[3]};
            sdc_tensor *u = sdc_act_like(x, 4, ne);
            if (u) sdc_upsample2x(u, x);
            sdc_tensor_free(x);
            if (!u) return NULL;
            x = sdc_vae_conv_forward(&b->resample, u, 1, 1);
            sdc_tensor_free(u);
            if (!x) return NULL;
        }
        if (cb) {
            char name[48];
            snprintf(name, sizeof name, "decoder.up_blocks.%d", i);
            cb(name, x, user);
        }
    }
    return x;
}

sdc_status sdc_vae_decode(sdc_vae_decoder *dec, const sdc_tensor *z, sdc_tensor *image, sdc_vae_block_cb block_cb,
                          void *user) {
    sdc_status st = check_shapes(dec, z, image);
    if (st != SDC_OK) return st;
    const sdc_dtype adt = dec->act_dtype;
    sdc_tensor *x = NULL, *t = NULL;

    // the latents in the activation dtype, through post_quant_conv  [B, L, h, w]
    const sdc_tensor *in = z;
    if (z->dtype != adt) {
        if (!(x = sdc_act_new(dec->be, adt, 4, z->ne))) goto oom;
        sdc_copy(x, z);
        in = x;
    }
    if (dec->cfg.use_post_quant_conv) {
        t = sdc_vae_conv_forward(&dec->post_quant_conv, in, 1, 0);
        sdc_tensor_free(x);
        if (!(x = t)) goto oom;
    }
    if (!x) {   // body consumes its input: give it a copy of the caller's z
        if (!(x = sdc_act_new(dec->be, adt, 4, z->ne))) goto oom;
        sdc_copy(x, z);
    }
    if (!(x = body(dec, x, block_cb, user))) goto oom;

    // GroupNorm + SiLU, conv_out  [B, out_channels, H, W]
    if (!(t = sdc_act_like(x, 4, x->ne))) goto oom;
    sdc_group_norm(t, x, dec->norm_out_w, dec->norm_out_b, dec->cfg.norm_num_groups, dec->cfg.norm_eps, 1);
    sdc_tensor_free(x);
    x = t;
    if (image->dtype == adt) {
        sdc_conv2d(image, x, dec->conv_out.w, dec->conv_out.b, 1, 1);
    } else {
        if (!(t = sdc_vae_conv_forward(&dec->conv_out, x, 1, 1))) goto oom;
        sdc_copy(image, t);
        sdc_tensor_free(t);
    }
    sdc_tensor_free(x);
    if (block_cb) block_cb("decoder.conv_out", image, user);
    return SDC_OK;

oom:
    sdc_tensor_free(x);
    SDC_LOGE(&dec->log, "sdc_vae_decode: out of memory for activations");
    return SDC_ERR_OOM;
}
