/* cmd_generate.c - `sdc generate`: parse flags into sdc_ctx_params / sdc_gen_params, run, save PNGs. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: sdc generate -m MODEL -p PROMPT [options]\n"
            "\n"
            "  -m, --model PATH         Stable Diffusion model: a diffusers folder, or a single-file\n"
            "                           (CompVis/LDM) .safetensors checkpoint\n"
            "  -p, --prompt TEXT        what to draw\n"
            "  -n, --negative-prompt T  what to avoid (default: empty)\n"
            "  -o, --output FILE        output PNG (default: output.png); with -b N > 1 the images are\n"
            "                           FILE-1.png, FILE-2.png, ...\n"
            "  -W, --width N            image width, a multiple of 8 (default 512)\n"
            "  -H, --height N           image height, a multiple of 8 (default 512)\n"
            "      --steps N            sampling steps (default 20)\n"
            "      --cfg-scale X        classifier-free guidance scale; <= 1 disables it (default 7.5)\n"
            "  -s, --seed N             seed (default 42); image i of a batch uses seed + i\n"
            "  -b, --batch-count N      number of images (default 1)\n"
            "      --sampling-method S  euler, euler_a, heun, lms, ddim, pndm, dpm++2m\n"
            "                           (default: the model's scheduler config)\n"
            "      --scheduler S        discrete (the config's spacing) or karras (default discrete)\n"
            "      --rng R              cpu (torch CPU generator, diffusers' default) or cuda (torch CUDA\n"
            "                           Philox, as A1111) (default cpu)\n"
            "      --clip-skip N        1 = last CLIP layer, 2 = penultimate; <= 0 model default\n"
            "  -i, --init-img FILE      img2img: start from this PNG (must be W x H; its size is the\n"
            "                           default W x H)\n"
            "      --strength X         img2img strength in (0, 1] (default 0.75)\n"
            "      --config DIR         single-file checkpoints: a diffusers folder whose config.json files\n"
            "                           describe the architecture (default: recognise SD 1.x from the file)\n"
            "      --tokenizer DIR      CLIP tokenizer (vocab.json + merges.txt) instead of the model's\n"
            "      --fp16               use the model's .fp16 weight files\n"
            "  -t, --threads N          CPU threads (default: all cores)\n"
            "      --device D           cpu, cuda or auto (CUDA when built in and present, else CPU)\n"
            "                           (default cpu)\n"
            "      --precision P        fp16 or f32: the GPU's compute type (default fp16; the CPU always\n"
            "                           computes in f32)\n"
            "      --load-policy P      auto, all, sequential or phased: which components are resident\n"
            "                           in which phase (default auto: the first that fits --mem-budget)\n"
            "      --mem-budget SIZE    device memory auto may plan for, binary units: 6G = 6 GiB, 512M\n"
            "                           (default: CPU MemAvailable - 1 GiB)\n"
            "      --plan               print the planned peak memory of every phase under every policy\n"
            "                           and exit, without reading any weights\n"
            "      --report-json FILE   write the measured per-phase report as JSON\n"
            "      --profile            time every op by family (slower; the -v report shows the split)\n"
            "  -v, --verbose            per-phase timings and details\n"
            "  -h, --help               this help\n");
}

/* Fails early (before any work) when out's folder is not writable; probes with a temporary file. */
static int check_writable(const char *out) {
    size_t n = strlen(out);
    char *probe = malloc(n + 32);
    if (!probe) return -1;
    snprintf(probe, n + 32, "%s.probe-XXXXXX", out);
    int fd = mkstemp(probe);
    if (fd < 0) {
        fprintf(stderr, "sdc: error: cannot write the output %s: %s\n", out, strerror(errno));
        free(probe);
        return -1;
    }
    close(fd);
    unlink(probe);
    free(probe);
    return 0;
}

/* out.png -> out-<i>.png (i from 1) when there are several images */
static char *output_name(const char *out, int i, int n) {
    size_t len = strlen(out) + 16;
    char *name = malloc(len);
    if (!name) return NULL;
    if (n == 1) {
        snprintf(name, len, "%s", out);
        return name;
    }
    const char *slash = strrchr(out, '/');
    const char *dot = strrchr(out, '.');
    if (!dot || (slash && dot < slash)) dot = out + strlen(out);
    snprintf(name, len, "%.*s-%d%s", (int)(dot - out), out, i, dot);
    return name;
}

enum {
    OPT_STEPS = 256, OPT_CFG, OPT_SAMPLER, OPT_SCHEDULER, OPT_RNG, OPT_CLIP_SKIP, OPT_STRENGTH, OPT_TOKENIZER,
    OPT_FP16, OPT_PROFILE, OPT_CONFIG, OPT_DEVICE, OPT_PRECISION, OPT_POLICY, OPT_BUDGET, OPT_PLAN, OPT_REPORT
};

