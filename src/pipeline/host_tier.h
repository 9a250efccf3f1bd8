/* host_tier.h - a model's components in host memory: the cross-phase prefetcher and the pinned host tier.
 *
 * Both keep a component's weight bytes in a host image (model/host_image.h) that its next load takes
 * instead of the file:
 *
 *   prefetch  While phase k computes, a thread reads the components phase k + 1 will load (up to
 *             prefetch_mem bytes of them) into their images; phase k + 1 joins it before loading, so the
 *             disk read is hidden behind phase k and the load is an upload (page-locked on CUDA). By
 *             default (no size) a component's files are only asked into the OS page cache ahead.
 *   tier      A component whose image fits host_cache (with the others kept) keeps it after it leaves
 *             the device, whole: every later load of it in this process (the next job's, a streamed
 *             block's) is an upload from host memory, never a file read.
 *
 * Neither changes a byte of any weight: an image holds the file's bytes, converted by the same loader
 * code. Memory: prefetch_mem bounds the images of components not kept by the tier; host_cache bounds
 * the kept ones. Both are host memory (the device plan is unchanged). The report says per component how
 * many of its bytes came from host memory, how long the prefetch read took, and how long the load
 * waited for it. */
#ifndef SDC_PIPELINE_HOST_TIER_H
#define SDC_PIPELINE_HOST_TIER_H

#include <pthread.h>
#include <stdatomic.h>

#include "model/host_image.h"
#include "pipeline/family.h"

typedef struct sdc_model sdc_model;

/* What the last load of a component took from host memory. */
typedef struct sdc_tier_load {
    uint64_t host_bytes;     /* file bytes taken from its image instead of the file */
    uint64_t hidden_bytes;   /* of those, read before the load began (by the prefetcher, or an earlier job) */
    double prefetch_seconds; /* the prefetcher's read of it, behind the previous phase */
    double wait_seconds;     /* the load waited this long for the prefetcher to finish */
} sdc_tier_load;

typedef struct sdc_host_tier {
    size_t prefetch_mem; /* asked for (0: none): images for the next phase's components */
    int readahead;       /* the default: a component's files are asked into the OS page cache ahead */
    size_t host_cache;   /* 0: no tier */
    sdc_host_image *img[SDC_MAX_COMPONENTS];
    int kept[SDC_MAX_COMPONENTS]; /* img[c] belongs to the tier */
    pthread_t thread;
    int running;                            /* the thread was started and not joined */
    atomic_int stop;                        /* asks the thread to stop early */
    unsigned filling;                       /* components the running thread fills */
    sdc_tier_load last[SDC_MAX_COMPONENTS]; /* each component's last load */
    size_t served0[SDC_MAX_COMPONENTS];     /* its image's served bytes when that load began */
    double waited[SDC_MAX_COMPONENTS];      /* the last join waited this long for it (until its load) */
    /* the block of the last image the tier did not keep, reused by the next prefetch (page-locking a
     * block costs more than reading into it); at most prefetch_mem bytes */
    void *spare;
    size_t spare_size;
    int spare_pinned;
    sdc_model_index *index;
} sdc_host_tier;

/* Budgets from the model's params (bytes; prefetch_mem < 0: off; 0: the default, read-ahead into the OS
 * page cache only). */
void sdc_host_tier_init(sdc_host_tier *t, sdc_model_index *index, int64_t prefetch_mem, int64_t host_cache);
/* Stops and joins the thread, frees every image and the spare block (be: the backend they came from). */
void sdc_host_tier_free(sdc_host_tier *t, sdc_backend *be);

/* Waits for a running prefetch to finish (the wait is recorded for the components it read). */
void sdc_host_tier_join(sdc_model *m);
/* Before component c loads: joins a running prefetch (the wait is recorded) and, when the tier keeps c,
 * makes its image whole (read now if the prefetcher did not). Returns c's image or NULL. */
sdc_host_image *sdc_host_tier_before_load(sdc_model *m, int c);
/* After component c loaded (or failed to): completes t->last[c], then drops an image the tier does not
 * keep, unless c streams (its blocks still load from it; it goes when c is freed). */
void sdc_host_tier_after_load(sdc_model *m, int c);
/* Component c was freed: drops its image unless the tier keeps it. */
void sdc_host_tier_component_freed(sdc_model *m, int c);
/* Starts the thread that reads the components in `mask` (not resident, not held whole already) into
 * their images while the current phase computes. Nothing when prefetch is off or nothing is left to read. */
void sdc_host_tier_prefetch(sdc_model *m, unsigned mask);
/* Stops a running prefetch early and joins it (a job that failed, or unloading everything). */
void sdc_host_tier_cancel(sdc_host_tier *t);

#endif
