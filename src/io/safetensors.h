/* safetensors.h - parse a safetensors header from memory. The model index uses this on each file;
 * the fuzzer drives it directly.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON
 *   { "__metadata__": {...}?, "name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ... }
 * then the data section; offsets are relative to its start (8 + N). */
#ifndef SDC_IO_SAFETENSORS_H
#define SDC_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "io/model_index.h"

typedef struct sdc_st_header {
    sdc_tensor_info *tensors; /* names are malloc'd; offsets are absolute (data start added) */
    size_t n_tensors;
    uint64_t data_start; /* 8 + N */
} sdc_st_header;

/* json/json_len: the header's JSON text (not NUL-terminated). file_size: the whole file's size, used
 * to check that every tensor lies inside the data section. Validates everything listed for
 * sdc_index_add_file. what: a name for messages (the path). */
sdc_status sdc_st_parse_header(const char *json, size_t json_len, uint64_t file_size, const char *what,
                               const sdc_logger *log, sdc_st_header *out);
void sdc_st_header_free(sdc_st_header *h);

#endif
