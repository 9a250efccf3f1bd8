/* cuda_conv.cu - 2-D convolution as cuBLAS GEMMs: for each image, seen column-major,
 *   y_img^T[P, Co] = col^T[P, K] . (w[Co, K] as [K, Co]) (+ bias),   P = Ho*Wo, K = Ci*KH*KW,
 * where col[K, P] is the im2col matrix. A 1x1, stride-1, unpadded convolution needs no im2col: the
 * image itself is col, and one strided-batched GEMM does the whole batch.
 *
 * Otherwise col is built in a workspace of at most SDC_CUDA_CONV_WORKSPACE_BYTES: several whole images
 * when they fit (one strided-batched GEMM), else a band of output rows of one image at a time, the GEMM
 * writing that band's rows of y in place (ldc = P). The split depends only on the shapes, so results are
 * reproducible. Without room for that workspace the op does nothing and the backend's status becomes
 * SDC_ERR_OOM (backend.h).
 *
 * A block-quantized weight (a GGUF UNet's) is dequantized whole into a second workspace in x's dtype
 * first (a convolution's weight is small: at most 1280 x 11520 elements in SD's UNets), then used as a
 * float one: the same GEMMs on the same values as a weight stored dequantized. */
#include "backend/cuda/cuda_common.cuh"

struct conv_geom {
    int Ci, H, W, KH, KW, stride, pad, Ho, Wo;
};

/* col[img][r][p] for n_img images, r = (ci, kh, kw) < K, p < n_rows*Wo (output rows oh0...): the input
 * pixel under kernel tap (kh, kw) for output position p, or 0 in the padding. A block row (blockIdx.y)
 * per col row, so the tap and the source plane are worked out once; threads along p (coalesced writes,
 * stride-1 reads along an input row). With V > 1 (Wo % V == 0) each thread makes V neighbouring outputs
 * of one output row and stores them as one 16-byte vector: the index arithmetic is per vector, not per
 * element, which is what bounded this kernel (it is pure data movement: the col values are the same). */
template <typename T, int V>
__global__ void im2col_kernel(T *col, const T *x, conv_geom g, int oh0, int n_rows, int64_t n_col_rows) {
    const int P = n_rows * g.Wo, KK = g.KH * g.KW, K = g.Ci * KK, PV = P / V;
    const T zero = sdc_from_f<T>(0.0f);
    for (int64_t row = blockIdx.y; row < n_col_rows; row += gridDim.y) {
        const int64_t img = row / K;
        const int r = (int)(row % K), ci = r / KK, kh = r % KK / g.KW, kw = r % g.KW;
        const T *xc = x + (img * g.Ci + ci) * g.H * g.W;   // [H, W]
        T *dst = col + row * P;                            // [n_rows, Wo]
        for (int v = blockIdx.x * blockDim.x + threadIdx.x; v < PV; v += gridDim.x * blockDim.x) {
            const int p0 = v * V, q = p0 / g.Wo, ow0 = p0 - q * g.Wo;
            const int ih = (oh0 + q) * g.stride - g.pad + kh;
            uint4 out;   // V elements (V == 1: only the first is used)
            T *e = reinterpret_cast<T *>(&out);
            if (ih < 0 || ih >= g.H) {
#pragma unroll
                for (int j = 0; j < V; j++) e[j] = zero;
            } else {
                const T *xr = xc + (int64_t)ih * g.W;
#pragma unroll
                for (int j = 0; j < V; j++) {
                    const int iw = (ow0 + j) * g.stride - g.pad + kw;
                    e[j] = iw >= 0 && iw < g.W ? xr[iw] : zero;
                }
            }
            if (V == 1)
                dst[p0] = e[0];
            else
                *reinterpret_cast<uint4 *>(dst + p0) = out;
        }
    }
}

/* Whether this build has code for the device at all (lazy module loading would otherwise tell only at
 * the first launch). */
extern "C" cudaError_t sdc_cuda_kernel_probe(void) {
    cudaFuncAttributes a;
    cudaError_t err = cudaFuncGetAttributes(&a, im2col_kernel<float, 1>);
    return err != cudaSuccess ? err : cudaFuncGetAttributes(&a, im2col_kernel<__half, 1>);
}

template <typename T>
static void im2col_launch(cudaStream_t s, T *col, const T *x, const conv_geom &g, int oh0, int n_rows, int64_t n_img) {
    constexpr int V = 16 / (int)sizeof(T);   // outputs per 16-byte store
    const int P = n_rows * g.Wo, vec = g.Wo % V == 0 ? V : 1, items = P / vec;
    const int threads = items >= 256 ? 256 : (items + 31) / 32 * 32;
    const int64_t rows = n_img * g.Ci * g.KH * g.KW;
    const dim3 grid((unsigned)((items + threads - 1) / threads), (unsigned)(rows < 65535 ? rows : 65535));
    if (vec == V)
        im2col_kernel<T, V><<<grid, threads, 0, s>>>(col, x, g, oh0, n_rows, rows);
    else
        im2col_kernel<T, 1><<<grid, threads, 0, s>>>(col, x, g, oh0, n_rows, rows);
}

