/* backend_api.c - the backend's non-op entry points for the rest of sdc, so that no code outside
 * src/backend reaches into a backend's vtable (optional slots are handled here, once). */
#include "backend/backend.h"

const char *sdc_backend_name(const sdc_backend *be) { return be->iface->name; }

sdc_dtype sdc_backend_weight_dtype(sdc_backend *be, sdc_dtype file_dtype, sdc_prec prec, int matrix) {
    return be->iface->weight_dtype(be, file_dtype, prec, matrix);
}

sdc_dtype sdc_backend_act_dtype(sdc_backend *be, sdc_prec prec) { return be->iface->act_dtype(be, prec); }

int64_t sdc_backend_default_budget(sdc_backend *be) {
    return be->iface->default_budget ? be->iface->default_budget(be) : -1;
}

void sdc_backend_trim(sdc_backend *be) {
    if (be->iface->trim) be->iface->trim(be);
}

int sdc_backend_has_driver_peak(const sdc_backend *be) { return be->iface->driver_peak_bytes != NULL; }

size_t sdc_backend_driver_peak(sdc_backend *be) {
    return be->iface->driver_peak_bytes ? be->iface->driver_peak_bytes(be) : 0;
}

void sdc_backend_driver_peak_reset(sdc_backend *be) {
    if (be->iface->driver_peak_reset) be->iface->driver_peak_reset(be);
}
