/* cuda_alloc.h - the CUDA backend's caching device allocator and its pinned staging buffers, shared by
 * cuda_alloc.c (which implements them) and cuda_backend.c (which owns one of each per backend).
 *
 * Device memory: segments from cudaMalloc are cut into blocks. Requests of up to 1 MiB come from 2 MiB
 * segments, larger ones from 20 MiB segments (or a segment of their own, rounded to 2 MiB, from 10 MiB
 * up), so weights pack densely and small activations do not fragment the large pool. Free blocks sit in
 * size-bucketed free lists and are reused best-fit, split when the rest is worth keeping and merged with
 * free neighbours on release. Every kernel runs on the one compute stream, so a block freed after its
 * last kernel was enqueued can be handed to the next op at once (stream order). Nothing is returned to
 * the device until sdc_cuda_pool_trim; a failed cudaMalloc trims and retries once.
 *
 * Counting: the pool knows bytes, not kinds; sdc_tensor_new and the scratch functions count kinds in
 * be->stats. The pool tracks what it holds from the driver and, at every growth, the device memory in
 * use as cudaMemGetInfo reports it, above a baseline taken before the first allocation. */
#ifndef SDC_BACKEND_CUDA_ALLOC_H
#define SDC_BACKEND_CUDA_ALLOC_H

#include <stddef.h>

#include "backend/cuda/cuda_internal.h"

#define SDC_CUDA_ALLOC_ALIGN 512                 /* every block starts on this boundary */
#define SDC_CUDA_SMALL_REQUEST ((size_t)1 << 20) /* requests up to here use the small pool */
#define SDC_CUDA_BINS 128                        /* free-list buckets per pool (4 per power of 2) */

typedef struct sdc_cuda_block sdc_cuda_block;

typedef struct sdc_cuda_subpool {
    sdc_cuda_block *bins[SDC_CUDA_BINS]; /* free blocks by size bucket (doubly linked) */
} sdc_cuda_subpool;

typedef struct sdc_cuda_pool {
    sdc_cuda_subpool small, large;
    sdc_cuda_block **table;   /* blocks handed out, hashed by address (chained) */
    size_t table_cap, n_used; /* buckets; blocks handed out */
    size_t reserved;          /* bytes held from cudaMalloc */
    size_t in_use;            /* bytes of blocks handed out (rounded sizes) */
    void **segs;              /* every segment's base address, to free them all at the end */
    size_t n_segs, segs_cap;
    cudaStream_t stream; /* the compute stream: synchronised before memory goes back */
    sdc_backend *be;     /* its log, and its sticky status for failed CUDA calls */
    /* cudaMemGetInfo: used = total - free, sampled at every growth */
    size_t baseline;           /* used before the first allocation */
    size_t driver_peak;        /* max(used - baseline) since the last reset */
    size_t n_mallocs, n_frees; /* cudaMalloc / cudaFree calls, for the log */
    uint64_t generation;       /* blocks handed out and returned so far (a recorded graph's validity) */
} sdc_cuda_pool;

/* Takes the driver baseline now: call after the context exists and before the first allocation. */
void sdc_cuda_pool_init(sdc_cuda_pool *pool, cudaStream_t stream, sdc_backend *be);
/* nbytes (> 0) of device memory aligned to SDC_CUDA_ALLOC_ALIGN; NULL when the device is full even
 * after a trim (logged as a warning: the caller reports SDC_ERR_OOM). */
void *sdc_cuda_pool_alloc(sdc_cuda_pool *pool, size_t nbytes);
/* Returns a block to the cache; NULL is harmless. */
void sdc_cuda_pool_release(sdc_cuda_pool *pool, void *ptr);
/* The size of the block ptr (handed out, not yet released) starts; 0 when unknown. */
size_t sdc_cuda_pool_size_of(const sdc_cuda_pool *pool, const void *ptr);
/* Hands every segment that is entirely free back to the device (synchronises the stream first). */
void sdc_cuda_pool_trim(sdc_cuda_pool *pool);
/* Frees every segment, in use or not (backend destruction). */
void sdc_cuda_pool_destroy(sdc_cuda_pool *pool);
/* Samples cudaMemGetInfo now and returns used - baseline (0 when below the baseline). */
size_t sdc_cuda_pool_sample(sdc_cuda_pool *pool);

/* --- pinned host staging for asynchronous weight uploads on the copy stream --- */

#define SDC_CUDA_STAGING_BUFFERS 4
#define SDC_CUDA_STAGING_BYTES ((size_t)16 << 20)

#define SDC_CUDA_PENDING_DST 1024

typedef struct sdc_cuda_staging {
    struct {
        void *host;       /* SDC_CUDA_STAGING_BYTES, pinned (or pageable when pinning failed) */
        cudaEvent_t done; /* recorded after the buffer's last copy */
        int pending;      /* done was recorded and not yet waited for */
    } buf[SDC_CUDA_STAGING_BUFFERS];
    int ready;          /* buffers allocated */
    int pinned;         /* 1 when the buffers are page-locked */
    int next;           /* round robin */
    int copies_pending; /* uploads since the last flush */
    /* their destinations, so that freeing memory waits for the copies only when one of them lands there
     * (n_dst > SDC_CUDA_PENDING_DST: too many to list, any free waits) */
    struct {
        const char *p;
        size_t n;
    } dst[SDC_CUDA_PENDING_DST];
    int n_dst;
    cudaStream_t copy, compute;
    cudaEvent_t compute_mark; /* the copy stream waits for the compute work enqueued so far */
    cudaEvent_t copy_mark;    /* the compute stream waits for the copies at a flush */
    sdc_backend *be;          /* its log, and its sticky status for failed CUDA calls */
} sdc_cuda_staging;

void sdc_cuda_staging_init(sdc_cuda_staging *s, cudaStream_t copy, cudaStream_t compute, sdc_backend *be);
/* A buffer of at least nbytes once its previous copy completed; NULL when nbytes > SDC_CUDA_STAGING_BYTES,
 * or when the buffers cannot be set up (no host memory: sticky SDC_ERR_OOM; a failed CUDA call: its sticky
 * status). The buffers are allocated on first use. */
void *sdc_cuda_staging_acquire(sdc_cuda_staging *s, size_t nbytes);
/* Enqueues host (inside a staging buffer) -> dst on the copy stream, after the compute work enqueued so far
 * (dst may have been another tensor's memory a moment ago). Returns at once. */
void sdc_cuda_staging_upload(sdc_cuda_staging *s, void *dst, const void *host, size_t nbytes);
/* The same from any host memory (pinned for an asynchronous copy) that stays valid until the next flush. */
void sdc_cuda_staging_upload_host(sdc_cuda_staging *s, void *dst, const void *host, size_t nbytes);
/* Whether a copy enqueued since the last flush lands in [p, p + n). */
int sdc_cuda_staging_pending_in(const sdc_cuda_staging *s, const void *p, size_t n);
/* An event recorded on the copy stream after every copy enqueued so far (NULL on failure: sticky status). */
cudaEvent_t sdc_cuda_staging_copy_event(sdc_cuda_staging *s);
/* Waits for every upload; later compute work sees the data. */
void sdc_cuda_staging_flush(sdc_cuda_staging *s);
void sdc_cuda_staging_destroy(sdc_cuda_staging *s);

#endif
