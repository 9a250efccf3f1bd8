/* backend.h - the interface every compute backend implements (cpu/, cuda/).
 *
 * Model code sees only sdc_backend and the ops in backend/ops.h; it never knows which backend runs.
 * A backend is a vtable plus its private context. Every byte of device memory goes through
 * sdc_tensor_new or a backend's scratch allocator, which count current and peak bytes by kind in
 * be->stats.
 *
 * Errors: ops return nothing. A failure inside one (a device error, no memory for its workspace)
 * becomes the backend's sticky status: the first error wins and is logged once through be->log,
 * every later op is a no-op, and sdc_backend_sync returns it. Callers check it at synchronisation
 * points (the end of a forward pass); the library never prints or aborts.
 *
 * Threading: a backend and its tensors are used from one thread at a time; the backend may use
 * worker threads of its own inside an op. */
#ifndef SDC_BACKEND_BACKEND_H
#define SDC_BACKEND_BACKEND_H

#include "core/log.h"
#include "core/mem.h"
#include "core/status.h"
#include "core/tensor.h"
#include "sdc.h"

#include <stdlib.h>

typedef struct sdc_backend sdc_backend;

/* A component's compute precision, chosen when it is loaded (a pure function of the model and the
 * options, never of free memory). The values are fixed: 0 and 1 were once a flag "f32".
 *   AUTO  the backend's preference: f32 on the CPU, f16 with f32 accumulation on CUDA
 *   F32   f32 everywhere (--precision f32; a VAE whose config says force_upcast; T5)
 *   BF16  bf16 with f32 accumulation where the backend has it (CUDA), else as AUTO: Flux's components,
 *         whose activations overflow f16 in real checkpoints (a need for f32's range, not a wish for bf16)
 *   BF16_ALL  --precision bf16, every component: CUDA as BF16; the CPU also multiplies in bf16 (its
 *         matrix weights kept in bf16, marked matmul_bf16: both operands of their products rounded to
 *         bf16, f32 sums), its activations and other ops staying f32
 *   F32_UPCAST  a VAE whose config says force_upcast (at the default precision): f32 as F32, except that
 *         its convolution kernels are marked conv_tf32 and CUDA multiplies them on TF32 tensor cores (f32
 *         sums), as torch does by default for cuDNN convolutions (cudnn.allow_tf32), under which diffusers'
 *         upcast decode runs; the CPU has no TF32 and computes F32 */
typedef enum sdc_prec {
    SDC_PREC_AUTO = 0,
    SDC_PREC_F32 = 1,
    SDC_PREC_BF16 = 2,
    SDC_PREC_BF16_ALL = 3,
    SDC_PREC_F32_UPCAST = 4
} sdc_prec;
/* Whether a matrix weight of a component at precision p is marked matmul_bf16 (the loader's rule) */
static inline int sdc_prec_matmul_bf16(sdc_prec p) { return p == SDC_PREC_BF16_ALL; }
/* Whether a convolution kernel of a component at precision p is marked conv_tf32 (the loader's rule) */
static inline int sdc_prec_conv_tf32(sdc_prec p) { return p == SDC_PREC_F32_UPCAST; }
/* 1 for the precisions whose activations are f32 on every backend */
static inline int sdc_prec_f32(sdc_prec p) { return p == SDC_PREC_F32 || p == SDC_PREC_F32_UPCAST; }
/* 1 for the precisions whose 16-bit compute type, where a backend has one, is bf16 */
static inline int sdc_prec_bf16(sdc_prec p) { return p == SDC_PREC_BF16 || p == SDC_PREC_BF16_ALL; }

typedef enum sdc_unary_op {
    SDC_UNARY_SILU = 0,   /* x * sigmoid(x) */
    SDC_UNARY_GELU,       /* 0.5 x (1 + erf(x / sqrt 2)) */
    SDC_UNARY_GELU_TANH,  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    SDC_UNARY_QUICK_GELU, /* x * sigmoid(1.702 x) */
    SDC_UNARY_COUNT
} sdc_unary_op;

typedef enum sdc_binary_op {
    SDC_BINARY_ADD = 0,
    SDC_BINARY_SUB,
    SDC_BINARY_MUL,
    SDC_BINARY_COUNT
} sdc_binary_op;

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

