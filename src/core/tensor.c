#include "core/tensor.h"

#include <assert.h>
#include <stdio.h>

int64_t sdc_tensor_nelem(const sdc_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->ne[i];
    return n;
}

int sdc_tensor_same_shape(const sdc_tensor *a, const sdc_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->ne[i] != b->ne[i]) return 0;
    return 1;
}

const char *sdc_tensor_shape_str(const sdc_tensor *t, char *buf, size_t size) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, i ? ", %lld" : "%lld", (long long)t->ne[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

sdc_tensor sdc_tensor_view(const sdc_tensor *t, int ndim, const int64_t *ne) {
    assert(ndim >= 1 && ndim <= SDC_MAX_DIMS);
    sdc_tensor v = *t;
    v.ndim = ndim;
    int64_t n = 1;
    for (int i = 0; i < SDC_MAX_DIMS; i++) {
        v.ne[i] = i < ndim ? ne[i] : 1;
        if (i < ndim) n *= ne[i];
    }
    assert(n == sdc_tensor_nelem(t));
    (void)n;
    v.owns_data = 0;
    return v;
}

sdc_tensor sdc_tensor_rows_view(const sdc_tensor *t, int64_t r0, int64_t n) {
    assert(t->ndim >= 1 && !sdc_dtype_is_quant(t->dtype) && r0 >= 0 && n >= 0 && r0 + n <= sdc_tensor_rows(t));
    const int64_t C = t->ne[t->ndim - 1];
    sdc_tensor v = sdc_tensor_view(t, 2, (int64_t[]){sdc_tensor_rows(t), C});
    const size_t row_bytes = sdc_dtype_size(t->dtype) * (size_t)C;
    v.ne[0] = n;
    v.data = (char *)t->data + (size_t)r0 * row_bytes;
    v.nbytes = (size_t)n * row_bytes;
    return v;
}
