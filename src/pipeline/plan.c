/* plan.c - per-phase residency and planned peak memory under each load policy, from the family's
 * component and phase tables. */
#include "pipeline/plan.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/count/count_backend.h"
#include "model/stream.h"
#include "pipeline/pipeline.h"

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
    const int n = sdc_job_n_images(p);
    job->batch = p->max_batch > 0 && p->max_batch < n ? p->max_batch : n;
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
        case SDC_LOAD_PHASED:
        case SDC_LOAD_STREAM: plan->phase[ph].resident = d->needs; break;
        default: plan->phase[ph].resident = needed; break;
        }
    }
}

/* Each phase's activation and workspace peaks: they depend on the job, not on the policy, so one
 * measurement serves every policy's plan. */
typedef struct phase_peaks {
    size_t act[SDC_MAX_PHASES], ws[SDC_MAX_PHASES];
    double flops[SDC_MAX_PHASES]; /* the products' FLOPs of the phase's run */
    int calls[SDC_MAX_PHASES];    /* its progress steps: the calls of its forward */
} phase_peaks;

/* The measuring run's progress: counts the current phase's steps (each a call of its forward). */
static int count_call(sdc_run *r, const char *phase, int step, int total) {
    (void)phase;
    (void)total;
    if (step > 0) ++*(int *)r->progress_user;
    return 0;
}

static int phase_runs(const sdc_phase_def *d, const sdc_job_shape *job) { return !d->img2img_only || job->img2img; }

/* The job's phases, for one image, run on a counting backend shaped like the model's: the family's own
 * phase bodies, the components' own loaders and forwards, no memory and no work. Each phase's activation
 * and workspace peaks are then those the real run reaches (exact: test_count, test_residency). */
static sdc_status measure(sdc_model *m, const sdc_job_shape *job, phase_peaks *pk) {
    const sdc_family *fam = m->family;
    sdc_logger quiet = m->log; /* the loaders' info lines would repeat on every plan */
    if (quiet.min_level < SDC_LOG_WARN) quiet.min_level = SDC_LOG_WARN;
    sdc_gen_params p;
    sdc_gen_params_init(&p);
    p.width = job->width;
    p.height = job->height;
    p.steps = 1; /* activations do not depend on the step count */
    p.cfg_scale = job->cfg ? 2.0f : 1.0f;
    p.strength = 1.0f;
    p.batch_count = p.max_batch = job->batch > 1 ? job->batch : 1; /* one group of the denoiser's size */
    sdc_image init = {job->width, job->height, 3, NULL, 0, NULL};
    if (job->img2img) {
        init.data = calloc((size_t)job->width * (size_t)job->height, 3);
        if (!init.data) return SDC_ERR_OOM;
        p.init_image = &init;
    }
    void *comp[SDC_MAX_COMPONENTS] = {0};
    sdc_backend *cb = sdc_backend_count_new(m->be);
    sdc_op_profile prof = {0}; /* the ops' FLOPs, as the profile counts them */
    int calls = 0;
    if (cb) cb->profile = &prof;
    sdc_run r = {fam,     m->fam, m->mf, cb,         &quiet, &p, m->model_name, NULL, comp,
                 m->prec, NULL,   1,     count_call, &calls, 1};
    sdc_status st = cb ? fam->job_new(&r, &r.state) : SDC_ERR_OOM;
    memset(pk, 0, sizeof *pk);
    unsigned used = 0;
    for (int ph = 0; ph < fam->n_phases; ph++)
        if (phase_runs(&fam->phases[ph], job)) used |= fam->phases[ph].needs;
    for (int c = 0; c < m->n_components && st == SDC_OK; c++)
        if (used & (1u << c)) st = sdc_model_load_component_on(m, c, cb, &quiet, &comp[c]);
    for (int ph = 0; ph < fam->n_phases && st == SDC_OK; ph++) {
        if (!phase_runs(&fam->phases[ph], job)) continue;
        sdc_mem_stats_reset_peak(&cb->stats);
        r.group = fam->phases[ph].batched ? p.batch_count : 1;
        calls = 0;
        prof = (sdc_op_profile){0};
        st = fam->phases[ph].run(&r, fam->phases[ph].per_image ? 0 : -1);
        pk->act[ph] = cb->stats.peak[SDC_MEM_ACTIVATIONS];
        pk->ws[ph] = cb->stats.peak[SDC_MEM_WORKSPACE];
        for (int f = 0; f < SDC_OPF_COUNT; f++) pk->flops[ph] += prof.flops[f];
        pk->calls[ph] = calls;
    }
    if (r.state) fam->job_free(r.state);
    for (int c = 0; c < m->n_components; c++)
        if (comp[c]) fam->components[c].free(comp[c]);
    sdc_backend_free(cb);
    free(init.data);
    if (st != SDC_OK) SDC_LOGW(&m->log, "plan: cannot measure the job's phases: %s", sdc_status_str(st));
    return st;
}

