/* fuzz_single_file.c - libFuzzer: a fuzzed safetensors header (the data section is 1 MiB of zeros)
 * opened as a single-file checkpoint: the io layer's facts, then the SD family's reading of them
 * (probe, architecture detection, the LDM -> diffusers name mapping, indexing). */
#include <string.h>

#include "family/sd1_detect.h"
#include "fuzz_util.h"
#include "io/model_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("model.safetensors");
    fuzz_write_st(path, data, size, 1u << 20);
    sdc_model_files *m = NULL;
    if (sdc_model_files_open_ex(path, NULL, SDC_VARIANT_AUTO, NULL, &m) == SDC_OK) {
        if (!m || !m->single_file || !m->single) abort();
        char groups[256];
        sdc_sf_groups(m->single, groups, sizeof groups);
        sd1_sf_configs cfg;
        memset(&cfg, 0, sizeof cfg);
        if (sd1_sf_probe(m->single, 0) && sd1_sf_open(m, 0, NULL, &cfg) == SDC_OK) {
            if (!cfg.config[SD1_PART_UNET] || !cfg.scheduler_config) abort();
            for (size_t i = 0; i < sdc_index_count(m->index); i++)
                if (!sdc_index_at(m->index, i)->name) abort();
        }
        sd1_sf_configs_free(&cfg);
    }
    sdc_model_files_free(m);
    return 0;
}
