/* cudnn_conv.c - 16-bit convolutions through cuDNN (built when CMake finds cuDNN; cudnn_none.c otherwise).
 *
 * cuDNN's implicit-GEMM convolutions read the image in place, where im2col + cuBLAS (cuda_conv.cu) first
 * writes Ci*KH*KW copies of it: for SDXL's 3x3 convolutions that copy costs as much as the GEMM. cuDNN
 * takes the F16 and BF16 convolutions that are not pointwise (a 1x1 convolution is already one GEMM),
 * in NCHW as sdc stores them, accumulating in f32 on tensor cores. F32 stays on im2col + cuBLAS: true
 * f32, no TF32.
 *
 * Determinism: the algorithm for a shape is the first of cuDNN's heuristic list (no timing) that is
 * deterministic and needs at most SDC_CUDA_CONV_WORKSPACE_BYTES of workspace; it depends on the shapes,
 * the device and the cuDNN version only, never on free memory. A shape cuDNN has no such algorithm for
 * stays on im2col + cuBLAS, decided the same way every time. Choices are cached per shape.
 *
 * The workspace the chosen algorithm needs comes from the backend allocator (SDC_CUDA_SCRATCH), so the
 * planner's conv2d_workspace query and the op agree (sdc_cuda_cudnn_conv_workspace serves both). */
#include <cudnn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#define CACHE_SLOTS 256

typedef struct {
    int dtype, n, ci, h, w, co, kh, kw, stride, pad;
} conv_key;

typedef struct {
    conv_key key;
    int used, ok;
    cudnnConvolutionFwdAlgo_t algo;
    cudnnMathType_t math;
    size_t ws;
} conv_choice;

struct sdc_cuda_cudnn {
    cudnnHandle_t handle;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    conv_choice cache[CACHE_SLOTS];
    int n_cached;
};

static int cudnn_check(sdc_backend *be, cudnnStatus_t st, const char *call, const char *file, int line) {
    if (st == CUDNN_STATUS_SUCCESS) return 0;
    sdc_sticky_fail(&be->status, &be->log, be->iface->name,
                    st == CUDNN_STATUS_ALLOC_FAILED ? SDC_ERR_OOM : SDC_ERR_BACKEND, file, line, call, "%s",
                    cudnnGetErrorString(st));
    return 1;
}
#define CUDNN_CHECK(be, call) cudnn_check((be), (call), #call, __FILE__, __LINE__)

sdc_cuda_cudnn *sdc_cuda_cudnn_new(cudaStream_t stream, char *version, size_t version_size) {
    sdc_cuda_cudnn *c = calloc(1, sizeof *c);
    cudnnStatus_t st = c ? cudnnCreate(&c->handle) : CUDNN_STATUS_ALLOC_FAILED;
    if (st != CUDNN_STATUS_SUCCESS) {
        snprintf(version, version_size, "no cuDNN (cudnnCreate: %s)", cudnnGetErrorString(st));
        free(c);
        return NULL;
    }
    if (cudnnSetStream(c->handle, stream) != CUDNN_STATUS_SUCCESS ||
        cudnnCreateTensorDescriptor(&c->x) != CUDNN_STATUS_SUCCESS ||
        cudnnCreateTensorDescriptor(&c->y) != CUDNN_STATUS_SUCCESS ||
        cudnnCreateFilterDescriptor(&c->w) != CUDNN_STATUS_SUCCESS ||
        cudnnCreateConvolutionDescriptor(&c->conv) != CUDNN_STATUS_SUCCESS) {
        snprintf(version, version_size, "no cuDNN (cannot create its descriptors)");
        sdc_cuda_cudnn_free(c);
        return NULL;
    }
    const size_t v = cudnnGetVersion();
    snprintf(version, version_size, "cuDNN %zu.%zu.%zu", v / 10000, v / 100 % 100, v % 100);
    return c;
}

void sdc_cuda_cudnn_free(sdc_cuda_cudnn *c) {
    if (!c) return;
    if (c->conv) cudnnDestroyConvolutionDescriptor(c->conv);
    if (c->w) cudnnDestroyFilterDescriptor(c->w);
    if (c->y) cudnnDestroyTensorDescriptor(c->y);
    if (c->x) cudnnDestroyTensorDescriptor(c->x);
    if (c->handle) cudnnDestroy(c->handle);
    free(c);
}

/* The descriptors for this convolution (y[n, co, ho, wo] = x[n, ci, h, w] * w[co, ci, kh, kw]); 0 on
 * success. Errors here are cuDNN refusing the shape, not a failure of the backend: no sticky status. */