/* --- the ops, declared once ---
 * SDC_BACKEND_OPS(X) calls X(name, family, params, args) for every op:
 *   name    the slot sdc_backend_i.name, the checked wrapper sdc_<name>() of ops.h, and each backend's
 *           implementation (sdc_cpu_<name>, sdc_cpu_ref_<name>, sdc_cuda_<name>)
 *   family  the op family its time is profiled under
 *   params  the parameters after `sdc_backend *be, sdc_tensor *y` (the output), parenthesised
 *   args    the same parameters' names, parenthesised
 * Adding an op: one line here, its shape check in ops.c, and an implementation per backend.
 * All tensors are contiguous and already allocated; shapes were checked by the wrappers in ops.c, so
 * implementations may assume them. Outputs never alias inputs unless the op says so. */
#define SDC_BACKEND_OPS(X)                                                                                          \
    /* y[..., N] = x[..., K] . w[N, K]^T + b[N]   (b may be NULL). w is a matrix weight: in the dtype the   \
     * backend's weight_dtype keeps it in (on the CPU: F32, F16, BF16 or a block type, widened per tile) */       \
    X(linear, SDC_OPF_LINEAR, (const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b), (x, w, b))           \
    /* y = op(linear(x, w, b)): the linear, then the unary op on its result (a backend may apply op in the    \
     * GEMM's epilogue, before the rounding to y's dtype: CUDA does for GELU_TANH with a bias) */     \
    X(linear_act, SDC_OPF_LINEAR, (const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b, sdc_unary_op op), \
      (x, w, b, op))                                                                                                \
    /* y[B, Co, Ho, Wo] = conv(x[B, Ci, H, W], w[Co, Ci, KH, KW]) + b[Co]   (b may be NULL)             \
     * Ho = (H + 2 pad - KH) / stride + 1, likewise Wo. Zero padding. w is a matrix weight, as linear's. */           \
    X(conv2d, SDC_OPF_CONV, (const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b, int stride, int pad),   \
      (x, w, b, stride, pad))                                                                                       \
    /* Multi-head scaled dot-product attention, heads interleaved in the channel dimension:             \
     * y[B, T, H*D] = softmax(q_h k_h^T / sqrt(D) (+ causal mask)) v_h for each head h,                  \
     * q[B, T, H*D], k[B, S, H*D], v[B, S, H*D]. causal: position t attends to s <= t only. */           \
    X(attention, SDC_OPF_ATTENTION,                                                                                 \
      (const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v, int n_heads, int causal),                     \
      (q, k, v, n_heads, causal))                                                                                   \
    /* y = (x - mean) / sqrt(var + eps) * w + b over the last dimension; w, b [C] */                                \
    X(layer_norm, SDC_OPF_NORM, (const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b, float eps),         \
      (x, w, b, eps))                                                                                               \
    /* Group norm of x[B, C, ...] in `groups` groups of C/groups channels (statistics over the          \
     * group's channels and all spatial positions), then * w[C] + b[C], then SiLU when silu != 0. */           \
    X(group_norm, SDC_OPF_NORM,                                                                                     \
      (const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b, int groups, float eps, int silu),             \
      (x, w, b, groups, eps, silu))                                                                                 \
    /* y = op(x), same shape; y may alias x */                                                                      \
    X(unary, SDC_OPF_ELEMENTWISE, (const sdc_tensor *x, sdc_unary_op op), (x, op))                                  \
    /* y = a op b, b broadcast numpy-style against a (same ndim, each b dim equals a's or is 1);         \
     * y has a's shape and may alias a */          \
    X(binary, SDC_OPF_ELEMENTWISE, (const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op), (a, b, op))        \
    /* y = x * s; y may alias x */                                                                                  \
    X(scale, SDC_OPF_ELEMENTWISE, (const sdc_tensor *x, float s), (x, s))                                           \
    /* y[..., N] = x[..., :N] * gelu(x[..., N:])   with x[..., 2N] (erf gelu) */                                    \
    X(geglu, SDC_OPF_ELEMENTWISE, (const sdc_tensor *x), (x))                                                       \
    /* y[T, C] = table[ids[t], :]   with ids an I32 tensor [T] (values checked by the caller) */                    \
    X(embedding, SDC_OPF_DATA, (const sdc_tensor *table, const sdc_tensor *ids), (table, ids))                      \
    /* y[B, C, 2H, 2W] = nearest-neighbour 2x upsampling of x[B, C, H, W] */                                        \
    X(upsample2x, SDC_OPF_DATA, (const sdc_tensor *x), (x))                                                         \
    /* y = concat(a, b) along dimension dim (all other dims equal) */                                               \
    X(concat, SDC_OPF_DATA, (const sdc_tensor *a, const sdc_tensor *b, int dim), (a, b, dim))                       \
    /* y.ne[i] = x.ne[perm[i]]: y[i0,i1,i2,i3] = x at the permuted index; 4-D (pad with 1s) */                      \
    X(permute, SDC_OPF_DATA, (const sdc_tensor *x, const int perm[4]), (x, perm))                                   \
    /* y = x converted to y's dtype (same element count); a block-type x (a quantized weight, rows of  \
     * whole blocks) is dequantized into a float y (F32, F16 or BF16) */            \
    X(copy, SDC_OPF_DATA, (const sdc_tensor *x), (x))                                                               \
    /* y[B, C, H + top + bottom, W + left + right] = x[B, C, H, W] with zeros around it */                          \
    X(pad2d, SDC_OPF_DATA, (const sdc_tensor *x, int top, int bottom, int left, int right),                         \
      (x, top, bottom, left, right))                                                                                \
    /* y = x[..., start : start + y.ne[dim], ...] along dimension dim (all other dims equal) */                     \
    X(slice, SDC_OPF_DATA, (const sdc_tensor *x, int dim, int64_t start), (x, dim, start))                          \
    /* y = x / sqrt(mean(x^2) + eps) * w over the last dimension; w [C]. T5's and Flux's RMS norm: no mean \
     * subtracted, no bias; the mean of squares is taken in f32 (or wider) whatever x's dtype. */        \
    X(rms_norm, SDC_OPF_NORM, (const sdc_tensor *x, const sdc_tensor *w, float eps), (x, w, eps))                   \
    /* Rotary position embedding on interleaved pairs, per head: for x[B, T, H*D] (D even) and pair    \
     * i < D/2 of each head at position t, with c = cs[t, i], s = sn[t, i] (F32 tables [T, D/2]        \
     * whatever x's dtype): y[.., 2i] = x[.., 2i] c - x[.., 2i+1] s, y[.., 2i+1] = x[.., 2i+1] c +     \
     * x[.., 2i] s. y may alias x. */            \
    X(rope, SDC_OPF_ELEMENTWISE, (const sdc_tensor *x, const sdc_tensor *cs, const sdc_tensor *sn, int heads),      \
      (x, cs, sn, heads))                                                                                           \
    /* Modulated layer norm (adaptive LayerNorm, no affine): y[b, t, :] = (x[b, t, :] - mean) /        \
     * sqrt(var + eps) * (1 + scale[b, :]) + shift[b, :] for x[B, T, C], shift and scale [B, C]. */            \
    X(layer_norm_mod, SDC_OPF_NORM,                                                                                 \
      (const sdc_tensor *x, const sdc_tensor *shift, const sdc_tensor *scale, float eps), (x, shift, scale, eps))   \
    /* Gated residual (Flux, SD3): y[b, t, :] = x[b, t, :] + a[b, t, :] * g[b, :]   \
     * for x, a [B, T, C] and g [B, C]. y may alias x. */                               \
    X(add_gated, SDC_OPF_ELEMENTWISE, (const sdc_tensor *x, const sdc_tensor *a, const sdc_tensor *g), (x, a, g))   \
    /* Multi-head attention with an additive bias (T5's relative positions), heads interleaved as in     \
     * attention: y[B, T, H*D] = softmax(scale * q_h k_h^T + bias[h]) v_h, bias[H, T, S] shared by the     \
     * batch, in q's dtype, finite; no mask. T5 passes scale 1 (its q is pre-scaled). */          \
    X(attention_bias, SDC_OPF_ATTENTION,                                                                            \
      (const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v, const sdc_tensor *bias, int n_heads,          \
       float scale),                                                                                                \
      (q, k, v, bias, n_heads, scale))                                                                              \
    /* Group norm in two halves, for statistics gathered over tiles (model/vae_tiled.c). \
     * group_norm_stats: y F32 [B, groups, 4] = (s_hi, s_lo, q_hi, q_lo) for each group of \
     * x[B, C, ...] (any float dtype; groups as group_norm's): s = sum of x, q = sum of x^2 over \
     * the group, in double, carried as two floats hi = (float)s, lo = (float)(s - hi): hi + lo \
     * is s to about 2^-48 |s|. */                          \
    X(group_norm_stats, SDC_OPF_NORM, (const sdc_tensor *x, int groups), (x, groups))                               \
    /* group_norm_apply: group_norm's normalisation with given statistics, stats F32 [B, groups, 2] \
     * = (mean, rstd) per group: y = (x - mean) * rstd * w[c] + b[c], then SiLU when with_silu != 0; \
     * x, w, b, y of one dtype. Each backend rounds as its group_norm does, so group_norm's own \
     * statistics give group_norm's output. y may alias x. */               \
    X(group_norm_apply, SDC_OPF_NORM,                                                                               \
      (const sdc_tensor *x, const sdc_tensor *stats, const sdc_tensor *w, const sdc_tensor *b, int groups,          \
       int with_silu),                                                                                              \
      (x, stats, w, b, groups, with_silu))

