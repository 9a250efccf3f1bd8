/* gguf_internal.h - the parsed header that gguf.c builds and gguf_meta.c queries. */
#ifndef SDC_IO_GGUF_INTERNAL_H
#define SDC_IO_GGUF_INTERNAL_H

#include "io/gguf.h"

typedef struct gguf_kv {
    char *key;
    sdc_gguf_value_type type;
    unsigned char scalar[8];  /* a fixed-size value's bytes, little-endian as in the file */
    char *str;                /* STRING */
    sdc_gguf_value_type elem; /* ARRAY: element type */
    uint64_t n;               /* ARRAY: element count */
    unsigned char *raw;       /* ARRAY of a fixed-size type: n values as in the file */
    uint64_t *str_off;        /* ARRAY of STRING: element k is blob + str_off[k] */
    char *blob;
} gguf_kv;

struct sdc_gguf {
    uint32_t version, alignment;
    uint64_t data_start;
    gguf_kv *kv;
    size_t n_kv;
    sdc_tensor_info *t; /* names malloc'd; torch order; absolute offsets */
    size_t n_t;
};

#endif
