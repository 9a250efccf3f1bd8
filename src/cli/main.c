/* main.c - `sdc <command> [options]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/cli.h"

/* OpenBLAS's pthread build starts one worker per core in its library constructor, each mapping a
 * 128 MiB buffer that it retries forever to get: under an address-space limit (`ulimit -v`) a worker
 * spins, and exit(), which joins it, hangs. The CPU backend splits GEMMs over its own threads and runs
 * BLAS on 1, so the workers serve nothing. Under a limit, and unless the user chose a count, the
 * program runs itself again with OPENBLAS_NUM_THREADS=1 (the constructors have run by main, and exec
 * ends the stuck worker). It is this program's own environment; libsdc never sets it. */
static void without_blas_workers(char **argv) {
    struct rlimit rl;
    if (getenv("OPENBLAS_NUM_THREADS") || getrlimit(RLIMIT_AS, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 0) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: then run as we are */
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: sdc <command> [options]\n"
            "\n"
            "commands:\n"
            "  generate   make images from a prompt (txt2img, or img2img with -i)\n"
            "  mkmodel    write a random-weight Stable Diffusion model (for demos, tests, benchmarks)\n"
            "  convert    write a safetensors model file as a (quantized) GGUF file\n"
            "\n"
            "`sdc <command> --help` lists a command's options.\n");
}

int main(int argc, char **argv) {
    without_blas_workers(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "generate")) return sdc_cmd_generate(argc - 1, argv + 1);
    if (!strcmp(argv[1], "mkmodel")) return sdc_cmd_mkmodel(argc - 1, argv + 1);
    if (!strcmp(argv[1], "convert")) return sdc_cmd_convert(argc - 1, argv + 1);
    fprintf(stderr, "sdc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
