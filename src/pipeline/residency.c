/* residency.c - applying a plan: before each phase, free what it does not keep and load what it needs
 * (under stream, the streamed component with the plan's window: its blocks load during its forward). */
#include "core/sysmem.h"
#include "pipeline/report.h"

sdc_status sdc_residency_enter(sdc_model *m, sdc_report *r, int ph) {
    const sdc_phase_plan *pp = &r->plan.phase[ph];
    const char *phase = m->family->phases[ph].name;
    int freed = -1;
    const int behind = m->upload_behind && sdc_backend_has_async_copy(m->be);
    int uploading = 0; /* a component's blocks upload behind compute */
    for (int c = 0; c < m->n_components; c++) {
        const int window = pp->window > 0 && pp->stream_comp == c ? pp->window
            : behind && m->stream[c].n_units > 0                  ? SDC_WINDOW_WHOLE
                                                                  : 0;
        if (m->comp[c] && m->window[c] != window) sdc_model_free_component(m, c); /* loaded otherwise before */
        m->window[c] = window;
    }
    for (int c = 0; c < m->n_components; c++)
        if (!(pp->resident & (1u << c)) && m->comp[c]) {
            sdc_model_free_component(m, c);
            freed = c;
        }
    sdc_backend *be = m->be;
    sdc_backend_trim(be); /* cached blocks of the freed components go back */
    sdc_report_window_open(m);
    sdc_host_tier_join(m); /* the prefetcher's reads are its own, not the loads' below */
    for (int c = 0; c < m->n_components; c++) {
        if (!(pp->resident & (1u << c)) || m->comp[c]) continue;
        uint64_t read0 = sdc_index_bytes_read(m->mf->index);
        double l0 = sdc_now();
        sdc_status st = sdc_model_load_component(m, c);
        if (st != SDC_OK) return st;
        uploading |= m->window[c] == SDC_WINDOW_WHOLE;
        double dt = sdc_now() - l0;
        uint64_t read = sdc_index_bytes_read(m->mf->index) - read0; /* the tier's own fill included */
        sdc_report_load(r, ph, c, dt, read, &m->tier.last[c]);
        if (m->window[c] > 0 && m->window[c] != SDC_WINDOW_WHOLE)
            SDC_LOGI(&m->log,
                     "%s: %s streamed: its rest loaded (%.2f GB in %.2f s); at most %d of its %d blocks resident",
                     phase, sdc_model_component_name(m, c), (double)read / 1e9, dt, pp->window, pp->n_units);
        else if (ph > 0)
            SDC_LOGI(&m->log, "%s: deferred %d %s tensors (%.2f GB); loaded in %.2f s%s%s%s", phase, m->comp_tensors[c],
                     sdc_model_component_name(m, c), (double)read / 1e9, dt, freed >= 0 ? " after the " : "",
                     freed >= 0 ? sdc_model_component_name(m, freed) : "", freed >= 0 ? " was freed" : "");
        else
            SDC_LOGI(&m->log, "%s: loaded %d %s tensors (%.2f GB) in %.2f s", phase, m->comp_tensors[c],
                     sdc_model_component_name(m, c), (double)read / 1e9, dt);
        if (m->window[c] == SDC_WINDOW_WHOLE)
            SDC_LOGI(&m->log, "%s: %s: its blocks upload behind its first forward (the time above is the host's)",
                     phase, sdc_model_component_name(m, c));
        const sdc_tier_load *tl = &m->tier.last[c];
        if (tl->host_bytes)
            SDC_LOGI(&m->log,
                     "%s: %s: %.2f GB of it from host memory, %.2f GB read before this phase%s (waited %.2f s)", phase,
                     sdc_model_component_name(m, c), (double)tl->host_bytes / 1e9, (double)tl->hidden_bytes / 1e9,
                     tl->prefetch_seconds > 0 ? " by the prefetcher" : "", tl->wait_seconds);
    }
    /* the next phase that runs: its components that are not resident now are read while this one computes */
    for (int nx = ph + 1; nx < r->plan.n_phases; nx++) {
        if (!r->plan.phase[nx].runs) continue;
        sdc_host_tier_prefetch(m, r->plan.phase[nx].resident & ~pp->resident);
        break;
    }
    return uploading ? SDC_OK : sdc_backend_sync(be); /* uploads landed */
}