static int describe(sdc_cuda_cudnn *c, const conv_key *k, int ho, int wo, cudnnMathType_t math) {
    const cudnnDataType_t t = k->dtype == SDC_DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
    return cudnnSetTensor4dDescriptor(c->x, CUDNN_TENSOR_NCHW, t, k->n, k->ci, k->h, k->w) != CUDNN_STATUS_SUCCESS ||
        cudnnSetTensor4dDescriptor(c->y, CUDNN_TENSOR_NCHW, t, k->n, k->co, ho, wo) != CUDNN_STATUS_SUCCESS ||
        cudnnSetFilter4dDescriptor(c->w, t, CUDNN_TENSOR_NCHW, k->co, k->ci, k->kh, k->kw) != CUDNN_STATUS_SUCCESS ||
        cudnnSetConvolution2dDescriptor(c->conv, k->pad, k->pad, k->stride, k->stride, 1, 1, CUDNN_CROSS_CORRELATION,
                                        CUDNN_DATA_FLOAT) != CUDNN_STATUS_SUCCESS ||
        cudnnSetConvolutionMathType(c->conv, math) != CUDNN_STATUS_SUCCESS;
}

/* The cached choice for these shapes, made on first sight; NULL when cuDNN does not take them. */
static const conv_choice *choose(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                 int stride, int pad) {
    sdc_cuda_cudnn *c = sdc_cuda_cudnn_of(be);
    if (!c || (y->dtype != SDC_DTYPE_F16 && y->dtype != SDC_DTYPE_BF16)) return NULL;
    if (w->ne[2] == 1 && w->ne[3] == 1 && stride == 1 && pad == 0) return NULL;   // pointwise: one GEMM
    for (int d = 0; d < 4; d++)
        if (x->ne[d] > INT32_MAX || w->ne[d] > INT32_MAX || y->ne[d] > INT32_MAX) return NULL;
    conv_key k;
    memset(&k, 0, sizeof k);   // compared with memcmp
    k.dtype = (int)y->dtype;
    k.n = (int)x->ne[0], k.ci = (int)x->ne[1], k.h = (int)x->ne[2], k.w = (int)x->ne[3];
    k.co = (int)w->ne[0], k.kh = (int)w->ne[2], k.kw = (int)w->ne[3], k.stride = stride, k.pad = pad;
    for (int i = 0; i < c->n_cached; i++)
        if (!memcmp(&c->cache[i].key, &k, sizeof k)) return c->cache[i].ok ? &c->cache[i] : NULL;

    conv_choice ch;
    memset(&ch, 0, sizeof ch);
    ch.key = k;
    ch.used = 1;
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    if (!describe(c, &k, (int)y->ne[2], (int)y->ne[3], CUDNN_TENSOR_OP_MATH) &&
        cudnnGetConvolutionForwardAlgorithm_v7(c->handle, c->x, c->w, c->conv, c->y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                               &n, perf) == CUDNN_STATUS_SUCCESS) {
        for (int i = 0; i < n && !ch.ok; i++) {
            if (perf[i].status != CUDNN_STATUS_SUCCESS || perf[i].determinism != CUDNN_DETERMINISTIC ||
                perf[i].memory > SDC_CUDA_CONV_WORKSPACE_BYTES)
                continue;
            ch.ok = 1;
            ch.algo = perf[i].algo;
            ch.math = perf[i].mathType;
            ch.ws = perf[i].memory;
        }
    }
    /* the table is small: when full, the oldest half makes room (a model has a few dozen shapes) */
    if (c->n_cached == CACHE_SLOTS) {
        memmove(c->cache, c->cache + CACHE_SLOTS / 2, sizeof c->cache[0] * (CACHE_SLOTS / 2));
        c->n_cached = CACHE_SLOTS / 2;
    }
    c->cache[c->n_cached] = ch;
    SDC_LOGD(&be->log, "cudnn conv %dx%dx%dx%d * %dx%dx%dx%d s%d p%d %s: %s algo %d, %zu bytes of workspace", k.n, k.ci,
             k.h, k.w, k.co, k.ci, k.kh, k.kw, stride, pad, sdc_dtype_name(y->dtype),
             ch.ok ? "cuDNN" : "im2col (cuDNN offers none)", (int)ch.algo, ch.ws);
    return ch.ok ? &c->cache[c->n_cached++] : (c->n_cached++, NULL);
}

size_t sdc_cuda_cudnn_conv_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                     int stride, int pad) {
    const conv_choice *ch = choose(be, y, x, w, stride, pad);
    return ch ? ch->ws : SIZE_MAX;
}

int sdc_cuda_cudnn_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const void *w_data, const sdc_tensor *w,
                          float beta, int stride, int pad) {
    const conv_choice *ch = choose(be, y, x, w, stride, pad);
    if (!ch) return 0;
    sdc_cuda_cudnn *c = sdc_cuda_cudnn_of(be);
    if (describe(c, &ch->key, (int)y->ne[2], (int)y->ne[3], ch->math)) {
        CUDNN_CHECK(be, CUDNN_STATUS_BAD_PARAM);   // the same shapes were accepted when chosen
        return 1;
    }
    void *ws = NULL;
    if (ch->ws && !(ws = SDC_CUDA_SCRATCH(be, ch->ws, "cuDNN convolution workspace"))) return 1;
    const float alpha = 1.0f;
    CUDNN_CHECK(be,
                cudnnConvolutionForward(c->handle, &alpha, c->x, x->data, c->w, w_data, c->conv, ch->algo, ws, ch->ws,
                                        &beta, c->y, y->data));
    sdc_cuda_scratch_free(be, ws, ch->ws);
    return 1;
}
