/* cpu_ref_data.c - reference data-movement ops (see cpu_ref.h): one loop over every output element,
 * reading the input element the definition names. Tensors are taken as 4-D: unused trailing dims
 * are 1, which does not change the layout. */
#include <stdlib.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_ref.h"
#include "core/quant.h"

/* Flat offset of index i[4] in a contiguous tensor of shape ne[4]. */
static int64_t at(const int64_t *ne, const int64_t *i) { return ((i[0] * ne[1] + i[1]) * ne[2] + i[2]) * ne[3] + i[3]; }

/* Steps i[4] through shape ne[4] in row-major order; 0 after the last index. */
static int next(const int64_t *ne, int64_t *i) {
    for (int d = 3; d >= 0; d--) {
        if (++i[d] < ne[d]) return 1;
        i[d] = 0;
    }
    return 0;
}

static int empty(const sdc_tensor *t) { return sdc_tensor_nelem(t) == 0; }

void sdc_cpu_ref_embedding(sdc_backend *be, sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids) {
    assert(ids->dtype == SDC_DTYPE_I32);
    const int64_t T = sdc_tensor_nelem(ids), C = table->ne[1];
    const int32_t *id = ids->data;          // [T]
    const float *td = sdc_cpu_f32(table);   // [V, C]
    float *yd = sdc_cpu_f32(y);             // [T, C]
    for (int64_t t = 0; t < T; t++) {
        assert(id[t] >= 0 && id[t] < table->ne[0]);
        for (int64_t c = 0; c < C; c++) yd[t * C + c] = td[id[t] * C + c];
    }
}

void sdc_cpu_ref_upsample2x(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    const float *xd = sdc_cpu_f32(x);   // [B, C, H, W]
    float *yd = sdc_cpu_f32(y);         // [B, C, 2H, 2W]
    int64_t i[4] = {0};
    if (empty(y)) return;
    do {
        const int64_t j[4] = {i[0], i[1], i[2] / 2, i[3] / 2};
        yd[at(y->ne, i)] = xd[at(x->ne, j)];
    } while (next(y->ne, i));
}

void sdc_cpu_ref_concat(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim) {
    const float *ad = sdc_cpu_f32(a), *bd = sdc_cpu_f32(b);
    float *yd = sdc_cpu_f32(y);
    int64_t i[4] = {0};
    if (empty(y)) return;
    do {
        int64_t j[4] = {i[0], i[1], i[2], i[3]};
        if (i[dim] < a->ne[dim]) {
            yd[at(y->ne, i)] = ad[at(a->ne, j)];
        } else {
            j[dim] -= a->ne[dim];
            yd[at(y->ne, i)] = bd[at(b->ne, j)];
        }
    } while (next(y->ne, i));
}

void sdc_cpu_ref_permute(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const int perm[4]) {
    const float *xd = sdc_cpu_f32(x);
    float *yd = sdc_cpu_f32(y);   // y.ne[d] = x.ne[perm[d]]
    int64_t i[4] = {0};
    if (empty(y)) return;
    do {
        int64_t j[4];
        for (int d = 0; d < 4; d++) j[perm[d]] = i[d];
        yd[at(y->ne, i)] = xd[at(x->ne, j)];
    } while (next(y->ne, i));
}

static double read_elem(const void *p, sdc_dtype dt, int64_t i) {
    switch (dt) {
    case SDC_DTYPE_F32: return ((const float *)p)[i];
    case SDC_DTYPE_F16: return sdc_f16_to_f32(((const uint16_t *)p)[i]);
    case SDC_DTYPE_BF16: return sdc_bf16_to_f32(((const uint16_t *)p)[i]);
    case SDC_DTYPE_I32: return ((const int32_t *)p)[i];
    default: assert(!"cpu-ref copy: unsupported dtype"); return 0;
    }
}

static void write_elem(void *p, sdc_dtype dt, int64_t i, double v) {
    switch (dt) {
    case SDC_DTYPE_F32: ((float *)p)[i] = (float)v; break;
    case SDC_DTYPE_F16: ((uint16_t *)p)[i] = sdc_f32_to_f16((float)v); break;
    case SDC_DTYPE_BF16: ((uint16_t *)p)[i] = sdc_f32_to_bf16((float)v); break;
    case SDC_DTYPE_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    default: assert(!"cpu-ref copy: unsupported dtype");
    }
}

/* y (F32, F16 or BF16) = x's rows of whole blocks of a block type, dequantized row by row (sdc_dequant_row)
 * and rounded to y's dtype. */
static void copy_dequant(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    const int64_t K = x->ne[x->ndim - 1], rows = K ? sdc_tensor_nelem(x) / K : 0;
    const size_t x_row = sdc_dtype_row_bytes(x->dtype, K), y_row = (size_t)K * sdc_dtype_size(y->dtype);
    float *row = sdc_backend_host_alloc(be, (size_t)K * sizeof(float));   // [K]
    if (!row) {
        SDC_BACKEND_FAIL(be, SDC_ERR_OOM, "malloc", "copy: no host memory for a row of %lld floats", (long long)K);
        return;
    }
    for (int64_t r = 0; r < rows; r++) {
        int rc = sdc_dequant_row(x->dtype, (const char *)x->data + (size_t)r * x_row, row, K);
        rc |= sdc_convert_from_f32((char *)y->data + (size_t)r * y_row, y->dtype, row, (size_t)K);
        assert(rc == 0);
        (void)rc;
    }
    free(row);
}

void sdc_cpu_ref_copy(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x) {
    if (sdc_dtype_is_quant(x->dtype)) {
        copy_dequant(be, y, x);
        return;
    }
    /* I32 only to I32; the float types (F32, F16, BF16) to each other */
    assert((x->dtype == SDC_DTYPE_I32) == (y->dtype == SDC_DTYPE_I32));
    const int64_t n = sdc_tensor_nelem(x);
    for (int64_t i = 0; i < n; i++) write_elem(y->data, y->dtype, i, read_elem(x->data, x->dtype, i));
}

void sdc_cpu_ref_pad2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left, int right) {
    const float *xd = sdc_cpu_f32(x);   // [B, C, H, W]
    float *yd = sdc_cpu_f32(y);         // [B, C, top + H + bottom, left + W + right]
    int64_t i[4] = {0};
    if (empty(y)) return;
    do {
        const int64_t j[4] = {i[0], i[1], i[2] - top, i[3] - left};
        const int inside = j[2] >= 0 && j[2] < x->ne[2] && j[3] >= 0 && j[3] < x->ne[3];
        yd[at(y->ne, i)] = inside ? xd[at(x->ne, j)] : 0.0f;
    } while (next(y->ne, i));
}

void sdc_cpu_ref_slice(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start) {
    const float *xd = sdc_cpu_f32(x);
    float *yd = sdc_cpu_f32(y);   // y = x[..., start : start + y.ne[dim], ...]
    int64_t i[4] = {0};
    if (empty(y)) return;
    do {
        int64_t j[4] = {i[0], i[1], i[2], i[3]};
        j[dim] += start;
        yd[at(y->ne, i)] = xd[at(x->ne, j)];
    } while (next(y->ne, i));
}
