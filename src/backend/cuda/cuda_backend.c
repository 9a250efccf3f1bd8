/* cuda_backend.c - the CUDA backend: the first device, a compute stream (every kernel, cuBLAS, synchronous
 * copies) and a copy stream (asynchronous weight uploads), the cuBLAS handle with its fixed workspace, the
 * vtable. Memory lives in cuda_alloc.c, the ops in cuda_*.cu by family.
 *
 * Precision: weights and activations are F16 (f32 accumulation everywhere), or F32 or BF16 for a component
 * loaded at that precision (its choice, made at load time: sdc_prec).
 * Errors: every CUDA and cuBLAS call is checked (CUDA_CHECK, CUBLAS_CHECK); a failure becomes the sticky
 * status (backend.h), which cuda_synchronize also collects from the device.
 * Determinism: every op's launch configuration and cuBLAS algorithm depend only on shapes and fixed
 * workspace sizes, and cuBLAS may not use atomics, so results are bit-identical run to run. */
#include <cublas_v2.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_alloc.h"
#include "backend/cuda/cuda_internal.h"

struct sdc_cuda_ctx {
    cudaStream_t stream; /* compute */
    cudaStream_t copy;   /* staging uploads */
    cublasHandle_t cublas;
    void *cublas_ws; /* SDC_CUDA_CUBLAS_WORKSPACE_BYTES, counted as workspace */
    sdc_cuda_lt *lt; /* cuBLASLt: the biased linears (NULL: they fill the bias first) */
    sdc_cuda_pool pool;
    sdc_cuda_staging staging;
    int pool_ready;
    int graphs; /* recorded forwards allowed (SDC_CUDA_GRAPHS=0 turns them off, for comparisons) */
};

static sdc_cuda_ctx *ctx_of(sdc_backend *be) { return (sdc_cuda_ctx *)be->ctx; }

int sdc_cuda_check(sdc_backend *be, cudaError_t err, const char *call, const char *file, int line) {
    const int injected = sdc_fail_now(&be->fail.device_call);
    if (err == cudaSuccess && !injected) return 0;
    if (injected)
        err = cudaErrorUnknown;
    else
        (void)cudaGetLastError();   // a non-sticky error stays with this call, not the next launch
    sdc_sticky_fail(&be->status, &be->log, be->iface->name,
                    err == cudaErrorMemoryAllocation ? SDC_ERR_OOM : SDC_ERR_BACKEND, file, line, call, "%s (%s)%s",
                    cudaGetErrorString(err), cudaGetErrorName(err), injected ? " (injected)" : "");
    return 1;
}

int sdc_cublas_check(sdc_backend *be, int status, const char *call, const char *file, int line) {
    const int injected = sdc_fail_now(&be->fail.device_call);
    cublasStatus_t st = (cublasStatus_t)status;
    if (st == CUBLAS_STATUS_SUCCESS && !injected) return 0;
    if (injected) st = CUBLAS_STATUS_EXECUTION_FAILED;
    sdc_sticky_fail(&be->status, &be->log, be->iface->name,
                    st == CUBLAS_STATUS_ALLOC_FAILED ? SDC_ERR_OOM : SDC_ERR_BACKEND, file, line, call, "%s%s",
                    cublasGetStatusString(st), injected ? " (injected)" : "");
    return 1;
}

cudaStream_t sdc_cuda_stream(sdc_backend *be) { return ctx_of(be)->stream; }
void *sdc_cuda_cublas(sdc_backend *be) { return ctx_of(be)->cublas; }
void *sdc_cuda_cublas_ws(sdc_backend *be) { return ctx_of(be)->cublas_ws; }
sdc_cuda_lt *sdc_cuda_lt_of(sdc_backend *be) { return ctx_of(be)->lt; }

void *sdc_cuda_scratch_alloc(sdc_backend *be, size_t nbytes, const char *what, const char *file, int line) {
    void *p = sdc_fail_now(&be->fail.workspace) ? NULL : sdc_cuda_pool_alloc(&ctx_of(be)->pool, nbytes ? nbytes : 1);
    if (!p) {
        sdc_sticky_fail(&be->status, &be->log, be->iface->name, SDC_ERR_OOM, file, line, "sdc_cuda_scratch_alloc",
                        "no device memory for %zu bytes of %s", nbytes, what);
        return NULL;
    }
    sdc_mem_stats_alloc(&be->stats, SDC_MEM_WORKSPACE, nbytes);
    return p;
}

