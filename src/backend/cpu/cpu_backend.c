/* MADV_HUGEPAGE and mremap are Linux extensions */
#define _GNU_SOURCE
/* cpu_backend.c - the CPU backend: host memory (64-byte aligned), thread count, and the two vtables
 * (fast ops, reference ops). The ops themselves live in cpu_*.c by family. */
#include "backend/cpu/cpu_backend.h"

#include <pthread.h>
#include <sys/mman.h>
#include "core/sysmem.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "backend/cpu/cpu_ref.h"

/* Blocks of at least CPU_MAP_MIN bytes are mappings of their own, unmapped when freed. From malloc, a
 * block below its mmap threshold lives in the heap, where memory freed stays resident; and glibc raises
 * that threshold (up to 32 MiB) whenever a mapped block is freed, so soon every activation and most
 * weights were heap blocks. At the peak RSS of an SD 1.5 fp16 256x256 phased run, 28 MiB of the heap
 * was free (mallinfo2): activations freed earlier, in holes the later ones did not fit. A library may not
 * change malloc's process-wide settings (mallopt), so the backend maps its big blocks itself. */
#define CPU_MAP_MIN ((size_t)256 << 10)
/* Blocks in transparent huge pages from this size on. */
#define CPU_HUGE_MIN ((size_t)4 << 20)

/* The live mappings' lengths (munmap needs them), sorted by address: a length kept in the block would
 * take a page more of every block of whole pages, as most weights are. A few hundred entries. */
typedef struct cpu_map {
    uintptr_t addr;
    size_t len;
} cpu_map;
static pthread_mutex_t maps_mutex = PTHREAD_MUTEX_INITIALIZER;
static cpu_map *maps;
static size_t n_maps, cap_maps;

/* Mappings freed since new memory was last mapped, kept for the next blocks: the ops free a temporary and
 * take one of the same shape again and again, and a new mapping's every page must be faulted in and zeroed
 * (SD 1.5 fp16 256x256, 4 steps, 2 threads: about 7 s of system time without the cache, 4 s with it, as
 * with malloc's heap). Before new pages are mapped, every cached mapping is unmapped: memory is never
 * cached while new memory is touched, so the peak RSS is the one without the cache (for blocks written
 * whole, as op outputs are). */
#define CPU_MAP_CACHE 16
#define CPU_MAP_CACHE_BYTES ((size_t)64 << 20) /* what the cache may keep after a run, until the next trim */
static cpu_map cached[CPU_MAP_CACHE];
static int n_cached;

