#include "model/weights.h"

#include "backend/count/count_backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sdc_weights_begin(sdc_weight_set *ws, const sdc_weight_source *src, const char *sub_prefix) {
    memset(ws, 0, sizeof *ws);
    ws->index = src->index;
    snprintf(ws->prefix, sizeof ws->prefix, "%s%s", src->prefix ? src->prefix : "", sub_prefix ? sub_prefix : "");
    ws->be = src->be;
    ws->log = src->log;
    ws->prec = src->prec;
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
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)ne[i]);
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

/* The set's reusable host buffer, grown to at least nbytes (one allocation for a whole component, not
 * one per tensor: large mallocs are fresh mappings whose every page faults again). */
static void *scratch(sdc_weight_set *ws, size_t nbytes) {
    if (nbytes > ws->scratch_size) {
        free(ws->scratch);
        ws->scratch = malloc(nbytes);
        ws->scratch_size = ws->scratch ? nbytes : 0;
    }
    return ws->scratch;
}

/* Through a host buffer: read (converting when the dtypes differ), then one synchronous upload. */
static sdc_status load_direct(sdc_weight_set *ws, const sdc_tensor_info *info, sdc_tensor *t) {
    size_t n = (size_t)sdc_tensor_info_nelem(info);
    sdc_status st;
    if (t->dtype == info->dtype) {
        void *raw = scratch(ws, info->nbytes ? info->nbytes : 1);
        st = raw ? sdc_index_read_raw(ws->index, info, raw) : SDC_ERR_OOM;
        if (st == SDC_OK) sdc_tensor_set_raw(t, raw);
    } else {
        float *f = scratch(ws, sizeof(float) * (n ? n : 1));
        st = f ? sdc_index_read_f32(ws->index, info, f) : SDC_ERR_OOM;
        if (st == SDC_OK) sdc_tensor_set_f32(t, f);
    }
    return st;
}

/* Through the backend's pinned staging buffers, a chunk at a time: reading chunk k + 1 from the file
 * overlaps the upload of chunk k. Same dtype: the file bytes go straight into the staging buffer;
 * otherwise each chunk is read into the set's scratch and converted into the staging buffer. The set's
 * last upload is flushed by sdc_weights_end. */
static sdc_status load_staged(sdc_weight_set *ws, const sdc_tensor_info *info, sdc_tensor *t) {
    sdc_backend *be = ws->be;
    const size_t src_es = sdc_dtype_size(info->dtype), dst_es = sdc_dtype_size(t->dtype);
    const size_t n = (size_t)sdc_tensor_info_nelem(info);
    const size_t chunk = be->iface->staging_size(be) / dst_es; /* elements per staging buffer */
    const int same = t->dtype == info->dtype;
    /* scratch: the chunk's file bytes, then (unless the target is f32) its f32 values */
    char *tmp = same ? NULL : scratch(ws, chunk * (src_es + (t->dtype == SDC_DTYPE_F32 ? 0 : sizeof(float))));
    if (!same && !tmp) return SDC_ERR_OOM;
    sdc_status st = SDC_OK;
    for (size_t i = 0; i < n && st == SDC_OK; i += chunk) {
        const size_t m = n - i < chunk ? n - i : chunk;
        void *buf = be->iface->staging_acquire(be, m * dst_es);
        if (!buf) {
            SDC_LOGE(ws->log, "weights: %s: no staging buffer for %zu bytes", info->name, m * dst_es);
            st = SDC_ERR_OOM;
            break;
        }
        if (same) {
            st = sdc_index_read_range(ws->index, info, i * src_es, m * src_es, buf);
        } else {
            st = sdc_index_read_range(ws->index, info, i * src_es, m * src_es, tmp);
            float *f = t->dtype == SDC_DTYPE_F32 ? buf : (float *)(tmp + chunk * src_es);
            if (st == SDC_OK &&
                (sdc_convert_to_f32(f, tmp, info->dtype, m) != 0 ||
                 (t->dtype != SDC_DTYPE_F32 && sdc_convert_from_f32(buf, t->dtype, f, m) != 0)))
                st = SDC_ERR_UNSUPPORTED;
        }
        if (st == SDC_OK) be->iface->staging_upload(be, (char *)t->data + i * dst_es, buf, m * dst_es);
    }
    return st;
}

static sdc_tensor *get(sdc_weight_set *ws, int matrix, int ndim, const int64_t *ne, const char *fmt, va_list ap) {
    if (ws->status != SDC_OK) return NULL;
    char name[512];
    vname(ws, name, sizeof name, fmt, ap);
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
    sdc_dtype wdt = ws->be->iface->weight_dtype(ws->be, info->dtype, ws->prec, matrix);
    sdc_tensor *t = sdc_tensor_new(ws->be, SDC_MEM_WEIGHTS, wdt, ndim, ne);
    if (!t || push(ws, t) != 0) {
        sdc_tensor_free(t);
        ws->status = SDC_ERR_OOM;
        return NULL;
    }
    if (sdc_backend_is_count(ws->be)) {   // counted only: its tensors hold no data
        ws->bytes_resident += t->nbytes;
        return t;
    }
    sdc_status st = ws->be->iface->staging_acquire ? load_staged(ws, info, t) : load_direct(ws, info, t);
    if (st != SDC_OK) {
        ws->status = st;
        return NULL;
    }
    ws->bytes_read += info->nbytes;
    ws->bytes_resident += t->nbytes;
    return t;
}

sdc_tensor *sdc_weights_get(sdc_weight_set *ws, int ndim, const int64_t *ne, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sdc_tensor *t = get(ws, 0, ndim, ne, fmt, ap);
    va_end(ap);
    return t;
}

sdc_tensor *sdc_weights_matrix(sdc_weight_set *ws, int ndim, const int64_t *ne, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sdc_tensor *t = get(ws, 1, ndim, ne, fmt, ap);
    va_end(ap);
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
    if (ws->be->iface->staging_flush) ws->be->iface->staging_flush(ws->be); /* every upload has landed */
    free(ws->scratch);
    ws->scratch = NULL;
    ws->scratch_size = 0;
    if (ws->status != SDC_OK) sdc_weights_free(ws);
    return ws->status;
}