/* The measurements of the last PLAN_MEMO job shapes, per model: a measurement is a function of the job's
 * shape and the model (its family state, components, precisions and backend, fixed while it is open), so a
 * repeated job reuses it instead of running its phases on the counting backend again (SDXL at 1024^2: 15 ms
 * of host time per job on the 2-core CPU; test_residency checks a reused plan against a fresh one). Failed
 * measurements are not kept. */
#define PLAN_MEMO 4
struct sdc_plan_memo {
    pthread_mutex_t lock; /* a dry run (sdc_plan_memory) may plan beside a job */
    int n, next;
    sdc_job_shape job[PLAN_MEMO];
    phase_peaks pk[PLAN_MEMO];
};

static int same_job(const sdc_job_shape *a, const sdc_job_shape *b) {
    return a->width == b->width && a->height == b->height && a->cfg == b->cfg && a->img2img == b->img2img &&
        (a->batch > 1 ? a->batch : 1) == (b->batch > 1 ? b->batch : 1);
}

static sdc_status measure_memo(sdc_model *m, const sdc_job_shape *job, phase_peaks *pk) {
    struct sdc_plan_memo *mm = m->plan_memo;
    if (mm) {
        pthread_mutex_lock(&mm->lock);
        int hit = -1;
        for (int i = 0; i < mm->n && hit < 0; i++)
            if (same_job(&mm->job[i], job)) hit = i;
        if (hit >= 0) *pk = mm->pk[hit];
        pthread_mutex_unlock(&mm->lock);
        if (hit >= 0) return SDC_OK;
    }
    const sdc_status st = measure(m, job, pk);
    if (st == SDC_OK && mm) {
        pthread_mutex_lock(&mm->lock);
        mm->job[mm->next] = *job;
        mm->pk[mm->next] = *pk;
        mm->next = (mm->next + 1) % PLAN_MEMO;
        if (mm->n < PLAN_MEMO) mm->n++;
        pthread_mutex_unlock(&mm->lock);
    }
    return st;
}

void sdc_plan_memo_new(sdc_model *m) {
    struct sdc_plan_memo *mm = calloc(1, sizeof *mm);
    if (mm) pthread_mutex_init(&mm->lock, NULL);
    m->plan_memo = mm; /* NULL (no memory): every plan measures */
}

void sdc_plan_memo_free(sdc_model *m) {
    if (!m->plan_memo) return;
    pthread_mutex_destroy(&m->plan_memo->lock);
    free(m->plan_memo);
    m->plan_memo = NULL;
}

size_t sdc_stream_held(const sdc_stream_shape *sh, int w, int lookahead, size_t *read_per_call) {
    const int n = sh->n_units, slots = sdc_stream_slots(w, n, lookahead);
    size_t held = sh->rest, cycling_max = 0, read = 0;
    for (int k = 0; k < n; k++) {
        if (sdc_stream_sticky(k, n, w - slots)) {
            held += sh->unit[k];
        } else {
            read += sh->unit[k];
            if (sh->unit[k] > cycling_max) cycling_max = sh->unit[k];
        }
    }
    if (read_per_call) *read_per_call = read;
    return held + (size_t)slots * cycling_max;
}

/* What the model's component of shape sh holds with a window of w (its lookahead as the stream decides it). */
static size_t held_by(const sdc_model *m, const sdc_stream_shape *sh, int w, size_t *read_per_call) {
    return sdc_stream_held(sh, w, sdc_stream_lookahead(m->be, m->stream_prefetch, w, sh->n_units), read_per_call);
}

/* Under stream, the phase's streamable component c: the largest window (at least 1, at most the model's
 * stream_window) whose phase total fits the budget, given the phase's other bytes; the weights c then
 * holds at most. */
static void stream_window(const sdc_model *m, int c, size_t other, size_t budget, sdc_phase_plan *pp) {
    const sdc_stream_shape *sh = &m->stream[c];
    const int cap = m->stream_window > 0 && m->stream_window < sh->n_units ? m->stream_window : sh->n_units;
    int w = cap;
    while (w > 1 && other + held_by(m, sh, w, NULL) > budget) w--;
    pp->stream_comp = c;
    pp->window = w;
    pp->n_units = sh->n_units;
    pp->stream_lookahead = sdc_stream_lookahead(m->be, m->stream_prefetch, w, sh->n_units);
    pp->stream_resident = held_by(m, sh, w, &pp->stream_read);
    if (w >= sh->n_units) pp->stream_read = 0;
}

