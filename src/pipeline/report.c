/* report.c - measuring each phase (time, loads, peaks by kind, RSS) and printing the report. */
#include "pipeline/report.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sysmem.h"

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

void sdc_report_window_open(sdc_model *m) {
    sdc_backend *be = m->be;
    sdc_mem_stats_reset_peak(&be->stats);
    sdc_backend_driver_peak_reset(be);
    sdc_sys_peak_rss_reset();
}

void sdc_report_load(sdc_report *r, int ph, int c, double seconds, uint64_t bytes_read, const sdc_tier_load *tl) {
    sdc_component_report *cr = &r->component[c];
    r->phase[ph].load += seconds;
    r->phase[ph].bytes_read += bytes_read;
    cr->loads++;
    cr->seconds += seconds;
    cr->bytes_read += bytes_read;
    cr->bytes_host += tl->host_bytes;
    cr->bytes_hidden += tl->hidden_bytes;
    cr->prefetch_seconds += tl->prefetch_seconds;
    cr->prefetch_wait += tl->wait_seconds;
}

void sdc_report_phase_end(sdc_model *m, sdc_report *r, int ph, double t0) {
    sdc_phase_report *pr = &r->phase[ph];
    sdc_backend *be = m->be;
    pr->wall += sdc_now() - t0;
    const sdc_mem_stats *s = &be->stats;
    pr->runs++;
    if (s->peak[SDC_MEM_WEIGHTS] > pr->resident_weights) pr->resident_weights = s->peak[SDC_MEM_WEIGHTS];
    for (int k = 0; k < SDC_MEM_KIND_COUNT; k++)
        if (s->peak[k] > pr->peak[k]) pr->peak[k] = s->peak[k];
    if (s->peak_total > pr->peak_total) pr->peak_total = s->peak_total;
    if (s->peak_total > r->peak_device) r->peak_device = s->peak_total;
    size_t drv = sdc_backend_driver_peak(be);
    if (drv > pr->driver_peak) pr->driver_peak = drv;
    if (drv > r->driver_peak) r->driver_peak = drv;
    size_t rss = sdc_sys_peak_rss();
    if (rss > pr->peak_rss) pr->peak_rss = rss;
    const sdc_phase_plan *pp = &r->plan.phase[ph];
    const int c = pp->stream_comp;
    if (pp->window > 0 && m->comp[c]) {
        const sdc_weight_stream *st = m->family->components[c].stream(m->comp[c]);
        pr->block_loads = st ? st->loads : 0;
        pr->block_bytes_read = st ? st->bytes_read : 0;
        pr->block_bytes_host = st ? st->bytes_host : 0;
        pr->block_seconds = st ? st->seconds : 0;
    }
    if (rss > r->peak_rss) r->peak_rss = rss;
    if (be->profile) { /* this phase's share: the profile's growth since the last phase ended */
        for (int f = 0; f < SDC_OPF_COUNT; f++) {
            pr->ops.seconds[f] += be->profile->seconds[f] - r->ops_mark.seconds[f];
            pr->ops.calls[f] += be->profile->calls[f] - r->ops_mark.calls[f];
            pr->ops.flops[f] += be->profile->flops[f] - r->ops_mark.flops[f];
        }
        r->ops_mark = *be->profile;
    }
}

/* The profile's rows for one phase (or "all"): the families that ran, their share of total seconds. */
static void log_ops(const sdc_logger *log, const char *phase, const sdc_op_profile *o, double total) {
    for (int f = 0; f < SDC_OPF_COUNT; f++) {
        if (!o->calls[f]) continue;
        SDC_LOGI(log, "report: ops %-10s %-12s %8llu %9.3f %5.1f%% %9.1f %8.1f", phase,
                 sdc_op_family_name((sdc_op_family)f), (unsigned long long)o->calls[f], o->seconds[f],
                 total > 0 ? 100 * o->seconds[f] / total : 0.0, o->flops[f] / 1e9,
                 o->seconds[f] > 0 ? o->flops[f] / 1e9 / o->seconds[f] : 0.0);
    }
}

