/* generate_args.c - `sdc generate`'s command line: flags into cli_generate_opts, and the checks that need
 * no file system. Kept apart from the run so that a fuzzer can drive it (fuzz/fuzz_cli.c). */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/checked.h"

void cli_generate_usage(FILE *f) {
    fprintf(f,
            "usage: sdc generate -m MODEL -p PROMPT [options]\n"
            "\n"
            "  -m, --model PATH         Stable Diffusion model: a diffusers folder, or a single-file\n"
            "                           (CompVis/LDM) .safetensors checkpoint\n"
            "  -p, --prompt TEXT        what to draw (UTF-8; invalid UTF-8 is refused)\n"
            "      --prompt-file FILE   many prompts in one run instead of -p, one per line (blank lines and\n"
            "                           lines starting with # are skipped); a line may start with options,\n"
            "                           each followed by '|':\n"
            "                             seed=7 | negative=blurry, dark | a lighthouse at dusk\n"
            "                           seed=N (default --seed) and negative=TEXT (default\n"
            "                           --negative-prompt; 'negative= |' for none; no '|' inside). Each line\n"
            "                           makes -b images (its seed + i), identical to running it alone.\n"
            "                           The phases run over the whole list: every prompt is encoded, then\n"
            "                           every image denoised, then decoded, so `phased` loads each\n"
            "                           component once. A malformed line is an error naming its line\n"
            "      --max-batch N        images per UNet / transformer call (each with its CFG rows); 0: all\n"
            "                           of the run at once (default 1). More use the device better and need\n"
            "                           more activation memory; above 1 the images may differ from\n"
            "                           one-at-a-time runs in the last bits. (sdc's own flag:\n"
            "                           stable-diffusion.cpp has none.)\n"
            "  -n, --negative-prompt T  what to avoid (default: empty)\n"
            "  -o, --output FILE        output PNG (default: output.png); with more than one image (-b N,\n"
            "                           --prompt-file) they are FILE-1.png, FILE-2.png, ... in order (line\n"
            "                           by line, -b images each). An existing FILE must be a regular\n"
            "                           file (it is replaced); a symlink, folder, FIFO or device is refused\n"
            "  -W, --width N            image width, a multiple of 8 (default 512)\n"
            "  -H, --height N           image height, a multiple of 8 (default 512)\n"
            "      --steps N            sampling steps (default 20)\n"
            "      --cfg-scale X        classifier-free guidance scale; <= 1 disables it (default 7.5)\n"
            "  -s, --seed N             seed (default 42); image i of a batch uses seed + i (which must\n"
            "                           not pass 2^63 - 1)\n"
            "  -b, --batch-count N      number of images (default 1)\n"
            "      --sampling-method S  euler, euler_a, heun, lms, ddim, pndm, dpm++2m\n"
            "                           (default: the model's scheduler config)\n"
            "      --scheduler S        discrete (the config's spacing) or karras (default discrete)\n"
            "      --rng R              cpu (torch CPU generator, diffusers' default) or cuda (torch CUDA\n"
            "                           Philox, as A1111) (default cpu)\n"
            "      --clip-skip N        1 = last CLIP layer, 2 = penultimate; <= 0 model default (SDXL:\n"
            "                           the penultimate; N >= 2 stops N - 1 layers earlier, as diffusers'\n"
            "                           clip_skip N - 1)\n"
            "      --original-size WxH  SDXL micro-conditioning: the original image size (default W x H)\n"
            "      --target-size WxH    SDXL micro-conditioning: the target size (default W x H)\n"
            "      --crop-top-left T,L  SDXL micro-conditioning: the crop's top-left corner (default 0,0)\n"
            "  -i, --init-img FILE      img2img: start from this PNG (must be W x H; its size is the\n"
            "                           default W x H)\n"
            "      --strength X         img2img strength in (0, 1] (default 0.75)\n"
            "      --config DIR         single-file checkpoints: a diffusers folder whose config.json files\n"
            "                           describe the architecture (default: recognise SD 1.x, SD 2.x or\n"
            "                           SDXL from the file)\n"
            "      --prediction-type P  epsilon or v_prediction: what the model predicts, over its scheduler\n"
            "                           config (SD 2.x single files are taken as v_prediction, as diffusers\n"
            "                           does; SD 2.x base needs epsilon)\n"
            "      --diffusion-model F  Flux: the transformer as its own file (BFL flux1-*.safetensors names\n"
            "                           or diffusers names); replaces -m's, or stands for -m\n"
            "      --clip_l FILE        Flux: the CLIP-L text encoder file (transformers names)\n"
            "      --t5xxl FILE         Flux: the T5 encoder file (transformers names)\n"
            "      --vae FILE           Flux: the VAE file (BFL ae.safetensors or diffusers names)\n"
            "                           A component file's architecture comes from the folder's (-m or\n"
            "                           --config) config.json, else from its shapes; the T5 tokenizer\n"
            "                           always from a Flux folder's tokenizer_2/ (-m DIR or --config DIR):\n"
            "                           -m flux1-schnell.safetensors --config FLUX-DIFFUSERS-FOLDER\n"
            "      --tokenizer DIR      CLIP tokenizer (vocab.json + merges.txt) instead of the model's\n"
            "      --fp16               use the model's .fp16 weight files\n"
            "  -t, --threads N          CPU threads (default: all cores)\n"
            "      --device D           cpu, cuda or auto (CUDA when built in and present, else CPU)\n"
            "                           (default cpu)\n"
            "      --precision P        fp16, f32 or bf16: the compute type (default fp16 on a GPU, f32 on\n"
            "                           the CPU); bf16: bf16 operands with f32 sums, on the CPU for linear\n"
            "                           layers and convolutions (AMX / AVX-512 BF16 where present)\n"
            "      --load-policy P      auto, all, sequential, phased or stream: which components are\n"
            "                           resident in which phase; stream: the denoiser's blocks are read\n"
            "                           from the files as they run, a window of them resident (default\n"
            "                           auto: the first that fits --mem-budget)\n"
            "      --stream-window N    stream: at most N denoiser blocks resident (default: as many as\n"
            "                           --mem-budget allows)\n"
            "      --mem-budget SIZE    device memory auto may plan for, binary units: 6G = 6 GiB, 512M\n"
            "                           (default: CPU MemAvailable - 1 GiB)\n"
            "      --no-stream-prefetch stream on CUDA: load every block synchronously (default: the\n"
            "                           next block uploads while the current one computes; same image)\n"
            "      --stream-prefetch    also on CUDA: a UNet/transformer/T5 loaded whole starts its first\n"
            "                           forward while its later blocks still upload (same image)\n"
            "      --prefetch-mem SIZE  host memory the next phase's weights are read into while the\n"
            "                           current phase computes (page-locked on CUDA; 0: off; default:\n"
            "                           the OS reads the next phase's files ahead into its page cache)\n"
            "      --host-cache SIZE    host memory that keeps components after they leave the device,\n"
            "                           so later loads in this process are uploads (default 0: none)\n"
            "      --plan               print the planned peak memory of every phase under every policy\n"
            "                           and exit, without reading any weights\n"
            "      --guidance X         Flux dev: the embedded guidance (default 3.5; Flux has no CFG: it\n"
            "                           ignores --cfg-scale and --negative-prompt, with a warning)\n"
            "      --t5-max-length N    Flux: T5 tokens (default 256 schnell, 512 dev)\n"
            "      --vae-tiling         decode in tiles: backend memory bounded by the tile, not the image\n"
            "                           (the image within ~1e-6 of the untiled decode's)\n"
            "      --report-json FILE   write the measured per-phase report as JSON (after the images; its\n"
            "                           folder must exist)\n"
            "      --profile            time every op and count its FLOPs by family and phase (slower; the\n"
            "                           -v report shows the split and the GFLOP/s)\n"
            "  -v, --verbose            per-phase timings and details\n"
            "  -h, --help               this help\n");
}