void sdc_stream_expect_at(const sdc_phase_plan *pp, const sdc_backend_rates *rates, sdc_stream_expect *e) {
    e->read = (double)pp->stream_read;
    e->flops = pp->flops_per_call;
    e->transfer = rates->h2d_bytes_per_s > 0 ? e->read / rates->h2d_bytes_per_s : 0;
    e->compute = rates->flops_per_s > 0 ? e->flops / rates->flops_per_s : 0;
    e->call = pp->stream_lookahead ? (e->transfer > e->compute ? e->transfer : e->compute) : e->transfer + e->compute;
}

/* The plan under one policy, from the job's measured phase peaks. */
static void plan_from(const sdc_model *m, const sdc_job_shape *job, sdc_load_policy policy, const phase_peaks *pk,
                      size_t budget, sdc_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->policy = policy;
    plan->n_phases = m->family->n_phases;
    plan->budget = budget;
    residency(m->family, job, policy, plan);
    for (int ph = 0; ph < plan->n_phases; ph++) {
        sdc_phase_plan *pp = &plan->phase[ph];
        if (!pp->runs) continue;
        int streamed = -1;
        for (int c = 0; c < m->n_components; c++) {
            if (!(pp->resident & (1u << c))) continue;
            if (policy == SDC_LOAD_STREAM && m->stream[c].n_units > 0 && streamed < 0)
                streamed = c;
            else
                pp->bytes[SDC_MEM_WEIGHTS] += m->comp_bytes[c];
        }
        if (streamed >= 0) {
            stream_window(m, streamed, pp->bytes[SDC_MEM_WEIGHTS] + pk->act[ph] + pk->ws[ph], budget, pp);
            pp->bytes[SDC_MEM_WEIGHTS] += pp->stream_resident;
        }
        pp->flops_per_call = pk->flops[ph] / (pk->calls[ph] > 1 ? pk->calls[ph] : 1);
        pp->bytes[SDC_MEM_ACTIVATIONS] = pk->act[ph];
        pp->bytes[SDC_MEM_WORKSPACE] = pk->ws[ph];
        for (int k = 0; k < SDC_MEM_KIND_COUNT; k++) pp->total += pp->bytes[k];
        if (pp->total > plan->peak) plan->peak = pp->total;
    }
}

void sdc_plan_make(sdc_model *m, const sdc_job_shape *job, sdc_load_policy policy, sdc_plan *plan) {
    phase_peaks pk;
    measure_memo(m, job, &pk);
    plan_from(m, job, policy, &pk, m->budget, plan);
}

static double mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

sdc_status sdc_plan_choose(sdc_model *m, const sdc_job_shape *job, size_t budget, sdc_plan *plan, char *why,
                           size_t why_size) {
    return sdc_plan_choose_from(m, job, SDC_LOAD_ALL, budget, plan, why, why_size);
}

sdc_status sdc_plan_choose_from(sdc_model *m, const sdc_job_shape *job, sdc_load_policy first, size_t budget,
                                sdc_plan *plan, char *why, size_t why_size) {
    assert(first >= SDC_LOAD_ALL && first < SDC_LOAD_POLICY_COUNT);
    phase_peaks pk;
    measure_memo(m, job, &pk);
    for (int pol = first; pol < SDC_LOAD_POLICY_COUNT; pol++) {
        plan_from(m, job, (sdc_load_policy)pol, &pk, budget, plan);
        if (plan->peak <= budget) {
            snprintf(why, why_size, "auto: %s is the first policy whose planned peak %.1f MiB fits the budget %.1f MiB",
                     sdc_load_policy_name(plan->policy), mib(plan->peak), mib(budget));
            return SDC_OK;
        }
    }
    snprintf(why, why_size, "auto: no policy fits the budget %.1f MiB (%s needs %.1f MiB)", mib(budget),
             sdc_load_policy_name(plan->policy), mib(plan->peak));
    return SDC_ERR_OOM;
}

size_t sdc_plan_default_budget(const sdc_model *m) {
    sdc_backend *be = m->be;
    int64_t b = sdc_backend_default_budget(be);
    return b < 0 ? (size_t)-1 : (size_t)b;
}