/* "6G", "512M", "1.5G", "1048576": binary units (K, M, G, T = 2^10 ...). Returns -1 when malformed. */
static int64_t parse_size(const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || !(x > 0)) return -1;
    double mul = 1;
    switch (*end) {
    case 'k': case 'K': mul = 1024.0; end++; break;
    case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: break;
    }
    if (*end == 'i' && end[1] == 'B') end += 2;
    else if (*end == 'B') end++;
    if (*end || x * mul > 9e18) return -1;
    return (int64_t)(x * mul);
}

int sdc_cmd_generate(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},        {"prompt", required_argument, 0, 'p'},
        {"negative-prompt", required_argument, 0, 'n'}, {"output", required_argument, 0, 'o'},
        {"width", required_argument, 0, 'W'},        {"height", required_argument, 0, 'H'},
        {"steps", required_argument, 0, OPT_STEPS},  {"cfg-scale", required_argument, 0, OPT_CFG},
        {"seed", required_argument, 0, 's'},         {"batch-count", required_argument, 0, 'b'},
        {"sampling-method", required_argument, 0, OPT_SAMPLER},
        {"scheduler", required_argument, 0, OPT_SCHEDULER},
        {"rng", required_argument, 0, OPT_RNG},      {"clip-skip", required_argument, 0, OPT_CLIP_SKIP},
        {"init-img", required_argument, 0, 'i'},     {"strength", required_argument, 0, OPT_STRENGTH},
        {"tokenizer", required_argument, 0, OPT_TOKENIZER},
        {"fp16", no_argument, 0, OPT_FP16},         {"config", required_argument, 0, OPT_CONFIG},
        {"device", required_argument, 0, OPT_DEVICE}, {"precision", required_argument, 0, OPT_PRECISION},
        {"load-policy", required_argument, 0, OPT_POLICY}, {"mem-budget", required_argument, 0, OPT_BUDGET},
        {"plan", no_argument, 0, OPT_PLAN},          {"profile", no_argument, 0, OPT_PROFILE},          {"report-json", required_argument, 0, OPT_REPORT},
        {"threads", required_argument, 0, 't'},      {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},               {0, 0, 0, 0},
    };
    sdc_ctx_params cp;
    sdc_gen_params gp;
    sdc_ctx_params_init(&cp);
    sdc_gen_params_init(&gp);
    const char *out = "output.png", *init_path = NULL, *report_path = NULL;
    int size_given = 0, verbose = 0, plan_only = 0;
    long v;
    double d;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:p:n:o:W:H:s:b:i:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': cp.model_path = optarg; break;
        case 'p': gp.prompt = optarg; break;
        case 'n': gp.negative_prompt = optarg; break;
        case 'o': out = optarg; break;
        case 'W': if (cli_int("--width", optarg, 1, 16384, &v)) return 2; gp.width = (int)v; size_given = 1; break;
        case 'H': if (cli_int("--height", optarg, 1, 16384, &v)) return 2; gp.height = (int)v; size_given = 1; break;
        case OPT_STEPS: if (cli_int("--steps", optarg, -1000000, 1000000, &v)) return 2; gp.steps = (int)v; break;
        case OPT_CFG: if (cli_float("--cfg-scale", optarg, &d)) return 2; gp.cfg_scale = (float)d; break;
        case 's': if (cli_int("--seed", optarg, 0, 0x7fffffffffffffffL, &v)) return 2; gp.seed = v; break;
        case 'b': if (cli_int("--batch-count", optarg, 1, 10000, &v)) return 2; gp.batch_count = (int)v; break;
        case OPT_SAMPLER:
            if (sdc_sampler_from_name(optarg, &gp.sampler)) {
                fprintf(stderr, "sdc: error: unknown sampling method '%s' (euler, euler_a, heun, lms, ddim, pndm, dpm++2m)\n", optarg);
                return 2;
            }
            break;
        case OPT_SCHEDULER:
            if (!strcmp(optarg, "karras")) gp.karras = 1;
            else if (!strcmp(optarg, "discrete")) gp.karras = 0;
            else {
                fprintf(stderr, "sdc: error: unknown scheduler '%s' (discrete, karras)\n", optarg);
                return 2;
            }
            break;
        case OPT_RNG:
            if (!strcmp(optarg, "cpu")) gp.rng = SDC_RNG_TYPE_CPU;
            else if (!strcmp(optarg, "cuda")) gp.rng = SDC_RNG_TYPE_CUDA;
            else {
                fprintf(stderr, "sdc: error: unknown rng '%s' (cpu, cuda)\n", optarg);
                return 2;
            }
            break;
        case OPT_CLIP_SKIP: if (cli_int("--clip-skip", optarg, -1000, 1000, &v)) return 2; gp.clip_skip = (int)v; break;
        case 'i': init_path = optarg; break;
        case OPT_STRENGTH: if (cli_float("--strength", optarg, &d)) return 2; gp.strength = (float)d; break;
        case OPT_TOKENIZER: cp.tokenizer_dir = optarg; break;
        case OPT_FP16: cp.prefer_fp16 = 1; break;
        case OPT_CONFIG: cp.config_dir = optarg; break;
        case OPT_DEVICE:
            if (!strcmp(optarg, "cpu")) cp.device = SDC_DEVICE_CPU;
            else if (!strcmp(optarg, "cuda")) cp.device = SDC_DEVICE_CUDA;
            else if (!strcmp(optarg, "auto")) cp.device = SDC_DEVICE_AUTO;
            else {
                fprintf(stderr, "sdc: error: unknown device '%s' (cpu, cuda, auto)\n", optarg);
                return 2;
            }
            break;
        case OPT_PRECISION:
            if (!strcmp(optarg, "f32")) cp.precision_f32 = 1;
            else if (!strcmp(optarg, "fp16") || !strcmp(optarg, "f16")) cp.precision_f32 = 0;
            else {
                fprintf(stderr, "sdc: error: unknown precision '%s' (fp16, f32)\n", optarg);
                return 2;
            }
            break;
        case OPT_POLICY:
            if (sdc_load_policy_from_name(optarg, &cp.load_policy)) {
                fprintf(stderr, "sdc: error: unknown load policy '%s' (auto, all, sequential, phased)\n", optarg);
                return 2;
            }
            break;
        case OPT_BUDGET:
            if ((cp.mem_budget = parse_size(optarg)) < 0) {
                fprintf(stderr, "sdc: error: bad value for --mem-budget: '%s' (e.g. 6G, 512M)\n", optarg);
                return 2;
            }
            break;
        case OPT_PLAN: plan_only = 1; break;
        case OPT_PROFILE: cp.profile = 1; break;
        case OPT_REPORT: report_path = optarg; break;
        case 't': if (cli_int("--threads", optarg, 0, 1024, &v)) return 2; cp.n_threads = (int)v; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sdc: error: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!cp.model_path) {
        fprintf(stderr, "sdc: error: no model given (-m DIR)\n");
        return 2;
    }
    /* the cheap checks first, before any model is read */
    if (gp.steps < 1) {
        fprintf(stderr, "sdc: error: --steps must be at least 1 (got %d)\n", gp.steps);
        return 2;
    }
    if (init_path && !(gp.strength > 0.0f && gp.strength <= 1.0f)) {
        fprintf(stderr, "sdc: error: --strength must be in (0, 1] (got %g)\n", (double)gp.strength);
        return 2;
    }
    int min_level = verbose ? SDC_LOG_DEBUG : SDC_LOG_WARN;
    cp.log_fn = cli_log;
    cp.log_user = &min_level;
    cp.log_level = SDC_LOG_DEBUG;
    cp.progress_fn = cli_progress;
    sdc_image *init = NULL;
    if (init_path) {
        if (sdc_image_load(init_path, &init, cli_log, &min_level) != SDC_OK) {
            fprintf(stderr, "sdc: error: cannot use %s as the init image\n", init_path);
            return 1;
        }
        if (!size_given) {
            gp.width = init->width;
            gp.height = init->height;
        }
        gp.init_image = init;
    }
    for (int i = 1; i <= gp.batch_count && !plan_only; i++) {
        char *name = output_name(out, i, gp.batch_count);
        int bad = !name || check_writable(name);
        free(name);
        if (bad) {
            sdc_image_free(init, 1);
            return 1;
        }
    }
    sdc_ctx *ctx = sdc_ctx_new(&cp);
    if (!ctx) {
        sdc_image_free(init, 1);
        return 1;
    }
    if (plan_only) {
        char *text = NULL;
        sdc_status st = sdc_plan_memory(ctx, &gp, &text);
        if (text) fputs(text, stdout);
        free(text);
        sdc_image_free(init, 1);
        sdc_ctx_free(ctx);
        return st == SDC_OK ? 0 : 1;
    }
    sdc_image *images = NULL;
    int n = 0;
    sdc_status st = sdc_generate(ctx, &gp, &images, &n);
    int rc = st == SDC_OK ? 0 : 1;
    if (rc == 0 && report_path) {
        const char *json = sdc_last_report_json(ctx);
        FILE *f = fopen(report_path, "w");
        if (!f || !json || fputs(json, f) < 0 || fputc('\n', f) < 0) rc = 1;
        if (f && fclose(f) != 0) rc = 1;
        if (rc) fprintf(stderr, "sdc: error: cannot write the report %s\n", report_path);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        char *name = output_name(out, i + 1, n);
        if (!name || sdc_image_save(&images[i], name, cli_log, &min_level) != SDC_OK) rc = 1;
        else fprintf(stderr, "sdc: wrote %s (%dx%d, seed %lld)\n", name, images[i].width, images[i].height,
                     (long long)images[i].seed);
        free(name);
    }
    sdc_image_free(images, n);
    sdc_image_free(init, 1);
    sdc_ctx_free(ctx);
    return rc;
}
