/* MADV_HUGEPAGE is a Linux extension */
#define _DEFAULT_SOURCE
/* cpu_backend.c - the CPU backend: host memory (64-byte aligned), thread count, and the two vtables
 * (fast ops, reference ops). The ops themselves live in cpu_*.c by family. */
#include "backend/cpu/cpu_backend.h"

#include <sys/mman.h>
#include "core/sysmem.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu_ref.h"

void *sdc_cpu_aligned_alloc(size_t nbytes) {
    void *p = NULL;
    if (nbytes > SIZE_MAX - 63) return NULL;
    size_t n = (nbytes + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    /* Big buffers (weights, activations) in transparent huge pages where the kernel offers them: a
     * 3 GB UNet then costs thousands of page faults on first touch instead of about a million. */
    const uintptr_t page = 4096, huge = (uintptr_t)2 << 20;
    if (n >= 2 * huge) {
        uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), e = ((uintptr_t)p + n) & ~(page - 1);
        madvise((void *)a, e - a, MADV_HUGEPAGE); /* advice only: failure changes nothing */
    }
    return p;
}

/* The CPU backend's own state, be->ctx (allocated with the backend). */
typedef struct cpu_state {
    /* bytes of tensors and scratch (be->stats.cur_total) the address-space limit leaves once OpenBLAS's
     * buffers and a margin are set aside; SIZE_MAX when there is no limit */
    size_t as_cap;
} cpu_state;

typedef struct cpu_block {
    sdc_backend be;
    cpu_state state;
} cpu_block;

/* Address space kept for everything the backend does not count (staging and conversion buffers,
 * tokenizer, configs, thread stacks), under RLIMIT_AS. */
#define CPU_AS_MARGIN ((size_t)64 << 20)

/* 1 when nbytes more would pass the address-space cap: refused as out of memory, so OpenBLAS's
 * buffers (which it would retry forever) always find room. */
static int over_as_cap(const sdc_backend *be, size_t nbytes) {
    const cpu_state *cs = be->ctx;
    return be->stats.cur_total > cs->as_cap || nbytes > cs->as_cap - be->stats.cur_total;
}

void *sdc_cpu_scratch_alloc(sdc_backend *be, size_t nbytes, const char *what, const char *file, int line) {
    void *p = sdc_fail_now(&be->fail.workspace) || over_as_cap(be, nbytes) ? NULL : sdc_cpu_aligned_alloc(nbytes);
    if (!p) {
        sdc_sticky_fail(&be->status, &be->log, be->iface->name, SDC_ERR_OOM, file, line, "sdc_cpu_scratch_alloc",
                        "no host memory for %zu bytes of %s", nbytes, what);
        return NULL;
    }
    sdc_mem_stats_alloc(&be->stats, SDC_MEM_WORKSPACE, nbytes);
    return p;
}

void sdc_cpu_scratch_free(sdc_backend *be, void *ptr, size_t nbytes) {
    if (!ptr) return;
    free(ptr);
    sdc_mem_stats_free(&be->stats, SDC_MEM_WORKSPACE, nbytes);
}

static void cpu_destroy(sdc_backend *be) {
    if (be->stats.cur_total)
        SDC_LOGW(&be->log, "sdc_backend_free: %s backend freed with %zu bytes still allocated", be->iface->name,
                 be->stats.cur_total);
    free((cpu_block *)be);
}

static void *cpu_alloc(sdc_backend *be, size_t nbytes) {
    return over_as_cap(be, nbytes) ? NULL : sdc_cpu_aligned_alloc(nbytes);
}
static void cpu_release(sdc_backend *be, void *ptr) { free(ptr); }

static void cpu_upload(sdc_backend *be, void *dst, const void *host_src, size_t nbytes) {
    if (nbytes) memcpy(dst, host_src, nbytes);
}

static void cpu_download(sdc_backend *be, void *host_dst, const void *src, size_t nbytes) {
    if (nbytes) memcpy(host_dst, src, nbytes);
}