void sdc_stream_expect_line(const sdc_model *m, const sdc_phase_plan *pp, char *out, size_t size) {
    const sdc_backend_rates r = sdc_backend_rates_get(m->be, m->prec[pp->stream_comp]);
    sdc_stream_expect e;
    sdc_stream_expect_at(pp, &r, &e);
    if (!r.measured) {
        snprintf(out, size, "%.1f MiB read, %.3f GFLOP (the backend's rates could not be measured)", e.read / 1048576.0,
                 e.flops / 1e9);
        return;
    }
    snprintf(out, size,
             "%.1f MiB read, transfer %.4f s at %.2f GB/s; compute >= %.4f s, %.3f GFLOP at %.1f GFLOP/s; call >= "
             "%.4f s (%s; rates measured: a 64 MiB upload, a %d^3 %s linear)",
             e.read / 1048576.0, e.transfer, r.h2d_bytes_per_s / 1e9, e.compute, e.flops / 1e9, r.flops_per_s / 1e9,
             e.call, pp->stream_lookahead ? "uploads behind compute" : "loads, then compute", r.gemm_n,
             sdc_dtype_name(r.dtype));
}

char *sdc_plan_table(sdc_model *m, const sdc_job_shape *job) {
    size_t cap = 16384, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    phase_peaks pk;
    measure_memo(m, job, &pk);
#define OUT(...) len += (size_t)snprintf(s + len, len < cap ? cap - len : 0, __VA_ARGS__)
    OUT("plan for %dx%d, %s%s, %s backend, budget %.1f (MiB)", job->width, job->height,
        job->img2img ? "img2img" : "txt2img", job->cfg ? " with CFG" : "", sdc_backend_name(m->be), mib(m->budget));
    if (job->batch > 1) OUT(", %d images per denoiser call", job->batch);
    OUT("\n");
    OUT("%-11s %-10s %9s %12s %10s %9s  %s\n", "policy", "phase", "weights", "activations", "workspace", "total",
        "resident");
    int streamed = 0;
    for (int pol = SDC_LOAD_ALL; pol < SDC_LOAD_POLICY_COUNT; pol++) {
        sdc_plan plan;
        plan_from(m, job, (sdc_load_policy)pol, &pk, m->budget, &plan);
        for (int ph = 0; ph < plan.n_phases; ph++) {
            const sdc_phase_plan *pp = &plan.phase[ph];
            if (!pp->runs) continue;
            char parts[256] = "";
            for (int c = 0; c < m->n_components; c++)
                if (pp->resident & (1u << c))
                    snprintf(parts + strlen(parts), sizeof parts - strlen(parts), "%s%s", parts[0] ? "+" : "",
                             sdc_model_component_name(m, c));
            if (pp->window > 0) {
                const int slots = sdc_stream_slots(pp->window, pp->n_units, pp->stream_lookahead);
                snprintf(parts + strlen(parts), sizeof parts - strlen(parts),
                         " (%s streamed: window %d of %d blocks, %d stay, the others cycle through %d slot%s%s; "
                         "%.1f resident, %.1f read per call)",
                         sdc_model_component_name(m, pp->stream_comp), pp->window, pp->n_units, pp->window - slots,
                         slots, slots == 1 ? "" : "s", pp->stream_lookahead ? ", uploaded ahead" : "",
                         mib(pp->stream_resident), mib(pp->stream_read));
            }
            OUT("%-11s %-10s %9.1f %12.1f %10.1f %9.1f  %s\n", sdc_load_policy_name(plan.policy),
                m->family->phases[ph].name, mib(pp->bytes[SDC_MEM_WEIGHTS]), mib(pp->bytes[SDC_MEM_ACTIVATIONS]),
                mib(pp->bytes[SDC_MEM_WORKSPACE]), mib(pp->total), parts);
            if (pp->window > 0) {
                char line[320];
                sdc_stream_expect_line(m, pp, line, sizeof line);
                OUT("%-22s expected per call: %s\n", "", line);
                streamed = 1;
            }
        }
        OUT("%-11s %-10s %9s %12s %10s %9.1f\n", sdc_load_policy_name(plan.policy), "PEAK", "", "", "", mib(plan.peak));
        if (len >= cap) break;
    }
    if (streamed)
        OUT("stream: a call is one forward of the streamed component (the denoiser's: one sampling step, CFG's rows "
            "and the group's images in its batch); its expected times are for this table only, nothing is "
            "scheduled by them\n");
    /* host memory beside the device plan (pipeline/host_tier.h): it changes no device byte */
    size_t files = 0;
    for (int c = 0; c < m->n_components; c++) files += m->comp_file_bytes[c];
    OUT("host memory: prefetch up to %.1f, host tier up to %.1f (the components' files: %.1f)%s\n",
        mib(m->tier.prefetch_mem), mib(m->tier.host_cache), mib(files),
        m->tier.prefetch_mem || m->tier.host_cache ? "; page-locked where the backend can" : "");
#undef OUT
    if (len >= cap) { /* 4 policies x SDC_MAX_PHASES short lines: cannot happen */
        free(s);
        return NULL;
    }
    return s;
}
