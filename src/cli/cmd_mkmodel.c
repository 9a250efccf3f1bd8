/* cmd_mkmodel.c - `sdc mkmodel`: write a random-weight model. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "mkmodel/mkmodel.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: sdc mkmodel -o OUT [options]\n"
            "\n"
            "Writes a Stable Diffusion (1.x or XL) or Flux model with random weights (drawn as the\n"
            "reference bundle's), for demos, tests and benchmarks.\n"
            "\n"
            "  -o, --output PATH     a folder (diffusers layout), or a .safetensors file with --single-file\n"
            "  -a, --arch NAME       tiny-sd1 (toy sizes), sd15 (SD 1.5 shapes, 1.07G parameters),\n"
            "                        tiny-sdxl (toy SDXL), sdxl (SDXL base shapes, 3.47G parameters),\n"
            "                        tiny-flux-schnell, tiny-flux-dev (toy Flux), flux-schnell or flux-dev\n"
            "                        (FLUX.1 shapes with T5-XXL, 16.9G parameters) (default tiny-sd1)\n"
            "      --single-file     one CompVis/LDM checkpoint instead of a diffusers folder (SD 1.x only)\n"
            "      --fp16            float16 weights (the default)\n"
            "      --f32             float32 weights\n"
            "  -s, --seed N          seed (default 0)\n"
            "      --tokenizer DIR   CLIP vocab.json + merges.txt to copy (default: the one sdc ships);\n"
            "                        Flux's tokenizer_2/ is a small T5 (Unigram) tokenizer sdc writes\n"
            "  -h, --help            this help\n");
}

enum {
    OPT_SINGLE = 256,
    OPT_F32,
    OPT_FP16,
    OPT_TOKENIZER
};

int sdc_cmd_mkmodel(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'},
        {"arch", required_argument, 0, 'a'},
        {"single-file", no_argument, 0, OPT_SINGLE},
        {"f32", no_argument, 0, OPT_F32},
        {"fp16", no_argument, 0, OPT_FP16},
        {"seed", required_argument, 0, 's'},
        {"tokenizer", required_argument, 0, OPT_TOKENIZER},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *out = NULL, *arch = "tiny-sd1", *tokenizer = NULL;
    int single = 0, fp16 = 1, c;
    long seed = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:a:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'a': arch = optarg; break;
        case OPT_SINGLE: single = 1; break;
        case OPT_F32: fp16 = 0; break;
        case OPT_FP16: fp16 = 1; break;
        case 's':
            if (cli_int("--seed", optarg, 0, 0x7fffffffffffffffL, &seed)) return 2;
            break;
        case OPT_TOKENIZER: tokenizer = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!out || optind < argc) {
        fprintf(stderr, "sdc: error: %s\n", out ? "unexpected argument" : "no output given (-o PATH)");
        return 2;
    }
    int level = SDC_LOG_INFO;
    sdc_status st = sdc_make_model(arch, out, single, fp16, (uint64_t)seed, tokenizer, cli_log, &level);
    if (st != SDC_OK) {
        fprintf(stderr, "sdc: error: mkmodel failed: %s\n", sdc_status_str(st));
        return 1;
    }
    fprintf(stderr, "sdc: wrote %s model to %s\n", arch, out);
    return 0;
}