void sdc_cuda_scratch_free(sdc_backend *be, void *p, size_t nbytes) {
    if (!p) return;
    sdc_cuda_pool_release(&ctx_of(be)->pool, p);
    sdc_mem_stats_free(&be->stats, SDC_MEM_WORKSPACE, nbytes);
}

/* --- memory slots --- */

static void *cuda_alloc(sdc_backend *be, size_t nbytes) { return sdc_cuda_pool_alloc(&ctx_of(be)->pool, nbytes); }

static void cuda_release(sdc_backend *be, void *ptr) {
    sdc_cuda_ctx *c = ctx_of(be);
    /* no upload may land in memory handed out again: wait for the copies only when one lands in this block
     * (a streamed block's prefetch runs on while the forward frees its activations) */
    if (c->staging.copies_pending &&
        sdc_cuda_staging_pending_in(&c->staging, ptr, sdc_cuda_pool_size_of(&c->pool, ptr)))
        sdc_cuda_staging_flush(&c->staging);
    sdc_cuda_pool_release(&c->pool, ptr);
}

static void cuda_upload(sdc_backend *be, void *dst, const void *host_src, size_t nbytes) {
    sdc_cuda_ctx *c = ctx_of(be);
    if (!nbytes) return;
    CUDA_CHECK(be, cudaMemcpyAsync(dst, host_src, nbytes, cudaMemcpyHostToDevice, c->stream));
    CUDA_CHECK(be, cudaStreamSynchronize(c->stream));
}

static void cuda_download(sdc_backend *be, void *host_dst, const void *src, size_t nbytes) {
    sdc_cuda_ctx *c = ctx_of(be);
    if (!nbytes) return;
    sdc_cuda_staging_flush(&c->staging);
    CUDA_CHECK(be, cudaMemcpyAsync(host_dst, src, nbytes, cudaMemcpyDeviceToHost, c->stream));
    CUDA_CHECK(be, cudaStreamSynchronize(c->stream));
}

static void cuda_synchronize(sdc_backend *be) {
    sdc_cuda_ctx *c = ctx_of(be);
    sdc_cuda_staging_flush(&c->staging);
    CUDA_CHECK(be, cudaStreamSynchronize(c->stream));
}

/* The component's precision decides (the loader converts): F16 by default, F32 or BF16 for a component that
 * asks for it. A matrix weight in a block type stays in it: both matrix ops take block-quantized weights
 * (cuda_gemm.cu, cuda_conv.cu; test_cuda_quant: 1271 checks on an H100, conv2d bit-identical to the
 * dequantized weight's). Measured on the H100 (SD 1.5 shapes, GGUF q8_0 / q4_0 with quantized convolutions,
 * 512², 20 steps): PNGs identical to dequantizing at load, under all and phased; peak 1820 / 1346 MiB under
 * all (dequantized: 2801), 1017 / 766 MiB under phased; the UNet loads in 0.14 / 0.08 s (dequantized on the
 * host: 7.9 / 6.4 s); denoise 0.446 / 0.438 s against 0.412 dequantized. KEEP_BLOCK_TYPES 0 dequantizes at
 * load instead. */
#define KEEP_BLOCK_TYPES 1
static sdc_dtype cuda_act_dtype(sdc_backend *be, sdc_prec prec) {
    return sdc_prec_f32(prec) ? SDC_DTYPE_F32 : sdc_prec_bf16(prec) ? SDC_DTYPE_BF16 : SDC_DTYPE_F16;
}
static sdc_dtype cuda_weight_dtype(sdc_backend *be, sdc_dtype file_dtype, sdc_prec prec, int matrix) {
    if (KEEP_BLOCK_TYPES && matrix && sdc_dtype_is_quant(file_dtype)) return file_dtype;
    return cuda_act_dtype(be, prec);
}

/* The im2col band of sdc_cuda_conv2d at its full size: whole images while they fit the cap, else rows of
 * one image (the rule in cuda_conv.cu); plus, for a block-quantized weight, its dequantized copy. */
