/* vae_tiled.c - the decoder in tiles: the same computation as sdc_vae_decode with backend memory
 * bounded by the tile (see vae.h, sdc_vae_decode_tiled).
 *
 * Every full intermediate activation of one image lives in host memory, in the decoder's compute dtype,
 * stored tile after tile (each tile [C, th, tw], so the tile a pass writes is one contiguous block); the
 * backend holds one tile's work at a time. A conv pass computes its output tile by tile (T x T pixels,
 * T = tile_latent at latent resolution, doubling with each upsample, so every resolution has the same
 * tile grid), each tile in one trip:
 *   up      the input region under the tile plus a halo of `pad` pixels (the low-resolution region
 *           under it for an upsampling conv), and the residual at the tile;
 *   device  group norm + SiLU of the input region with the whole image's statistics (group_norm_apply),
 *           nearest 2x, the conv with the backend's zero padding, the tile's own pixels cut out, the
 *           residual added (through the 1x1 shortcut conv), the output tile's group sums
 *           (group_norm_stats);
 *   down    the output tile and its sums, which are added in double in tile order (fixed: the result
 *           does not depend on timing). The next pass normalises with mean = s / n and
 *           rstd = 1 / sqrt(q / n - mean^2 + eps) of these sums.
 * Each element sees the untiled op sequence: real neighbours or the image's own zero border, the same
 * K-long dot products, the group norm's affine with the whole image's statistics. What is not
 * bit-identical with several tiles: a GEMM over a narrower tile may take another BLAS kernel (OpenBLAS's
 * small-matrix or edge kernels, cuBLAS's heuristics) that rounds the same dot product differently; and
 * the statistics come from sums rather than group_norm's two passes, which moves mean or rstd by an ulp
 * now and then (group norm then spreads that noise over the whole image).
 * The mid-block attention runs untiled at latent resolution (every position attends to every other).
 *
 * Traffic: each activation goes up once per conv that reads it (plus halos) and down once, in the
 * compute dtype, through the backend's pinned staging buffers where it has them (CUDA); uploads of the
 * next tile are enqueued before the current tile is read back, so the host gathers while the device
 * computes. Host memory: a resnet's input and its hidden activation (its output overwrites its input tile
 * by tile: a tile's residual is read just before the tile's output is written, and an output of at most as
 * many channels never reaches the input's later tiles), so about two activations of the largest
 * resolution. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/vae_internal.h"

#define DEFAULT_TILE_LATENT 32

typedef struct tiler {
    const sdc_vae_decoder *dec;
    sdc_backend *be;
    sdc_dtype dt;    /* the decoder's compute dtype: host activations are stored in it */
    size_t es;       /* its element size */
    int groups;      /* of every group norm in the decoder */
    size_t host_cur; /* host bytes of live activations */
    sdc_vae_tile_report rep;
} tiler;

/* One image's activation in host memory, tile after tile. */
typedef struct hact {
    char *d;              // tiles in row-major tile order, each [C, th, tw]
    size_t cap;           // bytes d holds
    int64_t C, H, W, T;   // channels, size, tile side
    double *sums;         // [groups, 2] sums of x and x^2 per group over the image (NULL: not gathered)
} hact;

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

static size_t hact_bytes(const tiler *t, int64_t C, int64_t H, int64_t W) { return (size_t)(C * H * W) * t->es; }

/* An activation [C, H, W] with tile side T; into non-NULL: in into's storage, which it takes over (into is
 * left without storage), so into must hold enough. */
static sdc_status hact_new(tiler *t, hact *a, int64_t C, int64_t H, int64_t W, int64_t T, hact *into) {
    *a = (hact){.C = C, .H = H, .W = W, .T = T};
    if (into) {
        a->d = into->d;
        a->cap = into->cap;
        free(into->sums);
        *into = (hact){0};
        return SDC_OK;
    }
    a->cap = hact_bytes(t, C, H, W);
    if (!(a->d = malloc(a->cap ? a->cap : 1))) return SDC_ERR_OOM;
    t->host_cur += a->cap;
    if (t->host_cur > t->rep.host_peak) t->rep.host_peak = t->host_cur;
    return SDC_OK;
}

