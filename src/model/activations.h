/* activations.h - how model code allocates intermediates.
 *
 * Every intermediate of a forward pass is an SDC_MEM_ACTIVATIONS tensor in its component's compute
 * dtype (chosen when the component was loaded: see weights.h), freed as soon as it is dead. A planner
 * knows the peak by running the same forward on a counting backend (backend/count). */
#ifndef SDC_MODEL_ACTIVATIONS_H
#define SDC_MODEL_ACTIVATIONS_H

#include <stdint.h>

#include "backend/backend.h"

/* A new activation tensor of dtype dt; NULL (logged by the backend) when out of memory. */
static inline sdc_tensor *sdc_act_new(sdc_backend *be, sdc_dtype dt, int ndim, const int64_t *ne) {
    return sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, ndim, ne);
}

/* A new activation on x's backend in x's dtype (an intermediate computed from x). */
static inline sdc_tensor *sdc_act_like(const sdc_tensor *x, int ndim, const int64_t *ne) {
    return sdc_tensor_new(x->backend, SDC_MEM_ACTIVATIONS, x->dtype, ndim, ne);
}

#endif