enum {
    OPT_STEPS = 256,
    OPT_PROMPT_FILE,
    OPT_MAX_BATCH,
    OPT_CFG,
    OPT_SAMPLER,
    OPT_SCHEDULER,
    OPT_RNG,
    OPT_CLIP_SKIP,
    OPT_STRENGTH,
    OPT_TOKENIZER,
    OPT_FP16,
    OPT_PROFILE,
    OPT_CONFIG,
    OPT_DIFFUSION_MODEL,
    OPT_CLIP_L,
    OPT_T5XXL,
    OPT_VAE,
    OPT_DEVICE,
    OPT_PRECISION,
    OPT_POLICY,
    OPT_BUDGET,
    OPT_STREAM_WINDOW,
    OPT_PREFETCH_MEM,
    OPT_STREAM_PREFETCH,
    OPT_NO_STREAM_PREFETCH,
    OPT_HOST_CACHE,
    OPT_PLAN,
    OPT_REPORT,
    OPT_ORIGINAL_SIZE,
    OPT_TARGET_SIZE,
    OPT_CROP,
    OPT_VAE_TILING,
    OPT_GUIDANCE,
    OPT_T5_MAX_LENGTH,
    OPT_PREDICTION
};

/* "6G", "512M", "1.5G", "1048576": binary units (K, M, G, T = 2^10 ...). Returns -1 when malformed. */
static int64_t parse_size(const char *v) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || !(x > 0)) return -1;
    double mul = 1;
    switch (*end) {
    case 'k':
    case 'K':
        mul = 1024.0;
        end++;
        break;
    case 'm':
    case 'M':
        mul = 1024.0 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        mul = 1024.0 * 1024 * 1024;
        end++;
        break;
    case 't':
    case 'T':
        mul = 1024.0 * 1024 * 1024 * 1024;
        end++;
        break;
    default: break;
    }
    if (*end == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B')
        end++;
    if (*end || x * mul > 9e18) return -1;
    return (int64_t)(x * mul);
}

