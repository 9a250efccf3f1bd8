/* bench_attention.c - the CUDA attention op alone at the shapes that matter (Flux's joint attention,
 * SDXL's self-attention at both levels), random inputs, time per call and TFLOP/s (4 T S D per head), for
 * the block shape the shapes choose and for each forced one (sdc_cuda_attention_force_config):
 *   build-gpu/bench_attention [REPS]
 * Built with the CUDA backend only. Compare with bench/flux_roofline.py's torch SDPA rows on the same card. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_internal.h"
#include "backend/ops.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const char *name;
    sdc_dtype dt;
    int64_t B, T, S, H, D;
} attn_case;

static sdc_tensor *random_tensor(sdc_backend *be, sdc_dtype dt, int64_t B, int64_t T, int64_t C) {
    sdc_tensor *t = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, dt, 3, (int64_t[]){B, T, C});
    if (!t) return NULL;
    const size_t n = (size_t)(B * T * C);
    float *h = malloc(n * sizeof *h);
    if (!h) return t;
    uint32_t s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        h[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 4.0f;
    }
    sdc_tensor_set_f32(t, h);
    free(h);
    return t;
}

/* The key tiles cuda_attention.cu can be forced to for a head: padded 48-80 take 64 and 128 keys, 128 takes 32 and 64. */
static int tile_allowed(int64_t D, int bk) {
    const int64_t dp = (D + 15) / 16 * 16;
    if (dp >= 48 && dp <= 80) return bk == 64 || bk == 128;
    return dp == 128 && (bk == 32 || bk == 64);
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 20;
    sdc_backend *be = sdc_backend_cuda_new(NULL);
    if (!be) {
        fprintf(stderr, "bench_attention: no CUDA backend\n");
        return 1;
    }
    static const attn_case cases[] = {
        {"flux 1024^2 joint (4352 tok, 24x128)", SDC_DTYPE_BF16, 1, 4352, 4352, 24, 128},
        {"flux 512^2 joint (1280 tok, 24x128)", SDC_DTYPE_BF16, 1, 1280, 1280, 24, 128},
        {"sdxl 1024^2 level 1 (4096 tok, 10x64, B2)", SDC_DTYPE_F16, 2, 4096, 4096, 10, 64},
        {"sdxl 1024^2 level 2 (1024 tok, 20x64, B2)", SDC_DTYPE_F16, 2, 1024, 1024, 20, 64},
        {"sd15 512^2 level 0 (4096 tok, 8x40, B2)", SDC_DTYPE_F16, 2, 4096, 4096, 8, 40},
    };
    /* block shapes (m-tiles per warp, warps per block, keys per tile): the kernel and shape the shapes choose
     * ("auto": on an H100 or H200 heads of 128 take the wgmma kernel), the mma.sync kernel with its chosen shape
     * ("mma", -1), then each forced mma.sync shape whose key tile the head allows */
    static const int configs[][3] = {{0, 0, 0},   {-1, 0, 0},  {1, 4, 64},  {2, 4, 64}, {1, 8, 64}, {2, 8, 64},
                                     {1, 4, 128}, {2, 4, 128}, {1, 8, 128}, {1, 4, 32}, {2, 4, 32}, {2, 8, 32}};
    printf("%-44s %9s %10s %9s\n", "attention", "mt,nw,bk", "ms/call", "TFLOP/s");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0] * (sizeof configs / sizeof configs[0]); i++) {
        const int *cfg = configs[i % (sizeof configs / sizeof configs[0])];
        sdc_cuda_attention_force_config(cfg[0] > 0 ? cfg[0] : 0, cfg[1], cfg[2]);
        sdc_cuda_attention_force_mma(cfg[0] == -1);
        const attn_case *c = &cases[i / (sizeof configs / sizeof configs[0])];
        if (cfg[0] > 0 && !tile_allowed(c->D, cfg[2])) continue;
        const int64_t C = c->H * c->D;
        sdc_tensor *q = random_tensor(be, c->dt, c->B, c->T, C), *k = random_tensor(be, c->dt, c->B, c->S, C);
        sdc_tensor *v = random_tensor(be, c->dt, c->B, c->S, C);
        sdc_tensor *y = sdc_tensor_new(be, SDC_MEM_ACTIVATIONS, c->dt, 3, (int64_t[]){c->B, c->T, C});
        if (!q || !k || !v || !y) {
            fprintf(stderr, "bench_attention: out of device memory\n");
            return 1;
        }
        for (int r = 0; r < 3; r++) sdc_attention(y, q, k, v, (int)c->H, 0);
        sdc_backend_sync(be);
        const double t0 = now();
        for (int r = 0; r < reps; r++) sdc_attention(y, q, k, v, (int)c->H, 0);
        const sdc_status st = sdc_backend_sync(be);
        const double s = (now() - t0) / reps;
        const double flop = 4.0 * (double)c->B * (double)c->H * (double)c->T * (double)c->S * (double)c->D;
        char shape[16];
        snprintf(shape, sizeof shape, cfg[0] > 0 ? "%d,%d,%d" : cfg[0] ? "mma" : "auto", cfg[0], cfg[1], cfg[2]);
        printf("%-44s %9s %10.3f %9.1f%s\n", c->name, shape, s * 1e3, flop / s / 1e12,
               st == SDC_OK ? "" : "  (backend error)");
        sdc_tensor_free(q);
        sdc_tensor_free(k);
        sdc_tensor_free(v);
        sdc_tensor_free(y);
    }
    sdc_backend_free(be);
    return 0;
}
