/* registry.c - the one place that knows which backends were built. */
#include "backend/backend.h"

#include <stddef.h>

const char *sdc_device_name(sdc_device dev) {
    static const char *const names[] = {"cpu", "cuda"};
    _Static_assert(sizeof(names) / sizeof(names[0]) == SDC_DEVICE_COUNT, "device names");
    return (unsigned)dev < SDC_DEVICE_COUNT ? names[dev] : "?";
}

int sdc_device_available(sdc_device dev) {
    switch (dev) {
    case SDC_DEVICE_CPU: return 1;
#ifdef SDC_CUDA
    case SDC_DEVICE_CUDA: return 1;
#endif
    default: return 0;
    }
}

sdc_backend *sdc_backend_new(sdc_device dev, int n_threads, const sdc_logger *log) {
    switch (dev) {
    case SDC_DEVICE_CPU: return sdc_backend_cpu_new(n_threads, log);
#ifdef SDC_CUDA
    case SDC_DEVICE_CUDA: return sdc_backend_cuda_new(log);
#endif
    default:
        SDC_LOGE(log, "sdc_backend_new: device '%s' is not built into this sdc", sdc_device_name(dev));
        return NULL;
    }
}

void sdc_backend_free(sdc_backend *be) {
    if (be) be->iface->destroy(be);
}
