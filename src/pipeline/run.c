/* run.c - a job: the family's phases as the outer loop, images inner, under a residency plan.
 *
 *   for each phase of the family (skipping img2img-only phases in txt2img):
 *       apply the plan's residency (free what the phase does not keep, load what it needs)
 *       run the phase once (for every prompt), once per image (image k of entry e uses e's seed + k),
 *       or once per group of at most max_batch images (batched phases: the denoiser)
 *
 * so under `phased` each component is loaded once per job, whatever the number of prompts and images. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sysmem.h"
#include "pipeline/model.h"
#include "pipeline/pipeline.h"
#include "pipeline/report.h"

struct sdc_job {
    sdc_model *m;
    sdc_gen_params p;
    sdc_progress_fn progress;
    void *progress_user;
    atomic_int cancel;
    int ran;
    sdc_image *images;
    int n_images;
    char *report;
    sdc_report *rep; /* while phases run: the report, and the phase running */
    int phase;
};

void sdc_gen_params_init(sdc_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->prompt = "";
    p->width = p->height = 512;
    p->steps = 20;
    p->cfg_scale = 7.5f;
    p->seed = 42;
    p->batch_count = 1;
    p->sampler = SDC_SAMPLER_DEFAULT;
    p->rng = SDC_RNG_TYPE_CPU;
    p->strength = 0.75f;
    p->guidance = 3.5f;
    p->max_batch = 1;
}

sdc_job *sdc_job_new(sdc_model *m, const sdc_gen_params *p) {
    if (!m || !p) return NULL;
    m->last_error[0] = 0;
    if (sdc_pipeline_check_params(p, &m->log) != SDC_OK) return NULL;
    sdc_job *j = calloc(1, sizeof *j);
    if (!j) {
        SDC_LOGE(&m->log, "sdc_job_new: out of memory");
        return NULL;
    }
    j->m = m;
    j->p = *p;
    atomic_init(&j->cancel, 0);
    return j;
}

void sdc_job_set_progress(sdc_job *j, sdc_progress_fn fn, void *user) {
    j->progress = fn;
    j->progress_user = user;
}

void sdc_job_cancel(sdc_job *j) {
    if (j) atomic_store(&j->cancel, 1);
}

sdc_image *sdc_job_take_images(sdc_job *j, int *n_images) {
    sdc_image *imgs = j->images;
    *n_images = imgs ? j->n_images : 0;
    j->images = NULL;
    j->n_images = 0;
    return imgs;
}

const char *sdc_job_report_json(const sdc_job *j) { return j->report; }

void sdc_job_free(sdc_job *j) {
    if (!j) return;
    sdc_image_free(j->images, j->n_images);
    free(j->report);
    free(j);
}

static int run_progress(sdc_run *r, const char *phase, int step, int total) {
    sdc_job *j = r->progress_user;
    if (step > 0 && j->rep) j->rep->phase[j->phase].calls++; /* a step: one call of the phase's forward */
    if (atomic_load(&j->cancel)) return 1;
    return j->progress ? j->progress(phase, step, total, j->progress_user) : 0;
}

/* --- the plan ---------------------------------------------------------------------------------- */

/* The plan for this job: the model's policy, or auto's choice under its budget. */
static sdc_status choose_plan(sdc_model *m, const sdc_gen_params *p, sdc_report *r) {
    sdc_job_shape job;
    sdc_job_shape_from_params(p, &job);
    r->budget = m->budget;
    sdc_status st = SDC_OK;
    if (m->policy != SDC_LOAD_AUTO) {
        sdc_plan_make(m, &job, m->policy, &r->plan);
        snprintf(r->why, sizeof r->why, "asked for %s", sdc_load_policy_name(m->policy));
        if (m->policy == SDC_LOAD_STREAM && r->plan.peak > m->budget) { /* the window is 1 already */
            snprintf(r->why, sizeof r->why,
                     "stream: the budget %.1f MiB is below the plan's peak %.1f MiB with a window of one block "
                     "(see the stream rows of the plan)",
                     (double)m->budget / 1048576.0, (double)r->plan.peak / 1048576.0);
            st = SDC_ERR_OOM;
        }
    } else {
        st = sdc_plan_choose(m, &job, m->budget, &r->plan, r->why, sizeof r->why);
    }
    if (st != SDC_OK) {
        SDC_LOGE(&m->log, "sdc_job_run: %s; nothing was loaded", r->why);
        char *table = sdc_plan_table(m, &job);
        for (char *line = table, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next) *next++ = 0;
            SDC_LOGE(&m->log, "plan: %s", line);
            if (!next) break;
        }
        free(table);
    }
    return st;
}

sdc_status sdc_model_plan_memory(sdc_model *m, const sdc_gen_params *p, char **text) {
    sdc_job_shape job;
    sdc_job_shape_from_params(p, &job);
    char *table = sdc_plan_table(m, &job);
    sdc_plan plan;
    char why[256];
    sdc_plan_choose(m, &job, m->budget, &plan, why, sizeof why);
    size_t n = table ? strlen(table) + strlen(why) + 2 : 0;
    *text = table ? malloc(n) : NULL;
    if (*text) snprintf(*text, n, "%s%s\n", table, why);
    free(table);
    return *text ? SDC_OK : SDC_ERR_OOM;
}

/* --- the run ----------------------------------------------------------------------------------- */

