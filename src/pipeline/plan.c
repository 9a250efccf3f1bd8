/* plan.c - per-phase residency and planned peak memory under each load policy, from the family's
 * component and phase tables. */
#include "pipeline/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sdc_load_policy_name(sdc_load_policy p) { return sdc_value_name(SDC_NAMES_LOAD_POLICY, (int)p); }

int sdc_load_policy_from_name(const char *name, sdc_load_policy *out) {
    int v;
    if (sdc_name_to_value(SDC_NAMES_LOAD_POLICY, name, &v)) return -1;
    *out = (sdc_load_policy)v;
    return 0;
}

void sdc_job_shape_from_params(const sdc_gen_params *p, sdc_job_shape *job) {
    job->width = p->width;
    job->height = p->height;
    job->cfg = p->cfg_scale > 1.0f;
    job->img2img = p->init_image != NULL;
}

/* The lowest component a phase needs: its precision is the phase's. */
static int main_component(const sdc_phase_def *ph) {
    for (int c = 0; c < SDC_MAX_COMPONENTS; c++)
        if (ph->needs & (1u << c)) return c;
    return 0;
}

/* Which components each phase holds under the policy. */
static void residency(const sdc_family *fam, const sdc_job_shape *job, sdc_load_policy policy, sdc_plan *plan) {
    unsigned needed = 0, per_image = 0;
    for (int ph = 0; ph < fam->n_phases; ph++) {
        const sdc_phase_def *d = &fam->phases[ph];
        plan->phase[ph].runs = !d->img2img_only || job->img2img;
        if (!plan->phase[ph].runs) continue;
        needed |= d->needs;
        if (d->per_image) per_image |= d->needs;
    }
    for (int ph = 0; ph < fam->n_phases; ph++) {
        const sdc_phase_def *d = &fam->phases[ph];
        if (!plan->phase[ph].runs) continue;
        switch (policy) {
        case SDC_LOAD_SEQUENTIAL: plan->phase[ph].resident = d->per_image ? per_image : d->needs; break;
        case SDC_LOAD_PHASED: plan->phase[ph].resident = d->needs; break;
        default: plan->phase[ph].resident = needed; break;
        }
    }
}

void sdc_plan_make(sdc_model *m, const sdc_job_shape *job, sdc_load_policy policy, sdc_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->policy = policy;
    const sdc_family *fam = m->family;
    sdc_backend *be = m->be;
    plan->n_phases = fam->n_phases;
    residency(fam, job, policy, plan);
    for (int ph = 0; ph < fam->n_phases; ph++) {
        sdc_phase_plan *pp = &plan->phase[ph];
        if (!pp->runs) continue;
        for (int c = 0; c < m->n_components; c++)
            if (pp->resident & (1u << c)) pp->bytes[SDC_MEM_WEIGHTS] += m->comp_bytes[c];
        sdc_model_use_component(m, main_component(&fam->phases[ph]));
        size_t act = 0, im2col = 0;
        int64_t tokens = 0;
        fam->plan_phase(m->fam, job, ph, sdc_dtype_size(be->iface->act_dtype(be)), &act, &im2col, &tokens);
        pp->bytes[SDC_MEM_ACTIVATIONS] = act;
        pp->bytes[SDC_MEM_WORKSPACE] = be->iface->workspace_bound ? be->iface->workspace_bound(be, im2col, tokens) : 0;
        for (int k = 0; k < SDC_MEM_KIND_COUNT; k++) pp->total += pp->bytes[k];
        if (pp->total > plan->peak) plan->peak = pp->total;
    }
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

sdc_status sdc_plan_choose(sdc_model *m, const sdc_job_shape *job, size_t budget, sdc_plan *plan, char *why,
                           size_t why_size) {
    for (int pol = SDC_LOAD_ALL; pol < SDC_LOAD_POLICY_COUNT; pol++) {
        sdc_plan_make(m, job, (sdc_load_policy)pol, plan);
        if (plan->peak <= budget) {
            snprintf(why, why_size, "auto: %s is the first policy whose planned peak %.1f MiB fits the budget %.1f MiB",
                     sdc_load_policy_name(plan->policy), mib(plan->peak), mib(budget));
            return SDC_OK;
        }
    }
    snprintf(why, why_size, "auto: no policy fits the budget %.1f MiB (phased needs %.1f MiB)", mib(budget),
             mib(plan->peak));
    return SDC_ERR_OOM;
}

size_t sdc_plan_default_budget(const sdc_model *m) {
    sdc_backend *be = m->be;
    int64_t b = be->iface->default_budget ? be->iface->default_budget(be) : -1;
    return b < 0 ? (size_t)-1 : (size_t)b;
}

char *sdc_plan_table(sdc_model *m, const sdc_job_shape *job) {
    size_t cap = 16384, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
#define OUT(...) len += (size_t)snprintf(s + len, len < cap ? cap - len : 0, __VA_ARGS__)
    OUT("plan for %dx%d, %s%s, %s backend (MiB)\n", job->width, job->height, job->img2img ? "img2img" : "txt2img",
        job->cfg ? " with CFG" : "", m->be->iface->name);
    OUT("%-11s %-10s %9s %12s %10s %9s  %s\n", "policy", "phase", "weights", "activations", "workspace", "total",
        "resident");
    for (int pol = SDC_LOAD_ALL; pol < SDC_LOAD_POLICY_COUNT; pol++) {
        sdc_plan plan;
        sdc_plan_make(m, job, (sdc_load_policy)pol, &plan);
        for (int ph = 0; ph < plan.n_phases; ph++) {
            const sdc_phase_plan *pp = &plan.phase[ph];
            if (!pp->runs) continue;
            char parts[160] = "";
            for (int c = 0; c < m->n_components; c++)
                if (pp->resident & (1u << c))
                    snprintf(parts + strlen(parts), sizeof parts - strlen(parts), "%s%s", parts[0] ? "+" : "",
                             sdc_model_component_name(m, c));
            OUT("%-11s %-10s %9.1f %12.1f %10.1f %9.1f  %s\n", sdc_load_policy_name(plan.policy),
                m->family->phases[ph].name, mib(pp->bytes[SDC_MEM_WEIGHTS]), mib(pp->bytes[SDC_MEM_ACTIVATIONS]),
                mib(pp->bytes[SDC_MEM_WORKSPACE]), mib(pp->total), parts);
        }
        OUT("%-11s %-10s %9s %12s %10s %9.1f\n", sdc_load_policy_name(plan.policy), "PEAK", "", "", "", mib(plan.peak));
        if (len >= cap) break;
    }
#undef OUT
    if (len >= cap) {   /* 3 policies x SDC_MAX_PHASES short lines: cannot happen */
        free(s);
        return NULL;
    }
    return s;
}