/* The index of the first entry not below addr (maps_mutex held). */
static size_t maps_find(uintptr_t addr) {
    size_t lo = 0, hi = n_maps;
    while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (maps[mid].addr < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Records a mapping: 0, or -1 when out of memory (maps_mutex held). */
static int maps_add(uintptr_t addr, size_t len) {
    if (n_maps == cap_maps) {
        const size_t cap = cap_maps ? 2 * cap_maps : 256;
        cpu_map *m = realloc(maps, cap * sizeof *m);
        if (!m) return -1;
        maps = m;
        cap_maps = cap;
    }
    const size_t i = maps_find(addr);
    memmove(maps + i + 1, maps + i, (n_maps - i) * sizeof *maps);
    maps[i] = (cpu_map){addr, len};
    n_maps++;
    return 0;
}

/* The length of the mapping at addr, its entry removed; 0 when addr is no mapping of ours, a heap block
 * (maps_mutex held). */
static size_t maps_take(uintptr_t addr) {
    const size_t i = maps_find(addr);
    if (i == n_maps || maps[i].addr != addr) return 0;
    const size_t len = maps[i].len;
    memmove(maps + i, maps + i + 1, (n_maps - i - 1) * sizeof *maps);
    n_maps--;
    return len;
}

/* Unmaps the cached mappings (maps_mutex held). */
static void drop_cached(void) {
    for (int i = 0; i < n_cached; i++) munmap((void *)cached[i].addr, cached[i].len);
    n_cached = 0;
}

/* A mapping of len bytes, NULL when out of memory: a cached one of that length; else the shortest longer
 * one, its tail unmapped; else the longest, grown (mremap moves its pages without a copy) after the others
 * were unmapped; else a new one, every cached one unmapped first. Big blocks are in transparent huge pages
 * where the kernel offers them: a 3 GB UNet then costs thousands of page faults on first touch instead of
 * about a million (advice: a failure changes nothing). */
static void *map_block(size_t len) {
    char *p = NULL;
    size_t old = 0; /* bytes of p mapped before */
    pthread_mutex_lock(&maps_mutex);
    int best = -1; /* the cached mapping to take: the shortest that fits, else the longest */
    for (int i = 0; i < n_cached; i++) {
        const size_t l = cached[i].len, b = best < 0 ? 0 : cached[best].len;
        if (best < 0 || (l >= len ? b < len || l < b : b < len && l > b)) best = i;
    }
    if (best >= 0) {
        const cpu_map m = cached[best];
        memmove(cached + best, cached + best + 1, (size_t)(n_cached - best - 1) * sizeof *cached);
        n_cached--;
        p = (char *)m.addr;
        old = m.len < len ? m.len : len;
        if (m.len > len) munmap(p + len, m.len - len);
        if (m.len < len) {
            drop_cached();
            if ((p = mremap(p, m.len, len, MREMAP_MAYMOVE)) == MAP_FAILED) {
                munmap((void *)m.addr, m.len);
                p = NULL;
            }
        }
    } else { /* nothing cached */
        if ((p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED) p = NULL;
    }
    if (p && old < len && len >= CPU_HUGE_MIN) madvise(p, len, MADV_HUGEPAGE);
    if (p && maps_add((uintptr_t)p, len) != 0) {
        munmap(p, len);
        p = NULL;
    }
    pthread_mutex_unlock(&maps_mutex);
    return p;
}

/* Frees ptr when it is a mapping of ours: into the cache (the oldest cached ones unmapped to make room),
 * or unmapped when longer than the whole cache. 1, else 0 (maps_mutex not held). */
static int unmap_block(void *ptr) {
    pthread_mutex_lock(&maps_mutex);
    const size_t len = maps_take((uintptr_t)ptr);
    if (len > CPU_MAP_CACHE_BYTES)
        munmap(ptr, len);
    else if (len) {
        size_t bytes = len;
        for (int i = 0; i < n_cached; i++) bytes += cached[i].len;
        while (n_cached == CPU_MAP_CACHE || bytes > CPU_MAP_CACHE_BYTES) {
            bytes -= cached[0].len;
            munmap((void *)cached[0].addr, cached[0].len);
            memmove(cached, cached + 1, (size_t)(--n_cached) * sizeof *cached);
        }
        cached[n_cached++] = (cpu_map){(uintptr_t)ptr, len};
    }
    pthread_mutex_unlock(&maps_mutex);
    return len != 0;
}

void *sdc_cpu_aligned_alloc(size_t nbytes) {
    const size_t page = 4096;
    if (nbytes > SIZE_MAX - page) return NULL;
    size_t n = (nbytes + 63) & ~(size_t)63;
    n = n ? n : 64;
    if (n >= CPU_MAP_MIN) return map_block((n + page - 1) & ~(page - 1));
    void *p = NULL;
    return posix_memalign(&p, 64, n) == 0 ? p : NULL;
}

void sdc_cpu_aligned_free(void *ptr) {
    /* a mapping starts a page; a heap block of under CPU_MAP_MIN bytes may too, and is then no entry */
    if (ptr && (((uintptr_t)ptr & 4095) || !unmap_block(ptr))) free(ptr);
}

/* The CPU backend's own state, be->ctx (allocated with the backend). */
typedef struct cpu_state {
    /* bytes of tensors and scratch (be->stats.cur_total) the address-space limit leaves once OpenBLAS's
     * buffers and a margin are set aside; SIZE_MAX when there is no limit */
    size_t as_cap;
    void *staging;      /* CPU_STAGING_BYTES, allocated at the first staging_acquire */
    sdc_cpu_bf16 *bf16; /* the bf16 kernel, made at the first bf16 product (cpu_bf16.c) */
    int bf16_plain;     /* tests: make the plain one */
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
    sdc_cpu_aligned_free(ptr);
    sdc_mem_stats_free(&be->stats, SDC_MEM_WORKSPACE, nbytes);
}

const sdc_cpu_bf16 *sdc_cpu_bf16_of(sdc_backend *be) {
    cpu_state *cs = be->ctx;
    if (!cs->bf16 && !(cs->bf16 = sdc_cpu_bf16_new(be->n_threads, cs->bf16_plain, &be->log)))
        SDC_BACKEND_FAIL(be, SDC_ERR_OOM, "sdc_cpu_bf16_new", "no memory for the bf16 kernel");
    return cs->bf16;
}

void sdc_cpu_bf16_use_plain(sdc_backend *be) {
    cpu_state *cs = be->ctx;
    sdc_cpu_bf16_free(cs->bf16);
    cs->bf16 = NULL;
    cs->bf16_plain = 1;
}

static void cpu_destroy(sdc_backend *be) {
    if (be->stats.cur_total)
        SDC_LOGW(&be->log, "sdc_backend_free: %s backend freed with %zu bytes still allocated", be->iface->name,
                 be->stats.cur_total);
    sdc_cpu_bf16_free(((cpu_state *)be->ctx)->bf16);
    sdc_cpu_aligned_free(((cpu_state *)be->ctx)->staging);
    free((cpu_block *)be);
}

static void *cpu_alloc(sdc_backend *be, size_t nbytes) {
    return over_as_cap(be, nbytes) ? NULL : sdc_cpu_aligned_alloc(nbytes);
}
static void cpu_release(sdc_backend *be, void *ptr) { sdc_cpu_aligned_free(ptr); }

static void cpu_upload(sdc_backend *be, void *dst, const void *host_src, size_t nbytes) {
    if (nbytes) memcpy(dst, host_src, nbytes);
}

static void cpu_download(sdc_backend *be, void *host_dst, const void *src, size_t nbytes) {
    if (nbytes) memcpy(host_dst, src, nbytes);
}

static void cpu_synchronize(sdc_backend *be) {}

/* At a phase boundary, after its components were freed: the heap's free pages go back to the system. The
 * backend's big blocks are mappings of their own (sdc_cpu_aligned_alloc), but its small ones, and whatever
 * else the process frees, stay resident in malloc's heap until trimmed (SD 1.5 fp16 256x256: the condition
 * and decode phases' peak RSS 3-4 MiB lower). malloc_trim changes no setting of malloc; it only hands
 * back pages no block uses. */
static void cpu_trim(sdc_backend *be) {
    pthread_mutex_lock(&maps_mutex);
    drop_cached();
    pthread_mutex_unlock(&maps_mutex);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* Weights load through one small staging buffer (the loader's staged path): a tensor's file bytes are read
 * into it a chunk at a time and copied into place. Without it the loader reads each tensor whole into a
 * scratch buffer as large as the largest tensor, held beside the weights loaded so far: SD 1.5's UNet has
 * weights of 56 MiB, which made the end of its load the peak RSS of an fp16 run. Uncounted, like that scratch;
 * the copy is synchronous, so the buffer is free again at once and a flush waits for nothing. */
#define CPU_STAGING_BYTES ((size_t)2 << 20)

static size_t cpu_staging_size(sdc_backend *be) { return CPU_STAGING_BYTES; }

static void *cpu_staging_acquire(sdc_backend *be, size_t nbytes) {
    cpu_state *cs = be->ctx;
    if (nbytes > CPU_STAGING_BYTES) return NULL;
    if (!cs->staging && !(cs->staging = sdc_cpu_aligned_alloc(CPU_STAGING_BYTES)))
        sdc_sticky_fail(&be->status, &be->log, be->iface->name, SDC_ERR_OOM, __FILE__, __LINE__, "cpu_staging_acquire",
                        "no host memory for a %zu-byte staging buffer", CPU_STAGING_BYTES);
    return cs->staging;
}

static void cpu_staging_upload(sdc_backend *be, void *dst, const void *staging, size_t nbytes) {
    if (nbytes) memcpy(dst, staging, nbytes);
}

/* the end of a load (or of a tiled VAE's copies): the buffer goes back until the next one */
static void cpu_staging_flush(sdc_backend *be) {
    cpu_state *cs = be->ctx;
    sdc_cpu_aligned_free(cs->staging);
    cs->staging = NULL;
}

/* Activations are F32 on the CPU whatever the component asks for, and so is every weight the loader
 * converts. A matrix weight (a linear's or a convolution's) stays F16, BF16 or block-quantized as the
 * file holds it: linear and conv2d widen it a tile at a time, exactly, so the precision does not matter;
 * except at BF16_ALL, where every float one is kept in BF16 (what its products take: cpu_bf16.c). */
static sdc_dtype cpu_weight_dtype(sdc_backend *be, sdc_dtype file_dtype, sdc_prec prec, int matrix) {
    if (matrix && prec == SDC_PREC_BF16_ALL && !sdc_dtype_is_quant(file_dtype)) return SDC_DTYPE_BF16;
    const int keep = file_dtype == SDC_DTYPE_F16 || file_dtype == SDC_DTYPE_BF16 || sdc_dtype_is_quant(file_dtype);
    return matrix && keep ? file_dtype : SDC_DTYPE_F32;
}
static sdc_dtype cpu_act_dtype(sdc_backend *be, sdc_prec prec) { return SDC_DTYPE_F32; }

/* The fast ops' scratch at its full size (the rule of sdc_cpu_attention: units of one score row per
 * thread, up to its cap; test_count checks it against the op's counted workspace). The linear's and
 * the convolution's queries live beside their ops. */
static size_t units_bytes(size_t unit_bytes, size_t cap_bytes, int64_t max_units) {
    size_t want = cap_bytes / unit_bytes;
    want = want < 1 ? 1 : want > (size_t)max_units ? (size_t)max_units : want;
    return want * unit_bytes;
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

/* The rows of a UNet transformer's feed-forward per pass (backend.h row_chunk), whose temporaries ([rows, 8C]
 * for GEGLU, then [rows, 4C]) are the largest of a block: SD 1.5 at 256x256 with CFG has 2048 rows of C 320
 * at level 0, 20 + 10 MiB in one pass (peak RSS 1702.6 -> 1690.8 MiB). Each output row depends on its own
 * input row only, and the CPU linear computes tiles of 256 rows (SDC_CPU_GEMM_TILE_M) with every call the
 * same shape, so chunks of a multiple of 256 rows give the bits of one pass (test_unet). 1024, not 256: a
 * 256-row chunk of SD 1.5's ff.net.2 (N 320) is 2 GEMM tiles, too few for a team of threads. */
#define CPU_ROW_CHUNK 1024
static int64_t cpu_row_chunk(sdc_backend *be) { return CPU_ROW_CHUNK; }

#define CPU_MEMORY_SLOTS                                                                                            \
    .destroy = cpu_destroy, .alloc = cpu_alloc, .release = cpu_release, .upload = cpu_upload,                       \
    .download = cpu_download, .synchronize = cpu_synchronize, .weight_dtype = cpu_weight_dtype,                     \
    .act_dtype = cpu_act_dtype, .workspace_bound = cpu_workspace_bound, .default_budget = cpu_default_budget,       \
    .staging_size = cpu_staging_size, .staging_acquire = cpu_staging_acquire, .staging_upload = cpu_staging_upload, \
    .staging_flush = cpu_staging_flush, .trim = cpu_trim, .row_chunk = cpu_row_chunk

#define CPU_OP_SLOT_(name, family, params, args) SDC_OP_SLOT_INIT(sdc_cpu_, name)
#define CPU_REF_OP_SLOT_(name, family, params, args) SDC_OP_SLOT_INIT(sdc_cpu_ref_, name)
static const struct sdc_backend_i cpu_iface = {.name = "cpu",
                                               CPU_MEMORY_SLOTS,
                                               .linear_workspace = sdc_cpu_linear_workspace,
                                               .conv2d_workspace = sdc_cpu_conv2d_workspace,
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
    if (sdc_cpu_blas_check(log) != 0) return NULL;
    sdc_backend *be = cpu_make(&cpu_iface, n_threads, 1, log);
    if (be) SDC_LOGI(&be->log, "sdc_backend_cpu_new: %d threads, f32, BLAS: %s", be->n_threads, sdc_cpu_blas_config());
    return be;
}

sdc_backend *sdc_backend_cpu_ref_new(const sdc_logger *log) {
    sdc_backend *be = cpu_make(&cpu_ref_iface, 1, 0, log);
    if (be) SDC_LOGI(&be->log, "sdc_backend_cpu_ref_new: reference ops, 1 thread, f32");
    return be;
}