static void im2col(sdc_backend *be, sdc_dtype dt, void *col, const void *x, const conv_geom &g, int oh0, int n_rows,
                   int64_t n_img) {
    cudaStream_t s = sdc_cuda_stream(be);
    SDC_FLOAT_DISPATCH(dt, T, im2col_launch<T>(s, (T *)col, (const T *)x, g, oh0, n_rows, n_img));
    SDC_CUDA_LAUNCHED(be);
}

extern "C" void sdc_cuda_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                const sdc_tensor *b, int stride, int pad) {
    const int64_t B = x->ne[0], Ci = x->ne[1], H = x->ne[2], W = x->ne[3];
    const int64_t Co = w->ne[0], KH = w->ne[2], KW = w->ne[3], Ho = y->ne[2], Wo = y->ne[3];
    const int64_t K = Ci * KH * KW, P = Ho * Wo;
    const sdc_dtype dt = y->dtype;
    assert(x->dtype == dt && (w->dtype == dt || sdc_dtype_is_quant(w->dtype)) && (!b || b->dtype == dt));
    if (B == 0 || Co == 0 || P == 0) return;
    const void *wd = w->data;   // [Co, K] in dt
    void *wq = NULL;
    const size_t wq_bytes = sdc_dtype_is_quant(w->dtype) ? (size_t)(Co * K) * sdc_dtype_size(dt) : 0;
    if (wq_bytes) {
        if (!(wq = SDC_CUDA_SCRATCH(be, wq_bytes, "sdc_cuda_conv2d dequantized weight"))) return;
        sdc_cuda_dequant_rows(be, w->dtype, w->data, dt, wq, Co, K);
        wd = wq;
    }
    const int tf32 = w->conv_tf32;   // an F32_UPCAST component's kernel: TF32 products (backend.h)
    const conv_geom g = {(int)Ci, (int)H, (int)W, (int)KH, (int)KW, stride, pad, (int)Ho, (int)Wo};
    const size_t es = sdc_dtype_size(dt);
    char *yd = (char *)y->data;   // [B, Co, P]

    const int pointwise = KH == 1 && KW == 1 && stride == 1 && pad == 0;
    int64_t n_img = B, rows = Ho;   // images per GEMM; output rows per band
    void *col = NULL;
    size_t col_bytes = 0;
    if (!pointwise) {
        const int64_t cap = (int64_t)(SDC_CUDA_CONV_WORKSPACE_BYTES / es);   // elements
        if (K * P <= cap) {
            n_img = cap / (K * P) < B ? cap / (K * P) : B;
        } else {
            n_img = 1;
            rows = cap / (K * Wo) < 1 ? 1 : cap / (K * Wo);
        }
        col_bytes = (size_t)(n_img * K * rows * Wo) * es;
        if (!(col = SDC_CUDA_SCRATCH(be, col_bytes, "sdc_cuda_conv2d im2col workspace"))) {
            sdc_cuda_scratch_free(be, wq, wq_bytes);
            return;
        }
    }

    float beta = 0.0f;
    if (b) {   // y[b, co, p] = bias[co]; the GEMMs add to it
        sdc_cuda_fill_bias(be, dt, yd, b->data, B, Co, P);
        beta = 1.0f;
    }
    if (pointwise) {
        // per image: y^T[P, Co] = (x_img[Ci, P] as [P, Ci]) . (w[Co, Ci] as [Ci, Co])
        sdc_cuda_gemm(be, dt, tf32, 0, 0, P, Co, Ci, x->data, P, Ci * P, wd, Ci, 0, beta, yd, P, Co * P, B);
        sdc_cuda_scratch_free(be, wq, wq_bytes);
        return;
    }
    for (int64_t b0 = 0; b0 < B; b0 += n_img) {
        const int64_t nb = B - b0 < n_img ? B - b0 : n_img;
        const char *xb = (const char *)x->data + (size_t)(b0 * Ci * H * W) * es;   // [nb, Ci, H, W]
        for (int64_t oh0 = 0; oh0 < Ho; oh0 += rows) {
            const int64_t nr = Ho - oh0 < rows ? Ho - oh0 : rows, Pb = nr * Wo;
            im2col(be, dt, col, xb, g, (int)oh0, (int)nr, nb);   // [nb, K, Pb]
            // y_img^T[oh0*Wo : +Pb, Co] (ldc P) = (col_img[K, Pb] as [Pb, K]) . (w[Co, K] as [K, Co])
            sdc_cuda_gemm(be, dt, tf32, 0, 0, Pb, Co, K, col, Pb, K * Pb, wd, K, 0, beta,
                          yd + (size_t)(b0 * Co * P + oh0 * Wo) * es, P, Co * P, nb);
        }
    }
    sdc_cuda_scratch_free(be, col, col_bytes);
    sdc_cuda_scratch_free(be, wq, wq_bytes);
}