/* Removes one pair of parentheses: SDC_UNPAREN params is the bare parameter list. */
#define SDC_UNPAREN(...) __VA_ARGS__

/* For a backend's files, inside an X of their own (see cpu_backend.h):
 *   SDC_OP_DECLARE(prefix, name, params)  void <prefix><name>(sdc_backend *be, sdc_tensor *y, params);
 *   SDC_OP_SLOT_INIT(prefix, name)        .name = <prefix><name>,   (a vtable initialiser) */
#define SDC_OP_IMPL_NAME(prefix, name) SDC_OP_IMPL_NAME_(prefix, name)
#define SDC_OP_IMPL_NAME_(prefix, name) prefix##name
#define SDC_OP_DECLARE(prefix, name, params) \
    void SDC_OP_IMPL_NAME(prefix, name)(sdc_backend * be, sdc_tensor * y, SDC_UNPAREN params);
#define SDC_OP_SLOT_INIT(prefix, name) .name = SDC_OP_IMPL_NAME(prefix, name),

const char *sdc_op_family_name(sdc_op_family f);

struct sdc_backend_i {
    const char *name;
    void (*destroy)(sdc_backend *be);

    /* memory: raw bytes; counting is done by the caller (sdc_tensor_new) */
    void *(*alloc)(sdc_backend *be, size_t nbytes); /* NULL when out of memory */
    void (*release)(sdc_backend *be, void *ptr);
    void (*upload)(sdc_backend *be, void *dst, const void *host_src, size_t nbytes);
    void (*download)(sdc_backend *be, void *host_dst, const void *src, size_t nbytes);
    /* waits for every op and copy enqueued so far; a device error it meets becomes the sticky status
     * (callers use sdc_backend_sync) */
    void (*synchronize)(sdc_backend *be);
    /* Precision is a property of a component, chosen when it is loaded (sdc_prec); these two are pure
     * functions of their arguments. */
    /* dtype the backend keeps a weight in, given the file's dtype; matrix: the weight feeds linear or
     * conv2d (and nothing else), which may take it in a storage dtype. CPU: a matrix stays F16, BF16 or
     * block-quantized as the file holds it, anything else is F32; CUDA: F16, or F32 at that precision,
     * whatever the file holds and for either kind. The loader converts to it. */
    sdc_dtype (*weight_dtype)(sdc_backend *be, sdc_dtype file_dtype, sdc_prec prec, int matrix);
    /* dtype of a component's activations (CPU: always F32; CUDA: F16, or F32 / BF16 at those precisions) */
    sdc_dtype (*act_dtype)(sdc_backend *be, sdc_prec prec);
    /* optional: the most workspace bytes one op may hold in a phase whose largest convolution has an
     * im2col matrix of im2col_elems elements and whose longest attention has `tokens` queries and keys
     * (the planner adds it to each phase) */
    size_t (*workspace_bound)(sdc_backend *be, size_t im2col_elems, int64_t tokens);
    /* optional workspace queries: the SDC_MEM_WORKSPACE bytes the op holds at once when called with these
     * operands (their shapes and dtypes only; no data is read) and memory is there (an op that shrinks its
     * scratch on a full device takes less). The counting backend (backend/count) adds them, so a plan's
     * workspace is exact. An op without a query holds no workspace on this backend. */
    size_t (*linear_workspace)(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w);
    size_t (*conv2d_workspace)(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                               int stride, int pad);
    /* attention_workspace answers for attention_bias too (the same operand shapes, the same scratch) */
    size_t (*attention_workspace)(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                                  int n_heads);
    size_t (*group_norm_workspace)(sdc_backend *be, const sdc_tensor *x, int groups);
    /* optional: the device-memory budget the auto policy plans for when the user gives none
     * (CPU: MemAvailable - 1 GiB); < 0 when unknown */
    int64_t (*default_budget)(sdc_backend *be);
    /* optional: hand cached-but-free device memory back to the device (called at phase boundaries,
     * after components are freed, so the next phase's peak is its own) */
    void (*trim)(sdc_backend *be);
    /* optional: rows a model runs at a time through a row-wise block whose temporaries are the largest of
     * a forward (a UNet transformer's feed-forward), to bound a host backend's memory; NULL: all at once.
     * A constant of the backend, never of free memory: the planner's counting backend asks its model. */
    int64_t (*row_chunk)(sdc_backend *be);
    /* optional: device memory in use as the driver sees it (cudaMemGetInfo), above the baseline taken
     * when the backend was created, at its peak since the last reset; the allocator samples it whenever
     * its pool grows. The report prints it beside the allocator's own count. */
    size_t (*driver_peak_bytes)(sdc_backend *be);
    void (*driver_peak_reset)(sdc_backend *be);
    /* optional: asynchronous uploads through the backend's pinned staging buffers, for weight loading.
     * staging_acquire returns a host buffer of at least nbytes that the caller fills (e.g. pread into
     * it), waiting until one is free; NULL when nbytes exceeds the staging size (the caller then splits
     * the copy, or uses upload) or when no host memory could be had (sticky SDC_ERR_OOM). staging_upload
     * enqueues its copy to dst and returns at once; the buffer is reused only after that copy completed.
     * staging_flush waits for all copies. */
    size_t (*staging_size)(sdc_backend *be);
    void *(*staging_acquire)(sdc_backend *be, size_t nbytes);
    void (*staging_upload)(sdc_backend *be, void *dst, const void *staging, size_t nbytes);
    void (*staging_flush)(sdc_backend *be);
    /* optional: page-locked host memory, which the host tier and the prefetcher keep weights in
     * (pipeline/host_tier.h); thread-safe (the prefetch thread allocates). NULL when refused. */
    void *(*pinned_alloc)(sdc_backend *be, size_t nbytes);
    void (*pinned_free)(sdc_backend *be, void *ptr);
    /* optional: enqueues host -> dst on the copy stream, ordered after the compute work enqueued so far
     * (dst may have been another tensor's memory) and returns at once; host (pinned_alloc'd, or any host
     * memory) must stay valid and unchanged until staging_flush. */
    void (*upload_async)(sdc_backend *be, void *dst, const void *host, size_t nbytes);
    /* optional, all three or none: copies that finish while compute runs. copy_event records an event
     * after every copy enqueued so far (NULL on failure: sticky status); compute_wait makes the compute
     * work enqueued from now on wait for it (the host does not wait); event_free releases it. A loader
     * that uses them skips staging_flush (sdc_weights_end_async) and waits with compute_wait before the
     * weights' first use. */
    void *(*copy_event)(sdc_backend *be);
    void (*compute_wait)(sdc_backend *be, void *ev);
    void (*event_free)(sdc_backend *be, void *ev);
    /* optional, all five or none: the compute work of a call recorded once and replayed as one graph (CUDA
     * graphs), so the host enqueues it in one go. graph_begin starts recording (0: it could not); the ops
     * enqueued until graph_end are recorded, not run. graph_end returns the graph ready to launch, or NULL
     * when the recording failed (the sticky status is left alone: the caller runs the work again, not
     * recorded). graph_launch enqueues one run of it; graph_free releases it. The recorded ops keep their
     * operands' and temporaries' addresses: alloc_generation counts device allocations and releases, and
     * a graph may be launched only while it is what it was at graph_end (nothing allocated or freed since,
     * so the temporaries' blocks are still free). */
    int (*graph_begin)(sdc_backend *be);
    void *(*graph_end)(sdc_backend *be);
    void (*graph_launch)(sdc_backend *be, void *graph);
    void (*graph_free)(sdc_backend *be, void *graph);
    uint64_t (*alloc_generation)(const sdc_backend *be);

