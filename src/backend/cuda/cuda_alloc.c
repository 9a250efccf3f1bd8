/* cuda_alloc.c - the caching device allocator (segments cut into blocks, size-bucketed free lists,
 * best fit, split and merge) and the pinned staging buffers. See cuda_alloc.h for the policy. */
#include "backend/cuda/cuda_alloc.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)
#define SMALL_SEGMENT (2 * MIB)  /* segment of the small pool */
#define LARGE_SEGMENT (20 * MIB) /* shared segment of the large pool */
#define OWN_SEGMENT (10 * MIB)   /* requests from here up get a segment of their own */
#define SEGMENT_ROUND (2 * MIB)

struct sdc_cuda_block {
    char *ptr;
    size_t size;
    int is_free;
    int small;                     /* which sub-pool's segment it lies in */
    sdc_cuda_block *prev, *next;   /* neighbours in the segment, by address; NULL at its ends */
    sdc_cuda_block *fprev, *fnext; /* free list of its bin (while free) */
    sdc_cuda_block *hnext;         /* hash chain (while handed out) */
};

static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

/* Bucket of a size: 4 buckets per power of two from 512 bytes up. */
static int bin_of(size_t size) {
    int b = 63 - __builtin_clzll((unsigned long long)size);   // floor(log2 size), size >= 512
    int sub = (int)((size >> (b - 2)) & 3);
    int i = (b - 9) * 4 + sub;
    return i < 0 ? 0 : i >= SDC_CUDA_BINS ? SDC_CUDA_BINS - 1 : i;
}

static sdc_cuda_subpool *sub_of(sdc_cuda_pool *pool, int small) { return small ? &pool->small : &pool->large; }

static void bin_insert(sdc_cuda_pool *pool, sdc_cuda_block *b) {
    sdc_cuda_block **head = &sub_of(pool, b->small)->bins[bin_of(b->size)];
    b->fprev = NULL;
    b->fnext = *head;
    if (*head) (*head)->fprev = b;
    *head = b;
}

static void bin_remove(sdc_cuda_pool *pool, sdc_cuda_block *b) {
    sdc_cuda_block **head = &sub_of(pool, b->small)->bins[bin_of(b->size)];
    if (b->fprev)
        b->fprev->fnext = b->fnext;
    else
        *head = b->fnext;
    if (b->fnext) b->fnext->fprev = b->fprev;
    b->fprev = b->fnext = NULL;
}

/* The smallest free block of at least size: within size's own bucket (whose blocks may be smaller),
 * else in the first non-empty bucket above it. */
static sdc_cuda_block *best_fit(sdc_cuda_pool *pool, int small, size_t size) {
    sdc_cuda_subpool *sp = sub_of(pool, small);
    for (int i = bin_of(size); i < SDC_CUDA_BINS; i++) {
        sdc_cuda_block *best = NULL;
        for (sdc_cuda_block *b = sp->bins[i]; b; b = b->fnext)
            if (b->size >= size && (!best || b->size < best->size)) best = b;
        if (best) return best;
    }
    return NULL;
}

/* --- blocks handed out, by address --- */

static size_t hash_ptr(const void *p, size_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)p / SDC_CUDA_ALLOC_ALIGN * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static int table_grow(sdc_cuda_pool *pool) {
    size_t cap = pool->table_cap ? pool->table_cap * 2 : 1024;
    sdc_cuda_block **t = calloc(cap, sizeof *t);
    if (!t) return -1;
    for (size_t i = 0; i < pool->table_cap; i++)
        for (sdc_cuda_block *b = pool->table[i], *nx; b; b = nx) {
            nx = b->hnext;
            size_t h = hash_ptr(b->ptr, cap);
            b->hnext = t[h];
            t[h] = b;
        }
    free(pool->table);
    pool->table = t;
    pool->table_cap = cap;
    return 0;
}

static void table_insert(sdc_cuda_pool *pool, sdc_cuda_block *b) {
    size_t h = hash_ptr(b->ptr, pool->table_cap);
    b->hnext = pool->table[h];
    pool->table[h] = b;
    pool->n_used++;
}

