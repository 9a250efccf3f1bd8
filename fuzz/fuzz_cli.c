/* fuzz_cli.c - libFuzzer: `sdc generate`'s argument parsing (cli_generate_parse), which reads no file.
 * The input, split at NUL bytes, is argv after "generate". A parse that succeeds must leave values the
 * run can use: a model path (-m or --diffusion-model, not empty), steps >= 1, a batch whose last seed fits int64, valid UTF-8 prompts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *buf = malloc(size + 1);
    char *argv[130];
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    int argc = 0;
    argv[argc++] = "generate";
    for (size_t i = 0; i <= size && argc < 128;) {
        argv[argc++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    argv[argc] = NULL;
    cli_generate_opts o;
    if (cli_generate_parse(argc, argv, &o) == 0) {
        const char *model = o.cp.model_path ? o.cp.model_path : o.cp.diffusion_model_path;
        if (!model || !model[0] || o.gp.steps < 1 || o.gp.batch_count < 1 || o.gp.seed < 0 ||
            o.gp.seed > INT64_MAX - (o.gp.batch_count - 1) || !o.out[0] ||
            (o.gp.prompt && cli_utf8_invalid_at(o.gp.prompt) >= 0))
            abort();
    }
    free(buf);
    return 0;
}
