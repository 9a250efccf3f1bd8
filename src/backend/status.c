/* status.c - the backend's sticky status (see backend.h). */
#include "backend/backend.h"

sdc_status sdc_backend_sync(sdc_backend *be) {
    if (be->iface->synchronize) be->iface->synchronize(be);
    return be->status;
}

sdc_status sdc_backend_status(const sdc_backend *be) { return be->status; }

void sdc_backend_clear_status(sdc_backend *be) { be->status = SDC_OK; }