static void hact_free(tiler *t, hact *a) {
    if (a->d) t->host_cur -= a->cap;
    free(a->d);
    free(a->sums);
    *a = (hact){0};
}

/* Tile (ty, tx)'s rectangle and the byte offset of its block. */
static rect tile_rect(const hact *a, int64_t ty, int64_t tx) {
    return (rect){ty * a->T, imin((ty + 1) * a->T, a->H), tx * a->T, imin((tx + 1) * a->T, a->W)};
}
static size_t tile_offset(const tiler *t, const hact *a, int64_t ty, int64_t tx) {
    const rect r = tile_rect(a, ty, tx);
    return (size_t)(a->C * (ty * a->T * a->W + (r.y1 - r.y0) * tx * a->T)) * t->es;
}

/* Copies channels [c0, c1) of a's region r to (gather) or from (scatter) buf [c1 - c0, h, w], tile by tile. */
static void hact_region(const tiler *t, const hact *a, rect r, int64_t c0, int64_t c1, char *buf, int scatter) {
    const int64_t h = r.y1 - r.y0, w = r.x1 - r.x0;
    const size_t es = t->es;
    for (int64_t ty = r.y0 / a->T; ty * a->T < r.y1; ty++)
        for (int64_t tx = r.x0 / a->T; tx * a->T < r.x1; tx++) {
            const rect tr = tile_rect(a, ty, tx);
            const int64_t th = tr.y1 - tr.y0, tw = tr.x1 - tr.x0;
            const int64_t y0 = imax(tr.y0, r.y0), y1 = imin(tr.y1, r.y1), x0 = imax(tr.x0, r.x0),
                          x1 = imin(tr.x1, r.x1);
            const size_t run = (size_t)(x1 - x0) * es;
            char *tile = a->d + tile_offset(t, a, ty, tx);
            for (int64_t c = c0; c < c1; c++)
                for (int64_t y = y0; y < y1; y++) {
                    char *hp = tile + (size_t)((c * th + y - tr.y0) * tw + x0 - tr.x0) * es;
                    char *bp = buf + (size_t)(((c - c0) * h + y - r.y0) * w + x0 - r.x0) * es;
                    if (scatter)
                        memcpy(hp, bp, run);
                    else
                        memcpy(bp, hp, run);
                }
        }
}

/* --- host <-> backend, through the backend's pinned staging buffers where it has them --- */

/* Channels per staging buffer for planes of `plane` bytes; 0: no staging (none, or a plane is larger). */
static int64_t staged_channels(const tiler *t, size_t plane) {
    sdc_backend *be = t->be;
    if (!be->iface->staging_acquire || !plane) return 0;
    return (int64_t)(be->iface->staging_size(be) / plane);
}

/* A new backend tensor [1, C, h, w] holding a's region r. NULL when out of memory. */
static sdc_tensor *upload(tiler *t, const hact *a, rect r) {
    sdc_backend *be = t->be;
    const int64_t h = r.y1 - r.y0, w = r.x1 - r.x0;
    sdc_tensor *x = sdc_act_new(be, t->dt, 4, (int64_t[]){1, a->C, h, w});
    if (!x) return NULL;
    const size_t plane = (size_t)(h * w) * t->es;
    const int64_t per = staged_channels(t, plane);
    if (per > 0) {
        for (int64_t c0 = 0; c0 < a->C; c0 += per) {
            const int64_t c1 = imin(c0 + per, a->C);
            char *buf = be->iface->staging_acquire(be, (size_t)(c1 - c0) * plane);
            if (!buf) {
                sdc_tensor_free(x);
                return NULL;
            }
            hact_region(t, a, r, c0, c1, buf, 0);
            be->iface->staging_upload(be, (char *)x->data + (size_t)c0 * plane, buf, (size_t)(c1 - c0) * plane);
        }
    } else {
        char *buf = malloc(x->nbytes ? x->nbytes : 1);
        if (!buf) {
            sdc_tensor_free(x);
            return NULL;
        }
        hact_region(t, a, r, 0, a->C, buf, 0);
        sdc_tensor_set_raw(x, buf);
        free(buf);
    }
    t->rep.bytes_up += x->nbytes;
    return x;
}

/* Makes the staged uploads visible to the ops enqueued next. */
static void uploads_done(const tiler *t) {
    if (t->be->iface->staging_flush) t->be->iface->staging_flush(t->be);
}

