/* fuzz_single_file.c - libFuzzer: a fuzzed safetensors header (the data section is 1 MiB of zeros)
 * opened as a single-file checkpoint: architecture detection and the LDM -> diffusers name mapping. */
#include "fuzz_util.h"
#include "io/model_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("model.safetensors");
    fuzz_write_st(path, data, size, 1u << 20);
    sdc_model_files *m = NULL;
    if (sdc_model_files_open_ex(path, NULL, SDC_VARIANT_AUTO, NULL, &m) == SDC_OK) {
        if (!m || !m->single_file) abort();
        for (size_t i = 0; i < sdc_index_count(m->index); i++)
            if (!sdc_index_at(m->index, i)->name) abort();
    }
    sdc_model_files_free(m);
    return 0;
}