static void cpu_synchronize(sdc_backend *be) {}

/* Every weight and activation is F32 on the CPU, whatever the file holds (the loader converts) and
 * whatever the component asks for. */
static sdc_dtype cpu_weight_dtype(sdc_backend *be, sdc_dtype file_dtype, sdc_prec prec) { return SDC_DTYPE_F32; }
static sdc_dtype cpu_act_dtype(sdc_backend *be, sdc_prec prec) { return SDC_DTYPE_F32; }

/* The fast ops' scratch at its full size (the rules of sdc_cpu_conv2d and sdc_cpu_attention: units
 * of one im2col row, or of one score row per thread, up to the op's cap; test_count checks them
 * against the ops' counted workspace). */
static size_t units_bytes(size_t unit_bytes, size_t cap_bytes, int64_t max_units) {
    size_t want = cap_bytes / unit_bytes;
    want = want < 1 ? 1 : want > (size_t)max_units ? (size_t)max_units : want;
    return want * unit_bytes;
}

static size_t cpu_conv2d_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                                   int stride, int pad) {
    const int64_t K = x->ne[1] * w->ne[2] * w->ne[3], Ho = y->ne[2], Wo = y->ne[3];
    const int pointwise = w->ne[2] == 1 && w->ne[3] == 1 && stride == 1 && pad == 0;
    if (pointwise || x->ne[0] == 0 || w->ne[0] == 0 || Ho * Wo == 0) return 0;
    return units_bytes((size_t)(K * Wo) * sizeof(float), SDC_CPU_CONV_WORKSPACE_BYTES, Ho);
}

static size_t cpu_linear_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w) {
    (void)y;
    return sdc_cpu_linear_workspace_bytes(sdc_tensor_rows(x), w->ne[0], x->ne[x->ndim - 1], be->n_threads);
}

static size_t cpu_attention_workspace(sdc_backend *be, const sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                                      int n_heads) {
    const int64_t T = q->ne[1], S = k->ne[1];
    if (q->ne[0] == 0 || T == 0 || q->ne[2] == 0) return 0;
    const size_t row_bytes = (size_t)S * sizeof(float);
    return units_bytes(row_bytes, SDC_CPU_SCORE_BLOCK_BYTES, T) * (size_t)be->n_threads;
}

/* One op's scratch at most: a convolution's im2col band (capped), or every thread's block of attention
 * scores (a block of query rows of `tokens` keys each, within the block size but at least one row). */
static size_t cpu_workspace_bound(sdc_backend *be, size_t im2col_elems, int64_t tokens) {
    size_t conv = im2col_elems * sizeof(float);
    if (conv > SDC_CPU_CONV_WORKSPACE_BYTES) conv = SDC_CPU_CONV_WORKSPACE_BYTES;
    size_t row = (size_t)tokens * sizeof(float), all = row * (size_t)tokens;
    size_t block = all < SDC_CPU_SCORE_BLOCK_BYTES ? all
        : row > SDC_CPU_SCORE_BLOCK_BYTES          ? row
                                                   : SDC_CPU_SCORE_BLOCK_BYTES;
    size_t attn = (size_t)be->n_threads * block;
    return attn > conv ? attn : conv;
}

/* The CPU's "device memory" is RAM: what the kernel says is available, less 1 GiB for everything else,
 * and never more than the address-space limit leaves (as_cap). -1 when neither is known. */
static int64_t cpu_default_budget(sdc_backend *be) {
    const cpu_state *cs = be->ctx;
    int64_t avail = sdc_sys_mem_available();
    int64_t budget = avail < 0 ? -1 : avail > ((int64_t)1 << 30) ? avail - ((int64_t)1 << 30) : 0;
    if (cs->as_cap != SIZE_MAX && (budget < 0 || (uint64_t)budget > cs->as_cap)) budget = (int64_t)cs->as_cap;
    return budget;
}