static size_t cuda_conv2d_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                    int stride, int pad) {
    const int64_t B = x->ne[0], K = x->ne[1] * w->ne[2] * w->ne[3], Ho = y->ne[2], Wo = y->ne[3], P = Ho * Wo;
    const int pointwise = w->ne[2] == 1 && w->ne[3] == 1 && stride == 1 && pad == 0;
    if (B == 0 || w->ne[0] == 0 || P == 0) return 0;
    const size_t es = sdc_dtype_size(y->dtype);
    /* a block-quantized weight, dequantized whole while the op runs */
    const size_t wq = sdc_dtype_is_quant(w->dtype) ? (size_t)(w->ne[0] * K) * es : 0;
    if (pointwise) return wq;
    const int64_t cap = (int64_t)(SDC_CUDA_CONV_WORKSPACE_BYTES / es);
    int64_t n_img = B, rows = Ho;
    if (K * P <= cap) {
        n_img = cap / (K * P) < B ? cap / (K * P) : B;
    } else {
        n_img = 1;
        rows = cap / (K * Wo) < 1 ? 1 : cap / (K * Wo);
    }
    return (size_t)(n_img * K * rows * Wo) * es + wq;
}

/* sdc_cuda_group_norm's partial statistics: 8 bytes per chunk of 4096 elements of each (image, group),
 * and 8 per (image, group) (the rule in cuda_norm.cu). */
static size_t cuda_group_norm_workspace(sdc_backend *be, const sdc_tensor *x, int groups) {
    const int64_t B = x->ne[0], C = x->ne[1], nelem = sdc_tensor_nelem(x);
    if (nelem == 0) return 0;
    const int64_t n = C / groups * (nelem / (B * C)), chunk = 256 * 16, groups_total = B * groups;
    return (size_t)(groups_total * ((n + chunk - 1) / chunk)) * 8 + (size_t)groups_total * 8;
}

/* cuBLAS's fixed workspace, which stays allocated, plus the larger of one convolution's im2col band and
 * the attention's scratch (the two are never held at once; the attention kernels need none, the cuBLAS path
 * for heads wider than 160 at most SDC_CUDA_CONV_WORKSPACE_BYTES: counted whenever a phase has attention);
 * activations at most 4 bytes each. */
static size_t cuda_workspace_bound(sdc_backend *be, size_t im2col_elems, int64_t tokens) {
    const size_t es = sizeof(float);
    size_t conv = im2col_elems > SDC_CUDA_CONV_WORKSPACE_BYTES / es ? SDC_CUDA_CONV_WORKSPACE_BYTES : im2col_elems * es;
    if (tokens > 0) conv = SDC_CUDA_CONV_WORKSPACE_BYTES; /* >= any attention scratch, >= any band */
    return SDC_CUDA_CUBLAS_WORKSPACE_BYTES + conv;
}

/* Free device memory plus what the pool already holds, less a 512 MiB margin. */
static int64_t cuda_default_budget(sdc_backend *be) {
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
        (void)cudaGetLastError();
        return -1;
    }
    const size_t margin = (size_t)512 << 20, have = free_b + ctx_of(be)->pool.reserved;
    return have > margin ? (int64_t)(have - margin) : 0;
}

static void cuda_trim(sdc_backend *be) {
    sdc_cuda_ctx *c = ctx_of(be);
    sdc_cuda_staging_flush(&c->staging);
    const size_t before = c->pool.reserved;
    sdc_cuda_pool_trim(&c->pool);
    SDC_LOGD(&be->log, "cuda trim: pool %.1f -> %.1f MiB (%.1f MiB in use)", (double)before / 1048576.0,
             (double)c->pool.reserved / 1048576.0, (double)c->pool.in_use / 1048576.0);
}

static size_t cuda_driver_peak_bytes(sdc_backend *be) { return ctx_of(be)->pool.driver_peak; }

static void cuda_driver_peak_reset(sdc_backend *be) {
    sdc_cuda_ctx *c = ctx_of(be);
    c->pool.driver_peak = 0;
    sdc_cuda_pool_sample(&c->pool);   // the new window starts from what is in use now
}

