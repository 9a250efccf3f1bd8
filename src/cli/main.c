/* main.c - `sdc <command> [options]`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: sdc <command> [options]\n"
            "\n"
            "commands:\n"
            "  generate   make images from a prompt (txt2img, or img2img with -i)\n"
            "  mkmodel    write a random-weight Stable Diffusion model (for demos, tests, benchmarks)\n"
            "\n"
            "`sdc <command> --help` lists a command's options.\n");
}

int main(int argc, char **argv) {
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
    fprintf(stderr, "sdc: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
