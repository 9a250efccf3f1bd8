/* test_vae_tiling.c - sdc_vae_decode_tiled against sdc_vae_decode with the tiny-sd1 VAE (f32 weights)
 * on the CPU backend: the same images on fresh random latents at many sizes and tiles (tiny,
 * non-multiples of the tile, one tile larger than the image, a batch of 2): bit for bit with one tile,
 * within GEMM rounding with several; the backend's peak bytes tiled against untiled as the image grows
 * (the tiled peak grows only with the untiled attention and one group); a memory
 * limit the untiled decode cannot meet and the tiled one can; wrong arguments and running out of
 * memory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "io/model_files.h"
#include "model/vae_internal.h"
#include "test_model_golden.h"
#include "test_util.h"

typedef struct fixture {
    sdc_vae_config cfg;
    sdc_backend *be;
    sdc_vae_decoder *dec;
} fixture;

static sdc_tensor *latents(const fixture *fx, int64_t B, int64_t h, int64_t w, uint64_t seed) {
    const int64_t ne[4] = {B, fx->cfg.latent_channels, h, w};
    sdc_tensor *z = sdc_tensor_new(fx->be, SDC_MEM_ACTIVATIONS, sdc_vae_decoder_act_dtype(fx->dec), 4, ne);
    float *x = malloc(sizeof(float) * (size_t)sdc_tensor_nelem(z));
    test_fill_normal(x, (size_t)sdc_tensor_nelem(z), seed, 1.0f);
    sdc_tensor_set_f32(z, x);
    free(x);
    return z;
}

/* The untiled image of z as host floats (NULL on failure, recorded); *peak: the backend's peak bytes. */
static float *decode_untiled(const fixture *fx, const sdc_tensor *z, size_t *peak) {
    const int64_t f = sdc_vae_downscale(&fx->cfg);
    const int64_t ne[4] = {z->ne[0], fx->cfg.out_channels, z->ne[2] * f, z->ne[3] * f};
    sdc_tensor *image = sdc_tensor_new(fx->be, SDC_MEM_ACTIVATIONS, sdc_vae_decoder_act_dtype(fx->dec), 4, ne);
    float *out = malloc(sizeof(float) * (size_t)sdc_tensor_nelem(image));
    sdc_mem_stats_reset_peak(&fx->be->stats);
    const size_t base = fx->be->stats.cur_total;
    sdc_status st = sdc_vae_decode(fx->dec, z, image, NULL, NULL);
    *peak = fx->be->stats.peak_total - base;
    if (st == SDC_OK) st = sdc_tensor_get_f32(image, out);
    sdc_tensor_free(image);
    if (!test_check(st == SDC_OK, "untiled decode: %s", sdc_status_str(st))) {
        free(out);
        return NULL;
    }
    return out;
}

/* The tiled image of z (NULL on failure, recorded); *peak as above. */
static float *decode_tiled(const fixture *fx, const sdc_tensor *z, int tile, size_t *peak) {
    const int64_t f = sdc_vae_downscale(&fx->cfg);
    const size_t n = (size_t)(z->ne[0] * fx->cfg.out_channels * z->ne[2] * f * z->ne[3] * f);
    float *out = malloc(sizeof(float) * n);
    sdc_mem_stats_reset_peak(&fx->be->stats);
    const size_t base = fx->be->stats.cur_total;
    sdc_status st = sdc_vae_decode_tiled(fx->dec, z, out, tile);
    *peak = fx->be->stats.peak_total - base;
    test_check(fx->be->stats.cur_total == base, "tiled decode leaves nothing allocated (%zu bytes above before)",
               fx->be->stats.cur_total - base);
    if (!test_check(st == SDC_OK, "tiled decode (tile %d): %s", tile, sdc_status_str(st))) {
        free(out);
        return NULL;
    }
    return out;
}

/* Tiled against untiled. Both run the same operations on the same operands (exact halos, group norm
 * over the whole image), so they differ only where OpenBLAS rounds a dot product of the same length
 * differently for a GEMM of another width (its small-matrix and edge kernels): a one-tile decode must
 * match bit for bit; more tiles within GEMM rounding (bounds below, f32). */
