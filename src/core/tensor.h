/* tensor.h - a dense, contiguous tensor of up to 4 dimensions in a backend's memory.
 *
 * Shapes are in torch order, outermost first: ne[ndim-1] is the contiguous dimension, so a
 * diffusers tensor of shape [B, C, H, W] has ne = {B, C, H, W}. There are no strides: every op
 * writes a contiguous output, and a reshape is a view over the same bytes. */
#ifndef SDC_CORE_TENSOR_H
#define SDC_CORE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/mem.h"

#define SDC_MAX_DIMS 4

struct sdc_backend;

typedef struct sdc_tensor {
    sdc_dtype dtype;
    int ndim;
    int64_t ne[SDC_MAX_DIMS]; /* unused trailing entries are 1 */
    void *data;               /* backend memory: host memory on the CPU backend */
    size_t nbytes;
    sdc_mem_kind kind;
    struct sdc_backend *backend;
    int owns_data; /* 0 for views made by sdc_tensor_view */
    /* a matrix weight of a component at --precision bf16 (the loader sets it): products with it take both
     * operands rounded to bf16 and sum in f32, on a backend whose activations stay f32 (the CPU; CUDA's
     * are bf16 then anyway) */
    int matmul_bf16;
    /* a convolution kernel of a component at SDC_PREC_F32_UPCAST (the loader sets it): CUDA may round
     * both operands of its products to TF32 (f32 sums); the CPU ignores it */
    int conv_tf32;
} sdc_tensor;

int64_t sdc_tensor_nelem(const sdc_tensor *t);
/* Elements per row of the innermost dimension and number of such rows. */
static inline int64_t sdc_tensor_rows(const sdc_tensor *t) {
    return t->ndim ? sdc_tensor_nelem(t) / t->ne[t->ndim - 1] : 1;
}
int sdc_tensor_same_shape(const sdc_tensor *a, const sdc_tensor *b);
/* "[2, 77, 768]" into buf; returns buf. */
const char *sdc_tensor_shape_str(const sdc_tensor *t, char *buf, size_t size);

/* A non-owning view of t's bytes with another shape of the same element count (asserted). */
sdc_tensor sdc_tensor_view(const sdc_tensor *t, int ndim, const int64_t *ne);
/* A non-owning view of rows [r0, r0 + n) of t's innermost rows (sdc_tensor_rows), shape [n, ne[ndim-1]]:
 * rows are contiguous, so the view starts r0 rows into t's bytes. Its data keeps t's alignment when r0
 * rows are a multiple of it (ops on the CPU expect 64 bytes). t not a block type (asserted). */
sdc_tensor sdc_tensor_rows_view(const sdc_tensor *t, int64_t r0, int64_t n);

#endif
