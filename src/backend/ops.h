/* ops.h - the ops model code calls. Each checks shapes and dtypes (asserts: a mismatch is a bug in
 * the caller) and dispatches to the tensor's backend. See backend.h for the exact semantics. */
#ifndef SDC_BACKEND_OPS_H
#define SDC_BACKEND_OPS_H

#include "backend/backend.h"

void sdc_linear(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b);
void sdc_conv2d(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                int stride, int pad);
void sdc_attention(sdc_tensor *y, const sdc_tensor *q, const sdc_tensor *k, const sdc_tensor *v,
                   int n_heads, int causal);
void sdc_layer_norm(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                    float eps);
void sdc_group_norm(sdc_tensor *y, const sdc_tensor *x, const sdc_tensor *w, const sdc_tensor *b,
                    int groups, float eps, int silu);
void sdc_unary(sdc_tensor *y, const sdc_tensor *x, sdc_unary_op op);
void sdc_binary(sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, sdc_binary_op op);
void sdc_scale(sdc_tensor *y, const sdc_tensor *x, float s);
void sdc_geglu(sdc_tensor *y, const sdc_tensor *x);
void sdc_embedding(sdc_tensor *y, const sdc_tensor *table, const sdc_tensor *ids);
void sdc_upsample2x(sdc_tensor *y, const sdc_tensor *x);
void sdc_concat(sdc_tensor *y, const sdc_tensor *a, const sdc_tensor *b, int dim);
void sdc_permute(sdc_tensor *y, const sdc_tensor *x, const int perm[4]);
void sdc_copy(sdc_tensor *y, const sdc_tensor *x);
void sdc_pad2d(sdc_tensor *y, const sdc_tensor *x, int top, int bottom, int left, int right);
void sdc_slice(sdc_tensor *y, const sdc_tensor *x, int dim, int64_t start);

#endif