static void check_exact(const fixture *fx, int64_t B, int64_t h, int64_t w, int tile, uint64_t seed) {
    sdc_tensor *z = latents(fx, B, h, w, seed);
    size_t pu, pt;
    float *ref = decode_untiled(fx, z, &pu), *got = decode_tiled(fx, z, tile, &pt);
    if (ref && got) {
        const int64_t f = sdc_vae_downscale(&fx->cfg);
        const size_t n = (size_t)(B * fx->cfg.out_channels * h * f * w * f);
        size_t differ = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t a, b;
            memcpy(&a, &ref[i], 4);
            memcpy(&b, &got[i], 4);
            differ += a != b;
        }
        const int64_t side = tile ? tile : 32;
        const int one_tile = side >= h && side >= w;
        char what[96];
        snprintf(what, sizeof what, "B=%lld latent %lldx%lld tile %d%s (%zu values)", (long long)B, (long long)h,
                 (long long)w, tile, one_tile ? ", one tile" : "", n);
        if (one_tile) test_check_err(what, "values with other bits", (double)differ, 0.0);
        test_check_err(what, "||tiled - untiled|| / ||untiled||", test_rel_err(got, ref, n), one_tile ? 0.0 : 1e-5);
        test_check_err(what, "max |tiled - untiled|", test_max_abs(got, ref, n), one_tile ? 0.0 : 1e-4);
        printf("    %zu of %zu values with other bits; peak backend bytes: untiled %zu, tiled %zu\n", differ, n, pu,
               pt);
    }
    free(ref);
    free(got);
    sdc_tensor_free(z);
}

