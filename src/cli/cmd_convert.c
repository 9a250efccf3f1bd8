/* cmd_convert.c - `sdc convert`: a safetensors file (or one component's folder) to a quantized GGUF
 * (io/gguf_convert.h), as stable-diffusion.cpp's convert mode. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "io/gguf_convert.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: sdc convert -m IN -o OUT.gguf --type TYPE [options]\n"
            "\n"
            "Writes a GGUF file with the tensors of a safetensors file under their own names: 2-D and larger\n"
            "weights in TYPE, 1-D tensors (biases, norms) in f32; a weight whose rows are not whole blocks of\n"
            "TYPE keeps its stored precision (f16/bf16, else f32).\n"
            "\n"
            "  -m, --model PATH          a .safetensors file (a BFL Flux transformer, a single-file checkpoint,\n"
            "                            a component's weights), or a component's folder (e.g. model/transformer)\n"
            "      --diffusion-model PATH  the same, for a diffusion model file\n"
            "  -o, --output PATH         the GGUF to write (replaced atomically; its folder must exist)\n"
            "      --type TYPE           f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k,\n"
            "                            q6_k (default f16)\n"
            "      --tensor-type-rules RULES\n"
            "                            REGEX=TYPE[,REGEX=TYPE...]: the first rule whose POSIX extended regex\n"
            "                            matches a tensor's name gives its type, e.g. keep Flux's first and last\n"
            "                            layers in f32: '^(img_in|txt_in|final_layer)\\.=f32'\n"
            "      --quantize-convs      also quantize convolution kernels [Co, Ci, KH, KW] whose Ci*KH*KW is\n"
            "                            whole blocks of TYPE, stored as 2-D [Co, Ci*KH*KW] tensors. sdc-specific\n"
            "                            files: other engines (stable-diffusion.cpp, ComfyUI-GGUF) expect 4-D\n"
            "                            conv tensors; without the flag they stay f16/bf16 (city96's layout)\n"
            "      --arch NAME           general.architecture (default: guessed: flux, sdxl, sd1, unknown)\n"
            "  -v, --verbose             list every tensor's conversion\n"
            "  -h, --help                this help\n");
}

enum {
    OPT_DIFFUSION = 256,
    OPT_TYPE,
    OPT_RULES,
    OPT_ARCH,
    OPT_QCONVS
};

static int progress(int done, int total, uint64_t bytes, void *user) {
    (void)bytes;
    (void)user;
    return cli_progress("convert", done, total, NULL);
}

int sdc_cmd_convert(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"diffusion-model", required_argument, 0, OPT_DIFFUSION},
        {"output", required_argument, 0, 'o'},
        {"type", required_argument, 0, OPT_TYPE},
        {"tensor-type-rules", required_argument, 0, OPT_RULES},
        {"arch", required_argument, 0, OPT_ARCH},
        {"quantize-convs", no_argument, 0, OPT_QCONVS},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    sdc_convert_params p = {.type = SDC_DTYPE_F16, .progress = progress};
    const char *model = NULL, *diffusion = NULL;
    int verbose = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_DIFFUSION: diffusion = optarg; break;
        case 'o': p.output = optarg; break;
        case OPT_TYPE:
            if (sdc_convert_type_from_name(optarg, &p.type) != 0) {
                fprintf(stderr,
                        "sdc: error: unknown --type '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, "
                        "q2_k, q3_k, q4_k, q5_k, q6_k)\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_RULES: p.rules = optarg; break;
        case OPT_ARCH: p.arch = optarg; break;
        case OPT_QCONVS: p.quantize_convs = 1; break;
        case 'v': verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *err = optind < argc ? "unexpected argument"
        : model && diffusion        ? "give the input once: -m or --diffusion-model"
        : !model && !diffusion      ? "no input given (-m PATH)"
        : !p.output                 ? "no output given (-o PATH)"
        : !*p.output                ? "empty output path"
                                    : NULL;
    if (err) {
        fprintf(stderr, "sdc: error: %s\n", err);
        return 2;
    }
    p.input = model ? model : diffusion;
    int level = verbose ? SDC_LOG_DEBUG : SDC_LOG_INFO;
    sdc_logger log = {cli_log, &level, (sdc_log_level)level};
    sdc_status st = sdc_convert_gguf(&p, &log);
    if (st != SDC_OK) {
        fprintf(stderr, "sdc: error: convert failed: %s\n", sdc_status_str(st));
        return 1;
    }
    return 0;
}