static sdc_cuda_block *table_take(sdc_cuda_pool *pool, const void *ptr) {
    if (!pool->table_cap) return NULL;
    for (sdc_cuda_block **pp = &pool->table[hash_ptr(ptr, pool->table_cap)]; *pp; pp = &(*pp)->hnext)
        if ((*pp)->ptr == ptr) {
            sdc_cuda_block *b = *pp;
            *pp = b->hnext;
            b->hnext = NULL;
            pool->n_used--;
            return b;
        }
    return NULL;
}

size_t sdc_cuda_pool_size_of(const sdc_cuda_pool *pool, const void *ptr) {
    if (!pool->table_cap) return 0;
    for (const sdc_cuda_block *b = pool->table[hash_ptr(ptr, pool->table_cap)]; b; b = b->hnext)
        if (b->ptr == ptr) return b->size;
    return 0;
}

/* --- segments --- */

size_t sdc_cuda_pool_sample(sdc_cuda_pool *pool) {
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    size_t used = total - free_b, d = used > pool->baseline ? used - pool->baseline : 0;
    if (d > pool->driver_peak) pool->driver_peak = d;
    return d;
}

void sdc_cuda_pool_init(sdc_cuda_pool *pool, cudaStream_t stream, sdc_backend *be) {
    memset(pool, 0, sizeof *pool);
    pool->stream = stream;
    pool->be = be;
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) == cudaSuccess)
        pool->baseline = total - free_b;
    else
        (void)cudaGetLastError();
}

static int segs_push(sdc_cuda_pool *pool, void *base) {
    if (pool->n_segs == pool->segs_cap) {
        size_t cap = pool->segs_cap ? pool->segs_cap * 2 : 64;
        void **s = realloc(pool->segs, cap * sizeof *s);
        if (!s) return -1;
        pool->segs = s;
        pool->segs_cap = cap;
    }
    pool->segs[pool->n_segs++] = base;
    return 0;
}

static void segs_remove(sdc_cuda_pool *pool, void *base) {
    for (size_t i = 0; i < pool->n_segs; i++)
        if (pool->segs[i] == base) {
            pool->segs[i] = pool->segs[--pool->n_segs];
            return;
        }
    assert(0 && "segment not tracked");
}

/* A new segment for a request of `size` bytes, as one free block (not yet in a bin). */
static sdc_cuda_block *segment_new(sdc_cuda_pool *pool, int small, size_t size) {
    size_t seg = small ? SMALL_SEGMENT : size < OWN_SEGMENT ? LARGE_SEGMENT : round_up(size, SEGMENT_ROUND);
    sdc_cuda_block *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, seg);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();   // not sticky: clear it so later launches report their own errors
        sdc_cuda_pool_trim(pool);
        err = cudaMalloc(&p, seg);
        if (err != cudaSuccess) (void)cudaGetLastError();
    }
    if (err != cudaSuccess || segs_push(pool, p) != 0) {
        if (err == cudaSuccess) cudaFree(p);
        SDC_LOGW(&pool->be->log,
                 "cuda alloc: out of device memory for %zu bytes (a %.1f MiB segment; the pool holds "
                 "%.1f MiB, %.1f MiB of it in use)",
                 size, (double)seg / MIB, (double)pool->reserved / MIB, (double)pool->in_use / MIB);
        free(b);
        return NULL;
    }
    pool->reserved += seg;
    pool->n_mallocs++;
    sdc_cuda_pool_sample(pool);
    b->ptr = p;
    b->size = seg;
    b->is_free = 1;
    b->small = small;
    return b;
}

