/* bench.c - memory and speed of each load policy, side by side in one process.
 *
 *   sdc_bench -m MODEL [--sizes 256,512] [--steps N] [--batches 1,4] [--policies all,sequential,phased]
 *             [--device cpu|cuda] [--repeat R] [-t THREADS] [--cfg X] [--vae-tiling]
 *             [--prefetch-mem MIB] [--host-cache MIB] [--budget MIB] [--stream-window N] [--no-stream-prefetch]
 *
 * After a warm-up run, for every size x batch x policy: a fresh context (so every policy loads each component at least
 * once), R timed generations (the first includes loading; later ones show the steady state), and a row
 * with seconds per image, seconds per UNet step, peak device bytes (allocator; driver too on a GPU),
 * planned peak, peak RSS and each component's load time ("un" is the denoiser: the UNet, or Flux's
 * transformer, whose second text encoder is T5), and the MiB its loads took from host memory (the
 * prefetcher and the host tier: --prefetch-mem, -1 off, 0 the default; --host-cache). Uses only the
 * public API. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdc.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double num(const cJSON *o, const char *path) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    return cJSON_IsNumber(cur) ? cur->valuedouble : 0.0;
}

/* MiB the job's loads took from host memory, all components (and streamed blocks) together. */
static double host_mib(const cJSON *rep) {
    double b = num(rep, "phases.denoise.stream.block_bytes_from_host");
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(rep, "components")) b += num(c, "bytes_from_host");
    return b / 1048576.0;
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    while (*s && n < max) {
        out[n++] = atoi(s);
        const char *c = strchr(s, ',');
        if (!c) break;
        s = c + 1;
    }
    return n;
}

static void log_quiet(sdc_log_level level, const char *msg, void *user) {
    (void)user;
    if (level >= SDC_LOG_WARN) fprintf(stderr, "bench: %s\n", msg);
}

