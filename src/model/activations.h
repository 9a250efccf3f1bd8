/* activations.h - how model code allocates intermediates, and how it counts them ahead of time.
 *
 * Every intermediate of a forward pass is an SDC_MEM_ACTIVATIONS tensor in the backend's compute
 * dtype, freed as soon as it is dead. A module's *_count_activations function replays the same
 * sequence of allocations and frees on an sdc_act_count, so a planner can know the peak from the
 * shapes alone, without running anything. */
#ifndef SDC_MODEL_ACTIVATIONS_H
#define SDC_MODEL_ACTIVATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* A new activation tensor; NULL (logged by the backend) when out of memory. */
static inline sdc_tensor *sdc_act_new(sdc_backend *be, int ndim, const int64_t *ne) {
    return sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, be->iface->act_dtype(be), ndim, ne);
}

/* Current and peak bytes of a replayed allocation sequence. */
typedef struct sdc_act_count {
    size_t elem_size;
    size_t cur, peak;
} sdc_act_count;

static inline void sdc_act_count_init(sdc_act_count *c, size_t elem_size) {
    c->elem_size = elem_size;
    c->cur = c->peak = 0;
}
static inline void sdc_act_count_alloc(sdc_act_count *c, int64_t nelem) {
    c->cur += (size_t)nelem * c->elem_size;
    if (c->cur > c->peak) c->peak = c->cur;
}
static inline void sdc_act_count_free(sdc_act_count *c, int64_t nelem) {
    c->cur -= (size_t)nelem * c->elem_size;
}

#endif