void *sdc_cuda_pool_alloc(sdc_cuda_pool *pool, size_t nbytes) {
    if (nbytes == 0 || nbytes > SIZE_MAX / 2) return NULL;
    const size_t size = round_up(nbytes, SDC_CUDA_ALLOC_ALIGN);
    const int small = size <= SDC_CUDA_SMALL_REQUEST;
    if (pool->n_used + 1 > pool->table_cap && table_grow(pool) != 0) return NULL;
    sdc_cuda_block *b = best_fit(pool, small, size);
    if (b)
        bin_remove(pool, b);
    else if (!(b = segment_new(pool, small, size)))
        return NULL;
    /* split off the rest when it is worth keeping: any rest in the small pool, over 1 MiB in the large */
    const size_t rest = b->size - size;
    if (rest >= (small ? SDC_CUDA_ALLOC_ALIGN : SDC_CUDA_SMALL_REQUEST + 1)) {
        sdc_cuda_block *r = calloc(1, sizeof *r);
        if (r) {
            r->ptr = b->ptr + size;
            r->size = rest;
            r->is_free = 1;
            r->small = small;
            r->prev = b;
            r->next = b->next;
            if (b->next) b->next->prev = r;
            b->next = r;
            b->size = size;
            bin_insert(pool, r);
        }
    }
    b->is_free = 0;
    table_insert(pool, b);
    pool->in_use += b->size;
    pool->generation++;
    return b->ptr;
}

/* Free block a absorbs its successor n (free too, out of the bins). */
static void absorb_next(sdc_cuda_block *a) {
    sdc_cuda_block *n = a->next;
    a->size += n->size;
    a->next = n->next;
    if (n->next) n->next->prev = a;
    free(n);
}

void sdc_cuda_pool_release(sdc_cuda_pool *pool, void *ptr) {
    if (!ptr) return;
    sdc_cuda_block *b = table_take(pool, ptr);
    assert(b && "release of a pointer the pool did not hand out");
    if (!b) return;
    pool->in_use -= b->size;
    pool->generation++;
    b->is_free = 1;
    if (b->next && b->next->is_free) {
        bin_remove(pool, b->next);
        absorb_next(b);
    }
    if (b->prev && b->prev->is_free) {
        b = b->prev;
        bin_remove(pool, b);
        absorb_next(b);
    }
    bin_insert(pool, b);
}

void sdc_cuda_pool_trim(sdc_cuda_pool *pool) {
    int synced = 0;
    for (int s = 0; s < 2; s++) {
        sdc_cuda_subpool *sp = s ? &pool->small : &pool->large;
        for (int i = 0; i < SDC_CUDA_BINS; i++)
            for (sdc_cuda_block *b = sp->bins[i], *nx; b; b = nx) {
                nx = b->fnext;
                if (b->prev || b->next) continue;   // part of a segment still in use
                if (!synced) {
                    CUDA_CHECK(pool->be, cudaStreamSynchronize(pool->stream));
                    synced = 1;
                }
                bin_remove(pool, b);
                segs_remove(pool, b->ptr);
                pool->generation++;
                CUDA_CHECK(pool->be, cudaFree(b->ptr));
                pool->reserved -= b->size;
                pool->n_frees++;
                free(b);
            }
    }
}

void sdc_cuda_pool_destroy(sdc_cuda_pool *pool) {
    sdc_cuda_pool_trim(pool);
    if (pool->n_segs) CUDA_CHECK(pool->be, cudaStreamSynchronize(pool->stream));
    for (size_t i = 0; i < pool->n_segs; i++) CUDA_CHECK(pool->be, cudaFree(pool->segs[i]));
    /* the block records of segments still in use: free lists, then blocks handed out */
    for (int s = 0; s < 2; s++) {
        sdc_cuda_subpool *sp = s ? &pool->small : &pool->large;
        for (int i = 0; i < SDC_CUDA_BINS; i++)
            for (sdc_cuda_block *b = sp->bins[i], *nx; b; b = nx) {
                nx = b->fnext;
                free(b);
            }
    }
    for (size_t i = 0; i < pool->table_cap; i++)
        for (sdc_cuda_block *b = pool->table[i], *nx; b; b = nx) {
            nx = b->hnext;
            free(b);
        }
    free(pool->table);
    free(pool->segs);
    memset(pool, 0, sizeof *pool);
}

/* --- pinned staging --- */