/* Byte offset of the first invalid UTF-8 sequence in s (overlong, surrogate, above U+10FFFF, truncated), or
 * -1 when s is valid. */
long cli_utf8_invalid_at(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; p[i];) {
        unsigned char c = p[i];
        int len;
        uint32_t v, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, v = c & 0x1Fu, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, v = c & 0x0Fu, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, v = c & 0x07u, min = 0x10000;
        } else {
            return (long)i;
        }
        for (int k = 1; k < len; k++) {
            if ((p[i + (size_t)k] & 0xC0) != 0x80) return (long)i; /* also stops at the NUL */
            v = (v << 6) | (p[i + (size_t)k] & 0x3Fu);
        }
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return (long)i;
        i += (size_t)len;
    }
    return -1;
}

static int check_text(const char *opt, const char *s) {
    long bad = s ? cli_utf8_invalid_at(s) : -1;
    if (bad < 0) return 0;
    fprintf(stderr, "sdc: error: %s is not valid UTF-8 (byte %ld: 0x%02x); sdc refuses it rather than guess\n", opt,
            bad, (unsigned)(unsigned char)s[bad]);
    return -1;
}

/* "AxB" (sep 'x') or "A,B" (sep ','): two integers in min..2^20; 0, or -1 after the error. */
static int cli_pair(const char *opt, const char *v, char sep, long min, int *a, int *b) {
    char *end;
    long x = strtol(v, &end, 10);
    long y = -1;
    if (end != v && *end == sep) {
        const char *s = end + 1;
        y = strtol(s, &end, 10);
        if (end == s) y = -1;
    }
    if (*end || x < min || y < min || x > 1L << 20 || y > 1L << 20) {
        fprintf(stderr, "sdc: error: bad value for %s: '%s' (two %s integers as %s)\n", opt, v,
                min ? "positive" : "non-negative", sep == 'x' ? "WxH, e.g. 1024x768" : "TOP,LEFT, e.g. 0,0");
        return -1;
    }
    *a = (int)x;
    *b = (int)y;
    return 0;
}

/* A name from one of libsdc's name lists (the one table the library uses too); 0, or -1 after the error. */
static int cli_choice(const char *what, sdc_name_list list, const char *name, long *out) {
    int v;
    if (sdc_name_to_value(list, name, &v)) {
        fprintf(stderr, "sdc: error: unknown %s '%s' (%s)\n", what, name, sdc_names(list));
        return -1;
    }
    *out = v;
    return 0;
}