    /* the ops: void (*name)(sdc_backend *be, sdc_tensor *y, params...) for each of SDC_BACKEND_OPS */
#define SDC_OP_SLOT_(name, family, params, args) void (*name)(sdc_backend * be, sdc_tensor * y, SDC_UNPAREN params);
    SDC_BACKEND_OPS(SDC_OP_SLOT_)
#undef SDC_OP_SLOT_
};

/* Failure injection: each countdown, when non-zero, is decremented at every event of its kind, and
 * the event that brings it to 0 fails as if the system had refused it (so 1 fails the next one). */
typedef struct sdc_fail_inject {
    int workspace;   /* an op's workspace allocation (CPU and CUDA scratch) */
    int host_alloc;  /* a host allocation through sdc_backend_host_alloc */
    int device_call; /* a checked CUDA or cuBLAS call (CUDA_CHECK / CUBLAS_CHECK) */
    int pinned;      /* a page-locked host allocation (sdc_backend_pinned_alloc falls back to malloc) */
} sdc_fail_inject;

/* Applies one countdown: 1 when this event is to fail. */
static inline int sdc_fail_now(int *countdown) { return *countdown > 0 && --*countdown == 0; }

typedef struct sdc_op_profile {
    double seconds[SDC_OPF_COUNT];
    uint64_t calls[SDC_OPF_COUNT];
    double flops[SDC_OPF_COUNT]; /* 2 per multiply-add of the products (linear, conv, attention) */
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
    /* the first error since the backend was made or its status cleared; SDC_OK while none (read it
     * through sdc_backend_sync / sdc_backend_status) */
    sdc_status status;
    /* failure injection, for the error-path tests */
    sdc_fail_inject fail;
};