static size_t cuda_staging_size(sdc_backend *be) {
    (void)be;
    return SDC_CUDA_STAGING_BYTES;
}
static void *cuda_staging_acquire(sdc_backend *be, size_t nbytes) {
    return sdc_cuda_staging_acquire(&ctx_of(be)->staging, nbytes);
}
static void cuda_staging_upload(sdc_backend *be, void *dst, const void *staging, size_t nbytes) {
    sdc_cuda_staging_upload(&ctx_of(be)->staging, dst, staging, nbytes);
}
static void cuda_staging_flush(sdc_backend *be) { sdc_cuda_staging_flush(&ctx_of(be)->staging); }
static void *cuda_copy_event(sdc_backend *be) { return sdc_cuda_staging_copy_event(&ctx_of(be)->staging); }
static void cuda_compute_wait(sdc_backend *be, void *ev) {
    sdc_cuda_ctx *c = ctx_of(be);
    CUDA_CHECK(be, cudaStreamWaitEvent(c->stream, (cudaEvent_t)ev, 0));
}
static void cuda_event_free(sdc_backend *be, void *ev) { CUDA_CHECK(be, cudaEventDestroy((cudaEvent_t)ev)); }

static void cuda_upload_async(sdc_backend *be, void *dst, const void *host, size_t nbytes) {
    sdc_cuda_staging_upload_host(&ctx_of(be)->staging, dst, host, nbytes);
}

/* Recorded forwards (CUDA graphs): the compute stream is captured in relaxed mode (the pool may still
 * call cudaMalloc while recording; nothing else in a forward is a call that capture forbids). A failed
 * recording or instantiation is logged and reported as NULL without touching the sticky status: the
 * caller runs the forward again, unrecorded. */
static int cuda_graph_begin(sdc_backend *be) {
    sdc_cuda_ctx *c = ctx_of(be);
    if (!c->graphs) return 0;
    if (cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeRelaxed) == cudaSuccess) return 1;
    SDC_LOGD(&be->log, "cuda graph: capture could not begin (%s)", cudaGetErrorString(cudaGetLastError()));
    return 0;
}

static void *cuda_graph_end(sdc_backend *be) {
    sdc_cuda_ctx *c = ctx_of(be);
    cudaGraph_t g = NULL;
    cudaGraphExec_t e = NULL;
    cudaError_t err = cudaStreamEndCapture(c->stream, &g);
    if (err == cudaSuccess) err = cudaGraphInstantiate(&e, g, 0);
    if (g) cudaGraphDestroy(g);
    if (err == cudaSuccess) return e;
    SDC_LOGW(&be->log, "cuda graph: recording failed (%s); the forward runs unrecorded", cudaGetErrorString(err));
    (void)cudaGetLastError();
    return NULL;
}

static void cuda_graph_launch(sdc_backend *be, void *graph) {
    CUDA_CHECK(be, cudaGraphLaunch((cudaGraphExec_t)graph, ctx_of(be)->stream));
}
static void cuda_graph_free(sdc_backend *be, void *graph) {
    CUDA_CHECK(be, cudaGraphExecDestroy((cudaGraphExec_t)graph));
}
static uint64_t cuda_alloc_generation(const sdc_backend *be) {
    return ((const sdc_cuda_ctx *)be->ctx)->pool.generation;
}

/* Page-locked host memory for the host tier and the prefetcher (either thread; the runtime is thread-safe).
 * A refusal is not the backend's error: the caller falls back to pageable memory. */