int cli_generate_parse(int argc, char **argv, cli_generate_opts *o) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"prompt", required_argument, 0, 'p'},
        {"prompt-file", required_argument, 0, OPT_PROMPT_FILE},
        {"max-batch", required_argument, 0, OPT_MAX_BATCH},
        {"negative-prompt", required_argument, 0, 'n'},
        {"output", required_argument, 0, 'o'},
        {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'},
        {"steps", required_argument, 0, OPT_STEPS},
        {"cfg-scale", required_argument, 0, OPT_CFG},
        {"seed", required_argument, 0, 's'},
        {"batch-count", required_argument, 0, 'b'},
        {"sampling-method", required_argument, 0, OPT_SAMPLER},
        {"scheduler", required_argument, 0, OPT_SCHEDULER},
        {"rng", required_argument, 0, OPT_RNG},
        {"clip-skip", required_argument, 0, OPT_CLIP_SKIP},
        {"init-img", required_argument, 0, 'i'},
        {"strength", required_argument, 0, OPT_STRENGTH},
        {"tokenizer", required_argument, 0, OPT_TOKENIZER},
        {"fp16", no_argument, 0, OPT_FP16},
        {"config", required_argument, 0, OPT_CONFIG},
        {"diffusion-model", required_argument, 0, OPT_DIFFUSION_MODEL},
        {"clip_l", required_argument, 0, OPT_CLIP_L},
        {"t5xxl", required_argument, 0, OPT_T5XXL},
        {"vae", required_argument, 0, OPT_VAE},
        {"device", required_argument, 0, OPT_DEVICE},
        {"precision", required_argument, 0, OPT_PRECISION},
        {"load-policy", required_argument, 0, OPT_POLICY},
        {"mem-budget", required_argument, 0, OPT_BUDGET},
        {"stream-window", required_argument, 0, OPT_STREAM_WINDOW},
        {"prefetch-mem", required_argument, 0, OPT_PREFETCH_MEM},
        {"stream-prefetch", no_argument, 0, OPT_STREAM_PREFETCH},
        {"no-stream-prefetch", no_argument, 0, OPT_NO_STREAM_PREFETCH},
        {"host-cache", required_argument, 0, OPT_HOST_CACHE},
        {"plan", no_argument, 0, OPT_PLAN},
        {"profile", no_argument, 0, OPT_PROFILE},
        {"report-json", required_argument, 0, OPT_REPORT},
        {"original-size", required_argument, 0, OPT_ORIGINAL_SIZE},
        {"target-size", required_argument, 0, OPT_TARGET_SIZE},
        {"crop-top-left", required_argument, 0, OPT_CROP},
        {"vae-tiling", no_argument, 0, OPT_VAE_TILING},
        {"guidance", required_argument, 0, OPT_GUIDANCE},
        {"t5-max-length", required_argument, 0, OPT_T5_MAX_LENGTH},
        {"prediction-type", required_argument, 0, OPT_PREDICTION},
        {"threads", required_argument, 0, 't'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    sdc_ctx_params_init(&o->cp);
    sdc_gen_params_init(&o->gp);
    o->out = "output.png";
    long v;
    double d;
    int c;
    optind = 0; /* glibc: a full reset, so that the parser can run more than once in a process */
    while ((c = getopt_long(argc, argv, "m:p:n:o:W:H:s:b:i:t:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o->cp.model_path = optarg; break;
        case 'p':
            o->gp.prompt = optarg;
            o->prompt_given = 1;
            break;
        case OPT_PROMPT_FILE: o->prompt_file = optarg; break;
        case OPT_MAX_BATCH:
            if (cli_int("--max-batch", optarg, 0, 65536, &v)) return 2;
            o->gp.max_batch = (int)v;
            break;
        case 'n':
            o->gp.negative_prompt = optarg;
            o->cfg_given = 1;
            break;
        case 'o': o->out = optarg; break;
        case 'W':
            if (cli_int("--width", optarg, 1, 16384, &v)) return 2;
            o->gp.width = (int)v;
            o->size_given = 1;
            break;
        case 'H':
            if (cli_int("--height", optarg, 1, 16384, &v)) return 2;
            o->gp.height = (int)v;
            o->size_given = 1;
            break;
        case OPT_STEPS:
            if (cli_int("--steps", optarg, -1000000, 1000000, &v)) return 2;
            o->gp.steps = (int)v;
            break;
        case OPT_CFG:
            if (cli_float("--cfg-scale", optarg, &d)) return 2;
            o->gp.cfg_scale = (float)d;
            o->cfg_given = 1;
            break;
        case 's':
            if (cli_int("--seed", optarg, 0, 0x7fffffffffffffffL, &v)) return 2;
            o->gp.seed = v;
            break;
        case 'b':
            if (cli_int("--batch-count", optarg, 1, 10000, &v)) return 2;
            o->gp.batch_count = (int)v;
            break;
        case OPT_SAMPLER:
            if (cli_choice("sampling method", SDC_NAMES_SAMPLER, optarg, &v)) return 2;
            o->gp.sampler = (sdc_sampler)v;
            break;
        case OPT_SCHEDULER:
            if (cli_choice("scheduler", SDC_NAMES_SCHEDULER, optarg, &v)) return 2;
            o->gp.karras = (int)v;
            break;
        case OPT_RNG:
            if (cli_choice("rng", SDC_NAMES_RNG, optarg, &v)) return 2;
            o->gp.rng = (sdc_rng_type)v;
            break;
        case OPT_CLIP_SKIP:
            if (cli_int("--clip-skip", optarg, -1000, 1000, &v)) return 2;
            o->gp.clip_skip = (int)v;
            break;
        case 'i': o->init_path = optarg; break;
        case OPT_STRENGTH:
            if (cli_float("--strength", optarg, &d)) return 2;
            o->gp.strength = (float)d;
            break;
        case OPT_TOKENIZER: o->cp.tokenizer_dir = optarg; break;
        case OPT_FP16: o->cp.prefer_fp16 = 1; break;
        case OPT_CONFIG: o->cp.config_dir = optarg; break;
        case OPT_DIFFUSION_MODEL: o->cp.diffusion_model_path = optarg; break;
        case OPT_CLIP_L: o->cp.clip_l_path = optarg; break;
        case OPT_T5XXL: o->cp.t5xxl_path = optarg; break;
        case OPT_VAE: o->cp.vae_path = optarg; break;
        case OPT_DEVICE:
            if (cli_choice("device", SDC_NAMES_DEVICE, optarg, &v)) return 2;
            o->cp.device = (sdc_device)v;
            break;
        case OPT_PRECISION:
            if (cli_choice("precision", SDC_NAMES_PRECISION, optarg, &v)) return 2;
            o->cp.precision = (sdc_precision)v;
            break;
        case OPT_POLICY:
            if (cli_choice("load policy", SDC_NAMES_LOAD_POLICY, optarg, &v)) return 2;
            o->cp.load_policy = (sdc_load_policy)v;
            break;
        case OPT_BUDGET:
            if ((o->cp.mem_budget = parse_size(optarg)) < 0) {
                fprintf(stderr, "sdc: error: bad value for --mem-budget: '%s' (e.g. 6G, 512M)\n", optarg);
                return 2;
            }
            break;
        case OPT_STREAM_WINDOW:
            if (cli_int("--stream-window", optarg, 1, 65536, &v)) return 2;
            o->cp.stream_window = (int)v;
            break;
        case OPT_PREFETCH_MEM:
        case OPT_HOST_CACHE: {
            const int pre = c == OPT_PREFETCH_MEM;
            const int64_t b = !strcmp(optarg, "0") ? 0 : parse_size(optarg);
            if (b < 0) {
                fprintf(stderr, "sdc: error: bad value for --%s: '%s' (e.g. 4G, 512M, 0)\n",
                        pre ? "prefetch-mem" : "host-cache", optarg);
                return 2;
            }
            if (pre)
                o->cp.prefetch_mem = b ? b : -1; /* 0 turns it off; the API's 0 is the default */
            else
                o->cp.host_cache = b;
            break;
        }
        case OPT_STREAM_PREFETCH: o->cp.stream_prefetch = 1; break;
        case OPT_NO_STREAM_PREFETCH: o->cp.stream_prefetch = -1; break;
        case OPT_PLAN: o->plan_only = 1; break;
        case OPT_PROFILE: o->cp.profile = 1; break;
        case OPT_REPORT: o->report_path = optarg; break;
        case OPT_ORIGINAL_SIZE:
            if (cli_pair("--original-size", optarg, 'x', 1, &o->gp.original_width, &o->gp.original_height)) return 2;
            break;
        case OPT_TARGET_SIZE:
            if (cli_pair("--target-size", optarg, 'x', 1, &o->gp.target_width, &o->gp.target_height)) return 2;
            break;
        case OPT_CROP:
            if (cli_pair("--crop-top-left", optarg, ',', 0, &o->gp.crop_top, &o->gp.crop_left)) return 2;
            break;
        case OPT_VAE_TILING: o->gp.vae_tiling = 1; break;
        case OPT_GUIDANCE:
            if (cli_float("--guidance", optarg, &d)) return 2;
            if (!(d >= 0 && d <= 1000)) {
                fprintf(stderr, "sdc: error: --guidance must be in 0..1000 (got %s)\n", optarg);
                return 2;
            }
            o->gp.guidance = (float)d;
            break;
        case OPT_T5_MAX_LENGTH:
            if (cli_int("--t5-max-length", optarg, 1, 1024, &v)) return 2;
            o->gp.t5_max_length = (int)v;
            break;
        case OPT_PREDICTION:
            if (strcmp(optarg, "epsilon") != 0 && strcmp(optarg, "v_prediction") != 0) {
                fprintf(stderr, "sdc: error: unknown prediction type '%s' (epsilon, v_prediction)\n", optarg);
                return 2;
            }
            o->cp.prediction_type = optarg;
            break;
        case 't':
            if (cli_int("--threads", optarg, 0, 1024, &v)) return 2;
            o->cp.n_threads = (int)v;
            break;
        case 'v': o->verbose = 1; break;
        case 'h': cli_generate_usage(stdout); return 1;
        default: cli_generate_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sdc: error: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "sdc: error: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    const char *const paths[][2] = {
        {"--model", o->cp.model_path},       {"--diffusion-model", o->cp.diffusion_model_path},
        {"--clip_l", o->cp.clip_l_path},     {"--t5xxl", o->cp.t5xxl_path},
        {"--vae", o->cp.vae_path},           {"--config", o->cp.config_dir},
        {"--tokenizer", o->cp.tokenizer_dir}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (paths[i][1] && !paths[i][1][0]) {
            fprintf(stderr, "sdc: error: %s is an empty path\n", paths[i][0]);
            return 2;
        }
    }
    if (o->prompt_file && (o->prompt_given || !o->prompt_file[0])) {
        fprintf(stderr, "sdc: error: %s\n",
                o->prompt_given ? "--prompt and --prompt-file exclude each other" : "--prompt-file is an empty path");
        return 2;
    }
    if (!o->cp.model_path && !o->cp.diffusion_model_path) {
        fprintf(stderr, "sdc: error: no model given (-m DIR or --diffusion-model FILE)\n");
        return 2;
    }
    if (o->gp.steps < 1) {
        fprintf(stderr, "sdc: error: --steps must be at least 1 (got %d)\n", o->gp.steps);
        return 2;
    }
    if (o->init_path && !(o->gp.strength > 0.0f && o->gp.strength <= 1.0f)) {
        fprintf(stderr, "sdc: error: --strength must be in (0, 1] (got %g)\n", (double)o->gp.strength);
        return 2;
    }
    int64_t last_seed;
    if (sdc_ckd_add_i64(o->gp.seed, (int64_t)o->gp.batch_count - 1, &last_seed) != 0) {
        fprintf(stderr,
                "sdc: error: --seed %lld with --batch-count %d: image %d's seed (seed + %d) passes "
                "2^63 - 1\n",
                (long long)o->gp.seed, o->gp.batch_count, o->gp.batch_count, o->gp.batch_count - 1);
        return 2;
    }
    if (check_text("--prompt", o->gp.prompt) || check_text("--negative-prompt", o->gp.negative_prompt)) return 2;
    if (!o->out[0] || (o->report_path && !o->report_path[0])) {
        fprintf(stderr, "sdc: error: %s is an empty path\n", !o->out[0] ? "--output" : "--report-json");
        return 2;
    }
    return 0;
}
