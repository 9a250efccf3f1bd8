/* cpu_conv.c - 2-D convolution as GEMM: y_img[Co, Ho*Wo] = w[Co, Ci*KH*KW] . col[Ci*KH*KW, Ho*Wo].
 * A weight kept in F16/BF16 or a block type is widened a GEMM tile of rows and a chunk of K at a time
 * (sdc_cpu_wmat).
 *
 * col (im2col) is built a band of output rows and a chunk of its K rows (sdc_cpu_k_chunk) at a time in
 * a bounded workspace, and the GEMM adds that chunk's products to the band's columns of y in place. A
 * 1x1, stride-1, unpadded convolution needs no im2col: the image itself is col, so the same loop runs
 * with one band, all of K in one call, and no workspace. */
#include <string.h>

#include "backend/cpu/cpu_backend.h"

/* Rows [k0, k0 + kc) of col[Ci*KH*KW, n_rows*Wo] for output rows [oh0, oh0 + n_rows) of one image
 * x[Ci, H, W], into col[kc, n_rows*Wo]. The col rows (ci, kh, kw) are shared out over the enclosing team
 * (orphaned `omp for`). */
static void im2col(float *col, const float *x, int64_t H, int64_t W, int64_t KH, int64_t KW, int stride, int pad,
                   int64_t Wo, int64_t oh0, int64_t n_rows, int64_t k0, int64_t kc) {
    const int64_t n = n_rows * Wo;
#pragma omp for schedule(static)
    for (int64_t r = k0; r < k0 + kc; r++) {
        const int64_t ci = r / (KH * KW), kh = r / KW % KH, kw = r % KW;
        const float *xc = x + ci * H * W;   // [H, W]
        float *dst = col + (r - k0) * n;    // [n_rows, Wo]
        int64_t ow0, ow1;
        sdc_cpu_conv_range(Wo, W, stride, pad, kw, &ow0, &ow1);
        for (int64_t i = 0; i < n_rows; i++) {
            const int64_t ih = (oh0 + i) * stride - pad + kh;
            float *d = dst + i * Wo;
            if (ih < 0 || ih >= H) {
                memset(d, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            const float *src = xc + ih * W;   // x[ci, ih, :]
            const int64_t off = kw - pad;     // d[ow] = src[ow * stride + off]
            for (int64_t ow = 0; ow < ow0; ow++) d[ow] = 0.0f;
            if (stride != 1)
                for (int64_t ow = ow0; ow < ow1; ow++) d[ow] = src[ow * stride + off];
            else if (ow1 > ow0)
                memcpy(d + ow0, src + ow0 + off, (size_t)(ow1 - ow0) * sizeof(float));
            for (int64_t ow = ow1; ow < Wo; ow++) d[ow] = 0.0f;
        }
    }
}

/* The geometry of a convolution's GEMMs: output rows per band (its im2col workspace), the team, and the
 * workspace both hold. The op and its workspace query (test_count compares them) share it. */
typedef struct conv_plan {
    int64_t K, P;      /* GEMM depth Ci*KH*KW, output positions Ho*Wo */
    int pointwise;     /* 1x1, stride 1, no padding: the image is the im2col matrix */
    int64_t band;      /* output rows per GEMM */
    int64_t n_img;     /* images per sdc_cpu_gemm_tiles call (> 1 only with whole-image bands) */
    size_t col_bytes;  /* the im2col chunks of n_img bands (0 when pointwise) */
    int team;          /* threads of the op's OpenMP team */
    size_t wmat_bytes; /* weight tiles widened to f32 (0 for an F32 weight) */
} conv_plan;

static conv_plan conv_plan_of(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                              int stride, int pad) {
    const int64_t B = x->ne[0], Ci = x->ne[1], Co = w->ne[0], KH = w->ne[2], KW = w->ne[3];
    const int64_t Ho = y->ne[2], Wo = y->ne[3];
    conv_plan c = {.K = Ci * KH * KW, .P = Ho * Wo, .band = Ho, .n_img = B, .team = 1};
    if (B == 0 || Co == 0 || c.P == 0) return c;
    c.pointwise = KH == 1 && KW == 1 && stride == 1 && pad == 0;
    if (!c.pointwise) { /* bands of rows (of the longest chunk of K) within the cap; whole images: as many as fit */
        const size_t row_bytes = (size_t)(sdc_cpu_k_chunk_max(Co, c.K) * Wo) * sizeof(float);
        const size_t want = SDC_CPU_CONV_WORKSPACE_BYTES / row_bytes;
        c.band = want < 1 ? 1 : want > (size_t)Ho ? Ho : (int64_t)want;
        const size_t imgs = c.band == Ho ? want / (size_t)Ho : 1;
        c.n_img = imgs > (size_t)B ? B : (int64_t)imgs;
        c.col_bytes = (size_t)(c.n_img * c.band) * row_bytes;
    }
    c.team = B * Co * c.P * c.K >= 64 * SDC_CPU_PAR_MIN ? be->n_threads : 1;
    c.wmat_bytes = sdc_cpu_wmat_bytes(be, w, Co, c.K, SDC_CPU_GEMM_TILE_M, c.team);
    return c;
}

size_t sdc_cpu_conv2d_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                int stride, int pad) {
    const conv_plan c = conv_plan_of(be, y, x, w, stride, pad);
    return c.col_bytes + c.wmat_bytes;
}

void sdc_cpu_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                    int stride, int pad) {
    const int64_t B = x->ne[0], Ci = x->ne[1], H = x->ne[2], W = x->ne[3];
    const int64_t Co = w->ne[0], KH = w->ne[2], KW = w->ne[3], Ho = y->ne[2], Wo = y->ne[3];
    const float *xd = sdc_cpu_f32(x);   // [B, Ci, H, W]
    float *yd = sdc_cpu_f32(y);         // [B, Co, Ho*Wo]
    if (B == 0 || Co == 0 || Ho * Wo == 0) return;
    const conv_plan c = conv_plan_of(be, y, x, w, stride, pad);
    const int64_t K = c.K, P = c.P, band = c.band;

    sdc_cpu_wmat wm;   // w [Co, K]
    if (sdc_cpu_wmat_begin(be, &wm, w, K, SDC_CPU_GEMM_TILE_M, c.team) != 0) return;
    float *col = NULL;
    if (!c.pointwise && !(col = SDC_CPU_SCRATCH(be, c.col_bytes, "sdc_cpu_conv2d im2col workspace"))) {
        sdc_cpu_wmat_end(be, &wm);
        return;
    }

    const float *bd = b ? sdc_cpu_f32(b) : NULL;   // [Co]
    /* one team for the whole convolution: every thread walks the same images and bands; the
     * work-sharing loops inside (im2col rows, GEMM tiles) end in barriers */
#pragma omp parallel num_threads(c.team) if (c.team > 1)
    for (int64_t n0 = 0; n0 < B; n0 += c.n_img) {   // images n0 .. n0 + nb - 1, one GEMM call per band
        const int64_t nb = B - n0 < c.n_img ? B - n0 : c.n_img;
        for (int64_t oh0 = 0; oh0 < Ho; oh0 += band) {
            const int64_t rows = Ho - oh0 < band ? Ho - oh0 : band, cols = rows * Wo;
            float *out = yd + n0 * Co * P + oh0 * Wo;   // out_b[:, oh0*Wo : (oh0+rows)*Wo], rows P apart
            if (c.pointwise) {                          // the images are col [Ci, H*W] each
                const sdc_cpu_gemm_x src = {xd + n0 * Ci * H * W, cols, nb, Ci * H * W, Co * P, NULL, NULL};
                sdc_cpu_gemm_tiles(SDC_CPU_W_LEFT, Co, cols, 0, K, &wm, &src, bd, out, P);   // = w . src_b + b
                continue;
            }
            for (int64_t k0 = 0; k0 < K; k0 += sdc_cpu_k_chunk(Co, K, k0)) {
                const int64_t kc = sdc_cpu_k_chunk(Co, K, k0);
                for (int64_t i = 0; i < nb; i++)
                    im2col(col + i * kc * cols, xd + (n0 + i) * Ci * H * W, H, W, KH, KW, stride, pad, Wo, oh0, rows,
                           k0, kc);
                const sdc_cpu_gemm_x src = {col, cols, nb, kc * cols, Co * P, NULL, NULL};   // [kc, rows*Wo] each
                // out_b (= b[Co] at k0 0) += w[Co, k0 : k0+kc] . src_b[kc, rows*Wo]
                sdc_cpu_gemm_tiles(SDC_CPU_W_LEFT, Co, cols, k0, k0 + kc, &wm, &src, bd, out, P);
            }
        }
    }
    sdc_cpu_scratch_free(be, col, c.col_bytes);
    sdc_cpu_wmat_end(be, &wm);
}
