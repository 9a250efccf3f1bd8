/* safetensors.c - the safetensors header: parse and validate it (st_writer.c writes files).
 *
 * Reading trusts nothing: every field of the JSON header is checked, every size is computed with
 * overflow checks, and every tensor must lie inside the data section without overlapping another.
 * The fuzzer (fuzz/fuzz_safetensors.c) drives sdc_st_parse_header directly. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* JSON numbers are doubles; integers above 2^53 are not exact, so they are rejected. */
#define ST_MAX_INT 9007199254740992.0

static int json_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != floor(d)) return -1; /* NaN fails too */
    *out = (uint64_t)d;
    return 0;
}

static int mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return -1;
    *out = a * b;
    return 0;
}

/* Tensor names are user data: quote at most this many bytes of one in a message. */
#define NAME_MAX_SHOWN 200

static sdc_status parse_tensor(const cJSON *item, uint64_t data_start, uint64_t file_size, const char *what,
                               const sdc_logger *log, sdc_tensor_info *t) {
    const char *name = item->string;
    if (!cJSON_IsObject(item)) {
        SDC_LOGE(log, "safetensors: %s: tensor '%.*s' is not a JSON object", what, NAME_MAX_SHOWN, name);
        return SDC_ERR_FORMAT;
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dtype)) {
        SDC_LOGE(log, "safetensors: %s: tensor '%.*s' has no string dtype", what, NAME_MAX_SHOWN, name);
        return SDC_ERR_FORMAT;
    }
    if (sdc_dtype_from_name(dtype->valuestring, &t->dtype) != 0) {
        SDC_LOGE(log, "safetensors: %s: tensor '%.*s' has unknown dtype '%.32s'", what, NAME_MAX_SHOWN, name,
                 dtype->valuestring);
        return SDC_ERR_FORMAT;
    }

    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    if (!cJSON_IsArray(shape)) {
        SDC_LOGE(log, "safetensors: %s: tensor '%.*s' has %s shape", what, NAME_MAX_SHOWN, name,
                 shape ? "a non-list" : "no");
        return SDC_ERR_FORMAT;
    }
    uint64_t nelem = 1;
    int ndim = 0, overflow = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        uint64_t v;
        if (ndim == SDC_INDEX_MAX_DIMS) {
            SDC_LOGE(log, "safetensors: %s: tensor '%.*s' has more than %d dimensions", what, NAME_MAX_SHOWN, name,
                     SDC_INDEX_MAX_DIMS);
            return SDC_ERR_FORMAT;
        }
        if (json_u64(d, &v) != 0) {
            SDC_LOGE(log, "safetensors: %s: tensor '%.*s': shape entry %d is not a non-negative integer", what,
                     NAME_MAX_SHOWN, name, ndim);
            return SDC_ERR_FORMAT;
        }
        t->ne[ndim++] = (int64_t)v;
        if (mul_u64(nelem, v, &nelem) != 0) overflow = 1;
    }
    /* a zero dimension makes the count 0 even after an overflow */
    for (int i = 0; i < ndim; i++) {
        if (t->ne[i] == 0) {
            nelem = 0;
            overflow = 0;
        }
    }
    t->ndim = ndim;

    uint64_t nbytes;
    if (overflow || mul_u64(nelem, sdc_dtype_size(t->dtype), &nbytes) != 0) {
        SDC_LOGE(log, "safetensors: %s: tensor '%.*s': element count overflows", what, NAME_MAX_SHOWN, name);
        return SDC_ERR_FORMAT;
    }

    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_u64(offs->child, &begin) != 0 ||
        json_u64(offs->child->next, &end) != 0 || end < begin) {
        SDC_LOGE(log, "safetensors: %s: tensor '%.*s' has %s data_offsets (need [begin, end], begin <= end)", what,
                 NAME_MAX_SHOWN, name, offs ? "invalid" : "no");
        return SDC_ERR_FORMAT;
    }
    if (end - begin != nbytes) {
        SDC_LOGE(log, "safetensors: %s: tensor '%.*s': data_offsets span %llu bytes but %s x %llu elements need %llu",
                 what, NAME_MAX_SHOWN, name, (unsigned long long)(end - begin), sdc_dtype_name(t->dtype),
                 (unsigned long long)nelem, (unsigned long long)nbytes);
        return SDC_ERR_FORMAT;
    }
    if (end > file_size - data_start) {
        SDC_LOGE(log, "safetensors: %s: tensor '%.*s': bytes [%llu, %llu) lie outside the data section (%llu bytes)",
                 what, NAME_MAX_SHOWN, name, (unsigned long long)begin, (unsigned long long)end,
                 (unsigned long long)(file_size - data_start));
        return SDC_ERR_FORMAT;
    }
    t->offset = data_start + begin;
    t->nbytes = nbytes;
    t->name = strdup(name);
    return t->name ? SDC_OK : SDC_ERR_OOM;
}

