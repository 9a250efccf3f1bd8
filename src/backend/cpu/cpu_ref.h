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

/* sdc_cpu_ref_<name> for each op of SDC_BACKEND_OPS */
#define SDC_CPU_REF_OP_DECLARE_(name, family, params, args) SDC_OP_DECLARE(sdc_cpu_ref_, name, params)
SDC_BACKEND_OPS(SDC_CPU_REF_OP_DECLARE_)
#undef SDC_CPU_REF_OP_DECLARE_

#endif
