/* backend.h - the interface every compute backend implements (CPU now, CUDA later).
 *
 * Model code sees only sdc_backend and the ops in backend/ops.h; it never knows which backend runs.
 * A backend is a vtable plus its private context. Every byte of device memory goes through
 * sdc_tensor_new / sdc_backend_alloc, which count current and peak bytes by kind in be->stats.
 *
 * Threading: a backend and its tensors are used from one thread at a time; the backend may use
 * worker threads of its own inside an op. */
#ifndef SDC_BACKEND_BACKEND_H
#define SDC_BACKEND_BACKEND_H

#include "core/log.h"
#include "core/mem.h"
#include "core/tensor.h"
#include "sdc.h"

typedef struct sdc_backend sdc_backend;

typedef enum sdc_unary_op {
    SDC_UNARY_SILU = 0,     /* x * sigmoid(x) */
    SDC_UNARY_GELU,         /* 0.5 x (1 + erf(x / sqrt 2)) */
    SDC_UNARY_GELU_TANH,    /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    SDC_UNARY_QUICK_GELU,   /* x * sigmoid(1.702 x) */
    SDC_UNARY_COUNT
} sdc_unary_op;

typedef enum sdc_binary_op {
    SDC_BINARY_ADD = 0,
    SDC_BINARY_SUB,
    SDC_BINARY_MUL,
    SDC_BINARY_COUNT
} sdc_binary_op;

/* Op slots. All tensors are contiguous and already allocated; shapes were checked by the wrappers in
 * ops.h, so implementations may assume them. Outputs never alias inputs unless the op says so. */
struct sdc_backend_i {
    const char *name;
    void (*destroy)(sdc_backend *be);

    /* memory: raw bytes; counting is done by the caller (sdc_backend_alloc) */
    void *(*alloc)(sdc_backend *be, size_t nbytes);       /* NULL when out of memory */
    void (*release)(sdc_backend *be, void *ptr);
    void (*upload)(sdc_backend *be, void *dst, const void *host_src, size_t nbytes);
    void (*download)(sdc_backend *be, void *host_dst, const void *src, size_t nbytes);
    void (*synchronize)(sdc_backend *be);
    /* Precision is a property of a component, chosen when it is loaded; these two are pure functions of
     * their arguments. f32 != 0: the component computes (and keeps its weights) in f32 even where the
     * backend prefers f16 (--precision f32, a VAE whose config says force_upcast). */
    /* dtype the backend keeps a weight in, given the file's dtype (CPU: always F32; CUDA: F16 unless f32) */
    sdc_dtype (*weight_dtype)(sdc_backend *be, sdc_dtype file_dtype, int f32);
    /* dtype of a component's activations (CPU: always F32; CUDA: F16 unless f32) */
    sdc_dtype (*act_dtype)(sdc_backend *be, int f32);
    /* optional: the most workspace bytes one op may hold in a phase whose largest convolution has an
     * im2col matrix of im2col_elems elements and whose longest attention has `tokens` queries and keys
     * (the planner adds it to each phase) */
    size_t (*workspace_bound)(sdc_backend *be, size_t im2col_elems, int64_t tokens);
    /* optional workspace queries: the SDC_MEM_WORKSPACE bytes the op holds at once when called with these
     * operands (their shapes and dtypes only; no data is read) and memory is there (an op that shrinks its
     * scratch on a full device takes less). The counting backend (backend/count) adds them, so a plan's
     * workspace is exact. An op without a query holds no workspace on this backend. */
    size_t (*conv2d_workspace)(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                               int stride, int pad);
    size_t (*attention_workspace)(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *q,
                                  const sdc_tensor *k, int n_heads);
    size_t (*group_norm_workspace)(sdc_backend *be, const sdc_tensor *x, int groups);
    /* optional: the device-memory budget the auto policy plans for when the user gives none
     * (CPU: MemAvailable - 1 GiB); < 0 when unknown */
    int64_t (*default_budget)(sdc_backend *be);
    /* optional: hand cached-but-free device memory back to the device (called at phase boundaries,
     * after components are freed, so the next phase's peak is its own) */
    void (*trim)(sdc_backend *be);
    /* optional: device memory in use as the driver sees it (cudaMemGetInfo), above the baseline taken
     * when the backend was created, at its peak since the last reset; the allocator samples it whenever
     * its pool grows. The report prints it beside the allocator's own count. */
    size_t (*driver_peak_bytes)(sdc_backend *be);
    void (*driver_peak_reset)(sdc_backend *be);
    /* optional: asynchronous uploads through the backend's pinned staging buffers, for weight loading.
     * staging_acquire returns a host buffer of at least nbytes that the caller fills (e.g. pread into
     * it), waiting until one is free; NULL when nbytes exceeds the staging size (the caller then splits
     * the copy, or uses upload). staging_upload enqueues its copy to dst and returns at once; the
     * buffer is reused only after that copy completed. staging_flush waits for all copies. */
    size_t (*staging_size)(sdc_backend *be);
    void *(*staging_acquire)(sdc_backend *be, size_t nbytes);
    void (*staging_upload)(sdc_backend *be, void *dst, const void *staging, size_t nbytes);
    void (*staging_flush)(sdc_backend *be);