/* --- status --- */

/* Waits for every enqueued op and copy, then returns the sticky status: SDC_OK, SDC_ERR_OOM (a
 * workspace or host buffer could not be had, or the device ran out of memory) or SDC_ERR_BACKEND (a
 * device call failed). */
sdc_status sdc_backend_sync(sdc_backend *be);

/* --- what code outside the backends calls instead of reaching into iface (backend_api.c) --- */
const char *sdc_backend_name(const sdc_backend *be);
/* the dtype a component keeps a weight in (matrix: one that feeds linear or conv2d only) / computes in,
 * at its precision */
sdc_dtype sdc_backend_weight_dtype(sdc_backend *be, sdc_dtype file_dtype, sdc_prec prec, int matrix);
sdc_dtype sdc_backend_act_dtype(sdc_backend *be, sdc_prec prec);
/* the bytes auto may plan for when the user gives no budget; < 0 when unknown */
int64_t sdc_backend_default_budget(sdc_backend *be);
/* hands cached-but-free device memory back (no-op where there is no cache) */
void sdc_backend_trim(sdc_backend *be);
/* the driver's view of device memory in use (cudaMemGetInfo) at its peak since the last reset, above the
 * baseline; sdc_backend_has_driver_peak says whether the backend knows it (else 0) */