void sdc_cuda_staging_init(sdc_cuda_staging *s, cudaStream_t copy, cudaStream_t compute, sdc_backend *be) {
    memset(s, 0, sizeof *s);
    s->copy = copy;
    s->compute = compute;
    s->be = be;
}

/* Frees whatever of the buffers and events exists (a partial setup too). */
static void staging_teardown(sdc_cuda_staging *s) {
    for (int i = 0; i < SDC_CUDA_STAGING_BUFFERS; i++) {
        if (s->buf[i].host && s->pinned)
            CUDA_CHECK(s->be, cudaFreeHost(s->buf[i].host));
        else
            free(s->buf[i].host);
        if (s->buf[i].done) CUDA_CHECK(s->be, cudaEventDestroy(s->buf[i].done));
    }
    if (s->compute_mark) CUDA_CHECK(s->be, cudaEventDestroy(s->compute_mark));
    if (s->copy_mark) CUDA_CHECK(s->be, cudaEventDestroy(s->copy_mark));
    cudaStream_t copy = s->copy, compute = s->compute;
    sdc_backend *be = s->be;
    sdc_cuda_staging_init(s, copy, compute, be);
}

/* Page-locked buffers and their events, on first use. When the host cannot pin that much, pageable
 * buffers still work (the copies are then staged by the driver, slower). -1 (the failure is the sticky
 * status, nothing is left allocated) when events or host memory cannot be had. */
static int staging_setup(sdc_cuda_staging *s) {
    int bad = CUDA_CHECK(s->be, cudaEventCreateWithFlags(&s->compute_mark, cudaEventDisableTiming)) ||
        CUDA_CHECK(s->be, cudaEventCreateWithFlags(&s->copy_mark, cudaEventDisableTiming));
    s->pinned = 1;
    for (int i = 0; i < SDC_CUDA_STAGING_BUFFERS && !bad; i++) {
        bad = CUDA_CHECK(s->be, cudaEventCreateWithFlags(&s->buf[i].done, cudaEventDisableTiming));
        if (!bad && s->pinned && cudaMallocHost(&s->buf[i].host, SDC_CUDA_STAGING_BYTES) != cudaSuccess) {
            (void)cudaGetLastError();
            s->buf[i].host = NULL;
            for (int j = 0; j < i; j++) {
                CUDA_CHECK(s->be, cudaFreeHost(s->buf[j].host));
                s->buf[j].host = NULL;
            }
            s->pinned = 0;
            SDC_LOGW(&s->be->log,
                     "cuda staging: cannot pin %d x %zu MiB of host memory; uploads go through "
                     "pageable buffers",
                     SDC_CUDA_STAGING_BUFFERS, SDC_CUDA_STAGING_BYTES / MIB);
        }
    }
    for (int i = 0; i < SDC_CUDA_STAGING_BUFFERS && !s->pinned && !bad; i++)
        if (!s->buf[i].host && !(s->buf[i].host = sdc_backend_host_alloc(s->be, SDC_CUDA_STAGING_BYTES))) {
            SDC_BACKEND_FAIL(s->be, SDC_ERR_OOM, "malloc",
                             "cuda staging: no host memory for %d x %zu MiB of "
                             "staging buffers",
                             SDC_CUDA_STAGING_BUFFERS, SDC_CUDA_STAGING_BYTES / MIB);
            bad = 1;
        }
    if (bad) {
        staging_teardown(s);
        return -1;
    }
    s->ready = 1;
    return 0;
}

void *sdc_cuda_staging_acquire(sdc_cuda_staging *s, size_t nbytes) {
    if (nbytes > SDC_CUDA_STAGING_BYTES) return NULL;
    if (!s->ready && staging_setup(s) != 0) return NULL;
    int i = s->next;
    s->next = (i + 1) % SDC_CUDA_STAGING_BUFFERS;
    if (s->buf[i].pending) {
        /* on failure the buffer is still host memory the caller may fill: the error is sticky */
        CUDA_CHECK(s->be, cudaEventSynchronize(s->buf[i].done));
        s->buf[i].pending = 0;
    }
    return s->buf[i].host;
}

