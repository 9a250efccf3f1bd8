/* vae_tiled.c - the decoder in tiles: the same computation as sdc_vae_decode with backend memory
 * bounded by the tile (see vae.h, sdc_vae_decode_tiled).
 *
 * Every full intermediate activation of one image lives in host memory (f32 [C, H, W]); the backend
 * holds one piece of work at a time, and each piece computes its output elements with the very
 * operations, operands and reduction order the untiled pass uses for them:
 *   conv (3x3 pad 1, 1x1)  per output tile of T x T pixels (T = tile_latent at latent resolution,
 *                          doubling with each upsample): the input region under the tile plus a halo of
 *                          `pad` pixels, convolved with the backend's zero padding, of which only the
 *                          tile's own pixels are kept (each sees real neighbours or the image's own zero
 *                          border, and the same K-long dot product as untiled);
 *   nearest 2x + conv      the low-resolution region under the halo'd tile, upsampled on the backend;
 *   residual               added on the backend right after the conv, as untiled (the shortcut conv
 *                          runs on the same region);
 *   group norm             one group at a time: its C/G channels over the whole image are exactly the
 *                          contiguous segment the untiled op reduces, normalised by the backend's own
 *                          group norm with 1 group and that group's weights: the same statistics;
 *   mid-block attention    untiled at latent resolution (every position attends to every other).
 * Backend peak: the largest of one tile pass, one group of an activation (C/G of it, in and out) and
 * the mid-block attention at latent resolution. Host memory: about four activations of the largest
 * resolution (the resnet's input, normalised input, hidden and output).
 * What is not bit-identical with several tiles: a GEMM over a narrower tile may take another BLAS
 * kernel (OpenBLAS's small-matrix or edge kernels, cuBLAS's heuristics) that rounds the same K-long
 * dot product differently; group norm then carries that ulp-level noise into its global statistics. */
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/vae_internal.h"

#define DEFAULT_TILE_LATENT 32

/* One image's activation in host memory. */
typedef struct hact {
    float *d;   // [C, H, W]
    int64_t C, H, W;
} hact;

typedef struct tiler {
    const sdc_vae_decoder *dec;
    sdc_backend *be;
    sdc_dtype adt;
    int64_t tile; /* tile side at the current resolution */
} tiler;

static sdc_status hact_new(hact *a, int64_t C, int64_t H, int64_t W) {
    *a = (hact){.C = C, .H = H, .W = W};
    a->d = malloc(sizeof(float) * (size_t)(C * H * W));
    return a->d ? SDC_OK : SDC_ERR_OOM;
}

static void hact_free(hact *a) {
    free(a->d);
    a->d = NULL;
}

/* A rectangle of rows [y0, y1) and columns [x0, x1). */
typedef struct rect {
    int64_t y0, y1, x0, x1;
} rect;

static int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

/* r grown by m on every side, clipped to [0, H) x [0, W). */
static rect grow(rect r, int64_t m, int64_t H, int64_t W) {
    return (rect){imax(r.y0 - m, 0), imin(r.y1 + m, H), imax(r.x0 - m, 0), imin(r.x1 + m, W)};
}

/* A new backend tensor [1, C, h, w] holding a's region r. */
static sdc_tensor *upload(const tiler *t, const hact *a, rect r) {
    const int64_t h = r.y1 - r.y0, w = r.x1 - r.x0;
    float *buf = malloc(sizeof(float) * (size_t)(a->C * h * w));
    sdc_tensor *x = buf ? sdc_act_new(t->be, t->adt, 4, (int64_t[]){1, a->C, h, w}) : NULL;
    if (x) {
        for (int64_t c = 0; c < a->C; c++)
            for (int64_t i = 0; i < h; i++)
                memcpy(buf + (c * h + i) * w, a->d + (c * a->H + r.y0 + i) * a->W + r.x0, sizeof(float) * (size_t)w);
        sdc_tensor_set_f32(x, buf);
    }
    free(buf);
    return x;
}