static int cmp_name(const void *a, const void *b) {
    const sdc_tensor_info *x = *(const sdc_tensor_info *const *)a, *y = *(const sdc_tensor_info *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_offset(const void *a, const void *b) {
    const sdc_tensor_info *x = *(const sdc_tensor_info *const *)a, *y = *(const sdc_tensor_info *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Duplicate names and overlapping byte ranges, over the parsed tensors. */
static sdc_status check_set(const sdc_st_header *h, const char *what, const sdc_logger *log) {
    if (h->n_tensors < 2) return SDC_OK;
    const sdc_tensor_info **p = malloc(sizeof *p * h->n_tensors);
    if (!p) return SDC_ERR_OOM;
    for (size_t i = 0; i < h->n_tensors; i++) p[i] = &h->tensors[i];
    sdc_status st = SDC_OK;
    qsort(p, h->n_tensors, sizeof *p, cmp_name);
    for (size_t i = 1; i < h->n_tensors && st == SDC_OK; i++) {
        if (strcmp(p[i - 1]->name, p[i]->name) == 0) {
            SDC_LOGE(log, "safetensors: %s: duplicate tensor name '%.*s'", what, NAME_MAX_SHOWN, p[i]->name);
            st = SDC_ERR_FORMAT;
        }
    }
    /* empty tensors occupy no bytes and cannot overlap anything */
    size_t n = 0;
    for (size_t i = 0; i < h->n_tensors; i++)
        if (h->tensors[i].nbytes) p[n++] = &h->tensors[i];
    qsort(p, n, sizeof *p, cmp_offset);
    for (size_t i = 1; i < n && st == SDC_OK; i++) {
        if (p[i]->offset < p[i - 1]->offset + p[i - 1]->nbytes) {
            SDC_LOGE(log, "safetensors: %s: tensors '%.*s' and '%.*s' overlap", what, NAME_MAX_SHOWN, p[i - 1]->name,
                     NAME_MAX_SHOWN, p[i]->name);
            st = SDC_ERR_FORMAT;
        }
    }
    free(p);
    return st;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

sdc_status sdc_st_parse_header(const char *json, size_t json_len, uint64_t file_size, const char *what,
                               const sdc_logger *log, sdc_st_header *out) {
    memset(out, 0, sizeof *out);
    if (!what) what = "(memory)";
    if (json_len > UINT64_MAX - 8 || 8 + (uint64_t)json_len > file_size) {
        SDC_LOGE(log, "safetensors: %s: header of %zu bytes extends beyond the end of the file (%llu bytes)", what,
                 json_len, (unsigned long long)file_size);
        return SDC_ERR_FORMAT;
    }
    uint64_t data_start = 8 + (uint64_t)json_len;

    /* a NUL-terminated copy, so that nothing in the JSON parser can read past the header */
    char *buf = malloc(json_len + 1);
    if (!buf) return SDC_ERR_OOM;
    if (json_len) memcpy(buf, json, json_len);
    buf[json_len] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(buf, json_len, &end, 0);
    size_t pos = end ? (size_t)(end - buf) : 0;
    if (!root) {
        SDC_LOGE(log, "safetensors: %s: header is not valid JSON (error at byte %zu of %zu)", what, pos, json_len);
        free(buf);
        return SDC_ERR_FORMAT;
    }
    while (pos < json_len && is_space(buf[pos])) pos++;
    free(buf);
    if (pos != json_len) {
        SDC_LOGE(log, "safetensors: %s: header has trailing bytes after the JSON (at byte %zu of %zu)", what, pos,
                 json_len);
        cJSON_Delete(root);
        return SDC_ERR_FORMAT;
    }
    if (!cJSON_IsObject(root)) {
        SDC_LOGE(log, "safetensors: %s: header is not a JSON object", what);
        cJSON_Delete(root);
        return SDC_ERR_FORMAT;
    }

    size_t n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) n++;
    out->tensors = calloc(n ? n : 1, sizeof *out->tensors);
    out->data_start = data_start;
    sdc_status st = out->tensors ? SDC_OK : SDC_ERR_OOM;
    cJSON_ArrayForEach(item, root) {
        if (st != SDC_OK) break;
        if (strcmp(item->string, "__metadata__") == 0) continue;
        sdc_tensor_info *t = &out->tensors[out->n_tensors];
        st = parse_tensor(item, data_start, file_size, what, log, t);
        if (t->name) out->n_tensors++;
    }
    cJSON_Delete(root);
    if (st == SDC_OK) st = check_set(out, what, log);
    if (st != SDC_OK) sdc_st_header_free(out);
    return st;
}

void sdc_st_header_free(sdc_st_header *h) {
    if (!h) return;
    for (size_t i = 0; i < h->n_tensors; i++) free((char *)h->tensors[i].name);
    free(h->tensors);
    memset(h, 0, sizeof *h);
}