/* a's region r = y [1, C, h, w]. */
static sdc_status download(tiler *t, const sdc_tensor *y, hact *a, rect r) {
    sdc_backend *be = t->be;
    const size_t plane = (size_t)((r.y1 - r.y0) * (r.x1 - r.x0)) * t->es;
    const int64_t per = staged_channels(t, plane);
    const int whole_tile =
        r.y0 % a->T == 0 && r.x0 % a->T == 0 && r.y1 == imin(r.y0 + a->T, a->H) && r.x1 == imin(r.x0 + a->T, a->W);
    t->rep.bytes_down += y->nbytes;
    if (per > 0) {
        for (int64_t c0 = 0; c0 < a->C; c0 += per) {
            const int64_t c1 = imin(c0 + per, a->C);
            char *buf = be->iface->staging_acquire(be, (size_t)(c1 - c0) * plane);
            if (!buf) return SDC_ERR_OOM;
            be->iface->download(be, buf, (const char *)y->data + (size_t)c0 * plane, (size_t)(c1 - c0) * plane);
            hact_region(t, a, r, c0, c1, buf, 1);
        }
    } else if (whole_tile) {   // the tile's block, as it is on the backend
        be->iface->download(be, a->d + tile_offset(t, a, r.y0 / a->T, r.x0 / a->T), y->data, y->nbytes);
    } else {
        char *buf = malloc(y->nbytes ? y->nbytes : 1);
        if (!buf) return SDC_ERR_OOM;
        be->iface->download(be, buf, y->data, y->nbytes);
        hact_region(t, a, r, 0, a->C, buf, 1);
        free(buf);
    }
    return sdc_backend_status(be);
}

/* --- group statistics --- */

/* a->sums += the group sums of y (a tile of a, or all of it), read back from the backend. */
static sdc_status add_sums(tiler *t, const sdc_tensor *y, hact *a) {
    const int G = t->groups;
    sdc_tensor *st = sdc_act_new(t->be, SDC_DTYPE_F32, 3, (int64_t[]){1, G, 4});
    float *h = malloc(sizeof(float) * 4 * (size_t)G);
    sdc_status st_ = st && h ? SDC_OK : SDC_ERR_OOM;
    if (st_ == SDC_OK && !a->sums && !(a->sums = calloc(2 * (size_t)G, sizeof(double)))) st_ = SDC_ERR_OOM;
    if (st_ == SDC_OK) {
        sdc_group_norm_stats(st, y, G);
        t->be->iface->download(t->be, h, st->data, st->nbytes);
        t->rep.bytes_down += st->nbytes;
        st_ = sdc_backend_status(t->be);
    }
    for (int g = 0; st_ == SDC_OK && g < G; g++) {
        a->sums[2 * g] += (double)h[4 * g] + (double)h[4 * g + 1];
        a->sums[2 * g + 1] += (double)h[4 * g + 2] + (double)h[4 * g + 3];
    }
    sdc_tensor_free(st);
    free(h);
    return st_;
}

/* A new backend tensor F32 [1, groups, 2] of (mean, rstd) per group of a, from its sums, rounded as
 * group_norm rounds its own. NULL when out of memory. */
static sdc_tensor *mean_rstd(tiler *t, const hact *a, float eps) {
    const int G = t->groups;
    const double n = (double)(a->C / G * a->H * a->W);
    assert(a->sums && "a conv pass that normalises its input reads sums gathered by the pass before");
    float *mr = malloc(sizeof(float) * 2 * (size_t)G);
    sdc_tensor *m = mr ? sdc_act_new(t->be, SDC_DTYPE_F32, 3, (int64_t[]){1, G, 2}) : NULL;
    for (int g = 0; m && g < G; g++) {
        const double mean = a->sums[2 * g] / n, var = a->sums[2 * g + 1] / n - mean * mean;
        mr[2 * g] = (float)mean;
        mr[2 * g + 1] = (float)(1.0 / sqrt((var > 0 ? var : 0.0) + (double)eps));
    }
    if (m) {
        sdc_tensor_set_raw(m, mr);
        t->rep.bytes_up += m->nbytes;
    }
    free(mr);
    return m;
}

