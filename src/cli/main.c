/* main.c - `sdc <command> [options]`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli/cli.h"

/* The environment the OpenMP and BLAS runtimes read in their library constructors, before main: to
 * change it the program runs itself again (exec), once, with only the variables the user left unset.
 *   OMP_WAIT_POLICY=passive: libgomp's threads otherwise spin at every barrier before they sleep, which
 *     costs nothing on an idle machine and a lot on a shared one. Measured on this project's 2-core CI
 *     machine kind (SD 1.5 shapes, 256x256, 2 steps, 2 threads): idle 21.6 s spinning vs 21.4 s passive;
 *     with one busy process beside it 32.8 s vs 27.0 s. OMP_WAIT_POLICY=active restores the spin.
 *   OPENBLAS_NUM_THREADS=1 under an address-space limit (`ulimit -v`): OpenBLAS maps a 128 MiB buffer for
 *     each thread of its own count, one per core by default (the OpenMP build sdc links: in its
 *     constructor; the pthread build: in each worker, which retries forever to get it, so exit() hung).
 *     The CPU backend splits GEMMs over its own threads into single-threaded calls, so those buffers
 *     serve nothing.
 * It is this program's own environment; libsdc never sets either (its users choose). */
static void rerun_with_runtime_env(char **argv) {
    int changed = 0;
    if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0) changed = 1;
    struct rlimit rl;
    if (!getenv("OPENBLAS_NUM_THREADS") && getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0)
        changed = 1;
    if (changed) execv("/proc/self/exe", argv); /* returns only on failure: then run as we are */
}

/* malloc's mmap threshold fixed at glibc's default (128 KiB). Left dynamic, glibc raises it to the size of
 * each mapped block freed (up to 32 MiB; the tokenizer's growing tables are such blocks), and later blocks
 * below it come from the heap, where what they free stays resident. Measured: the peak RSS of an SD 1.5
 * fp16 256x256 phased run 0.7 MiB lower. A process-wide setting: the program's own choice, as its runtime
 * environment is; libsdc's big blocks are its own mappings either way. */
static void fix_malloc_thresholds(void) {
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 128 << 10);
#endif
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
    rerun_with_runtime_env(argv);
    fix_malloc_thresholds();
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