int sdc_backend_has_driver_peak(const sdc_backend *be);
size_t sdc_backend_driver_peak(sdc_backend *be);
void sdc_backend_driver_peak_reset(sdc_backend *be);
/* The sticky status as it stands, without waiting for the device. */
sdc_status sdc_backend_status(const sdc_backend *be);
/* Back to SDC_OK, e.g. to retry after SDC_ERR_OOM with more memory freed. Outputs of the ops that
 * were skipped or failed are undefined. After SDC_ERR_BACKEND the device may be unusable. */
void sdc_backend_clear_status(sdc_backend *be);

/* For backends: records error st as the sticky status unless one is already recorded (the first
 * wins), logging "<backend>: <file>:<line>: <call> failed: <what, printf-style>" once through be->log
 * (core/status.h). Evaluates to st. */
#define SDC_BACKEND_FAIL(be, st, call, ...) \
    sdc_sticky_fail(&(be)->status, &(be)->log, (be)->iface->name, (st), __FILE__, __LINE__, (call), __VA_ARGS__)

/* Host memory for a backend's own use (tensor records, conversion buffers, reference scratch): malloc
 * with be->fail.host_alloc applied. NULL when out of memory; the caller reports it. */
static inline void *sdc_backend_host_alloc(sdc_backend *be, size_t nbytes) {
    return sdc_fail_now(&be->fail.host_alloc) ? NULL : malloc(nbytes ? nbytes : 1);
}