/* --- conv passes --- */

/* What one conv pass computes per tile: out = conv(nearest2x?(silu(norm(in)))) (+ shortcut(res)). */
typedef struct conv_job {
    const sdc_vae_conv *conv;
    int pad, up;
    const sdc_tensor *norm_w, *norm_b; /* group norm + SiLU of the input first, or NULL */
    float eps;
    const hact *res;                     /* added after the conv, or NULL */
    const sdc_tensor *short_w, *short_b; /* 1x1 shortcut of res, or NULL */
    int sums;                            /* gather the output's group sums */
} conv_job;

/* The backend tensors of one tile's inputs. */
typedef struct tile_in {
    sdc_tensor *x, *res;
    rect at; /* the region x covers, at the output's resolution once upsampled */
} tile_in;

static void tile_in_free(tile_in *ti) {
    sdc_tensor_free(ti->x);
    sdc_tensor_free(ti->res);
    *ti = (tile_in){0};
}

/* Uploads what tile r of out needs. */
static sdc_status tile_load(tiler *t, const conv_job *j, const hact *in, const hact *out, rect r, tile_in *ti) {
    const rect need = grow(r, j->pad, out->H, out->W);   // conv input region, at out's resolution
    rect src = need;                                     // region uploaded
    ti->at = need;
    if (j->up) {
        src = (rect){need.y0 / 2, (need.y1 + 1) / 2, need.x0 / 2, (need.x1 + 1) / 2};
        ti->at = (rect){2 * src.y0, 2 * src.y1, 2 * src.x0, 2 * src.x1};
    }
    if (!(ti->x = upload(t, in, src)) || (j->res && !(ti->res = upload(t, j->res, r)))) {
        tile_in_free(ti);
        return SDC_ERR_OOM;
    }
    return SDC_OK;
}

/* y [1, C, h, w] over region `from`, cut to its part r (consumes y). NULL when out of memory. */
static sdc_tensor *crop(sdc_tensor *y, rect from, rect r) {
    if (r.y0 != from.y0 || r.y1 != from.y1) {
        sdc_tensor *c = sdc_act_like(y, 4, (int64_t[]){1, y->ne[1], r.y1 - r.y0, y->ne[3]});
        if (c) sdc_slice(c, y, 2, r.y0 - from.y0);
        sdc_tensor_free(y);
        if (!(y = c)) return NULL;
    }
    if (r.x0 != from.x0 || r.x1 != from.x1) {
        sdc_tensor *c = sdc_act_like(y, 4, (int64_t[]){1, y->ne[1], y->ne[2], r.x1 - r.x0});
        if (c) sdc_slice(c, y, 3, r.x0 - from.x0);
        sdc_tensor_free(y);
        y = c;
    }
    return y;
}

/* Enqueues tile r's computation on the loaded inputs (consumed): the output tile [1, Co, h, w] of r, or
 * NULL when out of memory. */
static sdc_tensor *tile_compute(const conv_job *j, const sdc_tensor *mr, tile_in *ti, rect r) {
    sdc_tensor *x = ti->x, *y = NULL;
    ti->x = NULL;
    if (j->norm_w) sdc_group_norm_apply(x, x, mr, j->norm_w, j->norm_b, (int)mr->ne[1], 1);
    if (j->up) {   // [1, C, 2h, 2w]
        sdc_tensor *u = sdc_act_like(x, 4, (int64_t[]){1, x->ne[1], 2 * x->ne[2], 2 * x->ne[3]});
        if (u) sdc_upsample2x(u, x);
        sdc_tensor_free(x);
        x = u;
    }
    if (x) y = sdc_vae_conv_forward(j->conv, x, 1, j->pad);   // [1, Co, h, w] over ti->at
    sdc_tensor_free(x);
    if (y) y = crop(y, ti->at, r);
    if (y && ti->res) {
        if (j->short_w) {
            sdc_tensor *s = sdc_act_like(y, 4, y->ne);
            if (s) {
                sdc_conv2d(s, ti->res, j->short_w, j->short_b, 1, 0);
                sdc_binary(y, y, s, SDC_BINARY_ADD);
            } else {
                sdc_tensor_free(y);
                y = NULL;
            }
            sdc_tensor_free(s);
        } else {
            sdc_binary(y, y, ti->res, SDC_BINARY_ADD);
        }
    }
    tile_in_free(ti);
    return y;
}