/* out's region r = y's pixels at r, y [1, C, h, w] covering the region `from` of out's plane. */
static sdc_status download(const sdc_tensor *y, rect from, rect r, hact *out) {
    const int64_t h = y->ne[2], w = y->ne[3];
    float *buf = malloc(sizeof(float) * (size_t)sdc_tensor_nelem(y));
    if (!buf) return SDC_ERR_OOM;
    sdc_status st = sdc_tensor_get_f32(y, buf);
    for (int64_t c = 0; st == SDC_OK && c < out->C; c++)
        for (int64_t i = r.y0; i < r.y1; i++)
            memcpy(out->d + (c * out->H + i) * out->W + r.x0, buf + (c * h + i - from.y0) * w + r.x0 - from.x0,
                   sizeof(float) * (size_t)(r.x1 - r.x0));
    free(buf);
    return st == SDC_OK ? sdc_backend_status(y->backend) : st;
}

/* What one conv pass computes per tile: out = conv(up ? nearest2x(in) : in) (+ res, through the
 * shortcut conv when there is one). */
typedef struct conv_job {
    const sdc_vae_conv *conv;
    int pad, up;
    const hact *res;
    const sdc_tensor *short_w, *short_b; /* 1x1 shortcut of res, or NULL */
} conv_job;

/* One tile r of out. */
static sdc_status conv_tile(const tiler *t, const conv_job *j, const hact *in, rect r, hact *out) {
    const rect need = grow(r, j->pad, out->H, out->W);   // conv input region, at out's resolution
    rect src = need, at = need;                          // region uploaded; region it covers once upsampled
    if (j->up) {
        src = (rect){need.y0 / 2, (need.y1 + 1) / 2, need.x0 / 2, (need.x1 + 1) / 2};
        at = (rect){2 * src.y0, 2 * src.y1, 2 * src.x0, 2 * src.x1};
    }
    sdc_tensor *x = upload(t, in, src), *u = NULL, *y = NULL, *s = NULL, *s2 = NULL;
    if (!x) goto oom;
    if (j->up) {   // [1, C, 2h, 2w]
        if (!(u = sdc_act_like(x, 4, (int64_t[]){1, x->ne[1], 2 * x->ne[2], 2 * x->ne[3]}))) goto oom;
        sdc_upsample2x(u, x);
        sdc_tensor_free(x);
        x = u;
        u = NULL;
    }
    if (!(y = sdc_vae_conv_forward(j->conv, x, 1, j->pad))) goto oom;   // [1, Co, h, w] over `at`
    sdc_tensor_free(x);
    x = NULL;
    if (j->res) {
        if (!(s = upload(t, j->res, at))) goto oom;
        if (j->short_w) {
            if (!(s2 = sdc_act_like(y, 4, y->ne))) goto oom;
            sdc_conv2d(s2, s, j->short_w, j->short_b, 1, 0);
            sdc_binary(y, y, s2, SDC_BINARY_ADD);
        } else {
            sdc_binary(y, y, s, SDC_BINARY_ADD);
        }
        sdc_tensor_free(s);
        sdc_tensor_free(s2);
        s = s2 = NULL;
    }
    sdc_status st = download(y, at, r, out);
    sdc_tensor_free(y);
    return st;
oom:
    sdc_tensor_free(x);
    sdc_tensor_free(u);
    sdc_tensor_free(y);
    sdc_tensor_free(s);
    sdc_tensor_free(s2);
    return SDC_ERR_OOM;
}

