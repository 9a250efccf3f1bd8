/* tensor_mem.c - tensors in backend memory; every allocation is counted in be->stats. */
#include "backend/backend.h"

#include <assert.h>
#include <stdlib.h>

sdc_tensor *sdc_tensor_new(sdc_backend *be, sdc_mem_kind kind, sdc_dtype dtype, int ndim,
                           const int64_t *ne) {
    assert(ndim >= 1 && ndim <= SDC_MAX_DIMS && sdc_dtype_is_compute(dtype));
    sdc_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dtype = dtype;
    t->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < SDC_MAX_DIMS; i++) {
        t->ne[i] = i < ndim ? ne[i] : 1;
        assert(t->ne[i] >= 0);
        n *= (size_t)t->ne[i];
    }
    t->nbytes = n * sdc_dtype_size(dtype);
    t->kind = kind;
    t->backend = be;
    t->owns_data = 1;
    int over = be->mem_limit && be->stats.cur_total + t->nbytes > be->mem_limit;
    t->data = over ? NULL : be->iface->alloc(be, t->nbytes ? t->nbytes : 1);
    if (!t->data) {
        char shape[96];
        SDC_LOGE(&be->log, "sdc_tensor_new: %s backend out of memory for %s %s tensor %s (%zu bytes)",
                 be->iface->name, sdc_mem_kind_name(kind), sdc_dtype_name(dtype),
                 sdc_tensor_shape_str(t, shape, sizeof shape), t->nbytes);
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

void sdc_tensor_set_f32(sdc_tensor *t, const float *host) {
    size_t n = (size_t)sdc_tensor_nelem(t);
    if (t->dtype == SDC_DTYPE_F32) {
        sdc_tensor_set_raw(t, host);
        return;
    }
    void *tmp = malloc(t->nbytes ? t->nbytes : 1);
    assert(tmp);
    int rc = sdc_convert_from_f32(tmp, t->dtype, host, n);
    assert(rc == 0);
    (void)rc;
    sdc_tensor_set_raw(t, tmp);
    free(tmp);
}

void sdc_tensor_get_f32(const sdc_tensor *t, float *host) {
    size_t n = (size_t)sdc_tensor_nelem(t);
    if (t->dtype == SDC_DTYPE_F32) {
        t->backend->iface->download(t->backend, host, t->data, t->nbytes);
        return;
    }
    void *tmp = malloc(t->nbytes ? t->nbytes : 1);
    assert(tmp);
    t->backend->iface->download(t->backend, tmp, t->data, t->nbytes);
    int rc = sdc_convert_to_f32(host, tmp, t->dtype, n);
    assert(rc == 0);
    (void)rc;
    free(tmp);
}