int main(int argc, char **argv) {
    const char *model = NULL, *policies = "all,sequential,phased", *diffusion_model = NULL, *t5xxl = NULL;
    int sizes[8] = {256, 512}, n_sizes = 2, batches[8] = {1, 4}, n_batches = 2, steps = 20, repeat = 1, threads = 0;
    int precision = SDC_PRECISION_AUTO, vae_tiling = 0, window = 0, stream_prefetch = 0;
    int64_t prefetch_mem = 0, host_cache = 0, budget = 0;
    float cfg = 7.5f;
    sdc_device device = SDC_DEVICE_CPU;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "-m"))
            model = v, i++;
        else if (!strcmp(a, "--diffusion-model"))
            diffusion_model = v, i++;
        else if (!strcmp(a, "--t5xxl"))
            t5xxl = v, i++;
        else if (!strcmp(a, "--sizes"))
            n_sizes = parse_list(v, sizes, 8), i++;
        else if (!strcmp(a, "--batches"))
            n_batches = parse_list(v, batches, 8), i++;
        else if (!strcmp(a, "--steps"))
            steps = atoi(v), i++;
        else if (!strcmp(a, "--repeat"))
            repeat = atoi(v), i++;
        else if (!strcmp(a, "-t"))
            threads = atoi(v), i++;
        else if (!strcmp(a, "--policies"))
            policies = v, i++;
        else if (!strcmp(a, "--cfg"))
            cfg = (float)atof(v), i++;
        else if (!strcmp(a, "--prefetch-mem"))
            prefetch_mem = atoll(v) < 0 ? -1 : atoll(v) << 20, i++;
        else if (!strcmp(a, "--host-cache"))
            host_cache = atoll(v) << 20, i++;
        else if (!strcmp(a, "--budget"))
            budget = atoll(v) << 20, i++;
        else if (!strcmp(a, "--stream-window"))
            window = atoi(v), i++;
        else if (!strcmp(a, "--stream-prefetch"))
            stream_prefetch = 1;
        else if (!strcmp(a, "--no-stream-prefetch"))
            stream_prefetch = -1;
        else if (!strcmp(a, "--vae-tiling"))
            vae_tiling = 1;
        else if (!strcmp(a, "--precision"))
            precision = !strcmp(v, "f32") ? SDC_PRECISION_F32
                : !strcmp(v, "bf16")      ? SDC_PRECISION_BF16
                                          : SDC_PRECISION_AUTO,
            i++;
        else if (!strcmp(a, "--device"))
            device = !strcmp(v, "cuda") ? SDC_DEVICE_CUDA : SDC_DEVICE_CPU, i++;
        else {
            fprintf(
                stderr,
                "usage: %s -m MODEL [--diffusion-model FILE] [--t5xxl FILE] [--sizes 256,512] [--steps N] [--batches "
                "1,4] [--policies LIST] "
                "[--device cpu|cuda] [--precision fp16|f32|bf16] [--repeat R] [-t THREADS] [--cfg X] [--vae-tiling] "
                "[--prefetch-mem MIB] [--host-cache MIB] [--budget MIB] [--stream-window N] [--no-stream-prefetch]\n",
                argv[0]);
            return 2;
        }
    }
    if (!model || steps < 1 || repeat < 1) {
        fprintf(stderr, "bench: -m MODEL is required; steps and repeat >= 1\n");
        return 2;
    }
    { /* warm-up: process-wide one-time costs (device context, kernel modules, libraries) are paid here,
         * not by whichever policy happens to run first */
        sdc_ctx_params cp;
        sdc_ctx_params_init(&cp);
        cp.model_path = model;
        cp.diffusion_model_path = diffusion_model;
        cp.t5xxl_path = t5xxl;
        cp.n_threads = threads;
        cp.device = device;
        cp.precision = (sdc_precision)precision;
        cp.log_fn = log_quiet;
        cp.load_policy = SDC_LOAD_PHASED;
        sdc_ctx *ctx = sdc_ctx_new(&cp);
        if (!ctx) return 1;
        sdc_gen_params gp;
        sdc_gen_params_init(&gp);
        gp.width = gp.height = 64;
        gp.steps = 1;
        sdc_image *imgs = NULL;
        int n = 0;
        sdc_status st = sdc_generate(ctx, &gp, &imgs, &n);
        sdc_image_free(imgs, n);
        sdc_ctx_free(ctx);
        if (st != SDC_OK) return 1;
    }
    printf("%5s %-10s %5s %3s %9s %9s %9s %9s %9s %9s %8s %8s %8s %8s %8s %8s %8s\n", "size", "policy", "batch", "rep",
           "s/image", "s/step", "peak MiB", "plan MiB", "drv MiB", "RSS MiB", "load te", "load te2", "load un",
           "load dec", "un loads", "host MiB", "total s");
    fflush(stdout);
    char plist[128];
    for (int si = 0; si < n_sizes; si++)
        for (int bi = 0; bi < n_batches; bi++) {
            snprintf(plist, sizeof plist, "%s", policies);
            for (char *save = NULL, *pol = strtok_r(plist, ",", &save); pol; pol = strtok_r(NULL, ",", &save)) {
                sdc_ctx_params cp;
                sdc_ctx_params_init(&cp);
                cp.model_path = model;
                cp.diffusion_model_path = diffusion_model;
                cp.t5xxl_path = t5xxl;
                cp.n_threads = threads;
                cp.device = device;
                cp.precision = (sdc_precision)precision;
                cp.log_fn = log_quiet;
                cp.prefetch_mem = prefetch_mem;
                cp.host_cache = host_cache;
                cp.mem_budget = budget;
                cp.stream_window = window;
                cp.stream_prefetch = stream_prefetch;
                if (sdc_load_policy_from_name(pol, &cp.load_policy)) {
                    fprintf(stderr, "bench: unknown policy %s\n", pol);
                    return 2;
                }
                sdc_ctx *ctx = sdc_ctx_new(&cp);
                if (!ctx) return 1;
                sdc_gen_params gp;
                sdc_gen_params_init(&gp);
                gp.prompt = "a photo of an astronaut riding a horse on mars";
                gp.width = gp.height = sizes[si];
                gp.steps = steps;
                gp.batch_count = batches[bi];
                gp.sampler = SDC_SAMPLER_EULER;
                gp.cfg_scale = cfg;
                gp.vae_tiling = vae_tiling;
                for (int r = 0; r < repeat; r++) {
                    sdc_image *imgs = NULL;
                    int n = 0;
                    double t0 = now();
                    sdc_status st = sdc_generate(ctx, &gp, &imgs, &n);
                    double dt = now() - t0;
                    sdc_image_free(imgs, n);
                    if (st != SDC_OK) {
                        fprintf(stderr, "bench: generate failed: %s\n", sdc_status_str(st));
                        sdc_ctx_free(ctx);
                        return 1;
                    }
                    cJSON *rep = cJSON_Parse(sdc_last_report_json(ctx));
                    double denoise = num(rep, "phases.denoise.wall_seconds") - num(rep, "phases.denoise.load_seconds");
                    printf("%5d %-10s %5d %3d %9.3f %9.3f %9.1f %9.1f %9.1f %9.1f %8.3f %8.3f %8.3f %8.3f %8.0f %8.1f "
                           "%8.3f\n",
                           sizes[si], pol, batches[bi], r + 1, dt / batches[bi], denoise / (steps * batches[bi]),
                           num(rep, "peak_device_bytes") / 1048576.0, num(rep, "planned_peak_bytes") / 1048576.0,
                           num(rep, "driver_peak_bytes") / 1048576.0, num(rep, "peak_rss_bytes") / 1048576.0,
                           num(rep, "components.text_encoder.load_seconds"),
                           num(rep, "components.text_encoder_2.load_seconds"),
                           num(rep, "components.unet.load_seconds") + num(rep, "components.transformer.load_seconds"),
                           num(rep, "components.vae_decoder.load_seconds"),
                           num(rep, "components.unet.loads") + num(rep, "components.transformer.loads"), host_mib(rep),
                           dt);
                    fflush(stdout);
                    cJSON_Delete(rep);
                }
                sdc_ctx_free(ctx);
            }
        }
    return 0;
}