static void *cuda_pinned_alloc(sdc_backend *be, size_t nbytes) {
    (void)be;
    void *p = NULL;
    if (cudaHostAlloc(&p, nbytes, cudaHostAllocPortable) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}
static void cuda_pinned_free(sdc_backend *be, void *ptr) { CUDA_CHECK(be, cudaFreeHost(ptr)); }

/* Tolerates a partly built backend (creation failures come here too). */
static void cuda_destroy(sdc_backend *be) {
    sdc_cuda_ctx *c = ctx_of(be);
    if (c) {
        if (c->stream) cudaStreamSynchronize(c->stream);
        sdc_cuda_staging_destroy(&c->staging);
        sdc_cuda_lt_free(c->lt);
        if (c->cublas) cublasDestroy(c->cublas);
        if (c->cublas_ws) sdc_cuda_scratch_free(be, c->cublas_ws, SDC_CUDA_CUBLAS_WORKSPACE_BYTES);
        if (be->stats.cur_total)
            SDC_LOGW(&be->log, "sdc_backend_free: cuda backend freed with %zu bytes still allocated",
                     be->stats.cur_total);
        if (c->pool_ready) {
            SDC_LOGD(&be->log,
                     "sdc_backend_free: cuda pool made %zu cudaMalloc and %zu cudaFree calls; driver "
                     "peak %.1f MiB above the baseline",
                     c->pool.n_mallocs, c->pool.n_frees, (double)c->pool.driver_peak / 1048576.0);
            sdc_cuda_pool_destroy(&c->pool);
        }
        if (c->copy) cudaStreamDestroy(c->copy);
        if (c->stream) cudaStreamDestroy(c->stream);
        free(c);
    }
    free(be);
}

#define CUDA_OP_SLOT_(name, family, params, args) SDC_OP_SLOT_INIT(sdc_cuda_, name)
static const struct sdc_backend_i cuda_iface = {.name = "cuda",
                                                .destroy = cuda_destroy,
                                                .alloc = cuda_alloc,
                                                .release = cuda_release,
                                                .upload = cuda_upload,
                                                .download = cuda_download,
                                                .synchronize = cuda_synchronize,
                                                .weight_dtype = cuda_weight_dtype,
                                                .act_dtype = cuda_act_dtype,
                                                .linear_workspace = sdc_cuda_linear_workspace,
                                                .conv2d_workspace = cuda_conv2d_workspace,
                                                .attention_workspace = sdc_cuda_attention_workspace,
                                                .group_norm_workspace = cuda_group_norm_workspace,
                                                .workspace_bound = cuda_workspace_bound,
                                                .default_budget = cuda_default_budget,
                                                .trim = cuda_trim,
                                                .driver_peak_bytes = cuda_driver_peak_bytes,
                                                .driver_peak_reset = cuda_driver_peak_reset,
                                                .staging_size = cuda_staging_size,
                                                .staging_acquire = cuda_staging_acquire,
                                                .staging_upload = cuda_staging_upload,
                                                .staging_flush = cuda_staging_flush,
                                                .pinned_alloc = cuda_pinned_alloc,
                                                .pinned_free = cuda_pinned_free,
                                                .upload_async = cuda_upload_async,
                                                .copy_event = cuda_copy_event,
                                                .compute_wait = cuda_compute_wait,
                                                .event_free = cuda_event_free,
                                                .graph_begin = cuda_graph_begin,
                                                .graph_end = cuda_graph_end,
                                                .graph_launch = cuda_graph_launch,
                                                .graph_free = cuda_graph_free,
                                                .alloc_generation = cuda_alloc_generation,
                                                SDC_BACKEND_OPS(CUDA_OP_SLOT_)};

/* The first device, if the driver and this build can use it; logs why not. */
static int pick_device(const sdc_logger *log, struct cudaDeviceProp *prop) {
    int drv = 0, rt = 0, n = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess || n == 0) {
        (void)cudaGetLastError();
        if (drv == 0)
            SDC_LOGE(log, "sdc_backend_cuda_new: no NVIDIA driver found (%s)", cudaGetErrorString(err));
        else if (err == cudaErrorInsufficientDriver)
            SDC_LOGE(log,
                     "sdc_backend_cuda_new: the NVIDIA driver (CUDA %d.%d) is too old for this sdc (built with "
                     "CUDA %d.%d): update the driver",
                     drv / 1000, drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
        else
            SDC_LOGE(log, "sdc_backend_cuda_new: no CUDA device: %s (driver CUDA %d.%d, runtime %d.%d)",
                     err != cudaSuccess ? cudaGetErrorString(err) : "the driver lists none", drv / 1000,
                     drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
        return -1;
    }
    if ((err = cudaSetDevice(0)) != cudaSuccess || (err = cudaGetDeviceProperties(prop, 0)) != cudaSuccess ||
        (err = cudaFree(NULL)) != cudaSuccess) {   // cudaFree(NULL): the context exists from here
        (void)cudaGetLastError();
        SDC_LOGE(log, "sdc_backend_cuda_new: cannot use CUDA device 0: %s", cudaGetErrorString(err));
        return -1;
    }
    if ((err = sdc_cuda_kernel_probe()) != cudaSuccess) {
        (void)cudaGetLastError();
        SDC_LOGE(log,
                 "sdc_backend_cuda_new: %s (compute capability %d.%d) cannot run this build's kernels "
                 "(built for compute capability 9.0 and newer): %s",
                 prop->name, prop->major, prop->minor, cudaGetErrorString(err));
        return -1;
    }
    return 0;
}

sdc_backend *sdc_backend_cuda_new(const sdc_logger *log) {
    struct cudaDeviceProp prop;
    if (pick_device(log, &prop) != 0) return NULL;
    sdc_backend *be = calloc(1, sizeof *be);
    sdc_cuda_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        SDC_LOGE(log, "sdc_backend_cuda_new: out of host memory");
        free(be);
        free(c);
        return NULL;
    }
    be->iface = &cuda_iface;
    be->ctx = c;
    be->n_threads = 1;
    if (log) be->log = *log;

    const char *fail = NULL;
    cudaError_t err = cudaSuccess;
    if ((err = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess ||
        (err = cudaStreamCreateWithFlags(&c->copy, cudaStreamNonBlocking)) != cudaSuccess)
        fail = "create streams";
    else if (cublasCreate(&c->cublas) != CUBLAS_STATUS_SUCCESS)
        fail = "create the cuBLAS handle";
    /* default math: fp16 inputs run on tensor cores with f32 accumulation, f32 inputs stay f32 (no TF32);
     * split reductions in f32 too; no atomics (the default), so results are reproducible */
    const cublasMath_t math = (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    if (!fail &&
        (CUBLAS_CHECK(be, cublasSetStream(c->cublas, c->stream)) ||
         CUBLAS_CHECK(be, cublasSetMathMode(c->cublas, math)) ||
         CUBLAS_CHECK(be, cublasSetAtomicsMode(c->cublas, CUBLAS_ATOMICS_NOT_ALLOWED))))
        fail = "configure the cuBLAS handle";
    if (!fail) {
        sdc_cuda_pool_init(&c->pool, c->stream, be);   // baseline: context and cuBLAS exist, nothing allocated
        c->pool_ready = 1;
        const char *graphs = getenv("SDC_CUDA_GRAPHS");
        c->graphs = !graphs || strcmp(graphs, "0") != 0;
        sdc_cuda_staging_init(&c->staging, c->copy, c->stream, be);
        c->cublas_ws = SDC_CUDA_SCRATCH(be, SDC_CUDA_CUBLAS_WORKSPACE_BYTES, "cuBLAS workspace");
        if (!c->cublas_ws)
            fail = "allocate the cuBLAS workspace";
        else if (CUBLAS_CHECK(be, cublasSetWorkspace(c->cublas, c->cublas_ws, SDC_CUDA_CUBLAS_WORKSPACE_BYTES)))
            fail = "set the cuBLAS workspace";
        else if (!(c->lt = sdc_cuda_lt_new()))
            SDC_LOGW(log, "sdc_backend_cuda_new: no cuBLASLt handle; biased linears fill the bias first");
    }
    if (fail) {
        (void)cudaGetLastError();
        SDC_LOGE(log, "sdc_backend_cuda_new: cannot %s on %s%s%s", fail, prop.name, err != cudaSuccess ? ": " : "",
                 err != cudaSuccess ? cudaGetErrorString(err) : "");
        cuda_destroy(be);
        return NULL;
    }
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) (void)cudaGetLastError();   // the log line shows 0
    int drv = 0, rt = 0, cublas_ver = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    cublasGetVersion(c->cublas, &cublas_ver);
    SDC_LOGI(&be->log,
             "sdc_backend_cuda_new: %s, compute capability %d.%d, %d SMs, %.1f GiB (%.1f GiB free; %.0f MiB "
             "in use before sdc's first allocation: the driver-seen peak's baseline), driver CUDA %d.%d, runtime "
             "%d.%d, cuBLAS %d, f16 with f32 accumulation",
             prop.name, prop.major, prop.minor, prop.multiProcessorCount, (double)total / 1073741824.0,
             (double)free_b / 1073741824.0, (double)c->pool.baseline / 1048576.0, drv / 1000, drv % 1000 / 10,
             rt / 1000, rt % 1000 / 10, cublas_ver);
    return be;
}