/* One run of the whole job under r->plan; the images go to out[sdc_job_n_images]. */
static sdc_status run_phases(sdc_job *j, sdc_report *rep, sdc_image *out) {
    sdc_model *m = j->m;
    const sdc_family *fam = m->family;
    sdc_run r = {fam,     m->fam, m->mf, m->be,        &m->log, &j->p, m->model_name, NULL, m->comp,
                 m->prec, out,    0,     run_progress, j,       1};
    const int n_img = sdc_job_n_images(&j->p),
              mb = j->p.max_batch > 0 && j->p.max_batch < n_img ? j->p.max_batch : n_img;
    sdc_status st = fam->job_new(&r, &r.state);
    const double t_start = sdc_now();
    for (int ph = 0; ph < fam->n_phases && st == SDC_OK; ph++) {
        const sdc_phase_def *d = &fam->phases[ph];
        if (!rep->plan.phase[ph].runs) continue;
        const int n = d->per_image ? n_img : 1, step = d->per_image && d->batched ? mb : 1;
        for (int i = 0; i < n && st == SDC_OK; i += step) {
            r.group = n - i < step ? n - i : step;
            double t0 = sdc_now();
            if ((st = sdc_residency_enter(m, rep, ph)) != SDC_OK) break;
            j->rep = rep;
            j->phase = ph;
            st = d->run(&r, d->per_image ? i : -1);
            j->rep = NULL;
            /* the device's queued work finishes here; its sticky error, if any, is the phase's */
            sdc_status bs = sdc_backend_sync(m->be);
            if (bs != SDC_OK && (st == SDC_OK || st == SDC_ERR_NONFINITE)) st = bs;
            sdc_report_phase_end(m, rep, ph, t0);
        }
    }
    if (st != SDC_OK) sdc_host_tier_cancel(&m->tier); /* no reading on behalf of a job that ended */
    if (r.state) fam->job_free(r.state);
    rep->images = st == SDC_OK ? n_img : 0;
    rep->seconds = sdc_now() - t_start;
    return st;
}

static sdc_status run_job(sdc_job *j) {
    sdc_model *m = j->m;
    const sdc_logger *log = &m->log;
    const int nb = sdc_job_n_images(&j->p);
    sdc_report *r = calloc(1, sizeof *r);
    sdc_image *out = calloc((size_t)nb, sizeof *out);
    sdc_status st = r && out ? SDC_OK : SDC_ERR_OOM;
    if (st == SDC_OK) st = choose_plan(m, &j->p, r);
    if (m->be->profile) memset(m->be->profile, 0, sizeof *m->be->profile);
    if (st == SDC_OK) {
        SDC_LOGI(log, "sdc_generate: load policy %s (%s), planned peak %.1f MiB", sdc_load_policy_name(r->plan.policy),
                 r->why, (double)r->plan.peak / 1048576.0);
        st = run_phases(j, r, out);
    }
    /* auto: a device that ran out of memory after all (another process took some, or the plan was
     * short) is retried from a clean state under the next lower policy whose plan fits the memory the
     * failed run did get (its allocator peak), down to stream with a window sized for it */
    while (st == SDC_ERR_OOM && m->policy == SDC_LOAD_AUTO && r->plan.policy < SDC_LOAD_STREAM) {
        size_t got = m->be->stats.peak_total > r->peak_device ? m->be->stats.peak_total : r->peak_device;
        if (got > r->budget) got = r->budget;
        const sdc_load_policy failed = r->plan.policy;
        sdc_model_unload_all(m);
        sdc_backend_clear_status(m->be);
        sdc_image_free(out, nb);
        out = calloc((size_t)nb, sizeof *out);
        const size_t budget = r->budget;
        memset(r, 0, sizeof *r);
        r->budget = budget;
        sdc_job_shape job;
        sdc_job_shape_from_params(&j->p, &job);
        char why[sizeof r->why];
        if (sdc_plan_choose_from(m, &job, (sdc_load_policy)(failed + 1), got, &r->plan, why, sizeof why) != SDC_OK) {
            SDC_LOGE(log, "sdc_generate: out of device memory under %s, which got %.1f MiB; %s",
                     sdc_load_policy_name(failed), (double)got / 1048576.0, why);
            st = SDC_ERR_OOM;
            break;
        }
        SDC_LOGW(log,
                 "sdc_generate: out of device memory under %s, which got %.1f MiB; freeing everything and retrying "
                 "under %s (planned peak %.1f MiB)",
                 sdc_load_policy_name(failed), (double)got / 1048576.0, sdc_load_policy_name(r->plan.policy),
                 (double)r->plan.peak / 1048576.0);
        snprintf(r->why, sizeof r->why, "auto: replanned to %s after running out of device memory under %s at %.1f MiB",
                 sdc_load_policy_name(r->plan.policy), sdc_load_policy_name(failed), (double)got / 1048576.0);
        st = out ? run_phases(j, r, out) : SDC_ERR_OOM;
    }
    if (st == SDC_OK) {
        sdc_report_log(m, r);
        j->report = sdc_report_json(m, r);
        j->images = out;
        j->n_images = nb;
        out = NULL;
    } else if (st == SDC_ERR_OOM || st == SDC_ERR_BACKEND) {
        sdc_model_unload_all(m); /* nothing half-loaded stays behind */
    }
    sdc_backend_clear_status(m->be); /* the error is reported; the next job starts clean */
    free(r);
    if (st != SDC_OK) SDC_LOGE(log, "sdc_generate: %s", sdc_status_str(st));
    sdc_image_free(out, nb);
    return st;
}

sdc_status sdc_job_run(sdc_job *j) {
    if (!j) return SDC_ERR_INVALID_ARG;
    if (j->ran) {
        SDC_LOGE(&j->m->log, "sdc_job_run: a job runs once; make a new one");
        return SDC_ERR_INVALID_ARG;
    }
    j->ran = 1;
    pthread_mutex_lock(&j->m->lock);
    j->m->last_error[0] = 0;
    sdc_status st = run_job(j);
    pthread_mutex_unlock(&j->m->lock);
    return st;
}
