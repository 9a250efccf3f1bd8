/* tensor_mem.c - tensors in backend memory; every allocation is counted in be->stats. */
#include "backend/backend.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

sdc_tensor *sdc_tensor_new(sdc_backend *be, sdc_mem_kind kind, sdc_dtype dtype, int ndim, const int64_t *ne) {
    /* block types only for weights, whose last dimension is whole blocks */
    assert(ndim >= 1 && ndim <= SDC_MAX_DIMS);
    assert(sdc_dtype_is_compute(dtype) || (sdc_dtype_is_quant(dtype) && kind == SDC_MEM_WEIGHTS));
    assert(ne[ndim - 1] % sdc_dtype_block(dtype) == 0);
    sdc_tensor *t = sdc_backend_host_alloc(be, sizeof *t);
    if (!t) {
        SDC_LOGE(&be->log, "sdc_tensor_new: out of host memory for a tensor record");
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < SDC_MAX_DIMS; i++) {
        t->ne[i] = i < ndim ? ne[i] : 1;
        assert(t->ne[i] >= 0);
        n *= (size_t)t->ne[i];
    }
    t->nbytes = sdc_dtype_row_bytes(dtype, (int64_t)n);
    t->kind = kind;
    t->backend = be;
    t->owns_data = 1;
    int over = be->mem_limit && be->stats.cur_total + t->nbytes > be->mem_limit;
    t->data = over ? NULL : be->iface->alloc(be, t->nbytes ? t->nbytes : 1);
    if (!t->data) {
        char shape[96];
        SDC_LOGE(&be->log, "sdc_tensor_new: %s backend out of memory for %s %s tensor %s (%zu bytes)", be->iface->name,
                 sdc_mem_kind_name(kind), sdc_dtype_name(dtype), sdc_tensor_shape_str(t, shape, sizeof shape),
                 t->nbytes);
        free(t);
        return NULL;
    }
    sdc_mem_stats_alloc(&be->stats, kind, t->nbytes);
    return t;
}

void sdc_tensor_free(sdc_tensor *t) {
    if (!t) return;
    if (t->owns_data && t->data) {
        t->backend->iface->release(t->backend, t->data);
        sdc_mem_stats_free(&t->backend->stats, t->kind, t->nbytes);
    }
    free(t);
}

void sdc_tensor_set_raw(sdc_tensor *t, const void *host) {
    t->backend->iface->upload(t->backend, t->data, host, t->nbytes);
}

/* A host buffer for t's bytes in its own dtype; NULL with sticky SDC_ERR_OOM. */
static void *conversion_buffer(const sdc_tensor *t, const char *who) {
    void *tmp = sdc_backend_host_alloc(t->backend, t->nbytes);
    if (!tmp)
        SDC_BACKEND_FAIL(t->backend, SDC_ERR_OOM, "malloc", "%s: no host memory for %zu bytes of %s values", who,
                         t->nbytes, sdc_dtype_name(t->dtype));
    return tmp;
}

sdc_status sdc_tensor_set_f32(sdc_tensor *t, const float *host) {
    size_t n = (size_t)sdc_tensor_nelem(t);
    if (t->dtype == SDC_DTYPE_F32) {
        sdc_tensor_set_raw(t, host);
        return SDC_OK;
    }
    void *tmp = conversion_buffer(t, "sdc_tensor_set_f32");
    if (!tmp) return SDC_ERR_OOM;
    int rc = sdc_convert_from_f32(tmp, t->dtype, host, n);
    assert(rc == 0);
    (void)rc;
    sdc_tensor_set_raw(t, tmp);
    free(tmp);
    return SDC_OK;
}

sdc_status sdc_tensor_get_f32(const sdc_tensor *t, float *host) {
    size_t n = (size_t)sdc_tensor_nelem(t);
    if (t->dtype == SDC_DTYPE_F32) {
        t->backend->iface->download(t->backend, host, t->data, t->nbytes);
        return SDC_OK;
    }
    void *tmp = conversion_buffer(t, "sdc_tensor_get_f32");
    if (!tmp) return SDC_ERR_OOM;
    t->backend->iface->download(t->backend, tmp, t->data, t->nbytes);
    int rc = sdc_convert_to_f32(host, tmp, t->dtype, n);
    assert(rc == 0);
    (void)rc;
    free(tmp);
    return SDC_OK;
}
