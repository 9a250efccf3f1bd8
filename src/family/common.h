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

#endif