#define CPU_MEMORY_SLOTS                                                                        \
    .destroy = cpu_destroy, .alloc = cpu_alloc, .release = cpu_release, .upload = cpu_upload,   \
    .download = cpu_download, .synchronize = cpu_synchronize, .weight_dtype = cpu_weight_dtype, \
    .act_dtype = cpu_act_dtype, .workspace_bound = cpu_workspace_bound, .default_budget = cpu_default_budget

#define CPU_OP_SLOT_(name, family, params, args) SDC_OP_SLOT_INIT(sdc_cpu_, name)
#define CPU_REF_OP_SLOT_(name, family, params, args) SDC_OP_SLOT_INIT(sdc_cpu_ref_, name)
static const struct sdc_backend_i cpu_iface = {.name = "cpu",
                                               CPU_MEMORY_SLOTS,
                                               .linear_workspace = cpu_linear_workspace,
                                               .conv2d_workspace = cpu_conv2d_workspace,
                                               .attention_workspace = cpu_attention_workspace,
                                               SDC_BACKEND_OPS(CPU_OP_SLOT_)};
static const struct sdc_backend_i cpu_ref_iface = {
    .name = "cpu-ref", CPU_MEMORY_SLOTS, SDC_BACKEND_OPS(CPU_REF_OP_SLOT_)};

/* Under RLIMIT_AS, sets aside one OpenBLAS buffer per GEMM thread (n_blas of them) and a margin from
 * the room left, and caps the backend's own bytes at the rest. 0 when it fits, -1 (logged) when not. */
static int cap_address_space(cpu_state *cs, int n_blas, const sdc_logger *log) {
    cs->as_cap = SIZE_MAX;
    int64_t room = sdc_sys_address_room();
    if (room < 0) return 0;
    const size_t aside = (size_t)n_blas * SDC_CPU_BLAS_BUFFER_BYTES + CPU_AS_MARGIN;
    if ((uint64_t)room <= aside) {
        SDC_LOGE(log,
                 "sdc_backend_cpu_new: out of memory: the address-space limit (RLIMIT_AS) leaves %.0f MiB; %d GEMM "
                 "thread(s) need %.0f MiB of OpenBLAS buffers plus a %.0f MiB margin",
                 (double)room / 1048576.0, n_blas, (double)(aside - CPU_AS_MARGIN) / 1048576.0,
                 (double)CPU_AS_MARGIN / 1048576.0);
        return -1;
    }
    cs->as_cap = (size_t)room - aside;
    return 0;
}

static sdc_backend *cpu_make(const struct sdc_backend_i *iface, int n_threads, int uses_blas, const sdc_logger *log) {
    cpu_block *blk = calloc(1, sizeof *blk);
    if (!blk) {
        SDC_LOGE(log, "sdc_backend_cpu_new: out of memory");
        return NULL;
    }
    sdc_backend *be = &blk->be;
    be->iface = iface;
    be->ctx = &blk->state;
    if (log) be->log = *log;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n >= 1 && n <= 4096 ? (int)n : 1;
    }
    be->n_threads = n_threads;
    if (cap_address_space(&blk->state, uses_blas ? n_threads : 0, &be->log) != 0) {
        free(blk);
        return NULL;
    }
    return be;
}

sdc_backend *sdc_backend_cpu_new(int n_threads, const sdc_logger *log) {
    sdc_backend *be = cpu_make(&cpu_iface, n_threads, 1, log);
    if (be) SDC_LOGI(&be->log, "sdc_backend_cpu_new: %d threads, f32, BLAS: %s", be->n_threads, sdc_cpu_blas_config());
    return be;
}

sdc_backend *sdc_backend_cpu_ref_new(const sdc_logger *log) {
    sdc_backend *be = cpu_make(&cpu_ref_iface, 1, 0, log);
    if (be) SDC_LOGI(&be->log, "sdc_backend_cpu_ref_new: reference ops, 1 thread, f32");
    return be;
}