/* op_seconds and op_flops objects of a profile, by family, under parent. */
static void add_ops_json(cJSON *parent, const sdc_op_profile *o) {
    cJSON *sec = cJSON_AddObjectToObject(parent, "op_seconds"), *fl = cJSON_AddObjectToObject(parent, "op_flops");
    for (int f = 0; f < SDC_OPF_COUNT; f++) {
        cJSON_AddNumberToObject(sec, sdc_op_family_name((sdc_op_family)f), o->seconds[f]);
        cJSON_AddNumberToObject(fl, sdc_op_family_name((sdc_op_family)f), o->flops[f]);
    }
}

void sdc_report_log(const sdc_model *m, const sdc_report *r) {
    const sdc_logger *log = &m->log;
    SDC_LOGI(log, "report: policy %s (%s)", sdc_load_policy_name(r->plan.policy), r->why);
    SDC_LOGI(log, "report: %-9s %4s %8s %7s %9s %9s %9s %9s %9s %9s %8s", "phase", "runs", "wall s", "load s",
             "read MiB", "weights", "activ.", "worksp.", "peak MiB", "plan MiB", "RSS MiB");
    for (int ph = 0; ph < r->plan.n_phases; ph++) {
        const sdc_phase_report *p = &r->phase[ph];
        if (!p->runs) continue;
        SDC_LOGI(log, "report: %-9s %4d %8.3f %7.3f %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %8.1f",
                 m->family->phases[ph].name, p->runs, p->wall, p->load + p->block_seconds,
                 mib(p->bytes_read + p->block_bytes_read), mib(p->resident_weights), mib(p->peak[SDC_MEM_ACTIVATIONS]),
                 mib(p->peak[SDC_MEM_WORKSPACE]), mib(p->peak_total), mib(r->plan.phase[ph].total), mib(p->peak_rss));
    }
    for (int ph = 0; ph < r->plan.n_phases; ph++) {
        const sdc_phase_plan *pp = &r->plan.phase[ph];
        if (r->phase[ph].runs && pp->window > 0)
            SDC_LOGI(log,
                     "report: %s streamed %s: window %d of %d blocks (%.1f MiB resident planned, %.1f MiB per call); "
                     "%llu block loads read %.1f MiB in %.3f s",
                     m->family->phases[ph].name, sdc_model_component_name(m, pp->stream_comp), pp->window, pp->n_units,
                     mib(pp->stream_resident), mib(pp->stream_read), (unsigned long long)r->phase[ph].block_loads,
                     mib(r->phase[ph].block_bytes_read), r->phase[ph].block_seconds);
        /* the expected times need the backend's rates, timed once per process (a 64 MiB upload, a GEMM): only
         * for a profiled run, which asked for timings, so that no other run pays for them after its images */
        if (r->phase[ph].runs && pp->window > 0 && m->be->profile) {
            char line[320];
            sdc_stream_expect_line(m, pp, line, sizeof line);
            const sdc_phase_report *p = &r->phase[ph];
            SDC_LOGI(log,
                     "report: %s expected per call: %s; measured: %d call(s) in %.3f s, %.4f s per call (the phase's "
                     "wall over its calls, the first call's loads included), block loads %.3f s of host time",
                     m->family->phases[ph].name, line, p->calls, p->wall, p->calls ? p->wall / p->calls : 0.0,
                     p->block_seconds);
        }
    }
    SDC_LOGI(log, "report: %d image(s) in %.3f s; peak device %.1f MiB (planned %.1f), peak RSS %.1f MiB", r->images,
             r->seconds, mib(r->peak_device), mib(r->plan.peak), mib(r->peak_rss));
    if (sdc_backend_has_driver_peak(m->be))
        SDC_LOGI(log, "report: device memory in use per the driver (context excluded): peak %.1f MiB",
                 mib(r->driver_peak));
    const sdc_op_profile *prof = m->be->profile;
    if (prof) {
        double total = 0;
        for (int f = 0; f < SDC_OPF_COUNT; f++) total += prof->seconds[f];
        SDC_LOGI(log, "report: ops %-10s %-12s %8s %9s %6s %9s %8s", "phase", "family", "calls", "s", "%", "GFLOP",
                 "GFLOP/s");
        for (int ph = 0; ph < r->plan.n_phases; ph++)
            log_ops(log, m->family->phases[ph].name, &r->phase[ph].ops, total);
        log_ops(log, "all", prof, total);
    }
    for (int p = 0; p < m->n_components; p++)
        if (r->component[p].loads)
            SDC_LOGI(log, "report: %-12s loaded %d time(s), %.3f s, %.1f MiB read, %.0f MB/s; %.1f MiB resident (%s)",
                     sdc_model_component_name(m, p), r->component[p].loads, r->component[p].seconds,
                     mib(r->component[p].bytes_read),
                     r->component[p].seconds > 0 ? (double)r->component[p].bytes_read / r->component[p].seconds / 1e6
                                                 : 0.0,
                     mib(m->comp_bytes[p]), m->comp_dtypes[p]);
    for (int p = 0; p < m->n_components; p++)
        if (r->component[p].bytes_host)
            SDC_LOGI(log,
                     "report: %-12s %.1f MiB from host memory, %.1f MiB of it read before its loads (%.0f%% of its "
                     "bytes hidden; the prefetcher read for %.3f s, the loads waited %.3f s)",
                     sdc_model_component_name(m, p), mib(r->component[p].bytes_host), mib(r->component[p].bytes_hidden),
                     100.0 * (double)r->component[p].bytes_hidden /
                         (double)(r->component[p].bytes_host + r->component[p].bytes_read),
                     r->component[p].prefetch_seconds, r->component[p].prefetch_wait);
}