/* out = the conv job over in, tile by tile; out is allocated here (freed on error). */
static sdc_status conv_pass(const tiler *t, const conv_job *j, const hact *in, hact *out) {
    const int64_t f = j->up ? 2 : 1;
    sdc_status st = hact_new(out, j->conv->w->ne[0], in->H * f, in->W * f);
    for (int64_t y0 = 0; st == SDC_OK && y0 < out->H; y0 += t->tile)
        for (int64_t x0 = 0; st == SDC_OK && x0 < out->W; x0 += t->tile)
            st = conv_tile(t, j, in, (rect){y0, imin(y0 + t->tile, out->H), x0, imin(x0 + t->tile, out->W)}, out);
    if (st != SDC_OK) hact_free(out);
    return st;
}

/* out = group_norm(in) (then SiLU), one group at a time over the whole image. */
static sdc_status norm_pass(const tiler *t, const hact *in, const sdc_tensor *w, const sdc_tensor *b, int groups,
                            float eps, int silu, hact *out) {
    const int64_t Cg = in->C / groups, n = Cg * in->H * in->W;
    const rect whole = {0, in->H, 0, in->W};
    sdc_status st = hact_new(out, in->C, in->H, in->W);
    for (int g = 0; st == SDC_OK && g < groups; g++) {
        hact part = {in->d + g * n, Cg, in->H, in->W}, dst = {out->d + g * n, Cg, in->H, in->W};
        sdc_tensor *x = upload(t, &part, whole), *y = x ? sdc_act_like(x, 4, x->ne) : NULL;
        sdc_tensor *wg = y ? sdc_act_like(w, 1, (int64_t[]){Cg}) : NULL;   // this group's weight and bias
        sdc_tensor *bg = wg ? sdc_act_like(b, 1, (int64_t[]){Cg}) : NULL;
        if (bg) {
            sdc_slice(wg, w, 0, g * Cg);
            sdc_slice(bg, b, 0, g * Cg);
            sdc_group_norm(y, x, wg, bg, 1, eps, silu);
            st = download(y, whole, whole, &dst);
        } else {
            st = SDC_ERR_OOM;
        }
        sdc_tensor_free(x);
        sdc_tensor_free(y);
        sdc_tensor_free(wg);
        sdc_tensor_free(bg);
    }
    if (st != SDC_OK) hact_free(out);
    return st;
}

/* *x = resnet(*x): the sdc_resnet_forward sequence, pass by pass. x is consumed (freed on error). */
static sdc_status resnet_pass(const tiler *t, const sdc_resnet *r, hact *x) {
    hact a, h, y;
    const sdc_vae_conv c1 = {r->conv1_w, r->conv1_b}, c2 = {r->conv2_w, r->conv2_b};
    sdc_status st = norm_pass(t, x, r->norm1_w, r->norm1_b, r->groups, r->eps, 1, &a);
    if (st == SDC_OK) {
        st = conv_pass(t, &(conv_job){.conv = &c1, .pad = 1}, &a, &h);
        hact_free(&a);
    }
    if (st == SDC_OK) {
        st = norm_pass(t, &h, r->norm2_w, r->norm2_b, r->groups, r->eps, 1, &a);
        hact_free(&h);
    }
    if (st == SDC_OK) {
        const conv_job j = {.conv = &c2, .pad = 1, .res = x, .short_w = r->short_w, .short_b = r->short_b};
        st = conv_pass(t, &j, &a, &y);
        hact_free(&a);
    }
    hact_free(x);
    if (st == SDC_OK) *x = y;
    return st;
}

/* *x = attention(*x), untiled. */
static sdc_status attn_pass(const tiler *t, const sdc_vae_attn *a, hact *x) {
    const rect whole = {0, x->H, 0, x->W};
    sdc_tensor *in = upload(t, x, whole), *y = in ? sdc_vae_attn_forward(a, in) : NULL;
    sdc_status st = y ? download(y, whole, whole, x) : SDC_ERR_OOM;
    sdc_tensor_free(in);
    sdc_tensor_free(y);
    return st;
}

