/* rng.h - noise generators that reproduce PyTorch's torch.randn bit for bit.
 *
 * Two kinds, matching the two generators diffusers users seed:
 *   SDC_RNG_CPU   torch.Generator('cpu').manual_seed(seed); torch.randn(shape, generator=g),
 *                 float32. mt19937 seeded with the low 32 bits of seed. Draws of n >= 16
 *                 elements take torch's vectorised (AVX2) Box-Muller path and match it bit for
 *                 bit; draws of n < 16 take torch's scalar double-precision path, which caches
 *                 the second normal of each pair in the generator across calls.
 *   SDC_RNG_CUDA  torch.Generator('cuda').manual_seed(seed); torch.randn(shape, device='cuda',
 *                 generator=g), float32, computed on the CPU: Philox4x32-10 with key = seed,
 *                 curand_init(seed, subsequence = thread index, offset) per thread of torch's
 *                 grid-stride distribution kernel (256 threads a block, 4 normals a thread per
 *                 round). GPU fast sincos is not reproduced: values match torch within a few
 *                 1e-6.
 *
 * The CUDA layout depends on the GPU only through the grid size: torch launches
 * min(ceil(n / 256), SMs * floor(maxThreadsPerSM / 256)) blocks. Every draw of up to
 * cuda_grid_threads elements is therefore the same on every GPU whose grid is at least that large;
 * beyond it the value of cuda_grid_threads matters. sdc_rng_init sets it for an H100/H200 (132 SMs,
 * 2048 threads per SM: 270336 threads), which covers every latent up to 4x256x264.
 *
 * Successive sdc_rng_randn calls continue the stream exactly as successive torch.randn calls on one
 * generator do. The state is plain data: no allocation, copy it to fork a stream. Not thread-safe:
 * one generator per thread. */
#ifndef SDC_CORE_RNG_H
#define SDC_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef enum sdc_rng_kind {
    SDC_RNG_CPU = 0,
    SDC_RNG_CUDA,
    SDC_RNG_KIND_COUNT
} sdc_rng_kind;

#define SDC_MT19937_N 624
/* Threads in torch's grid on an H100/H200: 132 SMs x 8 blocks of 256. */
#define SDC_RNG_CUDA_GRID_THREADS_DEFAULT (132u * 8u * 256u)

typedef struct sdc_rng {
    sdc_rng_kind kind;
    uint64_t seed;
    /* SDC_RNG_CPU: mt19937 state and torch's cached second normal of the double path */
    uint32_t mt[SDC_MT19937_N];
    int mt_index; /* next word of mt to temper; SDC_MT19937_N: regenerate first */
    int has_cached_normal;
    double cached_normal;
    /* SDC_RNG_CUDA: torch's philox_offset_per_thread, and the grid size (see above) */
    uint64_t philox_offset;
    uint32_t cuda_grid_threads; /* a multiple of 256 */
} sdc_rng;

/* Seeds r as torch's manual_seed(seed) does for that kind of generator. */
void sdc_rng_init(sdc_rng *r, sdc_rng_kind kind, uint64_t seed);
/* Writes the next n standard normals (torch.randn of any shape with n elements) to out. */
void sdc_rng_randn(sdc_rng *r, float *out, size_t n);

/* "cpu" / "cuda"; NULL for an invalid kind. */
const char *sdc_rng_kind_name(sdc_rng_kind kind);
/* Parses "cpu" or "cuda": returns 0 and sets *out, or -1. */
int sdc_rng_kind_from_name(const char *name, sdc_rng_kind *out);

/* The building blocks, for tests. */
/* The next raw 32-bit output of r's mt19937 (SDC_RNG_CPU only). */
uint32_t sdc_rng_cpu_u32(sdc_rng *r);
/* One Philox4x32-10 block: out = philox(ctr, key). */
void sdc_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif
