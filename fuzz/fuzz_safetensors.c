/* fuzz_safetensors.c - libFuzzer target for the safetensors header parser.
 * Input: u64 little-endian fake file size, then the header's JSON bytes. With fewer than 8 bytes
 * the whole input is the JSON and the file size is just large enough. Every tensor the parser
 * accepts must lie inside the file and not overlap; this is re-checked here. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t file_size = 8 + (uint64_t)size;
    if (size >= 8) {
        file_size = 0;
        for (int i = 7; i >= 0; i--) file_size = file_size << 8 | data[i];
        data += 8;
        size -= 8;
    }
    sdc_st_header h;
    if (sdc_st_parse_header((const char *)data, size, file_size, "fuzz", NULL, &h) == SDC_OK) {
        for (size_t i = 0; i < h.n_tensors; i++) {
            const sdc_tensor_info *t = &h.tensors[i];
            if (t->offset < h.data_start || t->offset + t->nbytes > file_size || t->offset + t->nbytes < t->offset)
                abort();
            if (t->ndim < 0 || t->ndim > SDC_INDEX_MAX_DIMS || strlen(t->name) > size) abort();
            uint64_t n = sdc_dtype_size(t->dtype);
            for (int k = 0; k < t->ndim; k++) n *= (uint64_t)t->ne[k];
            if (n != t->nbytes) abort();
        }
        sdc_st_header_free(&h);
    }
    return 0;
}
