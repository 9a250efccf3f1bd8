/* rng_philox.c - torch's CUDA generator, computed on the CPU.
 *
 * torch.randn on a CUDA generator runs one grid-stride kernel of T threads (T = 256 x blocks, see
 * grid_threads). Thread t calls curand_init(seed, subsequence = t, offset = philox_offset), which
 * sets the Philox4x32-10 counter to (offset / 4 in its low 64 bits, t in its high 64 bits) under
 * key = seed. In round k the thread draws one block of four 32-bit words at counter + k and turns
 * it into four normals with curand's Box-Muller (words 0, 1 give normals 0, 1; words 2, 3 give
 * normals 2, 3); normal i of round k lands at element t + T (4k + i). The generator then advances
 * philox_offset by 4 per round, so the next draw starts on fresh counters.
 *
 * Checked against torch 2.11 on an H200 (132 SMs, 2048 threads per SM: the default grid), beyond
 * the reference bundle's one-grid shapes: two successive draws of 300000 and one of 1048579 (several
 * rounds per thread) matched within 2.4e-6. The differences are the GPU's __sincosf. */
#include <assert.h>
#include <math.h>

#include "core/rng_internal.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void philox_round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t out0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k[0];
    uint32_t out1 = (uint32_t)p1;
    uint32_t out2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k[1];
    uint32_t out3 = (uint32_t)p0;
    c[0] = out0;
    c[1] = out1;
    c[2] = out2;
    c[3] = out3;
}

void sdc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    uint32_t k[2] = {key[0], key[1]};
    philox_round(c, k);
    for (int round = 1; round < 10; round++) {
        k[0] += PHILOX_W0;
        k[1] += PHILOX_W1;
        philox_round(c, k);
    }
    for (int i = 0; i < 4; i++) out[i] = c[i];
}

/* curand's uniform scale: the float literals of curand_globals.h (2.3283064e-10f is not exactly
 * 2^-32), applied with the FMA nvcc contracts x * a + b into. */
#define CURAND_2POW32_INV 2.3283064e-10f
#define CURAND_2POW32_INV_2PI (2.3283064e-10f * 6.2831855f)

/* curand's _curand_box_muller: two words, two normals (sin first, then cos). */
static void box_muller2(uint32_t a, uint32_t b, float *n0, float *n1) {
    float u = fmaf((float)a, CURAND_2POW32_INV, CURAND_2POW32_INV / 2.0f); /* (0, 1] */
    float v = fmaf((float)b, CURAND_2POW32_INV_2PI, CURAND_2POW32_INV_2PI / 2.0f);
    float s = sqrtf(-2.0f * logf(u));
    *n0 = sinf(v) * s;
    *n1 = cosf(v) * s;
}

/* Threads in torch's grid for n elements: blocks of 256, at most cuda_grid_threads in all. */
static uint64_t grid_threads(const sdc_rng *r, size_t n) {
    uint64_t blocks = ((uint64_t)n + 255) / 256;
    uint64_t max_blocks = r->cuda_grid_threads / 256;
    assert(max_blocks > 0);
    return 256 * (blocks < max_blocks ? blocks : max_blocks);
}

void sdc_rng_philox_randn(sdc_rng *r, float *out, size_t n) {
    uint64_t threads = grid_threads(r, n);
    uint64_t stride = threads * 4; /* elements per round */
    uint64_t rounds = ((uint64_t)n - 1) / stride + 1;
    assert(r->philox_offset % 4 == 0); /* torch rounds every increment up to a multiple of 4 */
    uint64_t base = r->philox_offset / 4;
    uint32_t key[2] = {(uint32_t)r->seed, (uint32_t)(r->seed >> 32)};
    for (uint64_t t = 0; t < threads; t++) {
        for (uint64_t k = 0; k < rounds; k++) {
            uint64_t first = t + k * stride;
            if (first >= n) break;
            uint64_t lo = base + k;
            uint32_t ctr[4] = {(uint32_t)lo, (uint32_t)(lo >> 32), (uint32_t)t, (uint32_t)(t >> 32)};
            uint32_t w[4];
            sdc_philox4x32_10(ctr, key, w);
            float nv[4];
            box_muller2(w[0], w[1], &nv[0], &nv[1]);
            box_muller2(w[2], w[3], &nv[2], &nv[3]);
            for (int i = 0; i < 4; i++) {
                uint64_t e = first + (uint64_t)i * threads;
                if (e < n) out[e] = nv[i] + 0.0f; /* torch adds mean 0: -0 becomes +0 */
            }
        }
    }
    r->philox_offset += rounds * 4;
}