/* out = the conv job over in, tile by tile, the next tile's inputs uploaded while this one computes.
 * out is allocated here, or takes over into's storage (into is then j->res, whose tile is read before
 * out's tile is written over it); on error out holds nothing. */
static sdc_status conv_pass(tiler *t, const conv_job *j, const hact *in, hact *into, hact *out) {
    const int64_t f = j->up ? 2 : 1, Co = j->conv->w->ne[0];
    sdc_status st = hact_new(t, out, Co, in->H * f, in->W * f, in->T * f, into);
    sdc_tensor *mr = NULL;
    if (st == SDC_OK && j->norm_w && !(mr = mean_rstd(t, in, j->eps))) st = SDC_ERR_OOM;
    const int64_t nty = (out->H + out->T - 1) / out->T, ntx = (out->W + out->T - 1) / out->T, n = nty * ntx;
    tile_in cur = {0}, next = {0};
    if (st == SDC_OK && n > 0) st = tile_load(t, j, in, out, tile_rect(out, 0, 0), &cur);
    for (int64_t k = 0; st == SDC_OK && k < n; k++) {
        const rect r = tile_rect(out, k / ntx, k % ntx);
        uploads_done(t);
        sdc_tensor *y = tile_compute(j, mr, &cur, r);
        if (!y) st = SDC_ERR_OOM;
        if (st == SDC_OK && k + 1 < n)
            st = tile_load(t, j, in, out, tile_rect(out, (k + 1) / ntx, (k + 1) % ntx), &next);
        if (st == SDC_OK) st = download(t, y, out, r);
        if (st == SDC_OK && j->sums) st = add_sums(t, y, out);
        sdc_tensor_free(y);
        cur = next;
        next = (tile_in){0};
    }
    tile_in_free(&cur);
    tile_in_free(&next);
    sdc_tensor_free(mr);
    if (st != SDC_OK) hact_free(t, out);
    return st;
}

/* *x = resnet(*x): h = conv1(silu(norm1(x))), y = conv2(silu(norm2(h))) + shortcut(x), y in x's storage
 * when it has no more channels. x is consumed (freed on error). */
static sdc_status resnet_pass(tiler *t, const sdc_resnet *r, hact *x) {
    hact h, y;
    const sdc_vae_conv c1 = {r->conv1_w, r->conv1_b}, c2 = {r->conv2_w, r->conv2_b};
    const conv_job j1 = {.conv = &c1, .pad = 1, .norm_w = r->norm1_w, .norm_b = r->norm1_b, .eps = r->eps, .sums = 1};
    sdc_status st = r->groups == t->groups ? conv_pass(t, &j1, x, NULL, &h) : SDC_ERR_UNSUPPORTED;
    if (st == SDC_OK) {
        hact res = *x;   // the input, read tile by tile while y may be written over it
        const int in_place = r->out_ch <= r->in_ch;
        const conv_job j2 = {.conv = &c2,
                             .pad = 1,
                             .norm_w = r->norm2_w,
                             .norm_b = r->norm2_b,
                             .eps = r->eps,
                             .res = &res,
                             .short_w = r->short_w,
                             .short_b = r->short_b,
                             .sums = 1};
        st = conv_pass(t, &j2, &h, in_place ? x : NULL, &y);
        hact_free(t, &h);
        if (st == SDC_OK) {
            hact_free(t, x);   // nothing left to free when y took its storage
            *x = y;
        }
    }
    if (st != SDC_OK) hact_free(t, x);
    return st;
}

/* *x = attention(*x), untiled, with the output's group sums. */
static sdc_status attn_pass(tiler *t, const sdc_vae_attn *a, hact *x) {
    const rect whole = {0, x->H, 0, x->W};
    sdc_tensor *in = upload(t, x, whole);
    uploads_done(t);
    sdc_tensor *y = in ? sdc_vae_attn_forward(a, in) : NULL;
    sdc_tensor_free(in);
    free(x->sums);
    x->sums = NULL;
    sdc_status st = y ? download(t, y, x, whole) : SDC_ERR_OOM;
    if (st == SDC_OK) st = add_sums(t, y, x);
    sdc_tensor_free(y);
    return st;
}