char *sdc_report_json(const sdc_model *m, const sdc_report *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "policy", sdc_load_policy_name(r->plan.policy));
    cJSON_AddStringToObject(root, "why", r->why);
    cJSON_AddStringToObject(root, "backend", sdc_backend_name(m->be));
    cJSON_AddNumberToObject(root, "budget_bytes", (double)r->budget);
    cJSON_AddNumberToObject(root, "images", r->images);
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    cJSON_AddNumberToObject(root, "peak_device_bytes", (double)r->peak_device);
    cJSON_AddNumberToObject(root, "planned_peak_bytes", (double)r->plan.peak);
    cJSON_AddNumberToObject(root, "peak_rss_bytes", (double)r->peak_rss);
    if (sdc_backend_has_driver_peak(m->be)) cJSON_AddNumberToObject(root, "driver_peak_bytes", (double)r->driver_peak);
    cJSON *phases = cJSON_AddObjectToObject(root, "phases");
    for (int ph = 0; ph < r->plan.n_phases; ph++) {
        const sdc_phase_report *p = &r->phase[ph];
        const sdc_phase_plan *pp = &r->plan.phase[ph];
        if (!p->runs) continue;
        cJSON *o = cJSON_AddObjectToObject(phases, m->family->phases[ph].name);
        cJSON_AddNumberToObject(o, "runs", p->runs);
        cJSON_AddNumberToObject(o, "wall_seconds", p->wall);
        cJSON_AddNumberToObject(o, "load_seconds", p->load);
        cJSON_AddNumberToObject(o, "bytes_read", (double)p->bytes_read);
        cJSON_AddNumberToObject(o, "resident_weight_bytes", (double)p->resident_weights);
        if (m->be->profile) add_ops_json(o, &p->ops);
        cJSON *pk = cJSON_AddObjectToObject(o, "peak_bytes");
        cJSON *pl = cJSON_AddObjectToObject(o, "planned_bytes");
        for (int k = 0; k < SDC_MEM_KIND_COUNT; k++) {
            cJSON_AddNumberToObject(pk, sdc_mem_kind_name((sdc_mem_kind)k), (double)p->peak[k]);
            cJSON_AddNumberToObject(pl, sdc_mem_kind_name((sdc_mem_kind)k), (double)pp->bytes[k]);
        }
        cJSON_AddNumberToObject(pk, "total", (double)p->peak_total);
        cJSON_AddNumberToObject(pl, "total", (double)pp->total);
        cJSON_AddNumberToObject(o, "peak_rss_bytes", (double)p->peak_rss);
        if (sdc_backend_has_driver_peak(m->be)) cJSON_AddNumberToObject(o, "driver_peak_bytes", (double)p->driver_peak);
        if (pp->window > 0) {
            cJSON *s = cJSON_AddObjectToObject(o, "stream");
            cJSON_AddStringToObject(s, "component", sdc_model_component_name(m, pp->stream_comp));
            cJSON_AddNumberToObject(s, "window", pp->window);
            cJSON_AddNumberToObject(s, "blocks", pp->n_units);
            cJSON_AddNumberToObject(s, "planned_resident_bytes", (double)pp->stream_resident);
            cJSON_AddNumberToObject(s, "planned_read_bytes_per_call", (double)pp->stream_read);
            cJSON_AddNumberToObject(s, "lookahead", pp->stream_lookahead);
            cJSON_AddNumberToObject(s, "block_loads", (double)p->block_loads);
            cJSON_AddNumberToObject(s, "block_bytes_read", (double)p->block_bytes_read);
            cJSON_AddNumberToObject(s, "block_bytes_from_host", (double)p->block_bytes_host);
            cJSON_AddNumberToObject(s, "block_load_seconds", p->block_seconds);
            cJSON_AddNumberToObject(s, "calls", p->calls);
            cJSON_AddNumberToObject(s, "planned_flops_per_call", pp->flops_per_call);
            if (m->be->profile) { /* the expected times: a profiled run's (see sdc_report_log) */
                const sdc_backend_rates rates = sdc_backend_rates_get(m->be, m->prec[pp->stream_comp]);
                sdc_stream_expect e;
                sdc_stream_expect_at(pp, &rates, &e);
                cJSON *x = cJSON_AddObjectToObject(s, "expected_per_call"); /* for this report only */
                cJSON_AddBoolToObject(x, "rates_measured", rates.measured);
                cJSON_AddNumberToObject(x, "h2d_bytes_per_second", rates.h2d_bytes_per_s);
                cJSON_AddNumberToObject(x, "linear_flops_per_second", rates.flops_per_s);
                cJSON_AddNumberToObject(x, "read_bytes", e.read);
                cJSON_AddNumberToObject(x, "transfer_seconds", e.transfer);
                cJSON_AddNumberToObject(x, "flops", e.flops);
                cJSON_AddNumberToObject(x, "compute_seconds", e.compute);
                cJSON_AddNumberToObject(x, "call_seconds", e.call);
            }
        }
    }
    if (m->be->profile) add_ops_json(root, m->be->profile);
    cJSON *parts = cJSON_AddObjectToObject(root, "components");
    for (int p = 0; p < m->n_components; p++) {
        if (!r->component[p].loads) continue;
        cJSON *o = cJSON_AddObjectToObject(parts, sdc_model_component_name(m, p));
        cJSON_AddNumberToObject(o, "loads", r->component[p].loads);
        cJSON_AddNumberToObject(o, "load_seconds", r->component[p].seconds);
        cJSON_AddNumberToObject(o, "bytes_read", (double)r->component[p].bytes_read);
        cJSON_AddNumberToObject(o, "bytes_from_host", (double)r->component[p].bytes_host);
        cJSON_AddNumberToObject(o, "bytes_hidden", (double)r->component[p].bytes_hidden);
        cJSON_AddNumberToObject(o, "prefetch_seconds", r->component[p].prefetch_seconds);
        cJSON_AddNumberToObject(o, "prefetch_wait_seconds", r->component[p].prefetch_wait);
        cJSON_AddNumberToObject(o, "weight_bytes", (double)m->comp_bytes[p]);
        cJSON_AddStringToObject(o, "weight_dtypes", m->comp_dtypes[p]); /* in the files: "Q8_0 x 56, F32 x 24" */
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
