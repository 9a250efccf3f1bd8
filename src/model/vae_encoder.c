/* vae_encoder.c - AutoencoderKL encoder: image [B, 3, H, W] -> posterior mean, logvar [B, L, h, w].
 *
 *   conv_in 3x3 -> down block i: layers_per_block resnets, then (except the last) zero pad right and
 *   bottom by one + conv 3x3 stride 2 -> mid block -> GroupNorm + SiLU -> conv_out 3x3 to 2L
 *   -> quant_conv 1x1 -> moments; mean = moments[:, :L], logvar = clamp(moments[:, L:], -30, 20) */
#include <stdio.h>
#include <stdlib.h>

#include "backend/ops.h"
#include "model/vae_internal.h"

static void load_all(sdc_vae_encoder *e) {
    const sdc_vae_config *cfg = &e->cfg;
    sdc_weight_set *ws = &e->ws;
    const int n = cfg->n_blocks, L2 = 2 * cfg->latent_channels, top = cfg->block_out_channels[n - 1];
    char name[128];

    sdc_vae_conv_load(&e->conv_in, ws, cfg->block_out_channels[0], cfg->in_channels, 3, "encoder.conv_in");
    int prev = cfg->block_out_channels[0];
    for (int i = 0; i < n; i++) {
        sdc_vae_block *b = &e->down[i];
        const int out = cfg->block_out_channels[i];
        b->n_res = cfg->layers_per_block;
        for (int j = 0; j < b->n_res; j++) {
            snprintf(name, sizeof name, "encoder.down_blocks.%d.resnets.%d.", i, j);
            sdc_resnet_load(&b->res[j], ws, name, j == 0 ? prev : out, out, 0, cfg->norm_num_groups, cfg->norm_eps);
        }
        b->has_resample = i < n - 1;
        if (b->has_resample) {
            snprintf(name, sizeof name, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            sdc_vae_conv_load(&b->resample, ws, out, out, 3, name);
        }
        prev = out;
    }
    sdc_vae_mid_load(&e->mid, ws, "encoder.mid_block.", cfg, top);
    const int64_t ct[1] = {top};
    e->norm_out_w = sdc_weights_get(ws, 1, ct, "encoder.conv_norm_out.weight");
    e->norm_out_b = sdc_weights_get(ws, 1, ct, "encoder.conv_norm_out.bias");
    sdc_vae_conv_load(&e->conv_out, ws, L2, top, 3, "encoder.conv_out");
    if (cfg->use_quant_conv) sdc_vae_conv_load(&e->quant_conv, ws, L2, L2, 1, "quant_conv");
}

sdc_status sdc_vae_encoder_load(const sdc_vae_config *cfg, const sdc_weight_source *src, sdc_vae_encoder **out) {
    *out = NULL;
    sdc_vae_encoder *e = calloc(1, sizeof *e);
    if (!e) return SDC_ERR_OOM;
    e->cfg = *cfg;
    e->be = src->be;
    e->act_dtype = sdc_weight_source_act_dtype(src);
    if (src->log) e->log = *src->log;
    sdc_weight_source s = *src;
    s.log = &e->log;
    sdc_weights_begin(&e->ws, &s, NULL);
    load_all(e);
    sdc_status st = sdc_weights_end(&e->ws);
    if (st != SDC_OK) {
        SDC_LOGE(&e->log, "sdc_vae_encoder_load: %s", sdc_status_str(st));
        free(e);
        return st;
    }
    SDC_LOGI(&e->log, "sdc_vae_encoder_load: %d tensors, %.1f MB on %s", e->ws.n, (double)e->ws.bytes_resident / 1e6,
             sdc_backend_name(src->be));
    *out = e;
    return SDC_OK;
}

void sdc_vae_encoder_free(sdc_vae_encoder *enc) {
    if (!enc) return;
    sdc_weights_free(&enc->ws);
    free(enc);
}

size_t sdc_vae_encoder_weight_bytes(const sdc_vae_encoder *enc) { return (size_t)enc->ws.bytes_resident; }

sdc_dtype sdc_vae_encoder_act_dtype(const sdc_vae_encoder *enc) { return enc->act_dtype; }

/* The (0, 1, 0, 1)-padded 3x3 stride-2 conv: n -> (n + 1 - 3) / 2 + 1, defined for n >= 2. */
static int64_t down_size(int64_t n) { return n >= 2 ? (n - 2) / 2 + 1 : 0; }

void sdc_vae_encode_latent_size(const sdc_vae_config *cfg, int64_t H, int64_t W, int64_t *h, int64_t *w) {
    for (int i = 0; i < cfg->n_blocks - 1; i++) {
        H = down_size(H);
        W = down_size(W);
    }
    *h = H;
    *w = W;
}

static sdc_status check_shapes(const sdc_vae_encoder *e, const sdc_tensor *image, const sdc_tensor *mean,
                               const sdc_tensor *logvar) {
    const sdc_vae_config *cfg = &e->cfg;
    char is[64], ms[64], ls[64];
    if (image->backend != e->be || mean->backend != e->be || logvar->backend != e->be) {
        SDC_LOGE(&e->log, "sdc_vae_encode: tensors are not on the encoder's backend");
        return SDC_ERR_INVALID_ARG;
    }
    int64_t h = 0, w = 0;
    if (image->ndim == 4) sdc_vae_encode_latent_size(cfg, image->ne[2], image->ne[3], &h, &w);
    const int64_t want[4] = {image->ne[0], cfg->latent_channels, h, w};
    int ok = image->ndim == 4 && image->ne[0] >= 1 && image->ne[1] == cfg->in_channels && h >= 1 && w >= 1 &&
        mean->ndim == 4 && logvar->ndim == 4;
    for (int i = 0; ok && i < 4; i++) ok = mean->ne[i] == want[i] && logvar->ne[i] == want[i];
    if (!ok) {
        SDC_LOGE(&e->log,
                 "sdc_vae_encode: image %s, mean %s, logvar %s do not fit [B, %d, H, W] -> "
                 "[B, %d, h, w] (h, w = %lld, %lld)",
                 sdc_tensor_shape_str(image, is, sizeof is), sdc_tensor_shape_str(mean, ms, sizeof ms),
                 sdc_tensor_shape_str(logvar, ls, sizeof ls), cfg->in_channels, cfg->latent_channels, (long long)h,
                 (long long)w);
        return SDC_ERR_INVALID_ARG;
    }
    return SDC_OK;
}

/* Runs conv_in through conv_out; returns [B, 2L, h, w]. Does not consume image. */
static sdc_tensor *body(const sdc_vae_encoder *e, const sdc_tensor *image) {
    const sdc_vae_config *cfg = &e->cfg;
    sdc_tensor *x = sdc_vae_conv_forward(&e->conv_in, image, 1, 1);   // [B, C0, H, W]
    if (!x) return NULL;
    for (int i = 0; i < cfg->n_blocks; i++) {
        const sdc_vae_block *b = &e->down[i];
        for (int j = 0; j < b->n_res; j++)
            if (!(x = sdc_vae_resnet_step(&b->res[j], x))) return NULL;
        if (b->has_resample) {
            // pad right and bottom by one, conv 3x3 stride 2  [B, C, H/2, W/2]
            const int64_t ne[4] = {x->ne[0], x->ne[1], x->ne[2] + 1, x->ne[3] + 1};
            sdc_tensor *p = sdc_act_like(x, 4, ne);
            if (p) sdc_pad2d(p, x, 0, 1, 0, 1);
            sdc_tensor_free(x);
            if (!p) return NULL;
            x = sdc_vae_conv_forward(&b->resample, p, 2, 0);
            sdc_tensor_free(p);
            if (!x) return NULL;
        }
    }
    if (!(x = sdc_vae_mid_step(&e->mid, x))) return NULL;

    // GroupNorm + SiLU, conv_out  [B, 2L, h, w]
    sdc_tensor *t = sdc_act_like(x, 4, x->ne);
    if (t) sdc_group_norm(t, x, e->norm_out_w, e->norm_out_b, cfg->norm_num_groups, cfg->norm_eps, 1);
    sdc_tensor_free(x);
    if (!t) return NULL;
    x = sdc_vae_conv_forward(&e->conv_out, t, 1, 1);
    sdc_tensor_free(t);
    return x;
}

/* dst = x[:, start : start + dst.ne[1]], through a temporary when dst has another dtype. */
static int slice_channels(sdc_tensor *dst, const sdc_tensor *x, int64_t start) {
    if (dst->dtype == x->dtype) {
        sdc_slice(dst, x, 1, start);
        return 0;
    }
    sdc_tensor *t = sdc_act_like(x, 4, dst->ne);
    if (!t) return -1;
    sdc_slice(t, x, 1, start);
    sdc_copy(dst, t);
    sdc_tensor_free(t);
    return 0;
}

/* logvar = clamp(logvar, -30, 20) on the host: the tensor is latent-sized and no op clamps. */
static int clamp_logvar(sdc_tensor *logvar) {
    const size_t n = (size_t)sdc_tensor_nelem(logvar);
    float *v = malloc(sizeof *v * n);
    if (!v) return -1;
    sdc_tensor_get_f32(logvar, v);
    for (size_t i = 0; i < n; i++) v[i] = v[i] < -30.0f ? -30.0f : v[i] > 20.0f ? 20.0f : v[i];
    sdc_tensor_set_f32(logvar, v);
    free(v);
    return 0;
}

sdc_status sdc_vae_encode(sdc_vae_encoder *enc, const sdc_tensor *image, sdc_tensor *mean, sdc_tensor *logvar) {
    sdc_status st = check_shapes(enc, image, mean, logvar);
    if (st != SDC_OK) return st;
    const sdc_dtype adt = enc->act_dtype;
    sdc_tensor *in = NULL, *x = NULL, *t = NULL;

    if (image->dtype != adt) {   // the image in the activation dtype
        if (!(in = sdc_act_new(enc->be, adt, 4, image->ne))) goto oom;
        sdc_copy(in, image);
    }
    x = body(enc, in ? in : image);
    sdc_tensor_free(in);
    if (!x) goto oom;
    if (enc->cfg.use_quant_conv) {   // moments  [B, 2L, h, w]
        t = sdc_vae_conv_forward(&enc->quant_conv, x, 1, 0);
        sdc_tensor_free(x);
        if (!(x = t)) goto oom;
    }
    if (slice_channels(mean, x, 0) != 0 || slice_channels(logvar, x, enc->cfg.latent_channels) != 0 ||
        clamp_logvar(logvar) != 0)
        goto oom;
    sdc_tensor_free(x);
    return SDC_OK;

oom:
    sdc_tensor_free(x);
    SDC_LOGE(&enc->log, "sdc_vae_encode: out of memory for activations");
    return SDC_ERR_OOM;
}
