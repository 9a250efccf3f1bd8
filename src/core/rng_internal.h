/* rng_internal.h - what rng.c calls in the two stream implementations. */
#ifndef SDC_CORE_RNG_INTERNAL_H
#define SDC_CORE_RNG_INTERNAL_H

#include "core/rng.h"

void sdc_rng_cpu_seed(sdc_rng *r, uint64_t seed);            /* rng_cpu.c */
void sdc_rng_cpu_randn(sdc_rng *r, float *out, size_t n);    /* rng_cpu.c */
void sdc_rng_philox_randn(sdc_rng *r, float *out, size_t n); /* rng_philox.c */

#endif
