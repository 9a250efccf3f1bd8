/* rng.c - the generator front: seeding and dispatch to the CPU (rng_cpu.c) and CUDA
 * (rng_philox.c) streams. */
#include "core/rng.h"

#include <assert.h>
#include <string.h>

#include "core/rng_internal.h"

static const char *const kind_names[] = {"cpu", "cuda"};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == SDC_RNG_KIND_COUNT, "kind_names");

const char *sdc_rng_kind_name(sdc_rng_kind kind) {
    return (unsigned)kind < SDC_RNG_KIND_COUNT ? kind_names[kind] : NULL;
}

int sdc_rng_kind_from_name(const char *name, sdc_rng_kind *out) {
    for (int k = 0; k < SDC_RNG_KIND_COUNT; k++) {
        if (name && strcmp(name, kind_names[k]) == 0) {
            *out = (sdc_rng_kind)k;
            return 0;
        }
    }
    return -1;
}

void sdc_rng_init(sdc_rng *r, sdc_rng_kind kind, uint64_t seed) {
    assert((unsigned)kind < SDC_RNG_KIND_COUNT);
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->seed = seed;
    r->cuda_grid_threads = SDC_RNG_CUDA_GRID_THREADS_DEFAULT;
    if (kind == SDC_RNG_CPU) sdc_rng_cpu_seed(r, seed);
    /* CUDA: manual_seed sets the key and resets philox_offset to 0, done by the memset. */
}

void sdc_rng_randn(sdc_rng *r, float *out, size_t n) {
    if (n == 0) return;
    if (r->kind == SDC_RNG_CPU)
        sdc_rng_cpu_randn(r, out, n);
    else
        sdc_rng_philox_randn(r, out, n);
}
