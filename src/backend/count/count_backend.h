/* count_backend.h - the counting backend: a stand-in for a real backend that allocates no memory and does
 * no work, but counts every allocation exactly as the real backend's allocator would.
 *
 * A planner loads a component onto it through the normal loader (sdc_weights_get reads no file bytes on
 * it: only the index's shapes and dtypes) and runs the component's normal forward; be->stats then holds
 * the exact peaks, by kind, that the same calls reach on `like` (ggml's gallocr_reserve idea, without a
 * graph):
 *   - allocation returns unique non-NULL handles that point at nothing; upload does nothing, download
 *     writes zeros (so host-side logic in a forward sees well-defined values);
 *   - dtypes are `like`'s (weight_dtype, act_dtype): a plan for CUDA counts f16 activations;
 *   - workspace: each op asks `like`'s workspace query for its operands and counts that much for the op's
 *     duration; the persistent workspace `like` holds when the counting backend is made (CUDA: cuBLAS's)
 *     is counted from the start, as it is on `like`;
 *   - mem_limit works as on any backend.
 * `like` must outlive the counting backend. Threading: as any backend, one thread at a time. */
#ifndef SDC_BACKEND_COUNT_COUNT_BACKEND_H
#define SDC_BACKEND_COUNT_COUNT_BACKEND_H

#include "backend/backend.h"

/* sdc_backend_count_new(like) is declared in backend/backend.h with the other constructors. */

/* 1 when be is a counting backend (its tensors hold no data). */
int sdc_backend_is_count(const sdc_backend *be);
/* The backend a counting backend stands in for (be itself for any other backend). */
sdc_backend *sdc_backend_count_like(sdc_backend *be);

#endif
