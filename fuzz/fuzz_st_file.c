/* fuzz_st_file.c - libFuzzer: arbitrary bytes as a .safetensors file through the file layer (the model
 * index: the 8-byte length, the header, the data section), then every tensor read raw and as f32. */
#include "fuzz_util.h"
#include "io/model_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_path("in.safetensors");
    fuzz_write(path, data, size);
    sdc_model_index *idx = sdc_index_new(NULL);
    if (!idx) abort();
    if (sdc_index_add_file(idx, path, "p.", NULL, NULL) == SDC_OK) {
        for (size_t i = 0; i < sdc_index_count(idx); i++) {
            const sdc_tensor_info *t = sdc_index_at(idx, i);
            if (!t || t->offset + t->nbytes > size) abort(); /* inside the file */
            void *raw = malloc(t->nbytes ? (size_t)t->nbytes : 1);
            float *f = malloc(sizeof(float) * ((size_t)sdc_tensor_info_nelem(t) + 1));
            if (raw && sdc_index_read_raw(idx, t, raw) != SDC_OK) abort(); /* the file did not change */
            if (f) sdc_index_read_f32(idx, t, f);
            free(raw);
            free(f);
        }
    }
    sdc_index_free(idx);
    return 0;
}
