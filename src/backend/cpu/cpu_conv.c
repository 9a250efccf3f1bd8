/* cpu_conv.c - 2-D convolution as GEMM: y_img[Co, Ho*Wo] = w[Co, Ci*KH*KW] . col[Ci*KH*KW, Ho*Wo].
 *
 * col (im2col) is built a band of output rows at a time in a bounded workspace, and the GEMM writes
 * that band's columns of y in place. A 1x1, stride-1, unpadded convolution needs no im2col: the
 * image itself is col, so the same loop runs with one band and no workspace. */
#include <string.h>

#include "backend/cpu/cpu_backend.h"

/* col[Ci*KH*KW, n_rows*Wo] for output rows [oh0, oh0 + n_rows) of one image x[Ci, H, W]. The col
 * rows (ci, kh, kw) are shared out over the enclosing team (orphaned `omp for`). */
static void im2col(float *col, const float *x, int64_t Ci, int64_t H, int64_t W, int64_t KH, int64_t KW, int stride,
                   int pad, int64_t Wo, int64_t oh0, int64_t n_rows) {
    const int64_t K = Ci * KH * KW, n = n_rows * Wo;
#pragma omp for schedule(static)
    for (int64_t r = 0; r < K; r++) {
        const int64_t ci = r / (KH * KW), kh = r / KW % KH, kw = r % KW;
        const float *xc = x + ci * H * W;   // [H, W]
        float *dst = col + r * n;           // [n_rows, Wo]
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

void sdc_cpu_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                    int stride, int pad) {
    const int64_t B = x->ne[0], Ci = x->ne[1], H = x->ne[2], W = x->ne[3];
    const int64_t Co = w->ne[0], KH = w->ne[2], KW = w->ne[3], Ho = y->ne[2], Wo = y->ne[3];
    const int64_t K = Ci * KH * KW, P = Ho * Wo;
    const float *xd = sdc_cpu_f32(x);   // [B, Ci, H, W]
    const float *wd = sdc_cpu_f32(w);   // [Co, K]
    float *yd = sdc_cpu_f32(y);         // [B, Co, Ho*Wo]
    if (B == 0 || Co == 0 || P == 0) return;

    const int pointwise = KH == 1 && KW == 1 && stride == 1 && pad == 0;
    size_t band = (size_t)Ho;   // output rows per GEMM
    float *col = NULL;
    size_t col_bytes = 0;
    if (!pointwise) {
        const size_t row_bytes = (size_t)(K * Wo) * sizeof(float);
        const size_t want = SDC_CPU_CONV_WORKSPACE_BYTES / row_bytes;
        band = want < 1 ? 1 : want > (size_t)Ho ? (size_t)Ho : want;
        col_bytes = band * row_bytes;
        col = SDC_CPU_SCRATCH(be, col_bytes, "sdc_cpu_conv2d im2col workspace");
        if (!col) return;
    }

    const float *bd = b ? sdc_cpu_f32(b) : NULL;   // [Co]
    sdc_cpu_blas_enter();
    /* one team for the whole convolution: every thread walks the same images and bands; the
     * work-sharing loops inside (im2col rows, GEMM tiles) end in barriers */
#pragma omp parallel num_threads(be->n_threads) if (B * Co * P * K >= 64 * SDC_CPU_PAR_MIN)
    for (int64_t n = 0; n < B; n++) {
        const float *img = xd + n * Ci * H * W;   // [Ci, H, W]
        float *out = yd + n * Co * P;             // [Co, Ho*Wo]
        for (int64_t oh0 = 0; oh0 < Ho; oh0 += (int64_t)band) {
            const int64_t rows = Ho - oh0 < (int64_t)band ? Ho - oh0 : (int64_t)band;
            const float *src = img;   // pointwise: the image is col [Ci, H*W]
            if (!pointwise) {
                im2col(col, img, Ci, H, W, KH, KW, stride, pad, Wo, oh0, rows);
                src = col;   // [K, rows*Wo]
            }
            // out[:, oh0*Wo : (oh0+rows)*Wo] = w[Co, K] . src[K, rows*Wo] + b[Co]
            sdc_cpu_gemm_tiles(0, Co, rows * Wo, K, wd, K, src, rows * Wo, bd, 1, out + oh0 * Wo, P);
        }
    }
    sdc_cpu_blas_leave();
    sdc_cpu_scratch_free(be, col, col_bytes);
}