/* Host memory for weights on their way to the device: page-locked where the backend offers it, else
 * (no pinned_alloc, refused, or be->fail.pinned) malloc, logged once at info level; *pinned says which.
 * NULL when there is no host memory at all. Thread-safe but for the failure countdown. */
void *sdc_backend_pinned_alloc(sdc_backend *be, size_t nbytes, int *pinned);
void sdc_backend_pinned_free(sdc_backend *be, void *ptr, int pinned);
/* host -> dst (a weight's memory) without waiting where the backend can (upload_async; host stays valid
 * until sdc_backend_sync or the loader's staging_flush), else a plain upload. */
void sdc_backend_upload_async(sdc_backend *be, void *dst, const void *host, size_t nbytes);

/* Whether uploads can run behind compute (copy_event / compute_wait); and those calls, no-ops without. */
int sdc_backend_has_async_copy(const sdc_backend *be);
/* The backend's row_chunk, 0 (all rows at once) without one. */
int64_t sdc_backend_row_chunk(sdc_backend *be);
void *sdc_backend_copy_event(sdc_backend *be);
void sdc_backend_compute_wait(sdc_backend *be, void *ev);
void sdc_backend_event_free(sdc_backend *be, void *ev);
/* Recorded and replayed compute (the iface's graph_* calls; model/graph.h uses them): whether the backend
 * has them, and the calls; begin returns 0, end NULL and the generation 0 without. */
int sdc_backend_has_graphs(const sdc_backend *be);
int sdc_backend_graph_begin(sdc_backend *be);
void *sdc_backend_graph_end(sdc_backend *be);
void sdc_backend_graph_launch(sdc_backend *be, void *graph);
void sdc_backend_graph_free(sdc_backend *be, void *graph);
uint64_t sdc_backend_alloc_generation(const sdc_backend *be);

/* --- rates, for reports only (rates.c) ---
 * What the plan table and the run report quote a stream's expected transfer and compute times at: host ->
 * device bytes per second of a 64 MiB upload (from page-locked memory where the backend has it, as
 * streamed weights take; on the CPU a memcpy), and FLOPs per second of a square linear [n, n] x [n, n]^T
 * in the dtypes a component of precision prec computes in (n grown until one takes 20 ms). Timed on be
 * the first time they are asked for, once per process for each backend kind, thread count and compute
 * dtype; call it only where a report is made, between phases (it borrows memory for a moment, counted as
 * workspace). Nothing may be scheduled by them: results never depend on timing. measured 0: timing
 * failed (no memory for it): the rates are 0. */
typedef struct sdc_backend_rates {
    double h2d_bytes_per_s;
    double flops_per_s;
    int gemm_n;      /* the linear timed */
    sdc_dtype dtype; /* its activations' dtype */
    int measured;
} sdc_backend_rates;
sdc_backend_rates sdc_backend_rates_get(sdc_backend *be, sdc_prec prec);

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
/* A tensor in be's memory, counted as `kind`, of a compute dtype (or, for SDC_MEM_WEIGHTS, a block type
 * whose last dimension is whole blocks). NULL (logged) when out of memory. Contents undefined. */
sdc_tensor *sdc_tensor_new(sdc_backend *be, sdc_mem_kind kind, sdc_dtype dtype, int ndim, const int64_t *ne);
void sdc_tensor_free(sdc_tensor *t); /* NULL is harmless */
/* Host f32 values in / out, converted to / from the tensor's dtype. n = sdc_tensor_nelem(t).
 * SDC_ERR_OOM (also made the sticky status) when no conversion buffer could be had. */
sdc_status sdc_tensor_set_f32(sdc_tensor *t, const float *host);
sdc_status sdc_tensor_get_f32(const sdc_tensor *t, float *host);
/* Raw bytes in (t->nbytes of them, already in t's dtype). */
void sdc_tensor_set_raw(sdc_tensor *t, const void *host);

#endif