    /* y[..., N] = x[..., K] . w[N, K]^T + b[N]   (b may be NULL) */
    void (*linear)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                   const sdc_tensor *b);
    /* y[B, Co, Ho, Wo] = conv(x[B, Ci, H, W], w[Co, Ci, KH, KW]) + b[Co]   (b may be NULL)
     * Ho = (H + 2 pad - KH) / stride + 1, likewise Wo. Zero padding. */
    void (*conv2d)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                   const sdc_tensor *b, int stride, int pad);
    /* Multi-head scaled dot-product attention, heads interleaved in the channel dimension:
     * y[B, T, H*D] = softmax(q_h k_h^T / sqrt(D) (+ causal mask)) v_h for each head h,
     * q[B, T, H*D], k[B, S, H*D], v[B, S, H*D]. causal: position t attends to s <= t only. */
    void (*attention)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                      const sdc_tensor *v, int n_heads, int causal);
    /* y = (x - mean) / sqrt(var + eps) * w + b over the last dimension; w, b [C] */
    void (*layer_norm)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                       const sdc_tensor *b, float eps);
    /* Group norm of x[B, C, ...] in `groups` groups of C/groups channels (statistics over the
     * group's channels and all spatial positions), then * w[C] + b[C], then SiLU when silu != 0. */
    void (*group_norm)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                       const sdc_tensor *b, int groups, float eps, int silu);
    /* y = op(x), same shape; y may alias x */
    void (*unary)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op);
    /* y = a op b, b broadcast numpy-style against a (same ndim, each b dim equals a's or is 1);
     * y has a's shape and may alias a */
    void (*binary)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b,
                   sdc_binary_op op);
    /* y = x * s; y may alias x */
    void (*scale)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, float s);
    /* y[..., N] = x[..., :N] * gelu(x[..., N:])   with x[..., 2N] (erf gelu) */
    void (*geglu)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
    /* y[T, C] = table[ids[t], :]   with ids an I32 tensor [T] (values checked by the caller) */
    void (*embedding)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids);
    /* y[B, C, 2H, 2W] = nearest-neighbour 2x upsampling of x[B, C, H, W] */
    void (*upsample2x)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
    /* y = concat(a, b) along dimension dim (all other dims equal) */
    void (*concat)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim);
    /* y.ne[i] = x.ne[perm[i]]: y[i0,i1,i2,i3] = x at the permuted index; 4-D (pad with 1s) */
    void (*permute)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const int perm[4]);
    /* y = x converted to y's dtype (same element count) */
    void (*copy)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
    /* y[B, C, H + top + bottom, W + left + right] = x[B, C, H, W] with zeros around it */
    void (*pad2d)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left,
                  int right);
    /* y = x[..., start : start + y.ne[dim], ...] along dimension dim (all other dims equal) */
    void (*slice)(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start);
};

/* Op families, for the per-family time profile. */
typedef enum sdc_op_family {
    SDC_OPF_LINEAR = 0,
    SDC_OPF_CONV,
    SDC_OPF_ATTENTION,
    SDC_OPF_NORM,
    SDC_OPF_ELEMENTWISE,
    SDC_OPF_DATA,
    SDC_OPF_COUNT
} sdc_op_family;

const char *sdc_op_family_name(sdc_op_family f);

typedef struct sdc_op_profile {
    double seconds[SDC_OPF_COUNT];
    uint64_t calls[SDC_OPF_COUNT];
} sdc_op_profile;

struct sdc_backend {
    const struct sdc_backend_i *iface;
    void *ctx;
    sdc_mem_stats stats;
    sdc_logger log;
    int n_threads;
    /* > 0: sdc_tensor_new fails (out of memory) when the counted bytes would pass this, as on a smaller
     * device; tests use it to drive the out-of-memory paths on any backend */
    size_t mem_limit;
    /* non-NULL: every op is synchronised and timed into its family (the report prints it) */
    sdc_op_profile *profile;
};

/* --- the registry: the only place that knows which backends were built --- */
/* sdc_device (SDC_DEVICE_CPU, SDC_DEVICE_CUDA) is the public enum of include/sdc.h. */

const char *sdc_device_name(sdc_device dev);
int sdc_device_available(sdc_device dev);
/* n_threads <= 0: all cores. Returns NULL (and logs why) when the device is not built or fails. */
sdc_backend *sdc_backend_new(sdc_device dev, int n_threads, const sdc_logger *log);
void sdc_backend_free(sdc_backend *be);
sdc_backend *sdc_backend_cpu_new(int n_threads, const sdc_logger *log);
/* Only in builds with -DSDC_CUDA=ON (the registry calls it): the first CUDA device; NULL (logged)
 * when there is none or the driver is too old. */
sdc_backend *sdc_backend_cuda_new(const sdc_logger *log);
/* A counting backend shaped like `like` (backend/count/count_backend.h): no memory, no work, exact
 * counts. NULL (logged) when out of host memory. */
sdc_backend *sdc_backend_count_new(sdc_backend *like);

/* --- memory --- */
/* A tensor in be's memory, counted as `kind`. NULL (logged) when out of memory. Contents undefined. */
sdc_tensor *sdc_tensor_new(sdc_backend *be, sdc_mem_kind kind, sdc_dtype dtype, int ndim,
                           const int64_t *ne);
void sdc_tensor_free(sdc_tensor *t);   /* NULL is harmless */
/* Host f32 values in / out, converted to / from the tensor's dtype. n = sdc_tensor_nelem(t). */
void sdc_tensor_set_f32(sdc_tensor *t, const float *host);
void sdc_tensor_get_f32(const sdc_tensor *t, float *host);
/* Raw bytes in (t->nbytes of them, already in t's dtype). */
void sdc_tensor_set_raw(sdc_tensor *t, const void *host);

#endif
