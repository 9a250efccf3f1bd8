/* mem.h - byte counters every backend allocator keeps: current and peak, by kind. The residency
 * planner and the report stand on these numbers. */
#ifndef SDC_CORE_MEM_H
#define SDC_CORE_MEM_H

#include <stddef.h>
#include <stdint.h>

typedef enum sdc_mem_kind {
    SDC_MEM_WEIGHTS = 0, /* model parameters */
    SDC_MEM_ACTIVATIONS, /* inputs, outputs and intermediates of a forward pass */
    SDC_MEM_WORKSPACE,   /* scratch an op needs (im2col buffers, GEMM workspaces) */
    SDC_MEM_KIND_COUNT
} sdc_mem_kind;

const char *sdc_mem_kind_name(sdc_mem_kind kind);

typedef struct sdc_mem_stats {
    size_t cur[SDC_MEM_KIND_COUNT];
    size_t peak[SDC_MEM_KIND_COUNT]; /* peak of each kind on its own */
    size_t cur_total;
    size_t peak_total;                  /* peak of the sum of all kinds */
    size_t at_peak[SDC_MEM_KIND_COUNT]; /* the split of peak_total when it was reached */
    uint64_t n_alloc, n_free;
} sdc_mem_stats;

void sdc_mem_stats_alloc(sdc_mem_stats *s, sdc_mem_kind kind, size_t nbytes);
void sdc_mem_stats_free(sdc_mem_stats *s, sdc_mem_kind kind, size_t nbytes);
/* Starts a new peak window (e.g. a new phase): peaks restart from the current values. */
void sdc_mem_stats_reset_peak(sdc_mem_stats *s);

#endif