/* One image: z [L, h, w] (consumed) -> image [out_channels, H, W]. */
static sdc_status decode_one(tiler *t, hact *x, float *image) {
    const sdc_vae_decoder *d = t->dec;
    hact y;
    sdc_status st = SDC_OK;
#define STEP(call)                     \
    do {                               \
        if ((st = (call)) != SDC_OK) { \
            hact_free(x);              \
            return st;                 \
        }                              \
    } while (0)
#define CONV(job)                         \
    do {                                  \
        STEP(conv_pass(t, (job), x, &y)); \
        hact_free(x);                     \
        *x = y;                           \
    } while (0)

    if (d->cfg.use_post_quant_conv) CONV((&(conv_job){.conv = &d->post_quant_conv, .pad = 0}));
    CONV((&(conv_job){.conv = &d->conv_in, .pad = 1}));
    STEP(resnet_pass(t, &d->mid.res[0], x));
    if (d->mid.has_attn) STEP(attn_pass(t, &d->mid.attn, x));
    STEP(resnet_pass(t, &d->mid.res[1], x));
    for (int i = 0; i < d->cfg.n_blocks; i++) {
        const sdc_vae_block *b = &d->up[i];
        for (int j = 0; j < b->n_res; j++) STEP(resnet_pass(t, &b->res[j], x));
        if (b->has_resample) {
            t->tile *= 2;
            CONV((&(conv_job){.conv = &b->resample, .pad = 1, .up = 1}));
        }
    }
    STEP(norm_pass(t, x, d->norm_out_w, d->norm_out_b, d->cfg.norm_num_groups, d->cfg.norm_eps, 1, &y));
    hact_free(x);
    *x = y;
    CONV((&(conv_job){.conv = &d->conv_out, .pad = 1}));
    memcpy(image, x->d, sizeof(float) * (size_t)(x->C * x->H * x->W));
    hact_free(x);
    return SDC_OK;
#undef CONV
#undef STEP
}

sdc_status sdc_vae_decode_tiled(sdc_vae_decoder *dec, const sdc_tensor *z, float *image, int tile_latent) {
    const sdc_vae_config *cfg = &dec->cfg;
    char zs[64];
    if (z->backend != dec->be || z->ndim != 4 || z->ne[1] != cfg->latent_channels || z->ne[0] < 1 || z->ne[2] < 1 ||
        z->ne[3] < 1 || tile_latent < 0) {
        SDC_LOGE(&dec->log, "sdc_vae_decode_tiled: z %s (tile %d) is not [B, %d, h, w] on the decoder's backend",
                 sdc_tensor_shape_str(z, zs, sizeof zs), tile_latent, cfg->latent_channels);
        return SDC_ERR_INVALID_ARG;
    }
    const int64_t B = z->ne[0], L = z->ne[1], h = z->ne[2], w = z->ne[3], f = sdc_vae_downscale(cfg);
    const size_t per_z = (size_t)(L * h * w), per_image = (size_t)(cfg->out_channels * h * f * w * f);
    float *zh = malloc(sizeof(float) * per_z * (size_t)B);
    sdc_status st = zh ? sdc_tensor_get_f32(z, zh) : SDC_ERR_OOM;
    for (int64_t b = 0; st == SDC_OK && b < B; b++) {
        tiler t = {dec, dec->be, dec->act_dtype, tile_latent ? tile_latent : DEFAULT_TILE_LATENT};
        hact x;
        if ((st = hact_new(&x, L, h, w)) != SDC_OK) break;
        memcpy(x.d, zh + (size_t)b * per_z, sizeof(float) * per_z);
        st = decode_one(&t, &x, image + (size_t)b * per_image);
    }
    free(zh);
    if (st == SDC_OK) st = sdc_backend_status(dec->be);
    if (st != SDC_OK)
        SDC_LOGE(&dec->log, "sdc_vae_decode_tiled: %s", st == SDC_ERR_OOM ? "out of memory" : sdc_status_str(st));
    return st;
}