/* *x = conv job over *x (consumed; freed on error). */
static sdc_status conv_step(tiler *t, const conv_job *j, hact *x) {
    hact y;
    sdc_status st = conv_pass(t, j, x, NULL, &y);
    hact_free(t, x);
    if (st == SDC_OK) *x = y;
    return st;
}

/* One image: x, the latent [L, h, w] (consumed) -> image [out_channels, H, W] in f32. */
static sdc_status decode_one(tiler *t, hact *x, float *image) {
    const sdc_vae_decoder *d = t->dec;
    sdc_status st = SDC_OK;
#define STEP(call)                              \
    do {                                        \
        if ((st = (call)) != SDC_OK) return st; \
    } while (0)
    if (d->cfg.use_post_quant_conv) STEP(conv_step(t, &(conv_job){.conv = &d->post_quant_conv, .pad = 0}, x));
    STEP(conv_step(t, &(conv_job){.conv = &d->conv_in, .pad = 1, .sums = 1}, x));
    STEP(resnet_pass(t, &d->mid.res[0], x));
    if (d->mid.has_attn && (st = attn_pass(t, &d->mid.attn, x)) != SDC_OK) {
        hact_free(t, x);
        return st;
    }
    STEP(resnet_pass(t, &d->mid.res[1], x));
    for (int i = 0; i < d->cfg.n_blocks; i++) {
        const sdc_vae_block *b = &d->up[i];
        for (int j = 0; j < b->n_res; j++) STEP(resnet_pass(t, &b->res[j], x));
        if (b->has_resample) STEP(conv_step(t, &(conv_job){.conv = &b->resample, .pad = 1, .up = 1, .sums = 1}, x));
    }
    const conv_job out = {
        .conv = &d->conv_out, .pad = 1, .norm_w = d->norm_out_w, .norm_b = d->norm_out_b, .eps = d->cfg.norm_eps};
    STEP(conv_step(t, &out, x));
#undef STEP
    const size_t n = (size_t)(x->C * x->H * x->W);
    char *buf = malloc(n * t->es + 1);
    if (buf) {
        hact_region(t, x, (rect){0, x->H, 0, x->W}, 0, x->C, buf, 0);
        sdc_convert_to_f32(image, buf, t->dt, n);
    }
    free(buf);
    hact_free(t, x);
    return buf ? SDC_OK : SDC_ERR_OOM;
}

sdc_status sdc_vae_decode_tiled(sdc_vae_decoder *dec, const sdc_tensor *z, float *image, int tile_latent) {
    return sdc_vae_decode_tiled_report(dec, z, image, tile_latent, NULL);
}

sdc_status sdc_vae_decode_tiled_report(sdc_vae_decoder *dec, const sdc_tensor *z, float *image, int tile_latent,
                                       sdc_vae_tile_report *rep) {
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
    tiler t = {.dec = dec,
               .be = dec->be,
               .dt = dec->act_dtype,
               .es = sdc_dtype_size(dec->act_dtype),
               .groups = cfg->norm_num_groups};
    float *zh = malloc(sizeof(float) * per_z * (size_t)B);
    char *zc = malloc(t.es * per_z);
    sdc_status st = zh && zc ? sdc_tensor_get_f32(z, zh) : SDC_ERR_OOM;
    for (int64_t b = 0; st == SDC_OK && b < B; b++) {
        hact x;
        const int64_t T = tile_latent ? tile_latent : DEFAULT_TILE_LATENT;
        if ((st = hact_new(&t, &x, L, h, w, T, NULL)) != SDC_OK) break;
        sdc_convert_from_f32(zc, t.dt, zh + (size_t)b * per_z, per_z);
        hact_region(&t, &x, (rect){0, h, 0, w}, 0, L, zc, 1);
        st = decode_one(&t, &x, image + (size_t)b * per_image);
    }
    free(zh);
    free(zc);
    if (rep) *rep = t.rep;
    if (st == SDC_OK) st = sdc_backend_sync(dec->be);
    if (st != SDC_OK)
        SDC_LOGE(&dec->log, "sdc_vae_decode_tiled: %s", st == SDC_ERR_OOM ? "out of memory" : sdc_status_str(st));
    return st;
}
