/* fuzz_gguf.c - libFuzzer target for the GGUF header parser (io/gguf.h). The input is a whole GGUF file
 * held in memory. Every tensor the parser accepts must lie inside the file, aligned, with nbytes equal to
 * its row bytes x rows, and no two may overlap or share a name; every metadata query must answer without
 * reading out of bounds. All of that is re-checked here. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_tensors(const sdc_gguf *g, size_t size) {
    const size_t n = sdc_gguf_tensor_count(g);
    const uint64_t a = sdc_gguf_alignment(g), start = sdc_gguf_data_start(g);
    if (!a || (a & (a - 1)) || (n && start > size)) abort();
    for (size_t i = 0; i < n; i++) {
        const sdc_tensor_info *t = sdc_gguf_tensor(g, i);
        if (t->offset < start || (t->offset - start) % a || t->offset > size || t->nbytes > size - t->offset) abort();
        if (t->ndim < 0 || t->ndim > SDC_GGUF_MAX_DIMS || strlen(t->name) > size) abort();
        /* a kernel [Co, Ci, KH, KW] given back from sdc.conv_shape.* (gguf.h): Co rows of Ci*KH*KW */
        const int64_t inner = t->ndim ? t->ne[t->ndim - 1] : 1;
        const int kernel = t->ndim == 4 && inner % sdc_dtype_block(t->dtype);
        const int64_t row = kernel ? t->ne[1] * t->ne[2] * t->ne[3] : inner;
        uint64_t rows = 1;
        for (int k = 0; k + 1 < (kernel ? 2 : t->ndim); k++) rows *= (uint64_t)t->ne[k];
        if (row < 0 || row % sdc_dtype_block(t->dtype)) abort();
        if (row && rows * sdc_dtype_row_bytes(t->dtype, row) != t->nbytes) abort();
        for (size_t k = 0; k < i; k++) { /* quadratic, but fuzz inputs hold few tensors */
            const sdc_tensor_info *u = sdc_gguf_tensor(g, k);
            if (!strcmp(t->name, u->name)) abort();
            const int apart = t->offset + t->nbytes <= u->offset || u->offset + u->nbytes <= t->offset;
            if (!apart && t->nbytes && u->nbytes) abort();
        }
    }
}

static void query_metadata(const sdc_gguf *g) {
    for (size_t i = 0; i < sdc_gguf_kv_count(g); i++) {
        const char *key = sdc_gguf_kv_key(g, i);
        if (sdc_gguf_find(g, key) != (int64_t)i) abort(); /* keys are unique */
        const char *s = sdc_gguf_get_str(g, key);
        if (s && strlen(s) > 1u << 30) abort();
        int64_t iv;
        double d;
        (void)sdc_gguf_get_int(g, key, &iv);
        (void)sdc_gguf_get_float(g, key, &d);
        sdc_gguf_value_type et;
        const int64_t n = sdc_gguf_get_arr(g, key, &et);
        for (int64_t k = 0; k < n && k < 64; k++) {
            s = sdc_gguf_arr_str(g, key, k);
            if (s && strlen(s) > 1u << 30) abort();
            (void)sdc_gguf_arr_num(g, key, k, &d);
        }
        if (n > 0) { /* the last element and one past it */
            (void)sdc_gguf_arr_str(g, key, n - 1);
            (void)sdc_gguf_arr_num(g, key, n - 1, &d);
            if (sdc_gguf_arr_str(g, key, n) || sdc_gguf_arr_num(g, key, n, &d) == 0) abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_gguf *g = NULL;
    if (sdc_gguf_parse_mem(data, size, "fuzz", NULL, &g) == SDC_OK) {
        check_tensors(g, size);
        query_metadata(g);
        sdc_gguf_free(g);
    } else if (g) {
        abort(); /* a failed parse returns nothing */
    }
    return 0;
}
