/* cpu_ref.h - the reference CPU ops: plain single-threaded loops that follow the definitions in
 * backend.h literally, accumulating in double. They define what the fast paths must compute; the
 * op tests compare every fast op with its reference here.
 *
 * The signatures are those of the op slots, so the references also form a whole backend
 * (sdc_backend_cpu_ref_new) on which a model can run end to end, slowly, for debugging. */
#ifndef SDC_BACKEND_CPU_CPU_REF_H
#define SDC_BACKEND_CPU_CPU_REF_H

#include "backend/backend.h"

/* A CPU backend whose ops are the references below (name "cpu-ref"). NULL when out of memory. */
sdc_backend *sdc_backend_cpu_ref_new(const sdc_logger *log);

void sdc_cpu_ref_linear(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                        const sdc_tensor *b);
void sdc_cpu_ref_conv2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                        const sdc_tensor *b, int stride, int pad);
void sdc_cpu_ref_attention(sdc_backend *be, sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k,
                           const sdc_tensor *v, int n_heads, int causal);
void sdc_cpu_ref_layer_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                            const sdc_tensor *b, float eps);
void sdc_cpu_ref_group_norm(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w,
                            const sdc_tensor *b, int groups, float eps, int silu);
void sdc_cpu_ref_unary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op);
void sdc_cpu_ref_binary(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b,
                        sdc_binary_op op);
void sdc_cpu_ref_scale(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, float s);
void sdc_cpu_ref_geglu(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
void sdc_cpu_ref_embedding(sdc_backend *be, sdc_tensor *y, const sdc_tensor *table,
                           const sdc_tensor *ids);
void sdc_cpu_ref_upsample2x(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
void sdc_cpu_ref_concat(sdc_backend *be, sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b,
                        int dim);
void sdc_cpu_ref_permute(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, const int perm[4]);
void sdc_cpu_ref_copy(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x);
void sdc_cpu_ref_pad2d(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int top, int bottom,
                       int left, int right);
void sdc_cpu_ref_slice(sdc_backend *be, sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start);

#endif
