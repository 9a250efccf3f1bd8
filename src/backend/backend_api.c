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

void *sdc_backend_pinned_alloc(sdc_backend *be, size_t nbytes, int *pinned) {
    *pinned = 0;
    if (be->iface->pinned_alloc) {
        void *p = sdc_fail_now(&be->fail.pinned) ? NULL : be->iface->pinned_alloc(be, nbytes ? nbytes : 1);
        if (p) {
            *pinned = 1;
            return p;
        }
        SDC_LOGW(&be->log, "%s: cannot page-lock %.1f MiB of host memory; using pageable memory (slower uploads)",
                 be->iface->name, (double)nbytes / 1048576.0);
    }
    return malloc(nbytes ? nbytes : 1);
}

void sdc_backend_pinned_free(sdc_backend *be, void *ptr, int pinned) {
    if (!ptr) return;
    if (pinned)
        be->iface->pinned_free(be, ptr);
    else
        free(ptr);
}

void sdc_backend_upload_async(sdc_backend *be, void *dst, const void *host, size_t nbytes) {
    if (be->iface->upload_async)
        be->iface->upload_async(be, dst, host, nbytes);
    else
        be->iface->upload(be, dst, host, nbytes);
}

int sdc_backend_has_async_copy(const sdc_backend *be) { return be->iface->copy_event != NULL; }
int64_t sdc_backend_row_chunk(sdc_backend *be) { return be->iface->row_chunk ? be->iface->row_chunk(be) : 0; }

void *sdc_backend_copy_event(sdc_backend *be) { return be->iface->copy_event ? be->iface->copy_event(be) : NULL; }

void sdc_backend_compute_wait(sdc_backend *be, void *ev) {
    if (ev && be->iface->compute_wait) be->iface->compute_wait(be, ev);
}

void sdc_backend_event_free(sdc_backend *be, void *ev) {
    if (ev && be->iface->event_free) be->iface->event_free(be, ev);
}

int sdc_backend_has_graphs(const sdc_backend *be) { return be->iface->graph_begin != NULL; }
int sdc_backend_graph_begin(sdc_backend *be) { return be->iface->graph_begin ? be->iface->graph_begin(be) : 0; }
void *sdc_backend_graph_end(sdc_backend *be) { return be->iface->graph_end ? be->iface->graph_end(be) : NULL; }
void sdc_backend_graph_launch(sdc_backend *be, void *graph) {
    if (graph && be->iface->graph_launch) be->iface->graph_launch(be, graph);
}
void sdc_backend_graph_free(sdc_backend *be, void *graph) {
    if (graph && be->iface->graph_free) be->iface->graph_free(be, graph);
}
uint64_t sdc_backend_alloc_generation(const sdc_backend *be) {
    return be->iface->alloc_generation ? be->iface->alloc_generation(be) : 0;
}
