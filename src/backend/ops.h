/* ops.h - the ops model code calls: sdc_<name>(y, params...) for each op of SDC_BACKEND_OPS (backend.h,
 * where each op's semantics are written). Each checks shapes and dtypes (asserts: a mismatch is a bug in
 * the caller) and dispatches to the backend that owns y; while the backend's sticky status is set it
 * does nothing (see backend.h). */
#ifndef SDC_BACKEND_OPS_H
#define SDC_BACKEND_OPS_H

#include "backend/backend.h"

#define SDC_OP_WRAPPER_DECL_(name, family, params, args) void sdc_##name(sdc_tensor *y, SDC_UNPAREN params);
SDC_BACKEND_OPS(SDC_OP_WRAPPER_DECL_)
#undef SDC_OP_WRAPPER_DECL_

#endif
