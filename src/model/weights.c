#include "model/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sdc_weights_begin(sdc_weight_set *ws, sdc_model_index *index, const char *prefix, sdc_backend *be,
                       const sdc_logger *log) {
    memset(ws, 0, sizeof *ws);
    ws->index = index;
    snprintf(ws->prefix, sizeof ws->prefix, "%s", prefix ? prefix : "");
    ws->be = be;
    ws->log = log;
    ws->status = SDC_OK;
}

static void vname(const sdc_weight_set *ws, char *buf, size_t size, const char *fmt, va_list ap) {
    size_t p = strlen(ws->prefix);
    snprintf(buf, size, "%s", ws->prefix);
    vsnprintf(buf + p, size - p, fmt, ap);
}

int sdc_weights_has(const sdc_weight_set *ws, const char *fmt, ...) {
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vname(ws, name, sizeof name, fmt, ap);
    va_end(ap);
    return sdc_index_find(ws->index, name) != NULL;
}

/* Same element count and equal dims, ignoring trailing 1s on either side. */
static int shape_matches(const sdc_tensor_info *info, int ndim, const int64_t *ne) {
    int a = info->ndim, b = ndim;
    while (a > 0 && info->ne[a - 1] == 1) a--;
    while (b > 0 && ne[b - 1] == 1) b--;
    if (a != b) return 0;
    for (int i = 0; i < a; i++)
        if (info->ne[i] != ne[i]) return 0;
    return 1;
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *ne) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++) n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)ne[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

static int push(sdc_weight_set *ws, sdc_tensor *t) {
    if (ws->n == ws->cap) {
        int cap = ws->cap ? ws->cap * 2 : 64;
        sdc_tensor **nt = realloc(ws->tensors, sizeof *nt * (size_t)cap);
        if (!nt) return -1;
        ws->tensors = nt;
        ws->cap = cap;
    }
    ws->tensors[ws->n++] = t;
    return 0;
}

sdc_tensor *sdc_weights_get(sdc_weight_set *ws, int ndim, const int64_t *ne, const char *fmt, ...) {
    if (ws->status != SDC_OK) return NULL;
    char name[512];
    va_list ap;
    va_start(ap, fmt);
    vname(ws, name, sizeof name, fmt, ap);
    va_end(ap);
    const sdc_tensor_info *info = sdc_index_find(ws->index, name);
    if (!info) {
        SDC_LOGE(ws->log, "weights: missing tensor '%s'", name);
        ws->status = SDC_ERR_NOT_FOUND;
        return NULL;
    }
    if (!shape_matches(info, ndim, ne)) {
        char want[128], got[128];
        shape_str(want, sizeof want, ndim, ne);
        shape_str(got, sizeof got, info->ndim, info->ne);
        SDC_LOGE(ws->log, "weights: tensor '%s' has shape %s, the config needs %s", name, got, want);
        ws->status = SDC_ERR_FORMAT;
        return NULL;
    }
    sdc_dtype wdt = ws->be->iface->weight_dtype(ws->be, info->dtype);
    sdc_tensor *t = sdc_tensor_new(ws->be, SDC_MEM_WEIGHTS, wdt, ndim, ne);
    if (!t || push(ws, t) != 0) {
        sdc_tensor_free(t);
        ws->status = SDC_ERR_OOM;
        return NULL;
    }
    size_t n = (size_t)sdc_tensor_info_nelem(info);
    sdc_status st;
    if (wdt == info->dtype) {
        void *raw = malloc(info->nbytes ? info->nbytes : 1);
        st = raw ? sdc_index_read_raw(ws->index, info, raw) : SDC_ERR_OOM;
        if (st == SDC_OK) sdc_tensor_set_raw(t, raw);
        free(raw);
    } else {
        float *f = malloc(sizeof(float) * (n ? n : 1));
        st = f ? sdc_index_read_f32(ws->index, info, f) : SDC_ERR_OOM;
        if (st == SDC_OK) sdc_tensor_set_f32(t, f);
        free(f);
    }
    if (st != SDC_OK) {
        ws->status = st;
        return NULL;
    }
    ws->bytes_read += info->nbytes;
    ws->bytes_resident += t->nbytes;
    return t;
}

void sdc_weights_free(sdc_weight_set *ws) {
    for (int i = 0; i < ws->n; i++) sdc_tensor_free(ws->tensors[i]);
    free(ws->tensors);
    ws->tensors = NULL;
    ws->n = ws->cap = 0;
    ws->bytes_resident = 0;
}

sdc_status sdc_weights_end(sdc_weight_set *ws) {
    if (ws->status != SDC_OK) sdc_weights_free(ws);
    return ws->status;
}