static void check_sizes(const fixture *fx) {
    printf("tiled = untiled, bit for bit:\n");
    static const struct {
        int64_t B, h, w;
        int tile;
    } cases[] = {
        {1, 1, 1, 1},  {1, 1, 1, 0},   {1, 2, 3, 1},  {1, 5, 3, 2}, {1, 8, 8, 4},   {1, 13, 7, 4},
        {1, 7, 13, 3}, {1, 20, 12, 8}, {1, 9, 9, 16}, {2, 6, 5, 3}, {1, 16, 24, 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_exact(fx, cases[i].B, cases[i].h, cases[i].w, cases[i].tile, 100 + i);
}

/* Backend bytes of the terms that grow with the image: the mid-block attention at latent resolution
 * with its input (untiled: every position attends to every other), and one group of the full-resolution
 * activation, in and out. */
static size_t attn_bytes(fixture *fx, int64_t h, int64_t w) {
    const int64_t C = fx->cfg.block_out_channels[fx->cfg.n_blocks - 1];
    sdc_mem_stats_reset_peak(&fx->be->stats);
    const size_t base = fx->be->stats.cur_total;
    sdc_tensor *x =
        sdc_tensor_new(fx->be, SDC_MEM_ACTIVATIONS, sdc_vae_decoder_act_dtype(fx->dec), 4, (int64_t[]){1, C, h, w});
    sdc_tensor *y = x ? sdc_vae_attn_forward(&fx->dec->mid.attn, x) : NULL;   // only the bytes count here
    const size_t peak = fx->be->stats.peak_total - base;
    sdc_tensor_free(x);
    sdc_tensor_free(y);
    return peak;
}
static size_t group_bytes(const fixture *fx, int64_t h, int64_t w) {
    const int64_t f = sdc_vae_downscale(&fx->cfg), Cg = fx->cfg.block_out_channels[0] / fx->cfg.norm_num_groups;
    return 2 * (size_t)(Cg * h * f * w * f) * sdc_dtype_size(sdc_vae_decoder_act_dtype(fx->dec));
}

/* The tiled peak as the area grows 1x, 2x, 4x at a fixed tile: at most the largest of the 1x peak (the
 * tile term), the attention and the group term at that size; below half the untiled peak. */
static void check_memory(fixture *fx) {
    printf("backend memory, tile 8 (64 image pixels):\n");
    const int tile = 8;
    static const int64_t sizes[3][2] = {{32, 32}, {64, 32}, {64, 64}};
    size_t tiled[3] = {0}, untiled[3] = {0};
    for (int i = 0; i < 3; i++) {
        sdc_tensor *z = latents(fx, 1, sizes[i][0], sizes[i][1], 200 + (uint64_t)i);
        float *a = decode_untiled(fx, z, &untiled[i]), *b = decode_tiled(fx, z, tile, &tiled[i]);
        const size_t at = attn_bytes(fx, sizes[i][0], sizes[i][1]), gr = group_bytes(fx, sizes[i][0], sizes[i][1]);
        printf("  latent %lldx%lld (image %lldx%lld): peak untiled %zu bytes, tiled %zu bytes (%.1fx less); "
               "attention %zu, one group %zu\n",
               (long long)sizes[i][0], (long long)sizes[i][1], (long long)sizes[i][0] * 8, (long long)sizes[i][1] * 8,
               untiled[i], tiled[i], tiled[i] ? (double)untiled[i] / (double)tiled[i] : 0.0, at, gr);
        char what[64];
        snprintf(what, sizeof what, "tiled peak at %dx the area", 1 << i);
        size_t bound = tiled[0] > at ? tiled[0] : at;
        bound = bound > gr ? bound : gr;
        if (i > 0) test_check_err(what, "bytes", (double)tiled[i], (double)bound);
        test_check_err(what, "tiled peak / untiled peak", (double)tiled[i] / (double)untiled[i], 0.5);
        free(a);
        free(b);
        sdc_tensor_free(z);
    }

    /* a device limit the untiled decode cannot meet: the tiled one meets it */
    sdc_tensor *z = latents(fx, 1, 64, 64, 300);
    fx->be->mem_limit = fx->be->stats.cur_total + tiled[2] + tiled[2] / 8;
    size_t pu, pt;
    const int64_t f = sdc_vae_downscale(&fx->cfg);
    sdc_tensor *image = sdc_tensor_new(fx->be, SDC_MEM_ACTIVATIONS, sdc_vae_decoder_act_dtype(fx->dec), 4,
                                       (int64_t[]){1, fx->cfg.out_channels, 64 * f, 64 * f});
    const sdc_logger saved = fx->be->log;
    fx->be->log = *test_capture_logger();
    sdc_status st = image ? sdc_vae_decode(fx->dec, z, image, NULL, NULL) : SDC_ERR_OOM;
    fx->be->log = saved;
    sdc_backend_clear_status(fx->be);
    sdc_tensor_free(image);
    test_check(st == SDC_ERR_OOM, "untiled decode under a limit of %zu bytes: %s", fx->be->mem_limit,
               sdc_status_str(st));
    float *got = decode_tiled(fx, z, tile, &pt);
    test_check(got != NULL, "tiled decode under the same limit (peak %zu bytes)", pt);
    free(got);
    fx->be->mem_limit = 0;
    (void)pu;
    sdc_tensor_free(z);
}

/* Wrong arguments; and a limit too small even for one tile: SDC_ERR_OOM, nothing left allocated. */
static void check_errors(fixture *fx) {
    printf("errors:\n");
    const sdc_logger saved = fx->be->log;
    fx->be->log = *test_capture_logger();
    sdc_tensor *bad = sdc_tensor_new(fx->be, SDC_MEM_ACTIVATIONS, SDC_DTYPE_F32, 4,
                                     (int64_t[]){1, fx->cfg.latent_channels + 1, 4, 4});
    float *out = malloc(sizeof(float) * 3 * 32 * 32 * 2);
    sdc_status st = sdc_vae_decode_tiled(fx->dec, bad, out, 4);
    test_check(st == SDC_ERR_INVALID_ARG, "z with %d channels: %s", fx->cfg.latent_channels + 1, sdc_status_str(st));
    sdc_tensor_free(bad);
    sdc_tensor *z = latents(fx, 1, 4, 4, 400);
    st = sdc_vae_decode_tiled(fx->dec, z, out, -1);
    test_check(st == SDC_ERR_INVALID_ARG, "tile -1: %s", sdc_status_str(st));
    const size_t live = fx->be->stats.cur_total;
    for (size_t extra = 1024; extra <= 64 * 1024; extra *= 4) {
        fx->be->mem_limit = live + extra;
        st = sdc_vae_decode_tiled(fx->dec, z, out, 2);
        sdc_backend_clear_status(fx->be);
        test_check(st == SDC_ERR_OOM && fx->be->stats.cur_total == live,
                   "limit %zu bytes above what is live: %s, %zu bytes left above", extra, sdc_status_str(st),
                   fx->be->stats.cur_total - live);
    }
    fx->be->mem_limit = 0;
    fx->be->log = saved;
    sdc_tensor_free(z);
    free(out);
}

/* Time of the untiled and the tiled decode (default tile), the bytes the tiled one moves between host and
 * backend and the most host bytes its activations hold, for information: at the largest size check_sizes
 * takes and at 512x512 (latents 20x12, 64x64); from `first` on. */
static void report_speed(fixture *fx, size_t first, double bound) {
    printf("time and traffic (%s backend, %s, %d threads, default tile):\n", sdc_backend_name(fx->be),
           sdc_dtype_name(sdc_vae_decoder_act_dtype(fx->dec)), fx->be->n_threads);
    static const int64_t sizes[][2] = {{20, 12}, {64, 64}};
    const int64_t f = sdc_vae_downscale(&fx->cfg);
    for (size_t i = first; i < sizeof sizes / sizeof sizes[0]; i++) {
        const int64_t h = sizes[i][0], w = sizes[i][1];
        sdc_tensor *z = latents(fx, 1, h, w, 500 + i);
        size_t peak;
        double t0 = test_now();
        float *ref = decode_untiled(fx, z, &peak);
        const double tu = test_now() - t0;
        float *got = malloc(sizeof(float) * (size_t)(fx->cfg.out_channels * h * f * w * f));
        sdc_vae_tile_report rep = {0};
        t0 = test_now();
        sdc_status st = sdc_vae_decode_tiled_report(fx->dec, z, got, 0, &rep);
        const double tt = test_now() - t0;
        test_check(st == SDC_OK, "tiled decode of latent %lldx%lld: %s", (long long)h, (long long)w,
                   sdc_status_str(st));
        const size_t n = (size_t)(fx->cfg.out_channels * h * f * w * f);
        if (ref && st == SDC_OK) {
            char what[64];
            snprintf(what, sizeof what, "latent %lldx%lld, default tile", (long long)h, (long long)w);
            test_check_err(what, "||tiled - untiled|| / ||untiled||", test_rel_err(got, ref, n), bound);
        }
        printf("  image %lldx%lld: untiled %.3f s, tiled %.3f s; tiled moved %.1f MB up, %.1f MB down; host "
               "activations peak %.1f MB\n",
               (long long)(h * f), (long long)(w * f), tu, tt, rep.bytes_up / 1e6, rep.bytes_down / 1e6,
               rep.host_peak / 1e6);
        free(ref);
        free(got);
        sdc_tensor_free(z);
    }
}

/* The tiled decode's traffic and host memory at 1024x1024 and 2048x2048 (latents 128x128, 256x256) on a
 * counting backend shaped like the CPU one (no work: the counts are exact). The host peak is two
 * activations of the largest resolution at most: a resnet's input and hidden activation. */
static void report_traffic(const fixture *cpu, sdc_model_files *mf) {
    printf("traffic (counting backend like %s, default tile):\n", sdc_backend_name(cpu->be));
    fixture fx = {.cfg = cpu->cfg, .be = sdc_backend_count_new(cpu->be)};
    const sdc_weight_source src = {mf->index, "vae.", fx.be, test_logger(), 0, 0, NULL, 0};
    sdc_status st = fx.be ? sdc_vae_decoder_load(&fx.cfg, &src, &fx.dec) : SDC_ERR_OOM;
    static const int64_t sides[] = {128, 256};
    const int64_t f = sdc_vae_downscale(&fx.cfg), C0 = fx.cfg.block_out_channels[0];
    const int64_t C1 = fx.cfg.block_out_channels[fx.cfg.n_blocks > 1 ? 1 : 0];
    for (size_t i = 0; st == SDC_OK && i < sizeof sides / sizeof sides[0]; i++) {
        const int64_t h = sides[i], n = fx.cfg.out_channels * h * f * h * f;
        sdc_tensor *z = latents(&fx, 1, h, h, 600 + i);
        float *img = malloc(sizeof(float) * (size_t)n);
        sdc_vae_tile_report rep = {0};
        st = z && img ? sdc_vae_decode_tiled_report(fx.dec, z, img, 0, &rep) : SDC_ERR_OOM;
        const size_t act = sizeof(float) * (size_t)(h * f * h * f), bound = (size_t)(C0 + C1) * act;
        char what[64];
        snprintf(what, sizeof what, "image %lldx%lld on the counting backend", (long long)(h * f), (long long)(h * f));
        test_check(st == SDC_OK, "%s: %s", what, sdc_status_str(st));
        test_check_err(what, "host activation bytes (bound: the largest resnet's input + hidden)",
                       (double)rep.host_peak, (double)bound);
        printf("  image %lldx%lld: tiled moved %.1f MB up, %.1f MB down; host activations peak %.1f MB\n",
               (long long)(h * f), (long long)(h * f), rep.bytes_up / 1e6, rep.bytes_down / 1e6, rep.host_peak / 1e6);
        free(img);
        sdc_tensor_free(z);
    }
    test_check(st == SDC_OK, "traffic on the counting backend: %s", sdc_status_str(st));
    sdc_vae_decoder_free(fx.dec);
    sdc_backend_free(fx.be);
}

/* On a CUDA device, where the build has the backend: report_speed for the decoder in f32 and in f16 (tiled
 * against untiled: GEMM rounding in f32; in f16 also the statistics' rounding, which f16 storage amplifies). */
static void report_cuda(sdc_model_files *mf) {
    if (!sdc_device_available(SDC_DEVICE_CUDA)) {
        printf("cuda: not in this build\n");
        return;
    }
    const sdc_logger *log = test_logger();
    sdc_backend *be = sdc_backend_new(SDC_DEVICE_CUDA, 0, log);
    if (!be) {
        printf("cuda: built, but no device could be used: skipped\n");
        return;
    }
    for (int f16 = 0; f16 <= 1; f16++) {
        fixture fx = {.be = be};
        sdc_status st = sdc_vae_config_parse(sdc_model_files_config(mf, "vae"), log, &fx.cfg);
        const sdc_weight_source src = {mf->index, "vae.", be, log, !f16, 0, NULL, 0};
        if (st == SDC_OK) st = sdc_vae_decoder_load(&fx.cfg, &src, &fx.dec);
        if (test_check(st == SDC_OK, "load the tiny-sd1 decoder on cuda (%s): %s", f16 ? "f16" : "f32",
                       sdc_status_str(st)))
            report_speed(&fx, 1, f16 ? 1e-2 : 1e-5);
        sdc_vae_decoder_free(fx.dec);
    }
    sdc_backend_free(be);
}

int main(void) {
    const sdc_logger *log = test_logger();
    sdc_model_files *mf = test_open_tiny_sd1(SDC_VARIANT_F32, "f32");
    if (!mf) return test_finish();
    fixture fx = {0};
    sdc_status st = sdc_vae_config_parse(sdc_model_files_config(mf, "vae"), log, &fx.cfg);
    fx.be = sdc_backend_cpu_new(0, log);
    const sdc_weight_source src = {mf->index, "vae.", fx.be, log, 0, 0, NULL, 0};
    if (st == SDC_OK) st = sdc_vae_decoder_load(&fx.cfg, &src, &fx.dec);
    if (test_check(st == SDC_OK, "load the tiny-sd1 decoder: %s", sdc_status_str(st))) {
        check_sizes(&fx);
        check_memory(&fx);
        check_errors(&fx);
        report_speed(&fx, 0, 1e-5);
        report_traffic(&fx, mf);
        report_cuda(mf);
    }
    sdc_vae_decoder_free(fx.dec);
    test_check(fx.be->stats.cur_total == 0, "nothing stays allocated (%zu bytes)", fx.be->stats.cur_total);
    sdc_backend_free(fx.be);
    sdc_model_files_free(mf);
    return test_finish();
}
