/* gguf_meta.c - a parsed GGUF header's metadata and tensors (gguf.h); gguf.c parses. */
#include <stdlib.h>
#include <string.h>

#include "io/gguf_internal.h"

void sdc_gguf_free(sdc_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        free(kv->key);
        free(kv->str);
        free(kv->raw);
        free(kv->str_off);
        free(kv->blob);
    }
    free(g->kv);
    for (size_t i = 0; i < g->n_t; i++) free((char *)g->t[i].name);
    free(g->t);
    free(g);
}

uint32_t sdc_gguf_version(const sdc_gguf *g) { return g->version; }
uint32_t sdc_gguf_alignment(const sdc_gguf *g) { return g->alignment; }
uint64_t sdc_gguf_data_start(const sdc_gguf *g) { return g->data_start; }
size_t sdc_gguf_tensor_count(const sdc_gguf *g) { return g->n_t; }
const sdc_tensor_info *sdc_gguf_tensor(const sdc_gguf *g, size_t i) { return i < g->n_t ? &g->t[i] : NULL; }
size_t sdc_gguf_kv_count(const sdc_gguf *g) { return g->n_kv; }
const char *sdc_gguf_kv_key(const sdc_gguf *g, size_t i) { return i < g->n_kv ? g->kv[i].key : NULL; }
sdc_gguf_value_type sdc_gguf_kv_type(const sdc_gguf *g, size_t i) { return g->kv[i].type; }

int64_t sdc_gguf_find(const sdc_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, key) == 0) return (int64_t)i;
    return -1;
}

static const gguf_kv *find(const sdc_gguf *g, const char *key) {
    const int64_t k = sdc_gguf_find(g, key);
    return k < 0 ? NULL : &g->kv[k];
}

static uint64_t le(const unsigned char *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

/* A fixed-size value of type t at b as a double (*d) and, for integers, an int64 (*i; -1 from the
 * function when it does not fit). Returns 1 for an integer, 0 for a float, -1 otherwise. */
static int number(sdc_gguf_value_type t, const unsigned char *b, double *d, int64_t *i) {
    switch (t) {
    case SDC_GGUF_UINT8:
    case SDC_GGUF_BOOL: *i = (int64_t)b[0]; break;
    case SDC_GGUF_INT8: *i = (int8_t)b[0]; break;
    case SDC_GGUF_UINT16: *i = (int64_t)le(b, 2); break;
    case SDC_GGUF_INT16: *i = (int16_t)le(b, 2); break;
    case SDC_GGUF_UINT32: *i = (int64_t)le(b, 4); break;
    case SDC_GGUF_INT32: *i = (int32_t)le(b, 4); break;
    case SDC_GGUF_INT64: *i = (int64_t)le(b, 8); break;
    case SDC_GGUF_UINT64: {
        const uint64_t u = le(b, 8);
        *d = (double)u;
        if (u > (uint64_t)INT64_MAX) return -2; /* a number, not an int64 */
        *i = (int64_t)u;
        return 1;
    }
    case SDC_GGUF_FLOAT32: {
        const uint32_t u = (uint32_t)le(b, 4);
        float f;
        memcpy(&f, &u, 4);
        *d = f;
        return 0;
    }
    case SDC_GGUF_FLOAT64: {
        const uint64_t u = le(b, 8);
        memcpy(d, &u, 8);
        return 0;
    }
    default: return -1;
    }
    *d = (double)*i;
    return 1;
}

const char *sdc_gguf_get_str(const sdc_gguf *g, const char *key) {
    const gguf_kv *kv = find(g, key);
    return kv && kv->type == SDC_GGUF_STRING ? kv->str : NULL;
}

int sdc_gguf_get_int(const sdc_gguf *g, const char *key, int64_t *out) {
    const gguf_kv *kv = find(g, key);
    double d;
    int64_t i;
    if (!kv || number(kv->type, kv->scalar, &d, &i) != 1) return -1;
    *out = i;
    return 0;
}

int sdc_gguf_get_float(const sdc_gguf *g, const char *key, double *out) {
    const gguf_kv *kv = find(g, key);
    double d;
    int64_t i;
    if (!kv || number(kv->type, kv->scalar, &d, &i) == -1) return -1;
    *out = d;
    return 0;
}

int64_t sdc_gguf_get_arr(const sdc_gguf *g, const char *key, sdc_gguf_value_type *elem_type) {
    const gguf_kv *kv = find(g, key);
    if (!kv || kv->type != SDC_GGUF_ARRAY) return -1;
    if (elem_type) *elem_type = kv->elem;
    return (int64_t)kv->n;
}

const char *sdc_gguf_arr_str(const sdc_gguf *g, const char *key, int64_t k) {
    const gguf_kv *kv = find(g, key);
    if (!kv || kv->type != SDC_GGUF_ARRAY || kv->elem != SDC_GGUF_STRING || k < 0 || (uint64_t)k >= kv->n) return NULL;
    return kv->blob + kv->str_off[k];
}

int sdc_gguf_arr_num(const sdc_gguf *g, const char *key, int64_t k, double *out) {
    static const int sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    const gguf_kv *kv = find(g, key);
    if (!kv || kv->type != SDC_GGUF_ARRAY || !kv->raw || k < 0 || (uint64_t)k >= kv->n) return -1;
    int64_t i;
    return number(kv->elem, kv->raw + (uint64_t)k * (uint64_t)sizes[kv->elem], out, &i) == -1 ? -1 : 0;
}