/* Records a copy's destination (see sdc_cuda_staging_pending_in). */
static void note_dst(sdc_cuda_staging *s, const void *dst, size_t nbytes) {
    if (s->n_dst < SDC_CUDA_PENDING_DST) {
        s->dst[s->n_dst].p = dst;
        s->dst[s->n_dst].n = nbytes;
    }
    if (s->n_dst <= SDC_CUDA_PENDING_DST) s->n_dst++;
    s->copies_pending = 1;
}

void sdc_cuda_staging_upload(sdc_cuda_staging *s, void *dst, const void *host, size_t nbytes) {
    int i = 0;
    while (i < SDC_CUDA_STAGING_BUFFERS &&
           !((const char *)host >= (const char *)s->buf[i].host &&
             (const char *)host + nbytes <= (const char *)s->buf[i].host + SDC_CUDA_STAGING_BYTES))
        i++;
    assert(s->ready && i < SDC_CUDA_STAGING_BUFFERS && "staging_upload from outside the staging buffers");
    if (nbytes == 0) return;
    /* dst may have been another tensor's memory that compute work enqueued earlier still reads */
    CUDA_CHECK(s->be, cudaEventRecord(s->compute_mark, s->compute));
    CUDA_CHECK(s->be, cudaStreamWaitEvent(s->copy, s->compute_mark, 0));
    CUDA_CHECK(s->be, cudaMemcpyAsync(dst, host, nbytes, cudaMemcpyHostToDevice, s->copy));
    CUDA_CHECK(s->be, cudaEventRecord(s->buf[i].done, s->copy));
    s->buf[i].pending = 1;
    note_dst(s, dst, nbytes);
}

void sdc_cuda_staging_upload_host(sdc_cuda_staging *s, void *dst, const void *host, size_t nbytes) {
    if (nbytes == 0 || (!s->ready && staging_setup(s) != 0)) return; /* the events live with the buffers */
    CUDA_CHECK(s->be, cudaEventRecord(s->compute_mark, s->compute));
    CUDA_CHECK(s->be, cudaStreamWaitEvent(s->copy, s->compute_mark, 0));
    CUDA_CHECK(s->be, cudaMemcpyAsync(dst, host, nbytes, cudaMemcpyHostToDevice, s->copy));
    note_dst(s, dst, nbytes);
}

int sdc_cuda_staging_pending_in(const sdc_cuda_staging *s, const void *p, size_t n) {
    if (!s->copies_pending) return 0;
    if (s->n_dst > SDC_CUDA_PENDING_DST) return 1;
    for (int i = 0; i < s->n_dst; i++)
        if (s->dst[i].p < (const char *)p + n && (const char *)p < s->dst[i].p + s->dst[i].n) return 1;
    return 0;
}

cudaEvent_t sdc_cuda_staging_copy_event(sdc_cuda_staging *s) {
    cudaEvent_t ev = NULL;
    if (CUDA_CHECK(s->be, cudaEventCreateWithFlags(&ev, cudaEventDisableTiming))) return NULL;
    if (CUDA_CHECK(s->be, cudaEventRecord(ev, s->copy))) {
        cudaEventDestroy(ev);
        return NULL;
    }
    return ev;
}

void sdc_cuda_staging_flush(sdc_cuda_staging *s) {
    if (!s->copies_pending) return;
    CUDA_CHECK(s->be, cudaEventRecord(s->copy_mark, s->copy));
    CUDA_CHECK(s->be, cudaStreamWaitEvent(s->compute, s->copy_mark, 0));
    CUDA_CHECK(s->be, cudaStreamSynchronize(s->copy));
    for (int i = 0; i < SDC_CUDA_STAGING_BUFFERS; i++) s->buf[i].pending = 0;
    s->copies_pending = 0;
    s->n_dst = 0;
}

void sdc_cuda_staging_destroy(sdc_cuda_staging *s) {
    if (!s->ready) return;
    sdc_cuda_staging_flush(s);
    staging_teardown(s);
}
