/* common.h - phase code the families share (src/family/ only). */
#ifndef SDC_FAMILY_COMMON_H
#define SDC_FAMILY_COMMON_H

#include "model/vae.h"
#include "pipeline/family.h"
#include "sampler/sampler.h"

/* The decode phase for image i of a VAE family: latents [C, h, w] (host, the sampler's space) ->
 * z = lat / scaling (+ shift) -> the decoder (tiled when the job asks) -> pixels in [0, 1] (NaN-safe
 * clamp; non-finite output is an error naming the phase) -> the job's pixels_out and image i (with
 * sched's parameters text). Reports progress "decode" 0/1 and 1/1. */
sdc_status fam_decode(sdc_run *r, sdc_vae_decoder *dec, const sdc_vae_config *vc, const sdc_schedule *sched,
                      const float *lat, int64_t h, int64_t w, int i);

/* r's progress callback, if it has one: nonzero when the job should stop. */
static inline int fam_progress(sdc_run *r, const char *phase, int step, int total) {
    return r->progress ? r->progress(r, phase, step, total) : 0;
}

/* entry(r, e, user) for every prompt entry e < n in order, with `phase`'s progress e/n before each and
 * n/n after the last: the first error, or SDC_ERR_CANCELLED when the progress callback stops the job. */
sdc_status fam_per_prompt(sdc_run *r, const char *phase, int n, sdc_status (*entry)(sdc_run *r, int e, void *user),
                          void *user);

#endif
